package mailbox

import (
	"reflect"
	"testing"
)

// TestWireConstants pins every constant that reaches the wire (wire.go), the
// frame bounds a peer must agree on (options.go) and the decode bounds (as
// yamux's const_test.go does). A change here breaks every peer built before it: bump
// protocolVersion instead.
func TestWireConstants(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"protocolVersion", protocolVersion, 2},
		{"headerSize", headerSize, 8},
		{"msgPrefixSize", msgPrefixSize, 4},
		{"maxFrameLimit", maxFrameLimit, 1 << 30},
		{"minFrame", minFrame, 1 << 10},
		{"DefaultMaxFrame", DefaultMaxFrame, 256 << 20},
		{"maxHello", maxHello, 4 << 10},
		{"maxSymbols", maxSymbols, 1 << 16},
		{"maxSymbolLen", maxSymbolLen, 1 << 10},
		{"maxSymbolBytes", maxSymbolBytes, 1 << 20},

		{"frameData", int64(frameData), 1},
		{"frameHello", int64(frameHello), 2},
		{"frameGoodbye", int64(frameGoodbye), 3},
		{"frameAck", int64(frameAck), 5},
		{"CapAck", int64(CapAck), 1},

		{"flagSystem", flagSystem, 0x1},
		{"flagTarget", flagTarget, 0x2},
		{"flagSender", flagSender, 0x4},
		{"flagHeader", flagHeader, 0x8},
		{"flagsKnown", flagsKnown, 0xf},

		{"kindNil", kindNil, 0},
		{"kindBytes", kindBytes, 1},
		{"kindString", kindString, 2},
		{"kindScalar", kindScalar, 3},
		{"kindTyped", kindTyped, 4},
		{"kindProto", kindProto, 5},
		{"kindPID", kindPID, 6},
		{"kindTypedTags", kindTypedTags, 8},
		{"frameTypes", int64(frameTypes), 4},
		{"typesDigests", typesDigests, 1},
		{"typesFields", typesFields, 2},
		{"maxTypesFrame", maxTypesFrame, 4 << 20},
		{"extTag", extTag, 1},
		{"extTimestamp", extTimestamp, -1},
		{"MaxDecodeFactor", MaxDecodeFactor, 32},
		{"DecodeAllowance", DecodeAllowance, 64 << 10},
		{"maxMsgpackDepth", maxMsgpackDepth, 10000},
		{"maxExprDepth", maxExprDepth, 32},
		{"maxExprArray", maxExprArray, 1 << 20},
		{"maxTypeExprs", maxTypeExprs, 4096},

		{"symNew", symNew, 0},
		{"symLiteral", symLiteral, 1},
		{"symBase", symBase, 2},

		{"LaneUser", int64(LaneUser), 0},
		{"LaneSystem", int64(LaneSystem), 1},

		// Scalars carry Go's reflect.Kind numbers on the wire.
		{"reflect.Bool", int64(reflect.Bool), 1},
		{"reflect.Int", int64(reflect.Int), 2},
		{"reflect.Int8", int64(reflect.Int8), 3},
		{"reflect.Int16", int64(reflect.Int16), 4},
		{"reflect.Int32", int64(reflect.Int32), 5},
		{"reflect.Int64", int64(reflect.Int64), 6},
		{"reflect.Uint", int64(reflect.Uint), 7},
		{"reflect.Uint8", int64(reflect.Uint8), 8},
		{"reflect.Uint16", int64(reflect.Uint16), 9},
		{"reflect.Uint32", int64(reflect.Uint32), 10},
		{"reflect.Uint64", int64(reflect.Uint64), 11},
		{"reflect.Float32", int64(reflect.Float32), 13},
		{"reflect.Float64", int64(reflect.Float64), 14},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d; want %d", c.name, c.got, c.want)
		}
	}
}
