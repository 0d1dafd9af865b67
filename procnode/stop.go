package procnode

import (
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
