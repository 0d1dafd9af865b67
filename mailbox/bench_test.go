package mailbox

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
)

// benchPoint is a small registered struct encoded by msgpack's reflection.
type benchPoint struct {
	X, Y int64
	Name string
}

// benchPointCustom is the same struct with a hand-written msgpack codec.
type benchPointCustom struct {
	X, Y int64
	Name string
}

var (
	_ msgpack.CustomEncoder = (*benchPointCustom)(nil)
	_ msgpack.CustomDecoder = (*benchPointCustom)(nil)
)

func (p *benchPointCustom) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeArrayLen(3); err != nil {
		return err
	}
	if err := enc.EncodeInt(p.X); err != nil {
		return err
	}
	if err := enc.EncodeInt(p.Y); err != nil {
		return err
	}
	return enc.EncodeString(p.Name)
}

func (p *benchPointCustom) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 3 {
		return fmt.Errorf("benchPointCustom: array of %d, want 3", n)
	}
	if p.X, err = dec.DecodeInt64(); err != nil {
		return err
	}
	if p.Y, err = dec.DecodeInt64(); err != nil {
		return err
	}
	p.Name, err = dec.DecodeString()
	return err
}

func init() {
	RegisterType("mailbox_test.benchPoint", &benchPoint{})
	RegisterType("mailbox_test.benchPointCustom", &benchPointCustom{})
}

var benchPayloads = []struct {
	name string
	msg  any
}{
	{"bytes64", make([]byte, 64)},
	{"struct", &benchPoint{X: 1, Y: -2, Name: "point"}},
	{"structCustom", &benchPointCustom{X: 1, Y: -2, Name: "point"}},
	{"proto", &pa.Terminated{Who: pa.NewPID("node/1", "worker"), Why: pa.TerminatedReason_Stopped}},
}

func benchEnvelope(msg any) *Envelope {
	return &Envelope{Target: pa.NewPID("node/1", "worker"), Sender: pa.NewPID("node", "$42"), Message: msg}
}

