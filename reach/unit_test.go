package reach_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/procnode"
	"github.com/procactor/procactor/reach"
)

// TestStartErrors: Start refuses a node that is not a host:port root, bad
// options, a second Start on a node, and an address it cannot bind; none of
// these starts a remote.
func TestStartErrors(t *testing.T) {
	h := newHost(t)
	plain, err := procnode.NewNode()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(context.Background())
	if _, err := reach.Start(plain); !errors.Is(err, reach.ErrNotRoot) {
		t.Errorf("Start on %q: got %v; want ErrNotRoot", plain.Address(), err)
	}
	if _, err := reach.Start(h.Node()); !errors.Is(err, reach.ErrStarted) {
		t.Errorf("second Start: got %v; want ErrStarted", err)
	}
	for name, opt := range map[string]reach.Option{
		"queue":     reach.WithQueueBytes(1),
		"watches":   reach.WithMaxWatches(0),
		"requests":  reach.WithMaxRequests(-1),
		"dial":      reach.WithDialTimeout(0),
		"keepalive": reach.WithKeepalive(time.Millisecond),
		"cluster":   reach.WithCluster("", nil),
	} {
		n, err := procnode.NewNodeAt(freeAddr(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reach.Start(n, opt); !errors.Is(err, reach.ErrInvalidOption) {
			t.Errorf("%s: got %v; want ErrInvalidOption", name, err)
		}
		n.Close(context.Background())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken, err := procnode.NewNodeAt(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close(context.Background())
	if _, err := reach.Start(taken); !errors.Is(err, reach.ErrStart) {
		t.Errorf("Start on a bound address: got %v; want ErrStart", err)
	}
	// A failed Start claims nothing: the node's own resolvers decide.
	if p, _ := taken.System().ProcessRegistry.Get(pa.NewPID("127.0.0.1:9", "x")); p != taken.System().DeadLetter {
		t.Errorf("after a failed Start, another root resolves to %T; want the dead letter process", p)
	}
}

// deadLetters collects the Undeliverable dead letters of B's tunnel.
func deadLetters(t *testing.T, h *reach.Host) func() []error {
	t.Helper()
	var mu sync.Mutex
	var reasons []error
	es := h.Node().System().EventStream
	sub := es.Subscribe(func(evt any) {
		if dl, ok := evt.(*pa.DeadLetterEvent); ok {
			if u, ok := dl.Message.(*actor.Undeliverable); ok {
				mu.Lock()
				reasons = append(reasons, u.Reason)
				mu.Unlock()
			}
		}
	})
	t.Cleanup(func() { es.Unsubscribe(sub) })
	return func() []error {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), reasons...)
	}
}

func count(errs []error, target error) int {
	n := 0
	for _, e := range errs {
		if errors.Is(e, target) {
			n++
		}
	}
	return n
}

// TestUnreachableRoot: messages to a root that does not answer queue up to
// WithQueueBytes, then are dead letters (ErrTunnelFull); a message larger
// than the bound is one at once (ErrMessageTooLarge); an unregistered type
// is one too. When the root is found unreachable, a watcher of its actor
// gets AddressTerminated and a request in flight fails at once.
func TestUnreachableRoot(t *testing.T) {
	h := newHost(t)
	root := h.Node().Root()
	reasons := deadLetters(t, h)
	nowhere := pa.NewPID(freeAddr(t), "x") // nothing listens there
	col, got := collector(t, root)
	b := newAgent(t, root)
	request[*pa.PID](t, root, b, &watchReq{Target: nowhere, Report: col})
	f := root.RequestFuture(nowhere, &ping{Text: "anyone?"}, testTimeout)

	chunk := make([]byte, 64<<10)
	n := reach.DefaultQueueBytes/len(chunk) + 8
	for range n {
		root.Send(nowhere, chunk)
	}
	root.Send(nowhere, make([]byte, reach.DefaultQueueBytes+1))
	root.Send(nowhere, struct{ unregistered int }{})
	full, large, unreg := count(reasons(), reach.ErrTunnelFull), count(reasons(), reach.ErrMessageTooLarge), 0
	for _, e := range reasons() {
		if e != nil && !errors.Is(e, reach.ErrTunnelFull) && !errors.Is(e, reach.ErrMessageTooLarge) {
			unreg++
		}
	}
	if full == 0 || full >= n || large != 1 || unreg != 1 {
		t.Fatalf("of %d chunks, %d refused as ErrTunnelFull (want some, not all); %d ErrMessageTooLarge, %d other (want 1 each): %v",
			n, full, large, unreg, reasons())
	}
	if w := nextWatched(t, got); !w.Who.Equal(nowhere) || w.Why != int32(pa.TerminatedReason_AddressTerminated) {
		t.Fatalf("watch of an unreachable root's actor: got %+v; want AddressTerminated", w)
	}
	start := time.Now()
	if _, err := f.Result(); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request to an unreachable root: got %v after %v; want ErrDeadLetter before its timeout", err, time.Since(start))
	}
}
