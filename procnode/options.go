package procnode

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Defaults of the spawn options.
const (
	DefaultStartTimeout = 10 * time.Second
	DefaultStopTimeout  = 5 * time.Second
	DefaultTermTimeout  = 2 * time.Second
	DefaultStderrTail   = 4 << 10
)

// Option configures Spawn. Options only record values.
type Option func(*config)

type config struct {
	name         string
	args         any
	hasArgs      bool
	env          []string
	gomaxprocs   int // 0: Go's default
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
	}
}

func (c *config) validate() error {
	switch {
	case c.gomaxprocs < 0:
		return fmt.Errorf("%w: WithGOMAXPROCS(%d) must be at least 1", ErrInvalidOption, c.gomaxprocs)
	case c.startTimeout <= 0:
		return fmt.Errorf("%w: WithStartTimeout(%v) must be positive", ErrInvalidOption, c.startTimeout)
	case c.stopTimeout < 0 || c.termTimeout < 0:
		return fmt.Errorf("%w: WithStopTimeouts(%v, %v) must not be negative", ErrInvalidOption, c.stopTimeout, c.termTimeout)
	case c.stderrTail < 0:
		return fmt.Errorf("%w: WithStderrTail(%d) must not be negative", ErrInvalidOption, c.stderrTail)
	}
	return nil
}

// WithName names the keeper actor under the spawner (default: generated).
// It also tags the child's log records.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithArgs passes a value to the kind's producer (Args.Value in the child):
// a registered type, a basic value, or a PID of a parent actor.
func WithArgs(v any) Option { return func(c *config) { c.args, c.hasArgs = v, true } }

// WithEnv adds "KEY=value" entries to the child's environment (default: the
// parent's environment).
func WithEnv(kv ...string) Option { return func(c *config) { c.env = append(c.env, kv...) } }

// WithGOMAXPROCS sets the child's GOMAXPROCS (default: Go's, the number of
// CPUs). A child that serves requests rather than computes in parallel
// answers faster with 1: each hand-off between its reader and its actors
// then stays on one thread instead of waking another (on the 2-core VMs
// this project is measured on, a cross-thread wake-up costs tens of µs; see
// the procactor_1p row of the bench).
func WithGOMAXPROCS(n int) Option { return func(c *config) { c.gomaxprocs = n } }

// WithDir sets the child's working directory (default: the parent's).
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

// WithRestart says whether a crash is escalated to the spawner's supervisor
// strategy (true, the default: protoactor's default strategy restarts the
// child, keeping its address and PIDs) or simply ends the Process (false).
func WithRestart(on bool) Option { return func(c *config) { c.restart = on } }

// WithLogger sets the logger that receives the child's log records, at
// their own level and tagged with the child's address, kind, name and OS
// pid; the child logs at this logger's level. Default: the node's logger
// (zerolog.Nop unless actor.WithLogger was given to NewNode: quiet, but
// for dead letters, which the parent prints; see actor.WithDeadLetterLog). The
// environment variable PROCACTOR_LOG (debug, info...) overrides the child's
// level, and sends the records to stderr when the logger is disabled.
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.logger = &l } }
