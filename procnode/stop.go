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
	}
	if stage <= stageTerm {
		c.signal(syscall.SIGTERM)
		if wait(p.cfg.termTimeout) {
			return
		}
	}
	c.kill()
	<-c.exited
}
