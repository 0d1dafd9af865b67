package reach_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/reach"
	"github.com/procactor/procactor/reach/internal/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// bOnly is a message type only this test process registers (at run time,
// not in init): root A, another process of the same binary, does not know it.
type bOnly struct{ Text string }

var registerBOnly = sync.OnceFunc(func() { mailbox.RegisterType("reach_test.bOnly", &bOnly{}) })

// rawStream is a hostile peer: a gRPC client of A's remote that speaks the
// pinned remote's protocol directly.
type rawStream struct {
	conn   *grpc.ClientConn
	client remote.RemotingClient
	stream remote.Remoting_ReceiveClient
}

func dialRaw(t *testing.T, addr, announce string) *rawStream {
	t.Helper()
	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(func() {
		cancel()
		conn.Close()
	})
	r := &rawStream{conn: conn, client: remote.NewRemotingClient(conn)}
	if r.stream, err = r.client.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{ConnectRequest: &remote.ConnectRequest{
		ConnectionType: &remote.ConnectRequest_ServerConnection{ServerConnection: &remote.ServerConnection{SystemId: "hostile", Address: announce}},
	}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.stream.Recv(); err != nil {
		t.Fatalf("connect response: %v", err)
	}
	return r
}

func (r *rawStream) send(t *testing.T, b *remote.MessageBatch) {
	t.Helper()
	if err := r.stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: b}}); err != nil {
		t.Fatal(err)
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHostileInput: what crashes or misleads the pinned remote (an unknown
// proto type, indices out of range, a remote spawn of an unknown kind, a
// system message for a child delivered by Id, a frame claiming another
// root, the unary RPCs) and what the tunnel refuses (a type A does not
// know, a spawn through procactor's activator, a Stop of the gateway)
// leaves A up: the next request to A/1/1 succeeds, and A's same-Id canary
// lives.
func TestHostileInput(t *testing.T) {
	h := newHost(t)
	root := h.Node().Root()
	tr := startTree(t, root)
	a := tr.a.addr
	canary := request[*pa.PID](t, root, tr.a.ctl(), &spawnNamed{Name: "canary"})
	request[*pa.PID](t, root, tr.child.PID, &spawnNamed{Name: "canary"})
	alive := func(step string) {
		t.Helper()
		if p := request[*pong](t, root, tr.grandchild.PID, &ping{Text: step}); p.Text != step {
			t.Fatalf("after %s: got %+v", step, p)
		}
		if p := request[*pong](t, root, canary, &ping{Text: step}); p.Address != a {
			t.Fatalf("after %s: A's canary answered from %s", step, p.Address)
		}
	}
	alive("start")

	// A hostile stream announcing itself as some root, sending what the
	// pinned remote's reader would panic on or misdeliver.
	raw := dialRaw(t, a, "127.0.0.1:1")
	ctl := &pa.PID{Address: a, Id: "ctl"}
	frame := mustMarshal(t, &pa.PoisonPill{})
	spawn := mustMarshal(t, &remote.ActorPidRequest{Kind: "no-such-kind"})
	stop := mustMarshal(t, &pa.Stop{})
	for _, b := range []*remote.MessageBatch{
		{TypeNames: []string{"no.such.Type"}, Targets: []*pa.PID{ctl}, Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: []byte{1, 2}}}},
		{TypeNames: []string{"actor.PoisonPill"}, Targets: []*pa.PID{ctl}, Envelopes: []*remote.MessageEnvelope{{TypeId: 5, Target: 0, MessageData: frame}}},
		{TypeNames: []string{"actor.PoisonPill"}, Targets: []*pa.PID{ctl}, Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 7, MessageData: frame}}},
		{TypeNames: []string{"actor.PoisonPill"}, Targets: []*pa.PID{ctl}, Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, Sender: 3, MessageData: frame}}},
		{TypeNames: []string{"actor.PoisonPill"}, Targets: []*pa.PID{ctl}, Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, SerializerId: 9, MessageData: frame}}},
		{TypeNames: []string{"remote.ActorPidRequest"}, Targets: []*pa.PID{{Address: a, Id: "activator"}}, Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: spawn}}},
		{TypeNames: []string{"actor.Stop"}, Targets: []*pa.PID{{Address: tr.child.PID.Address, Id: "canary"}}, Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: stop}}},
		{TypeNames: []string{"actor.PoisonPill"}, Targets: []*pa.PID{{Address: tr.child.PID.Address, Id: "canary"}}, Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: frame}}},
	} {
		raw.send(t, b)
	}
	// Frames to the gateway on that stream: one naming another root than
	// the stream announced (dropped by the guard), then frames that name
	// the stream's root but ask what it may not do.
	gw := reach.GatewayPID(a)
	for _, f := range []*wire.Frame{
		{From: "127.0.0.1:2", Version: 1, Kind: wire.Kind_STOP, TargetAddress: a, TargetId: "canary"},
		{From: "127.0.0.1:1", Version: 1, Kind: wire.Kind_TERMINATED, TargetAddress: a, TargetId: "canary", PidAddress: "127.0.0.1:1", PidId: "x"},
		{From: "127.0.0.1:1", Version: 1, Kind: wire.Kind_WATCH, TargetAddress: a, TargetId: "canary", PidAddress: "127.0.0.1:3", PidId: "x"},
		{From: "127.0.0.1:1", Version: 99, Kind: wire.Kind_STOP, TargetAddress: a, TargetId: "canary"},
		{From: "127.0.0.1:1", Version: 1, Kind: wire.Kind_STOP, TargetAddress: a, TargetId: "procactor-activator"},
		{From: "127.0.0.1:1", Version: 1, Kind: wire.Kind_STOP, TargetAddress: "127.0.0.1:4", TargetId: "canary"},
	} {
		name := string(f.ProtoReflect().Descriptor().FullName())
		raw.send(t, &remote.MessageBatch{TypeNames: []string{name}, Targets: []*pa.PID{gw}, Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: mustMarshal(t, f)}}})
	}
	alive("hostile batches")
	// The unary RPCs (the pinned remote panics in both) are refused.
	if _, err := raw.client.ListProcesses(context.Background(), &remote.ListProcessesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("ListProcesses: got %v; want Unimplemented", err)
	}
	if _, err := raw.client.GetProcessDiagnostics(context.Background(), &remote.GetProcessDiagnosticsRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("GetProcessDiagnostics: got %v; want Unimplemented", err)
	}
	alive("unary RPCs")

	// Through the tunnel: a type A does not know is a dead letter there,
	// answered at once.
	registerBOnly()
	if _, err := root.RequestFuture(tr.grandchild.PID, &bOnly{Text: "?"}, testTimeout).Result(); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request with a type A does not know: got %v; want ErrDeadLetter", err)
	}
	// procactor's activator on A is not for other roots: a spawn, of an
	// unknown kind or not, is refused at once.
	for _, kind := range []string{"no-such-kind", agentKind} {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		_, err := h.Node().Spawn(ctx, a, kind)
		cancel()
		if !errors.Is(err, pa.ErrDeadLetter) {
			t.Fatalf("spawn of %q on A from B: got %v; want ErrDeadLetter", kind, err)
		}
	}
	// The gateway cannot be stopped.
	root.Stop(reach.GatewayPID(a))
	alive("tunnel")

	log := tr.a.stderr.String()
	for _, reason := range []string{
		`unknown type \"no.such.Type\"`, "type index 5 of 1", "target index 7 of 1", "sender index 3 of 0", "serializer 9",
		"remote spawn request", "system message actor.Stop outside the tunnel", "is not at this root",
		"unary RPC refused", "reach_test.bOnly", "procactor-activator", "procactor$reach",
		`frame from \"127.0.0.1:2\" on the stream of \"127.0.0.1:1\"`, "Terminated for a watch not held through this peer",
		"names x@127.0.0.1:3, not of its tree", "speaks version 99", "target canary@127.0.0.1:4",
	} {
		if !strings.Contains(log, reason) {
			t.Errorf("A's log does not mention %q:\n%s", reason, log)
		}
	}
}
