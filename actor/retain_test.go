package actor

import (
	"context"
	"errors"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"sync"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// recorder records what it receives on got; a message equal to block makes
// it wait for gate before returning (so it is not finished); "boom" panics.
// A string request is answered with itself.
type recorder struct {
	got   chan any
	block any
	gate  <-chan struct{}
}

func (r *recorder) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case pa.SystemMessage, pa.AutoReceiveMessage: // Started, Stopping, Restarting...
		return
	default:
		r.got <- m
		if r.block != nil && m == r.block {
			<-r.gate
		}
		if m == "boom" {
			panic("boom")
		}
		if s, ok := m.(string); ok && ctx.Sender() != nil {
			ctx.Respond(s)
		}
	}
}

// childNode makes node n/1 of the given incarnation and its parent link,
// not yet connected.
func childNode(t *testing.T, inc uint64) (*Node, *Link) {
	t.Helper()
	c, err := NewNode("n/1", withIncarnation(inc))
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.ParentLink()
	if err != nil {
		t.Fatal(err)
	}
	return c, up
}

// retainedChild starts a child node n/1 of the given incarnation whose actor
// "x" acknowledges what its parent retains, connected to down.
func retainedChild(t *testing.T, down *Link, inc uint64, r *recorder, opts ...pa.PropsOption) (*Node, *Link) {
	t.Helper()
	return retainedChildOn(t, down, inc, r, false, opts...)
}

// retainedChildOn is retainedChild; with inline, "x" has the node's inline
// mailbox, as a process actor's root has: the link's reader runs it, and
// a message it runs at once is acknowledged without an envelope of its own.
func retainedChildOn(t *testing.T, down *Link, inc uint64, r *recorder, inline bool, opts ...pa.PropsOption) (*Node, *Link) {
	t.Helper()
	c, up := childNode(t, inc)
	props := pa.PropsFromProducer(func() pa.Actor { return r }, append(opts, pa.WithReceiverMiddleware(up.AckFor("x")))...)
	if inline {
		props = c.Inline(props)
	}
	if _, err := c.Root().SpawnNamed(props, "x"); err != nil {
		t.Fatal(err)
	}
	connectPipe(t, down, up)
	return c, up
}

// cutFlush brings up a second incarnation of n/1 whose "x" blocks on
// "first" (held by gate), lets the link's flush of what it held fill the
// window and wait for room, then kills that incarnation: the flush is cut.
// Connect's two calls run on their own goroutines, as the flush outlives
// them; both have returned when cutFlush does.
func cutFlush(t *testing.T, down *Link, gate chan struct{}) {
	t.Helper()
	r2 := &recorder{got: make(chan any, 100), block: "first", gate: gate}
	c2, up2 := childNode(t, 2)
	if _, err := c2.Root().SpawnNamed(pa.PropsFromProducer(func() pa.Actor { return r2 }, pa.WithReceiverMiddleware(up2.AckFor("x"))), "x"); err != nil {
		t.Fatal(err)
	}
	a, b, err := mailbox.Pipe(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cookie := mailbox.NewCookie()
	connected := make(chan error, 2)
	go func() { _, err := up2.Connect(ctx, b, cookie, 0); connected <- err }()
	go func() { _, err := down.Connect(ctx, a, cookie, 0); connected <- err }()
	testutil.Receive(t, r2.got, "the blocking message in the second incarnation")
	testutil.Eventually(t, "the flush waiting for room", func() bool { return waitsForRoom(down) })
	kill(t, down, c2, up2)
	for range 2 {
		testutil.Receive(t, connected, "Connect to return")
	}
}

// kill ends a child node as a process death would: its stream is cut, then
// it is closed.
func kill(t *testing.T, down *Link, c *Node, up *Link) {
	t.Helper()
	lost := make(chan struct{})
	sub := down.node.System().EventStream.Subscribe(func(evt any) {
		if d, ok := evt.(*LinkDown); ok && d.Address == "n/1" {
			select {
			case <-lost:
			default:
				close(lost)
			}
		}
	})
	defer down.node.System().EventStream.Unsubscribe(sub)
	up.Abort()
	testutil.Receive(t, lost, "the parent to see the loss")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = c.Close(ctx)
}

func retainedParent(t *testing.T, window int, opts ...NodeOption) (*Node, *Link) {
	t.Helper()
	n := newNode(t, "n", opts...)
	down, err := n.ChildLink("1")
	if err != nil {
		t.Fatal(err)
	}
	down.SetReconnect(true)
	if err := down.Retain("x", window); err != nil {
		t.Fatal(err)
	}
	return n, down
}

// TestRetainRedelivers: what the child's actor had not finished when the
// child died goes to the next incarnation first and in order, then what was
// sent while it was down; nothing is lost, and acknowledged messages are not
// sent again.
func TestRetainRedelivers(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		n, down := retainedParent(t, 1<<20)
		x := pa.NewPID("n/1", "x")
		gate := make(chan struct{})
		defer close(gate)
		r1 := &recorder{got: make(chan any, 100), block: 3, gate: gate}
		c1, up1 := retainedChildOn(t, down, 1, r1, inline)
		for i := 1; i <= 5; i++ {
			n.Root().Send(x, i)
		}
		for want := 1; want <= 3; want++ {
			if got := testutil.Receive(t, r1.got, "a message in the first incarnation"); got != want {
				t.Fatalf("first incarnation got %v; want %d", got, want)
			}
		}
		testutil.Eventually(t, "1 and 2 acknowledged", func() bool { return down.Stats().Retained == 3 })
		kill(t, down, c1, up1)
		if s := down.Stats(); s.Held != 3 || s.Retained != 0 || s.HeldBytes != 0 {
			t.Fatalf("after the loss: %+v; want 3 held to redeliver, none retained, no held bytes", s)
		}
		n.Root().Send(x, 6)
		n.Root().Send(x, 7)
		r2 := &recorder{got: make(chan any, 100)}
		c2, _ := retainedChildOn(t, down, 2, r2, inline)
		defer c2.Close(context.Background())
		for want := 3; want <= 7; want++ {
			if got := testutil.Receive(t, r2.got, "a message in the second incarnation"); got != want {
				t.Fatalf("second incarnation got %v; want %d", got, want)
			}
		}
		testutil.Eventually(t, "everything acknowledged", func() bool { s := down.Stats(); return s.Retained == 0 && s.RetainedBytes == 0 })
		select {
		case extra := <-r2.got:
			t.Fatalf("second incarnation got %v again", extra)
		case <-time.After(20 * time.Millisecond):
		}
	})
}

