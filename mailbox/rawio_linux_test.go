package mailbox

import (
	"bytes"
	"context"
	"errors"
	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
	"io"
	"os"
	"testing"
	"time"
)

// A PipeConn's raw reads and writes behave as its files' would: data in
// order (a write larger than the pipe waits for room), a deadline, end of
// file and a closed file reported in the file's own errors.
func TestPipeConnRawIO(t *testing.T) {
	a, b, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	if a.rr == nil || a.rw == nil || b.rr == nil || b.rw == nil {
		t.Fatal("a PipeConn over os.Pipe's files does not use raw calls")
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), (3*maxRawChunk+100)/16) // several chunks, several pipes full
	done := make(chan error, 1)
	go func() {
		n, err := a.Write(big)
		if err == nil && n != len(big) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("bytes changed on the way")
	}

	// A deadline: the file's error, which errors.Is recognises.
	if err := b.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err = b.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	if err := b.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}

	// End of file once the other side's write end is closed.
	if _, err := a.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := a.w.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := b.Read(buf)
	if err != nil || string(buf[:n]) != "last" {
		t.Fatalf("read %q, %v; want \"last\"", buf[:n], err)
	}
	if n, err := b.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the writer closed: %d, %v; want 0, io.EOF", n, err)
	}
	// A write after close: the file's error.
	if _, err := a.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write to a closed file: %v; want os.ErrClosed", err)
	}
	// A read blocked when the file is closed returns the file's error.
	readErr := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 8))
		readErr <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := a.r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("read interrupted by close: %v; want os.ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("a read blocked on a closed file did not return")
	}
}

