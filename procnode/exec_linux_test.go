package procnode_test

import (
	"syscall"
	"testing"
)

// TestExitStatusProcessState: the exit status carries os/exec's process
// state: the pid, the exit code, the CPU times and the resource usage (on
// Linux a *syscall.Rusage with the peak resident set).
func TestExitStatusProcessState(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.exec")
	request(t, n, p.PID(), "burn")
	if err := p.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	st := p.ExitStatus()
	ps := st.ProcessState
	if ps == nil {
		t.Fatal("no ProcessState in the exit status")
	}
	if ps.Pid() != st.OSPid || ps.ExitCode() != 0 || !ps.Exited() {
		t.Fatalf("process state pid %d, code %d, exited %v; want pid %d, a clean exit", ps.Pid(), ps.ExitCode(), ps.Exited(), st.OSPid)
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru.Maxrss <= 0 {
		t.Fatalf("SysUsage %#v; want a *syscall.Rusage with a peak RSS", ps.SysUsage())
	}
	if ps.UserTime()+ps.SystemTime() <= 0 {
		t.Fatalf("CPU time %v + %v; want some for a child that burned CPU", ps.UserTime(), ps.SystemTime())
	}
}
