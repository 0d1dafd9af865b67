package procnode

import (
	"sync/atomic"
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
			if f := testHookHandled.Load(); f != nil {
				(*f)(p, ev)
			}
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
var testHookStarted atomic.Pointer[func()]

// testHookStarting, when set by a test, runs on a start's goroutine before
// the start: it lets a test make an older incarnation's news arrive first.
var testHookStarting atomic.Pointer[func(*Process)]

// testHookHandled, when set by a test, runs on the supervisor goroutine
// after each event is handled: it lets a test wait for an event's effect.
var testHookHandled atomic.Pointer[func(*Process, any)]

func (p *Process) beginStart() {
	p.mu.Lock()
	if p.stopping { // a stop came first (Close, StopOnSignal): nothing to start
		p.mu.Unlock()
		p.end()
		return
	}
	// The incarnation is raised here, with the state, not on the start's
	// goroutine: news of the one before (a failed start's exit, its root
	// actor's failure) handled from now on is old news, not the new one's.
	if p.started {
		p.incarnation++
	}
	p.started = true
	p.state = stateStarting
	p.mu.Unlock()
	go func() {
		if f := testHookStarting.Load(); f != nil {
			(*f)(p)
		}
		err := p.start()
		if f := testHookStarted.Load(); f != nil {
			(*f)()
		}
		p.post(evStarted{err: err})
	}()
}

func (p *Process) onStarted(err error) {
	p.mu.Lock()
	state, first, pending := p.state, p.incarnation == 0, p.pendingExit
	// A Restart that came during the start applies to this incarnation only
	// if it comes up (a failed start ends it anyway).
	restart := p.restartWhenUp
	p.pendingExit, p.restartWhenUp = nil, false
	if err != nil {
		p.lastErr = err
	}
	p.mu.Unlock()
	if state == stateStopping {
		if err == nil && pending == nil {
			p.mu.Lock()
			failed := p.pendingFailure
			p.pendingFailure = nil
			graceful := p.stage == stageGraceful
			if failed != nil && graceful {
				// The root actor failed on a held message and its mailbox is
				// suspended: the poison waits behind it until the strategy's
				// directive, which must still reach the child (onDirective).
				p.stopAwaits = true
				p.failure = "root actor panicked: " + failed.text
			}
			p.mu.Unlock()
			if failed != nil && graceful {
				p.escalate(failed.reason, failed.msg)
			}
			go p.stopChild(p.currentStage(), p.pool != nil && first)
			return
		}
		p.end() // a failed start, or an incarnation that has exited already: nothing to stop
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
		return // the failure's directive decides, a restart included
	}
	if restart {
		p.onDirective(dirRestart)
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
	taken, c := p.taken, p.cmd
	if err == nil {
		p.state, p.upSince = stateUp, time.Now()
	} else {
		// The child exits with its reason; its exit ends the process actor.
		p.lastErr = err
		p.state, p.stopping, p.failedEnd = stateStopping, true, true
	}
	p.mu.Unlock()
	if err != nil && c != nil {
		// No stop escalation runs for it, and linkDown trusts a child that
		// is ending: one that lingers past the stop timeout is killed.
		time.AfterFunc(p.cfg.stopTimeout, func() {
			if !c.hasExited() {
				p.logger().Warn().Err(err).Msg("child could not start its root actor and did not exit; killing it")
				c.kill()
			}
		})
	}
	taken <- err
}

// tellChild sends a directive to the child's host actor. It never blocks
// the supervisor goroutine: a full link waits on a goroutine of its own.
func (p *Process) tellChild(d directiveKind) {
	go p.node.Root().Send(p.host, &directive{Kind: d})
}

// sendSystem delivers a system message to to through its process in the
// registry (a link for a remote PID), as protoactor's own system sends do.
func sendSystem(sys *pa.ActorSystem, to *pa.PID, m any) {
	proc, _ := sys.ProcessRegistry.Get(to)
	proc.SendSystemMessage(to, m)
}
