package procnode_test

import (
	"errors"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
)

// The scripts below run once against in-process actors and once against
// process actors, and the answers must be the same: a user moves an actor
// into a child process and changes nothing else (issue: "A process actor
// behaves like an actor").

// counter is the actor of the scripts. "inc" adds one ("stash" makes it stash
// them instead), "get" answers the count, "starts" how many times an
// instance of it started, "boom" panics.
type counter struct {
	n        int
	stashing bool
}

// starts counts Started per actor (its PID pointer, which a restart keeps),
// in whichever process the actor runs.
var (
	startsMu sync.Mutex
	starts   = map[*pa.PID]int{} // guarded by startsMu
)

func (c *counter) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		startsMu.Lock()
		starts[ctx.Self()]++
		startsMu.Unlock()
	case string:
		switch m {
		case "boom":
			panic("boom")
		case "boom-held": // its failure notice is held back (failurenotice_internal_test.go)
			panic("boom-held")
		case "stash":
			c.stashing = true
		case "inc":
			if c.stashing {
				ctx.Stash()
				return
			}
			c.n++
		case "get":
			ctx.Respond(c.n)
		case "starts":
			startsMu.Lock()
			n := starts[ctx.Self()]
			startsMu.Unlock()
			ctx.Respond(n)
		case "exit3": // the process dies: a crash only a process actor can have
			os.Exit(3)
		}
	case []byte: // a panic whose report, with the message, is large
		panic(strings.Repeat("x", 4096))
	}
}

func counterProps() *pa.Props { return pa.PropsFromProducer(func() pa.Actor { return &counter{} }) }

// rewrappedCounterProps is a counter behind a receiver middleware that
// passes each message on in an envelope of its own (as tracing middlewares
// do).
func rewrappedCounterProps() *pa.Props {
	return pa.PropsFromProducer(func() pa.Actor { return &counter{} }, pa.WithReceiverMiddleware(func(next pa.ReceiverFunc) pa.ReceiverFunc {
		return func(c pa.ReceiverContext, env *pa.MessageEnvelope) {
			next(c, &pa.MessageEnvelope{Header: env.Header, Message: env.Message, Sender: env.Sender})
		}
	}))
}

func init() {
	registerKind("sem.counter", func(procnode.Args) (*pa.Props, error) { return counterProps(), nil })
	registerKind("sem.rewrapped", func(procnode.Args) (*pa.Props, error) { return rewrappedCounterProps(), nil })
	registerKind("sem.sink", func(procnode.Args) (*pa.Props, error) { return sinkProps(), nil })
	// sem.gated starts only once the file named by its args exists.
	registerKind("sem.gated", func(args procnode.Args) (*pa.Props, error) {
		path, _ := args.Value.(string)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(path); err == nil {
				return counterProps(), nil
			}
		}
		return nil, errors.New("the gate never opened")
	})
	// sem.failstart's producer fails in the child: every start fails.
	registerKind("sem.failstart", func(procnode.Args) (*pa.Props, error) {
		return nil, errors.New("no start for you")
	})
}

// propsKind is procnode.Props, marking the kind as used (see TestMain).
func propsKind(kind string, opts ...procnode.Option) *pa.Props {
	usedKinds.Store(kind, true)
	return procnode.Props(kind, append([]procnode.Option{procnode.WithStderr(nil)}, opts...)...)
}

// parentActor spawns children on request, under its strategy, and reports
// their Terminated; its strategy reports the failures it sees.
type parentActor struct {
	strategy pa.SupervisorStrategy
	events   chan any // *pa.Terminated of children, failure reasons
}

type spawnChildren struct {
	props *pa.Props
	n     int
}

type getChildren struct{}

func (a *parentActor) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *spawnChildren:
		pids := make([]*pa.PID, m.n)
		for i := range pids {
			pids[i] = ctx.Spawn(m.props)
		}
		ctx.Respond(pids)
	case getChildren:
		ctx.Respond(ctx.Children())
	case *pa.Terminated:
		a.events <- m
	}
}

func (a *parentActor) HandleFailure(sys *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, rs *pa.RestartStatistics, reason, msg any) {
	a.events <- failure{child: child, reason: reason, msg: msg}
	a.strategy.HandleFailure(sys, sup, child, rs, reason, msg)
}

