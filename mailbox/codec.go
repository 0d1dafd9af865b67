package mailbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"unsafe"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Lane says how the receiving side delivers a message: as a user message
// (SendUserMessage) or a system message (SendSystemMessage). The caller sets
// it from the pa.Process method it was called through, never from the
// message's type (PoisonPill is a user message). It also decides the queue:
// the user lane is bounded, the system lane never blocks.
type Lane uint8

const (
	// LaneUser carries user messages (SendUserMessage): bounded, it pushes
	// back on its senders.
	LaneUser Lane = 0
	// LaneSystem carries system messages (SendSystemMessage, Stop): small,
	// it never blocks.
	LaneSystem Lane = 1
)

// String is "user" or "system".
func (l Lane) String() string {
	if l == LaneSystem {
		return "system"
	}
	return "user"
}

// Envelope is one message on the link.
type Envelope struct {
	Lane    Lane              // the queue it went through, kept across the link
	Target  *pa.PID           // nil only for messages to the link itself
	Sender  *pa.PID           // optional
	Header  map[string]string // optional; empty maps are not sent
	Message any               // the user's value, or a protoactor system message
	// Size is set by the receiving endpoint: the bytes the decoded message
	// was charged (see WithMaxDecoded); with WithManualRelease, the Handler
	// gives them back with Endpoint.Release once the message is processed.
	Size int64
}

// message flags, the first byte of every encoded message.
const (
	flagSystem = 1 << 0
	flagTarget = 1 << 1
	flagSender = 1 << 2
	flagHeader = 1 << 3
	flagsKnown = flagSystem | flagTarget | flagSender | flagHeader
)

// payload kinds, the byte before the payload.
const (
	kindNil       = 0 // no payload
	kindBytes     = 1 // []byte: the rest of the message
	kindString    = 2 // string: the rest of the message
	kindScalar    = 3 // reflect.Kind byte + 8 bytes little endian
	kindTyped     = 4 // symbol (type expression) + msgpack
	kindProto     = 5 // symbol (full proto name) + proto.Marshal bytes
	kindPID       = 6 // a PID
	kindTypedTags = 8 // symbol (type expression) + tag table + msgpack
	// 7 was generic msgpack (protocol version 1); it is not used.
)

// symbol reference codes: a uvarint; symNew defines the next table entry,
// symLiteral carries a string that is not interned, n >= symBase is entry n-symBase.
const (
	symNew     = 0
	symLiteral = 1
	symBase    = 2
)

// encoder turns envelopes into bytes. It keeps the sender's half of the
// per-link symbol table. Guarded by the outbox lock.
type encoder struct {
	syms     map[string]uint64
	symOrder []string
	symBytes int // bytes of all interned strings
	sink     sink
	mp       *msgpack.Encoder // for types with their own msgpack codec
	pb       proto.MarshalOptions
	depth    int                  // nesting of the value being encoded
	tags     []string             // type expressions tagged in the message being encoded
	tagBuf   []byte               // scratch for the tag table
	mismatch map[*typeEntry]error // types whose shape differs on the peer (set by the handshake)

	recent    [4]recentSym                 // the symbols used last: target and sender addresses, a type
	wtVersion uint64                       // registry version of wtCache
	wtCache   map[unsafe.Pointer]*wireType // by runtime type: no reflect.Type hashing per message
}

// recentSym is a symbol and its reference code (0: empty).
type recentSym struct {
	s string
	n uint64
}

// maxWireTypeCache bounds an encoder's cache of wire types.
const maxWireTypeCache = 1024

// wireTypeOf returns the wire type of m's dynamic type, from the encoder's
// cache when it can.
func (e *encoder) wireTypeOf(m any) *wireType {
	if v := registry.Load().version; v != e.wtVersion || e.wtCache == nil {
		e.wtCache, e.wtVersion = make(map[unsafe.Pointer]*wireType), v
	}
	k := (*eface)(unsafe.Pointer(&m)).typ
	if wt := e.wtCache[k]; wt != nil {
		return wt
	}
	wt := wireTypeOf(reflect.TypeOf(m))
	if len(e.wtCache) < maxWireTypeCache {
		e.wtCache[k] = wt
	}
	return wt
}

