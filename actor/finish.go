package actor

import (
	"reflect"
	"sync/atomic"
	"unsafe"

	pa "github.com/asynkron/protoactor-go/actor"
)

// Both retention's acknowledgements (ack.go) and a spawned actor's inbox
// (inbox.go) must know when the actor has finished a message a link
// delivered. The link delivers each one in a *pa.MessageEnvelope of its
// own, and a receiver middleware, the actor's outermost, recognises that
// pointer when the actor's Receive returns for it, panics on it, or a later
// middleware drops it. finishQueue keeps those envelopes in delivery order;
// the mailbox is FIFO, so finishing one finishes every one before it.

// finishEntry is one delivered message: its envelope (nil: a message that
// did not decode, finished as it arrived), its number on the stream, its
// size.
type finishEntry struct {
	env  *pa.MessageEnvelope
	seq  uint64
	size int64
}

// finishQueue holds what was delivered and not finished. Its owner guards
// it with its own mutex; npend may be read without it.
//
// Messages finish in delivery order, so a finish is almost always the
// head's: that is found without the index. The index is built only when
// a finish is not the head's (the actor's other traffic, or a middleware
// that finished a later envelope first), and dropped when the queue
// empties: each entry is indexed at most once, and a stream whose actor
// keeps up never touches a map.
type finishQueue struct {
	entries ring[finishEntry]
	index   map[*pa.MessageEnvelope]struct{} // nil, or the envelopes in entries
	npend   atomic.Int64                     // entries.len()
}

func (q *finishQueue) push(e finishEntry) {
	if e.env != nil && q.index != nil {
		q.index[e.env] = struct{}{}
	}
	q.entries.push(e)
	q.npend.Add(1)
}

func (q *finishQueue) len() int { return q.entries.len() }

// holds reports whether env is a delivered message not yet finished.
func (q *finishQueue) holds(env *pa.MessageEnvelope) bool {
	if env == nil || q.entries.len() == 0 {
		return false
	}
	if q.entries.at(0).env == env {
		return true
	}
	if q.index == nil {
		q.index = make(map[*pa.MessageEnvelope]struct{}, q.entries.len())
		for i := 0; i < q.entries.len(); i++ {
			if e := q.entries.at(i).env; e != nil {
				q.index[e] = struct{}{}
			}
		}
	}
	_, ok := q.index[env]
	return ok
}

// finish pops env, every entry before it and the undecodable entries that
// follow it. It reports the last entry popped and the bytes popped; ok is
// false when env is not a delivered message (the actor's other traffic).
func (q *finishQueue) finish(env *pa.MessageEnvelope) (last finishEntry, bytes int64, ok bool) {
	if !q.holds(env) {
		return last, 0, false
	}
	for {
		e, _ := q.entries.pop()
		if q.index != nil {
			delete(q.index, e.env)
		}
		bytes += e.size
		q.npend.Add(-1)
		if e.env == env {
			last = e
			break
		}
	}
	for q.entries.len() > 0 && q.entries.at(0).env == nil {
		last, _ = q.entries.pop()
		bytes += last.size
		q.npend.Add(-1)
	}
	if q.entries.len() == 0 {
		q.index = nil
	}
	return last, bytes, true
}

// popUndecodable pops the undecodable entries at the head: they arrived
// behind a message that was not in the queue (one the reader ran at once),
// which has now finished. It reports the last one's number.
func (q *finishQueue) popUndecodable() (seq uint64, ok bool) {
	for q.entries.len() > 0 && q.entries.at(0).env == nil {
		e, _ := q.entries.pop()
		q.npend.Add(-1)
		seq, ok = e.seq, true
	}
	if q.entries.len() == 0 {
		q.index = nil
	}
	return seq, ok
}

// reset empties the queue (a new stream is counted from 1).
func (q *finishQueue) reset() {
	q.entries = ring[finishEntry]{}
	q.index = nil
	q.npend.Store(0)
}

// PrependReceiverMiddleware returns a copy of props with mw before its
// receiver middlewares, outermost. protoactor's options only append (its
// first middleware is the outermost), so the copy's list is rebuilt
// through reflection; should protoactor rename the field, mw is appended,
// innermost. procactor puts its finish counters there (Link.AckFor), so
// that a kind's middleware that passes a message on in an envelope of its
// own does not hide it from them.
func PrependReceiverMiddleware(props *pa.Props, mw ...pa.ReceiverMiddleware) *pa.Props {
	cp := props.Clone()
	f := reflect.ValueOf(cp).Elem().FieldByName("receiverMiddleware")
	if !f.IsValid() || f.Type() != reflect.TypeOf([]pa.ReceiverMiddleware(nil)) {
		return cp.Configure(pa.WithReceiverMiddleware(mw...))
	}
	field := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	old := field.Interface().([]pa.ReceiverMiddleware)
	field.Set(reflect.Zero(f.Type()))
	return cp.Configure(pa.WithReceiverMiddleware(append(append([]pa.ReceiverMiddleware(nil), mw...), old...)...))
}
