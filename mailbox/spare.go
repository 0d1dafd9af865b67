package mailbox

import "sync/atomic"

// A spare is the memory of the next mid-sized []byte payload, allocated by
// the reader while it waits for that payload instead of after it arrives.
//
// A received []byte must be memory of its own: the actor may keep it. For a
// payload of tens of KiB that memory is a large object fresh from Go's heap,
// often pages the runtime's scavenger has just given back to the kernel, so
// the copy out of the read buffer takes a page fault per 4 KiB and writes
// into cold cache lines. On the project's 2-core VM this was most of what a
// 64 KiB round trip cost over a raw pipe that reuses one buffer: p50 about
// 80 µs against 37 µs with the copy removed (an experiment that aliased the
// read buffer; go run ./bench/probe -rtt -size 65536). The reader knows
// when it is idle: its read found the stream empty (a PipeConn's raw read
// returned EAGAIN) and it is about to poll or sleep while the peer works.
// Allocating and clearing the next payload's memory then moves the faults
// and the cache misses off the round trip; the payload, when it comes, is
// copied into warm memory.
//
// The spare is a guess: the size of the last mid-sized payload. A payload of
// another size takes memory as before (cloneBoxed) and drops the spare. It
// is never reused once handed out, so nothing received can be overwritten;
// it only changes when the allocation happens. What a link keeps is at most
// one spare of at most spareMax bytes, and all the links of a process
// together at most spareBudget: a parent of many children keeps no more
// than that in spares, the rest of its links allocate as before.

const (
	// spareMin: smaller payloads (with their slice header, up to 32 KiB)
	// come from the runtime's per-P caches of small objects, whose pages
	// stay mapped and warm.
	spareMin = 32 << 10
	// spareMax: larger payloads arrive in frames larger than the reader's
	// default buffer, which get memory of their own (readLarge) and are not
	// copied again.
	spareMax = DefaultReadBuffer
	// spareBudget bounds the bytes of all spares of the process.
	spareBudget = 4 << 20
)

// sparesHeld is the bytes all spares of the process hold.
var sparesHeld atomic.Int64

// spare is owned by whoever holds the reader role, like the decoder that
// holds it.
type spare struct {
	mem  []byte       // room for the slice header, then the bytes, cleared; nil: none
	want int          // the payload size to make a spare for when the reader idles; 0: none
	used atomic.Int64 // payloads copied into a spare: ReaderStats
}

// clone returns b copied into memory of its own, boxed as an `any`
// ([]byte), like cloneBoxed; into the spare when it has b's size.
func (s *spare) clone(b []byte) any {
	if len(b) < spareMin || len(b) > spareMax {
		return cloneBoxed(b)
	}
	s.want = len(b)
	mem := s.mem
	s.mem = nil
	sparesHeld.Add(-int64(len(mem)))
	if len(mem) != int(sliceHeaderSize)+len(b) {
		return cloneBoxed(b)
	}
	copy(mem[sliceHeaderSize:], b)
	s.used.Add(1)
	return boxBytes(mem)
}

// refill makes the spare that the last mid-sized payload asks for, if
// there is none, and reports whether it did: the reader calls it when its
// read found nothing to read.
func (s *spare) refill() bool {
	if s.want == 0 || s.mem != nil {
		return false
	}
	n := int(sliceHeaderSize) + s.want
	if sparesHeld.Add(int64(n)) > spareBudget {
		sparesHeld.Add(-int64(n)) // the process holds enough: try again at the next idle read
		return false
	}
	mem := make([]byte, n)
	// Fresh pages are not cleared by make (the kernel zeroed them): write
	// every byte, so that the page faults happen now and the lines are in
	// the cache when the payload is copied in.
	clear(mem)
	s.mem, s.want = mem, 0
	return true
}

// drop lets the spare go, as the link's reader ends.
func (s *spare) drop() {
	sparesHeld.Add(-int64(len(s.mem)))
	s.mem, s.want = nil, 0
}
