package mailbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// rtBig is a registered struct of 512 bytes: a nil element of a []rtBig
// costs one byte on the wire and 512 bytes decoded.
type rtBig struct{ A [64]int64 }

func init() { RegisterType("mailbox_test.rtBig", rtBig{}) }

// amplified builds a typed payload message: an array32 of n nil elements
// of the type expression expr (the shape of issue 14's probe).
func amplified(expr string, n int) []byte {
	b := rawMsg(byte(0), byte(kindTyped), byte(symLiteral), expr)
	b = append(b, mpArray32)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return append(b, bytes.Repeat([]byte{mpNil}, n)...)
}

// TestDecodeAmplification reproduces issue 14's probe: a 32 MiB payload of
// nil elements that msgpack decoded to about 25 times its size (820 MiB for
// a [][]byte). Each element is charged its real size (a slice header, a
// pointer, a map entry) before anything is allocated, so the message is a
// dead letter with ErrDecodeLimit; the charge never passes the budget.
func TestDecodeAmplification(t *testing.T) {
	t.Parallel()
	const n = 32 << 20
	pid := []byte{0x93, 0xa0, 0xa0, 0x00} // [address "", id "", request id 0]
	for _, c := range []struct {
		expr string
		msg  []byte
	}{
		{"[][]uint8", amplified("[][]uint8", n)},
		{"[]any", amplified("[]any", n)},
		{"[]*go:actor.PID", append(binary.BigEndian.AppendUint32(append(rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "[]*go:actor.PID"), mpArray32), n/4),
			bytes.Repeat(pid, n/4)...)},
	} {
		msg := c.msg
		dec := newDecoder()
		dec.maxBytes = 2 * DefaultMaxFrame // what an endpoint allows at the default frame
		var env Envelope
		bad, fatal := dec.decodeEnvelope(msg, false, &env)
		if fatal != nil || !errors.Is(bad, ErrDecodeLimit) || !errors.Is(bad, ErrDecode) {
			t.Errorf("%s: got (bad %v, fatal %v); want a dead letter with ErrDecodeLimit", c.expr, bad, fatal)
			continue
		}
		if dec.budget != 2*DefaultMaxFrame || env.Message != nil {
			t.Errorf("%s: budget %d, message %T; want %d, nil", c.expr, dec.budget, env.Message, 2*DefaultMaxFrame)
		}
	}
	// map[string]string entries of two empty strings: 2 bytes each.
	b := rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "map[string]string")
	b = binary.BigEndian.AppendUint32(append(b, mpMap32), n/2)
	b = append(b, bytes.Repeat([]byte{0xa0, 0xa0}, n/2)...)
	dec := newDecoder()
	dec.maxBytes = 2 * DefaultMaxFrame
	var env Envelope
	if bad, _ := dec.decodeEnvelope(b, false, &env); !errors.Is(bad, ErrDecodeLimit) {
		t.Errorf("pre-sized map[string]string: got %v; want ErrDecodeLimit", bad)
	}
}

// TestDecodeFactor: without a link bound, a payload decodes to at most
// MaxDecodeFactor times its size plus DecodeAllowance.
func TestDecodeFactor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n    int
		want error
	}{
		{DecodeAllowance / 512, nil},       // within the allowance
		{1 << 20, ErrDecodeLimit},          // 512 bytes per byte
		{MaxDecodeFactor / 16 * 1024, nil}, // a []any of nils: 16 per byte, within the factor
	} {
		expr := "[]mailbox_test.rtBig"
		if c.want == nil && c.n > DecodeAllowance/512 {
			expr = "[]any"
		}
		var env Envelope
		bad, fatal := newDecoder().decodeEnvelope(amplified(expr, c.n), false, &env)
		if fatal != nil || !errors.Is(bad, c.want) || (c.want == nil) != (bad == nil) {
			t.Errorf("%s × %d: got (bad %v, fatal %v); want %v", expr, c.n, bad, fatal, c.want)
		}
		if c.want == nil && env.Size < int64(c.n) {
			t.Errorf("%s × %d: Size %d; want at least %d", expr, c.n, env.Size, c.n)
		}
	}
}

