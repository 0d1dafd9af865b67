package procnode_test

import (
	"strings"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
	"github.com/rs/zerolog"
)

// forgeOrder tells test.forger whom to impersonate.
type forgeOrder struct {
	Parent    string // the parent's address
	VictimSeg string // the victim's segment under the parent
	Done      *pa.PID
}

func init() {
	mailbox.RegisterType("procnode_test.forgeOrder", &forgeOrder{})
	// test.forger tries, from its child process, what a compromised child
	// would: speak for a sibling to the parent (its exit reason, a log
	// record) and command the sibling's host (stop it, poison it).
	registerKind("test.forger", func(args procnode.Args) (*pa.Props, error) {
		o, _ := args.Value.(*forgeOrder)
		return pa.PropsFromFunc(func(c pa.Context) {
			if _, ok := c.Message().(*pa.Started); !ok || o == nil {
				return
			}
			control := pa.NewPID(o.Parent, "procactor-control$"+o.VictimSeg)
			victimAddr := o.Parent + "/" + o.VictimSeg
			host := pa.NewPID(victimAddr, "procactor-host")
			// The exit notice type is procnode's own; the guard refuses by
			// target, whatever the message.
			c.Send(control, "forged exit notice")
			c.Stop(host)
			c.Poison(host)
			c.Send(pa.NewPID(victimAddr, "procactor-assign"), "take this")
			c.Send(o.Done, "forged")
		}), nil
	})
}

// TestChildCannotCommandSiblings: a child cannot set a sibling's exit
// reason or stop it through procactor's machinery: the parent refuses (one
// log line per refusal, rate-limited), and the sibling lives on.
func TestChildCannotCommandSiblings(t *testing.T) {
	t.Parallel()
	var buf testutil.SyncBuffer
	n := newNode(t, actor.WithLogger(zerolog.New(&buf).Level(zerolog.WarnLevel)))
	victim := spawn(t, n, "test.echo", procnode.WithRestart(false))
	seg := strings.TrimPrefix(victim.Address(), n.Address()+"/")
	done, events := probe(t, n, nil)
	spawn(t, n, "test.forger", procnode.WithArgs(&forgeOrder{Parent: n.Address(), VictimSeg: seg, Done: done}))
	// The parent handles what the forger sent in order: the refusals come
	// before "forged" reaches the probe.
	if m := testutil.Receive(t, events, "events"); m != "forged" {
		t.Fatalf("got %v", m)
	}
	if got := strings.Count(buf.String(), `"message":"dead letter: refused"`); got != 4 {
		t.Fatalf("%d refusals logged; want 4 (exit notice, stop, poison, assign):\n%s", got, buf.String())
	}
	if res := request(t, n, victim.PID(), "still there?"); res != "echo: still there?" {
		t.Fatalf("victim: %v", res)
	}
	if err := victim.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st := victim.ExitStatus(); st.Reason != "" || st.Code != 0 {
		t.Fatalf("victim's status %+v; want a clean exit with no forged reason", st)
	}
}

// guessOrder tells test.guesser where to report and which parent actor to
// guess at by name.
type guessOrder struct {
	Done  *pa.PID
	Guess string // an actor id of the parent, given as text: not a grant
}

func init() {
	mailbox.RegisterType("procnode_test.guessOrder", &guessOrder{})
	// test.guesser messages a parent actor it was never given, then
	// reports to the one it was given.
	registerKind("test.guesser", func(args procnode.Args) (*pa.Props, error) {
		o, _ := args.Value.(*guessOrder)
		return pa.PropsFromFunc(func(c pa.Context) {
			if _, ok := c.Message().(*pa.Started); ok && o != nil {
				c.Send(pa.NewPID(o.Done.Address, o.Guess), "guessed")
				c.Send(o.Done, "reported")
			}
		}), nil
	})
}

// TestUntrustedChild: an untrusted child reaches the PID of its args, not a
// parent actor whose id it guessed.
func TestUntrustedChild(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	done, events := probe(t, n, nil)
	guessed, guesses := probe(t, n, nil)
	spawn(t, n, "test.guesser", procnode.WithUntrusted(64), procnode.WithArgs(&guessOrder{Done: done, Guess: guessed.Id}))
	if m := testutil.Receive(t, events, "events"); m != "reported" {
		t.Fatalf("got %v", m)
	}
	// "guessed" was handled before "reported" (same link, in order): had it
	// been delivered, it would be in the guessed actor's mailbox before this.
	n.Root().Send(guessed, "end")
	if m := testutil.Receive(t, guesses, "guesses"); m != "end" {
		t.Fatalf("the guessed actor got %v", m)
	}
}
