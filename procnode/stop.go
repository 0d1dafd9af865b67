package procnode

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// stopChild runs the stop escalation on the current incarnation, from stage
// on, until it has exited: the root actor is poisoned (stageGraceful) or
// stopped (stageStopRoot) and given the graceful deadline, then SIGTERM and
// the term deadline, then SIGKILL. An idle pooled child, which has no root
// actor, is told to exit instead. A later, harder stage starts its own
// escalation; both end at the same exit. The exit reaches the supervisor
// goroutine through the reaper.
func (p *Process) stopChild(stage stopStage, idle bool) {
	p.mu.Lock()
	c := p.cmd
	p.mu.Unlock()
	if c == nil {
		return
	}
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-c.exited:
			return true
		case <-t.C:
			return false
		}
	}
	if c.hasExited() {
		return
	}
	// waited is how long this escalation has waited out its deadlines;
	// a stage that cuts a stop in progress short counts from its start.
	var waited time.Duration
	if stage > p.firstStage() {
		waited = p.stopElapsed()
	}
	signal := func(sig syscall.Signal) {
		p.mu.Lock()
		c.stopSig, c.stopAfter = sig, waited
		p.mu.Unlock()
		c.signal(sig)
	}
	if stage <= stageStopRoot && p.link.IsUp() {
		switch {
		case idle:
			go p.node.Root().Send(pa.NewPID(p.address, assignName), &assign{})
		case stage == stageGraceful:
			// A full link may make the poison wait: not the deadlines.
			go p.node.Root().Poison(p.pid)
		default:
			p.tellChild(dirStop)
		}
		if wait(p.cfg.stopTimeout) {
			return
		}
		waited += p.cfg.stopTimeout
	}
	if stage <= stageTerm {
		signal(syscall.SIGTERM)
		if wait(p.cfg.termTimeout) {
			return
		}
		waited += p.cfg.termTimeout
	}
	signal(syscall.SIGKILL)
	<-c.exited
}

// testHookAdopting, when set by a test, runs when a spawn that waited for
// its child's start is about to return it to the spawner.
var testHookAdopting atomic.Pointer[func(*Process)]

// markAdopted marks p as its spawner's child, as the spawn that waited for
// its start returns it: protoactor adds p.pid to the spawner's children once
// the spawn returns. A process actor that ended meanwhile (its child exited
// or was killed right after its start) did not tell the spawner, which did
// not have it yet: the spawner is told here, or it would wait for ever for
// a child that is gone when it stops.
func (p *Process) markAdopted() {
	if f := testHookAdopting.Load(); f != nil {
		(*f)(p)
	}
	p.mu.Lock()
	p.adopted = true
	late := p.endedUnadopted
	p.mu.Unlock()
	if late && p.parent != nil {
		go func() { // after Done, as end's Terminated
			<-p.ended
			sendSystem(p.node.System(), p.parent, p.terminated())
		}()
	}
}

// firstStage is the stage the stop in progress began with.
func (p *Process) firstStage() stopStage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopFirst
}

// stopElapsed is the time since the stop in progress began, to the
// millisecond.
func (p *Process) stopElapsed() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Since(p.stopSince).Round(time.Millisecond)
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
	// The failed root actor's mailbox is suspended until the directive
	// comes: the poison waits behind it there, so the directive must still
	// reach the child (onDirective).
	p.stopAwaits = state == stateFailed && stage == stageGraceful
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
	case stateStarting:
		// A graceful stop waits for the start (onStarted stops what came
		// up). SIGTERM and SIGKILL do not: the handshake comes only once the
		// root actor's Started has returned, which may be late or never, and
		// a Spawn whose ctx ended (it kills) must return at once. The start
		// sees the kill as a failed handshake; a child not forked yet sees
		// stopping and never runs (start).
		if stage >= stageTerm {
			go p.stopChild(stage, false)
		}
	}
}

// end makes the Process over for good, once its last incarnation has
// exited: the link is closed (what it held is dead-lettered), watchers and
// the spawner get Terminated, Exited is published, Done is closed.
func (p *Process) end() {
	p.endOnce.Do(func() {
		p.mu.Lock()
		p.state = stateEnded
		adopted := p.adopted
		p.endedUnadopted = !adopted // markAdopted tells the spawner
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
		term := p.terminated()
		sys.EventStream.Publish(&Exited{PID: p.pid, Status: *st})
		p.logger().Debug().Stringer("status", st).Msg("child ended")
		// Done first: who hears of the end through Terminated finds the
		// Process over (Done closed, Wait returning).
		close(p.ended)
		for _, w := range watchers {
			sendSystem(sys, w, term)
		}
		if p.parent != nil && adopted {
			sendSystem(sys, p.parent, term)
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

// terminated is the Terminated of the ended process actor, for its watchers
// and its spawner.
func (p *Process) terminated() *pa.Terminated {
	why := pa.TerminatedReason_Stopped
	if p.wasCrash() {
		why = pa.TerminatedReason_AddressTerminated
	}
	return &pa.Terminated{Who: p.pid, Why: why}
}

// wasCrash reports whether the process actor is ending because its last
// incarnation died unsuccessfully, not because it was stopped.
func (p *Process) wasCrash() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashed && p.last != nil && !p.last.Success() && !p.stopping
}
