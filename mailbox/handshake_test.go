package mailbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
	"io"
	"reflect"
	"testing"
	"time"
)

func TestHandshake(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		a := newTestEndpoint(t, x, newCollector(), WithMaxFrame(1<<20))
		b := newTestEndpoint(t, y, newCollector())
		cookie := NewCookie()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		type result struct {
			h   Hello
			err error
		}
		res := make(chan result, 1)
		go func() {
			h, err := b.Handshake(ctx, Hello{Address: "node/3", Incarnation: 4, Caps: 0b101, Cookie: cookie})
			res <- result{h, err}
		}()
		fromB, err := a.Handshake(ctx, Hello{Address: "node", Caps: 0b110, Cookie: cookie, Version: 99, MaxFrame: 5})
		r := <-res
		if err != nil || r.err != nil {
			t.Fatalf("Handshake: got %v, %v; want nil, nil", err, r.err)
		}
		schema := currentSchema().digest
		want := Hello{Version: protocolVersion, Caps: 0b101, MaxFrame: DefaultMaxFrame, Address: "node/3", Incarnation: 4, Cookie: cookie, Schema: schema}
		if !reflect.DeepEqual(fromB, want) || !reflect.DeepEqual(a.Peer(), want) {
			t.Errorf("a got %+v (Peer %+v); want %+v", fromB, a.Peer(), want)
		}
		// Version and MaxFrame are the endpoint's own, whatever the caller set.
		want = Hello{Version: protocolVersion, Caps: 0b110, MaxFrame: 1 << 20, Address: "node", Cookie: cookie, Schema: schema}
		if !reflect.DeepEqual(r.h, want) {
			t.Errorf("b got %+v; want %+v", r.h, want)
		}
		if _, err := a.Handshake(ctx, Hello{}); !errors.Is(err, ErrAlreadyStarted) {
			t.Errorf("second Handshake: got %v; want ErrAlreadyStarted", err)
		}
	})
}

func TestHandshakeCookieMismatch(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		ca, cb := newCollector(), newCollector()
		a := newTestEndpoint(t, x, ca)
		b := newTestEndpoint(t, y, cb)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		errs := make(chan error, 1)
		go func() {
			_, err := b.Handshake(ctx, Hello{Cookie: []byte("the child's guess")})
			errs <- err
		}()
		_, err := a.Handshake(ctx, Hello{Cookie: NewCookie()})
		errB := <-errs
		for _, e := range []error{err, errB} {
			if !errors.Is(e, ErrHandshake) || errors.Is(e, ErrHandshakeTimeout) {
				t.Errorf("got %v; want ErrHandshake", e)
			}
		}
		for _, c := range []*collector{ca, cb} {
			if err := c.waitClosed(t); !errors.Is(err, ErrHandshake) {
				t.Errorf("Closed: got %v; want ErrHandshake", err)
			}
		}
		<-a.Done()
		if err := a.Start(); !errors.Is(err, ErrClosed) {
			t.Errorf("Start after a failed handshake: got %v; want ErrClosed", err)
		}
	})
}

