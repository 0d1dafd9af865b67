package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

var errTruncated = errors.New("msgpack: value truncated")

// mpReader reads msgpack values from a byte slice. Every announced length is
// checked against the bytes left before it is used.
type mpReader struct {
	b []byte
	i int
}

func (r *mpReader) left() int { return len(r.b) - r.i }

func (r *mpReader) peek() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errTruncated
	}
	return r.b[r.i], nil
}

func (r *mpReader) next(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.i {
		return nil, errTruncated
	}
	v := r.b[r.i : r.i+n]
	r.i += n
	return v, nil
}

func (r *mpReader) byte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *mpReader) uintN(n int) (uint64, error) {
	p, err := r.next(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

// isNil consumes a nil and reports true, or leaves anything else in place.
func (r *mpReader) isNil() bool {
	if r.i < len(r.b) && r.b[r.i] == mpNil {
		r.i++
		return true
	}
	return false
}

func (r *mpReader) readBool() (bool, error) {
	c, err := r.byte()
	switch {
	case err != nil:
		return false, err
	case c == mpTrue:
		return true, nil
	case c == mpFalse:
		return false, nil
	}
	return false, fmt.Errorf("msgpack: code %#x is not a bool", c)
}

// readIntCode reads any msgpack integer: as int64 when signed is true or
// the value is below 2^63, else as its uint64 bits (big reports that).
func (r *mpReader) readInteger() (v int64, u uint64, neg bool, err error) {
	c, err := r.byte()
	if err != nil {
		return 0, 0, false, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), uint64(c), false, nil
	case c >= 0xe0:
		return int64(int8(c)), 0, true, nil
	}
	switch c {
	case mpUint8, mpUint16, mpUint32, mpUint64:
		u, err = r.uintN(1 << (c - mpUint8))
		return int64(u), u, false, err
	case mpInt8:
		x, err := r.uintN(1)
		return int64(int8(x)), uint64(int8(x)), int8(x) < 0, err
	case mpInt16:
		x, err := r.uintN(2)
		return int64(int16(x)), uint64(int16(x)), int16(x) < 0, err
	case mpInt32:
		x, err := r.uintN(4)
		return int64(int32(x)), uint64(int32(x)), int32(x) < 0, err
	case mpInt64:
		x, err := r.uintN(8)
		return int64(x), x, int64(x) < 0, err
	}
	r.i--
	return 0, 0, false, fmt.Errorf("msgpack: code %#x is not an integer", c)
}

// readInt reads an integer that must fit in bits signed bits.
func (r *mpReader) readInt(bits int) (int64, error) {
	v, u, neg, err := r.readInteger()
	if err != nil {
		return 0, err
	}
	if !neg && u > math.MaxInt64 || bits < 64 && (v < -1<<(bits-1) || v > 1<<(bits-1)-1) {
		return 0, fmt.Errorf("msgpack: integer overflows int%d", bits)
	}
	return v, nil
}

// readUint reads an integer that must fit in bits unsigned bits.
func (r *mpReader) readUint(bits int) (uint64, error) {
	_, u, neg, err := r.readInteger()
	if err != nil {
		return 0, err
	}
	if neg || bits < 64 && u > 1<<bits-1 {
		return 0, fmt.Errorf("msgpack: integer overflows uint%d", bits)
	}
	return u, nil
}

// readFloat reads a float32, a float64 or an integer as a float64.
func (r *mpReader) readFloat() (float64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	switch c {
	case mpFloat32:
		r.i++
		x, err := r.uintN(4)
		return float64(math.Float32frombits(uint32(x))), err
	case mpFloat64:
		r.i++
		x, err := r.uintN(8)
		return math.Float64frombits(x), err
	}
	v, u, neg, err := r.readInteger()
	if err != nil {
		return 0, err
	}
	if !neg && u > math.MaxInt64 {
		return float64(u), nil
	}
	return float64(v), nil
}

// readBytes reads a str or a bin and returns a view of its bytes.
func (r *mpReader) readBytes() ([]byte, error) {
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == mpStr8 || c == mpBin8:
		n, err = r.uintN(1)
	case c == mpStr16 || c == mpBin16:
		n, err = r.uintN(2)
	case c == mpStr32 || c == mpBin32:
		n, err = r.uintN(4)
	default:
		r.i--
		return nil, fmt.Errorf("msgpack: code %#x is not a string or bytes", c)
	}
	if err != nil {
		return nil, err
	}
	if n > uint64(r.left()) {
		return nil, fmt.Errorf("msgpack: %d bytes announced, %d left", n, r.left())
	}
	return r.next(int(n))
}

