package mailbox

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"
)

// How the reader and the writer size their work. None of these reaches the
// wire: a peer built with other values interoperates.
const (
	// externThreshold: []byte payloads at least this large are written from the
	// caller's slice instead of being copied into the batch buffer. Below it
	// the copy is cheaper than what writing from the caller's slice costs: a
	// batch with such a slice goes to the writer goroutine (a wake-up of
	// another thread) instead of being written by its sender. Measured with
	// bench/probe -rtt: at 64 KiB copying took the round trip's p50 from
	// 173–186 µs to 113–148 µs; at 128 KiB both ways were within noise.
	externThreshold = 128 << 10

	// largeAllocStep bounds the first allocation for a frame larger than the
	// read buffer; the buffer grows as bytes actually arrive, so a lying header
	// costs at most this much memory.
	largeAllocStep = 16 << 20

	// largeGrowth: once a large frame's memory is full, it grows to at most
	// this many times the bytes that actually arrived. 8 takes a 64 MiB
	// message (a little more than 64 MiB with its envelope) in two
	// allocations: 16 MiB, then its exact size.
	largeGrowth = 8

	// frameTarget is where a sender closes a data frame and opens the next
	// one within a batch. It is not a limit the receiver checks: it keeps
	// frames of small messages within the reader's reusable buffer
	// (DefaultReadBuffer), where they are decoded without allocating.
	frameTarget = 64 << 10

	// initialReadBuffer is the reader's buffer until a frame or a read
	// needs its configured size (WithReadBuffer): a handshake, requests
	// and their answers fit.
	initialReadBuffer = 16 << 10
)

// header is a byte-slice view of a frame header with accessors.
type header []byte

func (h header) length() uint32   { return binary.BigEndian.Uint32(h[0:4]) }
func (h header) typ() frameType   { return frameType(h[4]) }
func (h header) version() uint8   { return h[5] }
func (h header) reserved() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

func putHeader(b []byte, t frameType, length uint32) {
	binary.BigEndian.PutUint32(b[0:4], length)
	b[4] = byte(t)
	b[5] = protocolVersion
	b[6], b[7] = 0, 0
}

// appendHeader appends a frame header with the given length.
func appendHeader(b []byte, t frameType, length uint32) []byte {
	var h [headerSize]byte
	putHeader(h[:], t, length)
	return append(b, h[:]...)
}

// frameReader reads frames from a stream through one reusable buffer. Frames
// that fit the buffer are returned as views into it (valid until the next
// call); larger frames get memory of their own that the caller may keep.
//
// The buffer starts at initialReadBuffer and grows to size, once, when a
// frame needs it or a read fills it (a backlog): a link that carries little
// (most of a parent's links, a child that answers now and then) keeps
// a few pages instead of size. Reads go to the front of the buffer whenever
// everything read was consumed, so that small messages reuse the same pages
// and cache lines instead of walking the whole buffer.
//
// frameReader is used by one goroutine at a time.
type frameReader struct {
	r          io.Reader
	buf        []byte
	start, end int
	size       int // what buf grows to
	maxFrame   int

	// A read in the middle of a frame arms a timer: a frame that stops
	// arriving for stallTimeout calls onStall (which closes the stream).
	stallTimeout time.Duration
	onStall      func(length, got int)
	timer        *time.Timer
	length, got  int // the frame being read, for onStall
	stallMu      sync.Mutex
}

func newFrameReader(r io.Reader, size, maxFrame int) *frameReader {
	return &frameReader{r: r, buf: make([]byte, min(size, initialReadBuffer)), size: size, maxFrame: maxFrame}
}

// grow gives the buffer its full size, keeping what is buffered.
func (fr *frameReader) grow() {
	if len(fr.buf) >= fr.size {
		return
	}
	buf := make([]byte, fr.size)
	fr.end = copy(buf, fr.buf[fr.start:fr.end])
	fr.start = 0
	fr.buf = buf
}

// fits reports whether a frame of length bytes (its header included when
// withHeader) is read into the buffer, once grown, rather than into
// memory of its own.
func (fr *frameReader) fits(length int, withHeader bool) bool {
	if withHeader {
		length += headerSize
	}
	return length <= fr.size
}

// readInto reads into the buffer's free space after end and grows the
// buffer when the read filled it, and that space was at least half of it:
// more is likely waiting.
func (fr *frameReader) readInto(mid bool) (int, error) {
	free := fr.buf[fr.end:]
	n, err := fr.read(free, mid)
	fr.end += n
	// A read that filled at least half the buffer: more is likely waiting
	// (not a short tail after a frame read near the buffer's end).
	if n == len(free) && 2*n >= len(fr.buf) && len(fr.buf) < fr.size {
		fr.grow()
	}
	return n, err
}

// read reads from the stream; mid says the read is inside a frame, so a
// stall is timed.
func (fr *frameReader) read(p []byte, mid bool) (int, error) {
	if !mid || fr.onStall == nil {
		return fr.r.Read(p)
	}
	fr.stallMu.Lock()
	if fr.timer == nil {
		fr.timer = time.AfterFunc(fr.stallTimeout, fr.stalled)
	} else {
		fr.timer.Reset(fr.stallTimeout)
	}
	fr.stallMu.Unlock()
	n, err := fr.r.Read(p)
	fr.stallMu.Lock()
	fr.timer.Stop()
	fr.stallMu.Unlock()
	return n, err
}

