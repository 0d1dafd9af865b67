package procnode

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Defaults of the spawn options.
const (
	DefaultStartTimeout = 10 * time.Second       // WithStartTimeout: exec plus handshake
	DefaultStopTimeout  = 5 * time.Second        // WithStopTimeouts: from the poison to SIGTERM
	DefaultTermTimeout  = 2 * time.Second        // WithStopTimeouts: from SIGTERM to SIGKILL
	DefaultStderrTail   = 4 << 10                // WithStderrTail: bytes of stderr kept
	DefaultRetainWindow = 64 << 20               // WithRetainWindow: bytes kept for redelivery
	DefaultBackoffMin   = 10 * time.Millisecond  // WithRestartBackoff: floor after a first crash
	DefaultBackoffMax   = 500 * time.Millisecond // WithRestartBackoff: most the floor grows to
)

// Option configures Spawn. Options only record values.
type Option func(*config)

type config struct {
	name         string
	args         any
	hasArgs      bool
	env          []string
	environ      []string // WithEnviron: the child's whole environment
	hasEnviron   bool
	stdin        func(incarnation uint64) io.Reader // nil: /dev/null
	life         context.Context                    // WithContext; nil: none
	hasLife      bool
	gomaxprocs   int   // 0: Go's default
	spinWait     int64 // WithSpinWait's nanoseconds plus one; 0: not given
	dir          string
	stdout       io.Writer
	stderr       io.Writer
	sysProcAttr  *syscall.SysProcAttr
	binary       string
	binaryArgs   []string
	startTimeout time.Duration
	stopTimeout  time.Duration
	termTimeout  time.Duration
	stderrTail   int
	restart      bool
	logger       *zerolog.Logger
	rlimits      []rlimit
	retainWindow int
	backoffMin   time.Duration
	backoffMax   time.Duration
	panicExits   bool
	untrusted    int // PIDs an untrusted child may be given; 0: trusted
}

// rlimit is one resource limit the child sets on itself (WithRlimit).
type rlimit struct {
	Resource int
	Cur, Max uint64
}

func defaultConfig() config {
	return config{
		stdout:       os.Stdout,
		stderr:       os.Stderr,
		startTimeout: DefaultStartTimeout,
		stopTimeout:  DefaultStopTimeout,
		termTimeout:  DefaultTermTimeout,
		stderrTail:   DefaultStderrTail,
		restart:      true,
		retainWindow: DefaultRetainWindow,
		backoffMin:   DefaultBackoffMin,
		backoffMax:   DefaultBackoffMax,
	}
}

func (c *config) validate() error {
	switch {
	case c.hasLife && c.life == nil:
		return fmt.Errorf("%w: WithContext(nil)", ErrInvalidOption)
	case c.spinWait < 0 || c.spinWait > int64(time.Second)+1:
		return fmt.Errorf("%w: WithSpinWait(%v) must be in [0, 1s]", ErrInvalidOption, time.Duration(c.spinWait-1))
	case c.gomaxprocs < 0:
		return fmt.Errorf("%w: WithGOMAXPROCS(%d) must not be negative (0: Go's default)", ErrInvalidOption, c.gomaxprocs)
	case c.startTimeout <= 0:
		return fmt.Errorf("%w: WithStartTimeout(%v) must be positive", ErrInvalidOption, c.startTimeout)
	case c.stopTimeout < 0 || c.termTimeout < 0:
		return fmt.Errorf("%w: WithStopTimeouts(%v, %v) must not be negative", ErrInvalidOption, c.stopTimeout, c.termTimeout)
	case c.stderrTail < 0:
		return fmt.Errorf("%w: WithStderrTail(%d) must not be negative", ErrInvalidOption, c.stderrTail)
	case c.untrusted < 0:
		return fmt.Errorf("%w: WithUntrusted(%d) must not be negative", ErrInvalidOption, c.untrusted)
	case c.retainWindow < 1:
		return fmt.Errorf("%w: WithRetainWindow(%d) must be positive", ErrInvalidOption, c.retainWindow)
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("%w: WithRestartBackoff(%v, %v) needs 0 < min <= max", ErrInvalidOption, c.backoffMin, c.backoffMax)
	}
	return nil
}

// WithName names the process actor under its spawner, as SpawnNamed does
// (default: a generated name): the name is taken in the spawner's node
// (ErrNameExists when it is taken) and a PID with it reaches the process
// actor too. It also tags the child's log records.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithArgs passes a value to the kind's producer (Args.Value in the child):
// a registered type, a basic value, or a PID of a parent actor.
func WithArgs(v any) Option { return func(c *config) { c.args, c.hasArgs = v, true } }

