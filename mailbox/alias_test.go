package mailbox

import (
	"bytes"
	"runtime"
	"testing"
	"time"
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
	// test's: it counts from a heap that stopped shrinking, so that what is
	// let go of meanwhile cannot hide frames this test pins.
	before := settledHeap()
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
	if grown := int64(m.HeapAlloc) - int64(before); grown > frames*frameSize/2 {
		t.Errorf("heap grew by %d bytes while %d 10-byte payloads are kept; want them not to pin their %d-byte frames", grown, len(kept), frameSize)
	}
	runtime.KeepAlive(kept)
}

// settledHeap collects until the live heap shrinks by less than 1 MiB from
// one collection to the next (at most 20 times, 5 ms apart) and returns it.
func settledHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	for range 20 {
		prev := m.HeapAlloc
		time.Sleep(5 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&m)
		if m.HeapAlloc+1<<20 > prev {
			break
		}
	}
	return m.HeapAlloc
}
