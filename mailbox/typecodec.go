package mailbox

import (
	"encoding"
	"fmt"
	"reflect"
	"sync"
	"time"
	"unsafe"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
)

// A codec encodes and decodes the values of one Go type as msgpack. It is
// compiled once per type (codecOf) into functions over the value's memory,
// so a message costs no reflection on the hot path: no field lookup by name
// while encoding, no reflect.Value per field, no io.Reader between the
// decoder and the bytes. Maps, custom msgpack codecs and non-empty
// interfaces go through reflect or msgpack.
//
// Values in interface positions (an any or error field, []any,
// map[string]any) carry their type: a value whose type is not one an
// untagged msgpack value decodes to (bool, int, float32, float64, string,
// []byte, []any, map[string]any, time.Time) is an ext of type extTag whose
// body is the index of its type expression in the message's tag table,
// then the value. So a registered type, a PID or an int64 inside an any
// arrives as what was sent.
type codec struct {
	typ    reflect.Type
	rtype  unsafe.Pointer // the runtime type, for building interfaces
	size   int64
	direct bool // pointer-shaped: an interface holds the value itself
	elem   *codec
	enc    func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error)
	dec    func(d *decoder, p unsafe.Pointer) error
	empty  func(p unsafe.Pointer) bool
	err    error // the type cannot be encoded: reported when used

	fields  []field // a struct's encoded fields
	asArray bool    // a struct encoded as an array
	special string  // how a type with its own encoding is encoded (fingerprint.go)
}

// maxEncodeDepth bounds the nesting of an encoded value: a cyclic pointer
// graph is an error, not a stack overflow.
const maxEncodeDepth = 10000

// mapEntryOverhead is what a map entry costs beyond its key and value, for
// the decoded-size accounting (a Go map's control bytes, load factor and
// bucket headers, rounded up).
const mapEntryOverhead = 16

// mapEntryCost is what an entry of a map made for its count costs decoded,
// its key and value taking slot bytes: a map made for n entries takes up
// to about 2.6 times their slots (groups of 8 slots, at most 7/8 full,
// tables rounded up to a power of two; measured with Go 1.26), so each is
// charged three times its slot and the overhead.
func mapEntryCost(slot int64) int64 { return 3*slot + mapEntryOverhead }

var (
	codecs    sync.Map // reflect.Type → *codec
	codecMu   sync.Mutex
	compiling = map[reflect.Type]*codec{} // guarded by codecMu: types being compiled (recursive types)
)

// codecOf returns t's codec, compiling it on first use.
func codecOf(t reflect.Type) *codec {
	if c, ok := codecs.Load(t); ok {
		return c.(*codec)
	}
	codecMu.Lock()
	defer codecMu.Unlock()
	return codecOfLocked(t)
}

func codecOfLocked(t reflect.Type) *codec {
	if c, ok := codecs.Load(t); ok {
		return c.(*codec)
	}
	if c, ok := compiling[t]; ok {
		return c
	}
	c := &codec{typ: t, rtype: rtypeOf(t), size: int64(t.Size()), direct: isDirect(t)}
	compiling[t] = c
	compile(c)
	delete(compiling, t)
	if c.empty == nil {
		c.empty = func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Elem().IsZero() }
	}
	codecs.Store(t, c)
	return c
}

// eface is the layout of an interface value (and of reflect.Type, whose
// data word is the runtime type).
type eface struct{ typ, data unsafe.Pointer }

func rtypeOf(t reflect.Type) unsafe.Pointer { return (*eface)(unsafe.Pointer(&t)).data }

// packEface makes an interface of the type rtype whose value is at p.
func packEface(c *codec, p unsafe.Pointer) any {
	var v any
	data := p
	if c.direct {
		data = *(*unsafe.Pointer)(p)
	}
	*(*eface)(unsafe.Pointer(&v)) = eface{c.rtype, data}
	return v
}

// isDirect reports whether interfaces hold a value of t in their data word
// (pointer-shaped types) rather than a pointer to it.
func isDirect(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() == 1 && isDirect(t.Elem())
	case reflect.Struct:
		return t.NumField() == 1 && isDirect(t.Field(0).Type)
	}
	return false
}

type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

