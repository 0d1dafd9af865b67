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
// sender retains what it sent, and waits when its window is full). For the actors the activator spawns (kinds
// spawned by Node.Spawn, from this node or across a link), whose props
// procactor controls, the node counts what links have delivered to each and
// it has not finished. WithInboxLimit messages and WithInboxBytes decoded
// bytes are its window: at the window, the links that deliver to it are
// told to pause their sends to that actor alone (credit.go), so that their
// senders wait, as on a full link (the link's own flow control, per stream,
// would stall every other actor on it). What was in flight when the pause
// went out still arrives; past the hard bound (twice the window, or the
// window plus inboxSlackMsgs / inboxSlackBytes if larger) a message from a
// link is a dead letter with ErrInboxFull and a rate-limited line, and a
// request among them fails at once (DeadLetterResponse): memory stays
// bounded whatever a peer does. Messages sent within the node are not
// counted. Actors spawned otherwise get no bound: see the package doc.

// inbox counts one spawned actor's messages delivered by links and not yet
// finished (finish.go says when a message is), in messages and bytes, and
// knows which links it paused (credit.go).
type inbox struct {
	limit     int   // WithInboxLimit: at it, links are paused
	maxBytes  int64 // WithInboxBytes: likewise
	hardMsgs  int   // past it, messages are refused (newInbox)
	hardBytes int64 // likewise

	mu      sync.Mutex
	id      string                      // the actor's id, once spawned (guarded by mu)
	pending finishQueue                 // delivered, not finished, in order (guarded by mu; see finish.go)
	bytes   int64                       // sum of pending sizes (guarded by mu)
	paused  map[*Link]*mailbox.Endpoint // links told to pause for this actor, and on which stream (guarded by mu)
	stopped atomic.Bool                 // the actor has stopped: no more deliveries are counted
}

// Slack of the hard bound over the window: what a link may have in flight
// (its peer's user lane, the pipe, the read buffer) when the pause reaches
// its sender. A sender that honours pauses is not refused on a link with
// default queues.
const (
	inboxSlackMsgs  = 1 << 16
	inboxSlackBytes = 16 << 20
)

// newInbox makes an inbox with a window of limit messages and maxBytes
// bytes; it refuses past limit + max(limit, inboxSlackMsgs) messages or
// maxBytes + max(maxBytes, inboxSlackBytes) bytes.
func newInbox(limit int, maxBytes int64) *inbox {
	return &inbox{limit: limit, maxBytes: maxBytes,
		hardMsgs: limit + max(limit, inboxSlackMsgs), hardBytes: maxBytes + max(maxBytes, inboxSlackBytes)}
}

// admit counts a message from l about to be delivered, unless the inbox is
// full (past its hard bounds; one message alone is always admitted). At the
// window or past it, l is told to pause its sends.
func (ib *inbox) admit(l *Link, menv *pa.MessageEnvelope, size int64) bool {
	ib.mu.Lock()
	if ib.stopped.Load() {
		// Stopped between the lookup and now (it set stopped before its
		// last look at paused, under mu): protoactor dead-letters the
		// message; counting it would pause a link for an actor gone.
		ib.mu.Unlock()
		return true
	}
	if n := ib.pending.len(); n > 0 && (n >= ib.hardMsgs || ib.bytes+size > ib.hardBytes) {
		ib.mu.Unlock()
		return false
	}
	ib.pending.push(finishEntry{env: menv, size: size})
	ib.bytes += size
	if (ib.pending.len() >= ib.limit || ib.bytes >= ib.maxBytes) && ib.pauseLocked(l) {
		// Under mu, so that a resume decided after it is sent after it.
		l.tellCredit(ib.id, true)
	}
	ib.mu.Unlock()
	return true
}

// finished releases env and everything delivered before it; at half the
// window or below, the paused links resume.
func (ib *inbox) finished(env *pa.MessageEnvelope) {
	if ib.pending.npend.Load() == 0 {
		return // the actor's own traffic
	}
	ib.mu.Lock()
	_, bytes, ok := ib.pending.finish(env)
	if !ok {
		ib.mu.Unlock()
		return // not a message of a link
	}
	ib.bytes -= bytes
	if len(ib.paused) > 0 && ib.pending.len() <= ib.limit/2 && ib.bytes <= ib.maxBytes/2 {
		resumeLinks(ib.takePausedLocked(), ib.id) // under mu: see admit
	}
	ib.mu.Unlock()
}

// usage reports what the inbox holds: messages and bytes.
func (ib *inbox) usage() (int, int64) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return ib.pending.len(), ib.bytes
}

// boundInbox returns a copy of props whose actor's link deliveries are
// counted by ib, its outermost receiver middleware: it sees the envelope the
// link delivered whatever the kind's own middlewares do with it, and counts
// it finished when they and Receive return (or panic, or drop it).
func (n *Node) boundInbox(props *pa.Props, ib *inbox) *pa.Props {
	return PrependReceiverMiddleware(props, func(next pa.ReceiverFunc) pa.ReceiverFunc {
		return func(c pa.ReceiverContext, env *pa.MessageEnvelope) {
			env = linkEnvelope(env)
			if _, ok := env.Message.(*pa.Stopped); ok {
				n.inboxStopped(c.Self().Id, ib)
			}
			defer ib.finished(env) // a panic finishes (loses) the message too
			next(c, env)
		}
	})
}

// inboxStopped forgets the inbox of an actor that stopped, and lifts its
// pauses: its senders go on, to find it gone. If an actor of the same name
// has taken its place already, that one's inbox takes over the pauses.
func (n *Node) inboxStopped(id string, ib *inbox) {
	ib.stopped.Store(true) // before mu: admit counts nothing more
	ib.mu.Lock()
	links := ib.takePausedLocked()
	ib.mu.Unlock()
	if n.inboxes.CompareAndDelete(id, ib) {
		n.inboxCount.Add(-1)
	} else if v, ok := n.inboxes.Load(id); ok {
		v.(*inbox).adoptPauses(links)
		return
	}
	resumeLinks(links, id)
}

// registerInbox makes links count deliveries to pid in ib, from now on.
func (n *Node) registerInbox(pid *pa.PID, ib *inbox) {
	ib.mu.Lock()
	ib.id = pid.Id
	ib.mu.Unlock()
	if _, replaced := n.inboxes.Swap(pid.Id, ib); !replaced {
		// (A replaced entry is an actor of the same name that stopped and
		// has not run its Stopped yet: it will find ib in its place.)
		n.inboxCount.Add(1)
	}
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
	// What the actor holds for it: the decoded message, its header and
	// sender (not charged by the decoder), and the envelope.
	size := env.Size + 64
	if env.Sender != nil {
		size += int64(48 + len(env.Sender.Address) + len(env.Sender.Id))
	}
	for k, v := range env.Header {
		size += int64(32 + len(k) + len(v))
	}
	if !ib.admit(l, menv, size) {
		msgs, bytes := ib.usage()
		l.refuse(env, fmt.Errorf("%w: %d messages, %d bytes not yet processed", ErrInboxFull, msgs, bytes))
		return nil, false
	}
	return menv, true
}
