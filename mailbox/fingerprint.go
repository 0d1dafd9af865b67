package mailbox

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/procactor/procactor/internal/wireshape"
)

// A registered type's fingerprint is its shape as the codec encodes it:
// field names (after msgpack tags), omitempty, and each field's type shape,
// nested types spelled out. Two binaries that register the same name for
// types of different shapes would decode each other's messages with fields
// silently zero; the handshake compares fingerprints and makes such
// messages dead letters instead (or refuses the link: WithStrictTypes).
//
// The handshake stays one round trip when both sides agree: each hello
// carries a digest of every fingerprint. Only when the digests differ do
// the sides exchange per-type digests, then the field lists of the types
// that differ, to name the differing field.

// typeShape is a registered type's fingerprint.
type typeShape struct {
	text   string // the whole shape; empty when the digest comes from wireshape's table
	digest uint64
}

// shapeField is one leaf of a shape: a field path and its shape.
type shapeField struct{ path, shape string }

// shapeOf returns e's fingerprint, computed once, or taken from
// wireshape's table for a type of procactor's own (its text is then left
// empty: only the digest travels).
func (e *typeEntry) shapeOf() *typeShape {
	e.shapeOnce.Do(func() {
		if k, ok := wireshape.Digests[typePath(e.typ)]; ok && k.Name == e.name && k.Fields == numFields(e.typ) {
			e.shape.digest = k.Digest
			return
		}
		e.shape = computeShape(e)
	})
	return &e.shape
}

// computeShape computes e's fingerprint from its codec.
func computeShape(e *typeEntry) typeShape {
	var s typeShape
	s.text = describe(codecOf(e.typ), map[*codec]bool{})
	h := fnv.New64a()
	h.Write([]byte(e.name))
	h.Write([]byte{0})
	h.Write([]byte(s.text))
	s.digest = h.Sum64()
	return s
}

// typePath is t's package path and name: what wireshape's table is keyed by.
func typePath(t reflect.Type) string { return t.PkgPath() + "." + t.Name() }

// numFields is t's number of fields, 0 for a type that is not a struct.
func numFields(t reflect.Type) int {
	if t.Kind() != reflect.Struct {
		return 0
	}
	return t.NumField()
}

func init() {
	wireshape.Compute = func(name string) (wireshape.Known, string, bool) {
		e := registry.Load().byName[name]
		if e == nil {
			return wireshape.Known{}, "", false
		}
		return wireshape.Known{Name: name, Digest: computeShape(e).digest, Fields: numFields(e.typ)}, typePath(e.typ), true
	}
	wireshape.Registered = func() []string {
		var names []string
		for name := range registry.Load().byName {
			names = append(names, name)
		}
		return names
	}
}

// leavesOf returns the leaves of e's shape, for naming the field that
// differs, computed once: only a handshake whose digests differ needs
// them, so a child's start does not list them.
func (e *typeEntry) leavesOf() []shapeField {
	e.leavesOnce.Do(func() {
		flatten(codecOf(e.typ), "", &e.leaves, map[*codec]bool{})
	})
	return e.leaves
}

// describe spells out how c's values are encoded.
func describe(c *codec, seen map[*codec]bool) string {
	t := c.typ
	switch c.special {
	case "time", "pid":
		return c.special
	case "proto":
		return "pb:" + t.String()
	case "custom":
		return "custom:" + t.String()
	}
	if seen[c] {
		return "@" + t.String()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + describe(c.elem, seen)
	case reflect.Slice:
		if c.elem == nil {
			return "[]uint8"
		}
		return "[]" + describe(c.elem, seen)
	case reflect.Array:
		if c.elem == nil {
			return "[" + strconv.Itoa(t.Len()) + "]uint8"
		}
		return "[" + strconv.Itoa(t.Len()) + "]" + describe(c.elem, seen)
	case reflect.Map:
		return "map[" + describe(codecOf(t.Key()), seen) + "]" + describe(codecOf(t.Elem()), seen)
	case reflect.Interface:
		if t == anyType || t == errorType {
			return t.String()
		}
		return "iface:" + t.String()
	case reflect.Struct:
		seen[c] = true
		defer delete(seen, c)
		var sb strings.Builder
		if c.asArray {
			sb.WriteString("array")
		}
		sb.WriteByte('{')
		for i, f := range c.fields {
			if i > 0 {
				sb.WriteByte(';')
			}
			sb.WriteString(f.name)
			if f.omitEmpty {
				sb.WriteString(",omitempty")
			}
			sb.WriteByte(':')
			sb.WriteString(describe(f.codec, seen))
		}
		sb.WriteByte('}')
		return sb.String()
	}
	return t.Kind().String()
}

