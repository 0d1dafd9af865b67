package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// msgs makes a data frame body of length-prefixed messages.
func msgs(ms ...[]byte) []byte {
	var b []byte
	for _, m := range ms {
		b = append(b, 0, 0, 0, 0)
		putUint32(b[len(b)-4:], uint32(len(m)))
		b = append(b, m...)
	}
	return b
}

func putUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// aliveMsg is a good message that follows a bad one: it must arrive.
var aliveMsg = rawMsg(byte(flagTarget), byte(symLiteral), "node", "t", 0, byte(kindString), []byte("alive"))

// hostilePeer starts an endpoint whose peer is the raw other end of tr, and
// writes stream to it. closeAfter closes the raw end after writing (EOF).
func hostilePeer(t *testing.T, tr transport, stream []byte, closeAfter bool, opts ...Option) (*Endpoint, *collector, *logBuffer) {
	t.Helper()
	x, raw := tr.make(t)
	c := newCollector()
	logs := &logBuffer{}
	e := newTestEndpoint(t, x, c, append(opts, WithLogger(logs.logger(zerolog.InfoLevel)))...)
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(wrote)
		raw.Write(stream) // fails once the endpoint gives up on us: fine
		if closeAfter {
			raw.Close()
		}
	}()
	go func() { io.Copy(io.Discard, raw); close(drained) }()
	t.Cleanup(func() {
		e.Abort()
		raw.Close()
		<-wrote
		<-drained
	})
	return e, c, logs
}

// TestHostileFrames writes hand-crafted bad streams: the link closes with a
// typed error, reported once to the Handler and logged in one line.
func TestHostileFrames(t *testing.T) {
	t.Parallel()
	good := frame(frameData, msgs(aliveMsg))
	for _, c := range []struct {
		name       string
		stream     []byte
		closeAfter bool
		opts       []Option
		want       error
	}{
		{"header length 2^31", rawHeader(1<<31, 1, protocolVersion, 0), false, nil, ErrFrameTooLarge},
		{"length over WithMaxFrame", append(rawHeader(4<<10+1, 1, protocolVersion, 0), make([]byte, 4<<10+1)...), false, []Option{WithMaxFrame(4 << 10)}, ErrFrameTooLarge},
		{"truncated frame then EOF", append(rawHeader(100, 1, protocolVersion, 0), make([]byte, 50)...), true, nil, ErrProtocol},
		{"truncated large frame then EOF", append(rawHeader(1<<20, 1, protocolVersion, 0), make([]byte, 300<<10)...), true, nil, ErrProtocol},
		{"truncated header then EOF", []byte{0, 0, 0}, true, nil, ErrProtocol},
		{"garbage", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage garbage"), false, nil, ErrProtocol},
		{"unknown frame type", rawHeader(0, 9, protocolVersion, 0), false, nil, ErrProtocol},
		{"bad version", rawHeader(0, 1, 7, 0), false, nil, ErrProtocol},
		{"reserved bits", rawHeader(0, 1, protocolVersion, 1), false, nil, ErrProtocol},
		{"hello after start", frame(frameHello, appendHello(nil, &Hello{Version: 1})), false, nil, ErrProtocol},
		{"message overrunning its frame", frame(frameData, []byte{0, 0, 0, 9, 1, 2}), false, nil, ErrProtocol},
		{"stray bytes after the messages", frame(frameData, append(msgs(aliveMsg), 0, 0)), false, nil, ErrProtocol},
		{"undefined symbol reference", frame(frameData, msgs(rawMsg(byte(flagTarget), 7, "id", 0, byte(kindNil)))), false, nil, ErrProtocol},
		{"unknown message flags", frame(frameData, msgs(rawMsg(byte(0x40), byte(kindNil)))), false, nil, ErrProtocol},
		{"empty message", frame(frameData, msgs([]byte{})), false, nil, ErrProtocol},
		{"EOF without goodbye", good, true, nil, ErrPeerGone},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			eachTransport(t, func(t *testing.T, tr transport) {
				e, col, logs := hostilePeer(t, tr, c.stream, c.closeAfter, c.opts...)
				err := col.waitClosed(t)
				if !errors.Is(err, c.want) {
					t.Fatalf("Closed: got %v; want %v", err, c.want)
				}
				<-e.Done()
				if err := e.Err(); !errors.Is(err, c.want) {
					t.Errorf("Err: got %v; want %v", err, c.want)
				}
				if n := col.closedCount(); n != 1 {
					t.Errorf("Closed called %d times; want 1", n)
				}
				if err := e.Send(context.Background(), &Envelope{Message: 1}); !errors.Is(err, ErrClosed) || !errors.Is(err, c.want) {
					t.Errorf("Send after the failure: got %v; want ErrClosed wrapping %v", err, c.want)
				}
				lines := logs.lines()
				if len(lines) != 1 || !strings.Contains(lines[0], "mailbox: link") {
					t.Errorf("log: got %q; want one line", lines)
				}
			})
		})
	}
}

