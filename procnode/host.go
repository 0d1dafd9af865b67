package procnode

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

// rootStart starts a child's root actor under its host.
type rootStart struct {
	node *actor.Node
	link *actor.Link
	boot *boot
	exit chan childExit
}

// run makes the kind's props and spawns the host and the root actor, and
// returns once the root actor's Started has returned; otherwise ok is false
// and e says how the child exits.
func (r rootStart) run(prod actor.Producer, kind, name string, rawArgs []byte, parent *pa.PID) (e childExit, ok bool) {
	args := actor.Args{Kind: kind, Name: name, Node: r.node}
	if len(rawArgs) > 0 {
		v, err := mailbox.Unmarshal(rawArgs)
		if err != nil {
			return childExit{code: ExitSpawnFailed, reason: fmt.Sprintf("args of kind %q: %v", kind, err)}, false
		}
		args.Value = v
	}
	props, err := safeProduce(prod, args)
	if err != nil {
		return childExit{code: ExitSpawnFailed, reason: fmt.Sprintf("kind %q: %v", kind, err)}, false
	}
	h := &host{node: r.node, link: r.link, control: r.boot.Control, incarnation: r.boot.Incarnation,
		panicExits: r.boot.PanicExits, exit: r.exit, started: make(chan struct{})}
	// The root actor's props: the kind's, with procactor's middleware
	// first (outermost, so that the kind's cannot hide a message from it):
	// one acknowledges to the parent what the root actor has finished (the
	// parent retains it until then), the other says when Started has
	// returned.
	// The parent's messages run the root actor on the link's reader when it
	// is idle (actor.Node.Inline).
	// Its ctx.Parent() is the spawner, as in one process, not the host: a
	// message to it reaches the spawner (the host would drop it).
	props = props.Clone(pa.WithContextDecorator(spawnerParent(parent)))
	h.props = r.node.Inline(actor.PrependReceiverMiddleware(props, r.link.AckFor(RootID), h.startedMiddleware))
	hostProps := pa.PropsFromProducer(func() pa.Actor { return h }, pa.WithSupervisor(h))
	if _, err := r.node.Root().SpawnNamed(hostProps, hostName); err != nil {
		return childExit{code: ExitSpawnFailed, reason: "spawning root actor: " + err.Error()}, false
	}
	select {
	case <-h.started:
		return childExit{}, true
	case e := <-r.exit:
		return e, false
	}
}

// assigned waits, in a pooled child, for what to run, starts it and tells
// the parent. ok is false when the child exits instead (told to, the
// parent gone, or the kind could not start).
func (r rootStart) assigned(assigns <-chan *assign) (e childExit, ok bool) {
	var a *assign
	select {
	case a = <-assigns:
	case e := <-r.exit:
		return e, false
	}
	if a.Kind == "" {
		return childExit{}, false // the pool closed: exit 0
	}
	prod, found := actor.LookupKind(a.Kind)
	if !found {
		e = childExit{code: ExitKindNotRegistered, reason: fmt.Sprintf("kind %q is not registered in %s", a.Kind, os.Args[0])}
	} else if e, ok = r.run(prod, a.Kind, a.Name, a.Args, a.Parent); ok {
		r.node.Root().Send(r.boot.Control, &assigned{})
		return e, true
	}
	r.node.Root().Send(r.boot.Control, &assigned{Err: e.reason})
	r.node.Root().Send(r.boot.Control, &exitNotice{Code: e.code, Reason: e.reason})
	return e, false
}

// spawnerParent is a context decorator whose Parent() is parent.
func spawnerParent(parent *pa.PID) pa.ContextDecorator {
	return func(next pa.ContextDecoratorFunc) pa.ContextDecoratorFunc {
		return func(ctx pa.Context) pa.Context { return parentContext{next(ctx), parent} }
	}
}

// parentContext is a root actor's context with the spawner as its parent.
type parentContext struct {
	pa.Context
	parent *pa.PID
}

// Parent implements pa.Context.
func (c parentContext) Parent() *pa.PID { return c.parent }

// assignProcess takes a pooled child's assign off the link (a Process, not
// an actor: nothing else may run before the kind does).
type assignProcess chan<- *assign

func (a assignProcess) SendUserMessage(_ *pa.PID, message any) {
	if e, ok := message.(*pa.MessageEnvelope); ok {
		message = e.Message
	}
	if m, ok := message.(*assign); ok {
		select {
		case a <- m:
		default: // one assign per child; a second is ignored
		}
	}
}

func (assignProcess) SendSystemMessage(*pa.PID, any) {}
func (assignProcess) Stop(*pa.PID)                   {}

func safeProduce(prod actor.Producer, args actor.Args) (props *pa.Props, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("producer panicked: %v", r)
		}
	}()
	props, err = prod(args)
	if err == nil && props == nil {
		err = fmt.Errorf("producer returned no props")
	}
	return props, err
}

// host is the child's top actor: the root actor is its child, so it sees
// the root stop (Terminated) and fail (HandleFailure, its supervisor
// strategy), and it carries out the parent's directives about it.
type host struct {
	node        *actor.Node
	link        *actor.Link // to the parent
	control     *pa.PID     // the parent's control process for this child
	incarnation uint64
	panicExits  bool
	props       *pa.Props
	exit        chan<- childExit
	started     chan struct{} // closed once the root actor's first Started has returned
	up          atomic.Bool   // started is closed
	root        *pa.PID       // set in Started, read by the host's own goroutine only
}

