package actor

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/procactor/procactor/mailbox"
)

// Retention keeps what a link sent to one actor of its peer until the peer
// says that actor has finished it, so that a peer that dies and comes back
// (a restarted child process) gets it again, first and in order: nothing
// queued for that actor is lost (at least once; a message the actor finished
// just before its process died, and whose acknowledgement did not get out,
// is delivered twice).
//
// Numbering is implicit (mailbox.Endpoint.SendNumbered): the link numbers the
// user messages it sends to the retained actor on each stream, the peer
// counts the same messages as it delivers them and acknowledges how many its
// actor has finished (Link.AckFor on the peer's link, cumulative, riding on
// its outgoing frames). Retained messages are bounded in bytes (the window)
// and in count (maxRetained): a full window makes senders wait like a full
// user lane (WithSendTimeout),
// then the new message is a dead letter (ErrRetainFull); a reader goroutine
// never waits and may overflow the window up to twice its size. A message
// admitted into a window that is not full is retained whatever its size, so
// the window may hold one message past its bound (one per sender that found
// it not full at the same time): a message larger than the whole window is
// retained too (it used to be sent unretained, and a loss
// of the peer then dropped it without a word while the smaller ones around
// it were redelivered).

// retention is the sending side's state (all guarded by Link.mu).
type retention struct {
	id     string            // the retained actor's id on the peer; "" for none
	window int               // bound on bytes
	msgs   ring[retainedMsg] // sent on the current stream, not acknowledged, by seq
	bytes  int               // sum of msgs' sizes
	acked  uint64            // the peer's count on the current stream
	// ended holds the final counts of the last streams lost, for a sender
	// that records its message after the loss (sendRetained).
	ended     [4]endedStream
	endedNext int
	room      chan struct{} // closed when bytes drop below the window; nil when nobody waits
}

// maxRetained bounds the count of retained messages, whatever their size:
// small messages cost the receiver memory too (its mailbox holds them), so
// the window is also the receiving actor's credit.
const maxRetained = 1 << 16

// fullLocked reports whether the window has no room left.
func (r *retention) fullLocked(factor int) bool {
	return r.bytes >= factor*r.window || r.msgs.len() >= factor*maxRetained
}

// endedStream is a lost stream, by its endpoint's address (not a pointer:
// a dead endpoint's buffers must not be kept), and how many messages its
// peer had acknowledged on it.
type endedStream struct {
	ep    uintptr
	acked uint64
}

// endLocked remembers how far ep's peer had acknowledged, as ep is lost.
// An older entry at the same address was a stream collected since: no
// sender holds it any more.
func (r *retention) endLocked(ep *mailbox.Endpoint) {
	at := uintptr(unsafe.Pointer(ep))
	for i := range r.ended {
		if r.ended[i].ep == at {
			r.ended[i] = endedStream{}
		}
	}
	r.ended[r.endedNext] = endedStream{ep: at, acked: r.acked}
	r.endedNext = (r.endedNext + 1) % len(r.ended)
}

// finishedOnLocked reports whether the peer acknowledged message seq of
// ep, a stream lost since (the caller holds ep, so its address is its
// own). A stream older than the last few lost reports false: the message
// goes again (at least once).
func (r *retention) finishedOnLocked(ep *mailbox.Endpoint, seq uint64) bool {
	at := uintptr(unsafe.Pointer(ep))
	for _, e := range r.ended {
		if e.ep == at {
			return seq <= e.acked
		}
	}
	return false
}

type retainedMsg struct {
	env  mailbox.Envelope
	seq  uint64
	size int
}

