package procnode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
)

// TestRootFailureBeforeStartReported: the child's report of a failure on a
// message held during its start can arrive before the start's outcome is
// posted (the held messages go out during the handshake); it must be
// handled once the process actor is up, not dropped (which would leave the
// root actor suspended for ever). The hook makes the report come first.
// It spawns the external tests' kind "sem.counter" (one test binary).
func TestRootFailureBeforeStartReported(t *testing.T) {
	setTestHookStarted(t, func() { time.Sleep(100 * time.Millisecond) })
	n, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	pid := n.Root().Spawn(Props("sem.counter", WithStderr(nil)))
	n.Root().Send(pid, "boom")
	n.Root().Send(pid, "inc")
	res, err := n.Root().RequestFuture(pid, "get", 30*time.Second).Result()
	if err != nil || res != 1 {
		t.Fatalf("got %v, %v; want 1: the root actor restarted after the held message it failed on", res, err)
	}
}

// TestRestartBeforeStartReported: a process actor answers as soon as its
// child is up, before the start's outcome reaches its supervisor goroutine;
// a Restart sent then (an AllForOne sibling's failure) must restart the
// root actor once the process actor is up, not be dropped.
func TestRestartBeforeStartReported(t *testing.T) {
	releaseStart := holdStarts(t)
	n, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	pid := n.Root().Spawn(Props("sem.counter", WithStderr(nil)))
	if res, err := n.Root().RequestFuture(pid, "starts", 30*time.Second).Result(); err != nil || res != 1 {
		t.Fatalf("starts: %v, %v; want 1", res, err)
	}
	p, _ := n.Process(pid)
	if st := p.State(); st != "starting" {
		t.Fatalf("state %s; want starting (the hook holds the start's outcome)", st)
	}
	proc, _ := n.System().ProcessRegistry.Get(pid)
	proc.SendSystemMessage(pid, &pa.Restart{})
	releaseStart()
	testutil.Eventually(t, "the root actor restarted", func() bool {
		res, err := n.Root().RequestFuture(pid, "starts", 30*time.Second).Result()
		return err == nil && res == 2
	})
}

// holdStarts holds every start's outcome from its supervisor goroutine
// until the returned func (idempotent; run at the test's end too) is called.
func holdStarts(t *testing.T) (release func()) {
	held := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	t.Cleanup(release)
	setTestHookStarted(t, func() { <-held })
	return release
}

// setTestHookStarted sets the start hook for the test's duration.
func setTestHookStarted(t *testing.T, f func()) {
	testHookStarted.Store(&f)
	t.Cleanup(func() { testHookStarted.Store(nil) })
}

// stopDuringHeldStart spawns kind sem.counter with opts while the start's
// outcome is held from the supervisor goroutine, sends it msg (held, sent as
// the link comes up), waits until pending says the supervisor has seen what
// msg did, begins a Stop, releases the start, and returns the Process once
// Stop has returned.
func stopDuringHeldStart(t *testing.T, msg string, what string, pending func(p *Process) bool, opts ...Option) *Process {
	t.Helper()
	releaseStart := holdStarts(t)
	n, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // bounded: a process actor that never ends must fail the test, not hang it
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	pid := n.Root().Spawn(Props("sem.counter", append([]Option{WithStderr(nil)}, opts...)...))
	p, _ := n.Process(pid)
	n.Root().Send(pid, msg)
	testutil.Eventually(t, what, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return pending(p)
	})
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(context.Background()) }()
	testutil.Eventually(t, "the stop begun", func() bool { return p.State() == "stopping" })
	releaseStart()
	if err := testutil.Receive(t, stopped, "Stop to return"); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStopAfterExitBeforeStartReported: a child that exits before its
// start's outcome reaches the supervisor goroutine (a message held during
// the start killed it), and that is stopped meanwhile, still ends: Stop
// returns, Wait gives the exit. The hook holds the start's outcome until the
// exit has been seen and the stop has begun.
func TestStopAfterExitBeforeStartReported(t *testing.T) {
	// "exit3" makes the child exit 3.
	p := stopDuringHeldStart(t, "exit3", "the exit seen while the start is held",
		func(p *Process) bool { return p.pendingExit != nil })
	if st := p.ExitStatus(); st == nil || st.Code != 3 {
		t.Fatalf("exit status %v; want exit code 3", st)
	}
}

// TestStopAfterFailureBeforeStartReported: a root actor that failed on a
// message held during its start (reported before the start's outcome), and
// is stopped meanwhile, still stops gracefully: its failure goes to the
// strategy, whose Restart lets the poison through, and the child exits 0.
// Without it the poison waits in the suspended mailbox until SIGTERM.
func TestStopAfterFailureBeforeStartReported(t *testing.T) {
	// "boom" makes the root actor fail.
	p := stopDuringHeldStart(t, "boom", "the failure seen while the start is held",
		func(p *Process) bool { return p.pendingFailure != nil }, WithStopTimeouts(20*time.Second, time.Second))
	if err := p.Wait(context.Background()); err != nil {
		t.Fatalf("Wait: %v; want nil (the poisoned root actor stopped, the child exited 0)", err)
	}
}

