package mailbox

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"
)

// PipeConn is one duplex stream made of two pipes: it reads from r and writes
// to w. A link is two pipes rather than one socket for latency: in the
// bench's rtt rows a Unix socketpair's round trip took about twice a pipe's
// (the raw_socketpair row), while a socketpair moved one-way and large
// messages faster.
type PipeConn struct {
	r, w   *os.File
	rr, rw *rawFile // the same files with raw system calls; nil where not possible (rawio_linux.go)
}

// NewPipeConn joins the read end of one pipe and the write end of another.
// Close closes both.
func NewPipeConn(r, w *os.File) *PipeConn {
	return &PipeConn{r: r, w: w, rr: newRawFile(r), rw: newRawFile(w)}
}

// Read reads from the read end.
func (c *PipeConn) Read(p []byte) (int, error) {
	if c.rr != nil {
		return c.rr.Read(p)
	}
	return c.r.Read(p)
}

// Write writes to the write end.
func (c *PipeConn) Write(p []byte) (int, error) {
	if c.rw != nil {
		return c.rw.Write(p)
	}
	return c.w.Write(p)
}

// setSpin, expectAnswer and hopeForMessage implement spinner (spinWait,
// rawio_linux.go).
func (c *PipeConn) setSpin(d time.Duration) {
	if c.rr != nil {
		c.rr.setSpin(d)
	}
}

// setIdle implements idler.
func (c *PipeConn) setIdle(fn func() bool) {
	if c.rr != nil {
		c.rr.setIdle(fn)
	}
}

func (c *PipeConn) expectAnswer() {
	if c.rr != nil {
		c.rr.expectAnswer()
	}
}

func (c *PipeConn) hopeForMessage() {
	if c.rr != nil {
		c.rr.hopeForMessage()
	}
}

func (c *PipeConn) pollCount() uint64 {
	if c.rr != nil {
		return c.rr.polls.Load()
	}
	return 0
}

// spinner is a stream whose next read may poll for an answer before it
// sleeps (a PipeConn).
type spinner interface {
	setSpin(d time.Duration)
	expectAnswer()
	hopeForMessage()
	pollCount() uint64
}

// idler is a stream that can tell its reader when a read finds nothing to
// read yet, before it waits (a PipeConn): the reader then makes the
// decoder's spare (spare.go).
type idler interface {
	setIdle(fn func() bool)
}

// Close closes both files; a Read or Write blocked on them returns, a read
// that polls (WithSpinWait) too.
func (c *PipeConn) Close() error {
	if c.rr != nil {
		c.rr.markClosing()
	}
	return errors.Join(c.r.Close(), c.w.Close())
}

// SetReadDeadline sets the read side's deadline (a requester that borrows
// the reader role waits for its answer only so long); a read that polls
// stops polling at it.
func (c *PipeConn) SetReadDeadline(t time.Time) error {
	if c.rr != nil {
		c.rr.setDeadline(t)
	}
	return c.r.SetReadDeadline(t)
}

// SyscallConn gives the write side, for direct non-blocking writes.
func (c *PipeConn) SyscallConn() (syscall.RawConn, error) { return c.w.SyscallConn() }

// Files returns the two files (read side, write side).
func (c *PipeConn) Files() (r, w *os.File) { return c.r, c.w }

// Pipe returns the two ends of an in-process link made of two pipes, each
// pipe's buffer raised to size bytes where the OS allows (0 keeps the default).
func Pipe(size int) (a, b *PipeConn, err error) {
	ar, bw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	br, aw, err := os.Pipe()
	if err != nil {
		ar.Close()
		bw.Close()
		return nil, nil, err
	}
	if size > 0 {
		// Best effort: a smaller pipe only costs speed.
		_ = SetPipeSize(bw, size)
		_ = SetPipeSize(aw, size)
	}
	return NewPipeConn(ar, aw), NewPipeConn(br, bw), nil
}

// rawWriter returns the write side's RawConn when it is a non-blocking file
// descriptor, so a sender may write to it without ever blocking (and a
// reader read it raw: newRawFile).
func rawWriter(conn io.Writer) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	nonblocking := false
	if err := raw.Control(func(fd uintptr) { nonblocking = isNonblocking(fd) }); err != nil || !nonblocking {
		return nil
	}
	return raw
}
