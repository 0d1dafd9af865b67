//go:build linux

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
)

// TestBadBytesFromChild: a child that writes bytes that are no frame, or a
// frame header announcing 2^31 bytes, on its stream: the parent's link ends
// with the typed error (its text in an error log line), the link is gone,
// the child is killed (or, if it noticed first, left on its own), its
// watcher is told, and another child still answers. Nothing of 2^31 bytes
// is allocated (the process would not survive it under -race on these
// machines).
func TestBadBytesFromChild(t *testing.T) {
	n, logs := newNode(t)
	bystander := spawn(t, n, kindEcho, procnode.WithRestart(false))
	for _, c := range []struct {
		name, trigger string
		sentinel      error
	}{
		{"garbage", "raw:garbage", mailbox.ErrProtocol},
		{"frame-of-2^31-bytes", "raw:huge", mailbox.ErrFrameTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := spawn(t, n, kindEcho, procnode.WithRestart(false))
			ping(t, n, p)
			term := watch(t, n, p.PID())
			inflight := request(n, p.PID(), "hang")
			n.Root().Send(p.PID(), c.trigger)
			wantTerminated(t, term, p.PID())
			inflight.wantDeadLetter(t)
			waitDone(t, p)
			st := p.ExitStatus()
			t.Logf("status: %v", st)
			if st == nil || !(st.Signal == syscall.SIGKILL || st.Success()) {
				t.Errorf("status %+v, want killed by the parent (or a clean exit if it saw its link end first)", st)
			}
			wantLog(t, logs, c.sentinel.Error(), p.Address())
			wantLog(t, logs, "child broke the protocol", p.Address())
			if !linkGone(n, p.Address()) {
				t.Errorf("the link to %s is still attached", p.Address())
			}
			ping(t, n, bystander)
		})
	}
}

// wantLog checks that one line of the log mentions both what and addr.
func wantLog(t *testing.T, logs *testutil.SyncBuffer, what, addr string) {
	t.Helper()
	ok := testutil.Poll(5*time.Second, func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, what) && strings.Contains(l, `"`+addr+`"`) {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Errorf("no log line mentions %q for %s", what, addr)
	}
}

// TestWrongCookie: a process on the other end of the stream that answers the
// handshake with another cookie (a re-exec of the test binary in the
// bad-cookie role, started with WithBinary and WithEnv) is refused: Spawn
// fails with ErrStartFailed wrapping mailbox.ErrHandshake, the log says
// "cookie mismatch", its link is gone, the process is killed and reaped, and
// the parent's other child still answers.
func TestWrongCookie(t *testing.T) {
	n, logs := newNode(t)
	bystander := spawn(t, n, kindEcho, procnode.WithRestart(false))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out testutil.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := procnode.Spawn(ctx, n.Root(), "it.impostor", procnode.WithBinary(exe),
		procnode.WithEnv(roleEnv+"="+roleBadCookie), procnode.WithStdout(&out), procnode.WithStderr(nil))
	if err == nil {
		_ = p.Kill(ctx)
		t.Fatal("Spawn succeeded with a wrong cookie")
	}
	t.Logf("Spawn: %v", err)
	if !errors.Is(err, procnode.ErrStartFailed) || !errors.Is(err, mailbox.ErrHandshake) || !strings.Contains(err.Error(), "cookie mismatch") {
		t.Errorf("Spawn: %v; want ErrStartFailed wrapping mailbox.ErrHandshake, saying cookie mismatch", err)
	}
	if links := n.Links(); len(links) != 1 || links[0].Address() != bystander.Address() {
		t.Errorf("links after the refused child: %d, want only the bystander's", len(links))
	}
	if !strings.Contains(logs.String(), "cookie mismatch") {
		t.Errorf("no log line says cookie mismatch:\n%s", logs.String())
	}
	var pid int
	if _, err := fmt.Sscanf(out.String(), "bad-cookie pid %d", &pid); err != nil {
		t.Fatalf("the impostor did not run (stdout %q): %v", out.String(), err)
	}
	if st, ok := readStat(pid); ok && st.ppid == os.Getpid() {
		t.Errorf("impostor %d is still our child (%c): not killed and reaped", pid, st.state)
	}
	ping(t, n, bystander)
}
