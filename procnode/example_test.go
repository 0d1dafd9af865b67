package procnode_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
)

// The kinds of the examples are registered from init, as a program would:
// the child is a re-execution of this binary, so it has them too.
func init() {
	procnode.RegisterKind("example.greeter", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(c pa.Context) {
			switch m := c.Message().(type) {
			case string:
				if m == "crash" {
					panic("out of cheese")
				}
				c.Respond("hello, " + m)
			}
		}), nil
	})
}

// Main is the first call of main (here of TestMain). In the parent it
// returns at once; in a child started by Spawn it runs the child's node and
// never returns.
func ExampleMain() {
	// func main() {
	procnode.Main()
	fmt.Println("this is the parent")
	// node, err := procnode.NewNode() ... procnode.Spawn(...)
	// }

	// Output: this is the parent
}

// Spawn starts a child process hosting a registered kind, and returns once
// the child is up. Messages to p.PID() go to the child's root actor.
func ExampleSpawn() {
	node, err := procnode.NewNode()
	if err != nil {
		panic(err)
	}
	defer node.Close(context.Background())

	ctx := context.Background()
	p, err := procnode.Spawn(ctx, node.Root(), "example.greeter")
	if err != nil {
		panic(err)
	}
	reply, err := node.Root().RequestFuture(p.PID(), "parent", 5*time.Second).Result()
	if err != nil {
		panic(err)
	}
	fmt.Println(reply)

	if err := p.Stop(ctx); err != nil { // graceful: the child exits 0
		panic(err)
	}
	fmt.Println(p.ExitStatus())

	// Output:
	// hello, parent
	// exit code 0
}

// Wait returns the context's error while the child runs, and after its end
// nil or an *ExitError saying why it ended. It may be called many times.
func ExampleProcess_Wait() {
	node, err := procnode.NewNode()
	if err != nil {
		panic(err)
	}
	defer node.Close(context.Background())

	ctx := context.Background()
	p, err := procnode.Spawn(ctx, node.Root(), "example.greeter",
		procnode.WithRestart(false), // a failure ends the Process: no restart
		procnode.WithStderr(nil))    // keep the child's stderr in the exit status only
	if err != nil {
		panic(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	fmt.Println(p.Wait(short))

	node.Root().Send(p.PID(), "crash") // the root actor panics: a failure
	var ee *procnode.ExitError
	if err := p.Wait(ctx); errors.As(err, &ee) {
		fmt.Println("failed:", ee.Failed)
		fmt.Println("reason:", ee.Reason)
	}

	// Output:
	// context deadline exceeded
	// failed: true
	// reason: root actor panicked: out of cheese
}
