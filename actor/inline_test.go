package actor

import (
	"errors"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// The no-deadlock rules of inline delivery (inline.go, mailbox/reader.go).
// No test here times anything: each asserts what arrived, in what order and
// how many times, and a broken rule shows as a wait that ends at
// testTimeout.

func readerStats(l *Link) mailbox.ReaderStats { return l.ReaderStats() }

// asksAndWaits answers a request by asking next (over whatever link leads
// there) and waiting for its answer inside Receive, then passing it back
// with its own name in front.
type asksAndWaits struct {
	name string
	next *pa.PID
}

func (a *asksAndWaits) Receive(ctx pa.Context) {
	m, ok := ctx.Message().(string)
	if !ok {
		return
	}
	if a.next == nil {
		ctx.Respond(a.name + ":" + m)
		return
	}
	res, err := ctx.RequestFuture(a.next, m, testTimeout).Result()
	if err != nil {
		ctx.Respond(fmt.Sprintf("%s failed: %v", a.name, err))
		return
	}
	ctx.Respond(a.name + ":" + res.(string))
}

func TestInlineRequestOverSameLink(t *testing.T) {
	n, c := newNode(t, "n"), newNode(t, "n/1")
	down, _ := join(t, n, c)
	// The parent's echo is asked by the child's actor from inside its
	// Receive, which runs on the child's reader: the answer comes back over
	// the link that reader must go on reading.
	last := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return &asksAndWaits{name: "parent"} }))
	first, err := c.Root().SpawnNamed(c.Inline(pa.PropsFromProducer(func() pa.Actor {
		return &asksAndWaits{name: "child", next: last}
	})), "asker")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		res, err := request(n.Root(), first, fmt.Sprint(i))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if want := fmt.Sprintf("child:parent:%d", i); res != want {
			t.Fatalf("request %d: got %v; want %s", i, res, want)
		}
	}
	_ = down
}

