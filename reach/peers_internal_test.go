package reach

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/reach/internal/wire"
	"github.com/rs/zerolog"
)

// gatewayHost is a Host for feeding frames to receive directly, as the
// gateway would after the guard: an actor system at root address, no
// remote (what the host sends to another root is a dead letter,
// ErrStarting), its log in the returned buffer.
func gatewayHost(t *testing.T, root string) (*Host, *syncBuffer) {
	t.Helper()
	sys := pa.NewActorSystem(pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	sys.ProcessRegistry.Address = root
	t.Cleanup(sys.Shutdown)
	log := &syncBuffer{}
	h := &Host{sys: sys, addr: root, cfg: defaultConfig(), log: zerolog.New(log), streams: make(map[string]int)}
	h.warnings.every, h.drops.every = time.Second, time.Second
	return h, log
}

// syncBuffer is a bytes.Buffer safe for the host's log and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