func init() {
	// race.failonce fails its first start (its producer fails, the child
	// exits) and starts from then on: its args are a file that says it
	// failed once. Its root actor panics on "boom" and answers "get".
	RegisterKind("race.failonce", func(args Args) (*pa.Props, error) {
		path, _ := args.Value.(string)
		if _, err := os.Stat(path); err != nil {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				return nil, err
			}
			return nil, errors.New("race.failonce: the first start fails")
		}
		return pa.PropsFromFunc(func(c pa.Context) {
			switch c.Message() {
			case "boom":
				panic("boom")
			case "get":
				c.Respond("got")
			}
		}), nil
	})
}

// setHook sets one of the test hooks for the test's duration.
func setHook[F any](t *testing.T, h interface{ Store(*F) }, f F) {
	h.Store(&f)
	t.Cleanup(func() { h.Store(nil) })
}

// TestLateExitOfFailedStart: a failed start's exit can reach the supervisor
// goroutine after the failed start was handled and the next start begun. It
// is an older incarnation's news and must be dropped, not kept as the exit
// of the incarnation being started (which onStarted then took for a death:
// the root actor's failure on a held message, reported during that start,
// was never handled and its mailbox stayed suspended for ever). The hooks
// make the exit of incarnation 0 come, and be handled, after the next start
// has begun and before it runs; then hold that start's outcome until the
// failure on the held "boom" is pending.
func TestLateExitOfFailedStart(t *testing.T) {
	var (
		exitParked   = make(chan struct{})
		releaseExit  = make(chan struct{})
		exitHandled  = make(chan struct{})
		startParked  = make(chan struct{})
		releaseStart = make(chan struct{})
		releaseOut   = make(chan struct{})
		starts       atomic.Int32
		outcomes     atomic.Int32
		onceHandled  sync.Once
	)
	freeExit := sync.OnceFunc(func() { close(releaseExit) })
	freeStart := sync.OnceFunc(func() { close(releaseStart) })
	freeOut := sync.OnceFunc(func() { close(releaseOut) })
	releaseAll := func() { freeExit(); freeStart(); freeOut() }
	t.Cleanup(releaseAll)
	setHook(t, &testHookReaped, func(_ *Process, inc uint64) {
		if inc == 0 {
			close(exitParked)
			<-releaseExit
		}
	})
	setHook(t, &testHookHandled, func(_ *Process, ev any) {
		if e, ok := ev.(evExited); ok && e.status.Incarnation == 0 {
			onceHandled.Do(func() { close(exitHandled) })
		}
	})
	setHook(t, &testHookStarting, func(*Process) {
		if starts.Add(1) == 2 {
			close(startParked)
			<-releaseStart
		}
	})
	setHook(t, &testHookStarted, func() {
		if outcomes.Add(1) == 2 {
			<-releaseOut
		}
	})
	n, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { // bounded: a stuck root actor must fail the test, not hang it
		releaseAll()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	}()
	pid := n.Root().Spawn(Props("race.failonce", WithArgs(filepath.Join(t.TempDir(), "failed")),
		WithStderr(nil), WithRestartBackoff(time.Millisecond, time.Millisecond), WithStopTimeouts(time.Second, time.Second)))
	p, _ := n.Process(pid)
	testutil.Receive(t, exitParked, "the failed start's exit recorded")
	testutil.Receive(t, startParked, "the next start begun")
	freeExit()
	testutil.Receive(t, exitHandled, "the failed start's exit handled")
	n.Root().Send(pid, "boom") // held, sent as the link comes up: the root actor fails
	freeStart()
	testutil.Eventually(t, "the failure seen while the start is held", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.pendingFailure != nil
	})
	freeOut()
	res, err := n.Root().RequestFuture(pid, "get", 10*time.Second).Result()
	if err != nil || res != "got" {
		t.Fatalf("got %v, %v; want the restarted root actor's answer", res, err)
	}
	if inc := p.Incarnation(); inc != 1 {
		t.Fatalf("incarnation %d; want 1", inc)
	}
}

