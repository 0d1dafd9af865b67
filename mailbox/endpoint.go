package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Handler receives what arrives on a link. Deliver and DeadLetter run on the
// goroutine holding the reader role, in stream order; Closed runs once,
// where the endpoint finishes (see Closed). They must not block for long
// (the link stops reading meanwhile) and must not keep env after returning: the
// envelope is reused (its fields may be kept).
type Handler interface {
	// Deliver is called for each message, in order.
	Deliver(env *Envelope)
	// DeadLetter is called for a message that arrived in a good frame but
	// cannot be delivered: its type name is not registered here
	// (ErrUnknownType), its payload does not decode (ErrDecode) or would
	// decode past its budget (ErrDecodeLimit), or its type's shape differs
	// between the two sides (ErrTypeMismatch). env holds
	// the target, sender and header when they decoded, so a request can be
	// answered with a DeadLetterResponse. The link lives on.
	DeadLetter(env *Envelope, reason error)
	// Closed is called once, after both goroutines have stopped: err is nil
	// after a clean goodbye, otherwise why the link ended (ErrPeerGone,
	// ErrProtocol, ErrFrameTooLarge, ErrClosed, the stream's error). A lent
	// Deliver whose reader role was handed over (Lend) may still be running.
	Closed(err error)
}

// HandlerFuncs adapts functions to Handler; nil fields do nothing.
type HandlerFuncs struct {
	OnDeliver    func(env *Envelope)               // Handler.Deliver
	OnDeadLetter func(env *Envelope, reason error) // Handler.DeadLetter
	OnClosed     func(err error)                   // Handler.Closed
}

// Deliver calls OnDeliver.
func (h HandlerFuncs) Deliver(env *Envelope) {
	if h.OnDeliver != nil {
		h.OnDeliver(env)
	}
}

// DeadLetter calls OnDeadLetter.
func (h HandlerFuncs) DeadLetter(env *Envelope, reason error) {
	if h.OnDeadLetter != nil {
		h.OnDeadLetter(env, reason)
	}
}

// Closed calls OnClosed.
func (h HandlerFuncs) Closed(err error) {
	if h.OnClosed != nil {
		h.OnClosed(err)
	}
}

const (
	stateNew         int32 = iota
	stateHandshaking       // in Handshake
	stateReady             // after a successful Handshake
	stateStarted
	stateClosed
)

// Endpoint is one side of a link: a duplex byte stream carrying envelopes
// both ways. Its life: NewEndpoint, optionally Handshake, Start, any number
// of concurrent Sends, then Close (graceful), Shutdown (graceful, bounded by
// a context) or Abort. Sends made before Start are held and written once it
// runs. All methods are safe for concurrent use.
//
// Concurrency. After Start two goroutines run: the writer (writeLoop:
// drains the outbox) and the reader (readLoop), plus the monitor (tick, a
// timer's function), which hands the reader role from a Handler call that
// overstays WithHandlerBudget to a fresh readLoop goroutine; the reader
// parked in standby waits on a second timer, brw.tick (borrow.go). Who owns
// what:
//   - conn, h, cfg, out, mon's budget are set by NewEndpoint, read-only after.
//   - peer and mismatch are written by Handshake, before Start, and are
//     read-only after it (Start refuses to run during a Handshake).
//   - fr (the frame reader), dec (the decoder) and rd belong to whoever holds
//     the reader role: Handshake until it returns, then one readLoop
//     goroutine at a time (the role moves by a CAS on role, never while a
//     frame is half read), or a requester that borrowed it (brw.lease).
//     readerGoid names the readLoop goroutine holding the role (not a
//     borrower); Deliver and DeadLetter are called by the role's holder
//     only, in stream order.
//   - The outbox's queue, room, encoder and the write token (owner) are
//     guarded by its mutex; a sender that wins the token makes one
//     non-blocking write itself, the writer goroutine makes the rest.
//   - state, the counters and the flags are atomics; err is written once
//     (errOnce); done is closed once, by finish.
//   - Handler.Closed is called once, by finish: on the last of the two
//     goroutines to exit (finisher records it), on the caller of Close,
//     Shutdown or Abort when no goroutine ever ran, or on the caller of a
//     Handshake that fails.
type Endpoint struct {
	conn io.ReadWriteCloser
	h    Handler
	cfg  config
	out  *outbox
	fr   *frameReader
	dec  *decoder
	peer Hello

	mismatch map[*typeEntry]error // set by Handshake, read-only after
	decoded  atomic.Int64         // decoded bytes delivered and not yet released

	state      atomic.Int32
	readerGoid atomic.Uint64 // the readLoop goroutine holding the reader role; 0 while the role moves
	role       atomic.Uint64 // the reader's phase and call count (reader.go)
	rd         readerState   // used by the goroutine holding the reader role
	mon        monitor       // hands the role over from a lent call that overstays
	brw        borrowing     // lends the role to requesters (borrow.go)
	handovers  atomic.Int64  // times the reader role moved to a fresh goroutine
	finisher   atomic.Uint64 // the goroutine that calls Closed
	running    atomic.Int32  // goroutines still running; the last one finishes
	sentBye    atomic.Bool   // our goodbye was written
	gotBye     atomic.Bool   // the peer's goodbye was read
	failed     atomic.Bool   // the link has ended: deliver nothing more
	finishing  atomic.Bool   // finish has begun
	errOnce    sync.Once
	err        error // first reason the link ended; written once by errOnce
	done       chan struct{}
	spin       spinner // the stream, when its reads may poll for an answer (WithSpinWait); else nil

	recv        laneCounts    // what the reader has handed over (Traffic)
	deadLetters atomic.Uint64 // messages handed to Handler.DeadLetter (Traffic)
}