// TestRetainedRequestSurvivesLoss: a request to the retained actor that was
// not finished when the child died is answered by the next incarnation; a
// request to another actor of the dead child fails at once.
func TestRetainedRequestSurvivesLoss(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		n, down := retainedParent(t, 1<<20)
		x := pa.NewPID("n/1", "x")
		gate := make(chan struct{})
		defer close(gate)
		r1 := &recorder{got: make(chan any, 100), block: "hold", gate: gate}
		c1, up1 := retainedChildOn(t, down, 1, r1, inline)
		if _, err := c1.Root().SpawnNamed(pa.PropsFromFunc(func(pa.Context) {}), "silent"); err != nil {
			t.Fatal(err)
		}
		n.Root().Send(x, "hold")
		testutil.Receive(t, r1.got, "the blocking message")
		toX := n.Root().RequestFuture(x, "question", testTimeout)
		toOther := n.Root().RequestFuture(pa.NewPID("n/1", "silent"), "question", testTimeout)
		testutil.Eventually(t, "both requests in flight", func() bool { return down.Stats().Requests == 2 })
		kill(t, down, c1, up1)
		if _, err := toOther.Result(); !errors.Is(err, pa.ErrDeadLetter) {
			t.Fatalf("request to another actor of the dead child: got %v; want ErrDeadLetter", err)
		}
		r2 := &recorder{got: make(chan any, 100)}
		c2, _ := retainedChildOn(t, down, 2, r2, inline)
		defer c2.Close(context.Background())
		if res, err := toX.Result(); err != nil || res != "question" {
			t.Fatalf("request to the retained actor: got %v, %v; want question", res, err)
		}
	})
}

// TestRetainWindowFull: a full window makes the sender wait for the send
// timeout, then the message is a dead letter with ErrRetainFull (a request
// fails), and the window holds at most one message past its bound.
func TestRetainWindowFull(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	n, down := retainedParent(t, 100, WithSendTimeout(50*time.Millisecond), WithLogger(buf.logger(zerolog.WarnLevel)))
	x := pa.NewPID("n/1", "x")
	gate := make(chan struct{})
	defer close(gate)
	r := &recorder{got: make(chan any, 100), block: "first", gate: gate}
	c, _ := retainedChild(t, down, 1, r)
	defer c.Close(context.Background())
	n.Root().Send(x, "first")
	testutil.Receive(t, r.got, "the blocking message")
	payload := string(make([]byte, 40))
	for range 3 {
		n.Root().Send(x, payload)
	}
	if _, err := request(n.Root(), x, "over"); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request into a full window: got %v; want ErrDeadLetter", err)
	}
	if _, ok := buf.find(map[string]string{"message": "dead letter", "error": ErrRetainFull.Error()}); !ok {
		t.Fatalf("no dead-letter line with ErrRetainFull:\n%s", buf.String())
	}
	if s := down.Stats(); s.RetainedBytes < 100 || s.RetainedBytes > 100+60 {
		t.Fatalf("retained %d bytes; want the window (100) plus at most one message", s.RetainedBytes)
	}
}

// TestRetainMessageLargerThanWindow: a message larger than the whole window
// that finds it not full is retained like any other (the window then holds
// one message past its bound, and later senders wait for room): a child
// that dies before finishing it gets it again, in its place, and a request
// of that size is answered by the next incarnation. It used to be sent
// unretained: the process's death lost it without a word (a request waited
// for its timeout) while the smaller messages around it were redelivered.
func TestRetainMessageLargerThanWindow(t *testing.T) {
	t.Parallel()
	const window = 100
	big := "big" + string(make([]byte, 5*window))
	for _, request := range []bool{false, true} {
		t.Run(fmt.Sprintf("request=%v", request), func(t *testing.T) {
			t.Parallel()
			forBothMailboxes(t, func(t *testing.T, inline bool) {
				n, down := retainedParent(t, window)
				x := pa.NewPID("n/1", "x")
				gate := make(chan struct{})
				defer close(gate)
				r1 := &recorder{got: make(chan any, 100), block: "hold", gate: gate}
				c1, up1 := retainedChildOn(t, down, 1, r1, inline)
				n.Root().Send(x, "hold")
				testutil.Receive(t, r1.got, "the blocking message")
				var f *pa.Future
				if request {
					f = n.Root().RequestFuture(x, big, testTimeout)
				} else {
					n.Root().Send(x, big)
				}
				if s := down.Stats(); s.Retained != 2 {
					t.Fatalf("retained %d messages (%d bytes); want both unfinished ones", s.Retained, s.RetainedBytes)
				}
				kill(t, down, c1, up1)
				n.Root().Send(x, "after")
				r2 := &recorder{got: make(chan any, 100)}
				c2, _ := retainedChildOn(t, down, 2, r2, inline)
				defer c2.Close(context.Background())
				for _, want := range []string{"hold", big, "after"} {
					if got := testutil.Receive(t, r2.got, "a message in the second incarnation"); got != want {
						t.Fatalf("second incarnation got %.10q; want %.10q", got, want)
					}
				}
				if f != nil {
					if res, err := f.Result(); err != nil || res != big {
						t.Fatalf("large request: got %.10q, %v; want its answer", res, err)
					}
				}
			})
		})
	}
}

