package actor

import (
	"context"
	"errors"
	"github.com/procactor/procactor/internal/testutil"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// spawnArgs is a registered argument type that carries a PID.
type spawnArgs struct {
	Reply *pa.PID
	Text  string
}

func init() {
	mailbox.RegisterType("actor_test.spawnArgs", &spawnArgs{})
	RegisterKind("actor_test.echo", func(args Args) (*pa.Props, error) {
		return args.Node.WithDispatcher(echoProps()), nil
	})
	RegisterKind("actor_test.panics", func(Args) (*pa.Props, error) { panic("producer panicked") })
	RegisterKind("actor_test.actorPanics", func(Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { panic("actor constructor panicked") }), nil
	})
	RegisterKind("actor_test.fails", func(Args) (*pa.Props, error) { return nil, errors.New("bad args") })
	RegisterKind("actor_test.args", func(args Args) (*pa.Props, error) {
		a, ok := args.Value.(*spawnArgs)
		if !ok {
			return nil, errors.New("want *spawnArgs")
		}
		return pa.PropsFromFunc(func(ctx pa.Context) {
			if _, ok := ctx.Message().(*pa.Started); ok {
				ctx.Send(a.Reply, a.Text)
			}
		}), nil
	})
}

func TestSpawnKind(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	join(t, n, c)
	ctx := context.Background()

	first, err := n.Spawn(ctx, "n/1", "actor_test.echo")
	if err != nil {
		t.Fatal(err)
	}
	if first.Address != "n/1" {
		t.Fatalf("spawned at %q; want n/1", first.Address)
	}
	if res, err := request(n.Root(), first, "hi"); err != nil || res != "hi" {
		t.Fatalf("got %v, %v; want hi", res, err)
	}
	named, err := n.Spawn(ctx, "n/1", "actor_test.echo", WithName("e"))
	if err != nil || named.Id != "e" {
		t.Fatalf("named spawn: %v, %v; want id e", named, err)
	}

	got := make(chan any, 1)
	reply := n.Root().Spawn(pa.PropsFromFunc(func(ctx pa.Context) {
		if s, ok := ctx.Message().(string); ok {
			got <- s
		}
	}))
	tests := []struct {
		name    string
		address string
		kind    string
		opts    []SpawnOption
		wantErr error
	}{
		{"unknown kind", "n/1", "actor_test.nope", nil, ErrKindNotRegistered},
		{"name exists", "n/1", "actor_test.echo", []SpawnOption{WithName("e")}, ErrNameExists},
		{"producer panics", "n/1", "actor_test.panics", nil, ErrSpawnFailed},
		{"producer fails", "n/1", "actor_test.fails", nil, ErrSpawnFailed},
		{"actor constructor panics", "n/1", "actor_test.actorPanics", []SpawnOption{WithName("p")}, ErrSpawnFailed},
		{"name free after a failed spawn", "n/1", "actor_test.echo", []SpawnOption{WithName("p")}, nil},
		{"args with a PID", "n/1", "actor_test.args", []SpawnOption{WithArgs(&spawnArgs{Reply: reply, Text: "args arrived"})}, nil},
		{"local", "n", "actor_test.echo", nil, nil},
		{"local unknown", "n", "actor_test.nope", nil, ErrKindNotRegistered},
		{"no route", "n/9", "actor_test.echo", nil, pa.ErrDeadLetter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, err := n.Spawn(ctx, tt.address, tt.kind, tt.opts...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("got %v; want %v", err, tt.wantErr)
			}
			switch {
			case tt.wantErr == ErrNameExists:
				if !pid.Equal(named) {
					t.Fatalf("ErrNameExists with %v; want the existing %v", pid, named)
				}
			case tt.wantErr == nil:
				if pid.Address != tt.address {
					t.Fatalf("spawned at %v; want %s", pid, tt.address)
				}
			}
		})
	}
	if s := testutil.Receive(t, got, "the args actor's message"); s != "args arrived" {
		t.Fatalf("got %v; want args arrived", s)
	}
	// Failed spawns harmed nothing: the first actor still answers.
	if res, err := request(n.Root(), first, "still"); err != nil || res != "still" {
		t.Fatalf("got %v, %v; want still", res, err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := n.Spawn(cctx, "n/1", "actor_test.echo"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: got %v; want context.Canceled", err)
	}
}

func TestRegisterKindPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind string
		p    Producer
	}{
		{"empty name", "", func(Args) (*pa.Props, error) { return nil, nil }},
		{"nil producer", "actor_test.nil", nil},
		{"twice", "actor_test.echo", func(Args) (*pa.Props, error) { return nil, nil }},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: RegisterKind did not panic", tt.name)
				}
			}()
			RegisterKind(tt.kind, tt.p)
		}()
	}
}

// slowSpawn's producer says it runs on slowSpawnEntered and returns once
// it gets a token from slowSpawnGate (TestSpawnCancelledWhileRunning alone
// uses it).
var (
	slowSpawnEntered = make(chan struct{}, 1)
	slowSpawnGate    = make(chan struct{}, 1)
)

func init() {
	RegisterKind("actor_test.slowSpawn", func(args Args) (*pa.Props, error) {
		slowSpawnEntered <- struct{}{}
		<-slowSpawnGate
		return echoProps(), nil
	})
}

// TestSpawnCancelledWhileRunning: a remote spawn whose ctx ends while the
// other node runs it returns ctx's error; the actor that node spawns after
// all is stopped, not left running with a PID nobody was given (in one
// node, Spawn either returns the PID or spawns nothing).
func TestSpawnCancelledWhileRunning(t *testing.T) {
	t.Parallel()
	n := newNode(t, "n")
	c := newNode(t, "n/1")
	join(t, n, c)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := n.Spawn(ctx, "n/1", "actor_test.slowSpawn", WithName("late"))
		errc <- err
	}()
	testutil.Receive(t, slowSpawnEntered, "the producer to run")
	cancel()
	if err := testutil.Receive(t, errc, "the cancelled spawn"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled spawn: got %v; want context.Canceled", err)
	}
	slowSpawnGate <- struct{}{}
	// The activator spawns in turn: once this spawn is done, "late" was.
	if _, err := n.Spawn(context.Background(), "n/1", "actor_test.echo"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the actor spawned for a cancelled spawn stopped", func() bool {
		_, ok := c.System().ProcessRegistry.GetLocal("late")
		return !ok
	})
}