// NewEndpoint makes an endpoint over conn, which it owns from now on (Close
// closes it). Nothing runs until Start.
func NewEndpoint(conn io.ReadWriteCloser, h Handler, opts ...Option) (*Endpoint, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidOption)
	}
	var raw = rawWriter(conn)
	if cfg.directWrite == directOff {
		raw = nil
	}
	e := &Endpoint{
		conn: conn,
		h:    h,
		cfg:  cfg,
		out:  newOutbox(conn, raw, &cfg),
		fr:   newFrameReader(conn, cfg.readBuffer, cfg.maxFrame),
		dec:  newDecoder(),
		done: make(chan struct{}),
	}
	e.dec.untrusted = cfg.untrustedPeer
	if id, ok := conn.(idler); ok {
		id.setIdle(e.dec.spare.refill)
	}
	if sp, ok := conn.(spinner); ok && cfg.spinWait > 0 {
		sp.setSpin(cfg.spinWait)
		e.spin = sp
	}
	e.fr.stallTimeout = cfg.frameTimeout
	e.fr.onStall = func(length, got int) {
		e.fail(fmt.Errorf("%w: no byte of a %d-byte frame for %v (%d arrived)", ErrFrameStalled, length, cfg.frameTimeout, got))
	}
	e.mon.budget = cfg.handlerBudget
	e.mon.timer = time.AfterFunc(time.Hour, e.tick)
	e.mon.timer.Stop()
	e.initBorrowing()
	return e, nil
}

// Peer returns the peer's hello (zero before a successful Handshake).
func (e *Endpoint) Peer() Hello { return e.peer }

// Start runs the reader and writer goroutines. It fails with
// ErrAlreadyStarted when called twice or during Handshake, and with ErrClosed
// after the endpoint was closed.
func (e *Endpoint) Start() error {
	if !e.state.CompareAndSwap(stateNew, stateStarted) && !e.state.CompareAndSwap(stateReady, stateStarted) {
		if e.state.Load() == stateClosed {
			return ErrClosed
		}
		return ErrAlreadyStarted
	}
	e.running.Store(2)
	// Senders may write at once: waiting for the writer goroutine to be
	// scheduled would cost the first message a thread's wake-up.
	e.out.start()
	go e.readLoop()
	go e.writeLoop()
	return nil
}

