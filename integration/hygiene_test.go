//go:build linux

package integration

import (
	"context"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
	"go.uber.org/goleak"
)

// fdInfo is one open descriptor of a process.
type fdInfo struct {
	target  string // what /proc/<pid>/fd/<n> points at: "pipe:[123]", "/dev/null"...
	cloexec bool   // close-on-exec (from /proc/<pid>/fdinfo/<n>)
}

// fds returns the open descriptors of pid.
func fds(t *testing.T, pid int) map[int]fdInfo {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid)
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int]fdInfo, len(ents))
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(dir + "/fd/" + e.Name())
		if err != nil {
			continue // closed meanwhile (the directory's own descriptor)
		}
		info := fdInfo{target: target}
		if b, err := os.ReadFile(dir + "/fdinfo/" + e.Name()); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "flags:"); ok {
					flags, _ := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
					info.cloexec = flags&syscall.O_CLOEXEC != 0
				}
			}
		}
		out[fd] = info
	}
	return out
}

// runtimeFD reports whether a descriptor is one the Go runtime (or os/exec
// for the process's own children) opens for itself.
func runtimeFD(target string) bool {
	switch target {
	case "anon_inode:[eventpoll]", "anon_inode:[eventfd]", "anon_inode:[pidfd]", "anon_inode:[timerfd]":
		return true
	}
	return strings.HasPrefix(target, "/sys/fs/cgroup/") // the CPU limit, for GOMAXPROCS
}

// checkChildFDs applies the descriptor rule of doc.go to a live child pid
// whose parent has the descriptors parent; own are the pipes of the
// child's own children's streams (their fds 2, 3 and 4), which it may hold.
func checkChildFDs(t *testing.T, who string, pid int, parent map[int]fdInfo, own map[string]bool) {
	t.Helper()
	child := fds(t, pid)
	held := make(map[string]bool)
	for _, f := range parent {
		held[f.target] = true
	}
	var bad []string
	if child[0].target != "/dev/null" {
		bad = append(bad, fmt.Sprintf("fd 0 is %q, want /dev/null", child[0].target))
	}
	if child[1].target != parent[1].target {
		bad = append(bad, fmt.Sprintf("fd 1 is %q, want the parent's stdout %q", child[1].target, parent[1].target))
	}
	for fd := 2; fd <= 4; fd++ {
		f, ok := child[fd]
		if !ok || !strings.HasPrefix(f.target, "pipe:") || !held[f.target] {
			bad = append(bad, fmt.Sprintf("fd %d is %q, want a pipe whose other end the parent holds", fd, f.target))
		}
	}
	seen := make(map[string]int)
	for fd, f := range child {
		if fd >= 3 && !f.cloexec {
			bad = append(bad, fmt.Sprintf("fd %d (%s) is not close-on-exec: the child's own children would inherit it", fd, f.target))
		}
		if fd >= 2 && strings.HasPrefix(f.target, "pipe:") {
			if prev, dup := seen[f.target]; dup {
				bad = append(bad, fmt.Sprintf("fds %d and %d are the same pipe %s", prev, fd, f.target))
			}
			seen[f.target] = fd
		}
		if fd <= 4 || runtimeFD(f.target) || own[f.target] {
			continue
		}
		bad = append(bad, fmt.Sprintf("fd %d is %q: not the child's stdio or stream, nor the runtime's", fd, f.target))
	}
	if len(bad) > 0 {
		t.Errorf("%s (os pid %d) descriptors %v:\n%s", who, pid, child, strings.Join(bad, "\n"))
	}
}

// TestChildDescriptors: a child, and a grandchild spawned by it, hold only
// their stdio, their stream and what the runtime opens (the rule in
// doc.go), all close-on-exec from fd 3 on. The test process itself holds a
// pipe that is not close-on-exec (and maybe more, leaked into it by
// whatever started it): none of them may reach a child.
func TestChildDescriptors(t *testing.T) {
	// A descriptor leaked into the parent, as a careless shell or library
	// leaves them: a pipe that is not close-on-exec.
	var leak [2]int
	if err := syscall.Pipe2(leak[:], 0); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(leak[0])
	defer syscall.Close(leak[1])

	n, _ := newNode(t)
	reports := make(chan *Report, 16)
	col := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return &collector{reports: reports} }))
	leaf := spawn(t, n, kindEcho, procnode.WithRestart(false))
	chain := spawn(t, n, kindChain, procnode.WithRestart(false), procnode.WithArgs(col))
	res, err := n.Root().RequestFuture(chain.PID(), "gcpid", 30*time.Second).Result()
	gcPid, ok := res.(int)
	if err != nil || !ok {
		t.Fatalf("grandchild pid: %v, %v", res, err)
	}
	self := fds(t, os.Getpid())
	checkChildFDs(t, "child", leaf.OSPid(), self, nil)
	gc := fds(t, gcPid)
	checkChildFDs(t, "child with a grandchild", chain.OSPid(), self,
		map[string]bool{gc[2].target: true, gc[3].target: true, gc[4].target: true})
	checkChildFDs(t, "grandchild", gcPid, fds(t, chain.OSPid()), nil)
	if t.Failed() {
		t.Logf("test process descriptors: %v", self)
	}
}

