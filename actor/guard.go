package actor

import (
	"fmt"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// Least privilege across links. A node trusts its peers only as far as the
// traffic of the subtree behind them legitimately goes:
//   - Guards (AddGuard) see every message that arrives over a link, before
//     it is delivered here or relayed, and may refuse it: package procnode
//     keeps its own machinery (control processes, a child's host actor)
//     reachable only from the link it belongs to.
//   - A Terminated from a link is accepted only for a watch that went out
//     through that link (the recorded pair), and never about a PID the node
//     intercepts (a process actor's root: the parent learns of its end
//     itself).
//   - Watches that come in through a link are bounded (WithWatchLimit), and
//     a Watch or Unwatch names a watcher behind that link.
//   - A spawn request from a child into this node is refused unless
//     WithChildSpawns allows it, and then capped per link; what a child
//     spawned here is stopped when its link is gone. One into another
//     child's subtree (a sibling's) is always refused: this node would
//     relay it, and the sibling, taking it for its parent's, would spawn
//     without a cap.
//
// A refused message is a dead letter with its reason (a request gets a
// DeadLetterResponse at once, and so does the future a refused answer was
// for, when its request went out through the same link) and a log line,
// rate-limited per link.

// Guard decides whether a message that arrived over the link from may go on
// to env.Target (delivered on this node, or relayed to another link): nil
// lets it, an error makes it a dead letter with that reason. Guards run on
// the link's reader goroutine for every message: they must be quick and
// must not block.
type Guard func(from *Link, env *mailbox.Envelope) error

// AddGuard adds a guard to the node's; every guard must let a message pass.
// Guards added earlier are kept (a guard never replaces another).
func (n *Node) AddGuard(g Guard) {
	n.mu.Lock()
	defer n.mu.Unlock()
	gs := append(append([]Guard(nil), *n.guards.Load()...), g)
	n.guards.Store(&gs)
}

// check runs the guards on a message from l.
func (n *Node) check(l *Link, env *mailbox.Envelope) error {
	for _, g := range *n.guards.Load() {
		if err := g(l, env); err != nil {
			return err
		}
	}
	return nil
}

// IsChild reports whether l leads to a child of its node (false: to its
// parent).
func (l *Link) IsChild() bool { return isAncestor(l.node.address, l.addr) }

// refuse accounts for a message from the peer that the node's policy
// refuses: a dead letter with the reason, reported like the node's other
// dead letters (rate-limited per link).
func (l *Link) refuse(env *mailbox.Envelope, reason error) {
	l.counts.deadLetters.Add(1)
	l.node.dead.report(deadLetter{msg: "dead letter: refused", peer: l.addr, target: env.Target, sender: env.Sender,
		typ: fmt.Sprintf("%T", env.Message), lane: env.Lane.String(), reason: reason})
	if w, ok := env.Message.(*pa.Watch); ok && w.Watcher != nil && l.behind(w.Watcher) {
		// The watcher must not wait for a watch that never was (a forged
		// watcher, not behind the link, is told nothing).
		sendSystem(l.node.system, w.Watcher, &pa.Terminated{Who: env.Target, Why: pa.TerminatedReason_NotFound})
		return
	}
	if env.Lane == mailbox.LaneUser && isFuture(env.Target) && l.forgetRequest(env.Target) {
		// An answer to a request this link carried: the request fails at
		// once, not at its timeout (only such a future: a peer may not fail
		// others' requests by guessing their futures).
		if _, dlr := env.Message.(*pa.DeadLetterResponse); !dlr {
			l.node.system.Root.Send(env.Target, &pa.DeadLetterResponse{Target: env.Target})
		}
	}
	l.node.system.EventStream.Publish(&pa.DeadLetterEvent{PID: env.Target, Message: &Undeliverable{Message: env.Message, Reason: reason}, Sender: env.Sender})
}

// forgetRequest forgets the request in flight through l whose future is f,
// and reports whether there was one.
func (l *Link) forgetRequest(f *pa.PID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := keyOf(f)
	_, ok := l.inflight[k]
	delete(l.inflight, k)
	return ok
}

// childSpawn answers a spawn request that a child sent to this node's
// activator: refused unless WithChildSpawns allows it, capped per link.
func (l *Link) childSpawn(env *mailbox.Envelope) {
	n := l.node
	req, ok := env.Message.(*spawnRequest)
	if !ok {
		l.refuse(env, fmt.Errorf("%w: not a spawn request", ErrRefused))
		return
	}
	answer := func(resp *spawnResponse) {
		if env.Sender != nil {
			n.system.Root.Send(env.Sender, resp)
		}
	}
	if n.cfg.childSpawns <= 0 {
		l.refuseSpawn(env, req, "spawns from a child are off (WithChildSpawns)")
		return
	}
	l.mu.Lock()
	live := 0
	for k, pid := range l.spawned {
		if _, ok := n.system.ProcessRegistry.GetLocal(pid.Id); ok {
			live++
		} else {
			delete(l.spawned, k)
		}
	}
	gone := l.state == linkGone
	l.mu.Unlock()
	if gone || live >= n.cfg.childSpawns {
		answer(&spawnResponse{Code: spawnRefused, Detail: fmt.Sprintf("%d actors spawned by %s live (WithChildSpawns(%d))", live, l.addr, n.cfg.childSpawns)})
		return
	}
	resp := n.spawnLocal(req)
	if resp.Code == spawnOK && resp.PID != nil {
		l.mu.Lock()
		if l.spawned == nil {
			l.spawned = make(map[pidKey]*pa.PID)
		}
		l.spawned[keyOf(resp.PID)] = resp.PID
		l.mu.Unlock()
	}
	answer(resp)
}

// crossSpawn reports whether env, from a child, is a spawn request for the
// activator of a node in another child's subtree (a sibling of the sender,
// or below one): this node would relay it, and that node would take it as
// one from its parent (always allowed, uncapped), out of reach of
// WithChildSpawns and of stopSpawned. A request for an ancestor goes up, where
// the ancestor applies the same rule.
func (l *Link) crossSpawn(env *mailbox.Envelope) bool {
	t := env.Target
	return t.Id == activatorName && l.IsChild() && isAncestor(l.node.address, t.Address) &&
		t.Address != l.addr && !isAncestor(l.addr, t.Address)
}

// refuseSpawn answers a spawn request from a child that this node refuses:
// an ErrSpawnRefused answer (spawnRefused) to its sender and a dead-letter
// report with the reason.
func (l *Link) refuseSpawn(env *mailbox.Envelope, req *spawnRequest, why string) {
	n := l.node
	n.dead.report(deadLetter{msg: "spawn refused", peer: l.addr, target: env.Target, sender: env.Sender,
		typ: "kind " + req.Kind, lane: env.Lane.String(), reason: fmt.Errorf("%w: %s", ErrSpawnRefused, why)})
	if env.Sender != nil {
		n.system.Root.Send(env.Sender, &spawnResponse{Code: spawnRefused, Detail: why})
	}
}

// stopSpawned stops what the peer spawned on this node (its link is gone).
func (l *Link) stopSpawned() {
	l.mu.Lock()
	spawned := l.spawned
	l.spawned = nil
	l.mu.Unlock()
	for _, pid := range spawned {
		l.node.system.Root.Stop(pid)
	}
}
