package mailbox

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Borrowing the reader role. A goroutine that sent a request and is about
// to wait for its answer would be woken by the reader once the answer has
// been read: one goroutine readied by another, which on these machines wakes
// a second OS thread, as much again as the pipe's own round trip. When the
// reader has just delivered an answer (Standby) and nothing more is
// buffered, it parks (standby) instead of reading, so that the next
// requester can borrow the role (Borrow), read its own answer
// (ReadBorrowed) and return with it: one goroutine, woken once by the
// poller, as a loop over a raw pipe is. A borrower delivers only what the
// Handler lets it (BorrowHandler: answers that wake nobody else); anything
// else goes, in order, to the reader, which it wakes.
//
// No timer is set per request (setting one wakes a thread sleeping in the
// poller): the parked reader wakes every borrowTick while standby and
// borrowing go on. A tick that finds the same borrower still waiting as at the
// tick before interrupts its read (a deadline in the past), and the
// borrower hands the role back to the reader; a tick that finds the reader
// in standby with no borrow since the tick before ends the standby. So a
// borrower waits at most two ticks for its answer, and a message that
// arrives during a standby nobody borrows waits at most two ticks.

// BorrowHandler is implemented by a Handler some of whose messages may be
// delivered by a goroutine that borrowed the reader role: Borrowable
// reports whether env is one (a borrower's Deliver must be quick and must
// not send on a link).
type BorrowHandler interface {
	Borrowable(env *Envelope) bool
}

// Who holds the reader role: borrowing.lease.
const (
	leaseReader      int32 = iota // the reader goroutine
	leaseStandby                  // nobody: the reader is parked, a requester may borrow it
	leaseBorrowed                 // a requester (Borrow)
	leaseInterrupt                // a requester, whose read a tick is interrupting
	leaseInterrupted              // a requester, whose read has a deadline in the past
)

// borrowTick is the period of the borrowing ticker (see above).
const borrowTick = time.Millisecond

// deadliner is a stream whose reads can be given a deadline: a borrower
// must not wait past its time.
type deadliner interface {
	SetReadDeadline(t time.Time) error
}

// borrowing is the endpoint's state for borrowers.
type borrowing struct {
	lease   atomic.Int32
	wake    chan struct{} // cap 1: wakes the reader parked in standby
	dl      deadliner     // nil: the stream takes no deadlines, nothing is lent
	borrows atomic.Int64  // borrows so far: ReaderStats, and the ticker's progress mark
	tick    *time.Timer   // the parked reader's ticker
	every   time.Duration // its period: borrowTick (tests change it)
	ticks   atomic.Int64  // for ReaderStats
	// env is the borrowers' envelope, one borrower at a time (a local one
	// would escape to the heap on every borrow: the Handler takes a pointer).
	env Envelope
}

func (e *Endpoint) initBorrowing() {
	b := &e.brw
	b.wake = make(chan struct{}, 1)
	b.tick = time.NewTimer(time.Hour)
	b.tick.Stop()
	b.every = borrowTick
	if _, ok := e.h.(BorrowHandler); ok {
		b.dl, _ = e.conn.(deadliner)
	}
}

// Standby tells the reader, from a Handler's Deliver, that a goroutine is
// likely to want to read its own answer soon (this message was an answer to
// a request): when nothing more is buffered, the reader parks for a short
// while so that the goroutine can Borrow the role. A no-op on a stream that
// takes no read deadlines or when the Handler is not a BorrowHandler.
func (e *Endpoint) Standby() {
	if e.brw.dl != nil {
		e.rd.standby = true
	}
}

// Borrow makes the calling goroutine the reader, if the reader is parked in
// standby, and reports whether it did. It must then call ReadBorrowed,
// which gives the role back; between the two it may set up what its
// Handler's Deliver needs (it is the reader).
func (e *Endpoint) Borrow() bool {
	b := &e.brw
	if b.lease.Load() != leaseStandby || !b.lease.CompareAndSwap(leaseStandby, leaseBorrowed) {
		return false
	}
	b.borrows.Add(1)
	return true
}

