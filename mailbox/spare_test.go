package mailbox

import (
	"bytes"
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
)

// spareBytes returns n bytes that differ from those of any other seed.
func spareBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestSpareTakesTheNextPayloadOfTheSameSize(t *testing.T) {
	t.Parallel()
	var s spare
	defer s.drop()
	first := s.clone(spareBytes(64<<10, 1)).([]byte)
	if !s.refill() {
		t.Fatal("refill after a 64 KiB payload made no spare")
	}
	if s.refill() {
		t.Fatal("a second refill made another spare")
	}
	mem := s.mem
	second := s.clone(spareBytes(64<<10, 2)).([]byte)
	if unsafe.SliceData(second) != &mem[sliceHeaderSize] {
		t.Fatal("the payload was not copied into the spare")
	}
	if s.mem != nil || s.used.Load() != 1 {
		t.Fatalf("after use: spare %d bytes, used %d; want none, 1", len(s.mem), s.used.Load())
	}
	// Neither payload shares memory with the other or with what comes next.
	s.refill()
	third := s.clone(spareBytes(64<<10, 3)).([]byte)
	for i, got := range [][]byte{first, second, third} {
		if !bytes.Equal(got, spareBytes(64<<10, byte(i+1))) || cap(got) != len(got) {
			t.Fatalf("payload %d changed (len %d cap %d)", i+1, len(got), cap(got))
		}
	}
}

func TestSpareOfAnotherSizeIsDropped(t *testing.T) {
	t.Parallel()
	var s spare
	defer s.drop()
	s.clone(spareBytes(64<<10, 1))
	s.refill()
	mem := s.mem
	got := s.clone(spareBytes(40<<10, 2)).([]byte)
	if unsafe.SliceData(got) == &mem[sliceHeaderSize] || s.mem != nil {
		t.Fatal("a 40 KiB payload went into a 64 KiB spare, or the spare was kept")
	}
	if !bytes.Equal(got, spareBytes(40<<10, 2)) || cap(got) != len(got) {
		t.Fatal("the 40 KiB payload is wrong")
	}
	if !s.refill() || len(s.mem) != int(sliceHeaderSize)+40<<10 {
		t.Fatalf("the next spare has %d bytes; want one for 40 KiB", len(s.mem))
	}
}

func TestSpareOnlyForMidSizedPayloads(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, spareMin - 1, spareMax + 1, 1 << 20} {
		var s spare
		got := s.clone(spareBytes(n, 5)).([]byte)
		if !bytes.Equal(got, spareBytes(n, 5)) || cap(got) != len(got) {
			t.Fatalf("%d bytes: wrong copy", n)
		}
		if s.refill() {
			t.Fatalf("a %d-byte payload asked for a spare", n)
		}
	}
	for _, n := range []int{spareMin, spareMax} {
		var s spare
		s.clone(spareBytes(n, 5))
		if !s.refill() {
			t.Fatalf("a %d-byte payload asked for no spare", n)
		}
		s.drop()
	}
}

// A stream of mid-sized []byte messages over a pipe: the reader makes each
// message's memory while it waits for it, and every message delivered keeps
// its bytes while the next ones arrive.
func TestSpareAcrossAPipe(t *testing.T) {
	t.Parallel()
	x, y, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{ca: newCollector(), cb: newCollector()}
	p.a = newTestEndpoint(t, x, p.ca, WithLocalAddress("node"))
	p.b = newTestEndpoint(t, y, p.cb, WithLocalAddress("node/1"))
	// Each message is sent once the reader has idled after the one before:
	// delivered is not enough, the next message could be in the pipe
	// before the reader looks again (no idle read, no spare). The reader's
	// idle reads record how many messages were delivered when they ran.
	var idleAfter atomic.Int64
	y.setIdle(func() bool {
		made := p.b.dec.spare.refill()
		idleAfter.Store(int64(p.cb.count()))
		return made
	})
	handshake(t, p.a, p.b)
	for _, e := range []*Endpoint{p.a, p.b} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	sizes := []int{64 << 10, 64 << 10, 64 << 10, 40 << 10, 40 << 10, 1 << 10, 64 << 10, 64 << 10, 300 << 10, 64 << 10, 64 << 10}
	ctx := context.Background()
	for i, n := range sizes {
		if err := p.a.Send(ctx, &Envelope{Target: pa.NewPID("node/1", "x"), Message: spareBytes(n, byte(i))}); err != nil {
			t.Fatal(err)
		}
		p.cb.wait(t, i+1) // one at a time
		if y.rr != nil {  // only Linux's pipes read raw, and idle
			testutil.Eventually(t, "the reader to idle", func() bool { return idleAfter.Load() >= int64(i+1) })
		}
	}
	got, _ := p.cb.wait(t, len(sizes))
	runtime.GC()
	for i, env := range got {
		b, ok := env.Message.([]byte)
		if !ok || !bytes.Equal(b, spareBytes(sizes[i], byte(i))) || cap(b) != len(b) {
			t.Fatalf("message %d (%d bytes) is not what was sent", i, sizes[i])
		}
	}
	// Spares: every mid-sized message whose size is that of the mid-sized
	// message before it (messages outside 32–256 KiB leave the spare as it
	// is): the 2nd, 3rd, 5th, 8th, 10th and 11th. Only Linux's pipes read raw.
	if want := int64(6); runtime.GOOS == "linux" && p.b.ReaderStats().Spares != want {
		t.Fatalf("%d messages went into spares; want %d", p.b.ReaderStats().Spares, want)
	}
}

// The spares of all links together hold at most spareBudget; one let go
// makes room for another. Not parallel: the budget is the process's.
func TestSpareBudget(t *testing.T) {
	held := sparesHeld.Load()
	per := int64(sliceHeaderSize) + spareMax
	fit := int((spareBudget - held) / per)
	spares := make([]spare, fit+2)
	made := 0
	for i := range spares {
		spares[i].clone(spareBytes(spareMax, 1))
		if spares[i].refill() {
			made++
		}
	}
	if made != fit {
		t.Fatalf("%d spares of %d bytes made with %d bytes held already; want %d", made, per, held, fit)
	}
	if spares[fit].refill() {
		t.Fatal("a spare over the budget")
	}
	spares[0].drop()
	if !spares[fit].refill() {
		t.Fatal("no spare after one was let go")
	}
	for i := range spares {
		spares[i].drop()
	}
	if got := sparesHeld.Load(); got != held {
		t.Fatalf("%d bytes held after every spare was let go; want %d", got, held)
	}
}

// A link's spare is let go when its reader ends. Not parallel: it reads the
// process's count.
func TestSpareReleasedWhenTheLinkEnds(t *testing.T) {
	held := sparesHeld.Load()
	p := newPair(t, transports[1], nil) // os.Pipe
	for i := range 2 {
		if err := p.a.Send(context.Background(), &Envelope{Target: pa.NewPID("node/1", "x"), Message: spareBytes(64<<10, byte(i))}); err != nil {
			t.Fatal(err)
		}
		p.cb.wait(t, i+1)
	}
	if runtime.GOOS == "linux" { // only Linux's pipes read raw, and make spares
		want := held + int64(sliceHeaderSize) + 64<<10
		testutil.Eventually(t, "the reader to make a spare", func() bool { return sparesHeld.Load() == want })
	}
	p.a.Abort()
	p.b.Abort()
	testutil.Eventually(t, "the spare to be let go", func() bool { return sparesHeld.Load() == held })
}
