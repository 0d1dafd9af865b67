package reach

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/reach/internal/wire"
	"google.golang.org/protobuf/proto"
)

// peer is the actor.Process of every PID of one other root's tree: the
// tunnel. It turns each message into a Frame for that root's gateway, sent
// as an ordinary remote user message (sender and header in remote's own
// envelope), and keeps what a lost root must answer: the watches that went
// out to its tree, the watches its tree holds on ours, and the requests in
// flight to it.
//
// protoactor caches a resolved Process inside each PID, so there is one peer
// per root for the host's life; it looks up remote on every send.
type peer struct {
	h       *Host
	addr    string
	gateway *pa.PID
	// queued counts the frame bytes handed to remote and not yet to gRPC
	// (see Host.countSent): remote's own queue has no bound.
	queued atomic.Int64

	mu       sync.Mutex
	out      watchTable           // watchee in the peer's tree → watchers here (guarded by mu)
	in       watchTable           // watchee here → watchers in the peer's tree (guarded by mu)
	nIn      int                  // pairs in in (guarded by mu)
	requests map[pidKey]time.Time // our futures awaiting an answer from the peer (guarded by mu)
	sweepAt  int                  // guarded by mu
}

var _ pa.Process = (*peer)(nil)

// requestMaxAge: a remembered request older than this is forgotten at the
// next sweep (its future has long timed out).
const requestMaxAge = 10 * time.Minute

// minSweep is the request table size that triggers the first sweep.
const minSweep = 1024

func newPeer(h *Host, addr string) *peer {
	return &peer{
		h:        h,
		addr:     addr,
		gateway:  GatewayPID(addr),
		out:      make(watchTable),
		in:       make(watchTable),
		requests: make(map[pidKey]time.Time),
		sweepAt:  minSweep,
	}
}

func (p *peer) frame(kind wire.Kind, target *pa.PID) *wire.Frame {
	return &wire.Frame{
		From:            p.h.addr,
		Version:         version,
		Kind:            kind,
		TargetAddress:   target.Address,
		TargetId:        target.Id,
		TargetRequestId: target.RequestId,
	}
}

// SendUserMessage implements actor.Process: the message is encoded here, on
// the sender's goroutine, so that an unregistered type is a dead letter with
// its reason (remote's writer would log and drop it).
func (p *peer) SendUserMessage(pid *pa.PID, message any) {
	hdr, msg, sender := pa.UnwrapEnvelope(message)
	data, err := mailbox.Marshal(msg)
	if err != nil {
		p.h.deadLetter(pid, msg, sender, err)
		return
	}
	f := p.frame(wire.Kind_USER, pid)
	f.Type, f.Data = typeName(msg), data
	tracked := p.track(sender)
	if err := p.send(f, hdr, sender, false); err != nil {
		if tracked {
			p.forget(sender)
		}
		p.h.deadLetter(pid, msg, sender, err)
	}
}

// typeName names a payload's type for logs and dead letters.
func typeName(m any) string {
	if n, ok := mailbox.RegisteredName(m); ok {
		return n
	}
	if pm, ok := m.(proto.Message); ok {
		return string(pm.ProtoReflect().Descriptor().FullName())
	}
	return fmt.Sprintf("%T", m)
}

// SendSystemMessage implements actor.Process. Only what protoactor sends to
// a PID of another node goes (Watch, Unwatch, Stop, Terminated), each with
// its PIDs; a watcher must be of this root's tree, and so must the actor a
// Terminated is about.
func (p *peer) SendSystemMessage(pid *pa.PID, message any) {
	var f *wire.Frame
	switch m := message.(type) {
	case *pa.Watch:
		if m.Watcher == nil || !within(p.h.addr, m.Watcher.Address) {
			p.h.deadLetter(pid, message, nil, fmt.Errorf("%w: watcher %s is not of this root's tree", ErrRefused, pidString(m.Watcher)))
			return
		}
		f = p.frame(wire.Kind_WATCH, pid)
		setPID(f, m.Watcher)
		p.mu.Lock()
		p.out.add(keyOf(pid), m.Watcher)
		p.mu.Unlock()
		if err := p.send(f, nil, nil, true); err != nil {
			p.dropOut(pid, m.Watcher)
			p.h.deadLetter(pid, message, nil, err) // answers Terminated{AddressTerminated}
		}
		return
	case *pa.Unwatch:
		if m.Watcher == nil {
			p.h.deadLetter(pid, message, nil, fmt.Errorf("%w: Unwatch without a watcher", ErrRefused))
			return
		}
		p.dropOut(pid, m.Watcher)
		f = p.frame(wire.Kind_UNWATCH, pid)
		setPID(f, m.Watcher)
	case *pa.Terminated:
		if m.Who == nil || !within(p.h.addr, m.Who.Address) {
			p.h.deadLetter(pid, message, nil, fmt.Errorf("%w: Terminated about %s, not of this root's tree", ErrRefused, pidString(m.Who)))
			return
		}
		p.mu.Lock()
		if p.in.drop(keyOf(m.Who), keyOf(pid)) {
			p.nIn--
		}
		p.mu.Unlock()
		f = p.frame(wire.Kind_TERMINATED, pid)
		setPID(f, m.Who)
		f.Why = int32(m.Why)
	case *pa.Stop:
		f = p.frame(wire.Kind_STOP, pid)
	default:
		p.h.deadLetter(pid, message, nil, fmt.Errorf("%w: system message %T does not cross nodes", ErrRefused, message))
		return
	}
	if err := p.send(f, nil, nil, true); err != nil {
		p.h.deadLetter(pid, message, nil, err)
	}
}

