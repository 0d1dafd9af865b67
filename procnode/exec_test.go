package procnode_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/procnode"
)

// What an os/exec user expects of a Process: signals, stdin, a clean
// environment, the process state, a stop that says so, a lifetime bound to
// a context, a working directory checked before the fork.

func init() {
	// test.exec obeys the commands of execActor.
	registerKind("test.exec", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return &execActor{} }), nil
	})
}

// execActor is the root actor of test.exec.
type execActor struct {
	usr1       chan struct{} // closed once a SIGUSR1 came
	stdin      string        // all of stdin, read when it starts (a message may come twice: at least once)
	hangOnStop bool
}

func (a *execActor) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGUSR1)
		a.usr1 = make(chan struct{})
		go func() { <-sigs; close(a.usr1) }()
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			b = []byte("stdin: " + err.Error())
		}
		a.stdin = string(b)
	case *pa.Stopping:
		if a.hangOnStop {
			time.Sleep(time.Hour)
		}
	case string:
		switch m {
		case "usr1": // answers once a SIGUSR1 came (bounded), without blocking the actor:
			// a request redelivered after a crash must not hold up the next
			sender, root, ch := ctx.Sender(), ctx.ActorSystem().Root, a.usr1
			go func() {
				select {
				case <-ch:
					root.Send(sender, "got SIGUSR1")
				case <-time.After(30 * time.Second):
					root.Send(sender, "no SIGUSR1")
				}
			}()
		case "pid":
			ctx.Respond(os.Getpid())
		case "stdin":
			ctx.Respond(a.stdin)
		case "environ":
			ctx.Respond(strings.Join(os.Environ(), "\n"))
		case "hang-on-stop": // stopping never ends: the stop must signal
			a.hangOnStop = true
			ctx.Respond("ok")
		case "ignore-term":
			signal.Ignore(syscall.SIGTERM)
			ctx.Respond("ok")
		case "trap-term": // SIGTERM makes it say so and exit 1
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			go func() {
				<-ch
				fmt.Fprintln(os.Stderr, "got SIGTERM")
				os.Exit(1)
			}()
			ctx.Respond("ok")
		case "burn": // uses some CPU
			var x uint64
			for start := time.Now(); time.Since(start) < 20*time.Millisecond; x++ {
			}
			ctx.Respond(fmt.Sprint(x > 0))
		}
	}
}

// restarted waits until p runs incarnation inc.
func restarted(t *testing.T, p *procnode.Process, inc uint64) {
	t.Helper()
	testutil.Eventually(t, fmt.Sprintf("incarnation %d up", inc), func() bool { return p.Incarnation() == inc && p.State() == "up" })
}

// TestSignal: Signal reaches the current incarnation; a signal that ends it
// is a crash (the default strategy restarts it, and the status does not say
// the parent stopped it); with no incarnation running it is ErrNotRunning.
func TestSignal(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.exec")
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if got := request(t, n, p.PID(), "usr1"); got != "got SIGUSR1" {
		t.Fatalf("child says %q; want got SIGUSR1", got)
	}
	before := p.OSPid()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	restarted(t, p, 1)
	if pid := request(t, n, p.PID(), "pid"); pid == before || pid != p.OSPid() {
		t.Fatalf("child says pid %v after the restart; OSPid %d, was %d", pid, p.OSPid(), before)
	}
	if st := p.ExitStatus(); st.Signal != syscall.SIGKILL || st.Stopped || st.StopSignal != 0 || st.String() != "killed by SIGKILL" {
		t.Fatalf("status %+v (%v); want killed by SIGKILL, not a stop", st, st)
	}
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("signal to the new incarnation: %v", err)
	}
	if got := request(t, n, p.PID(), "usr1"); got != "got SIGUSR1" {
		t.Fatalf("new incarnation says %q; want got SIGUSR1", got)
	}
	if err := p.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGUSR1); !errors.Is(err, procnode.ErrNotRunning) {
		t.Fatalf("Signal after the end: got %v; want ErrNotRunning", err)
	}
}

