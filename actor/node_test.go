package actor

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/leakcheck"
	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakcheck.Options()...)
}

// echo answers strings, []byte and ints to their sender.
type echo struct{}

func (echo) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case string, []byte, int:
		if ctx.Sender() != nil {
			ctx.Respond(m)
		}
	}
}

func echoProps() *pa.Props { return pa.PropsFromProducer(func() pa.Actor { return echo{} }) }

// silentProps make an actor that never answers.
func silentProps() *pa.Props { return pa.PropsFromFunc(func(pa.Context) {}) }

const testTimeout = 5 * time.Second

// newNode makes a node closed at the end of the test.
func newNode(t testing.TB, addr string, opts ...NodeOption) *Node {
	t.Helper()
	n, err := NewNode(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

// join connects parent and child (child's address must be parent's + "/seg")
// over a pipe pair and returns both links.
func join(t testing.TB, parent, child *Node) (down, up *Link) {
	t.Helper()
	seg := child.Address()[len(parent.Address())+1:]
	down, err := parent.ChildLink(seg)
	if err != nil {
		t.Fatal(err)
	}
	up, err = child.ParentLink()
	if err != nil {
		t.Fatal(err)
	}
	connectPipe(t, down, up)
	return down, up
}

// joinUntrusted is join with the child behind an untrusted link that
// grants at most grants PIDs (Link.SetUntrusted).
func joinUntrusted(t testing.TB, parent, child *Node, grants int) (down, up *Link) {
	t.Helper()
	down, err := parent.ChildLink(child.Address()[len(parent.Address())+1:])
	if err != nil {
		t.Fatal(err)
	}
	if err := down.SetUntrusted(grants); err != nil {
		t.Fatal(err)
	}
	if up, err = child.ParentLink(); err != nil {
		t.Fatal(err)
	}
	connectPipe(t, down, up)
	return down, up
}

// connectPipe connects two links over a new pipe pair.
func connectPipe(t testing.TB, down, up *Link) {
	t.Helper()
	a, b, err := mailbox.Pipe(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	connectPair(t, down, up, a, b)
}

func connectPair(t testing.TB, down, up *Link, a, b *mailbox.PipeConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cookie := mailbox.NewCookie()
	var wg sync.WaitGroup
	wg.Add(1)
	var uerr error
	go func() { defer wg.Done(); _, uerr = up.Connect(ctx, b, cookie, 0) }()
	_, derr := down.Connect(ctx, a, cookie, 0)
	wg.Wait()
	if derr != nil || uerr != nil {
		t.Fatalf("connect: %v / %v", derr, uerr)
	}
}

// request makes a RequestFuture and returns its result.
func request(rc *pa.RootContext, pid *pa.PID, msg any) (any, error) {
	return rc.RequestFuture(pid, msg, testTimeout).Result()
}

// logBuffer collects zerolog's JSON lines; safe for concurrent use.
type logBuffer struct{ testutil.SyncBuffer }

// find returns the first line whose fields contain all of want (values
// compared as substrings).
func (b *logBuffer) find(want map[string]string) (map[string]any, bool) {
	lines := b.matching(want)
	if len(lines) == 0 {
		return nil, false
	}
	return lines[0], true
}

// count returns how many lines match want, as find does.
func (b *logBuffer) count(want map[string]string) int { return len(b.matching(want)) }

func (b *logBuffer) matching(want map[string]string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		ok := true
		for k, v := range want {
			s, _ := m[k].(string)
			if !strings.Contains(s, v) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func (b *logBuffer) logger(level zerolog.Level) zerolog.Logger {
	return zerolog.New(b).Level(level)
}

func TestRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		self, target string
		hop          hop
		seg          string
	}{
		{"n", "n", hopSelf, ""},
		{"n", "n/1", hopChild, "1"},
		{"n", "n/1/1", hopChild, "1"},
		{"n", "n/12/3", hopChild, "12"},
		{"n/1", "n", hopParent, ""},
		{"n/1", "n/2", hopParent, ""},
		{"n/1", "n/2/1", hopParent, ""},
		{"n/1", "n/1/1", hopChild, "1"},
		{"n/1", "n/10", hopParent, ""}, // a prefix of the string is not an ancestor
		{"n/1/1", "n/1", hopParent, ""},
		{"n", "m", hopNone, ""},
		{"n", "nn/1", hopNone, ""},
		{"n", "127.0.0.1:8080", hopNone, ""},
		{"n", "m/1", hopNone, ""},
		{"127.0.0.1:8080", "127.0.0.1:8081/2", hopNone, ""},
		// A non-root node sends other trees up, towards its root (which may
		// reach other hosts).
		{"n/1", "m/1", hopParent, ""},
		{"n/1", "m", hopParent, ""},
		{"n/1/2", "127.0.0.1:8080/3", hopParent, ""},
		{"127.0.0.1:8080/1", "127.0.0.1:8081", hopParent, ""},
		{"127.0.0.1:8080/1", "127.0.0.1:8080/2", hopParent, ""},
		{"127.0.0.1:8080/1", "127.0.0.1:8080/1/4", hopChild, "4"},
		{"n/1", "", hopNone, ""},
	}
	for _, tt := range tests {
		h, seg := route(tt.self, tt.target)
		if h != tt.hop || seg != tt.seg {
			t.Errorf("route(%q, %q) = %v, %q; want %v, %q", tt.self, tt.target, h, seg, tt.hop, tt.seg)
		}
	}
}

func TestValidateAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		ok   bool
	}{
		{"n", true},
		{"n/1/2", true},
		{"", false},
		{"nonhost", false},
		{"n//1", false},
		{"n/", false},
		{"/n", false},
		{"n/a b", false},
	}
	for _, tt := range tests {
		err := ValidateAddress(tt.addr)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidAddress)) {
			t.Errorf("ValidateAddress(%q) = %v; want ok=%v", tt.addr, err, tt.ok)
		}
	}
}

func TestNewNodeOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  NodeOption
	}{
		{"hold", WithHoldLimit(-1)},
		{"timeout", WithSendTimeout(0)},
		{"workers", WithWorkers(-1)},
		{"throughput", WithDispatcherThroughput(0)},
	}
	for _, tt := range tests {
		if _, err := NewNode("n", tt.opt); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: got %v; want ErrInvalidOption", tt.name, err)
		}
	}
	if _, err := NewNode("nonhost"); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("NewNode(nonhost): got %v; want ErrInvalidAddress", err)
	}
}

func TestAddressAndResolver(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	if got := n.System().ProcessRegistry.Address; got != "n" {
		t.Fatalf("registry address %q; want n", got)
	}
	if pid := n.Root().Spawn(silentProps()); pid.Address != "n" {
		t.Fatalf("spawned PID address %q; want n", pid.Address)
	}
	down, err := n.ChildLink("1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.ChildLink("1"); !errors.Is(err, ErrLinkExists) {
		t.Fatalf("second ChildLink(1): got %v; want ErrLinkExists", err)
	}
	if _, err := n.ParentLink(); !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("ParentLink of a root: got %v; want ErrInvalidAddress", err)
	}
	// A resolver registered later (protoactor's gRPC remote claims every
	// address) comes after ours.
	var other pa.Process = n.System().DeadLetter
	claimed := 0
	n.System().ProcessRegistry.RegisterAddressResolver(func(*pa.PID) (pa.Process, bool) { claimed++; return other, true })
	tests := []struct {
		addr string
		want pa.Process
	}{
		{"n/1", down},
		{"n/1/7", down},
		{"n/2", unrouted{n}},
		{"elsewhere:8080", other},
	}
	for _, tt := range tests {
		got, ok := n.System().ProcessRegistry.Get(pa.NewPID(tt.addr, "x"))
		if !ok || got != tt.want {
			t.Errorf("Get(%s) = %T %v; want %T", tt.addr, got, ok, tt.want)
		}
	}
	if claimed != 1 {
		t.Errorf("later resolver asked %d times; want 1 (only for the foreign address)", claimed)
	}
}

