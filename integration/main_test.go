//go:build linux

package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/internal/leakcheck"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// roleEnv selects what a re-execution of the test binary does instead of
// running the tests.
const roleEnv = "INTEGRATION_ROLE"

const (
	// roleBadCookie is checked before procnode.Main: the process takes the
	// child's place on fds 3 and 4 but answers the handshake with a hello of
	// its own making, with a random cookie.
	roleBadCookie = "bad-cookie"
	// roleCtrlCParent is checked after procnode.Main: a parent that spawns a
	// child and stops it when SIGINT arrives (see runCtrlCParent).
	roleCtrlCParent = "ctrlc-parent"
	// roleCtrlCOneLine is the same parent with Node.StopOnSignal instead of
	// its own signal handling (see runCtrlCOneLine).
	roleCtrlCOneLine = "ctrlc-oneline"
)

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == roleBadCookie {
		os.Exit(runBadCookie())
	}
	procnode.Main()
	switch os.Getenv(roleEnv) {
	case roleCtrlCParent:
		os.Exit(runCtrlCParent())
	case roleCtrlCOneLine:
		os.Exit(runCtrlCOneLine())
	}
	// Children built with -race sleep 1 s at exit (GORACE atexit_sleep_ms),
	// so that a late race report gets out; 100 ms is plenty here, and the
	// children's stderr is scanned for reports (see raceWatch).
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=100"))
	goleak.VerifyTestMain(m, leakOpts()...)
}

// leakOpts are the goleak options of this package.
func leakOpts(extra ...goleak.Option) []goleak.Option {
	return append(append(leakcheck.Options(), goleak.IgnoreAnyFunction("github.com/procactor/procactor/procnode.forkLoop")), extra...)
}

// runBadCookie plays a child that answers with a wrong cookie: it writes a
// hand-made hello frame (mailbox/wire.go header, mailbox/handshake.go body)
// on fd 4, says its pid on stdout, and waits for the parent to end it.
func runBadCookie() int {
	fmt.Printf("bad-cookie pid %d\n", os.Getpid())
	var body []byte
	body = binary.AppendUvarint(body, 2)       // version
	body = binary.AppendUvarint(body, 0)       // caps
	body = binary.AppendUvarint(body, 256<<20) // max frame
	body = binary.AppendUvarint(body, uint64(len("n/1")))
	body = append(body, "n/1"...)        // address
	body = binary.AppendUvarint(body, 0) // incarnation
	cookie := mailbox.NewCookie()
	body = binary.AppendUvarint(body, uint64(len(cookie)))
	body = append(body, cookie...)
	body = binary.LittleEndian.AppendUint64(body, 0) // schema digest: not announced
	frame := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(frame[0:4], uint32(len(body)))
	frame[4], frame[5] = 2, 2 // hello, version 2
	frame = append(frame, body...)
	if err := writeFD(4, frame); err != nil {
		fmt.Fprintf(os.Stderr, "bad-cookie: write: %v\n", err)
		return 1
	}
	// Read the parent's stream until it ends (the parent kills us first).
	buf := make([]byte, 4096)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		n, err := syscall.Read(3, buf)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if n <= 0 || err != nil {
			return 0
		}
	}
	return 1
}

// writeFD writes all of b on a raw descriptor, which may be non-blocking.
func writeFD(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if n > 0 {
			b = b[n:]
		}
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			time.Sleep(200 * time.Microsecond)
		case err != nil:
			return err
		}
	}
	return nil
}