// TestOSPid: OSPid is the current incarnation's pid, the last one's while a
// restart is pending (Alive is then false, and Signal refuses), and the last
// one's after the end, as ExitStatus's.
func TestOSPid(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	// A backoff floor of a minute keeps the restart pending for the test.
	p := spawn(t, n, "test.exec", procnode.WithRestartBackoff(time.Minute, time.Minute))
	pid := p.OSPid()
	if got := request(t, n, p.PID(), "pid"); got != pid || pid == 0 {
		t.Fatalf("child says pid %v; OSPid %d", got, pid)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the restart to wait for its backoff floor", func() bool { return p.State() == "restarting" })
	if p.OSPid() != pid || p.Alive() {
		t.Fatalf("during the restart gap: OSPid %d, Alive %v; want %d, false", p.OSPid(), p.Alive(), pid)
	}
	if err := p.Signal(syscall.SIGUSR1); !errors.Is(err, procnode.ErrNotRunning) {
		t.Fatalf("Signal during the restart gap: got %v; want ErrNotRunning", err)
	}
	if err := p.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st := p.ExitStatus(); p.OSPid() != pid || st.OSPid != pid {
		t.Fatalf("after the end: OSPid %d, status's %d; want %d", p.OSPid(), st.OSPid, pid)
	}
}

// TestStdin: WithStdin feeds the first incarnation, later ones read
// /dev/null; WithStdinFunc gives each incarnation its own reader.
func TestStdin(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	cases := []struct {
		name   string
		opt    procnode.Option
		first  string
		second string
	}{
		{"WithStdin", procnode.WithStdin(strings.NewReader("to the first")), "to the first", ""},
		{"WithStdinFunc", procnode.WithStdinFunc(func(inc uint64) io.Reader {
			return strings.NewReader(fmt.Sprint("to incarnation ", inc))
		}), "to incarnation 0", "to incarnation 1"},
		{"default", nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts []procnode.Option
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			p := spawn(t, n, "test.exec", opts...)
			if got := request(t, n, p.PID(), "stdin"); got != tc.first {
				t.Fatalf("first incarnation read %q; want %q", got, tc.first)
			}
			if err := p.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			restarted(t, p, 1)
			if got := request(t, n, p.PID(), "stdin"); got != tc.second {
				t.Fatalf("second incarnation read %q; want %q", got, tc.second)
			}
		})
	}
}

// TestEnviron: WithEnviron gives the child exactly the environment given
// (then WithEnv's entries); procactor's bootstrap is gone by the time the
// kind runs, and PROCACTOR_LOG follows the parent's.
func TestEnviron(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	given := []string{"PROCNODE_TEST_A=1", "GORACE=" + os.Getenv("GORACE")}
	p := spawn(t, n, "test.exec", procnode.WithEnviron(given), procnode.WithEnv("PROCNODE_TEST_B=2"))
	want := append(slices.Clone(given), "PROCNODE_TEST_B=2")
	if v, ok := os.LookupEnv("PROCACTOR_LOG"); ok {
		want = append(want, "PROCACTOR_LOG="+v)
	}
	got, _ := request(t, n, p.PID(), "environ").(string)
	if lines := strings.Split(got, "\n"); !slices.Equal(lines, want) {
		t.Fatalf("child's environment %q; want exactly %q", lines, want)
	}

	empty := spawn(t, n, "test.exec", procnode.WithEnviron(nil))
	want = nil
	if v, ok := os.LookupEnv("PROCACTOR_LOG"); ok {
		want = []string{"PROCACTOR_LOG=" + v}
	}
	got, _ = request(t, n, empty.PID(), "environ").(string)
	if lines := strings.FieldsFunc(got, func(r rune) bool { return r == '\n' }); !slices.Equal(lines, want) {
		t.Fatalf("WithEnviron(nil): child's environment %q; want %q", lines, want)
	}
}

