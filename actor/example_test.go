package actor_test

import (
	"context"
	"fmt"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

func init() {
	// Kinds are registered from init, in every binary that may host them.
	actor.RegisterKind("example.greeter", func(args actor.Args) (*pa.Props, error) {
		greeting, _ := args.Value.(string)
		return args.Node.WithDispatcher(pa.PropsFromFunc(func(ctx pa.Context) {
			if name, ok := ctx.Message().(string); ok {
				ctx.Respond(greeting + ", " + name)
			}
		})), nil
	})
}

// Two nodes in one process, joined by a pipe pair: the parent spawns a
// registered kind in the child and asks it.
func Example() {
	ctx := context.Background()
	parent, err := actor.NewNode("n")
	if err != nil {
		panic(err)
	}
	defer parent.Close(ctx)
	child, err := actor.NewNode("n/1")
	if err != nil {
		panic(err)
	}
	defer child.Close(ctx) // runs first: children close before parents

	down, _ := parent.ChildLink("1")
	up, _ := child.ParentLink()
	a, b, err := mailbox.Pipe(0)
	if err != nil {
		panic(err)
	}
	cookie := mailbox.NewCookie()
	done := make(chan error, 1)
	go func() { _, err := up.Connect(ctx, b, cookie, 0); done <- err }()
	if _, err := down.Connect(ctx, a, cookie, 0); err != nil {
		panic(err)
	}
	if err := <-done; err != nil {
		panic(err)
	}

	pid, err := parent.Spawn(ctx, "n/1", "example.greeter", actor.WithName("greeter"), actor.WithArgs("hello"))
	if err != nil {
		panic(err)
	}
	res, err := parent.Root().RequestFuture(pid, "parent", time.Second).Result()
	fmt.Println(pid.Id, pid.Address, res, err)
	// Output: greeter n/1 hello, parent <nil>
}
