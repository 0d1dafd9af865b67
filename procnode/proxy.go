package procnode

import (
	"fmt"

	pa "github.com/asynkron/protoactor-go/actor"
)

// How protoactor sees a process actor. Its PID (the child's root actor, an
// address of another node) resolves, in the parent, to rootProcess instead
// of the link (actor.Node.Intercept): user messages go on to the child,
// system messages are the process actor's own. Those are what protoactor
// sends to a child PID: a supervisor's Restart, ResumeMailbox and Stop, and
// Watch and Unwatch, which the process actor keeps itself, so that watches
// survive restarts and Terminated comes once, at the end.

// rootProcess is the pa.Process of a process actor's PID in its parent.
type rootProcess struct{ p *Process }

var _ pa.Process = rootProcess{}

func (r rootProcess) SendUserMessage(pid *pa.PID, message any) {
	r.p.link.SendUserMessage(pid, message)
}

func (r rootProcess) SendSystemMessage(pid *pa.PID, message any) {
	p := r.p
	switch m := message.(type) {
	case *pa.Watch:
		if m.Watcher != nil {
			p.watch(m.Watcher)
		}
	case *pa.Unwatch:
		if m.Watcher != nil {
			p.mu.Lock()
			delete(p.watchers, keyOf(m.Watcher))
			p.mu.Unlock()
		}
	case *pa.Restart:
		p.post(evDirective{d: dirRestart})
	case *pa.ResumeMailbox:
		p.post(evDirective{d: dirResume})
	case *pa.Stop:
		p.post(evDirective{d: dirStop})
	case *pa.Terminated:
		// The root actor watched something here: it is told in the child.
		p.link.SendSystemMessage(pid, message)
	default:
		// protoactor sends nothing else to a child's PID (a Failure goes to
		// the parent, Suspend to the failing actor itself).
		p.logger().Warn().Str("type", fmt.Sprintf("%T", message)).Msg("system message to a process actor ignored")
	}
}

func (r rootProcess) Stop(*pa.PID) { r.p.post(evDirective{d: dirStop}) }

// watch records a watcher, or tells it at once when the process actor has
// ended already (as protoactor does for a stopped actor).
func (p *Process) watch(w *pa.PID) {
	p.mu.Lock()
	if p.state != stateEnded {
		if p.watchers == nil {
			p.watchers = make(map[pidKey]*pa.PID)
		}
		p.watchers[keyOf(w)] = w
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	why := pa.TerminatedReason_Stopped
	if p.wasCrash() {
		why = pa.TerminatedReason_AddressTerminated
	}
	sendSystem(p.node.System(), w, &pa.Terminated{Who: p.pid, Why: why})
}

// aliasProcess holds the name a spawner gave the process actor (SpawnNamed,
// WithName) in its own node, so the name cannot be taken twice, and passes
// what is sent to it on to the process actor.
type aliasProcess struct{ p *Process }

var _ pa.Process = aliasProcess{}

func (a aliasProcess) SendUserMessage(_ *pa.PID, message any) {
	rootProcess(a).SendUserMessage(a.p.pid, message)
}

func (a aliasProcess) SendSystemMessage(_ *pa.PID, message any) {
	rootProcess(a).SendSystemMessage(a.p.pid, message)
}

func (a aliasProcess) Stop(*pa.PID) { rootProcess(a).Stop(a.p.pid) }

// selfSupervisor is the pa.Supervisor of a process actor spawned from a
// root context: protoactor's root failures go to the default strategy with
// the failing actor as its own supervisor (actor_context.go handleRootFailure).
type selfSupervisor struct{ p *Process }

var _ pa.Supervisor = selfSupervisor{}

func (s selfSupervisor) Children() []*pa.PID { return []*pa.PID{s.p.pid} }

// EscalateFailure has nowhere to go: the process actor stops.
func (s selfSupervisor) EscalateFailure(any, any) { s.p.post(evDirective{d: dirStop}) }

func (s selfSupervisor) RestartChildren(pids ...*pa.PID) { s.each(pids, dirRestart) }
func (s selfSupervisor) StopChildren(pids ...*pa.PID)    { s.each(pids, dirStop) }
func (s selfSupervisor) ResumeChildren(pids ...*pa.PID)  { s.each(pids, dirResume) }

func (s selfSupervisor) each(pids []*pa.PID, d directiveKind) {
	for _, pid := range pids {
		if pid.Equal(s.p.pid) {
			s.p.post(evDirective{d: d})
		}
	}
}
