package main

import (
	"log/slog"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The actors behind the protoactor systems, in-process and in the gRPC child. The
// in-process system sends plain []byte and *Record; remote gRPC only carries
// protobuf messages, so there payloads travel as *wrapperspb.BytesValue (a Record
// as msgpack inside one) and counts as *wrapperspb.Int64Value.

// newQuietActorSystem returns an actor system whose logs go nowhere.
func newQuietActorSystem() *pa.ActorSystem {
	return pa.NewActorSystem(pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

// echoProps makes an actor that answers every payload with itself.
func echoProps() *pa.Props {
	return pa.PropsFromFunc(func(ctx pa.Context) {
		switch ctx.Message().(type) {
		case []byte, *wrapperspb.BytesValue:
			ctx.Respond(ctx.Message())
		}
	})
}

// counterProps makes a counter; decodeRecords makes it decode each BytesValue as a
// msgpack Record before counting it.
func counterProps(decodeRecords bool) *pa.Props {
	return pa.PropsFromProducer(func() pa.Actor { return &counter{decodeRecords: decodeRecords} })
}

// counter counts one-way messages. A request carrying *wrapperspb.Int64Value{n}
// opens a count: once n messages have arrived after it, the counter answers the
// requester with the number it counted (failed decodes are not counted, so the
// requester sees the shortfall) and the next count starts from zero.
type counter struct {
	decodeRecords bool
	want, got     int64
	failed        int64
	replyTo       *pa.PID // nil while no count is open
	rec           Record
}

func (c *counter) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *wrapperspb.Int64Value:
		c.want, c.replyTo = m.Value, ctx.Sender()
	case []byte, *Record:
		c.got++
	case *wrapperspb.BytesValue:
		if c.decodeRecords {
			if err := msgpack.Unmarshal(m.Value, &c.rec); err != nil {
				c.failed++
				break
			}
		}
		c.got++
	default:
		return
	}
	if c.replyTo != nil && c.got+c.failed >= c.want {
		ctx.Send(c.replyTo, wrapperspb.Int64(c.got))
		c.got, c.failed, c.replyTo = 0, 0, nil
	}
}
