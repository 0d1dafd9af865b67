package main

import (
	"context"
	"os"
	"syscall"
)

// raw_socketpair is raw_pipe over one Unix stream socketpair instead of two pipes:
// the same frames (frames.go) through *os.File and the netpoller.

const rawSocketpairRole = "raw_socketpair_child"

func init() {
	registerSystem(rawSocketpair{})
	registerRole(rawSocketpairRole, runRawSocketpairChild)
}

type rawSocketpair struct{}

func (rawSocketpair) name() string { return "raw_socketpair" }

func (rawSocketpair) start(_ context.Context, cfg linkConfig) (link, error) {
	fds, err := socketpair()
	if err != nil {
		return nil, err
	}
	if largeFrames(cfg) {
		// The counterpart of raw_pipe's F_SETPIPE_SZ.
		for _, fd := range fds {
			for _, opt := range []int{syscall.SO_SNDBUF, syscall.SO_RCVBUF} {
				if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, opt, largePipeSize); err != nil {
					syscall.Close(fds[0])
					syscall.Close(fds[1])
					return nil, err
				}
			}
		}
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return nil, err
	}
	parent := os.NewFile(uintptr(fds[0]), "socketpair-parent")
	childEnd := os.NewFile(uintptr(fds[1]), "socketpair-child")
	defer childEnd.Close()
	cmd, err := newChildCmd(rawSocketpairRole, cfg)
	if err != nil {
		parent.Close()
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{childEnd}
	c, err := startChild(rawSocketpairRole, cmd)
	if err != nil {
		parent.Close()
		return nil, err
	}
	shutdown := func() error {
		parent.Close() // EOF tells the child to exit
		return c.stop()
	}
	return newFrameLink(parent, parent, cfg, false, c.cmd.Process.Pid, shutdown), nil
}

// socketpair returns a connected pair of close-on-exec Unix stream sockets.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return [2]int{}, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds, nil
}

// runRawSocketpairChild serves frames both ways on fd 3 through the netpoller.
func runRawSocketpairChild() error {
	maxMessage, err := childMaxMessage()
	if err != nil {
		return err
	}
	if err := syscall.SetNonblock(3, true); err != nil {
		return err
	}
	f := os.NewFile(3, "socketpair")
	return serveFrames(f, f, maxMessage)
}
