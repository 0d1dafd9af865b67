package procnode

import (
	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// boot is what a child needs to start; it travels in the environment.
type boot struct {
	Address      string
	Kind         string
	Name         string
	Cookie       []byte
	Incarnation  uint64
	Control      *pa.PID // the parent's control process for this child
	Args         []byte
	LogLevel     int8
	StartTimeout int64    // nanoseconds
	Rlimits      []rlimit // set by the child on itself, first
}

// ExitNotice is sent by a child to its parent just before it exits with a
// reason (its root actor panicked); the reason goes into ExitStatus.
type ExitNotice struct {
	Code   int
	Reason string
}

// logRecord carries one zerolog JSON record from a child to its parent, or
// (Line) one line of the child node's dead-letter printer, which the parent
// prints as its own dead letters (actor.Node.DeadLetterLine).
type logRecord struct {
	Level int8 // zerolog.Level
	JSON  []byte
	Line  bool
}

// Exited is published on the parent node's event stream when a child
// process ends for good (no restart follows).
type Exited struct {
	PID    *pa.PID // the child's root actor
	Status ExitStatus
}

func init() {
	mailbox.RegisterType("procactor.boot", &boot{})
	mailbox.RegisterType("procactor.ExitNotice", &ExitNotice{})
	mailbox.RegisterType("procactor.logRecord", &logRecord{})
}

const (
	envBoot = "PROCACTOR_BOOT"
	// envLog overrides a child's log level (debug, info, warn...).
	envLog = "PROCACTOR_LOG"

	// The child's end of the link: fd 3 reads from the parent, fd 4 writes to it.
	childReadFD  = 3
	childWriteFD = 4

	hostName = "procactor-host"
	rootName = "root"
	// RootID is the id of a child's root actor: p.PID() is {child address, RootID}.
	RootID = hostName + "/" + rootName
)

// Exit codes a child uses for failures before its root actor runs.
const (
	ExitRootFailed        = 2   // the root actor panicked
	ExitKindNotRegistered = 120 // the kind is not registered in the binary
	ExitSpawnFailed       = 121 // the kind's producer failed
	ExitBootFailed        = 122 // bad bootstrap, fds or handshake
)