type failure struct {
	child       *pa.PID
	reason, msg any
}

// world is one run of a script: a node, a parent actor with a strategy, and
// its children, in process or process actors.
type world struct {
	t        *testing.T
	n        *procnode.Node
	parent   *pa.PID
	events   chan any
	seen     []any // events taken from the channel so far
	children []*pa.PID
	process  bool
}

func newWorld(t *testing.T, process bool, strategy pa.SupervisorStrategy, children int, opts ...procnode.Option) *world {
	t.Helper()
	return newWorldOf(t, counterProps(), "sem.counter", process, strategy, children, opts...)
}

// newWorldOf is newWorld with other children: in process, actors of props;
// across, process actors of kind (whose root actor is made of the same
// props).
func newWorldOf(t *testing.T, props *pa.Props, kind string, process bool, strategy pa.SupervisorStrategy, children int, opts ...procnode.Option) *world {
	t.Helper()
	w := &world{t: t, n: newNode(t), events: make(chan any, 256), process: process}
	a := &parentActor{strategy: strategy, events: w.events}
	w.parent = w.n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return a }))
	t.Cleanup(func() { _ = w.n.Root().StopFuture(w.parent).Wait() })
	if process {
		props = propsKind(kind, opts...)
	}
	res := request(t, w.n, w.parent, &spawnChildren{props: props, n: children})
	w.children = res.([]*pa.PID)
	return w
}

// ask requests m from child i and returns the answer, or the error's text.
func (w *world) ask(i int, m string) any {
	res, err := w.n.Root().RequestFuture(w.children[i], m, 30*time.Second).Result()
	if err != nil {
		return err.Error()
	}
	return res
}

func (w *world) send(i int, msgs ...string) {
	for _, m := range msgs {
		w.n.Root().Send(w.children[i], m)
	}
}

// crash ends child i's instance without a message, after what was sent to
// it before: a process actor's process is killed (once the child has
// acknowledged what it finished, so nothing is redelivered), an in-process
// actor is restarted.
func (w *world) crash(i int) {
	w.t.Helper()
	pid := w.children[i]
	w.ask(i, "get") // what was sent before is processed: the crash comes after it
	if !w.process {
		proc, _ := w.n.System().ProcessRegistry.Get(pid)
		proc.SendSystemMessage(pid, &pa.Restart{})
		return
	}
	p, ok := w.n.Process(pid)
	if !ok {
		w.t.Fatalf("no process actor for %v", pid)
	}
	testutil.Eventually(w.t, "the child up and acknowledging what it finished", func() bool {
		return p.State() == "up" && linkStats(w.n, p.Address()).Retained == 0
	})
	killPid(w.t, p.OSPid())
}

// killPid sends SIGKILL to one process: never to 0 or below, which would
// kill the test's own process group.
func killPid(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("refusing to kill pid %d", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// waitStarts waits until child i's actor has started n times.
func (w *world) waitStarts(i, n int) {
	w.t.Helper()
	testutil.Eventually(w.t, fmt.Sprintf("child %d started %d times", i, n), func() bool { return w.ask(i, "starts") == n })
}

// nextTerminated waits for the next Terminated the parent gets.
func (w *world) nextTerminated() *pa.Terminated {
	w.t.Helper()
	for {
		select {
		case e := <-w.events:
			w.seen = append(w.seen, e)
			if term, ok := e.(*pa.Terminated); ok {
				return term
			}
		case <-time.After(60 * time.Second):
			w.t.Fatal("no Terminated")
		}
	}
}

// failures returns the failure reasons the strategy saw so far.
func (w *world) failures() []any {
	for {
		select {
		case e := <-w.events:
			w.seen = append(w.seen, e)
			continue
		default:
		}
		break
	}
	var out []any
	for _, e := range w.seen {
		if f, ok := e.(failure); ok {
			out = append(out, f.reason)
		}
	}
	return out
}

func linkStats(n *procnode.Node, addr string) (s struct{ Retained, Held int }) {
	for _, l := range n.Links() {
		if l.Address() == addr {
			st := l.Stats()
			s.Retained, s.Held = st.Retained, st.Held
		}
	}
	return s
}

// bothWays runs script in process and across a process boundary and checks
// that the answers are equal (and equal to want).
func bothWays(t *testing.T, strategy func() pa.SupervisorStrategy, children int, want []any, script func(w *world) []any) {
	t.Helper()
	bothSides(t, func(t *testing.T, process bool) {
		w := newWorld(t, process, strategy(), children)
		if got := script(w); !reflect.DeepEqual(got, want) {
			t.Fatalf("answers %v; want %v", got, want)
		}
	})
}

// bothSides runs test twice, as parallel subtests: with its actors in the
// test's process, and with them in a child process.
func bothSides(t *testing.T, test func(t *testing.T, process bool)) {
	t.Helper()
	for _, process := range []bool{false, true} {
		name := "in-process"
		if process {
			name = "process"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, process)
		})
	}
}

