package actor

import (
	"context"
	"errors"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// quietPing does not influence its receiver's receive timeout.
type quietPing struct{ N int }

// NotInfluenceReceiveTimeout implements pa.NotInfluenceReceiveTimeout.
func (*quietPing) NotInfluenceReceiveTimeout() {}

func init() {
	mailbox.RegisterType("actor_test.quietPing", &quietPing{})
	// actor_test.quietEcho answers a *quietPing with what it got.
	RegisterKind("actor_test.quietEcho", func(Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(ctx pa.Context) {
			switch ctx.Message().(type) {
			case *pa.Started, *pa.Stopping, *pa.Stopped:
			default:
				ctx.Respond(ctx.Message())
			}
		}), nil
	})
}

// TestQuietMessageOverLink: a message that does not influence the receive
// timeout, counted by the link (an actor spawned with Node.Spawn), reaches
// the actor as itself, with its sender; once the actor has stopped, a
// request with one fails at once as a dead letter.
func TestQuietMessageOverLink(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n", WithDeadLetterLog(nil))
	c := newNode(t, "n/1", WithDeadLetterLog(nil))
	join(t, n, c)
	pid, err := n.Spawn(context.Background(), "n/1", "actor_test.quietEcho")
	if err != nil {
		t.Fatal(err)
	}
	res, err := request(n.Root(), pid, &quietPing{N: 7})
	if p, ok := res.(*quietPing); err != nil || !ok || p.N != 7 {
		t.Fatalf("got %#v, %v; want the ping back", res, err)
	}
	if err := c.Root().StopFuture(pa.NewPID(pid.Address, pid.Id)).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := request(n.Root(), pid, &quietPing{N: 8}); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("got %v; want %v", err, pa.ErrDeadLetter)
	}
}
