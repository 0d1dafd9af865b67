package mailbox

import (
	"encoding/binary"
	"math"
	"time"
)

// msgpack primitives, append-style for the encoder (here) and slice-reading
// for the decoder (msgpackread.go): the compiled codecs (typecodec.go) write
// and read msgpack without an io.Writer or io.Reader between them and the
// bytes.

const (
	mpNil     = 0xc0
	mpFalse   = 0xc2
	mpTrue    = 0xc3
	mpBin8    = 0xc4
	mpBin16   = 0xc5
	mpBin32   = 0xc6
	mpExt8    = 0xc7
	mpExt16   = 0xc8
	mpExt32   = 0xc9
	mpFloat32 = 0xca
	mpFloat64 = 0xcb
	mpUint8   = 0xcc
	mpUint16  = 0xcd
	mpUint32  = 0xce
	mpUint64  = 0xcf
	mpInt8    = 0xd0
	mpInt16   = 0xd1
	mpInt32   = 0xd2
	mpInt64   = 0xd3
	mpFixExt4 = 0xd6
	mpFixExt8 = 0xd7
	mpStr8    = 0xd9
	mpStr16   = 0xda
	mpStr32   = 0xdb
	mpArray16 = 0xdc
	mpArray32 = 0xdd
	mpMap16   = 0xde
	mpMap32   = 0xdf

	// extTimestamp is msgpack's own extension type for time.Time.
	extTimestamp = -1
)

func appendNil(b []byte) []byte { return append(b, mpNil) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, mpInt8, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, mpInt16), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(n))
}

func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= 0x7f:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, mpUint8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpUint16), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), n)
}

func appendFloat32(b []byte, f float32) []byte {
	return binary.BigEndian.AppendUint32(append(b, mpFloat32), math.Float32bits(f))
}

func appendFloat64(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, mpFloat64), math.Float64bits(f))
}

func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n <= 31:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpStr16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
}

func appendStr(b []byte, s string) []byte { return append(appendStrHeader(b, len(s)), s...) }

func appendBinHeader(b []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpBin16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
}

func appendBin(b []byte, p []byte) []byte { return append(appendBinHeader(b, len(p)), p...) }

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpArray16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpArray32), uint32(n))
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpMap16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpMap32), uint32(n))
}

// appendTime writes msgpack's timestamp extension (32, 64 or 96 bit form).
func appendTime(b []byte, t time.Time) []byte {
	sec, nsec := t.Unix(), uint64(t.Nanosecond())
	switch {
	case sec>>34 == 0 && nsec == 0 && sec <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpFixExt4, 0xff), uint32(sec))
	case sec>>34 == 0:
		return binary.BigEndian.AppendUint64(append(b, mpFixExt8, 0xff), nsec<<34|uint64(sec))
	}
	b = append(b, mpExt8, 12, 0xff)
	b = binary.BigEndian.AppendUint32(b, uint32(nsec))
	return binary.BigEndian.AppendUint64(b, uint64(sec))
}

// extHeaderReserve is the room appendExtStart leaves for an ext header: an
// ext32's, shrunk by finishExt once the body's length is known.
const extHeaderReserve = 6

// appendExtStart reserves an ext header; finishExt fills it in.
func appendExtStart(b []byte) ([]byte, int) {
	at := len(b)
	return append(b, 0, 0, 0, 0, 0, 0), at
}

// finishExt writes the header of the ext of type typ whose body follows the
// reserved header at at, using the smallest header that fits (the body moves
// left when it is an ext8 or ext16).
func finishExt(b []byte, at int, typ int8) []byte {
	body := len(b) - at - extHeaderReserve
	var h []byte
	switch {
	case body <= math.MaxUint8:
		h = []byte{mpExt8, byte(body), byte(typ)}
	case body <= math.MaxUint16:
		h = []byte{mpExt16, byte(body >> 8), byte(body), byte(typ)}
	default:
		b[at] = mpExt32
		binary.BigEndian.PutUint32(b[at+1:], uint32(body))
		b[at+5] = byte(typ)
		return b
	}
	copy(b[at:], h)
	copy(b[at+len(h):], b[at+extHeaderReserve:])
	return b[:len(b)-(extHeaderReserve-len(h))]
}
