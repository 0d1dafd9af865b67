package procnode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/internal/leakcheck"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/procnode"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// TestMain runs the child when the test binary was started by Spawn, then
// the tests, a goroutine leak check and the check that every helper kind
// registered here was spawned (an unused one should be removed).
func TestMain(m *testing.M) {
	if os.Getenv(roleNoMain) != "" {
		// A main that forgot procnode.Main: it goes on with its own work
		// (TestForgottenMain).
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	procnode.Main()
	// A race-enabled child sleeps for the race detector's atexit_sleep_ms
	// (1 s) at every clean exit; the children of these tests need not.
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	code := m.Run()
	if code == 0 {
		opts := append(leakcheck.Options(), goleak.IgnoreAnyFunction("github.com/procactor/procactor/procnode.forkLoop"))
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" {
		for _, k := range testKinds {
			if _, ok := usedKinds.Load(k); !ok {
				fmt.Fprintf(os.Stderr, "helper kind %q was never spawned; remove it\n", k)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// roleNoMain makes the test binary, started as a child, skip procnode.Main.
const roleNoMain = "PROCNODE_TEST_NO_MAIN"

// Helper kinds are registered with registerKind and spawned with spawnKind,
// so that TestMain can tell an unused one.
var (
	testKinds []string // written by init only
	usedKinds sync.Map
)

func registerKind(name string, p procnode.Producer) {
	testKinds = append(testKinds, name)
	procnode.RegisterKind(name, p)
}

func spawnKind(ctx context.Context, spawner pa.SpawnerContext, kind string, opts ...procnode.Option) (*procnode.Process, error) {
	usedKinds.Store(kind, true)
	return procnode.Spawn(ctx, spawner, kind, opts...)
}

func init() {
	// test.echo answers "echo: <m>" and obeys the commands of echoActor.
	registerKind("test.echo", func(args procnode.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return echoActor{node: args.Node} }), nil
	})
	// test.caller says hello to the PID given as its args when it starts.
	registerKind("test.caller", func(args procnode.Args) (*pa.Props, error) {
		to, ok := args.Value.(*pa.PID)
		if !ok {
			return nil, fmt.Errorf("test.caller args: got %T; want *actor.PID", args.Value)
		}
		return pa.PropsFromFunc(func(c pa.Context) {
			if _, ok := c.Message().(*pa.Started); ok {
				c.Send(to, "hello from "+c.Self().Address)
			}
		}), nil
	})
	// test.stubborn ignores SIGTERM and never finishes stopping.
	registerKind("test.stubborn", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(c pa.Context) {
			switch c.Message().(type) {
			case *pa.Started:
				signal.Ignore(syscall.SIGTERM)
			case *pa.Stopping:
				time.Sleep(time.Hour)
			case string:
				c.Respond("stubborn")
			}
		}), nil
	})
	// test.startblocks writes its OS pid to its stderr from Started (its
	// link is not up before Started returns), then never returns from it.
	registerKind("test.startblocks", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(c pa.Context) {
			if _, ok := c.Message().(*pa.Started); ok {
				fmt.Fprintf(os.Stderr, "startblocks pid=%d\n", os.Getpid())
				select {}
			}
		}), nil
	})
	// test.slowstart never gets to its handshake.
	registerKind("test.slowstart", func(procnode.Args) (*pa.Props, error) {
		time.Sleep(time.Minute)
		return nil, errors.New("too late")
	})
}

// echoActor is the root actor of test.echo. A string message is a command
// ("cmd:arg"); anything unknown is echoed.
type echoActor struct{ node *actor.Node }

func (a echoActor) Receive(ctx pa.Context) {
	m, ok := ctx.Message().(string)
	if !ok {
		return
	}
	cmd, arg, _ := strings.Cut(m, ":")
	switch cmd {
	case "panic":
		panic("asked to panic")
	case "exit3":
		os.Exit(3)
	case "quit": // the root actor stops: the child exits 0
		ctx.Stop(ctx.Self())
	case "env":
		ctx.Respond(os.Getenv(arg))
	case "cwd":
		wd, _ := os.Getwd()
		ctx.Respond(wd)
	case "pid":
		ctx.Respond(os.Getpid())
	case "gomaxprocs":
		ctx.Respond(runtime.GOMAXPROCS(0))
	case "polls": // how often the child's side of its link polled for an answer
		var polls int64
		for _, l := range a.node.Links() { // a child's one link: to its parent
			polls += l.ReaderStats().Polls
		}
		ctx.Respond(polls)
	case "stdout":
		fmt.Println(arg)
		ctx.Respond("ok")
	case "stderr":
		fmt.Fprintln(os.Stderr, arg)
		ctx.Respond("ok")
	case "log": // one record of procactor's logger, one of protoactor's
		l := a.node.Logger()
		l.Info().Str("key", "value").Msg(arg)
		ctx.Logger().Warn(arg + " (protoactor)")
		ctx.Respond("ok")
	case "stopmark": // an actor of the root's that creates the file arg when it stops
		ctx.Spawn(pa.PropsFromFunc(func(c pa.Context) {
			if _, ok := c.Message().(*pa.Stopping); ok {
				_ = os.WriteFile(arg, nil, 0o600)
			}
		}))
		ctx.Respond("ok")
	case "spawn": // a second actor in the child; its PID goes to the parent
		ctx.Respond(ctx.Spawn(pa.PropsFromProducer(func() pa.Actor { return echoActor{node: a.node} })))
	case "grandchild": // a child process of the child; its PID goes to the parent
		p, err := spawnKind(context.Background(), ctx, "test.echo", procnode.WithRestart(false))
		if err != nil {
			ctx.Respond("grandchild: " + err.Error())
			return
		}
		ctx.Respond(p.PID())
	default:
		ctx.Respond("echo: " + m)
	}
}

