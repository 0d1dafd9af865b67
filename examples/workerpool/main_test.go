package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/procactor/procactor/internal/exampletest"
)

var resultLine = regexp.MustCompile(`(?m)^job +(\d+) on worker \d+ \(pid \d+\): sha256\^(\d+)\("([^"]+)"\) = ([0-9a-f]+)…$`)

func TestWorkerPool(t *testing.T) {
	bin := exampletest.Build(t, "workerpool")
	for _, tc := range []struct {
		name                   string
		args                   []string
		done, failed, restarts int
		crashID, killID        int
	}{
		{"crash and kill", []string{"-workers", "2", "-jobs", "8", "-iterations", "20000", "-crash", "3", "-kill", "6"}, 7, 1, 2, 3, 6},
		{"crash-last", []string{"-workers", "3", "-jobs", "6", "-iterations", "20000", "-crash", "6", "-kill", "0"}, 5, 1, 1, 6, 0},
		{"kill-first", []string{"-workers", "2", "-jobs", "4", "-iterations", "20000", "-crash", "0", "-kill", "1"}, 4, 0, 1, 0, 1},
		{"calm", []string{"-workers", "2", "-jobs", "5", "-iterations", "20000", "-crash", "0", "-kill", "0"}, 5, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exampletest.Command(t, bin, tc.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			b, err := cmd.Output()
			out := string(b)
			if err != nil {
				t.Fatalf("exit: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
			}
			t.Logf("stdout:\n%s", out)
			summary := regexp.MustCompile(`\d+ jobs on \d+ workers in [0-9.]+ s: (\d+) done, (\d+) failed, (\d+) worker restarts\n$`).FindStringSubmatch(out)
			if summary == nil {
				t.Fatalf("no summary line")
			}
			if summary[1] != strconv.Itoa(tc.done) || summary[2] != strconv.Itoa(tc.failed) || summary[3] != strconv.Itoa(tc.restarts) {
				t.Fatalf("summary %q; want %d done, %d failed, %d restarts", summary[0], tc.done, tc.failed, tc.restarts)
			}
			// Every result is right: the digest computed here matches.
			results := resultLine.FindAllStringSubmatch(out, -1)
			if len(results) != tc.done {
				t.Fatalf("%d result lines; want %d", len(results), tc.done)
			}
			for _, r := range results {
				iters, _ := strconv.Atoi(r[2])
				if want := digest(r[3], iters); !strings.HasPrefix(want, r[4]) {
					t.Errorf("job %s: digest %s…; want %s", r[1], r[4], want)
				}
			}
			if tc.crashID != 0 {
				// The pool's strategy was told which job its worker failed on.
				fail := regexp.MustCompile(`(?m)^job +` + strconv.Itoa(tc.crashID) + ` on worker \d+: failed: job ` + strconv.Itoa(tc.crashID) + `: simulated crash; `)
				if !fail.MatchString(out) {
					t.Errorf("job %d not reported as failed", tc.crashID)
				}
			}
			if tc.killID != 0 {
				// The killed process's job was delivered again, and done.
				done := regexp.MustCompile(`(?m)^job +` + strconv.Itoa(tc.killID) + ` on worker \d+ \(pid \d+\): `)
				if !done.MatchString(out) || !strings.Contains(out, "before: killed by SIGKILL)") {
					t.Errorf("job %d not done after its worker's process was killed, or the killed process's status not shown", tc.killID)
				}
			}
		})
	}
}