// TestFinishedAcknowledgesAFailure: a message the actor failed on counts as
// finished (it is lost, as in one process), so it is not retained for ever.
func TestFinishedAcknowledgesAFailure(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		f := newFailingChild(t, inline, func(up *Link) pa.SupervisorStrategy { return finishingStrategy{up} })
		n, down, r, x := f.n, f.down, f.r, f.x
		for _, m := range []any{"a", "boom", "b"} {
			n.Root().Send(x, m)
		}
		for _, want := range []any{"a", "boom", "b"} {
			if got := testutil.Receive(t, r.got, "a message"); got != want {
				t.Fatalf("got %v; want %v", got, want)
			}
		}
		testutil.Eventually(t, "everything acknowledged", func() bool { return down.Stats().Retained == 0 })
	})
}

// TestFailedMessageAcknowledgedWithItsNotice: a message the actor failed
// on is not acknowledged before its supervisor says so, however long the
// supervisor takes (here far past the acknowledgement delay; the message
// the link's reader runs at once used to be acknowledged as it failed);
// NotifyFailed then sends the supervisor's notice, and the acknowledgement
// follows it.
func TestFailedMessageAcknowledgedWithItsNotice(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		notices := &recorder{got: make(chan any, 10)}
		gate := make(chan struct{})
		f := newFailingChild(t, inline, func(up *Link) pa.SupervisorStrategy {
			return notifyingStrategy{up: up, gate: gate, to: pa.NewPID("n", "notices")}
		})
		n, down, r, x := f.n, f.down, f.r, f.x
		if _, err := n.Root().SpawnNamed(pa.PropsFromProducer(func() pa.Actor { return notices }), "notices"); err != nil {
			t.Fatal(err)
		}
		n.Root().Send(x, "a")
		if got := testutil.Receive(t, r.got, "a"); got != "a" {
			t.Fatalf("got %v; want a", got)
		}
		testutil.Eventually(t, "a acknowledged", func() bool { return down.Stats().Retained == 0 })
		n.Root().Send(x, "boom") // the actor is idle: an inline one runs it at once
		if got := testutil.Receive(t, r.got, "boom"); got != "boom" {
			t.Fatalf("got %v; want boom", got)
		}
		time.Sleep(50 * time.Millisecond) // ten acknowledgement delays
		if got := down.Stats().Retained; got != 1 {
			t.Fatalf("%d retained while the failure waits for its supervisor; want 1", got)
		}
		close(gate)
		if got := testutil.Receive(t, notices.got, "the notice"); got != "x failed" {
			t.Fatalf("notice %v; want x failed", got)
		}
		testutil.Eventually(t, "boom acknowledged", func() bool { return down.Stats().Retained == 0 })
		n.Root().Send(x, "b") // resumed
		if got := testutil.Receive(t, r.got, "b"); got != "b" {
			t.Fatalf("got %v; want b", got)
		}
	})
}

// TestUnfinishedFailureAcknowledgedByTheNext: a failed message its
// supervisor never marks finished is acknowledged when a later message
// finishes (acknowledgements are cumulative): the peer does not keep it for
// ever. That later message is not taken for the failure: a Finished meant
// for another failure does not acknowledge it while it runs.
func TestUnfinishedFailureAcknowledgedByTheNext(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		var up *Link
		gate := make(chan struct{})
		f := newFailingChildOf(t, inline, func(l *Link) pa.SupervisorStrategy { up = l; return resumingStrategy{} },
			&recorder{got: make(chan any, 100), block: "b", gate: gate})
		n, down, r, x := f.n, f.down, f.r, f.x
		n.Root().Send(x, "boom")
		if got := testutil.Receive(t, r.got, "boom"); got != "boom" {
			t.Fatalf("got %v; want boom", got)
		}
		time.Sleep(50 * time.Millisecond) // ten acknowledgement delays
		if got := down.Stats().Retained; got != 1 {
			t.Fatalf("%d retained with the failure unfinished; want 1", got)
		}
		n.Root().Send(x, "b")
		if got := testutil.Receive(t, r.got, "b"); got != "b" {
			t.Fatalf("got %v; want b", got)
		}
		up.Finished("another actor's failure")
		time.Sleep(50 * time.Millisecond)
		if got := down.Stats().Retained; got != 2 {
			t.Fatalf("%d retained while b runs; want 2 (boom and b)", got)
		}
		close(gate)
		testutil.Eventually(t, "both acknowledged", func() bool { return down.Stats().Retained == 0 })
	})
}

