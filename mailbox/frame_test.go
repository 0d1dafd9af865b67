package mailbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	pa "github.com/asynkron/protoactor-go/actor"
)

// TestWireGolden pins the exact bytes of a header, a hello and two messages.
func TestWireGolden(t *testing.T) {
	t.Parallel()
	if got, want := appendHeader(nil, frameData, 0x01020304), []byte{1, 2, 3, 4, 1, 2, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("data header = % x; want % x", got, want)
	}
	if got, want := appendHeader(nil, frameGoodbye, 0), []byte{0, 0, 0, 0, 3, 2, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("goodbye header = % x; want % x", got, want)
	}

	hello := appendHello(nil, &Hello{Version: 2, Caps: 3, MaxFrame: 1 << 20, Address: "n/1", Incarnation: 2, Cookie: []byte{0xaa, 0xbb}, Schema: 0x0102030405060708})
	wantHello := []byte{2, 3, 0x80, 0x80, 0x40, 3, 'n', '/', '1', 2, 2, 0xaa, 0xbb, 8, 7, 6, 5, 4, 3, 2, 1}
	if !bytes.Equal(hello, wantHello) {
		t.Errorf("hello = % x; want % x", hello, wantHello)
	}

	enc := newEncoder("")
	env := &Envelope{Target: pa.NewPID("node/1", "w"), Message: []byte("hi")}
	first, _, err := enc.appendEnvelope(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	wantFirst := []byte{flagTarget, symNew, 6, 'n', 'o', 'd', 'e', '/', '1', 1, 'w', 0, kindBytes, 'h', 'i'}
	if !bytes.Equal(first, wantFirst) {
		t.Errorf("first message = % x; want % x", first, wantFirst)
	}
	env.Lane = LaneSystem
	env.Message = int32(-1)
	second, _, err := enc.appendEnvelope(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	wantSecond := []byte{flagSystem | flagTarget, symBase, 1, 'w', 0, kindScalar, byte(reflect.Int32), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if !bytes.Equal(second, wantSecond) {
		t.Errorf("second message = % x; want % x", second, wantSecond)
	}
}

func TestHeaderView(t *testing.T) {
	t.Parallel()
	h := header(appendHeader(nil, frameHello, 77))
	if h.length() != 77 || h.typ() != frameHello || h.version() != protocolVersion || h.reserved() != 0 {
		t.Errorf("header = (%d, %v, %d, %d); want (77, hello, %d, 0)", h.length(), h.typ(), h.version(), h.reserved(), protocolVersion)
	}
	for _, c := range []struct {
		t    frameType
		want string
	}{{frameData, "data"}, {frameHello, "hello"}, {frameGoodbye, "goodbye"}, {frameAck, "ack"}, {frameTypes, "types"}, {9, "frame(9)"}} {
		if got := c.t.String(); got != c.want {
			t.Errorf("frameType(%d).String() = %q; want %q", uint8(c.t), got, c.want)
		}
	}
}

func frame(t frameType, body []byte) []byte {
	return append(appendHeader(nil, t, uint32(len(body))), body...)
}

func rawHeader(length uint32, typ, version byte, reserved uint16) []byte {
	h := make([]byte, headerSize)
	binary.BigEndian.PutUint32(h, length)
	h[4], h[5] = typ, version
	binary.BigEndian.PutUint16(h[6:], reserved)
	return h
}

func TestFrameReader(t *testing.T) {
	t.Parallel()
	// 4096: the buffer is its full size from the start; 4×initialReadBuffer:
	// it starts smaller and grows for the exact-size frame.
	for _, bufSize := range []int{4096, 4 * initialReadBuffer} {
		t.Run(fmt.Sprint(bufSize), func(t *testing.T) {
			t.Parallel()
			testFrameReader(t, bufSize)
		})
	}
}

func testFrameReader(t *testing.T, bufSize int) {
	small := bytes.Repeat([]byte("s"), 100)
	exact := bytes.Repeat([]byte("e"), bufSize)
	large := bytes.Repeat([]byte("L"), 3*bufSize+17)
	var stream []byte
	for _, b := range [][]byte{small, exact, large, nil, small} {
		stream = append(stream, frame(frameData, b)...)
	}
	stream = append(stream, frame(frameGoodbye, nil)...)

	for _, r := range []struct {
		name string
		r    func() io.Reader
	}{
		{"whole", func() io.Reader { return bytes.NewReader(stream) }},
		{"byte by byte", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }},
		{"half", func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }},
		{"data with EOF", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) }},
	} {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			fr := newFrameReader(r.r(), bufSize, 1<<20)
			for i, want := range [][]byte{small, exact, large, {}, small} {
				typ, body, owned, err := fr.next()
				if err != nil || typ != frameData || !bytes.Equal(body, want) {
					t.Fatalf("frame %d: got (%v, %d bytes, %v); want (data, %d bytes, nil)", i, typ, len(body), err, len(want))
				}
				if wantOwned := len(want) > bufSize; owned != wantOwned {
					t.Errorf("frame %d: owned = %v; want %v", i, owned, wantOwned)
				}
			}
			if typ, _, _, err := fr.next(); typ != frameGoodbye || err != nil {
				t.Fatalf("got (%v, %v); want (goodbye, nil)", typ, err)
			}
			if _, _, _, err := fr.next(); err != io.EOF {
				t.Fatalf("at the end: got %v; want io.EOF", err)
			}
		})
	}
}

