package procnode_test

import (
	"reflect"
	"testing"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
)

// restartPanics is a counter whose Started panics in every instance after
// its first (a restart cannot bring it back): the failure of a restart.
type restartPanics struct{ counter }

func (r *restartPanics) Receive(ctx pa.Context) {
	r.counter.Receive(ctx)
	if _, ok := ctx.Message().(*pa.Started); ok {
		startsMu.Lock()
		n := starts[ctx.Self()]
		startsMu.Unlock()
		if n > 1 {
			panic("cannot restart")
		}
	}
}

func restartPanicsProps() *pa.Props {
	return pa.PropsFromProducer(func() pa.Actor { return &restartPanics{} })
}

func init() {
	registerKind("sem.restartpanics", func(procnode.Args) (*pa.Props, error) { return restartPanicsProps(), nil })
}

// TestSemanticsRestartFailsInStarted: a restart carried out in the child
// (its root actor's failure, the strategy's Restart) whose new instance
// fails in Started is a failure like any: the strategy sees it, and past
// its limit the actor ends with one Terminated, as in one process.
func TestSemanticsRestartFailsInStarted(t *testing.T) {
	t.Parallel()
	bothSides(t, func(t *testing.T, process bool) {
		w := newWorldOf(t, restartPanicsProps(), "sem.restartpanics", process, pa.NewOneForOneStrategy(2, time.Minute, pa.DefaultDecider), 1)
		w.send(0, "inc", "boom")
		if term := w.nextTerminated(); term.Who != w.children[0] {
			t.Fatalf("Terminated of %v; want %v", term.Who, w.children[0])
		}
		want := []any{"boom", "cannot restart", "cannot restart"}
		if got := w.failures(); !reflect.DeepEqual(got, want) {
			t.Fatalf("the strategy saw %v; want %v", got, want)
		}
	})
}
