package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// build compiles the example as a user would and returns the binary's path.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "timesync")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// command makes an exec.Cmd for the built program with a hang guard: if it
// has not ended after a generous bound (a guard against a hang, not a timing
// check) it gets SIGQUIT, so its goroutine dump lands in stderr, and the
// pipes are closed a little later even if a child still holds them.
func command(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func TestTimeSync(t *testing.T) {
	bin := build(t)
	line := func(what string) string { return what + ` delta: \d+\.\d{8} s\.\n` }
	for _, tc := range []struct {
		args []string
		want *regexp.Regexp
	}{
		{nil, regexp.MustCompile(`^` + line("Time") + `$`)},
		{[]string{"-warmup", "0"}, regexp.MustCompile(`^` + line("Time") + `$`)},
		{[]string{"-rounds", "50"}, regexp.MustCompile(`^` + line("Time") + line("Median") + line("Min") + `$`)},
	} {
		cmd := command(t, bin, tc.args...)
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