func newNode(t *testing.T, opts ...actor.NodeOption) *procnode.Node {
	t.Helper()
	n, err := procnode.NewNode(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("closing node: %v", err)
		}
	})
	return n
}

// testCtx bounds a test's waits generously (a loaded 2-core machine running
// race-enabled children is slow, not stuck).
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// spawn starts a child of kind under the node's root, failing the test on
// error; the child's stderr is kept in its exit status only, unless opts say
// otherwise.
func spawn(t *testing.T, n *procnode.Node, kind string, opts ...procnode.Option) *procnode.Process {
	t.Helper()
	opts = append([]procnode.Option{procnode.WithStderr(nil)}, opts...)
	p, err := spawnKind(testCtx(t), n.Root(), kind, opts...)
	if err != nil {
		t.Fatalf("spawn %s: %v", kind, err)
	}
	return p
}

// request sends m to pid and returns the answer, failing the test on error.
func request(t *testing.T, n *procnode.Node, pid *pa.PID, m any) any {
	t.Helper()
	res, err := n.Root().RequestFuture(pid, m, 30*time.Second).Result()
	if err != nil {
		t.Fatalf("request %v to %s: %v", m, pid, err)
	}
	return res
}

// probe spawns an actor in the parent that hands every message it receives
// to the returned channel; start runs when it starts (to watch a PID).
func probe(t *testing.T, n *procnode.Node, start func(pa.Context)) (*pa.PID, <-chan any) {
	t.Helper()
	ch := make(chan any, 64)
	pid := n.Root().Spawn(pa.PropsFromFunc(func(c pa.Context) {
		switch m := c.Message().(type) {
		case *pa.Started:
			if start != nil {
				start(c)
			}
		case *pa.Stopping, *pa.Stopped, *pa.Restarting:
		default:
			ch <- m
		}
	}))
	t.Cleanup(func() { _ = n.Root().StopFuture(pid).Wait() })
	return pid, ch
}

func waitErr(t *testing.T, p *procnode.Process) error {
	t.Helper()
	err := p.Wait(testCtx(t))
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("child %s did not end", p.Address())
	}
	return err
}

// TestSpawnRequestStop: the basic life of a child, from the root context:
// request/response, OS pid, Alive, Wait while running (ctx's error), Stop
// (graceful: exit 0, marked as our stop), Wait again and again, the Exited
// event, and Stop being idempotent.
func TestSpawnRequestStop(t *testing.T) {
	n := newNode(t)
	ctx := testCtx(t)
	exited := make(chan *procnode.Exited, 1)
	sub := n.System().EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*procnode.Exited); ok {
			exited <- e
		}
	})
	defer n.System().EventStream.Unsubscribe(sub)

	p := spawn(t, n, "test.echo", procnode.WithRestart(false))
	if res := request(t, n, p.PID(), "hi"); res != "echo: hi" {
		t.Fatalf("got %v; want echo: hi", res)
	}
	if pid := request(t, n, p.PID(), "pid"); pid != p.OSPid() || !p.Alive() {
		t.Fatalf("child says pid %v; OSPid %d, Alive %v", pid, p.OSPid(), p.Alive())
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	if err := p.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while running: got %v; want DeadlineExceeded", err)
	}
	cancel()
	if st := p.ExitStatus(); st != nil {
		t.Fatalf("ExitStatus while running: got %v; want nil", st)
	}

	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 { // Wait may be called many times, concurrently
		wg.Go(func() {
			if err := p.Wait(ctx); err != nil {
				t.Errorf("Wait after Stop: %v", err)
			}
		})
	}
	wg.Wait()
	st := p.ExitStatus()
	if !st.Stopped || st.Code != 0 || st.Signal != 0 || st.Incarnation != 0 || p.Alive() {
		t.Fatalf("status %+v, alive %v; want a clean exit marked Stopped", st, p.Alive())
	}
	select {
	case e := <-exited:
		if !e.PID.Equal(p.PID()) || !e.Status.Stopped {
			t.Fatalf("Exited event %+v; want one for %v", e, p.PID())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no Exited event")
	}
	for _, err := range []error{p.Stop(ctx), p.Terminate(ctx), p.Kill(ctx)} {
		if err != nil {
			t.Fatalf("after the end: got %v; want nil", err)
		}
	}
	if !p.ExitStatus().Stopped || p.ExitStatus().Signal != 0 {
		t.Fatalf("status changed after the end: %v", p.ExitStatus())
	}
}