// TestMaxDecodedInFlight: with WithManualRelease, delivered messages hold
// their decoded bytes until released; one that would pass WithMaxDecoded
// is a dead letter with ErrDecodeLimit, and the link lives on.
func TestMaxDecodedInFlight(t *testing.T) {
	t.Parallel()
	const frame = 64 << 10
	p := newPair(t, transports[1], []Option{WithMaxFrame(frame), WithMaxDecoded(frame)}, WithManualRelease(true))
	send := func(n int) {
		t.Helper()
		if err := p.a.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "x"), Message: make([]byte, n)}); err != nil {
			t.Fatal(err)
		}
	}
	send(40 << 10)
	got, reasons := p.cb.wait(t, 1)
	if reasons[0] != nil || got[0].Size != 40<<10 || p.b.DecodedInFlight() != 40<<10 {
		t.Fatalf("first: reason %v, Size %d, in flight %d; want nil, %d, %d", reasons[0], got[0].Size, p.b.DecodedInFlight(), 40<<10, 40<<10)
	}
	send(40 << 10) // 80 KiB would be in flight
	got, reasons = p.cb.wait(t, 2)
	if !errors.Is(reasons[1], ErrDecodeLimit) || got[1].Message != nil {
		t.Fatalf("second: got %T, %v; want a dead letter with ErrDecodeLimit", got[1].Message, reasons[1])
	}
	p.b.Release(got[0].Size)
	send(40 << 10)
	_, reasons = p.cb.wait(t, 3)
	if reasons[2] != nil || p.b.DecodedInFlight() != 40<<10 {
		t.Fatalf("after Release: reason %v, in flight %d; want nil, %d", reasons[2], p.b.DecodedInFlight(), 40<<10)
	}
}

// TestReleaseOnDeliver: by default a message's bytes are released when
// Deliver returns.
func TestReleaseOnDeliver(t *testing.T) {
	t.Parallel()
	p := newPair(t, transports[1], nil)
	if err := p.a.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "x"), Message: &rtHolder{Any: "s"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := p.cb.wait(t, 1)
	if got[0].Size <= 0 {
		t.Fatalf("Size %d; want > 0", got[0].Size)
	}
	// Released once Deliver has returned, which the collector cannot see.
	testutil.Eventually(t, "nothing decoded in flight", func() bool { return p.b.DecodedInFlight() == 0 })
}

// TestFrameStall (issue 14, item 7): a frame that stops mid-way closes the
// link with ErrFrameStalled after WithFrameTimeout, for a frame that fits
// the read buffer and for one that does not (whose memory grows only as
// bytes arrive).
func TestFrameStall(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		stream []byte
	}{
		{"small frame", append(rawHeader(1000, byte(frameData), protocolVersion, 0), make([]byte, 10)...)},
		{"large frame", append(rawHeader(8<<20, byte(frameData), protocolVersion, 0), make([]byte, 300<<10)...)},
		{"header", rawHeader(1000, byte(frameData), protocolVersion, 0)[:5]},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			eachTransport(t, func(t *testing.T, tr transport) {
				e, col, _ := hostilePeer(t, tr, c.stream, false, WithFrameTimeout(50*time.Millisecond))
				if err := col.waitClosed(t); !errors.Is(err, ErrFrameStalled) {
					t.Fatalf("Closed: got %v; want ErrFrameStalled", err)
				}
				<-e.Done() // Closed runs just before Done closes
				if err := e.Err(); !errors.Is(err, ErrFrameStalled) {
					t.Fatalf("Err: got %v; want ErrFrameStalled", err)
				}
			})
		})
	}
}

// TestIdleLinkDoesNotStall: a link with no frame in progress has no timer.
func TestIdleLinkDoesNotStall(t *testing.T) {
	t.Parallel()
	p := newPair(t, transports[1], []Option{WithFrameTimeout(time.Millisecond)})
	time.Sleep(20 * time.Millisecond) // idle for 20 timeouts: nothing may fire
	if err := p.a.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "x"), Message: "still up"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.cb.wait(t, 1); got[0].Message != "still up" {
		t.Fatalf("got %v; want still up", got[0].Message)
	}
}

// TestTypeExpressionsBounded: the distinct type expressions resolved from
// peers are bounded (each may build Go types that are never freed); known
// ones still resolve.
func TestTypeExpressionsBounded(t *testing.T) {
	t.Parallel()
	table := &exprTable{max: 3}
	for i := range 3 {
		if _, err := table.resolve("["+strconv.Itoa(i+1)+"]int", nil, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := table.resolve("[4]int", nil, 0, false); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("a fourth expression: got %v; want ErrUnknownType", err)
	}
	if wt, err := table.resolve("[2]int", nil, 0, false); err != nil || wt.typ != reflect.TypeFor[[2]int]() {
		t.Fatalf("a known expression: got %v, %v; want [2]int", wt, err)
	}
}

// TestFailedTypeExpressionsBounded: an expression that fails after reflect
// built types for a part of it (stray bytes after a valid type, a map key
// not closed) counts toward the bound like one that resolves; it was not
// counted, so a peer could build Go types that are never freed without end
// ("[1]int]", "[2]int]", ...). A failure is remembered: sending it again
// costs nothing more.
func TestFailedTypeExpressionsBounded(t *testing.T) {
	t.Parallel()
	table := &exprTable{max: 3}
	for _, s := range []string{"[5]int8]", "map[[6]int8", "[7]int8]"} {
		if _, err := table.resolve(s, nil, 0, false); !errors.Is(err, ErrUnknownType) {
			t.Fatalf("%q: got %v; want ErrUnknownType", s, err)
		}
	}
	if _, err := table.resolve("[5]int8]", nil, 0, false); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("a failed expression again: got %v; want ErrUnknownType", err)
	}
	if _, err := table.resolve("[8]int8]", nil, 0, false); err == nil || !strings.Contains(err.Error(), "distinct type expressions") {
		t.Fatalf("a fourth failing expression: got %v; want refused as over the bound", err)
	}
	if _, err := table.resolve("[9]int8", nil, 0, false); err == nil || !strings.Contains(err.Error(), "distinct type expressions") {
		t.Fatalf("a fourth expression: got %v; want refused as over the bound", err)
	}
}

