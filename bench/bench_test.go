package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"github.com/procactor/procactor/procnode"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain dispatches child roles first: the raw systems re-execute the test
// binary as their peer.
func TestMain(m *testing.M) {
	procnode.Main()
	runChildRole()
	os.Exit(m.Run())
}

// tinyBudget keeps a harness test to a fraction of a second per cell.
var tinyBudget = budget{
	rttWarmup: 20, rttIters: 300, rttMaxTime: time.Second, rttMinIters: 100,
	onewayTime: 20 * time.Millisecond, onewayMaxMsgs: 100_000,
	largeSends: 1, spawnSamples: 2, snapshotCalls: 20, idleTime: 20 * time.Millisecond,
}

func TestHarnessRawSystems(t *testing.T) {
	opts := options{
		reps:      2,
		systems:   []string{"raw_pipe", "raw_socketpair", "protoactor_inproc"},
		scenarios: []string{"rtt_64b", "oneway_64b", "large_64m"},
		budget:    &tinyBudget,
	}
	var progress bytes.Buffer
	rep, err := runBench(context.Background(), opts, &progress)
	if err != nil {
		t.Fatalf("runBench: %v", err)
	}
	if n := liveChildren.count(); n != 0 {
		t.Errorf("%d children still tracked after the run; want 0", n)
	}
	if got := strings.Count(progress.String(), "\n"); got != len(opts.scenarios)+1 {
		t.Errorf("progress has %d lines; want the plan and one per scenario (%d):\n%s", got, len(opts.scenarios)+1, progress.String())
	}
	for _, sys := range []string{"raw_pipe", "raw_socketpair"} {
		for _, sc := range []string{"rtt_64b", "oneway_64b", "large_64m"} {
			outs := rep.outcomes[cellKey{sc, sys}]
			if len(outs) != opts.reps {
				t.Fatalf("%s/%s: %d outcomes; want %d", sc, sys, len(outs), opts.reps)
			}
			for i, o := range outs {
				if o.err != nil || o.na != "" {
					t.Errorf("%s/%s rep %d: err %v, n/a %q; want a figure", sc, sys, i, o.err, o.na)
				}
			}
		}
		if m := rep.outcomes[cellKey{"rtt_64b", sys}][0].m; !(m.p50us > 0 && m.p50us <= m.p99us && m.p99us <= m.p999us) {
			t.Errorf("%s rtt_64b: p50 %v p99 %v p999 %v; want 0 < p50 <= p99 <= p999", sys, m.p50us, m.p99us, m.p999us)
		}
	}
	if o := rep.outcomes[cellKey{"large_64m", "protoactor_inproc"}][0]; o.na == "" {
		t.Errorf("protoactor_inproc large_64m: got %+v; want n/a", o)
	}
	// -svg: bench/chart draws the rtt_64b curves of the systems that ran it.
	svg := filepath.Join(t.TempDir(), "rtt.svg")
	if err := writeSVG(svg, rep); err != nil {
		t.Fatalf("writeSVG: %v", err)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "raw_pipe", "raw_socketpair", "protoactor_inproc"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the SVG has no %q", want)
		}
	}

	ratios := map[string]ratio{}
	for _, r := range rep.ratios {
		ratios[r.key] = r
	}
	for _, key := range []string{
		"rtt_64b_p50_raw_socketpair_over_raw_pipe",
		"rtt_64b_p999_protoactor_inproc_over_raw_pipe",
		"oneway_64b_raw_socketpair_over_raw_pipe",
		"large_64m_raw_socketpair_over_raw_pipe",
	} {
		r, ok := ratios[key]
		if !ok {
			t.Errorf("ratio %s missing", key)
			continue
		}
		if !(r.min <= r.median && r.median <= r.max && r.median > 0) || r.reps != opts.reps {
			t.Errorf("ratio %s = %+v; want 0 < min <= median <= max over %d reps", key, r, opts.reps)
		}
	}
	if _, ok := ratios["large_64m_protoactor_inproc_over_raw_pipe"]; ok {
		t.Errorf("ratio for an n/a cell was computed")
	}

	var table bytes.Buffer
	writeTable(&table, rep)
	for _, want := range []string{"rtt_64b", "raw_socketpair", "n/a: in-process"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	checkJSONShape(t, rep)
}

