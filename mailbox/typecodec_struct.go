package mailbox

import (
	"fmt"
	"reflect"
	"unsafe"
)

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