var (
	timeType = reflect.TypeFor[time.Time]()
	pidType  = reflect.TypeFor[pa.PID]()

	customEncoderType = reflect.TypeFor[msgpack.CustomEncoder]()
	customDecoderType = reflect.TypeFor[msgpack.CustomDecoder]()
	marshalerType     = reflect.TypeFor[msgpack.Marshaler]()
	unmarshalerType   = reflect.TypeFor[msgpack.Unmarshaler]()
	binMarshalerType  = reflect.TypeFor[encoding.BinaryMarshaler]()
	binUnmarshalType  = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

func compile(c *codec) {
	t := c.typ
	switch {
	case t == timeType:
		c.special = "time"
		compileTime(c)
		return
	case t == pidType:
		c.special = "pid"
		compilePID(c)
		return
	case t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(protoMsgTyp):
		c.special = "proto"
		compileProto(c)
		return
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		(implements(t, customEncoderType) || implements(t, marshalerType) ||
			implements(t, binMarshalerType) || implements(t, textMarshalerType)):
		c.special = "custom"
		compileDelegate(c)
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) { return appendBool(b, *(*bool)(p)), nil }
		c.dec = func(d *decoder, p unsafe.Pointer) error {
			if d.r.isNil() {
				*(*bool)(p) = false
				return nil
			}
			v, err := d.r.readBool()
			*(*bool)(p) = v
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return !*(*bool)(p) }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		compileInt(c)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		compileUint(c)
	case reflect.Float32:
		c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
			return appendFloat32(b, *(*float32)(p)), nil
		}
		c.dec = func(d *decoder, p unsafe.Pointer) error {
			if d.r.isNil() {
				*(*float32)(p) = 0
				return nil
			}
			v, err := d.r.readFloat()
			*(*float32)(p) = float32(v)
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return *(*float32)(p) == 0 }
	case reflect.Float64:
		c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
			return appendFloat64(b, *(*float64)(p)), nil
		}
		c.dec = func(d *decoder, p unsafe.Pointer) error {
			if d.r.isNil() {
				*(*float64)(p) = 0
				return nil
			}
			v, err := d.r.readFloat()
			*(*float64)(p) = v
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return *(*float64)(p) == 0 }
	case reflect.String:
		c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) { return appendStr(b, *(*string)(p)), nil }
		c.dec = func(d *decoder, p unsafe.Pointer) error {
			if d.r.isNil() {
				*(*string)(p) = ""
				return nil
			}
			v, err := d.r.readBytes()
			if err != nil {
				return err
			}
			s, err := d.string(v)
			*(*string)(p) = s
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return *(*string)(p) == "" }
	case reflect.Slice:
		compileSlice(c)
	case reflect.Array:
		compileArray(c)
	case reflect.Map:
		compileMap(c)
	case reflect.Pointer:
		compilePointer(c)
	case reflect.Struct:
		compileStruct(c)
	case reflect.Interface:
		compileInterface(c)
	default:
		c.err = fmt.Errorf("%v values cannot be encoded", t.Kind())
		c.enc = func(*encoder, []byte, unsafe.Pointer) ([]byte, error) {
			return nil, fmt.Errorf("%w: %v (%v)", ErrEncode, t, c.err)
		}
		c.dec = func(*decoder, unsafe.Pointer) error { return fmt.Errorf("%v cannot be decoded", t) }
	}
}

// alloc charges and allocates a zero value of c's type.
func (d *decoder) alloc(c *codec) (unsafe.Pointer, error) {
	if err := d.charge(c.size); err != nil {
		return nil, err
	}
	return reflect.New(c.typ).UnsafePointer(), nil
}

// string makes a string of b, charged to the message.
func (d *decoder) string(b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	if err := d.charge(allocated(len(b))); err != nil {
		return "", err
	}
	return string(b), nil
}

func (d *decoder) enter() error {
	if d.depth++; d.depth > maxMsgpackDepth {
		return fmt.Errorf("msgpack: nested deeper than %d", maxMsgpackDepth)
	}
	return nil
}

// allocated bounds what the allocator takes for n bytes of a string or a
// []byte (n > 0): rounded up to its size class, at most 16 bytes more
// below 256 bytes (16 at least with the race detector, which turns off the
// tiny allocator) and 1/8 more above; past 32 KiB, to whole 8 KiB pages.
func allocated(n int) int64 {
	extra := max(16, n/8)
	if n > 32<<10 {
		extra = max(extra, 8<<10)
	}
	return int64(n + extra)
}

// charge accounts n decoded bytes against the message's budget.
func (d *decoder) charge(n int64) error {
	d.charged += n
	if d.charged > d.budget {
		return fmt.Errorf("%w: decodes to more than %d bytes", ErrDecodeLimit, d.budget)
	}
	return nil
}

func (e *encoder) address(a string) string {
	if a == nonhost && e.sink.localAddress != "" {
		return e.sink.localAddress
	}
	return a
}
