package reach_test

import (
	"errors"
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
	r := request[*askResult](t, root, tr.child.PID, &ask{Target: b1.PID(), Ping: &ping{Text: "up"}, Header: map[string]string{"k": "v"}})
	if bp := r.Pong; bp == nil || bp.Text != "up" || bp.Header["k"] != "v" || bp.Address != b1.Address() {
		t.Fatalf("A/1 → B/1: got %#v", bp)
	}
}

var (
	_ = errors.Is
	_ = syscall.Kill
)
