package procnode

import (
	"encoding/base64"
	"fmt"
	"os"
	"syscall"

	"github.com/procactor/procactor/mailbox"
)

// A child learns what to run from its bootstrap: a boot message, encoded as
// any message crossing a link is (so the parent's and the child's build must
// agree on it as they must on every type), in base64 in the environment
// variable envBoot. Its link is the pipe pair on fds 3 and 4.

// decodeBoot reads the bootstrap a parent set in envBoot.
func decodeBoot(raw string) (*boot, error) {
	bs, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, err
	}
	v, err := mailbox.Unmarshal(bs)
	if err != nil {
		return nil, err
	}
	b, ok := v.(*boot)
	if !ok {
		return nil, fmt.Errorf("bootstrap is %T", v)
	}
	return b, nil
}

// encodeBoot makes the value of envBoot for a child.
func encodeBoot(b *boot) (string, error) {
	bs, err := mailbox.Marshal(b)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(bs), nil
}

// inheritedConn makes the link's stream of fds 3 and 4: close-on-exec (the
// child's own children must not inherit them) and non-blocking (so the
// runtime poller serves them and Close interrupts a blocked read).
func inheritedConn() (*mailbox.PipeConn, error) {
	for _, fd := range []int{childReadFD, childWriteFD} {
		syscall.CloseOnExec(fd)
		if err := syscall.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	return mailbox.NewPipeConn(os.NewFile(childReadFD, "procactor-in"), os.NewFile(childWriteFD, "procactor-out")), nil
}
