package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var errMsgpackTruncated = errors.New("msgpack: value truncated")

// checkMsgpack reports whether b is a sequence of complete msgpack values
// (a hand-written CustomEncoder may write several) whose container counts and
// byte lengths fit in what is left of b, nested at most maxMsgpackDepth deep.
// It reads b once and allocates nothing for shallow values.
func checkMsgpack(b []byte) error {
	var arr [32]int
	open := arr[:0] // items still to read in each open container, innermost last
	i := 0
	var err error
	for len(open) > 0 || i < len(b) {
		if n := len(open); n > 0 {
			if open[n-1] == 0 {
				open = open[:n-1]
				continue
			}
			open[n-1]--
		}
		if i >= len(b) {
			return errMsgpackTruncated
		}
		c := b[i]
		i++
		var (
			lenSize   int // bytes of a length field that follows the code
			fixed     int // bytes of payload that follow, when known from the code
			extra     int // bytes after the length field besides the counted ones (ext type)
			container int // 1 for an array, 2 for a map: items per counted element
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			if open, err = push(open, 2*int(c&0x0f), len(b)-i); err != nil {
				return err
			}
			continue
		case c <= 0x9f: // fixarray
			if open, err = push(open, int(c&0x0f), len(b)-i); err != nil {
				return err
			}
			continue
		case c <= 0xbf: // fixstr
			fixed = int(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc4, 0xd9: // bin8, str8
				lenSize = 1
			case 0xc5, 0xda: // bin16, str16
				lenSize = 2
			case 0xc6, 0xdb: // bin32, str32
				lenSize = 4
			case 0xc7: // ext8
				lenSize, extra = 1, 1
			case 0xc8: // ext16
				lenSize, extra = 2, 1
			case 0xc9: // ext32
				lenSize, extra = 4, 1
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				fixed = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				fixed = 8
			case 0xcc, 0xd0: // uint8, int8
				fixed = 1
			case 0xcd, 0xd1: // uint16, int16
				fixed = 2
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 (+ type byte)
				fixed = 1 + 1<<(c-0xd4)
			case 0xdc: // array16
				lenSize, container = 2, 1
			case 0xdd: // array32
				lenSize, container = 4, 1
			case 0xde: // map16
				lenSize, container = 2, 2
			case 0xdf: // map32
				lenSize, container = 4, 2
			default: // 0xc1 is never used
				return fmt.Errorf("msgpack: invalid code %#x", c)
			}
		}
		if lenSize > 0 {
			if len(b)-i < lenSize {
				return errMsgpackTruncated
			}
			var n uint64
			switch lenSize {
			case 1:
				n = uint64(b[i])
			case 2:
				n = uint64(binary.BigEndian.Uint16(b[i:]))
			case 4:
				n = uint64(binary.BigEndian.Uint32(b[i:]))
			}
			i += lenSize
			if container > 0 {
				if n > uint64(len(b)-i) {
					return fmt.Errorf("msgpack: container of %d entries overruns its %d bytes", n, len(b)-i)
				}
				if open, err = push(open, container*int(n), len(b)-i); err != nil {
					return err
				}
				continue
			}
			if n+uint64(extra) > uint64(len(b)-i) {
				return fmt.Errorf("msgpack: %d bytes announced, %d left", n, len(b)-i)
			}
			fixed = int(n) + extra
		}
		if fixed > len(b)-i {
			return errMsgpackTruncated
		}
		i += fixed
	}
	return nil
}

// push opens a container of n items, each at least one byte of the left remaining.
func push(open []int, n, left int) ([]int, error) {
	if n > left {
		return open, fmt.Errorf("msgpack: container of %d items overruns its %d bytes", n, left)
	}
	if n == 0 {
		return open, nil
	}
	if len(open) >= maxMsgpackDepth {
		return open, fmt.Errorf("msgpack: nested deeper than %d", maxMsgpackDepth)
	}
	return append(open, n), nil
}