func TestInlineChainAcrossTwoChildren(t *testing.T) {
	n, c1, c2 := newNode(t, "n"), newNode(t, "n/1"), newNode(t, "n/2")
	_, up1 := join(t, n, c1)
	join(t, n, c2)
	// A on n/1 asks B on n/2 (relayed by n), B asks C on n/1 and waits:
	// C's request arrives on the reader of n/1 that runs A, which waits.
	inline := func(node *Node, name string, next *pa.PID) *pa.PID {
		pid, err := node.Root().SpawnNamed(node.Inline(pa.PropsFromProducer(func() pa.Actor {
			return &asksAndWaits{name: name, next: next}
		})), name)
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	cPID := inline(c1, "C", nil)
	bPID := inline(c2, "B", cPID)
	aPID := inline(c1, "A", bPID)
	for i := range 10 {
		res, err := request(n.Root(), aPID, fmt.Sprint(i))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if want := fmt.Sprintf("A:B:C:%d", i); res != want {
			t.Fatalf("request %d: got %v; want %s", i, res, want)
		}
	}
	if s := readerStats(up1); s.Handovers == 0 {
		t.Fatalf("n/1's reader was never handed over (%+v): A ran elsewhere", s)
	}
}

// blocker blocks in Receive on release the first time it gets "block".
type blocker struct {
	release <-chan struct{}
	entered chan<- struct{}
	done    atomic.Int64
}

func (b *blocker) Receive(ctx pa.Context) {
	if m, ok := ctx.Message().(string); ok && m == "block" {
		b.entered <- struct{}{}
		<-b.release
		b.done.Add(1)
	}
}

// countTo counts []byte messages and closes reached at want.
type countTo struct {
	n       atomic.Int64
	want    int64
	reached chan struct{}
}

func (c *countTo) Receive(ctx pa.Context) {
	if _, ok := ctx.Message().([]byte); ok {
		if c.n.Add(1) == c.want {
			close(c.reached)
		}
	}
}

func TestInlineBlockedHandlerLinkGoesOn(t *testing.T) {
	const others = 10000
	n, c := newNode(t, "n"), newNode(t, "n/1")
	_, up := join(t, n, c)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failing test must not leave the reader blocked
	entered := make(chan struct{}, 1)
	b := &blocker{release: release, entered: entered}
	bPID, _ := c.Root().SpawnNamed(c.Inline(pa.PropsFromProducer(func() pa.Actor { return b })), "blocker")
	counter := &countTo{want: others, reached: make(chan struct{})}
	cPID, _ := c.Root().SpawnNamed(c.Inline(pa.PropsFromProducer(func() pa.Actor { return counter })), "counter")

	// The blocker is idle (Started has run): "block" runs on the reader.
	testutil.Eventually(t, "the blocker to be idle", func() bool { return idleInline(c, bPID) })
	n.Root().Send(bPID, "block")
	testutil.Receive(t, entered, "the blocker's Receive")
	msg := make([]byte, 16)
	for range others {
		n.Root().Send(cPID, msg)
	}
	// The blocker waits until every other message has been counted: only a
	// reader that was handed over can deliver them.
	testutil.Receive(t, counter.reached, fmt.Sprintf("%d messages to another actor of the link", others))
	unblock()
	testutil.Eventually(t, "the blocker to finish", func() bool { return b.done.Load() == 1 })
	if got := counter.n.Load(); got != others {
		t.Fatalf("counted %d; want %d", got, others)
	}
	if s := readerStats(up); s.Handovers == 0 || s.MonitorTicks == 0 {
		t.Fatalf("reader stats %+v: want a hand-over by the monitor", s)
	}
}

// idleInline reports whether pid's inline mailbox on n is idle and empty.
func idleInline(n *Node, pid *pa.PID) bool {
	v, ok := n.inline.Load(pid.Id)
	if !ok {
		return false
	}
	m := v.(*inlineMailbox)
	return m.status.Load() == mbIdle && m.sysN.Load() == 0 && m.userN.Load() == 0
}

// selfFlooded counts what it gets, by origin.
type selfFlooded struct {
	fromLink, local atomic.Int64
}

func (s *selfFlooded) Receive(ctx pa.Context) {
	switch ctx.Message().(type) {
	case []byte:
		s.fromLink.Add(1)
	case int:
		s.local.Add(1)
	}
}

func TestInlineLocalFloodDoesNotStarveLink(t *testing.T) {
	const linkMsgs = 2000
	n, c := newNode(t, "n"), newNode(t, "n/1")
	join(t, n, c)
	x := &selfFlooded{}
	xPID, _ := c.Root().SpawnNamed(c.Inline(pa.PropsFromProducer(func() pa.Actor { return x })), "x")
	counter := &countTo{want: linkMsgs, reached: make(chan struct{})}
	cPID, _ := c.Root().SpawnNamed(c.Inline(pa.PropsFromProducer(func() pa.Actor { return counter })), "counter")

	// A local sender keeps x's mailbox busy for as long as the link's
	// messages for the other actor are still arriving.
	stop := make(chan struct{})
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.Root().Send(xPID, i)
			if i%256 == 255 {
				time.Sleep(10 * time.Microsecond) // the flooder must not starve the test itself
			}
		}
	}()
	testutil.Eventually(t, "the flood to start", func() bool { return x.local.Load() > 1000 })
	msg := make([]byte, 16)
	for range linkMsgs {
		// Every other message for x itself: it arrives while x is busy
		// and starts inline runs that local senders then extend.
		n.Root().Send(xPID, msg)
		n.Root().Send(cPID, msg)
	}
	testutil.Receive(t, counter.reached, "the link's messages for the other actor")
	close(stop)
	<-flooded
	testutil.Eventually(t, "x to take the link's messages", func() bool { return x.fromLink.Load() == linkMsgs })
}

// failsOnce panics on "boom" and counts its starts and the strings it
// handled.
type failsOnce struct {
	starts  *atomic.Int64
	handled chan<- string
}

func (f *failsOnce) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		f.starts.Add(1)
	case string:
		if m == "boom" {
			panic("boom")
		}
		f.handled <- m
	}
}