// sink is the msgpack encoder's writer: it appends to the batch buffer and
// carries the node address used to rewrite "nonhost" PIDs.
type sink struct {
	buf          []byte
	localAddress string
}

func (s *sink) Write(p []byte) (int, error)       { s.buf = append(s.buf, p...); return len(p), nil }
func (s *sink) WriteString(p string) (int, error) { s.buf = append(s.buf, p...); return len(p), nil }
func (s *sink) WriteByte(c byte) error            { s.buf = append(s.buf, c); return nil }

func newEncoder(localAddress string) *encoder {
	e := &encoder{syms: make(map[string]uint64)}
	e.sink.localAddress = localAddress
	e.mp = msgpack.NewEncoder(&e.sink)
	return e
}

// mark is a rollback point for a message whose encoding fails.
func (e *encoder) mark() int { return len(e.symOrder) }

func (e *encoder) rollback(m int) {
	e.recent = [len(e.recent)]recentSym{}
	for _, s := range e.symOrder[m:] {
		delete(e.syms, s)
		e.symBytes -= len(s)
	}
	e.symOrder = e.symOrder[:m]
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (e *encoder) appendSymbol(b []byte, s string) []byte {
	for i := range e.recent {
		if r := &e.recent[i]; r.n != 0 && r.s == s {
			return binary.AppendUvarint(b, r.n)
		}
	}
	if n, ok := e.syms[s]; ok {
		copy(e.recent[1:], e.recent[:])
		e.recent[0] = recentSym{s, n}
		return binary.AppendUvarint(b, n)
	}
	if len(e.symOrder) >= maxSymbols || len(s) > maxSymbolLen || e.symBytes+len(s) > maxSymbolBytes {
		b = append(b, symLiteral)
		return appendString(b, s)
	}
	e.symBytes += len(s)
	e.syms[s] = uint64(len(e.symOrder)) + symBase
	e.symOrder = append(e.symOrder, s)
	b = append(b, symNew)
	return appendString(b, s)
}

func (e *encoder) appendPID(b []byte, p *pa.PID) []byte {
	b = e.appendSymbol(b, e.address(p.Address))
	b = appendString(b, p.Id)
	return binary.AppendUvarint(b, uint64(p.RequestId))
}

// nonhost is protoactor's address for "this system" before one is set.
const nonhost = "nonhost"

// appendEnvelope encodes env (without the length prefix) onto b. A large
// []byte payload is not copied: it is returned as extern, to be written after
// the returned bytes. On error b may hold garbage past its original length;
// the caller truncates it and calls rollback.
func (e *encoder) appendEnvelope(b []byte, env *Envelope) (out []byte, extern []byte, err error) {
	var flags byte
	if env.Lane == LaneSystem {
		flags |= flagSystem
	}
	if env.Target != nil {
		flags |= flagTarget
	}
	if env.Sender != nil {
		flags |= flagSender
	}
	if len(env.Header) > 0 {
		flags |= flagHeader
	}
	b = append(b, flags)
	if env.Target != nil {
		b = e.appendPID(b, env.Target)
	}
	if env.Sender != nil {
		b = e.appendPID(b, env.Sender)
	}
	if len(env.Header) > 0 {
		b = binary.AppendUvarint(b, uint64(len(env.Header)))
		for k, v := range env.Header {
			b = appendString(b, k)
			b = appendString(b, v)
		}
	}
	return e.appendPayload(b, env.Message)
}

func (e *encoder) appendPayload(b []byte, m any) ([]byte, []byte, error) {
	switch v := m.(type) {
	case nil:
		return append(b, kindNil), nil, nil
	case []byte:
		b = append(b, kindBytes)
		if len(v) >= externThreshold {
			return b, v, nil
		}
		return append(b, v...), nil, nil
	case string:
		b = append(b, kindString)
		return append(b, v...), nil, nil
	case *pa.PID:
		if v == nil {
			return append(b, kindNil), nil, nil
		}
		b = append(b, kindPID)
		return e.appendPID(b, v), nil, nil
	case int:
		return appendScalar(b, reflect.Int, uint64(v)), nil, nil
	case int8:
		return appendScalar(b, reflect.Int8, uint64(v)), nil, nil
	case int16:
		return appendScalar(b, reflect.Int16, uint64(v)), nil, nil
	case int32:
		return appendScalar(b, reflect.Int32, uint64(v)), nil, nil
	case int64:
		return appendScalar(b, reflect.Int64, uint64(v)), nil, nil
	case uint:
		return appendScalar(b, reflect.Uint, uint64(v)), nil, nil
	case uint8:
		return appendScalar(b, reflect.Uint8, uint64(v)), nil, nil
	case uint16:
		return appendScalar(b, reflect.Uint16, uint64(v)), nil, nil
	case uint32:
		return appendScalar(b, reflect.Uint32, uint64(v)), nil, nil
	case uint64:
		return appendScalar(b, reflect.Uint64, v), nil, nil
	case float32:
		return appendScalar(b, reflect.Float32, uint64(math.Float32bits(v))), nil, nil
	case float64:
		return appendScalar(b, reflect.Float64, math.Float64bits(v)), nil, nil
	case bool:
		var x uint64
		if v {
			x = 1
		}
		return appendScalar(b, reflect.Bool, x), nil, nil
	}
	wt := e.wireTypeOf(m)
	if wt.proto {
		pm := m.(proto.Message)
		b = append(b, kindProto)
		b = e.appendSymbol(b, string(pm.ProtoReflect().Descriptor().FullName()))
		out, err := e.pb.MarshalAppend(b, e.rewriteProto(pm))
		if err != nil {
			return b, nil, fmt.Errorf("%w: %T: %w", ErrEncode, m, err)
		}
		return out, nil, nil
	}
	if wt.err != nil {
		err, ok := m.(error)
		if !ok {
			return b, nil, wt.err
		}
		// An error of a type nobody registered crosses as a RemoteError.
		b = append(b, kindTyped)
		b = e.appendSymbol(b, "error")
		return e.appendRemoteError(b, err), nil, nil
	}
	if err := e.checkMismatch(wt); err != nil {
		return b, nil, err
	}
	kindAt := len(b)
	b = append(b, kindTyped)
	b = e.appendSymbol(b, wt.name)
	bodyAt := len(b)
	e.depth, e.tags = 0, e.tags[:0]
	b, err := e.appendValue(b, wt.codec, m)
	if err != nil {
		if errors.Is(err, ErrTypeNotRegistered) || errors.Is(err, ErrTypeMismatch) {
			return b, nil, fmt.Errorf("%w, in a %s", err, wt.name)
		}
		return b, nil, fmt.Errorf("%w: %s: %w", ErrEncode, wt.name, err)
	}
	if len(e.tags) > 0 {
		b = e.insertTagTable(b, kindAt, bodyAt)
	}
	return b, nil, nil
}

// insertTagTable puts the message's tag table (a count, then a symbol per
// type expression tagged in the body) between the type symbol and the body.
func (e *encoder) insertTagTable(b []byte, kindAt, bodyAt int) []byte {
	t := binary.AppendUvarint(e.tagBuf[:0], uint64(len(e.tags)))
	for _, name := range e.tags {
		t = e.appendSymbol(t, name)
	}
	e.tagBuf = t
	b[kindAt] = kindTypedTags
	n := len(b)
	b = append(b, t...)
	copy(b[bodyAt+len(t):], b[bodyAt:n])
	copy(b[bodyAt:], t)
	return b
}

// checkMismatch refuses a value whose type names a registered type whose
// shape differs on the peer.
func (e *encoder) checkMismatch(wt *wireType) error {
	if e.mismatch == nil {
		return nil
	}
	for _, a := range wt.atoms {
		if err := e.mismatch[a]; err != nil {
			return fmt.Errorf("%w: %w", ErrEncode, err) // the message's fault, not the link's
		}
	}
	return nil
}

func appendScalar(b []byte, k reflect.Kind, bits uint64) []byte {
	b = append(b, kindScalar, byte(k))
	return binary.LittleEndian.AppendUint64(b, bits)
}

// rewriteProto returns m, or a shallow copy of it whose PID carries the local
// address when the PID of protoactor's system message m says "nonhost": a
// Watch whose watcher arrived as "nonhost" would send the Terminated back to
// the receiving node itself. The caller's message is never modified.
func (e *encoder) rewriteProto(m proto.Message) proto.Message {
	if e.sink.localAddress == "" {
		return m
	}
	switch v := m.(type) {
	case *pa.Watch:
		if p := e.rewritePID(v.Watcher); p != v.Watcher {
			return &pa.Watch{Watcher: p}
		}
	case *pa.Unwatch:
		if p := e.rewritePID(v.Watcher); p != v.Watcher {
			return &pa.Unwatch{Watcher: p}
		}
	case *pa.Terminated:
		if p := e.rewritePID(v.Who); p != v.Who {
			return &pa.Terminated{Who: p, Why: v.Why}
		}
	case *pa.DeadLetterResponse:
		if p := e.rewritePID(v.Target); p != v.Target {
			return &pa.DeadLetterResponse{Target: p}
		}
	}
	return m
}

func (e *encoder) rewritePID(p *pa.PID) *pa.PID {
	if p == nil || p.Address != nonhost {
		return p
	}
	return &pa.PID{Address: e.sink.localAddress, Id: p.Id, RequestId: p.RequestId}
}

// decoder turns bytes into envelopes. It keeps the receiver's half of the
// per-link symbol table. Used by the reader goroutine only.
type decoder struct {
	syms       []*symbol
	symBytes   int // bytes of all interned strings
	cachedPIDs int // PIDs cached over all symbols
	br         bytes.Reader
	mp         *msgpack.Decoder // for types with their own msgpack codec

	// The payload being decoded.
	r        mpReader
	tags     []*symbol // the message's tag table
	budget   int64     // bytes the payload may decode to
	charged  int64     // bytes charged so far
	depth    int
	checked  int                  // offset from which r.b passed checkMsgpack; -1 if none
	maxBytes int64                // bytes this message may decode to at most, beyond the factor (0: no limit)
	size     int64                // bytes the last payload was charged
	mismatch map[*typeEntry]error // types whose shape differs on the peer (set by the handshake)
}

// symbol is an interned string with what the reader learnt about it.
type symbol struct {
	s     string
	wt    *wireType // the type expression it names (resolved lazily)
	err   error     // why it names no type here
	proto protoreflect.MessageType
	pids  map[string]*pa.PID // PIDs at this address, shared between messages
}

// maxCachedPIDs bounds a link's cache of decoded PIDs, and maxCachedIDLen
// the ids it keeps: a hostile peer cannot pin memory with them.
const (
	maxCachedPIDs  = 4096
	maxCachedIDLen = 256
)

// maxHeaderHint bounds the map allocated for an envelope header before its
// entries are read: the count on the wire is not trusted for more.
const maxHeaderHint = 16

func newDecoder() *decoder {
	d := &decoder{}
	d.mp = msgpack.NewDecoder(&d.br)
	return d
}

// cursor reads a message. Errors are sticky; the first one wins.
type cursor struct {
	b   []byte
	err error
}

func (c *cursor) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
	}
}

