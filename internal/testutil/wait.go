package testutil

import (
	"testing"
	"time"
)

// Timeout bounds every wait in the project's tests. It is generous on
// purpose: a shared, loaded two-core machine is slow, not stuck, and a test
// that waits in vain fails with what it waited for rather than hanging.
const Timeout = 60 * time.Second

// pollEvery is how often Poll looks again: short enough that a test waits
// little past the moment its condition holds, long enough not to compete with
// the code under test for the two cores.
const pollEvery = 2 * time.Millisecond

// Poll checks cond until it holds or d passes, and says whether it held. It is
// for states that have no event to wait on (a count of file descriptors, a
// process gone from /proc) and for callers that print their own diagnosis.
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// Eventually fails t unless cond holds within Timeout; what names the state
// waited for in the failure.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Poll(Timeout, cond) {
		t.Fatalf("waited %v in vain for %s", Timeout, what)
	}
}

// Receive returns the next value on ch, failing t if none comes within
// Timeout; what names the value waited for in the failure.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Timeout):
		t.Fatalf("waited %v in vain for %s", Timeout, what)
		panic("unreachable")
	}
}
