package procnode

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/procactor/procactor/internal/testutil"
	"github.com/rs/zerolog"
)

// TestRelayRateLimited: a child cannot flood its parent's log: its records
// are relayed at most relayBurst per relayWindow, and the next record relayed
// after that says how many were not. The clock is the test's.
func TestRelayRateLimited(t *testing.T) {
	var out testutil.SyncBuffer
	p := &Process{address: "n/1", relay: zerolog.New(&out).Level(zerolog.InfoLevel)}
	p.setIdentity("k", "", nil)
	now := time.Unix(1000, 0)
	p.relayLimit.now = func() time.Time { return now }
	rec := []byte(`{"level":"info","message":"flood"}`)
	for range 3 * relayBurst {
		control{p}.SendUserMessage(nil, &logRecord{Level: int8(zerolog.InfoLevel), JSON: rec})
	}
	if got := strings.Count(out.String(), `"message":"flood"`); got != relayBurst {
		t.Fatalf("%d records relayed in one window; want %d", got, relayBurst)
	}
	now = now.Add(relayWindow)
	control{p}.SendUserMessage(nil, &logRecord{Level: int8(zerolog.InfoLevel), JSON: rec})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != relayBurst+2 {
		t.Fatalf("%d lines after the next window; want %d (the summary and the record)", len(lines), relayBurst+2)
	}
	summary := []byte(lines[relayBurst])
	if !bytes.Contains(summary, []byte(`"skipped":2000`)) || !bytes.Contains(summary, []byte(`"child":"n/1"`)) {
		t.Errorf("summary %s; want the %d records skipped, tagged with the child", summary, 2*relayBurst)
	}
}
