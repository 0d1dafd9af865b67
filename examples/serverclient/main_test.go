package main

import (
	"bytes"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/procactor/procactor/internal/exampletest"
)

func TestServerClient(t *testing.T) {
	bin := exampletest.Build(t, "serverclient")
	for _, tc := range []struct{ clients, want string }{
		{"", "1000"}, // the default
		{"37", "37"},
	} {
		args := []string{}
		if tc.clients != "" {
			args = append(args, "-clients", tc.clients)
		}
		cmd := exampletest.Command(t, bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: exit: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, stderr.Bytes())
		}
		re := regexp.MustCompile(`^` + tc.want + ` clients served within \d+\.\d{2} s\.\n$`)
		if !re.Match(out) {
			t.Fatalf("%v: stdout %q does not match %s", args, out, re)
		}
		t.Logf("%s", out)
	}
}

// TestClientFailure: a failed client is an error exit with the reason.
func TestClientFailure(t *testing.T) {
	bin := exampletest.Build(t, "serverclient")
	// Nothing listens on port 1: every dial is refused.
	cmd := exampletest.Command(t, bin, "-clients", "3", "-connect", "127.0.0.1:1")
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
