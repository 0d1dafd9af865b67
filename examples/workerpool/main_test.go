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
		name                       string
		args                       []string
		done, failed               int
		childRestarts, procRestart int
		failID                     int
	}{
		{"crash-and-kill", []string{"-workers", "2", "-jobs", "12", "-iterations", "20000", "-crash", "5", "-kill", "3"}, 11, 1, 1, 1, 5},
		{"crash-last", []string{"-workers", "3", "-jobs", "6", "-iterations", "20000", "-crash", "6", "-kill", "0"}, 5, 1, 1, 0, 6},
		{"kill-only", []string{"-workers", "2", "-jobs", "10", "-iterations", "20000", "-crash", "0", "-kill", "1"}, 10, 0, 0, 1, 0},
		{"none", []string{"-workers", "2", "-jobs", "5", "-iterations", "20000", "-crash", "0", "-kill", "0"}, 5, 0, 0, 0, 0},
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
			summary := regexp.MustCompile(`\d+ jobs on \d+ workers in [0-9.]+ s: (\d+) done, (\d+) failed, (\d+) lost; restarts: (\d+) of a root actor, (\d+) of a process\n$`).FindStringSubmatch(out)
			if summary == nil {
				t.Fatalf("no summary line")
			}
			want := []string{strconv.Itoa(tc.done), strconv.Itoa(tc.failed), "0", strconv.Itoa(tc.childRestarts), strconv.Itoa(tc.procRestart)}
			if strings.Join(summary[1:], " ") != strings.Join(want, " ") {
				t.Fatalf("summary %q; want %v done, failed, lost, root-actor restarts, process restarts", summary[0], want)
			}
			// Every result is right, and each job has one line (a job
			// redelivered after the kill may run twice; its first answer counts).
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
			if tc.failID != 0 {
				fail := regexp.MustCompile(`(?m)^job +` + strconv.Itoa(tc.failID) + ` on worker \d+: failed: its worker panicked: job ` + strconv.Itoa(tc.failID) + `: simulated crash$`)
				if !fail.MatchString(out) {
					t.Errorf("job %d not reported as failed with its panic", tc.failID)
				}
			}
			if tc.procRestart > 0 && !strings.Contains(out, "killing worker") {
				t.Errorf("no worker was killed")
			}
		})
	}
}