// failingChild is node n/1 with actor x (a recorder, that panics on
// "boom") under a supervisor with the given strategy, retained by its
// parent n over a pipe; x's finished messages are counted by the child's
// link (AckFor), with the node's inline mailbox or protoactor's.
type failingChild struct {
	n    *Node
	down *Link
	r    *recorder
	x    *pa.PID
}

func newFailingChild(t *testing.T, inline bool, strategy func(up *Link) pa.SupervisorStrategy) failingChild {
	t.Helper()
	return newFailingChildOf(t, inline, strategy, &recorder{got: make(chan any, 100)})
}

// newFailingChildOf is newFailingChild with x's recorder r (set up before x
// runs: the pipe hides its hand-offs from the race detector).
func newFailingChildOf(t *testing.T, inline bool, strategy func(up *Link) pa.SupervisorStrategy, r *recorder) failingChild {
	t.Helper()
	return newFailingChildOpts(t, inline, strategy, r)
}

// newFailingChildOpts is newFailingChildOf with options for the parent
// node.
func newFailingChildOpts(t *testing.T, inline bool, strategy func(up *Link) pa.SupervisorStrategy, r *recorder, parentOpts ...NodeOption) failingChild {
	t.Helper()
	n, down := retainedParent(t, 1<<20, parentOpts...)
	c, up := childNode(t, 1)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	props := pa.PropsFromProducer(func() pa.Actor { return r }, pa.WithReceiverMiddleware(up.AckFor("n/1-sup/x")))
	if inline {
		props = c.Inline(props)
	}
	spawned := make(chan struct{})
	sup := pa.PropsFromFunc(func(ctx pa.Context) {
		if _, ok := ctx.Message().(*pa.Started); ok {
			ctx.SpawnNamed(props, "x")
			close(spawned)
		}
	}, pa.WithSupervisor(strategy(up)))
	if _, err := c.Root().SpawnNamed(sup, "n/1-sup"); err != nil {
		t.Fatal(err)
	}
	// x is spawned by sup's Started, after SpawnNamed returns: a message
	// sent before that would find no such actor.
	testutil.Receive(t, spawned, "x spawned")
	if err := down.Retain("n/1-sup/x", 1<<20); err != nil {
		t.Fatal(err)
	}
	connectPipe(t, down, up)
	return failingChild{n: n, down: down, r: r, x: pa.NewPID("n/1", "n/1-sup/x")}
}

// resumingStrategy resumes a failed child and marks nothing finished.
type resumingStrategy struct{}

func (resumingStrategy) HandleFailure(_ *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, _ *pa.RestartStatistics, _, _ any) {
	sup.ResumeChildren(child)
}

// notifyingStrategy tells its supervisor's peer of a failure once its gate
// is closed (notice, "x failed" when nil), then resumes the child; errs,
// when set, gets NotifyFailed's error.
type notifyingStrategy struct {
	up     *Link
	gate   <-chan struct{}
	to     *pa.PID
	notice any
	errs   chan<- error
	retry  any // a second notice, when the first fails
}

func (s notifyingStrategy) HandleFailure(_ *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, _ *pa.RestartStatistics, _, msg any) {
	<-s.gate
	notice := s.notice
	if notice == nil {
		notice = "x failed"
	}
	err := s.up.NotifyFailed(s.to, notice, msg)
	if s.errs != nil {
		s.errs <- err
	}
	if err != nil && s.retry != nil {
		err = s.up.NotifyFailed(s.to, s.retry, msg)
		if s.errs != nil {
			s.errs <- err
		}
	}
	sup.ResumeChildren(child)
}

// TestUndecodableWaitsForTheFailureNotice: a message that does not decode,
// arriving while a failure's notice is on its way, is not acknowledged
// before the notice is queued: its acknowledgement would cover the failed
// message too (acknowledgements are cumulative), and the peer would learn
// of the failed message's end before it learns why.
func TestUndecodableWaitsForTheFailureNotice(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		open := make(chan struct{})
		close(open)
		notices := &recorder{got: make(chan any, 10)}
		var up *Link
		f := newFailingChild(t, inline, func(l *Link) pa.SupervisorStrategy {
			up = l
			return notifyingStrategy{up: l, gate: open, to: pa.NewPID("n", "notices")}
		})
		n, down, r, x := f.n, f.down, f.r, f.x
		if _, err := n.Root().SpawnNamed(pa.PropsFromProducer(func() pa.Actor { return notices }), "notices"); err != nil {
			t.Fatal(err)
		}
		holding, release := make(chan struct{}), make(chan struct{})
		var releaseOnce sync.Once
		let := func() { releaseOnce.Do(func() { close(release) }) }
		beforeNotice.Store(up, func() {
			close(holding)
			<-release
		})
		t.Cleanup(func() {
			let() // a failed check must not leave the supervisor waiting
			beforeNotice.Delete(up)
		})
		n.Root().Send(x, "boom")
		testutil.Receive(t, r.got, "boom")
		testutil.Receive(t, holding, "the notice about to be queued")
		n.Root().Send(x, &badDecode{})
		time.Sleep(50 * time.Millisecond) // ten acknowledgement delays
		if got := down.Stats().Retained; got != 2 {
			t.Fatalf("%d retained while the notice waits; want 2 (boom and the undecodable)", got)
		}
		let()
		if got := testutil.Receive(t, notices.got, "the notice"); got != "x failed" {
			t.Fatalf("notice %v; want x failed", got)
		}
		testutil.Eventually(t, "both acknowledged", func() bool { return down.Stats().Retained == 0 })
	})
}

