package actor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// blockerGates holds the gate each blocker actor waits on, by its args' Text.
var blockerGates sync.Map // string → chan struct{}

func init() {
	// actor_test.blocker reports every string to args.Reply; on "block" it
	// reports "blocked", then waits until its gate closes. It counts ints,
	// checking they come 0, 1, 2…, and answers "count" with how many.
	RegisterKind("actor_test.blocker", func(args Args) (*pa.Props, error) {
		a, ok := args.Value.(*spawnArgs)
		if !ok {
			return nil, errors.New("want *spawnArgs")
		}
		next, inOrder := 0, true
		return pa.PropsFromFunc(func(ctx pa.Context) {
			if i, ok := ctx.Message().(int); ok { // counted, not reported
				inOrder = inOrder && i == next
				next++
				return
			}
			s, ok := ctx.Message().(string)
			if !ok {
				return
			}
			if s == "count" {
				order := " in order"
				if !inOrder {
					order = " out of order"
				}
				ctx.Respond(fmt.Sprint(next, order))
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

// blockedActor spawns a blocker on c and has it block.
func blockedActor(t *testing.T, n, c *Node) (pid *pa.PID, got chan string, release func()) {
	t.Helper()
	pid, got, release = spawnBlocker(t, n, c)
	n.Root().Send(pid, "block")
	if s := testutil.Receive(t, got, "blocked"); s != "blocked" {
		t.Fatalf("got %q; want blocked", s)
	}
	return pid, got, release
}

// TestInboxBound (issue 14, item 2): an inbox takes messages up to its hard
// bounds (one larger message alone), asks the delivering link to pause at
// its window, releases what was finished in order, and lifts the pause at
// half the window.
func TestInboxBound(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	l := newLink(n, "n/1") // never connected: a pause has no stream to go on
	ib := &inbox{limit: 3, maxBytes: 1 << 20, hardMsgs: 5, hardBytes: 1 << 20, id: "x"}
	envs := make([]*pa.MessageEnvelope, 6)
	for i := range envs {
		envs[i] = &pa.MessageEnvelope{Message: i}
	}
	for i := range 5 {
		if !ib.admit(l, envs[i], 10) {
			t.Fatalf("message %d refused below the bound", i)
		}
	}
	if ib.admit(l, envs[5], 10) {
		t.Fatal("a sixth message admitted past a limit of 5")
	}
	if _, ok := ib.paused[l]; !ok {
		t.Fatal("the link was not paused at the window")
	}
	ib.finished(envs[2]) // the first three are done (FIFO)
	if m, b := ib.usage(); m != 2 || b != 20 {
		t.Fatalf("usage %d messages, %d bytes; want 2, 20", m, b)
	}
	if len(ib.paused) != 1 {
		t.Fatal("resumed above half the window")
	}
	// A pause told on a stream that has ended is told again on the next.
	ib.paused[l] = &mailbox.Endpoint{}
	if !ib.pauseLocked(l) || ib.paused[l] != nil {
		t.Fatal("a pause from an ended stream was not told again")
	}
	if ib.pauseLocked(l) {
		t.Fatal("a pause told twice on the same stream")
	}
	ib.finished(envs[4])
	if m, b := ib.usage(); m != 0 || b != 0 || len(ib.paused) != 0 {
		t.Fatalf("usage %d, %d, paused %d; want all released and resumed", m, b, len(ib.paused))
	}
	ib.finished(&pa.MessageEnvelope{}) // not the link's: ignored

	bytes := &inbox{limit: 100, maxBytes: 100, hardMsgs: 100, hardBytes: 100, id: "y"}
	big := &pa.MessageEnvelope{}
	if !bytes.admit(l, big, 1000) {
		t.Fatal("a message larger than the byte bound refused into an empty inbox")
	}
	if bytes.admit(l, &pa.MessageEnvelope{}, 1) {
		t.Fatal("a message admitted past the byte bound")
	}
	bytes.finished(big)
	if !bytes.admit(l, &pa.MessageEnvelope{}, 60) || bytes.admit(l, &pa.MessageEnvelope{}, 60) {
		t.Fatal("60 + 60 bytes: want the first admitted, the second refused (bound 100)")
	}
}

// TestInboxPausesSenders (issue 14, item 2): a sender to a spawned actor
// that has stopped keeping up waits instead of filling its inbox or losing
// messages; once the actor goes on, every message arrives, in order.
func TestInboxPausesSenders(t *testing.T) {
	t.Parallel()
	const limit, msgs = 10, 50000
	n := newNode(t, "n", WithDeadLetterLog(nil))
	c := newNode(t, "n/1", WithInboxLimit(limit), WithDeadLetterLog(nil))
	down, up := join(t, n, c)
	pid, _, release := blockedActor(t, n, c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range msgs {
			n.Root().Send(pid, i)
		}
	}()
	testutil.Eventually(t, "the sender paused", func() bool { return down.npaused.Load() == 1 })
	if p := down.Stats().Paused; p != 1 {
		t.Fatalf("Stats().Paused = %d; want 1", p)
	}
	ib := c.inboxOf(pid)
	if m, _ := ib.usage(); m >= ib.hardMsgs {
		t.Fatalf("inbox holds %d messages; hard bound %d", m, ib.hardMsgs)
	}
	select {
	case <-done:
		t.Fatal("every send returned while the actor was blocked: nothing paused")
	default:
	}
	release()
	testutil.Receive(t, done, "the sender to finish")
	res, err := n.Root().RequestFuture(pid, "count", testTimeout).Result()
	if err != nil || res != fmt.Sprint(msgs, " in order") {
		t.Fatalf("count: %v, %v; want %d in order", res, err, msgs)
	}
	if d, u := down.counts.deadLetters.Load(), up.counts.deadLetters.Load(); d != 0 || u != 0 {
		t.Fatalf("dead letters: %d at the sender, %d at the receiver; want none", d, u)
	}
	testutil.Eventually(t, "the pause lifted", func() bool { return down.npaused.Load() == 0 })
}

// TestInboxPauseTimesOut: a sender paused past WithSendTimeout gives up:
// the message is a dead letter with ErrInboxFull and a log line; what was
// sent before the pause arrives.
func TestInboxPauseTimesOut(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	n := newNode(t, "n", WithSendTimeout(50*time.Millisecond), WithLogger(logs.logger(zerolog.WarnLevel)))
	c := newNode(t, "n/1", WithInboxLimit(4), WithDeadLetterLog(nil))
	down, up := join(t, n, c)
	pid, got, release := blockedActor(t, n, c)
	// Send until the pause reaches the sender. How many go before it depends
	// on how fast the child answers (its window is 4); a send that raced the
	// pause waits and is a dead letter, like every send after it.
	sent := 0
	for ; down.npaused.Load() == 0; sent++ {
		if sent == 100000 {
			t.Fatal("no pause after 100000 sends to an inbox of 4")
		}
		n.Root().Send(pid, fmt.Sprint("m", sent))
	}
	raced := down.counts.deadLetters.Load() // 0, or 1: the last send
	if raced > 1 {
		t.Fatalf("%d dead letters before the pause was seen; at most the last send may race it", raced)
	}
	for i := range 10 {
		n.Root().Send(pid, fmt.Sprint("late", i)) // waits 50 ms, then a dead letter
	}
	if d := down.counts.deadLetters.Load() - raced; d != 10 {
		t.Fatalf("%d sender-side dead letters after the pause; want 10 (every send after it)", d)
	}
	if !strings.Contains(logs.String(), ErrInboxFull.Error()) {
		t.Fatalf("no ErrInboxFull in the log:\n%s", logs.String())
	}
	release()
	for i := range sent - int(raced) {
		if s, want := testutil.Receive(t, got, "a message sent before the pause"), fmt.Sprint("m", i); s != want {
			t.Fatalf("got %q; want %q", s, want)
		}
	}
	if u := up.counts.deadLetters.Load(); u != 0 {
		t.Fatalf("%d receiver-side dead letters; want none", u)
	}
}

// TestInboxPauseLiftedOnLoss: a sender waiting on a pause goes on when the
// link is lost (its message then follows the link's fate).
func TestInboxPauseLiftedOnLoss(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n", WithDeadLetterLog(nil))
	c := newNode(t, "n/1", WithInboxLimit(4), WithDeadLetterLog(nil))
	down, _ := join(t, n, c)
	pid, _, _ := blockedActor(t, n, c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 {
			n.Root().Send(pid, fmt.Sprint("m", i))
		}
	}()
	testutil.Eventually(t, "the sender paused", func() bool { return down.npaused.Load() == 1 })
	down.Abort()
	testutil.Receive(t, done, "the sender to go on after the loss")
	if p := down.npaused.Load(); p != 0 {
		t.Fatalf("%d pauses kept after the loss", p)
	}
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

func init() {
	// actor_test.rewrapper passes each message on in an envelope of its own
	// (a middleware that replaces the envelope), and counts ints.
	RegisterKind("actor_test.rewrapper", func(Args) (*pa.Props, error) {
		count := 0
		return pa.PropsFromFunc(func(ctx pa.Context) {
			switch m := ctx.Message().(type) {
			case int:
				count++
			case string:
				if m == "count" {
					ctx.Respond(count)
				}
			}
		}, pa.WithReceiverMiddleware(func(next pa.ReceiverFunc) pa.ReceiverFunc {
			return func(c pa.ReceiverContext, env *pa.MessageEnvelope) {
				next(c, &pa.MessageEnvelope{Header: env.Header, Message: env.Message, Sender: env.Sender})
			}
		})), nil
	})
}

// TestInboxCountsPastReplacingMiddleware: a kind's middleware that replaces
// the envelope does not hide messages from the count (the inbox's is the
// outermost): the inbox drains and no pause is left behind.
func TestInboxCountsPastReplacingMiddleware(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n", WithDeadLetterLog(nil))
	c := newNode(t, "n/1", WithInboxLimit(10), WithDeadLetterLog(nil))
	down, _ := join(t, n, c)
	pid, err := n.Spawn(context.Background(), "n/1", "actor_test.rewrapper")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		n.Root().Send(pid, i)
	}
	testutil.Eventually(t, "all 200 counted", func() bool {
		res, err := n.Root().RequestFuture(pid, "count", testTimeout).Result()
		return err == nil && res == 200
	})
	ib := c.inboxOf(pid)
	testutil.Eventually(t, "an empty inbox and no pause", func() bool {
		m, b := ib.usage()
		return m == 0 && b == 0 && down.npaused.Load() == 0
	})
}

// TestInboxEdges: a stopped actor's inbox counts nothing; headers count in
// the bytes; a forged pause with a huge id is not kept; a name reused
// before the old actor's Stopped keeps one entry.
func TestInboxEdges(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	l := newLink(n, "n/1")

	stopped := &inbox{limit: 10, maxBytes: 1 << 20, hardMsgs: 10, hardBytes: 1 << 20, id: "s"}
	stopped.stopped.Store(true)
	if !stopped.admit(l, &pa.MessageEnvelope{}, 10) {
		t.Fatal("a stopped actor's message refused: protoactor must dead-letter it")
	}
	if m, _ := stopped.usage(); m != 0 || len(stopped.paused) != 0 {
		t.Fatal("a stopped actor's inbox counted a message")
	}

	ib := &inbox{limit: 10, maxBytes: 1000, hardMsgs: 10, hardBytes: 2000, id: "h"}
	header := map[string]string{"k": strings.Repeat("v", 1<<20)}
	if _, ok := l.deliverCounted(ib, &mailbox.Envelope{Message: 1, Header: header, Target: pa.NewPID("n", "h")}); !ok {
		t.Fatal("a large message refused into an empty inbox")
	}
	if _, b := ib.usage(); b < 1<<20 {
		t.Fatalf("inbox charged %d bytes for a 1 MiB header", b)
	}
	if _, ok := l.deliverCounted(ib, &mailbox.Envelope{Message: 2, Target: pa.NewPID("n", "h")}); ok {
		t.Fatal("a message admitted past the byte bound (the header counts)")
	}

	l.credit(&inboxCredit{ID: strings.Repeat("x", maxCreditID+1), Paused: true})
	if l.npaused.Load() != 0 {
		t.Fatal("a pause with an oversized id was kept")
	}

	pid := pa.NewPID("n", "reused")
	old, repl := newInbox(10, 1<<20), newInbox(10, 1<<20)
	base := n.inboxCount.Load()
	n.registerInbox(pid, old)
	n.registerInbox(pid, repl) // the name taken again before old's Stopped
	n.inboxStopped(pid.Id, old)
	if got := n.inboxOf(pid); got != repl || n.inboxCount.Load() != base+1 {
		t.Fatalf("after the old actor's Stopped: entry %p (want %p), count %d (want %d)", got, repl, n.inboxCount.Load(), base+1)
	}
	n.inboxStopped(pid.Id, repl)
	if n.inboxOf(pid) != nil || n.inboxCount.Load() != base {
		t.Fatalf("after both stopped: count %d; want %d", n.inboxCount.Load(), base)
	}
}
