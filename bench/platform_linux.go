package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

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

// processCPU returns the CPU time a process has used, in ns, summed over its
// threads' /proc/PID/task/TID/schedstat (whose first field is the time on a
// CPU in ns: finer than /proc/PID/stat's 10 ms ticks). Threads that have
// exited are not counted; a Go process keeps its threads.
func processCPU(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s/%s/schedstat: empty", dir, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// vmRSSKiB returns the resident memory of process pid in KiB (VmRSS in
// /proc/pid/status).
func vmRSSKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
