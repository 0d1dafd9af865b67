package actor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/names"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// TestDeadLettersPrintedByDefault: a node with no logger prints a line per
// dead letter naming target, type and reason; an unregistered type's line
// says to call mailbox.RegisterType; the request fails at once.
func TestDeadLettersPrintedByDefault(t *testing.T) {
	t.Parallel()
	var out testutil.SyncBuffer
	n := newNode(t, "n", WithDeadLetterLog(&out))
	c := newNode(t, "n/1", WithDeadLetterLog(&out))
	join(t, n, c)
	echoPID := c.Root().Spawn(echoProps())
	if _, err := request(n.Root(), echoPID, unregistered{1}); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request: got %v; want ErrDeadLetter", err)
	}
	if _, err := request(n.Root(), pa.NewPID("n/1", "nobody"), "x"); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request: got %v; want ErrDeadLetter", err)
	}
	testutil.Eventually(t, "two dead-letter lines", func() bool { return strings.Count(out.String(), "\n") >= 2 })
	s := out.String()
	for _, want := range []string{
		"procactor: dead letter at n: actor.unregistered to " + pidString(echoPID),
		"(link n/1): " + mailbox.ErrTypeNotRegistered.Error() + ": actor.unregistered (call mailbox.RegisterType from init)",
		"procactor: dead letter at n/1: string to nobody@n/1",
		ErrNoSuchActor.Error(),
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// TestDeadLettersSilenced: WithDeadLetterLog(nil) prints nothing; a node
// with a logger logs them there instead of printing them.
func TestDeadLettersSilenced(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	n := newNode(t, "n", WithDeadLetterLog(nil))
	c := newNode(t, "n/1", WithLogger(logs.logger(zerolog.WarnLevel)))
	join(t, n, c)
	if _, err := request(n.Root(), pa.NewPID("n/1", "nobody"), "x"); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request: got %v; want ErrDeadLetter", err)
	}
	testutil.Eventually(t, "the log line", func() bool {
		_, ok := logs.find(map[string]string{"level": "warn", "message": "dead letter", "error": ErrNoSuchActor.Error()})
		return ok
	})
	if n.dead.w != nil || c.dead.w != nil {
		t.Fatalf("a silenced or logging node kept a writer")
	}
}

// TestDeadLettersRateLimited (issue 14, item 8): a storm of dead letters
// prints at most 10 lines a second per link, then a summary line whose
// count accounts for every one not printed.
func TestDeadLettersRateLimited(t *testing.T) {
	t.Parallel()
	const storm = 200
	var out testutil.SyncBuffer
	n := newNode(t, "n", WithDeadLetterLog(&out))
	c := newNode(t, "n/1", WithDeadLetterLog(&out))
	join(t, n, c)
	echoPID := c.Root().Spawn(echoProps())
	start := time.Now()
	for range storm {
		n.Root().Send(echoPID, &badDecode{}) // undecodable in n/1: a dead letter per message there
	}
	printed, summarized := 0, 0
	summary := regexp.MustCompile(`procactor: (\d+) more dead letters at n/1 \(link n\) not printed`)
	testutil.Eventually(t, "every dead letter printed or counted", func() bool {
		printed, summarized = strings.Count(out.String(), "dead letter: undecodable message at n/1"), 0
		for _, m := range summary.FindAllStringSubmatch(out.String(), -1) {
			k, _ := strconv.Atoi(m[1])
			summarized += k
		}
		return printed+summarized >= storm
	})
	elapsed := time.Since(start)
	if printed+summarized != storm {
		t.Fatalf("printed %d, summarized %d; want %d in all", printed, summarized, storm)
	}
	if limit := limiterBurst * (2 + int(elapsed/deadLetterInterval)); printed > limit {
		t.Fatalf("printed %d lines in %v; want at most %d", printed, elapsed, limit)
	}
}

