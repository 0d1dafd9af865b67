package actor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/names"
	"github.com/procactor/procactor/internal/printable"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// Dead letters are visible by default, as protoactor's are: a node given no
// logger writes one line per dead letter (target, type, reason) to its
// dead-letter writer, os.Stderr unless WithDeadLetterLog says otherwise; a
// node given a logger (WithLogger) logs them there at warn level instead.
// Either way at most 10 a second per link (and 10 for the node's own), then
// one summary line with the count: a storm of undecodable messages costs a
// few lines, not a flood (issue 14). Routine dead letters are logged at
// debug level and never printed: system messages that cannot arrive (their
// target gone, or no link to it), a DeadLetterResponse to a requester
// already gone, the last events of protoactor remote's own endpoint actors,
// and everything while the node is closing.

// deadLetters reports a node's dead letters. Safe for concurrent use.
type deadLetters struct {
	node    string
	log     zerolog.Logger
	useLog  bool      // a logger was given: it decides what is written
	w       io.Writer // the lines' writer when no logger was given; nil: silent
	wmu     sync.Mutex
	closing atomic.Bool

	mu     sync.Mutex
	limits map[string]*limiter // by peer, "" for the node's own (guarded by mu)
}

// deadLetterInterval is the rate limiter's interval.
const deadLetterInterval = time.Second

func newDeadLetters(node string, cfg *nodeConfig, log zerolog.Logger) *deadLetters {
	d := &deadLetters{node: node, log: log, useLog: cfg.loggerSet, limits: map[string]*limiter{}}
	if !cfg.loggerSet {
		d.w = os.Stderr
		if cfg.deadLetterLogSet {
			d.w = cfg.deadLetterLog
		}
	}
	return d
}

// deadLetter is one dead letter to report.
type deadLetter struct {
	msg            string // the log message: "dead letter", "dead letter: undecodable message"...
	peer           string // the link it concerns, "" for none
	target, sender *pa.PID
	typ            string // the message's Go type, "" when it did not decode
	lane           string
	reason         error
	routine        bool // logged at debug, never printed
}

func (d *deadLetters) limiter(peer string) *limiter {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.limits[peer]
	if l == nil {
		l = &limiter{every: deadLetterInterval, summary: func(n int64) { d.summary(peer, n) }}
		d.limits[peer] = l
	}
	return l
}

// forget drops the rate limiter of a link gone for good, writing its
// pending summary: a parent of many short-lived children would otherwise
// keep one per child address until it closes. A later dead letter of that
// address (a PID that cached the link) makes a new one.
func (d *deadLetters) forget(peer string) {
	d.mu.Lock()
	l := d.limits[peer]
	delete(d.limits, peer)
	d.mu.Unlock()
	if l != nil {
		l.stop()
	}
}

func (d *deadLetters) report(r deadLetter) {
	if r.routine || d.closing.Load() {
		if d.useLog {
			d.event(d.log.Debug(), r)
		}
		return
	}
	if d.useLog {
		e := d.log.Warn()
		if e == nil {
			return // the logger's level drops it: nothing to count
		}
		if !d.limiter(r.peer).allow() {
			e.Discard()
			return
		}
		d.event(e, r)
		return
	}
	if d.w == nil || !d.limiter(r.peer).allow() {
		return
	}
	line := fmt.Sprintf("procactor: %s at %s: %s to %s", r.msg, d.node, typeOrUnknown(r.typ), pidString(r.target))
	if r.sender != nil {
		line += " from " + pidString(r.sender)
	}
	if r.peer != "" {
		line += " (link " + r.peer + ")"
	}
	d.write(line + ": " + reasonString(r.reason) + "\n")
}

func (d *deadLetters) event(e *zerolog.Event, r deadLetter) {
	if e == nil {
		return
	}
	e = e.Err(r.reason).Str("target", pidString(r.target)).Str("sender", pidString(r.sender))
	if r.peer != "" {
		e = e.Str("peer", r.peer)
	}
	if r.typ != "" {
		e = e.Str("type", r.typ)
	}
	if r.lane != "" {
		e = e.Str("lane", r.lane)
	}
	e.Msg(r.msg)
}

func (d *deadLetters) summary(peer string, n int64) {
	if d.useLog {
		e := d.log.Warn().Int64("skipped", n).Dur("interval", deadLetterInterval)
		if peer != "" {
			e = e.Str("peer", peer)
		}
		e.Msg("dead letters not logged (rate limit)")
		return
	}
	where := d.node
	if peer != "" {
		where += " (link " + peer + ")"
	}
	d.write(fmt.Sprintf("procactor: %d more dead letters at %s not printed (at most %d a second)\n", n, where, limiterBurst))
}

