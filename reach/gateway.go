package reach

import (
	"fmt"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/reach/internal/wire"
)

// gateway is the Process at {root address, "procactor$reach"} that receives
// the frames of other roots. remote's reader calls it on the stream's
// goroutine (Root.Send to a local Process, no mailbox), so a frame costs no
// extra hand-off: it is decoded and handed to its target, by full PID
// through the node's resolvers (never by Id alone), as the sending root's
// subtree would hand it over a pipe.
type gateway struct{ h *Host }

var _ pa.Process = gateway{}

func (g gateway) SendUserMessage(_ *pa.PID, message any) {
	_, msg, sender := pa.UnwrapEnvelope(message)
	f, ok := msg.(*wire.Frame)
	if !ok {
		g.h.deadLetter(GatewayPID(g.h.addr), msg, sender, fmt.Errorf("%w: %T is not a tunnel frame", ErrRefused, msg))
		return
	}
	g.h.receive(f, message, sender)
}

func (g gateway) SendSystemMessage(pid *pa.PID, message any) {
	g.h.warn(ErrRefused).Str("type", fmt.Sprintf("%T", message)).Msg("system message to the gateway ignored")
}

// Stop implements actor.Process: the gateway lives as long as its host.
func (gateway) Stop(*pa.PID) {}

// receive checks a frame against what its sending root may do and delivers
// it. message is what remote handed over: the frame, or a MessageEnvelope
// around it with the sender and header.
func (h *Host) receive(f *wire.Frame, message any, sender *pa.PID) {
	from := f.From
	if from == h.addr || rootOf(from) != from || !isHostPort(from) {
		h.deadLetter(GatewayPID(h.addr), f, sender, fmt.Errorf("%w: frame from %q", ErrRefused, from))
		return
	}
	if f.Version != version {
		h.deadLetter(GatewayPID(h.addr), f, sender, fmt.Errorf("%w: %s speaks version %d, this root %d", ErrVersion, from, f.Version, version))
		return
	}
	target := pidOf(f.TargetAddress, f.TargetId, f.TargetRequestId)
	if target == nil || len(f.TargetAddress) > maxPIDField || len(f.TargetId) > maxPIDField ||
		!within(h.addr, target.Address) || machinery(target.Id) {
		h.deadLetter(target, f, sender, fmt.Errorf("%w: target %s from %s", ErrRefused, pidString(target), from))
		return
	}
	// Only a WATCH makes a peer (it holds the watch): peers live as long as
	// the host, and a sender may announce ever-new roots. Other frames use
	// the peer the root already has, if any.
	switch f.Kind {
	case wire.Kind_USER:
		v, err := mailbox.Unmarshal(f.Data)
		if err != nil {
			h.deadLetter(target, nil, sender, fmt.Errorf("message of type %q from %s: %w", f.Type, from, err))
			return
		}
		if p := h.knownPeer(from); p != nil && isFuture(target) {
			p.forget(target) // an answer: the request is no longer in flight
		}
		var m any = v
		if env, ok := message.(*pa.MessageEnvelope); ok {
			env.Message = v // remote made this envelope for this message alone
			m = env
		}
		proc, _ := h.sys.ProcessRegistry.Get(target)
		proc.SendUserMessage(target, m)
		return
	case wire.Kind_STOP:
		proc, _ := h.sys.ProcessRegistry.Get(target)
		proc.Stop(target)
		return
	}
	other := pidOf(f.PidAddress, f.PidId, f.PidRequestId)
	if other == nil || len(f.PidAddress) > maxPIDField || len(f.PidId) > maxPIDField || !within(from, other.Address) {
		h.deadLetter(target, f, nil, fmt.Errorf("%w: %v frame from %s names %s, not of its tree", ErrRefused, f.Kind, from, pidString(other)))
		return
	}
	switch f.Kind {
	case wire.Kind_WATCH:
		p := h.watchPeer(from)
		if p == nil {
			h.warn(ErrRefused).Str("peer", from).Int("max", h.cfg.maxPeers).Msg("too many peers; Watch from a new root answered AddressTerminated")
			// A peer for this answer alone, not kept.
			newPeer(h, from).SendSystemMessage(other, &pa.Terminated{Who: target, Why: pa.TerminatedReason_AddressTerminated})
			return
		}
		if !p.addIn(target, other) {
			h.warn(ErrRefused).Str("peer", from).Int("max", h.cfg.maxWatches).Msg("too many watches from peer; answered AddressTerminated")
			p.SendSystemMessage(other, &pa.Terminated{Who: target, Why: pa.TerminatedReason_AddressTerminated})
			return
		}
		h.sendSystem(target, &pa.Watch{Watcher: other})
	case wire.Kind_UNWATCH:
		if p := h.knownPeer(from); p != nil {
			p.dropIn(target, other)
		}
		h.sendSystem(target, &pa.Unwatch{Watcher: other})
	case wire.Kind_TERMINATED:
		// Only for a watch this side sent: a peer cannot fake the death of
		// an actor nobody here watched through it.
		if p := h.knownPeer(from); p == nil || !p.dropOut(other, target) {
			h.warn(ErrRefused).Str("peer", from).Str("who", pidString(other)).Str("watcher", pidString(target)).
				Msg("Terminated for a watch not held through this peer; dropped")
			return
		}
		h.sendSystem(target, &pa.Terminated{Who: other, Why: pa.TerminatedReason(f.Why)})
	default:
		h.deadLetter(target, f, nil, fmt.Errorf("%w: frame kind %d", ErrRefused, f.Kind))
	}
}
