package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
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
// carries on. While it is down, messages are held (bounded) for the next
// Connect; once it is gone, they are dead letters.
//
// What a link tracks, so that nothing waits forever on a dead peer:
//   - watches that went out through it (watchee behind the link → watchers);
//     on loss each watcher gets Terminated{AddressTerminated};
//   - requests in flight: messages whose sender is a future; on loss each
//     future gets a DeadLetterResponse at once.
type Link struct {
	node *Node
	addr string

	mu        sync.Mutex
	state     linkState
	ep        *mailbox.Endpoint // current stream; nil unless up (guarded by mu)
	held      []mailbox.Envelope
	watches   map[pidKey]map[pidKey]*pa.PID // watchee → watchers (guarded by mu)
	inflight  map[pidKey]inflight           // futures awaiting an answer through this link (guarded by mu)
	sweepAt   int
	reconnect bool // down, not gone, after a loss (guarded by mu)
	onDown    func(err error)
	upCh      chan struct{} // closed when up; replaced when down (guarded by mu)
}

var _ pa.Process = (*Link)(nil)

type linkState uint8

const (
	linkDown linkState = iota // no stream yet, or lost and waiting for Connect
	linkUp
	linkGone // will not come back
)

type pidKey struct{ addr, id string }

func keyOf(p *pa.PID) pidKey { return pidKey{p.Address, p.Id} }

type inflight struct {
	pid   *pa.PID
	since time.Time
}

// inflightMaxAge: a tracked request older than this is forgotten at the next
// sweep (its future has long timed out).
const inflightMaxAge = 10 * time.Minute

