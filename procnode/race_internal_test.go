package procnode

import (
	"context"
	"testing"
	"time"
)

// TestRootFailureBeforeStartReported: the child's report of a failure on a
// message held during its start can arrive before the start's outcome is
// posted (the held messages go out during the handshake); it must be
// handled once the process actor is up, not dropped (which would leave the
// root actor suspended for ever). The hook makes the report come first.
// It spawns the external tests' kind "sem.counter" (one test binary).
func TestRootFailureBeforeStartReported(t *testing.T) {
	testHookStarted = func() { time.Sleep(100 * time.Millisecond) }
	defer func() { testHookStarted = nil }()
	n, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	pid := n.Root().Spawn(Props("sem.counter", WithStderr(nil)))
	n.Root().Send(pid, "boom")
	n.Root().Send(pid, "inc")
	res, err := n.Root().RequestFuture(pid, "get", 30*time.Second).Result()
	if err != nil || res != 1 {
		t.Fatalf("got %v, %v; want 1: the root actor restarted after the held message it failed on", res, err)
	}
}
