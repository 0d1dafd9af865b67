package mailbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

func TestEndpointRoundTrip(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		p := newPair(t, tr, nil)
		ctx := context.Background()
		rts := roundTrips()
		sent := make([]*Envelope, len(rts))
		for i, rt := range rts {
			env := &Envelope{Target: pa.NewPID("node/1", fmt.Sprint("w", i%3)), Message: rt.msg}
			if i%2 == 1 {
				env.Lane = LaneSystem
				env.Sender = pa.NewPID("node", "$s")
				env.Header = map[string]string{"i": fmt.Sprint(i)}
			}
			sent[i] = env
			if err := p.a.Send(ctx, env); err != nil {
				t.Fatalf("%s: Send: %v", rt.name, err)
			}
		}
		got, reasons := p.cb.wait(t, len(rts))
		for i, rt := range rts {
			g, w := got[i], sent[i]
			if reasons[i] != nil {
				t.Errorf("%s: dead letter %v", rt.name, reasons[i])
				continue
			}
			if !equalMessage(g.Message, rt.wanted()) {
				t.Errorf("%s: got %T %#v; want %T %#v", rt.name, g.Message, g.Message, rt.wanted(), rt.wanted())
			}
			if g.Lane != w.Lane || !equalMessage(g.Target, w.Target) || !equalMessage(g.Sender, w.Sender) ||
				(len(w.Header) > 0 && g.Header["i"] != w.Header["i"]) {
				t.Errorf("%s: got envelope (%v, %v, %v, %v); want (%v, %v, %v, %v)", rt.name,
					g.Lane, g.Target, g.Sender, g.Header, w.Lane, w.Target, w.Sender, w.Header)
			}
		}
		if err := p.a.Close(); err != nil {
			t.Errorf("Close: got %v; want nil", err)
		}
		if err := p.cb.waitClosed(t); err != nil {
			t.Errorf("peer Closed: got %v; want nil", err)
		}
	})
}

// seqHandler checks that messages carry 0, 1, 2, ... and signals at want.
type seqHandler struct {
	next    uint64
	want    uint64
	bad     atomic.Value // first error
	done    chan struct{}
	dead    atomic.Int64
	closedC chan error
}

func newSeqHandler(want int) *seqHandler {
	return &seqHandler{want: uint64(want), done: make(chan struct{}), closedC: make(chan error, 1)}
}

func (h *seqHandler) Deliver(env *Envelope) {
	b, ok := env.Message.([]byte)
	if !ok || len(b) < 8 {
		h.bad.CompareAndSwap(nil, fmt.Errorf("message %d: got %T", h.next, env.Message))
		return
	}
	if n := binary.BigEndian.Uint64(b); n != h.next {
		h.bad.CompareAndSwap(nil, fmt.Errorf("got message %d; want %d", n, h.next))
	}
	h.next++
	if h.next == h.want {
		close(h.done)
	}
}
func (h *seqHandler) DeadLetter(*Envelope, error) { h.dead.Add(1) }
func (h *seqHandler) Closed(err error)            { h.closedC <- err }

// TestEndpointManyInOrder sends manyMessages (1M without the race detector)
// over OS pipes and a tenth over the other streams: all arrive, in order.
func TestEndpointManyInOrder(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		n := manyMessages
		if tr.name != "os.Pipe" {
			n /= 10
		}
		x, y := tr.make(t)
		h := newSeqHandler(n)
		a := newTestEndpoint(t, x, HandlerFuncs{})
		b := newTestEndpoint(t, y, h)
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		target := pa.NewPID("node/1", "sink")
		ctx := context.Background()
		var payload [64]byte
		env := &Envelope{Target: target}
		for i := range n {
			binary.BigEndian.PutUint64(payload[:], uint64(i))
			env.Message = payload[:]
			if err := a.Send(ctx, env); err != nil {
				t.Fatalf("Send %d: %v", i, err)
			}
		}
		select {
		case <-h.done:
		case <-time.After(testTimeout):
			t.Fatalf("got %d messages; want %d", h.next, n)
		}
		if err := h.bad.Load(); err != nil {
			t.Fatal(err)
		}
		if d := h.dead.Load(); d != 0 {
			t.Fatalf("got %d dead letters; want 0", d)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("Close: got %v; want nil", err)
		}
		if err := <-h.closedC; err != nil {
			t.Fatalf("peer Closed: got %v; want nil", err)
		}
	})
}

