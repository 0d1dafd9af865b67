package procnode_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
)

// More scripts that must give the same answers in process and across a
// process boundary: reentrancy, forwarding, receive timeouts, a request
// that is never answered, the actor's place in the tree, a sender
// middleware of the kind's props.

// revProbe is the actor of these scripts. A *pa.PID names its peer, an
// actor of the test's process that answers "ping" with "pong" and reports
// what else it gets.
type revProbe struct {
	peer  *pa.PID
	saved *pa.PID
}

func (a *revProbe) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.PID:
		a.peer = m
		ctx.Respond("ok")
	case *pa.Stopping:
		if a.peer != nil {
			ctx.Send(a.peer, "stopping")
			ctx.Send(ctx.Parent(), "stopping") // to the spawner, as in one process
		}
	case *pa.ReceiveTimeout:
		ctx.CancelReceiveTimeout()
		if a.saved != nil {
			ctx.Send(a.saved, "timed out")
			a.saved = nil
		}
	case string:
		switch m {
		case "reenter":
			f := ctx.RequestFuture(a.peer, "ping", 30*time.Second)
			ctx.ReenterAfter(f, func(res any, err error) {
				ctx.Respond(fmt.Sprint("reentered ", res, " ", err))
			})
		case "forward":
			ctx.Forward(a.peer)
		case "timeout":
			a.saved = ctx.Sender()
			ctx.SetReceiveTimeout(20 * time.Millisecond)
		case "never":
		case "parent":
			ctx.Respond(fmt.Sprint(ctx.Parent()))
		case "boom":
			panic("boom")
		case "sender?":
			ctx.Send(a.peer, fmt.Sprint("sender nil: ", ctx.Sender() == nil))
		case "header?":
			h := ctx.MessageHeader()
			v := ""
			if h != nil {
				v = h.Get("k")
			}
			ctx.Send(a.peer, "header k="+v)
		case "send":
			ctx.Send(a.peer, "hello")
			ctx.Respond("sent")
		}
	}
}

// revProbeProps has a sender middleware that marks what the actor sends.
func revProbeProps() *pa.Props {
	return pa.PropsFromProducer(func() pa.Actor { return &revProbe{} },
		pa.WithSenderMiddleware(func(next pa.SenderFunc) pa.SenderFunc {
			return func(c pa.SenderContext, target *pa.PID, env *pa.MessageEnvelope) {
				if s, ok := env.Message.(string); ok && s == "hello" {
					env = &pa.MessageEnvelope{Header: env.Header, Message: s + " (marked)", Sender: env.Sender}
				}
				next(c, target, env)
			}
		}))
}

func init() {
	registerKind("rev.probe", func(procnode.Args) (*pa.Props, error) { return revProbeProps(), nil })
	registerKind("rev.quiet", func(procnode.Args) (*pa.Props, error) { return quietProps(), nil })
	mailbox.RegisterType("rev.quietTick", &quietTick{})
}

// revWorld is one run of a script: the probe under a parent actor, and its
// peer.
type revWorld struct {
	*world
	probe *pa.PID
	got   chan any // what the peer got, other than "ping"
}

func revBothWays(t *testing.T, want []any, script func(w *revWorld) []any) {
	t.Helper()
	revBothWaysKind(t, "rev.probe", revProbeProps, want, script)
}