func (fr *frameReader) stalled() {
	fr.stallMu.Lock()
	length, got := fr.length, fr.got
	fr.stallMu.Unlock()
	fr.onStall(length, got)
}

// stopTimer stops the stall timer for good.
func (fr *frameReader) stopTimer() {
	fr.stallMu.Lock()
	if fr.timer != nil {
		fr.timer.Stop()
	}
	fr.stallMu.Unlock()
}

// progress records how much of the frame being read has arrived.
func (fr *frameReader) progress(length, got int) {
	if fr.onStall == nil {
		return
	}
	fr.stallMu.Lock()
	fr.length, fr.got = length, got
	fr.stallMu.Unlock()
}

// fill makes sure at least need bytes are buffered. need <= len(buf).
// mid says a frame has begun.
func (fr *frameReader) fill(need int) error {
	if fr.end-fr.start >= need {
		return nil
	}
	if fr.start == fr.end || fr.start+need > len(fr.buf) {
		n := copy(fr.buf, fr.buf[fr.start:fr.end])
		fr.start, fr.end = 0, n
	}
	for fr.end-fr.start < need {
		_, err := fr.readInto(fr.end > fr.start)
		if err != nil {
			if fr.end-fr.start >= need {
				return nil
			}
			return err
		}
	}
	return nil
}

// next returns the next frame. owned reports whether body has memory of its
// own. Errors: io.EOF at a frame boundary; ErrFrameTooLarge; ErrProtocol
// (wrapping io.ErrUnexpectedEOF for a truncated frame); the stream's error.
func (fr *frameReader) next() (t frameType, body []byte, owned bool, err error) {
	if err := fr.fill(headerSize); err != nil {
		if err == io.EOF && fr.end == fr.start {
			return 0, nil, false, io.EOF
		}
		return 0, nil, false, truncated(err)
	}
	h := header(fr.buf[fr.start : fr.start+headerSize])
	length, t := int(h.length()), h.typ()
	switch {
	case h.version() != protocolVersion:
		return 0, nil, false, fmt.Errorf("%w: frame version %d, want %d", ErrProtocol, h.version(), protocolVersion)
	case h.reserved() != 0:
		return 0, nil, false, fmt.Errorf("%w: reserved header bits set (%#x)", ErrProtocol, h.reserved())
	case t < frameData || t > frameAck:
		return 0, nil, false, fmt.Errorf("%w: unknown frame type %d", ErrProtocol, uint8(t))
	case length > fr.maxFrame:
		return 0, nil, false, fmt.Errorf("%w: header announces %d bytes, limit %d", ErrFrameTooLarge, length, fr.maxFrame)
	}
	fr.start += headerSize
	fr.progress(length, fr.end-fr.start)
	if fr.fits(length, false) {
		if length > len(fr.buf) {
			fr.grow()
		}
		if err := fr.fillFrame(length); err != nil {
			return 0, nil, false, truncated(err)
		}
		body = fr.buf[fr.start : fr.start+length]
		fr.start += length
		return t, body, false, nil
	}
	body, err = fr.readLarge(length)
	return t, body, true, err
}

// fillFrame buffers a frame's body of length bytes, whose header was read:
// every read is inside the frame.
func (fr *frameReader) fillFrame(length int) error {
	if fr.end-fr.start >= length {
		return nil
	}
	if fr.start == fr.end || fr.start+length > len(fr.buf) {
		n := copy(fr.buf, fr.buf[fr.start:fr.end])
		fr.start, fr.end = 0, n
	}
	for fr.end-fr.start < length {
		fr.progress(length, fr.end-fr.start)
		_, err := fr.readInto(true)
		if err != nil {
			if fr.end-fr.start >= length {
				return nil
			}
			return err
		}
	}
	return nil
}

// readLarge reads a frame larger than the buffer into memory that grows as
// bytes arrive, never trusting the announced length for more than
// largeAllocStep or largeGrowth times what arrived. Reads stop at the frame's end (cap(body) <= length), so no
// byte of the next frame is consumed.
func (fr *frameReader) readLarge(length int) ([]byte, error) {
	body := make([]byte, 0, min(length, largeAllocStep))
	adviseHuge(body)
	body = append(body, fr.buf[fr.start:fr.end]...)
	fr.start, fr.end = 0, 0
	for len(body) < length {
		if len(body) == cap(body) {
			grown := make([]byte, len(body), min(length, largeGrowth*len(body)))
			adviseHuge(grown)
			copyPreemptible(grown, body)
			body = grown
		}
		fr.progress(length, len(body))
		n, err := fr.read(body[len(body):cap(body)], true)
		body = body[:len(body)+n]
		if err != nil && len(body) < length {
			return nil, truncated(err)
		}
	}
	return body, nil
}

func truncated(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated frame: %w", ErrProtocol, err)
	}
	return err
}