func defaultStrategy() pa.SupervisorStrategy { return pa.DefaultSupervisorStrategy() }

// TestSemanticsPanicKeepsMailbox: a panic restarts the actor (a new instance)
// with its mailbox: only the failing message is lost.
func TestSemanticsPanicKeepsMailbox(t *testing.T) {
	t.Parallel()
	bothWays(t, defaultStrategy, 1, []any{5, 2}, func(w *world) []any {
		w.send(0, "inc", "inc", "inc", "boom", "inc", "inc", "inc", "inc", "inc")
		return []any{w.ask(0, "get"), w.ask(0, "starts")}
	})
}

// TestSemanticsCrashBetweenSends: the instance ends between sends (a process
// killed, an actor restarted): what follows reaches the next instance.
func TestSemanticsCrashBetweenSends(t *testing.T) {
	t.Parallel()
	bothWays(t, defaultStrategy, 1, []any{3, 5}, func(w *world) []any {
		w.send(0, "inc", "inc", "inc")
		first := w.ask(0, "get")
		w.crash(0)
		w.send(0, "inc", "inc", "inc", "inc", "inc")
		return []any{first, w.ask(0, "get")}
	})
}

// TestSemanticsRequestDuringRestart: a request sent while the instance is
// being replaced is answered by the next one.
func TestSemanticsRequestDuringRestart(t *testing.T) {
	t.Parallel()
	bothWays(t, defaultStrategy, 1, []any{0}, func(w *world) []any {
		w.send(0, "inc")
		w.crash(0)
		return []any{w.ask(0, "get")}
	})
}

// TestSemanticsStashReplayed: a restart replays the stash into the new
// instance.
func TestSemanticsStashReplayed(t *testing.T) {
	t.Parallel()
	bothWays(t, defaultStrategy, 1, []any{3}, func(w *world) []any {
		w.send(0, "stash", "inc", "inc", "inc", "boom")
		return []any{w.ask(0, "get")}
	})
}

// TestSemanticsExponentialBackoff: the backoff strategy restarts after its
// delay; the mailbox is kept.
func TestSemanticsExponentialBackoff(t *testing.T) {
	t.Parallel()
	strategy := func() pa.SupervisorStrategy {
		return pa.NewExponentialBackoffStrategy(10*time.Second, 20*time.Millisecond)
	}
	bothWays(t, strategy, 1, []any{2, 2}, func(w *world) []any {
		w.send(0, "inc", "inc", "inc", "boom", "inc", "inc")
		return []any{w.ask(0, "get"), w.ask(0, "starts")}
	})
}

// sinkProps: "block:PATH" makes the actor wait until the file PATH exists;
// it counts ints, checking they come 0, 1, 2…; "count" answers "N in order"
// (or "N out of order").
func sinkProps() *pa.Props {
	return pa.PropsFromProducer(func() pa.Actor {
		next, inOrder := 0, true
		return pa.ReceiveFunc(func(ctx pa.Context) {
			switch m := ctx.Message().(type) {
			case int:
				inOrder = inOrder && m == next
				next++
			case string:
				if path, ok := strings.CutPrefix(m, "block:"); ok {
					for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
						if _, err := os.Stat(path); err == nil {
							return
						}
					}
				}
				if m == "count" {
					order := " in order"
					if !inOrder {
						order = " out of order"
					}
					ctx.Respond(fmt.Sprint(next, order))
				}
			}
		})
	})
}

