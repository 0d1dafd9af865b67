package mailbox

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"
	"unsafe"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
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

// extTag is the msgpack ext type of a tagged value in an interface position.
const extTag = 1

// maxEncodeDepth bounds the nesting of an encoded value: a cyclic pointer
// graph is an error, not a stack overflow.
const maxEncodeDepth = 10000

// mapEntryOverhead is what a map entry costs beyond its key and value, for
// the decoded-size accounting (a Go map's control bytes, load factor and
// bucket headers, rounded up).
const mapEntryOverhead = 16

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

func compileInt(c *codec) {
	bits := int(c.size) * 8
	var load func(p unsafe.Pointer) int64
	var store func(p unsafe.Pointer, v int64)
	switch c.size {
	case 1:
		load, store = func(p unsafe.Pointer) int64 { return int64(*(*int8)(p)) }, func(p unsafe.Pointer, v int64) { *(*int8)(p) = int8(v) }
	case 2:
		load, store = func(p unsafe.Pointer) int64 { return int64(*(*int16)(p)) }, func(p unsafe.Pointer, v int64) { *(*int16)(p) = int16(v) }
	case 4:
		load, store = func(p unsafe.Pointer) int64 { return int64(*(*int32)(p)) }, func(p unsafe.Pointer, v int64) { *(*int32)(p) = int32(v) }
	default:
		load, store = func(p unsafe.Pointer) int64 { return *(*int64)(p) }, func(p unsafe.Pointer, v int64) { *(*int64)(p) = v }
	}
	c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) { return appendInt(b, load(p)), nil }
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			store(p, 0)
			return nil
		}
		v, err := d.r.readInt(bits)
		store(p, v)
		return err
	}
	c.empty = func(p unsafe.Pointer) bool { return load(p) == 0 }
}

func compileUint(c *codec) {
	bits := int(c.size) * 8
	var load func(p unsafe.Pointer) uint64
	var store func(p unsafe.Pointer, v uint64)
	switch c.size {
	case 1:
		load, store = func(p unsafe.Pointer) uint64 { return uint64(*(*uint8)(p)) }, func(p unsafe.Pointer, v uint64) { *(*uint8)(p) = uint8(v) }
	case 2:
		load, store = func(p unsafe.Pointer) uint64 { return uint64(*(*uint16)(p)) }, func(p unsafe.Pointer, v uint64) { *(*uint16)(p) = uint16(v) }
	case 4:
		load, store = func(p unsafe.Pointer) uint64 { return uint64(*(*uint32)(p)) }, func(p unsafe.Pointer, v uint64) { *(*uint32)(p) = uint32(v) }
	default:
		load, store = func(p unsafe.Pointer) uint64 { return *(*uint64)(p) }, func(p unsafe.Pointer, v uint64) { *(*uint64)(p) = v }
	}
	c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) { return appendUint(b, load(p)), nil }
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			store(p, 0)
			return nil
		}
		v, err := d.r.readUint(bits)
		store(p, v)
		return err
	}
	c.empty = func(p unsafe.Pointer) bool { return load(p) == 0 }
}

func compileSlice(c *codec) {
	t := c.typ
	if t.Elem().Kind() == reflect.Uint8 {
		c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
			s := *(*[]byte)(p)
			if s == nil {
				return appendNil(b), nil
			}
			return appendBin(b, s), nil
		}
		c.dec = func(d *decoder, p unsafe.Pointer) error {
			if d.r.isNil() {
				*(*[]byte)(p) = nil
				return nil
			}
			v, err := d.r.readBytes()
			if err != nil {
				return err
			}
			if err := d.charge(int64(len(v))); err != nil {
				return err
			}
			*(*[]byte)(p) = append(make([]byte, 0, len(v)), v...)
			return nil
		}
		c.empty = func(p unsafe.Pointer) bool { return len(*(*[]byte)(p)) == 0 }
		return
	}
	ec := codecOfLocked(t.Elem())
	c.elem = ec
	esize := uintptr(ec.size)
	c.enc = func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
		h := (*sliceHeader)(p)
		if h.data == nil {
			return appendNil(b), nil
		}
		if e.depth++; e.depth > maxEncodeDepth {
			return b, errTooDeep
		}
		b = appendArrayHeader(b, h.len)
		var err error
		for i := 0; i < h.len && err == nil; i++ {
			b, err = ec.enc(e, b, unsafe.Add(h.data, uintptr(i)*esize))
		}
		e.depth--
		return b, err
	}
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			*(*sliceHeader)(p) = sliceHeader{}
			return nil
		}
		n, err := d.r.readArrayLen()
		if err != nil {
			return err
		}
		if err := d.charge(int64(n) * int64(esize)); err != nil {
			return err
		}
		if err := d.enter(); err != nil {
			return err
		}
		data := reflect.MakeSlice(t, n, n).UnsafePointer()
		for i := 0; i < n; i++ {
			if err := ec.dec(d, unsafe.Add(data, uintptr(i)*esize)); err != nil {
				return err
			}
		}
		d.depth--
		*(*sliceHeader)(p) = sliceHeader{data, n, n}
		return nil
	}
	c.empty = func(p unsafe.Pointer) bool { return (*sliceHeader)(p).len == 0 }
}

