package procnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

// cmdHandle is one incarnation: an OS process and what watches it.
type cmdHandle struct {
	cmd      *exec.Cmd
	inc      uint64
	tail     *tailBuffer   // its stderr tail
	exited   chan struct{} // closed once it has exited and its status is recorded
	reaped   chan struct{} // closed once its reaper and stderr copier are done
	down     chan struct{} // closed once its stream is lost, or will never be up
	downOnce sync.Once

	// What the parent's stop did to it, for its ExitStatus (guarded by the
	// Process's mu).
	stopSig   syscall.Signal
	stopAfter time.Duration
}

func (c *cmdHandle) pid() int { return c.cmd.Process.Pid }

func (c *cmdHandle) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// signal sends sig to the incarnation; after its exit it does nothing.
func (c *cmdHandle) signal(sig syscall.Signal) {
	if c != nil && !c.hasExited() {
		_ = c.cmd.Process.Signal(sig) // os.ErrProcessDone: it exited meanwhile
	}
}

func (c *cmdHandle) kill() { c.signal(syscall.SIGKILL) }

func (c *cmdHandle) lost() { c.downOnce.Do(func() { close(c.down) }) }

// start runs one incarnation: exec and handshake. On failure the child is
// killed and reaped and every fd closed. It refuses to start a child once
// the Process is stopping. Every failure is testable with
// errors.Is(err, ErrStartFailed), or ErrKindNotRegistered.
func (p *Process) start() (err error) {
	defer func() {
		if err != nil && !errors.Is(err, ErrStartFailed) && !errors.Is(err, ErrKindNotRegistered) {
			err = fmt.Errorf("%w: %w", ErrStartFailed, err)
		}
	}()
	p.mu.Lock()
	inc := p.incarnation // raised by beginStart
	stopping := p.stopping
	p.reason = ""
	p.mu.Unlock()
	if stopping {
		return fmt.Errorf("%w: stopped before it started", ErrStartFailed)
	}
	who := p.who()
	pooled := who.kind == "" // a pool's child: it learns its kind when taken
	if p.cfg.binary == "" && !pooled {
		// Checked here too: Props does not refuse an unknown kind (it
		// never fails a spawn), so its start fails like a child's would.
		if _, ok := actor.LookupKind(who.kind); !ok {
			return fmt.Errorf("%w: %q", ErrKindNotRegistered, who.kind)
		}
	}

	bootStr, err := encodeBoot(&boot{
		Address:      p.address,
		Kind:         who.kind,
		Name:         who.name,
		Pooled:       pooled,
		Cookie:       p.cookie,
		Incarnation:  inc,
		Control:      p.control,
		Args:         who.args,
		LogLevel:     int8(childLogLevel(*p.logger())),
		StartTimeout: int64(p.cfg.startTimeout),
		Rlimits:      p.cfg.rlimits,
		PanicExits:   p.cfg.panicExits,
		MainWithin:   int64(p.cfg.startTimeout / 2),
		SpinWait:     p.cfg.spinWait,
		Parent:       p.parent,
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
	if err := checkDir(p.cfg.dir); err != nil {
		// os.StartProcess checks the directory only without SysProcAttr,
		// which we always set: the fork would fail naming the binary.
		return fmt.Errorf("%w: WithDir: %w", ErrStartFailed, err)
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
	cmd.Env = p.cfg.childEnv()
	if p.cfg.gomaxprocs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(p.cfg.gomaxprocs))
	}
	cmd.Env = append(cmd.Env, envBoot+"="+bootStr)
	cmd.Dir = p.cfg.dir
	if p.cfg.stdin != nil {
		cmd.Stdin = p.cfg.stdin(inc)
	}
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

	c := &cmdHandle{cmd: cmd, inc: inc, tail: newTail(p.cfg.stderrTail),
		exited: make(chan struct{}), reaped: make(chan struct{}), down: make(chan struct{})}
	p.mu.Lock()
	p.cmd = c
	stopping = p.stopping // a stop either sees this incarnation or we see it
	p.mu.Unlock()

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		var w io.Writer = c.tail
		if p.cfg.stderr != nil {
			w = io.MultiWriter(p.cfg.stderr, c.tail)
		}
		_, _ = io.Copy(w, errR)
	}()
	go p.reap(c, errR, copied)

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
	if cerr == nil {
		p.logger().Debug().Int("os_pid", c.pid()).Uint64("incarnation", inc).Msg("child up")
		return nil
	}
	c.lost() // the link never came up: no loss will say so
	if errors.Is(cerr, io.EOF) || errors.Is(cerr, io.ErrUnexpectedEOF) {
		// The child closed its end: it is exiting with a reason (an
		// unknown kind, a failed producer, a root actor that failed to
		// start). Let it, briefly, so that its exit code says why.
		t := time.NewTimer(time.Second)
		select {
		case <-c.exited:
		case <-t.C:
		}
		t.Stop()
	}
	c.kill()
	<-c.exited
	st := p.ExitStatus()
	if st != nil && st.Incarnation == inc && !st.Success() && st.Signal != syscall.SIGKILL {
		ee := &ExitError{ExitStatus: *st}
		switch st.Code {
		case ExitKindNotRegistered:
			return fmt.Errorf("%w: %q in %s: %w", ErrKindNotRegistered, who.kind, bin, ee)
		case ExitMainNotCalled:
			return fmt.Errorf("%w: %w: %s: %w", ErrStartFailed, ErrMainNotCalled, bin, ee)
		}
		return fmt.Errorf("%w: %w: %w", ErrStartFailed, cerr, ee)
	}
	return fmt.Errorf("%w: %w", ErrStartFailed, cerr)
}