// TestSemanticsFloodOfBlockedSpawnedActor: a flood to a spawned actor that
// is blocked. In process the messages wait in its mailbox; in a child
// process its node pauses the sender at its window (actor.WithInboxLimit,
// 100000 by default) instead of letting the mailbox grow. Either way every
// message arrives, in order, and none is a dead letter.
func TestSemanticsFloodOfBlockedSpawnedActor(t *testing.T) {
	t.Parallel()
	const msgs = actor.DefaultInboxLimit + 50000
	for _, process := range []bool{false, true} {
		t.Run(fmt.Sprint("process=", process), func(t *testing.T) {
			t.Parallel()
			n := newNode(t)
			var pid *pa.PID
			var link *actor.Link
			if process {
				usedKinds.Store("sem.sink", true)
				p := spawn(t, n, "sem.counter")
				var err error
				if pid, err = n.Spawn(testCtx(t), p.Address(), "sem.sink"); err != nil {
					t.Fatal(err)
				}
				for _, l := range n.Links() {
					if l.Address() == p.Address() {
						link = l
					}
				}
			} else {
				pid = n.Root().Spawn(sinkProps())
			}
			gate := t.TempDir() + "/gate"
			n.Root().Send(pid, "block:"+gate)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range msgs {
					n.Root().Send(pid, i)
				}
			}()
			if process {
				testutil.Eventually(t, "the sender paused", func() bool { return link.Stats().Paused == 1 })
				select {
				case <-done:
					t.Fatal("every send returned while the actor was blocked: the sender did not wait")
				default:
				}
			}
			if err := os.WriteFile(gate, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			testutil.Receive(t, done, "the sender to finish")
			if got := request(t, n, pid, "count"); got != fmt.Sprint(msgs, " in order") {
				t.Fatalf("count: %v; want %d in order", got, msgs)
			}
			if process {
				if d := link.Stats().DeadLetters; d != 0 {
					t.Fatalf("%d dead letters on the link; want none", d)
				}
			}
		})
	}
}

// TestSemanticsMiddlewareRewraps: a kind's middleware that replaces the
// envelope changes nothing: the answers are the same, and across the
// boundary the parent still learns what the root actor finished (nothing
// stays retained, so its window never fills).
func TestSemanticsMiddlewareRewraps(t *testing.T) {
	t.Parallel()
	for _, process := range []bool{false, true} {
		t.Run(fmt.Sprint("process=", process), func(t *testing.T) {
			t.Parallel()
			w := &world{t: t, n: newNode(t), events: make(chan any, 256), process: process}
			a := &parentActor{strategy: defaultStrategy(), events: w.events}
			w.parent = w.n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return a }))
			t.Cleanup(func() { _ = w.n.Root().StopFuture(w.parent).Wait() })
			props := rewrappedCounterProps()
			if process {
				props = propsKind("sem.rewrapped")
			}
			w.children = request(t, w.n, w.parent, &spawnChildren{props: props, n: 1}).([]*pa.PID)
			w.send(0, "inc", "inc", "inc", "inc", "inc")
			if got := w.ask(0, "get"); got != 5 {
				t.Fatalf("get: %v; want 5", got)
			}
			if !process {
				return
			}
			p, _ := w.n.Process(w.children[0])
			testutil.Eventually(t, "everything acknowledged", func() bool { return linkStats(w.n, p.Address()).Retained == 0 })
		})
	}
}

// TestSemanticsAllForOne: one sibling's failure restarts both, each keeping
// its PID and its mailbox.
func TestSemanticsAllForOne(t *testing.T) {
	t.Parallel()
	strategy := func() pa.SupervisorStrategy { return pa.NewAllForOneStrategy(10, 10*time.Second, pa.DefaultDecider) }
	bothWays(t, strategy, 2, []any{2, 3, 0, 1}, func(w *world) []any {
		w.send(0, "inc", "inc")
		w.send(1, "inc", "inc", "inc")
		before := []any{w.ask(0, "get"), w.ask(1, "get")}
		w.send(0, "boom")
		w.waitStarts(0, 2)
		w.waitStarts(1, 2)
		w.send(1, "inc")
		return append(before, w.ask(0, "get"), w.ask(1, "get"))
	})
}

