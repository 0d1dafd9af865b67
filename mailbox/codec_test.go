package mailbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
)

// testPing is a registered pointer type with PIDs nested every way msgpack
// can hold them.
type testPing struct {
	N      int
	Text   string
	Who    *pa.PID
	Nobody *pa.PID
	Val    pa.PID
	Many   []*pa.PID
	ByName map[string]*pa.PID
	Inner  *testInner
	Blob   []byte
}

type testInner struct {
	Reply *pa.PID
	Tags  []string
}

// testPoint is a registered value type (not a pointer).
type testPoint struct {
	X, Y int
}

// testBroken fails to encode or decode on demand.
type testBroken struct {
	FailEncode bool
	PanicDec   bool
}

func (b *testBroken) EncodeMsgpack(enc *msgpack.Encoder) error {
	if b.FailEncode {
		return errors.New("broken on purpose")
	}
	return enc.EncodeBool(b.PanicDec)
}

func (b *testBroken) DecodeMsgpack(dec *msgpack.Decoder) error {
	v, err := dec.DecodeBool()
	if err != nil {
		return err
	}
	if v {
		panic("testBroken: decoder panics on purpose")
	}
	return nil
}

// testNode can form a cycle.
type testNode struct{ Next *testNode }

func cyclic() *testNode {
	n := &testNode{}
	n.Next = n
	return n
}

func cyclicAny() []any {
	s := []any{nil}
	s[0] = s
	return s
}

func init() {
	RegisterType("mailbox_test.node", &testNode{})
	RegisterType("mailbox_test.ping", &testPing{})
	RegisterType("mailbox_test.point", testPoint{})
	RegisterType("mailbox_test.broken", &testBroken{})
}

type roundTrip struct {
	name string
	msg  any
	want any // what arrives; nil means msg itself
}

// roundTrips lists every kind of value the codec carries.
func roundTrips() []roundTrip {
	big := bytes.Repeat([]byte("0123456789abcdef"), externThreshold/16+1)
	when := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	return []roundTrip{
		{"nil", nil, nil},
		{"bytes", []byte("hello"), nil},
		{"bytes empty", []byte{}, nil},
		{"bytes nil arrives empty", []byte(nil), []byte{}},
		{"bytes extern", big, nil},
		{"string", "héllo wörld", nil},
		{"string empty", "", nil},
		{"int", int(-42), nil},
		{"int min", int(math.MinInt), nil},
		{"int8", int8(-128), nil},
		{"int16", int16(math.MaxInt16), nil},
		{"int32", int32(math.MinInt32), nil},
		{"int64", int64(math.MaxInt64), nil},
		{"uint", uint(math.MaxUint), nil},
		{"uint8", uint8(255), nil},
		{"uint16", uint16(65535), nil},
		{"uint32", uint32(math.MaxUint32), nil},
		{"uint64", uint64(math.MaxUint64), nil},
		{"float32", float32(-1.5), nil},
		{"float64", math.Pi, nil},
		{"float64 inf", math.Inf(-1), nil},
		{"bool true", true, nil},
		{"bool false", false, nil},
		{"pid", pa.NewPID("node/3", "$7"), nil},
		{"pid with request id", &pa.PID{Address: "node", Id: "future", RequestId: 99}, nil},
		{"registered pointer with nested PIDs", &testPing{
			N: 7, Text: "x", Who: pa.NewPID("node", "$1"),
			Val:    pa.PID{Address: "node/1", Id: "val", RequestId: 3},
			Many:   []*pa.PID{pa.NewPID("a", "1"), nil, pa.NewPID("b", "2")},
			ByName: map[string]*pa.PID{"k": pa.NewPID("c", "3")},
			Inner:  &testInner{Reply: pa.NewPID("node/2", "r"), Tags: []string{"t"}},
			Blob:   []byte{1, 2, 3},
		}, nil},
		{"registered value", testPoint{X: 1, Y: -2}, nil},
		{"registered custom codec", &benchPointCustom{X: 1, Y: 2, Name: "p"}, nil},
		{"proto Watch", &pa.Watch{Watcher: pa.NewPID("node", "w")}, nil},
		{"proto Unwatch", &pa.Unwatch{Watcher: pa.NewPID("node", "w")}, nil},
		{"proto Terminated", &pa.Terminated{Who: pa.NewPID("node/1", "x"), Why: pa.TerminatedReason_AddressTerminated}, nil},
		{"proto Stop", &pa.Stop{}, nil},
		{"proto PoisonPill", &pa.PoisonPill{}, nil},
		{"proto DeadLetterResponse", &pa.DeadLetterResponse{Target: pa.NewPID("node", "gone")}, nil},
		{"[]string", []string{"a", "", "c"}, nil},
		{"[]int", []int{1, -2, 300000}, nil},
		{"[]int64", []int64{math.MinInt64}, nil},
		{"[]uint64", []uint64{math.MaxUint64}, nil},
		{"[]float64", []float64{0.5}, nil},
		{"[]bool", []bool{true, false}, nil},
		{"[][]byte", [][]byte{[]byte("a"), {}}, nil},
		{"[]any", []any{"a", true}, nil},
		{"[]*actor.PID", []*pa.PID{pa.NewPID("n", "1")}, nil},
		{"map[string]string", map[string]string{"a": "b"}, nil},
		{"map[string]any", map[string]any{"s": "x", "b": false, "m": map[string]any{"n": nil}}, nil},
		{"map[string]int", map[string]int{"a": 1}, nil},
		{"map[string]int64", map[string]int64{"a": -1}, nil},
		{"map[string]float64", map[string]float64{"a": 0.25}, nil},
		{"map[string]bool", map[string]bool{"a": true}, nil},
		{"map[string][]byte", map[string][]byte{"a": []byte("z")}, nil},
		{"time.Time", when, when.Local()},
		{"time.Duration", 90 * time.Second, nil},
		{"map[int]string", map[int]string{1: "one", -300: "minus"}, nil},
		{"map[string]float32", map[string]float32{"x": 1.5}, nil},
		{"slice of a registered value type", []testPoint{{1, 2}}, nil},
		{"array", [2]string{"a", "b"}, nil},
		{"nil map", map[int]int(nil), nil},
	}
}

