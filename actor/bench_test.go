package actor

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// counter counts []byte messages and signals done when it has seen want.
type counter struct {
	n, want atomic.Int64
	done    chan struct{}
}

func (c *counter) Receive(ctx pa.Context) {
	if _, ok := ctx.Message().([]byte); ok {
		if c.n.Add(1) == c.want.Load() {
			c.done <- struct{}{}
		}
	}
}

// benchSetup gives a sender and a host for the actor under test: the same
// protoactor system (the in-process baseline) or two nodes over a
// mailbox.Pipe; dispatch puts the host's dispatcher on the actor's props.
type benchSetup struct {
	name  string
	setup func(b *testing.B) (from *pa.RootContext, host *pa.RootContext, dispatch func(*pa.Props) *pa.Props)
	// retained: the actor is the child's retained actor "x" (Link.Retain,
	// Link.AckFor) with the node's inline mailbox, as a process actor's root
	// is; spawn it with spawnOn.
	retained bool
}

// retainedLinks holds, per benchmark, the child's link of a retained setup.
var retainedLinks = map[*testing.B]*Link{}

// spawnOn spawns props on host for setup s: as "x" with the ack middleware
// when s is retained.
func (s benchSetup) spawnOn(b *testing.B, host *pa.RootContext, props *pa.Props) *pa.PID {
	if !s.retained {
		return host.Spawn(props)
	}
	up := retainedLinks[b]
	pid, err := host.SpawnNamed(up.node.Inline(props.Configure(pa.WithReceiverMiddleware(up.AckFor("x")))), "x")
	if err != nil {
		b.Fatal(err)
	}
	return pid
}

func defaultDispatch(p *pa.Props) *pa.Props { return p }

