package mailbox

import (
	"context"
	"github.com/procactor/procactor/internal/testutil"
	"io"
	"syscall"
	"testing"
)

func sumLanes(v [2]uint64) uint64 { return v[0] + v[1] }

// TestTrafficCounts: what one side counts out, per lane, is what the other
// counts in, and the bytes are the encoded sizes Send reported.
func TestTrafficCounts(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		p := newPair(t, tr, nil)
		const users, systems = 5, 3
		var want Traffic
		for i := range users + systems {
			lane := LaneUser
			if i >= users {
				lane = LaneSystem
			}
			_, size, err := p.a.SendNumbered(context.Background(), &Envelope{Lane: lane, Message: i})
			if err != nil {
				t.Fatal(err)
			}
			want.MsgsOut[lane]++
			want.BytesOut[lane] += uint64(size)
		}
		p.cb.wait(t, users+systems)
		// The writer counts once its write has returned and the reader once
		// its frame is handed over: both may trail the delivery a little.
		testutil.Eventually(t, "a's writer to count", func() bool { return sumLanes(p.a.Traffic().MsgsOut) == users+systems })
		testutil.Eventually(t, "b's reader to count", func() bool { return sumLanes(p.b.Traffic().MsgsIn) == users+systems })
		a, b := p.a.Traffic(), p.b.Traffic()
		if a.MsgsOut != want.MsgsOut || a.BytesOut != want.BytesOut {
			t.Errorf("a out: got %v msgs, %v bytes; want %v, %v", a.MsgsOut, a.BytesOut, want.MsgsOut, want.BytesOut)
		}
		if b.MsgsIn != a.MsgsOut || b.BytesIn != a.BytesOut {
			t.Errorf("b in: got %v msgs, %v bytes; want a's out %v, %v", b.MsgsIn, b.BytesIn, a.MsgsOut, a.BytesOut)
		}
		if a.Writes < 1 || a.Writes > users+systems {
			t.Errorf("a writes: got %d; want 1 to %d", a.Writes, users+systems)
		}
		if a.MsgsIn != [2]uint64{} || b.MsgsOut != [2]uint64{} || a.DeadLetters+b.DeadLetters != 0 {
			t.Errorf("reverse direction or dead letters counted: a %+v, b %+v", a, b)
		}
	})
}

// TestTrafficDeadLetters: a message that arrives but does not decode counts
// as received and as a dead letter; the link goes on.
func TestTrafficDeadLetters(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		bad := rawMsg(byte(flagTarget), byte(symLiteral), "n", "t", 0, byte(kindTyped), byte(symLiteral), "no.such.Type", mustMsgpack(1))
		stream := frame(frameData, msgs(bad, aliveMsg))
		e, col, _ := hostilePeer(t, tr, stream, false)
		col.wait(t, 2)
		testutil.Eventually(t, "the reader to count", func() bool { return sumLanes(e.Traffic().MsgsIn) == 2 })
		got := e.Traffic()
		wantBytes := uint64(2*msgPrefixSize + len(bad) + len(aliveMsg))
		if got.DeadLetters != 1 || sumLanes(got.BytesIn) != wantBytes {
			t.Errorf("got %d dead letters, %d bytes in; want 1, %d", got.DeadLetters, sumLanes(got.BytesIn), wantBytes)
		}
	})
}

// TestTrafficQueued: Queued counts what waits for a stalled writer, per
// lane, and nothing once the writer has moved on.
func TestTrafficQueued(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, y := tr.make(t)
		sx := newStallConn(x)
		cb := newCollector()
		a := newTestEndpoint(t, sx, HandlerFuncs{})
		b := newTestEndpoint(t, y, cb)
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		bg := context.Background()
		sx.stall()
		if err := a.Send(bg, &Envelope{Message: 0}); err != nil {
			t.Fatal(err)
		}
		<-sx.entered // the writer holds the first message in its write
		for i := 1; i <= 3; i++ {
			if err := a.Send(bg, &Envelope{Message: i}); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Send(bg, &Envelope{Lane: LaneSystem, Message: 4}); err != nil {
			t.Fatal(err)
		}
		msgs, bytes, user := a.Queued()
		if msgs != 4 || user != 3 || bytes <= 0 {
			t.Errorf("queued behind a stalled write: got %d msgs (%d user), %d bytes; want 4 (3 user), some bytes", msgs, user, bytes)
		}
		sx.release()
		cb.wait(t, 5)
		testutil.Eventually(t, "the queue to drain", func() bool {
			m, by, u := a.Queued()
			return m == 0 && by == 0 && u == 0
		})
	})
}

