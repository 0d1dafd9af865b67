package mailbox

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// rawFile reads or writes a non-blocking pipe with raw system calls, waiting
// for readiness on Go's poller through the file's RawConn.
//
// Why not (*os.File).Read: every Go system call enters the scheduler's
// syscall state, and on entry wakes the runtime's monitor thread (sysmon)
// when it is asleep, which it is whenever the process was idle. A link's
// round trip is exactly that: idle, a message, idle. `perf record -e
// syscalls:sys_enter_futex` on a round-trip loop put 70% of both
// processes' futex calls on that wake and on sysmon going back to sleep,
// about 0.7 per round trip. A read or write of a non-blocking descriptor
// never blocks, so it needs no syscall state: the raw call spares the
// wake and the state's bookkeeping.
//
// Only what succeeds or must wait goes this way; an error or end of file
// is left to the *os.File, which reports it in its usual form.
type rawFile struct {
	f   *os.File
	raw syscall.RawConn

	mu      sync.Mutex // one call at a time: fn's arguments live here
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
	p       []byte
	n       int
	errno   syscall.Errno

	// Spinning (see spinWait): set once before the first read.
	spin   int64         // ns a read that expects an answer polls; 0: never
	armed  atomic.Bool   // the next read expects an answer
	guess  atomic.Bool   // ... only hopes for one: its miss does not back off
	expect bool          // this read does (guarded by mu)
	hoped  bool          // this read's poll is a guess (guarded by mu)
	spun   bool          // this read has polled already (guarded by mu)
	skip   int           // expecting reads left that do not poll (guarded by mu)
	misses int           // polls in a row that ended without an answer (guarded by mu)
	polls  atomic.Uint64 // polls so far
	// What ends a poll before its window: a read deadline (monotonic ns;
	// 0: none) and the file's close. The poll runs inside RawConn.Read,
	// which neither sees.
	deadline atomic.Int64
	closing  atomic.Bool

	idle  func() bool // run by a read that finds the pipe empty, once per Read; set before the first read
	idled bool        // this read has run idle (guarded by mu)
}

// maxRawChunk bounds one raw call's copy: a raw call cannot be preempted,
// so a large write goes in pieces.
const maxRawChunk = 256 << 10

// maxSpinBackoff bounds the backoff of polls that miss: at most 63
// expecting reads in a row sleep at once.
const maxSpinBackoff = 6

// newRawFile returns nil unless f is a non-blocking descriptor on the poller.
func newRawFile(f *os.File) *rawFile {
	raw := rawWriter(f) // the same test for either side
	if raw == nil {
		return nil
	}
	r := &rawFile{f: f, raw: raw}
	r.readFn, r.writeFn = r.readFD, r.writeFD
	return r
}

func (r *rawFile) readFD(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.p))), uintptr(len(r.p)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if r.idle != nil && !r.idled {
				// Nothing to read: the reader's work for when it waits
				// (spare.go); if there was some, one more look before
				// polling or sleeping.
				r.idled = true
				if r.idle() {
					continue
				}
			}
			if !r.expect {
				return false // nothing yet: wait on the poller
			}
			if r.spun {
				return false
			}
			r.spun = true
			if r.skip > 0 {
				r.skip--
				return false
			}
			n, e = r.poll(fd)
			if e == syscall.ETIMEDOUT {
				return false
			}
			if e == syscall.EAGAIN && r.hoped {
				return false // a guess that missed says nothing of the peer's pace
			}
			if e == syscall.EAGAIN {
				// No answer within the window: the next 1, 3, 7 ... 63
				// expecting reads sleep at once.
				r.misses = min(r.misses+1, maxSpinBackoff)
				r.skip = 1<<r.misses - 1
				return false
			}
			r.misses = 0
		}
		r.n, r.errno = int(n), e
		return true
	}
}

