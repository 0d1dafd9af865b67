package procnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/rs/zerolog"
)

// Process is a child OS process hosting an actor, seen from its parent: the
// process actor. Spawn returns it once the child runs; Props makes one
// without waiting (Node.Process finds it by PID).
//
// A process actor keeps protoactor's actor semantics: PID() is an ordinary
// protoactor PID, a child of its spawner in protoactor's supervision tree,
// and the spawner's supervisor strategy decides what a failure means.
//
//   - A panic of the child's root actor is an actor failure: the child
//     reports it, the spawner's strategy decides, and the child carries the
//     directive out with protoactor's own machinery (Restart: a new actor
//     instance with the same mailbox, the stash replayed; Resume; Stop: the
//     root actor stops and the child exits 0). Only the failing message is
//     lost. WithPanicExits makes a panic end the process instead.
//   - A death of the process (exit, signal, segfault in cgo code, a lost
//     stream) is a failure too, reported with an *ExitError. A Restart
//     starts the next incarnation at the same address (no sooner than a
//     backoff floor after the crash, WithRestartBackoff), and nothing queued
//     for the root actor is lost: the messages it had not finished are sent
//     to the next incarnation first, in order, then those sent meanwhile (at
//     least once: see WithRetainWindow). Messages to other actors of the
//     dead child die with it, as in Erlang; requests among them fail at once.
//   - Restarts are invisible: watchers of PID() see nothing of them and get
//     one Terminated when the process actor ends for good (stopped, its
//     strategy gave up, restart off), its spawner too.
//
// Unlike an exec.Cmd, a Process spans restarts. Wait may be called any
// number of times, from any goroutine; it returns when the Process has
// ended for good. Methods are safe for concurrent use. Stop, Terminate and
// Kill are idempotent and return once the Process has ended and its
// goroutines have exited.
//
// Concurrency. One supervisor goroutine (supervise) owns the process
// actor's life: it takes events one at a time and is the only one that
// changes state. The others post events to it and never block on it: per
// incarnation, a start goroutine (exec and handshake: evStarted), a reaper
// (cmd.Wait: evExited) and a stderr copier; the link's endpoint reader
// (package mailbox), which runs control (the child's reports), and
// whichever goroutine ends the link's stream, which runs linkDown;
// a goroutine per stop escalation (stopChild) and per directive sent to the
// child (tellChild); and timers (backoff, restart deadline, goodbye grace).
// Fields set when the Process is made are read-only; parent, alias and rs
// are set by adopt before the PID is handed out; id (what the child runs)
// changes only when a pooled child is taken, before it leaves the pool; the
// rest is guarded by mu; ended is closed once, by end.
type Process struct {
	// Set when the Process is made; read-only after.
	node    *Node
	cfg     config
	address string
	pid     *pa.PID // the child's root actor: what protoactor sees
	host    *pa.PID // the child's host actor, which carries out directives
	link    *actor.Link
	cookie  []byte
	relay   zerolog.Logger // where the child's records go
	// relayLimit bounds the rate of the child's records (see relayBurst).
	relayLimit relayLimiter
	control    *pa.PID // where the child sends its reports and log records (see control)
	sync       bool    // made by Spawn, which wants the first start's outcome
	pool       *Pool   // the pool that started it idle; nil for Spawn and Props

	// id is what the child runs: set when the Process is made, or when a
	// pooled child is taken (before it leaves the pool).
	id atomic.Pointer[identity]

	// Set by the spawn function before the supervisor goroutine starts;
	// read-only after.
	parent *pa.PID               // the spawner, where failures go; nil for a root context (p supervises itself)
	alias  *pa.PID               // the name reserved in the spawner's node
	rs     *pa.RestartStatistics // handed to the spawner's strategy with each failure; the strategy alone touches it

	unbind func() bool // stops WithContext's watch; nil without it (set before the supervisor starts)

	mu             sync.Mutex
	adopted        bool               // the spawner counts p.pid among its children (guarded by mu)
	endedUnadopted bool               // it ended before it was adopted: markAdopted tells the spawner (guarded by mu)
	state          procState          // guarded by mu
	events         []any              // for the supervisor goroutine (guarded by mu)
	watchers       map[pidKey]*pa.PID // guarded by mu
	cmd            *cmdHandle         // current incarnation (guarded by mu)
	incarnation    uint64             // guarded by mu
	started        bool               // first start attempted (guarded by mu)
	stopping       bool               // we are ending it: no restart (guarded by mu)
	stage          stopStage          // how hard we asked (guarded by mu)
	stopFirst      stopStage          // the stage the stop began with (guarded by mu)
	stopSince      time.Time          // when the stop began (guarded by mu)
	reason         string             // the child's exitNotice, or why we killed it (guarded by mu)
	last           *ExitStatus        // guarded by mu
	lastErr        error              // the last start failure (guarded by mu)
	failure        string             // the failure the supervisor decided about last (guarded by mu)
	failedEnd      bool               // the supervisor stopped it after a failure (guarded by mu)
	endReason      string             // why, when failedEnd (guarded by mu)
	crashed        bool               // the last incarnation died (guarded by mu)
	restarts       int                // restarts carried out, in the child or of the process (guarded by mu)
	crashes        int                // consecutive crashes, for the backoff floor (guarded by mu)
	lastCrash      time.Time          // guarded by mu
	upSince        time.Time          // guarded by mu
	token          uint64             // names the pending backoff or restart deadline (guarded by mu)
	pendingRestart bool               // a cooperative restart awaits the child's word (guarded by mu)
	pendingExit    *ExitStatus        // an exit seen while its start was still in flight (guarded by mu)
	pendingFailure *evRootFailed      // a failure of the root actor reported while its start was in flight (guarded by mu)
	restartWhenUp  bool               // a Restart came while its start was in flight (guarded by mu)
	stopAwaits     bool               // a graceful stop began while a failure awaited its directive (guarded by mu)
	taken          chan error         // a Take waits on it for the child's assigned (guarded by mu)

	wake      chan struct{} // cap 1: the supervisor goroutine's doorbell
	ended     chan struct{} // closed when the Process is over for good
	endOnce   sync.Once
	ready     chan error // the first start's outcome (cap 1)
	readyOnce sync.Once
}

