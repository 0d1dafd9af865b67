package procnode_test

import (
	"context"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"os"
	"syscall"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
	"golang.org/x/sys/unix"
)

func init() {
	// test.sys answers "attrs" with its pid, process group and session, and
	// "nofile" with its limit of open files.
	registerKind("test.sys", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(c pa.Context) {
			switch c.Message() {
			case "attrs":
				sid, _ := unix.Getsid(0)
				c.Respond(fmt.Sprint(os.Getpid(), syscall.Getpgrp(), sid))
			case "nofile":
				var lim syscall.Rlimit
				_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
				c.Respond(fmt.Sprint(lim.Cur, lim.Max))
			}
		}), nil
	})
}

// TestSysProcAttr: ours by default (a process group of its own, so that a
// terminal's Ctrl-C reaches the parent only), merged with the caller's
// attributes (with Setsid the child leads a session instead). Pdeathsig is
// per thread in Linux and cannot be read back reliably from a Go program;
// the integration tests check its effect.
func TestSysProcAttr(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	attrs := func(p *procnode.Process) (pid, pgid, sid int) {
		got, _ := request(t, n, p.PID(), "attrs").(string)
		if _, err := fmt.Sscan(got, &pid, &pgid, &sid); err != nil {
			t.Fatalf("got %q: %v", got, err)
		}
		return
	}
	ours, _ := unix.Getsid(0)
	p := spawn(t, n, "test.sys")
	if pid, pgid, sid := attrs(p); pgid != pid || sid != ours {
		t.Fatalf("default: pid %d pgid %d sid %d; want its own group in our session %d", pid, pgid, sid, ours)
	}
	p = spawn(t, n, "test.sys", procnode.WithSysProcAttr(&syscall.SysProcAttr{Setsid: true}))
	if pid, pgid, sid := attrs(p); sid != pid || pgid != pid {
		t.Fatalf("Setsid: pid %d pgid %d sid %d; want its own session", pid, pgid, sid)
	}
}

// TestRlimit: the child sets the limits given with WithRlimit on itself.
func TestRlimit(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.sys", procnode.WithRlimit(syscall.RLIMIT_NOFILE, syscall.Rlimit{Cur: 200, Max: 300}))
	if got := request(t, n, p.PID(), "nofile"); got != "200 300" {
		t.Fatalf("RLIMIT_NOFILE in the child: got %v; want 200 300", got)
	}
}

// TestNoFDLeak: descriptors return to their baseline after a batch of
// spawns, stops, a crash and a failed start.
func TestNoFDLeak(t *testing.T) {
	n := newNode(t)
	cycle := func() {
		p := spawn(t, n, "test.echo", procnode.WithRestart(false))
		request(t, n, p.PID(), "hi")
		if err := p.Stop(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	cycle() // the runtime's poller and friends open their descriptors once
	before := testutil.FDs()
	for range 3 {
		cycle()
	}
	p := spawn(t, n, "test.echo", procnode.WithRestart(false))
	n.Root().Send(p.PID(), "exit3")
	waitErr(t, p)
	if _, err := spawnKind(testCtx(t), n.Root(), "test.caller", procnode.WithStderr(nil)); err == nil {
		t.Fatal("test.caller without args started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = spawnKind(ctx, n.Root(), "test.echo")
	if after := testutil.FDs(); len(after) != len(before) {
		t.Fatalf("descriptors: %d before, %d after\nbefore: %v\nafter:  %v", len(before), len(after), before, after)
	}
}