// TestFailureNoticeNotSentKeepsTheMessage: a notice that cannot be queued
// (here larger than the peer's frames) is NotifyFailed's error, and the
// failed message is not acknowledged: the peer keeps it, rather than
// forgetting a message whose failure it never heard of; nothing after it
// is acknowledged on that stream either (a later message's cumulative
// acknowledgement would cover it).
func TestFailureNoticeNotSentKeepsTheMessage(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		open := make(chan struct{})
		close(open)
		errs := make(chan error, 1)
		f := newFailingChildOpts(t, inline, func(l *Link) pa.SupervisorStrategy {
			return notifyingStrategy{up: l, gate: open, to: pa.NewPID("n", "notices"), notice: make([]byte, 4<<10), errs: errs}
		}, &recorder{got: make(chan any, 100)}, WithEndpointOptions(mailbox.WithMaxFrame(1<<10)))
		f.n.Root().Send(f.x, "boom")
		testutil.Receive(t, f.r.got, "boom")
		if err := testutil.Receive(t, errs, "NotifyFailed's error"); !errors.Is(err, mailbox.ErrMessageTooLarge) {
			t.Fatalf("NotifyFailed: %v; want ErrMessageTooLarge", err)
		}
		time.Sleep(50 * time.Millisecond) // ten acknowledgement delays
		if got := f.down.Stats().Retained; got != 1 {
			t.Fatalf("%d retained after the notice failed; want 1, the failed message", got)
		}
		f.n.Root().Send(f.x, "b") // resumed by the strategy
		testutil.Receive(t, f.r.got, "b")
		time.Sleep(50 * time.Millisecond)
		if got := f.down.Stats().Retained; got != 2 {
			t.Fatalf("%d retained after a later message finished; want 2, the failed one and it", got)
		}
	})
}

// TestFailureNoticeRetried: after a notice that could not be queued, a
// second NotifyFailed for the same failed message, with a smaller notice,
// sends it and acknowledges the message behind it.
func TestFailureNoticeRetried(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		open := make(chan struct{})
		close(open)
		errs := make(chan error, 2)
		notices := &recorder{got: make(chan any, 10)}
		f := newFailingChildOpts(t, inline, func(l *Link) pa.SupervisorStrategy {
			return notifyingStrategy{up: l, gate: open, to: pa.NewPID("n", "notices"), notice: make([]byte, 4<<10), errs: errs, retry: "x failed, briefly"}
		}, &recorder{got: make(chan any, 100)}, WithEndpointOptions(mailbox.WithMaxFrame(1<<10)))
		if _, err := f.n.Root().SpawnNamed(pa.PropsFromProducer(func() pa.Actor { return notices }), "notices"); err != nil {
			t.Fatal(err)
		}
		f.n.Root().Send(f.x, "boom")
		testutil.Receive(t, f.r.got, "boom")
		if err := testutil.Receive(t, errs, "the first NotifyFailed"); !errors.Is(err, mailbox.ErrMessageTooLarge) {
			t.Fatalf("first NotifyFailed: %v; want ErrMessageTooLarge", err)
		}
		if err := testutil.Receive(t, errs, "the second NotifyFailed"); err != nil {
			t.Fatalf("second NotifyFailed: %v", err)
		}
		if got := testutil.Receive(t, notices.got, "the notice"); got != "x failed, briefly" {
			t.Fatalf("notice %v; want the second", got)
		}
		testutil.Eventually(t, "boom acknowledged", func() bool { return f.down.Stats().Retained == 0 })
	})
}

type finishingStrategy struct{ up *Link }

func (s finishingStrategy) HandleFailure(_ *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, _ *pa.RestartStatistics, _, msg any) {
	s.up.Finished(msg)
	sup.ResumeChildren(child)
}

// TestHoldBytes: a down link holds messages up to WithHoldBytes (a larger
// one alone), then dead-letters them with ErrHeldFull.
func TestHoldBytes(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	n := newNode(t, "n", WithHoldBytes(1000), WithLogger(buf.logger(zerolog.WarnLevel)))
	down, err := n.ChildLink("1")
	if err != nil {
		t.Fatal(err)
	}
	x := pa.NewPID("n/1", "x")
	n.Root().Send(x, make([]byte, 5000)) // larger than the bound, alone: held
	if s := down.Stats(); s.Held != 1 || s.HeldBytes < 5000 {
		t.Fatalf("stats %+v; want one held message of 5000+ bytes", s)
	}
	n.Root().Send(x, make([]byte, 10)) // past the bound now
	if s := down.Stats(); s.Held != 1 {
		t.Fatalf("stats %+v; want still one held message", s)
	}
	if _, ok := buf.find(map[string]string{"message": "dead letter", "error": ErrHeldFull.Error()}); !ok {
		t.Fatalf("no dead-letter line with ErrHeldFull:\n%s", buf.String())
	}
	if err := down.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := down.Stats(); s.Held != 0 || s.HeldBytes != 0 {
		t.Fatalf("after Close: %+v; want nothing held", s)
	}
	// An unencodable message is refused at once, not held.
	n2 := newNode(t, "m", WithLogger(buf.logger(zerolog.WarnLevel)))
	if _, err := n2.ChildLink("1"); err != nil {
		t.Fatal(err)
	}
	n2.Root().Send(pa.NewPID("m/1", "x"), struct{ A int }{1})
	if _, ok := buf.find(map[string]string{"message": "dead letter", "error": mailbox.ErrTypeNotRegistered.Error(), "target": "x@m/1"}); !ok {
		t.Fatalf("no dead-letter line for an unregistered type sent to a down link:\n%s", buf.String())
	}
}