// TestRootPanicEndsChild: with WithPanicExits a panic that escapes the
// child's root actor ends the child with ExitRootFailed and the panic text
// as the reason.
func TestRootPanicEndsChild(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.echo", procnode.WithRestart(false), procnode.WithPanicExits(true))
	n.Root().Send(p.PID(), "panic")
	err := waitErr(t, p)
	var ee *procnode.ExitError
	// The reason is the child's ExitNotice, not a line of its stderr (which
	// says "procactor: root actor panicked: ...").
	if !errors.As(err, &ee) || ee.Code != procnode.ExitRootFailed || ee.Reason != "root actor panicked: asked to panic" || ee.Stopped {
		t.Fatalf("got %v; want ExitError code %d with the panic text as reason, not Stopped", err, procnode.ExitRootFailed)
	}
	if !bytes.Contains(ee.StderrTail, []byte("asked to panic")) {
		t.Fatalf("stderr tail %q lacks the panic", ee.StderrTail)
	}
}

// TestRootPanicStopsRootsActors: the actors a panicking actor spawned see
// Stopping (their cleanup runs) before the restarted actor answers, in one
// process and across with WithPanicExits, where the child process ends
// and the restart is a new one.
func TestRootPanicStopsRootsActors(t *testing.T) {
	t.Parallel()
	echo := pa.PropsFromProducer(func() pa.Actor { return echoActor{} })
	bothSides(t, func(t *testing.T, process bool) {
		w := newWorldOf(t, echo, "test.echo", process, defaultStrategy(), 1, procnode.WithPanicExits(true))
		mark := filepath.Join(t.TempDir(), "stopped")
		if got := w.ask(0, "stopmark:"+mark); got != "ok" {
			t.Fatalf("got %v; want ok", got)
		}
		w.send(0, "panic")
		if got := w.ask(0, "x"); got != "echo: x" {
			t.Fatalf("after the panic: got %v; want the restarted actor's answer", got)
		}
		if _, err := os.Stat(mark); err != nil {
			t.Fatalf("the panicking actor's actor did not see Stopping: %v", err)
		}
		if f := w.failures(); len(f) != 1 {
			t.Fatalf("failures %v; want one", f)
		}
	})
}

// TestRootStopExitsZero: the root actor stopping ends the child with 0.
func TestRootStopExitsZero(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.echo")
	n.Root().Send(p.PID(), "quit")
	if err := waitErr(t, p); err != nil {
		t.Fatalf("got %v; want nil", err)
	}
	if st := p.ExitStatus(); st.Stopped || st.Code != 0 {
		t.Fatalf("status %+v; want code 0, not Stopped", st)
	}
}

// TestMainNotCalled: a process that was started as a child (the bootstrap
// is in its environment) but did not run Main refuses to Spawn.
func TestMainNotCalled(t *testing.T) {
	n := newNode(t)
	t.Setenv("PROCACTOR_BOOT", "x")
	if _, err := spawnKind(testCtx(t), n.Root(), "test.echo"); !errors.Is(err, procnode.ErrMainNotCalled) {
		t.Fatalf("got %v; want ErrMainNotCalled", err)
	}
}

// TestStartFailures: what Spawn says when a child cannot come up.
func TestStartFailures(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	t.Run("unknown kind", func(t *testing.T) {
		t.Parallel()
		// Checked in the parent, before any exec.
		if _, err := spawnKind(testCtx(t), n.Root(), "test.nowhere"); !errors.Is(err, procnode.ErrKindNotRegistered) {
			t.Fatalf("got %v; want ErrKindNotRegistered", err)
		}
	})
	t.Run("producer fails", func(t *testing.T) {
		t.Parallel()
		_, err := spawnKind(testCtx(t), n.Root(), "test.caller", procnode.WithStderr(nil)) // no PID in args
		var ee *procnode.ExitError
		if !errors.Is(err, procnode.ErrStartFailed) || !errors.As(err, &ee) || ee.Code != procnode.ExitSpawnFailed {
			t.Fatalf("got %v; want ErrStartFailed with exit code %d", err, procnode.ExitSpawnFailed)
		}
		if !bytes.Contains(ee.StderrTail, []byte("want *actor.PID")) {
			t.Fatalf("stderr tail %q lacks the producer's error", ee.StderrTail)
		}
	})
	t.Run("handshake timeout", func(t *testing.T) {
		t.Parallel()
		_, err := spawnKind(testCtx(t), n.Root(), "test.slowstart", procnode.WithStartTimeout(time.Second))
		if !errors.Is(err, procnode.ErrStartFailed) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v; want ErrStartFailed wrapping DeadlineExceeded", err)
		}
	})
	t.Run("spawn cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := spawnKind(ctx, n.Root(), "test.slowstart"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v; want DeadlineExceeded", err)
		}
	})
	t.Run("invalid option", func(t *testing.T) {
		t.Parallel()
		if _, err := spawnKind(testCtx(t), n.Root(), "test.echo", procnode.WithStartTimeout(0)); !errors.Is(err, procnode.ErrInvalidOption) {
			t.Fatalf("got %v; want ErrInvalidOption", err)
		}
	})
	t.Run("no node", func(t *testing.T) {
		t.Parallel()
		sys := pa.NewActorSystem(pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
		defer sys.Shutdown()
		if _, err := spawnKind(testCtx(t), sys.Root, "test.echo"); !errors.Is(err, procnode.ErrNoNode) {
			t.Fatalf("got %v; want ErrNoNode", err)
		}
	})
}

