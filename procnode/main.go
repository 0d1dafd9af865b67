package procnode

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/internal/nodeopt"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// Main must be the first call in main() (and in TestMain of tests that spawn
// children). In a parent it returns at once. In a process started by Spawn
// it becomes the child: it reads the bootstrap from the environment, unsets
// it (so the child's own children do not adopt it), takes its two stream fds
// (marked close-on-exec), builds the node, spawns the registered kind as the
// root actor, waits for its Started to return, shakes hands with the
// parent, and runs until the root actor stops (exit 0), fails before it
// started or with WithPanicExits (exit ExitRootFailed, the panic text sent
// as the reason) or the parent goes away (exit 0). A panic of a started
// root actor is reported to the parent, whose supervisor decides. It never
// returns in a child. A child notifies SIGPIPE (it does not ignore it: an
// ignored signal would be inherited by what the child execs), so that
// writing to stdout or stderr after its parent died fails with EPIPE
// instead of killing it.
//
// A process started as a child whose main does not call Main first runs the
// parent's main a second time. procnode catches that: when Main has not
// been called within half the parent's start timeout (WithStartTimeout,
// counted from procnode's init, so slow inits and -race builds pass), the
// child writes "procactor: started as a procactor child but main did not
// call procnode.Main() first" to stderr and exits with ExitMainNotCalled,
// and its parent's Spawn fails with ErrMainNotCalled; meanwhile a Spawn in
// it fails with ErrMainNotCalled too, so it cannot fork-bomb.
func Main() {
	raw, ok := os.LookupEnv(envBoot)
	if !ok {
		return
	}
	if !claimMain() {
		select {} // too late: the check is writing its line and exiting
	}
	os.Unsetenv(envBoot)
	os.Exit(runChild(raw))
}

// childExit is how the host actor and the link tell the child's main
// goroutine to end.
type childExit struct {
	code     int
	reason   string
	orphaned bool // the parent is gone: leave fast
}

func runChild(raw string) int {
	b, err := decodeBoot(raw)
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: bad bootstrap: %v\n", err)
		return ExitBootFailed
	}
	// The child's stderr is a pipe to its parent: once the parent is gone, a
	// write to it (a warning on the way out) would kill the child with
	// SIGPIPE before it stops its actors and exits 0. With SIGPIPE notified
	// (not ignored: an ignored disposition would be inherited by whatever the
	// child execs, a caught one is reset by exec), writes fail with EPIPE.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	for _, r := range b.Rlimits {
		if err := setRlimit(r); err != nil {
			fmt.Fprintf(os.Stderr, "procactor: setrlimit(%d, %d, %d): %v\n", r.Resource, r.Cur, r.Max, err)
			return ExitBootFailed
		}
	}
	conn, err := inheritedConn()
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: child stream: %v\n", err)
		return ExitBootFailed
	}
	closeInherited() // before anything of ours opens a descriptor
	var prod actor.Producer
	if !b.Pooled {
		var ok bool
		if prod, ok = actor.LookupKind(b.Kind); !ok {
			fmt.Fprintf(os.Stderr, "procactor: kind %q is not registered in %s\n", b.Kind, os.Args[0])
			return ExitKindNotRegistered
		}
	}

	fw := newForwardWriter(b.Control)
	nodeOpts := childLogger(b, fw)
	nodeOpts = append(nodeOpts, nodeopt.Incarnation(b.Incarnation).(actor.NodeOption))
	an, err := newChildNode(b.Address, nodeOpts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: node %q: %v\n", b.Address, err)
		return ExitBootFailed
	}
	node := register(an)
	// The parent link exists before any actor runs: what they send up before
	// the handshake is held, not a dead letter for want of a route.
	link, err := an.ParentLink()
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: %v\n", err)
		return ExitBootFailed
	}
	exit := make(chan childExit, 4)
	start := rootStart{node: an, link: link, boot: b, exit: exit}
	var assigns chan *assign
	if b.Pooled {
		// A pool's child: up without a kind, it waits for one (see Pool).
		assigns = make(chan *assign, 1)
		an.System().ProcessRegistry.Add(assignProcess(assigns), assignName)
	} else if e, ok := start.run(prod, b.Kind, b.Name, b.Args); !ok {
		// The child is up once its root actor's Started has returned: a root
		// actor that fails to start fails the spawn, and the parent's first
		// message finds an actor ready for it.
		fmt.Fprintf(os.Stderr, "procactor: %s\n", e.reason)
		return e.code
	}

	link.OnDown(func(err error) {
		select {
		case exit <- childExit{code: 0, reason: "parent gone", orphaned: true}:
		default: // already leaving
		}
	})
	fw.start(an, link) // records logged from now on are held until the link is up
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.StartTimeout))
	_, err = link.Connect(ctx, conn, b.Cookie, b.Incarnation)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: handshake with parent: %v\n", err)
		return ExitBootFailed
	}
	fw.connected.Store(true)
	if b.Pooled {
		if e, ok := start.assigned(assigns); !ok {
			if e.reason != "" {
				fmt.Fprintf(os.Stderr, "procactor: %s\n", e.reason)
			}
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			fw.stop(closeCtx)
			_ = node.Close(closeCtx)
			return e.code
		}
	}

	e := <-exit
	if e.reason != "" && e.code != 0 {
		fmt.Fprintf(os.Stderr, "procactor: %s\n", e.reason)
		an.Root().Send(b.Control, &exitNotice{Code: e.code, Reason: e.reason})
	}
	closeWithin := 2 * time.Second
	if e.orphaned {
		// Orphaned: stop the root actor's tree, briefly, and leave. An orphan
		// must be gone within a second, whatever its actors do.
		stopped := make(chan struct{})
		go func() {
			_ = an.Root().StopFuture(pa.NewPID(b.Address, RootID)).Wait()
			close(stopped)
		}()
		t := time.NewTimer(300 * time.Millisecond)
		select {
		case <-stopped:
		case <-t.C:
		}
		t.Stop()
		closeWithin = 500 * time.Millisecond
	}
	ctx, cancel = context.WithTimeout(context.Background(), closeWithin)
	defer cancel()
	_ = node.stopProcs(ctx) // our children first: their last records come through us
	fw.stop(ctx)            // the records logged so far go out before the link closes
	_ = node.Close(ctx)
	return e.code
}

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
func (r rootStart) run(prod actor.Producer, kind, name string, rawArgs []byte) (e childExit, ok bool) {
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
	// The root actor's props: the kind's, with procactor's middleware: one
	// says when Started has returned, the other acknowledges to the parent
	// what the root actor has finished (the parent retains it until then).
	// The parent's messages run the root actor on the link's reader when it
	// is idle (actor.Node.Inline).
	h.props = r.node.Inline(props.Clone(pa.WithReceiverMiddleware(h.startedMiddleware, r.link.AckFor(RootID))))
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
	} else if e, ok = r.run(prod, a.Kind, a.Name, a.Args); ok {
		r.node.Root().Send(r.boot.Control, &assigned{})
		return e, true
	}
	r.node.Root().Send(r.boot.Control, &assigned{Err: e.reason})
	r.node.Root().Send(r.boot.Control, &exitNotice{Code: e.code, Reason: e.reason})
	return e, false
}

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

