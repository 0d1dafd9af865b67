package procnode

import (
	"context"
	"sync"
	"sync/atomic"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
)

// Node is an actor.Node that can spawn child processes. A parent makes its
// root node with NewNode; in a child, Main makes the node.
type Node struct {
	*actor.Node
	seq   atomic.Uint64 // child segments; never reused
	mu    sync.Mutex
	procs map[*Process]struct{} // live child processes (guarded by mu)
	byPID map[pidKey]*Process   // the same, by PID and by name (guarded by mu)
	// extras are debug servers and metric registrations, closed with the
	// node (see debug.go).
	extras nodeExtras
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

func register(an *actor.Node) *Node {
	n := &Node{Node: an, procs: make(map[*Process]struct{}), byPID: make(map[pidKey]*Process)}
	nodes.Store(an.System(), n)
	n.serveSnapshots()
	return n
}

func nodeOf(sys *pa.ActorSystem) *Node {
	if v, ok := nodes.Load(sys); ok {
		return v.(*Node)
	}
	return nil
}

// Close stops every child process of the node gracefully (each within its
// stop deadlines, all at once; a child stops its own children first), then
// closes the node's links and actor system. Bounded by ctx.
func (n *Node) Close(ctx context.Context) error {
	n.extras.close()
	n.stopProcs(ctx)
	err := n.Node.Close(ctx)
	nodes.Delete(n.System())
	return err
}

// stopProcs stops every child process of the node, all at once, and
// returns when they have ended.
func (n *Node) stopProcs(ctx context.Context) {
	n.mu.Lock()
	procs := make([]*Process, 0, len(n.procs))
	for p := range n.procs {
		procs = append(procs, p)
	}
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { _ = p.Stop(ctx) })
	}
	wg.Wait()
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
