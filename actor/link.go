package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// Link is a node's connection to one neighbouring node, its parent or one of
// its children, and the actor.Process for every PID routed through it.
//
// protoactor caches the Process it resolved inside each PID, so a Link lives
// as long as its address is in use: when the stream under it drops and a new
// one is connected (a restarted child keeps its address) the same Link
// carries on. While it is down, messages are held (bounded, WithHoldLimit)
// for the next Connect; once it is gone, they are dead letters.
//
// What a link tracks, so that nothing waits forever on a dead peer:
//   - watches that went out through it (watchee behind the link → watchers
//     on this side); on loss each watcher gets Terminated{AddressTerminated};
//   - watches that came in through it (watchee on this side → watchers
//     behind the link); on loss each watchee gets an Unwatch, so that no
//     actor keeps a watcher that can never be told;
//   - requests in flight: messages whose sender is a future; on loss each
//     future gets a DeadLetterResponse at once.
//
// All methods are safe for concurrent use.
type Link struct {
	node *Node
	addr string

	mu         sync.Mutex
	state      linkState                     // guarded by mu
	ep         *mailbox.Endpoint             // current stream; nil unless up (guarded by mu)
	h          *linkHandler                  // ep's Handler (guarded by mu)
	flushing   bool                          // Connect is sending held messages; sends queue behind them (guarded by mu)
	held       []heldMsg                     // messages waiting for the next Connect, redelivered ones first (guarded by mu)
	heldBytes  int                           // encoded size of held messages, redelivered ones excepted (guarded by mu)
	ret        retention                     // what the peer has not acknowledged (guarded by mu)
	ackc       atomic.Pointer[ackCounter]    // counts what the peer retains; nil unless AckFor
	caps       atomic.Pointer[capabilities]  // what an untrusted peer was given; nil: trusted
	counts     linkCounts                    // traffic of past streams, dead letters (see linkstats.go)
	watches    map[pidKey]map[pidKey]*pa.PID // out: watchee behind the link → watchers (guarded by mu)
	watchedBy  map[pidKey]map[pidKey]*pa.PID // in: watchee on this side → watchers behind the link (guarded by mu)
	inflight   map[pidKey]inflight           // futures awaiting an answer through this link (guarded by mu)
	sweepAt    int                           // guarded by mu
	reconnect  bool                          // down, not gone, after a loss (guarded by mu)
	onDown     []func(err error)             // in the order added (guarded by mu)
	upCh       chan struct{}                 // closed while up (guarded by mu)
	upClosed   bool                          // upCh is closed (guarded by mu)
	nWatchedBy int                           // pairs in watchedBy (guarded by mu)
	spawned    map[pidKey]*pa.PID            // actors the peer spawned here (guarded by mu)
}

var _ pa.Process = (*Link)(nil)

type linkState uint8

const (
	linkDown linkState = iota // no stream yet, or lost and waiting for Connect
	linkUp
	linkGone // will not come back
)

func (s linkState) String() string {
	switch s {
	case linkDown:
		return "down"
	case linkUp:
		return "up"
	}
	return "gone"
}

type pidKey struct{ addr, id string }

func keyOf(p *pa.PID) pidKey { return pidKey{p.Address, p.Id} }

func (k pidKey) pid() *pa.PID { return pa.NewPID(k.addr, k.id) }

type inflight struct {
	pid      *pa.PID
	since    time.Time
	retained bool // the request went to the retained actor: a loss does not fail it
}

// heldMsg is a message waiting for the next Connect.
type heldMsg struct {
	env  mailbox.Envelope
	size int    // counted against WithHoldBytes; 0 for a redelivered message
	seq  uint64 // its number on the lost stream for a redelivered message; 0 otherwise
}

// inflightMaxAge: a tracked request older than this is forgotten at the next
// sweep (its future has long timed out).
const inflightMaxAge = 10 * time.Minute

// minSweep is the inflight table size that triggers the first sweep.
const minSweep = 1024

