package mailbox

import "unsafe"

// A []byte payload that arrives in the reader's reusable buffer is copied
// out and handed to the Handler boxed in an `any`: two allocations per
// message, the bytes and the slice header the interface points to. For the
// small messages of a stream, that is a third of what a message costs to
// receive. cloneBoxed makes both in one allocation: the header first, the
// bytes after it, in memory the garbage collector does not scan (it holds
// no pointer but the header's, to itself). The interface points at the
// header, a slice taken out of it at the bytes: either keeps the whole
// block alive.

// bytesType is the type word of an `any` holding a []byte.
var bytesType = func() unsafe.Pointer {
	var v any = []byte(nil)
	return (*eface)(unsafe.Pointer(&v)).typ
}()

const sliceHeaderSize = unsafe.Sizeof([]byte(nil))

// zeroHeader is the room for the slice header in front of the bytes.
var zeroHeader [sliceHeaderSize]byte

// cloneBoxed returns a copy of b boxed as an `any` ([]byte), in one
// allocation.
func cloneBoxed(b []byte) any {
	if len(b) == 0 {
		return []byte{}
	}
	// append, not make and copy: the bytes are written once (make would
	// clear them first). zeroHeader's capacity is its length, so append
	// always allocates and never writes into it.
	return boxBytes(append(zeroHeader[:], b...))
}

// boxBytes boxes mem[sliceHeaderSize:] as an `any` ([]byte) whose slice
// header is written in mem's first sliceHeaderSize bytes.
func boxBytes(mem []byte) any {
	data := mem[sliceHeaderSize:len(mem):len(mem)]
	hdr := (*[]byte)(unsafe.Pointer(&mem[0]))
	*hdr = data
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = bytesType, unsafe.Pointer(hdr)
	return v
}

// preemptChunk is how much copyPreemptible moves between two points where
// the goroutine may be preempted.
const preemptChunk = 1 << 20

// copyPreemptible copies src into dst like copy, in chunks: one memmove of
// many megabytes cannot be preempted, and a collection that starts
// meanwhile spins on another core until it ends (seen on a 64 MiB message:
// the reader's copy of its first 16 MiB held the collector for
// milliseconds).
func copyPreemptible(dst, src []byte) int {
	n := 0
	for n < len(src) && n < len(dst) {
		n += copy(dst[n:], src[n:min(len(src), n+preemptChunk)])
	}
	return n
}
