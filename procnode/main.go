package procnode

import (
	"context"
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
// instead of killing it: before the root actor starts when the child's
// stdout is a pipe or a socket; otherwise from 20 ms after the handshake,
// or at once when the child sees its parent go (a child younger than that
// whose parent dies, and that writes to stderr before it sees the loss,
// dies of SIGPIPE).
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

// armSIGPIPE makes a write to a broken stdout or stderr fail with EPIPE
// instead of killing the child. The child's stderr is a pipe to its
// parent: once the parent is gone, a write to it (a warning on the way out)
// would kill the child with SIGPIPE before it stops its actors and exits 0.
// SIGPIPE is notified, not ignored: an ignored disposition would be
// inherited by whatever the child execs, a caught one is reset by exec.
//
// The first Notify of a process starts os/signal's goroutines, one locked
// to a thread of its own (about 100 µs on the 2-core machine, measured in
// a child's start, and as much again on the first reply when it ran beside
// it), so a child whose stdout cannot break (a file, a terminal, /dev/null:
// stdoutMayBreak) arms it sigpipeDelay after its handshake, off the path of
// its start and first request, or at once when its link to the parent goes
// down; a child whose stdout may break arms it before its root actor starts.
var armSIGPIPE = sync.OnceFunc(func() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	sigpipeArmed.Store(true)
})

// sigpipeArmed says armSIGPIPE ran (tests).
var sigpipeArmed atomic.Bool

// stdoutMayBreak reports whether the child's stdout is a pipe or a socket,
// whose reader may go while the parent lives: WithStdout of a pipe, or the
// parent's own stdout (a child's default) when it is one, as in
// "prog | head". The child's stderr is a pipe to the parent, which reads it
// until the child exits: only a dead parent breaks it.
func stdoutMayBreak() bool {
	fi, err := os.Stdout.Stat()
	return err != nil || fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0
}

// sigpipeDelay: see armSIGPIPE.
const sigpipeDelay = 20 * time.Millisecond

// childExit is how the host actor and the link tell the child's main
// goroutine to end.
type childExit struct {
	code     int
	reason   string
	orphaned bool // the parent is gone: leave fast
	// failed is the message the root actor failed on (WithPanicExits), the
	// value its supervisor got: the exit notice acknowledges it
	// (actor.Link.NotifyFailed).
	failed any
}

func runChild(raw string) int {
	// On the child's second core, while this goroutine builds its node.
	go mailbox.PrepareHandshake()
	b, err := decodeBoot(raw)
	if err != nil {
		fmt.Fprintf(os.Stderr, "procactor: bad bootstrap: %v\n", err)
		return ExitBootFailed
	}
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
	if stdoutMayBreak() {
		armSIGPIPE() // the root actor's Started may write to it
	}
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
	if b.SpinWait > 0 {
		nodeOpts = append(nodeOpts, actor.WithEndpointOptions(mailbox.WithSpinWait(time.Duration(b.SpinWait-1))))
	}
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
	} else if e, ok := start.run(prod, b.Kind, b.Name, b.Args, b.Parent); !ok {
		// The child is up once its root actor's Started has returned: a root
		// actor that fails to start fails the spawn, and the parent's first
		// message finds an actor ready for it.
		fmt.Fprintf(os.Stderr, "procactor: %s\n", e.reason)
		return e.code
	}

	link.OnDown(func(err error) {
		armSIGPIPE() // before anything on the way out writes to stderr
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
	time.AfterFunc(sigpipeDelay, armSIGPIPE)
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
		notice := &exitNotice{Code: e.code, Reason: e.reason}
		if e.failed != nil {
			// The failing message is acknowledged with the notice, behind it:
			// killed before it leaves, the child has acknowledged neither.
			if f := testHookFailureNotice.Load(); f != nil {
				(*f)(b.Incarnation, e.reason)
			}
			err := reportFailure(link, b.Control, notice, e.failed, func() { notice.Reason = clip(notice.Reason, maxReportText) })
			if err != nil {
				// The message stays unacknowledged (the next incarnation
				// gets it); the reason still goes, if it can.
				fmt.Fprintf(os.Stderr, "procactor: %v\n", err)
				an.Root().Send(b.Control, notice)
			}
		} else {
			an.Root().Send(b.Control, notice)
		}
	}
	closeWithin := 2 * time.Second
	if e.orphaned {
		// Orphaned: stop the root actor's tree, briefly, and leave. An orphan
		// must be gone within a second, whatever its actors do.
		stopBriefly(an, pa.NewPID(b.Address, RootID), 300*time.Millisecond)
		closeWithin = 500 * time.Millisecond
	}
	ctx, cancel = context.WithTimeout(context.Background(), closeWithin)
	defer cancel()
	_ = node.stopProcs(ctx) // our children first: their last records come through us
	fw.stop(ctx)            // the records logged so far go out before the link closes
	if e.code == ExitRootFailed {
		// The root actor panicked (WithPanicExits) and waits suspended:
		// what reached it is unacknowledged, for the next incarnation. Once
		// the link is closed nothing more can reach it, and it is stopped,
		// briefly, so that its own actors see Stopping as they would when a
		// panic restarts an actor in one process (stopped with the link
		// open, it would answer requests that arrive meanwhile with dead
		// letters, requests the next incarnation answers).
		_ = link.Close(ctx)
		stopBriefly(an, pa.NewPID(b.Address, RootID), 300*time.Millisecond)
	}
	_ = node.Close(ctx)
	return e.code
}

// stopBriefly stops pid and waits for it to stop, at most within.
func stopBriefly(an *actor.Node, pid *pa.PID, within time.Duration) {
	stopped := make(chan struct{})
	go func() {
		_ = an.Root().StopFuture(pid).Wait()
		close(stopped)
	}()
	t := time.NewTimer(within)
	select {
	case <-stopped:
	case <-t.C:
	}
	t.Stop()
}