// identity is what a child runs and how its records are tagged.
type identity struct {
	kind string
	name string
	args []byte         // mailbox.Marshal of WithArgs' value
	log  zerolog.Logger // relay, tagged with the child's address, kind and name
}

func (p *Process) who() *identity { return p.id.Load() }

func (p *Process) logger() *zerolog.Logger { return &p.who().log }

// setIdentity records what the child runs from now on.
func (p *Process) setIdentity(kind, name string, args []byte) {
	log := p.relay.With().Str("child", p.address)
	if kind != "" {
		log = log.Str("kind", kind)
	}
	if name != "" {
		log = log.Str("name", name)
	}
	p.id.Store(&identity{kind: kind, name: name, args: args, log: log.Logger()})
}

type pidKey struct{ addr, id string }

func keyOf(p *pa.PID) pidKey { return pidKey{p.Address, p.Id} }

// procState is where a process actor is in its life.
type procState uint8

const (
	stateStarting procState = iota // an incarnation is being started (exec, handshake)
	stateIdle                      // a pooled child is up and waits to be taken (no root actor yet)
	stateUp                        // the child runs, its root actor is healthy
	stateFailed                    // the root actor failed in the child; the supervisor decides
	stateCrashed                   // the incarnation died; the supervisor decides
	stateBackoff                   // a restart waits for the backoff floor
	stateStopping                  // ending: the child is being stopped
	stateEnded                     // over for good
)

var stateNames = [...]string{"starting", "idle", "up", "failed", "crashed", "restarting", "stopping", "ended"}

func (s procState) String() string { return stateNames[s] }

// stopStage is where the stop escalation begins: each stage waits for its
// deadline before the next.
type stopStage uint8

const (
	stageGraceful stopStage = iota // poison the root actor (Stop): it finishes what is queued
	stageStopRoot                  // stop the root actor now (protoactor's Stop, a supervisor's Stop)
	stageTerm                      // SIGTERM (Terminate)
	stageKill                      // SIGKILL (Kill)
)

// PID is the child's root actor, as seen from the parent: an ordinary
// protoactor PID, valid across restarts. Messages to it go straight to the
// link; while the child restarts they are held (bounded).
func (p *Process) PID() *pa.PID { return p.pid }

// Address is the child node's address.
func (p *Process) Address() string { return p.address }

// Kind is the kind the child runs ("" for a pooled child not taken yet).
func (p *Process) Kind() string { return p.who().kind }

// OSPid returns the OS process id of the current incarnation, or of the
// last one while a restart is pending and after the end (0 before the first
// one started).
func (p *Process) OSPid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.pid()
}

