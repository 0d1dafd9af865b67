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
// reusable buffer (16 KiB until a frame or a backlog needs WithReadBuffer's
// size, 256 KiB by default; reads go to its front whenever all that was read
// was consumed, so a quiet link keeps a few pages); []byte payloads of 128
// KiB or more are written from the caller's slice, never copied into the
// batch.
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
// ReaderStats counts hand-overs, borrows, ticks, polls and spares.
//
// On a PipeConn, reads and writes are raw system calls on the non-blocking
// pipes, waiting on Go's poller (Go's own system-call entry wakes the
// runtime's sleeping monitor thread), and a read that expects an answer (a
// borrower's, or the reader's after a Handler call that sent something)
// polls the pipe for up to WithSpinWait before it sleeps: on a virtual
// machine, waking a process whose threads all sleep costs more than the
// answer takes to come. Polls that miss back off. A read that finds the
// pipe empty first makes the memory of the next []byte payload of 32 KiB to
// 256 KiB, of the size last received (a spare; all of a process's spares
// hold 4 MiB at most, beyond which reads make none): the page faults and
// cache misses of a fresh large allocation then fall while the peer works,
// not on the round trip. The link's end never waits for a lent call: Abort
// takes the role from it.
//
// # Failure
//
// A bad frame (a length over the limit, a truncated frame, an unknown frame
// type, a malformed envelope) closes the link with a typed error (test with
// errors.Is: ErrFrameTooLarge, ErrProtocol), one log line, and one
// Handler.Closed call; no announced length is allocated before the bytes
// arrive, and a frame that stops arriving mid-way for WithFrameTimeout
// (30 s) closes the link with ErrFrameStalled. A bad message inside a good
// frame (unknown type name, a payload that does not decode, a decoder
// panic) goes to Handler.DeadLetter with the reason, and the link lives on.
//
// Every count and length a payload announces must fit in the bytes that are
// there, nesting is bounded, and a payload decodes to at most
// MaxDecodeFactor (32) times its size plus DecodeAllowance (64 KiB),
// counted as the decoder allocates (a slice element its size, a map entry
// its key, value and overhead, a pointer its target, a string its bytes, a
// value in an interface its box, a protobuf message its structs, an
// envelope's header its entries), and within what is left of the link's WithMaxDecoded: past either, the
// message is a dead letter with ErrDecodeLimit before the memory is
// allocated. Neither an out-of-memory nor a stack overflow can be
// recovered, so neither may be reachable from a peer's bytes.
//
// # Types
//
// A message crosses as what was sent: RegisterType names a type T (both T
// and *T cross, each arriving in the form it was sent), and slices, arrays,
// maps and pointers of registered and predeclared types are named by type
// expressions ([]*bench.Record, map[string]any, [3]int) with no
// registration of their own. Values in interface positions (an any or
// error field, a []any, a map[string]any) carry their type too, so a
// registered struct, a PID or an int64 inside an any arrives as itself,
// never as a map. A protobuf message needs no RegisterType: it crosses by
// its full name, so a peer may name any protobuf message type linked into
// the receiving binary (protobuf's global registry), and it decodes within
// the bounds of Failure above; what may reach whom is the endpoint owner's
// to decide.
// An error whose type is not registered crosses as a
// *RemoteError with the same Error() text; errors.Is holds for the
// sentinels registered with RegisterError on both sides (procactor's own,
// protoactor's, and common ones of the standard library are). A value that
// cannot be named fails Send at once with ErrTypeNotRegistered, naming the
// Go type. Each registered type's fingerprint (its field names, tags and
// kinds) is compared at the handshake: a type whose shape differs on the
// peer makes its messages fail with ErrTypeMismatch naming the field
// (WithStrictTypes refuses the link instead).
//
// # Wire format
//
// A link is a stream of frames. Every frame starts with an 8-byte header:
//
//	[0:4] body length, uint32 big endian (header excluded)
//	[4]   frame type: 1 data, 2 hello, 3 goodbye, 4 types
//	[5]   protocol version (2)
//	[6:8] reserved, zero
//
// A hello body is, in uvarints and length-prefixed strings: version, caps,
// max frame, address, incarnation, cookie, then the 8-byte little-endian
// digest of every registered type's fingerprint. Each side sends one hello
// first (see Endpoint.Handshake). When the two digests differ, each side
// sends a types frame listing its types (1, a count, then name and 8-byte
// digest each), then one with the fields of the types registered on both
// sides whose digests differ (2, a count, then name, a count, and path and
// shape strings each). A goodbye has an empty body: the sender writes
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
//	         8 bytes little endian); 4 typed (symbol: type expression, then
//	         msgpack); 5 protobuf (symbol full name + proto bytes); 6 PID;
//	         8 typed with tags (symbol: type expression, the tag table: a
//	         uvarint count and that many symbols, then msgpack)
//
// A typed payload is msgpack as the type's codec writes it: a struct is a
// map of field name to value (an array with "as_array"), a PID an array
// [address, id, request id], a time.Time msgpack's timestamp extension, a
// protobuf message held in a field its proto bytes. A value in an interface
// position is untagged when msgpack's own type for it is its Go type (nil,
// bool, int, float32, float64, string, []byte, []any, map[string]any,
// time.Time), otherwise an ext of type 1 whose body is the uvarint index of
// its type expression in the message's tag table, then the value; the type
// expression "error" stands for a RemoteError, [text, [sentinel names]].
//
// A string is a uvarint length and its bytes. A PID is a symbol (address), a
// string (id) and a uvarint (request id). A symbol is a uvarint: 0 defines the
// next entry of the per-link, per-direction table (a string follows), 1 is a
// literal string that is not interned, n ≥ 2 refers to entry n-2. So type
// names and addresses cross the link once.
package mailbox
