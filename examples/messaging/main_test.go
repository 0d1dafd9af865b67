package main

import (
	"bufio"
	"bytes"
	"github.com/procactor/procactor/internal/testutil"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/procactor/procactor/internal/exampletest"
)

func TestCount(t *testing.T) {
	bin := exampletest.Build(t, "messaging")
	cmd := exampletest.Command(t, bin, "-count", "3", "-interval", "50ms")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("exit: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
	}
	if got := strings.Count(string(out), "child got message: "); got != 3 {
		t.Fatalf("%d messages printed; want 3\n%s", got, out)
	}
	for i := 1; i <= 3; i++ {
		if !strings.Contains(string(out), "child got message: #"+strconv.Itoa(i)+",") {
			t.Errorf("message #%d missing:\n%s", i, out)
		}
	}
}

// TestInterrupt sends SIGINT to the program's whole process group, as a
// terminal's Ctrl-C does: the program must stop its child and exit 0.
func TestInterrupt(t *testing.T) {
	bin := exampletest.Build(t, "messaging")
	cmd := exampletest.Command(t, bin, "-count", "0", "-interval", "50ms")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var out []string
	childPID := 0
	for lines.Scan() {
		line := lines.Text()
		out = append(out, line)
		if s, ok := strings.CutPrefix(line, "child pid "); ok {
			childPID, _ = strconv.Atoi(s)
		}
		if strings.HasPrefix(line, "child got message: ") {
			break
		}
	}
	if childPID == 0 || len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "child got message: ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no child pid or message before EOF:\n%s\nstderr:\n%s", strings.Join(out, "\n"), stderr.Bytes())
	}
	// The process group is the program's own (Setpgid): its pgid is its pid.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		out = append(out, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\nstdout:\n%s\nstderr:\n%s", err, strings.Join(out, "\n"), stderr.Bytes())
	}
	if !testutil.Gone(childPID) {
		t.Fatalf("child %d still runs after the parent exited", childPID)
	}
	t.Logf("output:\n%s", strings.Join(out, "\n"))
}
