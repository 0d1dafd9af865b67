package reach

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/procactor/procactor/reach/internal/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// frameName is the remote type name of a tunnel frame.
var frameName = string((&wire.Frame{}).ProtoReflect().Descriptor().FullName())

// guard protects a root's gRPC server from what crashes the pinned remote:
// it sanitises every batch a stream delivers before remote's reader sees it,
// recovers a panic in the stream's handler (the stream ends, the process
// lives), and refuses the unary RPCs (the pinned remote panics in both).
type guard struct{ h *Host }

// stream is the server's stream interceptor.
func (g *guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	gs := &guardedStream{ServerStream: ss, g: g}
	defer func() {
		if r := recover(); r != nil {
			g.h.log.Error().Str("peer", gs.peer).Str("method", info.FullMethod).Interface("panic", r).
				Bytes("stack", debug.Stack()).Msg("recovered a panic in a remote stream; the stream ends")
			err = status.Errorf(codes.Internal, "reach: stream handler panicked")
		}
		if gs.peer != "" {
			g.h.inboundEnded(gs.peer)
		}
	}()
	return handler(srv, gs)
}

// unary is the server's unary interceptor: the pinned remote implements
// neither of its unary RPCs (ListProcesses, GetProcessDiagnostics panic).
func (g *guard) unary(_ context.Context, _ any, info *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
	g.h.warnOn(&g.h.drops, ErrRefused).Str("method", info.FullMethod).Msg("unary RPC refused")
	return nil, status.Errorf(codes.Unimplemented, "reach: %s is not served", info.FullMethod)
}

// guardedStream sanitises what remote's reader receives.
type guardedStream struct {
	grpc.ServerStream
	g    *guard
	peer string // the root the stream announced in its ConnectRequest
}

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	rm, ok := m.(*remote.RemoteMessage)
	if !ok {
		return nil
	}
	switch t := rm.MessageType.(type) {
	case *remote.RemoteMessage_ConnectRequest:
		sc := t.ConnectRequest.GetServerConnection()
		if s.peer == "" && sc != nil && isHostPort(sc.Address) && sc.Address != s.g.h.addr {
			s.peer = sc.Address
			s.g.h.inboundStarted(s.peer)
		}
	case *remote.RemoteMessage_MessageBatch:
		if t.MessageBatch != nil {
			s.g.sanitize(t.MessageBatch, s.peer)
		}
	}
	return nil
}

// sanitize drops, from a batch, every envelope the pinned remote's reader
// would crash on, tear the stream down for, or misdeliver: an index out of
// range, a serializer other than protobuf, a type name this binary does not
// know (remote/proto_serializer.go dereferences nil), a RootSerialized type
// (its error ends the stream), a target below this root (remote delivers
// system messages by Id alone, to whatever root actor has it), a system
// message (reach sends them through the gateway, where they are checked), a
// remote spawn request (its activator panics on an unknown kind), any
// message to procactor's machinery or remote's activator (a PoisonPill
// would stop them; the gateway only takes frames), and a
// frame that names another root than the stream announced. A dropped
// request is answered with a DeadLetterResponse.
func (g *guard) sanitize(b *remote.MessageBatch, peer string) {
	keep := b.Envelopes[:0]
	for _, e := range b.Envelopes {
		if reason := g.check(b, e, peer); reason != "" {
			g.drop(b, e, peer, reason)
			continue
		}
		keep = append(keep, e)
	}
	clear(b.Envelopes[len(keep):])
	b.Envelopes = keep
}

func (g *guard) check(b *remote.MessageBatch, e *remote.MessageEnvelope, peer string) string {
	switch {
	case e == nil:
		return "nil envelope"
	case e.SerializerId != 0:
		return fmt.Sprintf("serializer %d", e.SerializerId)
	case e.TypeId < 0 || int(e.TypeId) >= len(b.TypeNames):
		return fmt.Sprintf("type index %d of %d", e.TypeId, len(b.TypeNames))
	case e.Target < 0 || int(e.Target) >= len(b.Targets) || b.Targets[e.Target] == nil:
		return fmt.Sprintf("target index %d of %d", e.Target, len(b.Targets))
	case e.Sender < 0 || int(e.Sender) > len(b.Senders) || (e.Sender > 0 && b.Senders[e.Sender-1] == nil):
		return fmt.Sprintf("sender index %d of %d", e.Sender, len(b.Senders))
	}
	name := b.TypeNames[e.TypeId]
	target := b.Targets[e.Target]
	switch k := typeKindOf(name); {
	case k == kindUnknown:
		return fmt.Sprintf("unknown type %q", name)
	case k == kindSystem:
		return fmt.Sprintf("system message %s outside the tunnel", name)
	case k == kindRootSerialized:
		return fmt.Sprintf("root-serialized type %s", name)
	case name == "remote.ActorPidRequest":
		return "remote spawn request"
	case target.Address != g.h.addr:
		return fmt.Sprintf("target %s is not at this root", pidString(target))
	case name == frameName && target.Id == gatewayID:
		if from := frameFrom(e.MessageData); peer == "" || from != peer {
			return fmt.Sprintf("frame from %q on the stream of %q", from, peer)
		}
	case machinery(target.Id):
		// The gateway refuses these targets in frames; remote's own path
		// would hand them a PoisonPill or any other user message.
		return fmt.Sprintf("target %s is machinery", pidString(target))
	}
	return ""
}