// fakeProcess records what reaches it.
type fakeProcess struct {
	mu   sync.Mutex
	user []any
	sys  []any
}

func (f *fakeProcess) SendUserMessage(_ *pa.PID, m any) {
	f.mu.Lock()
	f.user = append(f.user, m)
	f.mu.Unlock()
}

func (f *fakeProcess) SendSystemMessage(_ *pa.PID, m any) {
	f.mu.Lock()
	f.sys = append(f.sys, m)
	f.mu.Unlock()
}

func (f *fakeProcess) Stop(pid *pa.PID) { f.SendSystemMessage(pid, &pa.Stop{}) }

// TestIntercept: an intercepted PID resolves to its Process, also when it
// arrives over a link, until Release.
func TestIntercept(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	join(t, n, c)
	f := &fakeProcess{}
	n.Intercept(pa.NewPID("n/2", "root"), f)
	n.Root().Send(pa.NewPID("n/2", "root"), "direct")
	n.Root().Stop(pa.NewPID("n/2", "root"))
	c.Root().Send(pa.NewPID("n/2", "root"), "relayed") // from the child, through n
	testutil.Eventually(t, "both user messages", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.user) == 2 })
	f.mu.Lock()
	got := fmt.Sprint(f.user, len(f.sys))
	f.mu.Unlock()
	if got != "[direct relayed] 1" {
		t.Fatalf("intercepted: %s; want [direct relayed] 1", got)
	}
	n.Release(pa.NewPID("n/2", "root"))
	if p, ok := n.resolve(pa.NewPID("n/2", "root")); !ok || p == f {
		t.Fatalf("after Release the PID resolves to %T; want no intercept", p)
	}
}

// forBothMailboxes runs a retention test with protoactor's default mailbox
// and with the node's inline mailbox.
func forBothMailboxes(t *testing.T, test func(t *testing.T, inline bool)) {
	for _, inline := range []bool{false, true} {
		name := "default"
		if inline {
			name = "inline"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, inline)
		})
	}
}

// TestRetainUndecodableBehindARunningMessage: a message that does not
// decode arrives while the actor still runs the one before it (the link's
// reader lent its call to it, and a fresh reader took the role over). The
// acknowledgement of the undecodable one must not cover the running one:
// when the child dies before that Receive returns, it is redelivered.
func TestRetainUndecodableBehindARunningMessage(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		n, down := retainedParent(t, 1<<20)
		x := pa.NewPID("n/1", "x")
		gate := make(chan struct{})
		defer close(gate)
		r1 := &recorder{got: make(chan any, 100), block: 1, gate: gate}
		c1, up1 := retainedChildOn(t, down, 1, r1, inline)
		n.Root().Send(x, 1)
		if got := testutil.Receive(t, r1.got, "the message that blocks"); got != 1 {
			t.Fatalf("got %v; want 1", got)
		}
		n.Root().Send(x, &badDecode{})
		testutil.Eventually(t, "the undecodable message counted at the child", func() bool { return up1.Stats().DeadLetters >= 1 })
		// An acknowledgement that covered the running message would empty
		// the parent's retention within a moment.
		if testutil.Poll(50*time.Millisecond, func() bool { return down.Stats().Retained == 0 }) {
			t.Fatalf("after the undecodable message: %+v; want the running message still retained", down.Stats())
		}
		kill(t, down, c1, up1)
		r2 := &recorder{got: make(chan any, 100)}
		c2, _ := retainedChildOn(t, down, 2, r2, inline)
		defer c2.Close(context.Background())
		if got := testutil.Receive(t, r2.got, "the unfinished message in the next incarnation"); got != 1 {
			t.Fatalf("second incarnation got %v; want 1", got)
		}
	})
}

// TestRetainRefusedMessageIsFinished: a message to the retained actor that a
// guard of the child's node refuses is a dead letter, finished as it
// arrives like one that does not decode: the acknowledgements that follow
// count it, so what the actor finished after it is released by the parent
// (not retained for good, and sent again to the next incarnation).
func TestRetainRefusedMessageIsFinished(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		n, down := retainedParent(t, 1<<20)
		x := pa.NewPID("n/1", "x")
		r := &recorder{got: make(chan any, 100)}
		c, _ := retainedChildOn(t, down, 1, r, inline)
		defer c.Close(context.Background())
		c.AddGuard(func(_ *Link, env *mailbox.Envelope) error {
			if env.Message == "refused" {
				return ErrRefused
			}
			return nil
		})
		n.Root().Send(x, 1)
		n.Root().Send(x, "refused")
		n.Root().Send(x, 2)
		for want := 1; want <= 2; want++ {
			if got := testutil.Receive(t, r.got, "a message the guard lets through"); got != want {
				t.Fatalf("got %v; want %d", got, want)
			}
		}
		testutil.Eventually(t, "everything acknowledged", func() bool { s := down.Stats(); return s.Retained == 0 && s.RetainedBytes == 0 })
	})
}

