package procnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// Process is a child OS process hosting an actor, seen from its parent: the
// process actor. It spans restarts: PID() stays valid (a restarted child
// keeps its address) and Wait may be called any number of times.
//
// A keeper actor, spawned under the spawner, owns the OS process: it starts
// it, watches it and restarts it when the spawner's supervisor strategy says
// so. Methods are safe for concurrent use; Stop, Terminate and Kill are
// idempotent.
type Process struct {
	node    *Node
	kind    string
	cfg     config
	address string
	pid     *pa.PID
	link    *actor.Link
	args    []byte
	cookie  []byte
	log     zerolog.Logger

	mu          sync.Mutex
	keeper      *pa.PID
	cmd         *exec.Cmd     // current incarnation (guarded by mu)
	exited      chan struct{} // closed when the current incarnation exits (guarded by mu)
	incarnation uint64        // guarded by mu
	started     bool          // first start attempted (guarded by mu)
	stopping    bool          // we asked it to end (guarded by mu)
	reason      string        // the child's ExitNotice (guarded by mu)
	tail        *tailBuffer   // current incarnation's stderr tail (guarded by mu)
	last        *ExitStatus   // guarded by mu
	ended       chan struct{} // closed when the Process is over for good
	endOnce     sync.Once
	ready       chan error // the first start's outcome
	stopOnce    sync.Once
	ignoreExit  uint64 // incarnation+1 whose exit start() already handled (guarded by mu)
}

// Spawn starts a child process running the registered kind as its root
// actor, and returns once the child is up (handshake done) or failed.
// spawner is a root context or an actor's context of a node (NewNode, or the
// node Main built in a child); the keeper actor is spawned under it, so its
// supervisor strategy decides what a crash means.
//
// Errors: ErrMainNotCalled, ErrNoNode, ErrKindNotRegistered (checked before
// exec, or reported by another binary), ErrInvalidOption, ErrStartFailed
// (wrapping the cause and, when the child exited, its *ExitError), ctx's error.
func Spawn(ctx context.Context, spawner pa.SpawnerContext, kind string, opts ...Option) (*Process, error) {
	if _, child := os.LookupEnv(envBoot); child {
		return nil, ErrMainNotCalled
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
		exited: make(chan struct{}),
	}
	close(p.exited) // no incarnation runs yet
	if cfg.hasArgs {
		b, err := mailbox.Marshal(cfg.args)
		if err != nil {
			return nil, fmt.Errorf("%w: WithArgs: %w", ErrInvalidOption, err)
		}
		p.args = b
	}
	link, err := n.ChildLink(strconv.FormatUint(n.seq.Add(1), 10))
	if err != nil {
		return nil, err
	}
	link.SetReconnect(cfg.restart)
	p.link = link
	p.address = link.Address()
	p.pid = pa.NewPID(p.address, RootID)
	p.log = n.Logger()
	if cfg.logger != nil {
		p.log = *cfg.logger
	}
	p.log = p.log.With().Str("child", p.address).Str("kind", kind).Logger()
	link.OnDown(p.linkDown)

	props := pa.PropsFromProducer(func() pa.Actor { return &keeper{p: p} })
	var keeperPID *pa.PID
	if cfg.name != "" {
		keeperPID, err = spawner.SpawnNamed(props, cfg.name)
		if err != nil {
			link.Close(context.Background())
			return nil, err
		}
	} else {
		keeperPID = spawner.Spawn(props)
	}
	p.mu.Lock()
	p.keeper = keeperPID
	p.mu.Unlock()
	n.add(p)

	select {
	case err := <-p.ready:
		if err != nil {
			<-p.ended
			return nil, err
		}
		return p, nil
	case <-ctx.Done():
		p.Kill()
		if err := <-p.ready; err == nil { // it came up before the kill landed
			p.Stop(context.Background())
		}
		<-p.ended
		return nil, context.Cause(ctx)
	}
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
	return &s
}

// Wait waits until the Process has ended for good (no restart follows) and
// returns nil after a clean exit (code 0), an *ExitError otherwise, or ctx's
// error while the child still runs. It may be called many times.
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

// Stop ends the child gracefully and returns when it has ended: its root
// actor is poisoned; after the graceful deadline it gets SIGTERM, after the
// term deadline SIGKILL (WithStopTimeouts). No restart follows. When ctx
// ends first the child is killed. Stop returns ctx's error or nil; the exit
// status is on Wait / ExitStatus.
func (p *Process) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		p.stopChild(ctx)
		p.mu.Lock()
		keeper := p.keeper
		p.mu.Unlock()
		if keeper != nil {
			p.node.Root().Stop(keeper)
		}
	})
	select {
	case <-p.ended:
		return nil
	case <-ctx.Done():
		p.Kill()
		<-p.ended
		return context.Cause(ctx)
	}
}

// Terminate sends SIGTERM to the child; no restart follows.
func (p *Process) Terminate() error { return p.signal(syscall.SIGTERM) }

// Kill sends SIGKILL to the child; no restart follows.
func (p *Process) Kill() error { return p.signal(syscall.SIGKILL) }

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	p.stopping = true
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// stopChild runs the stop escalation on the current incarnation.
func (p *Process) stopChild(ctx context.Context) {
	p.mu.Lock()
	p.stopping = true
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
	if p.link.IsUp() {
		p.node.Root().Poison(p.pid)
		if wait(p.cfg.stopTimeout) {
			return
		}
	}
	if ctx.Err() == nil {
		p.Terminate()
		if wait(p.cfg.termTimeout) {
			return
		}
	}
	p.Kill()
	<-exited
}

