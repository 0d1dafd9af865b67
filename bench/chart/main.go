// Command chart draws the bench's latency curves as SVG: `go run ./bench
// -svg FILE` runs it with the curves on its standard input.
//
// It is a program of its own so that the bench binary does not link
// gonum/plot: the bench's children are that binary re-executed, and
// gonum/plot's package init reads its twelve embedded fonts (4.5 MB of the
// binary's data), which every child would pay in resident memory (the
// bench's idle_rss row) and in start-up time (spawn_cold) without ever
// drawing anything.
//
// Input: one JSON object, a chartdata.Chart ({"title": ..., "x_label": ...,
// "y_label": ..., "curves": [{"name": ..., "points": [[x, y], ...]}, ...]});
// both axes are drawn in log scale, x as percentiles on the HDR axis
// x = 1/(1-q).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/procactor/procactor/bench/internal/chartdata"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func main() {
	out := flag.String("o", "", "write the SVG to `file`")
	flag.Parse()
	if err := run(os.Stdin, *out); err != nil {
		fmt.Fprintf(os.Stderr, "chart: %v\n", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out string) error {
	if out == "" {
		return errors.New("-o FILE is required")
	}
	var c chartdata.Chart
	if err := json.NewDecoder(in).Decode(&c); err != nil {
		return fmt.Errorf("reading the chart: %w", err)
	}
	return draw(c, out)
}

// draw writes c as SVG to path.
func draw(c chartdata.Chart, path string) error {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
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
	for i, cv := range c.Curves {
		if len(cv.Points) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(cv.Points))
		for k, pt := range cv.Points {
			if !(pt[0] > 0 && pt[1] > 0) {
				return fmt.Errorf("curve %q: point %d (%v, %v) is not positive, as a log scale needs", cv.Name, k, pt[0], pt[1])
			}
			xys[k] = plotter.XY{X: pt[0], Y: pt[1]}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("curve %q: %w", cv.Name, err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(cv.Name, line)
		drawn++
	}
	if drawn == 0 {
		return errors.New("no curve to draw")
	}
	return p.Save(10*vg.Inch, 6*vg.Inch, path)
}