// TestSemanticsWatchSeesOnlyTheEnd: a watcher sees nothing of two restarts
// (and, for a process actor, of a process restart too), then exactly one
// Terminated when the actor is stopped; so does its parent.
func TestSemanticsWatchSeesOnlyTheEnd(t *testing.T) {
	t.Parallel()
	for _, process := range []bool{false, true} {
		t.Run(fmt.Sprint("process=", process), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, process, defaultStrategy(), 1)
			child := w.children[0]
			_, events := probe(t, w.n, func(c pa.Context) { c.Watch(child); c.Send(c.Self(), "watching") })
			if m := testutil.Receive(t, events, "events"); m != "watching" {
				t.Fatalf("got %v", m)
			}
			w.send(0, "boom")
			w.waitStarts(0, 2)
			w.send(0, "boom")
			w.waitStarts(0, 3)
			if process {
				w.crash(0)
				if got := w.ask(0, "get"); got != 0 {
					t.Fatalf("after the process restart: %v", got)
				}
			}
			w.n.Root().Stop(child)
			term, ok := testutil.Receive(t, events, "events").(*pa.Terminated)
			if !ok || !term.Who.Equal(child) || term.Why != pa.TerminatedReason_Stopped {
				t.Fatalf("watcher got %v; want Terminated{%v, Stopped}", term, child)
			}
			if pt := w.nextTerminated(); pt.Who != child {
				t.Fatalf("parent got Terminated of %v; want the same *PID %p", pt.Who, child)
			}
			select {
			case m := <-events:
				t.Fatalf("watcher got more: %v", m)
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
}

// TestSemanticsStrategyGivesUp: past the strategy's limit the actor is
// stopped: one Terminated, and it answers no more; a process actor's Wait
// says it failed.
func TestSemanticsStrategyGivesUp(t *testing.T) {
	t.Parallel()
	strategy := func() pa.SupervisorStrategy { return pa.NewOneForOneStrategy(1, 10*time.Second, pa.DefaultDecider) }
	for _, process := range []bool{false, true} {
		t.Run(fmt.Sprint("process=", process), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, process, strategy(), 1)
			child := w.children[0]
			var p *procnode.Process
			if process {
				p, _ = w.n.Process(child)
			}
			w.send(0, "boom")
			w.waitStarts(0, 2)
			w.send(0, "boom")
			if term := w.nextTerminated(); term.Who != child {
				t.Fatalf("Terminated of %v; want %v", term.Who, child)
			}
			if got := w.ask(0, "get"); got != pa.ErrDeadLetter.Error() {
				t.Fatalf("after the end: %v; want %v", got, pa.ErrDeadLetter)
			}
			if f := w.failures(); len(f) != 2 || f[0] != "boom" || f[1] != "boom" {
				t.Fatalf("the strategy saw %v; want two failures with reason boom", f)
			}
			if !process {
				return
			}
			var ee *procnode.ExitError
			if err := waitErr(t, p); !errors.As(err, &ee) || !ee.Failed || ee.Reason != "stopped by its supervisor after a failure: root actor panicked: boom" {
				t.Fatalf("Wait: %v; want an *ExitError saying the supervisor stopped it", err)
			}
		})
	}
}

// TestCrashLoopStops: a message that kills every incarnation (redelivered,
// as nothing the root actor had not finished is lost) stops at the
// intensity limit of the strategy, with one Terminated and Wait = the last
// crash's *ExitError.
func TestCrashLoopStops(t *testing.T) {
	t.Parallel()
	w := newWorld(t, true, pa.NewOneForOneStrategy(3, time.Minute, pa.DefaultDecider), 1, procnode.WithRestartBackoff(time.Millisecond, 5*time.Millisecond))
	p, _ := w.n.Process(w.children[0])
	w.n.Root().Send(w.children[0], "exit3")
	if term := w.nextTerminated(); term.Who != w.children[0] {
		t.Fatalf("Terminated of %v", term.Who)
	}
	var ee *procnode.ExitError
	if err := waitErr(t, p); !errors.As(err, &ee) || ee.Code != 3 || !ee.Failed || ee.Incarnation != 3 {
		t.Fatalf("Wait: %v; want exit code 3 of incarnation 3, Failed", err)
	}
	if f := w.failures(); len(f) != 4 {
		t.Fatalf("the strategy saw %d failures; want 4 (3 restarts, then stop)", len(f))
	}
}

