package procnode

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/rs/zerolog"
)

// childLogger logs at the parent's level (or PROCACTOR_LOG) into records
// forwarded to the parent, which relays them to its logger. With
// PROCACTOR_LOG set, protoactor's own records at that level go too.
func childLogger(b *boot, fw *forwardWriter) []actor.NodeOption {
	lvl := zerolog.Level(b.LogLevel)
	env, fromEnv := envLogLevel()
	if fromEnv {
		lvl = env
	}
	if lvl == zerolog.Disabled {
		// Quiet, but for dead letters: their lines go to the parent, which
		// prints them as its own (not to our stderr, whose tail is kept for
		// the exit status).
		return []actor.NodeOption{actor.WithDeadLetterLog(deadLetterLines{fw})}
	}
	opts := []actor.NodeOption{actor.WithLogger(zerolog.New(fw).Level(lvl).With().Timestamp().Logger())}
	if fromEnv {
		opts = append(opts, actor.WithProtoactorLogLevel(lvl))
	}
	return opts
}

// forwardWriter sends each log record to the parent's control process while
// the link is up, and writes warnings and errors to stderr otherwise. A
// Write never waits for the link: records queue (bounded) for one goroutine
// that sends them, so a log line inside a send that fails (a dead letter is
// logged) cannot recurse into another send or block the caller.
type forwardWriter struct {
	control *pa.PID
	queue   chan logRecord
	done    chan struct{}
	dropped atomic.Int64
	// connected is set once the link has come up: before, the link holds
	// what is sent; after, a link that is not up will never be again.
	connected atomic.Bool

	mu      sync.RWMutex
	running bool // guarded by mu
}

// forwardQueue bounds the records waiting to cross the link.
const forwardQueue = 1024

func newForwardWriter(control *pa.PID) *forwardWriter {
	return &forwardWriter{control: control, queue: make(chan logRecord, forwardQueue), done: make(chan struct{})}
}

// start forwards records over link from now on.
func (w *forwardWriter) start(n *actor.Node, link *actor.Link) {
	w.mu.Lock()
	w.running = true
	w.mu.Unlock()
	go func() {
		defer close(w.done)
		for rec := range w.queue {
			// Never send on a link that is gone: the dead letter would be
			// logged, and forwarded, and so on.
			if w.connected.Load() && !link.IsUp() {
				w.fallback(zerolog.Level(rec.Level), rec.JSON)
				continue
			}
			n.Root().Send(w.control, &rec)
		}
	}()
}

// stop ends forwarding: queued records are sent (bounded by ctx), later ones
// fall back to stderr.
func (w *forwardWriter) stop(ctx context.Context) {
	w.mu.Lock()
	was := w.running
	w.running = false
	w.mu.Unlock()
	if !was {
		return
	}
	close(w.queue)
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	if d := w.dropped.Load(); d > 0 {
		fmt.Fprintf(os.Stderr, "procactor: %d log records dropped (queue full)\n", d)
	}
}

func (w *forwardWriter) Write(p []byte) (int, error) {
	return w.WriteLevel(zerolog.NoLevel, p)
}

// WriteLevel implements zerolog.LevelWriter.
func (w *forwardWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.running {
		w.fallback(l, p)
		return len(p), nil
	}
	select {
	case w.queue <- logRecord{Level: int8(l), JSON: append([]byte(nil), p...)}:
	default:
		w.dropped.Add(1)
	}
	return len(p), nil
}

// deadLetterLines forwards the child node's dead-letter lines to the
// parent (a logRecord marked Line), through the same queue as the records.
type deadLetterLines struct{ w *forwardWriter }

func (d deadLetterLines) Write(p []byte) (int, error) {
	d.w.mu.RLock()
	defer d.w.mu.RUnlock()
	if !d.w.running {
		d.w.fallback(zerolog.WarnLevel, p)
		return len(p), nil
	}
	select {
	case d.w.queue <- logRecord{Level: int8(zerolog.WarnLevel), JSON: append([]byte(nil), p...), Line: true}:
	default:
		d.w.dropped.Add(1)
	}
	return len(p), nil
}

// fallback writes what cannot be forwarded to stderr, warnings and above
// only: the parent copies the child's stderr, but routine records of a
// child on its way out are not worth it.
func (w *forwardWriter) fallback(l zerolog.Level, p []byte) {
	if l >= zerolog.WarnLevel && l != zerolog.NoLevel {
		_, _ = os.Stderr.Write(p)
	}
}