// Send queues env for the peer. The envelope is encoded before Send returns;
// env may be reused, but a []byte payload of 128 KiB or more is written from
// the caller's memory and must not change until it is sent.
//
// On the user lane Send blocks while the lane is full (WithUserQueue,
// WithUserQueueBytes), until there is room or ctx ends (ErrQueueFull); on the
// system lane it never blocks, and neither does a Send made from any
// endpoint's reader goroutine (a Handler), which overflows the bound instead.
// Errors: ErrTypeNotRegistered, ErrEncode, ErrMessageTooLarge (nothing
// was queued), ErrQueueFull, ErrClosed (the link has ended; every error of
// the link's wraps it, with why: ErrPeerGone, ErrPeerStalled when this send
// broke the link because the system lane passed WithSystemQueueBytes or this
// endpoint's reader answered a peer that does not read past 16 × the user
// lane's bounds, at least 16384 messages or 4 MiB).
func (e *Endpoint) Send(ctx context.Context, env *Envelope) error {
	_, _, err := e.sendWith(ctx, env, false, 0)
	return err
}

// sendWith queues env, numbered or not, acknowledging ack with it (not 0).
func (e *Endpoint) sendWith(ctx context.Context, env *Envelope, numbered bool, ack uint64) (uint64, int, error) {
	if ack != 0 {
		if f := beforeAckedQueue.Load(); f != nil {
			(*f)()
		}
	}
	seq, size, err := e.out.send(ctx, env, numbered, ack)
	if err != nil && errors.Is(err, ErrPeerStalled) {
		e.fail(err) // the peer does not read: the link is over
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return seq, size, err
}

// beforeAckedQueue, when set (by a test), runs as SendAcknowledging begins
// to queue its message: a slow sender, past the ack delay.
var beforeAckedQueue atomic.Pointer[func()]

// SendNumbered is Send for a message the peer will acknowledge: it is
// numbered in the order it is queued among this endpoint's numbered messages
// (the first is 1), and seq is its number. size is its encoded length. The
// receiving side counts the same messages as they arrive and reports what it
// has finished with Acknowledge; see AckHandler.
func (e *Endpoint) SendNumbered(ctx context.Context, env *Envelope) (seq uint64, size int, err error) {
	return e.sendWith(ctx, env, true, 0)
}

// DecodedInFlight returns the bytes of decoded messages the reader has
// delivered and that are not released yet (see WithMaxDecoded): with
// WithManualRelease, what the Handler has not given back; otherwise, the
// message being delivered.
func (e *Endpoint) DecodedInFlight() int64 { return e.decoded.Load() }

// Release gives back the decoded bytes of a processed message (its
// Envelope.Size), under WithManualRelease.
func (e *Endpoint) Release(n int64) { e.decoded.Add(-n) }

// UntrustedPeer reports whether the endpoint was made with
// WithUntrustedPeer.
func (e *Endpoint) UntrustedPeer() bool { return e.cfg.untrustedPeer }

// Done is closed when the link has ended and both goroutines have stopped.
func (e *Endpoint) Done() <-chan struct{} { return e.done }

// Err returns why the link ended (nil after a clean goodbye or before the end).
func (e *Endpoint) Err() error {
	select {
	case <-e.done:
		return e.err
	default:
		return nil
	}
}

// Close ends the link gracefully: what is queued is flushed, a goodbye is
// sent and the peer's goodbye awaited, for at most WithGoodbyeTimeout; then
// the stream is closed. It returns after both goroutines have stopped, except
// when called from the Handler (then it only starts the close). Close is
// idempotent; it returns nil after a clean goodbye, the reason the link ended
// otherwise, and nil on an endpoint that never started.
func (e *Endpoint) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.goodbyeTimeout)
	defer cancel()
	return e.Shutdown(ctx)
}

// Shutdown is Close bounded by ctx instead of WithGoodbyeTimeout. When ctx
// ends first, the link is aborted and ctx's error returned.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	if e.state.Load() != stateStarted {
		e.Abort()
		return nil
	}
	e.out.shutdown()
	e.endStandby() // the peer's goodbye must be read
	if e.inCallback() {
		return nil
	}
	select {
	case <-e.done:
		return e.err
	case <-ctx.Done():
		e.Abort()
		return context.Cause(ctx)
	}
}

