package mailbox

import (
	"unsafe"

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

// adviseHuge asks the kernel to back b with huge pages (MADV_HUGEPAGE) when
// it is large: a 64 MiB message read into fresh memory otherwise costs 16384
// page faults. Best effort.
func adviseHuge(b []byte) {
	const huge = 2 << 20
	b = b[:cap(b)]
	if len(b) < 2*huge {
		return
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	off := int((huge - addr%huge) % huge)
	n := (len(b) - off) &^ (huge - 1)
	if n > 0 {
		_ = unix.Madvise(b[off:off+n], unix.MADV_HUGEPAGE)
	}
}
