package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// protoactor_inproc is the in-process ceiling: the same exchanges between the root
// context and actors of one protoactor-go actor system, with no process boundary
// and no codec. A request is RequestFuture to an echo actor; one-way is Send to a
// counting actor.

const (
	// requestTimeout bounds one request/response round trip.
	requestTimeout = 10 * time.Second
	// streamTimeout bounds one one-way stream, from the first send to the count.
	streamTimeout = 2 * time.Minute
	// inprocMaxMessage is the largest payload protoactor_inproc is measured with;
	// beyond it a figure would only time a pointer.
	inprocMaxMessage = 1 << 20
)

func init() { registerSystem(protoactorInproc{}) }

// inprocActorSystem is shared by every protoactor_inproc link: a link is a pair of
// actors, as spawning an actor is the in-process counterpart of starting a child.
var inprocActorSystem = sync.OnceValue(newQuietActorSystem)

type protoactorInproc struct{}

func (protoactorInproc) name() string { return "protoactor_inproc" }

func (protoactorInproc) start(_ context.Context, cfg linkConfig) (link, error) {
	if cfg.maxMessage > inprocMaxMessage {
		return nil, notApplicable("in-process Send passes the slice by reference: no bytes move")
	}
	root := inprocActorSystem().Root
	return &inprocLink{
		root:    root,
		echo:    root.Spawn(echoProps()),
		counter: root.Spawn(counterProps(false)),
	}, nil
}

type inprocLink struct {
	root          *pa.RootContext
	echo, counter *pa.PID
}

func (l *inprocLink) request(p []byte) error {
	res, err := l.root.RequestFuture(l.echo, p, requestTimeout).Result()
	if err != nil {
		return err
	}
	if got, ok := res.([]byte); !ok || len(got) != len(p) {
		return fmt.Errorf("echo: got %T; want %d bytes", res, len(p))
	}
	return nil
}

func (l *inprocLink) oneway(p []byte, n int) error {
	return countedStream(l.root, l.counter, n, func() { l.root.Send(l.counter, p) })
}

func (l *inprocLink) onewayRecords(r *Record, n int) error {
	return countedStream(l.root, l.counter, n, func() { l.root.Send(l.counter, r) })
}

func (l *inprocLink) close() error {
	errEcho := l.root.StopFuture(l.echo).Wait()
	errCounter := l.root.StopFuture(l.counter).Wait()
	if errEcho != nil {
		return errEcho
	}
	return errCounter
}

// countedStream opens a count of n at counter, calls send n times and waits for
// the counter's answer, which must be n.
func countedStream(root *pa.RootContext, counter *pa.PID, n int, send func()) error {
	done := root.RequestFuture(counter, wrapperspb.Int64(int64(n)), streamTimeout)
	for range n {
		send()
	}
	res, err := done.Result()
	if err != nil {
		return fmt.Errorf("waiting for the count: %w", err)
	}
	got, ok := res.(*wrapperspb.Int64Value)
	if !ok {
		return fmt.Errorf("count: got %T; want *wrapperspb.Int64Value", res)
	}
	if got.Value != int64(n) {
		return fmt.Errorf("count: peer counted %d messages; want %d", got.Value, n)
	}
	return nil
}
