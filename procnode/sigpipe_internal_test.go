package procnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/testutil"
)

// kindSigpipe answers "armed at start?" with whether its child had armed
// SIGPIPE (armSIGPIPE) when the root actor started, "armed?" with whether
// it has now, and "write" with the error of a write to its stdout.
const kindSigpipe = "test.sigpipe"

func init() {
	RegisterKind(kindSigpipe, func(Args) (*pa.Props, error) {
		var armedAtStart bool
		return pa.PropsFromFunc(func(c pa.Context) {
			switch c.Message().(type) {
			case *pa.Started:
				armedAtStart = sigpipeArmed.Load()
			}
			switch c.Message() {
			case "armed at start?":
				c.Respond(armedAtStart)
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

// spawnSigpipe spawns kindSigpipe with stdout w and returns an asker.
func spawnSigpipe(t *testing.T, w *os.File) (*Process, func(string) any) {
	t.Helper()
	n, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	p, err := Spawn(context.Background(), n.Root(), kindSigpipe, WithRestart(false), WithStdout(w))
	if err != nil {
		t.Fatal(err)
	}
	return p, func(msg string) any {
		t.Helper()
		res, err := n.Root().RequestFuture(p.PID(), msg, testutil.Timeout).Result()
		if err != nil {
			t.Fatalf("%s: %v (exit status %v)", msg, err, p.ExitStatus())
		}
		return res
	}
}

// TestSIGPIPEArmedBeforeStartOnAPipe: a child whose stdout is a pipe arms
// SIGPIPE before its root actor starts, and a write to that stdout once
// nobody reads it fails with EPIPE instead of killing the child.
func TestSIGPIPEArmedBeforeStartOnAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p, ask := spawnSigpipe(t, w)
	w.Close()
	r.Close() // the child's stdout now has no reader
	if res := ask("armed at start?"); res != true {
		t.Fatalf("armed when the root actor started: %v; want true (its stdout is a pipe)", res)
	}
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

// TestSIGPIPEArmedAfterStart: a child whose stdout cannot break (a file)
// arms SIGPIPE after its start, by itself (it does not wait for its parent
// to go).
func TestSIGPIPEArmedAfterStart(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, ask := spawnSigpipe(t, f)
	if res := ask("armed at start?"); res != false {
		t.Fatalf("armed when the root actor started: %v; want false (its stdout is a file: armed later, off the start's path)", res)
	}
	testutil.Eventually(t, "the child armed SIGPIPE", func() bool { return ask("armed?") == true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
