package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// options are the command-line settings of one run.
type options struct {
	quick bool
	full  bool
	reps  int
	// systems and scenarios filter the run; empty means all (all quick ones for a
	// -quick run). A scenario filter may name a group: "rtt" or "fanout".
	systems, scenarios []string
	jsonPath, svgPath  string
	// budget overrides the iteration counts of -quick or a full run when set
	// (tests use a tiny one).
	budget *budget
}

// mode names the kind of run: full, quick or default.
func (o options) mode() string {
	switch {
	case o.full:
		return "full"
	case o.quick:
		return "quick"
	}
	return "default"
}

// cellKey names one cell of the table.
type cellKey struct{ scenario, system string }

// outcome is one repetition of one cell.
type outcome struct {
	m   measurement
	na  string // reason, when the system cannot do the scenario
	err error  // when the repetition failed
}

// report is the complete result of a run.
type report struct {
	machine   machineInfo
	opts      options
	budget    budget
	scenarios []scenario
	systems   []string
	// outcomes holds, per cell, one outcome per repetition run.
	outcomes map[cellKey][]outcome
	ratios   []ratio
	elapsed  time.Duration
}

// selectSystems returns the registered systems named in names (all when empty),
// in table order.
func selectSystems(names []string) ([]system, error) {
	all := systemOrder()
	if len(names) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		if _, ok := systems[n]; !ok {
			return nil, fmt.Errorf("unknown system %q (have %s)", n, strings.Join(systemNames(all), ", "))
		}
		want[n] = true
	}
	var out []system
	for _, s := range all {
		if want[s.name()] {
			out = append(out, s)
		}
	}
	return out, nil
}

// selectScenarios returns the scenarios named in names, each a scenario name or a
// group (the part before the first '_', as in "fanout"); when names is empty, all
// scenarios, or the quick ones when quick is set.
func selectScenarios(names []string, quick bool) ([]scenario, error) {
	var out []scenario
	if len(names) == 0 {
		for _, sc := range scenarios {
			if sc.quick || !quick {
				out = append(out, sc)
			}
		}
		return out, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		found := false
		for _, sc := range scenarios {
			if sc.name == n || strings.HasPrefix(sc.name, n+"_") {
				want[sc.name] = true
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q", n)
		}
	}
	for _, sc := range scenarios {
		if want[sc.name] {
			out = append(out, sc)
		}
	}
	return out, nil
}

func systemNames(ss []system) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.name()
	}
	return out
}

// runBench runs every selected scenario on every selected system, interleaved:
// for each scenario and each repetition it runs every system once (starting from
// a different system each repetition), so that the figures of one repetition are
// measured close together and their ratios cancel the machine's drift. It writes
// a progress line per scenario to progress. A failed cell does not stop the run;
// a cancelled ctx does.
func runBench(ctx context.Context, opts options, progress io.Writer) (*report, error) {
	syss, err := selectSystems(opts.systems)
	if err != nil {
		return nil, err
	}
	scs, err := selectScenarios(opts.scenarios, opts.quick)
	if err != nil {
		return nil, err
	}
	if opts.reps < 1 {
		return nil, fmt.Errorf("-reps %d: need at least 1", opts.reps)
	}
	b := defaultBudget
	switch {
	case opts.budget != nil:
		b = *opts.budget
	case opts.full:
		b = fullBudget
	case opts.quick:
		b = quickBudget
	}
	rep := &report{
		machine:   readMachine(),
		opts:      opts,
		budget:    b,
		scenarios: scs,
		systems:   systemNames(syss),
		outcomes:  map[cellKey][]outcome{},
	}
	cells := 0
	for _, sc := range scs {
		cells += sc.reps(opts.reps) * len(syss)
	}
	fmt.Fprintf(progress, "bench: %s run: %d scenarios × %d systems, %d repetitions (%d cells)\n",
		opts.mode(), len(scs), len(syss), opts.reps, cells)
	begin := time.Now()
	for i, sc := range scs {
		scBegin := time.Now()
		for r := range sc.reps(opts.reps) {
			for j := range syss {
				s := syss[(j+r)%len(syss)]
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				m, err := measure(ctx, s, sc, b)
				o := outcome{m: m}
				if reason, ok := naReason(err); ok {
					o.na = reason
				} else if err != nil {
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					o.err = err
					fmt.Fprintf(progress, "bench: %s on %s, repetition %d: %v\n", sc.name, s.name(), r+1, err)
				}
				k := cellKey{sc.name, s.name()}
				rep.outcomes[k] = append(rep.outcomes[k], o)
			}
		}
		fmt.Fprintf(progress, "bench: [%d/%d] %-14s %d systems × %d reps  %5.1fs\n",
			i+1, len(scs), sc.name, len(syss), sc.reps(opts.reps), time.Since(scBegin).Seconds())
	}
	rep.elapsed = time.Since(begin)
	rep.ratios = computeRatios(scs, rep.systems, rep.repValues)
	return rep, nil
}

// repValues returns a cell's figure per repetition; ok is false for a repetition
// that is n/a or failed.
func (rep *report) repValues(sc, sys string, m metric) ([]float64, []bool) {
	outs := rep.outcomes[cellKey{sc, sys}]
	vals := make([]float64, len(outs))
	ok := make([]bool, len(outs))
	for i, o := range outs {
		if o.na == "" && o.err == nil {
			vals[i], ok[i] = m.get(o.m), true
		}
	}
	return vals, ok
}

// cellSummary is a cell reduced over its repetitions.
type cellSummary struct {
	// values holds the median over the successful repetitions of each figure,
	// by metric field.
	values map[string]float64
	okReps int
	na     string // set when every repetition was n/a
	err    string // the first failure, if any repetition failed
}

func (rep *report) summary(sc scenario, sys string) cellSummary {
	cs := cellSummary{values: map[string]float64{}}
	outs := rep.outcomes[cellKey{sc.name, sys}]
	naCount := 0
	for _, o := range outs {
		switch {
		case o.na != "":
			naCount++
			cs.na = o.na
		case o.err != nil:
			if cs.err == "" {
				cs.err = o.err.Error()
			}
		default:
			cs.okReps++
		}
	}
	if naCount != len(outs) {
		cs.na = ""
	}
	for _, m := range sc.metrics() {
		vals, ok := rep.repValues(sc.name, sys, m)
		var good []float64
		for i, v := range vals {
			if ok[i] {
				good = append(good, v)
			}
		}
		if len(good) > 0 {
			cs.values[m.field] = median(good)
		}
	}
	return cs
}
