package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FDs lists this process's open descriptors as "n→target" (Linux; empty
// elsewhere). Comparing two lists shows what leaked; the listing's own
// descriptor is in both.
func FDs() []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		out = append(out, e.Name()+"→"+target)
	}
	return out
}

// FDCount is how many descriptors this process has open (Linux; 0
// elsewhere), counted as FDs counts them.
func FDCount() int { return len(FDs()) }

// Gone reports whether the OS process pid no longer runs. A zombie counts
// as gone: in a container, PID 1 may never reap the orphans it inherits.
func Gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}
