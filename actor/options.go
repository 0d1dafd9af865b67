package actor

import (
	"io"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/nodeopt"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

type nodeConfig struct {
	logger       zerolog.Logger
	loggerSet    bool // WithLogger was given: dead letters go to it, not to stderr
	protoLevel   zerolog.Level
	incarnation  uint64
	leanRegistry bool // one lock per registry bucket (withLeanRegistry)
	holdLimit    int
	holdBytes    int
	inboxLimit   int
	inboxBytes   int
	watchLimit   int
	childSpawns  int
	sendTimeout  time.Duration
	workers      int
	throughput   int
	endpointOpts []mailbox.Option
	actorOpts    []pa.ConfigOption

	deadLetterLog    io.Writer
	deadLetterLogSet bool
}

// NodeOption configures a Node. Options only record values.
type NodeOption func(*nodeConfig)

// Defaults for NodeOptions.
const (
	DefaultHoldLimit            = 10000            // WithHoldLimit: messages a down link holds
	DefaultHoldBytes            = 64 << 20         // WithHoldBytes: encoded bytes a down link holds
	DefaultInboxLimit           = 100000           // WithInboxLimit: messages from links queued for a spawned actor
	DefaultInboxBytes           = 64 << 20         // WithInboxBytes: their decoded bytes
	DefaultWatchLimit           = 1 << 16          // WithWatchLimit: watches through one link
	DefaultSendTimeout          = 10 * time.Second // WithSendTimeout: a send's wait on a full link
	DefaultDispatcherThroughput = 300              // WithDispatcherThroughput: messages per mailbox run
)

// WithLogger sets the logger for link and node events; protoactor's own slog
// records go to it as well (at WithProtoactorLogLevel or above), and dead
// letters at warn level. Default: none, quiet but for dead letters, which
// are printed to stderr (see WithDeadLetterLog).
func WithLogger(l zerolog.Logger) NodeOption {
	return func(c *nodeConfig) { c.logger, c.loggerSet = l, true }
}

// WithProtoactorLogLevel sets the lowest level of protoactor's records passed
// to the logger. Default: warn (protoactor logs routine events at info).
func WithProtoactorLogLevel(l zerolog.Level) NodeOption {
	return func(c *nodeConfig) { c.protoLevel = l }
}

// withIncarnation seeds the node's actor id sequence, so that ids of unnamed
// actors never repeat across restarts of a node at the same address. Default
// 0. Only package procnode needs it (through internal/nodeopt): it is part
// of the protocol between a parent and its children, not of the API.
func withIncarnation(n uint64) NodeOption { return func(c *nodeConfig) { c.incarnation = n } }

// withLeanRegistry gives the node's process registry one map (and one
// lock) per bucket instead of SHARD_COUNT: a child process's node, which
// holds few actors and needs no 1024 locks.
func withLeanRegistry() NodeOption { return func(c *nodeConfig) { c.leanRegistry = true } }

func init() {
	nodeopt.Incarnation = func(n uint64) any { return withIncarnation(n) }
	nodeopt.LeanRegistry = func() any { return withLeanRegistry() }
}

// WithHoldLimit bounds how many messages a down link holds for when it comes
// back; past it they are dead letters. Default 10000.
func WithHoldLimit(n int) NodeOption { return func(c *nodeConfig) { c.holdLimit = n } }

// WithHoldBytes bounds the encoded bytes a down link holds for when it comes
// back; past it messages are dead letters (a single larger message is held
// when nothing else is). Default 64 MiB.
func WithHoldBytes(n int) NodeOption { return func(c *nodeConfig) { c.holdBytes = n } }

// WithInboxLimit sets the window, in messages, of an actor spawned by the
// activator (a kind spawned with Node.Spawn): when that many messages from
// links are queued for it and not yet processed, the links are told to
// pause their sends to it (a sender waits up to WithSendTimeout, then the
// message is a dead letter with ErrInboxFull); past twice the window (at
// least the window plus 65536) the node refuses them itself, as it does
// for a link's reader relaying from further away, which never waits. See
// the package doc: other actors are not bounded. Default 100000.
func WithInboxLimit(n int) NodeOption { return func(c *nodeConfig) { c.inboxLimit = n } }

// WithInboxBytes sets the same window in decoded bytes (a single larger
// message is taken when nothing is queued); the node refuses past twice it
// (at least the window plus 16 MiB). Default 64 MiB.
func WithInboxBytes(n int) NodeOption { return func(c *nodeConfig) { c.inboxBytes = n } }

// WithWatchLimit bounds how many watches (watchee here, watcher behind the
// link) may come in through one link; past it a Watch is refused (a dead
// letter with ErrRefused). Default 65536.
func WithWatchLimit(n int) NodeOption { return func(c *nodeConfig) { c.watchLimit = n } }

// WithChildSpawns lets actors of a child node spawn registered kinds on this
// node (Node.Spawn towards it), at most n live at a time per child link;
// what a child spawned is stopped when its link is gone. Default 0: spawn
// requests from children are refused (ErrSpawnRefused); spawns
// from a parent into its child are always allowed. A child's spawn request
// into another child's subtree (a sibling's), which this node would relay,
// is refused whatever n.
func WithChildSpawns(n int) NodeOption { return func(c *nodeConfig) { c.childSpawns = n } }

// WithWorkers bounds how many goroutines of the node's dispatcher
// (Node.Dispatcher) stay parked waiting for work. Default: 4 × GOMAXPROCS,
// at least 8.
func WithWorkers(n int) NodeOption { return func(c *nodeConfig) { c.workers = n } }

// WithDispatcherThroughput sets how many messages a mailbox run on the
// node's dispatcher processes before it yields. Default 300, as protoactor's
// default dispatcher.
func WithDispatcherThroughput(n int) NodeOption { return func(c *nodeConfig) { c.throughput = n } }

// WithSendTimeout bounds how long a send waits for room on a full link, or
// for an actor that paused its senders (WithInboxLimit), before it becomes
// a dead letter. Default 10s.
func WithSendTimeout(d time.Duration) NodeOption { return func(c *nodeConfig) { c.sendTimeout = d } }

// WithEndpointOptions passes options to every link's mailbox.Endpoint.
func WithEndpointOptions(opts ...mailbox.Option) NodeOption {
	return func(c *nodeConfig) { c.endpointOpts = append(c.endpointOpts, opts...) }
}

// WithActorSystemOptions passes options to protoactor's Configure, whose
// Config the node's ActorSystem is made with.
func WithActorSystemOptions(opts ...pa.ConfigOption) NodeOption {
	return func(c *nodeConfig) { c.actorOpts = append(c.actorOpts, opts...) }
}

// WithDeadLetterLog sets where a node with no logger (no WithLogger) writes
// its dead-letter lines. Default os.Stderr; nil silences them. In a child
// process, procnode sends them to the parent instead.
func WithDeadLetterLog(w io.Writer) NodeOption {
	return func(c *nodeConfig) { c.deadLetterLog, c.deadLetterLogSet = w, true }
}
