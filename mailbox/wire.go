package mailbox

import "fmt"

// This file holds every number and name that reaches the wire, and the
// bounds a reader applies to what it is sent. wire_test.go pins each of
// them (as yamux's const_test.go does): changing one breaks every peer
// built before the change, so bump protocolVersion instead.

// Frames: [length uint32 BE][type][version][reserved uint16], then the body.
const (
	// protocolVersion is carried in every frame header and in the hello.
	// Version 2: type expressions and tagged values in payloads, the
	// schema digest in the hello, the types frame.
	protocolVersion = 2

	// headerSize is the size of a frame header:
	//	[0:4] body length, big endian (not counting the header)
	//	[4]   frame type
	//	[5]   protocol version
	//	[6:8] reserved, zero
	headerSize = 8

	// msgPrefixSize is the length prefix of each message inside a data frame.
	msgPrefixSize = 4

	// maxFrameLimit is the largest value WithMaxFrame accepts (1 GiB).
	maxFrameLimit = 1 << 30
)

// frameType is the kind of a frame, the header's byte 4.
type frameType uint8

const (
	frameData    frameType = 1 // a batch of length-prefixed messages
	frameHello   frameType = 2 // the handshake
	frameGoodbye frameType = 3 // graceful close: nothing follows from this side
	frameTypes   frameType = 4 // the handshake's type fingerprints, when the hellos' digests differ
	frameAck     frameType = 5 // a cumulative count of numbered messages the peer has finished (CapAck)
)

func (t frameType) String() string {
	switch t {
	case frameData:
		return "data"
	case frameHello:
		return "hello"
	case frameGoodbye:
		return "goodbye"
	case frameTypes:
		return "types"
	case frameAck:
		return "ack"
	}
	return fmt.Sprintf("frame(%d)", uint8(t))
}

// The handshake: a hello each way, then, when the two schema digests
// differ, a types frame each way with digests and, for the types that
// differ, their fields.
const (
	// maxHello bounds a hello frame; the handshake refuses larger ones.
	maxHello = 4 << 10

	// Bodies of a types frame: a sub-kind byte, then a list.
	typesDigests = 1 // uvarint count, count × (string name, 8-byte digest)
	typesFields  = 2 // uvarint count, count × (string name, uvarint n, n × (string path, string shape))

	// maxTypesFrame bounds a types frame.
	maxTypesFrame = 4 << 20
)

// Capability flags of Hello.Caps.
const (
	// CapAck: the side understands ack frames (Endpoint.Acknowledge,
	// AckHandler). A side sends acks only to a peer that announced CapAck.
	CapAck uint64 = 1 << 0
)

// Lane says how the receiving side delivers a message: as a user message
// (SendUserMessage) or a system message (SendSystemMessage). The caller sets
// it from the pa.Process method it was called through, never from the
// message's type (PoisonPill is a user message). It also decides the queue:
// the user lane is bounded, the system lane never blocks. It crosses as
// flagSystem.
type Lane uint8

const (
	// LaneUser carries user messages (SendUserMessage): bounded, it pushes
	// back on its senders.
	LaneUser Lane = 0
	// LaneSystem carries system messages (SendSystemMessage, Stop): small,
	// it never blocks.
	LaneSystem Lane = 1
)

// String is "user" or "system".
func (l Lane) String() string {
	if l == LaneSystem {
		return "system"
	}
	return "user"
}

// Message flags, the first byte of every encoded message.
const (
	flagSystem = 1 << 0
	flagTarget = 1 << 1
	flagSender = 1 << 2
	flagHeader = 1 << 3
	flagsKnown = flagSystem | flagTarget | flagSender | flagHeader
)

// Payload kinds, the byte before the payload.
const (
	kindNil       = 0 // no payload
	kindBytes     = 1 // []byte: the rest of the message
	kindString    = 2 // string: the rest of the message
	kindScalar    = 3 // reflect.Kind byte + 8 bytes little endian
	kindTyped     = 4 // symbol (type expression) + msgpack
	kindProto     = 5 // symbol (full proto name) + proto.Marshal bytes
	kindPID       = 6 // a PID
	kindTypedTags = 8 // symbol (type expression) + tag table + msgpack
	// 7 was generic msgpack (protocol version 1); it is not used.
)

// extTag is the msgpack ext type of a tagged value in an interface position.
const extTag = 1

// Symbols: strings (type expressions, addresses) interned per link and
// direction. A reference is a uvarint: symNew defines the next table
// entry, symLiteral carries a string that is not interned, n >= symBase is
// entry n-symBase.
const (
	symNew     = 0
	symLiteral = 1
	symBase    = 2

	// maxSymbols bounds the table. Past it, strings travel as literals.
	maxSymbols = 1 << 16

	// maxSymbolLen and maxSymbolBytes bound one interned string and all of
	// them: longer strings travel as literals, and a peer that defines more
	// breaks the protocol (it cannot make us keep unbounded memory).
	maxSymbolLen   = 1 << 10
	maxSymbolBytes = 1 << 20
)

// nonhost is protoactor's address for "this system" before one is set; a
// PID with it crosses as the sender's address.
const nonhost = "nonhost"

// Type expressions (typename.go) and the values they name.
const (
	// protoPrefix marks a protobuf message's full name in a type expression.
	protoPrefix = "pb:"

	// maxExprArray bounds the length of an array type in an expression.
	maxExprArray = 1 << 20

	// maxExprDepth bounds the nesting of a type expression.
	maxExprDepth = 32

	// maxTypeExprs bounds the distinct type expressions a process resolves
	// from its peers: each may build Go types (reflect.SliceOf, ArrayOf...)
	// that are never freed, so a peer's literal names must not make them
	// without end. Programs use a handful.
	maxTypeExprs = 4096

	// maxLinkTypeExprs bounds the expressions one link may add to that
	// process-wide table (what it names that no link named before), so that
	// one peer cannot fill the table and leave the other links unable to
	// name a type new to the process: it takes maxTypeExprs /
	// maxLinkTypeExprs links (16) to fill it.
	maxLinkTypeExprs = 256

	// maxUntrustedTypeExprs bounds the expressions all untrusted peers
	// together (WithUntrustedPeer) may add to that table: a quarter of it,
	// so that compromised children, however many, cannot leave the trusted
	// links unable to name a type new to the process.
	maxUntrustedTypeExprs = maxTypeExprs / 4

	// maxMsgpackDepth bounds the nesting of a msgpack payload (as
	// encoding/json bounds JSON's): msgpack decodes nested values
	// recursively.
	maxMsgpackDepth = 10000
)
