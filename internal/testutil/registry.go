package testutil

import (
	"fmt"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
)

// ActorsComeAndGo checks that sys's process registry works as protoactor's
// own: n actors spawned under names a0, a1 ... are found, a name is not
// spawned twice, and once stopped they are gone. whileUp, if not nil, runs
// while all n are registered.
func ActorsComeAndGo(t testing.TB, sys *pa.ActorSystem, n int, whileUp func()) {
	t.Helper()
	root, pr := sys.Root, sys.ProcessRegistry
	pids := make([]*pa.PID, 0, n)
	for i := range n {
		pid, err := root.SpawnNamed(pa.PropsFromFunc(func(pa.Context) {}), fmt.Sprint("a", i))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if _, err := root.SpawnNamed(pa.PropsFromFunc(func(pa.Context) {}), "a0"); err == nil {
		t.Fatal("a name spawned twice")
	}
	for _, pid := range pids {
		if _, ok := pr.GetLocal(pid.Id); !ok {
			t.Fatalf("%s not found", pid.Id)
		}
	}
	if whileUp != nil {
		whileUp()
	}
	for _, pid := range pids {
		if err := root.StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, ok := pr.GetLocal(pid.Id); ok {
			t.Fatalf("%s still registered after it stopped", pid.Id)
		}
	}
}
