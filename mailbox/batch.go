package mailbox

import (
	"encoding/binary"
	"fmt"
	"io"
)

// batch is a run of encoded frames waiting for one write. Large []byte
// payloads are not copied in: they are written from the caller's slice
// (extern), logically inserted into buf at their offset.
type batch struct {
	buf         []byte
	frameAt     int // offset of the open data frame's header; -1 when none
	frameLen    int // body bytes of the open frame, extern included
	extern      []externSeg
	externBytes int  // bytes in extern
	off         int  // bytes of buf already written (direct writes; extern is empty then)
	goodbye     bool // ends with a goodbye frame: the writer stops after it
	msgs        int
	lastSize    int // encoded length of the message appended last, prefix included
	// msgBytes counts the bytes of the batch's messages, sysMsgs and
	// sysBytes those on the system lane, for the endpoint's Traffic once
	// the batch is written.
	msgBytes, sysMsgs, sysBytes int
}

type externSeg struct {
	at   int
	data []byte
}

// maxSpareBatch caps the memory a recycled batch keeps.
const maxSpareBatch = 4 << 20

func newBatch() *batch { return &batch{frameAt: -1} }

func (b *batch) empty() bool { return len(b.buf) == 0 }

// size is the number of bytes the batch will write.
func (b *batch) size() int { return len(b.buf) + b.externBytes }

func (b *batch) reset() {
	if cap(b.buf) > maxSpareBatch {
		b.buf = nil
	}
	b.buf = b.buf[:0]
	clear(b.extern) // drop references to callers' slices
	b.extern = b.extern[:0]
	b.frameAt, b.frameLen, b.externBytes, b.off, b.goodbye, b.msgs = -1, 0, 0, 0, false, 0
	b.msgBytes, b.sysMsgs, b.sysBytes = 0, 0, 0
}

func (b *batch) closeFrame() {
	if b.frameAt >= 0 {
		binary.BigEndian.PutUint32(b.buf[b.frameAt:], uint32(b.frameLen))
		b.frameAt, b.frameLen = -1, 0
	}
}

// appendGoodbye closes the open frame and appends a goodbye frame.
func (b *batch) appendGoodbye() {
	b.closeFrame()
	b.buf = appendHeader(b.buf, frameGoodbye, 0)
	b.goodbye = true
}

// appendEnvelope encodes env as one message of the open data frame. It opens
// a frame when none is open, and starts a new one when the message would take
// the open frame past frameTarget or maxFrame (the peer's limit). On error the
// batch and the encoder's symbol table are as they were.
func (b *batch) appendEnvelope(enc *encoder, env *Envelope, maxFrame int) error {
	markBuf, markFrameAt, markFrameLen, markSym := len(b.buf), b.frameAt, b.frameLen, enc.mark()
	if b.frameAt < 0 {
		b.frameAt = len(b.buf)
		b.buf = appendHeader(b.buf, frameData, 0)
	}
	msgAt := len(b.buf)
	b.buf = append(b.buf, 0, 0, 0, 0)
	out, ext, err := enc.appendEnvelope(b.buf, env)
	b.buf = out
	msgLen := len(b.buf) - msgAt - msgPrefixSize + len(ext)
	if err == nil && msgPrefixSize+msgLen > maxFrame {
		err = fmt.Errorf("%w: %d bytes, frame limit %d", ErrMessageTooLarge, msgLen, maxFrame)
	}
	if err != nil {
		b.buf, b.frameAt, b.frameLen = b.buf[:markBuf], markFrameAt, markFrameLen
		enc.rollback(markSym)
		return err
	}
	if b.frameLen > 0 && b.frameLen+msgPrefixSize+msgLen > min(maxFrame, frameTarget) {
		// Close the open frame before this message and give it a new frame.
		binary.BigEndian.PutUint32(b.buf[b.frameAt:], uint32(b.frameLen))
		b.buf = append(b.buf, make([]byte, headerSize)...)
		copy(b.buf[msgAt+headerSize:], b.buf[msgAt:len(b.buf)-headerSize])
		putHeader(b.buf[msgAt:], frameData, 0)
		b.frameAt, b.frameLen = msgAt, 0
		msgAt += headerSize
	}
	binary.BigEndian.PutUint32(b.buf[msgAt:], uint32(msgLen))
	if ext != nil {
		b.extern = append(b.extern, externSeg{at: len(b.buf), data: ext})
		b.externBytes += len(ext)
	}
	b.frameLen += msgPrefixSize + msgLen
	b.msgs++
	b.lastSize = msgPrefixSize + msgLen
	b.msgBytes += b.lastSize
	if env.Lane == LaneSystem {
		b.sysMsgs++
		b.sysBytes += b.lastSize
	}
	return nil
}