// revBothWaysKind is revBothWays with the actor of kind, made in process by
// props.
func revBothWaysKind(t *testing.T, kind string, props func() *pa.Props, want []any, script func(w *revWorld) []any) {
	t.Helper()
	bothSides(t, func(t *testing.T, process bool) {
		w := &revWorld{world: &world{t: t, n: newNode(t), events: make(chan any, 256), process: process}, got: make(chan any, 16)}
		a := &parentActor{strategy: pa.DefaultSupervisorStrategy(), events: w.events}
		w.parent = w.n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return a }))
		t.Cleanup(func() { _ = w.n.Root().StopFuture(w.parent).Wait() })
		props := props()
		if process {
			props = propsKind(kind)
		}
		w.probe = request(t, w.n, w.parent, &spawnChildren{props: props, n: 1}).([]*pa.PID)[0]
		w.children = []*pa.PID{w.probe}
		peer := w.n.Root().Spawn(pa.PropsFromFunc(func(c pa.Context) {
			switch m := c.Message().(type) {
			case string:
				if m == "ping" {
					c.Respond("pong")
					return
				}
				if m == "forward" {
					c.Respond(fmt.Sprint("forwarded, sender set: ", c.Sender() != nil))
					return
				}
				w.got <- m
			}
		}))
		if got := request(t, w.n, w.probe, peer); got != "ok" {
			t.Fatalf("peer: %v", got)
		}
		if got := script(w); !reflect.DeepEqual(got, want) {
			t.Fatalf("answers %v; want %v", got, want)
		}
	})
}

func (w *revWorld) next() any {
	select {
	case m := <-w.got:
		return m
	case <-time.After(30 * time.Second):
		w.t.Fatal("the peer got nothing")
		return nil
	}
}

func TestSemanticsReenterAfter(t *testing.T) {
	revBothWays(t, []any{"reentered pong <nil>"}, func(w *revWorld) []any {
		return []any{w.ask(0, "reenter")}
	})
}

func TestSemanticsForwardKeepsSender(t *testing.T) {
	revBothWays(t, []any{"forwarded, sender set: true"}, func(w *revWorld) []any {
		return []any{w.ask(0, "forward")}
	})
}

func TestSemanticsReceiveTimeout(t *testing.T) {
	revBothWays(t, []any{"timed out", "timed out"}, func(w *revWorld) []any {
		return []any{w.ask(0, "timeout"), w.ask(0, "timeout")}
	})
}

func TestSemanticsRequestNeverAnswered(t *testing.T) {
	revBothWays(t, []any{pa.ErrTimeout.Error()}, func(w *revWorld) []any {
		_, err := w.n.Root().RequestFuture(w.probe, "never", 200*time.Millisecond).Result()
		return []any{fmt.Sprint(err)}
	})
}

// TestSemanticsParent: the actor's ctx.Parent() is its spawner, also in a
// child process (it was the child's host actor there, which dropped what
// was sent to it).
func TestSemanticsParent(t *testing.T) {
	revBothWays(t, []any{true, true}, func(w *revWorld) []any {
		var got []any
		for range 2 { // before and after a restart
			if p := w.ask(0, "parent"); p != w.parent.String() {
				w.t.Logf("parent %v; spawner %v", p, w.parent)
				got = append(got, false)
			} else {
				got = append(got, true)
			}
			w.send(0, "boom")
		}
		return got
	})
}

func TestSemanticsSenderMiddleware(t *testing.T) {
	revBothWays(t, []any{"sent", "hello (marked)"}, func(w *revWorld) []any {
		return []any{w.ask(0, "send"), w.next()}
	})
}

// TestPropsRefuseWhatOnlyRunsInProcess: an option set on procnode.Props
// that would shape an actor in this process (middleware, a context
// decorator, an init function, the strategy for its children, its mailbox)
// has nothing to shape there, as the actor runs in the child from its
// kind's props: the spawn fails at once with ErrInvalidOption, rather than
// the actor answering as if the option were not there.
func TestPropsRefuseWhatOnlyRunsInProcess(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	recv := func(next pa.ReceiverFunc) pa.ReceiverFunc { return next }
	send := func(next pa.SenderFunc) pa.SenderFunc { return next }
	spawnMW := func(next pa.SpawnFunc) pa.SpawnFunc { return next }
	decorate := func(next pa.ContextDecoratorFunc) pa.ContextDecoratorFunc { return next }
	for name, opt := range map[string]pa.PropsOption{
		"receiver middleware": pa.WithReceiverMiddleware(recv),
		"sender middleware":   pa.WithSenderMiddleware(send),
		"spawn middleware":    pa.WithSpawnMiddleware(spawnMW),
		"context decorator":   pa.WithContextDecorator(decorate),
		"init":                pa.WithOnInit(func(pa.Context) {}),
		"supervisor":          pa.WithSupervisor(pa.NewOneForOneStrategy(1, time.Second, pa.DefaultDecider)),
		"mailbox":             pa.WithMailbox(pa.Bounded(1)),
	} {
		if _, err := n.Root().SpawnNamed(procnode.Props("sem.counter").Configure(opt), strings.ReplaceAll(name, " ", "-")); !errors.Is(err, procnode.ErrInvalidOption) {
			t.Errorf("%s: got %v; want ErrInvalidOption", name, err)
		}
	}
}

