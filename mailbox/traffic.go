package mailbox

import "sync/atomic"

// Traffic counts what has crossed an endpoint since it was made, per lane
// (index by Lane: LaneUser, LaneSystem). Bytes are encoded message bytes,
// each message's 4-byte length prefix included; frame headers and
// acknowledgements are not counted.
//
// The counters cost the hot path next to nothing: the writer adds a batch's
// counts once the batch is written (a few atomic adds per write, not per
// message) and the reader adds a frame's once the frame is delivered. So a
// message is counted out once it is on the stream, and in once it has been
// handed to the Handler.
type Traffic struct {
	MsgsOut  [2]uint64 // messages written to the stream
	BytesOut [2]uint64 // their encoded bytes (message prefixes included)
	MsgsIn   [2]uint64 // messages read from the stream (dead letters included)
	BytesIn  [2]uint64 // their encoded bytes (message prefixes included)
	// Writes is how many writes carried messages: MsgsOut over Writes is the
	// batching at work.
	Writes uint64
	// DeadLetters counts messages that arrived in a good frame but could
	// not be delivered (Handler.DeadLetter: an unknown type, a payload that
	// does not decode).
	DeadLetters uint64
}

// Add adds u's counts to t: the traffic of a link over several streams.
func (t *Traffic) Add(u Traffic) {
	for i := range t.MsgsOut {
		t.MsgsOut[i] += u.MsgsOut[i]
		t.BytesOut[i] += u.BytesOut[i]
		t.MsgsIn[i] += u.MsgsIn[i]
		t.BytesIn[i] += u.BytesIn[i]
	}
	t.Writes += u.Writes
	t.DeadLetters += u.DeadLetters
}

// laneCounts is one direction's counters, updated with atomics.
type laneCounts struct {
	msgs, bytes [2]atomic.Uint64
}

// add counts a batch or a frame: msgs and bytes per lane.
func (c *laneCounts) add(msgs, bytes *[2]uint64) {
	for i := range msgs {
		if msgs[i] != 0 {
			c.msgs[i].Add(msgs[i])
			c.bytes[i].Add(bytes[i])
		}
	}
}

func (c *laneCounts) load(msgs, bytes *[2]uint64) {
	for i := range msgs {
		msgs[i] = c.msgs[i].Load()
		bytes[i] = c.bytes[i].Load()
	}
}

// sentBatch counts a batch that has been written in full.
func (o *outbox) sentBatch(b *batch) {
	if b.msgs == 0 {
		return
	}
	user, sys := b.msgs-b.sysMsgs, b.sysMsgs
	o.sent.add(&[2]uint64{uint64(user), uint64(sys)}, &[2]uint64{uint64(b.msgBytes - b.sysBytes), uint64(b.sysBytes)})
	o.writes.Add(1)
}

// Traffic returns what has crossed the endpoint so far. It may be called at
// any time, from any goroutine; the counters are read one by one, so a
// snapshot taken while traffic flows may be off by the batch in flight.
func (e *Endpoint) Traffic() Traffic {
	var t Traffic
	e.out.sent.load(&t.MsgsOut, &t.BytesOut)
	e.recv.load(&t.MsgsIn, &t.BytesIn)
	t.Writes = e.out.writes.Load()
	t.DeadLetters = e.deadLetters.Load()
	return t
}

// Queued returns the messages that Send accepted and that are not written
// yet (both lanes), the bytes waiting to be written (frame headers
// included), and how many of those messages are on the user lane, whose
// bound (WithUserQueue, WithUserQueueBytes) makes senders wait.
func (e *Endpoint) Queued() (msgs, bytes, user int) {
	o := e.out
	o.mu.Lock()
	defer o.mu.Unlock()
	msgs, bytes, user = o.cur.msgs, o.cur.size(), o.userCount
	if b := o.inflight; b != nil {
		msgs += b.msgs
		bytes += b.size() - b.off
		user += b.msgs - b.sysMsgs
	}
	return msgs, bytes, user
}