func benchSetups() []benchSetup {
	plain := func(b *testing.B) *pa.ActorSystem {
		sys := pa.NewActorSystem(pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
		b.Cleanup(sys.Shutdown)
		return sys
	}
	linked := func(b *testing.B) (*Node, *Node) {
		n, c := newNode(b, "n"), newNode(b, "n/1")
		join(b, n, c)
		return n, c
	}
	return []benchSetup{
		{"protoactor/default-dispatcher", func(b *testing.B) (*pa.RootContext, *pa.RootContext, func(*pa.Props) *pa.Props) {
			sys := plain(b)
			return sys.Root, sys.Root, defaultDispatch
		}, false},
		{"protoactor/node-dispatcher", func(b *testing.B) (*pa.RootContext, *pa.RootContext, func(*pa.Props) *pa.Props) {
			sys := plain(b)
			pool := newWorkerPool(8, DefaultDispatcherThroughput)
			b.Cleanup(pool.close)
			return sys.Root, sys.Root, func(p *pa.Props) *pa.Props { return p.Configure(pa.WithDispatcher(pool)) }
		}, false},
		{"link/default-dispatcher", func(b *testing.B) (*pa.RootContext, *pa.RootContext, func(*pa.Props) *pa.Props) {
			n, c := linked(b)
			return n.Root(), c.Root(), defaultDispatch
		}, false},
		{"link/node-dispatcher", func(b *testing.B) (*pa.RootContext, *pa.RootContext, func(*pa.Props) *pa.Props) {
			n, c := linked(b)
			return n.Root(), c.Root(), c.WithDispatcher
		}, false},
		{"link/inline", func(b *testing.B) (*pa.RootContext, *pa.RootContext, func(*pa.Props) *pa.Props) {
			n, c := linked(b)
			return n.Root(), c.Root(), c.Inline
		}, false},
		{"link/retained", func(b *testing.B) (*pa.RootContext, *pa.RootContext, func(*pa.Props) *pa.Props) {
			n, c := newNode(b, "n"), newNode(b, "n/1")
			down, err := n.ChildLink("1")
			if err != nil {
				b.Fatal(err)
			}
			if err := down.Retain("x", 64<<20); err != nil {
				b.Fatal(err)
			}
			up, err := c.ParentLink()
			if err != nil {
				b.Fatal(err)
			}
			retainedLinks[b] = up
			b.Cleanup(func() { delete(retainedLinks, b) })
			// AckFor before Connect: spawnOn adds the middleware to the actor.
			up.AckFor("x")
			connectPipe(b, down, up)
			return n.Root(), c.Root(), defaultDispatch
		}, true},
	}
}

// BenchmarkRequestResponse: RequestFuture → echo actor → Respond, one at a
// time, 64-byte []byte; rawpipe is the floor: the same bytes ping-ponged
// over the same kind of pipe pair by two goroutines.
func BenchmarkRequestResponse(b *testing.B) {
	for _, s := range benchSetups() {
		b.Run(s.name, func(b *testing.B) {
			from, host, dispatch := s.setup(b)
			pid := s.spawnOn(b, host, dispatch(echoProps()))
			msg := make([]byte, 64)
			if _, err := from.RequestFuture(pid, msg, testTimeout).Result(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := from.RequestFuture(pid, msg, testTimeout).Result(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("rawpipe", func(b *testing.B) {
		x, y, err := mailbox.Pipe(1 << 20)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 64)
			for {
				if _, err := io.ReadFull(y, buf); err != nil {
					return
				}
				if _, err := y.Write(buf); err != nil {
					return
				}
			}
		}()
		b.Cleanup(func() { x.Close(); y.Close(); <-done })
		buf := make([]byte, 64)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := x.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(x, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOneWay: Send of a 64-byte []byte to a counting actor, b.N times,
// then wait until it has counted them all.
func BenchmarkOneWay(b *testing.B) {
	for _, s := range benchSetups() {
		b.Run(s.name, func(b *testing.B) {
			from, host, dispatch := s.setup(b)
			c := &counter{done: make(chan struct{}, 1)}
			c.want.Store(int64(b.N))
			pid := s.spawnOn(b, host, dispatch(pa.PropsFromProducer(func() pa.Actor { return c })))
			sendCounted(b, from, pid, c)
		})
	}
}

// sendCounted sends a 64-byte []byte to pid b.N times (the timed part),
// waits until c has counted them all and reports the rate.
func sendCounted(b *testing.B, from *pa.RootContext, pid *pa.PID, c *counter) {
	msg := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from.Send(pid, msg)
	}
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		b.Fatalf("counted %d of %d", c.n.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkInProcessOneWayShape measures protoactor alone, in one process:
// 64 B messages to an actor as props usually make it ("plain"), and to one
// shaped like a process actor's root in its child ("root-shaped": a context
// decorator, which makes protoactor wrap every message in an envelope, and
// two receiver middlewares, as ctx.Parent(), retention's count and the
// host's Started check need; here they only pass the message on). No link,
// no process: the per-message cost protoactor's invocation adds to such an
// actor, which a one-way stream to a child pays on top of the transport.
func BenchmarkInProcessOneWayShape(b *testing.B) {
	pass := func(next pa.ReceiverFunc) pa.ReceiverFunc {
		return func(ctx pa.ReceiverContext, env *pa.MessageEnvelope) { next(ctx, env) }
	}
	decorate := func(next pa.ContextDecoratorFunc) pa.ContextDecoratorFunc {
		return func(ctx pa.Context) pa.Context { return next(ctx) }
	}
	for _, shape := range []struct {
		name string
		opts []pa.PropsOption
	}{
		{"plain", nil},
		{"root-shaped", []pa.PropsOption{pa.WithContextDecorator(decorate), pa.WithReceiverMiddleware(pass, pass)}},
	} {
		b.Run(shape.name, func(b *testing.B) {
			sys := pa.NewActorSystem(pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }))
			c := &counter{done: make(chan struct{}, 1)}
			c.want.Store(int64(b.N))
			pid := sys.Root.Spawn(pa.PropsFromProducer(func() pa.Actor { return c }, shape.opts...))
			b.Cleanup(func() { sys.Root.Stop(pid) })
			sendCounted(b, sys.Root, pid, c)
		})
	}
}
