package reach

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
)

// Defaults of the options.
const (
	DefaultQueueBytes  = 4 << 20
	DefaultMaxWatches  = 100_000
	DefaultMaxRequests = 100_000
	DefaultDialTimeout = 2 * time.Second
	DefaultKeepalive   = 10 * time.Second
)

// Option configures Start. Options only record values.
type Option func(*config)

type config struct {
	queueBytes  int64
	maxWatches  int
	maxRequests int
	dialTimeout time.Duration
	keepalive   time.Duration
	cluster     *clusterSpec
	maxPeers    int // the maxPeers constant; not an option (tests lower it)
}

// clusterSpec is what WithCluster records.
type clusterSpec struct {
	name     string
	provider cluster.ClusterProvider
	kinds    []*cluster.Kind
}

func defaultConfig() config {
	return config{
		queueBytes:  DefaultQueueBytes,
		maxWatches:  DefaultMaxWatches,
		maxRequests: DefaultMaxRequests,
		dialTimeout: DefaultDialTimeout,
		keepalive:   DefaultKeepalive,
		maxPeers:    maxPeers,
	}
}

func (c *config) validate() error {
	switch {
	case c.queueBytes < 64<<10:
		return fmt.Errorf("%w: WithQueueBytes(%d) must be at least 64 KiB", ErrInvalidOption, c.queueBytes)
	case c.queueBytes > 1<<30:
		return fmt.Errorf("%w: WithQueueBytes(%d) must be at most 1 GiB", ErrInvalidOption, c.queueBytes)
	case c.maxWatches < 1:
		return fmt.Errorf("%w: WithMaxWatches(%d) must be positive", ErrInvalidOption, c.maxWatches)
	case c.maxRequests < 0:
		return fmt.Errorf("%w: WithMaxRequests(%d) must not be negative", ErrInvalidOption, c.maxRequests)
	case c.dialTimeout <= 0:
		return fmt.Errorf("%w: WithDialTimeout(%v) must be positive", ErrInvalidOption, c.dialTimeout)
	case c.keepalive < time.Second:
		return fmt.Errorf("%w: WithKeepalive(%v) must be at least 1s", ErrInvalidOption, c.keepalive)
	case c.cluster != nil && (c.cluster.name == "" || c.cluster.provider == nil):
		return fmt.Errorf("%w: WithCluster needs a name and a provider", ErrInvalidOption)
	}
	return nil
}

// systemReserve is how far past WithQueueBytes system messages (Watch,
// Unwatch, Stop, Terminated) may still queue: a full tunnel must not keep a
// watcher from being told.
func (c *config) systemReserve() int64 { return c.queueBytes / 4 }

// maxRecv is the gRPC receive limit of a root's server: one batch of
// remote's writer holds at most what was queued, so a peer with the same
// options never sends more.
func (c *config) maxRecv() int { return int(c.queueBytes+c.systemReserve()) + 1<<20 }

// WithQueueBytes bounds the bytes queued towards each other root and not yet
// handed to gRPC (protoactor's own queue grows without a bound). Past it a
// user message is a dead letter with ErrTunnelFull, and a system message
// past a quarter more. Every root of a deployment must use the same value:
// it also sets the gRPC receive limit. Default 4 MiB.
func WithQueueBytes(n int) Option { return func(c *config) { c.queueBytes = int64(n) } }

// WithMaxWatches bounds the watches each other root may hold on actors of
// this root's tree; one more is answered at once with
// Terminated{AddressTerminated}. Default 100000.
func WithMaxWatches(n int) Option { return func(c *config) { c.maxWatches = n } }

// WithMaxRequests bounds the requests in flight to each other root that are
// remembered so that a lost root fails them at once (DeadLetterResponse);
// requests past it simply time out. Default 100000.
func WithMaxRequests(n int) Option { return func(c *config) { c.maxRequests = n } }

// WithDialTimeout bounds one connection attempt to another root. The pinned
// remote then waits 2s before it reports the root unreachable
// (EndpointTerminatedEvent; watchers get AddressTerminated). Default 2s.
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithKeepalive sets the gRPC keepalive ping interval (and its timeout) of
// connections to other roots, so that a root behind a dead network path is
// found lost. Default 10s.
func WithKeepalive(d time.Duration) Option { return func(c *config) { c.keepalive = d } }

// WithCluster makes the root a member of a protoactor cluster (cluster.StartMember)
// named name, found through provider (NewStaticProvider on loopback), with
// disthash identity lookup and the given kinds (ProcessKind for a kind
// hosted in child processes). Default: no cluster, plain remote.
func WithCluster(name string, provider cluster.ClusterProvider, kinds ...*cluster.Kind) Option {
	return func(c *config) { c.cluster = &clusterSpec{name: name, provider: provider, kinds: kinds} }
}
