package mailbox

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for Options. Each option documents its default.
const (
	// DefaultMaxFrame is the largest frame accepted or sent: 256 MiB.
	DefaultMaxFrame = 256 << 20
	// DefaultUserQueue is how many user-lane messages may wait for the writer.
	DefaultUserQueue = 4096
	// DefaultUserQueueBytes is how many encoded bytes the user lane may hold
	// waiting for the writer.
	DefaultUserQueueBytes = 1 << 20
	// DefaultSystemQueueBytes bounds the system lane's unwritten bytes.
	DefaultSystemQueueBytes = 16 << 20
	// DefaultReadBuffer is the reader's reusable buffer; larger frames get their own memory.
	DefaultReadBuffer = 256 << 10
	// DefaultGoodbyeTimeout bounds how long Close waits for the peer's goodbye.
	DefaultGoodbyeTimeout = 2 * time.Second
	// DefaultAckDelay is how long an acknowledgement waits for a write to
	// ride on before it is written alone.
	DefaultAckDelay = 5 * time.Millisecond
	// DefaultFrameTimeout is how long a frame may stop arriving mid-way
	// before the link is closed (WithFrameTimeout).
	DefaultFrameTimeout = 30 * time.Second

	minFrame = 1 << 10
)

// Decoded-size bounds. A payload decodes to at most MaxDecodeFactor times
// its own size plus DecodeAllowance bytes, counted as the decoder
// allocates (a slice element its size, a map entry its key, value and
// overhead, a pointer its target, a string its bytes, a value in an
// interface its box, a protobuf message its structs, an envelope's header
// its entries), and to no more than what is left of the link's
// WithMaxDecoded. Past either, the message is a
// dead letter with ErrDecodeLimit before the memory is allocated. 32 covers
// every ordinary shape (a []any of nils costs 16 bytes per byte on the
// wire, a slice of empty slices 24).
const (
	MaxDecodeFactor = 32       // decoded bytes per byte of payload, at most
	DecodeAllowance = 64 << 10 // decoded bytes every payload may use besides
)

// Option configures an Endpoint. Options only record values; they start nothing.
type Option func(*config)

type config struct {
	maxFrame       int
	userQueue      int
	userQueueBytes int
	sysQueueBytes  int
	readBuffer     int
	goodbyeTimeout time.Duration
	ackDelay       time.Duration
	handlerBudget  time.Duration
	localAddress   string
	logger         zerolog.Logger
	directWrite    directWriteMode
	strictTypes    bool
	frameTimeout   time.Duration
	maxDecoded     int64
	manualRelease  bool
	spinWait       time.Duration
	untrustedPeer  bool
}

type directWriteMode uint8

const (
	directAuto directWriteMode = iota
	directOn
	directOff
)

func defaultConfig() config {
	return config{
		maxFrame:       DefaultMaxFrame,
		userQueue:      DefaultUserQueue,
		userQueueBytes: DefaultUserQueueBytes,
		sysQueueBytes:  DefaultSystemQueueBytes,
		readBuffer:     DefaultReadBuffer,
		goodbyeTimeout: DefaultGoodbyeTimeout,
		ackDelay:       DefaultAckDelay,
		handlerBudget:  DefaultHandlerBudget,
		spinWait:       DefaultSpinWait,
		logger:         zerolog.Nop(),
		frameTimeout:   DefaultFrameTimeout,
	}
}

