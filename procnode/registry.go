package procnode

import (
	pa "github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
	"github.com/procactor/procactor/actor"
)

// newChildNode makes a child's node with a lighter process registry.
//
// actor.NewNode keeps 32 buckets of protoactor's registry, each an
// orcaman/concurrent-map of SHARD_COUNT (32) shards. A child needs no 1024
// locks: its node is made with one shard per bucket, and each bucket's slots
// then all point to that shard, so that lookups index it at any SHARD_COUNT.
// (With protoactor's 1024 buckets of 32 shards, the maps were about 6 ms of
// a cold spawn's 8 measured on the 2-core machine, and 3 MB of a child's
// idle memory.)
//
// SHARD_COUNT is a global of that library: it is 1 only while the node is
// made, in a child's Main, before anything else of the program runs; a map
// of that library used by another goroutine in that window would look in
// the wrong shard.
func newChildNode(address string, opts ...actor.NodeOption) (*actor.Node, error) {
	shards := cmap.SHARD_COUNT
	cmap.SHARD_COUNT = 1
	n, err := actor.NewNode(address, opts...)
	cmap.SHARD_COUNT = shards
	if err != nil {
		return nil, err
	}
	spreadShards(n.System(), shards)
	return n, nil
}

// spreadShards gives every bucket of sys's registry, made with one shard,
// shards slots that all hold it.
func spreadShards(sys *pa.ActorSystem, shards int) {
	buckets := sys.ProcessRegistry.LocalPIDs.LocalPIDs
	// One array holds every bucket's slots: one allocation, not 1024.
	slots := make([]*cmap.ConcurrentMapShared, 0, len(buckets)*shards)
	for i, b := range buckets {
		if len(b) == shards {
			continue
		}
		start := len(slots)
		for range shards {
			slots = append(slots, b[0])
		}
		buckets[i] = slots[start:len(slots):len(slots)]
	}
}
