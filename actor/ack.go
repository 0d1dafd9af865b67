package actor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// ackCounter is the receiving side of retention (see retention): it counts
// the user messages a link delivers from its peer to one local actor, and
// acknowledges, cumulatively, those the actor has finished. A message counts
// as finished when the actor's Receive returns for it (a stashed message
// too), or when its supervisor marks its failure finished (Link.Finished,
// Link.NotifyFailed): a failing message is lost, as in protoactor, once the
// peer has been told; until then the peer keeps it.
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
	// supervisor's Finished (or NotifyFailed) to be acknowledged;
	// directMsg is the value its supervisor gets, to tell it from another
	// actor's failure (all guarded by mu).
	directFailed bool
	directMsg    any
	// holding: a failure's notice is on its way (NotifyFailed): nothing is
	// acknowledged alone until it is queued, not even a message that did
	// not decode (guarded by mu).
	holding bool
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
// supervisor strategy got (it is recognised by that value); other messages
// are ignored.
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
	if ep, n, ok := a.takeFailed(message); ok {
		ep.Acknowledge(n)
		a.release(ep)
	}
}

// NotifyFailed sends notice to pid over this link, a user message, and
// marks failed (the message a supervisor strategy got) finished as Finished
// does, with its acknowledgement behind notice in the same batch (one
// write, unless the pipe takes it in parts); no other acknowledgement of
// the stream leaves before notice is queued. Should this process die before
// notice leaves, the peer gets neither: it keeps the failed message (and
// redelivers it, if it redelivers) rather than forgetting a message whose
// failure it was never told of.
//
// The notice goes straight onto the failed message's stream, after what was
// held for the link (waiting for that, and for room, up to
// WithSendTimeout), not through the link's usual path: it must not be a
// request, a watch, or a message the link retains. If it cannot be queued
// (the stream ended, ErrLinkGone; no room in time; a notice too large) the
// error says why and nothing more is acknowledged on that stream: the peer
// keeps the failed message, and the caller decides (procnode's child exits).
// When failed is not a counted message, notice is sent the usual way.
func (l *Link) NotifyFailed(pid *pa.PID, notice, failed any) error {
	a := l.ackc.Load()
	var ep *mailbox.Endpoint
	var n uint64
	ok := false
	if a != nil {
		ep, n, ok = a.takeFailed(failed)
	}
	if !ok {
		l.SendUserMessage(pid, notice)
		return nil
	}
	env := userEnvelope(pid, notice)
	if c := l.caps.Load(); c != nil {
		c.grantOutgoing(&env)
	}
	if err := l.sendAcknowledging(ep, &env, n); err != nil {
		return fmt.Errorf("failure notice to %s: %w", pid, err)
	}
	a.release(ep)
	return nil
}

// sendAcknowledging queues env on ep with the acknowledgement of n behind
// it, once the link has flushed what it held (a send would queue behind
// that; the count must not go before env), within WithSendTimeout.
func (l *Link) sendAcknowledging(ep *mailbox.Endpoint, env *mailbox.Envelope, n uint64) error {
	deadline := time.Now().Add(l.node.cfg.sendTimeout)
	for {
		l.mu.Lock()
		up, flushing := l.state == linkUp && l.ep == ep, l.flushing
		l.mu.Unlock()
		if !up {
			return fmt.Errorf("%w: the failed message's stream ended", ErrLinkGone)
		}
		if !flushing {
			break
		}
		// Flushing lasts as long as the held messages take to queue, which
		// Connect does right after the handshake; nothing signals its end,
		// and this is the rare path of a failure in that window.
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: held messages still flushing after %v", mailbox.ErrQueueFull, l.node.cfg.sendTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	if f := beforeNotice.Load(); f != nil {
		(*f)(l)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return ep.SendAcknowledging(ctx, env, n)
}

// beforeNotice, when set (by a test), runs as a failure's notice is about
// to be queued on link l, while every other acknowledgement is held back.
var beforeNotice atomic.Pointer[func(l *Link)]

// takeFailed marks message, a failed one, finished and returns the count
// that acknowledges it on ep; it holds back every other acknowledgement of
// ep until release. message is a delivered envelope's, or the failed message
// the reader ran at once (failedDirect), recognised by its value.
func (a *ackCounter) takeFailed(message any) (ep *mailbox.Endpoint, n uint64, ok bool) {
	if env, isEnv := UnwrapFailed(message).(*pa.MessageEnvelope); isEnv && a.pending.npend.Load() != 0 {
		a.mu.Lock()
		last, _, found := a.pending.finish(env)
		ep = a.ep
		if found {
			a.holding = true
		}
		a.mu.Unlock()
		if found {
			return ep, last.seq, true
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.directFailed || !sameValue(a.directMsg, message) {
		return nil, 0, false
	}
	ep, n, ok = a.endDirectLocked()
	a.holding = true
	return ep, n, ok
}

// release ends the hold of takeFailed, and acknowledges the undecodable
// messages that arrived behind the failed one meanwhile.
func (a *ackCounter) release(ep *mailbox.Endpoint) {
	a.mu.Lock()
	a.holding = false
	var last uint64
	ok := false
	if a.ep == ep && a.directEP != ep {
		last, ok = a.pending.popUndecodable()
	}
	a.mu.Unlock()
	if ok {
		ep.Acknowledge(last)
	}
}

// sameValue reports whether a and b are the same interface value, type and
// data words: a failed message is recognised by the value its supervisor
// got, without comparing contents (a []byte is not comparable).
func sameValue(a, b any) bool {
	x, y := (*[2]unsafe.Pointer)(unsafe.Pointer(&a)), (*[2]unsafe.Pointer)(unsafe.Pointer(&b))
	return *x == *y
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
	a.directSeq, a.directEP, a.directFailed, a.directMsg = a.seq, ep, false, nil
	return a.seq, true
}

// finishedDirect acknowledges seq of ep, a message deliveredDirect
// numbered, once its Receive has returned (or it was dead-lettered), and
// the undecodable messages that arrived behind it meanwhile.
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
func (a *ackCounter) failedDirect(ep *mailbox.Endpoint, seq uint64, msg any) {
	a.mu.Lock()
	if a.directSeq == seq && a.directEP == ep {
		a.directFailed, a.directMsg = true, msg
	}
	a.mu.Unlock()
}

// endDirectLocked ends the message the reader ran at once, and returns the
// count that acknowledges it and the undecodable messages behind it.
func (a *ackCounter) endDirectLocked() (ep *mailbox.Endpoint, n uint64, ok bool) {
	ep, n = a.directEP, a.directSeq
	a.directSeq, a.directEP, a.directFailed, a.directMsg = 0, nil, false, nil
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
	if a.pending.len() == 0 && a.directEP != ep && !a.holding {
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
		a.ep, a.seq, a.holding = ep, 0, false
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
	if ok && a.directFailed && a.directEP == ep && last.seq > a.directSeq {
		// A failure no supervisor marked finished: this acknowledgement
		// covers it (cumulative), and what arrives undecodable next need
		// not wait behind it.
		a.directSeq, a.directEP, a.directFailed, a.directMsg = 0, nil, false, nil
	}
	a.mu.Unlock()
	if ok {
		ep.Acknowledge(last.seq)
	}
	return ok
}
