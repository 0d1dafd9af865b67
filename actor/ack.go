package actor

import (
	"context"
	"fmt"
	"sync"
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
// Link.NotifyFailed): a failing message is lost, as in protoactor; until
// then the peer keeps it.
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
	// held is the stream a failure's notice is on its way on
	// (NotifyFailed), or could not be queued on: no acknowledgement of it
	// leaves meanwhile, not even of a message that did not decode; heldAck
	// is the count that would have. heldFailed and heldN are the failed
	// message and the count that acknowledges it, for another try with a
	// smaller notice (all guarded by mu).
	held       *mailbox.Endpoint
	heldAck    uint64
	heldFailed any
	heldN      uint64
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
// The notice goes straight onto the stream, after what was held for the
// link (waiting for that, and for room, up to WithSendTimeout), not through
// the link's usual path: it must not be a request, a watch, or a message
// the link retains. If it cannot be queued (the stream ended: ErrLinkGone
// or mailbox.ErrClosed; no room in time; mailbox.ErrMessageTooLarge) the
// error says why and nothing more is acknowledged on that stream, unless a
// later NotifyFailed for the same failed message queues its notice (a
// smaller one, say): the peer keeps the failed message meanwhile, and the
// caller decides (procnode's child exits). When failed is not a counted
// message, only the notice is sent; before the link is up, it waits with
// what the link holds.
func (l *Link) NotifyFailed(pid *pa.PID, notice, failed any) error {
	env := userEnvelope(pid, notice)
	a := l.ackc.Load()
	var ep *mailbox.Endpoint
	var n uint64
	ok := false
	if a != nil {
		ep, n, ok = a.takeFailed(failed)
	}
	if !ok {
		l.mu.Lock()
		ep = l.ep
		l.mu.Unlock()
		if ep == nil {
			l.send(&env) // held for the link's first stream
			return nil
		}
	}
	if c := l.caps.Load(); c != nil {
		c.grantOutgoing(&env)
	}
	if err := l.sendAcknowledging(ep, &env, n); err != nil {
		return fmt.Errorf("failure notice to %s: %w", pid, err)
	}
	if ok {
		a.release(ep)
	}
	return nil
}

// sendAcknowledging queues env on ep with the acknowledgement of n (if not
// 0) behind it, once the link has flushed what it held (a send would queue
// behind that; the count must not go before env), within WithSendTimeout.
func (l *Link) sendAcknowledging(ep *mailbox.Endpoint, env *mailbox.Envelope, n uint64) error {
	deadline := time.Now().Add(l.node.cfg.sendTimeout)
	for {
		l.mu.Lock()
		up, flushing := l.state == linkUp && l.ep == ep, l.flushing
		l.mu.Unlock()
		if !up {
			return fmt.Errorf("%w: the stream ended", ErrLinkGone)
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
	if f, ok := beforeNotice.Load(l); ok {
		f.(func())()
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return ep.SendAcknowledging(ctx, env, n)
}

// beforeNotice holds, per link (set by a test), what runs as a failure's
// notice is about to be queued on it, while every other acknowledgement is
// held back.
var beforeNotice sync.Map // *Link → func()

// takeFailed marks message, a failed one, finished and returns the count
// that acknowledges it on ep; it holds back every other acknowledgement of
// ep until release. message is a delivered envelope's, or the failed message
// the reader ran at once (failedDirect), recognised by its value, or the
// one a hold that was not released is about (another try).
func (a *ackCounter) takeFailed(message any) (ep *mailbox.Endpoint, n uint64, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.held != nil && a.held == a.ep && sameValue(a.heldFailed, message):
		return a.held, a.heldN, true
	case a.held != nil:
		return nil, 0, false // one failure's notice at a time
	}
	if env, isEnv := UnwrapFailed(message).(*pa.MessageEnvelope); isEnv && a.pending.npend.Load() != 0 {
		if last, _, found := a.pending.finish(env); found {
			ep, n = a.ep, last.seq
		}
	}
	if ep == nil {
		if !a.directFailed || !sameValue(a.directMsg, message) {
			return nil, 0, false
		}
		ep, n = a.endDirectLocked()
	}
	a.held, a.heldAck, a.heldFailed, a.heldN = ep, 0, message, n
	return ep, n, true
}

// release ends the hold of takeFailed on ep, and acknowledges what was held
// back meanwhile: the undecodable messages that arrived behind the failed
// one, and what finished (only possible once the actor runs again).
func (a *ackCounter) release(ep *mailbox.Endpoint) {
	a.mu.Lock()
	if a.held != ep {
		a.mu.Unlock()
		return
	}
	n := a.heldAck
	a.clearHoldLocked()
	if a.ep == ep && a.directEP != ep {
		if last, ok := a.pending.popUndecodable(); ok {
			n = max(n, last)
		}
	}
	a.mu.Unlock()
	if n != 0 {
		ep.Acknowledge(n)
	}
}

// mayAcknowledgeLocked reports whether n may be acknowledged on ep now;
// when a failure's notice holds ep, it is kept for release instead.
func (a *ackCounter) mayAcknowledgeLocked(ep *mailbox.Endpoint, n uint64) bool {
	if a.held != ep {
		return true
	}
	a.heldAck = max(a.heldAck, n)
	return false
}

// sameValue reports whether a and b are the same interface value, type and
// data words: a failed message is recognised by the value its supervisor
// got, without comparing contents (a []byte is not comparable). Go shares
// the boxed storage of zero-size values and of small integers, so two
// such messages, failing in two actors a strategy supervises, are not told
// apart (procnode's host supervises one actor).
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
	a.clearDirectLocked()
	a.directSeq, a.directEP = a.seq, ep
	return a.seq, true
}

// finishedDirect acknowledges seq of ep, a message deliveredDirect
// numbered, once its Receive has returned (or it was dead-lettered), and
// the undecodable messages that arrived behind it meanwhile.
func (a *ackCounter) finishedDirect(ep *mailbox.Endpoint, seq uint64) {
	a.mu.Lock()
	if a.directSeq == seq && a.directEP == ep {
		ep, seq = a.endDirectLocked()
	}
	now := a.mayAcknowledgeLocked(ep, seq)
	a.mu.Unlock()
	if now {
		ep.Acknowledge(seq)
	}
}

// failedDirect records that seq of ep, a message deliveredDirect numbered,
// failed: it is acknowledged when its supervisor marks it finished
// (takeFailed), not before, so that the peer hears of the failure no
// later than of the message's end (Link.NotifyFailed).
func (a *ackCounter) failedDirect(ep *mailbox.Endpoint, seq uint64, msg any) {
	a.mu.Lock()
	if a.directSeq == seq && a.directEP == ep {
		a.directFailed, a.directMsg = true, msg
	}
	a.mu.Unlock()
}

// clearDirectLocked forgets the message the reader ran at once.
func (a *ackCounter) clearDirectLocked() {
	a.directSeq, a.directEP, a.directFailed, a.directMsg = 0, nil, false, nil
}

// clearHoldLocked ends a failure's hold (takeFailed).
func (a *ackCounter) clearHoldLocked() {
	a.held, a.heldAck, a.heldFailed, a.heldN = nil, 0, nil, 0
}

// endDirectLocked ends the message the reader ran at once, and returns the
// count that acknowledges it and the undecodable messages behind it.
func (a *ackCounter) endDirectLocked() (ep *mailbox.Endpoint, n uint64) {
	ep, n = a.directEP, a.directSeq
	a.clearDirectLocked()
	if a.ep == ep {
		if last, found := a.pending.popUndecodable(); found {
			n = last
		}
	}
	return ep, n
}

// undeliverable numbers a message of ep that did not decode, or that the
// node refused (a dead letter either way): it is finished
// as it arrives, unless a message before it is not (pending, or the one the
// reader runs at once): the acknowledgement is cumulative.
func (a *ackCounter) undeliverable(ep *mailbox.Endpoint) {
	a.mu.Lock()
	a.resetLocked(ep)
	a.seq++
	if a.pending.len() == 0 && a.directEP != ep && a.held != ep {
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
		// A hold is about the stream it was taken on: it ended.
		a.clearHoldLocked()
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
		a.clearDirectLocked()
	}
	now := ok && a.mayAcknowledgeLocked(ep, last.seq)
	a.mu.Unlock()
	if now {
		ep.Acknowledge(last.seq)
	}
	return ok
}
