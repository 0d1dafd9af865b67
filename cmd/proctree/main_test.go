package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/leakcheck"
	"github.com/procactor/procactor/procnode"
	"go.uber.org/goleak"
)

// TestMain runs a child when Spawn started this binary, then the tests and
// a goroutine leak check.
func TestMain(m *testing.M) {
	procnode.Main()
	code := m.Run()
	if code == 0 {
		opts := append(leakcheck.Options(), goleak.IgnoreAnyFunction("github.com/procactor/procactor/procnode.forkLoop"))
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func init() {
	procnode.RegisterKind("proctree.idle", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(pa.Context) {}), nil
	})
}

// tree is a snapshot as a parent with two children would report it: the
// first answered with a child of its own, the second restarted after a
// crash and did not answer. Counts grow by the given step per second.
func tree(at time.Time, step uint64) *procnode.Snapshot {
	link := func(addr string, k uint64) procnode.LinkInfo {
		return procnode.LinkInfo{Address: addr, State: "up",
			User: procnode.LaneTraffic{MsgsIn: k * step, MsgsOut: 2 * k * step}, Retained: 3, Queued: 1}
	}
	proc := func(k uint64) procnode.ProcStats {
		return procnode.ProcStats{RSS: 20 << 20, CPUUser: time.Duration(k*step) * time.Millisecond, Threads: 7, State: "S"}
	}
	k := uint64(at.Unix() % 1000)
	return &procnode.Snapshot{
		Time: at, Address: "n", Command: "app", OSPid: 100, Goroutines: 20, HeapBytes: 4 << 20, Proc: proc(k),
		Children: []procnode.Child{
			{Address: "n/1", Kind: "a-rather-long-kind-name", State: "up", OSPid: 101, Link: link("n/1", k), Proc: proc(k),
				Tree: &procnode.Snapshot{Time: at, Address: "n/1", Children: []procnode.Child{
					{Address: "n/1/1", Kind: "leaf", State: "up", OSPid: 102, Link: link("n/1/1", k), Proc: proc(k),
						Tree: &procnode.Snapshot{Time: at, Address: "n/1/1"}},
				}}},
			{Address: "n/2", Kind: "worker", Name: "w2", State: "restarting", OSPid: 103, Incarnation: 1, Restarts: 3,
				LastExit:  &procnode.ExitInfo{Code: 2, Reason: "root actor panicked: job 7: simulated crash with a reason much longer than any terminal line could hold"},
				Link:      link("n/2", k),
				Proc:      procnode.ProcStats{Error: "no process running"},
				TreeError: "not asked: its link is down"},
		},
	}
}

// TestRender: every node is drawn, indented under its parent, rates
// appear from the second frame on, and no line is wider than 80 columns.
func TestRender(t *testing.T) {
	v := newView(80)
	t0 := time.Unix(1_700_000_000, 0)
	var first, second bytes.Buffer
	v.render(&first, tree(t0, 50))
	v.render(&second, tree(t0.Add(time.Second), 50))
	for i, frame := range []string{first.String(), second.String()} {
		for _, line := range strings.Split(strings.TrimRight(frame, "\n"), "\n") {
			if n := utf8.RuneCountInString(line); n > 80 {
				t.Errorf("frame %d: line of %d columns: %q", i, n, line)
			}
		}
		for _, want := range []string{"n (root)", "├ n/1 a-rather-lo", "│ └ n/1/1 leaf", "└ n/2 worker·w2", "restarting",
			"last exit: exit code 2: root actor panicked", "! not asked: its link is down", "4 processes, 2 of 3 children up, 3 restarts"} {
			if !strings.Contains(frame, want) {
				t.Errorf("frame %d lacks %q:\n%s", i, want, frame)
			}
		}
	}
	row := func(frame, prefix string) []string {
		for _, line := range strings.Split(frame, "\n") {
			if strings.Contains(line, prefix) {
				return strings.Fields(line)
			}
		}
		t.Fatalf("no row %q in:\n%s", prefix, frame)
		return nil
	}
	// n/2: restarting, 3 restarts, no process; IN/s OUT/s QUEUE DL at the end.
	if r := row(first.String(), "n/2 worker"); strings.Join(r[len(r)-4:], " ") != "- - 4 0" {
		t.Errorf("first frame's n/2 row %q; want no rates yet, queue 4, no dead letters", r)
	}
	// One second later each link carried 50 more in and 100 more out; each
	// process used 50 ms more of CPU.
	for _, addr := range []string{"n/1 ", "n/1/1 "} {
		r := row(second.String(), addr)
		if got := strings.Join(r[len(r)-5:], " "); got != "5.0 50 100 4 0" {
			t.Errorf("second frame's %s row ends %q; want 5.0 50 100 4 0", addr, got)
		}
	}
}

// TestProctreeOnce reads a live tree from a node's debug endpoint.
func TestProctreeOnce(t *testing.T) {
	n, err := procnode.NewNode()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer n.Close(ctx)
	p, err := procnode.Spawn(ctx, n.Root(), "proctree.idle", procnode.WithName("idle"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := n.ServeDebug("")
	if err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := run(ctx, []string{"-addr", d.Addr().String(), "-once"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	for _, want := range []string{"n (root)", "└ " + p.Address() + " proctree.idle", fmt.Sprint(p.OSPid())} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Errorf("-once output has terminal escapes")
	}
	if code := run(ctx, []string{"-once"}, &out, &errs); code != 2 {
		t.Errorf("without -addr: exit %d; want 2", code)
	}
	d.Close()
	errs.Reset()
	if code := run(ctx, []string{"-addr", d.Addr().String(), "-once"}, &out, &errs); code != 1 || errs.Len() == 0 {
		t.Errorf("endpoint closed: exit %d, %q; want 1 and the error", code, errs.String())
	}
}

// TestRenderControlCharacters: what a child says of itself (its kind, name,
// state, why it did not answer, its last exit's reason) reaches the
// terminal without control characters: a compromised child cannot send the
// operator's terminal escape sequences or break the table with newlines.
func TestRenderControlCharacters(t *testing.T) {
	evil := "x\x1b]52;c;cHduZWQ=\x07\x1b[2J\r\nforged\tline\u009b31m"
	s := &procnode.Snapshot{
		Time: time.Unix(0, 0), Address: "n", Command: "cmd" + evil,
		Children: []procnode.Child{{
			Address: "n/1", Kind: "k", State: "up", OSPid: 10,
			Tree: &procnode.Snapshot{Address: "n/1", Command: evil, Children: []procnode.Child{
				{Address: "n/1/1" + evil, Kind: evil, Name: evil, State: evil, TreeError: evil,
					LastExit: &procnode.ExitInfo{Code: 1, Reason: evil}},
			}},
		}},
	}
	var out strings.Builder
	newView(80).render(&out, s)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for _, l := range lines {
		for _, r := range l {
			if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("control character %U in a line of the frame: %q", r, l)
			}
		}
		if strings.HasPrefix(l, "forged") {
			t.Errorf("a child's text began a line of its own: %q", l)
		}
	}
}
