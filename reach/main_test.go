package reach_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/internal/leakcheck"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
	"github.com/procactor/procactor/reach"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// Each root of these tests is its own OS process: the test process is one
// root (B, made per test by newHost), and startRoot re-executes the test
// binary as another (A, C) with envRootAddr set; TestMain then runs runRoot
// instead of the tests. Children and grandchildren of every root are
// re-executions too (procnode.Main, first in TestMain).
const (
	envRootAddr    = "REACH_TEST_ROOT"
	envClusterAddr = "REACH_TEST_CLUSTER" // comma-separated members: the root joins a cluster

	agentKind = "reach_test.agent"
	grainKind = "reach_test.grain"
	// workerKind is the cluster kind whose activations run grainKind in
	// child processes.
	workerKind = "worker"
	ctlName    = "ctl"

	testTimeout = 20 * time.Second
	// clusterTimeout bounds a cluster request a test root makes for the
	// test: well inside testTimeout, so that the test, waiting testTimeout
	// for the root's answer, gets a failed attempt's error (and may try
	// again) rather than timing out just before it arrives.
	clusterTimeout = testTimeout / 2
)

func TestMain(m *testing.M) {
	procnode.Main()
	if addr := os.Getenv(envRootAddr); addr != "" {
		os.Exit(runRoot(addr))
	}
	// A race-enabled child sleeps for the race detector's atexit_sleep_ms
	// (1 s) at every clean exit; the processes of these tests need not.
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	fds := testutil.FDCount()
	code := m.Run()
	if err := closeHostB(); err != nil {
		fmt.Fprintf(os.Stderr, "closing root B: %v\n", err)
		code = 1
	}
	// Descriptors return to where they were once B is closed (its gRPC
	// connections close a moment after Close returns).
	for deadline := time.Now().Add(5 * time.Second); code == 0 && testutil.FDCount() > fds; {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "descriptors: %d before the tests, %d after\n", fds, testutil.FDCount())
			code = 1
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code == 0 {
		opts := append(leakcheck.Options(), goleak.IgnoreAnyFunction("github.com/procactor/procactor/procnode.forkLoop"))
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Messages of the test agents; every process of the test registers them.
type (
	// ping asks for a pong; with ReplyTo, a copy of the pong goes there too.
	ping struct {
		Text    string
		ReplyTo *pa.PID
	}
	pong struct {
		Text     string
		Header   map[string]string
		Address  string // of the node that answered
		OSPid    int
		Identity string // a grain's cluster identity
	}
	// spawnProc asks an agent for a child process running an agent.
	spawnProc struct{ NoRestart bool }
	procInfo  struct {
		PID   *pa.PID // the child's root actor (an agent)
		OSPid int
	}
	// spawnNamed asks an agent for a top-level echo actor named Name on its
	// node; the answer is its PID.
	spawnNamed struct{ Name string }
	// ask makes an agent request Ping from Target (with Header) and answer
	// what came back. (msgpack gives an "any" field back as a map: fields
	// are typed.)
	ask struct {
		Target *pa.PID
		Ping   *ping
		Header map[string]string
	}
	askResult struct {
		Pong *pong
		Err  string
	}
	// watchReq makes an agent spawn a watcher of Target on its node, which
	// sends a watched to Report on Terminated; the answer is the watcher's
	// PID, sent by the watcher after its Watch.
	watchReq struct {
		Target, Report *pa.PID
	}
	watched struct {
		Who, Watcher *pa.PID
		Why          int32
	}
	// stopReq makes an agent stop Target and answer once it has stopped.
	stopReq struct{ Target *pa.PID }
	// seqMsg and seqCheck: an echo counts numbered messages and says
	// whether they came in order.
	seqMsg    struct{ N int }
	seqCheck  struct{}
	seqResult struct {
		Count   int
		Ordered bool
	}
	// clusterReq makes a root's agent request Ping from a cluster identity.
	clusterReq struct {
		Identity, Kind string
		Ping           *ping
	}
	// activationReq asks a root's agent for the PID of a cluster identity's
	// activation.
	activationReq struct{ Identity, Kind string }
)

func init() {
	for name, v := range map[string]any{
		"reach_test.ping": &ping{}, "reach_test.pong": &pong{}, "reach_test.spawnProc": &spawnProc{},
		"reach_test.procInfo": &procInfo{}, "reach_test.spawnNamed": &spawnNamed{}, "reach_test.ask": &ask{},
		"reach_test.askResult": &askResult{}, "reach_test.watchReq": &watchReq{}, "reach_test.watched": &watched{},
		"reach_test.stopReq": &stopReq{}, "reach_test.seqMsg": &seqMsg{}, "reach_test.seqCheck": &seqCheck{},
		"reach_test.seqResult": &seqResult{}, "reach_test.clusterReq": &clusterReq{}, "reach_test.activationReq": &activationReq{},
	} {
		mailbox.RegisterType(name, v)
	}
	procnode.RegisterKind(agentKind, func(args procnode.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return &agent{} }), nil
	})
	procnode.RegisterKind(grainKind, func(args procnode.Args) (*pa.Props, error) {
		act, _ := args.Value.(*reach.Activation)
		if act == nil {
			return nil, fmt.Errorf("grain needs an Activation, got %T", args.Value)
		}
		return pa.PropsFromProducer(func() pa.Actor { return &echo{identity: act.Identity} }), nil
	})
}

