//go:build unix && !linux

package main

import (
	"errors"
	"syscall"
	"time"
)

// childSysProcAttr returns the attributes of every child: a process group of its
// own, so Ctrl-C reaches only the parent, which then stops its children. Without
// Linux's Pdeathsig, children rely on EOF of their link to exit.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// setPipeSize fails: only Linux can resize a pipe.
func setPipeSize(fd uintptr, size int) error {
	return errors.New("F_SETPIPE_SZ is Linux-only")
}

// processCPU fails: it reads Linux's /proc.
func processCPU(int) (time.Duration, error) {
	return 0, errors.New("per-process CPU time is read from Linux's /proc")
}

// vmRSSKiB is not measured: /proc is Linux's.
func vmRSSKiB(int) (int64, error) {
	return 0, notApplicable("VmRSS is read from Linux's /proc")
}