func (h *host) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		pid, err := ctx.SpawnNamed(h.props, rootName)
		if err != nil {
			h.exit <- childExit{code: ExitSpawnFailed, reason: "spawning root actor: " + err.Error()}
			return
		}
		h.root = pid
	case *pa.Terminated:
		if h.root != nil && m.Who.Equal(h.root) {
			h.exit <- childExit{code: 0}
		}
	case *directive:
		if h.root == nil {
			return
		}
		// What a supervisor's RestartChildren, ResumeChildren and
		// StopChildren send: protoactor carries them out (a restart keeps
		// the mailbox and replays the stash).
		var sys any
		switch m.Kind {
		case dirRestart:
			sys = &pa.Restart{}
		case dirResume:
			sys = &pa.ResumeMailbox{}
		case dirStop:
			sys = &pa.Stop{}
		default:
			return
		}
		proc, _ := h.node.System().ProcessRegistry.Get(h.root)
		proc.SendSystemMessage(h.root, sys)
	}
}

// startedMiddleware sees the root actor's Started return: the first time,
// the child may shake hands; after a restart, the parent is told.
func (h *host) startedMiddleware(next pa.ReceiverFunc) pa.ReceiverFunc {
	return func(c pa.ReceiverContext, env *pa.MessageEnvelope) {
		next(c, env)
		if _, ok := env.Message.(*pa.Started); !ok {
			return
		}
		if h.up.CompareAndSwap(false, true) {
			close(h.started)
			return
		}
		h.node.Root().Send(h.control, &rootRestarted{Incarnation: h.incarnation})
	}
}

// maxReportText bounds the panic's text in a failure report that was too
// large whole.
const maxReportText = 512

// clip returns s cut to at most n bytes, marked as cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…(cut)"
}

// reportFailure sends notice, which tells the parent of the root actor's
// failure on failed, with failed's acknowledgement behind it
// (actor.Link.NotifyFailed). A notice too large for the parent's frames goes
// again once shrink has made it smaller (without the failing message, the
// panic's text cut), rather than not at all.
func reportFailure(link *actor.Link, to *pa.PID, notice, failed any, shrink func()) error {
	err := link.NotifyFailed(to, notice, failed)
	if errors.Is(err, mailbox.ErrMessageTooLarge) {
		shrink()
		err = link.NotifyFailed(to, notice, failed)
	}
	return err
}

// leave hands the child's exit to its main goroutine, unless it is already
// leaving.
func (h *host) leave(e childExit) {
	select {
	case h.exit <- e:
	default:
	}
}

// testHookFailureNotice, when set (by a test, in the child), runs as the
// child begins to tell the parent of its root actor's failure (the host's
// notice, or with WithPanicExits the exit notice; reason is the panic's
// text, or the exit's reason): it lets a test hold the notice back.
var testHookFailureNotice atomic.Pointer[func(incarnation uint64, reason string)]

// HandleFailure is the host's supervisor strategy, for its one child, the
// root actor. A failure before the first Started returned ends the child
// (its spawn fails); with WithPanicExits any failure does. Otherwise the
// failing message counts as finished, the root actor's mailbox stays
// suspended, and the parent is told: its spawner's strategy decides, and a
// directive comes back.
func (h *host) HandleFailure(_ *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, _ *pa.RestartStatistics, reason, message any) {
	if up := h.up.Load(); !up || h.panicExits {
		// The failing message is finished (as in one process, it is lost):
		// its acknowledgement goes with the exit notice (childExit.failed),
		// so the next incarnation does not get it again and fail the same
		// way, unless the child dies before the notice leaves.
		var failed any
		if up {
			failed = message
		} else {
			h.link.Finished(message) // nothing crossed yet: no stream to tell
			sup.StopChildren(child)  // the spawn fails: nothing was sent to it yet
		}
		// A started root actor is left as its failure left it, suspended,
		// until the link closes: what reaches it meanwhile waits in its
		// mailbox, unacknowledged, for the next incarnation. Stopped, it
		// would dead-letter those messages here, and a request among them
		// would fail although the next incarnation will answer it.
		h.leave(childExit{code: ExitRootFailed, reason: fmt.Sprintf("root actor panicked: %v", reason), failed: failed})
		return
	}
	if f := testHookFailureNotice.Load(); f != nil {
		(*f)(h.incarnation, fmt.Sprint(reason))
	}
	_, msg, _ := pa.UnwrapEnvelope(actor.UnwrapFailed(message))
	rf := &rootFailed{Incarnation: h.incarnation, Text: fmt.Sprint(reason), MessageType: fmt.Sprintf("%T", msg)}
	if b, err := mailbox.Marshal(reason); err == nil {
		rf.Reason = b
	}
	if b, err := mailbox.Marshal(msg); err == nil && msg != nil {
		rf.Message = b // the spawner's strategy gets it, as in one process
	}
	l := h.node.Logger()
	l.Warn().Str("reason", rf.Text).Str("message_type", rf.MessageType).Msg("root actor failed; its supervisor decides")
	// The failing message counts as finished, acknowledged with the notice:
	// a child killed before the notice leaves has not acknowledged it
	// either, and its next incarnation gets it again (see NotifyFailed).
	err := reportFailure(h.link, h.control, rf, message, func() {
		rf.Reason, rf.Message, rf.Text = nil, nil, clip(rf.Text, maxReportText)
	})
	if err != nil {
		// The parent cannot hear of the failure, and would wait for ever for
		// a directive: the child ends instead, a failure of the process
		// actor, and the failed message, not acknowledged, goes to the next
		// incarnation.
		l.Error().Err(err).Msg("the root actor's failure cannot be reported; the child exits")
		h.leave(childExit{code: ExitRootFailed, reason: fmt.Sprintf("root actor panicked: %v; its report was not sent: %v", reason, err)})
	}
}
