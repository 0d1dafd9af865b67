package actor

import (
	"errors"
	"github.com/procactor/procactor/internal/testutil"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// pidCarrier is a message carrying PIDs deep inside.
type pidCarrier struct {
	Note  string
	Inner []map[string]*pa.PID
}

func init() { mailbox.RegisterType("actor_test.pidCarrier", &pidCarrier{}) }

// TestUntrustedLink: a child behind an untrusted link reaches only what it
// was given: the senders of what it got (to answer), PIDs inside messages
// (here deep in a struct); it may not stop or poison anything of ours, nor
// watch what it was not given; the set of grants is bounded.
func TestUntrustedLink(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	down, _ := joinUntrusted(t, n, c, 3)
	given, _ := n.Root().SpawnNamed(echoProps(), "given")
	secret, _ := n.Root().SpawnNamed(echoProps(), "secret")
	if _, err := c.Root().SpawnNamed(echoProps(), "child-echo"); err != nil {
		t.Fatal(err)
	}
	// A request to the child: the future is granted, so the answer comes.
	if res, err := request(n.Root(), pa.NewPID("n/1", "child-echo"), "hi"); err != nil || res != "hi" {
		t.Fatalf("request to the untrusted child: %v, %v", res, err)
	}
	// A PID deep inside a message is granted.
	n.Root().Send(pa.NewPID("n/1", "child-echo"), &pidCarrier{Note: "hi", Inner: []map[string]*pa.PID{{"x": given}}})
	// given came inside the message: the child may ask it; not secret.
	if res, err := request(c.Root(), given, "from the child"); err != nil || res != "from the child" {
		t.Fatalf("to a granted PID: %v, %v", res, err)
	}
	if _, err := request(c.Root(), secret, "guessed"); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("to a PID never given: got %v; want ErrDeadLetter", err)
	}
	// It may not stop or poison even what it was given.
	c.Root().Stop(given)
	c.Root().Poison(given)
	if res, err := request(n.Root(), given, "alive?"); err != nil || res != "alive?" {
		t.Fatalf("the granted actor after a stop and a poison from the child: %v, %v", res, err)
	}
	// Watching what it was not given is refused: the watcher is told.
	_, terms := spawnWatcher(c, secret)
	if term := testutil.Receive(t, terms, "the refused watch's Terminated"); term.Why != pa.TerminatedReason_NotFound {
		t.Fatalf("refused watch: %v", term)
	}
	// The grants are bounded (3): older ones go.
	for i := range 4 {
		pid, _ := n.Root().SpawnNamed(echoProps(), "more"+string(rune('a'+i)))
		n.Root().Send(pa.NewPID("n/1", "child-echo"), &pidCarrier{Inner: []map[string]*pa.PID{{"x": pid}}})
	}
	testutil.Eventually(t, "the grants to be recorded", func() bool { return down.caps.Load().has(pa.NewPID("n", "mored")) })
	if _, err := request(c.Root(), given, "forgotten?"); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("to a grant pushed out: got %v; want ErrDeadLetter", err)
	}
}

// TestUntrustedLinkTypesFromTheShare: an untrusted link's endpoint takes
// the type expressions its peer names out of the untrusted share of the
// process's table (mailbox.WithUntrustedPeer); a trusted one does not.
func TestUntrustedLinkTypesFromTheShare(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	down, _ := joinUntrusted(t, n, newNode(t, "n/1"), 3)
	m := newNode(t, "m")
	trusted, _ := join(t, m, newNode(t, "m/1"))
	for _, c := range []struct {
		l    *Link
		want bool
	}{{down, true}, {trusted, false}} {
		c.l.mu.Lock()
		ep := c.l.ep
		c.l.mu.Unlock()
		if ep == nil || ep.UntrustedPeer() != c.want {
			t.Fatalf("link to %s: endpoint %v, untrusted peer %v; want %v", c.l.Address(), ep, ep != nil && ep.UntrustedPeer(), c.want)
		}
	}
}

// TestRefusedAnswerFailsRequestAtOnce: an answer that a link refuses (here
// from an untrusted child to a future whose grant newer ones pushed out)
// fails the request it answers at once, as a dead letter, instead of
// leaving it to its timeout.
func TestRefusedAnswerFailsRequestAtOnce(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	joinUntrusted(t, n, c, 1)
	// later keeps the sender of "q" and answers it on "go".
	var asker *pa.PID
	later, err := c.Root().SpawnNamed(pa.PropsFromFunc(func(ctx pa.Context) {
		switch ctx.Message() {
		case "q":
			asker = ctx.Sender()
		case "go":
			ctx.Send(asker, "answer")
		}
	}), "later")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := n.Root().SpawnNamed(echoProps(), "other")
	f := n.Root().RequestFuture(later, "q", testTimeout)
	n.Root().Send(later, &pidCarrier{Inner: []map[string]*pa.PID{{"x": other}}}) // pushes the future's grant out
	n.Root().Send(later, "go")
	if _, err := f.Result(); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request whose answer was refused: got %v; want ErrDeadLetter at once", err)
	}
}

// TestUntrustedUserLaneTerminated: an untrusted child may send a Terminated
// (a protobuf message any binary links in) only through the watch tables,
// on the system lane. Sent as a user message to a PID it was never given,
// it is refused like any other message: before, the lane was not looked
// at, and a forged Terminated (or Unwatch) reached the Receive of an actor
// here, which would take it for the end of what it watches.
func TestUntrustedUserLaneTerminated(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	down, _ := joinUntrusted(t, n, c, 4)
	got := make(chan any, 8)
	secret, _ := n.Root().SpawnNamed(pa.PropsFromFunc(func(ctx pa.Context) {
		if _, ok := ctx.Message().(*pa.Started); !ok {
			got <- ctx.Message() // a Terminated included: a watcher would act on it
		}
	}), "secret")
	given, _ := n.Root().SpawnNamed(echoProps(), "given")
	down.Grant(given)

	// The child's PIDs are its own: a PID caches the process it resolved to.
	toSecret, toGiven := pa.NewPID("n", "secret"), pa.NewPID("n", "given")
	c.Root().Send(toSecret, &pa.Terminated{Who: toGiven, Why: pa.TerminatedReason_Stopped})
	c.Root().Send(toSecret, &pa.Unwatch{Watcher: toGiven})
	// The link delivers in order: once the child's next request is
	// answered, the forged messages were delivered or refused.
	if res, err := request(c.Root(), toGiven, "after"); err != nil || res != "after" {
		t.Fatalf("to a granted PID: %v, %v", res, err)
	}
	n.Root().Send(secret, "marker")
	if m := testutil.Receive(t, got, "the first message to secret"); m != "marker" {
		t.Fatalf("secret got %T %v from the untrusted child; want it refused", m, m)
	}
}