func compileArray(c *codec) {
	t := c.typ
	n := t.Len()
	if t.Elem().Kind() == reflect.Uint8 {
		c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
			return appendBin(b, unsafe.Slice((*byte)(p), n)), nil
		}
		c.dec = func(d *decoder, p unsafe.Pointer) error {
			if d.r.isNil() {
				clear(unsafe.Slice((*byte)(p), n))
				return nil
			}
			v, err := d.r.readBytes()
			if err != nil {
				return err
			}
			if len(v) > n {
				return fmt.Errorf("%d bytes for a %v", len(v), t)
			}
			copy(unsafe.Slice((*byte)(p), n), v)
			return nil
		}
		return
	}
	ec := codecOfLocked(t.Elem())
	c.elem = ec
	esize := uintptr(ec.size)
	c.enc = func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
		if e.depth++; e.depth > maxEncodeDepth {
			return b, errTooDeep
		}
		b = appendArrayHeader(b, n)
		var err error
		for i := 0; i < n && err == nil; i++ {
			b, err = ec.enc(e, b, unsafe.Add(p, uintptr(i)*esize))
		}
		e.depth--
		return b, err
	}
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			return nil
		}
		m, err := d.r.readArrayLen()
		if err != nil {
			return err
		}
		if m > n {
			return fmt.Errorf("array of %d for a %v", m, t)
		}
		if err := d.enter(); err != nil {
			return err
		}
		for i := 0; i < m; i++ {
			if err := ec.dec(d, unsafe.Add(p, uintptr(i)*esize)); err != nil {
				return err
			}
		}
		d.depth--
		return nil
	}
}

func compilePointer(c *codec) {
	ec := codecOfLocked(c.typ.Elem())
	c.elem = ec
	c.enc = func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
		pp := *(*unsafe.Pointer)(p)
		if pp == nil {
			return appendNil(b), nil
		}
		if e.depth++; e.depth > maxEncodeDepth {
			return b, errTooDeep
		}
		b, err := ec.enc(e, b, pp)
		e.depth--
		return b, err
	}
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			*(*unsafe.Pointer)(p) = nil
			return nil
		}
		np, err := d.alloc(ec)
		if err != nil {
			return err
		}
		if err := d.enter(); err != nil {
			return err
		}
		if err := ec.dec(d, np); err != nil {
			return err
		}
		d.depth--
		*(*unsafe.Pointer)(p) = np
		return nil
	}
	c.empty = func(p unsafe.Pointer) bool { return *(*unsafe.Pointer)(p) == nil }
}

