package procnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// Process is a child OS process hosting an actor, seen from its parent: the
// process actor. Spawn returns it once the child runs; there is no Start.
//
// Unlike an exec.Cmd, a Process spans restarts: when the child crashes and
// the spawner's supervisor strategy restarts it, a new OS process (the next
// incarnation) takes the same address, so PID() stays valid and messages sent
// meanwhile are held (bounded). Wait may be called any number of times, from
// any goroutine; it returns when the Process has ended for good.
//
// A keeper actor, spawned under the spawner, owns the OS process: it starts
// it, watches it, escalates a stop and asks the supervisor what a crash
// means. Methods are safe for concurrent use. Stop, Terminate and Kill are
// idempotent and return once the Process has ended and its goroutines have
// exited.
type Process struct {
	node    *Node
	kind    string
	cfg     config
	address string
	pid     *pa.PID
	link    *actor.Link
	args    []byte
	cookie  []byte
	log     zerolog.Logger // relay, tagged with the child's address, kind and name
	relay   zerolog.Logger // where the child's records go

	control *pa.PID // where the child sends ExitNotice and log records (see control)

	mu          sync.Mutex
	keeper      *pa.PID       // guarded by mu
	cmd         *exec.Cmd     // current incarnation (guarded by mu)
	exited      chan struct{} // closed when the current incarnation exits (guarded by mu)
	reaped      chan struct{} // closed when its reaper and stderr copier are done (guarded by mu)
	down        chan struct{} // closed when its stream is lost, or was never up (guarded by mu)
	incarnation uint64        // guarded by mu
	started     bool          // first start attempted (guarded by mu)
	stopping    bool          // we asked it to end: no restart (guarded by mu)
	stage       stopStage     // how hard we asked (guarded by mu)
	reason      string        // the child's ExitNotice, or why we killed it (guarded by mu)
	tail        *tailBuffer   // current incarnation's stderr tail (guarded by mu)
	last        *ExitStatus   // guarded by mu
	ignoreExit  uint64        // incarnation+1 whose exit start() already handled (guarded by mu)

	ended      chan struct{} // closed when the Process is over for good
	endOnce    sync.Once
	over       atomic.Bool // end has begun: the keeper no longer needs childExited
	ready      chan error  // the first start's outcome
	stopKeeper sync.Once
}

// stopStage is where the stop escalation begins: each stage waits for its
// deadline before the next.
type stopStage uint8

const (
	stageGraceful stopStage = iota // poison the root actor (Stop, or the keeper stopping)
	stageTerm                      // SIGTERM (Terminate)
	stageKill                      // SIGKILL (Kill)
)