func newLink(n *Node, addr string) *Link {
	return &Link{
		node:      n,
		addr:      addr,
		watches:   make(map[pidKey]map[pidKey]*pa.PID),
		watchedBy: make(map[pidKey]map[pidKey]*pa.PID),
		inflight:  make(map[pidKey]inflight),
		sweepAt:   minSweep,
		upCh:      make(chan struct{}),
	}
}

// Address returns the peer's address.
func (l *Link) Address() string { return l.addr }

// SetReconnect decides what a loss means: true keeps the link down, holding
// messages for the next Connect (a child that will be restarted); false (the
// default) makes it gone.
func (l *Link) SetReconnect(on bool) {
	l.mu.Lock()
	l.reconnect = on
	l.mu.Unlock()
}

// OnDown adds a function called after the link is lost and its watchers and
// requests have been told: on the goroutine that ended the stream (the
// endpoint's, or the caller of Close when the link was down). Functions are called
// in the order they were added, and never replace one another: package
// procnode keeps its own on the links it makes, and a caller's runs beside
// it. A nil f is ignored.
func (l *Link) OnDown(f func(err error)) {
	if f == nil {
		return
	}
	l.mu.Lock()
	l.onDown = append(l.onDown, f)
	l.mu.Unlock()
}

// Up returns a channel that is closed while the link is up. A new channel is
// returned after the link goes down.
func (l *Link) Up() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.upCh
}

// IsUp reports whether a stream is connected.
func (l *Link) IsUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state == linkUp
}

// LinkStats is a snapshot of what a link tracks.
type LinkStats struct {
	State         string // "down", "up" or "gone"
	Watches       int    // (watchee behind the link, watcher here) pairs
	WatchedBy     int    // (watchee here, watcher behind the link) pairs
	Requests      int    // requests in flight through the link
	Held          int    // messages held for the next Connect (redelivered ones included)
	HeldBytes     int    // their encoded size (redelivered ones excepted)
	Retained      int    // messages sent to the retained actor, not yet acknowledged
	RetainedBytes int    // their encoded size

	// Traffic and queues: see linkstats.go.
	LinkTraffic
}

// Stats returns a snapshot of the link's tables.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LinkStats{State: l.state.String(), Requests: len(l.inflight), Held: len(l.held), HeldBytes: l.heldBytes,
		Retained: l.ret.msgs.len(), RetainedBytes: l.ret.bytes}
	for _, ws := range l.watches {
		s.Watches += len(ws)
	}
	for _, ws := range l.watchedBy {
		s.WatchedBy += len(ws)
	}
	s.LinkTraffic = l.trafficLocked()
	return s
}

// Connect runs the handshake on conn and brings the link up: held messages
// are sent first, in order. The peer must announce the link's address and
// the same cookie. conn is closed on failure. Errors: mailbox's handshake
// errors, ErrWrongPeer, ErrLinkExists (the link is up), ErrLinkGone (closed).
func (l *Link) Connect(ctx context.Context, conn io.ReadWriteCloser, cookie []byte, incarnation uint64) (mailbox.Hello, error) {
	h := &linkHandler{link: l}
	opts := append([]mailbox.Option{mailbox.WithLocalAddress(l.node.address), mailbox.WithLogger(l.node.log)}, l.node.cfg.endpointOpts...)
	ep, err := mailbox.NewEndpoint(conn, h, opts...)
	if err != nil {
		conn.Close()
		return mailbox.Hello{}, err
	}
	h.ep = ep
	peer, err := ep.Handshake(ctx, mailbox.Hello{Address: l.node.address, Incarnation: incarnation, Cookie: cookie, Caps: mailbox.CapAck})
	if err != nil {
		return peer, err
	}
	if peer.Address != l.addr {
		ep.Abort()
		return peer, fmt.Errorf("%w: got %q, want %q", ErrWrongPeer, peer.Address, l.addr)
	}
	l.mu.Lock()
	switch l.state {
	case linkUp:
		l.mu.Unlock()
		ep.Abort()
		return peer, fmt.Errorf("%w: %s is up", ErrLinkExists, l.addr)
	case linkGone:
		l.mu.Unlock()
		ep.Abort()
		return peer, fmt.Errorf("%w: %s", ErrLinkGone, l.addr)
	}
	if err := ep.Start(); err != nil {
		l.mu.Unlock()
		ep.Abort()
		return peer, err
	}
	l.ep, l.h, l.state = ep, h, linkUp
	l.flushing = len(l.held) > 0
	l.upCh, l.upClosed = closedOrNew(l.upCh, l.upClosed)
	l.mu.Unlock()
	l.flush(ep)
	l.node.system.EventStream.Publish(&LinkUp{Address: l.addr, Incarnation: peer.Incarnation})
	l.node.log.Debug().Str("peer", l.addr).Uint64("incarnation", peer.Incarnation).Msg("link up")
	return peer, nil
}