func compileMap(c *codec) {
	t := c.typ
	kc, vc := codecOfLocked(t.Key()), codecOfLocked(t.Elem())
	entry := kc.size + vc.size + mapEntryOverhead
	keyIface := t.Key().Kind() == reflect.Interface
	c.empty = func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Elem().Len() == 0 }
	if t.Key() == reflect.TypeFor[string]() && t.Elem() == reflect.TypeFor[string]() {
		c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
			m := *(*map[string]string)(p)
			if m == nil {
				return appendNil(b), nil
			}
			b = appendMapHeader(b, len(m))
			for k, v := range m {
				b = appendStr(appendStr(b, k), v)
			}
			return b, nil
		}
	} else {
		c.enc = func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
			m := reflect.NewAt(t, p).Elem()
			if m.IsNil() {
				return appendNil(b), nil
			}
			if e.depth++; e.depth > maxEncodeDepth {
				return b, errTooDeep
			}
			b = appendMapHeader(b, m.Len())
			k, v := reflect.New(t.Key()), reflect.New(t.Elem())
			it := m.MapRange()
			var err error
			for err == nil && it.Next() {
				k.Elem().SetIterKey(it)
				v.Elem().SetIterValue(it)
				if b, err = kc.enc(e, b, k.UnsafePointer()); err == nil {
					b, err = vc.enc(e, b, v.UnsafePointer())
				}
			}
			e.depth--
			return b, err
		}
	}
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			*(*unsafe.Pointer)(p) = nil
			return nil
		}
		n, err := d.r.readMapLen()
		if err != nil {
			return err
		}
		if err := d.charge(int64(n) * entry); err != nil {
			return err
		}
		if err := d.enter(); err != nil {
			return err
		}
		m := reflect.MakeMapWithSize(t, n)
		k, v := reflect.New(t.Key()), reflect.New(t.Elem())
		for i := 0; i < n; i++ {
			k.Elem().SetZero()
			v.Elem().SetZero()
			if err := kc.dec(d, k.UnsafePointer()); err != nil {
				return err
			}
			if err := vc.dec(d, v.UnsafePointer()); err != nil {
				return err
			}
			if keyIface && !k.Elem().IsNil() && !k.Elem().Elem().Type().Comparable() {
				return fmt.Errorf("map key of type %v", k.Elem().Elem().Type())
			}
			m.SetMapIndex(k.Elem(), v.Elem())
		}
		d.depth--
		*(*unsafe.Pointer)(p) = m.UnsafePointer()
		return nil
	}
}

// field is one encoded field of a struct.
type field struct {
	name      string
	key       []byte // the name as a msgpack string
	off       uintptr
	codec     *codec
	omitEmpty bool
}

func compileStruct(c *codec) {
	t := c.typ
	var fields []field
	asArray, omitAll := structFields(t, 0, &fields, map[reflect.Type]bool{})
	c.fields, c.asArray = fields, asArray
	byName := make(map[string]int, len(fields))
	hasOmit := false
	for i := range fields {
		f := &fields[i]
		f.omitEmpty = f.omitEmpty || omitAll
		hasOmit = hasOmit || f.omitEmpty
		f.key = appendStr(nil, f.name)
		if _, dup := byName[f.name]; !dup {
			byName[f.name] = i
		}
	}
	c.empty = func(p unsafe.Pointer) bool {
		for i := range fields {
			if !fields[i].codec.empty(unsafe.Add(p, fields[i].off)) {
				return false
			}
		}
		return true
	}
	c.enc = func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
		if e.depth++; e.depth > maxEncodeDepth {
			return b, errTooDeep
		}
		var err error
		if asArray {
			b = appendArrayHeader(b, len(fields))
			for i := 0; i < len(fields) && err == nil; i++ {
				b, err = fields[i].codec.enc(e, b, unsafe.Add(p, fields[i].off))
			}
			e.depth--
			return b, err
		}
		n := len(fields)
		if hasOmit {
			n = 0
			for i := range fields {
				if !fields[i].omitEmpty || !fields[i].codec.empty(unsafe.Add(p, fields[i].off)) {
					n++
				}
			}
		}
		b = appendMapHeader(b, n)
		for i := 0; i < len(fields) && err == nil; i++ {
			f := &fields[i]
			fp := unsafe.Add(p, f.off)
			if hasOmit && f.omitEmpty && f.codec.empty(fp) {
				continue
			}
			b = append(b, f.key...)
			b, err = f.codec.enc(e, b, fp)
		}
		e.depth--
		if err != nil {
			return b, fmt.Errorf("%v: %w", t, err)
		}
		return b, nil
	}
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			return nil
		}
		if err := d.enter(); err != nil {
			return err
		}
		code, _ := d.r.peek()
		if code >= 0x90 && code <= 0x9f || code == mpArray16 || code == mpArray32 {
			n, err := d.r.readArrayLen()
			if err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				if i >= len(fields) {
					if err := d.r.skip(); err != nil {
						return err
					}
					continue
				}
				if err := fields[i].codec.dec(d, unsafe.Add(p, fields[i].off)); err != nil {
					return fmt.Errorf("%v.%s: %w", t, fields[i].name, err)
				}
			}
			d.depth--
			return nil
		}
		n, err := d.r.readMapLen()
		if err != nil {
			return fmt.Errorf("%v: %w", t, err)
		}
		for i := 0; i < n; i++ {
			key, err := d.r.readBytes()
			if err != nil {
				return fmt.Errorf("%v: field name: %w", t, err)
			}
			j := -1
			if i < len(fields) && string(key) == fields[i].name {
				j = i // fields arrive in order: no lookup
			} else if k, ok := byName[string(key)]; ok {
				j = k
			}
			if j < 0 {
				if err := d.r.skip(); err != nil {
					return err
				}
				continue
			}
			if err := fields[j].codec.dec(d, unsafe.Add(p, fields[j].off)); err != nil {
				return fmt.Errorf("%v.%s: %w", t, fields[j].name, err)
			}
		}
		d.depth--
		return nil
	}
}