func (c *cursor) byte() byte {
	if c.err != nil {
		return 0
	}
	if len(c.b) < 1 {
		c.fail("message truncated")
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) uvarint() uint64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.fail("bad varint")
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) bytes() []byte {
	n := c.uvarint()
	if c.err != nil {
		return nil
	}
	if n > uint64(len(c.b)) {
		c.fail("string of %d bytes overruns message (%d left)", n, len(c.b))
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (d *decoder) symbol(c *cursor) *symbol {
	code := c.uvarint()
	switch {
	case c.err != nil:
		return nil
	case code == symNew:
		s := c.bytes()
		if c.err != nil {
			return nil
		}
		if len(d.syms) >= maxSymbols || len(s) > maxSymbolLen || d.symBytes+len(s) > maxSymbolBytes {
			c.fail("symbol table over its bounds (%d symbols, %d bytes, one of %d)", len(d.syms), d.symBytes, len(s))
			return nil
		}
		d.symBytes += len(s)
		sym := &symbol{s: string(s)}
		d.syms = append(d.syms, sym)
		return sym
	case code == symLiteral:
		s := c.bytes()
		if c.err != nil {
			return nil
		}
		return &symbol{s: string(s)}
	}
	i := code - symBase
	if i >= uint64(len(d.syms)) {
		c.fail("symbol %d not defined (%d known)", i, len(d.syms))
		return nil
	}
	return d.syms[i]
}

func (d *decoder) pid(c *cursor) *pa.PID {
	sym := d.symbol(c)
	id := c.bytes()
	req := c.uvarint()
	if c.err != nil {
		return nil
	}
	if req > math.MaxUint32 {
		c.fail("request id %d overflows", req)
		return nil
	}
	if req == 0 {
		if p, ok := sym.pids[string(id)]; ok {
			return p
		}
	}
	p := &pa.PID{Address: sym.s, Id: string(id), RequestId: uint32(req)}
	if req == 0 && len(id) <= maxCachedIDLen {
		if d.cachedPIDs >= maxCachedPIDs { // bound the whole link's cache, not each address's
			for _, s := range d.syms {
				s.pids = nil
			}
			d.cachedPIDs = 0
		}
		if sym.pids == nil {
			sym.pids = make(map[string]*pa.PID)
		}
		sym.pids[p.Id] = p
		d.cachedPIDs++
	}
	return p
}

// decodeEnvelope decodes one message into env. A non-nil fatal error means
// the bytes break the wire format (the link must close); a non-nil bad error
// means only this message is lost (deliver it as a dead letter, with env
// holding whatever was decoded). owned says msg has memory of its own that
// a []byte payload may alias.
func (d *decoder) decodeEnvelope(msg []byte, owned bool, env *Envelope) (bad, fatal error) {
	*env = Envelope{}
	c := cursor{b: msg}
	flags := c.byte()
	if c.err == nil && flags&^flagsKnown != 0 {
		c.fail("unknown message flags %#x", flags)
	}
	if flags&flagSystem != 0 {
		env.Lane = LaneSystem
	}
	if flags&flagTarget != 0 {
		env.Target = d.pid(&c)
	}
	if flags&flagSender != 0 {
		env.Sender = d.pid(&c)
	}
	if flags&flagHeader != 0 {
		n := c.uvarint()
		if n > uint64(len(c.b))/2 { // each entry takes at least two bytes
			c.fail("header of %d entries overruns message", n)
		}
		if c.err == nil {
			env.Header = make(map[string]string, min(n, maxHeaderHint))
			for i := uint64(0); i < n && c.err == nil; i++ {
				k, v := c.bytes(), c.bytes()
				if c.err == nil {
					env.Header[string(k)] = string(v)
				}
			}
		}
	}
	kind := c.byte()
	if c.err != nil {
		return nil, c.err
	}
	var sym *symbol
	if kind == kindTyped || kind == kindTypedTags || kind == kindProto {
		if sym = d.symbol(&c); c.err != nil {
			return nil, c.err
		}
	}
	if d.tagTable(kind, &c); c.err != nil {
		return nil, c.err
	}
	defer func() {
		if r := recover(); r != nil {
			env.Message = nil
			bad = fmt.Errorf("%w: decoder panicked: %v", ErrDecode, r)
		}
	}()
	d.size = 0
	env.Message, bad = d.payload(kind, sym, c.b, owned)
	env.Size = d.size
	return bad, nil
}

func (d *decoder) payload(kind byte, sym *symbol, b []byte, owned bool) (any, error) {
	switch kind {
	case kindBytes, kindString, kindProto:
		d.size = int64(len(b))
		if kind == kindProto {
			d.size *= 2 // the message's structs, about as large as its bytes
		}
		if d.maxBytes > 0 && d.size > d.maxBytes {
			return nil, fmt.Errorf("%w: %w: %d bytes, %d left of the link's bound", ErrDecode, ErrDecodeLimit, d.size, d.maxBytes)
		}
	}
	switch kind {
	case kindNil:
		if len(b) != 0 {
			return nil, fmt.Errorf("%w: %d stray bytes after nil", ErrDecode, len(b))
		}
		return nil, nil
	case kindBytes:
		if owned {
			return b[:len(b):len(b)], nil
		}
		return bytes.Clone(b), nil
	case kindString:
		return string(b), nil
	case kindScalar:
		return decodeScalar(b)
	case kindPID:
		c := cursor{b: b}
		p := d.pid(&c)
		if c.err == nil && len(c.b) != 0 {
			c.fail("%d stray bytes after pid", len(c.b))
		}
		if c.err != nil {
			return nil, fmt.Errorf("%w: pid: %w", ErrDecode, c.err)
		}
		return p, nil
	case kindTyped, kindTypedTags:
		return d.typed(sym, b)
	case kindProto:
		if sym.proto == nil {
			mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(sym.s))
			if err != nil || mt == nil {
				return nil, fmt.Errorf("%w: proto %q", ErrUnknownType, sym.s)
			}
			sym.proto = mt
		}
		m := sym.proto.New().Interface()
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, fmt.Errorf("%w: proto %s: %w", ErrDecode, sym.s, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: unknown payload kind %d", ErrDecode, kind)
}

// tagTable reads the tag table of a kindTypedTags payload into d.tags. A
// malformed one breaks the wire format: its symbols keep the link's table
// in step.
func (d *decoder) tagTable(kind byte, c *cursor) {
	d.tags = d.tags[:0]
	if kind != kindTypedTags {
		return
	}
	n := c.uvarint()
	if c.err == nil && n > uint64(len(c.b)) {
		c.fail("tag table of %d overruns the message", n)
	}
	for i := uint64(0); i < n && c.err == nil; i++ {
		d.tags = append(d.tags, d.symbol(c))
	}
}

// typed decodes a payload of kindTyped or kindTypedTags (its tag table
// read by tagTable) within the payload's budget.
func (d *decoder) typed(sym *symbol, b []byte) (any, error) {
	c := cursor{b: b}
	wt, err := d.resolve(sym)
	if err != nil {
		return nil, err
	}
	d.r = mpReader{b: c.b}
	d.checked, d.depth, d.charged = -1, 0, 0
	d.budget = MaxDecodeFactor*int64(len(c.b)) + DecodeAllowance
	if d.maxBytes > 0 && d.budget > d.maxBytes {
		d.budget = d.maxBytes
	}
	v, err := d.decodeTop(wt)
	if err == nil && d.r.left() != 0 {
		err = fmt.Errorf("%d stray bytes", d.r.left())
	}
	d.size = d.charged
	d.r = mpReader{}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDecode, sym.s, err)
	}
	return v, nil
}

// resolve returns the type a symbol names, resolving it once per link.
func (d *decoder) resolve(sym *symbol) (*wireType, error) {
	if sym.wt == nil && sym.err == nil {
		if sym.s == "error" {
			sym.wt = &wireType{typ: errorType, name: "error"}
		} else {
			sym.wt, sym.err = parseTypeExpr(sym.s)
		}
	}
	if sym.err != nil {
		return nil, sym.err
	}
	if d.mismatch != nil {
		for _, a := range sym.wt.atoms {
			if err := d.mismatch[a]; err != nil {
				return nil, err
			}
		}
	}
	return sym.wt, nil
}

// decodeAnyMap decodes a map inside an interface value: map[string]any when
// every key is a string (msgpack's default), map[any]any otherwise, where
// msgpack's default would fail.
func decodeAnyMap(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		return nil, err
	}
	sm := make(map[string]any, min(n, 16))
	var am map[any]any
	for range n {
		k, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		v, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		if am == nil {
			if ks, ok := k.(string); ok {
				sm[ks] = v
				continue
			}
			am = make(map[any]any, max(len(sm), min(n, 16)))
			for ks, v := range sm {
				am[ks] = v
			}
		}
		if k != nil && !reflect.TypeOf(k).Comparable() {
			return nil, fmt.Errorf("map key of type %T", k)
		}
		am[k] = v
	}
	if am != nil {
		return am, nil
	}
	return sm, nil
}

