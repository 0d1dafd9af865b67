//go:build linux

package integration

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

// Messages cross the process boundary intact (issue 13): it.mirror answers
// every message with itself, so each row crosses twice, and what comes
// back must be what an actor in the parent would have received.

const kindMirror = "it.mirror"

type (
	rtPing struct{ N int }
	rtPong struct{ Text string }
	rtBox  struct {
		Any   any
		List  []any
		Map   map[string]any
		Pongs []*rtPong
		Err   error
	}
	rtTick    struct{}
	rtCelsius float64
	rtOpaque  struct{ X int } // registered nowhere
)

var errRTSentinel = errors.New("integration sentinel")

func init() {
	mailbox.RegisterType("integration.rtPing", &rtPing{})
	mailbox.RegisterType("integration.rtPong", rtPong{})
	mailbox.RegisterType("integration.rtBox", &rtBox{})
	mailbox.RegisterType("integration.rtTick", rtTick{})
	mailbox.RegisterType("integration.rtCelsius", rtCelsius(0))
	mailbox.RegisterError("integration.errRTSentinel", errRTSentinel)
	actor.RegisterKind(kindMirror, func(actor.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(c pa.Context) {
			switch m := c.Message().(type) {
			case *pa.Started, *pa.Stopping, *pa.Stopped, *pa.Restarting:
			case string:
				if m == "opaque" {
					c.Respond(rtOpaque{1}) // cannot cross: the request must fail at once
					return
				}
				c.Respond(m)
			default:
				c.Respond(m)
			}
		}), nil
	})
}

// TestRoundTripAcrossProcesses sends each row to a child and back.
func TestRoundTripAcrossProcesses(t *testing.T) {
	t.Parallel()
	n, _ := newNode(t)
	p := spawn(t, n, kindMirror)
	pid := actor.ChildAddress("n", "x") // any PID value will do
	rows := []struct {
		name string
		msg  any
	}{
		{"value of a type registered by pointer", rtPing{N: 1}},
		{"pointer of a type registered by value", &rtPong{Text: "p"}},
		{"registered pointer in an any field", &rtBox{Any: &rtPing{N: 2}}},
		{"registered value in an any field", &rtBox{Any: rtPong{Text: "v"}}},
		{"registered types in a []any", []any{&rtPing{N: 3}, rtPong{Text: "a"}, nil, 4, "s"}},
		{"registered types in a map[string]any", map[string]any{"p": &rtPing{N: 5}, "q": rtPong{Text: "b"}}},
		{"slice of a registered type", []*rtPong{{Text: "a"}, nil}},
		{"PID in an any field", &rtBox{Any: pa.NewPID(pid, "w")}},
		{"every scalar kind in a []any", []any{int8(-1), int16(-2), int32(-3), int64(-4), uint(5), uint8(6), uint16(7), uint32(8), uint64(9), float32(1.5), 2.5}},
		{"empty struct", rtTick{}},
		{"named scalar", rtCelsius(36.6)},
		{"fixed-size array", [3]int{1, 2, 3}},
		{"time.Duration", 90 * time.Second},
		{"protobuf message", &pa.Terminated{Who: pa.NewPID(pid, "w"), Why: pa.TerminatedReason_Stopped}},
	}
	for _, r := range rows {
		res, err := n.Root().RequestFuture(p.PID(), r.msg, 30*time.Second).Result()
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if d := typeDiff(fmt.Sprintf("%T", r.msg), reflect.ValueOf(res), reflect.ValueOf(r.msg)); d != "" {
			t.Errorf("%s: %s", r.name, d)
		}
		if _, isProto := r.msg.(*pa.Terminated); !isProto && !reflect.DeepEqual(res, r.msg) {
			t.Errorf("%s: got %#v; sent %#v", r.name, res, r.msg)
		}
	}
	// time.Time: Equal, location aside.
	when := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	res, err := n.Root().RequestFuture(p.PID(), when, 30*time.Second).Result()
	if got, ok := res.(time.Time); err != nil || !ok || !got.Equal(when) {
		t.Errorf("time.Time: got %T %v, %v; want %v", res, res, err, when)
	}
	// An error crosses with its text, and errors.Is for registered sentinels.
	res, err = n.Root().RequestFuture(p.PID(), &rtBox{Err: fmt.Errorf("job 7: %w", errRTSentinel)}, 30*time.Second).Result()
	if box, ok := res.(*rtBox); err != nil || !ok || !errors.Is(box.Err, errRTSentinel) || box.Err.Error() != "job 7: integration sentinel" {
		t.Errorf("error field: got %#v, %v; want an error wrapping errRTSentinel", res, err)
	}
	// A reply the child cannot encode fails the request at once (a timeout
	// far beyond the test's would show as ErrTimeout).
	if _, err := n.Root().RequestFuture(p.PID(), "opaque", time.Hour).Result(); !errors.Is(err, pa.ErrDeadLetter) {
		t.Errorf("unencodable reply: got %v; want ErrDeadLetter at once", err)
	}
	// A request of an unregistered type fails at once in the parent.
	if _, err := n.Root().RequestFuture(p.PID(), rtOpaque{2}, time.Hour).Result(); !errors.Is(err, pa.ErrDeadLetter) {
		t.Errorf("unregistered request: got %v; want ErrDeadLetter at once", err)
	}
}

// typeDiff reports the first place where got's type differs from want's.
func typeDiff(path string, got, want reflect.Value) string {
	if got.IsValid() != want.IsValid() {
		return fmt.Sprintf("%s: got %v; want %v", path, got, want)
	}
	if !got.IsValid() {
		return ""
	}
	if got.Type() != want.Type() {
		return fmt.Sprintf("%s: got type %v; want %v", path, got.Type(), want.Type())
	}
	switch got.Kind() {
	case reflect.Interface, reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return fmt.Sprintf("%s: got nil %v; want nil %v", path, got.IsNil(), want.IsNil())
			}
			return ""
		}
		return typeDiff(path+"/"+got.Elem().Type().String(), got.Elem(), want.Elem())
	case reflect.Struct:
		for i := range got.NumField() {
			if got.Type().Field(i).IsExported() {
				if d := typeDiff(path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i)); d != "" {
					return d
				}
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range min(got.Len(), want.Len()) {
			if d := typeDiff(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i)); d != "" {
				return d
			}
		}
	case reflect.Map:
		for _, k := range want.MapKeys() {
			if d := typeDiff(fmt.Sprintf("%s[%v]", path, k), got.MapIndex(k), want.MapIndex(k)); d != "" {
				return d
			}
		}
	}
	return ""
}
