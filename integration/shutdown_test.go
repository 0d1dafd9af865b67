//go:build linux

package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
)

// TestNodeCloseStopsChildrenDeepestFirst: Node.Close stops every child
// gracefully within its deadline: each exits 0 with Stopped set. A child
// with a grandchild stops the grandchild first: the grandchild reports its
// Stopping, then the child, from its root actor's Stopped, reports that the
// grandchild's Process had already ended with a clean, requested exit.
func TestNodeCloseStopsChildrenDeepestFirst(t *testing.T) {
	n, buf := newNode(t) // closed here; the cleanup's Close is then a no-op
	reports := make(chan *Report, 16)
	col := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return &collector{reports: reports} }))

	chain := spawn(t, n, kindChain, procnode.WithRestart(false), procnode.WithArgs(col))
	plain1 := spawn(t, n, kindEcho, procnode.WithRestart(false))
	plain2 := spawn(t, n, kindBusy, procnode.WithRestart(false))
	res, err := n.Root().RequestFuture(chain.PID(), "gcpid", 30*time.Second).Result()
	gcPid, ok := res.(int)
	if err != nil || !ok || gcPid <= 0 {
		t.Fatalf("grandchild pid: %v, %v", res, err)
	}
	gcStat, alive := readStat(gcPid)
	if !alive || gcStat.ppid != chain.OSPid() {
		t.Fatalf("grandchild %d: %+v, want a child of %d", gcPid, gcStat, chain.OSPid())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v\n%s", err, buf.String())
	}
	for _, p := range []*procnode.Process{chain, plain1, plain2} {
		select {
		case <-p.Done():
		default:
			t.Fatalf("child %s has not ended when Close returned", p.Address())
		}
		st := p.ExitStatus()
		if st == nil || !st.Success() || !st.Stopped {
			t.Errorf("child %s: status %+v, want exit 0, Stopped", p.Address(), st)
		}
	}
	if !exitedOrZombie(gcPid, gcStat.starttime) {
		t.Errorf("grandchild %d still runs", gcPid)
	}

	var got []string
	for len(got) < 2 {
		select {
		case r := <-reports:
			got = append(got, r.From+": "+r.Text)
		default:
			t.Fatalf("reports %q, want the grandchild's then the child's", got)
		}
	}
	if got[0] != "grandchild: stopping" {
		t.Errorf("first report %q, want the grandchild stopping", got[0])
	}
	if !strings.HasPrefix(got[1], "child: gc-done=true gc-status=exit code 0 gc-stopped=true") {
		t.Errorf("second report %q, want the child saying its grandchild had ended cleanly before it", got[1])
	}
}
