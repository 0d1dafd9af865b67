package actor

import (
	"context"
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
	// (deliveredDirect), until its Receive has returned, or, when it
	// failed, until its supervisor marks it finished; 0: none (both
	// guarded by mu). The reader acknowledges one that returned
	// (inlineMailbox.invokeOne); Link.Finished or NotifyFailed one that
	// failed.
	directSeq uint64
	directEP  *mailbox.Endpoint
	// directFailed: the message directSeq failed, and waits for its
	// supervisor's Finished (or NotifyFailed) to be acknowledged (guarded
	// by mu).
	directFailed bool
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
// supervisor strategy got. Other messages are ignored.
//
// A failed message is acknowledged only by its supervisor (Finished or
// NotifyFailed), or by a later message finishing: until then the peer
// keeps it. A supervisor that tells the peer of the failure should use
// NotifyFailed, so that the peer never learns the message finished without
// learning why.
func (l *Link) Finished(message any) {
	a := l.ackc.Load()
	if a == nil {
		return
	}
	if ep, n, ok := a.finishFailed(message); ok {
		ep.Acknowledge(n)
	}
}

// NotifyFailed sends notice to pid, a user message on this link, and marks
// failed (the message a supervisor strategy got) finished as Finished does,
// with its acknowledgement in the same write as notice or a later one,
// never before it. Should this process die in between, the peer gets
// neither: it keeps the failed message (and redelivers it, if it
// redelivers), rather than forgetting a message whose failure it was never
// told of.
func (l *Link) NotifyFailed(pid *pa.PID, notice, failed any) {
	a := l.ackc.Load()
	if a == nil {
		l.SendUserMessage(pid, notice)
		return
	}
	ep, n, ok := a.finishFailed(failed)
	if !ok {
		l.SendUserMessage(pid, notice)
		return
	}
	env := userEnvelope(pid, notice)
	l.mu.Lock()
	direct := l.state == linkUp && !l.flushing && l.ep == ep
	l.mu.Unlock()
	if direct {
		if c := l.caps.Load(); c != nil {
			c.grantOutgoing(&env)
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.node.cfg.sendTimeout)
		err := ep.SendAcknowledging(ctx, &env, n)
		cancel()
		if err == nil {
			return
		}
		l.node.log.Debug().Err(err).Str("peer", l.addr).Msg("failure notice not sent with its acknowledgement")
	}
	// The failed message's stream is not the link's (it ended), or refused
	// the notice: the notice goes the usual way, the count on its stream.
	l.send(&env)
	ep.Acknowledge(n)
}

// finishFailed marks the failed message finished and returns the count to
// acknowledge on ep: message is a delivered envelope's, or, when it is not,
// the failed message the reader ran at once (failedDirect) is.
func (a *ackCounter) finishFailed(message any) (ep *mailbox.Endpoint, n uint64, ok bool) {
	if env, isEnv := UnwrapFailed(message).(*pa.MessageEnvelope); isEnv && a.pending.npend.Load() != 0 {
		a.mu.Lock()
		last, _, found := a.pending.finish(env)
		ep = a.ep
		a.mu.Unlock()
		if found {
			return ep, last.seq, true
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.directFailed {
		return nil, 0, false
	}
	return a.endDirectLocked()
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
	// A failed message no supervisor marked finished is finished by this
	// one's end (cumulative): it no longer waits.
	a.directSeq, a.directEP, a.directFailed = a.seq, ep, false
	return a.seq, true
}

// finishedDirect acknowledges seq of ep, a message deliveredDirect
// numbered, once its Receive has returned or failed, and the undecodable
// messages that arrived behind it meanwhile.
func (a *ackCounter) finishedDirect(ep *mailbox.Endpoint, seq uint64) {
	a.mu.Lock()
	if a.directSeq == seq && a.directEP == ep {
		ep, seq, _ = a.endDirectLocked()
	}
	a.mu.Unlock()
	ep.Acknowledge(seq)
}

// failedDirect records that seq of ep, a message deliveredDirect numbered,
// failed: it is acknowledged when its supervisor marks it finished
// (finishFailed), not before, so that the peer hears of the failure no
// later than of the message's end (Link.NotifyFailed).
func (a *ackCounter) failedDirect(ep *mailbox.Endpoint, seq uint64) {
	a.mu.Lock()
	if a.directSeq == seq && a.directEP == ep {
		a.directFailed = true
	}
	a.mu.Unlock()
}

// endDirectLocked ends the message the reader ran at once, and returns the
// count that acknowledges it and the undecodable messages behind it.
func (a *ackCounter) endDirectLocked() (ep *mailbox.Endpoint, n uint64, ok bool) {
	ep, n = a.directEP, a.directSeq
	a.directSeq, a.directEP, a.directFailed = 0, nil, false
	if a.ep == ep {
		if last, found := a.pending.popUndecodable(); found {
			n = last
		}
	}
	return ep, n, true
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
