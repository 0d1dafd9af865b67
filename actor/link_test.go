package actor

import (
	"context"
	"errors"
	"fmt"
	"github.com/procactor/procactor/internal/testutil"
	"net"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
	"github.com/vmihailenco/msgpack/v5"
)

// rawPeer is the far side of a link as a bare mailbox endpoint, to see what
// the link puts on the wire.
type rawPeer struct {
	ep  *mailbox.Endpoint
	got chan mailbox.Envelope
}

// attachRaw connects l to a raw endpoint announcing l's address.
func attachRaw(t *testing.T, l *Link, start bool, a, b net.Conn) *rawPeer {
	t.Helper()
	p := &rawPeer{got: make(chan mailbox.Envelope, 64)}
	ep, err := mailbox.NewEndpoint(b, mailbox.HandlerFuncs{OnDeliver: func(env *mailbox.Envelope) { p.got <- *env }})
	if err != nil {
		t.Fatal(err)
	}
	p.ep = ep
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cookie := mailbox.NewCookie()
	herr := make(chan error, 1)
	go func() {
		_, err := ep.Handshake(ctx, mailbox.Hello{Address: l.Address(), Cookie: cookie})
		herr <- err
	}()
	if _, err := l.Connect(ctx, a, cookie, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-herr; err != nil {
		t.Fatal(err)
	}
	if start {
		if err := ep.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(ep.Abort)
	return p
}

func pipeConns(t *testing.T) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	return a, b
}

// TestLinkLanes pins what each actor.Process method puts on the wire.
func TestLinkLanes(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	l, err := n.ChildLink("1")
	if err != nil {
		t.Fatal(err)
	}
	a, b := pipeConns(t)
	peer := attachRaw(t, l, true, a, b)
	target := pa.NewPID("n/1", "x")
	watcher := n.Root().Spawn(silentProps())
	tests := []struct {
		name     string
		send     func()
		lane     mailbox.Lane
		msg      any
		sender   bool
		header   string
		wantType string
	}{
		{"Send", func() { n.Root().Send(target, "u") }, mailbox.LaneUser, "u", false, "", ""},
		{"Request", func() { n.Root().RequestFuture(target, "r", time.Minute) }, mailbox.LaneUser, "r", true, "", ""},
		{"Header", func() {
			n.Root().Send(target, &pa.MessageEnvelope{Header: map[string]string{}, Message: "h", Sender: watcher})
			n.Root().Send(target, &pa.MessageEnvelope{Header: map[string]string{"trace": "t1"}, Message: "h", Sender: watcher})
		}, mailbox.LaneUser, "h", true, "t1", ""},
		{"Poison", func() { n.Root().Poison(target) }, mailbox.LaneUser, nil, false, "", "*actor.PoisonPill"},
		{"Stop", func() { n.Root().Stop(target) }, mailbox.LaneSystem, nil, false, "", "*actor.Stop"},
		{"Watch", func() { l.SendSystemMessage(target, &pa.Watch{Watcher: watcher}) }, mailbox.LaneSystem, nil, false, "", "*actor.Watch"},
		{"Unwatch", func() { l.SendSystemMessage(target, &pa.Unwatch{Watcher: watcher}) }, mailbox.LaneSystem, nil, false, "", "*actor.Unwatch"},
	}
	for _, tt := range tests {
		tt.send()
		env := testutil.Receive(t, peer.got, tt.name)
		if tt.name == "Header" { // the first one had an empty header: not sent
			if len(env.Header) != 0 {
				t.Errorf("Header: empty header crossed as %v", env.Header)
			}
			env = testutil.Receive(t, peer.got, tt.name)
		}
		if env.Lane != tt.lane {
			t.Errorf("%s: lane %v; want %v", tt.name, env.Lane, tt.lane)
		}
		if !env.Target.Equal(target) {
			t.Errorf("%s: target %v; want %v", tt.name, env.Target, target)
		}
		if tt.msg != nil && env.Message != tt.msg {
			t.Errorf("%s: message %v; want %v", tt.name, env.Message, tt.msg)
		}
		if tt.wantType != "" && fmt.Sprintf("%T", env.Message) != tt.wantType {
			t.Errorf("%s: message %T; want %s", tt.name, env.Message, tt.wantType)
		}
		if (env.Sender != nil) != tt.sender {
			t.Errorf("%s: sender %v; want one: %v", tt.name, env.Sender, tt.sender)
		}
		if env.Header["trace"] != tt.header {
			t.Errorf("%s: header %v; want trace=%q", tt.name, env.Header, tt.header)
		}
	}
	if s := l.Stats(); s.Requests != 1 || s.Watches != 0 {
		t.Errorf("stats %+v; want 1 request, 0 watches (watched, then unwatched)", s)
	}
}

// headerEcho answers with a header's value.
type headerEcho struct{}

func (headerEcho) Receive(ctx pa.Context) {
	if _, ok := ctx.Message().(string); ok {
		ctx.Respond("trace=" + ctx.MessageHeader().Get("trace"))
	}
}

// forwarder forwards strings to next, keeping the original sender.
type forwarder struct{ next *pa.PID }

func (f forwarder) Receive(ctx pa.Context) {
	if _, ok := ctx.Message().(string); ok {
		ctx.Forward(f.next)
	}
}

// asker asks target on "go" from inside an actor (ctx.Request: the sender is
// the actor) and reports the answer on out.
type asker struct {
	target *pa.PID
	out    chan any
}

func (a asker) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		ctx.Request(a.target, "from an actor")
	case string:
		a.out <- m
	}
}