// equalMessage compares a sent and a received message: protobuf messages
// (PIDs included) with proto.Equal, the rest with reflect.DeepEqual.
func equalMessage(got, want any) bool {
	if g, ok := got.(proto.Message); ok {
		w, ok := want.(proto.Message)
		return ok && proto.Equal(g, w)
	}
	return reflect.DeepEqual(got, want)
}

func (rt roundTrip) wanted() any {
	if rt.want != nil {
		return rt.want
	}
	return rt.msg
}

// TestCodecRoundTrip runs every value through one encoder and one decoder,
// with and without target, sender and header, on both lanes.
func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	enc, dec := newEncoder(""), newDecoder()
	for i, rt := range roundTrips() {
		for _, owned := range []bool{false, true} {
			env := &Envelope{Message: rt.msg}
			if i%2 == 0 {
				env.Lane = LaneSystem
				env.Target = pa.NewPID("node/1", "worker")
				env.Sender = &pa.PID{Address: "node", Id: "future", RequestId: uint32(i)}
				env.Header = map[string]string{"trace": fmt.Sprint(i), "": ""}
			}
			b, ext, err := enc.appendEnvelope(nil, env)
			if err != nil {
				t.Fatalf("%s: encode: %v", rt.name, err)
			}
			b = append(b, ext...)
			var got Envelope
			bad, fatal := dec.decodeEnvelope(b, owned, &got)
			if bad != nil || fatal != nil {
				t.Fatalf("%s: decode: got (%v, %v); want (nil, nil)", rt.name, bad, fatal)
			}
			if !equalMessage(got.Message, rt.wanted()) {
				t.Errorf("%s: got %T %#v; want %T %#v", rt.name, got.Message, got.Message, rt.wanted(), rt.wanted())
			}
			if got.Lane != env.Lane || !equalMessage(got.Target, env.Target) || !equalMessage(got.Sender, env.Sender) ||
				!(len(got.Header) == 0 && len(env.Header) == 0 || reflect.DeepEqual(got.Header, env.Header)) {
				t.Errorf("%s: got envelope (%v, %v, %v, %v); want (%v, %v, %v, %v)", rt.name,
					got.Lane, got.Target, got.Sender, got.Header, env.Lane, env.Target, env.Sender, env.Header)
			}
		}
	}
}

