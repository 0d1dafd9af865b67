package actor

import (
	"sync"
	"time"
)

// limiter lets through at most limiterBurst events per interval and counts
// the rest; at the end of an interval in which it refused some, it calls
// summary once with their count (so a storm costs a few lines and a
// count, and the count is not lost when the storm stops).
type limiter struct {
	every   time.Duration
	summary func(skipped int64)

	mu      sync.Mutex
	start   time.Time   // start of the current interval (guarded by mu)
	n       int         // events in the current interval (guarded by mu)
	skipped int64       // events refused, not yet summarized (guarded by mu)
	timer   *time.Timer // pending summary (guarded by mu)
	stopped bool        // guarded by mu
	running sync.WaitGroup
}

// limiterBurst is how many events an interval lets through.
const limiterBurst = 10

// allow reports whether this event may be logged.
func (l *limiter) allow() bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.every {
		l.start, l.n = now, 0
	}
	l.n++
	if l.n <= limiterBurst {
		return true
	}
	l.skipped++
	if l.timer == nil && !l.stopped {
		l.running.Add(1)
		l.timer = time.AfterFunc(l.start.Add(l.every).Sub(now), l.report)
	}
	return false
}

func (l *limiter) report() {
	defer l.running.Done()
	l.mu.Lock()
	n := l.skipped
	l.skipped, l.timer = 0, nil
	l.mu.Unlock()
	if n > 0 {
		l.summary(n)
	}
}

// stop cancels a pending summary, reports its count at once, and waits
// for a summary being written.
func (l *limiter) stop() {
	l.mu.Lock()
	l.stopped = true
	if l.timer != nil && l.timer.Stop() {
		l.timer = nil
		l.running.Done()
	}
	n := l.skipped
	l.skipped = 0
	l.mu.Unlock()
	l.running.Wait()
	if n > 0 {
		l.summary(n)
	}
}
