package procnode

import (
	"context"
	"fmt"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// The supervisor goroutine of a process actor: one per Process, from its
// spawn to its end, handling the events below one at a time, so the
// process actor's life is a plain state machine (procState). Long work (an
// exec and handshake, a stop escalation, waiting for an exit) runs on
// goroutines of its own that post an event when done; posting never blocks.

type (
	evStart      struct{}                    // start an incarnation now
	evStarted    struct{ err error }         // the start in flight is done
	evExited     struct{ status ExitStatus } // an incarnation exited
	evRootFailed struct {
		inc         uint64
		reason, msg any
		text        string
	} // the root actor failed in the child
	evRootRestarted struct{ inc uint64 }      // the child restarted its root actor
	evDirective     struct{ d directiveKind } // from the supervisor strategy
	evHalt          struct{ stage stopStage } // Stop, Terminate, Kill
	evTimer         struct{ token uint64 }    // a backoff or a restart deadline is over
	evAssigned      struct{ err error }       // a pooled child started what it was given
)

// post hands an event to the supervisor goroutine. After the end it is
// dropped (there is nothing left to decide).
func (p *Process) post(ev any) {
	p.mu.Lock()
	if p.state == stateEnded {
		p.mu.Unlock()
		return
	}
	p.events = append(p.events, ev)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Process) supervise() {
	for {
		<-p.wake
		for {
			p.mu.Lock()
			if p.state == stateEnded {
				p.events = nil
				p.mu.Unlock()
				return
			}
			if len(p.events) == 0 {
				p.mu.Unlock()
				break
			}
			ev := p.events[0]
			p.events[0] = nil
			p.events = p.events[1:]
			p.mu.Unlock()
			p.handle(ev)
		}
	}
}

func (p *Process) handle(ev any) {
	switch e := ev.(type) {
	case evStart:
		p.beginStart()
	case evStarted:
		p.onStarted(e.err)
	case evExited:
		p.onExited(e.status)
	case evRootFailed:
		p.onRootFailed(e)
	case evRootRestarted:
		p.mu.Lock()
		if e.inc == p.incarnation && p.pendingRestart {
			p.pendingRestart = false
			p.token++ // the restart deadline is met
		}
		p.mu.Unlock()
	case evDirective:
		p.onDirective(e.d)
	case evHalt:
		p.beginStop(e.stage, false)
	case evTimer:
		p.onTimer(e.token)
	case evAssigned:
		p.onAssigned(e.err)
	}
}

// beginStart starts an incarnation on a goroutine of its own.
// testHookStarted, when set by a test, runs before a start's outcome is
// posted: it lets a test make the child's first reports arrive first.
var testHookStarted func()

func (p *Process) beginStart() {
	p.mu.Lock()
	if p.stopping { // a stop came first (Close, StopOnSignal): nothing to start
		p.mu.Unlock()
		p.end()
		return
	}
	p.state = stateStarting
	p.mu.Unlock()
	go func() {
		err := p.start()
		if testHookStarted != nil {
			testHookStarted()
		}
		p.post(evStarted{err: err})
	}()
}

func (p *Process) onStarted(err error) {
	p.mu.Lock()
	state, first, pending := p.state, p.incarnation == 0, p.pendingExit
	p.pendingExit = nil
	if err != nil {
		p.lastErr = err
	}
	p.mu.Unlock()
	if state == stateStopping {
		if err == nil {
			go p.stopChild(p.currentStage(), p.pool != nil && first)
			return
		}
		p.end()
		return
	}
	if err != nil {
		if first {
			p.signalReady(err)
			if p.sync {
				p.end() // Spawn returns the error; the spawner never had this child
				return
			}
		}
		p.crash(err)
		return
	}
	p.mu.Lock()
	p.state, p.upSince = stateUp, time.Now()
	if first && p.pool != nil {
		p.state = stateIdle // a pooled child runs nothing until it is taken
	}
	p.mu.Unlock()
	if first {
		p.signalReady(nil)
	}
	if pending != nil { // it exited before its start was reported
		p.onExited(*pending)
		return
	}
	p.mu.Lock()
	failed := p.pendingFailure
	p.pendingFailure = nil
	p.mu.Unlock()
	if failed != nil {
		p.onRootFailed(*failed)
	}
}

func (p *Process) signalReady(err error) {
	p.readyOnce.Do(func() { p.ready <- err })
}

func (p *Process) currentStage() stopStage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stage
}

