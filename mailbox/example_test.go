package mailbox_test

import (
	"context"
	"fmt"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// Greeting is a message type: registered once, from init, under a stable name.
type Greeting struct {
	Text string
	From *pa.PID
}

func init() { mailbox.RegisterType("example.Greeting", &Greeting{}) }

// ExampleEndpoint joins a parent and a child endpoint over a pipe pair,
// shakes hands, sends one message and closes the link gracefully.
func ExampleEndpoint() {
	parentConn, childConn, err := mailbox.Pipe(0)
	if err != nil {
		panic(err)
	}
	got := make(chan *Greeting, 1)
	child, _ := mailbox.NewEndpoint(childConn, mailbox.HandlerFuncs{
		OnDeliver: func(env *mailbox.Envelope) {
			// Runs on the reader goroutine: hand the message on, do not block.
			got <- env.Message.(*Greeting)
		},
	}, mailbox.WithLocalAddress("root/1"))
	parent, _ := mailbox.NewEndpoint(parentConn, mailbox.HandlerFuncs{}, mailbox.WithLocalAddress("root"))

	// The parent makes the cookie; the child receives it out of band.
	cookie := mailbox.NewCookie()
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := child.Handshake(ctx, mailbox.Hello{Address: "root/1", Incarnation: 1, Cookie: cookie})
		done <- err
	}()
	peer, err := parent.Handshake(ctx, mailbox.Hello{Address: "root", Cookie: cookie})
	if err != nil || <-done != nil {
		panic("handshake failed")
	}
	fmt.Println("parent sees child", peer.Address, "incarnation", peer.Incarnation)

	child.Start()
	parent.Start()

	// A sender PID that says "nonhost" leaves the parent with its address.
	err = parent.Send(ctx, &mailbox.Envelope{
		Target:  pa.NewPID("root/1", "worker"),
		Message: &Greeting{Text: "hello", From: pa.NewPID("nonhost", "$1")},
	})
	if err != nil {
		panic(err)
	}
	g := <-got
	fmt.Printf("child got %q from %s/%s\n", g.Text, g.From.Address, g.From.Id)

	fmt.Println("close:", parent.Close())
	<-child.Done()
	fmt.Println("child's link ended cleanly:", child.Err() == nil)
	// Output:
	// parent sees child root/1 incarnation 1
	// child got "hello" from root/$1
	// close: <nil>
	// child's link ended cleanly: true
}