func TestInlinePanicSupervisionUnchanged(t *testing.T) {
	n, c := newNode(t, "n"), newNode(t, "n/1")
	join(t, n, c)
	var starts atomic.Int64
	handled := make(chan string, 4)
	var decided atomic.Int64
	strategy := pa.NewOneForOneStrategy(10, time.Minute, func(reason any) pa.Directive {
		decided.Add(1)
		return pa.RestartDirective
	})
	parent := c.Root().Spawn(pa.PropsFromFunc(func(ctx pa.Context) {
		if _, ok := ctx.Message().(*pa.Started); ok {
			ctx.SpawnNamed(c.Inline(pa.PropsFromProducer(func() pa.Actor {
				return &failsOnce{starts: &starts, handled: handled}
			})), "fails")
		}
	}, pa.WithSupervisor(strategy)))
	target := pa.NewPID(c.Address(), parent.Id+"/fails")
	testutil.Eventually(t, "the child to start", func() bool { return starts.Load() == 1 })

	n.Root().Send(target, "before")
	n.Root().Send(target, "boom") // run inline on the reader, which must survive it
	n.Root().Send(target, "after")
	if got := testutil.Receive(t, handled, "before"); got != "before" {
		t.Fatalf("got %q; want before", got)
	}
	if got := testutil.Receive(t, handled, "after"); got != "after" {
		t.Fatalf("got %q; want after (the failing message is lost, the next one handled)", got)
	}
	if d, s := decided.Load(), starts.Load(); d != 1 || s != 2 {
		t.Fatalf("strategy decided %d times, actor started %d times; want 1 and 2 (one restart)", d, s)
	}
	// The link still carries requests both ways.
	echoPID := c.Root().Spawn(c.Inline(echoProps()))
	if res, err := request(n.Root(), echoPID, "still up"); err != nil || res != "still up" {
		t.Fatalf("after the panic: %v, %v", res, err)
	}
}

// sprayer sends count messages to target from inside its Receive.
type sprayer struct {
	target *pa.PID
	count  int
	done   chan<- error
}

func (s *sprayer) Receive(ctx pa.Context) {
	if _, ok := ctx.Message().(string); !ok {
		return
	}
	msg := make([]byte, 64)
	for range s.count {
		ctx.Send(s.target, msg)
	}
	s.done <- nil
}

// gate blocks in its first Receive until release; with a bounded mailbox
// (pa.Bounded(4): protoactor's Bounded(1) never delivers), it stalls the
// reader that delivers to it.
type gate struct {
	release <-chan struct{}
	passed  atomic.Bool
	counter *countTo
}

func (g *gate) Receive(ctx pa.Context) {
	if _, ok := ctx.Message().([]byte); !ok {
		return
	}
	if !g.passed.Swap(true) {
		<-g.release
	}
	g.counter.Receive(ctx)
}

func TestInlineSendIntoFullLaneWaits(t *testing.T) {
	// The parent stops reading (its reader is stuck on a full bounded
	// mailbox), so the child's lane to it (64 messages) fills. An inline
	// Receive in the child sends far more than the 16 × overflow a reader
	// answering its peer may queue: it must hand its reader role over and
	// wait for room like any sender, not break the link with
	// mailbox.ErrPeerStalled.
	const sent = 20000
	n := newNode(t, "n")
	// The monitor stays out of it: only the full lane hands the role over.
	c := newNode(t, "n/1", WithEndpointOptions(mailbox.WithUserQueue(64), mailbox.WithHandlerBudget(time.Hour)))
	down, err := n.ChildLink("1")
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.ParentLink()
	if err != nil {
		t.Fatal(err)
	}
	// Pipes of the default size (64 KiB), far smaller than what is sent.
	a, b, err := mailbox.Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	connectPair(t, down, up, a, b)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	counter := &countTo{want: sent, reached: make(chan struct{})}
	g := &gate{release: release, counter: counter}
	gPID := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return g }, pa.WithMailbox(pa.Bounded(4))))
	done := make(chan error, 1)
	sPID, _ := c.Root().SpawnNamed(c.Inline(pa.PropsFromProducer(func() pa.Actor {
		return &sprayer{target: gPID, count: sent, done: done}
	})), "sprayer")
	testutil.Eventually(t, "the sprayer to be idle", func() bool { return idleInline(c, sPID) }) // "go" runs on the reader
	n.Root().Send(sPID, "go")
	testutil.Eventually(t, "the sprayer to meet the full lane", func() bool { return readerStats(up).Handovers > 0 || !up.IsUp() })
	if !up.IsUp() {
		t.Fatal("the link broke: the inline Receive overflowed the lane")
	}
	unblock()
	if err := testutil.Receive(t, done, "the sprayer"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-counter.reached:
	case <-time.After(testTimeout):
		t.Fatalf("counted %d of %d at the parent; gate passed %v; link up %v, stats %+v", counter.n.Load(), sent, g.passed.Load(), up.IsUp(), readerStats(up))
	}
	if !up.IsUp() {
		t.Fatal("the link broke")
	}
}

