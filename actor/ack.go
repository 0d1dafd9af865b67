package actor

import (
	"sync"

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
// when the actor's receiver middleware (Link.AckFor) sees it return. The
// common case needs no recognising: a message the link's reader runs at
// once on the actor's idle inline mailbox, with nothing of the link
// pending, is finished when its Receive returns (deliveredDirect).
type ackCounter struct {
	id string
	mu sync.Mutex
	ep *mailbox.Endpoint // the stream being counted (guarded by mu)
	// seq numbers the messages of ep delivered to the actor; pending holds
	// those not finished, in order (both guarded by mu; see finish.go).
	seq     uint64
	pending finishQueue
	// directSeq is the message of directEP the reader runs at once
	// (deliveredDirect), until its Receive has returned or failed; 0: none
	// (both guarded by mu). The reader acknowledges it either way
	// (inlineMailbox.invokeOne): Link.Finished never does.
	directSeq uint64
	directEP  *mailbox.Endpoint
}

// AckFor makes the link count the user messages it delivers from its peer to
// the local actor id, and returns the receiver middleware to put on that
// actor's props (pa.WithReceiverMiddleware): it acknowledges each message to
// the peer once the actor has finished it. The peer retains them meanwhile
// (Link.Retain with the same id). Call it before the first Connect.
//
// Put it first, outermost (PrependReceiverMiddleware): it must see the
// envelope the link delivered, whatever the actor's other middlewares do
// with it.
func (l *Link) AckFor(id string) pa.ReceiverMiddleware {
	a := &ackCounter{id: id}
	l.ackc.Store(a)
	return func(next pa.ReceiverFunc) pa.ReceiverFunc {
		return func(c pa.ReceiverContext, env *pa.MessageEnvelope) {
			env = linkEnvelope(env)
			next(c, env)
			a.finished(env)
		}
	}
}

// Finished marks a message of the actor given to AckFor as finished although
// its Receive did not return: it failed (panicked). Pass the message a
// supervisor strategy got. Other messages are ignored. (A message the
// link's reader ran at once, without an envelope of its own, is
// acknowledged as it fails, before its supervisor hears of it.)
func (l *Link) Finished(message any) {
	a := l.ackc.Load()
	if a == nil {
		return
	}
	if env, ok := UnwrapFailed(message).(*pa.MessageEnvelope); ok {
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
	a.pending.push(finishEntry{env: menv, seq: a.seq})
	a.mu.Unlock()
}

// deliveredDirect numbers a message of ep that the reader is about to run
// at once on the actor's idle mailbox, and reports true when nothing before
// it is pending: then it is finished when its Receive returns, and needs
// neither an envelope of its own nor a place in pending. The caller
// acknowledges seq then (inlineMailbox.runClaimed).
func (a *ackCounter) deliveredDirect(ep *mailbox.Endpoint) (seq uint64, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.resetLocked(ep)
	if a.pending.len() != 0 {
		return 0, false
	}
	a.seq++
	a.directSeq, a.directEP = a.seq, ep
	return a.seq, true
}

// finishedDirect acknowledges seq of ep, a message deliveredDirect
// numbered, once its Receive has returned or failed, and the undecodable
// messages that arrived behind it meanwhile.
func (a *ackCounter) finishedDirect(ep *mailbox.Endpoint, seq uint64) {
	a.mu.Lock()
	if a.directSeq == seq && a.directEP == ep {
		a.directSeq, a.directEP = 0, nil
		if a.ep == ep {
			if last, ok := a.pending.popUndecodable(); ok {
				seq = last
			}
		}
	}
	a.mu.Unlock()
	ep.Acknowledge(seq)
}

// undeliverable numbers a message of ep that did not decode, or that the
// node refused (a dead letter either way): it is finished
// as it arrives, unless a message before it is not (pending, or the one the
// reader runs at once): the acknowledgement is cumulative.
func (a *ackCounter) undeliverable(ep *mailbox.Endpoint) {
	a.mu.Lock()
	a.resetLocked(ep)
	a.seq++
	if a.pending.len() == 0 && a.directEP != ep {
		seq := a.seq
		a.mu.Unlock()
		ep.Acknowledge(seq)
		return
	}
	a.pending.push(finishEntry{seq: a.seq})
	a.mu.Unlock()
}

// resetLocked starts counting a new stream.
func (a *ackCounter) resetLocked(ep *mailbox.Endpoint) {
	if a.ep != ep {
		a.ep, a.seq = ep, 0
		a.pending.reset()
	}
}

// finished acknowledges env and everything delivered before it, and the
// undecodable messages that follow it.
func (a *ackCounter) finished(env *pa.MessageEnvelope) bool {
	if a.pending.npend.Load() == 0 {
		return false // the actor's own traffic: nothing of the link is pending
	}
	a.mu.Lock()
	last, _, ok := a.pending.finish(env)
	ep := a.ep
	a.mu.Unlock()
	if ok {
		ep.Acknowledge(last.seq)
	}
	return ok
}