// TestEndpointLargeMessage sends one 64 MiB []byte each way.
func TestEndpointLargeMessage(t *testing.T) {
	t.Parallel()
	big := make([]byte, 64<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(big); i += 8 {
		binary.LittleEndian.PutUint64(big[i:], rng.Uint64())
	}
	eachTransport(t, func(t *testing.T, tr transport) {
		p := newPair(t, tr, nil)
		ctx := context.Background()
		target := pa.NewPID("node/1", "big")
		for _, s := range []struct {
			from *Endpoint
			to   *collector
		}{{p.a, p.cb}, {p.b, p.ca}} {
			if err := s.from.Send(ctx, &Envelope{Target: target, Message: big}); err != nil {
				t.Fatal(err)
			}
			if err := s.from.Send(ctx, &Envelope{Target: target, Message: "after"}); err != nil {
				t.Fatal(err)
			}
			got, _ := s.to.wait(t, 2)
			if b, ok := got[0].Message.([]byte); !ok || !bytes.Equal(b, big) {
				t.Fatalf("got %T of %d bytes; want the 64 MiB sent", got[0].Message, len(b))
			}
			if got[1].Message != "after" {
				t.Fatalf("got %v after the large message; want \"after\"", got[1].Message)
			}
		}
	})
}

// TestEndpointSaturatedBothWays fills both directions at once with small
// queues while each handler answers every message from its reader
// goroutine: the readers must never wait on their own writers.
func TestEndpointSaturatedBothWays(t *testing.T) {
	t.Parallel()
	n := 5000
	if raceEnabled {
		n = 2000
	}
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		payload := bytes.Repeat([]byte("x"), 1000)
		type side struct {
			e                     *Endpoint
			pings, replies, pongs atomic.Int64
			done                  chan struct{}
			doneOnce              sync.Once
			replyError            atomic.Value
		}
		var sides [2]*side
		for i, conn := range []io.ReadWriteCloser{x, y} {
			s := &side{done: make(chan struct{})}
			sides[i] = s
			h := HandlerFuncs{OnDeliver: func(env *Envelope) {
				switch {
				case env.Lane == LaneSystem:
					s.pongs.Add(1)
				case env.Sender == nil:
					s.replies.Add(1)
				default:
					s.pings.Add(1)
					// Reply from the reader goroutine, on the user lane of a
					// full link: this must overflow the bound, not block.
					if err := s.e.Send(context.Background(), &Envelope{Target: env.Sender, Message: payload}); err != nil {
						s.replyError.CompareAndSwap(nil, err)
					}
					// And a system-lane pong, which never blocks.
					if err := s.e.Send(context.Background(), &Envelope{Lane: LaneSystem, Target: env.Sender}); err != nil {
						s.replyError.CompareAndSwap(nil, err)
					}
				}
				if s.pings.Load() == int64(n) && s.replies.Load() == int64(n) && s.pongs.Load() == int64(n) {
					s.doneOnce.Do(func() { close(s.done) })
				}
			}}
			s.e = newTestEndpoint(t, conn, h, WithUserQueue(2), WithUserQueueBytes(2048), WithReadBuffer(4096))
		}
		for _, s := range sides {
			if err := s.e.Start(); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for i, s := range sides {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				from := pa.NewPID(fmt.Sprint("side", i), "pinger")
				for range n {
					if err := s.e.Send(ctx, &Envelope{Sender: from, Message: payload}); err != nil {
						t.Errorf("side %d: Send: %v", i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for i, s := range sides {
			select {
			case <-s.done:
			case <-time.After(testTimeout):
				t.Fatalf("side %d: got %d pings, %d replies, %d pongs; want %d each (deadlock?)", i, s.pings.Load(), s.replies.Load(), s.pongs.Load(), n)
			}
			if err := s.replyError.Load(); err != nil {
				t.Errorf("side %d: reply: %v", i, err)
			}
		}
	})
}

// TestEndpointBackpressure stalls the writer and fills the user lane: Send
// blocks until room or its context ends, the system lane never blocks, and
// nothing is lost or reordered.
func TestEndpointBackpressure(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		sx := newStallConn(x)
		cb := newCollector()
		const queue = 4
		a := newTestEndpoint(t, sx, HandlerFuncs{}, WithUserQueue(queue))
		b := newTestEndpoint(t, y, cb)
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		bg := context.Background()
		sx.stall()
		next := 0
		send := func(ctx context.Context, lane Lane) error {
			err := a.Send(ctx, &Envelope{Lane: lane, Message: next})
			if err == nil {
				next++
			}
			return err
		}
		// The first message reaches the writer, which stalls in Write.
		if err := send(bg, LaneUser); err != nil {
			t.Fatal(err)
		}
		<-sx.entered
		for range queue {
			if err := send(bg, LaneUser); err != nil {
				t.Fatal(err)
			}
		}
		// Full: a bounded Send gives up with ErrQueueFull.
		ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
		err := send(ctx, LaneUser)
		cancel()
		if !errors.Is(err, ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send on a full lane: got %v; want ErrQueueFull wrapping context.DeadlineExceeded", err)
		}
		// The system lane does not block, even with a context already done.
		done, cancelDone := context.WithCancel(bg)
		cancelDone()
		if err := send(done, LaneSystem); err != nil {
			t.Fatalf("system-lane Send on a full link: got %v; want nil", err)
		}
		// An unbounded Send waits for room, and gets it when the writer moves.
		blocked := make(chan error, 1)
		go func() { blocked <- a.Send(bg, &Envelope{Message: -1}) }()
		testutil.Eventually(t, "the sender to wait for room", func() bool {
			a.out.mu.Lock()
			defer a.out.mu.Unlock()
			return a.out.room != nil
		})
		select {
		case err := <-blocked:
			t.Fatalf("Send on a full lane returned %v while the writer was stalled", err)
		default:
		}
		sx.release()
		if err := <-blocked; err != nil {
			t.Fatalf("blocked Send: got %v; want nil", err)
		}
		got, _ := cb.wait(t, next+1)
		for i := range next {
			if got[i].Message != i {
				t.Fatalf("message %d: got %v; want %d", i, got[i].Message, i)
			}
		}
		if got[next].Message != -1 {
			t.Fatalf("last message: got %v; want -1", got[next].Message)
		}
	})
}

// TestEndpointSendErrors: a message that cannot be sent leaves nothing in the
// queue and the link (and its symbol table) intact.
func TestEndpointSendErrors(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		// b accepts frames of 4 KiB only: the handshake tells a.
		p := newPair(t, tr, nil, WithMaxFrame(4<<10))
		ctx := context.Background()
		target := pa.NewPID("fresh/address", "x")
		for _, c := range []struct {
			name string
			msg  any
			want error
		}{
			{"unregistered", struct{ A int }{1}, ErrTypeNotRegistered},
			{"encode fails", &testBroken{FailEncode: true}, ErrEncode},
			{"larger than the peer's frame", make([]byte, 5<<10), ErrMessageTooLarge},
			{"large string", string(make([]byte, 4<<10)), ErrMessageTooLarge},
		} {
			err := p.a.Send(ctx, &Envelope{Target: target, Message: c.msg})
			if !errors.Is(err, c.want) {
				t.Errorf("%s: got %v; want %v", c.name, err, c.want)
			}
		}
		if err := p.a.Send(ctx, &Envelope{Target: target, Message: make([]byte, 3<<10)}); err != nil {
			t.Fatalf("a message within the peer's limit: %v", err)
		}
		if err := p.a.Send(ctx, &Envelope{Target: target, Message: "ok"}); err != nil {
			t.Fatal(err)
		}
		got, reasons := p.cb.wait(t, 2)
		if len(got[0].Message.([]byte)) != 3<<10 || got[1].Message != "ok" || reasons[0] != nil || reasons[1] != nil {
			t.Fatalf("got %T, %v (%v); want 3 KiB, \"ok\"", got[0].Message, got[1].Message, reasons)
		}
		if got[1].Target.Address != "fresh/address" {
			t.Errorf("target address %q; want fresh/address", got[1].Target.Address)
		}
	})
}

