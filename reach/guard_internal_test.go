package reach

import (
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/procactor/procactor/internal/names"

	"github.com/procactor/procactor/reach/internal/wire"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// FuzzFrameFrom: the guard reads the sender of any bytes the gateway would
// decode as a frame exactly as proto.Unmarshal does (a repeated field
// included), and never panics on other bytes.
func FuzzFrameFrom(f *testing.F) {
	for _, fr := range []*wire.Frame{
		{From: "127.0.0.1:1", Version: 1, Kind: wire.Kind_STOP, TargetAddress: "127.0.0.1:2", TargetId: "x"},
		{Version: 1, Data: []byte{1, 2, 3}, Type: "t", From: "10.0.0.1:8090"},
		{},
	} {
		b, err := proto.Marshal(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A frame naming one root, then another: proto keeps the last.
	twice := protowire.AppendTag(nil, 1, protowire.BytesType)
	twice = protowire.AppendString(twice, "127.0.0.1:1")
	twice = protowire.AppendTag(twice, 1, protowire.BytesType)
	twice = protowire.AppendString(twice, "127.0.0.1:2")
	f.Add(twice)
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := frameFrom(b)
		fr := &wire.Frame{}
		if proto.Unmarshal(b, fr) == nil && got != fr.From {
			t.Fatalf("frameFrom = %q; proto.Unmarshal says from = %q", got, fr.From)
		}
	})
}

// TestGuardKeepsMachineryFromPlainRemote: the pinned remote's own path (not
// the tunnel, whose gateway checks the same) cannot reach procactor's
// machinery or remote's activator: a PoisonPill, a user message remote
// would hand to any root-level Id (and the actor would stop), is dropped
// for each of them, and passes for an ordinary actor.
func TestGuardKeepsMachineryFromPlainRemote(t *testing.T) {
	const root = "127.0.0.1:1"
	g := &guard{h: &Host{addr: root}}
	poison, err := proto.Marshal(&pa.PoisonPill{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(id string) string {
		b := &remote.MessageBatch{TypeNames: []string{"actor.PoisonPill"}, Targets: []*pa.PID{{Address: root, Id: id}}}
		return g.check(b, &remote.MessageEnvelope{TypeId: 0, Target: 0, MessageData: poison}, "127.0.0.1:2")
	}
	for _, id := range []string{names.Activator, names.RemoteActivator, gatewayID, names.ControlPrefix + "1",
		names.RemoteEndpointSupervisor, names.RemoteEndpointSupervisor + "/$3"} {
		if reason := check(id); reason == "" {
			t.Errorf("a PoisonPill to %s passed the guard", id)
		}
	}
	if reason := check("worker"); reason != "" {
		t.Errorf("a PoisonPill to an ordinary actor dropped: %s", reason)
	}
}
