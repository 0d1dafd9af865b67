package mailbox

import (
	"context"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"sync"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// lender is a Handler whose Deliver runs a function per message: "block"
// lends the call and waits for release, "release" closes it, "ask" lends
// the call and releases the reader at once. It records every string in
// order, and when each call returns.
type lender struct {
	ep       *Endpoint
	release  chan struct{}
	relOnce  sync.Once
	mu       sync.Mutex
	got      []string
	released []bool // per "ask": what ReleaseReader returned
	blocked  chan struct{}
	finished chan string
}

func newLender() *lender {
	return &lender{release: make(chan struct{}), blocked: make(chan struct{}, 1), finished: make(chan string, 16)}
}

func (l *lender) Deliver(env *Envelope) {
	s, _ := env.Message.(string)
	l.mu.Lock()
	l.got = append(l.got, s)
	l.mu.Unlock()
	switch s {
	case "block":
		l.ep.Lend()
		l.blocked <- struct{}{}
		<-l.release
		l.finished <- s
	case "abort, then block":
		// The link ends before the call is lent, as when another
		// goroutine's Abort comes between the Handler call's start and
		// its Lend.
		l.ep.Abort()
		l.ep.Lend()
		l.blocked <- struct{}{}
		<-l.release
		l.finished <- s
	case "release":
		l.relOnce.Do(func() { close(l.release) })
	case "ask":
		l.ep.Lend()
		ok := ReleaseReader()
		l.mu.Lock()
		l.released = append(l.released, ok)
		l.mu.Unlock()
		<-l.release // the answer comes over the link this goroutine no longer reads
		l.finished <- s
	case "plain":
		l.mu.Lock()
		l.released = append(l.released, ReleaseReader()) // not lent: no hand-over
		l.mu.Unlock()
	}
}

func (l *lender) DeadLetter(*Envelope, error) {}
func (l *lender) Closed(error)                {}

func (l *lender) strings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// lenderPair starts a over tr and b with the lender as its Handler.
func lenderPair(t *testing.T, tr transport, optsB ...Option) (a *Endpoint, l *lender) {
	t.Helper()
	x, y := tr.make(t)
	l = newLender()
	t.Cleanup(func() { l.relOnce.Do(func() { close(l.release) }) })
	a = newTestEndpoint(t, x, newCollector(), WithLocalAddress("node"))
	l.ep = newTestEndpoint(t, y, l, append([]Option{WithLocalAddress("node/1")}, optsB...)...)
	handshake(t, a, l.ep)
	for _, e := range []*Endpoint{a, l.ep} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return a, l
}

func sendStrings(t *testing.T, e *Endpoint, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if err := e.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "x"), Message: m}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLentCallHandedOverByMonitor(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		a, l := lenderPair(t, tr, WithHandlerBudget(time.Millisecond))
		const after = 1000
		msgs := []string{"block"}
		for i := range after {
			msgs = append(msgs, fmt.Sprint(i))
		}
		msgs = append(msgs, "release")
		sendStrings(t, a, msgs...)
		// The blocked call waits for "release", which only a new reader can
		// deliver: the monitor takes the role from the lent call.
		if got := receiveT(t, l.finished, "the blocked call to end"); got != "block" {
			t.Fatalf("got %q; want block", got)
		}
		testutil.Eventually(t, "every message", func() bool { return len(l.strings()) == len(msgs) })
		if got := l.strings(); fmt.Sprint(got) != fmt.Sprint(msgs) {
			t.Fatalf("delivered out of order: got %v", got)
		}
		if s := l.ep.ReaderStats(); s.Handovers != 1 || s.MonitorTicks < 2 {
			t.Fatalf("reader stats %+v; want 1 hand-over after at least 2 ticks", s)
		}
	})
}