// echo answers pings and counts numbered messages.
type echo struct {
	identity string
	count    int
	ordered  bool
}

func (e *echo) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		e.ordered = true
	case *ping:
		p := &pong{Text: m.Text, Header: ctx.MessageHeader().ToMap(), Address: ctx.Self().Address, OSPid: os.Getpid(), Identity: e.identity}
		if m.ReplyTo != nil {
			ctx.Send(m.ReplyTo, p)
		}
		if ctx.Sender() != nil {
			ctx.Respond(p)
		}
	case *seqMsg:
		if m.N != e.count {
			e.ordered = false
		}
		e.count++
	case *seqCheck:
		ctx.Respond(&seqResult{Count: e.count, Ordered: e.ordered})
	}
}

// agent is the root actor of every test process below a root, and the
// "ctl" actor of every root process: it answers pings (as an echo) and runs
// the test's commands on its node.
type agent struct {
	echo
	procs []*procnode.Process
}

func (a *agent) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *spawnProc:
		opts := []procnode.Option{procnode.WithRestart(!m.NoRestart), procnode.WithStopTimeouts(2*time.Second, time.Second)}
		c, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		p, err := procnode.Spawn(c, ctx, agentKind, opts...)
		if err != nil {
			ctx.Respond(&askResult{Err: err.Error()})
			return
		}
		a.procs = append(a.procs, p)
		ctx.Respond(&procInfo{PID: p.PID(), OSPid: p.OSPid()})
	case *spawnNamed:
		pid, err := ctx.ActorSystem().Root.SpawnNamed(pa.PropsFromProducer(func() pa.Actor { return &echo{} }), m.Name)
		if err != nil {
			ctx.Respond(&askResult{Err: err.Error()})
			return
		}
		ctx.Respond(pid)
	case *ask:
		f := pa.NewFuture(ctx.ActorSystem(), testTimeout)
		ctx.Send(m.Target, &pa.MessageEnvelope{Header: m.Header, Message: m.Ping, Sender: f.PID()})
		// The answer is sent from another goroutine, so that a slow target
		// does not hold the agent.
		sender := ctx.Sender()
		go func() {
			ctx.ActorSystem().Root.Send(sender, result(f.Result()))
		}()
	case *watchReq:
		// The watcher answers once its Watch is sent, so that whatever the
		// test sends next on the same path follows the Watch.
		report, target, asker := m.Report, m.Target, ctx.Sender()
		ctx.Spawn(pa.PropsFromFunc(func(c pa.Context) {
			switch t := c.Message().(type) {
			case *pa.Started:
				c.Watch(target)
				c.Send(asker, c.Self())
			case *pa.Terminated:
				c.Send(report, &watched{Who: t.Who, Watcher: c.Self(), Why: int32(t.Why)})
			}
		}))
	case *stopReq:
		ctx.Respond(result(nil, ctx.ActorSystem().Root.StopFuture(m.Target).Wait()))
	case *clusterReq:
		c := cluster.GetCluster(ctx.ActorSystem())
		sender := ctx.Sender()
		go func() {
			c.ActorSystem.Root.Send(sender, result(c.Request(m.Identity, m.Kind, m.Ping, cluster.WithTimeout(clusterTimeout))))
		}()
	case *activationReq:
		ctx.Respond(cluster.GetCluster(ctx.ActorSystem()).Get(m.Identity, m.Kind))
	default:
		a.echo.Receive(ctx)
	}
}

