package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDrawsEveryCurve(t *testing.T) {
	out := filepath.Join(t.TempDir(), "c.svg")
	in := `{"title": "rtt", "x_label": "percentile", "y_label": "µs", "curves": [
		{"name": "raw_pipe", "points": [[1, 10], [2, 12], [100, 40]]},
		{"name": "procactor", "points": [[1, 3], [2, 4], [100, 30]]}]}`
	if err := run(strings.NewReader(in), out); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "raw_pipe", "procactor", "rtt"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("the SVG has no %q", want)
		}
	}
}

func TestRejectsWhatItCannotDraw(t *testing.T) {
	dir := t.TempDir()
	for name, in := range map[string]string{
		"not JSON":      `curves`,
		"no curve":      `{"curves": []}`,
		"empty curves":  `{"curves": [{"name": "a", "points": []}]}`,
		"zero on a log": `{"curves": [{"name": "a", "points": [[1, 0]]}]}`,
		"negative x":    `{"curves": [{"name": "a", "points": [[-1, 3]]}]}`,
	} {
		out := filepath.Join(dir, "c.svg")
		if err := run(strings.NewReader(in), out); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: a file was written", name)
		}
	}
	if err := run(strings.NewReader(`{}`), ""); err == nil {
		t.Error("no -o: no error")
	}
}