// writeAll writes the rest of the batch; one Write when nothing is extern.
func (b *batch) writeAll(w io.Writer) error {
	if len(b.extern) == 0 {
		_, err := w.Write(b.buf[b.off:])
		return err
	}
	prev := 0
	for _, s := range b.extern {
		if _, err := w.Write(b.buf[prev:s.at]); err != nil {
			return err
		}
		if _, err := w.Write(s.data); err != nil {
			return err
		}
		prev = s.at
	}
	_, err := w.Write(b.buf[prev:])
	return err
}

// refit re-frames the batch so that no frame exceeds maxFrame. Messages
// queued before the handshake were framed against this side's own limit, the
// peer's being unknown until its hello; the handshake calls refit with the
// peer's. A message larger than maxFrame cannot cross: refit returns
// ErrMessageTooLarge. The batch holds no written bytes (off is 0).
//
// Only frames of several messages are split: a frame of one message over
// maxFrame is a message too large. appendEnvelope closes a frame of several
// messages at frameTarget, so splitting happens only when maxFrame is under
// frameTarget, and then any message with an extern payload (at least
// externThreshold bytes, more than frameTarget) is too large: the batch
// rebuilt has no extern payload.
func (b *batch) refit(maxFrame int) error {
	b.closeFrame()
	fits := true
	for at, ext := 0, 0; at < len(b.buf); {
		h := header(b.buf[at:])
		length, inBuf := int(h.length()), int(h.length())
		if ext < len(b.extern) && b.extern[ext].at <= at+headerSize+length {
			inBuf -= len(b.extern[ext].data) // an extern payload ends its frame
			ext++
		}
		if length > maxFrame {
			fits = false
			for m := at + headerSize; m < at+headerSize+inBuf; {
				n := msgPrefixSize + int(binary.BigEndian.Uint32(b.buf[m:]))
				if n > maxFrame {
					return fmt.Errorf("%w: %d bytes, frame limit %d", ErrMessageTooLarge, n-msgPrefixSize, maxFrame)
				}
				m += n
			}
		}
		at += headerSize + inBuf
	}
	if fits {
		return nil
	}
	limit := min(maxFrame, frameTarget)
	out := make([]byte, 0, len(b.buf)+(len(b.buf)/limit+1)*headerSize)
	for at := 0; at < len(b.buf); {
		h := header(b.buf[at:])
		end := at + headerSize + int(h.length())
		if h.typ() != frameData || int(h.length()) <= maxFrame {
			out = append(out, b.buf[at:end]...)
			at = end
			continue
		}
		frameAt, frameLen := -1, 0
		for m := at + headerSize; m < end; {
			n := msgPrefixSize + int(binary.BigEndian.Uint32(b.buf[m:]))
			if frameAt < 0 || frameLen+n > limit {
				if frameAt >= 0 {
					binary.BigEndian.PutUint32(out[frameAt:], uint32(frameLen))
				}
				frameAt, frameLen = len(out), 0
				out = appendHeader(out, frameData, 0)
			}
			out = append(out, b.buf[m:m+n]...)
			frameLen += n
			m += n
		}
		binary.BigEndian.PutUint32(out[frameAt:], uint32(frameLen))
		at = end
	}
	b.buf = out
	return nil
}