func TestSenderAndHeadersAcrossLink(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	join(t, n, c)
	remoteEcho := c.Root().Spawn(echoProps())
	localEcho := n.Root().Spawn(echoProps())

	t.Run("Request", func(t *testing.T) {
		out := make(chan any, 1)
		n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return asker{remoteEcho, out} }))
		if got := testutil.Receive(t, out, "answer"); got != "from an actor" {
			t.Fatalf("got %v; want the echo", got)
		}
	})
	t.Run("Forward", func(t *testing.T) {
		// n → forwarder on n/1 → echo on n → Respond to the future on n
		fw := c.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return forwarder{localEcho} }))
		if res, err := request(n.Root(), fw, "fw"); err != nil || res != "fw" {
			t.Fatalf("got %v, %v; want fw", res, err)
		}
	})
	t.Run("Header", func(t *testing.T) {
		he := c.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return headerEcho{} }))
		f := pa.NewFuture(n.System(), testTimeout)
		n.Root().Send(he, &pa.MessageEnvelope{Header: map[string]string{"trace": "abc"}, Message: "h", Sender: f.PID()})
		if res, err := f.Result(); err != nil || res != "trace=abc" {
			t.Fatalf("got %v, %v; want trace=abc", res, err)
		}
	})
}

// sequence checks that ints arrive in order and reports on done.
type sequence struct {
	want int
	done chan error
}

func (s *sequence) Receive(ctx pa.Context) {
	if i, ok := ctx.Message().(int); ok {
		if i != s.want {
			s.done <- fmt.Errorf("got %d; want %d", i, s.want)
			s.want = -1 << 62
			return
		}
		s.want++
		if s.want == cap(s.done) {
			s.done <- nil
		}
	}
}

func TestOrderPerPair(t *testing.T) {
	t.Parallel()
	const count = 100_000
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	join(t, n, c)
	seq := &sequence{done: make(chan error, count)}
	pid := c.Root().Spawn(c.WithDispatcher(pa.PropsFromProducer(func() pa.Actor { return seq })))
	for i := range count {
		n.Root().Send(pid, i)
	}
	if err := testutil.Receive(t, seq.done, "the last message"); err != nil {
		t.Fatal(err)
	}
}

