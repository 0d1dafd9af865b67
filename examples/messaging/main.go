// Command messaging re-creates gipc's infinite_send_to_child example with
// process actors: an actor in the parent sends a message to a child process
// actor every second, and the child prints each one. Ctrl-C (or SIGTERM)
// stops the child gracefully (Node.StopOnSignal) and the sending actor, and
// the program exits 0.
//
//	go run ./examples/messaging                 # until Ctrl-C
//	go run ./examples/messaging -count 3 -interval 200ms
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
)

// Note is what the parent's sender actor sends to the child.
type Note struct {
	Seq  int
	Text string
}

// Ack is the child's answer: the note was printed.
type Ack struct{ Seq int }

func init() {
	mailbox.RegisterType("examples.messaging.Note", &Note{})
	mailbox.RegisterType("examples.messaging.Ack", &Ack{})
	procnode.RegisterKind("messaging.printer", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return printer{} }), nil
	})
}

// printer is the child's root actor: it prints every note it gets. Its
// stdout is the parent's (inherited).
type printer struct{}

func (printer) Receive(ctx pa.Context) {
	if m, ok := ctx.Message().(*Note); ok {
		fmt.Printf("child got message: %s\n", m.Text)
		ctx.Respond(&Ack{Seq: m.Seq})
	}
}

type tick struct{}

// sender is the parent's actor: on every tick it sends the next note to the
// child; after count acknowledgements (0 = never) it reports on done.
type sender struct {
	child    *pa.PID
	interval time.Duration
	count    int
	done     chan<- struct{}

	sent, acked int
	cancel      scheduler.CancelFunc
}

func (s *sender) Receive(ctx pa.Context) {
	switch ctx.Message().(type) {
	case *pa.Started:
		ctx.Send(ctx.Self(), tick{})
		// The timer sends through the root context (safe from any
		// goroutine), never through this actor's context.
		s.cancel = scheduler.NewTimerScheduler(ctx.ActorSystem().Root).
			SendRepeatedly(s.interval, s.interval, ctx.Self(), tick{})
	case tick:
		if s.count > 0 && s.sent >= s.count {
			s.cancel()
			return
		}
		s.sent++
		ctx.Request(s.child, &Note{Seq: s.sent, Text: fmt.Sprintf("#%d, sent by an actor in the parent process", s.sent)})
	case *Ack:
		s.acked++
		if s.count > 0 && s.acked == s.count {
			close(s.done)
		}
	case *pa.Stopping:
		if s.cancel != nil {
			s.cancel()
		}
	}
}

func main() {
	procnode.Main() // first: in a child process this runs the child and never returns
	interval := flag.Duration("interval", time.Second, "time between two messages")
	count := flag.Int("count", 0, "stop after this many messages (0 = until Ctrl-C)")
	flag.Parse()
	if *interval <= 0 || *count < 0 {
		fmt.Fprintln(os.Stderr, "messaging: -interval must be positive and -count not negative")
		os.Exit(2)
	}
	if err := run(*interval, *count); err != nil {
		fmt.Fprintln(os.Stderr, "messaging:", err)
		os.Exit(1)
	}
}

func run(interval time.Duration, count int) error {
	n, err := procnode.NewNode()
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	}()
	// Ctrl-C reaches the whole foreground process group, but the child runs in
	// a process group of its own: only the parent sees it, and stops the child
	// gracefully. A second Ctrl-C ends the program the usual way.
	sigCtx := n.StopOnSignal(os.Interrupt, syscall.SIGTERM)

	p, err := procnode.Spawn(sigCtx, n.Root(), "messaging.printer")
	if err != nil {
		if sigCtx.Err() != nil {
			return nil // interrupted while starting: nothing runs
		}
		return err
	}
	fmt.Printf("child pid %d\n", p.OSPid())

	done := make(chan struct{})
	s, err := n.Root().SpawnNamed(n.WithDispatcher(pa.PropsFromProducer(func() pa.Actor {
		return &sender{child: p.PID(), interval: interval, count: count, done: done}
	})), "sender")
	if err != nil {
		return err
	}

	var reason string
	select {
	case <-done:
		reason = fmt.Sprintf("sent %d messages", count)
	case <-sigCtx.Done():
		reason = "interrupted"
	case <-p.Done():
		reason = "child ended"
		if sigCtx.Err() != nil { // the signal stopped it
			reason = "interrupted"
		}
	}
	_ = n.Root().StopFuture(s).Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		return fmt.Errorf("stopping the child: %w", err)
	}
	err = p.Wait(ctx) // nil after a clean exit, else an *procnode.ExitError
	fmt.Printf("%s; child stopped (%v)\n", reason, p.ExitStatus())
	return err
}