// TestSpawnCancelledDuringStart: a Spawn whose ctx ends while the child
// runs its root actor's Started returns ctx's error at once, and by then the
// child is gone (killed and reaped: nothing runs that nobody owns). The
// Kill it made used to wait for the handshake, which comes only once
// Started returns: Spawn returned at the start timeout (WithStartTimeout,
// 10 s by default), or, with a Started that did return, after it.
func TestSpawnCancelledDuringStart(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	var stderr testutil.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// A start timeout longer than any wait of this test: only the
		// cancel can end this Spawn in time.
		_, err := spawnKind(ctx, n.Root(), "test.startblocks",
			procnode.WithStartTimeout(10*testutil.Timeout), procnode.WithStderr(&stderr))
		done <- err
	}()
	var osPid int
	testutil.Eventually(t, "the root actor in Started", func() bool {
		_, err := fmt.Sscanf(stderr.String(), "startblocks pid=%d", &osPid)
		return err == nil
	})
	cancel()
	if err := testutil.Receive(t, done, "Spawn to return after its ctx was cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	if err := syscall.Kill(osPid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("the child (pid %d) after Spawn returned: kill(0) = %v; want ESRCH (killed and reaped)", osPid, err)
	}
}

// TestOtherBinary: WithBinary runs another executable that calls Main (built
// here from testdata/helper). Its kinds are its own: the parent does not
// check them, and one it lacks fails with ErrKindNotRegistered and its
// stderr.
func TestOtherBinary(t *testing.T) {
	t.Parallel()
	helper := buildHelper(t)
	n := newNode(t)
	p := spawn(t, n, "helper.greeter", procnode.WithBinary(helper), procnode.WithRestart(false))
	if res := request(t, n, p.PID(), "parent"); res != "hello parent from the helper binary" {
		t.Fatalf("got %q", res)
	}
	if err := p.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	_, err := spawnKind(testCtx(t), n.Root(), "test.echo", procnode.WithBinary(helper), procnode.WithStderr(nil))
	var ee *procnode.ExitError
	if !errors.Is(err, procnode.ErrKindNotRegistered) || !errors.As(err, &ee) || ee.Code != procnode.ExitKindNotRegistered {
		t.Fatalf("got %v; want ErrKindNotRegistered with exit code %d", err, procnode.ExitKindNotRegistered)
	}
	if !bytes.Contains(ee.StderrTail, []byte(`"test.echo" is not registered`)) {
		t.Fatalf("stderr tail %q", ee.StderrTail)
	}
}

// buildHelper builds testdata/helper into a temporary directory, with -race
// when this test binary has it (so the build reuses the cached packages).
func buildHelper(t *testing.T) string {
	t.Helper()
	// `go test` runs with the go command on PATH; without it this test
	// cannot prove anything, and says so by failing.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the helper binary: %v", err)
	}
	out := filepath.Join(t.TempDir(), "helper")
	args := []string{"build", "-o", out}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	cmd := exec.Command(goBin, append(args, "./testdata/helper")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build helper: %v\n%s", err, b)
	}
	return out
}