// readArrayLen reads an array header. Each element takes at least a byte,
// so a count over what is left is refused before anything is allocated.
func (r *mpReader) readArrayLen() (int, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c >= 0x90 && c <= 0x9f:
		n = uint64(c & 0x0f)
	case c == mpArray16:
		n, err = r.uintN(2)
	case c == mpArray32:
		n, err = r.uintN(4)
	default:
		r.i--
		return 0, fmt.Errorf("msgpack: code %#x is not an array", c)
	}
	if err != nil {
		return 0, err
	}
	if n > uint64(r.left()) {
		return 0, fmt.Errorf("msgpack: array of %d overruns its %d bytes", n, r.left())
	}
	return int(n), nil
}

// readMapLen reads a map header; each entry takes at least two bytes.
func (r *mpReader) readMapLen() (int, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c >= 0x80 && c <= 0x8f:
		n = uint64(c & 0x0f)
	case c == mpMap16:
		n, err = r.uintN(2)
	case c == mpMap32:
		n, err = r.uintN(4)
	default:
		r.i--
		return 0, fmt.Errorf("msgpack: code %#x is not a map", c)
	}
	if err != nil {
		return 0, err
	}
	if 2*n > uint64(r.left()) {
		return 0, fmt.Errorf("msgpack: map of %d overruns its %d bytes", n, r.left())
	}
	return int(n), nil
}

// readExt reads an ext header and returns its type and body.
func (r *mpReader) readExt() (typ int8, body []byte, err error) {
	c, err := r.byte()
	if err != nil {
		return 0, nil, err
	}
	var n uint64
	switch c {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n = 1 << (c - 0xd4)
	case mpExt8:
		n, err = r.uintN(1)
	case mpExt16:
		n, err = r.uintN(2)
	case mpExt32:
		n, err = r.uintN(4)
	default:
		r.i--
		return 0, nil, fmt.Errorf("msgpack: code %#x is not an ext", c)
	}
	if err != nil {
		return 0, nil, err
	}
	t, err := r.byte()
	if err != nil {
		return 0, nil, err
	}
	if n > uint64(r.left()) {
		return 0, nil, fmt.Errorf("msgpack: ext of %d bytes overruns its %d bytes", n, r.left())
	}
	body, err = r.next(int(n))
	return int8(t), body, err
}

// parseTime decodes the body of msgpack's timestamp extension.
func parseTime(b []byte) (time.Time, error) {
	switch len(b) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(b)), 0), nil
	case 8:
		x := binary.BigEndian.Uint64(b)
		nsec := x >> 34
		if nsec > 999999999 {
			return time.Time{}, fmt.Errorf("msgpack: timestamp nanoseconds %d", nsec)
		}
		return time.Unix(int64(x&(1<<34-1)), int64(nsec)), nil
	case 12:
		nsec := binary.BigEndian.Uint32(b)
		if nsec > 999999999 {
			return time.Time{}, fmt.Errorf("msgpack: timestamp nanoseconds %d", nsec)
		}
		return time.Unix(int64(binary.BigEndian.Uint64(b[4:])), int64(nsec)), nil
	}
	return time.Time{}, fmt.Errorf("msgpack: timestamp of %d bytes", len(b))
}

// skip steps over one value, nested at most maxMsgpackDepth deep.
func (r *mpReader) skip() error {
	return r.skipDepth(0)
}

func (r *mpReader) skipDepth(depth int) error {
	if depth > maxMsgpackDepth {
		return fmt.Errorf("msgpack: nested deeper than %d", maxMsgpackDepth)
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
	switch {
	case c <= 0x7f || c >= 0xe0, c == mpNil, c == mpTrue, c == mpFalse:
		r.i++
		return nil
	case c >= 0x80 && c <= 0x8f, c == mpMap16, c == mpMap32:
		n, err := r.readMapLen()
		for i := 0; err == nil && i < 2*n; i++ {
			err = r.skipDepth(depth + 1)
		}
		return err
	case c >= 0x90 && c <= 0x9f, c == mpArray16, c == mpArray32:
		n, err := r.readArrayLen()
		for i := 0; err == nil && i < n; i++ {
			err = r.skipDepth(depth + 1)
		}
		return err
	case c >= 0xa0 && c <= 0xbf, c == mpStr8, c == mpStr16, c == mpStr32, c == mpBin8, c == mpBin16, c == mpBin32:
		_, err := r.readBytes()
		return err
	case c == mpFloat32:
		_, err := r.next(5)
		return err
	case c == mpFloat64:
		_, err := r.next(9)
		return err
	case c >= mpUint8 && c <= mpInt64:
		_, _, _, err := r.readInteger()
		return err
	case c >= 0xd4 && c <= 0xd8, c == mpExt8, c == mpExt16, c == mpExt32:
		_, _, err := r.readExt()
		return err
	}
	return fmt.Errorf("msgpack: invalid code %#x", c)
}