// A blocking descriptor is used as a file: raw calls would block a thread
// holding a P.
func TestPipeConnBlockingFilesNotRaw(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	_ = r.Fd() // Fd puts a file into blocking mode
	_ = w.Fd()
	c := NewPipeConn(r, w)
	if c.rr != nil || c.rw != nil {
		t.Fatal("raw calls chosen for blocking descriptors")
	}
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// A read that expects an answer polls for it within the window, and a poll
// that misses makes the next expecting reads sleep at once (1, 3, 7 ...),
// until a poll catches an answer again. Driven step by step, without
// timing: the bench's rtt rows measure what polling gains.
func TestPipeConnSpinBackoff(t *testing.T) {
	a, b, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	r := b.rr
	var fd uintptr
	if err := r.raw.Control(func(f uintptr) { fd = f }); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	// expecting runs one expecting read of the empty pipe, as RawRead's
	// first call of readFD does, and reports whether it read something.
	expecting := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.p, r.n, r.errno, r.expect, r.spun = buf, 0, 0, true, false
		return r.readFD(fd)
	}

	// An answer that comes while the read polls: written as the poll starts.
	r.setSpin(time.Minute) // only an answer ends this poll
	pollStarted = func() { a.Write([]byte("pong")) }
	defer func() { pollStarted = nil }()
	if !expecting() || string(buf[:r.n]) != "pong" {
		t.Fatalf("the poll did not catch the answer: %q", buf[:r.n])
	}
	if r.misses != 0 || r.skip != 0 || r.polls.Load() != 1 {
		t.Fatalf("after a caught answer: misses %d skip %d polls %d", r.misses, r.skip, r.polls.Load())
	}

	// No answer within the window: each miss doubles the reads that skip.
	pollStarted = nil
	r.setSpin(time.Microsecond)
	want := []struct{ misses, skip int }{{1, 1}, {1, 0}, {2, 3}, {2, 2}, {2, 1}, {2, 0}, {3, 7}}
	for i, w := range want {
		polled := r.polls.Load()
		if expecting() {
			t.Fatalf("read %d: read something from an empty pipe", i)
		}
		if r.misses != w.misses || r.skip != w.skip {
			t.Fatalf("read %d: misses %d skip %d; want %d, %d", i, r.misses, r.skip, w.misses, w.skip)
		}
		if skipped := w.skip < want[max(i-1, 0)].skip; skipped && r.polls.Load() != polled {
			t.Fatalf("read %d: a skipped read polled", i)
		}
	}
	for range 7 { // the skips left
		expecting()
	}
	// The next poll catches its answer: polling is back.
	r.setSpin(time.Minute)
	pollStarted = func() { a.Write([]byte("pong")) }
	if !expecting() || r.misses != 0 || r.skip != 0 {
		t.Fatalf("after a caught answer: misses %d skip %d; want 0, 0", r.misses, r.skip)
	}
	// A read that expects nothing never polls.
	pollStarted = func() { t.Error("a read that expected nothing polled") }
	r.mu.Lock()
	r.p, r.expect, r.spun = buf, false, false
	got := r.readFD(fd)
	r.mu.Unlock()
	if got || r.misses != 0 || r.skip != 0 {
		t.Fatalf("a read that expected nothing: read %v, misses %d skip %d", got, r.misses, r.skip)
	}
	// A read that only hopes for a message (a new link's first) polls, and
	// its miss backs off nothing.
	pollStarted = nil
	r.setSpin(time.Microsecond)
	polled := r.polls.Load()
	r.mu.Lock()
	r.p, r.expect, r.spun, r.hoped = buf, true, false, true
	got = r.readFD(fd)
	r.hoped = false
	r.mu.Unlock()
	if got || r.polls.Load() != polled+1 || r.misses != 0 || r.skip != 0 {
		t.Fatalf("a hoped-for read that missed: read %v, polls %d (was %d), misses %d skip %d; want a poll and no backoff", got, r.polls.Load(), polled, r.misses, r.skip)
	}
	// Through Read, with data already there: no poll, nothing counted.
	pollStarted = nil
	a.Write([]byte("here"))
	b.expectAnswer()
	if n, err := b.Read(buf); err != nil || string(buf[:n]) != "here" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// An endpoint arms its stream's poll for the first read after the
// handshake, when a Handler call sent something and when a requester
// borrows the reader; WithSpinWait(0) never polls.
func TestEndpointExpectsAnswers(t *testing.T) {
	x, y, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	var replier *Endpoint
	h := HandlerFuncs{OnDeliver: func(env *Envelope) {
		if env.Message == "ping" {
			_ = replier.Send(context.Background(), &Envelope{Target: pa.NewPID("node", "x"), Message: "pong"})
		}
	}}
	got := newCollector()
	asker := newTestEndpoint(t, x, got, WithLocalAddress("node"))
	replier = newTestEndpoint(t, y, h, WithLocalAddress("node/1"))
	handshake(t, asker, replier)
	for _, e := range []*Endpoint{asker, replier} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if replier.spin == nil || y.rr.spin != int64(DefaultSpinWait) {
		t.Fatalf("a PipeConn endpoint does not poll by default (spin %v)", y.rr.spin)
	}
	// Each side's first read after the handshake polls once, hoping for a
	// first message.
	testutil.Eventually(t, "both first reads to poll", func() bool { return x.rr.polls.Load() == 1 && y.rr.polls.Load() == 1 })
	sendStrings(t, asker, "ping")
	got.wait(t, 1)
	// The replier's reader read again after its call sent the pong: that
	// read expected an answer and polled for it.
	testutil.Eventually(t, "the replier's read to poll", func() bool { return y.rr.polls.Load() == 2 })
	if n := x.rr.polls.Load(); n != 1 {
		t.Fatalf("the asker's reader polled %d times: once after the handshake, then it expected nothing", n)
	}

	off, _, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	e, err := NewEndpoint(off, newCollector(), WithSpinWait(0))
	if err != nil {
		t.Fatal(err)
	}
	if e.spin != nil || off.rr.spin != 0 {
		t.Fatal("WithSpinWait(0) polls")
	}
	if _, err := NewEndpoint(off, newCollector(), WithSpinWait(-time.Microsecond)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("WithSpinWait(-1µs): %v; want ErrInvalidOption", err)
	}
}

// A read that polls ends its poll at the read deadline and at the file's
// close, not at the end of its window: a borrower interrupted by its ticker
// (a deadline in the past) and a closing link do not wait for the window.
// Neither counts as a miss.
func TestPipeConnPollEndsAtDeadlineAndClose(t *testing.T) {
	a, b, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b.setSpin(time.Hour) // only a deadline, a close or an answer ends this poll
	started := make(chan struct{}, 1)
	pollStarted = func() {
		select {
		case started <- struct{}{}:
		default:
		}
	}
	defer func() { pollStarted = nil }()
	misses := func() int {
		b.rr.mu.Lock()
		defer b.rr.mu.Unlock()
		return b.rr.misses
	}

	errc := make(chan error, 1)
	read := func() {
		b.expectAnswer()
		go func() {
			_, err := b.Read(make([]byte, 8))
			errc <- err
		}()
		testutil.Receive(t, started, "the poll")
	}
	read()
	if err := b.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Receive(t, errc, "the polling read past its deadline"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v; want %v", err, os.ErrDeadlineExceeded)
	}
	if m := misses(); m != 0 {
		t.Fatalf("a poll ended by its deadline counted %d misses", m)
	}

	if err := b.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	read()
	b.Close()
	if err := testutil.Receive(t, errc, "the polling read after close"); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("got %v; want %v", err, os.ErrClosed)
	}
	if m := misses(); m != 0 {
		t.Fatalf("a poll ended by a close counted %d misses", m)
	}
}