// WithEnv adds "KEY=value" entries to the child's environment, after the
// parent's (default) or after the one given with WithEnviron; as with
// exec.Cmd, a later entry for a key wins.
func WithEnv(kv ...string) Option { return func(c *config) { c.env = append(c.env, kv...) } }

// WithEnviron gives the child exactly the environment env ("KEY=value"
// entries), as exec.Cmd's Env does, instead of the parent's; nil or empty
// means an empty environment. procactor adds only its own variables: the
// bootstrap (which Main unsets before the kind's code runs), PROCACTOR_LOG
// when the parent has it and env does not, and GOMAXPROCS when
// WithGOMAXPROCS is given. WithEnv entries follow env.
func WithEnviron(env []string) Option {
	return func(c *config) { c.environ, c.hasEnviron = append([]string(nil), env...), true }
}

// WithStdin makes r the first incarnation's stdin; later incarnations (after
// a restart) read /dev/null, since a reader cannot be read again from its
// start. An *os.File is passed to the child as it is; any other reader is
// copied into a pipe by a goroutine, as exec.Cmd does. Default: /dev/null.
// For a reader per incarnation, use WithStdinFunc.
func WithStdin(r io.Reader) Option {
	return func(c *config) {
		c.stdin = func(inc uint64) io.Reader {
			if inc == 0 {
				return r
			}
			return nil
		}
	}
}

// WithStdinFunc calls f before each incarnation starts (0 for the first,
// then 1, 2... after restarts, as Process.Incarnation counts) and makes what
// it returns that incarnation's stdin; nil means /dev/null. To give every
// incarnation the parent's terminal: func(uint64) io.Reader { return
// os.Stdin }. Default: /dev/null.
func WithStdinFunc(f func(incarnation uint64) io.Reader) Option {
	return func(c *config) { c.stdin = f }
}

// WithContext binds the process actor's life to ctx, as exec.CommandContext
// binds a command's: when ctx is done, the process actor is stopped as by
// Stop (poison, then SIGTERM, then SIGKILL after the WithStopTimeouts
// deadlines), with no restart, and its ExitStatus says Stopped. A ctx that
// is done already fails Spawn with its error. Default: none; the process
// actor lives until it is stopped or its supervisor gives up. Unlike this
// one, the ctx given to Spawn bounds only the start.
func WithContext(ctx context.Context) Option {
	return func(c *config) { c.life, c.hasLife = ctx, true }
}

// WithGOMAXPROCS sets the child's GOMAXPROCS (default, or 0: Go's, the
// number of CPUs). A child that serves requests rather than computes in parallel
// answers faster with 1: each hand-off between its reader and its actors
// then stays on one thread instead of waking another (on the 2-core VMs
// this project is measured on, a cross-thread wake-up costs tens of µs; see
// the procactor_1p row of the bench).
func WithGOMAXPROCS(n int) Option { return func(c *config) { c.gomaxprocs = n } }

// WithSpinWait sets how long the child's side of its link polls the pipe
// for an answer before it sleeps (mailbox.WithSpinWait: after its actor
// sent something, the next request is likely near); 0 turns polling off.
// Default mailbox.DefaultSpinWait. The parent's side is its node's:
// actor.WithEndpointOptions(mailbox.WithSpinWait(d)) on NewNode.
func WithSpinWait(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.spinWait = -1
			return
		}
		c.spinWait = int64(d) + 1
	}
}

// WithDir sets the child's working directory (default: the parent's). It is
// checked before each start: a directory that does not exist (or is not a
// directory) fails the start with ErrStartFailed naming it, wrapping the
// *fs.PathError.
func WithDir(dir string) Option { return func(c *config) { c.dir = dir } }

// WithStdout sets where the child's stdout goes (default: inherited, the
// parent's os.Stdout). nil discards it.
func WithStdout(w io.Writer) Option { return func(c *config) { c.stdout = w } }

// WithStderr sets where the child's stderr is copied (default: the parent's
// os.Stderr). A bounded tail is kept for the exit status either way. nil
// discards it.
func WithStderr(w io.Writer) Option { return func(c *config) { c.stderr = w } }

// WithStderrTail sets how many bytes of stderr the exit status keeps
// (default 4 KiB).
func WithStderrTail(n int) Option { return func(c *config) { c.stderrTail = n } }

// WithSysProcAttr sets attributes of the child (credentials, namespaces,
// rlimits via a wrapper...). Ours are merged in: Setpgid (so a terminal's
// Ctrl-C reaches the parent first) and, on Linux, Pdeathsig=SIGKILL, unless
// set here.
func WithSysProcAttr(a *syscall.SysProcAttr) Option { return func(c *config) { c.sysProcAttr = a } }

