package mailbox

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// ackCollector is a collector that also records the peer's acks.
type ackCollector struct {
	*collector
	mu   sync.Mutex
	acks []uint64
	got  chan uint64 // every ack, in order
	// onAck, when set, runs at each ack before it is recorded.
	onAck func(n uint64)
}

func newAckCollector() *ackCollector {
	return &ackCollector{collector: newCollector(), got: make(chan uint64, 1024)}
}

func (c *ackCollector) Acked(n uint64) {
	if c.onAck != nil {
		c.onAck(n)
	}
	c.mu.Lock()
	c.acks = append(c.acks, n)
	c.mu.Unlock()
	c.got <- n
}

// waitAck waits until an ack of at least n has arrived and returns the acks
// seen so far.
func (c *ackCollector) waitAck(t *testing.T, n uint64) []uint64 {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case v := <-c.got:
			if v >= n {
				c.mu.Lock()
				defer c.mu.Unlock()
				return append([]uint64(nil), c.acks...)
			}
		case <-deadline:
			t.Fatalf("no ack of %d arrived", n)
		}
	}
}

// ackPair is two started endpoints whose hellos announce capsA and capsB.
func ackPair(t *testing.T, tr transport, capsA, capsB uint64, opts ...Option) (a, b *Endpoint, ca, cb *ackCollector) {
	t.Helper()
	x, y := tr.make(t)
	ca, cb = newAckCollector(), newAckCollector()
	a = newTestEndpoint(t, x, ca, append(opts, WithLocalAddress("node"))...)
	b = newTestEndpoint(t, y, cb, append(opts, WithLocalAddress("node/1"))...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cookie := NewCookie()
	errs := make(chan error, 1)
	go func() {
		_, err := b.Handshake(ctx, Hello{Address: "node/1", Caps: capsB, Cookie: cookie})
		errs <- err
	}()
	_, err := a.Handshake(ctx, Hello{Address: "node", Caps: capsA, Cookie: cookie})
	if errB := <-errs; err != nil || errB != nil {
		t.Fatalf("handshake: got %v, %v; want nil, nil", err, errB)
	}
	for _, e := range []*Endpoint{a, b} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, ca, cb
}

// TestSendNumbered: numbered messages are numbered 1, 2, ... in the order
// they are queued, unnumbered ones take no number, and size is the encoded
// length (prefix included).
func TestSendNumbered(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		a, _, _, cb := ackPair(t, tr, CapAck, CapAck)
		ctx := context.Background()
		var want uint64
		for i := range 10 {
			env := &Envelope{Message: []byte("0123456789")}
			if i%3 == 0 {
				if err := a.Send(ctx, env); err != nil {
					t.Fatal(err)
				}
				continue
			}
			seq, size, err := a.SendNumbered(ctx, env)
			if err != nil {
				t.Fatal(err)
			}
			want++
			// flags, kind, ten bytes, plus the length prefix.
			if seq != want || size != msgPrefixSize+1+1+10 {
				t.Fatalf("message %d: seq, size = %d, %d; want %d, %d", i, seq, size, want, msgPrefixSize+12)
			}
		}
		cb.wait(t, 10)
	})
}

// TestAcknowledge: acks reach the peer's AckHandler in order, alone on an
// idle link (after the ack delay) and riding on later writes, and the last
// one before a goodbye is not lost.
func TestAcknowledge(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		a, b, ca, cb := ackPair(t, tr, CapAck, CapAck, WithAckDelay(time.Millisecond))
		for range 9 { // b may acknowledge what a numbered
			if _, _, err := a.SendNumbered(context.Background(), &Envelope{Message: "n"}); err != nil {
				t.Fatal(err)
			}
		}
		cb.wait(t, 9)
		// Idle: the ack is written alone.
		b.Acknowledge(3)
		if acks := ca.waitAck(t, 3); acks[len(acks)-1] != 3 {
			t.Fatalf("acks %v; want last 3", acks)
		}
		// A lower count is ignored; a higher one rides on a message.
		b.Acknowledge(2)
		b.Acknowledge(7)
		if err := b.Send(context.Background(), &Envelope{Message: "x"}); err != nil {
			t.Fatal(err)
		}
		acks := ca.waitAck(t, 7)
		for i := 1; i < len(acks); i++ {
			if acks[i] < acks[i-1] {
				t.Fatalf("acks %v decrease", acks)
			}
		}
		ca.wait(t, 1)
		// The last ack goes out before the goodbye.
		b.Acknowledge(9)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		ca.waitAck(t, 9)
	})
}

// TestAcknowledgeNeedsBothCaps: without CapAck on both sides no ack frame is
// written (a peer that does not know them would break the link).
func TestAcknowledgeNeedsBothCaps(t *testing.T) {
	t.Parallel()
	for _, caps := range [][2]uint64{{0, CapAck}, {CapAck, 0}} {
		a, b, ca, cb := ackPair(t, transports[1], caps[0], caps[1], WithAckDelay(time.Millisecond))
		a.Acknowledge(5)
		b.Acknowledge(5)
		// A message after the ack delay: an ack frame, had one been written,
		// would have arrived before it.
		time.Sleep(5 * time.Millisecond)
		ctx := context.Background()
		if err := a.Send(ctx, &Envelope{Message: "x"}); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(ctx, &Envelope{Message: "x"}); err != nil {
			t.Fatal(err)
		}
		ca.wait(t, 1)
		cb.wait(t, 1)
		for _, c := range []*ackCollector{ca, cb} {
			c.mu.Lock()
			n := len(c.acks)
			c.mu.Unlock()
			if n != 0 {
				t.Errorf("caps %v: %d acks arrived; want none", caps, n)
			}
		}
	}
}