// Signal sends sig to the current incarnation of the child, as
// os.Process.Signal does, and returns ErrNotRunning when none runs (before
// the first one started, while a restart is pending, after the end): a
// signal never reaches a process that is gone or a pid reused since. A
// signal that ends the child is a crash like any other (the spawner's
// strategy decides; by default the process actor restarts); to end it for
// good, use Stop, Terminate or Kill, which the ExitStatus then records as
// the parent's stop.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	c := p.cmd
	p.mu.Unlock()
	if c == nil || c.hasExited() {
		return ErrNotRunning
	}
	if err := c.cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return ErrNotRunning // it exited meanwhile; os.Process knows it was reaped
		}
		return fmt.Errorf("procnode: signal %v: %w", sig, err)
	}
	return nil
}

// Alive reports whether an incarnation of the child is running.
func (p *Process) Alive() bool {
	p.mu.Lock()
	c := p.cmd
	p.mu.Unlock()
	return c != nil && !c.hasExited()
}

// Done is closed when the Process has ended for good.
func (p *Process) Done() <-chan struct{} { return p.ended }

// ExitStatus returns the status of the last incarnation that exited, or nil.
func (p *Process) ExitStatus() *ExitStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		return nil
	}
	s := *p.last
	s.StderrTail = bytes.Clone(s.StderrTail) // the caller's copy, not ours
	return &s
}

// Incarnation returns the restart count of the current (or last) OS
// process: 0 for the first, 1 after one process restart... A restart of the
// root actor inside the child keeps the incarnation (see Restarts).
func (p *Process) Incarnation() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.incarnation
}

// Restarts returns how many restarts the process actor went through: of its
// root actor inside the child, and of the process. A restart of the root
// actor is counted when the child's report of it has been handled, which
// may be a moment after the restarted actor's first answers arrive.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// State returns where the process actor is in its life: "starting", "idle"
// (a pooled child waiting to be taken), "up", "failed" (its root actor
// failed; the supervisor decides), "crashed" (its process died; the
// supervisor decides), "restarting", "stopping" or "ended". A child may
// answer a moment before its state reads "up": what was sent to it while it
// started goes out as its link comes up, before its start is reported.
func (p *Process) State() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.String()
}

// Wait waits until the Process has ended for good (no restart follows). It
// returns nil after a clean end (the root actor stopped, or Stop without a
// signal), an *ExitError holding the last ExitStatus otherwise (a crash, a
// signal, a supervisor that stopped it after a failure), or ctx's error
// while it still runs. It may be called many times and concurrently.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.ended:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	st := p.ExitStatus()
	if st == nil || st.Success() {
		return nil
	}
	return &ExitError{ExitStatus: *st}
}

// Stop ends the child gracefully, like exec.Cmd's Cancel followed by its
// WaitDelay: the child's root actor is poisoned (it finishes what is queued
// for it, stops, and the child exits 0); after the graceful deadline the
// child gets SIGTERM, after the term deadline SIGKILL (WithStopTimeouts). No
// restart follows. When ctx ends first the child is killed at once. Stop
// returns when the Process has ended, with nil or ctx's error; the exit
// status is on Wait and ExitStatus.
func (p *Process) Stop(ctx context.Context) error { return p.halt(ctx, stageGraceful) }

// Terminate sends SIGTERM to the child and returns when the Process has
// ended; a child that outlives the term deadline (WithStopTimeouts) gets
// SIGKILL, and so does one still running when ctx ends. No restart follows.
// It returns nil, or ctx's error if ctx ended first.
func (p *Process) Terminate(ctx context.Context) error { return p.halt(ctx, stageTerm) }

// Kill sends SIGKILL to the child and returns when the Process has ended
// (reaped, its goroutines done, its exit status recorded). No restart
// follows. It returns nil, or ctx's error if ctx ended first.
func (p *Process) Kill(ctx context.Context) error { return p.halt(ctx, stageKill) }

// halt is Stop, Terminate and Kill. It may be called from inside the
// spawner actor: nothing it waits for needs the spawner.
func (p *Process) halt(ctx context.Context, stage stopStage) error {
	select {
	case <-p.ended:
		return nil
	default:
	}
	p.post(evHalt{stage: stage})
	if ctx.Err() == nil {
		select {
		case <-p.ended:
			return nil
		case <-ctx.Done():
		}
	}
	p.post(evHalt{stage: stageKill})
	<-p.ended
	return context.Cause(ctx)
}
