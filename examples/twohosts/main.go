// Command twohosts runs two procactor roots on loopback ports, joined by
// package reach (protoactor-go's gRPC remote underneath): each root has a
// child process, which has a child process of its own, and the two
// grandchildren greet each other across the roots. Root A is this process;
// it starts root B as a second OS process (this binary, -role b), as a
// second host would run it.
//
//	go run ./examples/twohosts
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
	"github.com/procactor/procactor/reach"
)

type (
	// Hello is what a grandchild says to the other.
	Hello struct{ From string }
	// Greet tells a grandchild to greet Peer; it answers with the reply.
	Greet struct{ Peer *pa.PID }
	// Done tells root B that root A's grandchild has greeted: B may go.
	Done struct{}
	// Watch makes a root's coordinator watch PID.
	Watch struct{ PID *pa.PID }
)

func init() {
	mailbox.RegisterType("twohosts.Hello", &Hello{})
	mailbox.RegisterType("twohosts.Greet", &Greet{})
	mailbox.RegisterType("twohosts.Done", &Done{})
	// A root's child: it starts the grandchild, and its root actor does
	// nothing else.
	procnode.RegisterKind("twohosts.relay", func(args procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(ctx pa.Context) {
			if _, ok := ctx.Message().(*pa.Started); ok {
				if _, err := procnode.Spawn(context.Background(), ctx, "twohosts.greeter"); err != nil {
					panic(err)
				}
			}
		}), nil
	})
	// The grandchild: answers a Hello, and greets a peer on request.
	procnode.RegisterKind("twohosts.greeter", func(args procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(ctx pa.Context) {
			switch m := ctx.Message().(type) {
			case *Hello:
				ctx.Respond(&Hello{From: ctx.Self().Address})
			case *Greet:
				res, err := ctx.RequestFuture(m.Peer, &Hello{From: ctx.Self().Address}, time.Second).Result()
				if err != nil {
					ctx.Respond(err.Error())
					return
				}
				ctx.Respond(res)
			}
		}), nil
	})
}

// coordinator is the actor "twohosts" of each root: B's waits for A's Done,
// A's watches B's grandchild.
const coordinator = "twohosts"

func main() {
	procnode.Main()
	role := flag.String("role", "a", "a: start both roots; b: the second root (started by a)")
	addr := flag.String("addr", "", "this root's host:port (role b)")
	peer := flag.String("peer", "", "the other root's host:port (role b)")
	flag.Parse()
	if err := run(*role, *addr, *peer); err != nil {
		fmt.Fprintln(os.Stderr, "twohosts:", err)
		os.Exit(1)
	}
}

func run(role, addr, peer string) error {
	name, other := "A", "B"
	var (
		b     *exec.Cmd
		bDone chan struct{} // closed when B has exited, with bErr
		bErr  error
	)
	if role == "a" {
		var err error
		if addr, err = loopback(); err != nil {
			return err
		}
		if peer, err = loopback(); err != nil {
			return err
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		b = exec.Command(exe, "-role", "b", "-addr", peer, "-peer", addr)
		b.Stdout, b.Stderr = os.Stdout, os.Stderr
		if err := b.Start(); err != nil {
			return err
		}
		bDone = make(chan struct{})
		go func() {
			bErr = b.Wait()
			close(bDone)
		}()
		defer func() { // on an early return, B goes too
			select {
			case <-bDone:
			default:
				b.Process.Kill()
				<-bDone
			}
		}()
	} else {
		name, other = "B", "A"
	}

	node, err := procnode.NewNodeAt(addr)
	if err != nil {
		return err
	}
	host, err := reach.Start(node)
	if err != nil {
		node.Close(context.Background())
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer node.Close(context.Background())
	defer host.Close(context.Background())

	// The coordinator: B waits for A's Done; A's watcher reports here.
	done := make(chan struct{})
	gone := make(chan *pa.Terminated, 1)
	if _, err := node.Root().SpawnNamed(pa.PropsFromFunc(func(c pa.Context) {
		switch m := c.Message().(type) {
		case *Done:
			select {
			case <-done:
			default:
				close(done)
			}
		case *Watch:
			c.Watch(m.PID)
			c.Respond(m)
		case *pa.Terminated:
			gone <- m
		}
	}), coordinator); err != nil {
		return err
	}
	if _, err := procnode.Spawn(ctx, node.Root(), "twohosts.relay"); err != nil {
		return err
	}
	// Grandchildren are at address/1/1: the first child of the first child.
	mine := pa.NewPID(addr+"/1/1", procnode.RootID)
	theirs := pa.NewPID(peer+"/1/1", procnode.RootID)

	// Until the other root and its grandchild are up, a greeting is a dead
	// letter: try again, bounded by ctx.
	for {
		reply, err := node.Root().RequestFuture(mine, &Greet{Peer: theirs}, 2*time.Second).Result()
		if h, ok := reply.(*Hello); ok && err == nil {
			fmt.Printf("%s's grandchild greeted %s's grandchild; it answered from %s\n", name, other, h.From)
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no greeting from %s's grandchild: %v %v", other, reply, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if b == nil {
		// B: stay until A has greeted too.
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s never said it was done", other)
		}
	}
	// A: watch B's grandchild (the Watch goes out before the Done), tell B
	// it may go, and see it go.
	if _, err := node.Root().RequestFuture(pa.NewPID(addr, coordinator), &Watch{PID: theirs}, time.Second).Result(); err != nil {
		return err
	}
	for {
		node.Root().Send(pa.NewPID(peer, coordinator), &Done{})
		select {
		case <-bDone:
			if bErr != nil {
				return fmt.Errorf("root B: %w", bErr)
			}
			select {
			case t := <-gone:
				fmt.Printf("B's grandchild is gone: %v\n", t.Why)
			case <-ctx.Done():
				return errors.New("no Terminated for B's grandchild")
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s did not exit", other)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loopback returns a 127.0.0.1 address whose port was free a moment ago.
func loopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
