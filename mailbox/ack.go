package mailbox

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
)

// Acknowledgements let a sender keep what it sent until the peer says it is
// done with it (package actor retains messages to a child's root actor and
// redelivers them to the child's next incarnation). Numbering is implicit:
// SendNumbered counts the messages it queues (1, 2, ...), the receiving side
// counts the same messages as it delivers them, and reports with Acknowledge
// how many it has finished, cumulatively. The count crosses in an ack frame
// that rides on the next outgoing write (piggybacked: no write of its own
// while traffic flows) or, on an idle link, is written alone after the ack
// delay (WithAckDelay). A side sends acks only when both announced CapAck.

// AckHandler is implemented by a Handler that wants the peer's
// acknowledgements: Acked is called on the reader goroutine, in stream order,
// with the peer's cumulative count (never lower than the previous one).
type AckHandler interface {
	Acked(n uint64)
}

// acker is the sending half of acknowledgements, inside the outbox.
type acker struct {
	on    atomic.Bool   // both sides announced CapAck (set by Handshake)
	value atomic.Uint64 // the latest count to report
	armed atomic.Bool   // the idle timer is set
	timer *time.Timer
	delay time.Duration
	sent  uint64 // the last count put into a batch (guarded by outbox.mu)
}

// Acknowledge reports that this side has finished the first n numbered
// messages the peer sent on this link. Counts only grow: a lower n than an
// earlier one is ignored. It never blocks and never writes itself; it is a
// no-op unless both sides announced CapAck.
func (e *Endpoint) Acknowledge(n uint64) { e.out.acknowledge(n) }

// SendAcknowledging is Send, and Acknowledge(n) as env is queued: the count
// travels behind env in the batch that carries env, never before it. A
// receiver tells the sender with env why it finished the n-th message
// (a failure's notice): the sender learns that the message finished only
// with env. On an error nothing is queued, and n is not acknowledged.
func (e *Endpoint) SendAcknowledging(ctx context.Context, env *Envelope, n uint64) error {
	_, _, err := e.sendWith(ctx, env, false, n)
	return err
}

func (o *outbox) acknowledge(n uint64) {
	if o.ack.raise(n) && o.ack.armed.CompareAndSwap(false, true) {
		o.ack.timer.Reset(o.ack.delay)
	}
}

// raise makes n the count to report, unless it is not above the current
// one or acknowledgements are off; it reports whether it did.
func (a *acker) raise(n uint64) bool {
	if !a.on.Load() {
		return false
	}
	for {
		old := a.value.Load()
		if n <= old {
			return false
		}
		if a.value.CompareAndSwap(old, n) {
			return true
		}
	}
}

// flushAck runs when the ack delay has passed: an ack that no write took
// along is queued alone.
func (o *outbox) flushAck() {
	o.ack.armed.Store(false)
	o.mu.Lock()
	if o.err != nil || o.goodbye {
		o.mu.Unlock()
		return
	}
	o.appendAckLocked(o.cur)
	pending := !o.cur.empty()
	o.mu.Unlock()
	if pending {
		o.ring()
	}
}

// appendAckLocked appends an ack frame to b when there is a count the peer
// has not been told yet. Called as a batch is taken for writing, and before
// a goodbye (after which nothing is read).
func (o *outbox) appendAckLocked(b *batch) {
	v := o.ack.value.Load()
	if v <= o.ack.sent || b.goodbye {
		return
	}
	b.closeFrame()
	var body [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(body[:], v)
	b.buf = appendHeader(b.buf, frameAck, uint32(n))
	b.buf = append(b.buf, body[:n]...)
	o.ack.sent = v
}

func (o *outbox) stopAck() { o.ack.timer.Stop() }

// parseAck reads an ack frame's body: one uvarint, nothing else.
func parseAck(body []byte) (uint64, error) {
	v, n := binary.Uvarint(body)
	if n <= 0 || n != len(body) {
		return 0, fmt.Errorf("%w: malformed ack frame of %d bytes", ErrProtocol, len(body))
	}
	return v, nil
}
