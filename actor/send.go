package actor

import (
	"context"
	"errors"
	"fmt"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// SendUserMessage implements actor.Process: the message goes on the user
// lane, with the sender and header of a MessageEnvelope.
func (l *Link) SendUserMessage(pid *pa.PID, message any) {
	env := userEnvelope(pid, message)
	l.send(&env)
}

// userEnvelope unwraps protoactor's MessageEnvelope into a user-lane envelope.
func userEnvelope(pid *pa.PID, message any) mailbox.Envelope {
	env := mailbox.Envelope{Lane: mailbox.LaneUser, Target: pid, Message: message}
	if e, ok := message.(*pa.MessageEnvelope); ok {
		env.Message, env.Sender = e.Message, e.Sender
		if len(e.Header) > 0 {
			env.Header = e.Header
		}
	}
	return env
}

// SendSystemMessage implements actor.Process: the message goes on the
// system lane, which never blocks. Watches are recorded so that a loss of
// the link can answer them.
func (l *Link) SendSystemMessage(pid *pa.PID, message any) {
	env := mailbox.Envelope{Lane: mailbox.LaneSystem, Target: pid, Message: message}
	l.send(&env)
}

// Stop implements actor.Process: a Stop on the system lane.
func (l *Link) Stop(pid *pa.PID) { l.SendSystemMessage(pid, &pa.Stop{}) }

func (l *Link) send(env *mailbox.Envelope) {
	if c := l.caps.Load(); c != nil {
		c.grantOutgoing(env)
	}
	if l.node.lent.Load() > 0 && env.Lane == mailbox.LaneUser && isFuture(env.Sender) {
		// A request, perhaps from an actor run inline on a link's reader
		// (inline.go), which will wait for the answer: the link must go on
		// reading meanwhile.
		mailbox.ReleaseReader()
	}
	if l.npaused.Load() > 0 && !l.awaitCredit(env) {
		return
	}
	size := -1 // encoded size, once needed to hold the message
	for {
		l.mu.Lock()
		switch {
		case l.state == linkUp && !l.flushing:
			ep, h := l.ep, l.h
			retained := l.retainsLocked(env)
			l.trackLocked(env)
			full := false
			if retained && !l.ret.fullLocked(1) {
				// The common case in one lock section: queued, numbered and
				// retained in order (mu orders the senders that get here).
				seq, size, err := ep.SendNumbered(noWaitCtx, env)
				if err == nil {
					l.retainLocked(env, seq, size)
					l.mu.Unlock()
					l.sent(ep, h, env)
					return
				}
				l.mu.Unlock()
				if !errors.Is(err, mailbox.ErrQueueFull) {
					l.sendFailed(ep, env, err, nil)
					return
				}
				full = true // sendOn waits for room
			} else {
				l.mu.Unlock()
			}
			if err := l.sendOn(ep, env, retained, full); err != nil {
				l.sendFailed(ep, env, err, nil)
				return
			}
			l.sent(ep, h, env)
			return
		case l.state == linkGone:
			l.mu.Unlock()
			// PIDs cache the Link they resolved to: if the address has a new
			// link now, the message takes it.
			if nl, ok := l.node.linkTo(l.addr); ok && nl != l {
				nl.send(env)
				return
			}
			l.deadLetter(env, ErrLinkGone)
			return
		case size >= 0:
			// Down, or up and flushing what was held before: queue behind it,
			// within the hold bounds (a message larger than the byte bound
			// goes alone into an empty queue).
			if len(l.held) >= l.node.cfg.holdLimit || (l.heldBytes > 0 && l.heldBytes+size > l.node.cfg.holdBytes) {
				n, b := len(l.held), l.heldBytes
				l.mu.Unlock()
				l.deadLetter(env, fmt.Errorf("%w: %d messages, %d bytes", ErrHeldFull, n, b))
				return
			}
			l.trackLocked(env)
			l.held = append(l.held, heldMsg{env: *env, size: size})
			l.heldBytes += size
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		// Encoding takes time: not under mu, which the reader needs.
		n, err := mailbox.EncodedSize(env)
		if err != nil {
			l.deadLetter(env, err) // it could never be sent: say so now
			return
		}
		size = n
	}
}

// sent follows a message that went out on ep: a request whose future is
// on this node may read its answer itself (awaitReply).
func (l *Link) sent(ep *mailbox.Endpoint, h *linkHandler, env *mailbox.Envelope) {
	if env.Lane == mailbox.LaneUser && isFuture(env.Sender) && env.Sender.Address == l.node.address {
		l.awaitReply(ep, h, env.Sender.Id)
	}
}

// awaitReply lets the goroutine that has just sent a request read the
// answer itself, when the link's reader is in standby (it has just
// delivered an answer: mailbox.Endpoint.Standby): the future is answered
// before RequestFuture returns, and Result does not wait. No goroutine then
// wakes another, which on a VM costs as much as the pipe's round trip. The
// requester delivers only answers to
// futures (linkHandler.Borrowable), and for at most one to two milliseconds
// (two ticks of mailbox's borrowing ticker), so that a request from an actor does not
// hold its Receive for long.
func (l *Link) awaitReply(ep *mailbox.Endpoint, h *linkHandler, future string) {
	if !ep.Borrow() {
		return
	}
	// The requester is the reader now: h is its to set.
	h.awaiting, h.answered = future, false
	ep.ReadBorrowed(h.replied)
}

// noWait is the context of a first send attempt: a full user lane fails at
// once (ErrQueueFull) instead of waiting, so the common send needs no timer;
// only a send that meets a full lane pays for one (sendOn).
type noWait struct{ context.Context }

var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (noWait) Done() <-chan struct{} { return closedDone }
func (noWait) Err() error            { return context.DeadlineExceeded }

var noWaitCtx context.Context = noWait{context.Background()}

// sendOn sends env on ep: a system message at once, a user message waiting
// for room on a full lane (WithSendTimeout), a retained one numbered and kept
// (sendRetained). full says the lane was found full a moment ago: the first
// attempt that does not wait is skipped.
func (l *Link) sendOn(ep *mailbox.Endpoint, env *mailbox.Envelope, retained, full bool) error {
	if env.Lane == mailbox.LaneSystem {
		return ep.Send(context.Background(), env)
	}
	if retained {
		return l.sendRetained(ep, env, full)
	}
	if !full {
		err := ep.Send(noWaitCtx, env)
		if err == nil || !errors.Is(err, mailbox.ErrQueueFull) {
			return err
		}
	}
	// Nothing was queued: wait for room, bounded by WithSendTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), l.node.cfg.sendTimeout)
	err := ep.Send(ctx, env)
	cancel()
	return err
}

// linkEnded reports whether a Send error means the stream is ending (the
// message was not queued because of the link, not because of the message):
// mailbox wraps every such error in ErrClosed.
func linkEnded(err error) bool { return errors.Is(err, mailbox.ErrClosed) }

// sendFailed handles a message that stream ep refused; from is its place in
// the held queue when it came from there (flush), nil otherwise. A message
// the stream refused for itself is a dead letter with the reason. If the
// stream is ending and the link will come back, the message is held (in
// front when it came from the held queue); if lost has already run for ep,
// it answered what the message tracked (a request's future, a watch) and the
// message is dropped, unless lost kept the request for the next stream
// (keptLocked); a message from the held queue goes back in its place while
// the link is down (requeueLocked); any other message goes as the link's
// state now says.
func (l *Link) sendFailed(ep *mailbox.Endpoint, env *mailbox.Envelope, err error, from *heldMsg) {
	front := from != nil
	if !linkEnded(err) {
		l.mu.Lock()
		l.untrackLocked(env)
		l.mu.Unlock()
		l.deadLetter(env, err)
		return
	}
	l.mu.Lock()
	if l.ep == ep {
		// lost has not run yet for the failing stream.
		if l.reconnect && (front || len(l.held) < l.node.cfg.holdLimit) {
			// Still tracked: lost keeps what held messages track. Its size is
			// not counted: it was admitted once already, or is being sent.
			if front {
				l.held = append([]heldMsg{{env: *env, seq: from.seq}}, l.held...)
			} else {
				l.held = append(l.held, heldMsg{env: *env})
			}
			l.mu.Unlock()
			return
		}
		l.untrackLocked(env)
		l.mu.Unlock()
		l.deadLetter(env, fmt.Errorf("%w: %w", ErrLinkGone, err))
		return
	}
	if tracked(env) && !l.keptLocked(env) {
		l.mu.Unlock()
		return // lost answered it: a DeadLetterResponse, or Terminated{AddressTerminated}
	}
	if front && l.state == linkDown {
		l.requeueLocked(heldMsg{env: *env, seq: from.seq})
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.send(env)
}

// requeueLocked puts m back in the held queue, a held message that the
// flush of a stream since lost was sending: behind what lost put in front
// (that stream's unacknowledged messages, all flushed before m) and before
// what was held behind it, as a redelivered message among the redelivered
// in order of their number. Its size is not counted (see sendFailed).
func (l *Link) requeueLocked(m heldMsg) {
	if m.seq != 0 {
		l.insertRedeliveredLocked(m)
		return
	}
	i := 0
	for i < len(l.held) && l.held[i].seq != 0 {
		i++
	}
	l.held = append(l.held, heldMsg{})
	copy(l.held[i+1:], l.held[i:])
	l.held[i] = m
}

// keptLocked reports whether env is a request that lost kept waiting for
// the link to come back (one to the retained actor) instead of answering
// it: it must still go out.
func (l *Link) keptLocked(env *mailbox.Envelope) bool {
	if env.Lane != mailbox.LaneUser || !isFuture(env.Sender) || l.state == linkGone {
		return false
	}
	_, ok := l.inflight[keyOf(env.Sender)]
	return ok
}