// linkDown: a stream that ended badly (garbage, a huge frame, a wrong
// cookie) means the child cannot be trusted: kill it. A stream that simply
// ended (EOF) belongs to a child on its way out: give it the graceful
// deadline, then kill it.
func (p *Process) linkDown(err error) {
	if err == nil {
		return
	}
	if errors.Is(err, mailbox.ErrProtocol) || errors.Is(err, mailbox.ErrFrameTooLarge) {
		p.log.Error().Err(err).Msg("child broke the protocol; killing it")
		p.signal(syscall.SIGKILL)
		return
	}
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	go func() {
		t := time.NewTimer(p.cfg.stopTimeout)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			p.log.Warn().Err(err).Msg("child lost its link and did not exit; killing it")
			p.mu.Lock()
			cmd := p.cmd
			p.mu.Unlock()
			if cmd != nil && cmd.Process != nil {
				cmd.Process.Kill()
			}
		}
	}()
}

// start runs one incarnation: exec, handshake. On failure the child is
// killed and reaped, and every fd closed.
func (p *Process) start() (err error) {
	p.mu.Lock()
	if p.started {
		p.incarnation++
	}
	p.started = true
	inc := p.incarnation
	keeper := p.keeper
	p.reason = ""
	p.mu.Unlock()

	bootStr, err := encodeBoot(&boot{
		Address:      p.address,
		Kind:         p.kind,
		Name:         p.cfg.name,
		Cookie:       p.cookie,
		Incarnation:  inc,
		Keeper:       keeper,
		Args:         p.args,
		LogLevel:     int8(p.log.GetLevel()),
		StartTimeout: int64(p.cfg.startTimeout),
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
	cmd.Env = append(append(childEnv(), p.cfg.env...), envBoot+"="+bootStr)
	cmd.Dir = p.cfg.dir
	cmd.Stdout = p.cfg.stdout
	cmd.Stderr = errW
	cmd.SysProcAttr = mergeSysProcAttr(p.cfg.sysProcAttr)

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
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.tail = cmd, exited, tail
	p.mu.Unlock()

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer errR.Close()
		var w io.Writer = tail
		if p.cfg.stderr != nil {
			w = io.MultiWriter(p.cfg.stderr, tail)
		}
		_, _ = io.Copy(w, errR)
	}()
	go p.reap(cmd, inc, exited, copied, keeper)

	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.startTimeout)
	defer cancel()
	if _, err := p.link.Connect(ctx, mailbox.NewPipeConn(parentR, parentW), p.cookie, inc); err != nil {
		cmd.Process.Kill()
		<-exited
		p.mu.Lock()
		p.ignoreExit = inc + 1
		p.mu.Unlock()
		st := p.ExitStatus()
		if st != nil && !st.Success() && st.Signal != syscall.SIGKILL {
			ee := &ExitError{ExitStatus: *st}
			if st.Code == ExitKindNotRegistered {
				return fmt.Errorf("%w: %q in %s: %w", ErrKindNotRegistered, p.kind, bin, ee)
			}
			return fmt.Errorf("%w: %w: %w", ErrStartFailed, err, ee)
		}
		return fmt.Errorf("%w: %w", ErrStartFailed, err)
	}
	p.log.Debug().Int("os_pid", cmd.Process.Pid).Uint64("incarnation", inc).Msg("child up")
	return nil
}

// reap waits for one incarnation to exit, records its status and tells the keeper.
func (p *Process) reap(cmd *exec.Cmd, inc uint64, exited, copied chan struct{}, keeper *pa.PID) {
	werr := cmd.Wait()
	t := time.NewTimer(time.Second)
	select { // the stderr copy ends at EOF, unless a grandchild holds the pipe
	case <-copied:
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
	p.mu.Unlock()
	close(exited)
	p.node.Root().Send(keeper, &childExited{status: st})
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
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

// end makes the Process over for good.
func (p *Process) end() {
	p.endOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.termTimeout+time.Second)
		p.link.Close(ctx)
		cancel()
		p.node.remove(p)
		if st := p.ExitStatus(); st != nil {
			p.node.System().EventStream.Publish(&Exited{PID: p.pid, Status: *st})
			p.log.Debug().Stringer("status", st).Msg("child ended")
		}
		close(p.ended)
	})
}

type childExited struct{ status *ExitStatus }

// keeper is the parent-side actor that owns the OS process.
type keeper struct{ p *Process }

func (k *keeper) Receive(ctx pa.Context) {
	p := k.p
	switch m := ctx.Message().(type) {
	case *pa.Started:
		p.mu.Lock()
		first := !p.started
		p.mu.Unlock()
		err := p.start()
		if first {
			p.ready <- err
		}
		if err != nil {
			if first {
				p.end()
				ctx.Stop(ctx.Self())
				return
			}
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
		p.log.Warn().Stringer("status", m.status).Msg("child crashed")
		panic(&ExitError{ExitStatus: *m.status}) // the spawner's strategy decides: restart or stop
	case *ExitNotice:
		p.mu.Lock()
		p.reason = m.Reason
		p.mu.Unlock()
	case *logRecord:
		p.relayLog(m.JSON)
	case *pa.Stopping:
		p.stopChild(context.Background())
		p.end()
	}
}

// relayLog writes a child's log record to the parent's logger, tagged with
// the child's address and OS pid, at the record's own level.
func (p *Process) relayLog(rec []byte) {
	lvl := zerolog.InfoLevel
	if i := strings.Index(string(rec), `"level":"`); i >= 0 {
		rest := string(rec[i+9:])
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			if l, err := zerolog.ParseLevel(rest[:j]); err == nil {
				lvl = l
			}
		}
	}
	p.log.WithLevel(lvl).Int("os_pid", p.OSPid()).RawJSON("record", []byte(strings.TrimSpace(string(rec)))).Msg("child log")
}