// TestHandshakeHostile answers a handshake with hand-crafted bytes.
func TestHandshakeHostile(t *testing.T) {
	t.Parallel()
	cookie := []byte("cookie")
	hello := func(h Hello) []byte { return frame(frameHello, appendHello(nil, &h)) }
	for _, c := range []struct {
		name   string
		stream []byte
		close  bool
		want   []error
	}{
		{"version mismatch", hello(Hello{Version: 1, MaxFrame: 1 << 20, Cookie: cookie}), false, []error{ErrHandshake}},
		{"header version mismatch", rawHeader(0, 2, 1, 0), false, []error{ErrHandshake, ErrProtocol}},
		{"first frame is data", frame(frameData, nil), false, []error{ErrHandshake}},
		{"hello too large", append(rawHeader(maxHello+1, 2, protocolVersion, 0), make([]byte, maxHello+1)...), false, []error{ErrHandshake, ErrFrameTooLarge}},
		{"hello length 2^31", rawHeader(1<<31, 2, protocolVersion, 0), false, []error{ErrHandshake, ErrFrameTooLarge}},
		{"truncated hello", frame(frameHello, []byte{1, 0, 0x80}), false, []error{ErrHandshake, ErrProtocol}},
		{"stray bytes after hello", frame(frameHello, append(appendHello(nil, &Hello{Version: protocolVersion, MaxFrame: 1 << 20, Cookie: cookie}), 0)), false, []error{ErrHandshake, ErrProtocol}},
		{"max frame too small", hello(Hello{Version: protocolVersion, MaxFrame: 10, Cookie: cookie}), false, []error{ErrHandshake}},
		{"max frame out of range", hello(Hello{Version: protocolVersion, MaxFrame: 1<<32 - 1, Cookie: cookie}), false, []error{ErrHandshake, ErrProtocol}},
		{"peer closes", nil, true, []error{ErrHandshake}},
		{"garbage", []byte("SSH-2.0-OpenSSH_9.6\r\n"), false, []error{ErrHandshake, ErrProtocol}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			eachTransport(t, func(t *testing.T, tr transport) {
				x, raw := tr.make(t)
				col := newCollector()
				e := newTestEndpoint(t, x, col)
				drained, wrote := make(chan struct{}), make(chan struct{})
				go func() { io.Copy(io.Discard, raw); close(drained) }()
				go func() {
					defer close(wrote)
					raw.Write(c.stream)
					if c.close {
						raw.Close()
					}
				}()
				defer func() { raw.Close(); <-wrote; <-drained }()
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				_, err := e.Handshake(ctx, Hello{Cookie: cookie})
				for _, w := range c.want {
					if !errors.Is(err, w) {
						t.Errorf("got %v; want %v", err, w)
					}
				}
				if errors.Is(err, ErrHandshakeTimeout) {
					t.Errorf("got %v; want no timeout", err)
				}
				if err := col.waitClosed(t); !errors.Is(err, ErrHandshake) {
					t.Errorf("Closed: got %v; want ErrHandshake", err)
				}
			})
		})
	}
}

// TestHandshakeTimeout: a peer that never answers costs the context's time.
func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, raw := tr.make(t)
		defer raw.Close() // never reads, never writes
		col := newCollector()
		e := newTestEndpoint(t, x, col)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := e.Handshake(ctx, Hello{Cookie: NewCookie()})
		if !errors.Is(err, ErrHandshakeTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v; want ErrHandshakeTimeout wrapping context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > testTimeout/2 {
			t.Errorf("took %v", d)
		}
		if err := col.waitClosed(t); !errors.Is(err, ErrHandshakeTimeout) {
			t.Errorf("Closed: got %v; want ErrHandshakeTimeout", err)
		}
	})
}

// TestHandshakeAbort: Abort during a Handshake ends both.
func TestHandshakeAbort(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, raw := tr.make(t)
		defer raw.Close()
		col := newCollector()
		e := newTestEndpoint(t, x, col)
		errs := make(chan error, 1)
		go func() {
			_, err := e.Handshake(context.Background(), Hello{})
			errs <- err
		}()
		testutil.Eventually(t, "the handshake to start", func() bool { return e.state.Load() == stateHandshaking })
		e.Abort()
		if err := <-errs; err == nil {
			t.Fatal("Handshake: got nil; want an error")
		}
		if n := col.closedCount(); n != 1 {
			t.Errorf("Closed called %d times; want 1", n)
		}
	})
}

