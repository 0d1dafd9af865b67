package actor

import (
	"context"
	"errors"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// TestGuards: guards see what arrives over a link, here and relayed, and a
// refusal is a dead letter (a request fails at once) with a log line; a
// guard added later never replaces an earlier one.
func TestGuards(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	n := newNode(t, "n", WithLogger(buf.logger(zerolog.WarnLevel)))
	c := newNode(t, "n/1")
	join(t, n, c)
	errSecret := errors.New("secret")
	n.AddGuard(func(from *Link, env *mailbox.Envelope) error {
		if env.Target.Id == "secret" {
			return fmt.Errorf("%w from %s", errSecret, from.Address())
		}
		return nil
	})
	n.AddGuard(func(_ *Link, env *mailbox.Envelope) error {
		if env.Target.Id == "other" {
			return ErrRefused
		}
		return nil
	})
	for _, name := range []string{"secret", "other", "open"} {
		if _, err := n.Root().SpawnNamed(echoProps(), name); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"secret", "other"} {
		if _, err := request(c.Root(), pa.NewPID("n", name), "hi"); !errors.Is(err, pa.ErrDeadLetter) {
			t.Fatalf("request to %s from the child: got %v; want ErrDeadLetter", name, err)
		}
	}
	if res, err := request(c.Root(), pa.NewPID("n", "open"), "hi"); err != nil || res != "hi" {
		t.Fatalf("request to an unguarded actor: %v, %v", res, err)
	}
	if res, err := request(n.Root(), pa.NewPID("n", "secret"), "local"); err != nil || res != "local" {
		t.Fatalf("a local request is not a link's: %v, %v", res, err)
	}
	if _, ok := buf.find(map[string]string{"message": "dead letter: refused", "error": "secret from n/1", "target": "secret@n"}); !ok {
		t.Fatalf("no refusal logged:\n%s", buf.String())
	}
}

// TestForgedTerminatedRefused: a Terminated from a link is delivered only
// for a watch that went out through it, and never about a PID the node
// intercepts.
func TestForgedTerminatedRefused(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	n := newNode(t, "n", WithLogger(buf.logger(zerolog.WarnLevel)))
	c := newNode(t, "n/1")
	_, up := join(t, n, c)
	if _, err := c.Root().SpawnNamed(echoProps(), "x"); err != nil {
		t.Fatal(err)
	}
	n.Intercept(pa.NewPID("n/1", "root"), &fakeProcess{})
	watcherPID, terms := spawnWatcher(n, pa.NewPID("n/1", "x"))
	// Forged by the child: about an actor nobody here watches, and about the
	// intercepted PID.
	up.SendSystemMessage(watcherPID, &pa.Terminated{Who: pa.NewPID("n/1", "y")})
	up.SendSystemMessage(watcherPID, &pa.Terminated{Who: pa.NewPID("n/1", "root")})
	testutil.Eventually(t, "two refusals", func() bool { return buf.count(map[string]string{"message": "dead letter: refused"}) == 2 })
	// The real one, for the recorded watch, is delivered.
	c.Root().Stop(pa.NewPID("n/1", "x"))
	term := testutil.Receive(t, terms, "the real Terminated")
	if term.Who.Id != "x" {
		t.Fatalf("watcher got Terminated of %v; want x", term.Who)
	}
	select {
	case extra := <-terms:
		t.Fatalf("a forged Terminated reached the watcher: %v", extra)
	case <-time.After(20 * time.Millisecond):
	}
}

// TestWatchLimit: watches through one link are bounded; past the bound a
// Watch is refused, and its watcher is told at once.
func TestWatchLimit(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n", WithWatchLimit(2))
	c := newNode(t, "n/1")
	down, _ := join(t, n, c)
	target, err := n.Root().SpawnNamed(echoProps(), "watched")
	if err != nil {
		t.Fatal(err)
	}
	var chans []chan *pa.Terminated
	for i := range 3 {
		_, ch := spawnWatcher(c, target)
		chans = append(chans, ch)
		if i < 2 {
			testutil.Eventually(t, "the watch recorded", func() bool { return down.Stats().WatchedBy == i+1 })
		}
	}
	if term := testutil.Receive(t, chans[2], "the refused watch's Terminated"); term.Why != pa.TerminatedReason_NotFound {
		t.Fatalf("refused watch: %v; want Terminated{NotFound}", term)
	}
	if s := down.Stats(); s.WatchedBy != 2 {
		t.Fatalf("watched by %d; want the limit, 2", s.WatchedBy)
	}
}

// TestChildSpawns: a child may not spawn in its parent unless the parent
// allows it, up to a cap per link; what it spawned stops when its link is
// gone.
func TestChildSpawns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	off := newNode(t, "n")
	c := newNode(t, "n/1")
	join(t, off, c)
	if _, err := c.Spawn(ctx, "n", "actor_test.echo"); !errors.Is(err, ErrSpawnRefused) {
		t.Fatalf("spawn into a parent that does not allow it: got %v; want ErrSpawnRefused", err)
	}

	on := newNode(t, "m", WithChildSpawns(1))
	c2 := newNode(t, "m/1")
	down, _ := join(t, on, c2)
	pid, err := c2.Spawn(ctx, "m", "actor_test.echo")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := request(c2.Root(), pid, "hi"); err != nil || res != "hi" {
		t.Fatalf("the spawned actor: %v, %v", res, err)
	}
	if _, err := c2.Spawn(ctx, "m", "actor_test.echo"); !errors.Is(err, ErrSpawnRefused) {
		t.Fatalf("second spawn past the cap: got %v; want ErrSpawnRefused", err)
	}
	if err := down.Close(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the spawned actor stopped", func() bool { _, ok := on.System().ProcessRegistry.GetLocal(pid.Id); return !ok })
}

// TestForgedWatcherRefused: a Watch or an Unwatch from a link is accepted
// only for a watcher behind that link. A child may not cancel the watch an
// actor of this node holds (its Terminated would never come), nor make an
// actor here that watches nothing the recipient of a Terminated; the
// refusal is a dead letter with its reason, and tells the forged watcher
// nothing.
func TestForgedWatcherRefused(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	n := newNode(t, "n", WithLogger(buf.logger(zerolog.WarnLevel)))
	c := newNode(t, "n/1")
	_, up := join(t, n, c)
	target, err := n.Root().SpawnNamed(echoProps(), "watched")
	if err != nil {
		t.Fatal(err)
	}
	echoPID, err := n.Root().SpawnNamed(echoProps(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	// watcher watches target from its Started, and answers a string
	// request after it.
	terms := make(chan *pa.Terminated, 4)
	watcherPID := n.Root().Spawn(pa.PropsFromFunc(func(ctx pa.Context) {
		switch m := ctx.Message().(type) {
		case *pa.Started:
			ctx.Watch(target)
		case *pa.Terminated:
			terms <- m
		case string:
			ctx.Respond(m)
		}
	}))
	// bystander watches nothing; it records every Terminated it gets, and
	// answers a string request after the system messages before it.
	bystanderTerms := make(chan *pa.Terminated, 4)
	bystander := n.Root().Spawn(pa.PropsFromFunc(func(ctx pa.Context) {
		switch m := ctx.Message().(type) {
		case *pa.Terminated:
			bystanderTerms <- m
		case string:
			ctx.Respond(m)
		}
	}))
	// The watcher's Watch is in target's mailbox once it answers.
	if res, err := request(n.Root(), watcherPID, "ping"); err != nil || res != "ping" {
		t.Fatalf("request to the watcher: %v, %v", res, err)
	}
	// Forged by the child: an Unwatch and a Watch for actors of the parent.
	up.SendSystemMessage(target, &pa.Unwatch{Watcher: watcherPID})
	up.SendSystemMessage(target, &pa.Watch{Watcher: bystander})
	// The link's order: both were handled before this request.
	if res, err := request(c.Root(), echoPID, "sync"); err != nil || res != "sync" {
		t.Fatalf("request over the link: %v, %v", res, err)
	}
	n.Root().Stop(target)
	if term := testutil.Receive(t, terms, "the real watcher's Terminated"); term.Who.Id != target.Id {
		t.Fatalf("watcher got Terminated of %v; want %v", term.Who, target)
	}
	// A Terminated for the bystander was sent before the watcher's (or not
	// at all): as a system message it comes before this request's answer.
	if res, err := request(n.Root(), bystander, "after"); err != nil || res != "after" {
		t.Fatalf("request to the bystander: %v, %v", res, err)
	}
	select {
	case extra := <-bystanderTerms:
		t.Fatalf("a forged watch made the bystander get %v", extra)
	default:
	}
	testutil.Eventually(t, "two refusals", func() bool { return buf.count(map[string]string{"message": "dead letter: refused"}) == 2 })
}

// TestChildSpawnIntoSiblingRefused: a child may not spawn on a sibling (or
// anywhere in another child's subtree) through their parent, whatever the
// parent's WithChildSpawns: the parent relayed such a request, the sibling
// took it as one from its own parent (always allowed) and spawned without a
// cap, and nothing stopped those actors when their spawner's link was gone.
// An untrusted child is refused too (it was never given the activator). A
// spawn into its own subtree is the child's own business and goes on.
func TestChildSpawnIntoSiblingRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		opts      []NodeOption
		untrusted bool
		want      error
	}{
		{"parent refuses child spawns", nil, false, ErrSpawnRefused},
		{"parent allows child spawns", []NodeOption{WithChildSpawns(1)}, false, ErrSpawnRefused},
		{"untrusted child", []NodeOption{WithChildSpawns(1)}, true, pa.ErrDeadLetter},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, a, b := newNode(t, "n", tt.opts...), newNode(t, "n/1"), newNode(t, "n/2")
			bb := newNode(t, "n/2/1")
			aa := newNode(t, "n/1/1")
			if tt.untrusted {
				joinUntrusted(t, n, a, 8)
			} else {
				join(t, n, a)
			}
			join(t, n, b)
			join(t, b, bb)
			join(t, a, aa)
			for _, to := range []string{"n/2", "n/2/1"} {
				if pid, err := a.Spawn(ctx, to, "actor_test.echo"); !errors.Is(err, tt.want) {
					t.Fatalf("spawn from n/1 into %s: got %v, %v; want %v", to, pid, err, tt.want)
				}
			}
			// From the grandchild, relayed by its parent n/1 first, then by n.
			if pid, err := aa.Spawn(ctx, "n/2", "actor_test.echo"); !errors.Is(err, tt.want) {
				t.Fatalf("spawn from n/1/1 into n/2: got %v, %v; want %v", pid, err, tt.want)
			}
			pid, err := a.Spawn(ctx, "n/1/1", "actor_test.echo")
			if err != nil {
				t.Fatalf("spawn from n/1 into its own child: %v", err)
			}
			if res, err := request(a.Root(), pid, "hi"); err != nil || res != "hi" {
				t.Fatalf("the actor spawned in its own subtree: %v, %v", res, err)
			}
		})
	}
}