func init() {
	// sem.badstart's root actor panics in Started: it never starts.
	registerKind("sem.badstart", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(c pa.Context) {
			if _, ok := c.Message().(*pa.Started); ok {
				panic("cannot start")
			}
		}), nil
	})
	// sem.stuck's root actor tells the PID of its args, then blocks for a
	// minute, on "stuck".
	registerKind("sem.stuck", func(args procnode.Args) (*pa.Props, error) {
		tell, _ := args.Value.(*pa.PID)
		return pa.PropsFromFunc(func(c pa.Context) {
			switch c.Message() {
			case "stuck":
				c.Send(tell, "stuck now")
				time.Sleep(time.Minute)
			case "pid":
				c.Respond(os.Getpid())
			}
		}), nil
	})
}

// TestSpawnFailsWhenStartedPanics: Spawn returns an error, not a process
// actor, when the root actor fails before its Started has returned.
func TestSpawnFailsWhenStartedPanics(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	_, err := spawnKind(testCtx(t), n.Root(), "sem.badstart", procnode.WithStderr(nil))
	var ee *procnode.ExitError
	if !errors.Is(err, procnode.ErrStartFailed) || !errors.As(err, &ee) || ee.Code != procnode.ExitRootFailed || !strings.Contains(ee.Reason, "root actor panicked: cannot start") {
		t.Fatalf("got %v; want ErrStartFailed with exit code %d and the panic as the reason", err, procnode.ExitRootFailed)
	}
}

// TestCooperativeRestartFallback: a healthy child told to restart (an
// AllForOne sibling failed) restarts its root actor once its current message
// is done; one stuck in a handler past the graceful deadline is killed and
// restarted as a new process, behind the same PID.
func TestCooperativeRestartFallback(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	probePID, events := probe(t, n, nil)
	p := spawn(t, n, "sem.stuck", procnode.WithStopTimeouts(300*time.Millisecond, time.Second), procnode.WithArgs(probePID))
	before := request(t, n, p.PID(), "pid")
	n.Root().Send(p.PID(), "stuck")
	if m := testutil.Receive(t, events, "events"); m != "stuck now" {
		t.Fatalf("got %v", m)
	}
	proc, _ := n.System().ProcessRegistry.Get(p.PID())
	proc.SendSystemMessage(p.PID(), &pa.Restart{})
	// "stuck" was not finished: it is redelivered to the new process, which
	// gets stuck on it too; "pid" waits behind it, so ask the OS instead.
	testutil.Eventually(t, "a new process", func() bool { return p.Incarnation() == 1 && p.OSPid() != before && p.Alive() })
	if p.Restarts() != 1 {
		t.Fatalf("restarts %d; want 1", p.Restarts())
	}
	if st := p.ExitStatus(); st == nil || st.Signal != syscall.SIGKILL || st.Incarnation != 0 {
		t.Fatalf("last status %+v; want the stuck incarnation killed", st)
	}
}

// TestPanicExitsLosesOnlyTheFailingMessage: with WithPanicExits a panic ends
// the process and a restart starts a new one; the message it panicked on is
// not redelivered (it is lost, as in one process), what follows it is.
func TestPanicExitsLosesOnlyTheFailingMessage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, true, defaultStrategy(), 1, procnode.WithPanicExits(true))
	p, _ := w.n.Process(w.children[0])
	w.send(0, "inc", "boom", "inc", "inc")
	if got := w.ask(0, "get"); got != 2 {
		t.Fatalf("got %v; want 2: the new process got the two incs after the panic", got)
	}
	if p.Incarnation() != 1 || p.Restarts() != 1 {
		t.Fatalf("incarnation %d, restarts %d; want 1, 1 (no crash loop); failures %v, last exit %+v",
			p.Incarnation(), p.Restarts(), w.failures(), p.ExitStatus())
	}
}

