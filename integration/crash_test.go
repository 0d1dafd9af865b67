//go:build linux

package integration

import (
	"context"
	"errors"
	"github.com/procactor/procactor/internal/testutil"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
)

// linkGone reports whether n no longer has a link to addr.
func linkGone(n *procnode.Node, addr string) bool {
	for _, l := range n.Links() {
		if l.Address() == addr {
			return false
		}
	}
	return true
}

// TestChildCrashes: a child that dies in any of these ways is noticed at
// once: its watcher gets Terminated, a request in flight (60 s timeout)
// fails with pa.ErrDeadLetter, the exit status says why, the link is gone,
// and another child of the same parent still answers.
func TestChildCrashes(t *testing.T) {
	cases := []struct {
		name    string
		trigger string // a message for the child; "" = SIGKILL from outside
		check   func(t *testing.T, st *procnode.ExitStatus)
		opts    []procnode.Option
	}{
		{"sigkill", "", func(t *testing.T, st *procnode.ExitStatus) {
			wantSignal(t, st, syscall.SIGKILL)
			if st.Stopped {
				t.Errorf("Stopped is set, but the parent did not ask: %+v", st)
			}
		}, nil},
		{"nil-map-write-in-goroutine", "crash:nilmap", func(t *testing.T, st *procnode.ExitStatus) {
			wantCode(t, st, 2, "assignment to entry in nil map")
		}, nil},
		{"index-out-of-range-in-goroutine", "crash:index", func(t *testing.T, st *procnode.ExitStatus) {
			wantCode(t, st, 2, "index out of range")
		}, nil},
		// A panic of the root actor is an actor failure handled in the child
		// (see the semantics tests); WithPanicExits makes it a process death.
		{"root-actor-panic", "crash:panic", func(t *testing.T, st *procnode.ExitStatus) {
			wantCode(t, st, procnode.ExitRootFailed, "boom from the root actor")
		}, []procnode.Option{procnode.WithPanicExits(true)}},
		{"os-exit-3", "crash:exit3", func(t *testing.T, st *procnode.ExitStatus) {
			wantCode(t, st, 3, "")
		}, nil},
		{"stream-cut-in-large-frame-then-exit", "raw:cut-exit", func(t *testing.T, st *procnode.ExitStatus) {
			wantCode(t, st, 3, "")
		}, nil},
		{"stream-cut-in-large-frame-then-sigkill", "raw:cut-kill", func(t *testing.T, st *procnode.ExitStatus) {
			wantSignal(t, st, syscall.SIGKILL)
		}, nil},
	}
	n, _ := newNode(t)
	bystander := spawn(t, n, kindEcho, procnode.WithRestart(false))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := spawn(t, n, kindEcho, append(c.opts, procnode.WithRestart(false))...)
			ping(t, n, p)
			term := watch(t, n, p.PID())
			inflight := request(n, p.PID(), "hang")
			if c.trigger == "" {
				if err := syscall.Kill(p.OSPid(), syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			} else {
				n.Root().Send(p.PID(), c.trigger)
			}
			wantTerminated(t, term, p.PID())
			inflight.wantDeadLetter(t)
			waitDone(t, p)
			st := p.ExitStatus()
			if st == nil {
				t.Fatal("no exit status")
			}
			t.Logf("status: %v", st)
			c.check(t, st)
			if !linkGone(n, p.Address()) {
				t.Errorf("the link to %s is still attached", p.Address())
			}
			ping(t, n, bystander)
		})
	}
}

func wantSignal(t *testing.T, st *procnode.ExitStatus, sig syscall.Signal) {
	t.Helper()
	if st.Signal != sig || st.Code != -1 || st.Success() {
		t.Errorf("status %+v, want killed by %v", st, sig)
	}
}

// wantCode checks the exit code and, if reason is set, that both the reason
// and the stderr tail mention it.
func wantCode(t *testing.T, st *procnode.ExitStatus, code int, reason string) {
	t.Helper()
	if st.Code != code || st.Signal != 0 {
		t.Errorf("status %+v, want exit code %d", st, code)
	}
	if reason == "" {
		return
	}
	if !strings.Contains(st.Reason, reason) {
		t.Errorf("reason %q does not say %q (stderr tail %q)", st.Reason, reason, st.StderrTail)
	}
	if !strings.Contains(string(st.StderrTail), reason) {
		t.Errorf("stderr tail %q does not say %q", st.StderrTail, reason)
	}
}

// sink is a parent actor with a bounded mailbox (4 messages; protoactor's
// ring buffer misbehaves at size 1): while it waits on gate, the next
// "block" messages fill its mailbox and the one after blocks the link's
// reader (a bounded mailbox waits for room), so the child's next frame stays
// in the pipe.
type sink struct {
	gate  chan struct{}
	bytes atomic.Int64 // []byte messages received
}

