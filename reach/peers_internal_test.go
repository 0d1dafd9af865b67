package reach

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/reach/internal/wire"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// gatewayHost is a Host for feeding frames to receive directly, as the
// gateway would after the guard: an actor system at root address, no
// remote (what the host sends to another root is a dead letter,
// ErrStarting), its log in the returned buffer.
func gatewayHost(t *testing.T, root string) (*Host, *testutil.SyncBuffer) {
	t.Helper()
	sys := pa.NewActorSystem(pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	sys.ProcessRegistry.Address = root
	t.Cleanup(sys.Shutdown)
	log := &testutil.SyncBuffer{}
	h := &Host{sys: sys, addr: root, cfg: defaultConfig(), log: zerolog.New(log), streams: make(map[string]int)}
	h.warnings.every, h.drops.every = time.Second, time.Second
	return h, log
}

// recorder is an actor that reports the user messages and the Terminated it
// receives, in order.
func recorder(t *testing.T, sys *pa.ActorSystem, name string) (*pa.PID, <-chan any) {
	t.Helper()
	got := make(chan any, 1024)
	pid, err := sys.Root.SpawnNamed(pa.PropsFromFunc(func(c pa.Context) {
		switch m := c.Message().(type) {
		case string, *pa.Terminated:
			got <- m
		}
	}), name)
	if err != nil {
		t.Fatal(err)
	}
	return pid, got
}

func peerCount(h *Host) int {
	n := 0
	h.peers.Range(func(_, _ any) bool { n++; return true })
	return n
}

// TestFramesWithoutWatchMakeNoPeer: USER, STOP, UNWATCH and TERMINATED
// frames from many roots the host never watched and was never watched by
// leave no peer behind (peers live as long as the host, so one per sending
// root would grow without a bound with a sender announcing ever-new
// roots). The USER frames are delivered all the same, and each TERMINATED
// is refused as a Terminated for a watch not held through that root.
func TestFramesWithoutWatchMakeNoPeer(t *testing.T) {
	const (
		root  = "127.0.0.1:1"
		roots = 50
	)
	h, log := gatewayHost(t, root)
	target, got := recorder(t, h.sys, "target")
	stopped, _ := recorder(t, h.sys, "stopped")
	for i := range roots {
		from := fmt.Sprintf("127.0.0.2:%d", 1000+i)
		data, err := mailbox.Marshal(from)
		if err != nil {
			t.Fatal(err)
		}
		frame := func(kind wire.Kind, to *pa.PID) *wire.Frame {
			return &wire.Frame{From: from, Version: version, Kind: kind, TargetAddress: to.Address, TargetId: to.Id,
				PidAddress: from, PidId: "x"}
		}
		user := frame(wire.Kind_USER, target)
		user.Type, user.Data = "string", data
		for _, f := range []*wire.Frame{
			user,
			frame(wire.Kind_UNWATCH, target),
			frame(wire.Kind_TERMINATED, target),
			frame(wire.Kind_STOP, &pa.PID{Address: root, Id: "no-such-actor"}),
		} {
			h.receive(f, f, nil)
		}
		if i == 0 {
			h.receive(frame(wire.Kind_STOP, stopped), frame(wire.Kind_STOP, stopped), nil)
		}
	}
	if n := peerCount(h); n != 0 {
		t.Errorf("after frames from %d roots that hold no watch: %d peers; want 0", roots, n)
	}
	// The recorder answers in order: every USER frame, no Terminated.
	for i := range roots {
		select {
		case m := <-got:
			if want := fmt.Sprintf("127.0.0.2:%d", 1000+i); m != want {
				t.Fatalf("message %d: got %#v; want %q", i, m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d of %d not delivered", i, roots)
		}
	}
	// A message sent after the frames arrives after anything they caused.
	h.sys.Root.Send(target, "end")
	if m := <-got; m != "end" {
		t.Errorf("after the USER frames: got %#v; want only the end marker (no Terminated)", m)
	}
	if !strings.Contains(log.String(), "Terminated for a watch not held through this peer") {
		t.Errorf("the refused Terminated is not logged:\n%s", log.String())
	}
	// STOP frames still stop their target.
	if _, ok := h.sys.ProcessRegistry.GetLocal("stopped"); ok {
		deadline := time.Now().Add(10 * time.Second)
		for ok && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			_, ok = h.sys.ProcessRegistry.GetLocal("stopped")
		}
		if ok {
			t.Error("a STOP frame did not stop its target")
		}
	}
}

// TestWatchPeersBounded: WATCH frames make peers for at most cfg.maxPeers
// new roots; a Watch from one more root is answered at once with
// Terminated{AddressTerminated} (here a dead letter: the host has no
// remote) and logged, and makes no peer, while a root that has a peer may
// still watch. The accepted watches are held: when the target stops, each
// of their watchers (and only they) is sent a Terminated.
func TestWatchPeersBounded(t *testing.T) {
	const (
		root  = "127.0.0.1:1"
		bound = 3
		roots = bound + 2
	)
	h, log := gatewayHost(t, root)
	h.cfg.maxPeers = bound
	type deadTerminated struct {
		to         string // the watcher, id@address
		refused    bool   // answered by the gateway, not sent by the target
		why        pa.TerminatedReason
		whoStopped string
	}
	dead := make(chan deadTerminated, 64)
	sub := h.sys.EventStream.Subscribe(func(evt any) {
		e, ok := evt.(*pa.DeadLetterEvent)
		if !ok {
			return
		}
		m, refused := e.Message, false
		if u, ok := m.(*actor.Undeliverable); ok {
			m, refused = u.Message, true
		}
		if term, ok := m.(*pa.Terminated); ok {
			dead <- deadTerminated{to: pidString(e.PID), refused: refused, why: term.Why, whoStopped: pidString(term.Who)}
		}
	})
	defer h.sys.EventStream.Unsubscribe(sub)
	target, _ := recorder(t, h.sys, "target")
	watch := func(from, watcher string) {
		f := &wire.Frame{From: from, Version: version, Kind: wire.Kind_WATCH, TargetAddress: root, TargetId: target.Id,
			PidAddress: from, PidId: watcher}
		h.receive(f, f, nil)
	}
	rootAt := func(i int) string { return fmt.Sprintf("127.0.0.2:%d", 1000+i) }
	for i := range roots {
		watch(rootAt(i), "w")
	}
	// One more watcher from a root that has a peer: accepted past the bound.
	watch(rootAt(0), "w2")
	if n := peerCount(h); n != bound {
		t.Errorf("after WATCH frames from %d roots: %d peers; want %d", roots, n, bound)
	}
	for i := bound; i < roots; i++ {
		if h.knownPeer(rootAt(i)) != nil {
			t.Errorf("root %s past the bound has a peer", rootAt(i))
		}
	}
	// The refused ones were answered synchronously, in order.
	for i := bound; i < roots; i++ {
		select {
		case d := <-dead:
			want := deadTerminated{to: "w@" + rootAt(i), refused: true, why: pa.TerminatedReason_AddressTerminated, whoStopped: pidString(target)}
			if d != want {
				t.Errorf("answer %d: got %+v; want %+v", i, d, want)
			}
		default:
			t.Errorf("the Watch from %s past the bound was not answered", rootAt(i))
		}
	}
	if !strings.Contains(log.String(), "too many peers; Watch from a new root answered AddressTerminated") {
		t.Errorf("the refused Watch is not logged:\n%s", log.String())
	}
	// The target's watchers, told when it stops: those accepted, no other.
	h.sys.Root.Stop(target)
	want := map[string]bool{"w2@" + rootAt(0): true}
	for i := range bound {
		want["w@"+rootAt(i)] = true
	}
	for range len(want) {
		select {
		case d := <-dead:
			if d.refused || !want[d.to] || d.whoStopped != pidString(target) {
				t.Fatalf("after the target stopped: got %+v; want a Terminated to one of %v", d, want)
			}
			delete(want, d.to)
		case <-time.After(10 * time.Second):
			t.Fatalf("watchers not told the target stopped: %v", want)
		}
	}
}

// nopClientStream is a gRPC client stream whose sends succeed.
type nopClientStream struct{ grpc.ClientStream }

func (nopClientStream) SendMsg(any) error { return nil }

// TestCountedStreamMakesNoPeer: the stream remote's writer opens to a root
// (to answer a Watch refused past maxPeers, or for cluster gossip) makes no
// peer for it; once the root has a peer, the frames sent take their bytes
// off its queued count.
func TestCountedStreamMakesNoPeer(t *testing.T) {
	const other = "127.0.0.2:1000"
	h, _ := gatewayHost(t, "127.0.0.1:1")
	s := &countedStream{ClientStream: nopClientStream{}, h: h, root: other}
	batch := func(n int) *remote.RemoteMessage {
		return &remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: &remote.MessageBatch{
			TypeNames: []string{frameName},
			Envelopes: []*remote.MessageEnvelope{{TypeId: 0, MessageData: make([]byte, n)}},
		}}}
	}
	if err := s.SendMsg(batch(10)); err != nil {
		t.Fatal(err)
	}
	if n := peerCount(h); n != 0 {
		t.Fatalf("after a batch to %s, which has no peer: %d peers; want 0", other, n)
	}
	p := h.peer(other)
	p.queued.Store(100)
	if err := s.SendMsg(batch(30)); err != nil {
		t.Fatal(err)
	}
	if q := p.queued.Load(); q != 70 {
		t.Errorf("after a 30-byte frame: %d bytes queued; want 70", q)
	}
}
