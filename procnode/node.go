package procnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

// Node is an actor.Node that can spawn child processes. A parent makes its
// root node with NewNode; in a child, Main makes the node.
//
// Node embeds *actor.Node, and what it adds keeps the process actors safe
// from what the embedded methods allow: ChildLink refuses the segments
// Spawn numbers its children with, Intercept and Release leave the PIDs of
// process actors alone, and a link's OnDown adds a function beside
// procnode's own instead of replacing it.
type Node struct {
	*actor.Node
	seq     atomic.Uint64 // child segments; never reused
	halting atomic.Bool   // StopOnSignal saw its signal: new process actors stop at once
	closed  chan struct{} // closed by Close
	once    sync.Once     // Close's own work (the root's release, closed)
	mu      sync.Mutex
	procs   map[*Process]struct{} // live child processes (guarded by mu)
	byPID   map[pidKey]*Process   // the same, by PID and by name (guarded by mu)
	// extras are debug servers and metric registrations, closed with the
	// node (see debug.go).
	extras nodeExtras
}

// RootAddress is the address NewNode gives the first root node of a
// process; the next ones, while it lives, are "n2", "n3"...
const RootAddress = "n"

var nodes sync.Map // *pa.ActorSystem → *Node

// roots counts the live nodes of this process by the root of their address
// (a root "n", and in a child "n" of "n/1"): NewNode picks one none uses.
var (
	rootsMu sync.Mutex
	roots   = make(map[string]int) // guarded by rootsMu
)

// NewNode makes a root node of a process tree in this process. Spawn needs
// a spawner whose actor system belongs to a node. Close it when done: that
// stops its child processes.
//
// Its address is RootAddress ("n") unless a live node of this process has
// that root already; then it is the first of "n2", "n3"... that none has.
// So two root nodes of one process never share addresses: their children
// (n/1 and n2/1), and so their PIDs, stay distinct. A closed node's address
// is free for the next NewNode. (A child process's node, made by Main, has
// its parent's root: a NewNode in a child skips it too.)
func NewNode(opts ...actor.NodeOption) (*Node, error) {
	rootsMu.Lock()
	defer rootsMu.Unlock()
	addr := RootAddress
	for i := 2; roots[addr] > 0; i++ {
		addr = RootAddress + strconv.Itoa(i)
	}
	an, err := actor.NewNode(addr, opts...)
	if err != nil {
		return nil, err
	}
	return registerLocked(an), nil
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
	rootsMu.Lock()
	defer rootsMu.Unlock()
	return registerLocked(an)
}

func registerLocked(an *actor.Node) *Node {
	roots[rootOf(an.Address())]++
	n := &Node{Node: an, closed: make(chan struct{}), procs: make(map[*Process]struct{}), byPID: make(map[pidKey]*Process)}
	an.AddGuard(n.guard)
	nodes.Store(an.System(), n)
	n.serveSnapshots()
	return n
}

// guard keeps procnode's machinery out of reach of the links it does not
// belong to: a child's control process here takes only that child's reports
// (its exit reason, its log records); a node's host actor, assign process
// and snapshot responder take requests only from its parent, never relayed
// from elsewhere.
func (n *Node) guard(from *actor.Link, env *mailbox.Envelope) error {
	t := env.Target
	self := n.Address()
	switch {
	case strings.HasPrefix(t.Id, controlPrefix):
		if t.Address != self || from.Address() != actor.ChildAddress(self, strings.TrimPrefix(t.Id, controlPrefix)) {
			return fmt.Errorf("%w: %s is the control of another child", actor.ErrRefused, pidString(t))
		}
	case t.Id == hostName || t.Id == assignName || t.Id == snapshotID:
		if t.Address != self || from.IsChild() {
			return fmt.Errorf("%w: %s takes requests from its parent only", actor.ErrRefused, pidString(t))
		}
	}
	return nil
}

func pidString(p *pa.PID) string { return p.Id + "@" + p.Address }