func decodeBoot(raw string) (*boot, error) {
	bs, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, err
	}
	v, err := mailbox.Unmarshal(bs)
	if err != nil {
		return nil, err
	}
	b, ok := v.(*boot)
	if !ok {
		return nil, fmt.Errorf("bootstrap is %T", v)
	}
	return b, nil
}

func encodeBoot(b *boot) (string, error) {
	bs, err := mailbox.Marshal(b)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(bs), nil
}

// inheritedConn makes the link's stream of fds 3 and 4: close-on-exec (the
// child's own children must not inherit them) and non-blocking (so the
// runtime poller serves them and Close interrupts a blocked read).
func inheritedConn() (*mailbox.PipeConn, error) {
	for _, fd := range []int{childReadFD, childWriteFD} {
		syscall.CloseOnExec(fd)
		if err := syscall.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	return mailbox.NewPipeConn(os.NewFile(childReadFD, "procactor-in"), os.NewFile(childWriteFD, "procactor-out")), nil
}

// childLogger logs at the parent's level (or PROCACTOR_LOG) into records
// forwarded to the parent, which relays them to its logger. With
// PROCACTOR_LOG set, protoactor's own records at that level go too.
func childLogger(b *boot, fw *forwardWriter) []actor.NodeOption {
	lvl := zerolog.Level(b.LogLevel)
	env, fromEnv := envLogLevel()
	if fromEnv {
		lvl = env
	}
	if lvl == zerolog.Disabled {
		// Quiet, but for dead letters: their lines go to the parent, which
		// prints them as its own (not to our stderr, whose tail is kept for
		// the exit status).
		return []actor.NodeOption{actor.WithDeadLetterLog(deadLetterLines{fw})}
	}
	opts := []actor.NodeOption{actor.WithLogger(zerolog.New(fw).Level(lvl).With().Timestamp().Logger())}
	if fromEnv {
		opts = append(opts, actor.WithProtoactorLogLevel(lvl))
	}
	return opts
}

// forwardWriter sends each log record to the parent's control process while
// the link is up, and writes warnings and errors to stderr otherwise. A
// Write never waits for the link: records queue (bounded) for one goroutine
// that sends them, so a log line inside a send that fails (a dead letter is
// logged) cannot recurse into another send or block the caller.
type forwardWriter struct {
	control *pa.PID
	queue   chan logRecord
	done    chan struct{}
	dropped atomic.Int64
	// connected is set once the link has come up: before, the link holds
	// what is sent; after, a link that is not up will never be again.
	connected atomic.Bool

	mu      sync.RWMutex
	running bool // guarded by mu
}

// forwardQueue bounds the records waiting to cross the link.
const forwardQueue = 1024

func newForwardWriter(control *pa.PID) *forwardWriter {
	return &forwardWriter{control: control, queue: make(chan logRecord, forwardQueue), done: make(chan struct{})}
}

// start forwards records over link from now on.
func (w *forwardWriter) start(n *actor.Node, link *actor.Link) {
	w.mu.Lock()
	w.running = true
	w.mu.Unlock()
	go func() {
		defer close(w.done)
		for rec := range w.queue {
			// Never send on a link that is gone: the dead letter would be
			// logged, and forwarded, and so on.
			if w.connected.Load() && !link.IsUp() {
				w.fallback(zerolog.Level(rec.Level), rec.JSON)
				continue
			}
			n.Root().Send(w.control, &rec)
		}
	}()
}

// stop ends forwarding: queued records are sent (bounded by ctx), later ones
// fall back to stderr.
func (w *forwardWriter) stop(ctx context.Context) {
	w.mu.Lock()
	was := w.running
	w.running = false
	w.mu.Unlock()
	if !was {
		return
	}
	close(w.queue)
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	if d := w.dropped.Load(); d > 0 {
		fmt.Fprintf(os.Stderr, "procactor: %d log records dropped (queue full)\n", d)
	}
}

func (w *forwardWriter) Write(p []byte) (int, error) {
	return w.WriteLevel(zerolog.NoLevel, p)
}

// WriteLevel implements zerolog.LevelWriter.
func (w *forwardWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.running {
		w.fallback(l, p)
		return len(p), nil
	}
	select {
	case w.queue <- logRecord{Level: int8(l), JSON: append([]byte(nil), p...)}:
	default:
		w.dropped.Add(1)
	}
	return len(p), nil
}

// deadLetterLines forwards the child node's dead-letter lines to the
// parent (a logRecord marked Line), through the same queue as the records.
type deadLetterLines struct{ w *forwardWriter }

func (d deadLetterLines) Write(p []byte) (int, error) {
	d.w.mu.RLock()
	defer d.w.mu.RUnlock()
	if !d.w.running {
		d.w.fallback(zerolog.WarnLevel, p)
		return len(p), nil
	}
	select {
	case d.w.queue <- logRecord{Level: int8(zerolog.WarnLevel), JSON: append([]byte(nil), p...), Line: true}:
	default:
		d.w.dropped.Add(1)
	}
	return len(p), nil
}

// fallback writes what cannot be forwarded to stderr, warnings and above
// only: the parent copies the child's stderr, but routine records of a
// child on its way out are not worth it.
func (w *forwardWriter) fallback(l zerolog.Level, p []byte) {
	if l >= zerolog.WarnLevel && l != zerolog.NoLevel {
		_, _ = os.Stderr.Write(p)
	}
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

// HandleFailure is the host's supervisor strategy, for its one child, the
// root actor. A failure before the first Started returned ends the child
// (its spawn fails); with WithPanicExits any failure does. Otherwise the
// failing message counts as finished, the root actor's mailbox stays
// suspended, and the parent is told: its spawner's strategy decides, and a
// directive comes back.
func (h *host) HandleFailure(_ *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, _ *pa.RestartStatistics, reason, message any) {
	if !h.up.Load() || h.panicExits {
		// The failing message is finished (as in one process, it is lost):
		// its acknowledgement rides on the exit notice, so the next
		// incarnation does not get it again and fail the same way.
		h.link.Finished(message)
		sup.StopChildren(child)
		select {
		case h.exit <- childExit{code: ExitRootFailed, reason: fmt.Sprintf("root actor panicked: %v", reason)}:
		default: // already leaving
		}
		return
	}
	h.link.Finished(message)
	_, msg, _ := pa.UnwrapEnvelope(message)
	rf := &rootFailed{Incarnation: h.incarnation, Text: fmt.Sprint(reason), MessageType: fmt.Sprintf("%T", msg)}
	if b, err := mailbox.Marshal(reason); err == nil {
		rf.Reason = b
	}
	if b, err := mailbox.Marshal(msg); err == nil && msg != nil {
		rf.Message = b // the spawner's strategy gets it, as in one process
	}
	l := h.node.Logger()
	l.Warn().Str("reason", rf.Text).Str("message_type", rf.MessageType).Msg("root actor failed; its supervisor decides")
	h.node.Root().Send(h.control, rf)
}