// reap waits for one incarnation to exit, records its status and tells the
// supervisor. The status waits for the stderr copy (the tail) and for the
// loss of the stream: the reader has then handed over the child's last words
// (an exitNotice), so the reason is known.
func (p *Process) reap(c *cmdHandle, errR *os.File, copied chan struct{}) {
	defer close(c.reaped)
	werr := c.cmd.Wait()
	t := time.NewTimer(time.Second)
	select { // the stderr copy ends at EOF, unless a grandchild holds the pipe
	case <-copied:
	case <-t.C:
	}
	errR.Close() // ends the copy if a grandchild held the pipe
	<-copied
	t.Reset(2 * time.Second)
	select { // bounded: a reader stuck in a slow log writer must not stall the exit
	case <-c.down:
	case <-t.C:
	}
	t.Stop()
	st := ExitStatus{Incarnation: c.inc, OSPid: c.pid(), ProcessState: c.cmd.ProcessState}
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Code, st.Signal = -1, ws.Signal()
	} else {
		st.Code = c.cmd.ProcessState.ExitCode()
	}
	p.mu.Lock()
	st.Reason = p.reason
	st.Stopped = p.stopping
	st.StopSignal, st.StopAfter = c.stopSig, c.stopAfter
	st.StderrTail = c.tail.Bytes()
	if st.Reason == "" && werr != nil && st.Code != 0 && st.Signal == 0 {
		st.Reason = lastLine(st.StderrTail)
	}
	last := st
	p.last = &last
	p.mu.Unlock()
	close(c.exited)
	if f := testHookReaped.Load(); f != nil {
		(*f)(p, st.Incarnation)
	}
	p.post(evExited{status: st})
}

// testHookReaped, when set by a test, runs on a reaper after the exit is
// recorded, before it is posted: it lets a test make the exit's news late.
var testHookReaped atomic.Pointer[func(*Process, uint64)]

// linkDown is called when the stream of an incarnation ends. A stream that
// ended badly (garbage, a huge frame) means the child cannot be trusted:
// kill it. A stream that simply ended (EOF) belongs to a child on its way
// out: give it the graceful deadline, then kill it. Either way its exit is
// what the supervisor hears about.
func (p *Process) linkDown(err error) {
	p.mu.Lock()
	c := p.cmd
	// A stream that broke the protocol, or a child that does not read what it
	// must (mailbox.ErrPeerStalled), is misbehaving: it is killed at once.
	breach := err != nil && ((errors.Is(err, mailbox.ErrProtocol) && !errors.Is(err, io.ErrUnexpectedEOF)) ||
		errors.Is(err, mailbox.ErrFrameTooLarge) || errors.Is(err, mailbox.ErrPeerStalled))
	if breach && p.reason == "" {
		p.reason = "killed by the parent: " + err.Error()
	}
	p.mu.Unlock()
	if c == nil {
		return
	}
	c.lost()
	if err == nil {
		// A clean goodbye: the child is on its way out. One that lingers is
		// not, and is killed: a crash, which its strategy decides about.
		time.AfterFunc(goodbyeGrace, func() {
			if !c.hasExited() && !p.isEnding() {
				p.logger().Warn().Dur("grace", goodbyeGrace).Msg("child said goodbye but kept running; killing it")
				c.kill()
			}
		})
		return
	}
	// A frame cut short by the child's death is a child on its way out, not a
	// child breaking the protocol.
	if breach {
		p.logger().Error().Err(err).Msg("child broke the protocol; killing it")
		c.kill()
		return
	}
	time.AfterFunc(p.cfg.stopTimeout, func() {
		if !c.hasExited() {
			p.logger().Warn().Err(err).Msg("child lost its link and did not exit; killing it")
			c.kill()
		}
	})
}

// goodbyeGrace is how long a child that said goodbye may take to exit.
const goodbyeGrace = 2 * time.Second

// isEnding reports whether the parent is stopping the child: its goodbye
// then answers ours, and the stop escalation has its own deadlines.
func (p *Process) isEnding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
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

// childEnv is the child's environment before the variables of the spawn:
// the parent's (or WithEnviron's), then WithEnv's entries, never a
// bootstrap of procactor's (a parent that is itself a child has none left:
// Main unset it; one given by the caller must not reach the child).
func (c *config) childEnv() []string {
	var env []string
	if c.hasEnviron {
		env = append(env, c.environ...)
		if v, ok := os.LookupEnv(envLog); ok && !hasKey(env, envLog) && !hasKey(c.env, envLog) {
			env = append(env, envLog+"="+v)
		}
	} else {
		env = os.Environ()
	}
	env = append(env, c.env...)
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, envBoot+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func hasKey(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// checkDir checks a working directory given with WithDir ("" is the
// parent's): it must exist and be a directory.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "chdir", Path: dir, Err: syscall.ENOTDIR}
	}
	return nil
}