// BenchmarkEncode measures encoding one envelope (target, sender, payload)
// into a reused buffer, symbols already interned.
func BenchmarkEncode(b *testing.B) {
	for _, p := range benchPayloads {
		b.Run(p.name, func(b *testing.B) {
			enc := newEncoder("node")
			env := benchEnvelope(p.msg)
			buf, _, err := enc.appendEnvelope(nil, env)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				buf, _, err = enc.appendEnvelope(buf[:0], env)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode measures decoding one envelope, symbols already interned.
func BenchmarkDecode(b *testing.B) {
	for _, p := range benchPayloads {
		b.Run(p.name, func(b *testing.B) {
			enc := newEncoder("node")
			env := benchEnvelope(p.msg)
			first, _, err := enc.appendEnvelope(nil, env)
			if err != nil {
				b.Fatal(err)
			}
			msg, _, err := enc.appendEnvelope(nil, env)
			if err != nil {
				b.Fatal(err)
			}
			dec := newDecoder()
			var out Envelope
			if bad, fatal := dec.decodeEnvelope(first, false, &out); bad != nil || fatal != nil {
				b.Fatal(bad, fatal)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if bad, fatal := dec.decodeEnvelope(msg, false, &out); bad != nil || fatal != nil {
					b.Fatal(bad, fatal)
				}
			}
		})
	}
}

// countingHandler counts deliveries and closes done when it reaches want.
type countingHandler struct {
	n    atomic.Int64
	want atomic.Int64
	done chan struct{}
}

func (h *countingHandler) Deliver(*Envelope) {
	if h.n.Add(1) == h.want.Load() {
		h.done <- struct{}{}
	}
}
func (h *countingHandler) DeadLetter(*Envelope, error) {}
func (h *countingHandler) Closed(error)                {}

// benchPair starts two endpoints over a pipe pair; the second one counts.
func benchPair(b *testing.B, opts ...Option) (*Endpoint, *countingHandler) {
	b.Helper()
	x, y, err := Pipe(1 << 20)
	if err != nil {
		b.Fatal(err)
	}
	h := &countingHandler{done: make(chan struct{}, 1)}
	ea, err := NewEndpoint(x, HandlerFuncs{}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	eb, err := NewEndpoint(y, h, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if err := ea.Start(); err != nil {
		b.Fatal(err)
	}
	if err := eb.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ea.Close()
		eb.Close()
	})
	return ea, h
}

// BenchmarkEndpointOneWay sends b.N messages through an endpoint pair over a
// pipe pair and waits until the last one is delivered.
func BenchmarkEndpointOneWay(b *testing.B) {
	for _, size := range []int{64, 1 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("bytes%d", size), func(b *testing.B) {
			ea, h := benchPair(b)
			env := benchEnvelope(make([]byte, size))
			ctx := context.Background()
			h.want.Store(int64(b.N))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ea.Send(ctx, env); err != nil {
					b.Fatal(err)
				}
			}
			<-h.done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSend measures the write path alone: Send into an endpoint whose
// peer is a plain reader that discards the bytes. allocs/op is the write
// path's.
func BenchmarkSend(b *testing.B) {
	for _, p := range benchPayloads {
		b.Run(p.name, func(b *testing.B) {
			x, y, err := Pipe(1 << 20)
			if err != nil {
				b.Fatal(err)
			}
			drained := make(chan struct{})
			go func() { io.Copy(io.Discard, y); close(drained) }()
			e, err := NewEndpoint(x, HandlerFuncs{})
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Start(); err != nil {
				b.Fatal(err)
			}
			env := benchEnvelope(p.msg)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := e.Send(ctx, env); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			e.Abort()
			y.Close()
			<-drained
		})
	}
}

// BenchmarkEndpointRoundTrip measures a request and its reply (sent from
// the peer's reader goroutine), with direct writes on and off.
func BenchmarkEndpointRoundTrip(b *testing.B) {
	for _, direct := range []bool{true, false} {
		b.Run(fmt.Sprintf("direct=%v", direct), func(b *testing.B) { benchRoundTrip(b, direct, 64) })
	}
	// A mid-sized payload, whose memory the reader makes while it waits
	// (spare.go).
	b.Run("64KiB", func(b *testing.B) { benchRoundTrip(b, true, 64<<10) })
}

// benchRoundTrip: one []byte of size bytes sent and echoed per op.
func benchRoundTrip(b *testing.B, direct bool, size int) {
	x, y, err := Pipe(1 << 20)
	if err != nil {
		b.Fatal(err)
	}
	replies := make(chan struct{}, 1)
	ea, err := NewEndpoint(x, HandlerFuncs{OnDeliver: func(*Envelope) { replies <- struct{}{} }}, WithDirectWrite(direct))
	if err != nil {
		b.Fatal(err)
	}
	var eb *Endpoint
	eb, err = NewEndpoint(y, HandlerFuncs{OnDeliver: func(env *Envelope) {
		eb.Send(context.Background(), &Envelope{Target: env.Sender, Message: env.Message})
	}}, WithDirectWrite(direct))
	if err != nil {
		b.Fatal(err)
	}
	ea.Start()
	eb.Start()
	defer ea.Close()
	defer eb.Close()
	env := benchEnvelope(make([]byte, size))
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := ea.Send(ctx, env); err != nil {
			b.Fatal(err)
		}
		<-replies
	}
}

// BenchmarkEndpointLarge sends one large []byte per op.
func BenchmarkEndpointLarge(b *testing.B) {
	for _, size := range []int{1 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			ea, h := benchPair(b)
			env := benchEnvelope(make([]byte, size))
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.want.Store(int64(i + 1))
				if err := ea.Send(ctx, env); err != nil {
					b.Fatal(err)
				}
				<-h.done
			}
		})
	}
}

// BenchmarkRawPipe is the baseline for BenchmarkEndpointLarge: the same bytes
// through the same kind of pipe pair with plain Write and io.ReadFull.
func BenchmarkRawPipe(b *testing.B) {
	for _, size := range []int{1 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			x, y, err := Pipe(1 << 20)
			if err != nil {
				b.Fatal(err)
			}
			defer x.Close()
			defer y.Close()
			src, dst := make([]byte, size), make([]byte, size)
			done := make(chan error)
			go func() {
				for {
					if _, err := io.ReadFull(y, dst); err != nil {
						done <- err
						return
					}
					done <- nil
				}
			}()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := x.Write(src); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			x.Close()
			<-done
		})
	}
}
