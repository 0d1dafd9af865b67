//go:build !linux

package procnode

import (
	"os/exec"
	"reflect"
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

// closeInherited would close inherited descriptors above the child's stream;
// without /proc it does nothing.
func closeInherited() {}

// setRlimit sets one of the child's resource limits (WithRlimit). The
// fields of syscall.Rlimit are uint64 or int64, depending on the system.
func setRlimit(r rlimit) error {
	var lim syscall.Rlimit
	v := reflect.ValueOf(&lim).Elem()
	for name, x := range map[string]uint64{"Cur": r.Cur, "Max": r.Max} {
		f := v.FieldByName(name)
		if f.CanUint() {
			f.SetUint(x)
		} else {
			f.SetInt(int64(x))
		}
	}
	return syscall.Setrlimit(r.Resource, &lim)
}
