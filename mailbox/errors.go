package mailbox

import "errors"

// Errors returned by this package. Test for them with errors.Is: most are
// wrapped with detail (the option name, the offending length, the type).
var (
	// ErrInvalidOption is wrapped by NewEndpoint when an option is out of range.
	ErrInvalidOption = errors.New("mailbox: invalid option")

	// ErrAlreadyStarted is returned by Start and Handshake on an endpoint that already runs.
	ErrAlreadyStarted = errors.New("mailbox: endpoint already started")

	// ErrClosed is returned by Send after the link has ended, locally or by the peer.
	ErrClosed = errors.New("mailbox: endpoint closed")

	// ErrPeerGone means the stream ended (EOF or a write error) without a goodbye.
	ErrPeerGone = errors.New("mailbox: peer went away without goodbye")

	// ErrFrameTooLarge means a frame header announced more bytes than the limit.
	// The link is closed and the announced length is never allocated.
	ErrFrameTooLarge = errors.New("mailbox: frame too large")

	// ErrProtocol means the peer sent bytes that do not follow the wire format
	// (bad header, truncated frame, malformed envelope). The link is closed.
	ErrProtocol = errors.New("mailbox: protocol error")

	// ErrMessageTooLarge is returned by Send for a message that cannot fit one frame
	// of the peer's limit (before the handshake, of this side's own). Nothing
	// was queued. A message queued before the handshake that does not fit the
	// peer's limit fails Handshake with ErrHandshake and ErrMessageTooLarge.
	ErrMessageTooLarge = errors.New("mailbox: message too large")

	// ErrTypeNotRegistered is returned by Send for a value whose type (or the
	// type of a value it holds in an interface) has no registered name (see
	// RegisterType). Nothing was queued.
	ErrTypeNotRegistered = errors.New("mailbox: type not registered")

	// ErrUnknownType is the dead-letter reason for a message whose type name the
	// receiving side has not registered.
	ErrUnknownType = errors.New("mailbox: unknown type name")

	// ErrDecode is the dead-letter reason for a payload that does not decode.
	ErrDecode = errors.New("mailbox: payload does not decode")

	// ErrDecodeLimit is the dead-letter reason (wrapped in ErrDecode) for a
	// payload that would decode to more memory than its budget: MaxDecodeFactor
	// times its size plus DecodeAllowance, within what is left of the link's
	// WithMaxDecoded.
	ErrDecodeLimit = errors.New("mailbox: payload decodes to more than its budget")

	// ErrTypeMismatch is the dead-letter reason for a message of a type whose
	// shape differs between the two sides of a link (found by the handshake's
	// type fingerprints); with WithStrictTypes it fails the handshake.
	ErrTypeMismatch = errors.New("mailbox: type differs between the two sides")

	// ErrFrameStalled means a frame stopped arriving mid-way for longer than
	// WithFrameTimeout. The link is closed.
	ErrFrameStalled = errors.New("mailbox: frame stalled")

	// ErrEncode is returned by Send when a value fails to encode. Nothing was queued.
	ErrEncode = errors.New("mailbox: value does not encode")

	// ErrPeerStalled means the peer does not read what this side must send it
	// without waiting (system messages, answers from this side's reader)
	// past a bound: the link is broken with it, so that a peer cannot make
	// this side's memory grow by not reading.
	ErrPeerStalled = errors.New("mailbox: peer does not read")

	// ErrQueueFull is returned by Send when the user lane stayed full until the
	// context ended. It wraps the context's error too.
	ErrQueueFull = errors.New("mailbox: user lane full")

	// ErrHandshake means the peer's hello did not match (version, cookie, frame).
	ErrHandshake = errors.New("mailbox: handshake failed")

	// ErrHandshakeTimeout means the peer's hello did not arrive before the context ended.
	ErrHandshakeTimeout = errors.New("mailbox: handshake timed out")
)
