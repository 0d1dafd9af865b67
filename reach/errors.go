package reach

import "errors"

// Errors returned or used as dead-letter reasons by this package; test for
// them with errors.Is.
var (
	// ErrInvalidOption is wrapped when an option is out of range.
	ErrInvalidOption = errors.New("reach: invalid option")
	// ErrNotRoot means the node's address is not a root named host:port.
	ErrNotRoot = errors.New("reach: node is not a root named host:port")
	// ErrStart means the gRPC remote (or cluster member) did not start: the
	// address could not be bound, or protoactor refused to start.
	ErrStart = errors.New("reach: start failed")
	// ErrStarted means reach already runs on the node.
	ErrStarted = errors.New("reach: already started on this node")
	// ErrStarting is the dead-letter reason for a message sent to another
	// host before Start has returned (a cluster member gossips earlier).
	ErrStarting = errors.New("reach: host still starting")
	// ErrClosed is the dead-letter reason for a message sent to another
	// host after Host.Close.
	ErrClosed = errors.New("reach: host closed")
	// ErrTunnelFull is the dead-letter reason for a message to another root
	// while the bytes queued towards it exceed WithQueueBytes.
	ErrTunnelFull = errors.New("reach: tunnel queue full")
	// ErrMessageTooLarge is the dead-letter reason for a message whose
	// frame alone exceeds WithQueueBytes.
	ErrMessageTooLarge = errors.New("reach: message too large for the tunnel")
	// ErrRefused is the dead-letter reason for what a peer root may not do
	// (a target outside this root's tree or among procactor's own machinery,
	// a watcher outside the peer's tree, a Terminated for a watch this side
	// never sent, too many watches) and for system messages protoactor
	// never sends across nodes.
	ErrRefused = errors.New("reach: refused")
	// ErrVersion is the dead-letter reason for a frame of another tunnel
	// protocol version (a peer built from another procactor).
	ErrVersion = errors.New("reach: tunnel version mismatch")
	// ErrBadEnvelope is the reason logged when the stream guard drops a
	// remote envelope: an index out of range, an unknown serializer or type
	// name, a target the pinned remote would deliver by Id alone, or a
	// remote spawn request.
	ErrBadEnvelope = errors.New("reach: bad remote envelope dropped")
)
