package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"syscall"

	"github.com/vmihailenco/msgpack/v5"
)

// The raw systems (raw_pipe, raw_pipe_blocking, raw_socketpair) speak one framing,
// the least a Go program needs to carry messages over a byte stream:
//
//	[4-byte little-endian body length][1-byte kind][body]
//
// The peer echoes kindEcho frames, counts kindData frames, decodes and counts
// kindRecord frames (msgpack Record), and answers kindSync with a kindSync frame
// whose body is the 8-byte little-endian count since the previous sync.
const (
	frameHeaderSize = 5
	kindEcho        = byte(1)
	kindData        = byte(2)
	kindRecord      = byte(3)
	kindSync        = byte(4)

	// streamBufferSize is the size of the bufio readers and writers on each side.
	streamBufferSize = 64 << 10
	// frameSlack is added to linkConfig.maxMessage to bound a frame's body.
	frameSlack = 64
)

// putHeader writes a frame header for a body of n bytes into h.
func putHeader(h []byte, kind byte, n int) {
	binary.LittleEndian.PutUint32(h, uint32(n))
	h[4] = kind
}

// readFrame reads one frame into buf, grown as needed, and returns the whole frame
// (header and body; it aliases the returned buf). A body longer than limit is an
// error, found before anything is allocated for it.
func readFrame(r io.Reader, buf []byte, limit int) (frame, grown []byte, err error) {
	if cap(buf) < frameHeaderSize {
		buf = make([]byte, frameHeaderSize, frameHeaderSize+streamBufferSize)
	}
	buf = buf[:frameHeaderSize]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, buf, err
	}
	n := int(binary.LittleEndian.Uint32(buf))
	if n > limit {
		return nil, buf, fmt.Errorf("frame of %d bytes exceeds the limit of %d", n, limit)
	}
	if cap(buf) < frameHeaderSize+n {
		grown := make([]byte, frameHeaderSize+n)
		copy(grown, buf)
		buf = grown
	}
	buf = buf[:frameHeaderSize+n]
	if _, err := io.ReadFull(r, buf[frameHeaderSize:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, buf, err
	}
	return buf, buf, nil
}

// serveFrames is the peer of a raw system: it answers frames from r on w until r
// reaches EOF, which is how its parent tells it to exit.
func serveFrames(r io.Reader, w io.Writer, maxMessage int) error {
	br := bufio.NewReaderSize(r, streamBufferSize)
	limit := maxMessage + frameSlack
	var (
		buf   []byte
		out   [frameHeaderSize + 8]byte
		count uint64
		rec   Record
	)
	for {
		frame, grown, err := readFrame(br, buf, limit)
		buf = grown
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch kind, body := frame[4], frame[frameHeaderSize:]; kind {
		case kindEcho:
			if _, err := w.Write(frame); err != nil {
				return err
			}
		case kindData:
			count++
		case kindRecord:
			if err := msgpack.Unmarshal(body, &rec); err != nil {
				return fmt.Errorf("decode record: %w", err)
			}
			count++
		case kindSync:
			putHeader(out[:], kindSync, 8)
			binary.LittleEndian.PutUint64(out[frameHeaderSize:], count)
			count = 0
			if _, err := w.Write(out[:]); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown frame kind %d", kind)
		}
	}
}

// frameLink is the parent's end of a raw system: a framed byte stream to a child
// that runs serveFrames.
type frameLink struct {
	r  *bufio.Reader
	w  io.Writer     // unbuffered: requests write whole frames
	bw *bufio.Writer // over w, for one-way streams
	// lockThread wires the calling goroutine to its OS thread for the duration of
	// each method (raw_pipe_blocking, whose reads and writes are blocking syscalls).
	lockThread bool
	limit      int
	out, in    []byte
	enc        *msgpack.Encoder
	encBuf     bytes.Buffer
	// shutdown closes the stream and stops the child.
	shutdown func() error
	// pid is the child's process id.
	pid int
}

func (l *frameLink) childPID() int { return l.pid }

func newFrameLink(r io.Reader, w io.Writer, cfg linkConfig, lockThread bool, pid int, shutdown func() error) *frameLink {
	l := &frameLink{
		r:          bufio.NewReaderSize(r, streamBufferSize),
		w:          w,
		bw:         bufio.NewWriterSize(w, streamBufferSize),
		lockThread: lockThread,
		limit:      cfg.maxMessage + frameSlack,
		out:        make([]byte, 0, frameHeaderSize+min(cfg.maxMessage, streamBufferSize)),
		shutdown:   shutdown,
		pid:        pid,
	}
	l.enc = msgpack.NewEncoder(&l.encBuf)
	return l
}

func (l *frameLink) request(p []byte) error {
	if l.lockThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	// One write per frame: a header written apart wakes the peer once more
	// (≈ +35 µs per 64 KiB round trip over a pipe), which costs more than the copy.
	l.out = append(l.out[:frameHeaderSize], p...)
	putHeader(l.out, kindEcho, len(p))
	if _, err := l.w.Write(l.out); err != nil {
		return err
	}
	frame, grown, err := readFrame(l.r, l.in, l.limit)
	l.in = grown
	if err != nil {
		return err
	}
	if kind, body := frame[4], frame[frameHeaderSize:]; kind != kindEcho || len(body) != len(p) {
		return fmt.Errorf("echo: got kind %d with %d bytes; want kind %d with %d", kind, len(body), kindEcho, len(p))
	}
	return nil
}

func (l *frameLink) oneway(p []byte, n int) error {
	if l.lockThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	var h [frameHeaderSize]byte
	putHeader(h[:], kindData, len(p))
	for range n {
		if _, err := l.bw.Write(h[:]); err != nil {
			return err
		}
		if _, err := l.bw.Write(p); err != nil {
			return err
		}
	}
	return l.sync(n)
}

func (l *frameLink) onewayRecords(r *Record, n int) error {
	if l.lockThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	var h [frameHeaderSize]byte
	for range n {
		l.encBuf.Reset()
		if err := l.enc.Encode(r); err != nil {
			return err
		}
		putHeader(h[:], kindRecord, l.encBuf.Len())
		if _, err := l.bw.Write(h[:]); err != nil {
			return err
		}
		if _, err := l.bw.Write(l.encBuf.Bytes()); err != nil {
			return err
		}
	}
	return l.sync(n)
}

// sync sends a kindSync frame after the buffered one-way frames and checks that
// the peer counted n of them.
func (l *frameLink) sync(n int) error {
	var h [frameHeaderSize]byte
	putHeader(h[:], kindSync, 0)
	if _, err := l.bw.Write(h[:]); err != nil {
		return err
	}
	if err := l.bw.Flush(); err != nil {
		return err
	}
	frame, grown, err := readFrame(l.r, l.in, l.limit)
	l.in = grown
	if err != nil {
		return err
	}
	kind, body := frame[4], frame[frameHeaderSize:]
	if kind != kindSync || len(body) != 8 {
		return fmt.Errorf("sync: got kind %d with %d bytes; want kind %d with 8", kind, len(body), kindSync)
	}
	if got := binary.LittleEndian.Uint64(body); got != uint64(n) {
		return fmt.Errorf("sync: peer counted %d messages; want %d", got, n)
	}
	return nil
}

func (l *frameLink) close() error { return l.shutdown() }

// fdStream reads and writes a file descriptor with blocking syscalls, bypassing
// the netpoller; the fd must be in blocking mode.
type fdStream int

func (fd fdStream) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (fd fdStream) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := syscall.Write(int(fd), p[written:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}
