package mailbox

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// decoder turns bytes into envelopes. It keeps the receiver's half of the
// per-link symbol table. Used by the reader goroutine only.
type decoder struct {
	syms       []*symbol
	symBytes   int // bytes of all interned strings
	cachedPIDs int // PIDs cached over all symbols
	addedExprs int // type expressions this link added to the process's table (maxLinkTypeExprs)
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

	spare spare // the memory of the next mid-sized []byte payload (spare.go)

	untrusted bool // the peer's additions come out of the untrusted share (WithUntrustedPeer)
}

// symbol is an interned string with what the reader learnt about it.
type symbol struct {
	s     string
	wt    *wireType // the type expression it names (resolved lazily)
	err   error     // why it names no type here
	proto protoreflect.MessageType
	pids  map[string]*pa.PID // PIDs at this address, shared between messages
	last  *pa.PID            // the one of pids decoded last
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
	if len(c.b) > 0 && c.b[0] < 0x80 { // most lengths and codes: one byte
		v := c.b[0]
		c.b = c.b[1:]
		return uint64(v)
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
	var headerCost int64 // what the header took, charged with the payload
	var headerBad error  // the header would pass the bound: the message is a dead letter
	if flags&flagHeader != 0 {
		headerCost, headerBad = d.header(&c, env)
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
	d.size = 0
	maxBytes := d.maxBytes
	if maxBytes > 0 {
		d.maxBytes = max(1, maxBytes-headerCost)
	}
	if kind == kindTyped || kind == kindTypedTags || kind == kindProto {
		env.Message, bad = d.guardedPayload(kind, sym, c.b, owned)
	} else {
		env.Message, bad = d.payload(kind, sym, c.b, owned)
	}
	d.maxBytes = maxBytes
	env.Size = d.size + headerCost
	if headerBad != nil {
		// The payload was decoded all the same (within its own budget), so
		// that the symbols it defines keep the link's table in step.
		env.Message, bad = nil, headerBad
	}
	return bad, nil
}

// header reads an envelope's header into env.Header and returns what it
// costs decoded. Its entries are charged before the map is built, like a
// payload's (MaxDecodeFactor times their bytes plus DecodeAllowance, within
// what is left of the link's bound): past that, the header is skipped and
// bad says why.
func (d *decoder) header(c *cursor, env *Envelope) (cost int64, bad error) {
	n := c.uvarint()
	if n > uint64(len(c.b))/2 { // each entry takes at least two bytes
		c.fail("header of %d entries overruns message", n)
	}
	if c.err != nil {
		return 0, nil
	}
	pre := *c
	for i := uint64(0); i < n && pre.err == nil; i++ {
		k, v := pre.bytes(), pre.bytes()
		cost += int64(len(k)+len(v)) + mapEntryCost(32) // two string headers
	}
	if pre.err != nil {
		c.err = pre.err
		return 0, nil
	}
	if budget := d.payloadBudget(len(c.b) - len(pre.b)); cost > budget {
		c.b = pre.b
		return 0, fmt.Errorf("%w: %w: header of %d entries decodes to %d bytes, more than %d", ErrDecode, ErrDecodeLimit, n, cost, budget)
	}
	env.Header = make(map[string]string, min(n, maxHeaderHint))
	for range n {
		k, v := c.bytes(), c.bytes()
		env.Header[string(k)] = string(v)
	}
	return cost, nil
}

// guardedPayload decodes a payload whose decoding runs code that is not
// ours (msgpack's reflection, a type's own decoder, protobuf), which may
// panic on hostile input: the panic fails this message alone. The other
// kinds are decoded by this file's own bounds-checked code, without the
// cost of a deferred recover per message.
func (d *decoder) guardedPayload(kind byte, sym *symbol, b []byte, owned bool) (msg any, bad error) {
	defer func() {
		if r := recover(); r != nil {
			msg = nil
			bad = fmt.Errorf("%w: decoder panicked: %v", ErrDecode, r)
		}
	}()
	return d.payload(kind, sym, b, owned)
}

func (d *decoder) payload(kind byte, sym *symbol, b []byte, owned bool) (any, error) {
	switch kind {
	case kindBytes, kindString:
		d.size = int64(len(b))
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
		return d.spare.clone(b), nil // bytes and header in one allocation (box.go, spare.go)
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
		md := sym.proto.Descriptor()
		cost, err := protoCost(md, b)
		if err != nil {
			return nil, fmt.Errorf("%w: proto %s: %w", ErrDecode, sym.s, err)
		}
		d.size = protoStructSize(md) + cost
		if budget := d.payloadBudget(len(b)); d.size > budget {
			return nil, fmt.Errorf("%w: proto %s: %w: decodes to %d bytes, more than %d", ErrDecode, sym.s, ErrDecodeLimit, d.size, budget)
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
	d.budget = d.payloadBudget(len(c.b))
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

// payloadBudget is what a payload of n bytes may decode to: MaxDecodeFactor
// times its size plus DecodeAllowance, within what is left of the link's
// bound.
func (d *decoder) payloadBudget(n int) int64 {
	budget := MaxDecodeFactor*int64(n) + DecodeAllowance
	if d.maxBytes > 0 && budget > d.maxBytes {
		budget = d.maxBytes
	}
	return budget
}

// resolve returns the type a symbol names, resolving it once per link.
func (d *decoder) resolve(sym *symbol) (*wireType, error) {
	if sym.wt == nil && sym.err == nil {
		if sym.s == "error" {
			sym.wt = &wireType{typ: errorType, name: "error"}
		} else {
			sym.wt, sym.err = parseTypeExpr(sym.s, &d.addedExprs, d.untrusted)
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
	return collectAnyMap(n, min(n, 16), d.DecodeInterface, nil)
}

// collectAnyMap reads n key/value pairs with next: map[string]any when
// every key is a string, map[any]any otherwise (sized by hint). A key that
// cannot be a map key (a slice, a map) is an error, not a panic. The
// map[string]any is made at the first string key; when a key that is not
// a string follows one, second (if not nil) is called before the
// map[any]any is made too.
func collectAnyMap(n, hint int, next func() (any, error), second func() error) (any, error) {
	var sm map[string]any
	var am map[any]any
	for i := range n {
		k, err := next()
		if err != nil {
			return nil, err
		}
		v, err := next()
		if err != nil {
			return nil, err
		}
		if am == nil {
			if ks, ok := k.(string); ok {
				if sm == nil {
					sm = make(map[string]any, hint)
				}
				sm[ks] = v
				continue
			}
			if i > 0 && second != nil {
				if err := second(); err != nil {
					return nil, err
				}
			}
			am = make(map[any]any, max(len(sm), hint))
			for ks, v := range sm {
				am[ks] = v
			}
		}
		if k != nil && !reflect.TypeOf(k).Comparable() {
			return nil, fmt.Errorf("map key of type %T", k)
		}
		am[k] = v
	}
	switch {
	case am != nil:
		return am, nil
	case sm == nil:
		return map[string]any{}, nil // no entries
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
