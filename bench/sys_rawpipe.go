package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"github.com/procactor/procactor/mailbox"
)

// raw_pipe is the baseline of every ratio: the bench and a child exchange frames
// (frames.go) over two pipes, one per direction, through *os.File and so the
// netpoller, as a plain Go program would. raw_pipe_blocking is the same exchange
// with blocking read/write syscalls on raw fds from goroutines locked to their OS
// threads, in both processes.

const (
	// defaultPipeSize is Linux's default pipe capacity.
	defaultPipeSize = 64 << 10
	// largePipeSize is the capacity set with F_SETPIPE_SZ (and the socket buffer
	// size) for cells whose frames exceed defaultPipeSize (see largeFrames):
	// /proc/sys/fs/pipe-max-size by default.
	largePipeSize = 1 << 20

	rawPipeRole         = "raw_pipe_child"
	rawPipePollRole     = "raw_pipe_poll_child"
	rawPipeBlockingRole = "raw_pipe_blocking_child"
)

func init() {
	registerSystem(rawPipe{})
	registerSystem(rawPipe{poll: true})
	registerSystem(rawPipeBlocking{})
	registerRole(rawPipeRole, func() error { return runRawPipeChild(false) })
	registerRole(rawPipePollRole, func() error { return runRawPipeChild(true) })
	registerRole(rawPipeBlockingRole, runRawPipeBlockingChild)
}

// largeFrames reports whether a frame of cfg.maxMessage bytes overflows a default
// pipe, so that the raw systems raise their buffers to largePipeSize, as a
// program sending such messages would. A frame that overflows the pipe by even a
// byte costs an extra wake-up of each side per message: rtt_64k (64 KiB plus a
// 5-byte header) measured ≈ 43 µs p50 with default pipes, ≈ 30 µs with 1 MiB ones.
func largeFrames(cfg linkConfig) bool {
	return cfg.maxMessage+frameHeaderSize > defaultPipeSize
}

// rawPipe is raw_pipe; with poll, raw_pipe_poll: the same exchange whose
// reads, in both processes, poll the pipe for up to rawPollWindow before
// they sleep, as procactor's links do (mailbox.WithSpinWait). It shows
// what polling alone gives a raw pipe on the machine at hand.
type rawPipe struct{ poll bool }

func (r rawPipe) name() string {
	if r.poll {
		return "raw_pipe_poll"
	}
	return "raw_pipe"
}

// notFor keeps raw_pipe_poll to what polling changes: round trips and
// streams (the harness runs only what a system can).
func (r rawPipe) notFor(k kind) string {
	if !r.poll {
		return ""
	}
	switch k {
	case kindRTT, kindOneway, kindLarge:
		return ""
	}
	return "raw_pipe_poll differs from raw_pipe in its reads only"
}

func (r rawPipe) role() string {
	if r.poll {
		return rawPipePollRole
	}
	return rawPipeRole
}

func (r rawPipe) start(_ context.Context, cfg linkConfig) (link, error) {
	toChildR, toChildW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	fromChildR, fromChildW, err := os.Pipe()
	if err != nil {
		toChildR.Close()
		toChildW.Close()
		return nil, err
	}
	parentEnds := func() { toChildW.Close(); fromChildR.Close() }
	childEnds := []*os.File{toChildR, fromChildW}
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	if largeFrames(cfg) {
		// Fd puts a file in blocking mode: use it on the child's ends only, which
		// exec passes by fd anyway.
		for _, f := range childEnds {
			if err := setPipeSize(f.Fd(), largePipeSize); err != nil {
				parentEnds()
				return nil, fmt.Errorf("F_SETPIPE_SZ %d: %w", largePipeSize, err)
			}
		}
	}
	cmd, err := newChildCmd(r.role(), cfg)
	if err != nil {
		parentEnds()
		return nil, err
	}
	cmd.ExtraFiles = childEnds
	c, err := startChild(r.role(), cmd)
	if err != nil {
		parentEnds()
		return nil, err
	}
	shutdown := func() error {
		toChildW.Close() // EOF tells the child to exit
		err := c.stop()
		fromChildR.Close()
		return err
	}
	var from io.Reader = fromChildR
	if r.poll {
		from = newPollReader(fromChildR)
	}
	return newFrameLink(from, toChildW, cfg, false, c.cmd.Process.Pid, shutdown), nil
}