func newLink(n *Node, addr string) *Link {
	return &Link{
		node:     n,
		addr:     addr,
		watches:  make(map[pidKey]map[pidKey]*pa.PID),
		inflight: make(map[pidKey]inflight),
		sweepAt:  1024,
		upCh:     make(chan struct{}),
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

// OnDown sets a function called (on the endpoint's goroutine) after the link
// is lost and its watchers and requests have been told.
func (l *Link) OnDown(f func(err error)) {
	l.mu.Lock()
	l.onDown = f
	l.mu.Unlock()
}

// Up returns a channel closed while the link is up.
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

// Connect runs the handshake on conn and brings the link up: held messages
// are sent first, in order. The peer must announce the link's address and
// the same cookie. conn is closed on failure.
func (l *Link) Connect(ctx context.Context, conn io.ReadWriteCloser, cookie []byte, incarnation uint64) (mailbox.Hello, error) {
	h := &linkHandler{link: l}
	opts := append([]mailbox.Option{mailbox.WithLocalAddress(l.node.address), mailbox.WithLogger(l.node.log)}, l.node.cfg.endpointOpts...)
	ep, err := mailbox.NewEndpoint(conn, h, opts...)
	if err != nil {
		conn.Close()
		return mailbox.Hello{}, err
	}
	h.ep = ep
	peer, err := ep.Handshake(ctx, mailbox.Hello{Address: l.node.address, Incarnation: incarnation, Cookie: cookie})
	if err != nil {
		return peer, err
	}
	if peer.Address != l.addr {
		ep.Abort()
		return peer, fmt.Errorf("%w: got %q, want %q", ErrWrongPeer, peer.Address, l.addr)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != linkDown {
		ep.Abort()
		return peer, fmt.Errorf("%w: %s is %v", ErrLinkExists, l.addr, l.state)
	}
	l.ep, l.state = ep, linkUp
	if err := ep.Start(); err != nil {
		return peer, err
	}
	held := l.held
	l.held = nil
	for i := range held {
		// Held messages go first; new sends wait for mu meanwhile, so order holds.
		if err := l.sendOn(ep, &held[i]); err != nil {
			l.deadLetter(&held[i], err)
		}
	}
	close(l.upCh)
	l.node.system.EventStream.Publish(&LinkUp{Address: l.addr, Incarnation: peer.Incarnation})
	l.node.log.Debug().Str("peer", l.addr).Uint64("incarnation", peer.Incarnation).Msg("link up")
	return peer, nil
}

func (s linkState) String() string {
	switch s {
	case linkDown:
		return "down"
	case linkUp:
		return "up"
	}
	return "gone"
}

// Close ends the link for good: the stream is closed gracefully (bounded by
// ctx), held messages become dead letters and watchers are told.
func (l *Link) Close(ctx context.Context) error {
	l.mu.Lock()
	ep := l.ep
	wasGone := l.state == linkGone
	l.reconnect = false
	l.state = linkGone
	held := l.held
	l.held = nil
	l.mu.Unlock()
	if wasGone {
		return nil
	}
	var err error
	if ep != nil {
		err = ep.Shutdown(ctx)
		<-ep.Done() // Closed has run: watchers and requests were told
	} else {
		l.lost(nil, ErrLinkGone)
	}
	for i := range held {
		l.deadLetter(&held[i], ErrLinkGone)
	}
	l.node.removeLink(l)
	return err
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

// SendUserMessage implements actor.Process: the message goes on the user lane.
func (l *Link) SendUserMessage(pid *pa.PID, message any) {
	env := mailbox.Envelope{Lane: mailbox.LaneUser, Target: pid, Message: message}
	if e, ok := message.(*pa.MessageEnvelope); ok {
		env.Message, env.Sender = e.Message, e.Sender
		if len(e.Header) > 0 {
			env.Header = e.Header
		}
	}
	l.send(&env)
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
	l.mu.Lock()
	switch l.state {
	case linkUp:
		ep := l.ep
		l.trackLocked(env)
		l.mu.Unlock()
		if err := l.sendOn(ep, env); err != nil {
			l.mu.Lock()
			l.untrackLocked(env)
			l.mu.Unlock()
			l.deadLetter(env, err)
		}
		return
	case linkDown:
		if len(l.held) < l.node.cfg.holdLimit {
			l.trackLocked(env)
			l.held = append(l.held, *env)
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		l.deadLetter(env, ErrHeldFull)
	default:
		l.mu.Unlock()
		l.deadLetter(env, ErrLinkGone)
	}
}

func (l *Link) sendOn(ep *mailbox.Endpoint, env *mailbox.Envelope) error {
	if env.Lane == mailbox.LaneSystem {
		return ep.Send(context.Background(), env)
	}
	ctx := newLazyTimeout(l.node.cfg.sendTimeout)
	err := ep.Send(ctx, env)
	ctx.stop()
	return err
}

func isFuture(p *pa.PID) bool { return p != nil && strings.HasPrefix(p.Id, "future$") }

func (l *Link) trackLocked(env *mailbox.Envelope) {
	switch m := env.Message.(type) {
	case *pa.Watch:
		if env.Lane == mailbox.LaneSystem && m.Watcher != nil {
			k := keyOf(env.Target)
			ws := l.watches[k]
			if ws == nil {
				ws = make(map[pidKey]*pa.PID)
				l.watches[k] = ws
			}
			ws[keyOf(m.Watcher)] = m.Watcher
		}
		return
	case *pa.Unwatch:
		if env.Lane == mailbox.LaneSystem && m.Watcher != nil {
			l.dropWatchLocked(keyOf(env.Target), keyOf(m.Watcher))
		}
		return
	}
	if isFuture(env.Sender) {
		if len(l.inflight) >= l.sweepAt {
			l.sweepLocked()
		}
		l.inflight[keyOf(env.Sender)] = inflight{pid: env.Sender, since: time.Now()}
	}
}

func (l *Link) untrackLocked(env *mailbox.Envelope) {
	switch m := env.Message.(type) {
	case *pa.Watch:
		if m.Watcher != nil {
			l.dropWatchLocked(keyOf(env.Target), keyOf(m.Watcher))
		}
	default:
		if isFuture(env.Sender) {
			delete(l.inflight, keyOf(env.Sender))
		}
	}
}

func (l *Link) dropWatchLocked(watchee, watcher pidKey) {
	if ws := l.watches[watchee]; ws != nil {
		delete(ws, watcher)
		if len(ws) == 0 {
			delete(l.watches, watchee)
		}
	}
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
	l.sweepAt = max(1024, 2*len(l.inflight))
}

// deadLetter accounts for a message that cannot cross the link: a Watch is
// answered with Terminated{AddressTerminated}; anything else is published as
// a DeadLetterEvent, whose handler answers a request with a
// DeadLetterResponse. Each gets a log line with the reason.
func (l *Link) deadLetter(env *mailbox.Envelope, reason error) {
	sys := l.node.system
	l.node.log.Warn().Err(reason).Str("peer", l.addr).Stringer("target", env.Target).
		Str("type", fmt.Sprintf("%T", env.Message)).Str("lane", env.Lane.String()).Msg("dead letter")
	if w, ok := env.Message.(*pa.Watch); ok && w.Watcher != nil {
		sendSystem(sys, w.Watcher, &pa.Terminated{Who: env.Target, Why: pa.TerminatedReason_AddressTerminated})
		return
	}
	sys.EventStream.Publish(&pa.DeadLetterEvent{PID: env.Target, Message: &Undeliverable{Message: env.Message, Reason: reason}, Sender: env.Sender})
}

// Undeliverable is the message of a DeadLetterEvent published for a message
// that could not cross a link (or could not be decoded after crossing).
type Undeliverable struct {
	Message any   // the message, or nil if it did not decode
	Reason  error // why: ErrLinkGone, ErrHeldFull, mailbox.ErrTypeNotRegistered ...
}

func (u *Undeliverable) String() string { return fmt.Sprintf("undeliverable %T: %v", u.Message, u.Reason) }

func sendSystem(sys *pa.ActorSystem, to *pa.PID, m any) {
	p, _ := sys.ProcessRegistry.Get(to)
	p.SendSystemMessage(to, m)
}

// lost runs once per stream that ends: watchers of actors behind the link get
// Terminated{AddressTerminated}, requests in flight get a DeadLetterResponse.
func (l *Link) lost(ep *mailbox.Endpoint, err error) {
	l.mu.Lock()
	if ep != nil && l.ep != ep {
		l.mu.Unlock()
		return
	}
	l.ep = nil
	if l.state == linkUp {
		if l.reconnect {
			l.state = linkDown
		} else {
			l.state = linkGone
		}
		l.upCh = make(chan struct{})
	}
	gone := l.state == linkGone
	watches, requests := l.watches, l.inflight
	l.watches, l.inflight = make(map[pidKey]map[pidKey]*pa.PID), make(map[pidKey]inflight)
	held := l.held
	if gone {
		l.held = nil
	}
	onDown := l.onDown
	l.mu.Unlock()

	sys := l.node.system
	for watchee, ws := range watches {
		who := pa.NewPID(watchee.addr, watchee.id)
		for _, w := range ws {
			sendSystem(sys, w, &pa.Terminated{Who: who, Why: pa.TerminatedReason_AddressTerminated})
		}
	}
	for _, f := range requests {
		sys.Root.Send(f.pid, &pa.DeadLetterResponse{})
	}
	if gone {
		for i := range held {
			l.deadLetter(&held[i], ErrLinkGone)
		}
		l.node.removeLink(l)
	}
	if err != nil && !errors.Is(err, ErrLinkGone) {
		l.node.log.Info().Err(err).Str("peer", l.addr).Bool("gone", gone).Int("watchers", len(watches)).Int("requests", len(requests)).Msg("link down")
	}
	sys.EventStream.Publish(&LinkDown{Address: l.addr, Err: err, Gone: gone})
	if onDown != nil {
		onDown(err)
	}
}

// LinkUp is published on the event stream when a link comes up.
type LinkUp struct {
	Address     string
	Incarnation uint64
}

// LinkDown is published on the event stream when a link's stream ends.
type LinkDown struct {
	Address string
	Err     error // nil after a clean goodbye
	Gone    bool  // the link will not come back
}

// linkHandler receives one endpoint's traffic for its link.
type linkHandler struct {
	link *Link
	ep   *mailbox.Endpoint
}

func (h *linkHandler) Deliver(env *mailbox.Envelope) {
	l := h.link
	target := env.Target
	if target == nil {
		l.node.log.Warn().Str("peer", l.addr).Str("type", fmt.Sprintf("%T", env.Message)).Msg("message without target dropped")
		return
	}
	sys := l.node.system
	if env.Lane == mailbox.LaneSystem {
		switch m := env.Message.(type) {
		case *pa.Terminated:
			if m.Who != nil {
				l.mu.Lock()
				l.dropWatchLocked(keyOf(m.Who), keyOf(target))
				l.mu.Unlock()
			}
		case *pa.Stop:
			p, _ := sys.ProcessRegistry.Get(target)
			p.Stop(target)
			return
		}
		sendSystem(sys, target, env.Message)
		return
	}
	if isFuture(target) {
		l.mu.Lock()
		delete(l.inflight, keyOf(target))
		l.mu.Unlock()
	}
	msg := env.Message
	if env.Sender != nil || len(env.Header) > 0 {
		msg = &pa.MessageEnvelope{Header: env.Header, Message: msg, Sender: env.Sender}
	}
	sys.Root.Send(target, msg)
}

func (h *linkHandler) DeadLetter(env *mailbox.Envelope, reason error) {
	l := h.link
	l.node.log.Warn().Err(reason).Str("peer", l.addr).Stringer("target", env.Target).Msg("undecodable message")
	if env.Target == nil {
		return
	}
	l.node.system.EventStream.Publish(&pa.DeadLetterEvent{PID: env.Target, Message: &Undeliverable{Reason: reason}, Sender: env.Sender})
}

func (h *linkHandler) Closed(err error) { h.link.lost(h.ep, err) }

// lazyTimeout is a context whose timer starts only when Done is first
// called: the mailbox asks for Done only when the user lane is full, so the
// common send costs no timer.
type lazyTimeout struct {
	context.Context
	d     time.Duration
	once  sync.Once
	done  chan struct{}
	timer *time.Timer
	err   error
	mu    sync.Mutex
}

func newLazyTimeout(d time.Duration) *lazyTimeout {
	return &lazyTimeout{Context: context.Background(), d: d}
}

func (c *lazyTimeout) Done() <-chan struct{} {
	c.once.Do(func() {
		c.done = make(chan struct{})
		c.timer = time.AfterFunc(c.d, func() {
			c.mu.Lock()
			c.err = context.DeadlineExceeded
			c.mu.Unlock()
			close(c.done)
		})
	})
	return c.done
}

func (c *lazyTimeout) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *lazyTimeout) stop() {
	if c.timer != nil {
		c.timer.Stop()
	}
}