// TestBytesPayloadCopies checks that a []byte payload from a view of the
// read buffer is copied (the buffer is reused) and one from an owned frame
// is not.
func TestBytesPayloadCopies(t *testing.T) {
	t.Parallel()
	enc, dec := newEncoder(""), newDecoder()
	msg, _, err := enc.appendEnvelope(nil, &Envelope{Message: []byte("payload")})
	if err != nil {
		t.Fatal(err)
	}
	for _, owned := range []bool{false, true} {
		var env Envelope
		if bad, fatal := dec.decodeEnvelope(msg, owned, &env); bad != nil || fatal != nil {
			t.Fatal(bad, fatal)
		}
		p := env.Message.([]byte)
		aliased := &p[0] == &msg[len(msg)-len(p)]
		if aliased != owned {
			t.Errorf("owned=%v: payload aliases the frame: %v; want %v", owned, aliased, owned)
		}
		if owned && cap(p) != len(p) {
			t.Errorf("owned=%v: cap = %d; want %d (appends must not reach the frame)", owned, cap(p), len(p))
		}
	}
}

// TestNonhostRewrite checks that "nonhost" PIDs are written with the local
// address wherever they appear, and that the caller's values are untouched.
func TestNonhostRewrite(t *testing.T) {
	t.Parallel()
	nh := func(id string) *pa.PID { return pa.NewPID(nonhost, id) }
	for _, local := range []string{"node/7", ""} {
		want := local
		if want == "" {
			want = nonhost
		}
		enc, dec := newEncoder(local), newDecoder()
		ping := &testPing{Who: nh("who"), Val: pa.PID{Address: nonhost, Id: "val"}, Many: []*pa.PID{nh("m")},
			ByName: map[string]*pa.PID{"k": nh("k")}, Inner: &testInner{Reply: nh("r")}}
		msgs := []any{nh("top"), ping, []*pa.PID{nh("s")},
			&pa.Watch{Watcher: nh("w")}, &pa.Unwatch{Watcher: nh("u")},
			&pa.Terminated{Who: nh("t"), Why: pa.TerminatedReason_Stopped}, &pa.DeadLetterResponse{Target: nh("d")}}
		for _, m := range msgs {
			b, _, err := enc.appendEnvelope(nil, &Envelope{Target: nh("target"), Sender: nh("sender"), Message: m})
			if err != nil {
				t.Fatal(err)
			}
			var env Envelope
			if bad, fatal := dec.decodeEnvelope(b, false, &env); bad != nil || fatal != nil {
				t.Fatal(bad, fatal)
			}
			var pids []*pa.PID
			switch v := env.Message.(type) {
			case *pa.PID:
				pids = []*pa.PID{v}
			case *testPing:
				pids = []*pa.PID{v.Who, &v.Val, v.Many[0], v.ByName["k"], v.Inner.Reply}
			case []*pa.PID:
				pids = v
			case *pa.Watch:
				pids = []*pa.PID{v.Watcher}
			case *pa.Unwatch:
				pids = []*pa.PID{v.Watcher}
			case *pa.Terminated:
				pids = []*pa.PID{v.Who}
				if v.Why != pa.TerminatedReason_Stopped {
					t.Errorf("Terminated.Why = %v; want Stopped", v.Why)
				}
			case *pa.DeadLetterResponse:
				pids = []*pa.PID{v.Target}
			default:
				t.Fatalf("got %T", env.Message)
			}
			pids = append(pids, env.Target, env.Sender)
			for _, p := range pids {
				if p.Address != want {
					t.Errorf("local %q, %T: PID %s has address %q; want %q", local, m, p.Id, p.Address, want)
				}
			}
		}
		// The caller's values keep "nonhost".
		if ping.Who.Address != nonhost || ping.Val.Address != nonhost || msgs[3].(*pa.Watch).Watcher.Address != nonhost {
			t.Errorf("local %q: the sent message was modified", local)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		msg  any
		want error
	}{
		{"unregistered struct", struct{ X int }{1}, ErrTypeNotRegistered},
		{"unregistered pointer", &struct{ X int }{1}, ErrTypeNotRegistered},
		{"named string", time.Month(1), ErrTypeNotRegistered},
		{"complex", complex(1, 2), ErrTypeNotRegistered},
		{"chan", make(chan int), ErrTypeNotRegistered},
		{"func", func() {}, ErrTypeNotRegistered},
		{"proto by value is not a proto.Message", testPoint{}, nil},
		{"encoder fails", &testBroken{FailEncode: true}, ErrEncode},
		{"slice of funcs", []func(){func() {}}, ErrTypeNotRegistered},
		{"unregistered struct in an any", &testPing{}, nil},
		{"unregistered struct in a []any", []any{struct{ X int }{1}}, ErrTypeNotRegistered},
		{"unregistered named scalar in a map[string]any", map[string]any{"m": time.Month(1)}, ErrTypeNotRegistered},
		{"cyclic pointers", cyclic(), ErrEncode},
		{"cyclic []any", cyclicAny(), ErrEncode},
	} {
		enc := newEncoder("")
		mark := enc.mark()
		b, _, err := enc.appendEnvelope(nil, &Envelope{Target: pa.NewPID("fresh-address", "x"), Message: c.msg})
		if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("%s: got %v; want %v", c.name, err, c.want)
		}
		if err != nil {
			enc.rollback(mark)
			if len(enc.syms) != 0 || len(enc.symOrder) != 0 {
				t.Errorf("%s: symbols %v left after rollback; want none", c.name, enc.symOrder)
			}
		}
		_ = b
	}
}

