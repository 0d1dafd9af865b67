package mailbox

import (
	"fmt"
	"reflect"
	"unsafe"
)

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
			if len(v) == 0 {
				*(*[]byte)(p) = []byte{}
				return nil
			}
			if err := d.charge(allocated(len(v))); err != nil {
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
	entry := mapEntryCost(kc.size + vc.size)
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