func TestReconnectHoldsMessages(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	n := newNode(t, "n", WithHoldLimit(2), WithLogger(buf.logger(zerolog.DebugLevel)))
	c := newNode(t, "n/1")
	down, up := join(t, n, c)
	down.SetReconnect(true)
	up.SetReconnect(true)
	if _, err := c.Root().SpawnNamed(echoProps(), "echo"); err != nil {
		t.Fatal(err)
	}
	pid := pa.NewPID("n/1", "echo") // caches down once resolved
	if res, err := request(n.Root(), pid, "before"); err != nil || res != "before" {
		t.Fatalf("got %v, %v; want before", res, err)
	}
	select {
	case <-down.Up():
	default:
		t.Fatal("Up() not closed while up")
	}

	upLost := make(chan error, 1)
	up.OnDown(func(err error) { upLost <- err })
	down.Abort() // returns after down's loss was handled
	testutil.Receive(t, upLost, "the child side to see the loss")
	if down.IsUp() || down.Stats().State != "down" {
		t.Fatalf("after Abort with reconnect: %+v; want down", down.Stats())
	}
	select {
	case <-down.Up():
		t.Fatal("Up() closed while down")
	default:
	}

	held1 := n.Root().RequestFuture(pid, "held1", testTimeout)
	held2 := n.Root().RequestFuture(pid, "held2", testTimeout)
	_, err := request(n.Root(), pid, "over the limit")
	if !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("send over WithHoldLimit: got %v; want ErrDeadLetter", err)
	}
	if _, ok := buf.find(map[string]string{"message": "dead letter", "error": ErrHeldFull.Error(), "target": "echo@n/1"}); !ok {
		t.Fatalf("no dead-letter line with ErrHeldFull:\n%s", buf.String())
	}
	if s := down.Stats(); s.Held != 2 || s.Requests != 2 {
		t.Fatalf("stats %+v; want 2 held, 2 requests", s)
	}

	connectPipe(t, down, up)
	for i, f := range []*pa.Future{held1, held2} {
		want := fmt.Sprintf("held%d", i+1)
		if res, err := f.Result(); err != nil || res != want {
			t.Fatalf("held request: got %v, %v; want %s", res, err, want)
		}
	}
	if res, err := request(n.Root(), pid, "after"); err != nil || res != "after" {
		t.Fatalf("got %v, %v; want after", res, err)
	}
}

func TestCloseDownLinkDeadLettersHeld(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	l, err := n.ChildLink("1")
	if err != nil {
		t.Fatal(err)
	}
	f := n.Root().RequestFuture(pa.NewPID("n/1", "x"), "held", testTimeout)
	if s := l.Stats(); s.Held != 1 {
		t.Fatalf("stats %+v; want 1 held", s)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("held request after Close: got %v; want ErrDeadLetter", err)
	}
	if s := l.Stats(); s.State != "gone" || s.Held != 0 || s.Requests != 0 {
		t.Fatalf("stats %+v; want gone and empty", s)
	}
	if len(n.Links()) != 0 {
		t.Fatalf("closed link still attached")
	}
}

func TestGoneLinkForwardsToNewLink(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c1 := newNode(t, "n/1")
	down, _ := join(t, n, c1)
	if _, err := c1.Root().SpawnNamed(echoProps(), "echo"); err != nil {
		t.Fatal(err)
	}
	pid := pa.NewPID("n/1", "echo")
	if _, err := request(n.Root(), pid, "x"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := down.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := request(n.Root(), pid, "x"); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request over a gone link: got %v; want ErrDeadLetter", err)
	}
	// A new node at the same address, on a new link: the PID that cached
	// the old link reaches it.
	c2 := newNode(t, "n/1")
	join(t, n, c2)
	if _, err := c2.Root().SpawnNamed(echoProps(), "echo"); err != nil {
		t.Fatal(err)
	}
	if res, err := request(n.Root(), pid, "again"); err != nil || res != "again" {
		t.Fatalf("got %v, %v; want again", res, err)
	}
}

// watcher watches target when started and reports Terminated on events.
type watcher struct {
	target *pa.PID
	events chan *pa.Terminated
}

func (w *watcher) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		ctx.Watch(w.target)
	case *pa.Terminated:
		w.events <- m
	case string:
		if m == "unwatch" {
			ctx.Unwatch(w.target)
		}
	}
}

func spawnWatcher(n *Node, target *pa.PID) (*pa.PID, chan *pa.Terminated) {
	w := &watcher{target: target, events: make(chan *pa.Terminated, 4)}
	return n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return w })), w.events
}

