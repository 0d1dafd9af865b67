package procnode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/names"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// controlPrefix names the control process of each child in the parent's
// process registry: controlPrefix + the child's segment.
const controlPrefix = names.ControlPrefix

// control is the parent-side pa.Process that receives what a child says
// about itself: its exitNotice and its log records. It is not an actor: the
// link's reader calls it directly, so nothing the child said before exiting
// waits behind the keeper's mailbox (a stopping keeper reads no more
// messages), and the reason is recorded before the link is seen down.
type control struct{ p *Process }

var _ pa.Process = control{}

func (c control) SendUserMessage(_ *pa.PID, message any) {
	if e, ok := message.(*pa.MessageEnvelope); ok {
		message = e.Message
	}
	switch m := message.(type) {
	case *exitNotice:
		c.p.mu.Lock()
		c.p.reason = m.Reason
		c.p.mu.Unlock()
	case *logRecord:
		if m.Line {
			c.p.node.DeadLetterLine(c.p.address, m.JSON)
			return
		}
		c.p.relayLog(zerolog.Level(m.Level), m.JSON)
	case *rootFailed:
		c.p.post(evRootFailed{inc: m.Incarnation, reason: m.reason(), msg: m.message(), text: m.Text})
	case *rootRestarted:
		c.p.post(evRootRestarted{inc: m.Incarnation})
	case *assigned:
		var err error
		if m.Err != "" {
			err = fmt.Errorf("%w: %s", ErrStartFailed, m.Err)
		}
		c.p.post(evAssigned{err: err})
	}
}

// message is the message the root actor failed on, when it crossed.
func (m *rootFailed) message() any {
	if len(m.Message) == 0 {
		return nil
	}
	v, _ := mailbox.Unmarshal(m.Message)
	return v
}

// reason is the panic value as the spawner's decider gets it: the value the
// child panicked with when it crossed (a string, a registered type), else a
// *PanicError with its text.
func (m *rootFailed) reason() any {
	if len(m.Reason) > 0 {
		if v, err := mailbox.Unmarshal(m.Reason); err == nil && v != nil {
			return v
		}
	}
	return &PanicError{Text: m.Text, MessageType: m.MessageType}
}

func (control) SendSystemMessage(*pa.PID, any) {}
func (control) Stop(*pa.PID)                   {}

// relayLogger is the logger that receives a child's records: the one given
// with WithLogger, else the node's. When that one is disabled (the quiet
// default) and PROCACTOR_LOG names a level, records go to stderr as JSON.
func relayLogger(node zerolog.Logger, opt *zerolog.Logger) zerolog.Logger {
	l := node
	if opt != nil {
		l = *opt
	}
	if l.GetLevel() == zerolog.Disabled {
		if lvl, ok := envLogLevel(); ok {
			l = zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger()
		}
	}
	return l
}

// envLogLevel reads PROCACTOR_LOG (debug, info, warn...).
func envLogLevel() (zerolog.Level, bool) {
	s := os.Getenv(envLog)
	if s == "" {
		return zerolog.NoLevel, false
	}
	l, err := zerolog.ParseLevel(s)
	if err != nil || l == zerolog.NoLevel {
		return zerolog.NoLevel, false
	}
	return l, true
}

// childLogLevel is the level a child logs at: the relay logger's, so that
// the child does not even build records the parent would drop.
func childLogLevel(l zerolog.Logger) zerolog.Level {
	lvl := l.GetLevel()
	if g := zerolog.GlobalLevel(); g > lvl {
		lvl = g
	}
	return lvl
}

// relayLog writes a child's log record to the parent's logger at the
// record's level, tagged by the parent with the child's real address, kind,
// name and OS pid (from the link the record came over: a child cannot speak
// for another). The record's own fields are merged in, except its level,
// time and node; fields that would shadow the parent's tags (a record the
// child relayed from one of its own children carries that one's tags) nest
// under "from".
func (p *Process) relayLog(lvl zerolog.Level, rec []byte) {
	if lvl < p.relay.GetLevel() || lvl < zerolog.GlobalLevel() {
		return // below the logger's level: no event is built
	}
	ok, skipped := p.relayLimit.allow()
	if skipped > 0 {
		p.logger().Warn().Int64("skipped", skipped).Dur("interval", relayWindow).
			Msg("child log records not relayed (rate limit)")
	}
	if !ok {
		return
	}
	var fields map[string]any
	d := json.NewDecoder(bytes.NewReader(rec))
	d.UseNumber()
	if err := d.Decode(&fields); err != nil {
		p.logger().WithLevel(lvl).Int("os_pid", p.OSPid()).Bytes("record", bytes.TrimSpace(rec)).Msg("child log")
		return
	}
	msg, _ := fields[zerolog.MessageFieldName].(string)
	for _, k := range []string{zerolog.LevelFieldName, zerolog.MessageFieldName, zerolog.TimestampFieldName, "node"} {
		delete(fields, k)
	}
	var from map[string]any
	for _, k := range relayTags {
		if v, ok := fields[k]; ok {
			if from == nil {
				from = make(map[string]any)
			}
			from[k] = v
			delete(fields, k)
		}
	}
	e := p.logger().WithLevel(lvl).Int("os_pid", p.OSPid()).Fields(fields)
	if from != nil {
		e = e.Interface("from", from)
	}
	e.Msg(msg)
}

// A child's records are relayed at most relayBurst per relayWindow: a
// child (buggy, or compromised: its records are its word) cannot flood its
// parent's log. The count of those skipped is logged, at warn, before the
// first record relayed in a later window.
const (
	relayBurst  = 1000
	relayWindow = time.Second
)

// relayLimiter counts a child's records per window (see relayBurst).
type relayLimiter struct {
	now func() time.Time // time.Now when nil (a test sets its own)

	mu      sync.Mutex
	start   time.Time // of the current window (guarded by mu)
	n       int       // records relayed in it (guarded by mu)
	skipped int64     // records skipped since the last summary (guarded by mu)
}

// allow says whether one more record may be relayed now, and how many were
// skipped before it when it starts a new window (to be logged first).
func (l *relayLimiter) allow() (ok bool, skipped int64) {
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() || t.Sub(l.start) >= relayWindow {
		skipped = l.skipped
		l.start, l.n, l.skipped = t, 0, 0
	}
	if l.n >= relayBurst {
		l.skipped++
		return false, skipped
	}
	l.n++
	return true, skipped
}

// relayTags are the fields the parent tags a child's records with.
var relayTags = []string{"child", "kind", "name", "os_pid", "from"}
