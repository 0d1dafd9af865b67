//go:build linux

package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
	"go.uber.org/goleak"
)

// The soak suite: volume, many children, chaos, and every memory bound
// checked on procactor's own counters. Short by default (CI); longer with
//
//	go test -run Soak ./integration -soak.long
var soakLong = flag.Bool("soak.long", false, "run the soak tests for longer")

const (
	kindSoakSink    = "it.soak-sink"
	kindSoakBlocker = "it.soak-blocker"
	kindWatchFlood  = "it.watch-flood"
)

// SoakReport is a sink's account of what it received.
type SoakReport struct {
	Count    uint64
	Checksum uint64
	Errors   []string // the first few order errors
}

// soakReport asks a sink for its report.
type soakReport struct{}

func init() {
	mailbox.RegisterType("integration.SoakReport", &SoakReport{})
	mailbox.RegisterType("integration.soakReport", &soakReport{})
	actor.RegisterKind(kindSoakSink, func(actor.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return &soakSink{last: map[uint64]uint64{}} }), nil
	})
	// it.soak-blocker's root actor blocks for a minute on its first message.
	actor.RegisterKind(kindSoakBlocker, func(actor.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(c pa.Context) {
			switch c.Message().(type) {
			case string:
				c.Respond("ready")
			case []byte:
				time.Sleep(time.Minute)
			}
		}), nil
	})
	// it.watch-flood forges watches of the PID of its args: one per
	// invented watcher, as fast as it can, then says how many.
	actor.RegisterKind(kindWatchFlood, func(a actor.Args) (*pa.Props, error) {
		target, _ := a.Value.(*pa.PID)
		return pa.PropsFromFunc(func(c pa.Context) {
			if m, ok := c.Message().(int); ok && target != nil {
				proc, _ := c.ActorSystem().ProcessRegistry.Get(target)
				for i := range m {
					proc.SendSystemMessage(target, &pa.Watch{Watcher: pa.NewPID(c.Self().Address, "w"+strconv.Itoa(i))})
				}
				c.Respond(m)
			}
		}), nil
	})
}

// soakSink checks, per sender, that sequence numbers arrive in order, once
// each: payload = sender (8 bytes) + seq (8 bytes) + filler.
type soakSink struct {
	last map[uint64]uint64
	rep  SoakReport
}

func (s *soakSink) Receive(c pa.Context) {
	switch m := c.Message().(type) {
	case []byte:
		if len(m) < 16 {
			s.fail("short message")
			return
		}
		from, seq := binary.BigEndian.Uint64(m), binary.BigEndian.Uint64(m[8:])
		if want := s.last[from] + 1; seq != want {
			s.fail(fmt.Sprintf("sender %d: seq %d, want %d", from, seq, want))
		}
		s.last[from] = seq
		s.rep.Count++
		s.rep.Checksum += from*1_000_003 + seq
	case *soakReport:
		c.Respond(&s.rep)
	case string:
		c.Respond("echo: " + m)
	}
}

func (s *soakSink) fail(e string) {
	if len(s.rep.Errors) < 5 {
		s.rep.Errors = append(s.rep.Errors, e)
	}
}

func soakMsg(from, seq uint64, size int) []byte {
	b := make([]byte, max(size, 16))
	binary.BigEndian.PutUint64(b, from)
	binary.BigEndian.PutUint64(b[8:], seq)
	return b
}

// soakBaseline takes goroutines, descriptors and children before a soak
// test, and checks them after it (registered as a cleanup that runs after
// the node's own).
func soakBaseline(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	fds := testutil.FDCount()
	t.Cleanup(func() {
		if kids := childrenOf(os.Getpid()); !testutil.Poll(10*time.Second, func() bool { return len(childrenOf(os.Getpid())) == 0 }) {
			t.Errorf("child processes left (zombies included): %v", kids)
		}
		if !testutil.Poll(5*time.Second, func() bool { return testutil.FDCount() <= fds }) {
			t.Errorf("descriptors: %d, baseline %d", testutil.FDCount(), fds)
		}
		goleak.VerifyNone(t, leakOpts(ignore)...)
		t.Logf("parent peak RSS (VmHWM): %s", vmHWM(os.Getpid()))
	})
}

// vmHWM reads a process's peak resident set size.
func vmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// sinkReport asks a sink child for its report.
func sinkReport(t *testing.T, n *procnode.Node, p *procnode.Process) *SoakReport {
	t.Helper()
	res, err := n.Root().RequestFuture(p.PID(), &soakReport{}, time.Minute).Result()
	if err != nil {
		t.Fatalf("report of %s: %v", p.Address(), err)
	}
	return res.(*SoakReport)
}