// TestBadAckFrames: an ack frame that does not parse, goes back, or counts
// more messages than this side numbered closes the link with ErrProtocol
// (acks that are true get through first). An ack beyond what was sent
// was taken: the peer's retention dropped what it had not acknowledged
// yet, and ignored every true ack after it.
func TestBadAckFrames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		stream []byte
		acked  []uint64
	}{
		{"empty body", frame(frameAck, nil), nil},
		{"stray byte", frame(frameAck, []byte{5, 0}), nil},
		{"truncated varint", frame(frameAck, []byte{0x80}), nil},
		{"goes back", append(frame(frameAck, []byte{5}), frame(frameAck, []byte{4})...), []uint64{5}},
		{"beyond what was sent", append(frame(frameAck, []byte{6}), frame(frameAck, []byte{7})...), []uint64{6}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			x, y := transports[1].make(t)
			col := newAckCollector()
			e := newTestEndpoint(t, x, col)
			if err := e.Start(); err != nil {
				t.Fatal(err)
			}
			for range 6 {
				if _, _, err := e.SendNumbered(context.Background(), &Envelope{Message: "m"}); err != nil {
					t.Fatal(err)
				}
			}
			go func() { _, _ = y.Write(c.stream) }()
			if err := col.waitClosed(t); !errors.Is(err, ErrProtocol) {
				t.Fatalf("closed with %v; want ErrProtocol", err)
			}
			col.mu.Lock()
			acked := col.acks
			col.mu.Unlock()
			if !slices.Equal(acked, c.acked) {
				t.Errorf("acked %v; want %v", acked, c.acked)
			}
			y.Close()
		})
	}
}

// TestEncodedSize: EncodedSize is what Send reports for a message crossing a
// fresh link, large payloads included.
func TestEncodedSize(t *testing.T) {
	t.Parallel()
	a, _, _, cb := ackPair(t, transports[1], CapAck, CapAck)
	for i, env := range []*Envelope{
		{Message: "hello"},
		{Message: make([]byte, externThreshold+10)},
		{Lane: LaneSystem, Message: nil},
	} {
		want, err := EncodedSize(env)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := a.SendNumbered(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("message %d: Send says %d bytes, EncodedSize %d", i, got, want)
		}
	}
	cb.wait(t, 3)
	if _, err := EncodedSize(&Envelope{Message: struct{ X int }{1}}); !errors.Is(err, ErrTypeNotRegistered) {
		t.Errorf("unregistered type: got %v; want ErrTypeNotRegistered", err)
	}
}

// TestSendAcknowledging: the count given with a message reaches the peer
// after that message, never before it, even when the sender is slow to
// queue it (a hook sleeps past the ack delay: a count raised before the
// message is queued would be written alone meanwhile); a message refused
// is not queued, and its count is not acknowledged.
//
// Not parallel: the hook is the package's.
func TestSendAcknowledging(t *testing.T) {
	slow := func() { time.Sleep(5 * time.Millisecond) }
	beforeAckedQueue.Store(&slow)
	t.Cleanup(func() { beforeAckedQueue.Store(nil) })
	eachTransport(t, func(t *testing.T, tr transport) {
		a, b, ca, cb := ackPair(t, tr, CapAck, CapAck, WithAckDelay(time.Millisecond), WithMaxFrame(minFrame))
		var mu sync.Mutex
		deliveredAt := map[uint64]int{} // ack count -> messages a had been given then
		ca.onAck = func(n uint64) {
			ca.collector.mu.Lock()
			got := len(ca.collector.got)
			ca.collector.mu.Unlock()
			mu.Lock()
			deliveredAt[n] = got
			mu.Unlock()
		}
		ctx := context.Background()
		for range 3 {
			if _, _, err := a.SendNumbered(ctx, &Envelope{Message: "n"}); err != nil {
				t.Fatal(err)
			}
		}
		cb.wait(t, 3)
		if err := b.SendAcknowledging(ctx, &Envelope{Message: "notice"}, 2); err != nil {
			t.Fatal(err)
		}
		ca.waitAck(t, 2)
		mu.Lock()
		at := deliveredAt[2]
		mu.Unlock()
		if at != 1 {
			t.Fatalf("the ack of 2 came with %d messages delivered; want 1, the notice before it", at)
		}
		// Refused: neither the message nor its count goes out.
		err := b.SendAcknowledging(ctx, &Envelope{Message: make([]byte, minFrame+1)}, 3)
		if !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("oversized: %v; want ErrMessageTooLarge", err)
		}
		time.Sleep(5 * time.Millisecond) // ack delays
		if err := b.Send(ctx, &Envelope{Message: "after"}); err != nil {
			t.Fatal(err)
		}
		ca.wait(t, 2)
		ca.mu.Lock()
		acks := slices.Clone(ca.acks)
		ca.mu.Unlock()
		if slices.Contains(acks, 3) {
			t.Fatalf("acks %v: the refused message's count went out", acks)
		}
	})
}
