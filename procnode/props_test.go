package procnode_test

import (
	"errors"
	"github.com/procactor/procactor/internal/testutil"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
)

// spawnAndAsk is an actor that spawns a process actor when told to (with
// protoactor's ctx.Spawn) and answers its next message with its children.
type spawnAndAsk struct {
	props *pa.Props
	pid   chan<- *pa.PID
}

func (a *spawnAndAsk) Receive(ctx pa.Context) {
	switch ctx.Message().(type) {
	case string:
		if ctx.Message() == "spawn" {
			a.pid <- ctx.Spawn(a.props)
			return
		}
		ctx.Respond(ctx.Children())
	}
}

// TestPropsDoesNotBlock: ctx.Spawn(procnode.Props(...)) returns at once: the
// spawner handles its next message while the child is still starting, the
// PID is among its children, and what is sent meanwhile waits for the child.
func TestPropsDoesNotBlock(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	gate := filepath.Join(t.TempDir(), "gate")
	pids := make(chan *pa.PID, 1)
	spawner := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor {
		return &spawnAndAsk{props: propsKind("sem.gated", procnode.WithArgs(gate)), pid: pids}
	}))
	t.Cleanup(func() { _ = n.Root().StopFuture(spawner).Wait() })
	n.Root().Send(spawner, "spawn")
	children := request(t, n, spawner, "children?").([]*pa.PID) // answered while the child waits for the gate
	pid := <-pids
	if len(children) != 1 || children[0] != pid {
		t.Fatalf("children %v; want exactly %v", children, pid)
	}
	p, ok := n.Process(pid)
	if !ok || p.State() != "starting" {
		t.Fatalf("Process(%v) = %v, %v; want one still starting", pid, p, ok)
	}
	n.Root().Send(pid, "inc") // held until the child is up
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := request(t, n, pid, "get"); got != 1 {
		t.Fatalf("got %v; want 1", got)
	}
	// The answer can come a moment before the state reads up: what waited
	// for the child goes out as its link comes up, before the start is
	// reported to its supervisor.
	testutil.Eventually(t, "state up", func() bool { return p.State() == "up" })
}

// TestPropsStartFailure: a start that fails is a failure of that child: the
// spawner's strategy decides (here: twice a restart, then stop), its parent
// gets one Terminated for the same *PID, and Exited says why.
func TestPropsStartFailure(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	exited := make(chan *procnode.Exited, 1)
	sub := n.System().EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*procnode.Exited); ok {
			exited <- e
		}
	})
	defer n.System().EventStream.Unsubscribe(sub)
	w := &world{t: t, n: n, events: make(chan any, 64)}
	a := &parentActor{strategy: pa.NewOneForOneStrategy(2, time.Minute, pa.DefaultDecider), events: w.events}
	w.parent = n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return a }))
	t.Cleanup(func() { _ = n.Root().StopFuture(w.parent).Wait() })
	child := request(t, n, w.parent, &spawnChildren{props: propsKind("sem.failstart"), n: 1}).([]*pa.PID)[0]
	if term := w.nextTerminated(); term.Who != child {
		t.Fatalf("Terminated of %v; want the same *PID as %v", term.Who, child)
	}
	f := w.failures()
	if len(f) != 3 {
		t.Fatalf("the strategy saw %d failures; want 3", len(f))
	}
	for _, reason := range f {
		var ee *procnode.ExitError
		if err, _ := reason.(error); !errors.Is(err, procnode.ErrStartFailed) || !errors.As(err, &ee) || ee.Code != procnode.ExitSpawnFailed {
			t.Fatalf("reason %v; want ErrStartFailed with exit code %d", reason, procnode.ExitSpawnFailed)
		}
	}
	select {
	case e := <-exited:
		if e.PID != child || !e.Status.Failed || e.Status.Code != procnode.ExitSpawnFailed {
			t.Fatalf("Exited %+v; want one for %v, Failed, code %d", e, child, procnode.ExitSpawnFailed)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no Exited event")
	}
	if got := request(t, n, w.parent, getChildren{}).([]*pa.PID); len(got) != 0 {
		t.Fatalf("children after the end: %v", got)
	}
}

// TestPropsFromRoot: a process actor spawned from a root context gets
// protoactor's default strategy: a crash restarts it behind the same PID.
func TestPropsFromRoot(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	pid := n.Root().Spawn(propsKind("sem.counter"))
	p, ok := n.Process(pid)
	if !ok {
		t.Fatalf("no process actor for %v", pid)
	}
	n.Root().Send(pid, "inc")
	if got := request(t, n, pid, "get"); got != 1 {
		t.Fatalf("got %v", got)
	}
	killPid(t, p.OSPid())
	if got := request(t, n, pid, "get"); got != 0 {
		t.Fatalf("after the restart: %v; want 0", got)
	}
	if p.Incarnation() != 1 {
		t.Fatalf("incarnation %d; want 1", p.Incarnation())
	}
	n.Root().Stop(pid)
	if err := waitErr(t, p); err != nil {
		t.Fatalf("Wait after Stop: %v", err)
	}
}

// TestPropsMisuse: what fails the spawn itself, and the unknown kind that
// does not (it is a failure of the child, decided by its strategy).
func TestPropsMisuse(t *testing.T) {
	t.Parallel()
	sys := pa.NewActorSystem(pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	defer sys.Shutdown()
	if _, err := sys.Root.SpawnNamed(procnode.Props("sem.counter"), "x"); !errors.Is(err, procnode.ErrNoNode) {
		t.Fatalf("no node: got %v; want ErrNoNode", err)
	}
	n := newNode(t)
	if _, err := n.Root().SpawnNamed(procnode.Props("sem.counter", procnode.WithStartTimeout(0)), "x"); !errors.Is(err, procnode.ErrInvalidOption) {
		t.Fatalf("bad option: got %v; want ErrInvalidOption", err)
	}
	if _, err := n.Root().SpawnNamed(propsKind("sem.counter"), "twice"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Root().SpawnNamed(propsKind("sem.counter"), "twice"); !errors.Is(err, procnode.ErrNameExists) || !errors.Is(err, pa.ErrNameExists) {
		t.Fatalf("taken name: got %v; want ErrNameExists", err)
	}
	// Its end is read from Exited: the process actor may be gone from the
	// node (n.Process) before Spawn's caller looks it up.
	exited := make(chan *procnode.Exited, 4)
	sub := n.System().EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*procnode.Exited); ok {
			exited <- e
		}
	})
	defer n.System().EventStream.Unsubscribe(sub)
	pid := n.Root().Spawn(procnode.Props("sem.nowhere", procnode.WithRestart(false)))
	for {
		select {
		case e := <-exited:
			if !e.PID.Equal(pid) {
				continue
			}
			if !e.Status.Failed {
				t.Fatalf("unknown kind: exited %+v; want a failed end", e.Status)
			}
			return
		case <-time.After(testutil.Timeout):
			t.Fatal("unknown kind: no Exited")
		}
	}
}