func TestEndpointNothingQueuedOnError(t *testing.T) {
	t.Parallel()
	x, y, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	e := newTestEndpoint(t, x, HandlerFuncs{}, WithMaxFrame(4<<10))
	for _, m := range []any{struct{}{}, &testBroken{FailEncode: true}, make([]byte, 8<<10)} {
		if err := e.Send(context.Background(), &Envelope{Target: pa.NewPID("addr", "id"), Message: m}); err == nil {
			t.Fatalf("Send %T: got nil; want an error", m)
		}
	}
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	if !e.out.cur.empty() || e.out.userCount != 0 || len(e.out.enc.symOrder) != 0 {
		t.Errorf("after failed sends: %d bytes, %d user messages, symbols %v queued; want none", len(e.out.cur.buf), e.out.userCount, e.out.enc.symOrder)
	}
}

// TestEndpointSendBeforeStart: sends before Start are held, then delivered.
func TestEndpointSendBeforeStart(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		cb := newCollector()
		a := newTestEndpoint(t, x, HandlerFuncs{})
		b := newTestEndpoint(t, y, cb)
		ctx := context.Background()
		for i := range 10 {
			lane := Lane(i % 2)
			if err := a.Send(ctx, &Envelope{Lane: lane, Message: i}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		got, _ := cb.wait(t, 10)
		for i, g := range got {
			if g.Message != i || g.Lane != Lane(i%2) {
				t.Errorf("message %d: got %v on %v; want %d on %v", i, g.Message, g.Lane, i, Lane(i%2))
			}
		}
	})
}

