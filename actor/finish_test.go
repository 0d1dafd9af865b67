package actor

import (
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
)

// The finish queue's index is built only for a finish that is not the
// head's and dropped when the queue empties; with or without it, a finish
// pops exactly what it should.
func TestFinishQueueOrderAndIndex(t *testing.T) {
	var q finishQueue
	envs := make([]*pa.MessageEnvelope, 6)
	for i := range envs {
		envs[i] = &pa.MessageEnvelope{Message: i}
		q.push(finishEntry{env: envs[i], seq: uint64(i + 1), size: 10})
		if i == 2 {
			q.push(finishEntry{seq: 100, size: 1}) // undecodable: finished with the one before it
		}
	}
	if q.index != nil {
		t.Fatal("index built while every finish was the head's")
	}

	last, bytes, ok := q.finish(envs[0])
	if !ok || last.seq != 1 || bytes != 10 || q.index != nil {
		t.Fatalf("head finish: last %d bytes %d ok %v index %v", last.seq, bytes, ok, q.index != nil)
	}
	// Another actor's envelope: not held, nothing popped, the index now built.
	if _, _, ok := q.finish(&pa.MessageEnvelope{}); ok {
		t.Fatal("an envelope the link did not deliver counted as finished")
	}
	if q.index == nil || len(q.index) != 5 || q.len() != 6 {
		t.Fatalf("after a foreign finish: index %d entries, queue %d", len(q.index), q.len())
	}
	if _, _, ok := q.finish(nil); ok {
		t.Fatal("nil envelope counted as finished")
	}
	// A later envelope finishes every one before it and the undecodable one after.
	last, bytes, ok = q.finish(envs[2])
	if !ok || last.seq != 100 || bytes != 21 || q.len() != 3 || len(q.index) != 3 {
		t.Fatalf("later finish: last %d bytes %d ok %v queue %d index %d", last.seq, bytes, ok, q.len(), len(q.index))
	}
	if _, _, ok := q.finish(envs[1]); ok {
		t.Fatal("an envelope finished twice")
	}
	// Pushed while the index exists: indexed too.
	extra := &pa.MessageEnvelope{}
	q.push(finishEntry{env: extra, seq: 7, size: 10})
	if _, ok := q.index[extra]; !ok {
		t.Fatal("an envelope pushed while the index exists was not indexed")
	}
	last, _, ok = q.finish(extra)
	if !ok || last.seq != 7 || q.len() != 0 || q.index != nil || q.npend.Load() != 0 {
		t.Fatalf("final finish: last %d ok %v queue %d index %v npend %d", last.seq, ok, q.len(), q.index != nil, q.npend.Load())
	}
	// Empty again: head finishes do without the index.
	q.push(finishEntry{env: envs[5], seq: 8})
	if _, _, ok := q.finish(envs[5]); !ok || q.index != nil {
		t.Fatal("head finish after the queue emptied")
	}
}