// WithRlimit sets a resource limit of the child (syscall.RLIMIT_NOFILE,
// RLIMIT_AS...; see setrlimit(2)): Main applies it in the child before the
// kind's producer runs, and the child's own children inherit it.
// SysProcAttr has no field for it. Default: the parent's limits. A limit
// the child may not set fails the start with ErrStartFailed.
func WithRlimit(resource int, lim syscall.Rlimit) Option {
	return func(c *config) {
		c.rlimits = append(c.rlimits, rlimit{Resource: resource, Cur: uint64(lim.Cur), Max: uint64(lim.Max)})
	}
}

// WithBinary runs another executable (which must call Main first) instead of
// re-executing this one, with extra command-line arguments. The kind is then
// checked by the child, which exits with a code the parent maps to
// ErrKindNotRegistered.
func WithBinary(path string, args ...string) Option {
	return func(c *config) { c.binary, c.binaryArgs = path, args }
}

// WithStartTimeout bounds exec plus handshake (default 10s).
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// WithStopTimeouts sets Stop's deadlines: how long after the poison the
// child may take before SIGTERM (default 5s), and after SIGTERM before
// SIGKILL (default 2s).
func WithStopTimeouts(graceful, term time.Duration) Option {
	return func(c *config) { c.stopTimeout, c.termTimeout = graceful, term }
}

// WithRestart says whether a failure (a crash of the process, a panic of its
// root actor) is escalated to the spawner's supervisor strategy (true, the
// default: protoactor's default strategy restarts the process actor,
// keeping its address and PIDs) or simply ends the Process (false).
func WithRestart(on bool) Option { return func(c *config) { c.restart = on } }

// WithRetainWindow bounds the bytes (encoded) of messages to the child's
// root actor that the parent keeps until the child acknowledges that its
// root actor has finished them, to send them again to the next incarnation
// if the process dies. A full window makes senders wait like a full link
// (actor.WithSendTimeout), then the message is a dead letter
// (actor.ErrRetainFull). A message that finds the window not full is kept
// whatever its size (the window then holds one message past its bound, one
// per sender that found it not full at once): a message larger than the
// window is redelivered like the others. Default
// 64 MiB.
//
// Redelivery is at least once: a message the root actor finished just
// before its process died, whose acknowledgement had not left the child, is
// delivered again. A message counts as finished when the root actor's
// Receive returns for it (a stashed message too) or fails on it.
func WithRetainWindow(n int) Option { return func(c *config) { c.retainWindow = n } }

// WithRestartBackoff sets the floor between a crash of the process and the
// start of the next incarnation: min after the first crash, doubling with
// each crash that follows a short life, at most max. It is a floor, not a
// delay added to the strategy's (ExponentialBackoff's own delay counts
// towards it); a restart of the root actor inside the child has none.
// Defaults 10ms and 500ms: protoactor's default intensity limit (10
// failures in 10s) still ends a crash loop.
func WithRestartBackoff(min, max time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = min, max }
}

// WithUntrusted makes the child untrusted (it parses untrusted input, it
// runs sandboxed): it may send user messages only to PIDs that were sent to
// it (its WithArgs, the senders of and PIDs inside the messages it
// received; at most limit of them are remembered, the oldest forgotten
// first) and to its own subtree, and it may not stop or poison anything
// outside its subtree (actor.Link.SetUntrusted). A refused message is a
// dead letter (actor.ErrRefused) with a rate-limited log line. The new
// message types it names come out of a share of the parent's table common
// to all untrusted children (mailbox.WithUntrustedPeer). Default:
// trusted, under protoactor's rule that a PID's holder may send to it,
// poison and stop it; procactor's own machinery is out of every child's
// reach either way.
func WithUntrusted(limit int) Option { return func(c *config) { c.untrusted = limit } }

// WithPanicExits makes a panic of the child's root actor end the child
// process (exit code ExitRootFailed, the panic text as the reason) instead
// of being an actor failure handled inside the child: a restart then starts
// a new process, which isolates whatever state the panic left behind, at
// the cost of the root actor's mailbox order (what it had not finished is
// redelivered; its stash and other actors of the child are lost: the
// actors it spawned are stopped, and see Stopping, as the process exits).
// Default off.
func WithPanicExits(on bool) Option { return func(c *config) { c.panicExits = on } }

// WithLogger sets the logger that receives the child's log records, at
// their own level and tagged with the child's address, kind, name and OS
// pid; the child logs at this logger's level. Default: the node's logger
// (zerolog.Nop unless actor.WithLogger was given to NewNode: quiet, but
// for dead letters, which the parent prints; see actor.WithDeadLetterLog). The
// environment variable PROCACTOR_LOG (debug, info...) overrides the child's
// level, and sends the records to stderr when the logger is disabled. At
// most 1000 records a second of one child are relayed; a warn record says
// how many were not.
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.logger = &l } }
