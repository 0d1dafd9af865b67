package actor

import (
	"sync"
	"sync/atomic"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// ackCounter is the receiving side of retention (see retention): it counts
// the user messages a link delivers from its peer to one local actor, and
// acknowledges, cumulatively, those the actor has finished. A message counts
// as finished when the actor's Receive returns for it (a stashed message
// too), or when it fails (Link.Finished): the failing message is lost, as in
// protoactor, never redelivered.
//
// To tell its messages from the actor's other traffic, the link delivers
// each one in a *pa.MessageEnvelope of its own and recognises the pointer
// when the actor's receiver middleware (Link.AckFor) sees it return.
type ackCounter struct {
	id      string
	mu      sync.Mutex
	ep      *mailbox.Endpoint // the stream being counted (guarded by mu)
	seq     uint64            // messages of ep delivered to the actor (guarded by mu)
	pending ring[pendingMsg]  // delivered, not finished, in order (guarded by mu)
	npend   atomic.Int64      // len(pending), read without mu on the actor's hot path
}

type pendingMsg struct {
	env *pa.MessageEnvelope // nil: finished already (it did not decode)
	seq uint64
}

// AckFor makes the link count the user messages it delivers from its peer to
// the local actor id, and returns the receiver middleware to put on that
// actor's props (pa.WithReceiverMiddleware): it acknowledges each message to
// the peer once the actor has finished it. The peer retains them meanwhile
// (Link.Retain with the same id). Call it before the first Connect.
//
// The middleware must see the actor's messages: a receiver middleware put
// before it that drops a message delays the acknowledgements until a later
// message of the link is finished (acknowledgements are cumulative).
func (l *Link) AckFor(id string) pa.ReceiverMiddleware {
	a := &ackCounter{id: id}
	l.ackc.Store(a)
	return func(next pa.ReceiverFunc) pa.ReceiverFunc {
		return func(c pa.ReceiverContext, env *pa.MessageEnvelope) {
			next(c, env)
			a.finished(env)
		}
	}
}

// Finished marks a message of the actor given to AckFor as finished although
// its Receive did not return: it failed (panicked). Pass the message a
// supervisor strategy got. Other messages are ignored.
func (l *Link) Finished(message any) {
	a := l.ackc.Load()
	if env, ok := message.(*pa.MessageEnvelope); ok && a != nil {
		a.finished(env)
	}
}

// counts reports whether a message arriving on the link is one the counter
// numbers.
func (a *ackCounter) counts(env *mailbox.Envelope, self string) bool {
	return env.Lane == mailbox.LaneUser && env.Target != nil && env.Target.Id == a.id && env.Target.Address == self
}

// delivered numbers a message of ep about to be delivered in menv.
func (a *ackCounter) delivered(ep *mailbox.Endpoint, menv *pa.MessageEnvelope) {
	a.mu.Lock()
	a.resetLocked(ep)
	a.seq++
	a.pending.push(pendingMsg{env: menv, seq: a.seq})
	a.npend.Add(1)
	a.mu.Unlock()
}

// undeliverable numbers a message of ep that did not decode: it is finished
// as it arrives.
func (a *ackCounter) undeliverable(ep *mailbox.Endpoint) {
	a.mu.Lock()
	a.resetLocked(ep)
	a.seq++
	if a.pending.len() == 0 {
		seq := a.seq
		a.mu.Unlock()
		ep.Acknowledge(seq)
		return
	}
	a.pending.push(pendingMsg{seq: a.seq})
	a.npend.Add(1)
	a.mu.Unlock()
}

// resetLocked starts counting a new stream.
func (a *ackCounter) resetLocked(ep *mailbox.Endpoint) {
	if a.ep != ep {
		a.ep, a.seq = ep, 0
		a.pending = ring[pendingMsg]{}
		a.npend.Store(0)
	}
}

// finished acknowledges env and everything delivered before it (the
// mailbox is FIFO: what came before has been finished or dropped by a
// middleware), and the undecodable messages that follow it.
func (a *ackCounter) finished(env *pa.MessageEnvelope) {
	if a.npend.Load() == 0 {
		return // the actor's own traffic: nothing of the link is pending
	}
	a.mu.Lock()
	p := &a.pending
	i := 0 // usually the oldest: the mailbox is FIFO
	for i < p.len() && p.at(i).env != env {
		i++
	}
	if i == p.len() || env == nil {
		a.mu.Unlock()
		return
	}
	for i+1 < p.len() && p.at(i+1).env == nil {
		i++
	}
	seq, ep := p.at(i).seq, a.ep
	for range i + 1 {
		p.pop()
	}
	a.npend.Add(-int64(i + 1))
	a.mu.Unlock()
	ep.Acknowledge(seq)
}