// flatten lists c's leaves: struct fields by dotted path, down through
// pointers to structs.
func flatten(c *codec, path string, out *[]shapeField, seen map[*codec]bool) {
	for c.typ.Kind() == reflect.Pointer && c.special == "" {
		c = c.elem
	}
	if c.typ.Kind() != reflect.Struct || c.special != "" || seen[c] || len(*out) > maxShapeFields {
		*out = append(*out, shapeField{path, describe(c, map[*codec]bool{})})
		return
	}
	seen[c] = true
	defer delete(seen, c)
	if len(c.fields) == 0 {
		*out = append(*out, shapeField{path, describe(c, map[*codec]bool{})})
	}
	for _, f := range c.fields {
		p := f.name
		if path != "" {
			p = path + "." + f.name
		}
		if f.omitEmpty {
			p += ",omitempty"
		}
		flatten(f.codec, p, out, seen)
	}
}

// maxShapeFields bounds the leaves listed for one type.
const maxShapeFields = 1024

// schema is the fingerprints of every registered type of one registry
// version, and their digest (what a hello carries).
type schema struct {
	digest  uint64
	names   []string // sorted
	digests map[string]uint64
	entries map[string]*typeEntry
}

// PrepareHandshake computes now what a Handshake of this process announces
// and would otherwise compute on its first call: the fingerprints of the
// registered types (each type's codec and shape; procactor's own types'
// come from a table, internal/wireshape, and their codecs are compiled at
// their first use). It is never required.
// A process that knows a handshake is coming can run it on another
// goroutine meanwhile: procnode's child does, while it builds its node.
// Types registered afterwards are taken into account as before.
func PrepareHandshake() { currentSchema() }

// currentSchema returns the registry's schema, computed once per version.
func currentSchema() *schema {
	reg := registry.Load()
	reg.schemaOnce.Do(func() {
		s := &schema{digests: make(map[string]uint64, len(reg.byName)), entries: reg.byName}
		for name := range reg.byName {
			s.names = append(s.names, name)
		}
		sort.Strings(s.names)
		h := fnv.New64a()
		var b [8]byte
		for _, name := range s.names {
			d := reg.byName[name].shapeOf().digest
			s.digests[name] = d
			binary.LittleEndian.PutUint64(b[:], d)
			h.Write(b[:])
		}
		s.digest = h.Sum64()
		if s.digest == 0 {
			s.digest = 1 // 0 means "not announced"
		}
		reg.schema = s
	})
	return reg.schema
}

func appendTypeDigests(b []byte, s *schema) []byte {
	b = append(b, typesDigests)
	b = binary.AppendUvarint(b, uint64(len(s.names)))
	for _, name := range s.names {
		b = appendString(b, name)
		b = binary.LittleEndian.AppendUint64(b, s.digests[name])
	}
	return b
}

// parseTypeDigests reads the peer's type digests, keeping those of the
// types in ours (every one when ours is nil).
func parseTypeDigests(body []byte, ours map[string]uint64) (map[string]uint64, error) {
	c := cursor{b: body}
	if k := c.byte(); c.err == nil && k != typesDigests {
		c.fail("types frame of kind %d, want digests", k)
	}
	n := c.uvarint()
	if c.err == nil && n > uint64(len(c.b))/9 {
		c.fail("%d type digests overrun the frame", n)
	}
	if c.err != nil {
		return nil, c.err
	}
	// Only the types registered here are kept (all when ours is nil): a
	// peer's list must not grow this side's memory past its own types.
	out := make(map[string]uint64, min(n, uint64(len(ours))))
	for i := uint64(0); i < n && c.err == nil; i++ {
		name := c.bytes()
		if c.err == nil && len(c.b) < 8 {
			c.fail("type digest truncated")
		}
		if c.err == nil {
			if _, ok := ours[string(name)]; ok || ours == nil {
				out[string(name)] = binary.LittleEndian.Uint64(c.b)
			}
			c.b = c.b[8:]
		}
	}
	if c.err == nil && len(c.b) != 0 {
		c.fail("%d stray bytes after the type digests", len(c.b))
	}
	return out, c.err
}

