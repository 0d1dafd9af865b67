package actor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/leakcheck"
	"github.com/procactor/procactor/mailbox"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakcheck.Options()...)
}

type echo struct{}

func (echo) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case string, []byte, int:
		if ctx.Sender() != nil {
			ctx.Respond(m)
		}
	}
}

// newNode makes a node closed at the end of the test.
func newNode(t *testing.T, addr string, opts ...NodeOption) *Node {
	t.Helper()
	n, err := NewNode(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

// join connects parent and child (child's address must be parent's + "/seg")
// over a pipe pair and returns both links.
func join(t *testing.T, parent, child *Node) (down, up *Link) {
	t.Helper()
	seg := child.Address()[len(parent.Address())+1:]
	down, err := parent.ChildLink(seg)
	if err != nil {
		t.Fatal(err)
	}
	up, err = child.ParentLink()
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := mailbox.Pipe(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	connectPair(t, down, up, a, b)
	return down, up
}

func connectPair(t *testing.T, down, up *Link, a, b *mailbox.PipeConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cookie := mailbox.NewCookie()
	var wg sync.WaitGroup
	wg.Add(1)
	var uerr error
	go func() { defer wg.Done(); _, uerr = up.Connect(ctx, b, cookie, 0) }()
	_, derr := down.Connect(ctx, a, cookie, 0)
	wg.Wait()
	if derr != nil || uerr != nil {
		t.Fatalf("connect: %v / %v", derr, uerr)
	}
}

func TestRequestAcrossLink(t *testing.T) {
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	join(t, n, c)
	pid, err := c.Root().SpawnNamed(pa.PropsFromProducer(func() pa.Actor { return echo{} }), "echo")
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Root().RequestFuture(pid, "hi", 5*time.Second).Result()
	if err != nil || res != "hi" {
		t.Fatalf("got %v, %v; want hi", res, err)
	}
	// and back: the child asks an actor of the parent
	ppid := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return echo{} }))
	res, err = c.Root().RequestFuture(ppid, 7, 5*time.Second).Result()
	if err != nil || res != 7 {
		t.Fatalf("got %v, %v; want 7", res, err)
	}
	// a missing actor answers a request with a dead letter at once
	_, err = n.Root().RequestFuture(pa.NewPID("n/1", "nobody"), "x", 5*time.Second).Result()
	if !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request to missing actor: got %v; want ErrDeadLetter", err)
	}
}

func TestLinkLossFailsRequestsAndWatches(t *testing.T) {
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	down, _ := join(t, n, c)
	silent, _ := c.Root().SpawnNamed(pa.PropsFromFunc(func(pa.Context) {}), "silent")
	f := n.Root().RequestFuture(silent, "never answered", time.Minute)
	terminated := make(chan *pa.Terminated, 1)
	n.Root().Spawn(pa.PropsFromFunc(func(ctx pa.Context) {
		switch m := ctx.Message().(type) {
		case *pa.Started:
			ctx.Watch(silent)
		case *pa.Terminated:
			terminated <- m
		}
	}))
	// wait until the Watch went out (it is recorded on send)
	for i := 0; ; i++ {
		down.mu.Lock()
		nw := len(down.watches)
		down.mu.Unlock()
		if nw == 1 {
			break
		}
		if i > 1000 {
			t.Fatal("watch never recorded")
		}
		time.Sleep(time.Millisecond)
	}
	down.Abort()
	if _, err := f.Result(); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request in flight: got %v; want ErrDeadLetter", err)
	}
	select {
	case m := <-terminated:
		if m.Why != pa.TerminatedReason_AddressTerminated || m.Who.Id != "silent" {
			t.Fatalf("got %v; want AddressTerminated of silent", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Terminated after link loss")
	}
}
