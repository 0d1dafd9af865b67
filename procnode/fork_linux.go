package procnode

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// Children are started from one goroutine locked to an OS thread that lives
// as long as the process: Linux sends Pdeathsig when the *thread* that forked
// the child exits, not the process, and the Go runtime may retire any other
// thread (see prctl(2), PR_SET_PDEATHSIG).
var (
	forkOnce sync.Once
	forkReqs = make(chan forkReq)
)

type forkReq struct {
	cmd  *exec.Cmd
	done chan error
}

func forkStart(cmd *exec.Cmd) error {
	forkOnce.Do(func() { go forkLoop() })
	r := forkReq{cmd: cmd, done: make(chan error, 1)}
	forkReqs <- r
	return <-r.done
}

func forkLoop() {
	runtime.LockOSThread() // never unlocked: the thread must outlive every child
	for r := range forkReqs {
		r.done <- r.cmd.Start()
	}
}

// mergeSysProcAttr adds ours to the caller's attributes: a process group of
// its own (a terminal's Ctrl-C reaches the parent, which stops children
// gracefully) and Pdeathsig=SIGKILL (no orphans even if the parent is
// SIGKILLed).
func mergeSysProcAttr(a *syscall.SysProcAttr) *syscall.SysProcAttr {
	var out syscall.SysProcAttr
	if a != nil {
		out = *a
	}
	if !out.Setsid && !out.Setctty && !out.Foreground {
		out.Setpgid = true
	}
	if out.Pdeathsig == 0 {
		out.Pdeathsig = syscall.SIGKILL
	}
	return &out
}