// TestSoakVolume: messages from several senders through one link, and to
// eight children at once: each arrives once, in order per sender.
func TestSoakVolume(t *testing.T) {
	soakBaseline(t)
	n, _ := newNode(t)
	total := 200_000
	if *soakLong {
		total = 1_000_000
	}
	const senders = 4
	one := spawn(t, n, kindSoakSink, procnode.WithRestart(false))
	eight := make([]*procnode.Process, 8)
	for i := range eight {
		eight[i] = spawn(t, n, kindSoakSink, procnode.WithRestart(false))
	}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range total / senders {
				n.Root().Send(one.PID(), soakMsg(uint64(s), uint64(i+1), 32))
			}
		})
	}
	for c, p := range eight {
		wg.Go(func() {
			for i := range total / 8 {
				n.Root().Send(p.PID(), soakMsg(uint64(c), uint64(i+1), 32))
			}
		})
	}
	wg.Wait()
	check := func(p *procnode.Process, count uint64, checksum uint64) {
		t.Helper()
		r := sinkReport(t, n, p)
		if r.Count != count || r.Checksum != checksum || len(r.Errors) != 0 {
			t.Errorf("%s: %d messages, checksum %d, errors %v; want %d, %d, none", p.Address(), r.Count, r.Checksum, r.Errors, count, checksum)
		}
		t.Logf("%s: peak RSS (VmHWM) %s", p.Address(), vmHWM(p.OSPid()))
	}
	sum := func(from, n uint64) uint64 { return from*1_000_003*n + n*(n+1)/2 }
	var want uint64
	for s := range uint64(senders) {
		want += sum(s, uint64(total/senders))
	}
	check(one, uint64(total), want)
	for c, p := range eight {
		check(p, uint64(total/8), sum(uint64(c), uint64(total/8)))
	}
}

// TestSoakChaos: requests flow to children that are killed, stopped and
// continued at random; every request returns (answered or failed) and none
// hangs past its timeout; afterwards every child answers.
func TestSoakChaos(t *testing.T) {
	soakBaseline(t)
	n, _ := newNode(t)
	d := 3 * time.Second
	if *soakLong {
		d = 60 * time.Second
	}
	const children, requesters = 4, 8
	const timeout = 3 * time.Second
	pids := make(chan *pa.PID, children)
	sup := n.Root().Spawn(pa.PropsFromFunc(func(c pa.Context) {
		if _, ok := c.Message().(*pa.Started); ok {
			for range children {
				pids <- c.Spawn(procnode.Props(kindEcho, procnode.WithStderr(nil), procnode.WithRestartBackoff(time.Millisecond, 20*time.Millisecond)))
			}
		}
	}, pa.WithSupervisor(pa.NewRestartingStrategy())))
	defer func() { _ = n.Root().StopFuture(sup).Wait() }()
	var procs []*procnode.Process
	for range children {
		p, _ := n.Process(<-pids)
		procs = append(procs, p)
	}
	for _, p := range procs {
		ping(t, n, p)
	}
	stop := time.Now().Add(d)
	var answered, failed, hung atomic.Int64
	var wg sync.WaitGroup
	for r := range requesters {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				p := procs[(r+i)%children]
				t0 := time.Now()
				res, err := n.Root().RequestFuture(p.PID(), "ping", timeout).Result()
				switch {
				case time.Since(t0) > timeout+5*time.Second:
					hung.Add(1)
				case err == nil && res == "echo: ping":
					answered.Add(1)
				default:
					failed.Add(1)
				}
			}
		})
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	kills, stops := 0, 0
	for time.Now().Before(stop) {
		p := procs[rnd.IntN(children)]
		pid := p.OSPid()
		if pid <= 0 || !p.Alive() {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if rnd.IntN(2) == 0 {
			syscall.Kill(pid, syscall.SIGKILL)
			kills++
		} else {
			syscall.Kill(pid, syscall.SIGSTOP)
			time.Sleep(time.Duration(50+rnd.IntN(150)) * time.Millisecond)
			syscall.Kill(pid, syscall.SIGCONT)
			stops++
		}
		time.Sleep(time.Duration(50+rnd.IntN(100)) * time.Millisecond)
	}
	wg.Wait()
	t.Logf("%v of chaos: %d kills, %d stops; %d requests answered, %d failed, %d hung", d, kills, stops, answered.Load(), failed.Load(), hung.Load())
	if hung.Load() != 0 {
		t.Errorf("%d requests hung past their timeout", hung.Load())
	}
	if answered.Load() == 0 {
		t.Errorf("no request was answered")
	}
	for _, p := range procs {
		ping(t, n, p)
	}
}