func TestReleaseReader(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		// The monitor would take an hour: only ReleaseReader hands over.
		a, l := lenderPair(t, tr, WithHandlerBudget(time.Hour))
		if ReleaseReader() {
			t.Fatal("ReleaseReader outside a reader: got true")
		}
		sendStrings(t, a, "plain", "ask", "1", "2", "release")
		if got := receiveT(t, l.finished, "the asking call to end"); got != "ask" {
			t.Fatalf("got %q; want ask", got)
		}
		testutil.Eventually(t, "every message", func() bool { return len(l.strings()) == 5 })
		l.mu.Lock()
		released := fmt.Sprint(l.released)
		l.mu.Unlock()
		if released != "[false true]" {
			t.Fatalf("ReleaseReader in a plain call, in a lent call: got %s; want [false true]", released)
		}
		if s := l.ep.ReaderStats(); s.Handovers != 1 {
			t.Fatalf("reader stats %+v; want 1 hand-over", s)
		}
		// The link goes on both ways after the hand-over.
		sendStrings(t, a, "3")
		testutil.Eventually(t, "a message after the hand-over", func() bool { return len(l.strings()) == 6 })
		if err := l.ep.Send(context.Background(), &Envelope{Target: pa.NewPID("node", "y"), Message: "back"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestUnlentCallNotTakenOver(t *testing.T) {
	t.Parallel()
	// A Handler call that did not Lend keeps the role however long it runs:
	// messages behind it wait (nothing else may deliver them: their order
	// depends on it).
	x, y := transports[1].make(t)
	var mu sync.Mutex
	var got []string
	release := make(chan struct{})
	entered := make(chan struct{})
	var b *Endpoint
	h := HandlerFuncs{OnDeliver: func(env *Envelope) {
		s := env.Message.(string)
		if s == "slow" {
			close(entered)
			<-release
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}}
	a := newTestEndpoint(t, x, newCollector(), WithLocalAddress("node"))
	b = newTestEndpoint(t, y, h, WithLocalAddress("node/1"), WithHandlerBudget(time.Millisecond))
	handshake(t, a, b)
	for _, e := range []*Endpoint{a, b} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	sendStrings(t, a, "slow", "next")
	<-entered
	time.Sleep(10 * time.Millisecond) // ten budgets: a monitor that took over would have
	close(release)
	testutil.Eventually(t, "both messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[slow next]" {
		t.Fatalf("got %v; want [slow next]", got)
	}
	if s := b.ReaderStats(); s.Handovers != 0 {
		t.Fatalf("reader stats %+v; want no hand-over", s)
	}
}

func TestWithHandlerBudgetValidated(t *testing.T) {
	t.Parallel()
	x, _ := transports[1].make(t)
	defer x.Close()
	if _, err := NewEndpoint(x, newCollector(), WithHandlerBudget(0)); !isTyped(err, ErrInvalidOption) {
		t.Fatalf("WithHandlerBudget(0): got %v; want ErrInvalidOption", err)
	}
}

func receiveT[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestAbortDoesNotWaitForLentCall: a lent call is user code that may block
// for ever; the link's end (Abort, and Done) does not wait for it, and the
// messages behind it are not delivered after the end.
// TestEndDoesNotWaitForCallLentAfterIt: a Handler call lent after the
// link's end began (fail found the call not yet lent, so took nothing
// from it) does not hold the end either: Done closes while it blocks.
func TestEndDoesNotWaitForCallLentAfterIt(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		// The monitor would take an hour: only the end takes the role.
		a, l := lenderPair(t, tr, WithHandlerBudget(time.Hour))
		sendStrings(t, a, "abort, then block", "after")
		receiveT(t, l.blocked, "the call to block")
		receiveT(t, l.ep.Done(), "the endpoint to be done while the lent call blocks")
		l.relOnce.Do(func() { close(l.release) })
		if got := receiveT(t, l.finished, "the lent call to end"); got != "abort, then block" {
			t.Fatalf("got %q; want the blocking call", got)
		}
		if got := l.strings(); fmt.Sprint(got) != "[abort, then block]" {
			t.Fatalf("delivered %v; want only the blocking call: nothing after the end", got)
		}
	})
}

func TestAbortDoesNotWaitForLentCall(t *testing.T) {
	t.Parallel()
	eachTransport(t, func(t *testing.T, tr transport) {
		// The monitor would take an hour: only the abort takes the role.
		a, l := lenderPair(t, tr, WithHandlerBudget(time.Hour))
		sendStrings(t, a, "block", "after")
		receiveT(t, l.blocked, "the call to block")
		aborted := make(chan struct{})
		go func() {
			l.ep.Abort()
			close(aborted)
		}()
		receiveT(t, aborted, "Abort to return while the lent call blocks")
		receiveT(t, l.ep.Done(), "the endpoint to be done")
		l.relOnce.Do(func() { close(l.release) })
		if got := receiveT(t, l.finished, "the lent call to end"); got != "block" {
			t.Fatalf("got %q; want block", got)
		}
		time.Sleep(10 * time.Millisecond)
		if got := l.strings(); fmt.Sprint(got) != "[block]" {
			t.Fatalf("delivered %v; want only [block]: nothing after the end", got)
		}
	})
}
