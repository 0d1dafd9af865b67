package mailbox

import (
	"fmt"
	"reflect"
	"time"
	"unsafe"

	pa "github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

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
		m := reflect.NewAt(t, p).Interface().(proto.Message)
		cost, err := protoCost(m.ProtoReflect().Descriptor(), v)
		if err != nil {
			return err
		}
		if err := d.charge(cost); err != nil {
			return err
		}
		return proto.Unmarshal(v, m)
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
