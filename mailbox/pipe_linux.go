package mailbox

import (
	"os"

	"golang.org/x/sys/unix"
)

// SetPipeSize raises the kernel buffer of the pipe behind f (F_SETPIPE_SZ).
// Large messages cross a 64 KiB default pipe in many more wake-ups.
func SetPipeSize(f *os.File, size int) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		_, serr = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
	}); err != nil {
		return err
	}
	return serr
}

func isNonblocking(fd uintptr) bool {
	fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK != 0
}