// TestSpawnedChildEndsBeforeSpawnReturns: a child that ends right after its
// start (here killed, restarts off), before the Spawn (or Pool.Take) that
// waited for it has returned, is still its spawner's child: protoactor lists
// it in Children once the spawn returns, so the spawner must get its
// Terminated (without it the spawner's own stop waits for it for ever). The
// hook ends the child as the spawn is about to return.
func TestSpawnedChildEndsBeforeSpawnReturns(t *testing.T) {
	setHook(t, &testHookAdopting, func(p *Process) {
		_ = p.Signal(syscall.SIGKILL)
		<-p.Done()
	})
	ready := filepath.Join(t.TempDir(), "failed")
	if err := os.WriteFile(ready, nil, 0o600); err != nil { // race.failonce starts at once
		t.Fatal(err)
	}
	n, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	}()
	pl, err := NewPool(n, "race.failonce", 1, WithStderr(nil), WithRestart(false))
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close(context.Background())
	spawns := map[string]func(c pa.Context) (*Process, error){
		"Spawn": func(c pa.Context) (*Process, error) {
			return Spawn(context.Background(), c, "race.failonce", WithArgs(ready), WithStderr(nil), WithRestart(false))
		},
		"Take": func(c pa.Context) (*Process, error) { return pl.Take(context.Background(), c, WithArgs(ready)) },
	}
	for name, spawn := range spawns {
		t.Run(name, func(t *testing.T) {
			spawned := make(chan *pa.PID, 1)
			terminated := make(chan *pa.PID, 1)
			spawner := n.Root().Spawn(pa.PropsFromFunc(func(c pa.Context) {
				switch m := c.Message().(type) {
				case string:
					p, err := spawn(c)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					spawned <- p.PID()
				case *pa.Terminated:
					terminated <- m.Who
				}
			}))
			n.Root().Send(spawner, "spawn")
			pid := testutil.Receive(t, spawned, name+" to return")
			if who := testutil.Receive(t, terminated, "the spawner's Terminated"); !who.Equal(pid) {
				t.Fatalf("Terminated for %v; want %v", who, pid)
			}
			if err := n.Root().StopFuture(spawner).Wait(); err != nil {
				t.Fatalf("the spawner's stop: %v", err)
			}
		})
	}
}

// TestResumeAfterCooperativeRestartFailed: a healthy process actor told to
// restart (an AllForOne sibling failed; here a Restart sent by hand)
// restarts its root actor in the child, under a deadline (the graceful stop
// timeout) after which a child stuck in a handler is killed and a new
// process started. The new instance fails in Started; the strategy resumes
// it. The child has answered, so the deadline no longer applies: once it is
// over, the resumed instance still runs (the same process, its Started
// counted twice, as in one process). The deadline used to stay armed: the
// resumed child was killed and replaced by a new process. It spawns the
// external tests' kind "sem.restartpanics" (one test binary); the hook
// tells when the deadline's timer has been handled.
func TestResumeAfterCooperativeRestartFailed(t *testing.T) {
	var target atomic.Pointer[Process]
	timers := make(chan struct{}, 8)
	hook := func(p *Process, ev any) {
		if _, ok := ev.(evTimer); ok && p == target.Load() {
			select {
			case timers <- struct{}{}:
			default:
			}
		}
	}
	testHookHandled.Store(&hook)
	t.Cleanup(func() { testHookHandled.Store(nil) })
	n, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	failures := make(chan any, 8)
	decider := func(reason any) pa.Directive {
		failures <- reason
		if reason == "cannot restart" {
			return pa.ResumeDirective
		}
		return pa.StopDirective
	}
	spawned := make(chan *pa.PID, 1)
	parent := n.Root().Spawn(pa.PropsFromFunc(func(c pa.Context) {
		if _, ok := c.Message().(*pa.Started); ok {
			spawned <- c.Spawn(Props("sem.restartpanics", WithStderr(nil), WithStopTimeouts(100*time.Millisecond, time.Second)))
		}
	}, pa.WithSupervisor(pa.NewOneForOneStrategy(10, time.Minute, decider))))
	t.Cleanup(func() { _ = n.Root().StopFuture(parent).Wait() })
	pid := testutil.Receive(t, spawned, "the process actor")
	p, _ := n.Process(pid)
	target.Store(p)
	ask := func(m string) any {
		t.Helper()
		res, err := n.Root().RequestFuture(pid, m, 30*time.Second).Result()
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		return res
	}
	if got := ask("starts"); got != 1 {
		t.Fatalf("starts %v; want 1", got)
	}
	osPid := p.OSPid()
	proc, _ := n.System().ProcessRegistry.Get(pid)
	proc.SendSystemMessage(pid, &pa.Restart{})
	if r := testutil.Receive(t, failures, "the restart's failure"); r != "cannot restart" {
		t.Fatalf("the strategy saw %v; want cannot restart", r)
	}
	testutil.Receive(t, timers, "the restart deadline's timer handled")
	if got := ask("starts"); got != 2 || p.Incarnation() != 0 || p.OSPid() != osPid {
		t.Fatalf("after the deadline: starts %v, incarnation %d, pid %d (was %d); want the resumed instance: starts 2, incarnation 0, the same process",
			got, p.Incarnation(), p.OSPid(), osPid)
	}
}
