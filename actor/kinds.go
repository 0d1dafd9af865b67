package actor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/names"
	"github.com/procactor/procactor/mailbox"
)

// Args are what a kind's producer gets when a node spawns it.
type Args struct {
	// Kind is the registered kind name.
	Kind string
	// Name is the requested actor name ("" for a generated one).
	Name string
	// Value is the argument value given by the spawner (a registered type,
	// a basic value, a PID...), or nil.
	Value any
	// Node is the node that spawns the kind, e.g. for its dispatcher:
	// args.Node.WithDispatcher(props). Set by Node.Spawn; nil when a
	// producer is called outside a node.
	Node *Node
}

// Producer makes the Props of a kind from its spawn arguments. A producer
// that cannot work with its Args returns an error; it may also panic, which
// the activator turns into ErrSpawnFailed.
type Producer func(Args) (*pa.Props, error)

var kinds sync.Map // name → Producer

// RegisterKind registers a kind that other nodes may spawn here by name.
// Call it from init, in every binary that may host the kind. It panics on an
// empty name, a nil producer or a name registered twice.
func RegisterKind(name string, p Producer) {
	if name == "" || p == nil {
		panic("actor: RegisterKind needs a name and a producer")
	}
	if _, dup := kinds.LoadOrStore(name, p); dup {
		panic(fmt.Sprintf("actor: kind %q registered twice", name))
	}
}

// LookupKind returns the producer of a registered kind.
func LookupKind(name string) (Producer, bool) {
	p, ok := kinds.Load(name)
	if !ok {
		return nil, false
	}
	return p.(Producer), true
}

// spawnRequest asks a node's activator to spawn a registered kind.
type spawnRequest struct {
	Kind string
	Name string
	Args []byte // mailbox.Marshal of Args.Value; empty for none
}

// spawnResponse answers a spawnRequest: PID on success, otherwise a code
// mapped back to a sentinel error and a detail text.
type spawnResponse struct {
	PID    *pa.PID
	Code   spawnCode
	Detail string
}

// spawnCode says how a spawn request ended; it crosses processes in place of
// error text.
type spawnCode int

const (
	spawnOK spawnCode = iota
	spawnKindNotRegistered
	spawnNameExists
	spawnFailed
	spawnRefused // a child may not spawn here (WithChildSpawns)
)

func (c spawnCode) err() error {
	switch c {
	case spawnOK:
		return nil
	case spawnKindNotRegistered:
		return ErrKindNotRegistered
	case spawnNameExists:
		return ErrNameExists
	case spawnRefused:
		return ErrSpawnRefused
	}
	return ErrSpawnFailed
}

func init() {
	mailbox.RegisterType("procactor.SpawnRequest", &spawnRequest{})
	mailbox.RegisterType("procactor.SpawnResponse", &spawnResponse{})
}

// activatorName is the id of a node's activator.
const activatorName = names.Activator

// activatorPID returns the PID of the activator of the node at address.
func activatorPID(address string) *pa.PID { return pa.NewPID(address, activatorName) }

// activator spawns registered kinds on request. Spawned actors are top-level
// actors of the node, not its children: a failure of the activator must not
// stop them (protoactor's own activator does, and panics on unknown kinds).
type activator struct{ node *Node }

func (a *activator) Receive(ctx pa.Context) {
	req, ok := ctx.Message().(*spawnRequest)
	if !ok {
		return
	}
	ctx.Respond(a.node.spawnLocal(req))
}

