package actor

import (
	"context"
	"fmt"
	"io"
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
//     future gets a DeadLetterResponse at once, unless the link will come
//     back and its message is held or went to the retained actor (held
//     Watches likewise wait).
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
	paused     map[string]chan struct{}      // the peer's actors it asked us to pause sends to; closed on resume (guarded by mu; credit.go)
	npaused    atomic.Int32                  // len(paused): 0 skips the check on the send path
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
	Paused        int    // actors of the peer whose node paused our sends to them (credit spent; credit.go)

	// Traffic and queues: see linkstats.go.
	LinkTraffic
}

// Stats returns a snapshot of the link's tables.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LinkStats{State: l.state.String(), Requests: len(l.inflight), Held: len(l.held), HeldBytes: l.heldBytes,
		Retained: l.ret.msgs.len(), RetainedBytes: l.ret.bytes, Paused: len(l.paused)}
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
	if l.caps.Load() != nil {
		opts = append(opts, mailbox.WithUntrustedPeer())
	}
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

// closedOrNew closes ch unless closed says it is closed already, and
// returns it, now closed.
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
			l.sendFailed(ep, &m.env, err, &m)
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
