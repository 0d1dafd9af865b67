package reach

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/procnode"
	"github.com/procactor/procactor/reach/internal/wire"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is the tunnel's protocol version, carried in every frame.
const version = 1

// Host is reach running on one root node: the node's tree joined to other
// roots over protoactor-go's gRPC remote (and cluster, with WithCluster).
//
// All methods are safe for concurrent use.
type Host struct {
	node *procnode.Node
	sys  *pa.ActorSystem
	addr string
	cfg  config
	log  zerolog.Logger

	remote  *remote.Remote   // set by Start
	cluster *cluster.Cluster // set by Start with WithCluster

	// mu guards closed against the senders: remote must not be used once it
	// is shut down (its endpoint manager's tables are gone then).
	mu     sync.RWMutex
	closed bool // guarded by mu
	failed bool // Start failed: the resolver claims nothing (guarded by mu)

	peers   sync.Map       // root address → *peer
	watched atomic.Int64   // peers made for a WATCH frame (at most cfg.maxPeers)
	streams map[string]int // open inbound streams by announced peer root (guarded by smu)
	smu     sync.Mutex

	subs      []*eventstream.Subscription
	warnings  throttle // dead letters and refusals
	drops     throttle // envelopes and RPCs the stream guard refused
	closeOnce sync.Once
	closeErr  error
}

var started sync.Map // *pa.ActorSystem → *Host

// Start runs reach on a root node made with procnode.NewNodeAt("host:port"):
// it registers the resolver that takes every PID of another host:port tree
// (after the node's own resolver, before protoactor's remote), the gateway
// that receives the other roots' frames, and starts protoactor's gRPC
// remote listening on the node's address, with a guarded server (see the
// package doc), or a cluster member with WithCluster. Spawn children after
// Start or before, as the node allows: their addresses are below the root's.
//
// Errors: ErrNotRoot, ErrStarted, ErrInvalidOption, ErrStart (the address
// cannot be bound, or protoactor refused to start). After an error, close
// the node: reach claims nothing on it.
func Start(node *procnode.Node, opts ...Option) (*Host, error) {
	addr := node.Address()
	if !isHostPort(addr) {
		return nil, fmt.Errorf("%w: %q", ErrNotRoot, addr)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sys := node.System()
	h := &Host{
		node:    node,
		sys:     sys,
		addr:    addr,
		cfg:     cfg,
		log:     node.Logger().With().Str("lib", "reach").Logger(),
		streams: make(map[string]int),
	}
	h.warnings.every, h.drops.every = time.Second, time.Second
	if _, dup := started.LoadOrStore(sys, h); dup {
		return nil, fmt.Errorf("%w: %s", ErrStarted, addr)
	}
	if _, ok := sys.ProcessRegistry.Add(gateway{h}, gatewayID); !ok {
		started.Delete(sys)
		return nil, fmt.Errorf("%w: %s has a gateway", ErrStarted, addr)
	}
	// Before remote's: it claims every address and would dial child
	// addresses as hosts.
	sys.ProcessRegistry.RegisterAddressResolver(h.resolve)
	// Cluster members are known by their system id: a static member list
	// knows addresses only.
	sys.ID = addr
	h.subs = append(h.subs, sys.EventStream.SubscribeWithPredicate(h.onEvent, func(m any) bool {
		switch e := m.(type) {
		case *remote.EndpointTerminatedEvent, *remote.EndpointConnectedEvent:
			return true
		case *pa.DeadLetterEvent:
			_, ok := e.Message.(*wire.Frame)
			return ok
		}
		return false
	}))
	if err := h.startRemote(); err != nil {
		h.mu.Lock()
		h.failed = true
		h.mu.Unlock()
		h.unsubscribe()
		sys.ProcessRegistry.Remove(pa.NewPID(addr, gatewayID))
		started.Delete(sys)
		return nil, err
	}
	h.log.Debug().Bool("cluster", cfg.cluster != nil).Msg("reach started")
	return h, nil
}

// remoteConfig is the gRPC remote of a reach root: it listens on and
// advertises the root's address, keeps a small endpoint queue (reach bounds
// it in bytes), dials once within WithDialTimeout, and guards its server.
func (h *Host) remoteConfig() *remote.Config {
	host, portStr, _ := net.SplitHostPort(h.addr)
	port, _ := strconv.Atoi(portStr)
	g := &guard{h: h}
	dialer := &net.Dialer{Timeout: h.cfg.dialTimeout}
	rc := remote.Configure(host, port,
		remote.WithAdvertisedHost(h.addr),
		remote.WithEndpointWriterQueueSize(1024),
		remote.WithDialOptions(
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp", a)
			}),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: h.cfg.keepalive, Timeout: h.cfg.keepalive, PermitWithoutStream: true}),
			grpc.WithStreamInterceptor(h.countSent),
		),
		remote.WithServerOptions(
			grpc.MaxRecvMsgSize(h.cfg.maxRecv()),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: h.cfg.keepalive / 2, PermitWithoutStream: true}),
			grpc.StreamInterceptor(g.stream),
			grpc.UnaryInterceptor(g.unary),
		),
	)
	// One attempt, then the 2s pause the pinned writer always takes, then
	// EndpointTerminatedEvent: an unreachable root is known lost within
	// WithDialTimeout + 2s instead of 5 × (dial + 2s).
	rc.MaxRetryCount = 1
	return rc
}

