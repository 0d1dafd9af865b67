package reach

import (
	"context"
	"fmt"
	"net"
	"strconv"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
)

// StaticProvider is a cluster.ClusterProvider with a fixed member list: the
// roots at the given addresses, each hosting every kind of the local member.
// It needs no service (consul, etcd...) and binds nothing, which makes it the
// provider of loopback tests; every member must be started with the same
// list and kinds. A member that leaves is not replaced (restart the cluster,
// or use a real provider). Member ids are the addresses (reach sets each
// root's system id to its address).
type StaticProvider struct {
	addresses []string
}

var _ cluster.ClusterProvider = (*StaticProvider)(nil)

// NewStaticProvider returns a provider for the members at addresses
// (host:port, each a reach root).
func NewStaticProvider(addresses ...string) *StaticProvider {
	return &StaticProvider{addresses: append([]string(nil), addresses...)}
}

// StartMember implements cluster.ClusterProvider: it publishes the member
// list once.
func (s *StaticProvider) StartMember(c *cluster.Cluster) error {
	kinds := c.GetClusterKinds()
	members := make([]*cluster.Member, 0, len(s.addresses))
	for _, a := range s.addresses {
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || !isHostPort(a) {
			return fmt.Errorf("%w: static member %q is not host:port", ErrInvalidOption, a)
		}
		members = append(members, &cluster.Member{Id: a, Host: host, Port: int32(n), Kinds: kinds})
	}
	c.MemberList.UpdateClusterTopology(members)
	return nil
}

// StartClient implements cluster.ClusterProvider; a static list serves
// members only.
func (s *StaticProvider) StartClient(*cluster.Cluster) error {
	return fmt.Errorf("%w: StaticProvider serves cluster members only", ErrInvalidOption)
}

// Shutdown implements cluster.ClusterProvider; there is nothing to stop.
func (s *StaticProvider) Shutdown(bool) error { return nil }

// Activation is the spawn argument (procnode Args.Value) of the child
// process behind a ProcessKind activation: which identity it serves.
type Activation struct {
	Kind     string
	Identity string
}

func init() {
	mailbox.RegisterType("procactor.reach.Activation", &Activation{})
}

// ProcessKind makes a cluster kind whose activations live in child
// processes: the kind's props, root-local, are a stub that spawns the real
// actor in a child process of procKind (procnode.Spawn with opts, and
// WithArgs(&Activation{...}) appended), forwards every user message to the
// child's root actor with its sender and header, stops the child when it is
// poisoned or stopped (a topology move, the member leaving), and ends when
// the process actor ends for good (WithRestart(false) and a crash, the
// supervisor giving up): the next request activates the identity again.
// Restarts of the child stay invisible to callers, who only ever see the
// stub's PID at the root.
//
// The stub is needed because protoactor's placement compares PID pointers
// and its kinds' middleware needs a Cluster in the same actor system: a
// child process has neither.
func ProcessKind(kind, procKind string, opts ...procnode.Option) *cluster.Kind {
	opts = append([]procnode.Option(nil), opts...)
	return cluster.NewKind(kind, pa.PropsFromProducer(func() pa.Actor {
		return &stub{procKind: procKind, opts: opts}
	}))
}

// stub stands at the root for one activation served by a child process.
type stub struct {
	procKind string
	opts     []procnode.Option
	p        *procnode.Process
}

func (s *stub) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		act := &Activation{}
		if id := cluster.GetClusterIdentity(ctx); id != nil {
			act.Kind, act.Identity = id.Kind, id.Identity
		}
		// Spawn returns once the child is up: messages wait in the stub's
		// mailbox meanwhile, and are forwarded in order.
		opts := append(append([]procnode.Option(nil), s.opts...), procnode.WithArgs(act))
		p, err := procnode.Spawn(context.Background(), ctx, s.procKind, opts...)
		if err != nil {
			ctx.Logger().Warn("reach: activation's child process failed to start",
				"kind", act.Kind, "identity", act.Identity, "error", err)
			ctx.Stop(ctx.Self())
			return
		}
		s.p = p
	case *pa.Terminated:
		// The process actor, the stub's child, ends for good (its
		// restarts are invisible).
		if s.p != nil && m.Who.Equal(s.p.PID()) {
			ctx.Stop(ctx.Self())
		}
	case *cluster.ClusterInit, pa.SystemMessage, pa.AutoReceiveMessage:
		// Lifecycle: stopping the stub stops the process actor, its child
		// (the root actor stops, then signals after the deadlines).
	default:
		if s.p == nil {
			// Not spawned (Started failed): the stub is stopping. A request
			// fails at once, and the cluster retries with a new activation.
			if ctx.Sender() != nil {
				ctx.Respond(&pa.DeadLetterResponse{Target: ctx.Self()})
			}
			return
		}
		ctx.Forward(s.p.PID())
	}
}
