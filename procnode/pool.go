package procnode

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
)

// Pool keeps pre-started idle children of one kind, so that taking a process
// actor costs a round trip instead of a fork, an exec and a handshake. A
// pooled child runs Main up to the handshake and waits: what is fixed when a
// process is started (the binary, environment, rlimits, SysProcAttr, and
// every other option) is fixed per pool; what varies per take (WithArgs,
// WithName) reaches the child when it is taken, before the kind's producer
// runs there. A taken child is an ordinary process actor of the taker's
// spawner (supervised by its strategy; a restart starts a new process of
// its kind, not from the pool) and is replaced in the background, so a pool
// holds at most its size in idle children. An idle child that dies is
// replaced too. Close stops the idle children.
//
// Methods are safe for concurrent use.
type Pool struct {
	node *Node
	kind string
	size int
	cfg  config

	mu       sync.Mutex
	idle     []*Process    // up, waiting to be taken (guarded by mu)
	starting int           // being started (guarded by mu)
	closed   bool          // guarded by mu
	avail    chan struct{} // closed when an idle child may be there; replaced after (guarded by mu)
	wg       sync.WaitGroup
}

// ErrPoolClosed is returned by Take after Close.
var ErrPoolClosed = errors.New("procnode: pool closed")

// NewPool starts size idle children of kind in node, with the options every
// child of the pool gets (WithArgs and WithName are given to Take instead).
// It returns at once; the children come up in the background. WithContext
// is refused: a pool's children start ahead of their takers. Errors:
// ErrMainNotCalled, ErrKindNotRegistered, ErrInvalidOption.
func NewPool(node *Node, kind string, size int, opts ...Option) (*Pool, error) {
	cfg, err := spawnConfig(node.System(), opts)
	if err != nil {
		return nil, err
	}
	switch {
	case size < 1:
		return nil, fmt.Errorf("%w: NewPool size %d must be positive", ErrInvalidOption, size)
	case cfg.hasArgs || cfg.name != "":
		return nil, fmt.Errorf("%w: WithArgs and WithName go to Take, not NewPool", ErrInvalidOption)
	case cfg.hasLife:
		// Its children start ahead of any taker: nothing would bind them.
		return nil, fmt.Errorf("%w: WithContext does not apply to a pool's children (stop a taken one yourself)", ErrInvalidOption)
	}
	if cfg.binary == "" {
		if _, ok := actor.LookupKind(kind); !ok {
			return nil, fmt.Errorf("%w: %q", ErrKindNotRegistered, kind)
		}
	}
	pl := &Pool{node: node, kind: kind, size: size, cfg: cfg, avail: make(chan struct{})}
	pl.mu.Lock()
	pl.refillLocked()
	pl.mu.Unlock()
	return pl, nil
}

// refillLocked starts children until idle and starting ones make the size.
func (pl *Pool) refillLocked() {
	for !pl.closed && len(pl.idle)+pl.starting < pl.size {
		pl.starting++
		pl.wg.Add(1)
		go pl.startOne()
	}
}

// startOne starts one idle child and puts it in the pool, or drops it.
func (pl *Pool) startOne() {
	defer pl.wg.Done()
	p, err := newProcess(pl.node, "", pl.cfg)
	if err == nil {
		p.pool = pl
		p.sync = true // a failed start ends it: nobody supervises an idle child
		pl.node.add(p)
		go p.supervise()
		p.post(evStart{})
		err = <-p.ready
	}
	pl.mu.Lock()
	pl.starting--
	if err != nil {
		pl.mu.Unlock()
		l := pl.node.Logger()
		l.Warn().Err(err).Str("kind", pl.kind).Msg("pool: a child failed to start")
		return // the next Take or death refills; a kind that cannot start must not loop
	}
	if pl.closed {
		pl.mu.Unlock()
		_ = p.Kill(context.Background())
		return
	}
	pl.idle = append(pl.idle, p)
	close(pl.avail)
	pl.avail = make(chan struct{})
	pl.mu.Unlock()
	// An idle child that dies leaves the pool and is replaced.
	go func() {
		<-p.Done()
		pl.mu.Lock()
		for i, q := range pl.idle {
			if q == p {
				pl.idle = append(pl.idle[:i], pl.idle[i+1:]...)
				pl.refillLocked()
				break
			}
		}
		pl.mu.Unlock()
	}()
}