func TestEndpointClose(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		p := newPair(t, tr, nil)
		ctx := context.Background()
		// What is queued at Close is flushed before the goodbye.
		const n = 1000
		for i := range n {
			if err := p.a.Send(ctx, &Envelope{Message: i}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.a.Close(); err != nil {
			t.Fatalf("Close: got %v; want nil", err)
		}
		select {
		case <-p.a.Done():
		default:
			t.Fatal("Close returned before Done")
		}
		if err := p.a.Close(); err != nil {
			t.Fatalf("second Close: got %v; want nil", err)
		}
		if err := p.ca.waitClosed(t); err != nil || p.ca.closedCount() != 1 {
			t.Fatalf("Closed: got %v, %d calls; want nil, 1", err, p.ca.closedCount())
		}
		if err := p.cb.waitClosed(t); err != nil {
			t.Fatalf("peer Closed: got %v; want nil", err)
		}
		<-p.b.Done()
		if got := p.cb.count(); got != n {
			t.Fatalf("peer got %d messages; want %d", got, n)
		}
		if err := p.a.Send(ctx, &Envelope{Message: 1}); !errors.Is(err, ErrClosed) {
			t.Errorf("Send after Close: got %v; want ErrClosed", err)
		}
		if err := p.b.Send(ctx, &Envelope{Message: 1}); !errors.Is(err, ErrClosed) {
			t.Errorf("peer Send after the goodbye: got %v; want ErrClosed", err)
		}
		if err := p.a.Start(); !errors.Is(err, ErrAlreadyStarted) {
			t.Errorf("Start after Close: got %v; want ErrAlreadyStarted", err)
		}
		if p.a.Err() != nil || p.b.Err() != nil {
			t.Errorf("Err after a clean goodbye: got %v, %v; want nil, nil", p.a.Err(), p.b.Err())
		}
	})
}

