package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// owner says who writes to the stream now. Exactly one party writes at a
// time, which keeps frames whole and in order.
type owner uint8

const (
	ownerNone   owner = iota // nobody: the next sender may write directly
	ownerCaller              // a sender is in its one non-blocking write
	ownerWriter              // the writer goroutine
)

// outbox is the sending half of an endpoint: the two lanes' queue, the
// encoder and the single-writer token.
//
// Send encodes under mu into cur. When nobody is writing, the stream allows
// it and the link has been quiet for directWriteGap, the sender takes cur and
// makes one non-blocking write itself: an idle link (a request, its reply)
// costs no goroutine hand-off. Whatever that write leaves, and everything
// queued while someone writes or while messages follow each other closely,
// goes to the writer goroutine, which drains cur in one write per batch. So
// latency is one syscall when idle and throughput comes from batching under
// load, with no timer.
type outbox struct {
	mu        sync.Mutex
	cur       *batch    // filling (guarded by mu)
	spare     *batch    // recycled (guarded by mu)
	inflight  *batch    // handed to the writer goroutine unfinished (guarded by mu)
	owner     owner     // guarded by mu
	settling  bool      // the endpoint is ending and waits for a direct write to be counted (guarded by mu)
	settled   sync.Cond // signalled, on mu, when a direct write ends while settling
	userCount int       // user-lane messages in cur (guarded by mu)
	sysBytes  int       // bytes of system-lane messages in cur (guarded by mu)
	room      chan struct{}
	err       error         // why sends are refused; set once (guarded by mu)
	abort     bool          // drop what is queued (guarded by mu)
	goodbye   bool          // a goodbye is queued (guarded by mu)
	running   bool          // started: senders and the writer goroutine may write (guarded by mu)
	maxFrame  int           // guarded by mu
	lastWrite int64         // monotonic time the last write ended (guarded by mu)
	sends     atomic.Uint64 // messages queued so far (a reader's call that sent one expects an answer)
	numbered  atomic.Uint64 // numbered messages queued so far (SendNumbered; written under mu)
	enc       *encoder
	ack       acker
	sent      laneCounts    // what has been written (Traffic)
	writes    atomic.Uint64 // writes that carried messages (Traffic)

	userMax   int
	userBytes int
	sysMax    int // bound on sysBytes
	w         io.Writer
	direct    *directWriter // non-blocking write side for direct writes; nil if none
	wake      chan struct{} // cap 1: the writer goroutine's doorbell
}

// directWriteGap is how long the link must have been quiet before a sender
// writes directly instead of handing its message to the writer goroutine. A
// request/reply round trip over a pipe takes longer (5-6 µs between two
// goroutines of one process, ≥ 10 µs between processes), so requests and
// replies go out directly; a sender streaming messages sends the next one
// within a fraction of a microsecond and gets batched.
const directWriteGap = 2 * time.Microsecond

var epoch = time.Now()

// monotonic returns nanoseconds on the monotonic clock.
func monotonic() int64 { return int64(time.Since(epoch)) }

func newOutbox(w io.Writer, raw syscall.RawConn, cfg *config) *outbox {
	o := &outbox{
		cur:       newBatch(),
		spare:     newBatch(),
		maxFrame:  cfg.maxFrame,
		enc:       newEncoder(cfg.localAddress),
		userMax:   cfg.userQueue,
		userBytes: cfg.userQueueBytes,
		sysMax:    cfg.sysQueueBytes,
		w:         w,
		direct:    newDirectWriter(raw),
		wake:      make(chan struct{}, 1),
	}
	o.settled.L = &o.mu
	o.ack.delay = cfg.ackDelay
	o.ack.timer = time.AfterFunc(time.Hour, o.flushAck)
	o.ack.timer.Stop()
	return o
}

func (o *outbox) ring() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// fullLocked reports whether the user lane is full: by count, or by bytes
// once it holds at least one user message (so one message larger than the
// byte bound still goes through alone).
func (o *outbox) fullLocked() bool {
	return o.userCount >= o.userMax || (o.userCount > 0 && o.cur.size() >= o.userBytes)
}

// readerOverflow bounds how far past the user lane's bound a reader
// goroutine's sends may go, in messages and in bytes. Answers of the
// endpoint's own reader to its peer (dead-letter responses) may go further,
// to ownReaderOverflow times the bounds but never less than
// ownReaderMinMsgs and ownReaderMinBytes, before the peer counts as not
// reading them (ErrPeerStalled).
const (
	readerOverflow    = 4
	ownReaderOverflow = 16
	ownReaderMinMsgs  = 1 << 14
	ownReaderMinBytes = 4 << 20
)

