package actor

import (
	"fmt"
	"sync"
	"sync/atomic"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// An actor's mailbox is protoactor's and unbounded: an actor that blocks in
// its Receive would let a link's reader pour a peer's flood into it without
// end. A root actor of a child is bounded by retention (Link.Retain: the
// sender holds, then waits). For the actors the activator spawns (kinds
// spawned by Node.Spawn, from this node or across a link), whose props
// procactor controls, the node bounds what links have delivered to each and
// it has not finished: at most WithInboxLimit messages and WithInboxBytes
// decoded bytes (a single larger message is taken when nothing is queued).
// Past either bound a message from a link is a dead letter with ErrInboxFull
// and a rate-limited line, and a request among them fails at once
// (DeadLetterResponse): memory stays bounded, at the price of dropping. The
// sender is not slowed (no per-target credit over the link: the link's own
// flow control is per stream, and holding it for one busy actor would stall
// every other on the link). Messages sent within the node are not counted.
// Actors spawned otherwise get no bound: see the package doc.

// inbox counts one spawned actor's messages delivered by links and not yet
// finished. A message counts as finished when the actor's Receive returns or
// panics for it, or when it finishes a message delivered after it (the
// mailbox is FIFO: a middleware before the inbox's dropped it). Like
// ackCounter, it recognises its messages by the *pa.MessageEnvelope the link
// wraps each one in.
type inbox struct {
	mu      sync.Mutex
	pending ring[inboxMsg] // delivered, not finished, in order (guarded by mu)
	bytes   int64          // sum of pending sizes (guarded by mu)
	npend   atomic.Int64   // len(pending), read without mu on the actor's path
	stopped atomic.Bool    // the actor has stopped: no more deliveries are counted
}

type inboxMsg struct {
	env  *pa.MessageEnvelope
	size int64
}

// admit counts a message about to be delivered, unless the inbox is full
// (limit messages or maxBytes bytes; one message alone is always admitted).
func (ib *inbox) admit(menv *pa.MessageEnvelope, size int64, limit int, maxBytes int64) bool {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if n := ib.pending.len(); n > 0 && (n >= limit || ib.bytes+size > maxBytes) {
		return false
	}
	ib.pending.push(inboxMsg{env: menv, size: size})
	ib.bytes += size
	ib.npend.Add(1)
	return true
}

// finished releases env and everything delivered before it.
func (ib *inbox) finished(env *pa.MessageEnvelope) {
	if ib.npend.Load() == 0 {
		return // the actor's own traffic
	}
	ib.mu.Lock()
	defer ib.mu.Unlock()
	p := &ib.pending
	i := 0
	for i < p.len() && p.at(i).env != env {
		i++
	}
	if i == p.len() {
		return // not a message of a link
	}
	for range i + 1 {
		m, _ := p.pop()
		ib.bytes -= m.size
	}
	ib.npend.Add(-int64(i + 1))
}

// usage reports what the inbox holds: messages and bytes.
func (ib *inbox) usage() (int, int64) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return ib.pending.len(), ib.bytes
}

// boundInbox returns a copy of props whose actor's link deliveries are
// counted by ib (its receiver middleware, innermost).
func (n *Node) boundInbox(props *pa.Props, ib *inbox) *pa.Props {
	return props.Clone(pa.WithReceiverMiddleware(func(next pa.ReceiverFunc) pa.ReceiverFunc {
		return func(c pa.ReceiverContext, env *pa.MessageEnvelope) {
			if _, ok := env.Message.(*pa.Stopped); ok {
				ib.stopped.Store(true)
				if n.inboxes.CompareAndDelete(c.Self().Id, ib) {
					n.inboxCount.Add(-1)
				}
			}
			defer ib.finished(env) // a panic finishes (loses) the message too
			next(c, env)
		}
	}))
}

// registerInbox makes links count deliveries to pid in ib, from now on.
func (n *Node) registerInbox(pid *pa.PID, ib *inbox) {
	n.inboxCount.Add(1)
	n.inboxes.Store(pid.Id, ib)
	if ib.stopped.Load() {
		// It stopped before it was registered: its Stopped found nothing
		// to delete.
		if n.inboxes.CompareAndDelete(pid.Id, ib) {
			n.inboxCount.Add(-1)
		}
	}
}

// inboxOf returns the inbox of the local actor target, if it has one.
func (n *Node) inboxOf(target *pa.PID) *inbox {
	if n.inboxCount.Load() == 0 || target.Address != n.address {
		return nil
	}
	if v, ok := n.inboxes.Load(target.Id); ok {
		return v.(*inbox)
	}
	return nil
}

// deliverCounted wraps a link's message for target's inbox and counts it,
// or refuses it when the inbox is full (false).
func (l *Link) deliverCounted(ib *inbox, env *mailbox.Envelope) (*pa.MessageEnvelope, bool) {
	menv := &pa.MessageEnvelope{Header: env.Header, Message: env.Message, Sender: env.Sender}
	cfg := &l.node.cfg
	if !ib.admit(menv, env.Size, cfg.inboxLimit, int64(cfg.inboxBytes)) {
		msgs, bytes := ib.usage()
		l.refuse(env, fmt.Errorf("%w: %d messages, %d bytes not yet processed", ErrInboxFull, msgs, bytes))
		return nil, false
	}
	return menv, true
}
