package procnode

import (
	"context"
	"fmt"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
)

func TestChildNodeRegistry(t *testing.T) {
	shards := cmap.SHARD_COUNT
	n, err := newChildNode("n/7")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	if cmap.SHARD_COUNT != shards {
		t.Fatalf("SHARD_COUNT is %d after the node; want %d back", cmap.SHARD_COUNT, shards)
	}
	pr := n.System().ProcessRegistry
	for i, b := range pr.LocalPIDs.LocalPIDs {
		if len(b) != shards {
			t.Fatalf("bucket %d has %d slots; want %d", i, len(b), shards)
		}
		for _, s := range b {
			if s != b[0] {
				t.Fatalf("bucket %d has more than one shard", i)
			}
		}
	}
	// What protoactor registered while the node was made is found, and
	// actors come and go as in any registry.
	if _, ok := pr.GetLocal("eventstream"); !ok {
		t.Fatal("the event stream process is not found")
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
	for _, pid := range pids {
		if _, ok := pr.GetLocal(pid.Id); !ok {
			t.Fatalf("%s not found", pid.Id)
		}
	}
	for _, pid := range pids {
		if err := n.Root().StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for _, pid := range pids {
		if _, ok := pr.GetLocal(pid.Id); ok {
			t.Fatalf("%s still registered after it stopped", pid.Id)
		}
	}
}
