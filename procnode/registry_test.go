package procnode

import (
	"context"
	"testing"

	cmap "github.com/orcaman/concurrent-map"
	"github.com/procactor/procactor/internal/testutil"
)

func TestChildNodeRegistry(t *testing.T) {
	shards := cmap.SHARD_COUNT
	n, err := newChildNode("n/7")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
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
	testutil.ActorsComeAndGo(t, n.System(), 2000, nil)
}
