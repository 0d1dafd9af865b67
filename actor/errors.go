package actor

import (
	"errors"

	"github.com/procactor/procactor/mailbox"
)

// Errors returned by this package; test for them with errors.Is.
var (
	// ErrInvalidOption is wrapped when an option is out of range.
	ErrInvalidOption = errors.New("actor: invalid option")
	// ErrInvalidAddress means an address is empty or malformed.
	ErrInvalidAddress = errors.New("actor: invalid address")
	// ErrKindNotRegistered means no kind of that name is registered in the
	// binary that was asked to spawn it.
	ErrKindNotRegistered = errors.New("actor: kind not registered")
	// ErrNameExists means an actor of that name already exists on the node.
	ErrNameExists = errors.New("actor: name already exists")
	// ErrSpawnFailed means the kind's producer failed (bad arguments, a panic).
	ErrSpawnFailed = errors.New("actor: spawn failed")
	// ErrSpawnRefused means the node would not spawn for a child: spawns from
	// children are off (WithChildSpawns), the child's cap is reached, or the
	// spawn was for another child's subtree (a sibling's), which is always
	// refused.
	ErrSpawnRefused = errors.New("actor: spawn refused")
	// ErrRefused is the dead-letter reason for a message from a link that the
	// node's policy refuses (a guard, a forged Terminated, too many watches).
	ErrRefused = errors.New("actor: refused by the node's policy")
	// ErrNoRoute means no link leads towards an address.
	ErrNoRoute = errors.New("actor: no route to address")
	// ErrLinkExists means a link with that address is already attached.
	ErrLinkExists = errors.New("actor: link already exists")
	// ErrLinkGone is the dead-letter reason for a message sent over a link
	// that will not come back.
	ErrLinkGone = errors.New("actor: link gone")
	// ErrHeldFull is the dead-letter reason for a message sent while a link is
	// down and its hold queue is full (WithHoldLimit, WithHoldBytes).
	ErrHeldFull = errors.New("actor: link down and hold queue full")
	// ErrInboxFull is the dead-letter reason for a message to an actor the
	// activator spawned that is not keeping up: its sender waited on the
	// actor's pause past WithSendTimeout, or (a sender that did not wait)
	// the actor's inbox was past its hard bound (WithInboxLimit,
	// WithInboxBytes).
	ErrInboxFull = errors.New("actor: actor's inbox full")
	// ErrRetainFull is the dead-letter reason for a message to a retained
	// actor (Link.Retain) while its window of unacknowledged bytes stayed
	// full past WithSendTimeout.
	ErrRetainFull = errors.New("actor: retention window full")
	// ErrNoSuchActor is the reason logged for a message to an actor that
	// does not exist (or no longer does) on the node that received it.
	ErrNoSuchActor = errors.New("actor: no such actor")
	// ErrWrongPeer means the handshake found another node than expected.
	ErrWrongPeer = errors.New("actor: wrong peer address")
	// ErrBadSystemMessage is the dead-letter reason for a system message
	// from a peer that protoactor never sends across nodes (anything but
	// Watch, Unwatch, Terminated and Stop) or that lacks its PIDs.
	ErrBadSystemMessage = errors.New("actor: system message refused")
)

// The sentinels cross links: errors.Is(received, ErrLinkGone) holds for an
// error that wrapped it on the other side (see mailbox.RegisterError).
func init() {
	for name, err := range map[string]error{
		"actor.ErrInvalidOption":     ErrInvalidOption,
		"actor.ErrInvalidAddress":    ErrInvalidAddress,
		"actor.ErrKindNotRegistered": ErrKindNotRegistered,
		"actor.ErrNameExists":        ErrNameExists,
		"actor.ErrSpawnFailed":       ErrSpawnFailed,
		"actor.ErrNoRoute":           ErrNoRoute,
		"actor.ErrLinkExists":        ErrLinkExists,
		"actor.ErrLinkGone":          ErrLinkGone,
		"actor.ErrHeldFull":          ErrHeldFull,
		"actor.ErrNoSuchActor":       ErrNoSuchActor,
		"actor.ErrWrongPeer":         ErrWrongPeer,
		"actor.ErrBadSystemMessage":  ErrBadSystemMessage,
	} {
		mailbox.RegisterError(name, err)
	}
}