func (n *Node) spawnLocal(req *spawnRequest) (resp *spawnResponse) {
	defer func() {
		if r := recover(); r != nil {
			resp = &spawnResponse{Code: spawnFailed, Detail: fmt.Sprintf("kind %q panicked: %v", req.Kind, r)}
		}
		if resp.Code != spawnOK {
			n.log.Warn().Str("kind", req.Kind).Str("name", req.Name).Int("code", int(resp.Code)).Str("detail", resp.Detail).Msg("spawn refused")
		}
	}()
	prod, ok := LookupKind(req.Kind)
	if !ok {
		return &spawnResponse{Code: spawnKindNotRegistered, Detail: fmt.Sprintf("kind %q is not registered in this binary", req.Kind)}
	}
	args := Args{Kind: req.Kind, Name: req.Name, Node: n}
	if len(req.Args) > 0 {
		v, err := mailbox.Unmarshal(req.Args)
		if err != nil {
			return &spawnResponse{Code: spawnFailed, Detail: fmt.Sprintf("args of kind %q: %v", req.Kind, err)}
		}
		args.Value = v
	}
	props, err := prod(args)
	if err != nil || props == nil {
		return &spawnResponse{Code: spawnFailed, Detail: fmt.Sprintf("kind %q: %v", req.Kind, err)}
	}
	// Messages over a link run the kind on the link's reader when it is idle,
	// and what links deliver to it is bounded (inbox.go).
	ib := newInbox(n.cfg.inboxLimit, int64(n.cfg.inboxBytes))
	props = n.boundInbox(n.Inline(props), ib)
	var pid *pa.PID
	if req.Name == "" {
		pid = n.system.Root.Spawn(props)
	} else {
		pid, err = n.system.Root.SpawnNamed(props, req.Name)
		if errors.Is(err, pa.ErrNameExists) {
			return &spawnResponse{PID: pid, Code: spawnNameExists, Detail: req.Name}
		} else if err != nil {
			return &spawnResponse{Code: spawnFailed, Detail: err.Error()}
		}
	}
	n.registerInbox(pid, ib)
	return &spawnResponse{PID: pid}
}

// SpawnOption configures Node.Spawn.
type SpawnOption func(*spawnRequest) error

// WithName gives the spawned actor a name; default: a generated id.
func WithName(name string) SpawnOption {
	return func(r *spawnRequest) error { r.Name = name; return nil }
}

// WithArgs passes a value to the kind's producer (Args.Value). It must be
// encodable by package mailbox (registered type, basic value, PID...).
func WithArgs(v any) SpawnOption {
	return func(r *spawnRequest) error {
		b, err := mailbox.Marshal(v)
		if err != nil {
			return err
		}
		r.Args = b
		return nil
	}
}

// defaultSpawnTimeout bounds a spawn when ctx has no deadline.
const defaultSpawnTimeout = 30 * time.Second

// Spawn spawns a registered kind on the node at address (this node or any
// node of the tree) and returns the new actor's PID. Errors: ErrKindNotRegistered
// (the target binary lacks the kind), ErrNameExists (with the existing PID),
// ErrSpawnFailed, ctx's error, or protoactor's future errors when the node is
// unreachable.
func (n *Node) Spawn(ctx context.Context, address, kind string, opts ...SpawnOption) (*pa.PID, error) {
	req := &spawnRequest{Kind: kind}
	for _, o := range opts {
		if err := o(req); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var resp *spawnResponse
	if address == n.address {
		resp = n.spawnLocal(req)
	} else {
		timeout := defaultSpawnTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
		f := n.system.Root.RequestFuture(activatorPID(address), req, timeout)
		type result struct {
			res any
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := f.Result()
			done <- result{res, err}
		}()
		var got result
		select {
		case got = <-done:
		case <-ctx.Done():
			// A cancelled ctx ends the wait at once, but the other node
			// may spawn the actor all the same: one that nobody was given
			// is stopped when its answer comes (in one node, Spawn either
			// returns the PID or spawns nothing).
			go func() {
				if resp, ok := (<-done).res.(*spawnResponse); ok && resp.Code == spawnOK && resp.PID != nil {
					n.system.Root.Stop(resp.PID)
				}
			}()
			return nil, ctx.Err()
		}
		res, err := got.res, got.err
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err() // the future timed out at ctx's deadline
			}
			return nil, fmt.Errorf("actor: spawn %q at %s: %w", kind, address, err)
		}
		r, ok := res.(*spawnResponse)
		if !ok {
			return nil, fmt.Errorf("%w: unexpected answer %T", ErrSpawnFailed, res)
		}
		resp = r
	}
	if err := resp.Code.err(); err != nil {
		return resp.PID, fmt.Errorf("%w: %s", err, resp.Detail)
	}
	return resp.PID, nil
}
