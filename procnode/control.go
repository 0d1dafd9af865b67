package procnode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/names"
	"github.com/procactor/procactor/internal/printable"
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
// for another). The record's own fields are merged in, in its order, except
// its level, time and node; fields that would shadow the parent's tags (a
// record the child relayed from one of its own children carries that one's
// tags) nest under "from". Values are copied as the child wrote them, never
// decoded: a record costs the parent a small multiple of its size, whatever
// it holds (a record of many small values decoded into Go maps and
// interfaces cost 35–60 times its size); a record with line breaks between
// its tokens is compacted first, so that it stays one line of the parent's
// log, and bytes that are not UTF-8 become U+FFFD. Control characters in
// what a console writer prints unquoted (the message, field names, the
// caller) become '?'. A record over maxRelayRecord is relayed cut.
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
	if len(rec) > maxRelayRecord {
		p.logger().WithLevel(lvl).Int("os_pid", p.OSPid()).Int("bytes", len(rec)).
			Bytes("record", rec[:maxRelayRecord]).Msg("child log record cut")
		return
	}
	if !json.Valid(rec) || !isObject(rec) {
		p.logger().WithLevel(lvl).Int("os_pid", p.OSPid()).Bytes("record", bytes.TrimSpace(rec)).Msg("child log")
		return
	}
	if bytes.ContainsAny(rec, "\r\n") {
		// Values are copied as written: a line break between their tokens
		// would end the parent's line there, and what follows would be a
		// line of the child's (a record of its own, tagged as another).
		var b bytes.Buffer
		b.Grow(len(rec))
		_ = json.Compact(&b, rec) // valid: it compacts
		rec = b.Bytes()
	}
	if !utf8.Valid(rec) {
		// encoding/json takes any byte in a string; the parent's log is
		// UTF-8, as zerolog writes it.
		rec = validUTF8(rec)
	}
	var msg string
	e := p.logger().WithLevel(lvl).Int("os_pid", p.OSPid())
	var from *zerolog.Event
	eachField(rec, func(key string, value []byte) {
		// A console writer prints the message, field names and the caller
		// unquoted: the child's control characters (an escape sequence, a
		// line break) become '?' there, as in its dead-letter lines.
		key = printable.String(key)
		switch {
		case key == zerolog.MessageFieldName:
			_ = json.Unmarshal(value, &msg) // a message that is no string is dropped
			msg = printable.String(msg)
		case key == zerolog.CallerFieldName:
			var caller string
			if json.Unmarshal(value, &caller) == nil {
				e.Str(key, printable.String(caller))
			} else {
				e.RawJSON(key, value)
			}
		case key == zerolog.LevelFieldName, key == zerolog.TimestampFieldName, key == "node":
		case slices.Contains(relayTags, key):
			if from == nil {
				from = zerolog.Dict()
			}
			from.RawJSON(key, value)
		default:
			e.RawJSON(key, value)
		}
	})
	if from != nil {
		e.Dict("from", from)
	}
	e.Msg(msg)
}

// validUTF8 returns b with each byte that is not UTF-8 as U+FFFD, as
// encoding/json decodes it.
func validUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/2)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, r)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// isObject reports whether the valid JSON text b is an object.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// eachField calls f with each top-level key of the JSON object rec (valid
// JSON, checked by the caller) and its value as written, a slice of rec:
// nothing is decoded but keys with escapes.
func eachField(rec []byte, f func(key string, value []byte)) {
	i := skipSpace(rec, bytes.IndexByte(rec, '{')+1)
	for i < len(rec) && rec[i] != '}' {
		end := skipValue(rec, i) // the key, a string
		key := string(rec[i+1 : end-1])
		if bytes.IndexByte(rec[i:end], '\\') >= 0 {
			_ = json.Unmarshal(rec[i:end], &key) // valid: it decodes
		}
		i = skipSpace(rec, skipSpace(rec, end)+1) // past the colon
		end = skipValue(rec, i)
		f(key, rec[i:end])
		i = skipSpace(rec, end)
		if i < len(rec) && rec[i] == ',' {
			i = skipSpace(rec, i+1)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value that starts at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i // the end of the enclosing object: a scalar ended
			}
		case ',', ' ', '\t', '\r', '\n':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// A child's records are relayed at most relayBurst per relayWindow: a
// child (buggy, or compromised: its records are its word) cannot flood its
// parent's log. The count of those skipped is logged, at warn, before the
// first record relayed in a later window.
const (
	relayBurst  = 1000
	relayWindow = time.Second
)

// maxRelayRecord bounds the record a child's link relays in full: a longer
// one is relayed cut, as a string, with its length. zerolog's records are
// far shorter; a frame may be 256 MiB.
const maxRelayRecord = 1 << 20

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