// TestPanicExitsKeepsRequestsThatFollow: requests that follow a panic are
// answered by the restarted actor, in one process and across with
// WithPanicExits, where they may reach the child between its root actor's
// panic and its exit: they wait there for the next incarnation. (The child
// used to stop its root actor at once, and then answered those requests
// with dead letters.) The requests flow for a while after the panic, so
// that some of them arrive in that window; the failing message is not
// redelivered (one failure; across, one restart, no crash loop).
func TestPanicExitsKeepsRequestsThatFollow(t *testing.T) {
	t.Parallel()
	bothSides(t, func(t *testing.T, process bool) {
		w := newWorld(t, process, defaultStrategy(), 1, procnode.WithPanicExits(true))
		w.send(0, "inc", "boom")
		var asked []*pa.Future
		for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
			asked = append(asked, w.n.Root().RequestFuture(w.children[0], "get", 30*time.Second))
			time.Sleep(5 * time.Microsecond)
		}
		for i, f := range asked {
			if res, err := f.Result(); err != nil || res != 0 {
				t.Fatalf("request %d of %d: %v, %v; want 0 from the restarted actor", i+1, len(asked), res, err)
			}
		}
		if f := w.failures(); len(f) != 1 {
			t.Fatalf("failures %v; want one (no crash loop)", f)
		}
		if !process {
			return
		}
		p, _ := w.n.Process(w.children[0])
		if p.Incarnation() != 1 || p.Restarts() != 1 {
			t.Fatalf("incarnation %d, restarts %d; want 1, 1 (no crash loop); last exit %+v", p.Incarnation(), p.Restarts(), p.ExitStatus())
		}
	})
}

// TestFailedMessageKeptUntilNoticeLeaves: a message on which the root
// actor fails stays retained by the parent until the child's notice of the
// failure leaves with its acknowledgement. The child's first incarnation
// holds the notice back (a hook, as a loaded host might), far longer than
// the acknowledgement delay, and is killed meanwhile: the message must not
// be lost (it was acknowledged, and its failure never told, before the
// fix), but redelivered to the next incarnation, which fails on it and
// says so.
func TestFailedMessageKeptUntilNoticeLeaves(t *testing.T) {
	t.Parallel()
	w := newWorld(t, true, defaultStrategy(), 1)
	p, _ := w.n.Process(w.children[0])
	w.send(0, "inc", "boom-held")
	holdFailedMessage(t, w, p)
	killPid(t, p.OSPid())
	testutil.Eventually(t, "the redelivered message's failure", func() bool {
		for _, r := range w.failures() {
			if fmt.Sprint(r) == "boom-held" {
				return true
			}
		}
		return false
	})
	if got := w.ask(0, "get"); got != 0 {
		t.Fatalf("got %v; want 0 from the restarted actor", got)
	}
}

// TestPanicExitsFailedMessageKeptUntilNoticeLeaves: with WithPanicExits
// the failed message's acknowledgement goes with the exit notice: a child
// killed before the notice leaves has acknowledged neither, and the next
// incarnation gets the message, fails on it and exits in its turn (its
// notice acknowledges it: no crash loop).
func TestPanicExitsFailedMessageKeptUntilNoticeLeaves(t *testing.T) {
	t.Parallel()
	w := newWorld(t, true, defaultStrategy(), 1, procnode.WithPanicExits(true))
	p, _ := w.n.Process(w.children[0])
	w.send(0, "inc", "boom-held")
	holdFailedMessage(t, w, p)
	killPid(t, p.OSPid())
	if got := w.ask(0, "get"); got != 0 {
		t.Fatalf("got %v; want 0 from the third incarnation", got)
	}
	if p.Incarnation() != 2 || p.Restarts() != 2 {
		t.Fatalf("incarnation %d, restarts %d; want 2, 2 (the kill, the redelivered message's panic; no crash loop); failures %v",
			p.Incarnation(), p.Restarts(), w.failures())
	}
	if st := p.ExitStatus(); st == nil || !strings.Contains(st.Reason, heldReason) {
		t.Fatalf("last exit %+v; want the redelivered message's panic", st)
	}
}

