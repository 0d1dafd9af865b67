package procnode

import (
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

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
	if p.pendingRestart {
		// A cooperative restart was under way: its new instance failed in
		// Started (or the message before it failed). Either way the child
		// is not stuck, and the strategy decides now: the restart's
		// deadline, which kills a stuck child, no longer applies (a
		// resumed instance would be killed and replaced by a new process).
		p.pendingRestart = false
		p.token++
	}
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
	state, awaits := p.state, p.stopAwaits
	if state == stateStopping && awaits && d != dirStop {
		// A graceful stop began while the root actor's failure awaited this
		// directive: carry it out, as protoactor would, so that the new (or
		// resumed) instance finishes what is queued and then the poison.
		p.stopAwaits = false
		if d == dirRestart {
			p.restarts++
		}
		p.mu.Unlock()
		p.tellChild(d)
		return
	}
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
		case stateStarting:
			// The child may be up and answering already (its start's
			// outcome is still on its way to this goroutine): an instance
			// that has run must restart, as protoactor's would, once the
			// process actor is up.
			p.mu.Lock()
			p.restartWhenUp = true
			p.mu.Unlock()
		}
	case dirStop:
		p.mu.Lock()
		if state == stateFailed || state == stateCrashed || state == stateBackoff || (state == stateStopping && awaits) {
			p.failedEnd = true
			p.endReason = "stopped by its supervisor after a failure: " + p.failure
		}
		p.stopAwaits = false
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