// ReadBorrowed reads and delivers messages on the borrowing goroutine until
// done reports true (it is asked after each message), the ticker ends the
// wait (after one to two borrowTicks), or a message arrives that the Handler
// does not let a borrower deliver; then the role goes back to standby (done,
// nothing more buffered) or to the reader. It reports whether done reported
// true. Only a goroutine whose Borrow succeeded may call it, once.
func (e *Endpoint) ReadBorrowed(done func() bool) bool {
	r := &e.rd
	hb := e.h.(BorrowHandler)
	env := &e.brw.env
	ok := false
	for {
		for len(r.body) > 0 {
			bad, fatal := e.nextEnvelope(env)
			if fatal != nil {
				e.fail(fatal)
				return e.giveBack(ok)
			}
			if bad != nil || !hb.Borrowable(env) {
				// The reader delivers it, first, then the rest.
				r.pending, r.pendingEnv, r.pendingBad = true, *env, bad
				return e.giveBack(ok)
			}
			if !e.deliver(env, nil) || e.failed.Load() {
				return e.giveBack(ok)
			}
			if !ok && done() {
				ok = true
			}
		}
		if ok && !e.frameBuffered() {
			if e.fr.end != e.fr.start {
				return e.giveBack(ok) // the reader reads the rest of that frame
			}
			return e.unborrow(ok)
		}
		if e.spin != nil {
			e.spin.expectAnswer() // its own answer is on the way
		}
		large, err := e.fillFrame()
		if err != nil {
			// Interrupted by the ticker (the reader waits on), or the
			// stream failed: nothing was consumed, the reader meets the
			// error again.
			return e.giveBack(ok)
		}
		switch header(e.fr.buf[e.fr.start:]).typ() {
		case frameData, frameAck:
		default:
			return e.giveBack(ok) // a goodbye or a bad frame: the reader's business
		}
		if large {
			return e.giveBack(ok) // a large frame is read whole, by the reader
		}
		t, body, owned, err := e.fr.next()
		if err != nil {
			e.readFailed(err)
			return e.giveBack(ok)
		}
		if t == frameAck {
			if !e.readAck(body) {
				return e.giveBack(ok)
			}
			continue
		}
		r.body, r.owned, r.frame = body, owned, len(body)
	}
}

// endBorrow ends a borrow in state to (standby or reader). A tick that is
// interrupting the borrower's read is let finish, and the deadline it set
// is cleared.
func (e *Endpoint) endBorrow(to int32) {
	b := &e.brw
	b.env = Envelope{} // what it delivered is the Handler's now: keep none of it alive
	if b.lease.CompareAndSwap(leaseBorrowed, to) {
		return
	}
	for b.lease.Load() != leaseInterrupted {
		runtime.Gosched() // the tick sets the deadline: a few instructions
	}
	_ = b.dl.SetReadDeadline(time.Time{})
	b.lease.Store(to)
}

// unborrow hands the role back to standby: the borrower got its answer and
// nothing more is buffered.
func (e *Endpoint) unborrow(ok bool) bool {
	e.endBorrow(leaseStandby)
	return ok
}

// giveBack hands the role from a borrower to the reader, which it wakes:
// the reader reads at once (whatever the borrower stopped for is its to
// handle), without standing by.
func (e *Endpoint) giveBack(ok bool) bool {
	e.rd.standby = false
	e.endBorrow(leaseReader)
	e.wakeReader()
	return ok
}

// endStandby makes a reader parked in standby read again.
func (e *Endpoint) endStandby() {
	if e.brw.lease.CompareAndSwap(leaseStandby, leaseReader) {
		e.wakeReader()
	}
}

func (e *Endpoint) wakeReader() {
	select {
	case e.brw.wake <- struct{}{}:
	default:
	}
}

// park is the reader's standby: it returns once the role is the reader's
// again. The parked reader is the borrowing ticker (see above).
func (e *Endpoint) park() {
	b := &e.brw
	last := b.borrows.Load() // before the standby: a borrow from now on is new
	b.lease.Store(leaseStandby)
	b.tick.Reset(b.every)
	defer b.tick.Stop()
	for {
		if e.failed.Load() && b.lease.CompareAndSwap(leaseStandby, leaseReader) {
			return // the link ended while nobody read: finish
		}
		if b.lease.Load() == leaseReader {
			return
		}
		select {
		case <-b.wake:
			continue
		case <-b.tick.C:
		}
		b.ticks.Add(1)
		n := b.borrows.Load()
		still := n == last
		last = n
		switch b.lease.Load() {
		case leaseStandby:
			if still && b.lease.CompareAndSwap(leaseStandby, leaseReader) {
				return // nobody borrowed for a whole tick: read again
			}
		case leaseBorrowed:
			if still && b.lease.CompareAndSwap(leaseBorrowed, leaseInterrupt) {
				// The same borrower has waited a whole tick: its answer
				// is slow, the reader waits for it instead.
				_ = b.dl.SetReadDeadline(time.Unix(1, 0))
				b.lease.Store(leaseInterrupted)
			}
		}
		b.tick.Reset(b.every)
	}
}

// frameBuffered reports whether a whole frame is buffered (reading it
// takes no system call).
func (e *Endpoint) frameBuffered() bool {
	fr := e.fr
	n := fr.end - fr.start
	return n >= headerSize && n-headerSize >= int(header(fr.buf[fr.start:]).length())
}

// fillFrame buffers the next frame whole when it fits the read buffer
// (large reports that it does not: only its header is buffered), consuming
// nothing, so that a read that ends at a deadline leaves the reader's state
// as it was.
func (e *Endpoint) fillFrame() (large bool, err error) {
	fr := e.fr
	if err := fr.fill(headerSize); err != nil {
		return false, err
	}
	n := int(header(fr.buf[fr.start:]).length())
	if !fr.fits(n, true) {
		return true, nil
	}
	if headerSize+n > len(fr.buf) {
		fr.grow()
	}
	return false, fr.fill(headerSize + n)
}