// Spawn starts a child process running the registered kind as its root
// actor, and returns once the child is up (handshake done) or failed.
// spawner is a root context or an actor's context of a node (NewNode, or the
// node Main built in a child); the keeper actor is spawned under it, so its
// supervisor strategy decides what a crash means.
//
// Errors: ErrMainNotCalled, ErrNoNode, ErrKindNotRegistered (checked before
// exec, or reported by another binary), ErrInvalidOption, ErrNameExists,
// ErrStartFailed (wrapping the cause and, when the child exited, its
// *ExitError), ctx's error (the child, if any, is killed).
func Spawn(ctx context.Context, spawner pa.SpawnerContext, kind string, opts ...Option) (*Process, error) {
	if _, child := os.LookupEnv(envBoot); child {
		return nil, ErrMainNotCalled
	}
	if err := ctx.Err(); err != nil { // do not fork a child only to kill it
		return nil, context.Cause(ctx)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := nodeOf(spawner.ActorSystem())
	if n == nil {
		return nil, ErrNoNode
	}
	if cfg.binary == "" {
		if _, ok := actor.LookupKind(kind); !ok {
			return nil, fmt.Errorf("%w: %q", ErrKindNotRegistered, kind)
		}
	}
	p := &Process{
		node:   n,
		kind:   kind,
		cfg:    cfg,
		cookie: mailbox.NewCookie(),
		ended:  make(chan struct{}),
		ready:  make(chan error, 1),
		exited: closedChan(), // no incarnation runs yet
		reaped: closedChan(),
	}
	if cfg.hasArgs {
		b, err := mailbox.Marshal(cfg.args)
		if err != nil {
			return nil, fmt.Errorf("%w: WithArgs: %w", ErrInvalidOption, err)
		}
		p.args = b
	}
	segment := strconv.FormatUint(n.seq.Add(1), 10)
	link, err := n.ChildLink(segment)
	if err != nil {
		return nil, err
	}
	link.SetReconnect(cfg.restart)
	p.link = link
	p.address = link.Address()
	p.pid = pa.NewPID(p.address, RootID)
	p.relay = relayLogger(n.Logger(), cfg.logger)
	p.log = p.relay.With().Str("child", p.address).Str("kind", kind).Logger()
	if cfg.name != "" {
		p.log = p.log.With().Str("name", cfg.name).Logger()
	}
	p.control, _ = n.System().ProcessRegistry.Add(control{p}, controlPrefix+segment)
	link.OnDown(p.linkDown)

	n.add(p) // before the keeper runs: it removes p when the start fails
	props := pa.PropsFromProducer(func() pa.Actor { return &keeper{p: p} })
	var keeperPID *pa.PID
	if cfg.name != "" {
		keeperPID, err = spawner.SpawnNamed(props, cfg.name)
		if err != nil {
			n.remove(p)
			link.Close(context.Background())
			n.System().ProcessRegistry.Remove(p.control)
			if errors.Is(err, pa.ErrNameExists) {
				return nil, fmt.Errorf("%w: WithName(%q): %w", ErrNameExists, cfg.name, err)
			}
			return nil, err
		}
	} else {
		keeperPID = spawner.Spawn(props)
	}
	p.mu.Lock()
	p.keeper = keeperPID
	p.mu.Unlock()

	select {
	case err := <-p.ready:
		if err != nil {
			<-p.ended
			return nil, err
		}
		return p, nil
	case <-ctx.Done():
		_ = p.Kill(context.Background()) // also when it came up meanwhile; returns once it has ended
		return nil, context.Cause(ctx)
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// PID is the child's root actor, as seen from the parent. Messages to it go
// straight to the link; while the child restarts they are held (bounded).
func (p *Process) PID() *pa.PID { return p.pid }

// Address is the child node's address.
func (p *Process) Address() string { return p.address }

// Keeper is the PID of the keeper actor under the spawner.
func (p *Process) Keeper() *pa.PID {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keeper
}

// OSPid returns the OS process id of the current incarnation (0 if none).
func (p *Process) OSPid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Alive reports whether an incarnation of the child is running.
func (p *Process) Alive() bool {
	p.mu.Lock()
	ch := p.exited
	p.mu.Unlock()
	select {
	case <-ch:
		return false
	default:
		return true
	}
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

// Incarnation returns the restart count of the current (or last)
// incarnation: 0 for the first OS process, 1 after one restart...
func (p *Process) Incarnation() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.incarnation
}

// Wait waits until the Process has ended for good (no restart follows). It
// returns nil after a clean exit (code 0, no signal), an *ExitError holding
// the last incarnation's ExitStatus otherwise (also after Stop, when the
// child needed a signal), or ctx's error while the child still runs. It may
// be called many times and concurrently.
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
// WaitDelay: the child's root actor is poisoned (it stops, and the child
// exits 0); after the graceful deadline the child gets SIGTERM, after the
// term deadline SIGKILL (WithStopTimeouts). No restart follows. When ctx
// ends first the child is killed at once. Stop returns when the Process has
// ended, with nil or ctx's error; the exit status is on Wait and ExitStatus.
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

// halt is Stop, Terminate and Kill: mark the Process as ending (no restart),
// run the escalation on the current incarnation from stage on, stop the
// keeper and wait for the end. The keeper is stopped with a system message,
// which it handles even while its supervisor is deciding about a crash, so
// halt may be called from inside the spawner actor.
func (p *Process) halt(ctx context.Context, stage stopStage) error {
	select {
	case <-p.ended:
		return nil
	default:
	}
	p.mu.Lock()
	p.stopping = true
	p.stage = max(p.stage, stage)
	p.mu.Unlock()
	p.stopChild(ctx, stage)
	p.stopKeeper.Do(func() {
		p.mu.Lock()
		keeper := p.keeper
		p.mu.Unlock()
		if keeper != nil {
			p.node.Root().Stop(keeper)
		}
	})
	if ctx.Err() == nil {
		select {
		case <-p.ended:
			return nil
		case <-ctx.Done():
		}
	}
	// ctx ended before the Process did.
	p.stopChild(context.Background(), stageKill)
	<-p.ended
	return context.Cause(ctx)
}

// signal sends sig to the current incarnation, if it runs.
func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig) // os.ErrProcessDone: it has exited already
	}
}