// structFields lists t's encoded fields as msgpack does: exported fields by
// name or msgpack tag, "-" skipped, embedded structs without a name tag
// inlined (unless a field of the same name shadows theirs), "as_array" and
// "omitempty" on a _msgpack field apply to the whole struct.
func structFields(t reflect.Type, base uintptr, out *[]field, seen map[reflect.Type]bool) (asArray, omitAll bool) {
	seen[t] = true
	defer delete(seen, t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts := parseTag(f.Tag.Get("msgpack"))
		if name == "-" {
			continue
		}
		if f.Name == "_msgpack" {
			asArray = opts["as_array"] || opts["asArray"]
			omitAll = opts["omitempty"]
			continue
		}
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct && !opts["noinline"] && !seen[f.Type] &&
			!implements(f.Type, customEncoderType) && f.Type != timeType && f.Type != pidType {
			var inner []field
			structFields(f.Type, base+f.Offset, &inner, seen)
			shadowed := false
			for _, g := range inner {
				for _, h := range *out {
					shadowed = shadowed || h.name == g.name
				}
			}
			if !shadowed || opts["inline"] {
				for _, g := range inner {
					dup := false
					for _, h := range *out {
						dup = dup || h.name == g.name
					}
					if !dup {
						*out = append(*out, g)
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		*out = append(*out, field{name: name, off: base + f.Offset, codec: codecOfLocked(f.Type), omitEmpty: opts["omitempty"]})
	}
	return asArray, omitAll
}

// parseTag splits a msgpack struct tag into its name and options.
func parseTag(tag string) (string, map[string]bool) {
	name, rest := tag, ""
	for i := 0; i < len(tag); i++ {
		if tag[i] == ',' {
			name, rest = tag[:i], tag[i+1:]
			break
		}
	}
	var opts map[string]bool
	for rest != "" {
		opt := rest
		for i := 0; i < len(rest); i++ {
			if rest[i] == ',' {
				opt, rest = rest[:i], rest[i+1:]
				break
			}
		}
		if opt == rest {
			rest = ""
		}
		if opts == nil {
			opts = map[string]bool{}
		}
		opts[opt] = true
	}
	return name, opts
}

func compileInterface(c *codec) {
	t := c.typ
	c.empty = func(p unsafe.Pointer) bool { return (*eface)(p).typ == nil }
	c.enc = func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
		if (*eface)(p).typ == nil {
			return appendNil(b), nil
		}
		var v any
		switch t {
		case anyType:
			v = *(*any)(p)
		case errorType:
			v = *(*error)(p)
		default:
			v = reflect.NewAt(t, p).Elem().Elem().Interface()
		}
		if e.depth++; e.depth > maxEncodeDepth {
			return b, errTooDeep
		}
		b, err := e.appendAny(b, v)
		e.depth--
		return b, err
	}
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		v, err := d.decodeAny()
		if err != nil {
			return err
		}
		switch {
		case v == nil:
			reflect.NewAt(t, p).Elem().SetZero()
		case t == anyType:
			*(*any)(p) = v
		case t == errorType:
			err, ok := v.(error)
			if !ok {
				return fmt.Errorf("%T in an error position", v)
			}
			*(*error)(p) = err
		default:
			rv := reflect.ValueOf(v)
			if !rv.Type().Implements(t) {
				return fmt.Errorf("%T does not implement %v", v, t)
			}
			reflect.NewAt(t, p).Elem().Set(rv)
		}
		return nil
	}
}

func compileTime(c *codec) {
	c.enc = func(_ *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
		return appendTime(b, *(*time.Time)(p)), nil
	}
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			*(*time.Time)(p) = time.Time{}
			return nil
		}
		typ, body, err := d.r.readExt()
		if err != nil {
			return err
		}
		if typ != extTimestamp {
			return fmt.Errorf("ext %d for a time.Time", typ)
		}
		v, err := parseTime(body)
		*(*time.Time)(p) = v
		return err
	}
	c.empty = func(p unsafe.Pointer) bool { return (*time.Time)(p).IsZero() }
}

