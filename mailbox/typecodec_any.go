package mailbox

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unsafe"
)

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

// boxedHeader is what a string's box takes.
const boxedHeader = 16

// decodeAny decodes a value in an interface position. A value is charged
// its box too (an empty string, a bool and nil take none).
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
		if err := d.charge(8); err != nil { // its box
			return nil, err
		}
		v, err := d.r.readInt(strconv.IntSize)
		return int(v), err
	case c == mpFloat32 || c == mpFloat64:
		if err := d.charge(8); err != nil { // its box
			return nil, err
		}
		v, err := d.r.readFloat()
		if c == mpFloat32 {
			return float32(v), err
		}
		return v, err
	case c >= 0xa0 && c <= 0xbf || c == mpStr8 || c == mpStr16 || c == mpStr32:
		v, err := d.r.readBytes()
		if err != nil {
			return nil, err
		}
		if len(v) > 0 {
			if err := d.charge(boxedHeader); err != nil { // its box
				return nil, err
			}
		}
		return d.string(v)
	case c == mpBin8 || c == mpBin16 || c == mpBin32:
		v, err := d.r.readBytes()
		if err != nil {
			return nil, err
		}
		if err := d.charge(allocated(len(v)) + 24); err != nil { // its bytes and its box
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
		if err := d.charge(24); err != nil { // its box
			return nil, err
		}
		return parseTime(body)
	case extTag:
		return d.decodeTagged(body)
	}
	return nil, fmt.Errorf("msgpack: unknown ext type %d", typ)
}

// decodeAnyMapValue decodes a map in an interface position: map[string]any when
// every key is a string, map[any]any otherwise.
func (d *decoder) decodeAnyMapValue() (any, error) {
	n, err := d.r.readMapLen()
	if err != nil {
		return nil, err
	}
	entry := int64(n) * mapEntryCost(16+16)
	if err := d.charge(entry); err != nil {
		return nil, err
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	// A key that is not a string after string keys makes a second map.
	m, err := collectAnyMap(n, n, d.decodeAny, func() error { return d.charge(entry) })
	if err != nil {
		return nil, err
	}
	d.depth--
	return m, nil
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
