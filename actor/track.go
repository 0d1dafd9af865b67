package actor

import (
	"strings"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/names"
	"github.com/procactor/procactor/mailbox"
)

// tracked reports whether a message is one that the link's tables record
// and a loss answers: a request (its sender is a future) or a Watch.
func tracked(env *mailbox.Envelope) bool {
	if env.Lane == mailbox.LaneSystem {
		w, ok := env.Message.(*pa.Watch)
		return ok && w.Watcher != nil
	}
	return isFuture(env.Sender)
}

// futurePrefix starts the id of every protoactor future.
const futurePrefix = names.FuturePrefix

func isFuture(p *pa.PID) bool { return p != nil && strings.HasPrefix(p.Id, futurePrefix) }

// trackLocked records what an outgoing message means for the link's tables.
func (l *Link) trackLocked(env *mailbox.Envelope) {
	if env.Lane == mailbox.LaneSystem {
		switch m := env.Message.(type) {
		case *pa.Watch:
			if m.Watcher != nil {
				addWatch(l.watches, keyOf(env.Target), m.Watcher)
			}
		case *pa.Unwatch:
			if m.Watcher != nil {
				dropWatch(l.watches, keyOf(env.Target), keyOf(m.Watcher))
			}
		case *pa.Terminated:
			// A watchee on this side told a watcher behind the link.
			if m.Who != nil && dropWatch(l.watchedBy, keyOf(m.Who), keyOf(env.Target)) {
				l.nWatchedBy--
			}
		}
		return
	}
	if isFuture(env.Sender) {
		if len(l.inflight) >= l.sweepAt {
			l.sweepLocked()
		}
		l.inflight[keyOf(env.Sender)] = inflight{pid: env.Sender, since: time.Now(), retained: l.retainsLocked(env)}
	}
}

// untrackLocked undoes trackLocked for a message that did not go out.
func (l *Link) untrackLocked(env *mailbox.Envelope) {
	if env.Lane == mailbox.LaneSystem {
		if m, ok := env.Message.(*pa.Watch); ok && m.Watcher != nil {
			dropWatch(l.watches, keyOf(env.Target), keyOf(m.Watcher))
		}
		return
	}
	if isFuture(env.Sender) {
		delete(l.inflight, keyOf(env.Sender))
	}
}

// addWatch records a pair; it reports whether the pair is new.
func addWatch(t map[pidKey]map[pidKey]*pa.PID, watchee pidKey, watcher *pa.PID) bool {
	ws := t[watchee]
	if ws == nil {
		ws = make(map[pidKey]*pa.PID)
		t[watchee] = ws
	}
	k := keyOf(watcher)
	_, had := ws[k]
	ws[k] = watcher
	return !had
}

// dropWatch forgets a pair; it reports whether the pair was there.
func dropWatch(t map[pidKey]map[pidKey]*pa.PID, watchee, watcher pidKey) bool {
	ws := t[watchee]
	if ws == nil {
		return false
	}
	_, had := ws[watcher]
	delete(ws, watcher)
	if len(ws) == 0 {
		delete(t, watchee)
	}
	return had
}

func hasWatch(t map[pidKey]map[pidKey]*pa.PID, watchee, watcher pidKey) bool {
	_, ok := t[watchee][watcher]
	return ok
}

// sweepLocked forgets requests whose local future is gone (answered by
// another path or timed out) and any older than inflightMaxAge.
func (l *Link) sweepLocked() {
	now := time.Now()
	for k, f := range l.inflight {
		gone := now.Sub(f.since) > inflightMaxAge
		if !gone && f.pid.Address == l.node.address {
			_, ok := l.node.system.ProcessRegistry.GetLocal(f.pid.Id)
			gone = !ok
		}
		if gone {
			delete(l.inflight, k)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.inflight))
}

// forgetVia drops requests in flight through l whose future lies behind the
// lost link via: their answer can no longer reach them.
func (l *Link) forgetVia(via *Link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, f := range l.inflight {
		if l.node.routesVia(f.pid.Address, via) {
			delete(l.inflight, k)
		}
	}
}