// TestTrafficFinalWhenClosed: the counts an endpoint reports when its
// Handler.Closed runs are final. A sender that was writing directly as the
// link ended has counted its write by then: a link adds a lost stream's
// counts to its totals in Closed and never looks at that stream again, so
// a write counted later would be lost from them.
func TestTrafficFinalWhenClosed(t *testing.T) {
	x, y := transports[1].make(t) // os.Pipe: senders write directly
	var a *Endpoint
	seen := make(chan Traffic, 1)
	a = newTestEndpoint(t, x, HandlerFuncs{OnClosed: func(error) { seen <- a.Traffic() }})
	cb := newCollector()
	b := newTestEndpoint(t, y, cb)
	handshake(t, a, b)
	for _, e := range []*Endpoint{a, b} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	// The direct write has reached b, and a's link ends, before the sender
	// gets back to count it.
	a.out.direct.raw = afterWrite{RawConn: a.out.direct.raw, then: func() {
		cb.wait(t, 1)
		b.Abort()
		testutil.Eventually(t, "a's link to end", func() bool { return a.finishing.Load() })
	}}
	if err := a.Send(context.Background(), &Envelope{Message: 1}); err != nil {
		t.Fatal(err)
	}
	got := testutil.Receive(t, seen, "a's Closed")
	if sumLanes(got.MsgsOut) != 1 || got.Writes != 1 {
		t.Fatalf("a's counts in Closed: %+v; want the direct write counted (1 message, 1 write)", got)
	}
}

// TestTrafficCountsDeliveredBeforeAbort: a message the reader has handed
// over is counted in the Traffic Closed sees, even when the link ends in
// the middle of its frame (the rest of the frame is not delivered). The
// reader counts a frame's messages once it has handed over the last one:
// a link that ended before that used to lose the ones already delivered
// from its totals.
func TestTrafficCountsDeliveredBeforeAbort(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		x, raw := tr.make(t)
		var e *Endpoint
		seen := make(chan Traffic, 1)
		delivered := 0
		e = newTestEndpoint(t, x, HandlerFuncs{
			OnDeliver: func(*Envelope) {
				delivered++
				e.Abort() // on the reader: the link ends after this message
			},
			OnClosed: func(error) { seen <- e.Traffic() },
		})
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		stream := frame(frameData, msgs(aliveMsg, aliveMsg, aliveMsg))
		wrote, drained := make(chan struct{}), make(chan struct{})
		go func() { defer close(wrote); raw.Write(stream) }() // fails once e has closed: fine
		go func() { defer close(drained); io.Copy(io.Discard, raw) }()
		t.Cleanup(func() { raw.Close(); <-wrote; <-drained })
		got := testutil.Receive(t, seen, "Closed")
		if delivered != 1 || sumLanes(got.MsgsIn) != 1 || sumLanes(got.BytesIn) != uint64(msgPrefixSize+len(aliveMsg)) {
			t.Fatalf("delivered %d; counts in Closed: %+v; want the 1 message delivered counted (%d bytes)",
				delivered, got, msgPrefixSize+len(aliveMsg))
		}
	})
}

// afterWrite is a syscall.RawConn whose Write calls then once the write is
// made: a direct write paused before its sender counts it.
type afterWrite struct {
	syscall.RawConn
	then func()
}

func (w afterWrite) Write(f func(fd uintptr) bool) error {
	err := w.RawConn.Write(f)
	w.then()
	return err
}
