package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// The reader role. One goroutine at a time reads the stream, decodes it and
// calls the Handler: the reader. A Handler may run user code right there
// (package actor runs an actor's Receive on the reader when the actor's
// mailbox is idle, so that a message costs no goroutine hand-off between
// the read and the handler, and the handler's reply is written at once).
// User code may block: on a lock, a channel, or a request whose answer comes
// back over this very link. A reader that blocks stalls every actor behind
// the link, and deadlocks a request answered through it. So the role is
// transferable, as Go's scheduler retakes a P from a goroutine blocked in a
// system call:
//
//   - Before it runs user code, the Handler lends the rest of its call
//     (Endpoint.Lend).
//   - A lent call that overstays the handler budget (WithHandlerBudget) is
//     seen by the endpoint's monitor, a timer that ticks only while lent
//     calls happen, which hands the role to a fresh goroutine: it goes on
//     reading at the next message, with the rest of the current frame and
//     the decoder's state. The old goroutine finishes its Handler call and
//     exits.
//   - User code about to wait for something that may come over a link
//     hands the role over at once (ReleaseReader), and so does a Send from a
//     lent call that meets a full user lane: it then waits for room like
//     any other sender instead of overflowing the lane (see outbox.send).
//
// Order holds: a lent call's messages are taken by the next reader only
// after the call has taken its own message (package actor queues the next
// messages of a busy actor behind the one it runs).

// Reader phases, the low bits of Endpoint.role; the high bits count the
// Handler calls, so that the monitor can tell a call that lasts from a new
// one.
const (
	phaseRead uint64 = iota // reading or decoding: not in a Handler call
	phaseHand               // in a Handler call that has not lent itself
	phaseLent               // in a lent Handler call: the role may be taken
	phaseGone               // the role was taken from the goroutine in this call

	phaseBits = 2
	phaseMask = 1<<phaseBits - 1
)

// readerState is what the reader role carries from one goroutine to the
// next: it is used only by the goroutine that holds the role.
type readerState struct {
	body    []byte // the rest of the data frame being delivered
	owned   bool   // body has memory of its own
	frame   int    // the length of that frame
	lastAck uint64 // the peer's last ack count
	calls   uint64 // Handler calls so far
	standby bool   // park before the next read (Standby)
	// A message a borrower decoded but may not deliver: the reader
	// delivers it first (borrow.go).
	pending    bool
	pendingEnv Envelope
	pendingBad error
	// What the frame being delivered counted so far, by lane; added to the
	// endpoint's Traffic once per frame.
	recvMsgs, recvBytes [2]uint64
}

// monitor watches lent Handler calls. Its timer runs only while traffic
// flows after a lent call: Lend arms it, and a tick that finds no Handler
// call since the previous tick disarms it.
type monitor struct {
	budget time.Duration
	timer  *time.Timer
	armed  atomic.Bool
	last   atomic.Uint64 // the role word a tick saw in a lent call; 0 for none
	calls  atomic.Uint64 // the Handler calls counted at the previous tick
	ticks  atomic.Int64  // timer firings, for ReaderStats
}

// DefaultHandlerBudget is how long a lent Handler call may run before its
// reader role is handed to a fresh goroutine (WithHandlerBudget).
const DefaultHandlerBudget = time.Millisecond

// ReaderStats counts what the reader role has cost so far.
type ReaderStats struct {
	// Handovers is how many times the role moved to a fresh goroutine: a
	// lent Handler call overstayed the budget, released it, or met a full
	// user lane.
	Handovers int64
	// MonitorTicks is how many times the monitor's timer fired.
	MonitorTicks int64
	// Borrows is how many times a requester borrowed the role to read its
	// own answer (Borrow).
	Borrows int64
	// BorrowTicks is how many times the borrowing ticker fired.
	BorrowTicks int64
	// Polls is how many times a read that expected an answer polled the
	// stream before sleeping (WithSpinWait).
	Polls int64
	// Spares is how many []byte payloads of 32 KiB to 256 KiB were copied
	// into memory that the reader had allocated while it waited for them
	// (a PipeConn's reader does so for the size it received last).
	Spares int64
}

// ReaderStats returns the endpoint's reader counters.
func (e *Endpoint) ReaderStats() ReaderStats {
	s := ReaderStats{Handovers: e.handovers.Load(), MonitorTicks: e.mon.ticks.Load(), Borrows: e.brw.borrows.Load(), BorrowTicks: e.brw.ticks.Load(), Spares: e.dec.spare.used.Load()}
	if e.spin != nil {
		s.Polls = int64(e.spin.pollCount())
	}
	return s
}

