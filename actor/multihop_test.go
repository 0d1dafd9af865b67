package actor

import (
	"errors"
	"github.com/procactor/procactor/internal/testutil"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// TestMultiHop runs requests, watches and link loss across two links: a
// line (n ↔ n/1 ↔ n/1/1, both ways) and siblings (n/1 ↔ n ↔ n/2).
func TestMultiHop(t *testing.T) {
	t.Parallel()
	type topo struct {
		from, mid, to                    *Node
		fromLink, midFrom, midTo, toLink *Link // fromLink: from→mid; midFrom: mid→from; midTo: mid→to; toLink: to→mid
	}
	line := func(t *testing.T, down bool) topo {
		n, c, g := newNode(t, "n"), newNode(t, "n/1"), newNode(t, "n/1/1")
		nc, cn := join(t, n, c)
		cg, gc := join(t, c, g)
		if down {
			return topo{n, c, g, nc, cn, cg, gc}
		}
		return topo{g, c, n, gc, cg, cn, nc}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) topo
	}{
		{"line down", func(t *testing.T) topo { return line(t, true) }},
		{"line up", func(t *testing.T) topo { return line(t, false) }},
		{"siblings", func(t *testing.T) topo {
			n, a, b := newNode(t, "n"), newNode(t, "n/1"), newNode(t, "n/2")
			na, an := join(t, n, a)
			nb, bn := join(t, n, b)
			return topo{a, n, b, an, na, nb, bn}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tp := tt.setup(t)
			links := []*Link{tp.fromLink, tp.midFrom, tp.midTo, tp.toLink}

			// request/response across two hops
			echoPID := tp.to.Root().Spawn(echoProps())
			if res, err := request(tp.from.Root(), echoPID, "two hops"); err != nil || res != "two hops" {
				t.Fatalf("got %v, %v; want two hops", res, err)
			}
			for _, l := range links {
				if s := l.Stats(); s.Requests != 0 {
					t.Fatalf("%v after an answer: %+v; want no request", l.Address(), s)
				}
			}
			// a missing actor two hops away answers with a dead letter
			if _, err := request(tp.from.Root(), pa.NewPID(tp.to.Address(), "nobody"), "x"); !errors.Is(err, pa.ErrDeadLetter) {
				t.Fatalf("got %v; want ErrDeadLetter", err)
			}

			// watch across two hops: Terminated when the actor stops
			stopped := tp.to.Root().Spawn(silentProps())
			_, events := spawnWatcher(tp.from, stopped)
			testutil.Eventually(t, "the watch to be recorded along the path", func() bool {
				return tp.fromLink.Stats().Watches == 1 && tp.midFrom.Stats().WatchedBy == 1 &&
					tp.midTo.Stats().Watches == 1 && tp.toLink.Stats().WatchedBy == 1
			})
			tp.to.Root().Stop(stopped)
			if m := testutil.Receive(t, events, "Terminated"); m.Why != pa.TerminatedReason_Stopped || !m.Who.Equal(stopped) {
				t.Fatalf("got %v; want Stopped of %v", m, stopped)
			}
			testutil.Eventually(t, "the watch tables to empty", func() bool {
				for _, l := range links {
					if s := l.Stats(); s.Watches != 0 || s.WatchedBy != 0 {
						return false
					}
				}
				return true
			})

			// the far link is lost: AddressTerminated and dead letters two hops back
			silent := tp.to.Root().Spawn(silentProps())
			_, events = spawnWatcher(tp.from, silent)
			f := tp.from.Root().RequestFuture(silent, "never answered", time.Minute)
			testutil.Eventually(t, "the watch and the request to be recorded along the path", func() bool {
				return tp.fromLink.Stats().Watches == 1 && tp.midTo.Stats().Watches == 1 &&
					tp.toLink.Stats().WatchedBy == 1 && tp.midTo.Stats().Requests == 1
			})
			tp.midTo.Abort()
			if m := testutil.Receive(t, events, "Terminated"); m.Why != pa.TerminatedReason_AddressTerminated || !m.Who.Equal(silent) {
				t.Fatalf("got %v; want AddressTerminated of %v", m, silent)
			}
			if _, err := f.Result(); !errors.Is(err, pa.ErrDeadLetter) {
				t.Fatalf("request in flight: got %v; want ErrDeadLetter", err)
			}
			testutil.Eventually(t, "every table to empty", func() bool {
				for _, l := range links {
					if s := l.Stats(); s.Watches != 0 || s.WatchedBy != 0 || s.Requests != 0 {
						return false
					}
				}
				return true
			})
			// the near link still works
			near := tp.mid.Root().Spawn(echoProps())
			if res, err := request(tp.from.Root(), near, "near"); err != nil || res != "near" {
				t.Fatalf("got %v, %v; want near", res, err)
			}
		})
	}
}