// startRemote starts protoactor's remote, or a cluster member, turning its
// panics (listen failure, activator timeout) into ErrStart.
func (h *Host) startRemote() (err error) {
	// remote.Start panics on a listen error: check first, for a clean error.
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	ln.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrStart, r)
		}
	}()
	rc := h.remoteConfig()
	var c *cluster.Cluster
	var r *remote.Remote
	if spec := h.cfg.cluster; spec != nil {
		// The member gossips before StartMember returns: until then, sends
		// to other roots are dead letters (ErrStarting), which gossip and
		// identity lookups retry.
		c = cluster.New(h.sys, cluster.Configure(spec.name, spec.provider, disthash.New(), rc, cluster.WithKinds(spec.kinds...)))
		c.StartMember()
		r = c.Remote
	} else {
		r = remote.NewRemote(h.sys, rc)
		r.Start()
	}
	h.mu.Lock()
	h.cluster, h.remote = c, r
	h.mu.Unlock()
	return nil
}

// Address returns the root's address (host:port).
func (h *Host) Address() string { return h.addr }

// Node returns the root node.
func (h *Host) Node() *procnode.Node { return h.node }

// Remote returns protoactor's remote under the host.
func (h *Host) Remote() *remote.Remote {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.remote
}

// Cluster returns the cluster member started with WithCluster, or nil.
func (h *Host) Cluster() *cluster.Cluster {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cluster
}

// GatewayPID returns the gateway of the root at address: where every frame
// for that root's tree goes.
func GatewayPID(address string) *pa.PID { return pa.NewPID(address, gatewayID) }

// Close stops the gRPC remote (and leaves the cluster), bounded by ctx: the
// streams of the other roots end, and they find this one lost. Watchers here
// of actors on other roots get Terminated{AddressTerminated}, actors here
// forget their watchers on other roots, and requests in flight to other
// roots fail at once. Messages sent to other roots afterwards are dead
// letters (ErrClosed). It does not close the node: close it afterwards.
// Close is idempotent.
func (h *Host) Close(ctx context.Context) error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			if c := h.Cluster(); c != nil {
				c.Gossip.SetState(cluster.GracefullyLeftKey, &emptypb.Empty{})
				_ = c.Config.ClusterProvider.Shutdown(true)
				c.IdentityLookup.Shutdown()
				c.Gossip.Shutdown()
			}
			h.stopRemote()
		}()
		select {
		case <-done:
		case <-ctx.Done():
			h.closeErr = fmt.Errorf("reach: close %s: %w", h.addr, ctx.Err())
		}
		h.unsubscribe()
		h.peers.Range(func(_, v any) bool {
			v.(*peer).lost(ErrClosed)
			return true
		})
		h.sys.ProcessRegistry.Remove(pa.NewPID(h.addr, gatewayID))
		started.Delete(h.sys)
	})
	return h.closeErr
}