// queuedLocked counts the messages accepted by Send and not yet written.
func (o *outbox) queuedLocked() int {
	n := o.cur.msgs
	if o.inflight != nil {
		n += o.inflight.msgs
	}
	return n
}

// send queues env. See Endpoint.Send. A numbered message gets the next
// number (seq); size is its encoded length on the wire.
//
// ack, when not 0, is acknowledged (Endpoint.SendAcknowledging) as env is
// queued, under the same lock: any batch that carries the count carries env
// before it.
func (o *outbox) send(ctx context.Context, env *Envelope, numbered bool, ack uint64) (seq uint64, size int, err error) {
	o.mu.Lock()
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return 0, 0, err
	}
	if env.Lane == LaneSystem && o.sysBytes >= o.sysMax {
		// System messages never wait: a peer that lets them pile up this far
		// is not reading, and the link is broken (Endpoint.fail).
		n := o.sysBytes
		o.mu.Unlock()
		return 0, 0, fmt.Errorf("%w: %d bytes of system messages unwritten", ErrPeerStalled, n)
	}
	waited := false // waited for room: a stream, which the writer batches
	if env.Lane == LaneUser {
		var id uint64 // this goroutine's id, once needed
		for o.fullLocked() {
			// A reader must not wait on a full lane (see reentrancy.go), unless it
			// is in a lent Handler call: then it hands its role over, so
			// that its link goes on reading, and waits like any sender
			// instead of growing the lane (an actor's Receive run on the
			// reader is not the reader answering its peer).
			if id == 0 {
				id = goid()
			}
			if r := readerOf(id); r != nil && !r.release() {
				if r.out == o {
					// Our own reader answering its peer never waits, but a
					// peer that sends requests and never reads the answers
					// must not grow our queue without end.
					if o.userCount < max(ownReaderOverflow*o.userMax, ownReaderMinMsgs) &&
						o.cur.size() < max(ownReaderOverflow*o.userBytes, ownReaderMinBytes) {
						break
					}
					n, b := o.userCount, o.cur.size()
					o.mu.Unlock()
					return 0, 0, fmt.Errorf("%w: %d answers (%d bytes) to the peer unwritten", ErrPeerStalled, n, b)
				}
				// Another link's reader (a relay) does not wait either, but its
				// overflow is bounded: past readerOverflow × the bounds, the
				// link it relays into is not draining and the send is refused.
				if o.userCount < readerOverflow*o.userMax && o.cur.size() < readerOverflow*o.userBytes {
					break
				}
				n, b := o.userCount, o.cur.size()
				o.mu.Unlock()
				return 0, 0, fmt.Errorf("%w: %d messages (%d bytes) queued, a relaying reader may not wait", ErrQueueFull, n, b)
			}
			if o.room == nil {
				o.room = make(chan struct{})
			}
			room := o.room
			o.mu.Unlock()
			select {
			case <-room:
			case <-ctx.Done():
				return 0, 0, fmt.Errorf("%w: %w", ErrQueueFull, context.Cause(ctx))
			}
			waited = true
			o.mu.Lock()
			if o.err != nil {
				err := o.err
				o.mu.Unlock()
				return 0, 0, err
			}
		}
	}
	if err := o.cur.appendEnvelope(o.enc, env, o.maxFrame); err != nil {
		o.mu.Unlock()
		return 0, 0, err
	}
	size = o.cur.lastSize
	if env.Lane == LaneUser {
		o.userCount++
	} else {
		o.sysBytes += o.cur.lastSize
	}
	o.sends.Add(1)
	if numbered {
		seq = o.numbered.Add(1)
	}
	if ack != 0 {
		o.ack.raise(ack) // no timer: whoever takes env's batch takes the count
	}
	if o.owner != ownerNone || !o.running {
		o.mu.Unlock()
		return seq, size, nil // whoever writes now takes it next; before Start it is held
	}
	if o.direct == nil || waited || len(o.cur.extern) > 0 || monotonic()-o.lastWrite < int64(directWriteGap) {
		o.mu.Unlock()
		o.ring()
		return seq, size, nil
	}
	b := o.takeLocked()
	o.owner = ownerCaller
	o.mu.Unlock()

	n, werr := o.direct.try(b.buf)

	o.mu.Lock()
	b.off += n
	ring := true
	switch {
	case werr != nil:
		o.inflight, o.owner = b, ownerWriter // the writer meets the error again and reports it
	case b.off == len(b.buf):
		o.lastWrite = monotonic()
		o.sentBatch(b)
		o.recycleLocked(b)
		o.owner = ownerNone
		ring = !o.cur.empty()
	default:
		o.inflight, o.owner = b, ownerWriter
	}
	if o.settling {
		o.settled.Broadcast()
	}
	o.mu.Unlock()
	if ring {
		o.ring()
	}
	return seq, size, nil
}

