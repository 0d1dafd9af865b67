package mailbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// TestMapDecodeBound: a map is charged what Go allocates for it, so a
// payload of map entries never allocates past its budget. A map made for n
// entries takes up to about 2.6 times their key and value bytes (groups of
// 8 slots, at most 7/8 full, tables rounded up to a power of two), and one
// in an interface position whose keys are not all strings was made twice
// (map[string]any, then map[any]any, each for n entries): they were
// charged 16 bytes beyond their key and value, once, so 2-byte entries
// took up to 80 times their size against a budget of MaxDecodeFactor (32).
// Not parallel: it measures the allocations of the decode.
func TestMapDecodeBound(t *testing.T) {
	type shape struct {
		name, expr string
		entry      []byte // one entry, repeated n times
		n          int
		decodes    bool // within its budget
	}
	var shapes []shape
	for _, n := range []int{1 << 10, 1 << 16} {
		small := n == 1<<10
		shapes = append(shapes,
			shape{"any: int keys", "any", []byte{0x00, mpNil}, n, small},
			shape{"any: string keys", "any", []byte{0xa0, mpNil}, n, small},
			shape{"any: a string key, then ints", "any", nil, n, false},
			shape{"map[string]any", "map[string]any", []byte{0xa0, mpNil}, n, small},
			shape{"map[[8]int64]bool", "map[[8]int64]bool", append(append([]byte{0x98}, make([]byte, 8)...), mpFalse), n, small})
	}
	for _, c := range shapes {
		n := c.n
		b := rawMsg(byte(0), byte(kindTyped), byte(symLiteral), c.expr)
		b = binary.BigEndian.AppendUint32(append(b, mpMap32), uint32(n))
		if c.entry == nil {
			b = append(append(b, 0xa1, 'k', mpNil), bytes.Repeat([]byte{0x00, mpNil}, n-1)...)
		} else {
			b = append(b, bytes.Repeat(c.entry, n)...)
		}
		dec := newDecoder()
		env, allocated, bad, fatal := decodeMeasured(dec, b)
		switch {
		case fatal != nil:
			t.Errorf("%s × %d: fatal %v", c.name, n, fatal)
		case bad != nil && !errors.Is(bad, ErrDecodeLimit):
			t.Errorf("%s × %d: %v; want decoded or ErrDecodeLimit", c.name, n, bad)
		case bad != nil && c.decodes:
			t.Errorf("%s × %d: %v; want it decoded", c.name, n, bad)
		case bad == nil && allocated > dec.budget:
			t.Errorf("%s × %d: decoded %d bytes of payload to %d bytes allocated (charged %d), more than its budget of %d", c.name, n, len(b), allocated, env.Size, dec.budget)
		}
	}
}

// TestInterfaceValueDecodeBound: a value in an interface position is
// charged its box too (a time.Time, a float64, a string's header), so that
// what is left of the link's bound holds when it is tighter than the
// payload's factor. A []any of timestamps was charged 16 bytes per element
// and allocated 40 (the slot and a 24-byte time.Time).
// Not parallel: it measures the allocations of the decode.
func TestInterfaceValueDecodeBound(t *testing.T) {
	const n = 1 << 14
	for _, c := range []struct {
		name string
		elem []byte
	}{
		{"timestamps", []byte{0xd6, 0xff, 0, 0, 0, 1}},
		{"float64s", append([]byte{mpFloat64}, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0)},
		{"strings", []byte{0xa2, 'a', 'b'}},
		{"ints", []byte{0xcd, 0x01, 0x00}},
	} {
		b := rawMsg(byte(0), byte(kindTyped), byte(symLiteral), "[]any")
		b = binary.BigEndian.AppendUint32(append(b, mpArray32), n)
		b = append(b, bytes.Repeat(c.elem, n)...)
		dec := newDecoder()
		dec.maxBytes = 20 * n // what is left of the link's bound: tighter than the factor
		env, allocated, bad, fatal := decodeMeasured(dec, b)
		switch {
		case fatal != nil:
			t.Errorf("%s: fatal %v", c.name, fatal)
		case bad != nil && !errors.Is(bad, ErrDecodeLimit):
			t.Errorf("%s: %v; want decoded or ErrDecodeLimit", c.name, bad)
		case bad == nil && allocated > dec.budget:
			t.Errorf("%s: %d elements allocated %d bytes (charged %d), more than the %d left of the link's bound", c.name, n, allocated, env.Size, dec.budget)
		}
	}
}

// TestShortBytesDecodeBound: a string's or a []byte's bytes are charged
// with the allocator's rounding (to its size class, 16 bytes at least
// with the race detector): a []string of 2-byte strings was charged 18
// bytes per element and allocated up to 32, past what was left of the
// link's bound. Not parallel: it measures the allocations of the decode.
func TestShortBytesDecodeBound(t *testing.T) {
	const n = 1 << 14
	for _, c := range []struct {
		expr string
		elem []byte
	}{
		{"[]string", []byte{0xa2, 'a', 'b'}},
		{"[][]uint8", []byte{mpBin8, 2, 'a', 'b'}},
	} {
		b := rawMsg(byte(0), byte(kindTyped), byte(symLiteral), c.expr)
		b = binary.BigEndian.AppendUint32(append(b, mpArray32), n)
		b = append(b, bytes.Repeat(c.elem, n)...)
		dec := newDecoder()
		dec.maxBytes = 24 * n // what is left of the link's bound: tighter than the factor
		env, allocated, bad, fatal := decodeMeasured(dec, b)
		switch {
		case fatal != nil:
			t.Errorf("%s: fatal %v", c.expr, fatal)
		case bad != nil && !errors.Is(bad, ErrDecodeLimit):
			t.Errorf("%s: %v; want decoded or ErrDecodeLimit", c.expr, bad)
		case bad == nil && allocated > dec.budget:
			t.Errorf("%s: %d elements allocated %d bytes (charged %d), more than the %d left of the link's bound", c.expr, n, allocated, env.Size, dec.budget)
		}
	}
}

// decodeMeasured decodes the envelope b with dec and reports the bytes the
// process allocated meanwhile (its tests are not parallel).
func decodeMeasured(dec *decoder, b []byte) (env Envelope, allocated int64, bad, fatal error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	bad, fatal = dec.decodeEnvelope(b, false, &env)
	runtime.ReadMemStats(&after)
	return env, int64(after.TotalAlloc - before.TotalAlloc), bad, fatal
}
