package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

// Types of the round-trip table (issue 13): one registered by pointer, one
// by value, a holder of interface positions, a tick, a named scalar.
type (
	rtPing struct{ N int }
	rtPong struct {
		Text string `msgpack:"text"`
	}
	rtHolder struct {
		Any   any
		List  []any
		Map   map[string]any
		Pongs []*rtPong
		Err   error
		When  time.Time
		Arr   [2]*rtPong
	}
	rtTick    struct{}
	rtCelsius float64
)

// errRTSentinel is registered on both sides: errors.Is survives the link.
var errRTSentinel = errors.New("rt sentinel")

func init() {
	RegisterType("mailbox_test.rtPing", &rtPing{})
	RegisterType("mailbox_test.rtPong", rtPong{})
	RegisterType("mailbox_test.rtHolder", &rtHolder{})
	RegisterType("mailbox_test.rtTick", rtTick{})
	RegisterType("mailbox_test.rtCelsius", rtCelsius(0))
	RegisterError("mailbox_test.errRTSentinel", errRTSentinel)
}

var rtWhen = time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)

// issueRoundTrips are the rows of issue 13's "what must round-trip".
func issueRoundTrips() []roundTrip {
	pid := pa.NewPID("n/1", "worker")
	return []roundTrip{
		{"value of a type registered by pointer", rtPing{N: 1}, nil},
		{"pointer of a type registered by value", &rtPong{Text: "p"}, nil},
		{"pointer of a type registered by pointer", &rtPing{N: 2}, nil},
		{"value of a type registered by value", rtPong{Text: "v"}, nil},
		{"nil pointer of a registered type", (*rtPing)(nil), nil},
		{"registered pointer in an any field", &rtHolder{Any: &rtPing{N: 3}}, nil},
		{"registered value in an any field", &rtHolder{Any: rtPong{Text: "in any"}}, nil},
		{"registered types in a []any", []any{&rtPing{N: 1}, rtPong{Text: "a"}, nil, 3, "s", true}, nil},
		{"registered types in a map[string]any", map[string]any{"p": &rtPing{N: 1}, "q": rtPong{Text: "b"}, "n": nil}, nil},
		{"registered types in a holder's []any and map", &rtHolder{List: []any{rtPing{N: 4}}, Map: map[string]any{"k": &rtPong{Text: "m"}}}, nil},
		{"slice of a registered type", []*rtPong{{Text: "a"}, nil, {Text: "b"}}, nil},
		{"slice of a registered type in a field", &rtHolder{Pongs: []*rtPong{{Text: "f"}}}, nil},
		{"map of a registered type", map[string]rtPing{"x": {N: 5}}, nil},
		{"PID in an any field", &rtHolder{Any: pid}, nil},
		{"PIDs in a []any", []any{pid, pa.NewPID("n", "$2")}, nil},
		{"every scalar kind in a []any", []any{int8(-1), int16(-2), int32(-3), int64(-4), uint(5), uint8(6), uint16(7), uint32(8), uint64(9), float32(1.5), 2.5, 7}, nil},
		{"empty struct", rtTick{}, nil},
		{"pointer to an empty struct", &rtTick{}, nil},
		{"empty struct in a []any", []any{rtTick{}}, nil},
		{"named scalar", rtCelsius(36.6), nil},
		{"named scalar in an any field", &rtHolder{Any: rtCelsius(-40)}, nil},
		{"fixed-size array", [3]int{1, 2, 3}, nil},
		{"fixed-size array of registered pointers", &rtHolder{Arr: [2]*rtPong{{Text: "a"}, nil}}, nil},
		{"fixed-size array in an any field", &rtHolder{Any: [2]string{"a", "b"}}, nil},
		{"time.Time", rtWhen, nil},
		{"time.Time in a field", &rtHolder{When: rtWhen}, nil},
		{"time.Time in an any field", &rtHolder{Any: rtWhen}, nil},
		{"time.Duration", 90 * time.Second, nil},
		{"time.Duration in a []any", []any{time.Duration(7)}, nil},
		{"protobuf message", &pa.Watch{Watcher: pid}, nil},
		{"protobuf message in an any field", &rtHolder{Any: &pa.Terminated{Who: pid, Why: pa.TerminatedReason_Stopped}}, nil},
		{"nested maps", map[string]map[string]int{"a": {"b": 1}}, nil},
		{"nil []byte in an any field", &rtHolder{Any: []byte(nil)}, nil},
		{"nil []any in an any field", &rtHolder{Any: []any(nil)}, nil},
		{"map[any]any", map[any]any{1: "one", "two": 2}, nil},
	}
}