// TestTypeExpressionsOneLinkCannotExhaust: the process-wide table of type
// expressions is bounded (maxTypeExprs), but one link may add at most
// maxLinkTypeExprs to it: a hostile peer naming more distinct expressions
// than the whole table holds gets dead letters on its own link, and another
// link still resolves an expression new to the process. Before the
// per-link bound, that peer filled the table and the other link's
// legitimate message was a dead letter (ErrUnknownType).
//
// Not parallel: on the unbounded code it exhausts the process's table.
func TestTypeExpressionsOneLinkCannotExhaust(t *testing.T) {
	const n = maxTypeExprs + 16 // more than the whole table
	var body []byte
	var frames []byte
	for i := range n {
		expr := fmt.Sprintf("hostile.T%d", i) // costs the peer nothing to make up
		body = append(body, msgs(rawMsg(byte(flagTarget), byte(symLiteral), "node", "t", 0, byte(kindTyped), byte(symLiteral), expr, mustMsgpack(nil)))...)
		if len(body) > 32<<10 || i == n-1 {
			frames = append(frames, frame(frameData, body)...)
			body = nil
		}
	}
	frames = append(frames, frame(frameData, msgs(aliveMsg))...)
	_, hc, _ := hostilePeer(t, transports[1], frames, false)
	got, reasons := hc.wait(t, n+1)
	if got[n].Message != "alive" {
		t.Fatalf("the hostile link's last message: got %v; want alive", got[n].Message)
	}
	for i := range n {
		if !errors.Is(reasons[i], ErrUnknownType) {
			t.Fatalf("hostile message %d: got %v; want ErrUnknownType", i, reasons[i])
		}
	}

	// Another link sends a legitimate message whose type expression no link
	// has named before in this process.
	p := newPair(t, transports[1], nil)
	msg := []map[int16][3]uint32{{7: {1, 2, 3}}}
	if err := p.a.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "x"), Message: msg}); err != nil {
		t.Fatal(err)
	}
	got, reasons = p.cb.wait(t, 1)
	if reasons[0] != nil || !reflect.DeepEqual(got[0].Message, msg) {
		t.Fatalf("other link: got %#v (%v); want %v", got[0].Message, reasons[0], msg)
	}
}

// TestPlainTypeNamesNotCounted: a plain name that resolves (a registered
// type, a basic type) builds no Go type and is finite in this binary: it
// counts toward neither bound of type expressions, so an honest peer that
// is the first to name more than maxLinkTypeExprs registered types gets
// them all. A composite, or a plain name that fails, still counts.
func TestPlainTypeNamesNotCounted(t *testing.T) {
	t.Parallel()
	table := &exprTable{max: 2}
	added := maxLinkTypeExprs // the link is at its own bound
	for _, s := range []string{"mailbox_test.ping", "mailbox_test.point", "int64", "string"} {
		if _, err := table.resolve(s, &added, maxLinkTypeExprs, false); err != nil {
			t.Fatalf("%q at the link's bound: %v; want it resolved", s, err)
		}
	}
	if added != maxLinkTypeExprs || table.count.Load() != 0 {
		t.Fatalf("plain names counted: link %d (was %d), table %d", added, maxLinkTypeExprs, table.count.Load())
	}
	if _, err := table.resolve("[]mailbox_test.ping", &added, maxLinkTypeExprs, false); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("a composite at the link's bound: got %v; want ErrUnknownType", err)
	}
	other := 0
	for _, s := range []string{"[]mailbox_test.ping", "no.such.Name"} {
		if _, err := table.resolve(s, &other, maxLinkTypeExprs, false); s == "no.such.Name" != (err != nil) {
			t.Fatalf("%q: got %v", s, err)
		}
	}
	if other != 2 || table.count.Load() != 2 {
		t.Fatalf("a composite and a failed name: link %d, table %d; want 2, 2", other, table.count.Load())
	}
}