// compilePID: a PID is an array [address, id, requestId]; a "nonhost"
// address is written as the link's local address.
func compilePID(c *codec) {
	c.enc = func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
		pid := (*pa.PID)(p)
		b = append(b, 0x93)
		b = appendStr(b, e.address(pid.Address))
		b = appendStr(b, pid.Id)
		return appendUint(b, uint64(pid.RequestId)), nil
	}
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			return nil
		}
		n, err := d.r.readArrayLen()
		if err != nil {
			return err
		}
		if n != 3 {
			return fmt.Errorf("pid: array of %d, want 3", n)
		}
		addr, err := d.r.readBytes()
		if err != nil {
			return err
		}
		id, err := d.r.readBytes()
		if err != nil {
			return err
		}
		req, err := d.r.readUint(32)
		if err != nil {
			return err
		}
		pid := (*pa.PID)(p)
		if pid.Address, err = d.string(addr); err != nil {
			return err
		}
		if pid.Id, err = d.string(id); err != nil {
			return err
		}
		pid.RequestId = uint32(req)
		return nil
	}
	c.empty = func(p unsafe.Pointer) bool {
		pid := (*pa.PID)(p)
		return pid.Address == "" && pid.Id == "" && pid.RequestId == 0
	}
}

// compileProto: a protobuf message held by value in a struct travels as
// proto.Marshal bytes.
func compileProto(c *codec) {
	t := c.typ
	c.enc = func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
		m := reflect.NewAt(t, p).Interface().(proto.Message)
		n := e.pb.Size(m)
		b = appendBinHeader(b, n)
		out, err := e.pb.MarshalAppend(b, m)
		if err != nil {
			return b, err
		}
		if len(out) != len(b)+n {
			return b, fmt.Errorf("%v: size changed while marshalling", t)
		}
		return out, nil
	}
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if d.r.isNil() {
			return nil
		}
		v, err := d.r.readBytes()
		if err != nil {
			return err
		}
		if err := d.charge(2 * int64(len(v))); err != nil {
			return err
		}
		return proto.Unmarshal(v, reflect.NewAt(t, p).Interface().(proto.Message))
	}
}

// compileDelegate hands a type with its own msgpack codec (or a binary or
// text marshaler) to msgpack. The bytes after it are checked before
// msgpack reads them (counts within the bytes, nesting bounded); what the
// type's decoder allocates is its author's business, and is charged as
// its size plus the bytes it read.
func compileDelegate(c *codec) {
	t := c.typ
	c.enc = func(e *encoder, b []byte, p unsafe.Pointer) ([]byte, error) {
		e.sink.buf = b
		err := e.mp.Encode(reflect.NewAt(t, p).Interface())
		b, e.sink.buf = e.sink.buf, nil
		return b, err
	}
	canDecode := implements(t, customDecoderType) || implements(t, unmarshalerType) ||
		implements(t, binUnmarshalType) || implements(t, textUnmarshalType)
	c.dec = func(d *decoder, p unsafe.Pointer) error {
		if !canDecode {
			return fmt.Errorf("%v has an encoder but no decoder", t)
		}
		if d.checked < 0 || d.r.i < d.checked {
			if err := checkMsgpack(d.r.b[d.r.i:]); err != nil {
				return err
			}
			d.checked = d.r.i
		}
		rest := d.r.b[d.r.i:]
		d.br.Reset(rest)
		d.mp.ResetReader(&d.br)
		d.mp.SetMapDecoder(decodeAnyMap)
		err := d.mp.Decode(reflect.NewAt(t, p).Interface())
		used := len(rest) - d.br.Len()
		d.r.i += used
		if err != nil {
			return err
		}
		return d.charge(int64(used))
	}
}

var errTooDeep = fmt.Errorf("nested deeper than %d (a cycle?)", maxEncodeDepth)

