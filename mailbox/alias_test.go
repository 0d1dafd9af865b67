package mailbox

import (
	"bytes"
	"runtime"
	"testing"
)

// TestSmallPayloadDoesNotPinItsFrame: a []byte payload aliases a frame
// with memory of its own (one larger than the read buffer) only when it is
// most of that frame; a small one is copied. A 10-byte payload in a 1 MiB
// frame of other messages aliased it, so a Handler that kept it kept the
// whole frame, charged 10 bytes: a peer could pin maxFrame bytes per
// message kept. Not parallel: it measures the heap.
func TestSmallPayloadDoesNotPinItsFrame(t *testing.T) {
	const frames, frameSize = 16, 1 << 20
	// What earlier tests left live (with -count=2, the parallel tests of the
	// first round may still be letting go of their large frames) is not this
	// test's: it counts from here.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	filler := rawMsg(byte(0), byte(kindString), bytes.Repeat([]byte{'f'}, frameSize))
	var stream []byte
	for range frames {
		stream = append(stream, frame(frameData, msgs(rawMsg(byte(0), byte(kindBytes), []byte("0123456789")), filler))...)
	}
	_, c, _ := hostilePeer(t, transports[1], stream, false)
	got, reasons := c.wait(t, 2*frames)
	var kept [][]byte
	for i, env := range got {
		if reasons[i] != nil {
			t.Fatalf("message %d: %v", i, reasons[i])
		}
		if b, ok := env.Message.([]byte); ok {
			kept = append(kept, b)
		}
	}
	got, stream = nil, nil
	c.mu.Lock()
	c.got = nil
	c.mu.Unlock()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if len(kept) != frames {
		t.Fatalf("%d []byte payloads; want %d", len(kept), frames)
	}
	// The payloads alone take a few hundred bytes; their frames took 16 MiB.
	if grown := int64(m.HeapAlloc) - int64(before.HeapAlloc); grown > frames*frameSize/2 {
		t.Errorf("heap grew by %d bytes while %d 10-byte payloads are kept; want them not to pin their %d-byte frames", grown, len(kept), frameSize)
	}
	runtime.KeepAlive(kept)
}
