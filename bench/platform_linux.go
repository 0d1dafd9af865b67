package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// childSysProcAttr returns the attributes of every child: SIGKILL when the parent
// dies (a backstop for a parent killed without cleanup) and a process group of its
// own (Ctrl-C reaches only the parent, which then stops its children).
//
// Pdeathsig fires when the thread that forked the child exits. Go only ends
// threads whose goroutine exits locked to them; the bench starts children from
// unlocked goroutines and pairs every LockOSThread with an UnlockOSThread.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// setPipeSize sets the capacity of the pipe behind fd (F_SETPIPE_SZ).
func setPipeSize(fd uintptr, size int) error {
	_, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
	return err
}
