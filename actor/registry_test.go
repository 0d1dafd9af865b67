package actor

import (
	"testing"

	"github.com/procactor/procactor/internal/testutil"
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
