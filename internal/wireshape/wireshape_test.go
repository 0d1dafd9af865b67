package wireshape_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	// Every package of procactor's that registers wire types.
	_ "github.com/procactor/procactor/actor"
	_ "github.com/procactor/procactor/mailbox"
	_ "github.com/procactor/procactor/procnode"
	_ "github.com/procactor/procactor/reach"

	"github.com/procactor/procactor/internal/wireshape"
)

// ours reports whether a registered name is one of procactor's own types.
func ours(name string) bool {
	return strings.HasPrefix(name, "procactor.") || strings.HasPrefix(name, "go:")
}

// TestDigestsMatchTheTypes: every type procactor registers has its digest in
// the table, the digest its codec gives today, and the table holds nothing
// else. On a mismatch it prints the table to paste into wireshape.go.
func TestDigestsMatchTheTypes(t *testing.T) {
	names := slices.Sorted(slices.Values(wireshape.Registered()))
	want := map[string]wireshape.Known{}
	var table strings.Builder
	for _, name := range names {
		if !ours(name) {
			continue
		}
		k, path, ok := wireshape.Compute(name)
		if !ok {
			t.Fatalf("%s: registered but not found", name)
		}
		want[path] = k
		fmt.Fprintf(&table, "\t%q: {%q, %#016x, %d},\n", path, k.Name, k.Digest, k.Fields)
	}
	if len(want) == 0 {
		t.Fatal("no type of procactor's is registered")
	}
	bad := len(want) != len(wireshape.Digests)
	for path, k := range want {
		if wireshape.Digests[path] != k {
			bad = true
			t.Errorf("%s (%s): table has %+v; computed %#016x, %d fields", path, k.Name, wireshape.Digests[path], k.Digest, k.Fields)
		}
	}
	if bad {
		t.Errorf("wireshape.Digests is out of date (a wire type or the codec changed); the table is:\n%s", table.String())
	}
}
