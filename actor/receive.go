package actor

import (
	"fmt"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// linkHandler receives one endpoint's traffic for its link, on the
// goroutine holding the endpoint's reader role; Closed runs where the
// endpoint finishes (see mailbox.Handler).
type linkHandler struct {
	link *Link
	ep   *mailbox.Endpoint
	// The last target found to have an inline mailbox (inlineTarget).
	// Used by the reader only.
	lastTarget *pa.PID
	lastInline *inlineMailbox
	// The future a requester that borrowed the reader role waits for
	// (awaitReply), and whether its answer was delivered. Used by the
	// reader only.
	awaiting string
	answered bool
}

// replied reports whether the answer a borrowing requester waits for has
// been delivered.
func (h *linkHandler) replied() bool { return h.answered }

// Borrowable implements mailbox.BorrowHandler: a requester that borrowed
// the reader role delivers answers to futures of this node, which wake at
// most their own waiter, on a trusted link.
func (h *linkHandler) Borrowable(env *mailbox.Envelope) bool {
	t := env.Target
	return env.Lane == mailbox.LaneUser && t != nil && isFuture(t) && t.Address == h.link.node.address && h.link.caps.Load() == nil
}

// Deliver puts a message straight into its target's mailbox (or relays it to
// the next link): protoactor's Root.Send with a MessageEnvelope when there is
// a sender or a header, so Respond, Forward and headers work across links.
func (h *linkHandler) Deliver(env *mailbox.Envelope) {
	l := h.link
	target := env.Target
	if c, ok := env.Message.(*inboxCredit); ok && target == nil && env.Lane == mailbox.LaneSystem {
		l.credit(c)
		return
	}
	if target == nil {
		l.node.log.Warn().Str("peer", l.addr).Str("type", fmt.Sprintf("%T", env.Message)).Msg("dead letter: message without target")
		return
	}
	sys := l.node.system
	if err := l.node.check(l, env); err != nil {
		h.refuse(env, err)
		return
	}
	if c := l.caps.Load(); c != nil {
		if err := l.untrustedCheck(c, env); err != nil {
			h.refuse(env, err)
			return
		}
	}
	if env.Lane == mailbox.LaneSystem {
		l.deliverSystem(env)
		return
	}
	if target.Id == activatorName && target.Address == l.node.address && l.IsChild() {
		l.childSpawn(env)
		return
	}
	if l.crossSpawn(env) {
		if req, ok := env.Message.(*spawnRequest); ok {
			l.refuseSpawn(env, req, "a child may not spawn in another child's subtree")
		} else {
			l.refuse(env, fmt.Errorf("%w: not a spawn request", ErrRefused))
		}
		return
	}
	future := isFuture(target)
	if future {
		l.mu.Lock()
		delete(l.inflight, keyOf(target))
		l.mu.Unlock()
		if target.Id == h.awaiting {
			h.answered = true
		}
		// Its requester may send again at once: let it read its answer.
		// Only where a borrower may deliver it (Borrowable): a requester
		// on this node, on a trusted link. An answer relayed to another
		// node's future has no requester here; on an untrusted link the
		// borrower would hand the answer back to the reader. Either way a
		// standby would hold what follows on the link until the borrowing
		// ticker ended it.
		if h.Borrowable(env) {
			h.ep.Standby()
		}
	}
	var ib *inbox // a future has none
	if !future {
		ib = l.node.inboxOf(target)
	}
	var msg any
	if ackc := l.ackc.Load(); ackc != nil && ackc.counts(env, l.node.address) {
		if h.deliverDirect(ackc, env) {
			return
		}
		// An envelope of its own: the actor's middleware recognises it.
		menv := &pa.MessageEnvelope{Header: env.Header, Message: env.Message, Sender: env.Sender}
		ackc.delivered(h.ep, menv)
		msg = counted(menv)
	} else if ib != nil {
		menv, ok := l.deliverCounted(ib, env)
		if !ok {
			return
		}
		msg = counted(menv)
	} else {
		msg = env.Message
		if env.Sender != nil || len(env.Header) > 0 {
			msg = &pa.MessageEnvelope{Header: env.Header, Message: msg, Sender: env.Sender}
		}
	}
	if future {
		sys.Root.Send(target, msg) // a future has no mailbox
		return
	}
	if mb := h.inlineTarget(target); mb != nil {
		mb.deliverInline(msg, h.ep) // last: the reader role may move during it
		return
	}
	if q, ok := msg.(quietEnvelope); ok {
		// Delivered to the process this lookup found: looked up again by a
		// send, an actor gone in between would take the wrapper to
		// protoactor's dead letters, which must see the sender (a
		// requester is answered at once).
		if p, live := sys.ProcessRegistry.GetLocal(target.Id); live {
			p.SendUserMessage(target, q)
		} else {
			sys.DeadLetter.SendUserMessage(target, q.MessageEnvelope)
		}
		return
	}
	sys.Root.Send(target, msg)
}

// quietEnvelope is the envelope of its own (counted) that a link delivers
// a message in when the message does not influence its actor's receive
// timeout (pa.NotInfluenceReceiveTimeout). protoactor asks that of what the
// mailbox hands the actor, not of the message inside an envelope: a
// *pa.MessageEnvelope would push an armed timeout back, where the bare
// message, as one process delivers it, does not. The link's receiver
// middleware (Link.AckFor, the inbox's), outermost, takes the envelope out
// before anything else sees it.
type quietEnvelope struct{ *pa.MessageEnvelope }

// NotInfluenceReceiveTimeout implements pa.NotInfluenceReceiveTimeout.
func (quietEnvelope) NotInfluenceReceiveTimeout() {}

// counted returns what the link posts to the actor for menv, an envelope
// of its own.
func counted(menv *pa.MessageEnvelope) any {
	if _, ok := menv.Message.(pa.NotInfluenceReceiveTimeout); ok {
		return quietEnvelope{menv}
	}
	return menv
}

// linkEnvelope returns the envelope of env's message when it is a
// quietEnvelope (protoactor wrapped it in one of its own on its way to the
// receiver middlewares), otherwise env.
func linkEnvelope(env *pa.MessageEnvelope) *pa.MessageEnvelope {
	if q, ok := env.Message.(quietEnvelope); ok {
		return q.MessageEnvelope
	}
	return env
}

// UnwrapFailed returns the failing message a supervisor strategy got in the
// form protoactor gives it: a message that does not influence the receive
// timeout and came over a link is in an envelope of the link's (see
// quietEnvelope), unwrapped here to its *pa.MessageEnvelope. Any other
// message is returned as it is.
func UnwrapFailed(message any) any {
	if q, ok := message.(quietEnvelope); ok {
		return q.MessageEnvelope
	}
	return message
}

// deliverDirect runs a message for an actor whose finished messages the
// link counts on the reader at once, when the actor's mailbox is idle and
// nothing of the link is pending: it is finished when its Receive returns,
// so it needs no envelope of its own to be recognised by (the common case
// of a stream to a child's root actor). It reports false when it delivered
// nothing.
func (h *linkHandler) deliverDirect(ackc *ackCounter, env *mailbox.Envelope) bool {
	if ackc.pending.npend.Load() != 0 {
		return false
	}
	mb := h.inlineTarget(env.Target)
	if mb == nil {
		return false
	}
	claimed, direct := mb.claim()
	if !claimed {
		return false
	}
	if direct {
		if seq, ok := ackc.deliveredDirect(h.ep); ok {
			var msg any = env.Message
			if env.Sender != nil || len(env.Header) > 0 {
				msg = &pa.MessageEnvelope{Header: env.Header, Message: msg, Sender: env.Sender}
			}
			mb.runClaimed(msg, h.ep, true, ackc, seq)
			return true
		}
	}
	// Something waits before it: counted with an envelope of its own.
	menv := &pa.MessageEnvelope{Header: env.Header, Message: env.Message, Sender: env.Sender}
	ackc.delivered(h.ep, menv)
	mb.runClaimed(counted(menv), h.ep, direct, nil, 0)
	return true
}

// refuse makes a message from the peer that the node's policy refuses a
// dead letter (Link.refuse). One the link counts for retention is finished
// as it arrives, as one that does not decode is: the peer numbered it, and
// the acknowledgements of what follows it must count it.
func (h *linkHandler) refuse(env *mailbox.Envelope, reason error) {
	l := h.link
	if ackc := l.ackc.Load(); ackc != nil && ackc.counts(env, l.node.address) {
		ackc.undeliverable(h.ep)
	}
	l.refuse(env, reason)
}

// Acked implements mailbox.AckHandler: the peer finished what the link
// retained, up to n.
func (h *linkHandler) Acked(n uint64) { h.link.acked(h.ep, n) }

// deliverSystem hands a system message from the peer to its target. Only
// the system messages protoactor itself sends to a PID of another node are
// accepted (Watch, Unwatch, Terminated, Stop), and only with their PIDs set:
// anything else would reach actor internals (a nil Watcher panics inside the
// target's context), so a peer's bytes could restart any actor here. A
// Watch or Unwatch must name a watcher behind the link: another would
// cancel the watch an actor here holds, or send it a Terminated it never
// asked for.
func (l *Link) deliverSystem(env *mailbox.Envelope) {
	sys := l.node.system
	target, msg := env.Target, env.Message
	switch m := msg.(type) {
	case *pa.Watch:
		if m.Watcher == nil {
			l.refuseSystem(target, msg)
			return
		}
		if !l.behind(m.Watcher) {
			l.refuse(env, fmt.Errorf("%w: Watch for the watcher %s, not behind %s", ErrRefused, pidString(m.Watcher), l.addr))
			return
		}
		l.mu.Lock()
		if l.nWatchedBy >= l.node.cfg.watchLimit && !hasWatch(l.watchedBy, keyOf(target), keyOf(m.Watcher)) {
			n := l.nWatchedBy
			l.mu.Unlock()
			l.refuse(env, fmt.Errorf("%w: %d watches came through this link (WithWatchLimit)", ErrRefused, n))
			return
		}
		if addWatch(l.watchedBy, keyOf(target), m.Watcher) {
			l.nWatchedBy++
		}
		l.mu.Unlock()
	case *pa.Unwatch:
		if m.Watcher == nil {
			l.refuseSystem(target, msg)
			return
		}
		if !l.behind(m.Watcher) {
			l.refuse(env, fmt.Errorf("%w: Unwatch for the watcher %s, not behind %s", ErrRefused, pidString(m.Watcher), l.addr))
			return
		}
		l.mu.Lock()
		if dropWatch(l.watchedBy, keyOf(target), keyOf(m.Watcher)) {
			l.nWatchedBy--
		}
		l.mu.Unlock()
	case *pa.Terminated:
		if m.Who == nil {
			l.refuseSystem(target, msg)
			return
		}
		if l.node.intercepted(m.Who) {
			l.refuse(env, fmt.Errorf("%w: Terminated about %s, whose end this node learns itself", ErrRefused, pidString(m.Who)))
			return
		}
		l.mu.Lock()
		held := dropWatch(l.watches, keyOf(m.Who), keyOf(target))
		l.mu.Unlock()
		if !held {
			l.refuse(env, fmt.Errorf("%w: Terminated about %s for a watch %s does not hold", ErrRefused, pidString(m.Who), l.addr))
			return
		}
	case *pa.Stop:
		p, _ := sys.ProcessRegistry.Get(target)
		p.Stop(target)
		return
	default:
		l.refuseSystem(target, msg)
		return
	}
	sendSystem(sys, target, msg)
}

// behind reports whether pid is an actor the link's peer speaks for: one
// whose messages leave this node through l (the peer's subtree, or for a
// parent link everything outside this node's). A Watch or Unwatch from the
// peer names such a watcher: protoactor's actors watch for themselves.
func (l *Link) behind(pid *pa.PID) bool { return l.node.routesVia(pid.Address, l) }

// refuseSystem accounts for a system message from the peer that is not one
// protoactor sends across nodes, or lacks its PIDs: a log line and a dead
// letter, never a delivery.
func (l *Link) refuseSystem(target *pa.PID, msg any) {
	l.counts.deadLetters.Add(1)
	l.node.refusedSystem(l.addr, target, msg)
}

// DeadLetter handles a message that arrived but does not decode: a log line
// with the reason and a DeadLetterEvent (which answers a request).
func (h *linkHandler) DeadLetter(env *mailbox.Envelope, reason error) {
	l := h.link
	if ackc := l.ackc.Load(); ackc != nil && ackc.counts(env, l.node.address) {
		ackc.undeliverable(h.ep)
	}
	l.node.undecodable(l.addr, env, reason)
}

func (h *linkHandler) Closed(err error) { h.link.lost(h.ep, err) }
