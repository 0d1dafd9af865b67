package reach_test

import (
	"context"
	"os"
	"syscall"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
)

// tree is a root process A with a child A/1 and a grandchild A/1/1, each
// running an agent.
type tree struct {
	a          *rootProc
	child      *procInfo // A/1
	grandchild *procInfo // A/1/1
}

func startTree(t *testing.T, root *pa.RootContext, env ...string) *tree {
	t.Helper()
	tr := &tree{a: startRoot(t, "", env...)}
	tr.child = request[*procInfo](t, root, tr.a.ctl(), &spawnProc{})
	tr.grandchild = request[*procInfo](t, root, tr.child.PID, &spawnProc{})
	if want := tr.a.addr + "/1/1"; tr.grandchild.PID.Address != want {
		t.Fatalf("grandchild at %s; want %s", tr.grandchild.PID.Address, want)
	}
	return tr
}

// TestRequestReply: B requests A/1/1 with a header and a PID nested in the
// message, and A/1 requests B/1 (a child of the test's root), each across
// the tunnel.
func TestRequestReply(t *testing.T) {
	h := newHost(t)
	root := h.Node().Root()
	tr := startTree(t, root)

	// B → A/1/1, with a header and a nested PID (the grandchild sends a
	// copy of its answer to the collector, a root actor of B).
	col, got := collector(t, root)
	f := pa.NewFuture(h.Node().System(), testTimeout)
	root.Send(tr.grandchild.PID, &pa.MessageEnvelope{
		Header:  map[string]string{"trace": "t-17"},
		Message: &ping{Text: "hello", ReplyTo: col},
		Sender:  f.PID(),
	})
	res, err := f.Result()
	if err != nil {
		t.Fatalf("B → A/1/1: %v", err)
	}
	p, ok := res.(*pong)
	if !ok || p.Text != "hello" || p.Header["trace"] != "t-17" || p.Address != tr.a.addr+"/1/1" {
		t.Fatalf("B → A/1/1: got %#v; want the pong of A/1/1 with the header", res)
	}
	if p.OSPid == os.Getpid() || p.OSPid != tr.grandchild.OSPid {
		t.Fatalf("answered by OS pid %d; want the grandchild's %d", p.OSPid, tr.grandchild.OSPid)
	}
	if c, ok := next(t, got).(*pong); !ok || c.Text != "hello" || c.Address != tr.a.addr+"/1/1" {
		t.Fatalf("copy sent to the nested PID: got %#v", c)
	}

	// A/1 → B/1: a child of this root answers a request made in A's child.
	node := h.Node()
	b1, err := procnode.Spawn(t.Context(), node.Root(), agentKind, procnode.WithRestart(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b1.Stop(context.Background()) })
	r := request[*askResult](t, root, tr.child.PID, &ask{Target: b1.PID(), Ping: &ping{Text: "up"}, Header: map[string]string{"k": "v"}})
	if bp := r.Pong; bp == nil || bp.Text != "up" || bp.Header["k"] != "v" || bp.Address != b1.Address() {
		t.Fatalf("A/1 → B/1: got %#v", bp)
	}
}

