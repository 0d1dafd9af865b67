package procnode

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ExitStatus says how one incarnation of a child process ended. Its String
// says it in one line: "exit code 3: <reason>", "killed by SIGSEGV", or,
// when the parent's stop had to signal the child, "stopped by parent
// (SIGTERM after 5s)".
type ExitStatus struct {
	// Code is the exit code, or -1 when a signal ended the process.
	Code int
	// Signal is the signal that ended the process, or 0.
	Signal syscall.Signal
	// Reason is what the child reported before exiting (the panic text of its
	// root actor, "kind not registered"...), what the parent saw ("killed by
	// the parent: ..." for a child that broke the protocol), the last line of
	// the child's stderr when it said nothing, or how a supervisor ended it
	// ("stopped by its supervisor after a failure: ..."); empty after a clean
	// exit.
	Reason string
	// StderrTail is the end of what the child wrote to stderr (bounded).
	StderrTail []byte
	// Stopped is true when the parent asked the process to stop (Stop,
	// Terminate, Kill, a Stop from protoactor: its spawner stopping, its
	// supervisor's Stop directive, WithContext's context, Node.StopOnSignal,
	// Node.Close).
	Stopped bool
	// StopSignal is the last signal the parent's stop sent to the process:
	// SIGTERM or SIGKILL when the stop escalated past its deadlines (or was
	// Terminate or Kill), 0 when the process stopped when asked (or was not
	// stopped by the parent). A signal sent with Process.Signal is not one.
	StopSignal syscall.Signal
	// StopAfter is how long the stop had waited for the process when it sent
	// StopSignal: the deadlines it waited out (WithStopTimeouts), or the time
	// since the stop began when a harder stop cut it short (Kill after Stop,
	// Stop's ctx ending). 0 when StopSignal was the stop's first step
	// (Terminate, Kill).
	StopAfter time.Duration
	// Failed is true when the process actor ended because its supervisor
	// stopped it after a failure (a crash, or a panic of its root actor), or
	// because it failed with restarts off (WithRestart(false)).
	Failed bool
	// Incarnation is the restart count of the process (0 for the first).
	Incarnation uint64
	// OSPid is the operating-system process id it had.
	OSPid int
	// ProcessState is what os/exec reported when the process was reaped: on
	// it, UserTime and SystemTime are the CPU times it used, and SysUsage
	// its resource usage (on Linux a *syscall.Rusage, whose Maxrss is its
	// peak resident set in KiB). nil when no process ran (a failed exec).
	ProcessState *os.ProcessState
}

// Success reports a clean end: code 0, no signal, not Failed.
func (s *ExitStatus) Success() bool { return s.Code == 0 && s.Signal == 0 && !s.Failed }

// String says how the process ended, in one line.
func (s *ExitStatus) String() string {
	var what string
	byStop := s.Stopped && s.StopSignal != 0
	switch {
	case byStop && s.Signal == s.StopSignal:
		what = "stopped by parent (" + s.stopText() + ")"
	case s.Signal != 0:
		what = "killed by " + signalName(s.Signal)
	default:
		what = fmt.Sprintf("exit code %d", s.Code)
	}
	if s.Reason != "" {
		what += ": " + s.Reason
	}
	if byStop && s.Signal != s.StopSignal {
		what += " (stopped by parent: " + s.stopText() + ")"
	}
	return what
}

// stopText is "SIGTERM after 5s", or "SIGKILL" for a stop that began there.
func (s *ExitStatus) stopText() string {
	t := signalName(s.StopSignal)
	if s.StopAfter > 0 {
		t += " after " + s.StopAfter.String()
	}
	return t
}

// ExitError is returned by Wait when the process did not exit cleanly.
type ExitError struct {
	// ExitStatus is the status of the last incarnation.
	ExitStatus
}

// Error is "procnode: child " and the status's String.
func (e *ExitError) Error() string { return "procnode: child " + e.ExitStatus.String() }

// PanicError is the reason a spawner's decider gets for a panic of a child's
// root actor whose value could not cross the process boundary (an
// unregistered type): its text, as fmt.Sprint printed it.
type PanicError struct {
	// Text is the panic value as fmt.Sprint printed it in the child.
	Text string
	// MessageType is the Go type of the message the actor failed on.
	MessageType string
}

// Error is "procnode: child's root actor panicked: " and the text.
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