// Lend marks the rest of the current Handler call as user code that may
// block: the reader role may be handed to a fresh goroutine while it runs
// (see "The reader role" in the package doc). Only a Handler's Deliver may call it, on the reader
// goroutine, and after it the call must not touch state that belongs to the
// reader (the envelope, the Handler's own reader state): another goroutine
// may be reading by then. Outside a Handler call it does nothing.
func (e *Endpoint) Lend() {
	w := e.role.Load()
	if w&phaseMask != phaseHand {
		return
	}
	e.role.Store(w&^phaseMask | phaseLent)
	if e.failed.Load() {
		// The link's end began before the call was lent: fail found nothing
		// to take the role from, and the monitor no longer ticks. The end
		// must not wait for this call either (see fail).
		e.takeLent()
		return
	}
	m := &e.mon
	if !m.armed.Load() && m.armed.CompareAndSwap(false, true) {
		m.timer.Reset(m.budget)
	}
}

// ReleaseReader hands the reader role of the endpoint whose reader is the
// calling goroutine to a fresh goroutine at once, when the caller is in a
// lent Handler call (Lend), and reports whether it did. User code calls it
// before it waits for something that may arrive over a link (the answer to
// a request): the link it is reading must go on. It costs a goroutine-id
// lookup (about a microsecond): call it only before waiting.
func ReleaseReader() bool {
	r := readerOf(goid())
	return r != nil && r.release()
}

// MayWait reports whether the calling goroutine may wait for room on a link:
// any goroutine but a reader may; a reader in a lent Handler call hands its
// role over first (ReleaseReader) and then may. It costs a goroutine-id
// lookup: call it only when about to wait.
func MayWait() bool {
	r := readerOf(goid())
	return r == nil || r.release()
}

// release hands the role over on behalf of the reader goroutine itself,
// which must be the caller.
func (e *Endpoint) release() bool {
	w := e.role.Load()
	if w&phaseMask != phaseLent || !e.role.CompareAndSwap(w, w&^phaseMask|phaseGone) {
		return false
	}
	e.takeOver()
	return true
}

// takeOver starts a fresh reader after the role was taken (phaseGone). The
// old goroutine is no longer a reader: its sends wait like anyone's.
func (e *Endpoint) takeOver() {
	if id := e.readerGoid.Swap(0); id != 0 {
		readerGoroutines.Delete(id)
	}
	e.handovers.Add(1)
	go e.readLoop()
}

// tick is the monitor's timer: it takes the role from a lent call seen at
// two ticks in a row, and disarms after a tick that saw no Handler call
// since the one before (re-arming costs more than a tick while traffic
// flows: adding a timer wakes a thread sleeping in the poller).
func (e *Endpoint) tick() {
	m := &e.mon
	m.ticks.Add(1)
	if e.failed.Load() {
		m.armed.Store(false)
		return
	}
	w := e.role.Load()
	if w&phaseMask == phaseLent {
		if w == m.last.Load() {
			m.last.Store(0)
			if e.role.CompareAndSwap(w, w&^phaseMask|phaseGone) {
				e.takeOver()
			}
		} else {
			m.last.Store(w)
		}
		m.timer.Reset(m.budget)
		return
	}
	m.last.Store(0)
	if calls := w >> phaseBits; calls != m.calls.Swap(calls) {
		m.timer.Reset(m.budget) // traffic flows: keep watching
		return
	}
	m.armed.Store(false)
	// A Lend that found the timer armed just before the Store above did not
	// arm it: look again.
	if e.role.Load()&phaseMask == phaseLent && m.armed.CompareAndSwap(false, true) {
		m.timer.Reset(m.budget)
	}
}