func appendTypeFields(b []byte, s *schema, names []string) []byte {
	b = append(b, typesFields)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		b = appendString(b, name)
		fields := s.entries[name].leavesOf()
		b = binary.AppendUvarint(b, uint64(len(fields)))
		for _, f := range fields {
			b = appendString(b, f.path)
			b = appendString(b, f.shape)
		}
	}
	return b
}

// maxTypeFields bounds the types and fields a types frame lists (a field
// decodes to two string headers, 40 times its 2 bytes on the wire with the
// slice's growth, a type to a map entry): a peer's frame must not cost this
// side many times its size. Types that differ on both sides have far fewer
// leaves.
const maxTypeFields = 1 << 14

func parseTypeFields(body []byte) (map[string][]shapeField, error) {
	c := cursor{b: body}
	if k := c.byte(); c.err == nil && k != typesFields {
		c.fail("types frame of kind %d, want fields", k)
	}
	n := c.uvarint()
	if c.err == nil && n > uint64(len(c.b))/2 {
		c.fail("%d types overrun the frame", n)
	}
	if c.err != nil {
		return nil, c.err
	}
	out := make(map[string][]shapeField, min(n, maxHeaderHint))
	var total uint64 // types and fields so far
	for i := uint64(0); i < n && c.err == nil; i++ {
		name := string(c.bytes())
		m := c.uvarint()
		if c.err == nil && m > uint64(len(c.b))/2 {
			c.fail("%d fields overrun the frame", m)
		}
		if total += m + 1; c.err == nil && total > maxTypeFields {
			c.fail("types frame lists more than %d fields", maxTypeFields)
		}
		var fields []shapeField
		for j := uint64(0); j < m && c.err == nil; j++ {
			path, shape := string(c.bytes()), string(c.bytes())
			fields = append(fields, shapeField{path, shape})
		}
		out[name] = fields
	}
	if c.err == nil && len(c.b) != 0 {
		c.fail("%d stray bytes after the type fields", len(c.b))
	}
	return out, c.err
}

// mismatchedTypes lists the names both sides registered with different digests.
func mismatchedTypes(s *schema, peer map[string]uint64) []string {
	var out []string
	for _, name := range s.names {
		if d, ok := peer[name]; ok && d != s.digests[name] {
			out = append(out, name)
		}
	}
	return out
}

// diffFields names the first field that differs between our leaves and the peer's.
func diffFields(name string, ours, theirs []shapeField) error {
	peer := make(map[string]string, len(theirs))
	for _, f := range theirs {
		peer[f.path] = f.shape
	}
	mine := make(map[string]bool, len(ours))
	for _, f := range ours {
		mine[f.path] = true
		s, ok := peer[f.path]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s: field %s (%s) is missing in the peer's", ErrTypeMismatch, name, fieldName(f.path), f.shape)
		case s != f.shape:
			return fmt.Errorf("%w: %s: field %s is %s here, %s in the peer's", ErrTypeMismatch, name, fieldName(f.path), f.shape, s)
		}
	}
	for _, f := range theirs {
		if !mine[f.path] {
			return fmt.Errorf("%w: %s: field %s (%s) of the peer's is missing here", ErrTypeMismatch, name, fieldName(f.path), f.shape)
		}
	}
	// Same leaves, different digests: the order of the fields differs.
	return fmt.Errorf("%w: %s: its fields are in another order in the peer's", ErrTypeMismatch, name)
}

func fieldName(path string) string {
	if path == "" {
		return "(the value itself)"
	}
	return path
}