// line writes a line about a dead letter reported elsewhere (a child's,
// relayed by its parent), the way this node reports its own.
func (d *deadLetters) line(peer string, line []byte) {
	if d.closing.Load() {
		return
	}
	if d.useLog {
		e := d.log.Warn()
		if e == nil || !d.limiter(peer).allow() {
			if e != nil {
				e.Discard()
			}
			return
		}
		e.Str("peer", peer).Bytes("line", trimNewline(line)).Msg("dead letter")
		return
	}
	if d.w != nil && d.limiter(peer).allow() {
		d.write(relayedLine(trimNewline(line)) + "\n")
	}
}

// maxRelayedLine bounds a dead-letter line relayed from another node, as
// printed.
const maxRelayedLine = 1024

// relayedLine makes a line another node sent fit for this node's stderr: one
// line (control characters, newlines among them, become '?', so a child
// cannot forge its parent's lines or send its terminal escape sequences),
// at most maxRelayedLine bytes.
func relayedLine(line []byte) string {
	cut := len(line) > maxRelayedLine
	if cut {
		line = line[:maxRelayedLine]
	}
	s := printable.String(string(line))
	if cut {
		s += "…"
	}
	return s
}

func (d *deadLetters) write(s string) {
	d.wmu.Lock()
	_, _ = io.WriteString(d.w, s)
	d.wmu.Unlock()
}

// close stops the limiters (their pending summaries are written now) and
// silences routine shutdown dead letters.
func (d *deadLetters) close() {
	d.closing.Store(true)
	d.mu.Lock()
	limits := d.limits
	d.limits = map[string]*limiter{}
	d.mu.Unlock()
	for _, l := range limits {
		l.stop()
	}
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func typeOrUnknown(t string) string {
	if t == "" {
		return "a message that did not decode"
	}
	return t
}

func reasonString(err error) string {
	if err == nil {
		return "no reason"
	}
	return err.Error()
}

// routineMessage reports whether a dead letter of m is routine while
// actors stop: protoactor's system and lifecycle messages, and a
// DeadLetterResponse to a requester already gone.
func routineMessage(m any) bool {
	switch m.(type) {
	case pa.SystemMessage, pa.AutoReceiveMessage, pa.MailboxMessage, *pa.DeadLetterResponse:
		return true
	}
	return false
}

// remoteMachinery reports whether pid is protoactor remote's endpoint
// supervisor or one of its endpoint actors. When the remote stops (a reach
// host closing), its endpoints send their last events to a supervisor
// already gone: those dead letters are the remote's own, never a user's.
func remoteMachinery(pid *pa.PID) bool {
	if pid == nil {
		return false
	}
	id := pid.Id
	return id == names.RemoteEndpointSupervisor ||
		strings.HasPrefix(id, names.RemoteEndpointSupervisor) && id[len(names.RemoteEndpointSupervisor)] == '/'
}

// encodeFailure reports whether a send failed because of the message
// itself: it could not be encoded for the link.
func encodeFailure(err error) bool {
	return errors.Is(err, mailbox.ErrTypeNotRegistered) || errors.Is(err, mailbox.ErrEncode) ||
		errors.Is(err, mailbox.ErrMessageTooLarge) || errors.Is(err, mailbox.ErrTypeMismatch)
}

// DeadLetterLine reports a dead letter that happened in another node (a
// child process's, relayed by procnode) as this node reports its own: to
// its logger at warn level if it was given one, else as a line to its
// dead-letter writer; rate-limited per peer like the node's own.
func (n *Node) DeadLetterLine(peer string, line []byte) { n.dead.line(peer, line) }

// deadLetter accounts for a message that cannot cross the link (see
// Node.deadLetter).
func (l *Link) deadLetter(env *mailbox.Envelope, reason error) {
	l.counts.deadLetters.Add(1)
	l.node.deadLetter(l.addr, env, reason)
}

// Undeliverable is the message of a DeadLetterEvent published for a message
// that could not cross a link (or could not be decoded after crossing).
type Undeliverable struct {
	Message any   // the message, or nil if it did not decode
	Reason  error // why: ErrLinkGone, ErrHeldFull, mailbox.ErrTypeNotRegistered ...
}

// String says what could not be delivered and why.
func (u *Undeliverable) String() string {
	return fmt.Sprintf("undeliverable %T: %v", u.Message, u.Reason)
}

// pidString formats a PID for logs: id@address, "" for nil.
func pidString(p *pa.PID) string {
	if p == nil {
		return ""
	}
	return p.Id + "@" + p.Address
}

func sendSystem(sys *pa.ActorSystem, to *pa.PID, m any) {
	p, _ := sys.ProcessRegistry.Get(to)
	p.SendSystemMessage(to, m)
}