// TestWatchAcrossHosts: watches between roots end with the real reason: a
// stopped actor (Stopped), a killed child process (AddressTerminated, from
// its parent's link), a killed root (AddressTerminated, to B's watchers of
// A's tree and to A/1's watcher of C's actor).
func TestWatchAcrossHosts(t *testing.T) {
	h := newHost(t)
	root := h.Node().Root()
	tr := startTree(t, root)
	c := startRoot(t, "")
	col, got := collector(t, root)
	b := newAgent(t, root)

	// B watches x in A/1/1, then poisons it.
	x := request[*pa.PID](t, root, tr.grandchild.PID, &spawnNamed{Name: "x"})
	wx := request[*pa.PID](t, root, b, &watchReq{Target: x, Report: col})
	root.Poison(x)
	if w := nextWatched(t, got); !w.Who.Equal(x) || !w.Watcher.Equal(wx) || w.Why != int32(pa.TerminatedReason_Stopped) {
		t.Fatalf("watch of a stopped actor in A/1/1: got %+v; want %v Stopped", w, x)
	}

	// B watches the root actor of a grandchild whose process is killed and
	// not restarted (a restarted one would be invisible to its watchers):
	// its process actor ends.
	gc := request[*procInfo](t, root, tr.child.PID, &spawnProc{NoRestart: true})
	request[*pa.PID](t, root, b, &watchReq{Target: gc.PID, Report: col})
	request[*pong](t, root, gc.PID, &ping{Text: "after the watch"})
	if gc.OSPid <= 0 {
		t.Fatalf("grandchild os pid %d", gc.OSPid)
	}
	if err := syscall.Kill(gc.OSPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if w := nextWatched(t, got); !w.Who.Equal(gc.PID) || w.Why != int32(pa.TerminatedReason_AddressTerminated) {
		t.Fatalf("watch of a killed grandchild: got %+v; want %v AddressTerminated", w, gc.PID)
	}

	// A/1 watches an actor of root C, which is killed.
	cx := request[*pa.PID](t, root, c.ctl(), &spawnNamed{Name: "cx"})
	request[*pa.PID](t, root, tr.child.PID, &watchReq{Target: cx, Report: col})
	if r := request[*askResult](t, root, tr.child.PID, &ask{Target: cx, Ping: &ping{Text: "sync"}}); r.Pong == nil {
		t.Fatalf("A/1 → C: %+v", r)
	}
	c.kill()
	if w := nextWatched(t, got); !w.Who.Equal(cx) || w.Watcher.Address != tr.child.PID.Address || w.Why != int32(pa.TerminatedReason_AddressTerminated) {
		t.Fatalf("A/1's watch of C's actor after C was killed: got %+v; want %v AddressTerminated", w, cx)
	}

	// B watches A/1's root actor and A's ctl, then A is killed.
	request[*pa.PID](t, root, b, &watchReq{Target: tr.child.PID, Report: col})
	request[*pa.PID](t, root, b, &watchReq{Target: tr.a.ctl(), Report: col})
	request[*pong](t, root, tr.a.ctl(), &ping{Text: "after the watches"})
	tr.a.kill()
	lost := map[string]int32{}
	for range 2 {
		w := nextWatched(t, got)
		lost[w.Who.String()] = w.Why
	}
	for _, pid := range []*pa.PID{tr.child.PID, tr.a.ctl()} {
		if why, ok := lost[pid.String()]; !ok || why != int32(pa.TerminatedReason_AddressTerminated) {
			t.Errorf("after A was killed, %v: got %v (reported %v); want AddressTerminated", pid, why, lost)
		}
	}
}

// TestSameIDCanaries: a Stop or Watch that B aims at an actor of A's child
// reaches that actor, never a root actor of A with the same Id (the pinned
// remote delivers system messages by Id alone).
func TestSameIDCanaries(t *testing.T) {
	h := newHost(t)
	root := h.Node().Root()
	tr := startTree(t, root)
	col, got := collector(t, root)
	b := newAgent(t, root)
	rootPID := func(id string) *pa.PID { return pa.NewPID(tr.a.addr, id) }
	childPID := func(id string) *pa.PID { return pa.NewPID(tr.child.PID.Address, id) }
	for _, id := range []string{"canary", "ghost", "sentinel"} {
		request[*pa.PID](t, root, tr.a.ctl(), &spawnNamed{Name: id})
	}
	request[*pa.PID](t, root, tr.child.PID, &spawnNamed{Name: "canary"})

	// B watches A/1's canary and stops it: that one stops.
	request[*pa.PID](t, root, b, &watchReq{Target: childPID("canary"), Report: col})
	root.Stop(childPID("canary"))
	if w := nextWatched(t, got); !w.Who.Equal(childPID("canary")) || w.Why != int32(pa.TerminatedReason_Stopped) {
		t.Fatalf("stop of A/1's canary: got %+v", w)
	}
	// A watch of an Id A/1 does not have: NotFound, from A/1.
	request[*pa.PID](t, root, b, &watchReq{Target: childPID("ghost"), Report: col})
	if w := nextWatched(t, got); !w.Who.Equal(childPID("ghost")) || w.Why != int32(pa.TerminatedReason_NotFound) {
		t.Fatalf("watch of a missing actor of A/1: got %+v; want NotFound", w)
	}
	// A's canary was not stopped.
	if p := request[*pong](t, root, rootPID("canary"), &ping{Text: "alive?"}); p.Address != tr.a.addr {
		t.Fatalf("A's canary answered from %s", p.Address)
	}
	// Nor watched: when A stops its canary and ghost, then the sentinel
	// (which B does watch), the sentinel's Terminated is the only one to
	// come. Watchers are told in the order they watched, and the tunnel
	// from A keeps order: a stray watch would be reported first.
	request[*pa.PID](t, root, b, &watchReq{Target: rootPID("sentinel"), Report: col})
	request[*pong](t, root, rootPID("sentinel"), &ping{Text: "after the watch"})
	for _, id := range []string{"canary", "ghost", "sentinel"} {
		request[*askResult](t, root, tr.a.ctl(), &stopReq{Target: rootPID(id)})
	}
	if w := nextWatched(t, got); !w.Who.Equal(rootPID("sentinel")) || w.Why != int32(pa.TerminatedReason_Stopped) {
		t.Fatalf("first report after stopping A's canary, ghost and sentinel: %+v; want only the sentinel's", w)
	}
}

// TestTunnelOrder: 10000 messages from B to an actor of A/1/1 arrive in
// order, all of them.
func TestTunnelOrder(t *testing.T) {
	const n = 10000
	h := newHost(t)
	root := h.Node().Root()
	tr := startTree(t, root)
	seq := request[*pa.PID](t, root, tr.grandchild.PID, &spawnNamed{Name: "seq"})
	for i := range n {
		root.Send(seq, &seqMsg{N: i})
	}
	if r := request[*seqResult](t, root, seq, &seqCheck{}); r.Count != n || !r.Ordered {
		t.Fatalf("got %d messages, ordered=%v; want %d in order", r.Count, r.Ordered, n)
	}
}
