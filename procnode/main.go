package procnode

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
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
// parent goes away (exit 0). It never returns in a child.
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
	conn, err := inheritedConn()
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: child stream: %v\n", err)
		return ExitBootFailed
	}
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

	fw := &forwardWriter{keeper: b.Keeper}
	log := childLogger(b, fw)
	an, err := actor.NewNode(b.Address, actor.WithIncarnation(b.Incarnation), actor.WithLogger(log))
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: node %q: %v\n", b.Address, err)
		return ExitBootFailed
	}
	node := register(an)
	fw.node.Store(an)

	props, err := safeProduce(prod, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: kind %q: %v\n", b.Kind, err)
		return ExitSpawnFailed
	}
	exit := make(chan childExit, 4)
	hostProps := pa.PropsFromProducer(func() pa.Actor { return &host{props: props, exit: exit} },
		pa.WithSupervisor(&hostStrategy{exit: exit}))
	if _, err := an.Root().SpawnNamed(hostProps, hostName); err != nil {
		fmt.Fprintf(os.Stderr, "procactor: spawning root actor: %v\n", err)
		return ExitSpawnFailed
	}

	link, err := an.ParentLink()
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: %v\n", err)
		return ExitBootFailed
	}
	fw.link.Store(link)
	link.OnDown(func(err error) {
		select {
		case exit <- childExit{code: 0, reason: "parent gone"}:
		default: // already leaving
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.StartTimeout))
	_, err = link.Connect(ctx, conn, b.Cookie, b.Incarnation)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: handshake with parent: %v\n", err)
		return ExitBootFailed
	}

	e := <-exit
	if e.reason != "" && e.code != 0 {
		fmt.Fprintf(os.Stderr, "procactor: %s\n", e.reason)
		an.Root().Send(b.Keeper, &ExitNotice{Code: e.code, Reason: e.reason})
	}
	if e.reason == "parent gone" {
		// Orphaned: stop the root actor's tree, briefly, and leave.
		_ = an.Root().StopFuture(pa.NewPID(b.Address, RootID)).Wait()
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
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

// childLogger logs at the parent's level (or PROCACTOR_LOG) into records sent
// to the keeper, which relays them to the parent's logger.
func childLogger(b *boot, fw *forwardWriter) zerolog.Logger {
	lvl := zerolog.Level(b.LogLevel)
	if s := os.Getenv(envLog); s != "" {
		if l, err := zerolog.ParseLevel(s); err == nil {
			lvl = l
		}
	}
	if lvl == zerolog.Disabled {
		return zerolog.Nop()
	}
	return zerolog.New(fw).Level(lvl).With().Timestamp().Logger()
}

// forwardWriter sends each log record to the keeper while the link is up,
// and writes it to stderr otherwise.
type forwardWriter struct {
	keeper *pa.PID
	node   atomic.Pointer[actor.Node]
	link   atomic.Pointer[actor.Link]
}

func (w *forwardWriter) Write(p []byte) (int, error) {
	n, l := w.node.Load(), w.link.Load()
	if n == nil || l == nil || !l.IsUp() {
		return os.Stderr.Write(p)
	}
	n.Root().Send(w.keeper, &logRecord{JSON: append([]byte(nil), p...)})
	return len(p), nil
}

// host is the child's top actor: the root actor is its child, so it sees the
// root stop (Terminated) and its failures (hostStrategy).
type host struct {
	props *pa.Props
	exit  chan<- childExit
	root  *pa.PID
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
	}
}

// hostStrategy ends the child when its root actor fails: a panic that
// escapes the root actor is the child's crash, with the panic text as reason.
type hostStrategy struct{ exit chan<- childExit }

func (s *hostStrategy) HandleFailure(_ *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, _ *pa.RestartStatistics, reason any, _ any) {
	sup.StopChildren(child)
	s.exit <- childExit{code: ExitRootFailed, reason: fmt.Sprintf("root actor panicked: %v", reason)}
}