// stopChild runs the stop escalation on the current incarnation, from stage
// on, and returns when it has exited. When ctx ends, it skips to SIGKILL.
func (p *Process) stopChild(ctx context.Context, stage stopStage) {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-exited:
			return true
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	select {
	case <-exited:
		return
	default:
	}
	if stage <= stageGraceful && p.link.IsUp() && ctx.Err() == nil {
		p.node.Root().Poison(p.pid)
		if wait(p.cfg.stopTimeout) {
			return
		}
	}
	if stage <= stageTerm && ctx.Err() == nil {
		p.signal(syscall.SIGTERM)
		if wait(p.cfg.termTimeout) {
			return
		}
	}
	p.signal(syscall.SIGKILL)
	<-exited
}

// linkDown is called when the stream of an incarnation ends. A stream that
// ended badly (garbage, a huge frame) means the child cannot be trusted:
// kill it. A stream that simply ended (EOF) belongs to a child on its way
// out: give it the graceful deadline, then kill it. Either is a crash, not
// a stop: the supervisor decides about a restart.
func (p *Process) linkDown(err error) {
	p.mu.Lock()
	if p.down != nil {
		close(p.down)
		p.down = nil
	}
	cmd, exited := p.cmd, p.exited
	if err != nil && (errors.Is(err, mailbox.ErrProtocol) || errors.Is(err, mailbox.ErrFrameTooLarge)) && p.reason == "" {
		p.reason = "killed by the parent: " + err.Error()
	}
	p.mu.Unlock()
	if err == nil || cmd == nil || cmd.Process == nil {
		return
	}
	// A frame cut short by the child's death is a child on its way out, not a
	// child breaking the protocol.
	if (errors.Is(err, mailbox.ErrProtocol) && !errors.Is(err, io.ErrUnexpectedEOF)) || errors.Is(err, mailbox.ErrFrameTooLarge) {
		p.log.Error().Err(err).Msg("child broke the protocol; killing it")
		_ = cmd.Process.Kill()
		return
	}
	time.AfterFunc(p.cfg.stopTimeout, func() {
		select {
		case <-exited:
		default:
			p.log.Warn().Err(err).Msg("child lost its link and did not exit; killing it")
			_ = cmd.Process.Kill()
		}
	})
}

