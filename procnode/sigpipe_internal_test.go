package procnode

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
)

// kindSigpipe answers "armed?" with whether its child has armed SIGPIPE
// (armSIGPIPE), and "write" with the error of a write to its stdout.
const kindSigpipe = "test.sigpipe"

func init() {
	RegisterKind(kindSigpipe, func(Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(c pa.Context) {
			switch c.Message() {
			case "armed?":
				c.Respond(sigpipeArmed.Load())
			case "write":
				_, err := os.Stdout.Write([]byte("x\n"))
				c.Respond(errString(err))
			}
		}), nil
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSIGPIPEArmedAfterStart: a child arms SIGPIPE by itself after its
// handshake (it does not wait for its parent to go), and once armed a
// write to a stdout nobody reads fails with EPIPE instead of killing it.
func TestSIGPIPEArmedAfterStart(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	p, err := Spawn(context.Background(), n.Root(), kindSigpipe, WithRestart(false), WithStdout(w))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	r.Close() // the child's stdout now has no reader
	ask := func(msg string) any {
		t.Helper()
		res, err := n.Root().RequestFuture(p.PID(), msg, testutil.Timeout).Result()
		if err != nil {
			t.Fatalf("%s: %v (exit status %v)", msg, err, p.ExitStatus())
		}
		return res
	}
	testutil.Eventually(t, "the child armed SIGPIPE", func() bool { return ask("armed?") == true })
	if res := ask("write"); !strings.Contains(res.(string), "broken pipe") {
		t.Fatalf("write to a stdout nobody reads: %q; want EPIPE", res)
	}
	if res := ask("armed?"); res != true {
		t.Fatalf("after the write: %v", res)
	}
	if st := p.ExitStatus(); st != nil {
		t.Fatalf("the child exited: %v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