// TestDeadLettersRateLimitedLogger: with a logger, undecodable messages
// are logged at most 10 a second per link too, then counted.
func TestDeadLettersRateLimitedLogger(t *testing.T) {
	t.Parallel()
	const storm = 100
	var logs logBuffer
	n := newNode(t, "n")
	c := newNode(t, "n/1", WithLogger(logs.logger(zerolog.WarnLevel)))
	join(t, n, c)
	echoPID := c.Root().Spawn(echoProps())
	for range storm {
		n.Root().Send(echoPID, &badDecode{})
	}
	var lines, skipped int
	testutil.Eventually(t, "every dead letter logged or counted", func() bool {
		lines = logs.count(map[string]string{"message": "dead letter: undecodable message", "peer": "n"})
		skipped = 0
		for _, m := range logs.matching(map[string]string{"message": "dead letters not logged", "peer": "n"}) {
			f, _ := m["skipped"].(float64)
			skipped += int(f)
		}
		return lines+skipped >= storm
	})
	if lines+skipped != storm || lines < limiterBurst {
		t.Fatalf("logged %d, skipped %d; want %d in all, at least %d logged", lines, skipped, storm, limiterBurst)
	}
}

// TestDeadLettersQuietOnClose: what dies with a closing node (held
// messages of a down link, Stop to its actors) is not printed.
func TestDeadLettersQuietOnClose(t *testing.T) {
	t.Parallel()
	var out testutil.SyncBuffer
	n := newNode(t, "n", WithDeadLetterLog(&out))
	l, err := n.ChildLink("1") // down: messages are held
	if err != nil {
		t.Fatal(err)
	}
	_ = l
	for i := range 5 {
		n.Root().Send(pa.NewPID("n/1", "x"), i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); s != "" {
		t.Fatalf("Close printed:\n%s", s)
	}
}

// replier answers every request with a value the link cannot encode.
type replier struct{ replies atomic.Int32 }

func (r *replier) Receive(ctx pa.Context) {
	if _, ok := ctx.Message().(string); ok {
		r.replies.Add(1)
		ctx.Respond(unregistered{2})
	}
}

// TestUnencodableReplyFailsRequestAtOnce: a reply that cannot be encoded
// answers the requester's future (behind the link) with a dead letter at
// once, and the replying side prints why.
func TestUnencodableReplyFailsRequestAtOnce(t *testing.T) {
	t.Parallel()
	var out testutil.SyncBuffer
	n := newNode(t, "n", WithDeadLetterLog(&out))
	c := newNode(t, "n/1", WithDeadLetterLog(&out))
	join(t, n, c)
	r := &replier{}
	pid := c.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return r }))
	// A timeout far beyond the test's: ErrTimeout would mean it waited.
	_, err := n.Root().RequestFuture(pid, "ask", time.Hour).Result()
	if !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request: got %v; want ErrDeadLetter at once", err)
	}
	testutil.Eventually(t, "the replying side's line", func() bool {
		return strings.Contains(out.String(), "procactor: dead letter at n/1: actor.unregistered to future$")
	})
	if !strings.Contains(out.String(), "call mailbox.RegisterType") {
		t.Fatalf("line does not say what to do:\n%s", out.String())
	}
}

// TestActorErrorsCross: an error reply wrapping an actor sentinel keeps
// errors.Is across a link.
func TestActorErrorsCross(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	join(t, n, c)
	pid := c.Root().Spawn(pa.PropsFromFunc(func(ctx pa.Context) {
		if _, ok := ctx.Message().(string); ok {
			ctx.Respond(fmt.Errorf("spawning worker: %w", ErrKindNotRegistered))
		}
	}))
	res, err := request(n.Root(), pid, "go")
	got, ok := res.(error)
	if err != nil || !ok || !errors.Is(got, ErrKindNotRegistered) || got.Error() != "spawning worker: "+ErrKindNotRegistered.Error() {
		t.Fatalf("got %T %v, %v; want an error wrapping ErrKindNotRegistered", res, res, err)
	}
}

