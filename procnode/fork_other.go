//go:build !linux

package procnode

import (
	"os/exec"
	"syscall"
)

func forkStart(cmd *exec.Cmd) error { return cmd.Start() }

// mergeSysProcAttr adds a process group of the child's own. Without
// Pdeathsig, an orphan notices its parent's death by EOF on its stream.
func mergeSysProcAttr(a *syscall.SysProcAttr) *syscall.SysProcAttr {
	var out syscall.SysProcAttr
	if a != nil {
		out = *a
	}
	if !out.Setsid && !out.Setctty && !out.Foreground {
		out.Setpgid = true
	}
	return &out
}
