package procnode

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// A process started as a child whose main does not call Main first runs the
// parent's main again, side effects and all, and never shakes hands: its
// parent would wait for its whole start timeout and then report an EOF or a
// timeout. So procnode's init, in a process that has a bootstrap, arms a
// check: if Main has not been called within the time the bootstrap allows
// (half the parent's start timeout, counted from init, so a slow init or a
// -race build is not taken for a forgotten Main), the process says so in one
// line on stderr and exits with ExitMainNotCalled, which its parent maps to
// ErrMainNotCalled at once.

// mainNotCalledLine is what such a process writes to stderr.
const mainNotCalledLine = "procactor: started as a procactor child but main did not call procnode.Main() first"

// mainClaimed is set by the first of Main and the check: once the check has
// it, the process is exiting; once Main has it, the check does nothing.
var mainClaimed atomic.Bool

// armMainCheck runs from procnode's init, after the bootstrap's type is
// registered. A process without a bootstrap (a parent) arms nothing.
func armMainCheck() {
	raw, ok := os.LookupEnv(envBoot)
	if !ok {
		return
	}
	b, err := decodeBoot(raw)
	if err != nil || b.MainWithin <= 0 {
		return // Main reports a bad bootstrap; a parent that sets no budget wants no check
	}
	time.AfterFunc(time.Duration(b.MainWithin), func() {
		if !mainClaimed.CompareAndSwap(false, true) {
			return
		}
		fmt.Fprintln(os.Stderr, mainNotCalledLine)
		os.Exit(ExitMainNotCalled)
	})
}

// claimMain disarms the check; it reports false when the check fired
// already and the process is on its way out.
func claimMain() bool { return mainClaimed.CompareAndSwap(false, true) }