// stopRemote stops the gRPC server (every stream from other roots ends:
// they find this root lost) and remote's endpoint supervisor (its writers
// close their connections). Not remote.Shutdown(true): its endpoint manager
// clears its tables while a writer that sees its peer go may still read
// them (a data race in the pinned remote), and its graceful stop waits up
// to 10s for streams a peer keeps open.
func (h *Host) stopRemote() {
	h.Remote().Shutdown(false)
	if err := h.sys.Root.StopFuture(pa.NewPID(h.addr, "EndpointSupervisor")).Wait(); err != nil {
		h.log.Warn().Err(err).Msg("stopping remote's endpoint supervisor")
	}
}

func (h *Host) unsubscribe() {
	for _, s := range h.subs {
		h.sys.EventStream.Unsubscribe(s)
	}
	h.subs = nil
}

// resolve is reach's address resolver: every PID of another host:port tree
// goes to that root's peer, one stable Process per root (protoactor caches
// it in each PID).
func (h *Host) resolve(pid *pa.PID) (pa.Process, bool) {
	h.mu.RLock()
	failed := h.failed
	h.mu.RUnlock()
	root := rootOf(pid.Address)
	if failed || root == h.addr || !isHostPort(root) {
		return nil, false
	}
	return h.peer(root), true
}

// peer returns the Process of another root, made on first use.
func (h *Host) peer(root string) *peer {
	if v, ok := h.peers.Load(root); ok {
		return v.(*peer)
	}
	v, _ := h.peers.LoadOrStore(root, newPeer(h, root))
	return v.(*peer)
}

// maxPeers bounds the peers a host makes for the WATCH frames of roots it
// has no peer for: a peer lives as long as the host, and a sender may
// announce ever-new roots, one stream each. Past it, a Watch from a new
// root is answered at once with Terminated{AddressTerminated}. Peers made
// to send (the resolver: this tree's own choice) are not counted.
const maxPeers = 1024

// watchPeer returns the peer of a root that sent a WATCH frame, made on
// first use within cfg.maxPeers, or nil past it.
func (h *Host) watchPeer(root string) *peer {
	if p := h.knownPeer(root); p != nil {
		return p
	}
	if h.watched.Add(1) > int64(h.cfg.maxPeers) {
		h.watched.Add(-1)
		return nil
	}
	v, loaded := h.peers.LoadOrStore(root, newPeer(h, root))
	if loaded { // made meanwhile, by the resolver or another stream
		h.watched.Add(-1)
	}
	return v.(*peer)
}

// knownPeer returns the Process of another root if one was made.
func (h *Host) knownPeer(root string) *peer {
	if v, ok := h.peers.Load(root); ok {
		return v.(*peer)
	}
	return nil
}

// remoteForSend calls f with the remote while the host is open: otherwise
// it returns ErrStarting or ErrClosed.
func (h *Host) remoteForSend(f func(*remote.Remote)) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	switch {
	case h.closed || h.failed:
		return ErrClosed
	case h.remote == nil:
		return ErrStarting
	}
	f(h.remote)
	return nil
}

// onEvent follows remote's endpoints: a lost endpoint is a lost root; a
// frame that remote's writer dropped (it had no connection) is accounted
// for.
func (h *Host) onEvent(evt any) {
	switch e := evt.(type) {
	case *remote.EndpointTerminatedEvent:
		if p := h.knownPeer(rootOf(e.Address)); p != nil {
			// What was queued for the endpoint is lost with it.
			p.queued.Store(0)
			p.lost(fmt.Errorf("endpoint %s terminated", e.Address))
		}
	case *remote.EndpointConnectedEvent:
		if p := h.knownPeer(rootOf(e.Address)); p != nil {
			// A new endpoint starts with what is queued on it; a count left
			// by frames lost in a dead writer's queue must not shrink the
			// budget for good (an undercount is bounded by one queue).
			p.queued.Store(0)
		}
	case *pa.DeadLetterEvent:
		f, _ := e.Message.(*wire.Frame)
		if f == nil || e.PID == nil {
			return
		}
		p := h.knownPeer(rootOf(e.PID.Address))
		if p == nil {
			return
		}
		p.sent(int64(proto.Size(f)))
		if f.Kind == wire.Kind_WATCH {
			watchee, watcher := pidOf(f.TargetAddress, f.TargetId, f.TargetRequestId), pidOf(f.PidAddress, f.PidId, f.PidRequestId)
			if p.dropOut(watchee, watcher) {
				h.sendSystem(watcher, &pa.Terminated{Who: watchee, Why: pa.TerminatedReason_AddressTerminated})
			}
		}
	}
}