func TestWatchAcrossLink(t *testing.T) {
	t.Parallel()
	ends := []struct {
		name           string
		watcherAtChild bool
	}{
		{"parent watches child", false},
		{"child watches parent", true},
	}
	endings := []string{"stop", "unwatch", "link lost"}
	for _, e := range ends {
		for _, ending := range endings {
			t.Run(e.name+"/"+ending, func(t *testing.T) {
				t.Parallel()
				n := newNode(t, "n")
				c := newNode(t, "n/1")
				down, up := join(t, n, c)
				wn, wl, hn, hl := n, down, c, up // watcher's node and link, watchee's node and link
				if e.watcherAtChild {
					wn, wl, hn, hl = c, up, n, down
				}
				watchee := hn.Root().Spawn(silentProps())
				wpid, events := spawnWatcher(wn, watchee)
				testutil.Eventually(t, "the watch to be recorded on both sides", func() bool {
					return wl.Stats().Watches == 1 && hl.Stats().WatchedBy == 1
				})
				switch ending {
				case "stop":
					hn.Root().Stop(watchee)
					m := testutil.Receive(t, events, "Terminated")
					if m.Why != pa.TerminatedReason_Stopped || !m.Who.Equal(watchee) {
						t.Fatalf("got %v; want Stopped of %v", m, watchee)
					}
				case "unwatch":
					wn.Root().Send(wpid, "unwatch")
				case "link lost":
					wl.Abort()
					m := testutil.Receive(t, events, "Terminated")
					if m.Why != pa.TerminatedReason_AddressTerminated || !m.Who.Equal(watchee) {
						t.Fatalf("got %v; want AddressTerminated of %v", m, watchee)
					}
				}
				testutil.Eventually(t, "the watch tables to empty", func() bool {
					return wl.Stats().Watches == 0 && hl.Stats().WatchedBy == 0
				})
			})
		}
	}
}

func TestLinkLossFailsRequestsAndWatches(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	down, up := join(t, n, c)
	silent, _ := c.Root().SpawnNamed(silentProps(), "silent")
	var futures []*pa.Future
	for i := range 3 {
		futures = append(futures, n.Root().RequestFuture(silent, i, time.Minute))
	}
	_, events := spawnWatcher(n, silent)
	testutil.Eventually(t, "the watch to be recorded", func() bool { return down.Stats().Watches == 1 })
	if s := down.Stats(); s.Requests != 3 {
		t.Fatalf("stats %+v; want 3 requests in flight", s)
	}
	start := time.Now()
	down.Abort()
	for _, f := range futures {
		if _, err := f.Result(); !errors.Is(err, pa.ErrDeadLetter) {
			t.Fatalf("request in flight: got %v; want ErrDeadLetter", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("requests failed after %v; want at once", d)
	}
	m := testutil.Receive(t, events, "Terminated after link loss")
	if m.Why != pa.TerminatedReason_AddressTerminated || m.Who.Id != "silent" {
		t.Fatalf("got %v; want AddressTerminated of silent", m)
	}
	for _, l := range []*Link{down, up} {
		testutil.Eventually(t, l.Address()+" to be gone and empty", func() bool {
			s := l.Stats()
			return s.State == "gone" && s.Requests == 0 && s.Watches == 0 && s.WatchedBy == 0
		})
	}
	// A watch through a gone link is answered at once.
	_, events = spawnWatcher(n, silent)
	if m := testutil.Receive(t, events, "Terminated for a watch after loss"); m.Why != pa.TerminatedReason_AddressTerminated {
		t.Fatalf("got %v; want AddressTerminated", m)
	}
}

// unregistered is a type no one registered with mailbox.
type unregistered struct{ X int }

// badDecode encodes but never decodes.
type badDecode struct{}

func (*badDecode) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeInt(1) }
func (*badDecode) DecodeMsgpack(*msgpack.Decoder) error {
	return errors.New("badDecode never decodes")
}

func init() { mailbox.RegisterType("actor_test.badDecode", &badDecode{}) }

func TestDeadLettersAreLogged(t *testing.T) {
	t.Parallel()
	var nbuf, cbuf logBuffer
	n := newNode(t, "n", WithLogger(nbuf.logger(zerolog.DebugLevel)))
	c := newNode(t, "n/1", WithLogger(cbuf.logger(zerolog.DebugLevel)))
	join(t, n, c)
	echoPID := c.Root().Spawn(echoProps())
	tests := []struct {
		name   string
		target *pa.PID
		msg    any
		log    *logBuffer
		want   map[string]string
	}{
		{"unregistered type", echoPID, unregistered{1}, &nbuf,
			map[string]string{"level": "warn", "message": "dead letter", "error": mailbox.ErrTypeNotRegistered.Error(), "type": "actor.unregistered", "peer": "n/1"}},
		{"no such actor", pa.NewPID("n/1", "nobody"), "x", &cbuf,
			map[string]string{"message": "dead letter", "error": ErrNoSuchActor.Error(), "target": "nobody@n/1", "type": "string"}},
		{"no route", pa.NewPID("n/7", "x"), "x", &nbuf,
			map[string]string{"level": "warn", "message": "dead letter", "error": ErrNoRoute.Error(), "target": "x@n/7"}},
		{"undecodable", echoPID, &badDecode{}, &cbuf,
			map[string]string{"level": "warn", "message": "dead letter: undecodable message", "error": "badDecode never decodes", "peer": "n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := request(n.Root(), tt.target, tt.msg); !errors.Is(err, pa.ErrDeadLetter) {
				t.Fatalf("got %v; want ErrDeadLetter", err)
			}
			testutil.Eventually(t, "the log line", func() bool { _, ok := tt.log.find(tt.want); return ok })
		})
	}
	// the link lives on
	if res, err := request(n.Root(), echoPID, "still"); err != nil || res != "still" {
		t.Fatalf("got %v, %v; want still", res, err)
	}
}

