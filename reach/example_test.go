//go:build !race

// The example starts two hosts in one process, which the race detector
// reports as a data race inside the pinned remote (every remote.Start
// rewrites gRPC's global logger, which the first host's transports read):
// it runs in tests without -race. reach's own tests keep one host per
// process.

package reach_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
	"github.com/procactor/procactor/reach"
)

// loopback returns a loopback address whose port was free a moment ago.
func loopback() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Two roots, A and B (here in one process; on two hosts in production): B
// asks an actor of A's child process, across the tunnel.
func Example() {
	ctx := context.Background()
	start := func() (*procnode.Node, *reach.Host) {
		node, err := procnode.NewNodeAt(loopback())
		if err != nil {
			panic(err)
		}
		host, err := reach.Start(node)
		if err != nil {
			panic(err)
		}
		return node, host
	}
	a, hostA := start()
	b, hostB := start()
	defer func() {
		for _, h := range []*reach.Host{hostB, hostA} {
			h.Close(ctx)
			h.Node().Close(ctx)
		}
	}()

	p, err := procnode.Spawn(ctx, a.Root(), agentKind) // A's child: A/1
	if err != nil {
		panic(err)
	}
	// B names A/1's root actor by address and Id (a PID object caches the
	// Process of the system that first resolved it: do not share one
	// between two systems of a process).
	child := pa.NewPID(p.Address(), procnode.RootID)
	res, err := b.Root().RequestFuture(child, &ping{Text: "hello"}, 5*time.Second).Result()
	if err != nil {
		panic(err)
	}
	answer := res.(*pong)
	fmt.Println(answer.Text, "from", strings.TrimPrefix(answer.Address, a.Address()))
	// Output: hello from /1
}