func TestParseHello(t *testing.T) {
	t.Parallel()
	for _, h := range []Hello{
		{},
		{Version: 1, Caps: 1<<64 - 1, MaxFrame: maxFrameLimit, Address: "a/b/c", Incarnation: 1<<64 - 1, Cookie: NewCookie()},
		{Version: 0xffff, Address: string(bytes.Repeat([]byte("x"), 300))},
	} {
		got, err := parseHello(appendHello(nil, &h))
		if len(h.Cookie) == 0 {
			h.Cookie = nil
		}
		if err != nil || !reflect.DeepEqual(got, h) {
			t.Errorf("got %+v, %v; want %+v, nil", got, err, h)
		}
	}
	for _, b := range [][]byte{
		nil,
		{0x80},
		{1, 0, 0, 5, 'a'},
		append(appendHello(nil, &Hello{}), 1),
		append(binary.AppendUvarint(nil, 1<<16), 0, 0, 0, 0, 0),
		appendHello(nil, &Hello{MaxFrame: maxFrameLimit + 1}),
		append(binary.AppendUvarint([]byte{1, 0}, 1<<33), 0, 0, 0),
	} {
		if _, err := parseHello(b); !errors.Is(err, ErrProtocol) {
			t.Errorf("% x: got %v; want ErrProtocol", b, err)
		}
	}
}

// TestHeldSendsFitPeerMaxFrame: messages sent before the handshake are
// framed against this side's own limit, the peer's being unknown yet; the
// handshake re-frames them to the peer's (here 4 KiB), so the peer never
// gets a frame over its WithMaxFrame.
func TestHeldSendsFitPeerMaxFrame(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		ca, cb := newCollector(), newCollector()
		a := newTestEndpoint(t, x, ca)
		b := newTestEndpoint(t, y, cb, WithMaxFrame(4<<10))
		ctx := context.Background()
		const n = 5
		for i := range n {
			msg := bytes.Repeat([]byte{byte(i)}, 3<<10) // each fits 4 KiB, two do not
			if err := a.Send(ctx, &Envelope{Target: pa.NewPID("node/1", "x"), Message: msg}); err != nil {
				t.Fatal(err)
			}
		}
		handshake(t, a, b)
		for _, e := range []*Endpoint{a, b} {
			if err := e.Start(); err != nil {
				t.Fatal(err)
			}
		}
		got, reasons := cb.wait(t, n)
		for i := range n {
			m, _ := got[i].Message.([]byte)
			if reasons[i] != nil || len(m) != 3<<10 || m[0] != byte(i) {
				t.Fatalf("message %d: got %d bytes starting %v (%v); want 3 KiB of %d", i, len(m), m[:min(1, len(m))], reasons[i], i)
			}
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v; want nil (the peer refused nothing)", err)
		}
	})
}

// TestHeldSendOverPeerMaxFrame: a message held from before the handshake
// that is larger than the peer's frame limit cannot cross; the handshake
// fails with ErrMessageTooLarge instead of writing a frame the peer refuses.
func TestHeldSendOverPeerMaxFrame(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		ca, cb := newCollector(), newCollector()
		a := newTestEndpoint(t, x, ca)
		b := newTestEndpoint(t, y, cb, WithMaxFrame(4<<10))
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := a.Send(ctx, &Envelope{Message: make([]byte, 5<<10)}); err != nil {
			t.Fatal(err)
		}
		cookie := NewCookie()
		errs := make(chan error, 1)
		go func() {
			_, err := b.Handshake(ctx, Hello{Address: "node/1", Cookie: cookie})
			errs <- err
		}()
		_, err := a.Handshake(ctx, Hello{Address: "node", Cookie: cookie})
		<-errs // b's handshake succeeded or saw a's end; either way b gets no frame
		if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("Handshake: got %v; want ErrHandshake and ErrMessageTooLarge", err)
		}
		if err := ca.waitClosed(t); !errors.Is(err, ErrMessageTooLarge) {
			t.Errorf("Closed: got %v; want ErrMessageTooLarge", err)
		}
		if b.Start() == nil {
			if err := cb.waitClosed(t); errors.Is(err, ErrFrameTooLarge) {
				t.Errorf("peer: got %v; want the link's end without a frame over its limit", err)
			}
		}
	})
}
