package procnode

import (
	"strings"
	"time"
)

// heldNoticeReason is the panic of a root actor whose first incarnation
// holds its failure notice back (TestFailedMessageKeptUntilNoticeLeaves):
// the hook is set in every process of the test binary, and acts only in a
// child's first incarnation whose root actor failed with this (the exit
// notice's reason ends with it).
const heldNoticeReason = "boom-held"

func init() {
	f := func(incarnation uint64, reason string) {
		if incarnation == 0 && strings.HasSuffix(reason, heldNoticeReason) {
			time.Sleep(30 * time.Second) // the test kills the child meanwhile
		}
	}
	testHookFailureNotice.Store(&f)
}
