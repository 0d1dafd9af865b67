package procnode_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/procnode"
)

// idleOf returns the node's idle pooled children.
func idleOf(n *procnode.Node) []*procnode.Process {
	var out []*procnode.Process
	for _, p := range n.Processes() {
		if p.State() == "idle" {
			out = append(out, p)
		}
	}
	return out
}

func newPool(t *testing.T, n *procnode.Node, kind string, size int) *procnode.Pool {
	t.Helper()
	usedKinds.Store(kind, true)
	pl, err := procnode.NewPool(n, kind, size, procnode.WithStderr(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pl.Close(context.Background()) })
	testutil.Eventually(t, "the pool filled", func() bool { return pl.Idle() == size })
	return pl
}

// TestPoolTake: concurrent takers each get a process actor that runs the
// kind with their args (more takers than idle children: the last ones wait
// for the refill); the pool refills to its size, and never holds more.
func TestPoolTake(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	pl := newPool(t, n, "test.caller", 2)
	probePID, got := probe(t, n, nil)
	const takers = 3
	procs := make([]*procnode.Process, takers)
	var wg sync.WaitGroup
	for i := range takers {
		wg.Go(func() {
			p, err := pl.Take(testCtx(t), n.Root(), procnode.WithArgs(probePID))
			if err != nil {
				t.Error(err)
				return
			}
			procs[i] = p
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	seen := map[string]bool{}
	for range takers {
		m, _ := testutil.Receive(t, got, "got").(string)
		seen[m] = true
	}
	for _, p := range procs {
		if !seen["hello from "+p.Address()] || p.State() != "up" || p.Kind() != "test.caller" {
			t.Fatalf("taken child %s (state %s, kind %q) did not run its kind with its args; heard %v", p.Address(), p.State(), p.Kind(), seen)
		}
	}
	testutil.Eventually(t, "the pool refilled", func() bool { return pl.Idle() == 2 })
	if idle := idleOf(n); len(idle) != 2 {
		t.Fatalf("%d idle children; want the pool's size, 2", len(idle))
	}
	// A taken child is an ordinary process actor: a crash restarts it with
	// its kind and args, as a new process (not from the pool).
	p := procs[0]
	killPid(t, p.OSPid())
	if m := testutil.Receive(t, got, "got"); m != "hello from "+p.Address() {
		t.Fatalf("after the restart: %v", m)
	}
	if p.Incarnation() != 1 || pl.Idle() != 2 {
		t.Fatalf("incarnation %d, idle %d; want 1, 2", p.Incarnation(), pl.Idle())
	}
}

// TestPoolIdleChildDies: an idle child that dies is replaced.
func TestPoolIdleChildDies(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	pl := newPool(t, n, "sem.counter", 1)
	victim := idleOf(n)[0]
	killPid(t, victim.OSPid())
	waitErr(t, victim)
	testutil.Eventually(t, "a replacement", func() bool { idle := idleOf(n); return len(idle) == 1 && idle[0] != victim })
	p, err := pl.Take(testCtx(t), n.Root())
	if err != nil {
		t.Fatal(err)
	}
	n.Root().Send(p.PID(), "inc")
	if got := request(t, n, p.PID(), "get"); got != 1 {
		t.Fatalf("got %v", got)
	}
}

// TestPoolClose: Close stops the idle children (they exit 0) and leaves no
// process behind; Take fails afterwards. Take refuses per-pool options.
func TestPoolClose(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	pl := newPool(t, n, "sem.counter", 2)
	if _, err := pl.Take(testCtx(t), n.Root(), procnode.WithEnv("X=1")); !errors.Is(err, procnode.ErrInvalidOption) {
		t.Fatalf("Take with a per-pool option: got %v; want ErrInvalidOption", err)
	}
	idle := idleOf(n)
	if err := pl.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, p := range idle {
		if st := p.ExitStatus(); st == nil || st.Code != 0 || st.Signal != 0 || processRuns(st.OSPid) {
			t.Fatalf("idle child after Close: %+v; want exit 0, gone", st)
		}
	}
	if _, err := pl.Take(testCtx(t), n.Root()); !errors.Is(err, procnode.ErrPoolClosed) {
		t.Fatalf("Take after Close: got %v; want ErrPoolClosed", err)
	}
	if len(n.Processes()) != 0 {
		t.Fatalf("process actors left: %d", len(n.Processes()))
	}
}

// TestPoolTakeFailure: a kind whose producer fails in the taken child fails
// the Take with ErrStartFailed; the pool refills.
func TestPoolTakeFailure(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	pl := newPool(t, n, "sem.failstart", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pl.Take(ctx, n.Root()); !errors.Is(err, procnode.ErrStartFailed) {
		t.Fatalf("got %v; want ErrStartFailed", err)
	}
	testutil.Eventually(t, "the pool refilled", func() bool { return pl.Idle() == 1 })
}

func init() {
	// pool.diesontake's producer ends the child's process: a pooled child
	// of it dies while it is being taken, before it can answer.
	registerKind("pool.diesontake", func(procnode.Args) (*pa.Props, error) {
		os.Exit(5)
		return nil, nil
	})
}

// TestPoolTakeChildDies: a pooled child that dies while it is being taken
// (its kind's producer exits the process) fails the Take at once with
// ErrStartFailed and its exit status, rather than leaving the taker waiting
// for an answer that cannot come.
func TestPoolTakeChildDies(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	pl := newPool(t, n, "pool.diesontake", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := pl.Take(ctx, n.Root())
	var ee *procnode.ExitError
	if !errors.Is(err, procnode.ErrStartFailed) || !errors.As(err, &ee) || ee.Code != 5 {
		t.Fatalf("got %v; want ErrStartFailed with the child's exit code 5", err)
	}
	testutil.Eventually(t, "the pool refilled", func() bool { return pl.Idle() == 1 })
}

// TestPoolRefusesWithContext: a pool cannot bind its children's lives to a
// context (it starts them ahead of any taker), so NewPool refuses
// WithContext instead of ignoring it: a child taken from it would otherwise
// outlive the context its caller meant to bind it to.
func TestPoolRefusesWithContext(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pl, err := procnode.NewPool(n, "sem.counter", 1, procnode.WithContext(ctx))
	if err == nil {
		_ = pl.Close(context.Background())
	}
	if !errors.Is(err, procnode.ErrInvalidOption) {
		t.Fatalf("NewPool with WithContext: got %v; want ErrInvalidOption", err)
	}
}