// Retain makes the link keep the user messages it sends to the actor id on
// its peer until the peer acknowledges that the actor has finished them, and
// send what is unacknowledged again, before anything else and in order, over
// the next stream after a loss. window bounds the bytes kept (see
// retention). The peer must count them (Link.AckFor with the same id) and
// both sides must announce mailbox.CapAck; otherwise nothing is ever
// acknowledged and a full window blocks. Call it before the first Connect.
func (l *Link) Retain(id string, window int) error {
	if id == "" || window < 1 {
		return fmt.Errorf("%w: Retain(%q, %d)", ErrInvalidOption, id, window)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ret.id, l.ret.window = id, window
	return nil
}

// retainsLocked reports whether env is a message the link retains.
func (l *Link) retainsLocked(env *mailbox.Envelope) bool {
	return l.ret.id != "" && env.Lane == mailbox.LaneUser && env.Target != nil &&
		env.Target.Id == l.ret.id && env.Target.Address == l.addr
}

// sendRetained sends env on ep numbered, once the window has room, and
// keeps it until the peer acknowledges it. full says the user lane was
// full a moment ago: wait for room at once.
func (l *Link) sendRetained(ep *mailbox.Endpoint, env *mailbox.Envelope, full bool) error {
	if err := l.waitWindow(ep); err != nil {
		return err
	}
	var seq uint64
	var size int
	err := mailbox.ErrQueueFull
	if !full {
		seq, size, err = ep.SendNumbered(noWaitCtx, env)
	}
	if err != nil && errorsIsQueueFull(err) {
		ctx, cancel := context.WithTimeout(context.Background(), l.node.cfg.sendTimeout)
		seq, size, err = ep.SendNumbered(ctx, env)
		cancel()
	}
	if err != nil {
		return err
	}
	if f := afterRetainedSend.Load(); f != nil {
		(*f)(l, env.Message) // the message, not env: a hook taking env would move every sent envelope to the heap
	}
	l.mu.Lock()
	switch {
	case l.ep == ep:
		if seq > l.ret.acked {
			l.insertRetainedLocked(retainedMsg{env: *env, seq: seq, size: size})
		}
		l.mu.Unlock()
	case l.ret.finishedOnLocked(ep, seq):
		// The stream was lost after the message was queued on it, before it
		// was recorded, and its peer had finished it: it must not go again
		// (a root actor that panicked on it would fail on it again).
		l.mu.Unlock()
	case l.state == linkDown:
		// The stream was lost after the message was queued on it, before it
		// was recorded: it may not have arrived, so it goes again, among the
		// redelivered ones.
		l.insertRedeliveredLocked(heldMsg{env: *env, seq: seq})
		l.mu.Unlock()
	default:
		l.mu.Unlock()
		l.resendLate(env)
	}
	return nil
}

// afterRetainedSend, when set (by a test), runs between a retained
// message's send and its record.
var afterRetainedSend atomic.Pointer[func(l *Link, message any)]

// retainLocked records a message just queued on l's current stream ep (l.mu
// held since before it was queued, so it goes after every message recorded
// before it).
func (l *Link) retainLocked(env *mailbox.Envelope, seq uint64, size int) {
	if seq > l.ret.acked {
		l.ret.msgs.push(retainedMsg{env: *env, seq: seq, size: size})
		l.ret.bytes += size
	}
}

// resendLate handles a retained message queued on a stream that was lost
// and replaced (or ended for good) before the message was recorded.
func (l *Link) resendLate(env *mailbox.Envelope) {
	l.mu.Lock()
	gone := l.state == linkGone
	l.mu.Unlock()
	if gone {
		if !tracked(env) { // lost answered a request already
			l.deadLetter(env, ErrLinkGone)
		}
		return
	}
	l.send(env)
}

func errorsIsQueueFull(err error) bool { return errors.Is(err, mailbox.ErrQueueFull) }

// insertRetainedLocked adds m to the retained messages in seq order
// (concurrent senders may record out of order).
func (l *Link) insertRetainedLocked(m retainedMsg) {
	r := &l.ret.msgs
	r.push(m)
	for i := r.len() - 1; i > 0 && r.at(i-1).seq > m.seq; i-- {
		*r.at(i), *r.at(i - 1) = *r.at(i - 1), *r.at(i)
	}
	l.ret.bytes += m.size
}

// insertRedeliveredLocked puts m among the redelivered messages at the front
// of the held queue, in seq order.
func (l *Link) insertRedeliveredLocked(m heldMsg) {
	i := 0
	for i < len(l.held) && l.held[i].seq != 0 && l.held[i].seq < m.seq {
		i++
	}
	l.held = append(l.held, heldMsg{})
	copy(l.held[i+1:], l.held[i:])
	l.held[i] = m
}

// waitWindow waits while the window of ep's stream is full, bounded by
// WithSendTimeout. A reader goroutine does not wait: it may overflow the
// window up to twice its size (unless it runs an actor inline: then it
// hands its reader role over and waits, see mailbox.MayWait).
func (l *Link) waitWindow(ep *mailbox.Endpoint) error {
	var deadline <-chan time.Time
	l.mu.Lock()
	for l.ep == ep && l.ret.fullLocked(1) {
		if !mailbox.MayWait() {
			if !l.ret.fullLocked(2) {
				break
			}
			n, b := l.ret.msgs.len(), l.ret.bytes
			l.mu.Unlock()
			return fmt.Errorf("%w: %d messages (%d bytes) unacknowledged, a reader may not wait", ErrRetainFull, n, b)
		}
		if l.ret.room == nil {
			l.ret.room = make(chan struct{})
		}
		room, n := l.ret.room, l.ret.bytes
		l.mu.Unlock()
		if deadline == nil {
			t := time.NewTimer(l.node.cfg.sendTimeout)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-room:
		case <-deadline:
			return fmt.Errorf("%w: %d bytes unacknowledged after %v", ErrRetainFull, n, l.node.cfg.sendTimeout)
		}
		l.mu.Lock()
	}
	l.mu.Unlock()
	return nil
}

// acked drops what the peer has acknowledged on ep's stream.
func (l *Link) acked(ep *mailbox.Endpoint, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ep != ep || n <= l.ret.acked {
		return
	}
	l.ret.acked = n
	r := &l.ret.msgs
	for m, ok := r.peek(); ok && m.seq <= n; m, ok = r.peek() {
		l.ret.bytes -= m.size
		r.pop()
	}
	l.wakeRetainLocked()
}

func (l *Link) wakeRetainLocked() {
	if l.ret.room != nil && !l.ret.fullLocked(1) {
		close(l.ret.room)
		l.ret.room = nil
	}
}

// takeRetainedLocked empties the retention of a lost stream and returns what
// it held, to be sent again (down) or dead-lettered (gone).
func (l *Link) takeRetainedLocked() []retainedMsg {
	msgs := make([]retainedMsg, 0, l.ret.msgs.len())
	for m, ok := l.ret.msgs.pop(); ok; m, ok = l.ret.msgs.pop() {
		msgs = append(msgs, m)
	}
	l.ret.msgs, l.ret.bytes, l.ret.acked = ring[retainedMsg]{}, 0, 0
	if l.ret.room != nil {
		close(l.ret.room) // waiters see the stream changed
		l.ret.room = nil
	}
	return msgs
}
