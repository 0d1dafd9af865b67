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
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// Main must be the first call in main() (and in TestMain of tests that spawn
// children). In a parent it returns at once. In a process started by Spawn
// it becomes the child: it reads the bootstrap from the environment, unsets
// it (so the child's own children do not adopt it), takes its two stream fds
// (marked close-on-exec), builds the node, spawns the registered kind as the
// root actor, shakes hands with the parent, and runs until the root actor
// stops (exit 0), panics (exit 2, the panic text sent as the reason) or the
// parent goes away (exit 0). It never returns in a child. A child ignores
// SIGPIPE, so that writing to stdout or stderr after its parent died fails
// with EPIPE instead of killing it.
func Main() {
	raw, ok := os.LookupEnv(envBoot)
	if !ok {
		return
	}
	os.Unsetenv(envBoot)
	os.Exit(runChild(raw))
}

// childExit is how the host actor and the link tell the child's main
// goroutine to end.
type childExit struct {
	code   int
	reason string
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
	prod, ok := actor.LookupKind(b.Kind)
	if !ok {
		fmt.Fprintf(os.Stderr, "procactor: kind %q is not registered in %s\n", b.Kind, os.Args[0])
		return ExitKindNotRegistered
	}
	args := actor.Args{Kind: b.Kind, Name: b.Name}
	if len(b.Args) > 0 {
		if args.Value, err = mailbox.Unmarshal(b.Args); err != nil {
			fmt.Fprintf(os.Stderr, "procactor: args of kind %q: %v\n", b.Kind, err)
			return ExitSpawnFailed
		}
	}

	fw := newForwardWriter(b.Control)
	nodeOpts := childLogger(b, fw)
	nodeOpts = append(nodeOpts, actor.WithIncarnation(b.Incarnation))
	an, err := actor.NewNode(b.Address, nodeOpts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: node %q: %v\n", b.Address, err)
		return ExitBootFailed
	}
	node := register(an)
	args.Node = an
	// The parent link exists before any actor runs: what they send up before
	// the handshake is held, not a dead letter for want of a route.
	link, err := an.ParentLink()
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: %v\n", err)
		return ExitBootFailed
	}

	props, err := safeProduce(prod, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: kind %q: %v\n", b.Kind, err)
		return ExitSpawnFailed
	}
	exit := make(chan childExit, 4)
	rootSpawned := make(chan struct{})
	hostProps := pa.PropsFromProducer(func() pa.Actor { return &host{props: props, exit: exit, spawned: rootSpawned} },
		pa.WithSupervisor(&hostStrategy{exit: exit}))
	if _, err := an.Root().SpawnNamed(hostProps, hostName); err != nil {
		fmt.Fprintf(os.Stderr, "procactor: spawning root actor: %v\n", err)
		return ExitSpawnFailed
	}
	// The root actor must exist before the handshake tells the parent that
	// the child is up: the parent's first message may follow at once, and
	// would be a dead letter.
	<-rootSpawned
	select {
	case e := <-exit:
		fmt.Fprintf(os.Stderr, "procactor: %s\n", e.reason)
		return e.code
	default:
	}

	link.OnDown(func(err error) {
		select {
		case exit <- childExit{code: 0, reason: "parent gone"}:
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

	e := <-exit
	if e.reason != "" && e.code != 0 {
		fmt.Fprintf(os.Stderr, "procactor: %s\n", e.reason)
		an.Root().Send(b.Control, &ExitNotice{Code: e.code, Reason: e.reason})
	}
	closeWithin := 2 * time.Second
	if e.reason == "parent gone" {
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
	node.stopProcs(ctx) // our children first: their last records come through us
	fw.stop(ctx)        // the records logged so far go out before the link closes
	_ = node.Close(ctx)
	return e.code
}

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

// host is the child's top actor: the root actor is its child, so it sees the
// root stop (Terminated) and its failures (hostStrategy).
type host struct {
	props   *pa.Props
	exit    chan<- childExit
	spawned chan<- struct{} // closed once the root actor is spawned (or failed to)
	root    *pa.PID
}

func (h *host) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		defer close(h.spawned)
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
	}
}

// hostStrategy ends the child when its root actor fails: a panic that
// escapes the root actor is the child's crash, with the panic text as reason.
type hostStrategy struct{ exit chan<- childExit }

func (s *hostStrategy) HandleFailure(_ *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, _ *pa.RestartStatistics, reason any, _ any) {
	sup.StopChildren(child)
	s.exit <- childExit{code: ExitRootFailed, reason: fmt.Sprintf("root actor panicked: %v", reason)}
}
