package mailbox

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Lane says how the receiving side delivers a message: as a user message
// (SendUserMessage) or a system message (SendSystemMessage). The caller sets
// it from the actor.Process method it was called through, never from the
// message's type (PoisonPill is a user message). It also decides the queue:
// the user lane is bounded, the system lane never blocks.
type Lane uint8

const (
	LaneUser   Lane = 0
	LaneSystem Lane = 1
)

func (l Lane) String() string {
	if l == LaneSystem {
		return "system"
	}
	return "user"
}

// Envelope is one message on the link.
type Envelope struct {
	Lane    Lane
	Target  *actor.PID        // nil only for messages to the link itself
	Sender  *actor.PID        // optional
	Header  map[string]string // optional; empty maps are not sent
	Message any
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
	kindNil        = 0 // no payload
	kindBytes      = 1 // []byte: the rest of the message
	kindString     = 2 // string: the rest of the message
	kindScalar     = 3 // reflect.Kind byte + 8 bytes little endian
	kindRegistered = 4 // symbol (type name) + msgpack
	kindProto      = 5 // symbol (full proto name) + proto.Marshal bytes
	kindPID        = 6 // a PID
	kindMsgpack    = 7 // an unregistered map or slice: generic msgpack
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
	mp       *msgpack.Encoder
	pb       proto.MarshalOptions
}

// sink is the msgpack encoder's writer: it appends to the batch buffer and
// carries the node address used to rewrite "nonhost" PIDs. It holds the
// slice itself, not a pointer to the caller's: taking the address of the
// caller's slice would move it to the heap on every call.
type sink struct {
	buf          []byte
	localAddress string
}

func (s *sink) Write(p []byte) (int, error)       { s.buf = append(s.buf, p...); return len(p), nil }
func (s *sink) WriteString(p string) (int, error) { s.buf = append(s.buf, p...); return len(p), nil }
func (s *sink) WriteByte(c byte) error            { s.buf = append(s.buf, c); return nil }

// encodeMsgpack appends the msgpack encoding of v to b.
func (e *encoder) encodeMsgpack(b []byte, v any) ([]byte, error) {
	e.sink.buf = b
	err := e.mp.Encode(v)
	b, e.sink.buf = e.sink.buf, nil
	return b, err
}

func newEncoder(localAddress string) *encoder {
	e := &encoder{syms: make(map[string]uint64)}
	e.sink.localAddress = localAddress
	e.mp = msgpack.NewEncoder(&e.sink)
	return e
}

// mark is a rollback point for a message whose encoding fails.
func (e *encoder) mark() int { return len(e.symOrder) }