func TestEndpointCloseBothAtOnce(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		p := newPair(t, tr, nil)
		errs := make(chan error, 4)
		for _, e := range []*Endpoint{p.a, p.b, p.a, p.b} {
			go func() { errs <- e.Close() }()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Errorf("Close: got %v; want nil", err)
			}
		}
		if p.ca.closedCount() != 1 || p.cb.closedCount() != 1 {
			t.Errorf("Closed called %d and %d times; want once each", p.ca.closedCount(), p.cb.closedCount())
		}
	})
}

func TestEndpointCloseFromHandler(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		cb := newCollector()
		var b *Endpoint
		closeErr := make(chan error, 1)
		cb.onDel = func(env *Envelope) {
			if env.Message == "close" {
				closeErr <- b.Close() // on the reader goroutine: must not wait for itself
			}
		}
		ca := newCollector()
		a := newTestEndpoint(t, x, ca)
		b = newTestEndpoint(t, y, cb)
		a.Start()
		b.Start()
		for _, m := range []any{"one", "close", "after close"} {
			err := a.Send(context.Background(), &Envelope{Message: m})
			// b's goodbye may reach a before the last send: then a refuses it.
			if err != nil && !(m == "after close" && errors.Is(err, ErrClosed)) {
				t.Fatalf("send %v: %v", m, err)
			}
		}
		if err := <-closeErr; err != nil {
			t.Fatalf("Close from the handler: got %v; want nil", err)
		}
		if err := cb.waitClosed(t); err != nil {
			t.Fatalf("Closed: got %v; want nil", err)
		}
		if err := ca.waitClosed(t); err != nil {
			t.Fatalf("peer Closed: got %v; want nil", err)
		}
		<-a.Done()
		<-b.Done()
	})
}

func TestEndpointAbort(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		p := newPair(t, tr, nil)
		p.a.Abort()
		select {
		case <-p.a.Done():
		default:
			t.Fatal("Abort returned before Done")
		}
		if err := p.a.Err(); !errors.Is(err, ErrClosed) {
			t.Errorf("Err after Abort: got %v; want ErrClosed", err)
		}
		if err := p.cb.waitClosed(t); !errors.Is(err, ErrPeerGone) {
			t.Errorf("peer Closed: got %v; want ErrPeerGone", err)
		}
		if err := p.b.Send(context.Background(), &Envelope{Message: 1}); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrPeerGone) {
			t.Errorf("peer Send after the link was lost: got %v; want ErrClosed wrapping ErrPeerGone", err)
		}
		p.a.Abort() // idempotent
		if err := p.a.Close(); err != nil {
			t.Errorf("Close after Abort: got %v; want nil", err)
		}
		if p.ca.closedCount() != 1 {
			t.Errorf("Closed called %d times; want 1", p.ca.closedCount())
		}
	})
}

// TestEndpointAbortFromHandler: Abort inside Deliver returns at once and
// nothing more is delivered, not even the rest of the frame being read.
func TestEndpointAbortFromHandler(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		cb := newCollector()
		var b *Endpoint
		cb.onDel = func(env *Envelope) {
			if env.Message == "abort" {
				b.Abort()
			}
		}
		a := newTestEndpoint(t, x, HandlerFuncs{})
		b = newTestEndpoint(t, y, cb)
		for _, m := range []any{"one", "abort", "never"} { // one frame: queued before Start
			if err := a.Send(context.Background(), &Envelope{Message: m}); err != nil {
				t.Fatal(err)
			}
		}
		b.Start()
		a.Start()
		if err := cb.waitClosed(t); !errors.Is(err, ErrClosed) {
			t.Fatalf("Closed: got %v; want ErrClosed", err)
		}
		<-b.Done()
		if got := cb.count(); got != 2 {
			t.Errorf("delivered %d messages; want 2 (none after Abort)", got)
		}
	})
}

