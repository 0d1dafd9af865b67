package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// writeTable prints one section per scenario: each system's figures (medians of
// the repetitions) and its headline figure as a ratio to raw_pipe of the same
// repetition (median, with min–max), plus the subject's gain once it is present.
func writeTable(w io.Writer, rep *report) {
	m := rep.machine
	mode := rep.opts.mode()
	fmt.Fprintf(w, "procactor bench: %s, %d cores, %s %s/%s, kernel %s, load %s\n",
		m.CPUModel, m.Cores, m.GoVersion, m.GOOS, m.GOARCH, m.Kernel, m.LoadAvg)
	fmt.Fprintf(w, "%s run, %d repetitions interleaved, %.0fs; figures are medians of the repetitions;\n",
		mode, rep.opts.reps, rep.elapsed.Seconds())
	fmt.Fprintf(w, "×%s is the median (min–max) of per-repetition ratios to %s.\n", baselineSystem, baselineSystem)
	ratios := map[string]ratio{}
	for _, r := range rep.ratios {
		ratios[r.key] = r
	}
	hasSubject := false
	for _, s := range rep.systems {
		hasSubject = hasSubject || s == subjectSystem
	}
	for _, sc := range rep.scenarios {
		metrics := sc.metrics()
		head := metrics[0]
		fmt.Fprintf(w, "\n%s — %s\n", sc.name, describe(sc))
		cols := []string{"system"}
		for _, mt := range metrics {
			cols = append(cols, columnName(mt))
		}
		if sc.relativeTo != "" {
			cols = append(cols, "×"+sc.relativeTo)
		} else {
			cols = append(cols, "×"+baselineSystem)
			if hasSubject {
				cols = append(cols, subjectSystem+" gain")
			}
		}
		rows := []tableRow{{cells: cols}}
		for _, sys := range rep.systems {
			cs := rep.summary(sc, sys)
			row := tableRow{cells: []string{sys}}
			switch {
			case cs.na != "":
				row.note = "n/a: " + cs.na
			case cs.okReps == 0:
				row.note = "error: " + oneLine(cs.err)
			default:
				for _, mt := range metrics {
					row.cells = append(row.cells, formatValue(mt, cs.values[mt.field]))
				}
				if sc.relativeTo != "" {
					row.cells = append(row.cells, formatRatio(ratios, crossRatioKey(sc, head, sys)))
				} else if sys == baselineSystem {
					row.cells = append(row.cells, "1")
				} else {
					row.cells = append(row.cells, formatRatio(ratios, ratioKey(sc, head, sys, baselineSystem)))
				}
				if hasSubject && sc.relativeTo == "" {
					k := ratioKey(sc, head, sys, subjectSystem)
					if head.higherIsBetter {
						k = ratioKey(sc, head, subjectSystem, sys)
					}
					row.cells = append(row.cells, formatRatio(ratios, k))
				}
				if cs.err != "" {
					n := len(rep.outcomes[cellKey{sc.name, sys}])
					row.note = fmt.Sprintf("(%d of %d repetitions failed: %s)", n-cs.okReps, n, oneLine(cs.err))
				}
			}
			rows = append(rows, row)
		}
		writeAligned(w, rows)
		for _, p := range pairRatios {
			k := ratioKey(sc, head, p.num, p.den)
			if head.higherIsBetter {
				k = ratioKey(sc, head, p.den, p.num)
			}
			if _, ok := ratios[k]; ok {
				fmt.Fprintf(w, "%s: %s\n", k, formatRatio(ratios, k))
			}
		}
	}
}

// tableRow is one line of a section: cells aligned in columns, then a free note
// (an n/a reason, an error).
type tableRow struct {
	cells []string
	note  string
}

