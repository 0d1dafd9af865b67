package procnode

import (
	"strings"
	"testing"
	"time"
)

// TestParseProcStat reads the fields a snapshot shows from a /proc/PID/stat
// line whose command name holds spaces and parentheses.
func TestParseProcStat(t *testing.T) {
	fields := make([]string, 52)
	for i := range fields {
		fields[i] = "0"
	}
	set := func(k int, v string) { fields[k-1] = v }
	set(1, "4242")
	set(2, "(a) b (c))")
	set(3, "S")
	set(14, "250") // utime, clock ticks
	set(15, "75")
	set(20, "7")
	set(24, "1000") // rss, pages
	st, err := parseProcStat([]byte(strings.Join(fields, " ")+"\n"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := ProcStats{State: "S", CPUUser: 2500 * time.Millisecond, CPUSystem: 750 * time.Millisecond, Threads: 7, RSS: 1000 * 4096}
	if st != want {
		t.Fatalf("got %+v; want %+v", st, want)
	}
	for _, bad := range []string{"", "4242 (x", "4242 (x) S 1 2", strings.Replace(strings.Join(fields, " "), " 1000 ", " x ", 1)} {
		if _, err := parseProcStat([]byte(bad), 4096); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
}