// TestStopSaysSo: when a stop had to signal the child, Wait's error says the
// parent stopped it, with what and after how long, not that something
// killed it.
func TestStopSaysSo(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	cases := []struct {
		name     string
		setup    []string
		opts     []procnode.Option
		stop     func(*procnode.Process) error
		want     string
		sig      syscall.Signal
		stopSig  syscall.Signal
		stopWait time.Duration
	}{
		{"graceful deadline", []string{"hang-on-stop"}, []procnode.Option{procnode.WithStopTimeouts(300*time.Millisecond, time.Minute)},
			func(p *procnode.Process) error { return p.Stop(testCtx(t)) },
			"procnode: child stopped by parent (SIGTERM after 300ms)", syscall.SIGTERM, syscall.SIGTERM, 300 * time.Millisecond},
		{"both deadlines", []string{"hang-on-stop", "ignore-term"}, []procnode.Option{procnode.WithStopTimeouts(100*time.Millisecond, 200*time.Millisecond)},
			func(p *procnode.Process) error { return p.Stop(testCtx(t)) },
			"procnode: child stopped by parent (SIGKILL after 300ms)", syscall.SIGKILL, syscall.SIGKILL, 300 * time.Millisecond},
		{"Terminate", nil, nil,
			func(p *procnode.Process) error { return p.Terminate(testCtx(t)) },
			"procnode: child stopped by parent (SIGTERM)", syscall.SIGTERM, syscall.SIGTERM, 0},
		{"Kill", nil, nil,
			func(p *procnode.Process) error { return p.Kill(testCtx(t)) },
			"procnode: child stopped by parent (SIGKILL)", syscall.SIGKILL, syscall.SIGKILL, 0},
		{"child exits on SIGTERM", []string{"hang-on-stop", "trap-term"}, []procnode.Option{procnode.WithStopTimeouts(100*time.Millisecond, time.Minute)},
			func(p *procnode.Process) error { return p.Stop(testCtx(t)) },
			"procnode: child exit code 1: got SIGTERM (stopped by parent: SIGTERM after 100ms)", 0, syscall.SIGTERM, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := spawn(t, n, "test.exec", append(tc.opts, procnode.WithRestart(false))...)
			for _, cmd := range tc.setup {
				request(t, n, p.PID(), cmd)
			}
			if err := tc.stop(p); err != nil {
				t.Fatal(err)
			}
			err := waitErr(t, p)
			var ee *procnode.ExitError
			if !errors.As(err, &ee) || err.Error() != tc.want {
				t.Fatalf("Wait: %v; want %q", err, tc.want)
			}
			if !ee.Stopped || ee.Signal != tc.sig || ee.StopSignal != tc.stopSig || ee.StopAfter != tc.stopWait {
				t.Fatalf("status %+v; want Stopped, signal %v, stop signal %v after %v", ee.ExitStatus, tc.sig, tc.stopSig, tc.stopWait)
			}
		})
	}
	t.Run("ctx ends the stop", func(t *testing.T) {
		t.Parallel()
		p := spawn(t, n, "test.exec", procnode.WithRestart(false), procnode.WithStopTimeouts(time.Minute, time.Minute))
		request(t, n, p.PID(), "hang-on-stop")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := p.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop: %v; want DeadlineExceeded", err)
		}
		st := p.ExitStatus()
		if !st.Stopped || st.StopSignal != syscall.SIGKILL || st.StopAfter < 100*time.Millisecond ||
			!strings.HasPrefix(st.String(), "stopped by parent (SIGKILL after ") {
			t.Fatalf("status %+v (%v); want SIGKILL once ctx ended", st, st)
		}
	})
}

