package procnode_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/procnode"
)

// snapWait polls cond, bounded, for states that have no event to wait on.
func snapWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// snapshotTree makes the tree the snapshot tests look at: two children of
// the node, the first with a child of its own (a grandchild) and one
// restart of its root actor behind it, the second named and sent a few
// requests.
func snapshotTree(t *testing.T, n *procnode.Node) (first, second *procnode.Process, grandchild *pa.PID) {
	t.Helper()
	first = spawn(t, n, "test.echo")
	second = spawn(t, n, "test.echo", procnode.WithName("second"))
	n.Root().Send(first.PID(), "panic") // the default strategy restarts the root actor in the child
	snapWait(t, "the restart of the first child's root actor", func() bool { return first.Restarts() == 1 })
	// After the restart: restarting an actor stops its children.
	gc, ok := request(t, n, first.PID(), "grandchild").(*pa.PID)
	if !ok {
		t.Fatalf("no grandchild PID")
	}
	for range 3 {
		request(t, n, second.PID(), "hello")
	}
	return first, second, gc
}

// TestSnapshotTree: one Snapshot shows the whole tree, the grandchild asked
// over its parent's link, with each process actor's state, OS pid,
// restarts, link traffic and OS figures.
func TestSnapshotTree(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	first, second, gc := snapshotTree(t, n)

	var s procnode.Snapshot
	// The link counts a batch once its write has returned and a frame once
	// it is delivered: the last reply may still be on its way into them.
	snapWait(t, "the second child's link to count 3 requests and 3 replies", func() bool {
		s = n.Snapshot(testCtx(t))
		return len(s.Children) == 2 && s.Children[1].Link.User.MsgsOut >= 3 && s.Children[1].Link.User.MsgsIn >= 3
	})
	if s.Address != n.Address() || s.Parent != nil || s.Goroutines == 0 || s.HeapBytes == 0 {
		t.Errorf("root: %+v; want address %q, no parent, goroutines and heap", s, n.Address())
	}
	c1, c2 := s.Children[0], s.Children[1]
	for i, want := range []*procnode.Process{first, second} {
		c := s.Children[i]
		if c.Address != want.Address() || c.Kind != "test.echo" || c.State != "up" || c.OSPid != want.OSPid() || c.Uptime <= 0 || c.Link.State != "up" {
			t.Errorf("child %d: %+v; want %s up with pid %d", i, c, want.Address(), want.OSPid())
		}
		if c.Tree == nil || c.Tree.Address != want.Address() || c.Tree.OSPid != want.OSPid() || c.TreeError != "" {
			t.Fatalf("child %d's own snapshot: %+v (%q); want one from %s", i, c.Tree, c.TreeError, want.Address())
		}
		if c.Tree.Parent == nil || c.Tree.Parent.Address != n.Address() || c.Tree.Parent.State != "up" {
			t.Errorf("child %d's link to its parent: %+v", i, c.Tree.Parent)
		}
	}
	if c1.Restarts != 1 || c1.Incarnation != 0 || c2.Restarts != 0 || c2.Name != "second" || c1.Name != "" {
		t.Errorf("restarts %d, %d, incarnation %d, names %q, %q; want 1, 0, 0, \"\", second", c1.Restarts, c2.Restarts, c1.Incarnation, c1.Name, c2.Name)
	}
	if len(c1.Tree.Children) != 1 || len(c2.Tree.Children) != 0 {
		t.Fatalf("grandchildren: %d under the first, %d under the second; want 1, 0", len(c1.Tree.Children), len(c2.Tree.Children))
	}
	g := c1.Tree.Children[0]
	if g.Address != gc.Address || g.State != "up" || g.Tree == nil || g.Tree.Address != gc.Address || len(g.Tree.Children) != 0 {
		t.Errorf("grandchild: %+v; want %s up, answering, childless", g, gc.Address)
	}
	if runtime.GOOS == "linux" {
		for _, p := range []procnode.ProcStats{s.Proc, c1.Proc, c2.Proc, g.Proc, c1.Tree.Proc} {
			if p.Error != "" || p.RSS == 0 || p.Threads == 0 || p.State == "" {
				t.Errorf("proc stats %+v; want RSS, threads and state read from /proc", p)
			}
		}
	}
	// Plain data: the JSON the debug endpoint serves decodes back to it.
	b, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	var back procnode.Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Children) != 2 || back.Children[0].Tree == nil || len(back.Children[0].Tree.Children) != 1 ||
		back.Children[0].Restarts != 1 || !strings.Contains(string(b), `"restarts":1`) {
		t.Errorf("JSON round trip lost the tree: %s", b)
	}
}

