package procnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

// TestCheckTree: a child's answer is taken only about itself and what lies
// below it, within the bounds on depth and size.
func TestCheckTree(t *testing.T) {
	leaf := func(addr string) Child { return Child{Address: addr} }
	deep := func(levels int) *Snapshot {
		s := &Snapshot{Address: "n/1"}
		cur := s
		for range levels {
			addr := cur.Address + "/1"
			cur.Children = []Child{{Address: addr, Tree: &Snapshot{Address: addr}}}
			cur = cur.Children[0].Tree
		}
		return s
	}
	wide := &Snapshot{Address: "n/1"}
	for i := range maxTreeChildren + 1 {
		wide.Children = append(wide.Children, leaf(fmt.Sprintf("n/1/%d", i+1)))
	}
	tests := []struct {
		name string
		s    *Snapshot
		want string // a substring of the refusal; "" for accepted
	}{
		{"itself", &Snapshot{Address: "n/1", Children: []Child{leaf("n/1/1"), leaf("n/1/2")}}, ""},
		{"another node", &Snapshot{Address: "n/2"}, `snapshot of "n/2"`},
		{"a child elsewhere", &Snapshot{Address: "n/1", Children: []Child{leaf("n/2/1")}}, `child "n/2/1"`},
		{"a grandchild as a child", &Snapshot{Address: "n/1", Children: []Child{leaf("n/1/1/1")}}, `child "n/1/1/1"`},
		{"a link elsewhere", &Snapshot{Address: "n/1", Links: []LinkInfo{{Address: "n"}}}, `link to "n"`},
		{"a grandchild's tree about another", &Snapshot{Address: "n/1", Children: []Child{{Address: "n/1/1", Tree: &Snapshot{Address: "n"}}}}, `snapshot of "n"`},
		{"deep within the bound", deep(maxTreeDepth - 1), ""},
		{"too deep", deep(maxTreeDepth), "deeper than"},
		{"too many", wide, "more than"},
	}
	for _, tc := range tests {
		got := checkTree(tc.s, "n/1", 1, new(int))
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q; want %q", tc.name, got, tc.want)
		}
	}
}

func TestCompareAddress(t *testing.T) {
	got := []string{"n/10", "n/2", "n/1/3", "n", "n/1", "n/a", "n/1/10", "n/1/9"}
	slices.SortFunc(got, compareAddress)
	want := []string{"n", "n/1", "n/1/3", "n/1/9", "n/1/10", "n/2", "n/10", "n/a"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
}

// TestSnapshotResponderAnswersParentOnly: a child node answers its parent's
// snapshot request, over their link, and nobody else's (here: a request
// from the child node itself).
func TestSnapshotResponderAnswersParentOnly(t *testing.T) {
	root, err := NewNode()
	if err != nil {
		t.Fatal(err)
	}
	an, err := actor.NewNode("n/7")
	if err != nil {
		t.Fatal(err)
	}
	child := register(an)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = child.Close(ctx)
		_ = root.Close(ctx)
	})
	down, err := root.Node.ChildLink("7")
	if err != nil {
		t.Fatal(err)
	}
	up, err := an.ParentLink()
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := mailbox.Pipe(1 << 16)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cookie := mailbox.NewCookie()
	upErr := make(chan error, 1)
	go func() { _, err := up.Connect(ctx, b, cookie, 0); upErr <- err }()
	if _, err := down.Connect(ctx, a, cookie, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-upErr; err != nil {
		t.Fatal(err)
	}

	pid := pa.NewPID("n/7", snapshotID)
	res, err := root.Root().RequestFuture(pid, &snapshotRequest{Budget: time.Second}, 10*time.Second).Result()
	s, ok := res.(*Snapshot)
	if err != nil || !ok || s.Address != "n/7" || s.Parent == nil || s.Parent.Address != "n" || s.Parent.State != "up" {
		t.Fatalf("parent's request: got %+v, %v; want the child's snapshot", res, err)
	}
	// The link's other snapshot: the root sees it among its other links.
	if rs := root.Snapshot(ctx); len(rs.Links) != 1 || rs.Links[0].Address != "n/7" || rs.Links[0].User.MsgsOut < 1 {
		t.Fatalf("root's links: %+v; want n/7 with the request counted", rs.Links)
	}
	_, err = child.Root().RequestFuture(pid, &snapshotRequest{Budget: time.Second}, 200*time.Millisecond).Result()
	if !errors.Is(err, pa.ErrTimeout) {
		t.Fatalf("the child's own request: got %v; want no answer (ErrTimeout)", err)
	}
}