func TestInlineStoppedActorDeadLetters(t *testing.T) {
	n, c := newNode(t, "n"), newNode(t, "n/1")
	join(t, n, c)
	pid, _ := c.Root().SpawnNamed(c.Inline(echoProps()), "short")
	if res, err := request(n.Root(), pid, "hi"); err != nil || res != "hi" {
		t.Fatalf("got %v, %v", res, err)
	}
	// A PID of its own: pid caches n's link, and c's Watch sent through it
	// would reach c from its parent link naming a watcher not behind it.
	if err := c.Root().StopFuture(pa.NewPID(pid.Address, pid.Id)).Wait(); err != nil {
		t.Fatal(err)
	}
	// The link's reader cached the mailbox: a request to the stopped actor
	// must still fail at once, through protoactor's dead letters.
	_, err := request(n.Root(), pid, "again")
	if !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("got %v; want %v", err, pa.ErrDeadLetter)
	}
	if _, ok := c.inline.Load(pid.Id); ok {
		t.Fatal("the stopped actor's mailbox is still registered")
	}
}

// TestInlineStoppingActorDeadLetters sends a request while the inline
// mailbox still runs its actor's Stop, after protoactor has removed the actor
// from the registry and told its watchers, before the mailbox knows it is
// gone: the request must fail at once as a dead letter, as a send after
// StopFuture does in one process, not vanish.
func TestInlineStoppingActorDeadLetters(t *testing.T) {
	n, c := newNode(t, "n"), newNode(t, "n/1")
	join(t, n, c)
	pid, _ := c.Root().SpawnNamed(c.Inline(echoProps()), "stopping")
	if res, err := request(n.Root(), pid, "hi"); err != nil || res != "hi" {
		t.Fatalf("got %v, %v", res, err)
	}
	v, ok := c.inline.Load(pid.Id)
	if !ok {
		t.Fatal("the actor's inline mailbox is not registered")
	}
	mb := v.(*inlineMailbox)
	stopped := make(chan struct{})
	release := make(chan struct{})
	afterStopInvoke = func(m *inlineMailbox) {
		if m != mb {
			return
		}
		close(stopped)
		<-release
	}
	t.Cleanup(func() { afterStopInvoke = nil })
	stop := c.Root().StopFuture(pa.NewPID(pid.Address, pid.Id)) // not pid, which caches n's link
	testutil.Receive(t, stopped, "the stop")
	if err := stop.Wait(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := request(n.Root(), pid, "again")
		errc <- err
	}()
	reached := testutil.Poll(testTimeout, func() bool { return mb.userN.Load() > 0 })
	close(release)
	if !reached {
		t.Fatal("the request never reached the stopping mailbox")
	}
	if err := <-errc; !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("got %v; want %v", err, pa.ErrDeadLetter)
	}
}

// seqChecker records []byte messages numbered by their first byte pair and
// counts those that arrive out of order.
type seqChecker struct {
	last, outOfOrder, got atomic.Int64
	started, boom         chan<- struct{}
}

func (s *seqChecker) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		s.started <- struct{}{}
	case string:
		if m == "boom" {
			s.boom <- struct{}{}
			panic("boom")
		}
	case []byte:
		n := int64(m[0])<<8 | int64(m[1])
		if n != s.last.Load()+1 {
			s.outOfOrder.Add(1)
		}
		s.last.Store(n)
		s.got.Add(1)
	}
}