// TestTooLargeFailureReportStillSent: a root actor's failure whose report
// would exceed the parent's frames (the failing message is near their
// bound, the panic's text long) still reaches the strategy, and the
// restarted actor answers, in one process and across. Across, the report
// goes without the message and with the text cut, and the message is
// acknowledged with it: the child does not exit, nor does the next
// incarnation get the message again (a crash loop).
func TestTooLargeFailureReportStillSent(t *testing.T) {
	t.Parallel()
	bothSides(t, func(t *testing.T, process bool) {
		n := newNode(t, actor.WithEndpointOptions(mailbox.WithMaxFrame(64<<10)))
		events := make(chan any, 16)
		a := &parentActor{strategy: defaultStrategy(), events: events}
		parent := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return a }))
		t.Cleanup(func() { _ = n.Root().StopFuture(parent).Wait() })
		props := counterProps()
		if process {
			props = propsKind("sem.counter")
		}
		child := request(t, n, parent, &spawnChildren{props: props, n: 1}).([]*pa.PID)[0]
		n.Root().Send(child, make([]byte, 63<<10))
		var f failure
		for f.child == nil {
			if e, ok := testutil.Receive(t, events, "the failure").(failure); ok {
				f = e
			}
		}
		if text := fmt.Sprint(f.reason); !strings.Contains(text, "xxxx") {
			t.Fatalf("failure reason %.60q…; want the panic's text", text)
		}
		if got := request(t, n, child, "get"); got != 0 {
			t.Fatalf("got %v; want 0 from the restarted actor", got)
		}
		if !process {
			return
		}
		if text := fmt.Sprint(f.reason); !strings.Contains(text, "(cut)") || f.msg != nil {
			t.Fatalf("failure reason %.60q…, message %T; want the panic's text, cut, and no message", text, f.msg)
		}
		p, _ := n.Process(child)
		testutil.Eventually(t, "the failed message acknowledged", func() bool { return linkStats(n, p.Address()).Retained == 0 })
		if p.Incarnation() != 0 {
			t.Fatalf("incarnation %d; want 0: the child reported, it did not exit", p.Incarnation())
		}
	})
}

// heldReason is what the root actor panics with on "boom-held".
const heldReason = "boom-held"

// holdFailedMessage checks, while the child holds back the notice of its
// root actor's failure on "boom-held", that the parent still retains that
// message, and only it, long after the acknowledgement delay. (The child
// may still be starting when the messages are sent: they are held, not yet
// retained, until it is up.)
func holdFailedMessage(t *testing.T, w *world, p *procnode.Process) {
	t.Helper()
	testutil.Eventually(t, "the messages sent, what came before acknowledged", func() bool {
		st := linkStats(w.n, p.Address())
		return st.Held == 0 && st.Retained == 1
	})
	time.Sleep(50 * time.Millisecond) // ten acknowledgement delays
	if st := linkStats(w.n, p.Address()); st.Retained != 1 {
		t.Fatalf("%d messages retained while the failure's notice is held back; want 1, the failed one", st.Retained)
	}
}

// gatedStrategy decides only once its gate is closed: a test can act while
// a failure waits for its supervisor.
type gatedStrategy struct {
	gate  <-chan struct{}
	inner pa.SupervisorStrategy
}

func (s gatedStrategy) HandleFailure(sys *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, rs *pa.RestartStatistics, reason, msg any) {
	<-s.gate
	s.inner.HandleFailure(sys, sup, child, rs, reason, msg)
}

// TestStopWhileFailureIsDecided: Stop while the root actor's failure waits
// for the spawner's strategy is still graceful: the strategy's Restart is
// carried out, the new instance finishes what is queued and the poison, and
// the child exits 0 (Wait nil, no stop signal), as a poisoned actor does in
// one process. The poison must not sit behind a suspended mailbox until
// SIGTERM.
func TestStopWhileFailureIsDecided(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	w := newWorld(t, true, gatedStrategy{gate: gate, inner: defaultStrategy()}, 1, procnode.WithStopTimeouts(20*time.Second, time.Second))
	p, _ := w.n.Process(w.children[0])
	w.send(0, "inc", "boom", "inc")
	testutil.Eventually(t, "the failure before the strategy", func() bool { return len(w.failures()) == 1 && p.State() == "failed" })
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(testCtx(t)) }()
	testutil.Eventually(t, "the stop begun", func() bool { return p.State() == "stopping" })
	close(gate)
	if err := testutil.Receive(t, stopped, "Stop"); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, p); err != nil {
		t.Fatalf("Wait: %v; want nil (the poisoned root actor stopped, the child exited 0)", err)
	}
	if st := p.ExitStatus(); st.StopSignal != 0 || !st.Stopped {
		t.Fatalf("exit status %+v; want stopped without a signal", st)
	}
}
