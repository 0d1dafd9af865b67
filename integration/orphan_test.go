//go:build linux

package integration

import (
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"syscall"
	"testing"
	"time"

	"github.com/procactor/procactor/procnode"
)

// orphanDeadline: docs/architecture.md promises that every child exits
// within a second of its parent's death; the test allows three for slow CI
// machines (-race, 2 cores, 9 processes starting at once) and logs the
// measured time.
const orphanDeadline = 3 * time.Second

// TestNoOrphans: a parent that is itself a spawned process, with 8 busy
// children, is SIGKILLed; every child must be gone (or a zombie: PID 1 does
// not reap orphans here) within the deadline. Three rounds use the default
// (Pdeathsig and EOF); the last round disarms Pdeathsig (SIGWINCH, which a
// Go program ignores), so only EOF on the control stream can end the
// children: the portable rule.
func TestNoOrphans(t *testing.T) {
	rounds := []struct {
		name    string
		mode    int // orphanParent's: 0 Pdeathsig and EOF, 1 EOF only, 2 EOF only with blocked actors
		eofOnly bool
	}{
		{"pdeathsig-and-eof-1", 0, false},
		{"pdeathsig-and-eof-2", 0, false},
		{"pdeathsig-and-eof-3", 0, false},
		{"eof-only", 1, true},
		// The children's root actors are blocked in a Receive on their
		// link's reader: the link's end must not wait for it.
		{"eof-only-actor-blocked", 2, true},
	}
	n, _ := newNode(t)
	for _, r := range rounds {
		t.Run(r.name, func(t *testing.T) {
			mid := spawn(t, n, kindOrphanParent, procnode.WithRestart(false), procnode.WithArgs(r.mode))
			res, err := n.Root().RequestFuture(mid.PID(), "pids", 60*time.Second).Result()
			if err != nil {
				t.Fatal(err)
			}
			list, ok := res.(*PidList)
			if !ok || list.Err != "" || len(list.Pids) != 8 {
				t.Fatalf("pids: got %#v", res)
			}
			starts := make(map[int]uint64, 8)
			for _, pid := range list.Pids {
				st, ok := readStat(pid)
				if !ok || st.state == 'Z' || st.ppid != mid.OSPid() {
					t.Fatalf("child %d before the kill: %+v (exists %v), want a live child of %d", pid, st, ok, mid.OSPid())
				}
				starts[pid] = st.starttime
			}

			if err := syscall.Kill(mid.OSPid(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			remaining := func() []int {
				var alive []int
				for pid, start := range starts {
					if !exitedOrZombie(pid, start) {
						alive = append(alive, pid)
					}
				}
				return alive
			}
			if !testutil.Poll(orphanDeadline, func() bool { return len(remaining()) == 0 }) {
				t.Fatalf("children still running %v after the parent's SIGKILL: %v", orphanDeadline, remaining())
			}
			t.Logf("all 8 children exited %v after the parent's SIGKILL", time.Since(killed).Round(time.Millisecond))
			// A zombie shows how it ended: SIGKILL by Pdeathsig, or exit 0 on EOF.
			how := map[string]int{}
			for pid, start := range starts {
				st, ok := readStat(pid)
				if !ok || st.state != 'Z' || st.starttime != start {
					continue // reaped by someone: nothing more to see
				}
				ws := syscall.WaitStatus(st.exitCode)
				if r.eofOnly && !(ws.Exited() && ws.ExitStatus() == 0) {
					t.Errorf("child %d with Pdeathsig disarmed: wait status %#x, want exit 0 (it saw EOF and left)", pid, st.exitCode)
				}
				if ws.Exited() {
					how[fmt.Sprintf("exit %d", ws.ExitStatus())]++
				} else {
					how[ws.Signal().String()]++
				}
			}
			t.Logf("zombies by how they ended: %v", how)

			waitDone(t, mid)
			if st := mid.ExitStatus(); st == nil || st.Signal != syscall.SIGKILL {
				t.Fatalf("parent's status %v, want killed by SIGKILL", st)
			}
		})
	}
}