// diffValue reports where got differs from want: a different type at any
// level (what %T prints), a different value, a time that is not Equal.
// Protobuf messages are compared with proto.Equal.
func diffValue(path string, got, want reflect.Value) string {
	if got.IsValid() != want.IsValid() {
		return fmt.Sprintf("%s: got %v; want %v", path, got, want)
	}
	if !got.IsValid() {
		return ""
	}
	if got.Type() != want.Type() {
		return fmt.Sprintf("%s: got type %v; want %v", path, got.Type(), want.Type())
	}
	if got.Type() == timeType {
		if !got.Interface().(time.Time).Equal(want.Interface().(time.Time)) {
			return fmt.Sprintf("%s: got time %v; want %v", path, got, want)
		}
		return ""
	}
	if got.Kind() == reflect.Pointer && got.Type().Implements(protoMsgTyp) && !got.IsNil() && !want.IsNil() {
		if !proto.Equal(got.Interface().(proto.Message), want.Interface().(proto.Message)) {
			return fmt.Sprintf("%s: got %v; want %v", path, got, want)
		}
		return ""
	}
	switch got.Kind() {
	case reflect.Interface, reflect.Pointer:
		if got.IsNil() != want.IsNil() {
			return fmt.Sprintf("%s: got nil %v; want nil %v", path, got.IsNil(), want.IsNil())
		}
		if got.IsNil() {
			return ""
		}
		return diffValue(path+"/"+got.Elem().Type().String(), got.Elem(), want.Elem())
	case reflect.Struct:
		for i := range got.NumField() {
			if !got.Type().Field(i).IsExported() {
				continue
			}
			if d := diffValue(path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice, reflect.Array:
		if got.Kind() == reflect.Slice && got.IsNil() != want.IsNil() {
			return fmt.Sprintf("%s: got nil slice %v; want %v", path, got.IsNil(), want.IsNil())
		}
		if got.Len() != want.Len() {
			return fmt.Sprintf("%s: got %d elements; want %d", path, got.Len(), want.Len())
		}
		for i := range got.Len() {
			if d := diffValue(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if got.IsNil() != want.IsNil() || got.Len() != want.Len() {
			return fmt.Sprintf("%s: got map of %d (nil %v); want %d (nil %v)", path, got.Len(), got.IsNil(), want.Len(), want.IsNil())
		}
		for _, k := range want.MapKeys() {
			if d := diffValue(fmt.Sprintf("%s[%v]", path, k), got.MapIndex(k), want.MapIndex(k)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(got.Interface(), want.Interface()) {
		return fmt.Sprintf("%s: got %#v; want %#v", path, got, want)
	}
	return ""
}

// sameAsSent checks what arrived against what was sent: what an actor in
// the same process receives. reflect.DeepEqual too, except for values that
// hold a time.Time (its location and monotonic reading do not cross: Equal
// is the test) or a protobuf message (its internal state differs).
func sameAsSent(t *testing.T, got, sent any) {
	t.Helper()
	if d := diffValue(fmt.Sprintf("%T", sent), reflect.ValueOf(got), reflect.ValueOf(sent)); d != "" {
		t.Fatalf("%s\ngot  %#v\nsent %#v", d, got, sent)
	}
	if !holdsTimeOrProto(reflect.ValueOf(sent), 0) && !reflect.DeepEqual(got, sent) {
		t.Fatalf("reflect.DeepEqual: got %#v; sent %#v", got, sent)
	}
}

func holdsTimeOrProto(v reflect.Value, depth int) bool {
	if !v.IsValid() || depth > 10 {
		return false
	}
	if v.Type() == timeType || v.Kind() == reflect.Pointer && v.Type().Implements(protoMsgTyp) && v.Type() != reflect.TypeFor[*pa.PID]() {
		return true
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		return !v.IsNil() && holdsTimeOrProto(v.Elem(), depth+1)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && holdsTimeOrProto(v.Field(i), depth+1) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if holdsTimeOrProto(v.Index(i), depth+1) {
				return true
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if holdsTimeOrProto(v.MapIndex(k), depth+1) {
				return true
			}
		}
	}
	return false
}

// TestIssueRoundTrips sends every row of the table across a link (two
// endpoints over a pair of OS pipes, the production stream) and checks
// that what arrives is what an actor in the same process would receive:
// reflect.DeepEqual, the same type at every level, times Equal.
func TestIssueRoundTrips(t *testing.T) {
	t.Parallel()
	p := newPair(t, transports[1], nil)
	for _, rt := range issueRoundTrips() {
		t.Run(rt.name, func(t *testing.T) {
			n := p.cb.count()
			if err := p.a.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "x"), Message: rt.msg}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got, reasons := p.cb.wait(t, n+1)
			if reasons[n] != nil {
				t.Fatalf("dead letter: %v", reasons[n])
			}
			sameAsSent(t, got[n].Message, rt.msg)
		})
	}
}

// TestErrorsCross: an error crosses as a RemoteError with the same text;
// errors.Is holds for sentinels registered on both sides, procactor's own
// among them, wrapped or joined, at the top or in an error field.
func TestErrorsCross(t *testing.T) {
	t.Parallel()
	p := newPair(t, transports[1], nil)
	for _, c := range []struct {
		name string
		err  error
		is   []error
	}{
		{"errors.New", errors.New("x"), nil},
		{"wrapped sentinel", fmt.Errorf("doing it: %w", errRTSentinel), []error{errRTSentinel}},
		{"procactor's own", fmt.Errorf("send: %w", ErrClosed), []error{ErrClosed}},
		{"protoactor's", pa.ErrTimeout, []error{pa.ErrTimeout}},
		{"context", fmt.Errorf("waiting: %w", context.DeadlineExceeded), []error{context.DeadlineExceeded}},
		{"joined", errors.Join(io.EOF, errRTSentinel), []error{io.EOF, errRTSentinel}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, msg := range []any{c.err, &rtHolder{Err: c.err}, []any{c.err}} {
				n := p.cb.count()
				if err := p.a.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "x"), Message: msg}); err != nil {
					t.Fatalf("Send(%T): %v", msg, err)
				}
				got, reasons := p.cb.wait(t, n+1)
				if reasons[n] != nil {
					t.Fatalf("%T: dead letter: %v", msg, reasons[n])
				}
				var err error
				switch m := got[n].Message.(type) {
				case error:
					err = m
				case *rtHolder:
					err = m.Err
				case []any:
					err, _ = m[0].(error)
				}
				var re *RemoteError
				if !errors.As(err, &re) || err.Error() != c.err.Error() {
					t.Fatalf("%T: got %T %v; want a *RemoteError %q", msg, err, err, c.err.Error())
				}
				for _, s := range c.is {
					if !errors.Is(err, s) {
						t.Errorf("%T: errors.Is(%v, %v) = false; want true", msg, err, s)
					}
				}
				if errors.Is(err, ErrProtocol) {
					t.Errorf("%T: errors.Is(%v, ErrProtocol) = true; want false", msg, err)
				}
			}
		})
	}
}

// TestRoundTripFailures: what cannot cross fails at the sender, at once,
// naming the Go type and RegisterType; nothing is queued.
func TestRoundTripFailures(t *testing.T) {
	t.Parallel()
	type unregistered struct{ X int }
	type unregisteredScalar int
	enc := newEncoder("")
	for _, c := range []struct {
		name string
		msg  any
		want string // in the error text
	}{
		{"unregistered struct", unregistered{1}, "mailbox.unregistered"},
		{"unregistered pointer", &unregistered{1}, "*mailbox.unregistered"},
		{"unregistered struct in an any field", &rtHolder{Any: unregistered{1}}, "mailbox.unregistered"},
		{"unregistered struct in a []any", []any{unregistered{1}}, "mailbox.unregistered"},
		{"unregistered struct in a map[string]any", map[string]any{"k": &unregistered{1}}, "*mailbox.unregistered"},
		{"slice of an unregistered struct", []unregistered{{1}}, "mailbox.unregistered"},
		{"unregistered named scalar", unregisteredScalar(1), "mailbox.unregisteredScalar"},
		{"unregistered named scalar in an any", []any{unregisteredScalar(1)}, "mailbox.unregisteredScalar"},
		{"a channel", make(chan int), "chan int"},
	} {
		_, _, err := enc.appendEnvelope(nil, &Envelope{Message: c.msg})
		if !errors.Is(err, ErrTypeNotRegistered) {
			t.Errorf("%s: got %v; want ErrTypeNotRegistered", c.name, err)
			continue
		}
		if s := err.Error(); !containsAll(s, c.want, "mailbox.RegisterType") {
			t.Errorf("%s: error %q does not name %q and mailbox.RegisterType", c.name, s, c.want)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		found := false
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// BenchmarkRoundTrip encodes and decodes each row of the round-trip table
// (an envelope with target and sender, symbols interned): ns/op and
// allocs/op per row.
func BenchmarkRoundTrip(b *testing.B) {
	for _, rt := range append(issueRoundTrips(), roundTrips()...) {
		b.Run(sanitize(rt.name), func(b *testing.B) {
			enc, dec := newEncoder("node"), newDecoder()
			env := benchEnvelope(rt.msg)
			var out Envelope
			first, _, err := enc.appendEnvelope(nil, env)
			if err != nil {
				b.Fatal(err)
			}
			if bad, fatal := dec.decodeEnvelope(first, false, &out); bad != nil || fatal != nil {
				b.Fatal(bad, fatal)
			}
			var buf []byte
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				buf, _, err = enc.appendEnvelope(buf[:0], env)
				if err != nil {
					b.Fatal(err)
				}
				if bad, fatal := dec.decodeEnvelope(buf, false, &out); bad != nil || fatal != nil {
					b.Fatal(bad, fatal)
				}
			}
		})
	}
}
