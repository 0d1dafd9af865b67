package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"unsafe"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
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
