package actor

import (
	"fmt"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
)

// TestCompactRegistry: a node's registry has registryBuckets buckets, what
// protoactor registered while the system was made is still found, and
// actors come and go as in protoactor's own registry.
func TestCompactRegistry(t *testing.T) {
	n := newNode(t, "n")
	pr := n.System().ProcessRegistry
	if got := len(pr.LocalPIDs.LocalPIDs); got != registryBuckets {
		t.Fatalf("%d buckets; want %d", got, registryBuckets)
	}
	if _, ok := pr.GetLocal("eventstream"); !ok {
		t.Fatal("the event stream process is not found")
	}
	if _, ok := pr.GetLocal(activatorName); !ok {
		t.Fatal("the activator is not found")
	}
	const actors = 2000
	pids := make([]*pa.PID, 0, actors)
	for i := range actors {
		pid, err := n.Root().SpawnNamed(pa.PropsFromFunc(func(pa.Context) {}), fmt.Sprint("a", i))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if _, err := n.Root().SpawnNamed(pa.PropsFromFunc(func(pa.Context) {}), "a7"); err == nil {
		t.Fatal("a name spawned twice")
	}
	used := 0
	for _, b := range pr.LocalPIDs.LocalPIDs {
		if b.Count() > 0 {
			used++
		}
	}
	if used < registryBuckets/2 {
		t.Fatalf("%d actors in %d of %d buckets", actors, used, registryBuckets)
	}
	for _, pid := range pids {
		if err := n.Root().StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, ok := pr.GetLocal(pid.Id); ok {
			t.Fatalf("%s still registered after it stopped", pid.Id)
		}
	}
}