// TestEndpointCloseFromClosed: Close and Abort inside Handler.Closed return.
func TestEndpointCloseFromClosed(t *testing.T) {
	t.Parallel()
	for _, started := range []bool{true, false} {
		x, y, err := Pipe(0)
		if err != nil {
			t.Fatal(err)
		}
		var e *Endpoint
		returned := make(chan struct{})
		e, err = NewEndpoint(x, HandlerFuncs{OnClosed: func(error) {
			e.Close()
			e.Abort()
			close(returned)
		}})
		if err != nil {
			t.Fatal(err)
		}
		if started {
			e.Start()
		}
		y.Close() // the peer goes away
		if !started {
			e.Abort()
		}
		select {
		case <-returned:
		case <-time.After(testTimeout):
			t.Fatalf("started=%v: Close inside Closed did not return", started)
		}
		<-e.Done()
	}
}

func TestEndpointCloseNeverStarted(t *testing.T) {
	t.Parallel()
	x, y, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	c := newCollector()
	e, err := NewEndpoint(x, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Send(context.Background(), &Envelope{Message: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: got %v; want nil", err)
	}
	if err := c.waitClosed(t); !errors.Is(err, ErrClosed) {
		t.Fatalf("Closed: got %v; want ErrClosed", err)
	}
	if err := e.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: got %v; want ErrClosed", err)
	}
	if _, err := e.Handshake(context.Background(), Hello{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Handshake after Close: got %v; want ErrClosed", err)
	}
	if err := e.Send(context.Background(), &Envelope{Message: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: got %v; want ErrClosed", err)
	}
}

// TestEndpointCloseTimeout: a peer that never says goodbye costs Close its
// timeout, then the link is aborted.
func TestEndpointCloseTimeout(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, y); close(drained) }() // reads, never answers
		defer func() { y.Close(); <-drained }()
		e := newTestEndpoint(t, x, HandlerFuncs{}, WithGoodbyeTimeout(50*time.Millisecond))
		e.Start()
		if err := e.Close(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: got %v; want context.DeadlineExceeded", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := e.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown after Close: got %v", err)
		}
	})
}

func TestEndpointStartTwice(t *testing.T) {
	t.Parallel()
	p := newPair(t, transports[1], nil)
	if err := p.a.Start(); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("second Start: got %v; want ErrAlreadyStarted", err)
	}
	if _, err := p.a.Handshake(context.Background(), Hello{}); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("Handshake after Start: got %v; want ErrAlreadyStarted", err)
	}
}