// rootOf is the first segment of an address: the root of its tree.
func rootOf(addr string) string {
	root, _, _ := strings.Cut(addr, "/")
	return root
}

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
// error once they have ended. Close is idempotent.
func (n *Node) Close(ctx context.Context) error {
	n.extras.close()
	stopErr := n.stopProcs(ctx)
	err := n.Node.Close(ctx)
	n.once.Do(func() {
		nodes.Delete(n.System())
		rootsMu.Lock()
		root := rootOf(n.Address())
		if roots[root]--; roots[root] <= 0 {
			delete(roots, root)
		}
		rootsMu.Unlock()
		close(n.closed)
	})
	if stopErr != nil {
		return stopErr
	}
	return err
}

// ChildLink makes a link to a child node that is not a process actor (one
// the caller connects itself, see actor.Node.ChildLink). Segments that are
// decimal numbers belong to Spawn, which numbers its children n/1, n/2...:
// they are refused with an error wrapping actor.ErrInvalidAddress, so that
// a link made here never takes, or is taken by, a process actor's address.
func (n *Node) ChildLink(segment string) (*actor.Link, error) {
	if isNumber(segment) {
		return nil, fmt.Errorf("%w: child segment %q: decimal segments are Spawn's", actor.ErrInvalidAddress, segment)
	}
	return n.Node.ChildLink(segment)
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Intercept is actor.Node.Intercept, except for the PIDs of the node's live
// process actors: procnode stands for those itself (their supervision,
// watches and restarts go through it), so for them it changes nothing and
// returns an error wrapping ErrNameExists.
func (n *Node) Intercept(pid *pa.PID, p pa.Process) error {
	if _, ok := n.Process(pid); ok {
		return fmt.Errorf("%w: %v is a process actor's PID", ErrNameExists, pid)
	}
	n.Node.Intercept(pid, p)
	return nil
}

// Release is actor.Node.Release, except for the PIDs of the node's live
// process actors, which it leaves to procnode (see Intercept).
func (n *Node) Release(pid *pa.PID) error {
	if _, ok := n.Process(pid); ok {
		return fmt.Errorf("%w: %v is a process actor's PID", ErrNameExists, pid)
	}
	n.Node.Release(pid)
	return nil
}

// childLink makes the link of a new process actor with the next segment
// number; one taken already (a link made through the embedded
// actor.Node.ChildLink) is skipped, never shared.
func (n *Node) childLink() (*actor.Link, error) {
	for {
		l, err := n.Node.ChildLink(strconv.FormatUint(n.seq.Add(1), 10))
		if !errors.Is(err, actor.ErrLinkExists) {
			return l, err
		}
	}
}

// StopOnSignal makes Ctrl-C stop the node's process actors gracefully. When
// the process receives one of sigs (default: os.Interrupt and
// syscall.SIGTERM), the returned context is done, its cause an error
// wrapping ErrSignaled that names the signal, and every process actor of
// the node is stopped as by Stop, all at once (one spawned afterwards ends
// before its process starts: Spawn fails with ErrStartFailed, and a Props
// spawn's process actor ends at once). Close, or Wait on each,
// waits for their end. The signals are handled once: a second Ctrl-C ends
// the program the usual way (its children still exit, by Pdeathsig and the
// end of their stream). The context is also done, with context.Canceled,
// when the node is closed. In main:
//
//	node, err := procnode.NewNode()
//	...
//	ctx := node.StopOnSignal() // Ctrl-C: the children stop gracefully
//
// Without it, a terminal's Ctrl-C (which reaches only the parent: children
// run in a process group of their own) ends the parent as Go's default
// does, and its children are killed (Pdeathsig) without stopping.
func (n *Node) StopOnSignal(sigs ...os.Signal) context.Context {
	if len(sigs) == 0 {
		sigs = []os.Signal{os.Interrupt, syscall.SIGTERM}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		defer signal.Stop(ch)
		select {
		case sig := <-ch:
			signal.Stop(ch) // the next one acts as usual
			cancel(fmt.Errorf("%w: %v", ErrSignaled, sig))
			n.halting.Store(true)
			n.stopProcs(context.Background()) // bounded by each one's stop deadlines
		case <-n.closed:
			cancel(context.Canceled)
		}
	}()
	return ctx
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