// frameFrom reads field 1 (from) of an encoded Frame without decoding the
// rest: the last occurrence, as proto.Unmarshal keeps (a peer repeating the
// field must not pass the check with one value and be delivered with
// another). Malformed bytes give "".
func frameFrom(b []byte) string {
	var from []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ""
			}
			from, b = v, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return ""
		}
		b = b[n:]
	}
	return string(from)
}

// drop logs a dropped envelope and answers its sender (when it is of the
// peer's tree: a stream cannot make this root answer third parties).
func (g *guard) drop(b *remote.MessageBatch, e *remote.MessageEnvelope, peer, reason string) {
	var name string
	var target *pa.PID
	if e != nil && e.TypeId >= 0 && int(e.TypeId) < len(b.TypeNames) {
		name = b.TypeNames[e.TypeId]
	}
	if e != nil && e.Target >= 0 && int(e.Target) < len(b.Targets) {
		target = b.Targets[e.Target]
	}
	g.h.warnOn(&g.h.drops, ErrBadEnvelope).Str("peer", peer).Str("reason", reason).Str("type", name).Str("target", pidString(target)).
		Msg("remote envelope dropped")
	if e == nil || e.Sender <= 0 || int(e.Sender) > len(b.Senders) || peer == "" {
		return
	}
	s := b.Senders[e.Sender-1]
	if s == nil || !within(peer, s.Address) {
		return
	}
	sender := &pa.PID{Address: s.Address, Id: s.Id, RequestId: e.SenderRequestId}
	g.h.sys.Root.Send(sender, &pa.DeadLetterResponse{Target: target})
}

// typeKind classifies a remote type name.
type typeKind uint8

const (
	kindUnknown typeKind = iota
	kindUser
	kindSystem
	kindRootSerialized
)

var typeKinds sync.Map // type name → typeKind

func typeKindOf(name string) typeKind {
	if k, ok := typeKinds.Load(name); ok {
		return k.(typeKind)
	}
	k := kindUnknown
	if mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name)); err == nil && mt != nil {
		k = kindUser
		switch mt.New().Interface().(type) {
		case pa.SystemMessage:
			k = kindSystem
		case remote.RootSerialized:
			k = kindRootSerialized
		}
		typeKinds.Store(name, k) // known names are few; unknown ones are not cached (a peer could send many)
	}
	return k
}

// countSent is the dial option's stream interceptor: it takes the frames
// that remote's writer hands to gRPC off the peer's queued count, so that
// the bound of WithQueueBytes covers remote's own (unbounded) queue.
func (h *Host) countSent(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &countedStream{ClientStream: cs, h: h, root: rootOf(cc.Target())}, nil
}

// countedStream takes what it sends off the queued count of its root's
// peer. It makes no peer: a root may have none yet (cluster gossip, an
// answer to a Watch refused past maxPeers), and then nothing was counted.
type countedStream struct {
	grpc.ClientStream
	h    *Host
	root string
	p    *peer // the root's peer once there is one (SendMsg is not concurrent)
}

func (s *countedStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m) // on error the batch is lost all the same
	if rm, ok := m.(*remote.RemoteMessage); ok {
		if b := rm.GetMessageBatch(); b != nil {
			if s.p == nil {
				s.p = s.h.knownPeer(s.root)
			}
			if s.p != nil {
				s.p.sent(frameBytes(b))
			}
		}
	}
	return err
}

// frameBytes sums the tunnel frames of a batch as peer.send counted them
// (proto.Size is the length remote's proto.Marshal produces).
func frameBytes(b *remote.MessageBatch) int64 {
	var n int64
	for _, e := range b.Envelopes {
		if int(e.TypeId) < len(b.TypeNames) && b.TypeNames[e.TypeId] == frameName {
			n += int64(len(e.MessageData))
		}
	}
	return n
}
