package actor

import (
	"reflect"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
	"github.com/procactor/procactor/internal/testutil"
)

// TestNodeRegistry: a node's registry has registryBuckets buckets, what
// protoactor registers while the system is made is found, and actors come
// and go as in protoactor's own registry.
func TestNodeRegistry(t *testing.T) {
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
	testutil.ActorsComeAndGo(t, n.System(), actors, func() {
		used := 0
		for _, b := range pr.LocalPIDs.LocalPIDs {
			if b.Count() > 0 {
				used++
			}
		}
		if used < registryBuckets/2 {
			t.Fatalf("%d actors in %d of %d buckets", actors, used, registryBuckets)
		}
	})
}

// TestNewActorSystemMatchesProtoactor: newActorSystem builds what
// pa.NewActorSystemWithConfig builds (every field set, the event stream
// registered, the supervision subscription and the metrics extension in
// place, a logger, a stopper), with registryBuckets buckets. It fails on a
// protoactor version whose ActorSystem newActorSystem cannot fill in, rather
// than letting the fallback pass unnoticed.
func TestNewActorSystemMatchesProtoactor(t *testing.T) {
	if !systemFields().ok {
		t.Fatal("pa.ActorSystem's fields are not the ones newActorSystem fills in: check it against this protoactor's NewActorSystemWithConfig")
	}
	cfg := pa.Configure()
	want := pa.NewActorSystemWithConfig(cfg)
	for _, lean := range []bool{false, true} {
		got := newActorSystem(cfg, lean)
		gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
		for i := range gv.NumField() {
			name := gv.Type().Field(i).Name
			if gv.Field(i).IsZero() != wv.Field(i).IsZero() {
				t.Errorf("lean %v: field %s zero %v; protoactor's zero %v", lean, name, gv.Field(i).IsZero(), wv.Field(i).IsZero())
			}
		}
		if got.Config != cfg || got.Logger() == nil || got.ProcessRegistry.ActorSystem != got || got.ProcessRegistry.Address != want.ProcessRegistry.Address {
			t.Errorf("lean %v: config, logger, registry's system or address differ from protoactor's", lean)
		}
		if _, ok := got.ProcessRegistry.GetLocal("eventstream"); !ok {
			t.Errorf("lean %v: the event stream process is not registered", lean)
		}
		if g, w := got.EventStream.Length(), want.EventStream.Length(); g != w {
			t.Errorf("lean %v: %d event stream subscriptions; protoactor's system has %d", lean, g, w)
		}
		metrics := pa.NewMetrics(got, nil)
		if got.Extensions.Get(metrics.ExtensionID()) == nil {
			t.Errorf("lean %v: no metrics extension", lean)
		}
		if len(got.ID) != 32 || got.ID == newActorSystem(cfg, lean).ID {
			t.Errorf("lean %v: id %q; want 32 hex digits, another for each system", lean, got.ID)
		}
		if got.IsStopped() {
			t.Errorf("lean %v: stopped at birth", lean)
		}
		got.Shutdown()
		if !got.IsStopped() {
			t.Errorf("lean %v: not stopped after Shutdown", lean)
		}
	}
}

// TestRegistryBuckets: registryBuckets buckets of SHARD_COUNT slots; lean,
// one shard per bucket, a different one for each bucket; otherwise
// SHARD_COUNT shards per bucket. Actors come and go either way, also in a
// protoactor-made system whose registry was replaced (the fallback).
func TestRegistryBuckets(t *testing.T) {
	for _, lean := range []bool{false, true} {
		buckets := newRegistryBuckets(lean)
		if len(buckets) != registryBuckets {
			t.Fatalf("lean %v: %d buckets; want %d", lean, len(buckets), registryBuckets)
		}
		seen := map[*cmap.ConcurrentMapShared]bool{}
		for i, b := range buckets {
			if len(b) != cmap.SHARD_COUNT {
				t.Fatalf("lean %v: bucket %d has %d slots; want %d", lean, i, len(b), cmap.SHARD_COUNT)
			}
			mine := map[*cmap.ConcurrentMapShared]bool{}
			for _, s := range b {
				if seen[s] && !mine[s] {
					t.Fatalf("lean %v: bucket %d shares a shard with another bucket", lean, i)
				}
				seen[s], mine[s] = true, true
			}
			if want := map[bool]int{true: 1, false: cmap.SHARD_COUNT}[lean]; len(mine) != want {
				t.Fatalf("lean %v: bucket %d has %d shards; want %d", lean, i, len(mine), want)
			}
		}
		testutil.ActorsComeAndGo(t, newActorSystem(pa.Configure(), lean), 500, nil)

		old := pa.NewActorSystem()
		replaceRegistry(old, lean)
		if len(old.ProcessRegistry.LocalPIDs.LocalPIDs) != registryBuckets {
			t.Fatalf("lean %v: replaced registry has %d buckets", lean, len(old.ProcessRegistry.LocalPIDs.LocalPIDs))
		}
		if _, ok := old.ProcessRegistry.GetLocal("eventstream"); !ok {
			t.Fatalf("lean %v: the event stream process was not moved", lean)
		}
		testutil.ActorsComeAndGo(t, old, 500, nil)
	}
}