// result makes the askResult of a request's outcome.
func result(res any, err error) *askResult {
	r := &askResult{}
	switch v := res.(type) {
	case *pong:
		r.Pong = v
	case nil:
	default:
		r.Err = fmt.Sprintf("unexpected answer %T", res)
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// runRoot is a root process: a reach host at addr with an agent named ctl,
// which prints "ready" on stdout and runs until its stdin ends.
func runRoot(addr string) int {
	node, err := procnode.NewNodeAt(addr, actor.WithLogger(zerolog.New(os.Stderr).Level(zerolog.WarnLevel)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "root:", err)
		return 1
	}
	var opts []reach.Option
	if members := os.Getenv(envClusterAddr); members != "" {
		kind := reach.ProcessKind(workerKind, grainKind, procnode.WithRestart(false), procnode.WithStopTimeouts(2*time.Second, time.Second))
		opts = append(opts, reach.WithCluster("reach-test", reach.NewStaticProvider(strings.Split(members, ",")...), kind))
	}
	h, err := reach.Start(node, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "root:", err)
		return 1
	}
	if _, err := node.Root().SpawnNamed(pa.PropsFromProducer(func() pa.Actor { return &agent{} }), ctlName); err != nil {
		fmt.Fprintln(os.Stderr, "root:", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "root:", err)
	}
	if err := node.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "root:", err)
	}
	return 0
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// rootProc is a root running in its own OS process.
type rootProc struct {
	addr   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *testutil.SyncBuffer
	done   chan struct{}
	once   sync.Once
	killed atomic.Bool
}

// ctl is the root's agent.
func (r *rootProc) ctl() *pa.PID { return pa.NewPID(r.addr, ctlName) }

// startRoot starts a root process at a free loopback address (or at addr),
// with extra environment, and waits until it is ready. Cleanup ends it.
func startRoot(t *testing.T, addr string, env ...string) *rootProc {
	t.Helper()
	return startRoots(t, []string{addr}, env...)[0]
}

// startRoots starts root processes at addrs ("" for a free address) at
// once, and waits until all are ready.
func startRoots(t *testing.T, addrs []string, env ...string) []*rootProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	roots := make([]*rootProc, len(addrs))
	ready := make([]chan error, len(addrs))
	for i, addr := range addrs {
		if addr == "" {
			addr = freeAddr(t)
		}
		r := &rootProc{addr: addr, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
		roots[i] = r
		r.cmd = exec.Command(exe, "-test.run=^$")
		r.cmd.Env = append(append(os.Environ(), envRootAddr+"="+addr), env...)
		r.cmd.Stderr = r.stderr
		r.cmd.SysProcAttr = rootAttr()
		out, err := r.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if r.stdin, err = r.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			r.cmd.Wait()
			close(r.done)
		}()
		t.Cleanup(func() {
			r.stop(t)
			if t.Failed() {
				t.Logf("stderr of root %s:\n%s", r.addr, r.stderr.String())
			}
		})
		ready[i] = make(chan error, 1)
		go func(ch chan<- error) {
			line, err := bufio.NewReader(out).ReadString('\n')
			if err == nil && strings.TrimSpace(line) != "ready" {
				err = fmt.Errorf("got %q", line)
			}
			ch <- err
			io.Copy(io.Discard, out)
		}(ready[i])
	}
	deadline := time.After(testTimeout)
	for i, r := range roots {
		select {
		case err := <-ready[i]:
			if err != nil {
				t.Fatalf("root %s not ready: %v\n%s", r.addr, err, r.stderr.String())
			}
		case <-deadline:
			t.Fatalf("root %s not ready after %v\n%s", r.addr, testTimeout, r.stderr.String())
		}
	}
	return roots
}

