package mailbox

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
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
	// Schema is a digest of the fingerprints of every type this side
	// registered (see RegisterType); set by Handshake. When the two differ,
	// the handshake compares the types one by one.
	Schema uint64
}

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
	b = append(b, h.Cookie...)
	return binary.LittleEndian.AppendUint64(b, h.Schema)
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
	if c.err == nil && len(c.b) < 8 {
		c.fail("hello truncated")
	}
	if c.err == nil {
		h.Schema = binary.LittleEndian.Uint64(c.b)
		c.b = c.b[8:]
	}
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
// MaxFrame: what Send queued before the handshake is re-framed to it, and a
// queued message larger than it fails the handshake (ErrHandshake and
// ErrMessageTooLarge).
func (e *Endpoint) Handshake(ctx context.Context, local Hello) (Hello, error) {
	if !e.state.CompareAndSwap(stateNew, stateHandshaking) {
		if e.state.Load() == stateClosed {
			return Hello{}, ErrClosed
		}
		return Hello{}, ErrAlreadyStarted
	}
	local.Version = protocolVersion
	local.MaxFrame = uint32(e.cfg.maxFrame)
	sch := currentSchema()
	local.Schema = sch.digest
	body := appendHello(nil, &local)

	stop := context.AfterFunc(ctx, func() { e.conn.Close() })
	hbody, err := e.exchangeFrame(frameHello, body, func() ([]byte, error) { return e.readFrame(frameHello, maxHello) })
	var hello Hello
	if err == nil {
		hello, err = parseHello(hbody)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrHandshake, err)
		}
	}
	e.peer = hello // what it announced, if anything: a failure's log line names it
	if err == nil {
		err = checkHello(&local, &hello)
	}
	var mismatch map[*typeEntry]error
	if err == nil && hello.Schema != 0 && hello.Schema != local.Schema {
		mismatch, err = e.compareTypes(sch)
	}
	if !stop() {
		err = fmt.Errorf("%w: %w", ErrHandshakeTimeout, context.Cause(ctx))
	}
	if err == nil {
		e.out.mu.Lock()
		if int(hello.MaxFrame) < e.out.maxFrame {
			// What Send queued before now was framed against our own
			// limit: the peer would refuse a larger frame and end the link.
			if rerr := e.out.cur.refit(int(hello.MaxFrame)); rerr != nil {
				err = fmt.Errorf("%w: a message sent before the handshake: %w", ErrHandshake, rerr)
			}
		}
		e.out.maxFrame = int(hello.MaxFrame)
		e.out.enc.mismatch = mismatch
		e.out.mu.Unlock()
	}
	if err == nil {
		e.out.ack.on.Store(local.Caps&hello.Caps&CapAck != 0)
		e.dec.mismatch = mismatch
		e.mismatch = mismatch
		if e.state.CompareAndSwap(stateHandshaking, stateReady) {
			if e.spin != nil {
				// A new link's first message usually follows at once (what
				// was held until it came up, a Spawn caller's first
				// request): the first read polls for it (spinWait), and
				// backs off nothing if it waited in vain.
				e.spin.hopeForMessage()
			}
			return hello, nil
		}
		err = ErrClosed // aborted meanwhile
	}
	e.fail(err)
	e.state.Store(stateClosed)
	e.finish()
	return hello, err
}

// exchangeFrame writes a frame and reads the peer's answer at once: on an
// unbuffered stream (net.Pipe) both sides writing first would wait for each
// other forever. A failure closes the stream, which unblocks the other half.
func (e *Endpoint) exchangeFrame(t frameType, body []byte, read func() ([]byte, error)) ([]byte, error) {
	frame := appendHeader(make([]byte, 0, headerSize+len(body)), t, uint32(len(body)))
	frame = append(frame, body...)
	wrote := make(chan error, 1)
	go func() { _, err := e.conn.Write(frame); wrote <- err }()
	got, err := read()
	if err != nil {
		e.conn.Close() // unblocks a write the peer will never read
	}
	if werr := <-wrote; err == nil && werr != nil {
		err = fmt.Errorf("%w: sending %v: %w", ErrHandshake, t, werr)
	}
	return got, err
}

// readFrame reads the next frame, which must be of type t and at most limit
// bytes (refused from its header, before it is read). The body is copied:
// the reader's buffer is reused.
func (e *Endpoint) readFrame(t frameType, limit int) ([]byte, error) {
	saved := e.fr.maxFrame
	e.fr.maxFrame = limit
	got, body, _, err := e.fr.next()
	e.fr.maxFrame = saved
	if err != nil {
		return nil, fmt.Errorf("%w: reading %v: %w", ErrHandshake, t, err)
	}
	if got != t {
		return nil, fmt.Errorf("%w: got a %v frame, want %v", ErrHandshake, got, t)
	}
	return append([]byte(nil), body...), nil
}

// compareTypes runs when the two hellos carry different schema digests:
// the sides swap per-type digests, then the field lists of the types
// registered on both sides with different shapes. It returns the
// mismatches (logged once), or an error naming them under WithStrictTypes.
func (e *Endpoint) compareTypes(s *schema) (map[*typeEntry]error, error) {
	body, err := e.exchangeFrame(frameTypes, appendTypeDigests(nil, s), func() ([]byte, error) { return e.readFrame(frameTypes, maxTypesFrame) })
	if err != nil {
		return nil, err
	}
	peer, err := parseTypeDigests(body, s.digests)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	names := mismatchedTypes(s, peer)
	if len(names) == 0 {
		return nil, nil // different sets of types, the same shape for those in common
	}
	body, err = e.exchangeFrame(frameTypes, appendTypeFields(nil, s, names), func() ([]byte, error) { return e.readFrame(frameTypes, maxTypesFrame) })
	if err != nil {
		return nil, err
	}
	fields, err := parseTypeFields(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	mismatch := make(map[*typeEntry]error, len(names))
	var errs []error
	for _, name := range names {
		err := diffFields(name, s.entries[name].leavesOf(), fields[name])
		mismatch[s.entries[name]] = err
		errs = append(errs, err)
	}
	if e.cfg.strictTypes {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, errors.Join(errs...))
	}
	list := make([]string, len(errs))
	for i, err := range errs {
		list[i] = err.Error()
	}
	e.cfg.logger.Warn().Strs("types", list).Str("peer", e.peer.Address).
		Msg("mailbox: registered types differ from the peer's; their messages are dead letters")
	return mismatch, nil
}

// TypeMismatches returns, after a successful Handshake, why each registered
// type whose shape differs on the peer cannot cross (each wraps
// ErrTypeMismatch and names the type and a field that differs).
func (e *Endpoint) TypeMismatches() []error {
	var out []error
	for _, err := range e.mismatch {
		out = append(out, err)
	}
	return out
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