// TestFinishedIgnoresAnotherActorsFailure: a supervisor strategy passes
// every failure it handles to Link.Finished, as its doc allows (other
// messages are ignored). A sibling of the counted actor fails while the
// counted actor still runs a message of the link: that message must stay
// unacknowledged until its Receive returns, so that it is redelivered when
// the child dies meanwhile.
func TestFinishedIgnoresAnotherActorsFailure(t *testing.T) {
	t.Parallel()
	forBothMailboxes(t, func(t *testing.T, inline bool) {
		n, down := retainedParent(t, 1<<20)
		c, up := childNode(t, 1)
		gate := make(chan struct{})
		defer close(gate)
		r := &recorder{got: make(chan any, 100), block: 1, gate: gate}
		props := pa.PropsFromProducer(func() pa.Actor { return r }, pa.WithReceiverMiddleware(up.AckFor("n/1-sup/x")))
		if inline {
			props = c.Inline(props)
		}
		handled := make(chan struct{}, 1)
		strategy := signallingStrategy{finishingStrategy{up}, handled}
		spawned := make(chan struct{})
		sup := pa.PropsFromFunc(func(ctx pa.Context) {
			if _, ok := ctx.Message().(*pa.Started); ok {
				ctx.SpawnNamed(props, "x")
				ctx.SpawnNamed(pa.PropsFromFunc(func(ctx pa.Context) {
					if ctx.Message() == "boom" {
						panic("boom")
					}
				}), "y")
				close(spawned)
			}
		}, pa.WithSupervisor(strategy))
		if _, err := c.Root().SpawnNamed(sup, "n/1-sup"); err != nil {
			t.Fatal(err)
		}
		testutil.Receive(t, spawned, "x and y spawned")
		if err := down.Retain("n/1-sup/x", 1<<20); err != nil {
			t.Fatal(err)
		}
		connectPipe(t, down, up)
		x := pa.NewPID("n/1", "n/1-sup/x")
		n.Root().Send(x, 1)
		if got := testutil.Receive(t, r.got, "the message that blocks"); got != 1 {
			t.Fatalf("got %v; want 1", got)
		}
		c.Root().Send(pa.NewPID("n/1", "n/1-sup/y"), "boom")
		testutil.Receive(t, handled, "y's failure handled")
		// An acknowledgement that covered the running message would empty
		// the parent's retention within a moment.
		if testutil.Poll(50*time.Millisecond, func() bool { return down.Stats().Retained == 0 }) {
			t.Fatalf("after y failed: %+v; want x's running message still retained", down.Stats())
		}
		kill(t, down, c, up)
		if s := down.Stats(); s.Held != 1 {
			t.Fatalf("after the loss: %+v; want the unfinished message held to redeliver", s)
		}
	})
}

// signallingStrategy is a strategy that says when it has handled a failure.
type signallingStrategy struct {
	pa.SupervisorStrategy
	handled chan<- struct{}
}

func (s signallingStrategy) HandleFailure(sys *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, rs *pa.RestartStatistics, reason, msg any) {
	s.SupervisorStrategy.HandleFailure(sys, sup, child, rs, reason, msg)
	s.handled <- struct{}{}
}

// waitsForRoom reports whether a sender waits for room in l's window.
func waitsForRoom(l *Link) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ret.room != nil
}

// fillWindow sends x a message that blocks it ("first", which r must block
// on), then 40-byte payloads until down's window (100 bytes) is full, and
// returns how many payloads it sent.
func fillWindow(t *testing.T, n *Node, down *Link, r *recorder, x *pa.PID) int {
	t.Helper()
	n.Root().Send(x, "first")
	testutil.Receive(t, r.got, "the blocking message")
	payload := string(make([]byte, 40))
	sent := 0
	for ; sent < 10 && down.Stats().RetainedBytes < 100; sent++ {
		n.Root().Send(x, payload)
	}
	if down.Stats().RetainedBytes < 100 {
		t.Fatalf("window not full after %d payloads: %+v", sent, down.Stats())
	}
	return sent
}

// TestRetainedRequestWaitingForRoomSurvivesLoss: a request to the retained
// actor whose sender waits for room in the window when the child dies was
// never queued; like a request held while the link is down, it goes to the
// next incarnation, which answers it.
func TestRetainedRequestWaitingForRoomSurvivesLoss(t *testing.T) {
	t.Parallel()
	n, down := retainedParent(t, 100)
	x := pa.NewPID("n/1", "x")
	gate := make(chan struct{})
	defer close(gate)
	r1 := &recorder{got: make(chan any, 100), block: "first", gate: gate}
	c1, up1 := retainedChild(t, down, 1, r1)
	payloads := fillWindow(t, n, down, r1, x)
	futures := make(chan *pa.Future, 1)
	go func() { futures <- n.Root().RequestFuture(x, "question", testTimeout) }()
	testutil.Eventually(t, "the request waiting for room", func() bool { return waitsForRoom(down) })
	kill(t, down, c1, up1)
	r2 := &recorder{got: make(chan any, 100)}
	c2, _ := retainedChild(t, down, 2, r2)
	defer c2.Close(context.Background())
	f := testutil.Receive(t, futures, "the request sent")
	if res, err := f.Result(); err != nil || res != "question" {
		t.Fatalf("request that waited for room: got %v, %v; want question", res, err)
	}
	if got := testutil.Receive(t, r2.got, "the redelivered message"); got != "first" {
		t.Fatalf("second incarnation got %v first; want first", got)
	}
	for range payloads {
		testutil.Receive(t, r2.got, "a redelivered payload")
	}
	if got := testutil.Receive(t, r2.got, "the request"); got != "question" {
		t.Fatalf("second incarnation got %v after the payloads; want question", got)
	}
}