// rawMsg builds a message by hand: flags, then the given parts.
func rawMsg(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			b = append(b, v)
		case int:
			b = binary.AppendUvarint(b, uint64(v))
		case string:
			b = appendString(b, v)
		case []byte:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("rawMsg: %T", p))
		}
	}
	return b
}

func mustMsgpack(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// deepTags is msgpack for n nested tagged values of type "any" (tag 0).
func deepTags(n int) []byte {
	b := []byte{mpNil}
	for range n {
		body := append([]byte{0}, b...)
		h := []byte{mpExt32, 0, 0, 0, 0, extTag}
		binary.BigEndian.PutUint32(h[1:], uint32(len(body)))
		b = append(h, body...)
	}
	return b
}

// deepArray is msgpack for n nested one-element arrays.
func deepArray(n int) []byte {
	b := bytes.Repeat([]byte{0x91}, n)
	return append(b, 0xc0)
}

// badMessages are messages that break the wire format (fatal: the link
// closes with ErrProtocol) or lose only themselves (a dead letter).
var badMessages = []struct {
	name string
	msg  []byte
	want error // ErrProtocol: fatal; ErrUnknownType, ErrDecode: dead letter
}{
	{"empty message", rawMsg(), ErrProtocol},
	{"unknown flags", rawMsg(byte(0x80), byte(kindNil)), ErrProtocol},
	{"no kind", rawMsg(byte(0)), ErrProtocol},
	{"truncated target", rawMsg(byte(flagTarget), byte(symNew), 5, "ab"), ErrProtocol},
	{"undefined symbol reference", rawMsg(byte(flagTarget), 40, "id", 0, byte(kindNil)), ErrProtocol},
	{"bad varint", rawMsg(byte(flagTarget), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), ErrProtocol},
	{"request id overflows", rawMsg(byte(flagSender), byte(symLiteral), "a", "b", 1<<33, byte(kindNil)), ErrProtocol},
	{"header overruns", rawMsg(byte(flagHeader), 1000, "k", "v", byte(kindNil)), ErrProtocol},
	{"header string overruns", rawMsg(byte(flagHeader), 1, 200, "k"), ErrProtocol},
	{"undefined type symbol", rawMsg(byte(0), byte(kindTyped), 9, mustMsgpack(1)), ErrProtocol},

	{"unknown registered type name", rawMsg(byte(flagTarget), byte(symLiteral), "n", "t", 0, byte(kindTyped), byte(symNew), "no.such.Type", mustMsgpack(map[string]int{"X": 1})), ErrUnknownType},
	{"undecodable msgpack", rawMsg(byte(flagTarget), byte(symLiteral), "n", "t", 0, byte(kindTyped), byte(symLiteral), "mailbox_test.ping", []byte{0xc1}), ErrDecode},
	{"msgpack of the wrong shape", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "mailbox_test.ping", mustMsgpack("a string")), ErrDecode},
	{"msgpack stray bytes", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "mailbox_test.point", mustMsgpack(testPoint{}), []byte{1}), ErrDecode},
	{"msgpack array32 of 2^32-1", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "[]any", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}), ErrDecode},
	{"msgpack map32 of 2^32-1", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "[]any", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}), ErrDecode},
	{"msgpack slice field of 2^32-1", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "mailbox_test.ping", []byte{0x81, 0xa4, 'M', 'a', 'n', 'y', 0xdd, 0xff, 0xff, 0xff, 0xff}), ErrDecode},
	{"msgpack str32 of 2^32-1", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "[]any", []byte{0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}), ErrDecode},
	{"msgpack nested too deep", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "[]any", deepArray(maxMsgpackDepth+1)), ErrDecode},
	{"tags nested too deep", rawMsg(byte(0), byte(kindTypedTags), byte(symLiteral), "any", 1, byte(symLiteral), "any", deepTags(maxMsgpackDepth+1)), ErrDecode},
	{"tag index out of its table", rawMsg(byte(0), byte(kindTypedTags), byte(symLiteral), "any", 1, byte(symLiteral), "int", []byte{0xd5, extTag, 5, 1}), ErrDecode},
	{"tag of an unknown type", rawMsg(byte(0), byte(kindTypedTags), byte(symLiteral), "[]any", 1, byte(symLiteral), "no.such.Type", []byte{0x91, 0xd5, extTag, 0, 1}), ErrUnknownType},
	{"unknown ext type", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "[]any", []byte{0x91, 0xd4, 9, 0}), ErrDecode},
	{"tag table overruns", rawMsg(byte(0), byte(kindTypedTags), byte(symLiteral), "any", 200), ErrProtocol},
	{"msgpack unhashable key", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "[]any", []byte{0x81, 0x91, 0x01, 0x01}), ErrDecode},
	{"decoder panics", rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "mailbox_test.broken", mustMsgpack(true)), ErrDecode},
	{"unknown proto name", rawMsg(byte(0), byte(kindProto), byte(symNew), "actor.NoSuchMessage", []byte{}), ErrUnknownType},
	{"bad proto bytes", rawMsg(byte(0), byte(kindProto), byte(symLiteral), "actor.Watch", []byte{0x0a, 0x7f}), ErrDecode},
	{"nil with stray bytes", rawMsg(byte(0), byte(kindNil), []byte{1}), ErrDecode},
	{"scalar too short", rawMsg(byte(0), byte(kindScalar), byte(reflect.Int), []byte{1}), ErrDecode},
	{"scalar of unknown kind", rawMsg(byte(0), byte(kindScalar), byte(reflect.String), make([]byte, 8)), ErrDecode},
	{"pid payload truncated", rawMsg(byte(0), byte(kindPID), byte(symLiteral)), ErrDecode},
	{"pid payload stray bytes", rawMsg(byte(0), byte(kindPID), byte(symLiteral), "a", "b", 0, []byte{9}), ErrDecode},
	{"unknown payload kind", rawMsg(byte(0), byte(99)), ErrDecode},
}