// chunkReader returns one chunk per Read, as a pipe does with writes that
// were read as they came.
type chunkReader struct{ chunks [][]byte }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if n == len(r.chunks[0]) {
		r.chunks = r.chunks[1:]
	} else {
		r.chunks[0] = r.chunks[0][n:]
	}
	return n, nil
}

// TestFrameReaderBufferGrowsOnDemand: a link that carries small frames keeps
// the small buffer; a frame that needs the configured size, or a read that
// fills the buffer (a backlog), grows it once.
func TestFrameReaderBufferGrowsOnDemand(t *testing.T) {
	t.Parallel()
	const size = 256 << 10
	small := frame(frameData, bytes.Repeat([]byte("s"), 100))
	big := bytes.Repeat([]byte("b"), 64<<10)

	t.Run("a frame that needs it", func(t *testing.T) {
		t.Parallel()
		var chunks [][]byte
		for range 1000 {
			chunks = append(chunks, small)
		}
		chunks = append(chunks, frame(frameData, big), small)
		fr := newFrameReader(&chunkReader{chunks: chunks}, size, 1<<20)
		for i := range 1000 {
			if _, body, _, err := fr.next(); err != nil || len(body) != 100 {
				t.Fatalf("frame %d: %d bytes, %v", i, len(body), err)
			}
			if len(fr.buf) != initialReadBuffer {
				t.Fatalf("after %d small frames the buffer has %d bytes; want %d", i+1, len(fr.buf), initialReadBuffer)
			}
		}
		_, body, owned, err := fr.next()
		if err != nil || !bytes.Equal(body, big) || owned {
			t.Fatalf("64 KiB frame: %d bytes, owned %v, %v; want it whole, in the buffer", len(body), owned, err)
		}
		if len(fr.buf) != size {
			t.Fatalf("after a 64 KiB frame the buffer has %d bytes; want %d", len(fr.buf), size)
		}
		if _, body, _, err := fr.next(); err != nil || len(body) != 100 {
			t.Fatalf("the frame after: %d bytes, %v", len(body), err)
		}
	})

	t.Run("a backlog", func(t *testing.T) {
		t.Parallel()
		var stream []byte
		for range 2 * initialReadBuffer / len(small) {
			stream = append(stream, small...)
		}
		fr := newFrameReader(bytes.NewReader(stream), size, 1<<20)
		for i := range 2 * initialReadBuffer / len(small) {
			if _, body, _, err := fr.next(); err != nil || len(body) != 100 {
				t.Fatalf("frame %d: %d bytes, %v", i, len(body), err)
			}
		}
		if len(fr.buf) != size {
			t.Fatalf("a read that filled the buffer left it at %d bytes; want %d", len(fr.buf), size)
		}
	})
}

// TestFrameReaderShortTailDoesNotGrow: a read that fills only a short tail
// of the buffer (the rest of a frame read near its end) is not a backlog.
func TestFrameReaderShortTailDoesNotGrow(t *testing.T) {
	t.Parallel()
	small := frame(frameData, bytes.Repeat([]byte("s"), 100)) // 108 bytes
	var all []byte
	for range 153 {
		all = append(all, small...)
	}
	// 148 frames and 16 bytes of the next (16000 bytes, less than the
	// buffer); then exactly the 384 bytes left at the buffer's end; then the rest.
	chunks := [][]byte{all[:16000], all[16000:16384], all[16384:]}
	fr := newFrameReader(&chunkReader{chunks: chunks}, DefaultReadBuffer, 1<<20)
	for i := range 153 {
		if _, body, _, err := fr.next(); err != nil || len(body) != 100 {
			t.Fatalf("frame %d: %d bytes, %v", i, len(body), err)
		}
		if len(fr.buf) != initialReadBuffer {
			t.Fatalf("after frame %d the buffer has %d bytes; want %d (no backlog)", i, len(fr.buf), initialReadBuffer)
		}
	}
}