// TestRetainFlushCutKeepsOrder: the next incarnation dies while its link
// sends what was held (its actor does not finish the first message, so the
// flush waits for room in the window); the message the flush was sending
// goes to the incarnation after it in its place, before those held behind
// it.
func TestRetainFlushCutKeepsOrder(t *testing.T) {
	t.Parallel()
	n, down := retainedParent(t, 100)
	x := pa.NewPID("n/1", "x")
	gate := make(chan struct{})
	defer close(gate)
	r1 := &recorder{got: make(chan any, 100), block: "first", gate: gate}
	c1, up1 := retainedChild(t, down, 1, r1)
	payloads := fillWindow(t, n, down, r1, x)
	kill(t, down, c1, up1)
	after := []string{"d1", "d2", "d3"}
	for _, m := range after {
		n.Root().Send(x, m)
	}

	// The second incarnation blocks on "first" too: the flush fills the
	// window again and waits for room with "d1".
	cutFlush(t, down, gate)

	r3 := &recorder{got: make(chan any, 100)}
	c3, _ := retainedChild(t, down, 3, r3)
	defer c3.Close(context.Background())
	want := []any{"first"}
	for range payloads {
		want = append(want, string(make([]byte, 40)))
	}
	for _, m := range after {
		want = append(want, m)
	}
	for i, w := range want {
		if got := testutil.Receive(t, r3.got, "a message in the third incarnation"); got != w {
			t.Fatalf("third incarnation got %q as message %d; want %q", got, i, w)
		}
	}
}

// TestHeldUnwatchSurvivesACutFlush: a Watch and the Unwatch that cancels it,
// both held while the link was down, are still a cancelled watch after the
// stream that was sending them is lost: nothing is left in the link's
// tables for a later loss to answer with a Terminated the watcher gave up.
func TestHeldUnwatchSurvivesACutFlush(t *testing.T) {
	t.Parallel()
	n, down := retainedParent(t, 100)
	x := pa.NewPID("n/1", "x")
	gate := make(chan struct{})
	defer close(gate)
	r1 := &recorder{got: make(chan any, 100), block: "first", gate: gate}
	c1, up1 := retainedChild(t, down, 1, r1)
	fillWindow(t, n, down, r1, x)
	kill(t, down, c1, up1)
	// Held behind the redelivered messages: a message the flush will wait
	// with, then a watch and its cancellation.
	n.Root().Send(x, "d1")
	w, _ := spawnWatcher(n, pa.NewPID("n/1", "y"))
	testutil.Eventually(t, "the Watch held", func() bool { return down.Stats().Watches == 1 })
	n.Root().Send(w, "unwatch")
	testutil.Eventually(t, "the Unwatch held", func() bool { return down.Stats().Watches == 0 })

	cutFlush(t, down, gate)
	if s := down.Stats(); s.Watches != 0 {
		t.Fatalf("after the cut flush: %+v; want no watch (it was cancelled)", s)
	}
}

// TestRetainAckedBeforeRecordedNotRedelivered: a message whose stream was
// lost between its send and its record in the retention is sent again only
// if the peer had not acknowledged it. One the actor finished (or failed
// on) before the loss is not delivered to the next incarnation: a process
// actor whose root panicked on it would fail on it again, a crash loop.
// (Sends that wait for room in the window, and the flush of held
// messages, record after sending; a window of 1 byte makes the second
// message wait until the first is finished.)
func TestRetainAckedBeforeRecordedNotRedelivered(t *testing.T) {
	for _, inline := range []bool{false, true} { // one at a time: the hook is global
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) { ackedBeforeRecorded(t, inline) })
	}
}

func ackedBeforeRecorded(t *testing.T, inline bool) {
	{
		n, down := retainedParent(t, 1)
		x := pa.NewPID("n/1", "x")
		gate := make(chan struct{})
		r1 := &recorder{got: make(chan any, 100), block: "first", gate: gate}
		c1, up1 := retainedChildOn(t, down, 1, r1, inline)
		go func() { // not t's goroutine: no t.Fatal here; a gate never opened fails the test below
			for end := time.Now().Add(testutil.Timeout); !waitsForRoom(down) && time.Now().Before(end); {
				time.Sleep(time.Millisecond)
			}
			close(gate)
		}()
		// "once" is written, finished, acknowledged, and its stream lost,
		// before its sender records it.
		hooked := false
		hook := func(l *Link, message any) {
			if l != down || message != "once" {
				return
			}
			hooked = true
			for _, want := range []string{"first", "once"} {
				if got := testutil.Receive(t, r1.got, "a message in the first incarnation"); got != want {
					t.Errorf("first incarnation got %v; want %s", got, want)
				}
			}
			testutil.Eventually(t, "its acknowledgement", func() bool {
				down.mu.Lock()
				defer down.mu.Unlock()
				return down.ret.acked == 2
			})
			kill(t, down, c1, up1)
		}
		afterRetainedSend.Store(&hook)
		n.Root().Send(x, "first")
		n.Root().Send(x, "once") // waits for "first" to be finished and acknowledged
		afterRetainedSend.Store(nil)
		if !hooked {
			t.Fatal("the send of \"once\" did not record after sending")
		}
		n.Root().Send(x, "after")
		r2 := &recorder{got: make(chan any, 100)}
		c2, _ := retainedChildOn(t, down, 2, r2, inline)
		defer c2.Close(context.Background())
		if got := testutil.Receive(t, r2.got, "the first message in the second incarnation"); got != "after" {
			t.Fatalf("second incarnation got %v first; want \"after\" (\"once\" was acknowledged before the loss)", got)
		}
	}
}