// TestNoLeaksAfterCyclesAndCrashes: after 50 spawn/stop cycles and 20
// crashes of every kind, and the node closed, the parent's goroutines
// (goleak), descriptors (/proc/self/fd) and child processes (none left,
// not even a zombie: /proc/*/stat with our pid as parent) are back to
// their baseline.
func TestNoLeaksAfterCyclesAndCrashes(t *testing.T) {
	// Warm up what lives as long as the process (the fork thread), then
	// take the baseline.
	warm, _ := newNode(t)
	wp := spawn(t, warm, kindEcho, procnode.WithRestart(false))
	stopChild(t, wp)
	closeNode(t, warm)
	ignore := goleak.IgnoreCurrent()
	baseFDs := testutil.FDCount()
	if kids := childrenOf(os.Getpid()); len(kids) != 0 {
		t.Fatalf("child processes before the test: %v", kids)
	}

	n, _ := newNode(t)
	const cycles, parallel = 50, 5
	for i := 0; i < cycles; i += parallel {
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				p := spawn(t, n, kindEcho, procnode.WithRestart(false))
				ping(t, n, p)
				stopChild(t, p)
				if st := p.ExitStatus(); st == nil || !st.Success() || !st.Stopped {
					t.Errorf("stopped child: status %+v, want exit 0, Stopped", st)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	triggers := []string{"", "crash:exit3", "crash:panic", "crash:nilmap", "crash:killself"}
	const crashes = 20
	for i := 0; i < crashes; i += parallel {
		var wg sync.WaitGroup
		for j := range parallel {
			trigger := triggers[(i+j)%len(triggers)]
			wg.Go(func() {
				p := spawn(t, n, kindEcho, procnode.WithRestart(false))
				inflight := request(n, p.PID(), "hang")
				if trigger == "" {
					syscall.Kill(p.OSPid(), syscall.SIGKILL)
				} else {
					n.Root().Send(p.PID(), trigger)
				}
				inflight.wantDeadLetter(t)
				waitDone(t, p)
				if st := p.ExitStatus(); st == nil || st.Success() {
					t.Errorf("crash %q: status %+v, want a failure", trigger, st)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	restartCycles(t, n)
	closeNode(t, n)

	if kids := childrenOf(os.Getpid()); len(kids) != 0 {
		t.Errorf("child processes left (zombies included): %v", kids)
	}
	// Descriptors close as their goroutines end: allow them a moment.
	if !testutil.Poll(5*time.Second, func() bool { return testutil.FDCount() <= baseFDs }) {
		t.Errorf("descriptors: %d, baseline %d: %v", testutil.FDCount(), baseFDs, fds(t, os.Getpid()))
	}
	goleak.VerifyNone(t, leakOpts(ignore)...)
}

// restartCycles runs one process actor through 100 restarts of its
// process (SIGKILL) and 100 of its root actor (a panic), under a strategy
// that always restarts; every cycle it answers again behind the same PID.
func restartCycles(t *testing.T, n *procnode.Node) {
	t.Helper()
	pids := make(chan *pa.PID, 1)
	sup := n.Root().Spawn(pa.PropsFromFunc(func(c pa.Context) {
		if _, ok := c.Message().(*pa.Started); ok {
			pids <- c.Spawn(procnode.Props(kindEcho, procnode.WithStderr(nil), procnode.WithRestartBackoff(time.Millisecond, time.Millisecond)))
		}
	}, pa.WithSupervisor(pa.NewRestartingStrategy())))
	pid := <-pids
	p, ok := n.Process(pid)
	if !ok {
		t.Fatal("no process actor")
	}
	const cycles = 100
	for i := range cycles {
		if res, err := n.Root().RequestFuture(pid, "ping", 30*time.Second).Result(); err != nil || res != "echo: ping" {
			t.Fatalf("cycle %d: ping: %v, %v", i, res, err)
		}
		if pid := p.OSPid(); pid > 0 { // never 0: that would be our own process group
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if !testutil.Poll(30*time.Second, func() bool { return p.Incarnation() == uint64(i+1) }) {
			t.Fatalf("cycle %d: no new incarnation (state %s)", i, p.State())
		}
	}
	for i := range cycles {
		n.Root().Send(pid, "crash:panic")
		if res, err := n.Root().RequestFuture(pid, "ping", 30*time.Second).Result(); err != nil || res != "echo: ping" {
			t.Fatalf("panic %d: ping: %v, %v", i, res, err)
		}
	}
	// A restart is counted when the parent has handled its report, which
	// may trail the restarted actor's answer by a moment.
	testutil.Poll(30*time.Second, func() bool { return p.Restarts() == 2*cycles })
	if p.Restarts() != 2*cycles || p.Incarnation() != cycles {
		t.Fatalf("restarts %d, incarnation %d; want %d, %d", p.Restarts(), p.Incarnation(), 2*cycles, cycles)
	}
	if err := n.Root().StopFuture(sup).Wait(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
}

func stopChild(t *testing.T, p *procnode.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Errorf("Stop %s: %v", p.Address(), err)
	}
}

func closeNode(t *testing.T, n *procnode.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}
