package mailbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procactor/procactor/internal/testutil"
	"github.com/rs/zerolog"
)

// testTimeout bounds every wait in the tests: a failure, never a hang.
const testTimeout = 30 * time.Second

// transport makes the two ends of a duplex byte stream.
type transport struct {
	name string
	make func(t testing.TB) (a, b io.ReadWriteCloser)
}

// transports are the streams every endpoint test runs over: an unbuffered
// in-memory net.Pipe, a pair of OS pipes (the production stream) and a Unix
// socketpair.
var transports = []transport{
	{"net.Pipe", func(t testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser) {
		a, b := net.Pipe()
		return a, b
	}},
	{"os.Pipe", func(t testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser) {
		a, b, err := Pipe(0)
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}},
	{"socketpair", func(t testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser) {
		return socketpair(t)
	}},
}

func socketpair(t testing.TB) (net.Conn, net.Conn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f) // a dup, non-blocking, close-on-exec
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

// eachTransport runs f as a parallel subtest per transport.
func eachTransport(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			f(t, tr)
		})
	}
}

// collector is a Handler that records what it receives.
type collector struct {
	mu       sync.Mutex
	got      []Envelope
	reasons  []error // per entry of got: nil for Deliver, the reason for DeadLetter
	closedN  int
	closeErr error
	closed   chan struct{} // closed at the first Closed
	notify   chan struct{} // cap 1: something arrived
	onDel    func(env *Envelope)
}

func newCollector() *collector {
	return &collector{closed: make(chan struct{}), notify: make(chan struct{}, 1)}
}

func (c *collector) add(env *Envelope, reason error) {
	c.mu.Lock()
	c.got = append(c.got, *env)
	c.reasons = append(c.reasons, reason)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *collector) Deliver(env *Envelope) {
	c.add(env, nil)
	if c.onDel != nil {
		c.onDel(env)
	}
}

func (c *collector) DeadLetter(env *Envelope, reason error) { c.add(env, reason) }

func (c *collector) Closed(err error) {
	c.mu.Lock()
	c.closedN++
	first := c.closedN == 1
	if first {
		c.closeErr = err
	}
	c.mu.Unlock()
	if first {
		close(c.closed)
	}
}

// wait returns the first n envelopes and their reasons once they arrived.
func (c *collector) wait(t testing.TB, n int) ([]Envelope, []error) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		c.mu.Lock()
		if len(c.got) >= n {
			got, reasons := append([]Envelope(nil), c.got[:n]...), append([]error(nil), c.reasons[:n]...)
			c.mu.Unlock()
			return got, reasons
		}
		have := len(c.got)
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-c.closed:
			c.mu.Lock()
			have, err := len(c.got), c.closeErr
			c.mu.Unlock()
			if have < n {
				t.Fatalf("link closed (%v) after %d messages; want %d", err, have, n)
			}
		case <-deadline:
			t.Fatalf("got %d messages; want %d", have, n)
		}
	}
}

// waitClosed waits for Closed and returns its error.
func (c *collector) waitClosed(t testing.TB) error {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(testTimeout):
		t.Fatal("Closed was not called")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *collector) closedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedN
}

// newTestEndpoint makes an endpoint and aborts it at cleanup.
func newTestEndpoint(t testing.TB, conn io.ReadWriteCloser, h Handler, opts ...Option) *Endpoint {
	t.Helper()
	e, err := NewEndpoint(conn, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Abort)
	return e
}

// pair is two endpoints joined by a handshake and started.
type pair struct {
	a, b   *Endpoint
	ca, cb *collector
}

// newPair makes two started endpoints over tr. Options apply to both sides;
// optsB (if any) are added to b's.
func newPair(t testing.TB, tr transport, opts []Option, optsB ...Option) *pair {
	t.Helper()
	x, y := tr.make(t)
	p := &pair{ca: newCollector(), cb: newCollector()}
	p.a = newTestEndpoint(t, x, p.ca, append(opts, WithLocalAddress("node"))...)
	p.b = newTestEndpoint(t, y, p.cb, append(append(opts, WithLocalAddress("node/1")), optsB...)...)
	handshake(t, p.a, p.b)
	for _, e := range []*Endpoint{p.a, p.b} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// handshake runs both sides' handshakes with the same cookie.
func handshake(t testing.TB, a, b *Endpoint) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cookie := NewCookie()
	errs := make(chan error, 1)
	go func() {
		_, err := b.Handshake(ctx, Hello{Address: "node/1", Incarnation: 1, Cookie: cookie})
		errs <- err
	}()
	_, err := a.Handshake(ctx, Hello{Address: "node", Cookie: cookie})
	if errB := <-errs; err != nil || errB != nil {
		t.Fatalf("handshake: got %v, %v; want nil, nil", err, errB)
	}
}

// logBuffer is a zerolog writer that keeps the lines written.
type logBuffer struct{ testutil.SyncBuffer }

func (l *logBuffer) lines() []string {
	var out []string
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(l.String())), []byte("\n")) {
		if len(line) > 0 {
			out = append(out, string(line))
		}
	}
	return out
}

func (l *logBuffer) logger(level zerolog.Level) zerolog.Logger {
	return zerolog.New(l).Level(level)
}

// stallConn is a stream whose Writes wait while it is stalled: the writer
// goroutine of an endpoint over it blocks in Write, as on a full pipe.
type stallConn struct {
	io.ReadWriteCloser
	mu      sync.Mutex
	gate    chan struct{} // closed when writes may proceed; nil when not stalled
	entered chan struct{} // gets a value when a Write starts waiting
}

func newStallConn(c io.ReadWriteCloser) *stallConn {
	return &stallConn{ReadWriteCloser: c, entered: make(chan struct{}, 16)}
}

func (s *stallConn) stall() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *stallConn) release() {
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
}

func (s *stallConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.entered <- struct{}{}
		<-gate
	}
	return s.ReadWriteCloser.Write(p)
}

func (s *stallConn) Close() error {
	s.release()
	return s.ReadWriteCloser.Close()
}

// isTyped reports whether err matches one of want (errors.Is).
func isTyped(err error, want ...error) bool {
	for _, w := range want {
		if errors.Is(err, w) {
			return true
		}
	}
	return false
}