// TestEndpointHandlerPanics: a panicking handler loses its message, not the link.
func TestEndpointHandlerPanics(t *testing.T) {
	t.Parallel()
	x, y, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	got := make(chan any, 2)
	a := newTestEndpoint(t, x, HandlerFuncs{})
	b := newTestEndpoint(t, y, HandlerFuncs{OnDeliver: func(env *Envelope) {
		if env.Message == "panic" {
			panic("handler panics on purpose")
		}
		got <- env.Message
	}}, WithLogger(logs.logger(zerolog.InfoLevel)))
	a.Start()
	b.Start()
	for _, m := range []any{"panic", "alive"} {
		if err := a.Send(context.Background(), &Envelope{Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	if m := <-got; m != "alive" {
		t.Fatalf("got %v; want alive", m)
	}
	if lines := logs.lines(); len(lines) != 1 || !bytes.Contains([]byte(lines[0]), []byte("handler panicked")) {
		t.Errorf("log: got %q; want one line about the panic", lines)
	}
}

// TestEndpointConcurrentSenders: each sender's messages arrive in its order.
func TestEndpointConcurrentSenders(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		const senders, each = 8, 2000
		p := newPair(t, tr, []Option{WithUserQueue(16)})
		var wg sync.WaitGroup
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					lane := LaneUser
					if i%5 == 0 {
						lane = LaneSystem
					}
					if err := p.a.Send(context.Background(), &Envelope{Lane: lane, Message: [2]int{s, i}}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		got, _ := p.cb.wait(t, senders*each)
		next := make([]int, senders)
		for _, g := range got {
			v := g.Message.([2]int)
			s, i := v[0], v[1]
			if i != next[s] {
				t.Fatalf("sender %d: got message %d; want %d", s, i, next[s])
			}
			next[s]++
		}
	})
}

func TestNewEndpointOptions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		opt  Option
	}{
		{"WithMaxFrame too small", WithMaxFrame(minFrame - 1)},
		{"WithMaxFrame too large", WithMaxFrame(maxFrameLimit + 1)},
		{"WithUserQueue 0", WithUserQueue(0)},
		{"WithUserQueueBytes 0", WithUserQueueBytes(0)},
		{"WithReadBuffer small", WithReadBuffer(100)},
		{"WithGoodbyeTimeout 0", WithGoodbyeTimeout(0)},
	} {
		x, y := io.Pipe()
		_, err := NewEndpoint(struct {
			io.Reader
			io.WriteCloser
		}{x, y}, HandlerFuncs{}, c.opt)
		if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: got %v; want ErrInvalidOption", c.name, err)
		}
	}
	x, y := io.Pipe()
	if _, err := NewEndpoint(struct {
		io.Reader
		io.WriteCloser
	}{x, y}, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("nil Handler: got %v; want ErrInvalidOption", err)
	}
}

// TestEndpointDirectWrite: with direct writes on or off, requests and replies
// flow in order (the direct path writes from the sender; the other hands
// every batch to the writer goroutine).
func TestEndpointDirectWrite(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			t.Parallel()
			p := newPair(t, transports[1], []Option{WithDirectWrite(on)})
			if (p.a.out.direct != nil) != on {
				t.Fatalf("direct write %v: direct writer set: %v", on, p.a.out.direct != nil)
			}
			for i := range 200 {
				if err := p.a.Send(context.Background(), &Envelope{Message: i}); err != nil {
					t.Fatal(err)
				}
				got, _ := p.cb.wait(t, i+1)
				if got[i].Message != i {
					t.Fatalf("got %v; want %d", got[i].Message, i)
				}
			}
		})
	}
}