// lost runs once per stream that ends (ep nil: a link closed while down):
// watchers of actors behind the link get Terminated{AddressTerminated},
// actors watched from behind it get an Unwatch, requests in flight get a
// DeadLetterResponse, and the other links forget requests whose future was
// behind this one.
func (l *Link) lost(ep *mailbox.Endpoint, err error) {
	l.mu.Lock()
	if ep != nil && l.ep != ep {
		l.mu.Unlock()
		return
	}
	l.ep, l.h = nil, nil
	l.flushing = false
	l.resumeAllLocked() // the peer's inboxes start over with its next stream
	l.counts.retireLocked(ep)
	if ep != nil {
		l.ret.endLocked(ep)
	}
	if l.state == linkUp {
		if l.reconnect {
			l.state = linkDown
		} else {
			l.state = linkGone
		}
	}
	if l.upClosed {
		l.upCh, l.upClosed = make(chan struct{}), false
	}
	gone := l.state == linkGone
	watches, watchedBy, requests := l.watches, l.watchedBy, l.inflight
	l.watches, l.watchedBy, l.nWatchedBy = make(map[pidKey]map[pidKey]*pa.PID), make(map[pidKey]map[pidKey]*pa.PID), 0
	l.inflight, l.sweepAt = make(map[pidKey]inflight), minSweep
	// What the peer did not acknowledge goes again, first (or, gone, is
	// dropped, but for a request still waiting, which is a dead letter: see
	// below).
	if retained := l.takeRetainedLocked(); len(retained) > 0 {
		front := make([]heldMsg, 0, len(retained)+len(l.held))
		for _, m := range retained {
			front = append(front, heldMsg{env: m.env, seq: m.seq})
		}
		l.held = append(front, l.held...)
	}
	if !gone {
		// A request to the retained actor whose message the peer finished
		// but did not answer yet is not failed: the peer comes back, and
		// the actor may still answer it (as in one process, where such a
		// request waits for its own timeout).
		for k, f := range requests {
			if f.retained {
				delete(requests, k)
				l.inflight[k] = f
			}
		}
	}
	// Held messages still go out (down) or become dead letters (gone, with a
	// DeadLetterResponse for a request): either way their watches and
	// requests are not answered here. A redelivered message that is not a
	// waiting request, when the link is gone, is dropped without a dead
	// letter: the peer had it already (like the mailbox of an actor that
	// stops, whose messages protoactor drops), and its sender may have had
	// its answer.
	var held []heldMsg
	dropped := 0
	for i := range l.held {
		m := &l.held[i]
		env := &m.env
		waiting := false
		if env.Lane == mailbox.LaneSystem {
			switch w := env.Message.(type) {
			case *pa.Watch:
				if w.Watcher != nil {
					dropWatch(watches, keyOf(env.Target), keyOf(w.Watcher))
					if !gone {
						addWatch(l.watches, keyOf(env.Target), w.Watcher)
					}
				}
			case *pa.Unwatch:
				// It cancels a held Watch before it (in the order they go
				// out), as it did when it was held.
				if w.Watcher != nil && !gone {
					dropWatch(l.watches, keyOf(env.Target), keyOf(w.Watcher))
				}
			}
		} else if isFuture(env.Sender) {
			k := keyOf(env.Sender)
			if f, ok := requests[k]; ok {
				delete(requests, k)
				waiting = true
				if !gone {
					l.inflight[k] = f
				}
			}
		}
		if gone {
			if m.seq != 0 && !waiting {
				dropped++
				continue
			}
			held = append(held, *m)
		}
	}
	if gone {
		l.held, l.heldBytes = nil, 0
		if dropped > 0 {
			l.node.log.Debug().Str("peer", l.addr).Int("messages", dropped).Msg("link gone with messages its peer had not acknowledged; dropped")
		}
	}
	onDown := l.onDown[:len(l.onDown):len(l.onDown)]
	l.mu.Unlock()

	sys := l.node.system
	nwatch := 0
	for watchee, ws := range watches {
		who := watchee.pid()
		for _, w := range ws {
			sendSystem(sys, w, &pa.Terminated{Who: who, Why: pa.TerminatedReason_AddressTerminated})
			nwatch++
		}
	}
	for watchee, ws := range watchedBy {
		to := watchee.pid()
		for _, w := range ws {
			sendSystem(sys, to, &pa.Unwatch{Watcher: w})
		}
	}
	for _, f := range requests {
		sys.Root.Send(f.pid, &pa.DeadLetterResponse{})
	}
	for _, o := range l.node.Links() {
		if o != l {
			o.forgetVia(l)
		}
	}
	if gone {
		for i := range held {
			l.deadLetter(&held[i].env, ErrLinkGone)
		}
		l.stopSpawned()
		l.node.removeLink(l)
		l.node.dead.forget(l.addr)
	}
	if err != nil {
		l.node.log.Info().Err(err).Str("peer", l.addr).Bool("gone", gone).Int("watchers", nwatch).Int("requests", len(requests)).Msg("link down")
	}
	sys.EventStream.Publish(&LinkDown{Address: l.addr, Err: err, Gone: gone})
	for _, f := range onDown {
		f(err)
	}
}