func TestSendTimeoutOnFullLink(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	n := newNode(t, "n", WithSendTimeout(20*time.Millisecond), WithLogger(buf.logger(zerolog.DebugLevel)),
		WithEndpointOptions(mailbox.WithUserQueue(1)))
	l, err := n.ChildLink("1")
	if err != nil {
		t.Fatal(err)
	}
	a, b := pipeConns(t)
	attachRaw(t, l, false, a, b) // never reads: net.Pipe has no buffer
	target := pa.NewPID("n/1", "x")
	var futures []*pa.Future
	for i := range 4 {
		futures = append(futures, n.Root().RequestFuture(target, i, testTimeout))
	}
	// The first ones sit in the stream and the queue; the others wait for
	// room for WithSendTimeout, then are dead letters.
	if _, err := futures[3].Result(); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request to a full link: got %v; want ErrDeadLetter", err)
	}
	if _, ok := buf.find(map[string]string{"message": "dead letter", "error": mailbox.ErrQueueFull.Error()}); !ok {
		t.Fatalf("no dead-letter line with ErrQueueFull:\n%s", buf.String())
	}
	l.Abort()
	for _, f := range futures {
		if _, err := f.Result(); !errors.Is(err, pa.ErrDeadLetter) {
			t.Fatalf("request after loss: got %v; want ErrDeadLetter", err)
		}
	}
}

// TestReconnectUnderLoad: requests sent while the link drops and comes back
// are all answered, by the echo or by a dead letter, never by a timeout.
func TestReconnectUnderLoad(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	down, up := join(t, n, c)
	down.SetReconnect(true)
	up.SetReconnect(true)
	upLost := make(chan error, 16)
	up.OnDown(func(err error) { upLost <- err })
	if _, err := c.Root().SpawnNamed(echoProps(), "echo"); err != nil {
		t.Fatal(err)
	}
	pid := pa.NewPID("n/1", "echo")

	stop := make(chan struct{})
	futures := make(chan []*pa.Future, 1)
	go func() {
		var fs []*pa.Future
		for i := 0; ; i++ {
			select {
			case <-stop:
				futures <- fs
				return
			default:
			}
			fs = append(fs, n.Root().RequestFuture(pid, i, testTimeout))
			if i%64 == 0 {
				time.Sleep(50 * time.Microsecond) // let the echo keep up
			}
		}
	}()
	for range 5 {
		time.Sleep(5 * time.Millisecond) // traffic flows meanwhile
		down.Abort()
		testutil.Receive(t, upLost, "the child side to see the loss")
		connectPipe(t, down, up)
	}
	close(stop)
	fs := testutil.Receive(t, futures, "the futures")
	answered, dead := 0, 0
	for i, f := range fs {
		res, err := f.Result()
		switch {
		case err == nil && res == i:
			answered++
		case errors.Is(err, pa.ErrDeadLetter):
			dead++
		default:
			t.Fatalf("request %d: got %v, %v; want %d or ErrDeadLetter", i, res, err, i)
		}
	}
	t.Logf("%d requests: %d answered, %d dead letters", len(fs), answered, dead)
	if answered == 0 {
		t.Fatal("no request answered")
	}
	testutil.Eventually(t, "the tables to empty", func() bool {
		s := down.Stats()
		return s.Requests == 0 && s.Held == 0
	})
}

