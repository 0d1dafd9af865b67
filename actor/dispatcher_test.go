package actor

import (
	"github.com/procactor/procactor/internal/testutil"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
)

// TestDispatcherBlockingActors: actors that block in Receive waiting for
// other actors of the same pool do not starve it, even with one worker.
func TestDispatcherBlockingActors(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n", WithWorkers(1))
	target := n.Root().Spawn(n.WithDispatcher(echoProps()))
	const askers = 16
	done := make(chan error, askers)
	for range askers {
		n.Root().Spawn(n.WithDispatcher(pa.PropsFromFunc(func(ctx pa.Context) {
			if _, ok := ctx.Message().(*pa.Started); ok {
				_, err := ctx.RequestFuture(target, "x", testTimeout).Result()
				done <- err
			}
		})))
	}
	for range askers {
		if err := testutil.Receive(t, done, "an answer"); err != nil {
			t.Fatal(err)
		}
	}
	p := n.Dispatcher().(*workerPool)
	testutil.Eventually(t, "parked workers to stay within the bound", func() bool { return p.idle.Load() <= 1 })
}
