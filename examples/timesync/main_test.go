package main

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/procactor/procactor/internal/exampletest"
)

func TestTimeSync(t *testing.T) {
	bin := exampletest.Build(t, "timesync")
	line := func(what string) string { return what + ` delta: \d+\.\d{8} s\.\n` }
	for _, tc := range []struct {
		args []string
		want *regexp.Regexp
	}{
		{nil, regexp.MustCompile(`^` + line("Time") + `$`)},
		{[]string{"-warmup", "0"}, regexp.MustCompile(`^` + line("Time") + `$`)},
		{[]string{"-rounds", "50"}, regexp.MustCompile(`^` + line("Time") + line("Median") + line("Min") + `$`)},
	} {
		cmd := exampletest.Command(t, bin, tc.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: exit: %v\nstdout:\n%s\nstderr:\n%s", tc.args, err, out, stderr.Bytes())
		}
		if !tc.want.Match(out) {
			t.Fatalf("%v: stdout %q does not match %s", tc.args, out, tc.want)
		}
		t.Logf("%v:\n%s", tc.args, out)
	}
}

func TestMedian(t *testing.T) {
	if got := median([]time.Duration{1, 2, 9}); got != 2 {
		t.Errorf("median of 3: %v", got)
	}
	if got := median([]time.Duration{1, 2, 4, 9}); got != 3 {
		t.Errorf("median of 4: %v", got)
	}
}