// TestOptions: the spawn options with observable effects in the child.
func TestOptions(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	t.Run("env", func(t *testing.T) {
		t.Parallel()
		p := spawn(t, n, "test.echo", procnode.WithEnv("PROCNODE_TEST_VAR=forty-two"))
		if got := request(t, n, p.PID(), "env:PROCNODE_TEST_VAR"); got != "forty-two" {
			t.Fatalf("got %q; want forty-two", got)
		}
		if got := request(t, n, p.PID(), "env:PROCACTOR_BOOT"); got != "" {
			t.Fatalf("the child still has its bootstrap in its environment: %q", got)
		}
	})
	t.Run("gomaxprocs", func(t *testing.T) {
		t.Parallel()
		p := spawn(t, n, "test.echo", procnode.WithGOMAXPROCS(1))
		if got := request(t, n, p.PID(), "gomaxprocs"); got != 1 {
			t.Fatalf("child GOMAXPROCS %v; want 1", got)
		}
		if _, err := procnode.Spawn(testCtx(t), n.Root(), "test.echo", procnode.WithGOMAXPROCS(-1)); !errors.Is(err, procnode.ErrInvalidOption) {
			t.Fatalf("WithGOMAXPROCS(-1): got %v; want ErrInvalidOption", err)
		}
	})
	t.Run("spinwait", func(t *testing.T) {
		t.Parallel()
		// The child's side polls after its actor replied, unless told not to.
		for _, c := range []struct {
			opts  []procnode.Option
			polls bool
		}{{nil, true}, {[]procnode.Option{procnode.WithSpinWait(0)}, false}} {
			p := spawn(t, n, "test.echo", c.opts...)
			// A reply handed to a worker (the inline run's budget spent on a
			// loaded machine) arms no poll: ask again, a bounded number of
			// times, until one did.
			var got any
			for range 10 {
				for range 20 {
					request(t, n, p.PID(), "ping")
				}
				got = request(t, n, p.PID(), "polls")
				if polls, ok := got.(int64); !ok || polls > 0 {
					break
				}
			}
			if polls, ok := got.(int64); !ok || (polls > 0) != c.polls {
				t.Fatalf("spawned with %d options: the child's link polled %v times; want polls: %v", len(c.opts), got, c.polls)
			}
		}
		if _, err := procnode.Spawn(testCtx(t), n.Root(), "test.echo", procnode.WithSpinWait(-time.Microsecond)); !errors.Is(err, procnode.ErrInvalidOption) {
			t.Fatalf("WithSpinWait(-1µs): got %v; want ErrInvalidOption", err)
		}
	})
	t.Run("dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := spawn(t, n, "test.echo", procnode.WithDir(dir))
		got, _ := request(t, n, p.PID(), "cwd").(string)
		want, _ := filepath.EvalSymlinks(dir)
		if got, _ = filepath.EvalSymlinks(got); got != want {
			t.Fatalf("got %q; want %q", got, want)
		}
	})
	t.Run("stdout", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		p := spawn(t, n, "test.echo", procnode.WithStdout(&out))
		request(t, n, p.PID(), "stdout:to stdout")
		if err := p.Stop(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if out.String() != "to stdout\n" {
			t.Fatalf("got %q; want the child's line", out.String())
		}
	})
	t.Run("stderr", func(t *testing.T) {
		t.Parallel()
		var copied testutil.SyncBuffer
		p := spawn(t, n, "test.echo", procnode.WithStderr(&copied), procnode.WithStderrTail(64), procnode.WithRestart(false))
		request(t, n, p.PID(), "stderr:"+strings.Repeat("x", 200))
		request(t, n, p.PID(), "stderr:the end")
		n.Root().Send(p.PID(), "exit3")
		var ee *procnode.ExitError
		if err := waitErr(t, p); !errors.As(err, &ee) || ee.Code != 3 {
			t.Fatalf("got %v; want exit code 3", err)
		}
		if len(ee.StderrTail) > 64 || !bytes.HasSuffix(ee.StderrTail, []byte("the end\n")) {
			t.Fatalf("tail %q; want at most 64 bytes ending in the last line", ee.StderrTail)
		}
		if ee.Reason != "the end" {
			t.Fatalf("reason %q; want the last stderr line", ee.Reason)
		}
		if !strings.Contains(copied.String(), strings.Repeat("x", 200)+"\nthe end\n") {
			t.Fatalf("copied stderr %q", copied.String())
		}
	})
	t.Run("name", func(t *testing.T) {
		t.Parallel()
		p := spawn(t, n, "test.echo", procnode.WithName("named-worker"))
		byName := pa.NewPID(n.Address(), "named-worker")
		if q, ok := n.Process(byName); !ok || q != p {
			t.Fatalf("Process(%v) = %v, %v; want the named process actor", byName, q, ok)
		}
		if res := request(t, n, byName, "by name"); res != "echo: by name" {
			t.Fatalf("request by name: got %v", res)
		}
		if _, err := spawnKind(testCtx(t), n.Root(), "test.echo", procnode.WithName("named-worker")); !errors.Is(err, procnode.ErrNameExists) {
			t.Fatalf("second spawn with the name: got %v; want ErrNameExists", err)
		}
	})
}

// TestMessagingBothWays: the child messages a parent PID it was given as
// args; the child spawns an actor and hands its PID to the parent, which
// messages it directly.
func TestMessagingBothWays(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	pid, got := probe(t, n, nil)
	p := spawn(t, n, "test.caller", procnode.WithArgs(pid))
	if m := testutil.Receive(t, got, "got"); m != "hello from "+p.Address() {
		t.Fatalf("got %v; want hello from %s", m, p.Address())
	}

	e := spawn(t, n, "test.echo")
	other, ok := request(t, n, e.PID(), "spawn").(*pa.PID)
	if !ok || other.Address != e.Address() || other.Id == procnode.RootID {
		t.Fatalf("got %v; want a second actor's PID in the child", other)
	}
	if res := request(t, n, other, "direct"); res != "echo: direct" {
		t.Fatalf("got %v", res)
	}
}

// TestGrandchild: a child spawns its own child from inside its root actor;
// the top parent requests and watches the grandchild's PID through two
// hops, and stopping the child ends the grandchild too.
func TestGrandchild(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.echo", procnode.WithRestart(false))
	gc, ok := request(t, n, p.PID(), "grandchild").(*pa.PID)
	if !ok || !strings.HasPrefix(gc.Address, p.Address()+"/") {
		t.Fatalf("got %v; want the grandchild's PID under %s", gc, p.Address())
	}
	if res := request(t, n, gc, "two hops"); res != "echo: two hops" {
		t.Fatalf("got %v", res)
	}
	gcPid, _ := request(t, n, gc, "pid").(int)
	_, events := probe(t, n, func(c pa.Context) { c.Watch(gc); c.Send(c.Self(), "watching") })
	if m := testutil.Receive(t, events, "events"); m != "watching" {
		t.Fatalf("got %v", m)
	}
	if err := p.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if term, ok := testutil.Receive(t, events, "events").(*pa.Terminated); !ok || !term.Who.Equal(gc) {
		t.Fatalf("got %v; want Terminated of the grandchild", term)
	}
	if gcPid == 0 || processRuns(gcPid) {
		t.Fatalf("grandchild %d still runs after its parent stopped", gcPid)
	}
}

