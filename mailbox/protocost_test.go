package mailbox

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// rtProtoHolder holds a protobuf message in a field: it crosses as its
// proto bytes inside the struct's msgpack.
type rtProtoHolder struct{ L *structpb.ListValue }

func init() { RegisterType("mailbox_test.rtProtoHolder", rtProtoHolder{}) }

// emptyValues is a ListValue of n empty Values: 2 bytes each on the wire
// (tag, length 0), a pointer and a 56-byte struct each decoded, more with
// the slice's growth (about 53 times the wire size, measured).
func emptyValues(n int) *structpb.ListValue {
	l := &structpb.ListValue{Values: make([]*structpb.Value, n)}
	for i := range l.Values {
		l.Values[i] = &structpb.Value{}
	}
	return l
}

// TestProtoDecodeAmplification: a protobuf payload, alone or in a struct
// field, is held to the same budget as msgpack (MaxDecodeFactor times its
// size plus DecodeAllowance): repeated empty submessages, 2 bytes each on
// the wire, decode to about 53 times their size, so a large enough list is
// a dead letter with ErrDecodeLimit. It was charged twice its size and
// decoded whatever that allocated: a 256 MiB frame of them took 13 GiB.
func TestProtoDecodeAmplification(t *testing.T) {
	const n = 1 << 16
	for _, c := range []struct {
		name string
		msg  any
	}{
		{"top level", emptyValues(n)},
		{"struct field", &rtProtoHolder{L: emptyValues(n)}},
	} {
		enc, dec := newEncoder(""), newDecoder()
		dec.maxBytes = 2 * DefaultMaxFrame // what an endpoint allows at the default frame
		b, _, err := enc.appendEnvelope(nil, &Envelope{Message: c.msg})
		if err != nil {
			t.Fatal(err)
		}
		var env Envelope
		bad, fatal := dec.decodeEnvelope(b, false, &env)
		if fatal != nil || !errors.Is(bad, ErrDecodeLimit) || !errors.Is(bad, ErrDecode) || env.Message != nil {
			t.Errorf("%s: got %T (bad %v, fatal %v); want a dead letter with ErrDecodeLimit", c.name, env.Message, bad, fatal)
		}
	}
}

// TestProtoDecodeOrdinary: ordinary protobuf payloads still decode, each
// charged at least its own bytes.
func TestProtoDecodeOrdinary(t *testing.T) {
	strs := &structpb.ListValue{}
	for range 4096 {
		strs.Values = append(strs.Values, structpb.NewStringValue("a string of some length"))
	}
	m, err := structpb.NewStruct(map[string]any{"a": 1.5, "b": "two", "c": []any{true, nil, "x"}, "d": map[string]any{"e": 3.0}})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []proto.Message{
		wrapperspb.Bytes(make([]byte, 1<<20)),
		strs,
		m,
		emptyValues(DecodeAllowance / 1024),
	} {
		enc, dec := newEncoder(""), newDecoder()
		dec.maxBytes = 2 * DefaultMaxFrame
		b, _, err := enc.appendEnvelope(nil, &Envelope{Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		var env Envelope
		bad, fatal := dec.decodeEnvelope(b, false, &env)
		if bad != nil || fatal != nil {
			t.Errorf("%T: got (bad %v, fatal %v); want it decoded", msg, bad, fatal)
			continue
		}
		if !proto.Equal(env.Message.(proto.Message), msg) {
			t.Errorf("%T: decoded differs", msg)
		}
		if size := int64(proto.Size(msg)); env.Size < size {
			t.Errorf("%T: Size %d; want at least its %d bytes", msg, env.Size, size)
		}
	}
}