func TestDecodeBadMessages(t *testing.T) {
	t.Parallel()
	for _, c := range badMessages {
		dec := newDecoder()
		var env Envelope
		bad, fatal := dec.decodeEnvelope(c.msg, false, &env)
		if c.want == ErrProtocol {
			if !errors.Is(fatal, ErrProtocol) || bad != nil {
				t.Errorf("%s: got (bad %v, fatal %v); want fatal ErrProtocol", c.name, bad, fatal)
			}
			continue
		}
		if !errors.Is(bad, c.want) || fatal != nil {
			t.Errorf("%s: got (bad %v, fatal %v); want bad %v", c.name, bad, fatal, c.want)
		}
		if env.Message != nil {
			t.Errorf("%s: dead letter carries message %T; want nil", c.name, env.Message)
		}
	}
}

func TestCheckMsgpack(t *testing.T) {
	t.Parallel()
	good := []any{nil, true, -1, 1 << 40, -1 << 40, 1.5, float32(2), "", strings.Repeat("s", 70000), []byte("bin"),
		[]any{1, []any{2, map[string]any{"a": []byte{}}}}, map[string]int{"a": 1}, time.Unix(1, 2), time.Unix(1<<40, 0),
		&testPing{Many: []*pa.PID{nil}}, []int{}, map[string]any{}}
	for _, v := range good {
		b := mustMsgpack(v)
		if err := checkMsgpack(b); err != nil {
			t.Errorf("%T %v: got %v; want nil", v, v, err)
		}
		if err := checkMsgpack(append(b, b...)); err != nil {
			t.Errorf("%T twice: got %v; want nil", v, err)
		}
		if len(b) > 1 {
			if err := checkMsgpack(b[:len(b)-1]); err == nil {
				t.Errorf("%T truncated: got nil; want an error", v)
			}
		}
	}
	for _, b := range [][]byte{{0xc1}, {0x92, 0x01}, {0xdc, 0x00}, {0xc4, 0x05, 1}, {0xc7, 0x01}, {0xd8, 1}, deepArray(maxMsgpackDepth + 1)} {
		if err := checkMsgpack(b); err == nil {
			t.Errorf("% x: got nil; want an error", b[:min(len(b), 8)])
		}
	}
	if err := checkMsgpack(deepArray(maxMsgpackDepth)); err != nil {
		t.Errorf("depth %d: got %v; want nil", maxMsgpackDepth, err)
	}
}

