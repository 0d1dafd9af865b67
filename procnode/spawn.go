package procnode

import (
	"context"
	"fmt"
	"os"
	"reflect"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

// Spawn starts a child process running the registered kind as its root
// actor, and returns once the child is up (handshake done, its root actor's
// Started returned) or failed. spawner is a root context or an actor's
// context of a node (NewNode, or the node Main built in a child): the
// process actor is its child in protoactor's supervision tree (it appears in
// ctx.Children()), and its supervisor strategy decides what a failure means.
// ctx bounds the start only; the process actor then lives until it is
// stopped or its supervisor gives up (WithContext binds its life to a
// context). Spawn blocks the calling actor for the start: from inside an
// actor, Props spawns without waiting.
//
// Errors: ErrMainNotCalled (this process is a child whose main did not call
// Main, or the child's main did not), ErrNoNode, ErrKindNotRegistered
// (checked before exec, or reported by another binary), ErrInvalidOption,
// ErrNameExists, ErrStartFailed (wrapping the cause and, when the child
// exited, its *ExitError), ctx's error (the child, if any, is killed), and
// WithContext's context's error when it is done already.
func Spawn(ctx context.Context, spawner pa.SpawnerContext, kind string, opts ...Option) (*Process, error) {
	if err := ctx.Err(); err != nil { // do not fork a child only to kill it
		return nil, context.Cause(ctx)
	}
	cfg, err := spawnConfig(spawner.ActorSystem(), opts)
	if err != nil {
		return nil, err
	}
	if cfg.life != nil && cfg.life.Err() != nil { // WithContext's: over before it began
		return nil, context.Cause(cfg.life)
	}
	if cfg.binary == "" {
		if _, ok := actor.LookupKind(kind); !ok {
			return nil, fmt.Errorf("%w: %q", ErrKindNotRegistered, kind)
		}
	}
	var p *Process
	props := pa.PropsFromFunc(func(pa.Context) {}, pa.WithSpawnFunc(
		func(sys *pa.ActorSystem, id string, _ *pa.Props, parent pa.SpawnerContext) (*pa.PID, error) {
			var err error
			p, err = spawnProcess(ctx, sys, id, parent, kind, cfg, true)
			if err != nil {
				return nil, err
			}
			return p.pid, nil
		}))
	name := cfg.name
	if name == "" {
		name = spawner.ActorSystem().ProcessRegistry.NextId()
	}
	if _, err := spawner.SpawnNamed(props, name); err != nil {
		return nil, err
	}
	return p, nil
}

// Props returns the Props of a process actor running the registered kind,
// for protoactor's own spawn calls: ctx.Spawn, ctx.SpawnNamed, root.Spawn.
// The spawn returns the process actor's PID at once, without waiting for the
// child (messages to it are held until it is up), and the PID is the
// spawner's child like any actor's: it is in ctx.Children(), the spawner's
// strategy supervises it, and the spawner gets one Terminated for that same
// *PID when it ends for good. Node.Process returns its *Process.
//
// A start that fails (exec, handshake, a kind another binary lacks, a root
// actor that fails in Started) is a failure of that child: the spawner's
// strategy decides, as for a crash, and an Exited event carries the reason
// when it ends. Only misuse fails the spawn itself (protoactor's ctx.Spawn
// panics with the error, SpawnNamed returns it): ErrNoNode,
// ErrMainNotCalled, ErrInvalidOption, and ErrNameExists for a taken name.
// The actor runs in the child from its kind's props: an option set on these
// that would shape an actor here (receiver, sender or spawn middleware, a
// context decorator, WithOnInit, WithSupervisor, WithMailbox) is
// ErrInvalidOption, not ignored; put it on the kind's props.
func Props(kind string, opts ...Option) *pa.Props {
	return pa.PropsFromFunc(func(pa.Context) {}, pa.WithSpawnFunc(
		func(sys *pa.ActorSystem, id string, props *pa.Props, parent pa.SpawnerContext) (*pa.PID, error) {
			if f := inProcessOnly(props); f != "" {
				return nil, fmt.Errorf("%w: %s set on procnode.Props(%q) would not run in the child: set it on the kind's props", ErrInvalidOption, f, kind)
			}
			cfg, err := spawnConfig(sys, opts)
			if err != nil {
				return nil, err
			}
			p, err := spawnProcess(context.Background(), sys, id, parent, kind, cfg, false)
			if err != nil {
				return nil, err
			}
			return p.pid, nil
		}))
}

// inProcessOnly names the first option set on props that shapes an actor
// in this process, or returns "". protoactor keeps Props' fields
// unexported; a dispatcher is allowed (it changes no answer).
func inProcessOnly(props *pa.Props) string {
	if props == nil {
		return ""
	}
	v := reflect.ValueOf(props).Elem()
	for _, f := range [...]struct{ field, option string }{
		{"receiverMiddleware", "a receiver middleware"},
		{"senderMiddleware", "a sender middleware"},
		{"spawnMiddleware", "a spawn middleware"},
		{"contextDecorator", "a context decorator"},
		{"onInit", "WithOnInit"},
		{"supervisionStrategy", "WithSupervisor"},
		{"mailboxProducer", "WithMailbox"},
	} {
		if x := v.FieldByName(f.field); x.IsValid() && !x.IsZero() && (x.Kind() != reflect.Slice || x.Len() > 0) {
			return f.option
		}
	}
	return ""
}

// spawnConfig checks what a spawn needs before anything is made.
func spawnConfig(sys *pa.ActorSystem, opts []Option) (config, error) {
	if _, child := os.LookupEnv(envBoot); child {
		return config{}, ErrMainNotCalled
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	if nodeOf(sys) == nil {
		return config{}, ErrNoNode
	}
	return cfg, nil
}

// spawnProcess is the spawn function of both forms: it makes the process
// actor under the spawner with the given id, and starts its first
// incarnation. With wait (Spawn) it returns once the start is done, and a
// failed start is its error; otherwise it returns at once.
func spawnProcess(ctx context.Context, sys *pa.ActorSystem, id string, parent pa.SpawnerContext, kind string, cfg config, wait bool) (*Process, error) {
	n := nodeOf(sys)
	p, err := newProcess(n, kind, cfg)
	if err != nil {
		return nil, err
	}
	p.sync = wait
	if err := p.adopt(sys, id, parent); err != nil {
		p.discard()
		return nil, err
	}
	n.add(p)
	p.mu.Lock()
	p.adopted = !wait // protoactor adds the child once this returns
	p.mu.Unlock()
	if cfg.life != nil {
		p.unbind = context.AfterFunc(cfg.life, func() { p.post(evHalt{stage: stageGraceful}) })
	}
	if n.halting.Load() { // StopOnSignal's signal came: it ends before it starts
		p.post(evHalt{stage: stageGraceful})
	}
	go p.supervise()
	p.post(evStart{})
	if !wait {
		return p, nil
	}
	select {
	case err := <-p.ready:
		if err != nil {
			<-p.ended
			if cfg.life != nil && cfg.life.Err() != nil {
				err = fmt.Errorf("%w (WithContext: %w)", err, context.Cause(cfg.life))
			}
			return nil, err
		}
	case <-ctx.Done():
		_ = p.Kill(context.Background()) // also when it came up meanwhile; returns once it has ended
		return nil, context.Cause(ctx)
	}
	p.markAdopted()
	return p, nil
}

// adopt makes the process actor the spawner's child with the given id: its
// name is taken in the spawner's node, its failures go to the spawner, and
// its PID resolves to it here.
func (p *Process) adopt(sys *pa.ActorSystem, id string, parent pa.SpawnerContext) error {
	alias, absent := sys.ProcessRegistry.Add(aliasProcess{p}, id)
	if !absent {
		return fmt.Errorf("%w: %q: %w", ErrNameExists, id, pa.ErrNameExists)
	}
	p.alias = alias
	p.parent = parent.Self()
	p.rs = pa.NewRestartStatistics()
	p.node.Node.Intercept(p.pid, rootProcess{p})
	return nil
}

// newProcess makes a process actor's parts in node n: its link (a new
// segment), its control process and its loggers. Nothing runs yet.
func newProcess(n *Node, kind string, cfg config) (*Process, error) {
	p := &Process{
		node:   n,
		cfg:    cfg,
		cookie: mailbox.NewCookie(),
		ended:  make(chan struct{}),
		ready:  make(chan error, 1),
		wake:   make(chan struct{}, 1),
	}
	args, err := cfg.encodedArgs()
	if err != nil {
		return nil, err
	}
	link, err := n.childLink()
	if err != nil {
		return nil, err
	}
	segment := link.Address()[len(n.Address())+1:]
	link.SetReconnect(cfg.restart)
	if err := link.Retain(RootID, cfg.retainWindow); err != nil {
		_ = link.Close(context.Background())
		return nil, err
	}
	p.link = link
	p.address = link.Address()
	p.pid = pa.NewPID(p.address, RootID)
	p.host = pa.NewPID(p.address, hostName)
	p.relay = relayLogger(n.Logger(), cfg.logger)
	p.setIdentity(kind, cfg.name, args)
	p.control, _ = n.System().ProcessRegistry.Add(control{p}, controlPrefix+segment)
	if cfg.untrusted > 0 {
		if err := link.SetUntrusted(cfg.untrusted); err != nil {
			p.discard()
			return nil, err
		}
		link.Grant(p.control) // its reports and log records
		link.Grant(cfg.args)
	}
	link.OnDown(p.linkDown)
	return p, nil
}

// encodedArgs is WithArgs' value as it crosses, or nil.
func (c *config) encodedArgs() ([]byte, error) {
	if !c.hasArgs {
		return nil, nil
	}
	b, err := mailbox.Marshal(c.args)
	if err != nil {
		return nil, fmt.Errorf("%w: WithArgs: %w", ErrInvalidOption, err)
	}
	return b, nil
}

// discard undoes newProcess for a process actor that never ran.
func (p *Process) discard() {
	_ = p.link.Close(context.Background())
	p.node.System().ProcessRegistry.Remove(p.control)
}
