// Package chartdata is what the bench hands bench/chart to draw: the one
// definition of that JSON, shared by the two programs. It must not import
// a plotting library: the bench binary links it.
package chartdata

// Chart is one chart: a title, axis labels, and a line per curve; both axes
// are drawn in log scale.
type Chart struct {
	Title  string  `json:"title"`
	XLabel string  `json:"x_label"`
	YLabel string  `json:"y_label"`
	Curves []Curve `json:"curves"`
}

// Curve is one system's line: points are (x, y) pairs.
type Curve struct {
	Name   string       `json:"name"`
	Points [][2]float64 `json:"points"`
}
