package procnode

import (
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExitStatus says how one incarnation of a child process ended.
type ExitStatus struct {
	// Code is the exit code, or -1 when a signal ended the process.
	Code int
	// Signal is the signal that ended the process, or 0.
	Signal syscall.Signal
	// Reason is what the child reported before exiting (the panic text of its
	// root actor, "kind not registered"...), or what the parent saw
	// ("handshake: ..."); empty after a clean exit.
	Reason string
	// StderrTail is the end of what the child wrote to stderr (bounded).
	StderrTail []byte
	// Stopped is true when the parent asked the process to stop (Stop,
	// Terminate, Kill, a Stop from protoactor: its spawner stopping, its
	// supervisor's Stop directive).
	Stopped bool
	// Failed is true when the process actor ended because its supervisor
	// stopped it after a failure (a crash, or a panic of its root actor), or
	// because it failed with restarts off (WithRestart(false)).
	Failed bool
	// Incarnation is the restart count of the process (0 for the first).
	Incarnation uint64
	// OSPid is the operating-system process id it had.
	OSPid int
}

// Success reports a clean end: code 0, no signal, not Failed.
func (s *ExitStatus) Success() bool { return s.Code == 0 && s.Signal == 0 && !s.Failed }

func (s *ExitStatus) String() string {
	var what string
	if s.Signal != 0 {
		what = "killed by " + signalName(s.Signal)
	} else {
		what = fmt.Sprintf("exit code %d", s.Code)
	}
	if s.Reason != "" {
		what += ": " + s.Reason
	}
	return what
}

// ExitError is returned by Wait when the process did not exit cleanly.
type ExitError struct {
	ExitStatus
}

func (e *ExitError) Error() string { return "procnode: child " + e.ExitStatus.String() }

// PanicError is the reason a spawner's decider gets for a panic of a child's
// root actor whose value could not cross the process boundary (an
// unregistered type): its text, as fmt.Sprint printed it.
type PanicError struct {
	Text        string
	MessageType string // the Go type of the message the actor failed on
}

func (e *PanicError) Error() string { return "procnode: child's root actor panicked: " + e.Text }

// tailBuffer keeps the last n bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	n   int
	buf []byte
}

func newTail(n int) *tailBuffer { return &tailBuffer{n: n} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) >= t.n {
		t.buf = append(t.buf[:0], p[len(p)-t.n:]...)
		return len(p), nil
	}
	if over := len(t.buf) + len(p) - t.n; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// signalName is "SIGKILL" rather than syscall's "killed".
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return sig.String()
}