// appendAny encodes a value held in an interface: untagged when an
// untagged msgpack value decodes back to its type, tagged otherwise.
func (e *encoder) appendAny(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return appendNil(b), nil
	case bool:
		return appendBool(b, x), nil
	case int:
		return appendInt(b, int64(x)), nil
	case float64:
		return appendFloat64(b, x), nil
	case float32:
		return appendFloat32(b, x), nil
	case string:
		return appendStr(b, x), nil
	case []byte:
		if x != nil {
			return appendBin(b, x), nil
		}
	case time.Time:
		return appendTime(b, x), nil
	case []any:
		if x != nil {
			if e.depth++; e.depth > maxEncodeDepth {
				return b, errTooDeep
			}
			b = appendArrayHeader(b, len(x))
			var err error
			for i := 0; i < len(x) && err == nil; i++ {
				b, err = e.appendAny(b, x[i])
			}
			e.depth--
			return b, err
		}
	case map[string]any:
		if x != nil {
			if e.depth++; e.depth > maxEncodeDepth {
				return b, errTooDeep
			}
			b = appendMapHeader(b, len(x))
			var err error
			for k, v := range x {
				if err != nil {
					break
				}
				b, err = e.appendAny(appendStr(b, k), v)
			}
			e.depth--
			return b, err
		}
	}
	return e.appendTagged(b, v)
}

// appendTagged encodes v as an ext tagged with its type expression.
func (e *encoder) appendTagged(b []byte, v any) ([]byte, error) {
	wt := e.wireTypeOf(v)
	name := wt.name
	if wt.err != nil {
		err, ok := v.(error)
		if !ok {
			return b, wt.err
		}
		b, at := appendExtStart(b)
		b = binary.AppendUvarint(b, e.tagIndex("error"))
		b = e.appendRemoteError(b, err)
		return finishExt(b, at, extTag), nil
	}
	if err := e.checkMismatch(wt); err != nil {
		return b, err
	}
	b, at := appendExtStart(b)
	b = binary.AppendUvarint(b, e.tagIndex(name))
	b, err := e.appendValue(b, wt.codec, v)
	if err != nil {
		return b, err
	}
	return finishExt(b, at, extTag), nil
}

// appendValue encodes v, whose dynamic type c is for.
func (e *encoder) appendValue(b []byte, c *codec, v any) ([]byte, error) {
	ef := *(*eface)(unsafe.Pointer(&v))
	if !c.direct {
		return c.enc(e, b, ef.data)
	}
	if c.typ.Kind() == reflect.Pointer {
		if ef.data == nil {
			return appendNil(b), nil
		}
		if c.elem.special == "custom" { // its own codec: msgpack takes the pointer as it is
			e.sink.buf = b
			err := e.mp.Encode(v)
			b, e.sink.buf = e.sink.buf, nil
			return b, err
		}
		return c.elem.enc(e, b, ef.data)
	}
	slot := new(unsafe.Pointer)
	*slot = ef.data
	return c.enc(e, b, unsafe.Pointer(slot))
}

// tagIndex returns the index of a type expression in the message's tag table.
func (e *encoder) tagIndex(name string) uint64 {
	for i, s := range e.tags {
		if s == name {
			return uint64(i)
		}
	}
	e.tags = append(e.tags, name)
	return uint64(len(e.tags) - 1)
}

