package reach

import (
	"testing"

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
