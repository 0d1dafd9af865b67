package procnode

import (
	"errors"

	"github.com/procactor/procactor/actor"
)

// Errors returned by this package; test for them with errors.Is.
var (
	// ErrMainNotCalled: this process was started as a child but its main did
	// not call Main first, so it must not spawn (no fork bombs).
	ErrMainNotCalled = errors.New("procnode: started as a child but Main was not called")
	// ErrKindNotRegistered: the kind is not registered (in this binary, or in
	// the other binary given with WithBinary, which then said so on exit).
	ErrKindNotRegistered = actor.ErrKindNotRegistered
	// ErrNameExists: the spawner already has a child of the name given with
	// WithName.
	ErrNameExists = actor.ErrNameExists
	// ErrNoNode: the spawner's actor system was not made by NewNode or Main.
	ErrNoNode = errors.New("procnode: the spawner's actor system has no node (use procnode.NewNode)")
	// ErrInvalidOption is wrapped when an option is out of range.
	ErrInvalidOption = errors.New("procnode: invalid option")
	// ErrStartFailed: the child did not come up (exec failed, the handshake
	// failed or timed out, the kind's producer failed). It wraps the cause and
	// the child's *ExitError when it exited.
	ErrStartFailed = errors.New("procnode: child failed to start")
	// ErrSignaled is the cause of Node.StopOnSignal's context after its
	// signal arrived; the error that wraps it names the signal.
	ErrSignaled = errors.New("procnode: stopped by a signal")
	// ErrNotRunning: Process.Signal found no incarnation of the child
	// running (before the first start, during a restart, after the end).
	ErrNotRunning = errors.New("procnode: no incarnation of the child is running")
	// ErrNodeClosed: the node was closed (ServeDebug, RegisterMetrics).
	ErrNodeClosed = errors.New("procnode: node closed")
)