// settle waits until no sender is writing directly. The endpoint calls it
// as it ends, after closing its stream, so that the counts its Handler's
// Closed sees are final: a direct write is a non-blocking write, then
// counted (sentBatch), so the wait is short.
func (o *outbox) settle() {
	o.mu.Lock()
	for o.owner == ownerCaller {
		o.settling = true
		o.settled.Wait()
	}
	o.settling = false
	o.mu.Unlock()
}

func (o *outbox) takeLocked() *batch {
	b := o.cur
	b.closeFrame()
	o.appendAckLocked(b) // piggybacked: the write carries the latest ack
	o.cur, o.spare = o.spare, nil
	if o.cur == nil {
		o.cur = newBatch()
	}
	o.userCount, o.sysBytes = 0, 0
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
	return b
}

func (o *outbox) recycleLocked(b *batch) {
	b.reset()
	o.spare = b
}

// refuseLocked stops new sends with err; abort also drops what is queued.
func (o *outbox) refuseLocked(err error, abort bool) {
	if o.err == nil {
		o.err = err
	}
	if abort {
		o.abort = true
	}
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
}

// shutdown queues a goodbye after everything already queued and refuses new sends.
func (o *outbox) shutdown() {
	o.mu.Lock()
	if !o.goodbye && !o.abort {
		o.appendAckLocked(o.cur) // the peer reads nothing after the goodbye
		o.goodbye = true
		o.cur.appendGoodbye()
	}
	o.refuseLocked(ErrClosed, false)
	o.mu.Unlock()
	o.ring()
}

// stop refuses new sends and drops what is queued.
func (o *outbox) stop(err error) {
	o.mu.Lock()
	o.refuseLocked(err, true)
	o.mu.Unlock()
	o.ring()
}

// start lets writes begin: from now on a sender may write directly, before
// the writer goroutine has first run (what was held meanwhile goes out
// ahead of it, in order, with whoever writes first).
func (o *outbox) start() {
	o.mu.Lock()
	o.running = true
	o.mu.Unlock()
}

// run is the writer goroutine. It returns nil after writing a goodbye, the
// write error, or errAborted.
func (o *outbox) run() error {
	o.mu.Lock()
	for {
		if o.abort {
			o.mu.Unlock()
			return errAborted
		}
		var b *batch
		switch {
		case o.owner == ownerCaller:
			// The sender writing now rings when done.
		case o.owner == ownerWriter:
			b = o.inflight
			o.inflight = nil
		case !o.cur.empty():
			b = o.takeLocked()
			o.owner = ownerWriter
		}
		if b == nil {
			o.mu.Unlock()
			<-o.wake
			o.mu.Lock()
			continue
		}
		o.mu.Unlock()
		err := b.writeAll(o.w)
		o.mu.Lock()
		o.owner = ownerNone
		o.lastWrite = monotonic()
		if err != nil {
			o.refuseLocked(fmt.Errorf("%w: %w: write: %w", ErrClosed, ErrPeerGone, err), true)
			o.mu.Unlock()
			return err
		}
		o.sentBatch(b)
		if b.goodbye {
			o.mu.Unlock()
			return nil
		}
		o.recycleLocked(b)
	}
}

var errAborted = errors.New("mailbox: writer aborted")

// directWriter makes one non-blocking write through a RawConn. Its callback
// is bound once, so a write allocates nothing (a closure passed to
// RawConn.Write would escape, with what it captures, on every call). Used
// only by the party holding the write token (ownerCaller).
type directWriter struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

func newDirectWriter(raw syscall.RawConn) *directWriter {
	if raw == nil {
		return nil
	}
	d := &directWriter{raw: raw}
	d.fn = d.write
	return d
}

func (d *directWriter) write(fd uintptr) bool {
	d.n, d.err = writeNonblocking(fd, d.p)
	return true // never wait for room: what is left goes to the writer goroutine
}

// try writes what it can of p. EAGAIN is not an error: it wrote 0.
func (d *directWriter) try(p []byte) (int, error) {
	d.p = p
	err := d.raw.Write(d.fn)
	n, werr := d.n, d.err
	d.p, d.n, d.err = nil, 0, nil
	if n < 0 {
		n = 0
	}
	if werr == syscall.EAGAIN || werr == syscall.EINTR {
		werr = nil
	}
	if err != nil {
		return n, err
	}
	return n, werr
}