// runCtrlCParent is a parent in its own process group: it spawns an echo
// child, prints "ready <child os pid>", and on SIGINT checks the child still
// runs and answers, stops it gracefully and prints its status. Exit 0 when
// all of that went as it should.
func runCtrlCParent() int {
	os.Unsetenv(roleEnv)
	sigCtx, stopSig := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stopSig()
	n, err := procnode.NewNode()
	if err != nil {
		fmt.Printf("error node: %v\n", err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := procnode.Spawn(ctx, n.Root(), kindEcho, procnode.WithRestart(false))
	if err != nil {
		fmt.Printf("error spawn: %v\n", err)
		return 1
	}
	fmt.Printf("ready %d\n", p.OSPid())
	select {
	case <-sigCtx.Done():
	case <-ctx.Done():
		fmt.Println("error: no SIGINT came")
		return 1
	}
	// The parent's own work stops first (here: nothing more is started);
	// then its child, which must still be alive: Ctrl-C did not reach it.
	alive := p.Alive()
	res, err := n.Root().RequestFuture(p.PID(), "after-sigint", 10*time.Second).Result()
	answered := err == nil && res == "echo: after-sigint"
	if err := p.Stop(ctx); err != nil {
		fmt.Printf("error stop: %v\n", err)
		return 1
	}
	st := p.ExitStatus()
	if st == nil {
		fmt.Println("error: no exit status")
		return 1
	}
	fmt.Printf("child alive=%v answered=%v code=%d signal=%d stopped=%v\n", alive, answered, st.Code, int(st.Signal), st.Stopped)
	return 0
}

// runCtrlCOneLine is a parent in its own process group that leaves Ctrl-C
// to Node.StopOnSignal: it spawns an echo child, prints "ready <child os
// pid>", waits for the child's end and prints its status and the
// context's cause. Exit 0 when that went as it should.
func runCtrlCOneLine() int {
	os.Unsetenv(roleEnv)
	n, err := procnode.NewNode()
	if err != nil {
		fmt.Printf("error node: %v\n", err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	}()
	sigCtx := n.StopOnSignal() // the one line
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := procnode.Spawn(ctx, n.Root(), kindEcho, procnode.WithRestart(false))
	if err != nil {
		fmt.Printf("error spawn: %v\n", err)
		return 1
	}
	fmt.Printf("ready %d\n", p.OSPid())
	if err := p.Wait(ctx); err != nil {
		fmt.Printf("error wait: %v\n", err)
		return 1
	}
	<-sigCtx.Done()
	st := p.ExitStatus()
	fmt.Printf("child code=%d signal=%d stopped=%v cause=%v\n", st.Code, int(st.Signal), st.Stopped, context.Cause(sigCtx))
	return 0
}

// newNode makes a root node with opts whose log goes to the returned buffer
// (info and above), closed at the end of the test.
func newNode(t *testing.T, opts ...actor.NodeOption) (*procnode.Node, *testutil.SyncBuffer) {
	t.Helper()
	buf := &testutil.SyncBuffer{}
	n, err := procnode.NewNode(append([]actor.NodeOption{actor.WithLogger(zerolog.New(buf).Level(zerolog.InfoLevel))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("closing node: %v", err)
		}
		runAfterClose(n)
		if t.Failed() || os.Getenv("INTEGRATION_LOG") != "" {
			t.Logf("parent log:\n%s", buf.String())
		}
	})
	return n, buf
}

// spawn starts a child, failing the test on error. The child's stderr is
// not copied to the test's (the crashes would be noise), but scanned for
// race reports, which fail the test; opts may override that.
func spawn(t *testing.T, n *procnode.Node, kind string, opts ...procnode.Option) *procnode.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rw := &raceWatch{}
	opts = append([]procnode.Option{procnode.WithStderr(rw)}, opts...)
	p, err := procnode.Spawn(ctx, n.Root(), kind, opts...)
	if err != nil {
		t.Fatalf("spawn %s: %v", kind, err)
	}
	afterClose(n, func() {
		if r := rw.report(); r != "" {
			t.Errorf("child %s (%s) reported a data race:\n%s", p.Address(), kind, r)
		}
	})
	return p
}

var (
	afterMu  sync.Mutex
	afterFns = map[*procnode.Node][]func(){}
)

// afterClose runs f once newNode's cleanup has closed n (so every child of n
// has ended).
func afterClose(n *procnode.Node, f func()) {
	afterMu.Lock()
	defer afterMu.Unlock()
	afterFns[n] = append(afterFns[n], f)
}

func runAfterClose(n *procnode.Node) {
	afterMu.Lock()
	fns := afterFns[n]
	delete(afterFns, n)
	afterMu.Unlock()
	for _, f := range fns {
		f()
	}
}

// raceWatch keeps what a child writes to stderr from a race report on
// (bounded).
type raceWatch struct {
	mu   sync.Mutex
	tail []byte // the last bytes, to find a report split across writes
	got  []byte
}

func (w *raceWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	const keep, limit = 64, 16 << 10
	if len(w.got) > 0 {
		if room := limit - len(w.got); room > 0 {
			w.got = append(w.got, p[:min(room, len(p))]...)
		}
		return len(p), nil
	}
	buf := append(w.tail, p...)
	if i := bytes.Index(buf, []byte("WARNING: DATA RACE")); i >= 0 {
		w.got = append([]byte(nil), buf[i:min(len(buf), i+limit)]...)
	}
	w.tail = append(w.tail[:0], buf[max(0, len(buf)-keep):]...)
	return len(p), nil
}

func (w *raceWatch) report() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.got)
}