// processRuns reports whether pid names a live process (a zombie counts as
// gone).
func processRuns(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	_, after, _ := bytes.Cut(b, []byte(") "))
	return len(after) > 0 && after[0] != 'Z' && after[0] != 'X'
}

// spawnerActor spawns a child process of its own on any string message and
// hands the result to out.
type spawnerActor struct {
	out  chan<- spawned
	opts []procnode.Option
}

type spawned struct {
	p        *procnode.Process
	err      error
	children []*pa.PID // the spawner's, after the spawn
}

func (a *spawnerActor) Receive(ctx pa.Context) {
	if _, ok := ctx.Message().(string); ok {
		p, err := spawnKind(context.Background(), ctx, "test.echo", a.opts...)
		a.out <- spawned{p, err, ctx.Children()}
	}
}

func spawnFromActor(t *testing.T, n *procnode.Node, opts ...pa.PropsOption) (*pa.PID, spawned) {
	t.Helper()
	out := make(chan spawned, 1)
	spawner := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor {
		return &spawnerActor{out: out, opts: []procnode.Option{procnode.WithStderr(nil)}}
	}, opts...))
	t.Cleanup(func() { _ = n.Root().StopFuture(spawner).Wait() })
	n.Root().Send(spawner, "go")
	var s spawned
	select {
	case s = <-out:
	case <-time.After(60 * time.Second):
		t.Fatal("the spawner actor did not spawn")
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return spawner, s
}

// TestSpawnFromActor: an actor spawns a child; the process actor's PID is
// the actor's child in protoactor's tree, so stopping the actor stops the
// child.
func TestSpawnFromActor(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	spawner, s := spawnFromActor(t, n)
	p := s.p
	if len(s.children) != 1 || s.children[0] != p.PID() {
		t.Fatalf("spawner's children %v; want exactly the process actor's PID %v", s.children, p.PID())
	}
	if res := request(t, n, p.PID(), "hi"); res != "echo: hi" {
		t.Fatalf("got %v", res)
	}
	if err := n.Root().StopFuture(spawner).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, p); err != nil {
		t.Fatalf("got %v; want a clean exit", err)
	}
	if st := p.ExitStatus(); !st.Stopped {
		t.Fatalf("status %+v; want Stopped", st)
	}
}

// TestStopStrategy: a spawner whose supervisor strategy stops failing
// children ends the Process on a crash: no restart, and Wait says it failed.
func TestStopStrategy(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	strategy := pa.NewOneForOneStrategy(0, 0, func(any) pa.Directive { return pa.StopDirective })
	_, s := spawnFromActor(t, n, pa.WithSupervisor(strategy))
	p := s.p
	n.Root().Send(p.PID(), "exit3")
	var ee *procnode.ExitError
	if err := waitErr(t, p); !errors.As(err, &ee) || ee.Code != 3 || ee.Stopped || !ee.Failed || ee.Incarnation != 0 {
		t.Fatalf("got %v; want exit code 3 of incarnation 0, Failed, not Stopped", err)
	}
	if p.Incarnation() != 0 {
		t.Fatalf("incarnation %d; want no restart", p.Incarnation())
	}
}

// TestResumeAfterCrash: a Resume directive for a dead process starts a new
// one (there is no instance to resume; the mailbox goes on).
func TestResumeAfterCrash(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	strategy := pa.NewOneForOneStrategy(10, time.Minute, func(any) pa.Directive { return pa.ResumeDirective })
	_, s := spawnFromActor(t, n, pa.WithSupervisor(strategy))
	p := s.p
	killPid(t, p.OSPid())
	if res := request(t, n, p.PID(), "after"); res != "echo: after" {
		t.Fatalf("got %v", res)
	}
	if p.Incarnation() != 1 {
		t.Fatalf("incarnation %d; want 1", p.Incarnation())
	}
}

// TestRestart: under the default strategy a crashed child (here killed) is
// restarted as incarnation 1 at the same address: the same p.PID() answers,
// from another OS process.
func TestRestart(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.echo") // WithRestart(true) is the default
	before := p.OSPid()
	up := make(chan struct{})
	var once sync.Once
	sub := n.System().EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*actor.LinkUp); ok && e.Address == p.Address() && e.Incarnation == 1 {
			once.Do(func() { close(up) })
		}
	})
	defer n.System().EventStream.Unsubscribe(sub)

	killPid(t, before)
	select {
	case <-up:
	case <-time.After(60 * time.Second):
		t.Fatal("no restart")
	}
	if res := request(t, n, p.PID(), "again"); res != "echo: again" {
		t.Fatalf("got %v", res)
	}
	st := p.ExitStatus()
	if p.Incarnation() != 1 || st == nil || st.Signal != syscall.SIGKILL || st.Incarnation != 0 || p.OSPid() == before || !p.Alive() {
		t.Fatalf("incarnation %d, last status %+v, pid %d (was %d); want incarnation 1 after SIGKILL", p.Incarnation(), st, p.OSPid(), before)
	}
	if pid := request(t, n, p.PID(), "pid"); pid != p.OSPid() {
		t.Fatalf("child says pid %v; want %d", pid, p.OSPid())
	}
	if err := p.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, p); err != nil || p.ExitStatus().Incarnation != 1 {
		t.Fatalf("got %v, %+v; want a clean stop of incarnation 1", err, p.ExitStatus())
	}
}