// TestRelayOverflowBounded: a reader goroutine relaying into another link
// that does not drain never blocks, and its overflow is bounded: past
// readerOverflow × the user-lane bound the send fails with ErrQueueFull.
func TestRelayOverflowBounded(t *testing.T) {
	t.Parallel()
	const bound = 8
	// The link relayed into: its far side never reads, so nothing drains.
	x, y := net.Pipe()
	t.Cleanup(func() { x.Close(); y.Close() })
	out := newTestEndpoint(t, x, newCollector(), WithUserQueue(bound))
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	p := newPair(t, transports[0], nil)
	var full, sent atomic.Int32
	relayed := make(chan struct{}, 1<<10)
	p.cb.onDel = func(env *Envelope) { // on b's reader goroutine
		switch err := out.Send(context.Background(), &Envelope{Message: env.Message}); {
		case err == nil:
			sent.Add(1)
		case errors.Is(err, ErrQueueFull):
			full.Add(1)
		default:
			t.Errorf("relay: got %v; want nil or ErrQueueFull", err)
		}
		relayed <- struct{}{}
	}
	const n = 10 * bound
	for i := 0; i < n; i++ {
		if err := p.a.Send(context.Background(), &Envelope{Message: i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		select {
		case <-relayed:
		case <-time.After(testTimeout):
			t.Fatalf("relay %d never returned: a reader blocked", i)
		}
	}
	// At most one batch taken by the (now blocked) writer plus the overflow.
	if limit := int32(2 * readerOverflow * bound); full.Load() == 0 || sent.Load() > limit {
		t.Fatalf("sent %d, refused %d; want at most %d sent and the rest refused", sent.Load(), full.Load(), limit)
	}
}

// TestRelayOverflowBoundedInBytes: the relay overflow is bounded in bytes
// too: large messages are refused past readerOverflow × the byte bound,
// whatever the count bound says.
func TestRelayOverflowBoundedInBytes(t *testing.T) {
	t.Parallel()
	const byteBound, size = 4 << 10, 1 << 10
	x, y := net.Pipe()
	t.Cleanup(func() { x.Close(); y.Close() })
	out := newTestEndpoint(t, x, newCollector(), WithUserQueue(1<<20), WithUserQueueBytes(byteBound))
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	p := newPair(t, transports[0], nil)
	var full, sent atomic.Int32
	relayed := make(chan struct{}, 1<<10)
	payload := make([]byte, size)
	p.cb.onDel = func(*Envelope) {
		switch err := out.Send(context.Background(), &Envelope{Message: payload}); {
		case err == nil:
			sent.Add(1)
		case errors.Is(err, ErrQueueFull):
			full.Add(1)
		default:
			t.Errorf("relay: got %v; want nil or ErrQueueFull", err)
		}
		relayed <- struct{}{}
	}
	const n = 100
	for i := 0; i < n; i++ {
		if err := p.a.Send(context.Background(), &Envelope{Message: i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		select {
		case <-relayed:
		case <-time.After(testTimeout):
			t.Fatalf("relay %d never returned: a reader blocked", i)
		}
	}
	// At most one batch taken by the (now blocked) writer plus the overflow.
	if limit := int32(2*readerOverflow*byteBound/size + 2); full.Load() == 0 || sent.Load() > limit {
		t.Fatalf("sent %d, refused %d; want at most %d sent and the rest refused", sent.Load(), full.Load(), limit)
	}
}

// TestSendRightAfterStartWritesDirectly: a send right after Start is written
// by its sender, even before the writer goroutine has first run. It used to
// be held for that goroutine: a child's first request (sent as Spawn
// returns) waited for another thread to wake, about 70 µs on the 2-core VM.
func TestSendRightAfterStartWritesDirectly(t *testing.T) {
	t.Parallel()
	x, y := transports[1].make(t)
	cb := newCollector()
	a := newTestEndpoint(t, x, newCollector(), WithLocalAddress("node"))
	b := newTestEndpoint(t, y, cb, WithLocalAddress("node/1"))
	handshake(t, a, b)
	release := make(chan struct{})
	defer close(release) // before the endpoints' cleanup
	hold := func(e *Endpoint) {
		if e == a {
			<-release
		}
	}
	writerStarting.Store(&hold)
	t.Cleanup(func() { writerStarting.CompareAndSwap(&hold, nil) })
	for _, e := range []*Endpoint{a, b} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Send(context.Background(), &Envelope{Message: "first"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := cb.wait(t, 1); got[0].Message != "first" {
		t.Fatalf("got %v; want first", got[0].Message)
	}
}

// TestFirstReadAfterHandshakePolls: a link's first read after the handshake
// polls for its first message (WithSpinWait), which usually follows at once:
// messages held until the link came up, or the first request of a Spawn's
// caller. Sleeping on the poller instead cost the child's first message a
// thread's wake-up on each side.
func TestFirstReadAfterHandshakePolls(t *testing.T) {
	t.Parallel()
	p := newPair(t, transports[1], nil)
	deadline := time.Now().Add(testTimeout)
	for _, e := range []*Endpoint{p.a, p.b} {
		for e.ReaderStats().Polls == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the first read after the handshake never polled", e.cfg.localAddress)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