// Stop implements actor.Process: a Stop for the target.
func (p *peer) Stop(pid *pa.PID) { p.SendSystemMessage(pid, &pa.Stop{}) }

func setPID(f *wire.Frame, pid *pa.PID) {
	f.PidAddress, f.PidId, f.PidRequestId = pid.Address, pid.Id, pid.RequestId
}

// send hands a frame to remote for the peer's gateway, within the byte
// bound: user messages up to WithQueueBytes, system messages a quarter
// more.
func (p *peer) send(f *wire.Frame, hdr pa.ReadonlyMessageHeader, sender *pa.PID, system bool) error {
	n := int64(proto.Size(f))
	limit := p.h.cfg.queueBytes
	if n > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, n, limit)
	}
	if system {
		limit += p.h.cfg.systemReserve()
	}
	if q := p.queued.Add(n); q > limit {
		p.queued.Add(-n)
		return fmt.Errorf("%w: %d bytes queued for %s", ErrTunnelFull, q-n, p.addr)
	}
	err := p.h.remoteForSend(func(r *remote.Remote) { r.SendMessage(p.gateway, hdr, f, sender, 0) })
	if err != nil {
		p.queued.Add(-n)
	}
	return err
}

// sent takes n bytes off the queued count (never below zero: the count is
// reset when an endpoint comes or goes).
func (p *peer) sent(n int64) {
	for {
		q := p.queued.Load()
		if p.queued.CompareAndSwap(q, max(0, q-n)) {
			return
		}
	}
}

// track remembers a request (its sender is a future of this root's tree)
// so that a lost peer answers it at once, and reports whether it did.
func (p *peer) track(sender *pa.PID) bool {
	if !isFuture(sender) || !within(p.h.addr, sender.Address) || p.h.cfg.maxRequests == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) >= p.sweepAt {
		p.sweepLocked()
	}
	if len(p.requests) >= p.h.cfg.maxRequests {
		return false // it will time out instead
	}
	p.requests[keyOf(sender)] = time.Now()
	return true
}

// forget drops a request that was answered (or not sent).
func (p *peer) forget(future *pa.PID) {
	p.mu.Lock()
	delete(p.requests, keyOf(future))
	p.mu.Unlock()
}

// sweepLocked forgets requests whose future is gone (answered another way,
// timed out) or older than requestMaxAge.
func (p *peer) sweepLocked() {
	now := time.Now()
	for k, since := range p.requests {
		gone := now.Sub(since) > requestMaxAge
		if !gone && k.addr == p.h.addr {
			_, ok := p.h.sys.ProcessRegistry.GetLocal(k.id)
			gone = !ok
		}
		if gone {
			delete(p.requests, k)
		}
	}
	p.sweepAt = max(minSweep, 2*len(p.requests))
}

// dropOut forgets a watch that went out to the peer, and reports whether it
// was recorded.
func (p *peer) dropOut(watchee, watcher *pa.PID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.drop(keyOf(watchee), keyOf(watcher))
}

// addIn records a watch the peer's tree holds on an actor here, within
// WithMaxWatches.
func (p *peer) addIn(watchee, watcher *pa.PID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nIn >= p.h.cfg.maxWatches {
		return false
	}
	if p.in.add(keyOf(watchee), watcher) {
		p.nIn++
	}
	return true
}

func (p *peer) dropIn(watchee, watcher *pa.PID) {
	p.mu.Lock()
	if p.in.drop(keyOf(watchee), keyOf(watcher)) {
		p.nIn--
	}
	p.mu.Unlock()
}

// lost answers what the peer can no longer answer: watchers here of its
// actors get Terminated{AddressTerminated}, actors here forget their
// watchers in its tree, and requests in flight to it get a
// DeadLetterResponse.
func (p *peer) lost(reason error) {
	p.mu.Lock()
	out, in, requests := p.out, p.in, p.requests
	p.out, p.in, p.nIn = make(watchTable), make(watchTable), 0
	p.requests, p.sweepAt = make(map[pidKey]time.Time), minSweep
	p.mu.Unlock()
	h := p.h
	n := 0
	for watchee, ws := range out {
		who := watchee.pid()
		for _, w := range ws {
			h.sendSystem(w, &pa.Terminated{Who: who, Why: pa.TerminatedReason_AddressTerminated})
			n++
		}
	}
	for watchee, ws := range in {
		to := watchee.pid()
		for _, w := range ws {
			h.sendSystem(to, &pa.Unwatch{Watcher: w})
		}
	}
	for k := range requests {
		f := k.pid()
		p.h.sys.Root.Send(f, &pa.DeadLetterResponse{})
	}
	if n > 0 || len(requests) > 0 || len(in) > 0 {
		h.log.Info().Err(reason).Str("peer", p.addr).Int("watchers", n).Int("requests", len(requests)).Msg("peer lost")
	}
}