func (p *Process) onExited(st ExitStatus) {
	p.mu.Lock()
	if st.Incarnation != p.incarnation {
		p.mu.Unlock()
		return // an older incarnation's late news
	}
	state := p.state
	if state == stateStarting {
		p.pendingExit = &st // start reports next; its outcome decides
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	switch state {
	case stateStopping, stateIdle:
		p.end() // an idle pooled child that dies is the pool's to replace
	case stateUp, stateFailed:
		p.mu.Lock()
		restarting := p.pendingRestart
		p.mu.Unlock()
		switch {
		case restarting:
			// A cooperative restart overran its deadline and was killed:
			// carry the Restart out with a new process (not a new failure).
			p.mu.Lock()
			p.pendingRestart = false
			p.mu.Unlock()
			p.scheduleStart()
		case st.Success():
			p.end() // the root actor stopped: the process actor ends
		default:
			p.crash(&ExitError{ExitStatus: st})
		}
	}
}

// onAssigned ends a take: the pooled child runs its root actor now, or it
// could not start it (and exits).
func (p *Process) onAssigned(err error) {
	p.mu.Lock()
	if p.state != stateIdle || p.taken == nil {
		p.mu.Unlock()
		return
	}
	taken := p.taken
	if err == nil {
		p.state, p.upSince = stateUp, time.Now()
	} else {
		// The child exits with its reason; its exit ends the process actor
		// (a child that lingers is killed when its link is lost).
		p.lastErr = err
		p.state, p.stopping, p.failedEnd = stateStopping, true, true
	}
	p.mu.Unlock()
	taken <- err
}

// crash handles a dead incarnation (or a failed start): the supervisor
// decides, unless restarts are off.
func (p *Process) crash(reason error) {
	p.mu.Lock()
	p.crashed = true
	if !p.cfg.restart {
		p.failedEnd = true
		p.mu.Unlock()
		p.end()
		return
	}
	now := time.Now()
	if !p.upSince.IsZero() && now.Sub(p.upSince) > 2*p.cfg.backoffMax+time.Second {
		p.crashes = 0 // it ran well for a while: not a crash loop
	}
	p.crashes++
	p.lastCrash = now
	p.state = stateCrashed
	p.failure = reason.Error()
	p.mu.Unlock()
	p.logger().Warn().Err(reason).Msg("child crashed")
	p.escalate(reason, nil)
}

func (p *Process) onRootFailed(e evRootFailed) {
	p.mu.Lock()
	if p.state == stateStarting && e.inc == p.incarnation {
		// The held messages went out during the handshake, before the
		// start was reported: the root actor failed on one of them. It is
		// handled once the process actor is up.
		p.pendingFailure = &e
		p.mu.Unlock()
		return
	}
	if p.state != stateUp || e.inc != p.incarnation {
		p.mu.Unlock()
		return
	}
	p.failure = "root actor panicked: " + e.text
	if !p.cfg.restart {
		p.failedEnd, p.endReason = true, p.failure
		p.mu.Unlock()
		p.beginStop(stageStopRoot, true)
		return
	}
	p.state = stateFailed
	p.mu.Unlock()
	p.logger().Warn().Str("reason", e.text).Msg("child's root actor failed")
	p.escalate(e.reason, e.msg)
}

// escalate reports a failure to the spawner, whose strategy answers with a
// directive (a system message to p.pid). A root context has no actor to ask:
// protoactor's default strategy decides, with p as the supervisor.
func (p *Process) escalate(reason, msg any) {
	if p.parent == nil {
		pa.DefaultSupervisorStrategy().HandleFailure(p.node.System(), selfSupervisor{p}, p.pid, p.rs, reason, msg)
		return
	}
	sendSystem(p.node.System(), p.parent, &pa.Failure{Who: p.pid, Reason: reason, RestartStats: p.rs, Message: msg})
}

func (p *Process) onDirective(d directiveKind) {
	p.mu.Lock()
	state := p.state
	p.mu.Unlock()
	switch d {
	case dirResume:
		switch state {
		case stateFailed:
			p.setUp()
			p.tellChild(dirResume)
			return
		case stateCrashed:
			// A dead process has no instance to resume: the closest thing
			// is a new one that gets the same mailbox.
			p.restartProcess()
		}
	case dirRestart:
		switch state {
		case stateUp:
			// A healthy child (an AllForOne sibling, a Restart sent by
			// hand): it restarts its root actor once the current message is
			// done; if it has not within the graceful deadline, a new
			// process takes over.
			p.mu.Lock()
			p.restarts++
			p.token++
			p.pendingRestart = true
			token := p.token
			p.mu.Unlock()
			p.tellChild(dirRestart)
			time.AfterFunc(p.cfg.stopTimeout, func() { p.post(evTimer{token: token}) })
		case stateFailed:
			p.mu.Lock()
			p.restarts++
			p.mu.Unlock()
			p.setUp()
			p.tellChild(dirRestart)
		case stateCrashed:
			p.restartProcess()
		}
	case dirStop:
		p.mu.Lock()
		if state == stateFailed || state == stateCrashed || state == stateBackoff {
			p.failedEnd = true
			p.endReason = "stopped by its supervisor after a failure: " + p.failure
		}
		p.mu.Unlock()
		p.beginStop(stageStopRoot, true)
	}
}

func (p *Process) setUp() {
	p.mu.Lock()
	p.state = stateUp
	p.mu.Unlock()
}

func (p *Process) restartProcess() {
	p.mu.Lock()
	p.restarts++
	p.mu.Unlock()
	p.scheduleStart()
}

// scheduleStart starts the next incarnation no sooner than the backoff floor
// after the last crash: a kind that crashes on start cannot fork-storm.
func (p *Process) scheduleStart() {
	p.mu.Lock()
	floor := backoff(p.cfg.backoffMin, p.cfg.backoffMax, p.crashes)
	wait := time.Until(p.lastCrash.Add(floor))
	if wait <= 0 {
		p.mu.Unlock()
		p.beginStart()
		return
	}
	p.state = stateBackoff
	p.token++
	token := p.token
	p.mu.Unlock()
	time.AfterFunc(wait, func() { p.post(evTimer{token: token}) })
}

// backoff is the floor between two process restarts after n consecutive
// crashes: min, doubling, at most max.
func backoff(min, max time.Duration, n int) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return minDuration(d, max)
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

func (p *Process) onTimer(token uint64) {
	p.mu.Lock()
	if token != p.token {
		p.mu.Unlock()
		return // met or replaced meanwhile
	}
	state, restarting := p.state, p.pendingRestart
	p.mu.Unlock()
	switch {
	case state == stateBackoff:
		p.beginStart()
	case state == stateUp && restarting:
		// The cooperative restart did not happen in time: kill the process;
		// onExited starts a new one.
		p.logger().Warn().Dur("deadline", p.cfg.stopTimeout).Msg("child did not restart its root actor in time; killing it")
		p.mu.Lock()
		c := p.cmd
		p.mu.Unlock()
		c.kill()
	}
}

// beginStop ends the process actor: the child is stopped from stage on (a
// stop in progress escalates to a harder stage), and the end follows its
// exit. byStrategy says a supervisor's Stop asked, not the user.
func (p *Process) beginStop(stage stopStage, byStrategy bool) {
	p.mu.Lock()
	state := p.state
	switch state {
	case stateEnded:
		p.mu.Unlock()
		return
	case stateStopping:
		if stage <= p.stage {
			p.mu.Unlock()
			return
		}
		p.stage = stage
		p.mu.Unlock()
		go p.stopChild(stage, false)
		return
	}
	p.state, p.stopping, p.stage = stateStopping, true, stage
	p.stopFirst, p.stopSince = stage, time.Now()
	p.pendingRestart = false
	p.token++ // no backoff or restart deadline applies any more
	p.mu.Unlock()
	switch state {
	case stateCrashed, stateBackoff:
		p.end() // nothing runs
	case stateIdle:
		go p.stopChild(stage, true)
	case stateUp, stateFailed:
		go p.stopChild(stage, false)
	}
	// stateStarting: onStarted stops what came up.
}

// end makes the Process over for good, once its last incarnation has
// exited: the link is closed (what it held is dead-lettered), watchers and
// the spawner get Terminated, Exited is published, Done is closed.
func (p *Process) end() {
	p.endOnce.Do(func() {
		p.mu.Lock()
		p.state = stateEnded
		watchers := p.watchers
		p.watchers = nil
		c := p.cmd
		p.mu.Unlock()
		p.signalReady(fmt.Errorf("%w: ended before it started", ErrStartFailed))
		if p.unbind != nil {
			p.unbind()
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.termTimeout+time.Second)
		_ = p.link.Close(ctx)
		cancel()
		if c != nil {
			<-c.reaped
		}
		sys := p.node.System()
		p.node.Node.Release(p.pid)
		sys.ProcessRegistry.Remove(p.control)
		if p.alias != nil {
			sys.ProcessRegistry.Remove(p.alias)
		}
		p.node.remove(p)

		st := p.finalStatus()
		why := pa.TerminatedReason_Stopped
		if p.wasCrash() {
			why = pa.TerminatedReason_AddressTerminated
		}
		sys.EventStream.Publish(&Exited{PID: p.pid, Status: *st})
		p.logger().Debug().Stringer("status", st).Msg("child ended")
		// Done first: who hears of the end through Terminated finds the
		// Process over (Done closed, Wait returning).
		close(p.ended)
		for _, w := range watchers {
			sendSystem(sys, w, &pa.Terminated{Who: p.pid, Why: why})
		}
		if p.parent != nil && p.adopted.Load() {
			sendSystem(sys, p.parent, &pa.Terminated{Who: p.pid, Why: why})
		}
	})
}

// finalStatus completes the last status with how the process actor ended,
// and returns a copy.
func (p *Process) finalStatus() *ExitStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		// No process ever exited: the start failed before one ran.
		reason := "ended before it started"
		if p.lastErr != nil {
			reason = p.lastErr.Error()
		}
		p.last = &ExitStatus{Code: -1, Reason: reason, Stopped: p.stopping}
	}
	if p.failedEnd {
		p.last.Failed = true
		if p.last.Reason == "" {
			p.last.Reason = p.endReason
		}
	}
	s := *p.last
	return &s
}

func (p *Process) wasCrash() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashed && p.last != nil && !p.last.Success() && !p.stopping
}

// tellChild sends a directive to the child's host actor. It never blocks
// the supervisor goroutine: a full link waits on a goroutine of its own.
func (p *Process) tellChild(d directiveKind) {
	go p.node.Root().Send(p.host, &directive{Kind: d})
}

func sendSystem(sys *pa.ActorSystem, to *pa.PID, m any) {
	proc, _ := sys.ProcessRegistry.Get(to)
	proc.SendSystemMessage(to, m)
}