// start runs one incarnation: exec, handshake. On failure the child is
// killed and reaped, and every fd closed. It refuses to start a child once
// the Process is stopping.
func (p *Process) start() (err error) {
	defer func() { // every start failure is testable with errors.Is(err, ErrStartFailed)
		if err != nil && !errors.Is(err, ErrStartFailed) && !errors.Is(err, ErrKindNotRegistered) {
			err = fmt.Errorf("%w: %w", ErrStartFailed, err)
		}
	}()
	p.mu.Lock()
	if p.started {
		p.incarnation++
	}
	p.started = true
	inc := p.incarnation
	stopping := p.stopping
	p.reason = ""
	p.mu.Unlock()
	if stopping {
		return fmt.Errorf("%w: stopped before it started", ErrStartFailed)
	}

	bootStr, err := encodeBoot(&boot{
		Address:      p.address,
		Kind:         p.kind,
		Name:         p.cfg.name,
		Cookie:       p.cookie,
		Incarnation:  inc,
		Control:      p.control,
		Args:         p.args,
		LogLevel:     int8(childLogLevel(p.log)),
		StartTimeout: int64(p.cfg.startTimeout),
		Rlimits:      p.cfg.rlimits,
	})
	if err != nil {
		return err
	}
	bin := p.cfg.binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	// Two pipes, one per direction; the child gets its ends as fds 3 and 4.
	childR, parentW, err := os.Pipe()
	if err != nil {
		return err
	}
	parentR, childW, err := os.Pipe()
	if err != nil {
		childR.Close()
		parentW.Close()
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		childR.Close()
		parentW.Close()
		parentR.Close()
		childW.Close()
		return err
	}
	_ = mailbox.SetPipeSize(parentW, 1<<20)
	_ = mailbox.SetPipeSize(childW, 1<<20)

	cmd := exec.Command(bin, p.cfg.binaryArgs...)
	cmd.ExtraFiles = []*os.File{childR, childW}
	cmd.Env = append(childEnv(), p.cfg.env...)
	if p.cfg.gomaxprocs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(p.cfg.gomaxprocs))
	}
	cmd.Env = append(cmd.Env, envBoot+"="+bootStr)
	cmd.Dir = p.cfg.dir
	cmd.Stdout = p.cfg.stdout
	cmd.Stderr = errW
	cmd.SysProcAttr = mergeSysProcAttr(p.cfg.sysProcAttr)
	// A grandchild may hold a stdout pipe (WithStdout of a non-file) open
	// after the child exits: Wait must not wait for it.
	cmd.WaitDelay = time.Second

	startErr := forkStart(cmd)
	childR.Close()
	childW.Close()
	errW.Close()
	if startErr != nil {
		parentR.Close()
		parentW.Close()
		errR.Close()
		return fmt.Errorf("%w: exec %s: %w", ErrStartFailed, bin, startErr)
	}

	tail := newTail(p.cfg.stderrTail)
	exited, reaped, down := make(chan struct{}), make(chan struct{}), make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.reaped, p.down, p.tail = cmd, exited, reaped, down, tail
	stopping = p.stopping // halt either sees this incarnation or we see stopping
	p.mu.Unlock()

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		var w io.Writer = tail
		if p.cfg.stderr != nil {
			w = io.MultiWriter(p.cfg.stderr, tail)
		}
		_, _ = io.Copy(w, errR)
	}()
	go p.reap(cmd, inc, exited, reaped, down, errR, copied)

	var cerr error
	if stopping {
		parentR.Close()
		parentW.Close()
		cerr = errors.New("stopped before the handshake")
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.startTimeout)
		_, cerr = p.link.Connect(ctx, mailbox.NewPipeConn(parentR, parentW), p.cookie, inc)
		cancel()
	}
	if cerr != nil {
		p.mu.Lock()
		p.ignoreExit = inc + 1
		if p.down == down { // the link never came up: no loss will close it
			close(down)
			p.down = nil
		}
		p.mu.Unlock()
		if errors.Is(cerr, io.EOF) || errors.Is(cerr, io.ErrUnexpectedEOF) {
			// The child closed its end: it is exiting with a reason (an
			// unknown kind, a failed producer). Let it, briefly, so that its
			// exit code says why.
			t := time.NewTimer(time.Second)
			select {
			case <-exited:
			case <-t.C:
			}
			t.Stop()
		}
		_ = cmd.Process.Kill()
		<-exited
		st := p.ExitStatus()
		if st != nil && !st.Success() && st.Signal != syscall.SIGKILL {
			ee := &ExitError{ExitStatus: *st}
			if st.Code == ExitKindNotRegistered {
				return fmt.Errorf("%w: %q in %s: %w", ErrKindNotRegistered, p.kind, bin, ee)
			}
			return fmt.Errorf("%w: %w: %w", ErrStartFailed, cerr, ee)
		}
		return fmt.Errorf("%w: %w", ErrStartFailed, cerr)
	}
	p.log.Debug().Int("os_pid", cmd.Process.Pid).Uint64("incarnation", inc).Msg("child up")
	return nil
}

// reap waits for one incarnation to exit, records its status and tells the
// keeper. The status waits for the stderr copy (the tail) and for the loss
// of the stream: the reader has then handed over the child's last words (an
// ExitNotice), so the reason is known.
func (p *Process) reap(cmd *exec.Cmd, inc uint64, exited, reaped, down chan struct{}, errR *os.File, copied chan struct{}) {
	defer close(reaped)
	werr := cmd.Wait()
	t := time.NewTimer(time.Second)
	select { // the stderr copy ends at EOF, unless a grandchild holds the pipe
	case <-copied:
	case <-t.C:
	}
	errR.Close() // ends the copy if a grandchild held the pipe
	<-copied
	t.Reset(2 * time.Second)
	select { // bounded: a reader stuck in a slow log writer must not stall the exit
	case <-down:
	case <-t.C:
	}
	t.Stop()
	st := &ExitStatus{Incarnation: inc, OSPid: cmd.Process.Pid}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Code, st.Signal = -1, ws.Signal()
	} else {
		st.Code = cmd.ProcessState.ExitCode()
	}
	p.mu.Lock()
	st.Reason = p.reason
	st.Stopped = p.stopping
	st.StderrTail = p.tail.Bytes()
	if st.Reason == "" && werr != nil && st.Code != 0 && st.Signal == 0 {
		st.Reason = lastLine(st.StderrTail)
	}
	p.last = st
	keeper := p.keeper
	p.mu.Unlock()
	close(exited)
	if !p.over.Load() && keeper != nil {
		p.node.Root().Send(keeper, &childExited{status: *st})
	}
}