// TestRestartHealthyChild: a Restart system message to a healthy process
// actor (as an AllForOne strategy sends when a sibling fails) restarts its
// root actor inside the same child: same OS process, same PID, still
// answering.
func TestRestartHealthyChild(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.echo")
	before := p.OSPid()
	request(t, n, p.PID(), "hi")
	proc, _ := n.System().ProcessRegistry.Get(p.PID())
	proc.SendSystemMessage(p.PID(), &pa.Restart{})
	for i := 0; i < 3; i++ { // requests after the restart reach the same child
		if pid := request(t, n, p.PID(), "pid"); pid != before {
			t.Fatalf("child pid %v after a restart; want %d", pid, before)
		}
	}
	select {
	case <-p.Done():
		t.Fatalf("Process ended after a restart: %v", p.ExitStatus())
	default:
	}
	// The child reports the restart before it answers the requests behind
	// it, but the parent counts the report on the process actor's own
	// goroutine: the count may trail an answer by a moment.
	testutil.Eventually(t, "the restart counted", func() bool { return p.Restarts() == 1 })
	if p.Incarnation() != 0 || !p.Alive() || p.Restarts() != 1 {
		t.Fatalf("incarnation %d alive %v restarts %d; want 0, true, 1", p.Incarnation(), p.Alive(), p.Restarts())
	}
	if err := p.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, p); err != nil {
		t.Fatalf("got %v; want a clean stop", err)
	}
}

// TestTerminateKill: Terminate and Kill end the child with their signal,
// mark the status as our stop, and are idempotent.
func TestTerminateKill(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	for _, tc := range []struct {
		name string
		end  func(*procnode.Process, context.Context) error
		sig  syscall.Signal
	}{
		{"terminate", (*procnode.Process).Terminate, syscall.SIGTERM},
		{"kill", (*procnode.Process).Kill, syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := spawn(t, n, "test.echo")
			request(t, n, p.PID(), "hi")
			for range 2 {
				if err := tc.end(p, testCtx(t)); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-p.Done():
			default:
				t.Fatal("not done when the call returned")
			}
			var ee *procnode.ExitError
			if err := p.Wait(testCtx(t)); !errors.As(err, &ee) || ee.Signal != tc.sig || !ee.Stopped || ee.Code != -1 {
				t.Fatalf("got %v; want killed by %v, Stopped", err, tc.sig)
			}
		})
	}
}

// TestStopContext: Stop bounded by a context that ends first kills the
// child and returns the context's error.
func TestStopContext(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.stubborn")
	request(t, n, p.PID(), "ready")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v; want DeadlineExceeded", err)
	}
	if st := p.ExitStatus(); st.Signal != syscall.SIGKILL || !st.Stopped {
		t.Fatalf("status %+v; want SIGKILL, Stopped", st)
	}
}

// TestWatch: watchers of p.PID() get Terminated when the child's root actor
// stops, and when the process dies.
func TestWatch(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	for _, tc := range []struct {
		name string
		end  func(*procnode.Process)
	}{
		{"stop", func(p *procnode.Process) { n.Root().Send(p.PID(), "quit") }},
		{"kill", func(p *procnode.Process) { killPid(t, p.OSPid()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := spawn(t, n, "test.echo", procnode.WithRestart(false))
			_, events := probe(t, n, func(c pa.Context) { c.Watch(p.PID()); c.Request(p.PID(), "watching") })
			if m := testutil.Receive(t, events, "events"); m != "echo: watching" {
				t.Fatalf("got %v", m)
			}
			tc.end(p)
			if m := testutil.Receive(t, events, "events"); !isTerminated(m, p.PID()) {
				t.Fatalf("got %T %v; want Terminated of %v", m, m, p.PID())
			}
			waitErr(t, p)
		})
	}
}

func isTerminated(m any, who *pa.PID) bool {
	term, ok := m.(*pa.Terminated)
	return ok && term.Who.Equal(who)
}

// TestLogs: the child's procactor and protoactor records reach the parent's
// logger at their level, tagged with the child's address, name and OS pid,
// with their own fields; so do the grandchild's, tagged with its own; all of
// them, even when the child stops right after.
func TestLogs(t *testing.T) {
	t.Parallel()
	var buf testutil.SyncBuffer
	n := newNode(t)
	p := spawn(t, n, "test.echo", procnode.WithName("chatty"),
		procnode.WithLogger(zerolog.New(&buf).Level(zerolog.DebugLevel)))
	request(t, n, p.PID(), "log:hello parent")
	osPid := p.OSPid()
	gc, ok := request(t, n, p.PID(), "grandchild").(*pa.PID)
	if !ok {
		t.Fatal("no grandchild")
	}
	request(t, n, gc, "log:hello grandparent")
	if err := p.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	var ours, protos, gcs int
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("bad record %q: %v", line, err)
		}
		if rec["child"] != p.Address() {
			t.Errorf("record not tagged with the child it came from: %s", line)
		}
		if from, _ := rec["from"].(map[string]any); from != nil {
			// Relayed by the child from its own child: that one's tags nest
			// under the parent's.
			if from["child"] == gc.Address && rec["message"] == "hello grandparent" {
				gcs++
			}
			continue
		}
		if rec["child"] != p.Address() || rec["name"] != "chatty" {
			t.Errorf("record without the child's tags: %s", line)
		}
		switch rec["message"] {
		case "hello parent":
			ours++
			if rec["level"] != "info" || rec["key"] != "value" || rec["os_pid"] != float64(osPid) {
				t.Errorf("procactor record: %s", line)
			}
		case "hello parent (protoactor)":
			protos++
			if rec["level"] != "warn" || rec["lib"] != "protoactor" || rec["os_pid"] != float64(osPid) {
				t.Errorf("protoactor record: %s", line)
			}
		}
	}
	if ours != 1 || protos != 1 || gcs != 1 {
		t.Fatalf("got %d procactor, %d protoactor and %d grandchild records; want 1 each. Log:\n%s", ours, protos, gcs, buf.String())
	}
}

