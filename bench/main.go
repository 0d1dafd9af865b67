package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/procactor/procactor/procnode"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

const (
	// fullReps, defaultReps and quickReps are the repetitions per cell of a
	// -full, a plain and a -quick run: a median of 5 shrugs off the runs in
	// which a raw pipe's p50 doubles on these shared machines; a plain run
	// trades two of them for finishing within three minutes.
	fullReps    = 5
	defaultReps = 3
	quickReps   = 3
	// interruptGrace is how long an interrupted run waits for the cell in
	// progress to notice that its peers were killed.
	interruptGrace = 3 * time.Second
)

func main() {
	procnode.Main()
	runChildRole()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the bench command: it parses args, runs the bench, prints the table on
// stdout and progress on stderr, and returns the exit code: 0, 1 when a cell
// failed or a file could not be written, 2 for bad usage, 130 when interrupted.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts              options
		sysList, scenList string
		list              bool
	)
	fs.BoolVar(&opts.quick, "quick", false, "fewer iterations and only the quick scenarios (under a minute)")
	fs.BoolVar(&opts.full, "full", false, "5 repetitions and more iterations per cell (the README's table, about ten minutes)")
	fs.IntVar(&opts.reps, "reps", 0, "repetitions per cell, interleaved across systems (default 3, or 5 with -full)")
	fs.StringVar(&sysList, "systems", "", "comma-separated systems to run (default all)")
	fs.StringVar(&scenList, "scenarios", "", "comma-separated scenarios or groups (rtt, oneway, fanout...) to run (default all)")
	fs.StringVar(&opts.jsonPath, "json", "", "write machine, results and ratios as JSON to `file`")
	fs.StringVar(&opts.svgPath, "svg", "", "draw the "+plotScenario+" latency distributions as SVG to `file`")
	fs.BoolVar(&list, "list", false, "list systems and scenarios, then exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if list {
		writeList(stdout)
		return 0
	}
	if opts.quick && opts.full {
		fmt.Fprintln(stderr, "bench: -quick and -full exclude each other")
		return 2
	}
	if opts.reps == 0 {
		switch {
		case opts.full:
			opts.reps = fullReps
		case opts.quick:
			opts.reps = quickReps
		default:
			opts.reps = defaultReps
		}
	}
	opts.systems = splitList(sysList)
	opts.scenarios = splitList(scenList)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer liveChildren.killAll()
	defer func() {
		if err := leanChild.remove(); err != nil {
			fmt.Fprintf(stderr, "bench: removing the lean child: %v\n", err)
		}
	}()

	type result struct {
		rep *report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := runBench(ctx, opts, stderr)
		done <- result{rep, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		// Restore the default action so that a second Ctrl-C ends the process.
		stop()
		fmt.Fprintln(stderr, "bench: interrupted; stopping children")
		liveChildren.killAll()
		select {
		case <-done:
		case <-time.After(interruptGrace):
		}
		return 130
	}
	if res.err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", res.err)
		if errors.Is(res.err, context.Canceled) {
			return 130
		}
		return 2
	}
	writeTable(stdout, res.rep)
	code := 0
	if res.rep.failed() {
		code = 1
	}
	if opts.jsonPath != "" {
		if err := writeJSON(opts.jsonPath, res.rep); err != nil {
			fmt.Fprintf(stderr, "bench: -json: %v\n", err)
			code = 1
		}
	}
	if opts.svgPath != "" {
		if err := writeSVG(opts.svgPath, res.rep); err != nil {
			fmt.Fprintf(stderr, "bench: -svg: %v\n", err)
			code = 1
		}
	}
	return code
}

// failed reports whether any repetition of any cell failed.
func (rep *report) failed() bool {
	for _, outs := range rep.outcomes {
		for _, o := range outs {
			if o.err != nil {
				return true
			}
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func writeList(w io.Writer) {
	fmt.Fprintln(w, "systems:")
	for _, s := range systemOrder() {
		fmt.Fprintln(w, "  "+s.name())
	}
	fmt.Fprintln(w, "scenarios (* = in -quick):")
	for _, sc := range scenarios {
		mark := " "
		if sc.quick {
			mark = "*"
		}
		fmt.Fprintf(w, " %s%-14s %s\n", mark, sc.name, describe(sc))
	}
	var roleNames []string
	for r := range roles {
		roleNames = append(roleNames, r)
	}
	sort.Strings(roleNames)
	fmt.Fprintf(w, "child roles (%s=NAME): %s\n", roleEnv, strings.Join(roleNames, ", "))
}
