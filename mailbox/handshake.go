package mailbox

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// Hello is what each side of a link announces before any message. Both sides
// send theirs, then check the peer's: the protocol version must match and the
// cookie must be the same (the parent makes it, the child gets it out of band
// and echoes it), so a stray process on the other end of a pipe is refused.
type Hello struct {
	// Version is the wire protocol version; set by Handshake.
	Version uint16
	// Caps are capability flags (CapAck...); a side ignores flags it does
	// not know, and uses a capability only when both sides announce it.
	Caps uint64
	// MaxFrame is the largest frame this side accepts; set by Handshake.
	MaxFrame uint32
	// Address is the node address of the side sending the hello.
	Address string
	// Incarnation counts restarts of the child behind this link.
	Incarnation uint64
	// Cookie must be equal on both sides; NewCookie makes one.
	Cookie []byte
}

// Capability flags of Hello.Caps.
const (
	// CapAck: the side understands ack frames (Endpoint.Acknowledge,
	// AckHandler). A side sends acks only to a peer that announced CapAck.
	CapAck uint64 = 1 << 0
)

// maxHello bounds a hello frame; the handshake refuses larger ones.
const maxHello = 4 << 10

// NewCookie returns 16 random bytes.
func NewCookie() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return b
}

func appendHello(b []byte, h *Hello) []byte {
	b = binary.AppendUvarint(b, uint64(h.Version))
	b = binary.AppendUvarint(b, h.Caps)
	b = binary.AppendUvarint(b, uint64(h.MaxFrame))
	b = appendString(b, h.Address)
	b = binary.AppendUvarint(b, h.Incarnation)
	b = binary.AppendUvarint(b, uint64(len(h.Cookie)))
	return append(b, h.Cookie...)
}

func parseHello(body []byte) (Hello, error) {
	c := cursor{b: body}
	var h Hello
	v := c.uvarint()
	h.Caps = c.uvarint()
	mf := c.uvarint()
	h.Address = string(c.bytes())
	h.Incarnation = c.uvarint()
	h.Cookie = append([]byte(nil), c.bytes()...)
	if c.err == nil && len(c.b) != 0 {
		c.fail("%d stray bytes after hello", len(c.b))
	}
	if c.err != nil {
		return Hello{}, c.err
	}
	if v > 0xffff || mf > maxFrameLimit {
		return Hello{}, fmt.Errorf("%w: hello out of range (version %d, max frame %d)", ErrProtocol, v, mf)
	}
	h.Version, h.MaxFrame = uint16(v), uint32(mf)
	return h, nil
}

// Handshake sends local's hello and reads the peer's, before Start. It fails
// with ErrHandshake on a version or cookie mismatch or a malformed hello, and
// with ErrHandshakeTimeout when ctx ends first (a peer that never answers
// costs the ctx's time, never a hang); after a failure the endpoint is closed
// and Handler.Closed is called with the error. Version and MaxFrame of local
// are set by Handshake. On success the link never sends frames larger than the peer's
// MaxFrame.
func (e *Endpoint) Handshake(ctx context.Context, local Hello) (Hello, error) {
	if !e.state.CompareAndSwap(stateNew, stateHandshaking) {
		if e.state.Load() == stateClosed {
			return Hello{}, ErrClosed
		}
		return Hello{}, ErrAlreadyStarted
	}
	local.Version = protocolVersion
	local.MaxFrame = uint32(e.cfg.maxFrame)
	body := appendHello(nil, &local)
	frame := appendHeader(make([]byte, 0, headerSize+len(body)), frameHello, uint32(len(body)))
	frame = append(frame, body...)

	// Write and read at once: on an unbuffered stream (net.Pipe) both sides
	// writing first would wait for each other forever.
	wrote := make(chan error, 1)
	go func() { _, err := e.conn.Write(frame); wrote <- err }()
	stop := context.AfterFunc(ctx, func() { e.conn.Close() })

	peer, err := e.readHello()
	if err != nil {
		e.conn.Close() // unblocks a write the peer will never read
	}
	werr := <-wrote
	switch {
	case !stop():
		err = fmt.Errorf("%w: %w", ErrHandshakeTimeout, context.Cause(ctx))
	case err == nil && werr != nil:
		err = fmt.Errorf("%w: sending hello: %w", ErrHandshake, werr)
	case err == nil:
		err = checkHello(&local, &peer)
	}
	if err == nil {
		e.out.mu.Lock()
		e.out.maxFrame = int(peer.MaxFrame)
		e.out.mu.Unlock()
		e.out.ack.on.Store(local.Caps&peer.Caps&CapAck != 0)
		e.peer = peer
		if e.state.CompareAndSwap(stateHandshaking, stateReady) {
			return peer, nil
		}
		err = ErrClosed // aborted meanwhile
	} else {
		e.peer = peer // what it announced, if anything: the failure's log line names it
	}
	e.fail(err)
	e.state.Store(stateClosed)
	e.finish()
	return peer, err
}

func (e *Endpoint) readHello() (Hello, error) {
	// A hello is small: refuse a larger one from its header, before reading it.
	limit := e.fr.maxFrame
	e.fr.maxFrame = maxHello
	t, body, _, err := e.fr.next()
	e.fr.maxFrame = limit
	if err != nil {
		return Hello{}, fmt.Errorf("%w: reading hello: %w", ErrHandshake, err)
	}
	if t != frameHello {
		return Hello{}, fmt.Errorf("%w: first frame is %v, want hello", ErrHandshake, t)
	}
	h, err := parseHello(body)
	if err != nil {
		return Hello{}, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return h, nil
}

func checkHello(local, peer *Hello) error {
	switch {
	case peer.Version != protocolVersion:
		return fmt.Errorf("%w: peer speaks version %d, we speak %d", ErrHandshake, peer.Version, protocolVersion)
	case peer.MaxFrame < minFrame:
		return fmt.Errorf("%w: peer accepts frames of %d bytes at most", ErrHandshake, peer.MaxFrame)
	case subtle.ConstantTimeCompare(local.Cookie, peer.Cookie) != 1:
		return fmt.Errorf("%w: cookie mismatch", ErrHandshake)
	}
	return nil
}