func (s *sink) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case string:
		switch m {
		case "block":
			<-s.gate
		case "count":
			ctx.Respond(int(s.bytes.Load()))
		}
	case []byte:
		s.bytes.Add(1)
	}
}

// TestCrashMidLargeMessage: the child starts sending a 64 MiB []byte to a
// parent actor through the real send path and dies (os.Exit(3), or SIGKILL)
// while the frame is half written. The parent's reader is held back by a
// full mailbox until the child is dead, so the frame cannot have been
// completed. Then: the sink never gets a partial message, the watcher gets
// Terminated, a request in flight fails with pa.ErrDeadLetter, the status
// says why, and another child still answers.
func TestCrashMidLargeMessage(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := map[bool]string{false: "exit", true: "sigkill"}[kill]
		t.Run(name, func(t *testing.T) {
			n, _ := newNode(t)
			bystander := spawn(t, n, kindEcho, procnode.WithRestart(false))
			s := &sink{gate: make(chan struct{})}
			var once atomic.Bool
			release := func() {
				if once.CompareAndSwap(false, true) {
					close(s.gate)
				}
			}
			t.Cleanup(release)
			sinkPID := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return s }, pa.WithMailbox(pa.Bounded(4))))
			t.Cleanup(func() { n.Root().Stop(sinkPID) })

			p := spawn(t, n, kindEcho, procnode.WithRestart(false))
			pid := p.OSPid()
			pst, ok := readStat(pid)
			if !ok {
				t.Fatalf("no child %d", pid)
			}
			term := watch(t, n, p.PID())
			inflight := request(n, p.PID(), "hang")
			n.Root().Send(p.PID(), &BigSend{Sink: sinkPID, Kill: kill})
			// The process is gone (or a zombie) while the parent's reader is
			// still held back; the exit status may wait for the stream's loss.
			if !testutil.Poll(30*time.Second, func() bool { return exitedOrZombie(pid, pst.starttime) }) {
				t.Fatal("the child did not die in the middle of its 64 MiB send")
			}
			release()

			wantTerminated(t, term, p.PID())
			inflight.wantDeadLetter(t)
			waitDone(t, p)
			st := p.ExitStatus()
			t.Logf("status: %v", st)
			if kill {
				wantSignal(t, st, syscall.SIGKILL)
			} else {
				wantCode(t, st, 3, "")
			}
			res, err := n.Root().RequestFuture(sinkPID, "count", 20*time.Second).Result()
			if err != nil || res != 0 {
				t.Errorf("sink got %v []byte messages (%v); want 0: a cut frame must not be delivered", res, err)

			}
			if !linkGone(n, p.Address()) {
				t.Errorf("the link to %s is still attached", p.Address())
			}
			ping(t, n, bystander)
		})
	}
}

// TestStopEscalation: a child whose root actor never finishes stopping gets
// SIGTERM after the graceful deadline; one that also ignores SIGTERM gets
// SIGKILL after the term deadline. Stop returns nil either way and the
// status shows the signal that ended it.
func TestStopEscalation(t *testing.T) {
	n, _ := newNode(t)
	for _, c := range []struct {
		name       string
		ignoreTerm bool
		want       syscall.Signal
	}{
		{"ends-on-sigterm", false, syscall.SIGTERM},
		{"ignores-sigterm", true, syscall.SIGKILL},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := spawn(t, n, kindStubborn, procnode.WithRestart(false), procnode.WithArgs(c.ignoreTerm),
				procnode.WithStopTimeouts(300*time.Millisecond, 300*time.Millisecond))
			ping(t, n, p)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			st := p.ExitStatus()
			t.Logf("status: %v", st)
			if st == nil || st.Signal != c.want || !st.Stopped {
				t.Fatalf("status %+v, want killed by %v and Stopped", st, c.want)
			}
		})
	}
}

// TestDeadlinesHonoured: a child that is stopped (SIGSTOP) with its link
// full does not make Stop or Node.Close overrun their context: at the
// deadline the child is killed, and the context's error is returned.
func TestDeadlinesHonoured(t *testing.T) {
	for _, via := range []string{"Process.Stop", "Node.Close"} {
		t.Run(via, func(t *testing.T) {
			n, err := procnode.NewNode()
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close(context.Background())
			p := spawn(t, n, kindEcho, procnode.WithRestart(false)) // default deadlines: 5 s graceful, 2 s term
			ping(t, n, p)
			if err := syscall.Kill(p.OSPid(), syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			fill := make([]byte, 256<<10)
			for range 16 { // 4 MiB: past the pipe and the user lane
				go n.Root().Send(p.PID(), fill)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if via == "Process.Stop" {
				err = p.Stop(ctx)
			} else {
				err = n.Close(ctx)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: got %v; want the context's DeadlineExceeded", via, err)
			}
			waitDone(t, p)
			if st := p.ExitStatus(); st.Signal != syscall.SIGKILL {
				t.Fatalf("status %+v; want killed by SIGKILL at the deadline", st)
			}
		})
	}
}
