package mailbox

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// TestShapes: a fingerprint follows what the codec encodes: field names
// after tags, nested structs spelled out, leaves listed by path.
func TestShapes(t *testing.T) {
	t.Parallel()
	pong := lookupType(reflectTypeOf(rtPong{})).shapeOf()
	if pong.text != "{text:string}" {
		t.Errorf("rtPong shape %q; want {text:string}", pong.text)
	}
	// An entry of its own: the registered one is shared with parallel tests.
	holderEntry := &typeEntry{name: "mailbox_test.rtHolder", typ: reflectTypeOf(rtHolder{})}
	holderEntry.shapeOf()
	if holderEntry.leaves != nil {
		t.Errorf("rtHolder's leaves listed with its fingerprint; only a handshake whose digests differ needs them")
	}
	holder := holderEntry.leavesOf()
	for _, want := range []shapeField{{"Any", "interface"}, {"Pongs", "[]*{text:string}"}, {"When", "time"}, {"Err", "error"}} {
		found := false
		for _, f := range holder {
			found = found || f == want || f.path == want.path && want.shape == "interface" && f.shape == "interface {}"
		}
		if !found {
			t.Errorf("rtHolder leaves %v lack %v", holder, want)
		}
	}
	if currentSchema().digest == 0 || currentSchema().digests["mailbox_test.rtPong"] != pong.digest {
		t.Errorf("schema digests wrong")
	}
}

// TestDiffFields names the field that differs.
func TestDiffFields(t *testing.T) {
	t.Parallel()
	ours := []shapeField{{"A", "int64"}, {"B", "string"}}
	for _, c := range []struct {
		theirs []shapeField
		want   string
	}{
		{[]shapeField{{"A", "int64"}, {"B", "int64"}}, "field B is string here, int64 in the peer's"},
		{[]shapeField{{"A", "int64"}}, "field B (string) is missing in the peer's"},
		{[]shapeField{{"A", "int64"}, {"B", "string"}, {"C", "bool"}}, "field C (bool) of the peer's is missing here"},
		{[]shapeField{{"B", "string"}, {"A", "int64"}}, "another order"},
	} {
		err := diffFields("T", ours, c.theirs)
		if !errors.Is(err, ErrTypeMismatch) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "T:") {
			t.Errorf("%v: got %v; want ErrTypeMismatch naming T and %q", c.theirs, err, c.want)
		}
	}
}

// driftedPeer speaks a handshake whose registry differs from ours in one
// type: mailbox_test.rtPong has its text field as an int64 there.
func driftedPeer(t *testing.T, raw io.ReadWriteCloser, cookie []byte) {
	s := currentSchema()
	peerFields := []shapeField{{"text", "int64"}}
	var stream []byte
	stream = append(stream, frame(frameHello, appendHello(nil, &Hello{Version: protocolVersion, MaxFrame: DefaultMaxFrame, Address: "node/1", Cookie: cookie, Schema: s.digest + 1}))...)
	digests := appendTypeDigests(nil, s)
	// Replace rtPong's digest by hand: the name, then 8 bytes.
	i := strings.Index(string(digests), "mailbox_test.rtPong") + len("mailbox_test.rtPong")
	digests[i] ^= 0xff
	stream = append(stream, frame(frameTypes, digests)...)
	fields := []byte{typesFields, 1}
	fields = appendString(fields, "mailbox_test.rtPong")
	fields = append(fields, byte(len(peerFields)))
	for _, f := range peerFields {
		fields = appendString(appendString(fields, f.path), f.shape)
	}
	stream = append(stream, frame(frameTypes, fields)...)
	go func() { raw.Write(stream) }()
	go func() { io.Copy(io.Discard, raw) }()
	t.Cleanup(func() { raw.Close() })
}

// TestTypeDrift: a type registered under the same name with another shape
// on the peer is found at the handshake (one warning listing it); its
// messages, at the top or inside an any, are dead letters naming the type
// and the field, at once; other types still cross.
func TestTypeDrift(t *testing.T) {
	t.Parallel()
	x, raw := transports[1].make(t)
	var logs logBuffer
	e := newTestEndpoint(t, x, newCollector(), WithLogger(logs.logger(zerolog.InfoLevel)))
	cookie := NewCookie()
	driftedPeer(t, raw, cookie)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := e.Handshake(ctx, Hello{Address: "node", Cookie: cookie}); err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	mm := e.TypeMismatches()
	if len(mm) != 1 || !errors.Is(mm[0], ErrTypeMismatch) || !strings.Contains(mm[0].Error(), "mailbox_test.rtPong: field text is string here, int64 in the peer's") {
		t.Fatalf("TypeMismatches: %v; want one naming rtPong's field text", mm)
	}
	if n := strings.Count(logs.String(), "registered types differ"); n != 1 || !strings.Contains(logs.String(), "mailbox_test.rtPong") {
		t.Fatalf("warnings: %d; want one listing rtPong:\n%s", n, logs.String())
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []any{rtPong{Text: "x"}, &rtPong{}, []any{rtPong{}}, &rtHolder{Any: &rtPong{}}, []*rtPong{nil}} {
		err := e.Send(ctx, &Envelope{Target: pa.NewPID("node/1", "x"), Message: msg})
		if !errors.Is(err, ErrTypeMismatch) || !strings.Contains(err.Error(), "field text") {
			t.Errorf("Send(%T): got %v; want ErrTypeMismatch naming field text", msg, err)
		}
	}
	if err := e.Send(ctx, &Envelope{Target: pa.NewPID("node/1", "x"), Message: &rtPing{N: 1}}); err != nil {
		t.Errorf("Send(*rtPing): %v", err)
	}
}

// TestTypeDriftStrict: WithStrictTypes refuses the link.
func TestTypeDriftStrict(t *testing.T) {
	t.Parallel()
	x, raw := transports[1].make(t)
	col := newCollector()
	e := newTestEndpoint(t, x, col, WithStrictTypes(true))
	cookie := NewCookie()
	driftedPeer(t, raw, cookie)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := e.Handshake(ctx, Hello{Address: "node", Cookie: cookie})
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrTypeMismatch) || !strings.Contains(err.Error(), "rtPong") {
		t.Fatalf("Handshake: got %v; want ErrHandshake and ErrTypeMismatch naming rtPong", err)
	}
	if err := col.waitClosed(t); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("Closed: got %v; want ErrTypeMismatch", err)
	}
}

// TestSameSchemaOneRoundTrip: two sides with the same registry exchange
// hellos only (no types frame): the common case costs 8 bytes.
func TestSameSchemaOneRoundTrip(t *testing.T) {
	t.Parallel()
	p := newPair(t, transports[1], nil)
	if len(p.a.TypeMismatches()) != 0 || p.a.Peer().Schema != currentSchema().digest {
		t.Fatalf("mismatches %v, peer schema %x; want none, %x", p.a.TypeMismatches(), p.a.Peer().Schema, currentSchema().digest)
	}
}

// BenchmarkSchema measures finding the fingerprints of every registered
// type, which a process does once, at its first handshake: computed for the
// test's types, looked up for procactor's own (internal/wireshape).
func BenchmarkSchema(b *testing.B) {
	reg := registry.Load()
	for b.Loop() {
		for _, e := range reg.byName {
			fresh := &typeEntry{name: e.name, typ: e.typ}
			fresh.shapeOf()
		}
	}
	b.ReportMetric(float64(len(reg.byName)), "types")
}

func reflectTypeOf(v any) reflect.Type { return reflect.TypeOf(v) }
