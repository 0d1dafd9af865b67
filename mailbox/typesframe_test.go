package mailbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strconv"
	"testing"
)

// TestTypesFramesBounded: a peer's types frames cost this side little more
// than their bytes. A fields frame of 2 million empty fields (4 MiB)
// allocated 338 MB, a digests frame of 400 thousand names unknown here 28
// MB: the field lists are bounded (ErrProtocol past maxTypeFields) and only
// the digests of types registered here are kept.
// Not parallel: it measures allocations.
func TestTypesFramesBounded(t *testing.T) {
	m := (maxTypesFrame - 16) / 2
	fields := binary.AppendUvarint([]byte{typesFields, 1, 0}, uint64(m))
	fields = append(fields, bytes.Repeat([]byte{0, 0}, m)...)
	n := (maxTypesFrame - 16) / 16
	digests := binary.AppendUvarint([]byte{typesDigests}, uint64(n))
	for i := range n {
		digests = appendString(digests, "t"+strconv.Itoa(i))
		digests = binary.LittleEndian.AppendUint64(digests, uint64(i))
	}
	s := currentSchema()
	for _, c := range []struct {
		name  string
		parse func() (int, error)
		want  error
	}{
		{"fields", func() (int, error) { f, err := parseTypeFields(fields); return len(f), err }, ErrProtocol},
		{"digests", func() (int, error) { d, err := parseTypeDigests(digests, s.digests); return len(d), err }, nil},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		kept, err := c.parse()
		runtime.ReadMemStats(&after)
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > maxTypesFrame {
			t.Errorf("%s: a %d-byte frame allocated %d bytes; want at most %d", c.name, maxTypesFrame, allocated, maxTypesFrame)
		}
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
		if c.want == nil && kept != 0 {
			t.Errorf("%s: kept %d entries of types not registered here; want none", c.name, kept)
		}
	}
}
