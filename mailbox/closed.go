package mailbox

import (
	"errors"
	"net"
	"os"
)

// isClosedErr reports a stream closed under a blocked Read or Write.
func isClosedErr(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
}