// spinWait: a reader that expects an answer (a requester reading its own,
// a child's reader right after its actor replied) polls the pipe for up to
// WithSpinWait before it sleeps on the poller. On a virtual machine a
// process whose threads all sleep takes tens of microseconds to wake (the
// idle vCPU must be woken by the host); polling for about the peer's
// turnaround catches the answer while the thread is still running, as a
// raw pipe's loop does when both sides happen to be awake. On the
// project's 2-core VM a 64 B round trip between a parent and a child's
// actor took about 40 µs p50 without and 5 µs with the default window
// (docs/performance.md has the runs), and both processes together
// spent 16 µs of CPU per round trip instead of 46: polling is cheaper
// than sleeping and being woken.
//
// What bounds its cost: only an expecting read polls, once, for at most
// the window, yielding its P between reads (runtime.Gosched); and a poll
// that ends without an answer makes the next 1, 3, 7 ... up to 63
// expecting reads sleep at once: against a slow peer, or on a link that
// idles between requests, polling costs a window per 64 reads at most, and
// comes back with the first poll that catches an answer.
func (r *rawFile) poll(fd uintptr) (uintptr, syscall.Errno) {
	r.polls.Add(1)
	if pollStarted != nil {
		pollStarted()
	}
	end := monotonic() + r.spin
	for now := monotonic(); now < end; now = monotonic() {
		if d := r.deadline.Load(); (d != 0 && now >= d) || r.closing.Load() {
			return 0, syscall.ETIMEDOUT // not a miss: the poller reports the deadline or the close
		}
		runtime.Gosched()
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.p))), uintptr(len(r.p)))
		if e != syscall.EAGAIN && e != syscall.EINTR {
			return n, e
		}
	}
	return 0, syscall.EAGAIN
}

// pollStarted, when set (by a test), runs as a poll begins.
var pollStarted func()

func (r *rawFile) writeFD(fd uintptr) bool {
	for len(r.p) > 0 {
		chunk := r.p[:min(len(r.p), maxRawChunk)]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(chunk))), uintptr(len(chunk)))
		switch e {
		case 0:
			r.n += int(n)
			r.p = r.p[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // the pipe is full: wait on the poller
		default:
			r.errno = e
			return true
		}
	}
	return true
}

// Read reads like (*os.File).Read.
func (r *rawFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return r.f.Read(p)
	}
	r.mu.Lock()
	r.p, r.n, r.errno = p, 0, 0
	r.expect, r.spun, r.idled = r.spin > 0 && r.armed.Swap(false), false, false
	r.hoped = r.guess.Swap(false) && r.expect
	err := r.raw.Read(r.readFn)
	n, errno := r.n, r.errno
	r.p = nil
	r.mu.Unlock()
	if err == nil && errno == 0 && n > 0 {
		return n, nil
	}
	// End of file, an error, a deadline or a closed file: in the file's words.
	return r.f.Read(p)
}

// Write writes all of p like (*os.File).Write.
func (r *rawFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.p, r.n, r.errno = p, 0, 0
	err := r.raw.Write(r.writeFn)
	n, errno := r.n, r.errno
	r.p = nil
	r.mu.Unlock()
	if err == nil && errno == 0 {
		return n, nil
	}
	// What is left, with the error in the file's words.
	m, werr := r.f.Write(p[n:])
	return n + m, werr
}

// writeNonblocking makes one write of a non-blocking descriptor, raw (see
// rawFile), up to maxRawChunk bytes.
func writeNonblocking(fd uintptr, p []byte) (int, error) {
	p = p[:min(len(p), maxRawChunk)]
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// markClosing ends a poll in progress: the file is being closed.
func (r *rawFile) markClosing() { r.closing.Store(true) }

// setDeadline tells a poll about the file's read deadline (see poll).
func (r *rawFile) setDeadline(t time.Time) {
	var d int64
	if !t.IsZero() {
		d = max(monotonic()+int64(time.Until(t)), 1)
	}
	r.deadline.Store(d)
}

// setSpin sets the poll window; before the first read.
func (r *rawFile) setSpin(d time.Duration) { r.spin = int64(d) }

// setIdle sets what a read that finds the pipe empty runs first (fn reports
// whether it did anything); before the first read.
func (r *rawFile) setIdle(fn func() bool) { r.idle = fn }

// expectAnswer makes the next read poll (spinWait).
func (r *rawFile) expectAnswer() { r.armed.Store(true) }

// hopeForMessage makes the next read poll (spinWait) without backing off if
// nothing comes: the first read of a new link, whose peer may well have
// nothing to send yet.
func (r *rawFile) hopeForMessage() {
	r.guess.Store(true)
	r.armed.Store(true)
}