// writeAligned prints rows with the first column left-aligned and the others
// right-aligned.
func writeAligned(w io.Writer, rows []tableRow) {
	var width []int
	for _, row := range rows {
		for i, c := range row.cells {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row.cells {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		if row.note != "" {
			b.WriteString("  " + row.note)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func describe(sc scenario) string {
	switch sc.kind {
	case kindRTT:
		return fmt.Sprintf("sequential request/response of %s, round trip in µs", sizeName(sc.size))
	case kindOneway:
		return fmt.Sprintf("pipelined one-way %s messages, counted by the receiver", sizeName(sc.size))
	case kindRecords:
		return "pipelined one-way struct {ID int64; Name string; Tags []string; Value float64}, decoded and counted"
	case kindLarge:
		return fmt.Sprintf("one %s message sent and acknowledged (MB = 10^6 bytes)", sizeName(sc.size))
	case kindFanout:
		peers := "peers"
		if sc.peers == 1 {
			peers = "peer"
		}
		return fmt.Sprintf("one parent, %d %s, one-way %s messages, aggregate rate", sc.peers, peers, sizeName(sc.size))
	case kindSpawn:
		if sc.warm {
			return "a pre-started peer taken from a pool to its first reply (64 B request), median; ×spawn_cold is the same system's cold start"
		}
		return "start of a peer to its first reply (64 B request), median"
	case kindSnapshot:
		return fmt.Sprintf("a snapshot of the parent's tree of %d peers, each asked over its link; "+
			"µs per call, CPU µs per call (parent and peers), p50 over a 64 B round trip's p50", sc.peers)
	case kindIdleRSS:
		return "resident memory (VmRSS) of a peer process after one 64 B request and 1 s idle, MB = 10^6 bytes"
	}
	return ""
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func columnName(mt metric) string {
	switch mt.field {
	case "p50_us":
		return "p50 µs"
	case "p99_us":
		return "p99 µs"
	case "p999_us":
		return "p99.9 µs"
	case "msgs_per_s":
		return "msgs/s"
	case "mb_per_s":
		return "MB/s"
	case "p50_ms":
		return "p50 ms"
	case "cpu_us":
		return "cpu µs"
	case "per_rtt":
		return "×rtt"
	case "rss_mb":
		return "VmRSS MB"
	}
	return mt.field
}

func formatValue(mt metric, v float64) string {
	if v == 0 {
		return "-"
	}
	switch mt.field {
	case "msgs_per_s":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2fM", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.1fk", v/1e3)
		}
		return fmt.Sprintf("%.0f", v)
	case "mb_per_s":
		return fmt.Sprintf("%.0f", v)
	case "p50_ms", "per_rtt":
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func formatRatio(ratios map[string]ratio, key string) string {
	r, ok := ratios[key]
	if !ok {
		return "-"
	}
	if r.reps == 1 || r.min == r.max {
		return formatFactor(r.median)
	}
	return fmt.Sprintf("%s (%s–%s)", formatFactor(r.median), formatFactor(r.min), formatFactor(r.max))
}

// formatFactor prints a ratio with two decimals, or two significant digits below
// 0.1 (goplugin's one-way rate is 0.0042 × raw_pipe, not 0.00).
func formatFactor(x float64) string {
	if x < 0.1 {
		return fmt.Sprintf("%.2g", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// ratioKey names the ratio of mt between systems num and den in sc, as
// computeRatios does.
func ratioKey(sc scenario, mt metric, num, den string) string {
	if num == den {
		return ""
	}
	key := sc.name
	if mt.label != "" {
		key += "_" + mt.label
	}
	return key + "_" + num + "_over_" + den
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// jsonReport is the shape of -json's file.
type jsonReport struct {
	Machine     machineInfo           `json:"machine"`
	Settings    jsonSettings          `json:"settings"`
	Results     []jsonResult          `json:"results"`
	Ratios      map[string]float64    `json:"ratios"`
	RatioSpread map[string]jsonSpread `json:"ratio_spread"`
}

type jsonSettings struct {
	Mode           string   `json:"mode"` // "full", "default" or "quick"
	Quick          bool     `json:"quick"`
	Reps           int      `json:"reps"`
	Baseline       string   `json:"baseline"`
	Subject        string   `json:"subject"`
	Systems        []string `json:"systems"`
	RTTIterations  int      `json:"rtt_iterations"`
	OnewaySeconds  float64  `json:"oneway_target_s"`
	LargeSends     int      `json:"large_sends"`
	SpawnSamples   int      `json:"spawn_samples"`
	SnapshotCalls  int      `json:"snapshot_calls"`
	ElapsedSeconds float64  `json:"elapsed_s"`
}

// jsonResult is one cell; only the figures its scenario measures are present.
type jsonResult struct {
	System   string   `json:"system"`
	Scenario string   `json:"scenario"`
	P50us    *float64 `json:"p50_us,omitempty"`
	P99us    *float64 `json:"p99_us,omitempty"`
	P999us   *float64 `json:"p999_us,omitempty"`
	MsgsPerS *float64 `json:"msgs_per_s,omitempty"`
	MBPerS   *float64 `json:"mb_per_s,omitempty"`
	P50ms    *float64 `json:"p50_ms,omitempty"`
	CPUus    *float64 `json:"cpu_us,omitempty"`
	PerRTT   *float64 `json:"per_rtt,omitempty"`
	RSSMB    *float64 `json:"rss_mb,omitempty"`
	NA       string   `json:"na,omitempty"`
	Error    string   `json:"error,omitempty"`
	// Reps is the number of successful repetitions behind the figures.
	Reps int `json:"reps"`
	// PerRep holds each figure per repetition, in run order (0 where a
	// repetition failed), to judge the noise.
	PerRep map[string][]float64 `json:"per_rep,omitempty"`
}

// jsonSpread is the min and max over repetitions of a ratio.
type jsonSpread struct {
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Reps int     `json:"reps"`
}

func buildJSON(rep *report) jsonReport {
	out := jsonReport{
		Machine: rep.machine,
		Settings: jsonSettings{
			Mode: rep.opts.mode(), Quick: rep.opts.quick, Reps: rep.opts.reps,
			Baseline: baselineSystem, Subject: subjectSystem, Systems: rep.systems,
			RTTIterations: rep.budget.rttIters, OnewaySeconds: rep.budget.onewayTime.Seconds(),
			LargeSends: rep.budget.largeSends, SpawnSamples: rep.budget.spawnSamples, SnapshotCalls: rep.budget.snapshotCalls,
			ElapsedSeconds: rep.elapsed.Seconds(),
		},
		Results:     []jsonResult{},
		Ratios:      map[string]float64{},
		RatioSpread: map[string]jsonSpread{},
	}
	for _, sc := range rep.scenarios {
		for _, sys := range rep.systems {
			cs := rep.summary(sc, sys)
			r := jsonResult{System: sys, Scenario: sc.name, NA: cs.na, Error: cs.err, Reps: cs.okReps}
			fields := map[string]**float64{
				"p50_us": &r.P50us, "p99_us": &r.P99us, "p999_us": &r.P999us,
				"msgs_per_s": &r.MsgsPerS, "mb_per_s": &r.MBPerS, "p50_ms": &r.P50ms,
				"cpu_us": &r.CPUus, "per_rtt": &r.PerRTT,
				"rss_mb": &r.RSSMB,
			}
			for f, v := range cs.values {
				*fields[f] = &v
			}
			for _, mt := range sc.metrics() {
				if vals, _ := rep.repValues(sc.name, sys, mt); cs.okReps > 0 {
					if r.PerRep == nil {
						r.PerRep = map[string][]float64{}
					}
					r.PerRep[mt.field] = vals
				}
			}
			out.Results = append(out.Results, r)
		}
	}
	for _, r := range rep.ratios {
		out.Ratios[r.key] = r.median
		out.RatioSpread[r.key] = jsonSpread{Min: r.min, Max: r.max, Reps: r.reps}
	}
	return out
}

// writeJSON writes the report to path, indented.
func writeJSON(path string, rep *report) error {
	b, err := json.MarshalIndent(buildJSON(rep), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