// holdStrategy resumes a failed child only once release is closed.
type holdStrategy struct {
	failed  chan<- struct{}
	release <-chan struct{}
}

func (h holdStrategy) HandleFailure(_ *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, _ *pa.RestartStatistics, _, _ any) {
	h.failed <- struct{}{}
	go func() {
		<-h.release
		sup.ResumeChildren(child)
	}()
}

func TestInlineOrderAcrossHandOvers(t *testing.T) {
	// While an actor's mailbox is suspended (its supervisor has not
	// decided yet), every message from the link finds it idle and is
	// queued by a reader that lends its call: a reader that loses the role
	// there (afterLend holds it past the budget) must have queued its
	// message before the next reader queues the following ones.
	const msgs = 300
	var calls atomic.Int64
	afterLend = func() {
		if calls.Add(1)%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	t.Cleanup(func() { afterLend = nil })
	n := newNode(t, "n")
	c := newNode(t, "n/1", WithEndpointOptions(mailbox.WithHandlerBudget(50*time.Microsecond)))
	_, up := join(t, n, c)
	failed, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	resume := func() { once.Do(func() { close(release) }) }
	t.Cleanup(resume)
	boom, started := make(chan struct{}, 1), make(chan struct{}, 1)
	checker := &seqChecker{boom: boom, started: started}
	parent := c.Root().Spawn(pa.PropsFromFunc(func(ctx pa.Context) {
		if _, ok := ctx.Message().(*pa.Started); ok {
			ctx.SpawnNamed(c.Inline(pa.PropsFromProducer(func() pa.Actor { return checker })), "checker")
		}
	}, pa.WithSupervisor(holdStrategy{failed: failed, release: release})))
	target := pa.NewPID(c.Address(), parent.Id+"/checker")
	testutil.Receive(t, started, "the checker to start")
	n.Root().Send(target, "boom")
	testutil.Receive(t, boom, "the failing message")
	testutil.Receive(t, failed, "the supervisor to hold the failure")
	for i := 1; i <= msgs; i++ {
		n.Root().Send(target, []byte{byte(i >> 8), byte(i)})
	}
	testutil.Eventually(t, "the reader to hand over", func() bool { return up.ReaderStats().Handovers > 0 })
	resume()
	testutil.Eventually(t, "every message", func() bool { return checker.got.Load() == msgs })
	if o := checker.outOfOrder.Load(); o != 0 {
		t.Fatalf("%d of %d messages out of order", o, msgs)
	}
}

func TestInlineKeepsChosenMailboxAndDispatcher(t *testing.T) {
	n := newNode(t, "n")
	// A kind that chose its mailbox keeps it: no inline mailbox registers.
	own, err := n.Root().SpawnNamed(n.Inline(pa.PropsFromProducer(func() pa.Actor { return echo{} },
		pa.WithMailbox(pa.Unbounded()))), "own")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := n.inline.Load(own.Id); ok {
		t.Fatal("an actor with its own mailbox got the inline one")
	}
	// One that did not gets it, and keeps the dispatcher it chose.
	chosen := pa.NewSynchronizedDispatcher(7)
	props := n.Inline(pa.PropsFromProducer(func() pa.Actor { return echo{} }, pa.WithDispatcher(chosen)))
	pid, err := n.Root().SpawnNamed(props, "inline")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := n.inline.Load(pid.Id)
	if !ok {
		t.Fatal("no inline mailbox registered")
	}
	if d := v.(*inlineMailbox).dispatcher; d != chosen {
		t.Fatalf("dispatcher %v; want the one the props chose", d)
	}
	// The props given to Inline are not changed (a producer may share them).
	base := pa.PropsFromProducer(func() pa.Actor { return echo{} })
	_ = n.Inline(base)
	if propsField(base, "mailboxProducer") || propsField(base, "dispatcher") {
		t.Fatal("Inline changed the props it was given")
	}
	var nilNode *Node
	if got := nilNode.Inline(base); got != base {
		t.Fatal("a nil node's Inline did not return the props as they were")
	}
}