// TestUntrustedTypeExpressionsShare: untrusted peers together add at most
// untrustedMax expressions to the table, whatever each link's own bound;
// a trusted peer still adds past that share, and an untrusted one still
// resolves what is already known.
func TestUntrustedTypeExpressionsShare(t *testing.T) {
	t.Parallel()
	table := &exprTable{max: 6, untrustedMax: 2}
	a, b := 0, 0 // two untrusted links' own counts
	for i, s := range []string{"[1]int", "[2]int"} {
		added := &a
		if i == 1 {
			added = &b
		}
		if _, err := table.resolve(s, added, maxLinkTypeExprs, true); err != nil {
			t.Fatalf("%q from an untrusted link within the share: %v", s, err)
		}
	}
	if _, err := table.resolve("[3]int", &b, maxLinkTypeExprs, true); !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "untrusted") {
		t.Fatalf("past the untrusted share: got %v; want ErrUnknownType naming it", err)
	}
	trusted := 0
	if _, err := table.resolve("[3]int", &trusted, maxLinkTypeExprs, false); err != nil {
		t.Fatalf("a trusted link past the untrusted share: %v", err)
	}
	if wt, err := table.resolve("[3]int", &a, maxLinkTypeExprs, true); err != nil || wt.typ != reflect.TypeFor[[3]int]() {
		t.Fatalf("a known expression from an untrusted link: %v, %v", wt, err)
	}
	if table.count.Load() != 3 || table.untrusted.Load() != 2 || a != 1 || b != 1 || trusted != 1 {
		t.Fatalf("counts: table %d, untrusted %d, links %d %d %d; want 3, 2, 1 1 1",
			table.count.Load(), table.untrusted.Load(), a, b, trusted)
	}
}

// untrustedArrayLen makes the type expressions of
// TestUntrustedPeersCannotExhaust new to the process on each run (-count).
var untrustedArrayLen atomic.Int64

// TestUntrustedPeersCannotExhaust: hostile untrusted peers (WithUntrustedPeer),
// each within its own link's bound, name more distinct composite type
// expressions than the untrusted share holds: what is past the share is
// a dead letter (ErrUnknownType) on their links, and a trusted link still
// resolves an expression new to the process. Without the share, enough
// such peers fill the whole table.
func TestUntrustedPeersCannotExhaust(t *testing.T) {
	room := int(peerTypeExprs.untrustedMax - peerTypeExprs.untrusted.Load())
	const perPeer = maxLinkTypeExprs - 6
	total := room + 50
	base := untrustedArrayLen.Add(int64(total)) - int64(total) + 1<<19
	resolved, refused := 0, 0
	for sent := 0; sent < total; sent += perPeer {
		n := min(perPeer, total-sent)
		var body []byte
		for i := range n {
			expr := fmt.Sprintf("[][%d]int8", base+int64(sent+i)) // a nil slice: the type, not the bytes
			body = append(body, msgs(rawMsg(byte(flagTarget), byte(symLiteral), "node", "t", 0, byte(kindTyped), byte(symLiteral), expr, mustMsgpack(nil)))...)
		}
		stream := append(frame(frameData, body), frame(frameData, msgs(aliveMsg))...)
		_, hc, _ := hostilePeer(t, transports[1], stream, false, WithUntrustedPeer())
		got, reasons := hc.wait(t, n+1)
		if got[n].Message != "alive" {
			t.Fatalf("a hostile link's last message: got %v; want alive", got[n].Message)
		}
		for i := range n {
			switch {
			case reasons[i] == nil:
				resolved++
			case errors.Is(reasons[i], ErrUnknownType):
				refused++
			default:
				t.Fatalf("hostile message %d: %v", sent+i, reasons[i])
			}
		}
	}
	if resolved != room || refused != total-room {
		t.Fatalf("untrusted peers: %d resolved, %d refused; want %d, %d (the share's room)", resolved, refused, room, total-room)
	}
	// A type no run of this test named before (-count): map[string][k]int8.
	k := int(trustedArrayLen.Add(1)) + 100
	v := reflect.MakeMap(reflect.MapOf(reflect.TypeFor[string](), reflect.ArrayOf(k, reflect.TypeFor[int8]())))
	elem := reflect.New(v.Type().Elem()).Elem()
	elem.Index(k - 1).SetInt(7)
	v.SetMapIndex(reflect.ValueOf("new"), elem)
	msg := v.Interface()
	p := newPair(t, transports[1], nil)
	if err := p.a.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "x"), Message: msg}); err != nil {
		t.Fatal(err)
	}
	got, reasons := p.cb.wait(t, 1)
	if reasons[0] != nil || !reflect.DeepEqual(got[0].Message, msg) {
		t.Fatalf("trusted link: got %T (%v); want %T", got[0].Message, reasons[0], msg)
	}
}

// trustedArrayLen makes TestUntrustedPeersCannotExhaust's trusted type new
// to the process on each run.
var trustedArrayLen atomic.Int64
