package procnode_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/internal/leakcheck"
	"github.com/procactor/procactor/procnode"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	procnode.Main()
	opts := append(leakcheck.Options(), goleak.IgnoreAnyFunction("github.com/procactor/procactor/procnode.forkLoop"))
	goleak.VerifyTestMain(m, opts...)
}

type echoActor struct{}

func (echoActor) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case string:
		if m == "panic" {
			panic("asked to panic")
		}
		if m == "exit3" {
			os.Exit(3)
		}
		ctx.Respond("echo: " + m)
	}
}

func init() {
	actor.RegisterKind("test.echo", func(actor.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return echoActor{} }), nil
	})
}

func newNode(t *testing.T) *procnode.Node {
	t.Helper()
	n, err := procnode.NewNode()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

func TestSpawnRequestStop(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	p, err := procnode.Spawn(ctx, n.Root(), "test.echo", procnode.WithRestart(false))
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Root().RequestFuture(p.PID(), "hi", 5*time.Second).Result()
	if err != nil || res != "echo: hi" {
		t.Fatalf("got %v, %v; want echo: hi", res, err)
	}
	if !p.Alive() || p.OSPid() == 0 {
		t.Fatalf("alive %v pid %d", p.Alive(), p.OSPid())
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	if err := p.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while running: got %v; want DeadlineExceeded", err)
	}
	cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("Wait after Stop: %v (%v)", err, p.ExitStatus())
	}
	st := p.ExitStatus()
	if !st.Stopped || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestRootPanicEndsChild(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	p, err := procnode.Spawn(ctx, n.Root(), "test.echo", procnode.WithRestart(false), procnode.WithStderr(nil))
	if err != nil {
		t.Fatal(err)
	}
	n.Root().Send(p.PID(), "panic")
	err = p.Wait(ctx)
	var ee *procnode.ExitError
	if !errors.As(err, &ee) || ee.Code != procnode.ExitRootFailed || ee.Reason == "" {
		t.Fatalf("got %v; want ExitError code 2 with reason", err)
	}
	t.Logf("status: %v", ee)
}