func decodeScalar(b []byte) (any, error) {
	if len(b) != 9 {
		return nil, fmt.Errorf("%w: scalar of %d bytes, want 9", ErrDecode, len(b))
	}
	x := binary.LittleEndian.Uint64(b[1:])
	switch reflect.Kind(b[0]) {
	case reflect.Int:
		return int(x), nil
	case reflect.Int8:
		return int8(x), nil
	case reflect.Int16:
		return int16(x), nil
	case reflect.Int32:
		return int32(x), nil
	case reflect.Int64:
		return int64(x), nil
	case reflect.Uint:
		return uint(x), nil
	case reflect.Uint8:
		return uint8(x), nil
	case reflect.Uint16:
		return uint16(x), nil
	case reflect.Uint32:
		return uint32(x), nil
	case reflect.Uint64:
		return x, nil
	case reflect.Float32:
		return math.Float32frombits(uint32(x)), nil
	case reflect.Float64:
		return math.Float64frombits(x), nil
	case reflect.Bool:
		return x != 0, nil
	}
	return nil, fmt.Errorf("%w: scalar kind %d", ErrDecode, b[0])
}

// PIDs nested in msgpack values (struct fields, slices) use a hand-written
// codec: an array [address, id, requestId], or nil. Registering the value type
// makes msgpack use it for *pa.PID too (with nil handled by msgpack).
func init() {
	msgpack.Register(pa.PID{}, encodePIDValue, decodePIDValue)
}