// lastLine is the reason read from a child's stderr tail: the Go runtime's
// own line when it crashed ("panic: ...", "fatal error: ..."; the goroutine
// trace printed after it does not say why), else the last line.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return l
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// childEnv is the parent's environment without procactor's bootstrap.
func childEnv() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, envBoot+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// end makes the Process over for good, once the last incarnation has
// exited: its link is closed, its goroutines have ended, Exited is
// published, Done is closed.
func (p *Process) end() {
	p.endOnce.Do(func() {
		p.over.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.termTimeout+time.Second)
		p.link.Close(ctx)
		cancel()
		p.mu.Lock()
		reaped := p.reaped
		p.mu.Unlock()
		<-reaped
		p.node.System().ProcessRegistry.Remove(p.control)
		p.node.remove(p)
		if st := p.ExitStatus(); st != nil {
			p.node.System().EventStream.Publish(&Exited{PID: p.pid, Status: *st})
			p.log.Debug().Stringer("status", st).Msg("child ended")
		}
		close(p.ended)
	})
}

func (p *Process) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// childExited tells the keeper that an incarnation has exited.
type childExited struct{ status ExitStatus }

// resumed is what a keeper that escalated a crash sends itself first: if the
// supervisor resumes it instead of restarting it, no child runs any more and
// the Process is over.
type resumed struct{ incarnation uint64 }

// keeper is the parent-side actor that owns the OS process.
type keeper struct{ p *Process }

func (k *keeper) Receive(ctx pa.Context) {
	p := k.p
	switch m := ctx.Message().(type) {
	case *pa.Started:
		p.mu.Lock()
		first := !p.started
		// Spawn stores the keeper's PID only after spawner.Spawn returns, which
		// may be after this runs: start (reap) needs it now.
		p.keeper = ctx.Self()
		p.mu.Unlock()
		if !first && p.Alive() && p.link.IsUp() {
			// The keeper itself was restarted (an AllForOne sibling failed, a
			// stray Restart) while its child is healthy: adopt the child.
			p.log.Debug().Int("os_pid", p.OSPid()).Msg("keeper restarted; child still running")
			return
		}
		err := p.start()
		if first {
			p.ready <- err
		}
		if err != nil {
			if first || p.isStopping() {
				p.end()
				ctx.Stop(ctx.Self())
				return
			}
			p.log.Warn().Err(err).Msg("child failed to restart")
			ctx.Send(ctx.Self(), &resumed{incarnation: p.Incarnation()})
			panic(err) // a failed restart is a failure too: the strategy decides again
		}
	case *childExited:
		p.mu.Lock()
		current := m.status.Incarnation == p.incarnation && p.ignoreExit != m.status.Incarnation+1
		stopping := p.stopping
		p.mu.Unlock()
		if !current {
			return
		}
		if m.status.Success() || stopping || !p.cfg.restart {
			p.end()
			ctx.Stop(ctx.Self())
			return
		}
		p.log.Warn().Stringer("status", &m.status).Msg("child crashed")
		ctx.Send(ctx.Self(), &resumed{incarnation: m.status.Incarnation})
		panic(&ExitError{ExitStatus: m.status}) // the spawner's strategy decides: restart or stop
	case *resumed:
		if p.Incarnation() == m.incarnation && !p.Alive() {
			p.end()
			ctx.Stop(ctx.Self())
		}
	case *pa.Stopping:
		// The keeper stops (halt, its spawner stopping, the strategy giving
		// up): the child goes with it, and no restart follows.
		p.mu.Lock()
		p.stopping = true
		stage := p.stage
		p.mu.Unlock()
		p.stopChild(context.Background(), stage)
		p.end()
	}
}