// rawPollWindow is how long a raw_pipe_poll read polls: procactor's
// default (mailbox.DefaultSpinWait).
const rawPollWindow = mailbox.DefaultSpinWait

// pollReader reads a non-blocking pipe, polling it for up to rawPollWindow
// (yielding between reads) before it reads through the file and so sleeps
// on the poller.
type pollReader struct {
	f  *os.File
	fd uintptr
}

func newPollReader(f *os.File) *pollReader {
	r := &pollReader{f: f}
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { r.fd = fd })
	}
	return r
}

func (r *pollReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return r.f.Read(p)
	}
	deadline := time.Now().Add(rawPollWindow)
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, r.fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == 0 && n > 0 {
			return int(n), nil
		}
		if e != syscall.EAGAIN || !time.Now().Before(deadline) {
			return r.f.Read(p) // end of file and errors in the file's words, or sleep
		}
		runtime.Gosched()
	}
}

// runRawPipeChild serves frames from fd 3 to fd 4 through the netpoller
// (with poll, polling first: raw_pipe_poll).
func runRawPipeChild(poll bool) error {
	maxMessage, err := childMaxMessage()
	if err != nil {
		return err
	}
	// The fds arrive in blocking mode; os.NewFile polls only non-blocking ones.
	for _, fd := range []int{3, 4} {
		if err := syscall.SetNonblock(fd, true); err != nil {
			return err
		}
	}
	var from io.Reader = os.NewFile(3, "from-parent")
	if poll {
		from = newPollReader(from.(*os.File))
	}
	return serveFrames(from, os.NewFile(4, "to-parent"), maxMessage)
}

type rawPipeBlocking struct{}

func (rawPipeBlocking) name() string { return "raw_pipe_blocking" }

func (rawPipeBlocking) start(_ context.Context, cfg linkConfig) (link, error) {
	toChild, err := blockingPipe()
	if err != nil {
		return nil, err
	}
	fromChild, err := blockingPipe()
	if err != nil {
		syscall.Close(toChild[0])
		syscall.Close(toChild[1])
		return nil, err
	}
	parentEnds := func() { syscall.Close(toChild[1]); syscall.Close(fromChild[0]) }
	childEnds := []*os.File{os.NewFile(uintptr(toChild[0]), "to-child"), os.NewFile(uintptr(fromChild[1]), "from-child")}
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	if largeFrames(cfg) {
		for _, fd := range []int{toChild[0], fromChild[0]} {
			if err := setPipeSize(uintptr(fd), largePipeSize); err != nil {
				parentEnds()
				return nil, fmt.Errorf("F_SETPIPE_SZ %d: %w", largePipeSize, err)
			}
		}
	}
	cmd, err := newChildCmd(rawPipeBlockingRole, cfg)
	if err != nil {
		parentEnds()
		return nil, err
	}
	cmd.ExtraFiles = childEnds
	c, err := startChild(rawPipeBlockingRole, cmd)
	if err != nil {
		parentEnds()
		return nil, err
	}
	shutdown := func() error {
		syscall.Close(toChild[1]) // EOF tells the child to exit
		err := c.stop()
		syscall.Close(fromChild[0])
		return err
	}
	return newFrameLink(fdStream(fromChild[0]), fdStream(toChild[1]), cfg, true, c.cmd.Process.Pid, shutdown), nil
}

// blockingPipe returns a pipe whose fds are blocking and close-on-exec
// (os.Pipe's are non-blocking).
func blockingPipe() ([2]int, error) {
	var p [2]int
	// ForkLock keeps a concurrent exec from inheriting the fds before they are
	// marked close-on-exec.
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := syscall.Pipe(p[:]); err != nil {
		return p, err
	}
	syscall.CloseOnExec(p[0])
	syscall.CloseOnExec(p[1])
	return p, nil
}

// runRawPipeBlockingChild serves frames from fd 3 to fd 4 with blocking syscalls
// on the main goroutine, locked to its thread.
func runRawPipeBlockingChild() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	maxMessage, err := childMaxMessage()
	if err != nil {
		return err
	}
	return serveFrames(fdStream(3), fdStream(4), maxMessage)
}