// TestWithContext: the process actor ends, gracefully, when WithContext's
// context is done, in both spawn forms; Spawn refuses a context that is done
// already, and a nil one.
func TestWithContext(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := spawn(t, n, "test.exec", procnode.WithContext(ctx))
	request(t, n, p.PID(), "pid")
	cancel()
	if err := waitErr(t, p); err != nil {
		t.Fatalf("Wait: %v; want a clean end", err)
	}
	if st := p.ExitStatus(); !st.Stopped || st.Code != 0 || st.StopSignal != 0 {
		t.Fatalf("status %+v; want a graceful stop", st)
	}

	usedKinds.Store("test.exec", true)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	pid := n.Root().Spawn(procnode.Props("test.exec", procnode.WithContext(ctx), procnode.WithStderr(nil)))
	request(t, n, pid, "pid")
	q, ok := n.Process(pid)
	if !ok {
		t.Fatalf("no process actor for %v", pid)
	}
	cancel()
	if err := waitErr(t, q); err != nil || !q.ExitStatus().Stopped {
		t.Fatalf("Props form: Wait %v, status %+v; want a graceful stop", err, q.ExitStatus())
	}

	if _, err := spawnKind(testCtx(t), n.Root(), "test.exec", procnode.WithContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Spawn with a done context: got %v; want context.Canceled", err)
	}
	//lint:ignore SA1012 a nil context is what is tested
	if _, err := spawnKind(testCtx(t), n.Root(), "test.exec", procnode.WithContext(nil)); !errors.Is(err, procnode.ErrInvalidOption) {
		t.Fatalf("WithContext(nil): got %v; want ErrInvalidOption", err)
	}
}

// TestWithDirChecked: a working directory that does not exist, or is not a
// directory, fails the start naming it, before any fork.
func TestWithDirChecked(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	file, err := os.CreateTemp(t.TempDir(), "not-a-dir")
	if err != nil {
		t.Fatal(err)
	}
	file.Close()
	for _, tc := range []struct {
		dir  string
		want error
	}{
		{"/nonexistent/procnode-test", fs.ErrNotExist},
		{file.Name(), syscall.ENOTDIR},
	} {
		_, err := spawnKind(testCtx(t), n.Root(), "test.exec", procnode.WithDir(tc.dir))
		if !errors.Is(err, procnode.ErrStartFailed) || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.dir) || strings.Contains(err.Error(), "fork/exec") {
			t.Fatalf("WithDir(%q): got %v; want ErrStartFailed naming the directory, wrapping %v", tc.dir, err, tc.want)
		}
	}
}