// TestQuietByDefault: with the node's default logger nothing is relayed
// and the child writes nothing to its stderr, but dead letters are
// visible: a child's go through the control relay to the parent, which
// prints them (here to the writer given with actor.WithDeadLetterLog).
func TestQuietByDefault(t *testing.T) {
	t.Parallel()
	var buf, dead testutil.SyncBuffer
	n := newNode(t, actor.WithDeadLetterLog(&dead))
	p := spawn(t, n, "test.echo", procnode.WithStderr(&buf))
	request(t, n, p.PID(), "log:nobody hears this")
	if s := dead.String(); s != "" {
		t.Fatalf("a normal exchange printed dead letters: %q", s)
	}
	nobody := pa.NewPID(p.PID().Address, "nobody")
	if _, err := n.Root().RequestFuture(nobody, "x", 30*time.Second).Result(); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request to a missing actor in the child: got %v; want ErrDeadLetter", err)
	}
	want := "procactor: dead letter at " + p.PID().Address + ": string to nobody@" + p.PID().Address
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(dead.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no line %q from the child; got %q", want, dead.String())
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "" {
		t.Fatalf("the child wrote to stderr: %q", buf.String())
	}
}

// TestDeadLetterOfARequestReportedOnce: requests that reach a child after
// its root actor stopped, or find it gone, fail with ErrDeadLetter, and
// each is reported once: by the child (its root actor is gone) or by the
// parent (the link is gone), not by both.
func TestDeadLetterOfARequestReportedOnce(t *testing.T) {
	t.Parallel()
	var dead testutil.SyncBuffer
	n := newNode(t, actor.WithDeadLetterLog(&dead))
	p := spawn(t, n, "test.echo", procnode.WithRestart(false))
	n.Root().Send(p.PID(), "quit")
	var asked []*pa.Future
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		asked = append(asked, n.Root().RequestFuture(p.PID(), "x", 30*time.Second))
		time.Sleep(100 * time.Microsecond)
	}
	if err := waitErr(t, p); err != nil {
		t.Fatalf("got %v; want nil (the root actor stopped)", err)
	}
	for _, f := range asked {
		if _, err := f.Result(); !errors.Is(err, pa.ErrDeadLetter) {
			t.Fatalf("a request after quit: got %v; want ErrDeadLetter", err)
		}
	}
	lines := strings.Split(strings.TrimSpace(dead.String()), "\n")
	seen := map[string]string{}
	for _, line := range lines {
		_, after, ok := strings.Cut(line, " from ")
		if !ok {
			continue
		}
		from, _, _ := strings.Cut(after, " ")
		from = strings.TrimSuffix(from, ":")
		if prev, twice := seen[from]; twice {
			t.Fatalf("a dead letter from %s reported twice:\n%s\n%s", from, prev, line)
		}
		seen[from] = line
	}
	if len(seen) == 0 {
		t.Fatalf("no dead letter of a request reported; lines: %q", lines)
	}
}

// TestNewNodeAt: a root named by host:port (as package reach needs) spawns
// children below that address, and refuses a non-root address.
func TestNewNodeAt(t *testing.T) {
	for _, bad := range []string{"", "nonhost", "127.0.0.1:7001/1", "a b"} {
		if n, err := procnode.NewNodeAt(bad); !errors.Is(err, actor.ErrInvalidAddress) {
			if n != nil {
				n.Close(context.Background())
			}
			t.Errorf("NewNodeAt(%q): got %v; want ErrInvalidAddress", bad, err)
		}
	}
	n, err := procnode.NewNodeAt("127.0.0.1:7001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("closing node: %v", err)
		}
	})
	if got := n.System().ProcessRegistry.Address; got != "127.0.0.1:7001" {
		t.Fatalf("registry address %q; want 127.0.0.1:7001", got)
	}
	p := spawn(t, n, "test.echo")
	if got := p.Address(); got != "127.0.0.1:7001/1" {
		t.Fatalf("child address %q; want 127.0.0.1:7001/1", got)
	}
	res, err := n.Root().RequestFuture(p.PID(), "hi", 10*time.Second).Result()
	if err != nil || res != "echo: hi" {
		t.Fatalf("request: %v, %v; want echo: hi", res, err)
	}
}
