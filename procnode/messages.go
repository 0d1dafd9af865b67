package procnode

import (
	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/names"
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
	PanicExits   bool     // a panic of the root actor ends the process (WithPanicExits)
	Pooled       bool     // a pool's child: no kind yet, it waits for an assign
	MainWithin   int64    // nanoseconds from procnode's init within which main must call Main; 0: no check
	SpinWait     int64    // nanoseconds plus one for the child's link (WithSpinWait); 0: the default
	Parent       *pa.PID  // the spawner: the root actor's ctx.Parent() (nil for a root context, as in one process)
}

// assign gives a pooled child what it runs, when it is taken from its pool
// (see Pool). An empty Kind tells an idle child to exit 0.
type assign struct {
	Kind   string
	Name   string
	Args   []byte
	Parent *pa.PID // the spawner, as in boot
}

// assigned is a pooled child's answer to assign: its root actor's Started
// returned (Err empty), or why it could not start (the child then exits).
type assigned struct {
	Err string
}

// directive is a supervisor's decision about the child's root actor, carried
// out by the child's host actor with protoactor's own machinery.
type directive struct {
	Kind directiveKind
}

type directiveKind uint8

const (
	dirRestart directiveKind = iota + 1 // a new root actor instance, same mailbox
	dirResume                           // go on with the same instance
	dirStop                             // stop the root actor now: the child exits 0
)

// rootFailed is what a child reports when its root actor fails (panics):
// the panic value, encoded when it can be, and its text. The root actor's
// mailbox stays suspended until a directive arrives.
type rootFailed struct {
	Incarnation uint64
	Reason      []byte // mailbox.Marshal of the panic value; empty when it does not encode
	Text        string // fmt.Sprint of the panic value
	MessageType string // the failing message's Go type
	Message     []byte // mailbox.Marshal of the failing message; empty when it does not encode
}

// rootRestarted is what a child reports once a restart of its root actor is
// done (its Started returned).
type rootRestarted struct {
	Incarnation uint64
}

// exitNotice is sent by a child to its parent just before it exits with a
// reason (its root actor panicked); the reason goes into ExitStatus.
type exitNotice struct {
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
	PID    *pa.PID    // the child's root actor
	Status ExitStatus // how its last incarnation ended, and why the process actor did
}

func init() {
	mailbox.RegisterType("procactor.boot", &boot{})
	mailbox.RegisterType("procactor.ExitNotice", &exitNotice{})
	mailbox.RegisterType("procactor.logRecord", &logRecord{})
	mailbox.RegisterType("procactor.directive", &directive{})
	mailbox.RegisterType("procactor.rootFailed", &rootFailed{})
	mailbox.RegisterType("procactor.rootRestarted", &rootRestarted{})
	mailbox.RegisterType("procactor.assign", &assign{})
	mailbox.RegisterType("procactor.assigned", &assigned{})
	armMainCheck() // needs the bootstrap's type
}

const (
	envBoot = "PROCACTOR_BOOT"
	// envLog overrides a child's log level (debug, info, warn...).
	envLog = "PROCACTOR_LOG"

	// The child's end of the link: fd 3 reads from the parent, fd 4 writes to it.
	childReadFD  = 3
	childWriteFD = 4

	hostName   = names.Host
	assignName = "procactor-assign" // where a pooled child takes its assign
	rootName   = "root"
	// RootID is the id of a child's root actor: p.PID() is {child address, RootID}.
	RootID = hostName + "/" + rootName
)

// Exit codes of a child, in ExitStatus.Code, for failures of procactor's
// own: before its root actor runs, or a root actor failure that ends the
// process.
const (
	// ExitRootFailed: the root actor panicked before its first Started
	// returned, or with WithPanicExits.
	ExitRootFailed = 2
	// ExitKindNotRegistered: the kind is not registered in the child's
	// binary (WithBinary); Spawn's error wraps ErrKindNotRegistered.
	ExitKindNotRegistered = 120
	// ExitSpawnFailed: the kind's producer failed or panicked.
	ExitSpawnFailed = 121
	// ExitBootFailed: a bad bootstrap, inherited fds that are not a
	// stream, a resource limit that could not be set, or a failed
	// handshake.
	ExitBootFailed = 122
	// ExitMainNotCalled: the child's main did not call Main in time (see
	// Main); Spawn's error wraps ErrMainNotCalled.
	ExitMainNotCalled = 123
)
