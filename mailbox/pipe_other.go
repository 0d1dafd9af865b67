//go:build !linux

package mailbox

import (
	"os"

	"golang.org/x/sys/unix"
)

// SetPipeSize does nothing where the OS has no F_SETPIPE_SZ.
func SetPipeSize(f *os.File, size int) error { return nil }

func isNonblocking(fd uintptr) bool {
	fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK != 0
}

// adviseHuge does nothing: huge-page advice is Linux's.
func adviseHuge([]byte) {}