// closedOrNew returns a closed channel: ch if it is closed already.
func closedOrNew(ch chan struct{}, closed bool) (chan struct{}, bool) {
	if !closed {
		close(ch)
	}
	return ch, true
}

// flush sends the held messages on ep, in order, one at a time without
// holding mu during a Send (a full user lane may wait, and the reader needs
// mu meanwhile). Sends made during the flush are held behind, so order
// holds; the flush ends when the held queue is empty or the stream ends.
func (l *Link) flush(ep *mailbox.Endpoint) {
	for {
		l.mu.Lock()
		if l.ep != ep {
			l.mu.Unlock()
			return // lost: what is left is held for the next Connect, or was dead-lettered
		}
		if len(l.held) == 0 {
			l.flushing = false
			l.mu.Unlock()
			return
		}
		m := l.held[0]
		l.held[0] = heldMsg{}
		l.held = l.held[1:]
		l.heldBytes -= m.size
		retained := l.retainsLocked(&m.env)
		l.mu.Unlock()
		if err := l.sendOn(ep, &m.env, retained, false); err != nil {
			l.sendFailed(ep, &m.env, err, true)
			if linkEnded(err) {
				<-ep.Done() // lost has run once it is closed; the loop then ends
			}
		}
	}
}

// Close ends the link for good: the stream is closed gracefully (bounded by
// ctx, or by mailbox.DefaultGoodbyeTimeout when ctx has no deadline), held
// messages become dead letters and watchers are told. It is idempotent.
func (l *Link) Close(ctx context.Context) error {
	l.mu.Lock()
	ep := l.ep
	wasGone := l.state == linkGone
	l.reconnect = false
	l.state = linkGone
	l.mu.Unlock()
	if wasGone && ep == nil {
		return nil
	}
	if ep != nil {
		if _, ok := ctx.Deadline(); !ok {
			// A peer that never answers the goodbye must not hang a Close
			// called with context.Background: bound it by the default goodbye
			// timeout (not the endpoint's WithGoodbyeTimeout: Close may run
			// before any endpoint was made).
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, mailbox.DefaultGoodbyeTimeout)
			defer cancel()
		}
		// Closed runs lost before Shutdown returns (unless we are on the
		// endpoint's own goroutine, where it runs right after).
		return ep.Shutdown(ctx)
	}
	l.lost(nil, nil)
	return nil
}

