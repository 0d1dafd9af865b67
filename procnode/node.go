package procnode

import (
	"context"
	"fmt"
	"strings"
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
	n := &Node{Node: an, procs: make(map[*Process]struct{})}
	nodes.Store(an.System(), n)
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

func (n *Node) add(p *Process) {
	n.mu.Lock()
	n.procs[p] = struct{}{}
	n.mu.Unlock()
}

func (n *Node) remove(p *Process) {
	n.mu.Lock()
	delete(n.procs, p)
	n.mu.Unlock()
}
