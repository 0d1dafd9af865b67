package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/procactor/procactor/bench/internal/chartdata"
)

// plotScenario is the scenario whose latency distributions -svg draws.
const plotScenario = "rtt_64b"

// chartPackage draws the SVG (bench/chart): a program of its own, so that
// the bench binary, which its children re-execute, does not link gonum/plot
// (its package init reads 4.5 MB of fonts that every child would pay).
const chartPackage = "github.com/procactor/procactor/bench/chart"

// writeSVG draws, for every system, the percentile curve of plotScenario's round
// trips over all its repetitions: latency (log) against percentile, on the usual
// HDR axis x = 1/(1-q), so that the tail is as wide as the body. It runs
// bench/chart with `go run`, as bench/leanchild is built: from the module
// the bench is run in.
func writeSVG(path string, rep *report) error {
	c := rtChart(rep)
	if len(c.Curves) == 0 {
		return fmt.Errorf("no %s results to draw", plotScenario)
	}
	in, err := json.Marshal(c)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "run", chartPackage, "-o", path)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go run %s: %w", chartPackage, err)
	}
	return nil
}

// rtChart is the chart of plotScenario's percentile curves, one per system
// that has results.
func rtChart(rep *report) chartdata.Chart {
	c := chartdata.Chart{
		Title: fmt.Sprintf("%s round trip by percentile (%s, %d cores, %d repetitions merged)",
			plotScenario, rep.machine.CPUModel, rep.machine.Cores, rep.opts.reps),
		XLabel: "percentile",
		YLabel: "round trip (µs)",
	}
	for _, sys := range rep.systems {
		h := mergedHistogram(rep, plotScenario, sys)
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		c.Curves = append(c.Curves, chartdata.Curve{Name: sys, Points: percentileCurve(h)})
	}
	return c
}

// mergedHistogram merges the histograms of a cell's successful repetitions.
func mergedHistogram(rep *report, sc, sys string) *hdrhistogram.Histogram {
	var merged *hdrhistogram.Histogram
	for _, o := range rep.outcomes[cellKey{sc, sys}] {
		if o.m.hist == nil || o.err != nil || o.na != "" {
			continue
		}
		if merged == nil {
			merged = newLatencyHistogram()
		}
		merged.Merge(o.m.hist)
	}
	return merged
}

// percentileCurve samples h at x = 1/(1-q) from 1 up to the number of samples
// (beyond it a percentile is the maximum), in µs.
func percentileCurve(h *hdrhistogram.Histogram) [][2]float64 {
	const points = 200
	xMax := math.Min(float64(h.TotalCount()), 1e5)
	xys := make([][2]float64, 0, points+1)
	for k := range points + 1 {
		x := math.Pow(xMax, float64(k)/points)
		q := 100 * (1 - 1/x)
		xys = append(xys, [2]float64{x, math.Max(float64(h.ValueAtQuantile(q))/1e3, 1e-3)})
	}
	return xys
}
