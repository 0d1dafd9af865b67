package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/procactor/procactor/internal/exampletest"
)

// TestTwoHosts runs the program: two roots on loopback ports (two OS
// processes), each with a child and a grandchild process; the grandchildren
// greet each other across the roots, and A sees B's grandchild go when B
// exits.
func TestTwoHosts(t *testing.T) {
	bin := exampletest.Build(t, "twohosts")
	cmd := exampletest.Command(t, bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("exit: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
	}
	for _, want := range []string{
		"A's grandchild greeted B's grandchild; it answered from 127.0.0.1:",
		"B's grandchild greeted A's grandchild; it answered from 127.0.0.1:",
		"B's grandchild is gone: ",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s\nstderr:\n%s", want, out, stderr.Bytes())
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, "answered from") && !strings.HasSuffix(line, "/1/1") {
			t.Errorf("a greeting answered from an address that is not a grandchild's: %q", line)
		}
	}
	t.Logf("output:\n%s", out)
}