// TestForgottenMain: a binary started as a child whose main does not call
// Main (here the test binary in a role that skips it, see TestMain) exits
// with ExitMainNotCalled and one clear line, long before the start timeout,
// and Spawn says ErrMainNotCalled.
func TestForgottenMain(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	_, err := spawnKind(testCtx(t), n.Root(), "test.exec", procnode.WithEnv(roleNoMain+"=1"),
		procnode.WithStartTimeout(6*time.Second), procnode.WithStderr(nil))
	var ee *procnode.ExitError
	if !errors.Is(err, procnode.ErrMainNotCalled) || !errors.Is(err, procnode.ErrStartFailed) || !errors.As(err, &ee) {
		t.Fatalf("got %v; want ErrStartFailed, ErrMainNotCalled and an *ExitError", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || ee.Code != procnode.ExitMainNotCalled {
		t.Fatalf("got %v; want exit code %d before the start timeout", err, procnode.ExitMainNotCalled)
	}
	if want := "procactor: started as a procactor child but main did not call procnode.Main() first\n"; string(ee.StderrTail) != want {
		t.Fatalf("stderr %q; want the one line %q", ee.StderrTail, want)
	}
}

// TestTwoRootNodes: two NewNode calls in one process get distinct root
// addresses ("n", then "n2"), so their children and PIDs differ; both work
// and close cleanly, and a closed node's address is free again. Not
// parallel: it counts on being the only live node.
func TestTwoRootNodes(t *testing.T) {
	n1 := newNode(t)
	n2 := newNode(t)
	if n1.Address() != procnode.RootAddress || n2.Address() != procnode.RootAddress+"2" {
		t.Fatalf("root addresses %q and %q; want %q and %q", n1.Address(), n2.Address(), procnode.RootAddress, procnode.RootAddress+"2")
	}
	p1 := spawn(t, n1, "test.exec")
	p2 := spawn(t, n2, "test.exec")
	if p1.Address() != "n/1" || p2.Address() != "n2/1" || p1.PID().Equal(p2.PID()) {
		t.Fatalf("children %v and %v; want n/1 and n2/1", p1.PID(), p2.PID())
	}
	if a, b := request(t, n1, p1.PID(), "pid"), request(t, n2, p2.PID(), "pid"); a != p1.OSPid() || b != p2.OSPid() {
		t.Fatalf("children say pids %v, %v; want %d, %d", a, b, p1.OSPid(), p2.OSPid())
	}
	for _, n := range []*procnode.Node{n2, n1} {
		if err := n.Close(testCtx(t)); err != nil {
			t.Fatalf("closing %s: %v", n.Address(), err)
		}
	}
	for _, p := range []*procnode.Process{p1, p2} {
		if err := waitErr(t, p); err != nil {
			t.Fatalf("%s: %v; want a clean stop", p.Address(), err)
		}
	}
	if n3 := newNode(t); n3.Address() != procnode.RootAddress {
		t.Fatalf("after both closed: %q; want %q again", n3.Address(), procnode.RootAddress)
	}
}

// TestEmbeddedNodeIsSafe: what the embedded actor.Node allows cannot break
// the process actors: ChildLink refuses Spawn's segments, Spawn skips one
// taken behind its back, Intercept and Release refuse a process actor's
// PID, and a caller's OnDown on a child's link runs beside procnode's own,
// so a crash is still supervised.
func TestEmbeddedNodeIsSafe(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	if _, err := n.ChildLink("1"); !errors.Is(err, actor.ErrInvalidAddress) {
		t.Fatalf("ChildLink(1): got %v; want ErrInvalidAddress", err)
	}
	if _, err := n.ChildLink("side"); err != nil {
		t.Fatalf("ChildLink(side): %v", err)
	}
	if _, err := n.Node.ChildLink("1"); err != nil {
		t.Fatal(err)
	}
	p := spawn(t, n, "test.exec")
	if want := n.Address() + "/2"; p.Address() != want {
		t.Fatalf("child at %s; want %s (segment 1 was taken)", p.Address(), want)
	}

	if err := n.Intercept(p.PID(), nil); !errors.Is(err, procnode.ErrNameExists) {
		t.Fatalf("Intercept of a process actor's PID: got %v; want ErrNameExists", err)
	}
	if err := n.Release(p.PID()); !errors.Is(err, procnode.ErrNameExists) {
		t.Fatalf("Release of a process actor's PID: got %v; want ErrNameExists", err)
	}
	downs := make(chan any, 4)
	for _, l := range n.Links() {
		if l.Address() == p.Address() {
			l.OnDown(func(err error) { downs <- err })
		}
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Receive(t, downs, "downs")
	restarted(t, p, 1)
	if pid := request(t, n, p.PID(), "pid"); pid != p.OSPid() {
		t.Fatalf("child says pid %v; want %d", pid, p.OSPid())
	}
}

// TestStopOnSignal: with StopOnSignal, the signal stops the node's process
// actors gracefully and ends the returned context with ErrSignaled; a spawn
// afterwards does not start; Close ends a watch that saw no signal. Not
// parallel: it signals the test process itself.
func TestStopOnSignal(t *testing.T) {
	n := newNode(t)
	ctx := n.StopOnSignal(syscall.SIGUSR1)
	p := spawn(t, n, "test.exec")
	request(t, n, p.PID(), "pid")
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-testCtx(t).Done():
		t.Fatal("the context did not end")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, procnode.ErrSignaled) || !strings.Contains(cause.Error(), syscall.SIGUSR1.String()) {
		t.Fatalf("cause %v; want ErrSignaled naming the signal", cause)
	}
	if err := waitErr(t, p); err != nil {
		t.Fatalf("Wait: %v; want a graceful stop", err)
	}
	if st := p.ExitStatus(); !st.Stopped || st.Code != 0 {
		t.Fatalf("status %+v; want a graceful stop", st)
	}
	if _, err := spawnKind(testCtx(t), n.Root(), "test.exec"); !errors.Is(err, procnode.ErrStartFailed) {
		t.Fatalf("Spawn after the signal: got %v; want ErrStartFailed", err)
	}

	other := newNode(t)
	ctx = other.StopOnSignal(syscall.SIGUSR2)
	if err := other.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		t.Fatalf("cause after Close %v; want context.Canceled", cause)
	}
}