func encodePIDValue(enc *msgpack.Encoder, v reflect.Value) error {
	var addr, id string
	var req uint32
	if v.CanAddr() {
		p := v.Addr().Interface().(*pa.PID)
		addr, id, req = p.Address, p.Id, p.RequestId
	} else {
		addr, id, req = v.FieldByName("Address").String(), v.FieldByName("Id").String(), uint32(v.FieldByName("RequestId").Uint())
	}
	if s, ok := enc.Writer().(*sink); ok && addr == nonhost && s.localAddress != "" {
		addr = s.localAddress
	}
	if err := enc.EncodeArrayLen(3); err != nil {
		return err
	}
	if err := enc.EncodeString(addr); err != nil {
		return err
	}
	if err := enc.EncodeString(id); err != nil {
		return err
	}
	return enc.EncodeUint32(req)
}

func decodePIDValue(dec *msgpack.Decoder, v reflect.Value) error {
	if c, err := dec.PeekCode(); err == nil && c == msgpcode.Nil {
		return dec.DecodeNil()
	}
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 3 {
		return fmt.Errorf("pid: array of %d, want 3", n)
	}
	addr, err := dec.DecodeString()
	if err != nil {
		return err
	}
	id, err := dec.DecodeString()
	if err != nil {
		return err
	}
	req, err := dec.DecodeUint32()
	if err != nil {
		return err
	}
	if !v.CanAddr() {
		return fmt.Errorf("pid: cannot decode into unaddressable %v", v.Type())
	}
	p := v.Addr().Interface().(*pa.PID)
	p.Address, p.Id, p.RequestId = addr, id, req
	return nil
}
