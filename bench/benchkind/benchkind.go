// Package benchkind is the child side of the bench's procactor system: the
// kind a bench child runs, shared by the re-executed bench binary and the lean
// child binary (bench/leanchild), which links nothing but procactor.
package benchkind

import (
	"fmt"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

// Kind is the registered kind name of the bench's echo-and-count actor.
const Kind = "bench.echo"

// Record is the small struct of oneway_struct, as procactor carries it.
type Record struct {
	ID    int64    `msgpack:"id"`
	Name  string   `msgpack:"name"`
	Tags  []string `msgpack:"tags"`
	Value float64  `msgpack:"value"`
}

// CountRequest asks the echo actor how many one-way messages arrived since
// the last CountRequest; it answers with the count (an int). Messages from one
// sender arrive in order, so every message sent before the request is counted.
type CountRequest struct{}

func init() {
	mailbox.RegisterType("bench.Record", &Record{})
	mailbox.RegisterType("bench.CountRequest", &CountRequest{})
	actor.RegisterKind(Kind, func(args actor.Args) (*pa.Props, error) {
		// The node's long-lived workers instead of a goroutine per mailbox run:
		// what a user who cares about latency writes.
		return args.Node.WithDispatcher(pa.PropsFromProducer(func() pa.Actor { return &echo{} })), nil
	})
}

// echo answers requests with their own payload and counts one-way messages.
type echo struct{ count int }

func (e *echo) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case []byte:
		if ctx.Sender() != nil {
			ctx.Respond(m)
			return
		}
		e.count++
	case *Record:
		e.count++
	case *CountRequest:
		ctx.Respond(e.count)
		e.count = 0
	case *pa.Started, *pa.Stopping, *pa.Stopped, *pa.Restarting:
	default:
		panic(fmt.Sprintf("bench echo: unexpected %T", m))
	}
}
