package mailbox

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

type testPing struct {
	N    int
	Text string
	Who  *actor.PID
}

func init() { RegisterType("mailbox_test.ping", &testPing{}) }

// collector records what a Handler receives.
type collector struct {
	mu     sync.Mutex
	got    []Envelope
	dead   []error
	closed chan error
	notify chan struct{}
}

func newCollector() *collector {
	return &collector{closed: make(chan error, 1), notify: make(chan struct{}, 1<<16)}
}

func (c *collector) Deliver(env *Envelope) {
	c.mu.Lock()
	c.got = append(c.got, *env)
	c.mu.Unlock()
	c.notify <- struct{}{}
}

func (c *collector) DeadLetter(env *Envelope, reason error) {
	c.mu.Lock()
	c.got = append(c.got, *env)
	c.dead = append(c.dead, reason)
	c.mu.Unlock()
	c.notify <- struct{}{}
}

func (c *collector) Closed(err error) { c.closed <- err }

func (c *collector) wait(t *testing.T, n int) []Envelope {
	t.Helper()
	for i := 0; ; i++ {
		c.mu.Lock()
		if len(c.got) >= n {
			out := append([]Envelope(nil), c.got...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d messages; want %d", len(c.got), n)
		}
	}
}

func TestSmokeRoundTrip(t *testing.T) {
	a, b, err := Pipe(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := newCollector(), newCollector()
	ea, err := NewEndpoint(a, ca)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := NewEndpoint(b, cb)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cookie := NewCookie()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := eb.Handshake(ctx, Hello{Address: "n/1", Cookie: cookie}); err != nil {
			t.Error(err)
		}
	}()
	peer, err := ea.Handshake(ctx, Hello{Address: "n", Cookie: cookie})
	wg.Wait()
	if err != nil || peer.Address != "n/1" {
		t.Fatalf("handshake: %v %+v", err, peer)
	}
	ea.Start()
	eb.Start()
	target := actor.NewPID("n/1", "worker")
	msgs := []any{[]byte("hello"), "str", 42, int64(-7), 3.5, true, nil, &testPing{N: 1, Text: "x", Who: actor.NewPID("n", "$1")},
		&actor.Terminated{Who: actor.NewPID("n", "a"), Why: actor.TerminatedReason_AddressTerminated}, actor.NewPID("n", "p"),
		map[string]string{"a": "b"}, []string{"x", "y"}, map[int]string{1: "one"}}
	for _, m := range msgs {
		if err := ea.Send(ctx, &Envelope{Target: target, Sender: actor.NewPID("n", "s"), Header: map[string]string{"k": "v"}, Message: m}); err != nil {
			t.Fatalf("send %T: %v", m, err)
		}
	}
	got := cb.wait(t, len(msgs))
	for i, g := range got {
		t.Logf("%d: %T %v target=%v sender=%v header=%v", i, g.Message, g.Message, g.Target, g.Sender, g.Header)
	}
	if err := ea.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	<-eb.Done()
	if err := <-cb.closed; err != nil {
		t.Fatalf("peer closed: %v", err)
	}
}
