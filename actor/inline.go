package actor

import (
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// Inline delivery. A message that arrives over a link for an actor of this
// node normally goes into the actor's protoactor mailbox, whose run starts
// on another goroutine: one hand-off between the link's reader and the
// actor, which on these machines means waking another OS thread, tens of
// microseconds on a VM. An actor with the node's inline mailbox (Node.Inline)
// is run by the link's reader itself when its mailbox is idle: the reader
// decodes the message and calls Receive right there, as a loop over a raw
// pipe would, and a reply is written by the handler at once.
//
// What keeps this safe:
//   - The reader lends the call (mailbox.Endpoint.Lend): a Receive that
//     blocks (a lock, a channel, a request whose answer comes over the same
//     link) loses the reader role to a fresh goroutine after the endpoint's
//     handler budget, and a Receive that sends a request over any link gives
//     it up at once (Link.send); the link goes on reading either way.
//   - An inline run is bounded (inlineRunMsgs messages, inlineRunTime): local
//     senders that keep the mailbox busy make the run move to the actor's
//     dispatcher, and the reader goes back to the link.
//   - Other senders post into the mailbox as usual; the actor's dispatcher
//     runs it (the node's workers unless the props chose one). A local send
//     from an inline Receive never runs its target inline: only a reader
//     does.
//   - Supervision is protoactor's: a panic in an inline Receive is recovered
//     by the mailbox and escalated as from any mailbox run.

// Bounds of one inline run, after which the reader hands the mailbox to
// the actor's dispatcher and goes back to its link.
const (
	inlineRunMsgs = 64
	inlineRunTime = 200 * time.Microsecond
)

const (
	mbIdle int32 = iota
	mbRunning
)

// inlineMailbox is a pa.Mailbox that a link's reader may run inline
// (deliverInline). It keeps protoactor's mailbox contract: one consumer at a
// time, system messages first, Suspend/Resume, yields every Throughput
// messages, panics escalated.
type inlineMailbox struct {
	node       *Node
	status     atomic.Int32
	suspended  atomic.Bool
	dead       atomic.Bool // the actor is gone: deliver through protoactor (a dead letter)
	userN      atomic.Int32
	sysN       atomic.Int32
	mu         sync.Mutex
	user       ring[any] // guarded by mu
	sys        ring[any] // guarded by mu
	invoker    pa.MessageInvoker
	dispatcher pa.Dispatcher
	self       *pa.PID
	proc       pa.Process // the actor's process in the registry, to tell when it is gone
}

var _ pa.Mailbox = (*inlineMailbox)(nil)

// Inline returns a copy of props with the node's inline mailbox, unless
// they chose a mailbox of their own, and the node's dispatcher for runs off
// the reader, unless they chose one. A message that arrives
// over a link for such an actor runs its Receive on the link's reader when
// the actor is idle (see above). Package procnode puts it on a child's root
// actor, and the activator on the kinds it spawns. On a nil Node it returns
// props unchanged.
func (n *Node) Inline(props *pa.Props) *pa.Props {
	if n == nil {
		return props
	}
	var opts []pa.PropsOption
	if !propsField(props, "mailboxProducer") {
		opts = append(opts, pa.WithMailbox(n.newInlineMailbox))
	}
	if !propsField(props, "dispatcher") {
		opts = append(opts, pa.WithDispatcher(n.pool))
	}
	if len(opts) == 0 {
		return props
	}
	// A copy: a kind's producer may hand out one Props to several nodes.
	return props.Clone(opts...)
}

// propsField reports whether the (func or interface) field name of props is
// set: protoactor keeps Props' fields unexported, and a kind that chose its
// own mailbox or dispatcher must keep it.
func propsField(props *pa.Props, name string) bool {
	f := reflect.ValueOf(props).Elem().FieldByName(name)
	return f.IsValid() && !f.IsNil()
}

func (n *Node) newInlineMailbox() pa.Mailbox { return &inlineMailbox{node: n} }

// RegisterHandlers implements pa.Mailbox. protoactor calls it once the
// actor's PID is registered: the mailbox registers itself with the node so
// that links find it by the actor's id.
func (m *inlineMailbox) RegisterHandlers(invoker pa.MessageInvoker, dispatcher pa.Dispatcher) {
	m.invoker, m.dispatcher = invoker, dispatcher
	if s, ok := invoker.(interface{ Self() *pa.PID }); ok && s.Self() != nil {
		m.self = s.Self()
		if p, ok := m.node.system.ProcessRegistry.GetLocal(m.self.Id); ok {
			m.proc = p
			m.node.inline.Store(m.self.Id, m)
		}
	}
}

// Start implements pa.Mailbox.
func (m *inlineMailbox) Start() {}

// UserMessageCount implements pa.Mailbox.
func (m *inlineMailbox) UserMessageCount() int { return int(m.userN.Load()) }

// PostUserMessage implements pa.Mailbox: a message from anyone but a
// link's reader, run by the dispatcher.
func (m *inlineMailbox) PostUserMessage(msg any) {
	m.pushUser(msg)
	m.schedule()
}

// PostSystemMessage implements pa.Mailbox.
func (m *inlineMailbox) PostSystemMessage(msg any) {
	m.mu.Lock()
	m.sys.push(msg)
	m.mu.Unlock()
	m.sysN.Add(1)
	m.schedule()
}

func (m *inlineMailbox) pushUser(msg any) {
	m.mu.Lock()
	m.user.push(msg)
	m.mu.Unlock()
	m.userN.Add(1)
}

func (m *inlineMailbox) schedule() {
	if m.status.CompareAndSwap(mbIdle, mbRunning) {
		m.dispatcher.Schedule(m.runScheduled)
	}
}

// deliverInline is the reader's post: when the mailbox is idle, the reader
// runs it (lending its Handler call to the actor); otherwise the message
// waits behind the run in progress. It must be the last thing the reader's
// Deliver does.
func (m *inlineMailbox) deliverInline(msg any, ep *mailbox.Endpoint) {
	if claimed, direct := m.claim(); claimed {
		m.runClaimed(msg, ep, direct, nil, 0)
		return
	}
	m.pushUser(msg)
	m.schedule()
}

// claim makes the reader the runner of an idle mailbox (claimed); direct
// says nothing waits in it, so the reader's message can run at once,
// without a queue.
func (m *inlineMailbox) claim() (claimed, direct bool) {
	if !m.status.CompareAndSwap(mbIdle, mbRunning) {
		return false, false
	}
	return true, m.sysN.Load() == 0 && m.userN.Load() == 0 && !m.suspended.Load()
}

// runClaimed runs a mailbox the reader claimed, msg first. When direct and
// ackSeq is not 0, msg is the ackSeq-th message of ep's stream for an
// actor whose link counts finished messages (ackCounter.deliveredDirect):
// it is acknowledged (by ackc) as soon as its Receive returns, or, when it
// fails, once its supervisor marks it finished (invokeOne).
func (m *inlineMailbox) runClaimed(msg any, ep *mailbox.Endpoint, direct bool, ackc *ackCounter, ackSeq uint64) {
	n := m.node
	// Otherwise the message joins the queue before the call is lent: once
	// lent, the role may move to a reader that queues the messages behind
	// this one.
	if !direct {
		m.pushUser(msg)
	}
	n.lent.Add(1)
	ep.Lend()
	if afterLend != nil {
		afterLend()
	}
	if direct {
		m.invokeOne(msg, ep, ackc, ackSeq)
	}
	m.process(true)
	n.lent.Add(-1)
}

// afterLend, when set (by a test), runs right after a reader lends its call
// to an inline run.
var afterLend func()

// afterStopInvoke, when set (by a test), runs after the mailbox handed
// its actor a Stop or Terminated, before it checks whether the actor is gone.
var afterStopInvoke func(*inlineMailbox)

// invokeOne runs one user message with the mailbox's panic handling. When
// ackSeq is not 0, ackc acknowledges it (runClaimed) once its Receive has
// returned; a failing one waits for its supervisor (Link.Finished,
// Link.NotifyFailed), so that the peer does not learn of its end before it
// learns of the failure.
func (m *inlineMailbox) invokeOne(msg any, ep *mailbox.Endpoint, ackc *ackCounter, ackSeq uint64) {
	if m.dead.Load() {
		m.deadLetter(msg)
		if ackSeq != 0 {
			ackc.finishedDirect(ep, ackSeq)
		}
		return
	}
	defer func() {
		if r := recover(); r != nil {
			if ackSeq != 0 {
				ackc.failedDirect(ep, ackSeq, msg)
			}
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	m.invoker.InvokeUserMessage(msg)
	if ackSeq != 0 {
		ackc.finishedDirect(ep, ackSeq)
	}
}

func (m *inlineMailbox) runScheduled() { m.process(false) }

// process runs the mailbox until it is empty (then idle), suspended, or,
// inline, until its budget is spent: then the dispatcher takes the run over
// (the mailbox stays running meanwhile).
func (m *inlineMailbox) process(inline bool) {
	for {
		if !m.run(inline) {
			m.dispatcher.Schedule(m.runScheduled)
			return
		}
		m.status.Store(mbIdle)
		// Messages posted after the run found the queues empty.
		if m.sysN.Load() > 0 || (!m.suspended.Load() && m.userN.Load() > 0) {
			if m.status.CompareAndSwap(mbIdle, mbRunning) {
				continue
			}
		}
		return
	}
}

// run processes messages, system ones first, and reports false when an
// inline run's budget is spent with messages left.
func (m *inlineMailbox) run(inline bool) (done bool) {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
			done = true
		}
	}()
	limit := m.dispatcher.Throughput()
	var began time.Time
	if inline {
		limit = inlineRunMsgs
	}
	for i := 0; ; i++ {
		if i >= limit {
			if inline {
				return false
			}
			i = 0
			runtime.Gosched()
		}
		if inline && i&7 == 7 {
			if began.IsZero() {
				began = time.Now()
			} else if time.Since(began) > inlineRunTime {
				return false
			}
		}
		if m.sysN.Load() > 0 {
			m.mu.Lock()
			msg, _ = m.sys.pop()
			m.mu.Unlock()
			m.sysN.Add(-1)
			switch msg.(type) {
			case *pa.SuspendMailbox:
				m.suspended.Store(true)
			case *pa.ResumeMailbox:
				m.suspended.Store(false)
			case *pa.Stop, *pa.Terminated:
				m.invoker.InvokeSystemMessage(msg)
				if afterStopInvoke != nil {
					afterStopInvoke(m)
				}
				m.checkGone()
			default:
				m.invoker.InvokeSystemMessage(msg)
			}
			continue
		}
		if m.suspended.Load() || m.userN.Load() == 0 {
			return true
		}
		m.mu.Lock()
		msg, _ = m.user.pop()
		m.mu.Unlock()
		m.userN.Add(-1)
		if m.dead.Load() {
			m.deadLetter(msg)
			continue
		}
		m.invoker.InvokeUserMessage(msg)
	}
}

// deadLetter hands a user message that reached the mailbox after its actor
// had stopped to protoactor's dead letters. A link's reader may post it
// there between protoactor's removal of the actor from the registry and the
// mailbox's checkGone: in one process a send after StopFuture finds no actor
// and dead-letters (a requester gets ErrDeadLetter at once), and protoactor's
// stopped actor would drop it without a word.
func (m *inlineMailbox) deadLetter(msg any) {
	m.node.system.DeadLetter.SendUserMessage(m.self, UnwrapFailed(msg))
}

// checkGone marks the mailbox dead once its actor has left the registry
// (it stopped: protoactor removes it while handling Stop or the last
// child's Terminated), so that links stop delivering to it directly and
// protoactor's dead-letter path answers instead.
func (m *inlineMailbox) checkGone() {
	if m.self == nil {
		return
	}
	if p, ok := m.node.system.ProcessRegistry.GetLocal(m.self.Id); ok && p == m.proc {
		return
	}
	m.dead.Store(true)
	m.node.inline.CompareAndDelete(m.self.Id, m)
}

// ReaderStats returns the reader counters of the link's current stream
// (zero while it is down): how often its reader role moved to a fresh
// goroutine, its monitor ticked, and a requester read its own answer.
func (l *Link) ReaderStats() mailbox.ReaderStats {
	l.mu.Lock()
	ep := l.ep
	l.mu.Unlock()
	if ep == nil {
		return mailbox.ReaderStats{}
	}
	return ep.ReaderStats()
}

// inlineTarget returns the inline mailbox of target, an actor of this node,
// or nil. h caches the last one found (h is the reader's).
func (h *linkHandler) inlineTarget(target *pa.PID) *inlineMailbox {
	if target == h.lastTarget {
		if mb := h.lastInline; mb != nil && !mb.dead.Load() {
			return mb
		}
	}
	n := h.link.node
	if target.Address != n.address {
		return nil
	}
	v, ok := n.inline.Load(target.Id)
	if !ok {
		return nil
	}
	mb := v.(*inlineMailbox)
	if mb.dead.Load() {
		return nil
	}
	h.lastTarget, h.lastInline = target, mb
	return mb
}

// ring is a FIFO queue in a circular buffer that grows by doubling.
type ring[T any] struct {
	buf        []T
	head, size int
}

func (r *ring[T]) push(v T) {
	if r.size == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.size)&(len(r.buf)-1)] = v
	r.size++
}

func (r *ring[T]) grow() {
	n := max(8, 2*len(r.buf))
	buf := make([]T, n)
	for i := range r.size {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}

// pop removes the oldest element; ok is false when the ring is empty.
func (r *ring[T]) pop() (v T, ok bool) {
	if r.size == 0 {
		return v, false
	}
	var zero T
	v = r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.size--
	if r.size == 0 && len(r.buf) > ringKeep {
		r.buf, r.head = nil, 0 // let a burst's memory go
	}
	return v, true
}

// ringKeep is the largest buffer an empty ring keeps.
const ringKeep = 1024

// peek returns the oldest element without removing it.
func (r *ring[T]) peek() (v T, ok bool) {
	if r.size == 0 {
		return v, false
	}
	return r.buf[r.head], true
}

// at returns the i-th oldest element (i < len).
func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

// len returns the number of elements.
func (r *ring[T]) len() int { return r.size }