// TestSnapshotChildNotAnswering: a child that cannot answer (stopped by
// SIGSTOP) is shown as such, with what the parent knows by itself, and the
// snapshot returns at its deadline; once the child runs again it answers.
func TestSnapshotChildNotAnswering(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.echo")
	if err := syscall.Kill(p.OSPid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(p.OSPid(), syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	if runtime.GOOS == "linux" { // SIGSTOP takes effect when the child is next scheduled
		snapWait(t, "the child to stop", func() bool {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.OSPid()))
			_, rest, _ := strings.Cut(string(b), ") ")
			return err == nil && strings.HasPrefix(rest, "T")
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	s := n.Snapshot(ctx)
	cancel()
	if len(s.Children) != 1 {
		t.Fatalf("%d children; want 1", len(s.Children))
	}
	c := s.Children[0]
	if c.Tree != nil || !strings.Contains(c.TreeError, "no answer") {
		t.Fatalf("stopped child: tree %+v, error %q; want no tree and \"no answer\"", c.Tree, c.TreeError)
	}
	if c.State != "up" || c.OSPid != p.OSPid() {
		t.Errorf("stopped child: %+v; want the parent's own view (up, pid %d)", c, p.OSPid())
	}
	if runtime.GOOS == "linux" && c.Proc.State != "T" {
		t.Errorf("stopped child's /proc state %q; want T", c.Proc.State)
	}
	resume()
	snapWait(t, "the child to answer again", func() bool {
		s := n.Snapshot(testCtx(t))
		return len(s.Children) == 1 && s.Children[0].Tree != nil
	})
}

// TestSnapshotNotUp: a child whose link is down is not asked.
func TestSnapshotNotUp(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.echo", procnode.WithRestartBackoff(time.Minute, time.Minute))
	killPid(t, p.OSPid())
	snapWait(t, "the crash to be seen", func() bool { return p.State() == "restarting" })
	s := n.Snapshot(testCtx(t))
	c := s.Children[0]
	if c.State != "restarting" || c.Tree != nil || !strings.Contains(c.TreeError, "not asked") || c.LastExit == nil ||
		c.LastExit.Signal != "SIGKILL" || c.Uptime != 0 || c.Proc.Error == "" {
		t.Fatalf("crashed child: %+v; want restarting, not asked, last exit by SIGKILL, no uptime or process", c)
	}
}

// TestSnapshotCancelEndsItsRequests: a Snapshot whose ctx is cancelled long
// before its deadline returns at once and leaves nothing behind: the
// requests to a child that does not answer (stopped by SIGSTOP) end with it,
// rather than waiting, a goroutine and a future each, for the deadline.
// Not parallel: it counts the node's snapshot goroutines.
func TestSnapshotCancelEndsItsRequests(t *testing.T) {
	n := newNode(t)
	p := spawn(t, n, "test.echo")
	if err := syscall.Kill(p.OSPid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(p.OSPid(), syscall.SIGCONT) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	cancel() // done, with its deadline an hour away
	s := n.Snapshot(ctx)
	if len(s.Children) != 1 || s.Children[0].Tree != nil {
		t.Fatalf("snapshot %+v; want one child with no tree", s.Children)
	}
	asking := func() int {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return strings.Count(string(buf), "procnode.(*Node).askChildren")
	}
	if !testutil.Poll(testutil.Timeout, func() bool { return asking() == 0 }) {
		t.Fatalf("%d goroutines still asking after Snapshot returned (its ctx was cancelled)", asking())
	}
}
