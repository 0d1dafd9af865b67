package actor

import (
	"context"
	"fmt"
	"time"

	"github.com/procactor/procactor/mailbox"
)

// Credit for the actors the activator spawned (inbox.go). Their inbox is
// bounded on the receiving node; so that a fast sender is slowed rather
// than dropped, the receiving node tells each link that delivered to an
// inbox at its window to pause its sends to that actor (inboxCredit,
// Paused), and to resume them once the inbox is down to half the window. A
// paused link makes a sender of a user message to that actor wait, up to
// WithSendTimeout, then the message is a dead letter with ErrInboxFull, as
// a full link does; a link's reader never waits (it relays, or answers
// from a Handler): its message goes on, and the receiver's bound decides.
// The pause travels on the system lane, addressed to the link itself
// (no target), and is about an actor of the peer node only; a link keeps
// at most maxPaused of them (a peer cannot grow the table), and forgets
// them all when its stream ends: the peer's inboxes start over with it.

// inboxCredit pauses (Paused) or resumes a link's sends to the actor ID of
// the node that sent it.
type inboxCredit struct {
	ID     string
	Paused bool
}

func init() { mailbox.RegisterType("procactor.InboxCredit", &inboxCredit{}) }

// maxPaused bounds the pauses a link keeps.
const maxPaused = 4096

// tellCredit sends a pause or resume for actor id to the link's peer. It
// never blocks (system lane), so an inbox calls it under its mutex, which
// orders its pauses and resumes; a link that is down has nothing to pause.
func (l *Link) tellCredit(id string, paused bool) {
	l.mu.Lock()
	ep := l.ep
	l.mu.Unlock()
	if ep == nil {
		return
	}
	env := mailbox.Envelope{Lane: mailbox.LaneSystem, Message: &inboxCredit{ID: id, Paused: paused}}
	if err := ep.Send(context.Background(), &env); err != nil {
		l.node.log.Debug().Err(err).Str("peer", l.addr).Str("actor", id).Bool("paused", paused).Msg("credit not sent")
	}
}

// maxCreditID bounds the id in a pause a link keeps (ids of this node's
// actors are far shorter; a peer must not park memory in the table).
const maxCreditID = 1024

// credit applies a pause or resume from the peer.
func (l *Link) credit(c *inboxCredit) {
	if len(c.ID) > maxCreditID {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.paused[c.ID]
	switch {
	case c.Paused && !ok && len(l.paused) < maxPaused:
		if l.paused == nil {
			l.paused = make(map[string]chan struct{})
		}
		l.paused[c.ID] = make(chan struct{})
		l.npaused.Add(1)
	case !c.Paused && ok:
		close(ch)
		delete(l.paused, c.ID)
		l.npaused.Add(-1)
	}
}

// resumeAllLocked forgets every pause: the stream they came on has ended.
func (l *Link) resumeAllLocked() {
	for id, ch := range l.paused {
		close(ch)
		delete(l.paused, id)
	}
	l.npaused.Store(0)
}

// awaitCredit makes the sender of env wait while its target, an actor of
// the peer node, is paused, and reports whether env may go on; past
// WithSendTimeout it is a dead letter (false). A link's reader does not
// wait.
func (l *Link) awaitCredit(env *mailbox.Envelope) bool {
	t := env.Target
	if env.Lane != mailbox.LaneUser || t == nil || t.Address != l.addr {
		return true
	}
	l.mu.Lock()
	ch := l.paused[t.Id]
	l.mu.Unlock()
	if ch == nil || !mailbox.MayWait() {
		return true
	}
	timeout := l.node.cfg.sendTimeout
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		l.deadLetter(env, fmt.Errorf("%w: its node paused sends to it for %v (WithSendTimeout)", ErrInboxFull, timeout))
		return false
	}
}

// pauseLocked records that l was told to pause for ib's actor (from
// admit); it reports whether l must be told now: it was not, or it was on
// a stream that has since ended (its pauses ended with it).
func (ib *inbox) pauseLocked(l *Link) bool {
	l.mu.Lock()
	ep := l.ep
	l.mu.Unlock()
	if told, ok := ib.paused[l]; ok && told == ep {
		return false
	}
	if ib.paused == nil {
		ib.paused = make(map[*Link]*mailbox.Endpoint)
	}
	ib.paused[l] = ep
	return true
}

// takePausedLocked returns the links paused for ib's actor and forgets them.
func (ib *inbox) takePausedLocked() []*Link {
	if len(ib.paused) == 0 {
		return nil
	}
	ls := make([]*Link, 0, len(ib.paused))
	for l := range ib.paused {
		ls = append(ls, l)
	}
	clear(ib.paused)
	return ls
}

// adoptPauses takes over the pauses of a stopped actor of the same name:
// those ib would have asked for too stay, and are lifted when it drains;
// the others are lifted now.
func (ib *inbox) adoptPauses(links []*Link) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	full := ib.pending.len() >= ib.limit || ib.bytes >= ib.maxBytes
	for _, l := range links {
		if full {
			ib.pauseLocked(l)
		} else if _, ok := ib.paused[l]; !ok {
			l.tellCredit(ib.id, false)
		}
	}
}

// resumeLinks tells each link to resume its sends to id.
func resumeLinks(ls []*Link, id string) {
	for _, l := range ls {
		l.tellCredit(id, false)
	}
}