// TestSemanticsPoisonAfterQueued: a PoisonPill comes after what was sent
// before it: the actor finishes that, then stops for good (one Terminated,
// Why Stopped), and a request after that is a dead letter.
func TestSemanticsPoisonAfterQueued(t *testing.T) {
	bothWays(t, defaultStrategy, 1, []any{0, pa.TerminatedReason_Stopped, pa.ErrDeadLetter.Error()}, func(w *world) []any {
		got := []any{w.ask(0, "get")}
		w.send(0, "inc", "inc")
		w.n.Root().Poison(w.children[0])
		got = append(got, w.nextTerminated().Why)
		return append(got, w.ask(0, "get"))
	})
}

// TestSemanticsStopThenRequest: after protoactor's Stop the actor is gone
// for good, and a request is a dead letter.
func TestSemanticsStopThenRequest(t *testing.T) {
	bothWays(t, defaultStrategy, 1, []any{pa.TerminatedReason_Stopped, pa.ErrDeadLetter.Error()}, func(w *world) []any {
		w.n.Root().Stop(w.children[0])
		got := []any{w.nextTerminated().Why}
		return append(got, w.ask(0, "get"))
	})
}

// TestSemanticsSenderAndHeaders: a plain Send has no sender, and a root
// context's headers reach the actor.
func TestSemanticsSenderAndHeaders(t *testing.T) {
	revBothWays(t, []any{"sender nil: true", "header k=v"}, func(w *revWorld) []any {
		w.n.Root().Send(w.probe, "sender?")
		got := []any{w.next()}
		w.n.Root().Send(w.probe, &pa.MessageEnvelope{Header: map[string]string{"k": "v"}, Message: "header?"})
		return append(got, w.next())
	})
}

// TestPooledParent: a pooled child's root actor has the actor that took it
// as its ctx.Parent().
func TestPooledParent(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	usedKinds.Store("rev.probe", true)
	pl, err := procnode.NewPool(n, "rev.probe", 1, procnode.WithStderr(nil))
	if err != nil {
		t.Fatal(err)
	}
	taker := n.Root().Spawn(pa.PropsFromFunc(func(c pa.Context) {
		if c.Message() == "take" {
			p, err := pl.Take(testCtx(t), c)
			if err != nil {
				c.Respond(err.Error())
				return
			}
			c.Respond(p.PID())
		}
	}))
	t.Cleanup(func() { _ = n.Root().StopFuture(taker).Wait() })
	pid, ok := request(t, n, taker, "take").(*pa.PID)
	if !ok {
		t.Fatal("take failed")
	}
	if got := request(t, n, pid, "parent"); got != taker.String() {
		t.Fatalf("parent %v; want %v", got, taker)
	}
}

// TestSemanticsLastWordsArrive: what the actor sends while it stops (in
// Stopping) arrives, however it is stopped: the child does not exit before
// it has left.
func TestSemanticsLastWordsArrive(t *testing.T) {
	for _, how := range []string{"stop", "poison"} {
		t.Run(how, func(t *testing.T) {
			revBothWays(t, []any{"stopping", pa.TerminatedReason_Stopped}, func(w *revWorld) []any {
				if how == "stop" {
					w.n.Root().Stop(w.probe)
				} else {
					w.n.Root().Poison(w.probe)
				}
				got := []any{w.next()}
				return append(got, w.nextTerminated().Why)
			})
		})
	}
}