// TestBadSystemMessagesRefused: system messages that protoactor never sends
// across nodes, or that lack their PIDs, are dead letters with a log line;
// they never reach the target (a nil Watcher would panic inside it and
// restart it).
func TestBadSystemMessagesRefused(t *testing.T) {
	t.Parallel()
	var nbuf logBuffer
	n := newNode(t, "n", WithLogger(nbuf.logger(zerolog.DebugLevel)))
	c := newNode(t, "n/1")
	_, up := join(t, n, c)
	var starts atomic.Int32
	victim := n.Root().Spawn(pa.PropsFromFunc(func(ctx pa.Context) {
		switch ctx.Message().(type) {
		case *pa.Started:
			starts.Add(1)
		case string:
			ctx.Respond("alive")
		}
	}))
	for _, m := range []any{&pa.Watch{}, &pa.Unwatch{}, &pa.Terminated{}, &pa.Touch{}} {
		up.SendSystemMessage(victim, m)
	}
	testutil.Eventually(t, "four refusals logged", func() bool {
		return nbuf.count(map[string]string{"message": "dead letter: system message refused", "error": ErrBadSystemMessage.Error()}) == 4
	})
	if res, err := request(c.Root(), victim, "still?"); err != nil || res != "alive" {
		t.Fatalf("got %v, %v; want alive", res, err)
	}
	if got := starts.Load(); got != 1 {
		t.Fatalf("victim started %d times; want 1 (no restart)", got)
	}
}

// TestCloseBoundedWithoutDeadline: Link.Close(context.Background()) returns
// even when the peer never answers the goodbye (its reader is stuck).
func TestCloseBoundedWithoutDeadline(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	down, err := n.ChildLink("1")
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := mailbox.Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	stuck := make(chan struct{})
	peer, err := mailbox.NewEndpoint(b, mailbox.HandlerFuncs{OnDeliver: func(*mailbox.Envelope) { <-stuck }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(stuck) // first unstick the peer's reader, then end the peer
		peer.Abort()
	}()
	cookie := mailbox.NewCookie()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _, _ = peer.Handshake(ctx, mailbox.Hello{Address: "n/1", Cookie: cookie}); _ = peer.Start() }()
	if _, err := down.Connect(ctx, a, cookie, 0); err != nil {
		t.Fatal(err)
	}
	n.Root().Send(pa.NewPID("n/1", "anyone"), "blocks the peer's reader")
	closed := make(chan error, 1)
	go func() { closed <- down.Close(context.Background()) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: got %v; want DeadlineExceeded", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Link.Close(context.Background()) never returned")
	}
	if down.IsUp() {
		t.Fatal("link still up after Close")
	}
}

// TestOnDownAdds: OnDown adds a function, it never replaces one (package
// procnode keeps its own on the links it makes): each runs once per loss, in
// the order added, and a nil one is ignored.
func TestOnDownAdds(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	down, up := join(t, n, c)
	calls := make(chan string, 4)
	up.OnDown(func(error) { calls <- "first" })
	up.OnDown(nil)
	up.OnDown(func(error) { calls <- "second" })
	down.Abort()
	for _, want := range []string{"first", "second"} {
		if got := testutil.Receive(t, calls, "an OnDown call"); got != want {
			t.Fatalf("got call %q; want %q", got, want)
		}
	}
	select {
	case got := <-calls:
		t.Fatalf("extra OnDown call %q", got)
	default:
	}
}