// TestHostileMessages puts bad messages inside good frames: each becomes a
// dead letter with its reason and the envelope parts that decoded, and the
// link lives on.
func TestHostileMessages(t *testing.T) {
	t.Parallel()
	for _, c := range badMessages {
		if c.want == ErrProtocol {
			continue // fatal: TestHostileFrames and TestDecodeBadMessages
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			eachTransport(t, func(t *testing.T, tr transport) {
				stream := frame(frameData, msgs(c.msg, aliveMsg))
				stream = append(stream, frame(frameData, msgs(aliveMsg))...)
				e, col, logs := hostilePeer(t, tr, stream, false)
				got, reasons := col.wait(t, 3)
				if !errors.Is(reasons[0], c.want) {
					t.Fatalf("reason: got %v; want %v", reasons[0], c.want)
				}
				if got[0].Message != nil {
					t.Errorf("dead letter message: got %T; want nil", got[0].Message)
				}
				if c.msg[0]&flagTarget != 0 && (got[0].Target == nil || got[0].Target.Address != "n") {
					t.Errorf("dead letter target: got %v; want the decoded target", got[0].Target)
				}
				for i := 1; i < 3; i++ {
					if reasons[i] != nil || got[i].Message != "alive" {
						t.Fatalf("message %d after the bad one: got %v (%v); want alive", i, got[i].Message, reasons[i])
					}
				}
				select {
				case <-e.Done():
					t.Fatalf("link ended: %v", e.Err())
				default:
				}
				if lines := logs.lines(); len(lines) != 0 {
					t.Errorf("log: got %q; want nothing (the Handler reports dead letters)", lines)
				}
			})
		})
	}
}

// TestPeerThatDoesNotRead: a peer that sends requests and never reads the
// answers, or makes the handler answer on the system lane without reading,
// cannot grow this side's memory: past the bound the link breaks with
// ErrPeerStalled (and the unwritten answers are dropped with it).
func TestPeerThatDoesNotRead(t *testing.T) {
	t.Parallel()
	for _, lane := range []Lane{LaneUser, LaneSystem} {
		t.Run(lane.String(), func(t *testing.T) {
			t.Parallel()
			x, y := transports[1].make(t)
			var e *Endpoint
			col := newCollector()
			col.onDel = func(env *Envelope) {
				_ = e.Send(context.Background(), &Envelope{Lane: lane, Target: env.Sender, Message: "answer to a request nobody reads"})
			}
			e = newTestEndpoint(t, x, col, WithUserQueue(1), WithUserQueueBytes(1024), WithSystemQueueBytes(64<<10))
			if err := e.Start(); err != nil {
				t.Fatal(err)
			}
			// The peer writes requests and reads nothing.
			enc := newEncoder("peer")
			go func() {
				for i := 0; ; i++ {
					b := newBatch()
					for range 256 {
						if err := b.appendEnvelope(enc, &Envelope{Target: pa.NewPID("node", "x"), Sender: pa.NewPID("peer", fmt.Sprint("future$", i)), Message: "q"}, DefaultMaxFrame); err != nil {
							return
						}
					}
					b.closeFrame()
					if _, err := y.Write(b.buf); err != nil {
						return
					}
				}
			}()
			if err := col.waitClosed(t); !errors.Is(err, ErrPeerStalled) {
				t.Fatalf("closed with %v; want ErrPeerStalled", err)
			}
			y.Close()
		})
	}
}