// TestSoakBounds: what a child that does not keep up, or floods, costs the
// parent stays within the bounds, measured on procactor's own counters.
func TestSoakBounds(t *testing.T) {
	soakBaseline(t)
	n, _ := newNode(t, actor.WithSendTimeout(20*time.Millisecond), actor.WithHoldBytes(1<<20), actor.WithWatchLimit(10_000))
	linkOf := func(p *procnode.Process) *actor.Link {
		for _, l := range n.Links() {
			if l.Address() == p.Address() {
				return l
			}
		}
		t.Fatalf("no link to %s", p.Address())
		return nil
	}
	deadLetters := func(reason error) *atomic.Int64 {
		var c atomic.Int64
		sub := n.System().EventStream.Subscribe(func(evt any) {
			if dl, ok := evt.(*pa.DeadLetterEvent); ok {
				if u, ok := dl.Message.(*actor.Undeliverable); ok && errors.Is(u.Reason, reason) {
					c.Add(1)
				}
			}
		})
		t.Cleanup(func() { n.System().EventStream.Unsubscribe(sub) })
		return &c
	}
	const msg = 64 << 10

	t.Run("a root actor that does not keep up", func(t *testing.T) {
		const window = 1 << 20
		full := deadLetters(actor.ErrRetainFull)
		p := spawn(t, n, kindSoakBlocker, procnode.WithRetainWindow(window), procnode.WithRestart(false))
		l := linkOf(p)
		for i := range 200 { // 12.5 MiB to an actor stuck on the first message
			n.Root().Send(p.PID(), soakMsg(0, uint64(i+1), msg))
			if s := l.Stats(); s.RetainedBytes > window+2*msg {
				t.Fatalf("after %d messages: %d bytes retained; the window is %d", i+1, s.RetainedBytes, window)
			}
		}
		if full.Load() == 0 {
			t.Fatal("no dead letter with ErrRetainFull")
		}
		t.Logf("retained %d bytes, %d dead letters; child peak RSS %s", l.Stats().RetainedBytes, full.Load(), vmHWM(p.OSPid()))
		if err := p.Kill(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a child that is down", func(t *testing.T) {
		held := deadLetters(actor.ErrHeldFull)
		p := spawn(t, n, kindSoakSink, procnode.WithRestartBackoff(2*time.Second, 2*time.Second))
		l := linkOf(p)
		syscall.Kill(p.OSPid(), syscall.SIGKILL)
		if !testutil.Poll(10*time.Second, func() bool { return !l.IsUp() }) {
			t.Fatal("the link stayed up")
		}
		for i := range 100 { // 6.25 MiB while it waits for its restart
			n.Root().Send(p.PID(), soakMsg(1, uint64(i+1), msg))
			if s := l.Stats(); s.HeldBytes > 1<<20+msg {
				t.Fatalf("after %d messages: %d bytes held; the bound is %d", i+1, s.HeldBytes, 1<<20)
			}
		}
		if held.Load() == 0 {
			t.Fatal("no dead letter with ErrHeldFull")
		}
		if err := p.Kill(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a child that floods watches", func(t *testing.T) {
		target, err := n.Root().SpawnNamed(pa.PropsFromFunc(func(pa.Context) {}), "watched")
		if err != nil {
			t.Fatal(err)
		}
		flood := 100_000
		if *soakLong {
			flood = 1_000_000
		}
		p := spawn(t, n, kindWatchFlood, procnode.WithArgs(target), procnode.WithRestart(false))
		l := linkOf(p)
		if res, err := n.Root().RequestFuture(p.PID(), flood, time.Minute).Result(); err != nil || res != flood {
			t.Fatalf("flood: %v, %v", res, err)
		}
		ping := func() { _, _ = n.Root().RequestFuture(p.PID(), 0, time.Minute).Result() } // behind the watches on the link
		ping()
		if s := l.Stats(); s.WatchedBy > 10_000 {
			t.Fatalf("%d watches through the link; the bound is 10000", s.WatchedBy)
		}
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s := l.Stats(); s.WatchedBy != 0 {
			t.Fatalf("%d watches kept after the child ended", s.WatchedBy)
		}
	})
}
