package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procactor/procactor/internal/exampletest"
	"github.com/procactor/procactor/procnode"
)

// TestObserve runs the example as a user would, reads the tree from the
// debug endpoint it prints while it runs, and checks its summary.
func TestObserve(t *testing.T) {
	bin := exampletest.Build(t, "observe")
	cmd := exampletest.Command(t, bin, "-for", "6s", "-rate", "100", "-crash", "100")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("no output; stderr:\n%s", stderr.String())
	}
	url, ok := strings.CutPrefix(lines.Text(), "debug page: ")
	if !ok {
		t.Fatalf("first line %q; want the debug page's URL", lines.Text())
	}

	// While it runs: the whole tree, the grandchild included (the restarts
	// are checked in the summary, which the program takes from a snapshot
	// as it ends).
	var s procnode.Snapshot
	deadline := time.Now().Add(time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint never showed the whole tree: %+v", s)
		}
		s = procnode.Snapshot{}
		if res, err := http.Get(url + "snapshot.json"); err == nil {
			_ = json.NewDecoder(res.Body).Decode(&s)
			res.Body.Close()
		}
		if len(s.Children) == 3 && s.Children[2].Tree != nil && len(s.Children[2].Tree.Children) == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := s.Children[0]; c.Address != "n/1" || c.Name != "restarts-in-place" || c.Kind != "observe.worker" {
		t.Errorf("n/1: %+v", c)
	}
	if gc := s.Children[2].Tree.Children[0]; gc.Address != "n/3/1" || gc.Kind != "observe.worker" {
		t.Errorf("grandchild: %+v; want n/3/1 observe.worker", gc)
	}

	var out strings.Builder
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
	}
	t.Logf("stdout:\n%s", out.String())
	summary := regexp.MustCompile(`(?m)^(n/\d) (\S+): (\w+), (\d+) restarts, incarnation (\d+)$`).FindAllStringSubmatch(out.String(), -1)
	if len(summary) != 3 {
		t.Fatalf("%d summary lines; want 3", len(summary))
	}
	num := func(s string) int { n, _ := strconv.Atoi(s); return n }
	if r := summary[0]; r[1] != "n/1" || num(r[4]) == 0 || num(r[5]) != 0 {
		t.Errorf("n/1 summary %q; want restarts in the same process", r[0])
	}
	if r := summary[1]; r[1] != "n/2" || num(r[4]) == 0 || num(r[5]) == 0 {
		t.Errorf("n/2 summary %q; want process restarts", r[0])
	}
}
