package mailbox

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Wire constants. frame_test.go pins every one of them: changing a value
// breaks every peer built before the change.
const (
	// protocolVersion is carried in every frame header and in the hello.
	protocolVersion = 1

	// headerSize is the size of a frame header:
	//	[0:4] body length, big endian (not counting the header)
	//	[4]   frame type
	//	[5]   protocol version
	//	[6:8] reserved, zero
	headerSize = 8

	// msgPrefixSize is the length prefix of each message inside a data frame.
	msgPrefixSize = 4

	// maxFrameLimit is the largest value WithMaxFrame accepts (1 GiB).
	maxFrameLimit = 1 << 30

	// maxSymbols bounds the per-link, per-direction table of interned strings
	// (type names and addresses). Past it, strings travel as literals.
	maxSymbols = 1 << 16

	// maxSymbolLen and maxSymbolBytes bound one interned string and all of
	// them: longer strings travel as literals, and a peer that defines more
	// breaks the protocol (it cannot make us keep unbounded memory).
	maxSymbolLen   = 1 << 10
	maxSymbolBytes = 1 << 20

	// externThreshold: []byte payloads at least this large are written from the
	// caller's slice instead of being copied into the batch buffer.
	externThreshold = 64 << 10

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
)

// frameType is the kind of a frame.
type frameType uint8

const (
	frameData    frameType = 1 // a batch of length-prefixed messages
	frameHello   frameType = 2 // the handshake
	frameGoodbye frameType = 3 // graceful close: nothing follows from this side
	frameAck     frameType = 4 // a cumulative count of numbered messages the peer has finished (CapAck)
)

func (t frameType) String() string {
	switch t {
	case frameData:
		return "data"
	case frameHello:
		return "hello"
	case frameGoodbye:
		return "goodbye"
	case frameAck:
		return "ack"
	}
	return fmt.Sprintf("frame(%d)", uint8(t))
}

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
// frameReader is used by one goroutine at a time.
type frameReader struct {
	r          io.Reader
	buf        []byte
	start, end int
	maxFrame   int
}

func newFrameReader(r io.Reader, size, maxFrame int) *frameReader {
	return &frameReader{r: r, buf: make([]byte, size), maxFrame: maxFrame}
}

// fill makes sure at least need bytes are buffered. need <= len(buf).
func (fr *frameReader) fill(need int) error {
	if fr.end-fr.start >= need {
		return nil
	}
	if fr.start+need > len(fr.buf) {
		n := copy(fr.buf, fr.buf[fr.start:fr.end])
		fr.start, fr.end = 0, n
	}
	for fr.end-fr.start < need {
		n, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += n
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
	if length <= len(fr.buf) {
		if err := fr.fill(length); err != nil {
			return 0, nil, false, truncated(err)
		}
		body = fr.buf[fr.start : fr.start+length]
		fr.start += length
		return t, body, false, nil
	}
	body, err = fr.readLarge(length)
	return t, body, true, err
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
		n, err := fr.r.Read(body[len(body):cap(body)])
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