// TestFrameReaderReadsToTheFront: once everything read was consumed, the next
// read goes to the front of the buffer, so small messages reuse its first
// pages instead of walking all of it.
func TestFrameReaderReadsToTheFront(t *testing.T) {
	t.Parallel()
	small := frame(frameData, bytes.Repeat([]byte("s"), 100))
	var chunks [][]byte
	for range 10 * DefaultReadBuffer / len(small) {
		chunks = append(chunks, small)
	}
	fr := newFrameReader(&chunkReader{chunks: chunks}, DefaultReadBuffer, 1<<20)
	for i := range len(chunks) {
		if _, body, _, err := fr.next(); err != nil || len(body) != 100 {
			t.Fatalf("frame %d: %d bytes, %v", i, len(body), err)
		}
		if fr.end > len(small) {
			t.Fatalf("frame %d was read at offset %d; want the front", i, fr.end-len(small))
		}
	}
}

func TestFrameReaderErrors(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	for _, c := range []struct {
		name  string
		bytes []byte
		want  error
	}{
		{"EOF at a frame boundary", nil, io.EOF},
		{"length 2^31", rawHeader(1<<31, 1, protocolVersion, 0), ErrFrameTooLarge},
		{"length 2^32-1", rawHeader(1<<32-1, 1, protocolVersion, 0), ErrFrameTooLarge},
		{"length over limit by one", rawHeader(limit+1, 1, protocolVersion, 0), ErrFrameTooLarge},
		{"truncated header", []byte{0, 0, 0}, ErrProtocol},
		{"truncated small body", append(rawHeader(10, 1, protocolVersion, 0), 1, 2, 3), ErrProtocol},
		{"truncated large body", append(rawHeader(limit, 1, protocolVersion, 0), make([]byte, 5000)...), ErrProtocol},
		{"unknown frame type 0", rawHeader(0, 0, protocolVersion, 0), ErrProtocol},
		{"unknown frame type 6", rawHeader(0, 6, protocolVersion, 0), ErrProtocol},
		{"version 0", rawHeader(0, 1, 0, 0), ErrProtocol},
		{"version 1", rawHeader(0, 1, 1, 0), ErrProtocol},
		{"version 3", rawHeader(0, 1, 3, 0), ErrProtocol},
		{"reserved bits", rawHeader(0, 1, protocolVersion, 0x8000), ErrProtocol},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrProtocol},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fr := newFrameReader(bytes.NewReader(c.bytes), 4096, limit)
			_, _, _, err := fr.next()
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v; want %v", err, c.want)
			}
			if truncated := strings.HasPrefix(c.name, "truncated"); errors.Is(err, io.ErrUnexpectedEOF) != truncated {
				t.Errorf("got %v; wraps io.ErrUnexpectedEOF: %v; want %v", err, !truncated, truncated)
			}
		})
	}
}

// TestFrameReaderLyingLength checks that a header announcing a large frame
// costs memory only as its bytes arrive. Not parallel: it reads the heap's
// allocation counter.
func TestFrameReaderLyingLength(t *testing.T) {
	const announced = 200 << 20
	stream := append(rawHeader(announced, 1, protocolVersion, 0), make([]byte, 1000)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fr := newFrameReader(bytes.NewReader(stream), DefaultReadBuffer, DefaultMaxFrame)
	_, _, _, err := fr.next()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrProtocol) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v; want ErrProtocol wrapping io.ErrUnexpectedEOF", err)
	}
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(largeAllocStep+DefaultReadBuffer+1<<20); got > limit {
		t.Errorf("allocated %d bytes for a frame announcing %d; want at most %d", got, announced, limit)
	}
}