type (
	regA struct{ A int }
	regB struct{ B int }
)

func init() { RegisterType("mailbox_test.regA", regA{}) }

func TestRegistry(t *testing.T) {
	t.Parallel()
	if name, ok := RegisteredName(regA{}); name != "mailbox_test.regA" || !ok {
		t.Errorf("RegisteredName(regA{}) = %q, %v; want mailbox_test.regA, true", name, ok)
	}
	if name, ok := RegisteredName(&regA{}); name != "mailbox_test.regA" || !ok {
		t.Errorf("RegisteredName(&regA{}) = %q, %v; want mailbox_test.regA, true (T and *T both cross)", name, ok)
	}
	if name, ok := RegisteredName(nil); name != "" || ok {
		t.Errorf("RegisteredName(nil) = %q, %v; want \"\", false", name, ok)
	}
	if !IsRegistered("mailbox_test.regA") || IsRegistered("mailbox_test.nope") {
		t.Errorf("IsRegistered wrong")
	}
	for _, c := range []struct {
		name   string
		regNm  string
		sample any
	}{
		{"duplicate name", "mailbox_test.regA", regB{}},
		{"duplicate type", "mailbox_test.regA2", regA{}},
		{"empty name", "", regB{}},
		{"nil sample", "mailbox_test.nil", nil},
		{"builtin name", "go:[]string", regB{}},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: RegisterType did not panic", c.name)
				}
			}()
			RegisterType(c.regNm, c.sample)
		}()
	}
	if IsRegistered("mailbox_test.regA2") {
		t.Errorf("a failed registration left its name behind")
	}
}