func (c *config) validate() error {
	switch {
	case c.maxFrame < minFrame || c.maxFrame > maxFrameLimit:
		return fmt.Errorf("%w: WithMaxFrame(%d) must be in [%d, %d]", ErrInvalidOption, c.maxFrame, minFrame, maxFrameLimit)
	case c.userQueue < 1:
		return fmt.Errorf("%w: WithUserQueue(%d) must be at least 1", ErrInvalidOption, c.userQueue)
	case c.userQueueBytes < 1:
		return fmt.Errorf("%w: WithUserQueueBytes(%d) must be at least 1", ErrInvalidOption, c.userQueueBytes)
	case c.sysQueueBytes < 1:
		return fmt.Errorf("%w: WithSystemQueueBytes(%d) must be at least 1", ErrInvalidOption, c.sysQueueBytes)
	case c.readBuffer < 4<<10:
		return fmt.Errorf("%w: WithReadBuffer(%d) must be at least 4096", ErrInvalidOption, c.readBuffer)
	case c.goodbyeTimeout <= 0:
		return fmt.Errorf("%w: WithGoodbyeTimeout(%v) must be positive", ErrInvalidOption, c.goodbyeTimeout)
	case c.ackDelay <= 0:
		return fmt.Errorf("%w: WithAckDelay(%v) must be positive", ErrInvalidOption, c.ackDelay)
	case c.frameTimeout <= 0:
		return fmt.Errorf("%w: WithFrameTimeout(%v) must be positive", ErrInvalidOption, c.frameTimeout)
	case c.handlerBudget <= 0:
		return fmt.Errorf("%w: WithHandlerBudget(%v) must be positive", ErrInvalidOption, c.handlerBudget)
	case c.spinWait < 0 || c.spinWait > time.Second:
		return fmt.Errorf("%w: WithSpinWait(%v) must be in [0, 1s]", ErrInvalidOption, c.spinWait)
	case c.maxDecoded < 0 || c.maxDecoded != 0 && c.maxDecoded < int64(c.maxFrame):
		return fmt.Errorf("%w: WithMaxDecoded(%d) must be at least the max frame (%d)", ErrInvalidOption, c.maxDecoded, c.maxFrame)
	}
	if c.maxDecoded == 0 {
		c.maxDecoded = 2 * int64(c.maxFrame)
	}
	return nil
}

// WithMaxFrame sets the largest frame this endpoint accepts (and announces to
// the peer in the handshake, which then never sends more). Default 256 MiB.
func WithMaxFrame(n int) Option { return func(c *config) { c.maxFrame = n } }

// WithUserQueue bounds the user lane: how many encoded messages may wait for
// the writer before Send blocks. Default 4096. The system lane is bounded in
// bytes only (WithSystemQueueBytes).
func WithUserQueue(n int) Option { return func(c *config) { c.userQueue = n } }

// WithUserQueueBytes bounds the user lane by size: once the encoded messages
// waiting for the writer reach n bytes, Send blocks as for a full
// WithUserQueue. A single message larger than n is let through when the lane
// is otherwise empty. Default 1 MiB. It also bounds the size of one write.
func WithUserQueueBytes(n int) Option { return func(c *config) { c.userQueueBytes = n } }

// WithSystemQueueBytes bounds the system lane: the encoded bytes of system
// messages waiting for the writer. The lane never blocks; a send past the
// bound breaks the link with ErrPeerStalled (a peer that does not read its
// Terminated and watches must not grow this side's memory). Default 16 MiB.
func WithSystemQueueBytes(n int) Option { return func(c *config) { c.sysQueueBytes = n } }

// WithReadBuffer sets the size of the reader's reusable buffer. Default 256 KiB.
// The buffer starts at 16 KiB (or n, if smaller) and grows to n the first
// time a frame needs more or a read fills it, so a link that carries little
// does not keep n bytes.
// Frames that fit are decoded in place; larger ones get memory of their own
// (a []byte payload that is at least half of one then aliases it instead
// of being copied; a smaller one is copied, so that keeping it does not
// keep the frame). Senders close frames of small messages at 64 KiB, so a
// smaller buffer costs an allocation per frame under load.
func WithReadBuffer(n int) Option { return func(c *config) { c.readBuffer = n } }

// WithGoodbyeTimeout bounds how long Close waits for queued messages to flush
// and for the peer's goodbye. Default 2s.
func WithGoodbyeTimeout(d time.Duration) Option { return func(c *config) { c.goodbyeTimeout = d } }

// WithAckDelay sets how long an acknowledgement (Acknowledge) waits for an
// outgoing write to ride on before it is written alone. Default 5ms.
func WithAckDelay(d time.Duration) Option { return func(c *config) { c.ackDelay = d } }

