package main

import (
	"fmt"
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotScenario is the scenario whose latency distributions -svg draws.
const plotScenario = "rtt_64b"

// writeSVG draws, for every system, the percentile curve of plotScenario's round
// trips over all its repetitions: latency (log) against percentile, on the usual
// HDR axis x = 1/(1-q), so that the tail is as wide as the body.
func writeSVG(path string, rep *report) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s round trip by percentile (%s, %d cores, %d repetitions merged)",
		plotScenario, rep.machine.CPUModel, rep.machine.Cores, rep.opts.reps)
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "round trip (µs)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks{
		{Value: 1, Label: "0%"}, {Value: 2, Label: "50%"}, {Value: 10, Label: "90%"},
		{Value: 100, Label: "99%"}, {Value: 1e3, Label: "99.9%"}, {Value: 1e4, Label: "99.99%"},
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	drawn := 0
	for i, sys := range rep.systems {
		h := mergedHistogram(rep, plotScenario, sys)
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		line, err := plotter.NewLine(percentileCurve(h))
		if err != nil {
			return err
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(sys, line)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("no %s results to draw", plotScenario)
	}
	return p.Save(10*vg.Inch, 6*vg.Inch, path)
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
func percentileCurve(h *hdrhistogram.Histogram) plotter.XYs {
	const points = 200
	xMax := math.Min(float64(h.TotalCount()), 1e5)
	xys := make(plotter.XYs, 0, points+1)
	for k := range points + 1 {
		x := math.Pow(xMax, float64(k)/points)
		q := 100 * (1 - 1/x)
		xys = append(xys, plotter.XY{X: x, Y: math.Max(float64(h.ValueAtQuantile(q))/1e3, 1e-3)})
	}
	return xys
}