// Abort ends the stream at once (the peer is misbehaving or dead); the link
// goes down or gone as SetReconnect says.
func (l *Link) Abort() {
	l.mu.Lock()
	ep := l.ep
	l.mu.Unlock()
	if ep != nil {
		ep.Abort()
	}
}

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
					l.sendFailed(ep, env, err, false)
					return
				}
				full = true // sendOn waits for room
			} else {
				l.mu.Unlock()
			}
			if err := l.sendOn(ep, env, retained, full); err != nil {
				l.sendFailed(ep, env, err, false)
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
// futures (linkHandler.Borrowable), and for at most about a millisecond
// (mailbox's borrowing ticker), so that a request from an actor does not
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

// sendFailed handles a message that stream ep refused. A message the stream
// refused for itself is a dead letter with the reason. If the stream is
// ending and the link will come back, the message is held (in front when it
// came from the held queue); if lost has already run for ep, it answered
// what the message tracked (a request's future, a watch) and the message is
// dropped, any other message goes as the link's state now says.
func (l *Link) sendFailed(ep *mailbox.Endpoint, env *mailbox.Envelope, err error, front bool) {
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
				l.held = append([]heldMsg{{env: *env}}, l.held...)
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
	l.mu.Unlock()
	if tracked(env) {
		return // lost answered it: a DeadLetterResponse, or Terminated{AddressTerminated}
	}
	l.send(env)
}

// tracked reports whether a message is one that the link's tables record
// and a loss answers: a request (its sender is a future) or a Watch.
func tracked(env *mailbox.Envelope) bool {
	if env.Lane == mailbox.LaneSystem {
		w, ok := env.Message.(*pa.Watch)
		return ok && w.Watcher != nil
	}
	return isFuture(env.Sender)
}

// futurePrefix starts the id of every protoactor future (actor/future.go
// names them "future" + the registry's next id, which starts with "$").
const futurePrefix = "future$"

func isFuture(p *pa.PID) bool { return p != nil && strings.HasPrefix(p.Id, futurePrefix) }

// trackLocked records what an outgoing message means for the link's tables.
func (l *Link) trackLocked(env *mailbox.Envelope) {
	if env.Lane == mailbox.LaneSystem {
		switch m := env.Message.(type) {
		case *pa.Watch:
			if m.Watcher != nil {
				addWatch(l.watches, keyOf(env.Target), m.Watcher)
			}
		case *pa.Unwatch:
			if m.Watcher != nil {
				dropWatch(l.watches, keyOf(env.Target), keyOf(m.Watcher))
			}
		case *pa.Terminated:
			// A watchee on this side told a watcher behind the link.
			if m.Who != nil && dropWatch(l.watchedBy, keyOf(m.Who), keyOf(env.Target)) {
				l.nWatchedBy--
			}
		}
		return
	}
	if isFuture(env.Sender) {
		if len(l.inflight) >= l.sweepAt {
			l.sweepLocked()
		}
		l.inflight[keyOf(env.Sender)] = inflight{pid: env.Sender, since: time.Now(), retained: l.retainsLocked(env)}
	}
}

// untrackLocked undoes trackLocked for a message that did not go out.
func (l *Link) untrackLocked(env *mailbox.Envelope) {
	if env.Lane == mailbox.LaneSystem {
		if m, ok := env.Message.(*pa.Watch); ok && m.Watcher != nil {
			dropWatch(l.watches, keyOf(env.Target), keyOf(m.Watcher))
		}
		return
	}
	if isFuture(env.Sender) {
		delete(l.inflight, keyOf(env.Sender))
	}
}

// addWatch records a pair; it reports whether the pair is new.
func addWatch(t map[pidKey]map[pidKey]*pa.PID, watchee pidKey, watcher *pa.PID) bool {
	ws := t[watchee]
	if ws == nil {
		ws = make(map[pidKey]*pa.PID)
		t[watchee] = ws
	}
	k := keyOf(watcher)
	_, had := ws[k]
	ws[k] = watcher
	return !had
}

// dropWatch forgets a pair; it reports whether the pair was there.
func dropWatch(t map[pidKey]map[pidKey]*pa.PID, watchee, watcher pidKey) bool {
	ws := t[watchee]
	if ws == nil {
		return false
	}
	_, had := ws[watcher]
	delete(ws, watcher)
	if len(ws) == 0 {
		delete(t, watchee)
	}
	return had
}

func hasWatch(t map[pidKey]map[pidKey]*pa.PID, watchee, watcher pidKey) bool {
	_, ok := t[watchee][watcher]
	return ok
}

// sweepLocked forgets requests whose local future is gone (answered by
// another path or timed out) and any older than inflightMaxAge.
func (l *Link) sweepLocked() {
	now := time.Now()
	for k, f := range l.inflight {
		gone := now.Sub(f.since) > inflightMaxAge
		if !gone && f.pid.Address == l.node.address {
			_, ok := l.node.system.ProcessRegistry.GetLocal(f.pid.Id)
			gone = !ok
		}
		if gone {
			delete(l.inflight, k)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.inflight))
}

// forgetVia drops requests in flight through l whose future lies behind the
// lost link via: their answer can no longer reach them.
func (l *Link) forgetVia(via *Link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, f := range l.inflight {
		if l.node.routesVia(f.pid.Address, via) {
			delete(l.inflight, k)
		}
	}
}

// deadLetter accounts for a message that cannot cross the link (see
// Node.deadLetter).
func (l *Link) deadLetter(env *mailbox.Envelope, reason error) {
	l.counts.deadLetters.Add(1)
	l.node.deadLetter(l.addr, env, reason)
}

// Undeliverable is the message of a DeadLetterEvent published for a message
// that could not cross a link (or could not be decoded after crossing).
type Undeliverable struct {
	Message any   // the message, or nil if it did not decode
	Reason  error // why: ErrLinkGone, ErrHeldFull, mailbox.ErrTypeNotRegistered ...
}

// String says what could not be delivered and why.
func (u *Undeliverable) String() string {
	return fmt.Sprintf("undeliverable %T: %v", u.Message, u.Reason)
}

// pidString formats a PID for logs: id@address, "" for nil.
func pidString(p *pa.PID) string {
	if p == nil {
		return ""
	}
	return p.Id + "@" + p.Address
}

func sendSystem(sys *pa.ActorSystem, to *pa.PID, m any) {
	p, _ := sys.ProcessRegistry.Get(to)
	p.SendSystemMessage(to, m)
}

// lost runs once per stream that ends (ep nil: a link closed while down):
// watchers of actors behind the link get Terminated{AddressTerminated},
// actors watched from behind it get an Unwatch, requests in flight get a
// DeadLetterResponse, and the other links forget requests whose future was
// behind this one.
func (l *Link) lost(ep *mailbox.Endpoint, err error) {
	l.mu.Lock()
	if ep != nil && l.ep != ep {
		l.mu.Unlock()
		return
	}
	l.ep, l.h = nil, nil
	l.flushing = false
	l.counts.retireLocked(ep)
	if l.state == linkUp {
		if l.reconnect {
			l.state = linkDown
		} else {
			l.state = linkGone
		}
	}
	if l.upClosed {
		l.upCh, l.upClosed = make(chan struct{}), false
	}
	gone := l.state == linkGone
	watches, watchedBy, requests := l.watches, l.watchedBy, l.inflight
	l.watches, l.watchedBy, l.nWatchedBy = make(map[pidKey]map[pidKey]*pa.PID), make(map[pidKey]map[pidKey]*pa.PID), 0
	l.inflight, l.sweepAt = make(map[pidKey]inflight), minSweep
	// What the peer did not acknowledge goes again, first (or, gone, is a
	// dead letter like the held messages).
	if retained := l.takeRetainedLocked(); len(retained) > 0 {
		front := make([]heldMsg, 0, len(retained)+len(l.held))
		for _, m := range retained {
			front = append(front, heldMsg{env: m.env, seq: m.seq})
		}
		l.held = append(front, l.held...)
	}
	if !gone {
		// A request to the retained actor whose message the peer finished
		// but did not answer yet is not failed: the peer comes back, and
		// the actor may still answer it (as in one process, where such a
		// request waits for its own timeout).
		for k, f := range requests {
			if f.retained {
				delete(requests, k)
				l.inflight[k] = f
			}
		}
	}
	// Held messages still go out (down) or become dead letters (gone, with a
	// DeadLetterResponse for a request): either way their watches and
	// requests are not answered here. A redelivered message that is not a
	// waiting request, when the link is gone, is dropped without a dead
	// letter: the peer had it already (like the mailbox of an actor that
	// stops, whose messages protoactor drops), and its sender may have had
	// its answer.
	var held []heldMsg
	dropped := 0
	for i := range l.held {
		m := &l.held[i]
		env := &m.env
		waiting := false
		if env.Lane == mailbox.LaneSystem {
			if w, ok := env.Message.(*pa.Watch); ok && w.Watcher != nil {
				dropWatch(watches, keyOf(env.Target), keyOf(w.Watcher))
				if !gone {
					addWatch(l.watches, keyOf(env.Target), w.Watcher)
				}
			}
		} else if isFuture(env.Sender) {
			k := keyOf(env.Sender)
			if f, ok := requests[k]; ok {
				delete(requests, k)
				waiting = true
				if !gone {
					l.inflight[k] = f
				}
			}
		}
		if gone {
			if m.seq != 0 && !waiting {
				dropped++
				continue
			}
			held = append(held, *m)
		}
	}
	if gone {
		l.held, l.heldBytes = nil, 0
		if dropped > 0 {
			l.node.log.Debug().Str("peer", l.addr).Int("messages", dropped).Msg("link gone with messages its peer had not acknowledged; dropped")
		}
	}
	onDown := l.onDown[:len(l.onDown):len(l.onDown)]
	l.mu.Unlock()

	sys := l.node.system
	nwatch := 0
	for watchee, ws := range watches {
		who := watchee.pid()
		for _, w := range ws {
			sendSystem(sys, w, &pa.Terminated{Who: who, Why: pa.TerminatedReason_AddressTerminated})
			nwatch++
		}
	}
	for watchee, ws := range watchedBy {
		to := watchee.pid()
		for _, w := range ws {
			sendSystem(sys, to, &pa.Unwatch{Watcher: w})
		}
	}
	for _, f := range requests {
		sys.Root.Send(f.pid, &pa.DeadLetterResponse{})
	}
	for _, o := range l.node.Links() {
		if o != l {
			o.forgetVia(l)
		}
	}
	if gone {
		for i := range held {
			l.deadLetter(&held[i].env, ErrLinkGone)
		}
		l.stopSpawned()
		l.node.removeLink(l)
	}
	if err != nil {
		l.node.log.Info().Err(err).Str("peer", l.addr).Bool("gone", gone).Int("watchers", nwatch).Int("requests", len(requests)).Msg("link down")
	}
	sys.EventStream.Publish(&LinkDown{Address: l.addr, Err: err, Gone: gone})
	for _, f := range onDown {
		f(err)
	}
}

// LinkUp is published on the event stream when a link comes up.
type LinkUp struct {
	Address     string // the peer's address
	Incarnation uint64 // the peer's incarnation (its restart count)
}

// LinkDown is published on the event stream when a link's stream ends.
type LinkDown struct {
	Address string // the peer's address
	Err     error  // nil after a clean goodbye
	Gone    bool   // the link will not come back
}

// linkHandler receives one endpoint's traffic for its link, on the
// endpoint's reader goroutine.
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
	if target == nil {
		l.node.log.Warn().Str("peer", l.addr).Str("type", fmt.Sprintf("%T", env.Message)).Msg("dead letter: message without target")
		return
	}
	sys := l.node.system
	if err := l.node.check(l, env); err != nil {
		l.refuse(env, err)
		return
	}
	if c := l.caps.Load(); c != nil {
		if err := l.untrustedCheck(c, env); err != nil {
			l.refuse(env, err)
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
	future := isFuture(target)
	if future {
		l.mu.Lock()
		delete(l.inflight, keyOf(target))
		l.mu.Unlock()
		if target.Id == h.awaiting {
			h.answered = true
		}
		// Its requester may send again at once: let it read its answer.
		h.ep.Standby()
	}
	var msg any
	if ackc := l.ackc.Load(); ackc != nil && ackc.counts(env, l.node.address) {
		// An envelope of its own: the actor's middleware recognises it.
		menv := &pa.MessageEnvelope{Header: env.Header, Message: env.Message, Sender: env.Sender}
		ackc.delivered(h.ep, menv)
		msg = menv
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
	sys.Root.Send(target, msg)
}

// Acked implements mailbox.AckHandler: the peer finished what the link
// retained, up to n.
func (h *linkHandler) Acked(n uint64) { h.link.acked(h.ep, n) }

// deliverSystem hands a system message from the peer to its target. Only
// the system messages protoactor itself sends to a PID of another node are
// accepted (Watch, Unwatch, Terminated, Stop), and only with their PIDs set:
// anything else would reach actor internals (a nil Watcher panics inside the
// target's context), so a peer's bytes could restart any actor here.
func (l *Link) deliverSystem(env *mailbox.Envelope) {
	sys := l.node.system
	target, msg := env.Target, env.Message
	switch m := msg.(type) {
	case *pa.Watch:
		if m.Watcher == nil {
			l.refuseSystem(target, msg)
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