// inboundStarted and inboundEnded count the streams another root opened to
// this one. When the last one ends, the root is lost: its writer gave up on
// this root, and told its own watchers so.
func (h *Host) inboundStarted(root string) {
	h.smu.Lock()
	h.streams[root]++
	h.smu.Unlock()
}

func (h *Host) inboundEnded(root string) {
	h.smu.Lock()
	h.streams[root]--
	last := h.streams[root] <= 0
	if last {
		delete(h.streams, root)
	}
	h.smu.Unlock()
	if p := h.knownPeer(root); last && p != nil {
		p.lost(fmt.Errorf("stream from %s ended", root))
	}
}

// sendSystem delivers a system message to a PID of this root's tree.
func (h *Host) sendSystem(to *pa.PID, m any) {
	p, _ := h.sys.ProcessRegistry.Get(to)
	p.SendSystemMessage(to, m)
}

// deadLetter accounts for a message that cannot cross to another root, or
// that another root sent and that cannot be delivered: a warn line (at most
// a few per second), and a DeadLetterEvent whose handler answers a request
// with a DeadLetterResponse; a Watch is answered with
// Terminated{AddressTerminated}.
func (h *Host) deadLetter(target *pa.PID, msg any, sender *pa.PID, reason error) {
	h.warn(reason).Str("target", pidString(target)).Str("sender", pidString(sender)).
		Str("type", fmt.Sprintf("%T", msg)).Msg("dead letter")
	if w, ok := msg.(*pa.Watch); ok && w.Watcher != nil {
		h.sendSystem(w.Watcher, &pa.Terminated{Who: target, Why: pa.TerminatedReason_AddressTerminated})
		return
	}
	h.sys.EventStream.Publish(&pa.DeadLetterEvent{PID: target, Message: &actor.Undeliverable{Message: msg, Reason: reason}, Sender: sender})
}

// warn returns a warn event, or a disabled one past the rate limit.
func (h *Host) warn(err error) *zerolog.Event { return h.warnOn(&h.warnings, err) }

// warnOn is warn with a throttle of its own.
func (h *Host) warnOn(t *throttle, err error) *zerolog.Event {
	ok, skipped := t.allow()
	if skipped > 0 {
		h.log.Warn().Int64("skipped", skipped).Msg("reach warnings not logged")
	}
	if !ok {
		return nil // zerolog: a nil event is disabled
	}
	return h.log.Warn().Err(err)
}

// pidString formats a PID for logs: id@address, "" for nil.
func pidString(p *pa.PID) string {
	if p == nil {
		return ""
	}
	return p.Id + "@" + p.Address
}

func pidOf(addr, id string, req uint32) *pa.PID {
	if addr == "" && id == "" {
		return nil
	}
	return &pa.PID{Address: addr, Id: id, RequestId: req}
}

// throttle allows a few events per period and counts the others.
type throttle struct {
	every   time.Duration
	mu      sync.Mutex
	start   time.Time // guarded by mu
	n       int       // guarded by mu
	skipped int64     // guarded by mu
}

// throttleBurst is how many lines a throttle allows per period.
const throttleBurst = 20

func (t *throttle) allow() (ok bool, skipped int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if now.Sub(t.start) >= t.every {
		t.start, t.n = now, 0
		skipped, t.skipped = t.skipped, 0
	}
	if t.n >= throttleBurst {
		t.skipped++
		return false, skipped
	}
	t.n++
	return true, skipped
}
