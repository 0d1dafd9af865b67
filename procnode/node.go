package procnode

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

// Node is an actor.Node that can spawn child processes. A parent makes its
// root node with NewNode; in a child, Main makes the node.
type Node struct {
	*actor.Node
	seq   atomic.Uint64 // child segments; never reused
	mu    sync.Mutex
	procs map[*Process]struct{} // live child processes (guarded by mu)
	byPID map[pidKey]*Process   // the same, by PID and by name (guarded by mu)
}

// RootAddress is the address of a root node made by NewNode.
const RootAddress = "n"

var nodes sync.Map // *pa.ActorSystem → *Node

// NewNode makes the root node of a process tree in this process. Spawn needs
// a spawner whose actor system belongs to a node. Close it when done: that
// stops its child processes.
func NewNode(opts ...actor.NodeOption) (*Node, error) {
	an, err := actor.NewNode(RootAddress, opts...)
	if err != nil {
		return nil, err
	}
	return register(an), nil
}

// NewNodeAt makes the root node of a process tree at the given address
// instead of RootAddress: a root that other hosts reach (package reach) is
// named by the host:port its gRPC remote listens on, and its children are
// address/1, address/2... The address must be a root (no "/"). The node's
// resolver comes first, so that a gRPC remote started afterwards never
// claims the node's own tree.
func NewNodeAt(address string, opts ...actor.NodeOption) (*Node, error) {
	if strings.Contains(address, "/") {
		return nil, fmt.Errorf("%w: %q is not a root address", actor.ErrInvalidAddress, address)
	}
	an, err := actor.NewNode(address, opts...)
	if err != nil {
		return nil, err
	}
	return register(an), nil
}

func register(an *actor.Node) *Node {
	n := &Node{Node: an, procs: make(map[*Process]struct{}), byPID: make(map[pidKey]*Process)}
	an.AddGuard(n.guard)
	nodes.Store(an.System(), n)
	return n
}

// guard keeps procnode's machinery out of reach of the links it does not
// belong to: a child's control process here takes only that child's reports
// (its exit reason, its log records); a node's host actor and assign process
// take directives only from its parent, never relayed from elsewhere.
func (n *Node) guard(from *actor.Link, env *mailbox.Envelope) error {
	t := env.Target
	self := n.Address()
	switch {
	case strings.HasPrefix(t.Id, controlPrefix):
		if t.Address != self || from.Address() != actor.ChildAddress(self, strings.TrimPrefix(t.Id, controlPrefix)) {
			return fmt.Errorf("%w: %s is the control of another child", actor.ErrRefused, pidString(t))
		}
	case t.Id == hostName || t.Id == assignName:
		if t.Address != self || from.IsChild() {
			return fmt.Errorf("%w: %s takes directives from its parent only", actor.ErrRefused, pidString(t))
		}
	}
	return nil
}

func pidString(p *pa.PID) string { return p.Id + "@" + p.Address }

func nodeOf(sys *pa.ActorSystem) *Node {
	if v, ok := nodes.Load(sys); ok {
		return v.(*Node)
	}
	return nil
}

// Close stops every child process of the node gracefully (each within its
// stop deadlines, all at once; a child stops its own children first), then
// closes the node's links and actor system. Bounded by ctx: when ctx ends
// first, the children still running are killed, and Close returns ctx's
// error once they have ended.
func (n *Node) Close(ctx context.Context) error {
	stopErr := n.stopProcs(ctx)
	err := n.Node.Close(ctx)
	nodes.Delete(n.System())
	if stopErr != nil {
		return stopErr
	}
	return err
}

// stopProcs stops every child process of the node, all at once, and
// returns when they have ended: nil, or ctx's error when it ended first.
func (n *Node) stopProcs(ctx context.Context) error {
	n.mu.Lock()
	procs := make([]*Process, 0, len(n.procs))
	for p := range n.procs {
		procs = append(procs, p)
	}
	n.mu.Unlock()
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.Stop(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Process returns the process actor of this node whose PID (p.PID(), or the
// PID its spawner got for its name) is pid, while it lives.
func (n *Node) Process(pid *pa.PID) (*Process, bool) {
	if pid == nil {
		return nil, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.byPID[keyOf(pid)]
	return p, ok
}

// Processes returns the node's live process actors.
func (n *Node) Processes() []*Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Process, 0, len(n.procs))
	for p := range n.procs {
		out = append(out, p)
	}
	return out
}

func (n *Node) add(p *Process) {
	n.mu.Lock()
	n.procs[p] = struct{}{}
	n.byPID[keyOf(p.pid)] = p
	if p.alias != nil {
		n.byPID[keyOf(p.alias)] = p
	}
	n.mu.Unlock()
}

func (n *Node) remove(p *Process) {
	n.mu.Lock()
	delete(n.procs, p)
	delete(n.byPID, keyOf(p.pid))
	if p.alias != nil {
		delete(n.byPID, keyOf(p.alias))
	}
	n.mu.Unlock()
}
