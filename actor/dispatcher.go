package actor

import (
	"sync"
	"sync/atomic"

	pa "github.com/asynkron/protoactor-go/actor"
)

// workerPool is a protoactor Dispatcher that runs mailboxes on long-lived
// goroutines instead of starting one per mailbox run, as
// pa.NewDefaultDispatcher does (go fn()): a parked worker already has its
// stack grown, so a run costs one hand-off on a channel.
//
// The pool bounds how many workers stay parked (WithWorkers), not how many
// run: when every worker is busy, Schedule starts one more goroutine, exactly
// like the default dispatcher, and that goroutine parks afterwards only if
// the pool has room. A bound on running workers would deadlock actors that
// block in Receive waiting for another actor of the same pool (a common
// RequestFuture(...).Result() pattern).
//
// After close, parked workers exit and Schedule falls back to go fn().
// Safe for concurrent use.
type workerPool struct {
	throughput int
	maxIdle    int32
	work       chan func() // unbuffered: a send succeeds only into a parked worker
	quit       chan struct{}
	idle       atomic.Int32 // workers parked or about to park
	closeOnce  sync.Once
}

var _ pa.Dispatcher = (*workerPool)(nil)

func newWorkerPool(maxIdle, throughput int) *workerPool {
	return &workerPool{
		throughput: throughput,
		maxIdle:    int32(maxIdle),
		work:       make(chan func()),
		quit:       make(chan struct{}),
	}
}

// Schedule implements pa.Dispatcher.
func (p *workerPool) Schedule(fn func()) {
	select {
	case p.work <- fn:
	default:
		go p.worker(fn)
	}
}

// Throughput implements pa.Dispatcher: messages a mailbox run processes
// before it yields.
func (p *workerPool) Throughput() int { return p.throughput }

func (p *workerPool) worker(fn func()) {
	for {
		fn()
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		select {
		case fn = <-p.work:
			p.idle.Add(-1)
		case <-p.quit:
			p.idle.Add(-1)
			return
		}
	}
}

// close makes parked workers exit; running ones exit when their run ends.
func (p *workerPool) close() { p.closeOnce.Do(func() { close(p.quit) }) }
