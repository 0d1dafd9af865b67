// Command timesync re-creates gipc's synchronization example with process
// actors: the parent synchronizes with a child process actor by a SYN/ACK
// handshake; right after it both read the wall clock, the child sends its
// reading, and the parent prints the difference between the two readings.
// On one machine both read the same clock, so the delta is the one-way
// latency of the ACK: from the moment the child has sent it to the moment the
// parent's actor handles it. One unmeasured handshake warms the path first
// (-warmup).
//
//	go run ./examples/timesync
//	go run ./examples/timesync -rounds 1000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
)

// Syn opens a handshake.
type Syn struct{ Round int }

// Ack answers a Syn.
type Ack struct{ Round int }

// ChildClock is the child's clock reading taken right after it sent its Ack.
type ChildClock struct {
	Round    int
	UnixNano int64
}

func init() {
	mailbox.RegisterType("examples.timesync.Syn", &Syn{})
	mailbox.RegisterType("examples.timesync.Ack", &Ack{})
	mailbox.RegisterType("examples.timesync.ChildClock", &ChildClock{})
	procnode.RegisterKind("timesync.clock", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return clock{} }), nil
	})
}

// clock is the child's root actor.
type clock struct{}

func (clock) Receive(ctx pa.Context) {
	if m, ok := ctx.Message().(*Syn); ok {
		ctx.Respond(&Ack{Round: m.Round})
		// Now in sync with the parent.
		now := time.Now().UnixNano()
		ctx.Send(ctx.Sender(), &ChildClock{Round: m.Round, UnixNano: now})
	}
}

// measure asks the syncer for one handshake; it answers with a delta.
type measure struct{ round int }

type delta struct {
	d   time.Duration
	err error
}

// syncer is the parent's actor: it sends SYN, reads the clock as soon as the
// ACK arrives, and compares its reading with the child's.
type syncer struct {
	child     *pa.PID
	requester *pa.PID
	round     int
	ptime     int64
}

func (s *syncer) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *Ack:
		s.ptime = time.Now().UnixNano() // first thing: now in sync with the child
		if m.Round != s.round {
			ctx.Send(s.requester, &delta{err: fmt.Errorf("ACK of round %d in round %d", m.Round, s.round)})
		}
	case *measure:
		s.requester, s.round, s.ptime = ctx.Sender(), m.round, 0
		ctx.Request(s.child, &Syn{Round: m.round})
	case *pa.DeadLetterResponse: // the Syn found no child: it was stopped
		ctx.Send(s.requester, &delta{err: errors.New("the child is gone")})
	case *ChildClock:
		if m.Round != s.round || s.ptime == 0 {
			ctx.Send(s.requester, &delta{err: fmt.Errorf("clock of round %d before its ACK", m.Round)})
			return
		}
		d := s.ptime - m.UnixNano
		ctx.Send(s.requester, &delta{d: time.Duration(max(d, -d))})
	}
}

func main() {
	procnode.Main() // first: in a child process this runs the child and never returns
	rounds := flag.Int("rounds", 1, "handshakes to measure; more than one also prints the median and minimum")
	warmup := flag.Int("warmup", 1, "handshakes to run before the measured ones")
	flag.Parse()
	if *rounds < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "timesync: -rounds must be at least 1 and -warmup not negative")
		os.Exit(2)
	}
	if err := run(*rounds, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "timesync:", err)
		os.Exit(1)
	}
}

func run(rounds, warmup int) error {
	n, err := procnode.NewNode()
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	}()
	interrupted := n.StopOnSignal() // Ctrl-C stops the child gracefully
	ctx := context.Background()
	p, err := procnode.Spawn(ctx, n.Root(), "timesync.clock", procnode.WithRestart(false))
	if err != nil {
		return err
	}
	s := n.Root().Spawn(n.WithDispatcher(pa.PropsFromProducer(func() pa.Actor { return &syncer{child: p.PID()} })))

	deltas := make([]time.Duration, 0, rounds)
	for r := 1; r <= warmup+rounds; r++ {
		res, err := n.Root().RequestFuture(s, &measure{round: r}, 10*time.Second).Result()
		if err == nil && res.(*delta).err != nil {
			err = res.(*delta).err
		}
		if interrupted.Err() != nil {
			fmt.Println("interrupted: the child was stopped")
			return nil
		}
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		d := res.(*delta)
		if r > warmup {
			deltas = append(deltas, d.d)
		}
	}
	if err := p.Stop(ctx); err != nil {
		return err
	}
	if err := p.Wait(ctx); err != nil {
		return err
	}

	fmt.Printf("Time delta: %.8f s.\n", deltas[0].Seconds())
	if rounds > 1 {
		slices.Sort(deltas)
		fmt.Printf("Median delta: %.8f s.\n", median(deltas).Seconds())
		fmt.Printf("Min delta: %.8f s.\n", deltas[0].Seconds())
	}
	return nil
}

// median of sorted durations.
func median(d []time.Duration) time.Duration {
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}