// TestLossForgetsWatchersBehindIt: when the watcher's side is lost, the
// watchee's side drops the watch (an Unwatch reaches the watchee), along a
// relay too.
func TestLossForgetsWatchersBehindIt(t *testing.T) {
	t.Parallel()
	n, a, b := newNode(t, "n"), newNode(t, "n/1"), newNode(t, "n/2")
	na, an := join(t, n, a)
	nb, bn := join(t, n, b)
	watchee := b.Root().Spawn(silentProps())
	spawnWatcher(a, watchee)
	testutil.Eventually(t, "the watch to be recorded", func() bool {
		return an.Stats().Watches == 1 && na.Stats().WatchedBy == 1 && nb.Stats().Watches == 1 && bn.Stats().WatchedBy == 1
	})
	na.Abort() // the watcher's side is gone
	testutil.Eventually(t, "the relay and the watchee's side to forget the watcher", func() bool {
		return na.Stats().WatchedBy == 0 && nb.Stats().Watches == 0 && bn.Stats().WatchedBy == 0
	})
}

// TestRelayedAnswerDoesNotStandBy: an answer to a future of another node,
// relayed by this one, must not make the link's reader stand by for a
// requester to borrow it (mailbox.Endpoint.Standby): no requester here
// waits for it, and the standby held every message that followed on that
// link until the borrowing ticker ended it, one to two milliseconds later
// (seen as a 1.4 ms p99 in the bench's reach row, whose answers a root
// relays from its child to the other root). The parked reader ticks only
// in a standby, so the relaying link's ticks count its standbys.
func TestRelayedAnswerDoesNotStandBy(t *testing.T) {
	t.Parallel()
	n, c, g := newNode(t, "n"), newNode(t, "n/1"), newNode(t, "n/1/1")
	nc, _ := join(t, n, c)
	cg, _ := join(t, c, g)
	requestEchoes(t, n, g.Root().Spawn(echoProps()), 20)
	time.Sleep(5 * time.Millisecond) // a standby would tick within 1 ms
	if s := cg.ReaderStats(); s.BorrowTicks != 0 || s.Borrows != 0 {
		t.Fatalf("n/1's link to n/1/1, which relayed the answers: %+v; want no tick, no borrow", s)
	}
	// The requester's own link does stand by for it, and it borrows.
	if s := nc.ReaderStats(); s.Borrows == 0 {
		t.Fatalf("n's link to n/1: %+v; want borrows", s)
	}
}

// TestUntrustedAnswerDoesNotStandBy: on an untrusted link a requester that
// borrowed the reader role may deliver nothing (linkHandler.Borrowable),
// so an answer to a future of this node must not make the reader stand by
// either: the borrow would only hand the next answer back to the reader
// (one more wake), and a standby nobody borrows held the link for a tick
// or two. Counted as TestRelayedAnswerDoesNotStandBy counts.
func TestUntrustedAnswerDoesNotStandBy(t *testing.T) {
	t.Parallel()
	n, c := newNode(t, "n"), newNode(t, "n/1")
	down, _ := joinUntrusted(t, n, c, 16)
	requestEchoes(t, n, c.Root().Spawn(echoProps()), 20)
	if s := down.ReaderStats(); s.BorrowTicks != 0 || s.Borrows != 0 {
		t.Fatalf("n's untrusted link to n/1: %+v; want no tick, no borrow", s)
	}
}

// requestEchoes asks the echo actor pid, from from's root, for count
// answers one after the other, each of which must be its request.
func requestEchoes(t *testing.T, from *Node, pid *pa.PID, count int) {
	t.Helper()
	for i := range count {
		if res, err := request(from.Root(), pid, i); err != nil || res != i {
			t.Fatalf("request %d: got %v, %v", i, res, err)
		}
	}
}
