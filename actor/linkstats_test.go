package actor

import (
	"errors"
	"github.com/procactor/procactor/internal/testutil"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// settled waits until the link's counts stop trailing: a writer counts a
// batch once its write has returned, which may be after the peer answered.
func settled(t *testing.T, l *Link, out, in uint64) LinkStats {
	t.Helper()
	var s LinkStats
	defer func() {
		if t.Failed() {
			t.Logf("the link's last counts: %+v; want %d out, %d in; past %+v", s, out, in, l.counts.past)
		}
	}()
	testutil.Eventually(t, "the link's counts", func() bool {
		s = l.Stats()
		return s.Traffic.MsgsOut[mailbox.LaneUser] == out && s.Traffic.MsgsIn[mailbox.LaneUser] == in
	})
	return s
}

// TestLinkTrafficAcrossReconnect: a link counts the messages and bytes of
// every stream it has had, both ways, and its peer counts the same.
func TestLinkTrafficAcrossReconnect(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	down, up := join(t, n, c)
	down.SetReconnect(true)
	up.SetReconnect(true)
	if _, err := c.Root().SpawnNamed(echoProps(), "echo"); err != nil {
		t.Fatal(err)
	}
	pid := pa.NewPID("n/1", "echo")
	for range 3 {
		if _, err := request(n.Root(), pid, "ping"); err != nil {
			t.Fatal(err)
		}
	}
	before := settled(t, down, 3, 3)

	upLost := make(chan error, 1)
	up.OnDown(func(err error) { upLost <- err })
	down.Abort()
	testutil.Receive(t, upLost, "the child side to see the loss")
	if s := down.Stats(); s.Traffic != before.Traffic {
		t.Fatalf("after the loss: %+v; want the lost stream's counts kept, %+v", s.Traffic, before.Traffic)
	}

	connectPipe(t, down, up)
	if _, err := request(n.Root(), pid, "ping"); err != nil {
		t.Fatal(err)
	}
	after := settled(t, down, 4, 4)
	peer := settled(t, up, 4, 4)
	if after.Traffic.BytesOut != peer.Traffic.BytesIn || after.Traffic.BytesIn != peer.Traffic.BytesOut {
		t.Fatalf("bytes: parent side %+v, child side %+v; want each one's out to be the other's in", after.Traffic, peer.Traffic)
	}
	if after.Traffic.BytesOut[mailbox.LaneUser] <= before.Traffic.BytesOut[mailbox.LaneUser] {
		t.Fatalf("user bytes out did not grow over the new stream: %d then %d",
			before.Traffic.BytesOut[mailbox.LaneUser], after.Traffic.BytesOut[mailbox.LaneUser])
	}
	if after.DeadLetters != 0 || after.Queued != 0 {
		t.Fatalf("dead letters %d, queued %d; want none", after.DeadLetters, after.Queued)
	}
}

// TestLinkDeadLettersCounted: a send the link cannot make and a system
// message it refuses are each counted once.
func TestLinkDeadLettersCounted(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	down, up := join(t, n, c)
	victim := n.Root().Spawn(silentProps())
	up.SendSystemMessage(victim, &pa.Touch{}) // not a system message protoactor sends across nodes
	testutil.Eventually(t, "the refusal to be counted", func() bool { return down.Stats().DeadLetters == 1 })

	type unregistered struct{ A int } // a type no link can encode
	_, err := n.Root().RequestFuture(pa.NewPID("n/1", "x"), unregistered{1}, testTimeout).Result()
	if !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request with an unregistered type: got %v; want ErrDeadLetter", err)
	}
	if s := down.Stats(); s.DeadLetters != 2 || s.Traffic.DeadLetters != 0 {
		t.Fatalf("dead letters: got %d (%d undecodable); want 2 (0)", s.DeadLetters, s.Traffic.DeadLetters)
	}
}