// waitDone waits (bounded) until p has ended for good.
func waitDone(t *testing.T, p *procnode.Process) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("child %s (os pid %d) did not end", p.Address(), p.OSPid())
	}
}

// ping checks that the child answers a request.
func ping(t *testing.T, n *procnode.Node, p *procnode.Process) {
	t.Helper()
	res, err := n.Root().RequestFuture(p.PID(), "ping", 20*time.Second).Result()
	if err != nil || res != "echo: ping" {
		t.Fatalf("child %s: got %v, %v; want echo: ping", p.Address(), res, err)
	}
}

// pending is a request whose answer is awaited on a goroutine.
type pending struct {
	done chan struct{}
	res  any
	err  error
}

// request sends a request with a 60 s timeout: failing "at once" means well
// before that, with pa.ErrDeadLetter instead of pa.ErrTimeout.
func request(n *procnode.Node, to *pa.PID, msg any) *pending {
	f := n.Root().RequestFuture(to, msg, 60*time.Second)
	r := &pending{done: make(chan struct{})}
	go func() { r.res, r.err = f.Result(); close(r.done) }()
	return r
}

// wantDeadLetter checks that the request failed with pa.ErrDeadLetter. The
// guard only keeps a broken build from waiting the full 60 s.
func (r *pending) wantDeadLetter(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("request in flight still pending: it did not fail when the child went away")
	}
	if !errors.Is(r.err, pa.ErrDeadLetter) {
		t.Fatalf("request in flight: got %v, %v; want pa.ErrDeadLetter", r.res, r.err)
	}
}

// watcher is a parent actor that watches a PID and reports Terminated.
type watcher struct {
	target  *pa.PID
	started chan struct{}
	term    chan *pa.Terminated
}

func (w *watcher) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		ctx.Watch(w.target) // sent (and tracked by the link) before it returns
		close(w.started)
	case *pa.Terminated:
		w.term <- m
	}
}

// watch spawns a watcher of target in n and returns its Terminated channel
// once the Watch is on its way.
func watch(t *testing.T, n *procnode.Node, target *pa.PID) <-chan *pa.Terminated {
	t.Helper()
	w := &watcher{target: target, started: make(chan struct{}), term: make(chan *pa.Terminated, 4)}
	pid := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return w }))
	t.Cleanup(func() { n.Root().Stop(pid) })
	<-w.started
	return w.term
}

// wantTerminated waits for the watcher's Terminated.
func wantTerminated(t *testing.T, term <-chan *pa.Terminated, who *pa.PID) *pa.Terminated {
	t.Helper()
	select {
	case m := <-term:
		if !m.Who.Equal(who) {
			t.Fatalf("Terminated for %v, want %v", m.Who, who)
		}
		if m.Why != pa.TerminatedReason_AddressTerminated && m.Why != pa.TerminatedReason_Stopped {
			t.Fatalf("Terminated reason %v, want AddressTerminated or Stopped", m.Why)
		}
		return m
	case <-time.After(20 * time.Second):
		t.Fatalf("watcher of %v got no Terminated", who)
		return nil
	}
}

// procStat is what the tests read of /proc/<pid>/stat.
type procStat struct {
	state     byte
	ppid      int
	starttime uint64
	exitCode  int // wait status of a zombie (field 52), else 0
}

// readStat reads /proc/<pid>/stat; ok is false when the process is gone.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// comm may hold spaces and parentheses: the fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
	if len(f) < 20 {
		return procStat{}, false
	}
	var st procStat
	st.state = f[0][0]
	st.ppid, _ = strconv.Atoi(f[1])
	st.starttime, _ = strconv.ParseUint(f[19], 10, 64)
	if len(f) >= 50 {
		st.exitCode, _ = strconv.Atoi(f[49])
	}
	return st, true
}

// exitedOrZombie reports whether the process that had pid and starttime is
// gone: no such process, a zombie, or another process that reused the pid.
func exitedOrZombie(pid int, starttime uint64) bool {
	st, ok := readStat(pid)
	return !ok || st.state == 'Z' || st.state == 'X' || st.starttime != starttime
}

// childrenOf lists the pids whose parent is ppid (zombies included).
func childrenOf(ppid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok && st.ppid == ppid {
			out = append(out, pid)
		}
	}
	return out
}
