package reach_test

import (
	"github.com/procactor/procactor/internal/testutil"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// TestClusterProcessKind: two roots, A and C, form a cluster (static member
// list, disthash) with the kind "worker", whose activations run in child
// processes behind a root-local stub. From C, an identity owned by A is
// served by a child of A; killed, that child's activation ends and the next
// request activates the identity again in a new child; poisoned, the stub
// stops its child process.
func TestClusterProcessKind(t *testing.T) {
	h := newHost(t)
	root := h.Node().Root()
	addrs := []string{freeAddr(t), freeAddr(t)}
	roots := startRoots(t, addrs, envClusterAddr+"="+strings.Join(addrs, ","))
	a, c := roots[0], roots[1]

	// An identity whose owner is A, as disthash places it.
	rdv := cluster.NewRendezvous()
	var members []*cluster.Member
	for _, addr := range addrs {
		host, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		members = append(members, &cluster.Member{Id: addr, Host: host, Port: int32(n), Kinds: []string{workerKind}})
	}
	rdv.UpdateMembers(members)
	id := ""
	for i := 0; id == "" && i < 1000; i++ {
		if cand := "w" + strconv.Itoa(i); rdv.GetByClusterIdentity(cluster.NewClusterIdentity(cand, workerKind)) == a.addr {
			id = cand
		}
	}
	if id == "" {
		t.Fatal("no identity owned by A among 1000")
	}

	serve := func(step string) *pong {
		t.Helper()
		var r *askResult
		// The cluster retries a request to a stub that has just stopped
		// three times without a pause: a few more tries, bounded.
		tries := 0
		defer func() { t.Logf("%s: %d tries", step, tries) }()
		for range 20 {
			tries++
			res, err := root.RequestFuture(c.ctl(), &clusterReq{Identity: id, Kind: workerKind, Ping: &ping{Text: step}}, testTimeout).Result()
			if err != nil {
				t.Fatalf("%s: request to C: %v", step, err)
			}
			if r = res.(*askResult); r.Err == "" {
				break
			}
		}
		p := r.Pong
		if r.Err != "" || p == nil || p.Text != step || p.Identity != id || !strings.HasPrefix(p.Address, a.addr+"/") {
			t.Fatalf("%s: C's request of %s: %+v %q; want a pong from a child of A (%s)", step, id, p, r.Err, a.addr)
		}
		return p
	}
	first := serve("first")
	if p := serve("again"); p.OSPid != first.OSPid {
		t.Fatalf("second request served by OS pid %d; want the same activation (%d)", p.OSPid, first.OSPid)
	}

	// The child is killed: the activation ends (no restart), the next
	// request makes a new one.
	if err := syscall.Kill(first.OSPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := serve("after the kill")
	if second.OSPid == first.OSPid || second.Address == first.Address {
		t.Fatalf("after the kill: served by %d at %s; want a new child", second.OSPid, second.Address)
	}

	// Poisoned, the stub stops its child process.
	stub := request[*pa.PID](t, root, c.ctl(), &activationReq{Identity: id, Kind: workerKind})
	if stub.Address != a.addr {
		t.Fatalf("activation PID %v; want a root actor of A", stub)
	}
	root.Poison(stub)
	testutil.Eventually(t, "the poisoned activation's child exits", func() bool { return testutil.Gone(second.OSPid) })
	if third := serve("after the poison"); third.OSPid == second.OSPid {
		t.Fatalf("after the poison: served by the stopped child %d", third.OSPid)
	}
}