// checkJSONShape checks the fields the lead's tooling reads from -json.
func checkJSONShape(t *testing.T, rep *report) {
	t.Helper()
	b, err := json.Marshal(buildJSON(rep))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Machine map[string]any        `json:"machine"`
		Results []map[string]any      `json:"results"`
		Ratios  map[string]float64    `json:"ratios"`
		Spread  map[string]jsonSpread `json:"ratio_spread"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cpu_model", "cores", "go_version", "kernel", "date"} {
		if _, ok := doc.Machine[k]; !ok {
			t.Errorf("machine lacks %q", k)
		}
	}
	if got, want := len(doc.Results), len(rep.scenarios)*len(rep.systems); got != want {
		t.Errorf("%d results; want %d", got, want)
	}
	for _, r := range doc.Results {
		if r["system"] == "raw_pipe" && r["scenario"] == "rtt_64b" {
			for _, k := range []string{"p50_us", "p99_us", "p999_us"} {
				if v, ok := r[k].(float64); !ok || v <= 0 {
					t.Errorf("raw_pipe rtt_64b %s = %v; want > 0", k, r[k])
				}
			}
			if _, ok := r["msgs_per_s"]; ok {
				t.Errorf("rtt row carries msgs_per_s")
			}
		}
		if r["system"] == "protoactor_inproc" && r["scenario"] == "large_64m" && r["na"] == nil {
			t.Errorf("n/a cell without reason: %v", r)
		}
	}
	if len(doc.Ratios) != len(rep.ratios) || len(doc.Spread) != len(rep.ratios) {
		t.Errorf("%d ratios, %d spreads; want %d", len(doc.Ratios), len(doc.Spread), len(rep.ratios))
	}
}

// TestHarnessSnapshot: snapshot_8 times procactor's Node.Snapshot over a
// tree of 8 children, with the CPU it cost and its ratio to a round trip;
// the systems without one are n/a, not failures.
func TestHarnessSnapshot(t *testing.T) {
	opts := options{reps: 1, systems: []string{"raw_pipe", "procactor", "procactor_1p"}, scenarios: []string{"snapshot_8"}, budget: &tinyBudget}
	rep, err := runBench(context.Background(), opts, io.Discard)
	if err != nil {
		t.Fatalf("runBench: %v", err)
	}
	if n := liveChildren.count(); n != 0 {
		t.Errorf("%d children still tracked after the run; want 0", n)
	}
	o := rep.outcomes[cellKey{"snapshot_8", "procactor"}][0]
	if o.err != nil || o.na != "" {
		t.Fatalf("procactor snapshot_8: err %v, n/a %q", o.err, o.na)
	}
	if m := o.m; !(m.p50us > 0 && m.p50us <= m.p99us && m.perRTT > 0) || (runtime.GOOS == "linux" && m.cpuUs <= 0) {
		t.Errorf("procactor snapshot_8: %+v; want 0 < p50 <= p99, a ratio to the round trip, CPU on Linux", m)
	}
	for _, sys := range []string{"raw_pipe", "procactor_1p"} {
		if o := rep.outcomes[cellKey{"snapshot_8", sys}][0]; o.na == "" {
			t.Errorf("%s snapshot_8: %+v; want n/a", sys, o)
		}
	}
	if nodes, err := procactorNode(); err != nil || len(nodes.Processes()) != 0 {
		t.Errorf("children left on the bench's node: %v", err)
	}
	var table bytes.Buffer
	writeTable(&table, rep)
	for _, want := range []string{"snapshot_8", "cpu µs", "×rtt", "n/a: measured on procactor"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tt.in...)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v; want %v", tt.in, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Errorf("median reordered its input")
			}
		}
	}
}

func TestComputeRatios(t *testing.T) {
	// Per repetition, as the harness stores them; rep 2 of grpc failed.
	p50 := map[string][]float64{
		"raw_pipe":        {10, 20, 30},
		"procactor":       {15, 20, 90},
		"protoactor_grpc": {100, 200, 0},
	}
	rate := map[string][]float64{
		"raw_pipe":        {8e6, 8e6, 8e6},
		"procactor":       {4e6, 6e6, 5e6},
		"protoactor_grpc": {1e6, 1e6, 2e6},
	}
	values := func(sc, sys string, m metric) ([]float64, []bool) {
		src := p50
		if sc == "oneway_64b" {
			src = rate
		}
		ok := make([]bool, len(src[sys]))
		for i, v := range src[sys] {
			ok[i] = v > 0
		}
		if m.field == "p50_us" || m.field == "msgs_per_s" {
			return src[sys], ok
		}
		return nil, nil
	}
	scs, err := selectScenarios([]string{"rtt_64b", "oneway_64b"}, false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ratio{}
	for _, r := range computeRatios(scs, []string{"raw_pipe", "procactor", "protoactor_grpc"}, values) {
		got[r.key] = r
	}
	for _, tt := range []struct {
		key              string
		median, min, max float64
		reps             int
	}{
		{"rtt_64b_p50_procactor_over_raw_pipe", 1.5, 1, 3, 3},
		{"rtt_64b_p50_protoactor_grpc_over_raw_pipe", 10, 10, 10, 2},
		{"rtt_64b_p50_protoactor_grpc_over_procactor", 25.0 / 3, 20.0 / 3, 10, 2},
		{"oneway_64b_procactor_over_raw_pipe", 0.625, 0.5, 0.75, 3},
		{"oneway_64b_procactor_over_protoactor_grpc", 4, 2.5, 6, 3},
	} {
		r, ok := got[tt.key]
		if !ok {
			t.Errorf("%s missing; have %v", tt.key, keys(got))
			continue
		}
		if !near(r.median, tt.median) || !near(r.min, tt.min) || !near(r.max, tt.max) || r.reps != tt.reps {
			t.Errorf("%s = median %v [%v, %v] over %d; want %v [%v, %v] over %d",
				tt.key, r.median, r.min, r.max, r.reps, tt.median, tt.min, tt.max, tt.reps)
		}
	}
	for _, bad := range []string{"rtt_64b_p50_procactor_over_protoactor_grpc", "oneway_64b_protoactor_grpc_over_procactor", "rtt_64b_p50_raw_pipe_over_raw_pipe"} {
		if _, ok := got[bad]; ok {
			t.Errorf("%s computed; want only the oriented ratio", bad)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func keys(m map[string]ratio) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSelectScenarios(t *testing.T) {
	for _, tt := range []struct {
		names []string
		quick bool
		want  string
	}{
		{[]string{"fanout"}, false, "fanout_1,fanout_2,fanout_4,fanout_8"},
		{[]string{"spawn_cold", "rtt_64b"}, false, "rtt_64b,spawn_cold"},
		{nil, true, "rtt_64b,oneway_64b,oneway_struct,large_64m,fanout_4,spawn_cold,spawn_warm,snapshot_8,idle_rss"},
	} {
		scs, err := selectScenarios(tt.names, tt.quick)
		if err != nil {
			t.Fatalf("selectScenarios(%v): %v", tt.names, err)
		}
		var names []string
		for _, sc := range scs {
			names = append(names, sc.name)
		}
		if got := strings.Join(names, ","); got != tt.want {
			t.Errorf("selectScenarios(%v, %v) = %s; want %s", tt.names, tt.quick, got, tt.want)
		}
	}
	if _, err := selectScenarios([]string{"rtt_2k"}, false); err == nil {
		t.Errorf("unknown scenario accepted")
	}
	if _, err := selectSystems([]string{"no_such_system"}); err == nil {
		t.Errorf("unknown system accepted")
	}
}

func TestIdleRSS(t *testing.T) {
	opts := options{
		reps:      3,
		systems:   []string{"raw_pipe", "protoactor_inproc"},
		scenarios: []string{"idle_rss"},
		budget:    &tinyBudget,
	}
	rep, err := runBench(context.Background(), opts, io.Discard)
	if err != nil {
		t.Fatalf("runBench: %v", err)
	}
	outs := rep.outcomes[cellKey{"idle_rss", "raw_pipe"}]
	if len(outs) != 2 {
		t.Fatalf("raw_pipe idle_rss: %d outcomes; want 2 (the scenario's maxReps)", len(outs))
	}
	for i, o := range outs {
		if o.err != nil || o.na != "" || !(o.m.rssMB > 0.1 && o.m.rssMB < 1000) {
			t.Errorf("raw_pipe idle_rss rep %d: %+v; want a resident size in MB", i, o)
		}
	}
	if o := rep.outcomes[cellKey{"idle_rss", "protoactor_inproc"}][0]; o.na == "" {
		t.Errorf("protoactor_inproc idle_rss: got %+v; want n/a (no child process)", o)
	}
}

func TestQuickAndFullExclusive(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-quick", "-full"}, &stdout, &stderr); code != 2 {
		t.Errorf("run -quick -full: exit %d; want 2 (%s)", code, stderr.String())
	}
}

// TestServeFramesRejectsOversizedFrame feeds the raw peer a frame longer than its
// limit: it must fail before allocating the body.
func TestServeFramesRejectsOversizedFrame(t *testing.T) {
	var in bytes.Buffer
	h := make([]byte, frameHeaderSize)
	putHeader(h, kindData, math.MaxUint32)
	in.Write(h)
	err := serveFrames(&in, io.Discard, 1024)
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("serveFrames: %v; want a limit error", err)
	}
}

// TestServeFramesCounts checks the raw peer's echo and sync answers.
func TestServeFramesCounts(t *testing.T) {
	var in, out bytes.Buffer
	h := make([]byte, frameHeaderSize)
	putHeader(h, kindEcho, 3)
	in.Write(h)
	in.WriteString("abc")
	for range 5 {
		putHeader(h, kindData, 1)
		in.Write(h)
		in.WriteByte('x')
	}
	putHeader(h, kindSync, 0)
	in.Write(h)
	if err := serveFrames(&in, &out, 16); err != nil {
		t.Fatalf("serveFrames: %v", err)
	}
	want := []byte{3, 0, 0, 0, kindEcho, 'a', 'b', 'c', 8, 0, 0, 0, kindSync}
	want = binary.LittleEndian.AppendUint64(want, 5)
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("peer wrote %v; want %v", out.Bytes(), want)
	}
}

// TestLeanChildRemoved runs procactor_lean through the bench command and checks
// that the directory its child binary was built in is gone when run returns:
// every run used to leave one (about 18 MB) behind in the temp dir.
func TestLeanChildRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var stdout, stderr bytes.Buffer
	args := []string{"-quick", "-reps", "1", "-systems", "procactor_lean", "-scenarios", "rtt_64b"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("run %q: exit %d\n%s", args, code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "procactor_lean") {
		t.Fatalf("run %q printed no procactor_lean row:\n%s", args, stdout.String())
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "procactor-bench-lean-") {
			t.Errorf("run left %s in the temp dir", e.Name())
		}
	}
}

// The bench's children are the bench binary: it must not link gonum/plot,
// whose package init reads 4.5 MB of fonts in every child (bench/chart
// draws the SVG instead).
func TestBenchBinaryDoesNotLinkPlotting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "gonum.org/v1/plot") {
			t.Fatalf("the bench binary links %s", dep)
		}
	}
}