// Take makes an idle child of the pool a process actor of spawner, running
// the pool's kind with what opts give it (WithArgs, WithName; no other
// option), and returns it once the kind's root actor has started there. It
// waits for an idle child when none is there (bounded by ctx). The pool
// starts a replacement in the background.
//
// Errors: ErrPoolClosed, ErrInvalidOption, ErrNameExists, ErrStartFailed
// (the producer failed in the child, which then exits), ctx's error.
func (pl *Pool) Take(ctx context.Context, spawner pa.SpawnerContext, opts ...Option) (*Process, error) {
	var take config
	for _, o := range opts {
		o(&take)
	}
	if !onlyTakeOptions(&take) {
		return nil, fmt.Errorf("%w: Take accepts only WithArgs and WithName", ErrInvalidOption)
	}
	args, err := take.encodedArgs()
	if err != nil {
		return nil, err
	}
	p, err := pl.pop(ctx)
	if err != nil {
		return nil, err
	}
	p.setIdentity(pl.kind, take.name, args)
	p.link.Grant(take.args) // an untrusted pool's child may talk to what its args name
	props := pa.PropsFromFunc(func(pa.Context) {}, pa.WithSpawnFunc(
		func(sys *pa.ActorSystem, id string, _ *pa.Props, parent pa.SpawnerContext) (*pa.PID, error) {
			if err := p.assign(ctx, sys, id, parent); err != nil {
				return nil, err
			}
			return p.pid, nil
		}))
	name := take.name
	if name == "" {
		name = spawner.ActorSystem().ProcessRegistry.NextId()
	}
	if _, err := spawner.SpawnNamed(props, name); err != nil {
		_ = p.Kill(context.Background())
		return nil, err
	}
	return p, nil
}

// onlyTakeOptions reports whether c holds nothing but WithArgs and WithName
// (every other option is fixed per pool).
func onlyTakeOptions(c *config) bool {
	rest := *c
	rest.args, rest.hasArgs, rest.name = nil, false, ""
	return reflect.DeepEqual(rest, config{})
}

// pop takes an idle child out of the pool, waiting for one if need be.
func (pl *Pool) pop(ctx context.Context) (*Process, error) {
	for {
		pl.mu.Lock()
		if pl.closed {
			pl.mu.Unlock()
			return nil, ErrPoolClosed
		}
		for len(pl.idle) > 0 {
			p := pl.idle[0]
			pl.idle = pl.idle[1:]
			if p.State() != stateIdle.String() {
				continue // died meanwhile
			}
			pl.refillLocked()
			pl.mu.Unlock()
			return p, nil
		}
		pl.refillLocked()
		avail := pl.avail
		pl.mu.Unlock()
		select {
		case <-avail:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// Idle returns how many idle children the pool holds now.
func (pl *Pool) Idle() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.idle)
}

// Close stops the pool's idle children (each gracefully: it exits 0) and
// those still starting, and returns once they have ended (bounded by ctx).
// Children taken from the pool are not the pool's any more. Take fails
// with ErrPoolClosed afterwards. Close is idempotent.
func (pl *Pool) Close(ctx context.Context) error {
	pl.mu.Lock()
	pl.closed = true
	idle := pl.idle
	pl.idle = nil
	close(pl.avail)
	pl.avail = make(chan struct{})
	pl.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(idle))
	for i, p := range idle {
		wg.Go(func() { errs[i] = p.Stop(ctx) })
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { pl.wg.Wait(); close(done) }() // children still starting are killed as they come up
	select {
	case <-done:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	return errors.Join(errs...)
}

// assign makes an idle pooled child the spawner's child with id and tells it
// what to run; it returns once its root actor has started, or failed to.
func (p *Process) assign(ctx context.Context, sys *pa.ActorSystem, id string, parent pa.SpawnerContext) error {
	p.mu.Lock()
	state := p.state
	p.taken = make(chan error, 1)
	p.mu.Unlock()
	if state != stateIdle {
		return fmt.Errorf("%w: pooled child %s is %v", ErrStartFailed, p.address, state)
	}
	if err := p.adopt(sys, id, parent); err != nil {
		return err
	}
	p.node.add(p) // now also by its name
	who := p.who()
	p.node.Root().Send(pa.NewPID(p.address, assignName), &assign{Kind: who.kind, Name: who.name, Args: who.args, Parent: p.parent})
	select {
	case err := <-p.taken:
		if err != nil {
			<-p.ended
			return err
		}
		p.markAdopted()
		return nil
	case <-p.ended:
		// It died before answering (a producer that exits, a signal): no
		// answer will come.
		if err := p.Wait(context.Background()); err != nil {
			return fmt.Errorf("%w: pooled child %s ended while it was taken: %w", ErrStartFailed, p.address, err)
		}
		return fmt.Errorf("%w: pooled child %s ended while it was taken", ErrStartFailed, p.address)
	case <-ctx.Done():
		_ = p.Kill(context.Background())
		return context.Cause(ctx)
	}
}
