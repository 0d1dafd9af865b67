package procnode

import "github.com/procactor/procactor/mailbox"

// procnode's sentinels cross links as errors.Is-able errors (see
// mailbox.RegisterError); ErrKindNotRegistered and ErrNameExists are
// actor's, registered there.
func init() {
	for name, err := range map[string]error{
		"procnode.ErrMainNotCalled": ErrMainNotCalled,
		"procnode.ErrNoNode":        ErrNoNode,
		"procnode.ErrInvalidOption": ErrInvalidOption,
		"procnode.ErrStartFailed":   ErrStartFailed,
		"procnode.ErrSignaled":      ErrSignaled,
		"procnode.ErrNotRunning":    ErrNotRunning,
		"procnode.ErrPoolClosed":    ErrPoolClosed,
	} {
		mailbox.RegisterError(name, err)
	}
}
