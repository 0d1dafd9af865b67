package actor

import (
	pa "github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
)

// registryBuckets is how many buckets a node's process registry keeps.
//
// protoactor makes 1024 buckets, each an orcaman/concurrent-map of
// SHARD_COUNT (32) shards: 32768 maps, each with its own lock, about 3 MB
// that every garbage collection of the process scans again, and more locks
// than any process has cores. 32 buckets of 32 shards are still 1024 locks.
// protoactor picks a bucket as murmur32(id) % len(buckets), so fewer buckets
// need no change of its code.
const registryBuckets = 32

// compactRegistry gives sys's process registry registryBuckets buckets,
// made at the current SHARD_COUNT, moving what is registered already (the
// event stream). It runs in NewNode right after NewActorSystem, before
// anything of the system runs on another goroutine.
func compactRegistry(sys *pa.ActorSystem) {
	sm := sys.ProcessRegistry.LocalPIDs
	if len(sm.LocalPIDs) <= registryBuckets {
		return
	}
	old := sm.LocalPIDs
	sm.LocalPIDs = make([]cmap.ConcurrentMap, registryBuckets)
	for i := range sm.LocalPIDs {
		sm.LocalPIDs[i] = cmap.New()
	}
	for _, b := range old {
		b.IterCb(func(id string, p any) {
			sm.GetBucket(id).Set(id, p)
		})
	}
}