// nextEnvelope decodes the next message of the data frame being delivered
// (r.body, not empty) into env. The message is counted (Traffic) and its
// decoded size charged to the link's budget (WithMaxDecoded) until deliver
// releases it. A fatal error breaks the link; a bad one loses only this
// message, which deliver hands to Handler.DeadLetter.
func (e *Endpoint) nextEnvelope(env *Envelope) (bad, fatal error) {
	r := &e.rd
	msg, rest, err := nextMessage(r.body)
	if err != nil {
		return nil, err
	}
	r.body = rest
	e.dec.maxBytes = max(1, e.cfg.maxDecoded-e.decoded.Load())
	// A []byte payload may alias a frame of its own only when it is most
	// of it: a small one kept by the Handler must not pin the frame.
	bad, fatal = e.dec.decodeEnvelope(msg, r.owned && 2*len(msg) >= r.frame, env)
	if fatal != nil {
		return nil, fatal
	}
	lane := 0
	if env.Lane == LaneSystem {
		lane = 1
	}
	r.recvMsgs[lane]++
	r.recvBytes[lane] += uint64(msgPrefixSize + len(msg))
	if len(r.body) == 0 {
		e.recv.add(&r.recvMsgs, &r.recvBytes)
		r.recvMsgs, r.recvBytes = [2]uint64{}, [2]uint64{}
	}
	e.decoded.Add(env.Size)
	return bad, nil
}

// deliver hands a message nextEnvelope decoded to the Handler (handOne) and
// then gives its decoded bytes back to the budget, unless the Handler does
// that itself (WithManualRelease) for a message it got. It reports what
// handOne reports.
func (e *Endpoint) deliver(env *Envelope, bad error) bool {
	size := env.Size
	if bad != nil {
		e.deadLetters.Add(1)
	}
	ok := e.handOne(env, bad)
	if !e.cfg.manualRelease || bad != nil {
		e.decoded.Add(-size)
	}
	return ok
}

// handOne passes one message to the Handler. It reports whether the caller
// still holds the reader role afterwards (false: the call was lent and the
// role taken; a successor reads now).
func (e *Endpoint) handOne(env *Envelope, bad error) bool {
	r := &e.rd
	r.calls++
	w := r.calls << phaseBits
	e.role.Store(w | phaseHand)
	var sends uint64
	if e.spin != nil {
		sends = e.out.sends.Load()
	}
	e.hand(env, bad)
	if e.spin != nil && e.out.sends.Load() != sends {
		e.spin.expectAnswer() // it sent something (a reply, a request): the next read may poll
	}
	// Back to phaseRead (w's phase bits are phaseRead, zero), unless the
	// role was taken meanwhile (phaseGone).
	return e.role.CompareAndSwap(w|phaseHand, w) || e.role.CompareAndSwap(w|phaseLent, w)
}

// readerOf returns the endpoint whose reader is the goroutine id, or nil.
func readerOf(id uint64) *Endpoint {
	v, ok := readerGoroutines.Load(id)
	if !ok {
		return nil
	}
	return v.(*Endpoint)
}

// readLoop runs the reader role: Start starts it, and each hand-over of the
// role (reader.go) starts it again on a fresh goroutine, which takes up the
// state where its predecessor left it.
func (e *Endpoint) readLoop() {
	growStack()
	id := goid()
	e.readerGoid.Store(id)
	readerGoroutines.Store(id, e)
	var env Envelope // this goroutine's: a lent call may still use its predecessor's
	if !e.read(&env) {
		// The role was taken during a lent Handler call: the successor
		// holds this goroutine's place in running (and its id is gone from
		// readerGoroutines already).
		return
	}
	readerGoroutines.Delete(id)
	e.fr.stopTimer()
	e.dec.spare.drop()
	// A frame the link ended in the middle of is counted as far as it was
	// handed over (nextEnvelope counts a frame once its last message is):
	// Closed, which follows, sees final counts.
	r := &e.rd
	e.recv.add(&r.recvMsgs, &r.recvBytes)
	r.recvMsgs, r.recvBytes = [2]uint64{}, [2]uint64{}
	e.exit()
}

// readerStack is how much stack a reader goroutine takes at its start
// (growStack): a Handler run on it goes deep (package actor runs an
// actor's Receive there, and its answer's send), and the stack would
// otherwise grow then, one doubling at a time, each copy reading the stack
// maps of every frame on it, cold in a new process. Measured in a child's
// start: the root actor's first answer spent 29–42 µs growing the reader's
// stack before its send reached the outbox, and none with this.
const readerStack = 16 << 10

// growStack makes the calling goroutine's stack hold readerStack more
// bytes, while it is shallow and copying it is cheap.
//
//go:noinline
func growStack() {
	var frame [readerStack]byte
	keepFrame(frame[:])
}

// keepFrame keeps growStack's frame from being optimized away.
//
//go:noinline
func keepFrame(b []byte) { b[len(b)-1] = 1 }