// Abort ends the link at once: what is queued is dropped, nothing more is
// delivered and the stream is closed. It returns after both goroutines have
// stopped (except when called from the Handler). Abort is idempotent.
func (e *Endpoint) Abort() {
	e.fail(ErrClosed)
	if prev := e.state.Swap(stateClosed); prev == stateNew || prev == stateReady {
		e.finish() // no goroutine runs, no Handshake either
		return
	}
	// The goroutines, a Handshake in progress or an earlier call finish.
	if !e.inCallback() {
		<-e.done
	}
}

// inCallback reports whether the caller runs on this endpoint's reader
// goroutine or inside its Handler.Closed: waiting there for the link to end
// would wait for ourselves.
func (e *Endpoint) inCallback() bool {
	id := goid()
	return id == e.readerGoid.Load() || id == e.finisher.Load()
}

// fail records the first reason the link ends, stops sends and closes the
// stream, which unblocks both goroutines.
func (e *Endpoint) fail(err error) {
	e.errOnce.Do(func() {
		e.err = err
		switch {
		case err == nil, errors.Is(err, ErrClosed):
			e.cfg.logger.Debug().Err(err).Msg("mailbox: link closed")
		case errors.Is(err, ErrPeerGone):
			e.cfg.logger.Info().Err(err).Str("peer", e.peer.Address).Msg("mailbox: link lost")
		default:
			e.cfg.logger.Error().Err(err).Str("peer", e.peer.Address).Msg("mailbox: link failed")
		}
	})
	e.failed.Store(true)
	switch {
	case err == nil:
		err = ErrClosed
	case !errors.Is(err, ErrClosed):
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	e.out.stop(err)
	e.out.stopAck()
	e.mon.timer.Stop()
	e.conn.Close()
	e.wakeReader() // a reader parked in standby finishes
	// A lent Handler call is user code and may block for ever: the link's
	// end must not wait for it. The role is taken from it (as the monitor
	// would have, had it ticked twice first) and the successor, finding the
	// stream closed, exits in its place. A call lent after this look takes
	// the role from itself (Lend).
	e.takeLent()
}

// takeLent takes the reader role from a lent Handler call, if one runs, for
// a successor (takeOver).
func (e *Endpoint) takeLent() {
	for {
		w := e.role.Load()
		if w&phaseMask != phaseLent {
			return
		}
		if e.role.CompareAndSwap(w, w&^phaseMask|phaseGone) {
			e.takeOver()
			return
		}
	}
}

// exit is called by each goroutine as it stops; the last one finishes.
func (e *Endpoint) exit() {
	if e.running.Add(-1) == 0 {
		e.finish()
	}
}

// finish closes the stream, tells the Handler and closes done, once.
func (e *Endpoint) finish() {
	if !e.finishing.CompareAndSwap(false, true) {
		return
	}
	e.finisher.Store(goid())
	defer close(e.done)
	e.conn.Close()
	e.out.settle()                             // the counts Closed may read are final
	e.errOnce.Do(func() { e.err = ErrClosed }) // also orders the read below after fail's write
	defer func() {
		if r := recover(); r != nil {
			e.cfg.logger.Error().Interface("panic", r).Msg("mailbox: Handler.Closed panicked")
		}
	}()
	e.h.Closed(e.err)
}

func (e *Endpoint) writeLoop() {
	defer e.exit()
	if f := writerStarting.Load(); f != nil {
		(*f)(e)
	}
	err := e.out.run()
	switch {
	case err == nil:
		e.sentBye.Store(true)
		if e.gotBye.Load() {
			e.fail(nil) // both goodbyes crossed: the link is done
		}
	case err == errAborted:
		e.out.mu.Lock()
		dropped := e.out.queuedLocked()
		e.out.mu.Unlock()
		if dropped > 0 {
			// Accepted by Send but never written: the owner answers requests
			// and watches (it tracks them); this line accounts for the rest.
			e.cfg.logger.Warn().Int("messages", dropped).Str("peer", e.peer.Address).Msg("mailbox: link aborted with messages queued; dropped")
		}
	default:
		e.fail(fmt.Errorf("%w: write: %w", ErrPeerGone, err))
	}
}

// writerStarting, when set (by a test), runs as a writer goroutine begins.
var writerStarting atomic.Pointer[func(*Endpoint)]
