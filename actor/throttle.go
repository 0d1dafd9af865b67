package actor

import (
	"sync"
	"time"
)

// throttle lets through at most throttleBurst events per interval and counts
// the rest, so a storm of dead letters costs a few log lines, not a flood.
type throttle struct {
	every   time.Duration
	mu      sync.Mutex
	start   time.Time // start of the current interval (guarded by mu)
	n       int       // events in the current interval (guarded by mu)
	skipped int64     // events refused in the previous intervals, not yet reported (guarded by mu)
}

const throttleBurst = 10

// allow reports whether this event may be logged, and how many were refused
// since the last report (to be logged once, now).
func (t *throttle) allow() (ok bool, skipped int64) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.start) >= t.every {
		t.start, t.n = now, 0
		skipped, t.skipped = t.skipped, 0
	}
	t.n++
	if t.n > throttleBurst {
		t.skipped++
		return false, skipped
	}
	return true, skipped
}