// read delivers frames until the link ends (true) or the role is taken from
// this goroutine in a lent Handler call (false).
func (e *Endpoint) read(env *Envelope) bool {
	r := &e.rd
	if e.failed.Load() {
		// A successor started by fail: what its predecessor left unread
		// is not delivered after the link's end.
		r.body, r.pending, r.pendingEnv, r.pendingBad = nil, false, Envelope{}, nil
	}
	for {
		if r.pending {
			// A borrower left it to us (borrow.go).
			*env, r.pendingEnv = r.pendingEnv, Envelope{}
			bad := r.pendingBad
			r.pending, r.pendingBad = false, nil
			if !e.deliver(env, bad) {
				return false
			}
		}
		for len(r.body) > 0 {
			bad, fatal := e.nextEnvelope(env)
			if fatal != nil {
				e.fail(fatal)
				return true
			}
			if !e.deliver(env, bad) {
				return false
			}
			if e.failed.Load() {
				r.body = nil // aborted meanwhile (perhaps by the handler): the read that follows fails
			}
		}
		if r.standby {
			r.standby = false
			if e.fr.end == e.fr.start && !e.failed.Load() {
				e.park() // a requester may read its own answer meanwhile
				continue
			}
		}
		t, body, owned, err := e.fr.next()
		if err != nil {
			e.readFailed(err)
			return true
		}
		switch t {
		case frameData:
			if e.failed.Load() {
				return true // the link ended (aborted): a frame read before that is not delivered
			}
			r.body, r.owned, r.frame = body, owned, len(body)
		case frameAck:
			if !e.readAck(body) {
				return true
			}
		case frameGoodbye:
			e.gotBye.Store(true)
			e.out.shutdown() // flush, answer with our goodbye
			if e.sentBye.Load() {
				e.fail(nil)
			}
			return true
		default:
			e.fail(fmt.Errorf("%w: unexpected %v frame", ErrProtocol, t))
			return true
		}
	}
}

// readFailed ends the link after the stream failed to give the next frame.
func (e *Endpoint) readFailed(err error) {
	if e.sentBye.Load() && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)) {
		e.fail(nil) // we said goodbye; the peer closing is the answer
		return
	}
	if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrFrameTooLarge) {
		err = fmt.Errorf("%w: read: %w", ErrPeerGone, err) // EOF, reset, closed: the stream is gone
	}
	e.fail(err)
}

// readAck takes the peer's cumulative ack count; false when it breaks the
// protocol (the link is failed).
func (e *Endpoint) readAck(body []byte) bool {
	r := &e.rd
	n, err := parseAck(body)
	switch {
	case err != nil:
	case n < r.lastAck:
		err = fmt.Errorf("%w: ack %d after ack %d", ErrProtocol, n, r.lastAck)
	case n > e.out.numbered.Load():
		// The peer counts messages it got, which were numbered when queued:
		// more is a lie that would make the sender drop what it retains.
		err = fmt.Errorf("%w: ack %d beyond the %d numbered messages sent", ErrProtocol, n, e.out.numbered.Load())
	}
	if err != nil {
		e.fail(err)
		return false
	}
	r.lastAck = n
	if acks, ok := e.h.(AckHandler); ok {
		acks.Acked(n)
	}
	return true
}

// nextMessage splits the first length-prefixed message off a data frame's
// body (len(body) > 0).
func nextMessage(body []byte) (msg, rest []byte, err error) {
	if len(body) < msgPrefixSize {
		return nil, nil, fmt.Errorf("%w: %d stray bytes at the end of a frame", ErrProtocol, len(body))
	}
	n := binary.BigEndian.Uint32(body)
	if uint64(n) > uint64(len(body)-msgPrefixSize) {
		return nil, nil, fmt.Errorf("%w: message of %d bytes overruns its frame (%d left)", ErrProtocol, n, len(body)-msgPrefixSize)
	}
	end := msgPrefixSize + int(n)
	return body[msgPrefixSize:end], body[end:], nil
}

// hand passes one message to the handler. A panic in the handler is logged
// and the link goes on: one bad message must not take the link down.
func (e *Endpoint) hand(env *Envelope, bad error) {
	defer func() {
		if r := recover(); r != nil {
			e.cfg.logger.Error().Interface("panic", r).Str("type", fmt.Sprintf("%T", env.Message)).Msg("mailbox: handler panicked")
		}
	}()
	if bad != nil {
		e.h.DeadLetter(env, bad)
		return
	}
	e.h.Deliver(env)
}