// TestInterning: a type name or an address crosses the link once.
func TestInterning(t *testing.T) {
	t.Parallel()
	enc := newEncoder("")
	env := &Envelope{Target: pa.NewPID("some/address", "a"), Message: &testPing{N: 1}}
	first, _, err := enc.appendEnvelope(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := enc.appendEnvelope(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"mailbox_test.ping", "some/address"} {
		if !bytes.Contains(first, []byte(s)) || bytes.Contains(second, []byte(s)) {
			t.Errorf("%q: in the first message %v, in the second %v; want true, false", s, bytes.Contains(first, []byte(s)), bytes.Contains(second, []byte(s)))
		}
	}
	if len(second) >= len(first) {
		t.Errorf("second message %d bytes; want fewer than the first's %d", len(second), len(first))
	}
}

// TestLargeBytesNotCopied: a []byte payload of externThreshold or more is
// written from the caller's slice, not copied into the batch.
func TestLargeBytesNotCopied(t *testing.T) {
	t.Parallel()
	for _, size := range []int{externThreshold - 1, externThreshold} {
		payload := make([]byte, size)
		b := newBatch()
		if err := b.appendEnvelope(newEncoder(""), &Envelope{Message: payload}, DefaultMaxFrame); err != nil {
			t.Fatal(err)
		}
		extern := len(b.extern) == 1 && &b.extern[0].data[0] == &payload[0]
		if want := size >= externThreshold; extern != want || (want && len(b.buf) > 64) {
			t.Errorf("%d bytes: written from the caller's slice %v (batch holds %d bytes); want %v", size, extern, len(b.buf), want)
		}
		if b.size() != headerSize+msgPrefixSize+2+size {
			t.Errorf("%d bytes: batch size %d; want %d", size, b.size(), headerSize+msgPrefixSize+2+size)
		}
	}
}

// TestMarshalRoundTrip: Marshal and Unmarshal carry every payload kind, and
// Unmarshal types its errors on bad input.
func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	for _, rt := range roundTrips() {
		b, err := Marshal(rt.msg)
		if err != nil {
			t.Fatalf("%s: Marshal: %v", rt.name, err)
		}
		got, err := Unmarshal(b)
		if err != nil || !equalMessage(got, rt.wanted()) {
			t.Errorf("%s: got %T %#v, %v; want %T %#v", rt.name, got, got, err, rt.wanted(), rt.wanted())
		}
	}
	if _, err := Marshal(struct{}{}); !errors.Is(err, ErrTypeNotRegistered) {
		t.Errorf("Marshal(struct{}{}): got %v; want ErrTypeNotRegistered", err)
	}
	for _, c := range badMessages {
		if c.want == ErrProtocol || len(c.msg) < 2 || c.msg[0] != 0 {
			continue // Unmarshal's input has no envelope
		}
		if _, err := Unmarshal(c.msg[1:]); !errors.Is(err, c.want) {
			t.Errorf("Unmarshal(%s): got %v; want %v", c.name, err, c.want)
		}
	}
	for _, b := range [][]byte{nil, {kindTyped}, {kindTyped, 9}} {
		if _, err := Unmarshal(b); !errors.Is(err, ErrProtocol) {
			t.Errorf("Unmarshal(% x): got %v; want ErrProtocol", b, err)
		}
	}
}

// TestFuturePIDsNotCached: a future is answered once, so the PID of one
// (a request's sender, an answer's target) never comes again on a link.
// Caching each in the address's map of PIDs cost about 200 bytes of
// garbage per decode (the map growing, then dropped at maxCachedPIDs): the
// largest allocation of a round trip, and its collections the round trip's
// tail. Other PIDs are still cached: decoding one twice gives one *PID.
func TestFuturePIDsNotCached(t *testing.T) {
	t.Parallel()
	enc, dec := newEncoder(""), newDecoder()
	decode := func(target, sender *pa.PID) Envelope {
		t.Helper()
		b, ext, err := enc.appendEnvelope(nil, &Envelope{Target: target, Sender: sender, Message: "x"})
		if err != nil {
			t.Fatal(err)
		}
		var got Envelope
		if bad, fatal := dec.decodeEnvelope(append(b, ext...), false, &got); bad != nil || fatal != nil {
			t.Fatalf("decode: %v, %v", bad, fatal)
		}
		return got
	}
	worker := pa.NewPID("node/1", "worker")
	first := decode(worker, pa.NewPID("node", "future$1"))
	for i := 2; i <= 100; i++ {
		got := decode(worker, pa.NewPID("node", fmt.Sprintf("future$%d", i)))
		if got.Target != first.Target {
			t.Fatal("the worker's PID was decoded anew: not cached")
		}
		if want := fmt.Sprintf("future$%d", i); got.Sender == nil || got.Sender.Id != want || got.Sender.Address != "node" {
			t.Fatalf("sender %v; want node/%s", got.Sender, want)
		}
	}
	answer := decode(pa.NewPID("node", "future$7"), nil)
	if answer.Target == nil || answer.Target.Id != "future$7" {
		t.Fatalf("target %v; want node/future$7", answer.Target)
	}
	if dec.cachedPIDs != 1 {
		t.Fatalf("%d PIDs cached; want 1 (the worker's, not the 101 futures')", dec.cachedPIDs)
	}
}
