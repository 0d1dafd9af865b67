//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procactor/procactor/internal/testutil"
)

// TestCtrlC: a parent in a process group of its own (a re-exec of the test
// binary, INTEGRATION_ROLE=ctrlc-parent) with one child gets SIGINT on its
// whole process group, as a terminal's Ctrl-C does. The child, in a group
// of its own (procnode sets Setpgid), is not hit: the parent stops it
// gracefully, after checking it is still alive and answers, and both exit 0.
// A parent that only called Node.StopOnSignal gets the same graceful end.
func TestCtrlC(t *testing.T) {
	t.Run("own handling", func(t *testing.T) {
		ctrlC(t, roleCtrlCParent, "child alive=true answered=true code=0 signal=0 stopped=true")
	})
	// The one line, Node.StopOnSignal: the same graceful end.
	t.Run("StopOnSignal", func(t *testing.T) {
		ctrlC(t, roleCtrlCOneLine, "child code=0 signal=0 stopped=true cause=procnode: stopped by a signal: interrupt")
	})
}

// ctrlC runs the parent role, sends SIGINT to its process group once it is
// ready, and checks the line it prints after and its clean exit.
func ctrlC(t *testing.T, role, want string) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when waitErr is set
	var waitErr error
	lines := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		waitErr = cmd.Wait() // after the last read, as exec.Cmd requires
		close(exited)
	}()
	defer func() {
		select {
		case <-exited:
		default: // something failed: do not leave it behind (its child dies by Pdeathsig)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", role, stderr.String())
		}
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				<-exited
				t.Logf("ctrlc-parent: %v", waitErr)
				t.Fatal("the ctrlc-parent closed its stdout early")
			}
			return l
		case <-time.After(60 * time.Second):
			t.Fatal("no line from the ctrlc-parent")
		}
		return ""
	}

	var childPid int
	if l := next(); !strings.HasPrefix(l, "ready ") {
		t.Fatalf("first line %q, want ready <pid>", l)
	} else if _, err := fmt.Sscanf(l, "ready %d", &childPid); err != nil || childPid <= 0 {
		t.Fatalf("first line %q: %v", l, err)
	}
	pgid, err := syscall.Getpgid(cmd.Process.Pid)
	if err != nil || pgid != cmd.Process.Pid {
		t.Fatalf("parent's process group %d (%v), want its own %d", pgid, err, cmd.Process.Pid)
	}
	if cpg, err := syscall.Getpgid(childPid); err != nil || cpg == pgid {
		t.Fatalf("child's process group %d (%v): it must not be the parent's %d", cpg, err, pgid)
	}
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}

	if l := next(); l != want {
		t.Fatalf("after SIGINT the parent said %q, want %q", l, want)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("ctrlc-parent: %v, want exit 0", waitErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the ctrlc-parent did not exit")
	}
	// Its child was stopped and reaped by it before it exited.
	if st, ok := readStat(childPid); ok && st.state != 'Z' && st.ppid == cmd.Process.Pid {
		t.Fatalf("child %d still runs: %+v", childPid, st)
	}
}