// stop ends the root gracefully (its stdin closes), or kills it after a
// bound.
func (r *rootProc) stop(t *testing.T) {
	r.once.Do(func() { r.stdin.Close() })
	select {
	case <-r.done:
	case <-time.After(testTimeout):
		t.Errorf("root %s did not exit after its stdin closed; killing it", r.addr)
		r.cmd.Process.Kill()
		<-r.done
	}
	if !r.killed.Load() {
		if code := r.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("root %s exited with %d; want 0", r.addr, code)
		}
	}
	if strings.Contains(r.stderr.String(), "DATA RACE") {
		t.Errorf("root %s reported a data race", r.addr)
	}
}

// kill ends the root with SIGKILL and waits for it.
func (r *rootProc) kill() {
	r.killed.Store(true)
	r.cmd.Process.Kill()
	<-r.done
}

// hostB is this process's root (B): one reach host for every test of the
// process, made on first use and closed by TestMain. One, because every
// remote.Start writes gRPC's global logger, which the transports of an
// earlier host read without synchronisation: a second host in the same
// process is a data race for the race detector, even after the first closed.
var hostB struct {
	once sync.Once
	h    *reach.Host
	logs testutil.SyncBuffer
	err  error
}

// newHost returns B. What a test spawns on it, it stops.
func newHost(t *testing.T) *reach.Host {
	t.Helper()
	hostB.once.Do(func() {
		node, err := procnode.NewNodeAt(freeAddr(t), actor.WithLogger(zerolog.New(&hostB.logs).Level(zerolog.WarnLevel)))
		if err != nil {
			hostB.err = err
			return
		}
		if hostB.h, hostB.err = reach.Start(node); hostB.err != nil {
			node.Close(context.Background())
		}
	})
	if hostB.err != nil {
		t.Fatal(hostB.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of root B %s:\n%s", hostB.h.Address(), hostB.logs.String())
		}
	})
	return hostB.h
}

// closeHostB closes B, if a test made it.
func closeHostB() error {
	if hostB.h == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return errors.Join(hostB.h.Close(ctx), hostB.h.Node().Close(ctx))
}

// request asks target from root and fails the test on an error.
func request[T any](t *testing.T, root *pa.RootContext, target *pa.PID, msg any) T {
	t.Helper()
	res, err := root.RequestFuture(target, msg, testTimeout).Result()
	if err != nil {
		t.Fatalf("request %T to %v: %v", msg, target, err)
	}
	if r, ok := res.(*askResult); ok && r.Err != "" {
		t.Fatalf("request %T to %v: %s", msg, target, r.Err)
	}
	v, ok := res.(T)
	if !ok {
		t.Fatalf("request %T to %v: got %T %v", msg, target, res, res)
	}
	return v
}

// collector is an actor of the test process that passes what it receives
// to a channel.
func collector(t *testing.T, root *pa.RootContext) (*pa.PID, <-chan any) {
	t.Helper()
	ch := make(chan any, 64)
	pid := root.Spawn(pa.PropsFromFunc(func(c pa.Context) {
		switch c.Message().(type) {
		case *pa.Started, *pa.Stopping, *pa.Stopped:
		default:
			select {
			case ch <- c.Message():
			default:
			}
		}
	}))
	t.Cleanup(func() { root.Stop(pid) })
	return pid, ch
}

// next returns the next value from ch, failing the test after a bound.
func next(t *testing.T, ch <-chan any) any {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatal("nothing arrived")
		return nil
	}
}

// newAgent spawns an agent on this process's root (B), for B-side watchers.
func newAgent(t *testing.T, root *pa.RootContext) *pa.PID {
	t.Helper()
	pid := root.Spawn(pa.PropsFromProducer(func() pa.Actor { return &agent{} }))
	t.Cleanup(func() { root.Stop(pid) })
	return pid
}

// nextWatched returns the next watched report, failing on anything else.
func nextWatched(t *testing.T, ch <-chan any) *watched {
	t.Helper()
	v := next(t, ch)
	w, ok := v.(*watched)
	if !ok {
		t.Fatalf("got %T %v; want a watched report", v, v)
	}
	return w
}