// decodeAny decodes a value in an interface position.
func (d *decoder) decodeAny() (any, error) {
	c, err := d.r.peek()
	if err != nil {
		return nil, err
	}
	switch {
	case c == mpNil:
		d.r.i++
		return nil, nil
	case c == mpTrue || c == mpFalse:
		return d.r.readBool()
	case c <= 0x7f || c >= 0xe0 || c >= mpUint8 && c <= mpInt64:
		v, err := d.r.readInt(strconv.IntSize)
		return int(v), err
	case c == mpFloat32:
		v, err := d.r.readFloat()
		return float32(v), err
	case c == mpFloat64:
		return d.r.readFloat()
	case c >= 0xa0 && c <= 0xbf || c == mpStr8 || c == mpStr16 || c == mpStr32:
		v, err := d.r.readBytes()
		if err != nil {
			return nil, err
		}
		return d.string(v)
	case c == mpBin8 || c == mpBin16 || c == mpBin32:
		v, err := d.r.readBytes()
		if err != nil {
			return nil, err
		}
		if err := d.charge(int64(len(v))); err != nil {
			return nil, err
		}
		return append(make([]byte, 0, len(v)), v...), nil
	case c >= 0x90 && c <= 0x9f || c == mpArray16 || c == mpArray32:
		n, err := d.r.readArrayLen()
		if err != nil {
			return nil, err
		}
		if err := d.charge(int64(n) * 16); err != nil {
			return nil, err
		}
		if err := d.enter(); err != nil {
			return nil, err
		}
		s := make([]any, n)
		for i := range s {
			if s[i], err = d.decodeAny(); err != nil {
				return nil, err
			}
		}
		d.depth--
		return s, nil
	case c >= 0x80 && c <= 0x8f || c == mpMap16 || c == mpMap32:
		return d.decodeAnyMapValue()
	}
	typ, body, err := d.r.readExt()
	if err != nil {
		return nil, err
	}
	switch typ {
	case extTimestamp:
		return parseTime(body)
	case extTag:
		return d.decodeTagged(body)
	}
	return nil, fmt.Errorf("msgpack: unknown ext type %d", typ)
}

// decodeAnyMap decodes a map in an interface position: map[string]any when
// every key is a string, map[any]any otherwise.
func (d *decoder) decodeAnyMapValue() (any, error) {
	n, err := d.r.readMapLen()
	if err != nil {
		return nil, err
	}
	if err := d.charge(int64(n) * (16 + 16 + mapEntryOverhead)); err != nil {
		return nil, err
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	sm := make(map[string]any, n)
	var am map[any]any
	for range n {
		k, err := d.decodeAny()
		if err != nil {
			return nil, err
		}
		v, err := d.decodeAny()
		if err != nil {
			return nil, err
		}
		if am == nil {
			if ks, ok := k.(string); ok {
				sm[ks] = v
				continue
			}
			am = make(map[any]any, n)
			for ks, v := range sm {
				am[ks] = v
			}
		}
		if k != nil && !reflect.TypeOf(k).Comparable() {
			return nil, fmt.Errorf("map key of type %T", k)
		}
		am[k] = v
	}
	d.depth--
	if am != nil {
		return am, nil
	}
	return sm, nil
}

// decodeTagged decodes the body of an extTag: a tag table index, then the value.
func (d *decoder) decodeTagged(body []byte) (any, error) {
	idx, n := binary.Uvarint(body)
	if n <= 0 || idx >= uint64(len(d.tags)) {
		return nil, fmt.Errorf("tag %d not in the message's table of %d", idx, len(d.tags))
	}
	wt, err := d.resolve(d.tags[idx])
	if err != nil {
		return nil, err
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	saved := d.r
	d.r = mpReader{b: body[n:]}
	d.checked = -1
	v, err := d.decodeTop(wt)
	d.depth--
	if err == nil && d.r.left() != 0 {
		err = fmt.Errorf("%s: %d stray bytes in its tag", wt.name, d.r.left())
	}
	d.r = saved
	d.checked = -1
	return v, err
}

// decodeTop decodes a whole value of wt's type into new memory.
func (d *decoder) decodeTop(wt *wireType) (any, error) {
	if wt.typ == errorType {
		return d.decodeRemoteError()
	}
	if wt.typ.Kind() == reflect.Interface {
		// Only a hand-made message names an interface type at the top:
		// the value inside is what it carries.
		v, err := d.decodeAny()
		if err == nil && v != nil && !reflect.TypeOf(v).Implements(wt.typ) {
			err = fmt.Errorf("%T does not implement %v", v, wt.typ)
		}
		return v, err
	}
	c := wt.codec
	if c.typ.Kind() == reflect.Pointer {
		if d.r.isNil() {
			return packEface(c, unsafe.Pointer(new(unsafe.Pointer))), nil
		}
		np, err := d.alloc(c.elem)
		if err != nil {
			return nil, err
		}
		if err := c.elem.dec(d, np); err != nil {
			return nil, err
		}
		var v any
		*(*eface)(unsafe.Pointer(&v)) = eface{c.rtype, np}
		return v, nil
	}
	np, err := d.alloc(c)
	if err != nil {
		return nil, err
	}
	if err := c.dec(d, np); err != nil {
		return nil, err
	}
	return packEface(c, np), nil
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
	if err := d.charge(int64(len(b))); err != nil {
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
