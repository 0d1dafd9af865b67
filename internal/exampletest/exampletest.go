// Package exampletest runs the programs under examples/ as a user would: it
// builds one with `go build` and starts it with a guard against hangs.
package exampletest

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Build compiles the example in the current directory (a test runs in its
// package's folder) and returns the binary's path.
func Build(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Command makes an exec.Cmd for the built program with a hang guard: if it
// has not ended after a generous bound (a guard against a hang, not a timing
// check) it gets SIGQUIT, so its goroutine dump lands in stderr, and the
// pipes are closed a little later even if a child still holds them.
func Command(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}
