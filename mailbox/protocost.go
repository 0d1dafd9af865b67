package mailbox

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// errProtoWire: proto bytes that do not parse; proto.Unmarshal would
// refuse them too.
var errProtoWire = errors.New("proto: malformed wire bytes")

// protoCost bounds what proto.Unmarshal allocates for b, a message of md,
// before it runs: protobuf gives no hook to charge as it allocates, and its
// bytes amplify (a repeated empty submessage is 2 bytes on the wire, a
// pointer and a struct decoded). It walks the fields as Unmarshal does and
// charges each occurrence what Unmarshal allocates for it: a submessage its
// struct, a string or bytes its length, an element of a repeated field its
// slot three times (the slice's old and new arrays while it grows), a map
// entry three times its key and value, an unknown field three times its
// bytes (kept, in a growing slice), a oneof member its wrapper.
func protoCost(md protoreflect.MessageDescriptor, b []byte) (int64, error) {
	return protoCostDepth(md, b, 0)
}

// protoGrowth: a repeated field's slot is charged this many times, for the
// old and the new array while append grows it by a quarter or more.
const protoGrowth = 3

func protoCostDepth(md protoreflect.MessageDescriptor, b []byte, depth int) (int64, error) {
	if depth > protowire.DefaultRecursionLimit {
		return 0, fmt.Errorf("%w: nested deeper than %d", errProtoWire, protowire.DefaultRecursionLimit)
	}
	var cost int64
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, fmt.Errorf("%w: %w", errProtoWire, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return 0, fmt.Errorf("%w: %w", errProtoWire, protowire.ParseError(m))
		}
		field, value := b[:n+m], b[n:n+m]
		b = b[n+m:]
		fd := fields.ByNumber(num)
		if fd == nil && md.ExtensionRanges().Has(num) {
			if xt, err := protoregistry.GlobalTypes.FindExtensionByNumber(md.FullName(), num); err == nil {
				fd = xt.TypeDescriptor()
				cost += 64 // its entry in the message's extension map
			}
		}
		if fd == nil || !wireFits(fd, typ) {
			cost += protoGrowth * int64(len(field)) // kept as unknown bytes
			continue
		}
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			cost += 16 // the oneof's wrapper struct
		}
		c, err := protoFieldCost(fd, typ, value, depth)
		if err != nil {
			return 0, err
		}
		cost += c
	}
	return cost, nil
}

// protoFieldCost charges one occurrence of a known field whose wire type
// fits it; value is the field's bytes after its tag.
func protoFieldCost(fd protoreflect.FieldDescriptor, typ protowire.Type, value []byte, depth int) (int64, error) {
	switch {
	case fd.IsMap():
		body, _ := protowire.ConsumeBytes(value)
		entry := fd.Message()
		slot := protoSlot(entry.Fields().ByNumber(1)) + protoSlot(entry.Fields().ByNumber(2))
		// The entry's fields are charged as a message's: its scalars as
		// optional pointers, which a map holds in place (more, never less).
		c, err := protoCostDepth(entry, body, depth+1)
		return protoGrowth*slot + c, err
	case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
		var body []byte
		if typ == protowire.StartGroupType {
			body, _ = protowire.ConsumeGroup(fd.Number(), value)
		} else {
			body, _ = protowire.ConsumeBytes(value)
		}
		c, err := protoCostDepth(fd.Message(), body, depth+1)
		c += protoStructSize(fd.Message())
		if fd.IsList() {
			c += protoGrowth * 8
		}
		return c, err
	case fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.BytesKind:
		body, _ := protowire.ConsumeBytes(value)
		c := int64(len(body))
		if fd.IsList() {
			c += protoGrowth * 24
		}
		return c, nil
	case typ == protowire.BytesType: // packed scalars: at most one per byte
		return protoGrowth * 8 * int64(len(value)), nil
	case fd.IsList():
		return protoGrowth * 8, nil
	}
	return 8, nil // an optional scalar is a pointer to it
}

// wireFits reports whether a field of fd's kind may arrive with wire type
// typ; Unmarshal keeps any other occurrence as unknown bytes.
func wireFits(fd protoreflect.FieldDescriptor, typ protowire.Type) bool {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.StringKind, protoreflect.BytesKind:
		return typ == protowire.BytesType
	case protoreflect.GroupKind:
		return typ == protowire.StartGroupType
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return typ == protowire.Fixed32Type || typ == protowire.BytesType && fd.IsList()
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return typ == protowire.Fixed64Type || typ == protowire.BytesType && fd.IsList()
	}
	return typ == protowire.VarintType || typ == protowire.BytesType && fd.IsList()
}

// protoSlot is the bytes a value of fd takes in a map or a slice.
func protoSlot(fd protoreflect.FieldDescriptor) int64 {
	if fd == nil {
		return 0
	}
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		return 24
	}
	return 8
}

// protoSizes caches the size of each message's Go struct by full name.
var protoSizes sync.Map

// protoStructSize is the size of the struct md decodes into: its Go type's
// when linked, else a bound from its field count (no field of a generated
// struct takes more than a slice header).
func protoStructSize(md protoreflect.MessageDescriptor) int64 {
	if v, ok := protoSizes.Load(md.FullName()); ok {
		return v.(int64)
	}
	size := int64(64 + 24*md.Fields().Len())
	if mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName()); err == nil {
		if t := reflect.TypeOf(mt.Zero().Interface()); t.Kind() == reflect.Pointer {
			size = int64(t.Elem().Size())
		}
	}
	protoSizes.Store(md.FullName(), size)
	return size
}