func TestRequestAcrossLink(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	down, up := join(t, n, c)
	pid, err := c.Root().SpawnNamed(echoProps(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := request(n.Root(), pid, "hi"); err != nil || res != "hi" {
		t.Fatalf("got %v, %v; want hi", res, err)
	}
	// and back: the child asks an actor of the parent
	ppid := n.Root().Spawn(echoProps())
	if res, err := request(c.Root(), ppid, 7); err != nil || res != 7 {
		t.Fatalf("got %v, %v; want 7", res, err)
	}
	// a missing actor answers a request with a dead letter at once
	if _, err := request(n.Root(), pa.NewPID("n/1", "nobody"), "x"); !errors.Is(err, pa.ErrDeadLetter) {
		t.Fatalf("request to missing actor: got %v; want ErrDeadLetter", err)
	}
	// answered requests leave nothing behind
	for _, l := range []*Link{down, up} {
		if s := l.Stats(); s.Requests != 0 {
			t.Errorf("%s: %d requests tracked after answers; want 0", l.Address(), s.Requests)
		}
	}
}

func TestLoggingQuietByDefault(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	if lvl := n.Logger().GetLevel(); lvl != zerolog.Disabled {
		t.Fatalf("default logger level %v; want disabled (zerolog.Nop)", lvl)
	}

	// A normal exchange writes nothing at info level, protoactor's records
	// included ("actor system started" is info).
	var buf logBuffer
	p := newNode(t, "p", WithLogger(buf.logger(zerolog.InfoLevel)))
	c := newNode(t, "p/1", WithLogger(buf.logger(zerolog.InfoLevel)))
	join(t, p, c)
	pid := c.Root().Spawn(echoProps())
	if _, err := request(p.Root(), pid, "x"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); s != "" {
		t.Fatalf("normal exchange logged:\n%s", s)
	}
}

func TestProtoactorLogsRoutedToZerolog(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	newNode(t, "n", WithLogger(buf.logger(zerolog.DebugLevel)), WithProtoactorLogLevel(zerolog.InfoLevel))
	if _, ok := buf.find(map[string]string{"lib": "protoactor", "node": "n", "message": "actor system started", "level": "info"}); !ok {
		t.Fatalf("protoactor's start record not in the zerolog output:\n%s", buf.String())
	}
}

// foreignProcess stands in for a resolver after the node's own (package
// reach): it answers every request with the address it was sent to.
type foreignProcess struct{ sys *pa.ActorSystem }

func (f foreignProcess) SendUserMessage(pid *pa.PID, m any) {
	if _, _, sender := pa.UnwrapEnvelope(m); sender != nil {
		f.sys.Root.Send(sender, "from "+pid.Address)
	}
}
func (foreignProcess) SendSystemMessage(*pa.PID, any) {}
func (foreignProcess) Stop(*pa.PID)                   {}

// TestForeignTreeGoesUp: a child sends a PID of another tree up to its
// root, where a later resolver (as package reach registers) takes it; the
// answer comes back down.
func TestForeignTreeGoesUp(t *testing.T) {
	t.Parallel()
	root := newNode(t, "127.0.0.1:7001")
	child := newNode(t, "127.0.0.1:7001/1")
	// Before the link: protoactor's resolver list is not guarded, and the
	// root's reader consults it as soon as the link is up.
	var asked atomic.Int32
	root.System().ProcessRegistry.RegisterAddressResolver(func(pid *pa.PID) (pa.Process, bool) {
		asked.Add(1)
		return foreignProcess{root.System()}, true
	})
	join(t, root, child)
	for _, addr := range []string{"127.0.0.1:7002", "127.0.0.1:7002/3/1"} {
		res, err := child.Root().RequestFuture(pa.NewPID(addr, "x"), "hi", testTimeout).Result()
		if err != nil {
			t.Fatalf("request to %s from the child: %v", addr, err)
		}
		if want := "from " + addr; res != want {
			t.Fatalf("got %v; want %q", res, want)
		}
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("root's later resolver asked %d times; want 2", n)
	}
}
