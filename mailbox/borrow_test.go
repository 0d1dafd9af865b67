package mailbox

import (
	"context"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// answers is a BorrowHandler: strings that start with "a" are answers
// (borrowable; each asks the reader to stand by), anything else is not. It
// records what it got, in order.
type answers struct {
	ep  *Endpoint
	mu  sync.Mutex
	got []string
}

func (h *answers) Deliver(env *Envelope) {
	s := env.Message.(string)
	h.mu.Lock()
	h.got = append(h.got, s)
	h.mu.Unlock()
	if strings.HasPrefix(s, "a") {
		h.ep.Standby()
	}
}

func (h *answers) Borrowable(env *Envelope) bool {
	s, _ := env.Message.(string)
	return strings.HasPrefix(s, "a")
}

func (h *answers) DeadLetter(*Envelope, error) {}
func (h *answers) Closed(error)                {}

func (h *answers) has(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, g := range h.got {
		if g == s {
			return true
		}
	}
	return false
}

func (h *answers) strings() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// borrowPair starts a (with the answers handler, its borrowing ticker
// ticking every tick) and b over tr.
func borrowPair(t *testing.T, tr transport, tick time.Duration) (h *answers, a, b *Endpoint) {
	t.Helper()
	x, y := tr.make(t)
	h = &answers{}
	a = newTestEndpoint(t, x, h, WithLocalAddress("node"))
	a.brw.every = tick
	h.ep = a
	b = newTestEndpoint(t, y, newCollector(), WithLocalAddress("node/1"))
	handshake(t, a, b)
	for _, e := range []*Endpoint{a, b} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return h, a, b
}

func sendTo(t *testing.T, e *Endpoint, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if err := e.Send(context.Background(), &Envelope{Target: pa.NewPID("node", "x"), Message: m}); err != nil {
			t.Fatal(err)
		}
	}
}

// standby waits until a's reader stands by after delivering an answer (its
// ticker must not end the standby meanwhile: a long tick).
func standby(t *testing.T, a *Endpoint) {
	t.Helper()
	testutil.Eventually(t, "the reader to stand by", func() bool { return a.brw.lease.Load() == leaseStandby })
}

func TestBorrowReadsOwnAnswer(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		h, a, b := borrowPair(t, tr, time.Hour)
		sendTo(t, b, "a0")
		standby(t, a)
		for i := 1; i <= 3; i++ {
			if !a.Borrow() {
				t.Fatalf("round %d: Borrow: got false; want true (the reader stands by)", i)
			}
			want := fmt.Sprintf("a%d", i)
			sendTo(t, b, want) // the peer's answer
			if !a.ReadBorrowed(func() bool { return h.has(want) }) {
				t.Fatalf("round %d: ReadBorrowed: got false; want true", i)
			}
			if a.Borrow() != true {
				t.Fatalf("round %d: the role did not go back to standby", i)
			}
			// Give it back for the next round the way a borrower that got
			// nothing does (the reader takes over, then stands by again
			// after the next answer).
			a.giveBack(false)
			sendTo(t, b, fmt.Sprintf("a%d.next", i))
			testutil.Eventually(t, "the next answer", func() bool { return h.has(fmt.Sprintf("a%d.next", i)) })
			standby(t, a)
		}
		if s := a.ReaderStats(); s.Borrows != 6 {
			t.Fatalf("reader stats %+v; want 6 borrows", s)
		}
	})
}

func TestBorrowLeavesOtherMessagesToReader(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		h, a, b := borrowPair(t, tr, time.Hour)
		sendTo(t, b, "a0")
		standby(t, a)
		if !a.Borrow() {
			t.Fatal("Borrow: got false; want true")
		}
		// Something a borrower may not deliver comes first: it goes back
		// to the reader, which delivers it and then the answer, in order.
		sendTo(t, b, "other", "a1")
		if a.ReadBorrowed(func() bool { return h.has("a1") }) {
			t.Fatal("ReadBorrowed: got true; want false (the answer came after another message)")
		}
		testutil.Eventually(t, "both messages", func() bool { return h.has("a1") })
		if got := fmt.Sprint(h.strings()); got != "[a0 other a1]" {
			t.Fatalf("got %s; want [a0 other a1]", got)
		}
	})
}

func TestBorrowerWaitIsBounded(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		// Ticks long enough for the test to see the standby, short enough
		// to end the borrower's wait soon.
		h, a, b := borrowPair(t, tr, 50*time.Millisecond)
		sendTo(t, b, "a0")
		standby(t, a)
		if !a.Borrow() {
			t.Fatal("Borrow: got false; want true")
		}
		// No answer comes: the parked reader's ticker interrupts the
		// borrower's read and the reader waits on.
		if a.ReadBorrowed(func() bool { return h.has("a1") }) {
			t.Fatal("ReadBorrowed: got true with no answer")
		}
		sendTo(t, b, "a1")
		testutil.Eventually(t, "the late answer", func() bool { return h.has("a1") })
		if s := a.ReaderStats(); s.BorrowTicks < 1 {
			t.Fatalf("reader stats %+v; want a tick to have ended the wait", s)
		}
		// The deadline that interrupted the borrower is gone: the link
		// goes on both ways.
		sendTo(t, b, "later")
		testutil.Eventually(t, "a message after the interrupted borrow", func() bool { return h.has("later") })
		if err := a.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "y"), Message: "back"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStandbyEndsWithoutBorrower(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		h, a, b := borrowPair(t, tr, borrowTick)
		sendTo(t, b, "a0")
		// The reader stands by after the answer (nothing else is on its
		// way), and nobody borrows.
		testutil.Eventually(t, "the standby", func() bool { return a.brw.lease.Load() == leaseStandby || a.ReaderStats().BorrowTicks > 0 })
		sendTo(t, b, "unasked")
		testutil.Eventually(t, "a message during a standby nobody borrowed", func() bool { return h.has("unasked") })
		if s := a.ReaderStats(); s.BorrowTicks == 0 || s.Borrows != 0 {
			t.Fatalf("reader stats %+v; want the ticker to have ended the standby", s)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

func TestCloseDuringStandby(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		_, a, b := borrowPair(t, tr, time.Hour)
		sendTo(t, b, "a0")
		standby(t, a)
		// The peer's goodbye is read although the reader stood by.
		if err := a.Close(); err != nil {
			t.Fatalf("Close: got %v; want nil", err)
		}
		<-b.Done()
		if err := b.Err(); err != nil {
			t.Fatalf("peer: got %v; want nil", err)
		}
	})
}

func TestNoStandbyWithoutDeadlines(t *testing.T) {
	t.Parallel()
	// A stream that takes no read deadlines never stands by: a borrower
	// could not be bounded.
	x, y := transports[1].make(t)
	h := &answers{}
	a := newTestEndpoint(t, noDeadline{x}, h, WithLocalAddress("node"))
	h.ep = a
	b := newTestEndpoint(t, y, newCollector(), WithLocalAddress("node/1"))
	handshake(t, a, b)
	for _, e := range []*Endpoint{a, b} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	sendTo(t, b, "a0", "a1")
	testutil.Eventually(t, "both answers", func() bool { return h.has("a1") })
	if a.Borrow() {
		t.Fatal("Borrow: got true on a stream without deadlines")
	}
}

// noDeadline hides a stream's SetReadDeadline.
type noDeadline struct{ io.ReadWriteCloser }
