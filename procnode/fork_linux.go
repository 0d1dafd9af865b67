package procnode

import (
	"os/exec"
	"runtime"
	"strconv"
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

// closeInherited closes, in a child, the descriptors above its stream that
// it inherited without close-on-exec: whatever leaked into the parent from
// its own parent (a shell, a supervisor). A child inherits only its stdio and
// its stream; everything the Go runtime and package os open is close-on-exec,
// so a descriptor that is not was inherited.
func closeInherited() {
	// Raw system calls, not os.Open and Readdirnames: this is on every
	// child's start, and package os's file and directory setup cost more
	// than the listing itself.
	dir, err := syscall.Open("/proc/self/fd", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	var names []string
	var buf [4096]byte
	for {
		n, err := syscall.ReadDirent(dir, buf[:])
		if err != nil || n <= 0 {
			break
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
	syscall.Close(dir)
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd <= childWriteFD || fd == dir {
			continue
		}
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno == 0 && flags&syscall.FD_CLOEXEC == 0 {
			syscall.Close(fd)
		}
	}
}

// setRlimit sets one of the child's resource limits (WithRlimit).
func setRlimit(r rlimit) error {
	return syscall.Setrlimit(r.Resource, &syscall.Rlimit{Cur: r.Cur, Max: r.Max})
}
