package actor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
)

// blockerGates holds the gate each blocker actor waits on, by its args' Text.
var blockerGates sync.Map // string → chan struct{}

func init() {
	// actor_test.blocker reports every message to args.Reply; on "block" it
	// reports "blocked", then waits until its gate closes.
	RegisterKind("actor_test.blocker", func(args Args) (*pa.Props, error) {
		a, ok := args.Value.(*spawnArgs)
		if !ok {
			return nil, errors.New("want *spawnArgs")
		}
		return pa.PropsFromFunc(func(ctx pa.Context) {
			s, ok := ctx.Message().(string)
			if !ok {
				return
			}
			if s == "block" {
				ctx.Send(a.Reply, "blocked")
				gate, _ := blockerGates.Load(a.Text)
				<-gate.(chan struct{})
				return
			}
			ctx.Send(a.Reply, s)
			if ctx.Sender() != nil {
				ctx.Respond(s)
			}
		}), nil
	})
}

// spawnBlocker spawns a blocker on c from n, reporting to a channel of n.
func spawnBlocker(t *testing.T, n *Node, c *Node) (pid *pa.PID, got chan string, release func()) {
	t.Helper()
	got = make(chan string, 1000)
	reply := n.Root().Spawn(pa.PropsFromFunc(func(ctx pa.Context) {
		if s, ok := ctx.Message().(string); ok {
			got <- s
		}
	}))
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	blockerGates.Store(t.Name(), gate)
	pid, err := n.Spawn(context.Background(), c.Address(), "actor_test.blocker", WithArgs(&spawnArgs{Reply: reply, Text: t.Name()}))
	if err != nil {
		t.Fatal(err)
	}
	return pid, got, release
}

// TestInboxBoundedByCount (issue 14, item 2): an actor the activator
// spawned that blocks takes at most WithInboxLimit messages from a link; the
// rest are dead letters with ErrInboxFull, a request among them fails at
// once, and once it goes on it gets exactly those it took, in order, and
// new ones again.
func TestInboxBoundedByCount(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n", WithDeadLetterLog(nil))
	c := newNode(t, "n/1", WithInboxLimit(5), WithDeadLetterLog(nil))
	_, up := join(t, n, c)
	pid, got, release := spawnBlocker(t, n, c)

	n.Root().Send(pid, "block")
	if s := testutil.Receive(t, got, "blocked"); s != "blocked" {
		t.Fatalf("got %q; want blocked", s)
	}
	for i := range 20 {
		n.Root().Send(pid, fmt.Sprint("m", i))
	}
	// "block" is still being processed: 4 more fit.
	testutil.Eventually(t, "16 dead letters", func() bool { return up.counts.deadLetters.Load() == 16 })
	if _, err := request(n.Root(), pid, "request"); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request to a full inbox: %v; want ErrDeadLetter at once", err)
	}
	ib := c.inboxOf(pid)
	if ib == nil {
		t.Fatal("no inbox for a spawned actor")
	}
	if msgs, _ := ib.usage(); msgs != 5 {
		t.Fatalf("inbox holds %d messages; want 5 (the bound)", msgs)
	}
	release()
	for i := range 4 {
		if s, want := testutil.Receive(t, got, "a message taken"), fmt.Sprint("m", i); s != want {
			t.Fatalf("got %q; want %q", s, want)
		}
	}
	if res, err := request(n.Root(), pid, "after"); err != nil || res != "after" {
		t.Fatalf("after the actor went on: %v, %v", res, err)
	}
	if s := testutil.Receive(t, got, "after"); s != "after" {
		t.Fatalf("got %q; want after (m4… were dropped)", s)
	}
	testutil.Eventually(t, "an empty inbox", func() bool { msgs, b := ib.usage(); return msgs == 0 && b == 0 })
}

// TestInboxBoundedByBytes: WithInboxBytes bounds the decoded bytes waiting
// for a spawned actor.
func TestInboxBoundedByBytes(t *testing.T) {
	t.Parallel()
	const bound = 64 << 10
	n := newNode(t, "n", WithDeadLetterLog(nil))
	c := newNode(t, "n/1", WithInboxBytes(bound), WithDeadLetterLog(nil))
	_, up := join(t, n, c)
	pid, got, release := spawnBlocker(t, n, c)
	n.Root().Send(pid, "block")
	testutil.Receive(t, got, "blocked")
	for range 100 {
		n.Root().Send(pid, string(make([]byte, 4<<10)))
	}
	testutil.Eventually(t, "dead letters", func() bool { return up.counts.deadLetters.Load() > 0 })
	ib := c.inboxOf(pid)
	testutil.Eventually(t, "all 100 delivered or refused", func() bool {
		msgs, _ := ib.usage()
		return int64(msgs-1)+int64(up.counts.deadLetters.Load()) == 100
	})
	if _, b := ib.usage(); b > bound {
		t.Fatalf("inbox holds %d bytes; bound %d", b, bound)
	}
	release()
	testutil.Eventually(t, "an empty inbox", func() bool { msgs, b := ib.usage(); return msgs == 0 && b == 0 })
}

// TestInboxForgottenOnStop: a stopped spawned actor leaves no inbox behind,
// and a request to it is a dead letter as before.
func TestInboxForgottenOnStop(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n", WithDeadLetterLog(nil))
	c := newNode(t, "n/1", WithDeadLetterLog(nil))
	join(t, n, c)
	pid, _, _ := spawnBlocker(t, n, c)
	if c.inboxOf(pid) == nil || c.inboxCount.Load() != 1 {
		t.Fatalf("inboxes: %d; want the spawned actor's", c.inboxCount.Load())
	}
	if err := c.Root().StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the inbox forgotten", func() bool { return c.inboxCount.Load() == 0 && c.inboxOf(pid) == nil })
	if _, err := request(n.Root(), pid, "x"); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request to a stopped actor: %v; want ErrDeadLetter", err)
	}
}
