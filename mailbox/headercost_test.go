package mailbox

import (
	"encoding/binary"
	"errors"
	"testing"
)

// headerMsg is a message whose header has n distinct entries of a 4-byte
// key and an empty value (6 bytes each on the wire), and a string payload.
func headerMsg(n int) []byte {
	b := rawMsg(byte(flagTarget|flagHeader), byte(symLiteral), "node", "t", 0, n)
	for i := range n {
		b = append(b, 4)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		b = append(b, 0)
	}
	return append(b, kindString, 'p')
}

// TestHeaderDecodeBound: an envelope's header is charged to the link's
// decode bound like its payload: a header that would decode past what is
// left of WithMaxDecoded makes the message a dead letter with
// ErrDecodeLimit (the link lives on), and one within it is counted in
// Size. A header's entries were neither charged nor bounded: a 256 MiB
// frame of them decoded to several GiB of map entries whatever the bound.
func TestHeaderDecodeBound(t *testing.T) {
	const n = 100_000 // 600 KB on the wire, several MB decoded
	dec := newDecoder()
	dec.maxBytes = 1 << 20
	var env Envelope
	bad, fatal := dec.decodeEnvelope(headerMsg(n), false, &env)
	if fatal != nil || !errors.Is(bad, ErrDecodeLimit) || !errors.Is(bad, ErrDecode) {
		t.Fatalf("got (bad %v, fatal %v, %d header entries); want a dead letter with ErrDecodeLimit", bad, fatal, len(env.Header))
	}
	if env.Header != nil || env.Message != nil || env.Target == nil || env.Target.Id != "t" {
		t.Errorf("dead letter: header of %d, message %v, target %v; want no header, no message, the target", len(env.Header), env.Message, env.Target)
	}
	// The decoder stays in step: the next message decodes.
	if bad, fatal := dec.decodeEnvelope(aliveMsg, false, &env); bad != nil || fatal != nil || env.Message != "alive" {
		t.Fatalf("next message: got %v (bad %v, fatal %v); want alive", env.Message, bad, fatal)
	}

	dec.maxBytes = 2 * DefaultMaxFrame
	if bad, fatal := dec.decodeEnvelope(headerMsg(1000), false, &env); bad != nil || fatal != nil || len(env.Header) != 1000 {
		t.Fatalf("small header: got %d entries (bad %v, fatal %v); want 1000", len(env.Header), bad, fatal)
	}
	if env.Size < 1000*(4+mapEntryOverhead) {
		t.Errorf("small header: Size %d; want at least %d", env.Size, 1000*(4+mapEntryOverhead))
	}
}
