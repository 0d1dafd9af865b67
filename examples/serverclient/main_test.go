package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// build compiles the example as a user would and returns the binary's path.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "serverclient")
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

func TestServerClient(t *testing.T) {
	bin := build(t)
	for _, tc := range []struct{ clients, want string }{
		{"", "1000"}, // the default
		{"37", "37"},
	} {
		args := []string{}
		if tc.clients != "" {
			args = append(args, "-clients", tc.clients)
		}
		cmd := command(t, bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: exit: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, stderr.Bytes())
		}
		re := regexp.MustCompile(`^` + tc.want + ` clients served within \d+\.\d{3} s\.\n$`)
		if !re.Match(out) {
			t.Fatalf("%v: stdout %q does not match %s", args, out, re)
		}
		t.Logf("%s", out)
	}
}

// TestClientFailure: a failed client is an error exit with the reason.
func TestClientFailure(t *testing.T) {
	bin := build(t)
	// Nothing listens on port 1: every dial is refused.
	cmd := command(t, bin, "-clients", "3", "-connect", "127.0.0.1:1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v; want exit status 1\nstdout:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
	}
	if !strings.Contains(stderr.String(), "0 of 3 clients served") || !strings.Contains(stderr.String(), "connection refused") {
		t.Fatalf("stderr lacks the reason:\n%s", stderr.Bytes())
	}
	t.Logf("stderr: %s", stderr.Bytes())
}