// TestMessageFaultsKeepTheLink: a send refused for the message itself (not
// registered, not encodable, a type whose shape differs on the peer) is a
// dead letter; the link is not taken for ending.
func TestMessageFaultsKeepTheLink(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		fmt.Errorf("%w: x", mailbox.ErrTypeNotRegistered),
		fmt.Errorf("%w: %w: T: field F", mailbox.ErrEncode, mailbox.ErrTypeMismatch),
		fmt.Errorf("%w: big", mailbox.ErrMessageTooLarge),
	} {
		if linkEnded(err) || !encodeFailure(err) {
			t.Errorf("%v: linkEnded %v, encodeFailure %v; want false, true", err, linkEnded(err), encodeFailure(err))
		}
	}
}

// remoteEvent stands for a message protoactor remote sends among its own
// actors (an EndpointTerminatedEvent, say).
type remoteEvent struct{}

// TestDeadLettersOfRemoteMachineryQuiet: when protoactor remote stops (a
// reach host closing), its endpoint actors send their last events to an
// endpoint supervisor already gone. Those dead letters are the remote's own
// business: not printed, while a user's dead letter still is.
func TestDeadLettersOfRemoteMachineryQuiet(t *testing.T) {
	t.Parallel()
	var out testutil.SyncBuffer
	n := newNode(t, "n", WithDeadLetterLog(&out))
	n.Root().Send(pa.NewPID("n", names.RemoteEndpointSupervisor+"/$5"), &remoteEvent{})
	n.Root().Send(pa.NewPID("n", names.RemoteEndpointSupervisor), &remoteEvent{})
	n.Root().Send(pa.NewPID("n", "nobody"), &remoteEvent{})
	testutil.Eventually(t, "the user's dead letter", func() bool { return strings.Contains(out.String(), "to nobody@n") })
	if s := out.String(); strings.Contains(s, names.RemoteEndpointSupervisor) {
		t.Fatalf("a dead letter of protoactor remote's machinery was printed:\n%s", s)
	}
}

// TestDeadLetterLineFromPeerIsOneLine: a dead-letter line relayed from
// another node (a child's, through DeadLetterLine) is printed as one line
// of bounded length: a child cannot forge lines of its parent's stderr
// with embedded newlines, nor send its terminal control sequences.
func TestDeadLetterLineFromPeerIsOneLine(t *testing.T) {
	var out testutil.SyncBuffer
	n := newNode(t, "n", WithDeadLetterLog(&out))
	n.DeadLetterLine("n/1", []byte("procactor: dead letter at n/1: x\nprocactor: forged\x1b]52;c;aGk=\x07 line\n"))
	n.DeadLetterLine("n/1", []byte(strings.Repeat("y", 10*maxRelayedLine)))
	got := out.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("printed %d lines; want 2:\n%q", len(lines), got)
	}
	if strings.ContainsAny(got, "\x1b\x07") {
		t.Fatalf("control characters printed: %q", got)
	}
	if len(lines[1]) > maxRelayedLine+len("…") {
		t.Fatalf("a relayed line of %d bytes printed as %d", 10*maxRelayedLine, len(lines[1]))
	}
}

// TestDeadLetterLimiterOfGoneLinkDropped: a link gone for good takes its
// dead-letter rate limiter with it (its pending summary is written). The
// limiters were kept until the node closed: one for every child address
// that ever had a dead letter, so a parent of short-lived children grew
// without bound.
func TestDeadLetterLimiterOfGoneLinkDropped(t *testing.T) {
	t.Parallel()
	var out testutil.SyncBuffer
	n := newNode(t, "n", WithDeadLetterLog(&out))
	c := newNode(t, "n/1", WithDeadLetterLog(nil))
	down, _ := join(t, n, c)
	echoPID := n.Root().Spawn(echoProps())
	for range 3 * limiterBurst {
		c.Root().Send(echoPID, &badDecode{}) // undecodable in n: its dead letters are the link n/1's
	}
	limited := func() bool {
		n.dead.mu.Lock()
		defer n.dead.mu.Unlock()
		_, ok := n.dead.limits["n/1"]
		return ok
	}
	testutil.Eventually(t, "the link's limiter", limited)
	if err := down.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the gone link's limiter dropped", func() bool { return !limited() })
	testutil.Eventually(t, "its pending summary written", func() bool {
		return strings.Contains(out.String(), "more dead letters at n (link n/1) not printed")
	})
}