func (e *encoder) rollback(m int) {
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
	if n, ok := e.syms[s]; ok {
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

func (e *encoder) address(a string) string {
	if a == nonhost && e.sink.localAddress != "" {
		return e.sink.localAddress
	}
	return a
}

func (e *encoder) appendPID(b []byte, p *actor.PID) []byte {
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
	case *actor.PID:
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
	t := reflect.TypeOf(m)
	if te := lookupType(t); te != nil {
		b = append(b, kindRegistered)
		b = e.appendSymbol(b, te.name)
		b, err := e.encodeMsgpack(b, m)
		if err != nil {
			return b, nil, fmt.Errorf("%w: %s: %w", ErrEncode, te.name, err)
		}
		return b, nil, nil
	}
	if pm, ok := m.(proto.Message); ok {
		b = append(b, kindProto)
		b = e.appendSymbol(b, string(pm.ProtoReflect().Descriptor().FullName()))
		out, err := e.pb.MarshalAppend(b, e.rewriteProto(pm))
		if err != nil {
			return b, nil, fmt.Errorf("%w: %T: %w", ErrEncode, m, err)
		}
		return out, nil, nil
	}
	// Unregistered maps, slices and arrays travel as generic msgpack and
	// arrive as map[string]any (string keys), map[any]any (other keys) or
	// []any, holding what msgpack decodes into an interface (int8 for a small
	// int, for example). Register the type to get it back exactly.
	if k := t.Kind(); k == reflect.Map || k == reflect.Slice || k == reflect.Array {
		b = append(b, kindMsgpack)
		b, err := e.encodeMsgpack(b, m)
		if err != nil {
			return b, nil, fmt.Errorf("%w: %T: %w", ErrEncode, m, err)
		}
		return b, nil, nil
	}
	return b, nil, fmt.Errorf("%w: %T (call mailbox.RegisterType from init)", ErrTypeNotRegistered, m)
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
	case *actor.Watch:
		if p := e.rewritePID(v.Watcher); p != v.Watcher {
			return &actor.Watch{Watcher: p}
		}
	case *actor.Unwatch:
		if p := e.rewritePID(v.Watcher); p != v.Watcher {
			return &actor.Unwatch{Watcher: p}
		}
	case *actor.Terminated:
		if p := e.rewritePID(v.Who); p != v.Who {
			return &actor.Terminated{Who: p, Why: v.Why}
		}
	case *actor.DeadLetterResponse:
		if p := e.rewritePID(v.Target); p != v.Target {
			return &actor.DeadLetterResponse{Target: p}
		}
	}
	return m
}

func (e *encoder) rewritePID(p *actor.PID) *actor.PID {
	if p == nil || p.Address != nonhost {
		return p
	}
	return &actor.PID{Address: e.sink.localAddress, Id: p.Id, RequestId: p.RequestId}
}

// decoder turns bytes into envelopes. It keeps the receiver's half of the
// per-link symbol table. Used by the reader goroutine only.
type decoder struct {
	syms       []*symbol
	symBytes   int // bytes of all interned strings
	cachedPIDs int // PIDs cached over all symbols
	br         bytes.Reader
	mp         *msgpack.Decoder
}

// symbol is an interned string with what the reader learnt about it.
type symbol struct {
	s     string
	entry *typeEntry // registered type by this name (resolved lazily)
	proto protoreflect.MessageType
	pids  map[string]*actor.PID // PIDs at this address, shared between messages
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

func (d *decoder) pid(c *cursor) *actor.PID {
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
	p := &actor.PID{Address: sym.s, Id: string(id), RequestId: uint32(req)}
	if req == 0 && len(id) <= maxCachedIDLen {
		if d.cachedPIDs >= maxCachedPIDs { // bound the whole link's cache, not each address's
			for _, s := range d.syms {
				s.pids = nil
			}
			d.cachedPIDs = 0
		}
		if sym.pids == nil {
			sym.pids = make(map[string]*actor.PID)
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
	if kind == kindRegistered || kind == kindProto {
		if sym = d.symbol(&c); c.err != nil {
			return nil, c.err
		}
	}
	defer func() {
		if r := recover(); r != nil {
			env.Message = nil
			bad = fmt.Errorf("%w: decoder panicked: %v", ErrDecode, r)
		}
	}()
	env.Message, bad = d.payload(kind, sym, c.b, owned)
	return bad, nil
}

func (d *decoder) payload(kind byte, sym *symbol, b []byte, owned bool) (any, error) {
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
		return cloneBoxed(b), nil // box.go: bytes and header in one allocation
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
	case kindRegistered:
		if sym.entry == nil {
			sym.entry = lookupName(sym.s)
			if sym.entry == nil {
				return nil, fmt.Errorf("%w: %q", ErrUnknownType, sym.s)
			}
		}
		if err := d.reset(b); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrDecode, sym.s, err)
		}
		v, err := sym.entry.decode(d.mp)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrDecode, sym.s, err)
		}
		if d.br.Len() != 0 {
			return nil, fmt.Errorf("%w: %s: %d stray bytes", ErrDecode, sym.s, d.br.Len())
		}
		return v, nil
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
	case kindMsgpack:
		if err := d.reset(b); err != nil {
			return nil, fmt.Errorf("%w: msgpack: %w", ErrDecode, err)
		}
		v, err := d.mp.DecodeInterface()
		if err != nil {
			return nil, fmt.Errorf("%w: msgpack: %w", ErrDecode, err)
		}
		if d.br.Len() != 0 {
			return nil, fmt.Errorf("%w: msgpack: %d stray bytes", ErrDecode, d.br.Len())
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: unknown payload kind %d", ErrDecode, kind)
}

// reset points the msgpack decoder at b after checking that b is well-formed
// msgpack whose announced lengths fit in b and whose nesting is bounded:
// msgpack itself allocates what a length announces and recurses per level,
// so a hostile length or depth would exhaust memory or the stack, neither of
// which a recover can catch.
func (d *decoder) reset(b []byte) error {
	if err := checkMsgpack(b); err != nil {
		return err
	}
	d.br.Reset(b)
	d.mp.ResetReader(&d.br)
	d.mp.SetMapDecoder(decodeAnyMap)
	return nil
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
// makes msgpack use it for *actor.PID too (with nil handled by msgpack).
func init() {
	msgpack.Register(actor.PID{}, encodePIDValue, decodePIDValue)
}

func encodePIDValue(enc *msgpack.Encoder, v reflect.Value) error {
	var addr, id string
	var req uint32
	if v.CanAddr() {
		p := v.Addr().Interface().(*actor.PID)
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
	p := v.Addr().Interface().(*actor.PID)
	p.Address, p.Id, p.RequestId = addr, id, req
	return nil
}