// quietTick does not count as activity for a receive timeout.
type quietTick struct{}

// NotInfluenceReceiveTimeout implements pa.NotInfluenceReceiveTimeout.
func (*quietTick) NotInfluenceReceiveTimeout() {}

// quietActor tells its peer, for a *quietTick, whether what its mailbox
// was given for it still says it does not influence the receive timeout:
// protoactor's InvokeUserMessage asks exactly that of what the mailbox
// hands it, and a message that does not say it pushes an armed timeout back.
type quietActor struct {
	peer   *pa.PID
	posted *timeoutPosted
}

func (a *quietActor) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.PID:
		a.peer = m
		ctx.Respond("ok")
	case *quietTick:
		if a.posted.quiet.Load() {
			ctx.Send(a.peer, "quiet")
		} else {
			ctx.Send(a.peer, "influences the receive timeout")
		}
	}
}

// quietProps has a mailbox (protoactor's own) that records what it is
// given for a quietTick.
func quietProps() *pa.Props {
	posted := &timeoutPosted{}
	return pa.PropsFromProducer(func() pa.Actor { return &quietActor{posted: posted} }, pa.WithMailbox(pa.Unbounded(posted)))
}

// timeoutPosted is a mailbox middleware: quiet says whether the last
// quietTick posted was posted as a pa.NotInfluenceReceiveTimeout (not
// inside a plain *pa.MessageEnvelope).
type timeoutPosted struct {
	quiet atomic.Bool
}

func (s *timeoutPosted) MailboxStarted()     {}
func (s *timeoutPosted) MessageReceived(any) {}
func (s *timeoutPosted) MailboxEmpty()       {}
func (s *timeoutPosted) MessagePosted(m any) {
	// The actor gets only its peer's PID before the ticks.
	if _, ok := pa.UnwrapEnvelopeMessage(m).(*pa.PID); !ok {
		_, quiet := m.(pa.NotInfluenceReceiveTimeout)
		s.quiet.Store(quiet)
	}
}

// TestSemanticsNotInfluenceReceiveTimeout: a message that says it does not
// influence the receive timeout is handed to the actor so that protoactor
// sees it, also when it comes over a link.
func TestSemanticsNotInfluenceReceiveTimeout(t *testing.T) {
	revBothWaysKind(t, "rev.quiet", quietProps, []any{"quiet", "quiet"}, func(w *revWorld) []any {
		w.n.Root().Send(w.probe, &quietTick{})
		got := []any{w.next()}
		w.n.Root().Send(w.probe, &quietTick{})
		return append(got, w.next())
	})
}

// TestSemanticsChildrenAfterStop: the spawner lists its child until it
// has stopped, then no more.
func TestSemanticsChildrenAfterStop(t *testing.T) {
	bothWays(t, defaultStrategy, 1, []any{1, 0}, func(w *world) []any {
		got := []any{len(request(w.t, w.n, w.parent, getChildren{}).([]*pa.PID))}
		w.n.Root().Stop(w.children[0])
		w.nextTerminated()
		return append(got, len(request(w.t, w.n, w.parent, getChildren{}).([]*pa.PID)))
	})
}

// TestSemanticsNameFreeAfterStop: a name is taken while its actor lives
// and free once it has stopped.
func TestSemanticsNameFreeAfterStop(t *testing.T) {
	bothSides(t, func(t *testing.T, process bool) {
		n := newNode(t)
		props := func() *pa.Props {
			if process {
				return propsKind("sem.counter")
			}
			return counterProps()
		}
		pid, err := n.Root().SpawnNamed(props(), "named")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Root().SpawnNamed(props(), "named"); !errors.Is(err, pa.ErrNameExists) {
			t.Fatalf("taken name: %v", err)
		}
		if err := n.Root().StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
		again, err := n.Root().SpawnNamed(props(), "named")
		if err != nil {
			t.Fatalf("name after stop: %v", err)
		}
		if got := request(t, n, again, "get"); got != 0 {
			t.Fatalf("get: %v", got)
		}
	})
}
