package main

import (
	"slices"
)

// median returns the median of xs (the mean of the middle two for an even count),
// or 0 for none. It does not modify xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}

// metric is one figure of a scenario's cells.
type metric struct {
	// label names the figure in ratio keys ("p50"); empty for a scenario's only
	// figure, e.g. "oneway_64b_raw_pipe_blocking_over_raw_pipe".
	label string
	// field is the JSON field of the figure ("p50_us").
	field string
	// higherIsBetter is true for rates and false for times.
	higherIsBetter bool
	get            func(measurement) float64
}

// metrics returns the figures of sc's cells, the headline first.
func (sc scenario) metrics() []metric {
	switch sc.kind {
	case kindRTT:
		return []metric{
			{label: "p50", field: "p50_us", get: func(m measurement) float64 { return m.p50us }},
			{label: "p99", field: "p99_us", get: func(m measurement) float64 { return m.p99us }},
			{label: "p999", field: "p999_us", get: func(m measurement) float64 { return m.p999us }},
		}
	case kindOneway, kindRecords, kindFanout:
		return []metric{{field: "msgs_per_s", higherIsBetter: true, get: func(m measurement) float64 { return m.msgsPerS }}}
	case kindLarge:
		return []metric{{field: "mb_per_s", higherIsBetter: true, get: func(m measurement) float64 { return m.mbPerS }}}
	case kindSpawn:
		return []metric{{label: "p50", field: "p50_ms", get: func(m measurement) float64 { return m.p50ms }}}
	case kindSnapshot:
		return []metric{
			{label: "p50", field: "p50_us", get: func(m measurement) float64 { return m.p50us }},
			{label: "p99", field: "p99_us", get: func(m measurement) float64 { return m.p99us }},
			{label: "cpu", field: "cpu_us", get: func(m measurement) float64 { return m.cpuUs }},
			{label: "per_rtt", field: "per_rtt", get: func(m measurement) float64 { return m.perRTT }},
		}
	case kindIdleRSS:
		return []metric{{field: "rss_mb", get: func(m measurement) float64 { return m.rssMB }}}
	}
	return nil
}

// ratio is the median and spread, over repetitions, of a per-repetition ratio
// num/den of one figure.
type ratio struct {
	key              string
	scenario, metric string
	num, den         string
	median, min, max float64
	reps             int
}

// repValues returns, per repetition, the figure of a cell, with ok false where
// the repetition has no figure (n/a or failed).
type repValues func(scenario, system string, m metric) (vals []float64, ok []bool)

// computeRatios returns every ratio the present systems allow, for each figure of
// each scenario:
//   - every system over the baseline (raw_pipe), e.g. rtt_64b_p50_procactor_over_raw_pipe;
//   - once the subject (procactor) is present, each other contender against it,
//     oriented so that a value above 1 means the subject is better: the other
//     over the subject for times (rtt_64b_p50_protoactor_grpc_over_procactor), the
//     subject over the other for rates (oneway_64b_procactor_over_protoactor_grpc).
//
// Each ratio is taken within a repetition, both figures measured at the same
// moment, and the median of the repetitions is reported with its min and max.
// pairRatios are ratios between two contenders worth their own figure:
// reach (a child of another root, across the tunnel) and reach_root (a root
// actor of another root, across the tunnel) over protoactor_grpc (root to
// root over the same gRPC remote). A ratio above 1 is the first system's
// cost.
var pairRatios = []struct{ num, den string }{{"reach", "protoactor_grpc"}, {"reach_root", "protoactor_grpc"}}

func computeRatios(scs []scenario, names []string, values repValues) []ratio {
	has := func(name string) bool { return slices.Contains(names, name) }
	var out []ratio
	byName := map[string]scenario{}
	for _, sc := range scs {
		byName[sc.name] = sc
	}
	for _, sc := range scs {
		if ref, ok := byName[sc.relativeTo]; ok {
			// Each system's figure over its own figure in ref.
			for _, m := range sc.metrics() {
				for _, s := range names {
					if r, ok := crossRatio(sc, ref, m, s, values); ok {
						out = append(out, r)
					}
				}
			}
			continue
		}
		for _, m := range sc.metrics() {
			add := func(num, den string) {
				if r, ok := repRatio(sc, m, num, den, values); ok {
					out = append(out, r)
				}
			}
			if has(baselineSystem) {
				for _, s := range names {
					if s != baselineSystem {
						add(s, baselineSystem)
					}
				}
			}
			for _, p := range pairRatios {
				if has(p.num) && has(p.den) {
					if m.higherIsBetter {
						add(p.den, p.num)
					} else {
						add(p.num, p.den)
					}
				}
			}
			if has(subjectSystem) {
				for _, s := range names {
					if s == subjectSystem || s == baselineSystem {
						continue
					}
					if m.higherIsBetter {
						add(subjectSystem, s)
					} else {
						add(s, subjectSystem)
					}
				}
			}
		}
	}
	return out
}

// perRep divides nv by dv repetition by repetition, where both have a
// figure (ok) and the divisor is positive.
func perRep(nv []float64, nok []bool, dv []float64, dok []bool) []float64 {
	var rs []float64
	for i := range min(len(nv), len(dv)) {
		if nok[i] && dok[i] && dv[i] > 0 {
			rs = append(rs, nv[i]/dv[i])
		}
	}
	return rs
}

// crossRatio computes, per repetition, sys's figure in sc over its figure in
// ref, e.g. spawn_warm_p50_procactor_over_spawn_cold.
func crossRatio(sc, ref scenario, m metric, sys string, values repValues) (ratio, bool) {
	nv, nok := values(sc.name, sys, m)
	dv, dok := values(ref.name, sys, m)
	rs := perRep(nv, nok, dv, dok)
	if len(rs) == 0 {
		return ratio{}, false
	}
	return ratio{
		key:      crossRatioKey(sc, m, sys),
		scenario: sc.name, metric: m.field,
		num: sys, den: ref.name,
		median: median(rs), min: slices.Min(rs), max: slices.Max(rs),
		reps: len(rs),
	}, true
}

func crossRatioKey(sc scenario, m metric, sys string) string {
	key := sc.name
	if m.label != "" {
		key += "_" + m.label
	}
	return key + "_" + sys + "_over_" + sc.relativeTo
}

// repRatio computes num/den per repetition where both have a figure.
func repRatio(sc scenario, m metric, num, den string, values repValues) (ratio, bool) {
	nv, nok := values(sc.name, num, m)
	dv, dok := values(sc.name, den, m)
	rs := perRep(nv, nok, dv, dok)
	if len(rs) == 0 {
		return ratio{}, false
	}
	key := sc.name
	if m.label != "" {
		key += "_" + m.label
	}
	key += "_" + num + "_over_" + den
	return ratio{
		key:      key,
		scenario: sc.name, metric: m.field,
		num: num, den: den,
		median: median(rs), min: slices.Min(rs), max: slices.Max(rs),
		reps: len(rs),
	}, true
}
