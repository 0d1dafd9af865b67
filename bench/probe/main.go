// Command probe measures one procactor link from the inside: a parent
// sends 64 B messages (-size) to a child's root actor (bench/benchkind) and reports
// the rate of a one-way stream or the distribution of sequential round
// trips, optionally with a CPU profile or a runtime trace of the parent or
// the child. It is the program behind the profiles and the perf counts in
// docs/performance.md:
//
//	go run ./bench/probe                         # one-way: 3 runs of 3M messages
//	go run ./bench/probe -rtt -n 30000           # round trips: mean, p50, p90, p99, p99.9
//	go run ./bench/probe -rtt -prof parent.prof  # the parent's CPU profile
//	go run ./bench/probe -child-prof child.prof  # the child's (its first 8 s)
//	perf stat -e task-clock,context-switches -- go run ./bench/probe -rtt
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"time"

	"github.com/procactor/procactor/bench/benchkind"
	"github.com/procactor/procactor/procnode"
)

// envChildProf carries -child-prof to the child, which profiles itself
// for childProfFor from its start.
const (
	envChildProf  = "PROCACTOR_PROBE_CHILD_PROFILE"
	envChildTrace = "PROCACTOR_PROBE_CHILD_TRACE"
	childProfFor  = 8 * time.Second
)

func main() {
	childProfile()
	procnode.Main()

	rtt := flag.Bool("rtt", false, "sequential round trips instead of a one-way stream")
	n := flag.Int("n", 0, "messages per run (default 3000000 one-way, 20000 round trips)")
	runs := flag.Int("runs", 3, "runs")
	prof := flag.String("prof", "", "write the parent's CPU profile to `file`")
	traceOut := flag.String("trace", "", "write the parent's runtime trace to `file`")
	childProf := flag.String("child-prof", "", "write the child's CPU profile (its first 8 s) to `file`")
	childTrace := flag.String("child-trace", "", "write the child's runtime trace (its first 3 s) to `file`")
	size := flag.Int("size", 64, "message size in `bytes`")
	childProcs := flag.Int("child-procs", 0, "the child's GOMAXPROCS (procnode.WithGOMAXPROCS; 0: Go's default)")
	flag.Parse()
	if *n == 0 {
		*n = 3000000
		if *rtt {
			*n = 20000
		}
	}
	cfg := config{rtt: *rtt, n: *n, runs: *runs, size: *size, childProcs: *childProcs,
		prof: *prof, trace: *traceOut, childProf: *childProf, childTrace: *childTrace}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// childProfile starts the child's profile or trace when its parent asked.
func childProfile() {
	if _, child := os.LookupEnv("PROCACTOR_BOOT"); !child {
		return
	}
	if stop, err := record(os.Getenv(envChildProf), pprof.StartCPUProfile, pprof.StopCPUProfile); err == nil {
		time.AfterFunc(childProfFor, stop)
	}
	if stop, err := record(os.Getenv(envChildTrace), trace.Start, trace.Stop); err == nil {
		time.AfterFunc(3*time.Second, stop)
	}
}

// record starts a CPU profile or a trace into the file at path (nothing
// when path is empty) and returns what ends it and closes the file.
func record(path string, start func(io.Writer) error, stop func()) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { stop(); f.Close() }, nil
}

// config is what the flags asked for.
type config struct {
	rtt                                bool
	n, runs, size, childProcs          int
	prof, trace, childProf, childTrace string
}

func run(cfg config) error {
	rtt, n, runs := cfg.rtt, cfg.n, cfg.runs
	prof, traceOut, childProf, childTrace := cfg.prof, cfg.trace, cfg.childProf, cfg.childTrace
	node, err := procnode.NewNode()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var env []string
	if childProf != "" {
		env = append(env, envChildProf+"="+childProf)
	}
	if childTrace != "" {
		env = append(env, envChildTrace+"="+childTrace)
	}
	opts := []procnode.Option{procnode.WithRestart(false), procnode.WithEnv(env...)}
	if cfg.childProcs > 0 {
		opts = append(opts, procnode.WithGOMAXPROCS(cfg.childProcs))
	}
	p, err := procnode.Spawn(ctx, node.Root(), benchkind.Kind, opts...)
	if err != nil {
		return err
	}
	defer func() {
		if childProf != "" || childTrace != "" {
			time.Sleep(childProfFor) // let the child write its profile
		}
		_ = p.Stop(ctx)
		_ = p.Wait(ctx)
	}()
	root, pid := node.Root(), p.PID()
	msg := make([]byte, cfg.size)
	stopProf, err := record(prof, pprof.StartCPUProfile, pprof.StopCPUProfile)
	if err != nil {
		return err
	}
	defer stopProf()
	stopTrace, err := record(traceOut, trace.Start, trace.Stop)
	if err != nil {
		return err
	}
	defer stopTrace()
	for range runs {
		if rtt {
			ds := make([]time.Duration, n)
			t0 := time.Now()
			for i := range ds {
				t1 := time.Now()
				if _, err := root.RequestFuture(pid, msg, 10*time.Second).Result(); err != nil {
					return err
				}
				ds[i] = time.Since(t1)
			}
			total := time.Since(t0)
			sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
			fmt.Printf("%d round trips: mean %v p50 %v p90 %v p99 %v p99.9 %v\n", n, total/time.Duration(n),
				ds[n/2], ds[n*9/10], ds[n*99/100], ds[n*999/1000])
			continue
		}
		t0 := time.Now()
		for range n {
			root.Send(pid, msg)
		}
		got, err := root.RequestFuture(pid, &benchkind.CountRequest{}, time.Minute).Result()
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("the child counted %v of %d messages", got, n)
		}
		fmt.Printf("%d one-way messages: %.2f M/s\n", n, float64(n)/time.Since(t0).Seconds()/1e6)
	}
	return nil
}
