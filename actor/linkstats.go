package actor

import (
	"sync/atomic"

	"github.com/procactor/procactor/mailbox"
)

// LinkTraffic is what has crossed a link and what waits in it: the part of
// LinkStats that moves with every message. The counts cover every stream
// the link has had (a restarted child's link keeps counting), and cost the
// send and receive paths a few atomic adds per batch and per frame (see
// mailbox.Traffic).
type LinkTraffic struct {
	// Traffic counts messages and bytes per lane, both ways.
	Traffic mailbox.Traffic
	// DeadLetters counts the messages that became dead letters at this
	// link: those it could not send (its peer gone, the held queue full, a
	// type that does not encode, a full lane past WithSendTimeout), those
	// from its peer that did not decode (Traffic.DeadLetters) and the
	// system messages from its peer that it refused.
	DeadLetters uint64
	// Queued counts the messages the current stream accepted and has not
	// written yet (both lanes), QueuedBytes their bytes, QueuedUser those on
	// the user lane, whose bound makes senders wait (mailbox.WithUserQueue).
	Queued, QueuedBytes, QueuedUser int
}

// linkCounts is a Link's share of LinkTraffic: what its past streams
// carried (guarded by Link.mu) and its own dead letters.
type linkCounts struct {
	past        mailbox.Traffic // streams that ended (guarded by Link.mu)
	deadLetters atomic.Uint64   // sends that failed, system messages refused
}

// retireLocked adds the traffic of a stream that has ended (nil: none).
// Its goroutines have stopped, so its counts are final.
func (c *linkCounts) retireLocked(ep *mailbox.Endpoint) {
	if ep != nil {
		c.past.Add(ep.Traffic())
	}
}

// trafficLocked returns the link's LinkTraffic.
func (l *Link) trafficLocked() LinkTraffic {
	t := LinkTraffic{Traffic: l.counts.past}
	if l.ep != nil {
		t.Traffic.Add(l.ep.Traffic())
		t.Queued, t.QueuedBytes, t.QueuedUser = l.ep.Queued()
	}
	t.DeadLetters = l.counts.deadLetters.Load() + t.Traffic.DeadLetters
	return t
}