// WithHandlerBudget sets how long a lent Handler call (Endpoint.Lend) may
// run before the reader role is handed to a fresh goroutine, so that the
// link goes on reading: a call is taken over once it is seen running at two
// ticks of the endpoint's monitor, which ticks every d while lent calls
// happen (so after between d and 2d). Default 1ms.
func WithHandlerBudget(d time.Duration) Option { return func(c *config) { c.handlerBudget = d } }

// DefaultSpinWait is how long a reader that expects an answer polls the
// pipe before it sleeps (WithSpinWait).
const DefaultSpinWait = 100 * time.Microsecond

// WithSpinWait sets how long a read that expects an answer polls a
// PipeConn's pipe before it sleeps on the poller: a requester reading its
// own answer, and the reader right after a Handler call that sent
// something. On virtual machines waking a sleeping process costs tens of
// microseconds; the poll catches a quick answer first. It polls only while
// answers have lately come within d, yielding its P between reads; 0
// turns it off. Other streams than a PipeConn never poll. Default
// DefaultSpinWait.
func WithSpinWait(d time.Duration) Option { return func(c *config) { c.spinWait = d } }

// WithLocalAddress sets the address written for PIDs whose address is
// "nonhost" (protoactor's placeholder for "this system"). Default: left as is.
func WithLocalAddress(addr string) Option { return func(c *config) { c.localAddress = addr } }

// WithLogger sets the logger for link events. Default: zerolog.Nop().
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.logger = l } }

// WithDirectWrite decides whether a sender may write to the stream itself when
// the writer is idle (one non-blocking write, the rest handed to the writer).
// Default: on. It can only happen when the write side is a non-blocking file
// descriptor (a PipeConn, a net.Conn); on any other stream every write is the
// writer goroutine's whatever this option says, so WithDirectWrite(true)
// forces nothing: it restores the default. WithDirectWrite(false) turns
// direct writes off, so that one goroutine makes every write.
func WithDirectWrite(on bool) Option {
	return func(c *config) {
		if on {
			c.directWrite = directOn
		} else {
			c.directWrite = directOff
		}
	}
}

// WithStrictTypes makes the handshake fail (ErrHandshake wrapping
// ErrTypeMismatch, naming each type and a field that differs) when a type
// registered under the same name on both sides has another shape on the
// peer. Default off: the link comes up, one warning lists the mismatches,
// and messages of those types are dead letters with ErrTypeMismatch.
func WithStrictTypes(on bool) Option { return func(c *config) { c.strictTypes = on } }

// WithUntrustedPeer marks the peer untrusted for what it may make this
// process keep: the type expressions it names that are new to the process
// come out of a share of the process's table common to all untrusted peers
// (a quarter of it), besides the bound each link has. Untrusted peers
// together cannot fill the table, and a trusted link still resolves a type
// new to the process. (Package actor sets it on links made untrusted with
// Link.SetUntrusted.) The share is never given back, as the Go types built
// are never freed: once untrusted peers have named that many expressions,
// new untrusted peers name only what is already known (registered types
// and the expressions resolved before), while trusted ones are unaffected.
func WithUntrustedPeer() Option { return func(c *config) { c.untrustedPeer = true } }

// WithFrameTimeout bounds how long a frame may stop arriving mid-way (no
// byte of it for d) before the link is closed with ErrFrameStalled: a peer
// that announces a large frame and sends part of it must not pin that
// memory forever. Default 30s.
func WithFrameTimeout(d time.Duration) Option { return func(c *config) { c.frameTimeout = d } }

// WithMaxDecoded bounds the memory of decoded messages in flight on the
// link: decoded by the reader and not yet released (see Endpoint.Release
// and WithManualRelease). A message that would decode past it is a dead
// letter with ErrDecodeLimit. It must be at least the max frame. Default
// (0): twice the max frame, 512 MiB at the default frame.
func WithMaxDecoded(n int64) Option { return func(c *config) { c.maxDecoded = n } }

// WithManualRelease makes the Handler release each delivered message's
// decoded bytes itself (Endpoint.Release(env.Size)) once the message is
// processed, so that WithMaxDecoded bounds what is queued behind the link.
// Default off: a message is released when Handler.Deliver returns.
func WithManualRelease(on bool) Option { return func(c *config) { c.manualRelease = on } }
