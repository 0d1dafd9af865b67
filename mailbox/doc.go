// Package mailbox is the wire between two processes: it turns actor messages
// into bytes on one duplex byte stream and back.
//
// It owns framing, the envelope codec (msgpack for user values, proto.Marshal
// for protoactor's protobuf messages, a hand-written codec for PIDs), the
// registry of message type names, the handshake, and the Endpoint that runs
// one link: a writer that batches and a reader that decodes in order and
// hands each message to a Handler.
//
// It must not know about processes, exec, routing or actor systems: it never
// resolves a PID and never spawns anything. Whoever owns an Endpoint decides
// what a delivered envelope means (package actor does that).
//
// # Lanes and backpressure
//
// Each envelope carries a Lane set by the caller. The user lane is bounded
// (WithUserQueue messages, WithUserQueueBytes bytes): a full lane blocks Send
// until the writer takes the batch or the context ends (ErrQueueFull);
// nothing is dropped silently. The system lane never blocks. A reader
// goroutine never waits on a writer: a send made from any endpoint's reader
// goroutine overflows the bound instead (protoactor answers some messages
// synchronously on the delivering goroutine; two readers waiting on their
// full links would deadlock).
//
// # Batching
//
// Send encodes into the open batch under a lock. A link that has been quiet
// for a few microseconds is written by the sender itself, in one
// non-blocking write (a request or its reply costs no goroutine hand-off);
// otherwise the writer goroutine drains the batch in one write, however many
// messages it holds. There is no timer. Within a batch, a data frame is
// closed at 64 KiB so that the reader decodes small messages from its
// reusable buffer; []byte payloads of 64 KiB or more are written from the
// caller's slice, never copied into the batch.
//
// # The reader role
//
// One goroutine at a time reads the stream and calls the Handler. A Handler
// may run user code on it (package actor runs an idle actor's Receive right
// there, so that a message costs no goroutine hand-off); before it does, it
// lends the rest of its call (Endpoint.Lend). A lent call that overstays the
// handler budget (WithHandlerBudget) loses the role to a fresh goroutine,
// which goes on reading at the next message; so does a lent call that is
// about to wait for an answer (ReleaseReader) or that sends into a full user
// lane, which then waits for room like any sender. A call that did not lend
// keeps the role however long it runs.
//
// After delivering an answer to a request (Endpoint.Standby), the reader
// stands by instead of reading when nothing more is buffered, so that the
// next requester can borrow the role (Borrow, ReadBorrowed): it reads and
// delivers its own answer on its own goroutine, and no goroutine wakes
// another. A borrower delivers only what a BorrowHandler allows, waits at
// most two ticks of the parked reader (1ms each), and leaves anything else
// to the reader; a standby nobody borrows ends after a tick or two.
// ReaderStats counts hand-overs, borrows and ticks.
//
// # Failure
//
// A bad frame (a length over the limit, a truncated frame, an unknown frame
// type, a malformed envelope) closes the link with a typed error (test with
// errors.Is: ErrFrameTooLarge, ErrProtocol), one log line, and one
// Handler.Closed call; no announced length is allocated before the bytes
// arrive. A bad message inside a good frame (unknown type name, a payload that
// does not decode, a decoder panic) goes to Handler.DeadLetter with the
// reason, and the link lives on. msgpack payloads are checked before they are
// decoded: every announced count or length must fit in the bytes that are
// there and nesting is bounded, since msgpack would allocate what a length
// says and recurse per level, and neither an out-of-memory nor a stack
// overflow can be recovered.
//
// # Wire format
//
// A link is a stream of frames. Every frame starts with an 8-byte header:
//
//	[0:4] body length, uint32 big endian (header excluded)
//	[4]   frame type: 1 data, 2 hello, 3 goodbye
//	[5]   protocol version (1)
//	[6:8] reserved, zero
//
// A hello body is, in uvarints and length-prefixed strings: version, caps,
// max frame, address, incarnation, cookie. Each side sends one hello first
// (see Endpoint.Handshake). A goodbye has an empty body: the sender writes
// nothing after it; the receiver flushes, answers with its own goodbye and
// closes.
//
// A data body is a batch of messages, each a 4-byte big-endian length and the
// message:
//
//	flags    1 byte: 0x1 system lane, 0x2 target, 0x4 sender, 0x8 header
//	target   PID, if flagged
//	sender   PID, if flagged
//	header   uvarint count, then count × (key string, value string), if flagged
//	kind     1 byte, then the payload, which runs to the message's end:
//	         0 nil; 1 []byte (raw); 2 string (raw); 3 scalar (Go kind byte +
//	         8 bytes little endian); 4 registered type (symbol name + msgpack);
//	         5 protobuf (symbol full name + proto bytes); 6 PID;
//	         7 unregistered map, slice or array (generic msgpack: arrives
//	         as map[string]any, map[any]any or []any)
//
// A string is a uvarint length and its bytes. A PID is a symbol (address), a
// string (id) and a uvarint (request id). A symbol is a uvarint: 0 defines the
// next entry of the per-link, per-direction table (a string follows), 1 is a
// literal string that is not interned, n ≥ 2 refers to entry n-2. So type
// names and addresses cross the link once.
package mailbox