// TestFrameReaderLargeGrowth checks that a large frame arriving slowly grows
// to its size and never reads into the next frame.
func TestFrameReaderLargeGrowth(t *testing.T) {
	t.Parallel()
	body := make([]byte, largeAllocStep+largeAllocStep/2)
	for i := range body {
		body[i] = byte(i * 7)
	}
	stream := append(frame(frameData, body), frame(frameGoodbye, nil)...)
	fr := newFrameReader(iotest.HalfReader(bytes.NewReader(stream)), 4096, 64<<20)
	typ, got, owned, err := fr.next()
	if err != nil || typ != frameData || !owned || !bytes.Equal(got, body) {
		t.Fatalf("got (%v, %d bytes, owned %v, %v); want (data, %d bytes, owned, nil)", typ, len(got), owned, err, len(body))
	}
	if cap(got) != len(body) {
		t.Errorf("cap = %d; want %d (grown to the exact size)", cap(got), len(body))
	}
	if typ, _, _, err := fr.next(); typ != frameGoodbye || err != nil {
		t.Fatalf("after the large frame: got (%v, %v); want (goodbye, nil)", typ, err)
	}
}

func TestNextMessage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		body []byte
		msg  []byte
		rest []byte
		err  error
	}{
		{"one", []byte{0, 0, 0, 2, 'h', 'i'}, []byte("hi"), []byte{}, nil},
		{"two", []byte{0, 0, 0, 1, 'a', 0, 0, 0, 1, 'b'}, []byte("a"), []byte{0, 0, 0, 1, 'b'}, nil},
		{"empty message", []byte{0, 0, 0, 0}, []byte{}, []byte{}, nil},
		{"stray bytes", []byte{0, 0}, nil, nil, ErrProtocol},
		{"overrun by one", []byte{0, 0, 0, 3, 'h', 'i'}, nil, nil, ErrProtocol},
		{"overrun 2^32-1", []byte{0xff, 0xff, 0xff, 0xff, 'h'}, nil, nil, ErrProtocol},
	} {
		msg, rest, err := nextMessage(c.body)
		if !errors.Is(err, c.err) || !bytes.Equal(msg, c.msg) || !bytes.Equal(rest, c.rest) {
			t.Errorf("%s: got (%q, %q, %v); want (%q, %q, %v)", c.name, msg, rest, err, c.msg, c.rest, c.err)
		}
	}
}

// TestBatchFrames: a batch closes a data frame at frameTarget or at the
// peer's limit, whichever is smaller, and every message lands whole.
func TestBatchFrames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		maxFrame, msgSize, msgs, wantMaxBody int
	}{
		{DefaultMaxFrame, 100, 2000, frameTarget},
		{4 << 10, 100, 200, 4 << 10},
		{DefaultMaxFrame, frameTarget + 10, 3, frameTarget + 10 + 16},
	} {
		b := newBatch()
		enc := newEncoder("")
		for i := range c.msgs {
			if err := b.appendEnvelope(enc, &Envelope{Message: string(make([]byte, c.msgSize)) + fmt.Sprint(i)}, c.maxFrame); err != nil {
				t.Fatal(err)
			}
		}
		b.closeFrame()
		fr := newFrameReader(bytes.NewReader(b.buf), 4096, c.maxFrame)
		dec := newDecoder()
		got, frames := 0, 0
		for {
			typ, body, owned, err := fr.next()
			if err == io.EOF {
				break
			}
			if err != nil || typ != frameData {
				t.Fatalf("frame %d: got (%v, %v); want data", frames, typ, err)
			}
			frames++
			if len(body) > c.wantMaxBody {
				t.Errorf("maxFrame %d: frame of %d bytes; want at most %d", c.maxFrame, len(body), c.wantMaxBody)
			}
			for len(body) > 0 {
				msg, rest, err := nextMessage(body)
				if err != nil {
					t.Fatal(err)
				}
				body = rest
				var env Envelope
				if bad, fatal := dec.decodeEnvelope(msg, owned, &env); bad != nil || fatal != nil {
					t.Fatal(bad, fatal)
				}
				if s := env.Message.(string); !strings.HasSuffix(s, fmt.Sprint(got)) || len(s) < c.msgSize {
					t.Fatalf("message %d: got %d bytes ending %q", got, len(s), s[max(0, len(s)-5):])
				}
				got++
			}
		}
		if got != c.msgs || frames < 2 {
			t.Errorf("maxFrame %d, %d-byte messages: got %d messages in %d frames; want %d in several", c.maxFrame, c.msgSize, got, frames, c.msgs)
		}
	}
}
