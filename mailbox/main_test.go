package mailbox

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: every
// endpoint's reader, writer and handshake goroutines must be gone after
// Close, Abort or a failed link.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
