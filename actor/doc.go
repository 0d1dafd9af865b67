// Package actor is the process-spanning layer on protoactor-go: it joins
// protoactor ActorSystems (nodes) with links, so that a PID of any node of a
// tree can be sent to, watched and asked from any other node of the tree.
//
// It owns the address scheme and routing, the pa.Process of non-local
// PIDs (Link), watch and Terminated across links, futures answered across
// links, and remote spawn of registered kinds. It must not know about exec,
// OS processes or file descriptors: a link runs over any io.ReadWriteCloser
// (package mailbox is the wire), and package procnode wires links to child
// processes.
//
// # Addresses and routing
//
// Addresses are hierarchical: the root node is "n", its children "n/1",
// "n/2", their children "n/1/1"... NewNode sets the ActorSystem's
// ProcessRegistry.Address before anything is spawned, and puts the node's
// resolver before any other (protoactor's gRPC remote claims every address).
// A node routes a PID to itself, down to the child link whose segment
// matches, or up to its parent link; siblings and cousins reach each other
// through their common ancestor, which relays. There is no routing table to
// maintain: attaching a link (ChildLink, ParentLink) is all.
//
// # Delivery
//
// A Link is the pa.Process of every PID routed through it:
// SendUserMessage goes on the user lane (bounded, WithSendTimeout),
// SendSystemMessage and Stop on the system lane (never blocks). On the
// receiving side the link's reader puts each message straight into the
// target's mailbox (or relays it to the next link), as a MessageEnvelope
// when it has a sender or a header, so Request, RequestFuture, Respond and
// Forward work across links. Order holds per sender and target.
//
// protoactor caches the resolved Process inside each PID, so a Link outlives
// its streams: with SetReconnect(true) a lost link goes down, holds what is
// sent to it (up to WithHoldLimit) and sends it on the next Connect.
//
// # Bounds and backpressure
//
// Nothing a peer sends can make a node's memory grow without bound. The
// user lane is bounded in messages and bytes (a full lane makes the sender
// wait, WithSendTimeout, then the message is a dead letter); the system
// lane in bytes (past it the link breaks with mailbox.ErrPeerStalled, as it
// does for a peer that never reads the answers the node's reader sends it);
// a down link's held messages in messages and bytes (WithHoldLimit,
// WithHoldBytes); a retained actor's unacknowledged messages in bytes and
// count (Link.Retain), which is also that actor's credit: a retained actor
// that stops keeping up makes its senders wait instead of filling its
// mailbox; watches through a link (WithWatchLimit).
//
// The actors the activator spawns (Node.Spawn of a registered kind) have
// credit too: their node counts what links delivered to each and it has not
// finished, and at its window (WithInboxLimit, WithInboxBytes) tells those
// links to pause their sends to that actor alone; a paused sender waits
// (WithSendTimeout, then a dead letter with ErrInboxFull) and goes on when
// the actor is down to half its window. A link's reader relaying for a
// node further away never waits, and a peer may not pause at all: past
// twice the window (at least the window plus 65536 messages or 16 MiB) the
// node refuses what links bring (dead letters with ErrInboxFull; requests
// among them fail at once). Any other actor that falls behind (blocks in
// Receive) lets its mailbox grow: the link's reader puts what arrives into
// its protoactor mailbox at the rate it arrives. Give it protoactor's
// bounded mailbox (pa.WithMailbox(pa.Bounded(n))) when a peer may outpace
// it. Then a full mailbox makes the link's reader wait for room, which stalls that link for
// all its actors (its peer's user lane fills, and its senders wait and then
// dead-letter) but bounds the memory.
//
// # Failure
//
// Nothing waits forever on a lost link, and nothing vanishes without a
// trace. When a link's stream ends, every watcher of an actor behind it gets
// Terminated{Why: AddressTerminated}, every request in flight through it (a
// message whose sender is a future) gets a DeadLetterResponse at once, and
// actors on this side forget the watchers behind it. A message that cannot
// be sent (an unregistered type, a full link past WithSendTimeout, a link
// down past WithHoldLimit, or gone, no route) is a dead letter: a line with
// the reason (see below), a DeadLetterEvent with an Undeliverable, and a
// DeadLetterResponse when it was a request. For example, a request to a
// child whose link was closed fails with pa.ErrDeadLetter, and the line
// says "dead letter" with ErrLinkGone. A reply that cannot be encoded for
// the link answers the requester's future with a DeadLetterResponse at
// once. A message for an actor that does not exist is answered the same
// way by the node that received it, which reports it (ErrNoSuchActor).
//
// # Logging and dispatching
//
// Nodes are quiet by default but for dead letters, which are visible as in
// protoactor: with no logger, one line each (target, type, reason) goes to
// stderr (WithDeadLetterLog chooses another writer, or nil for none), at
// most 10 a second per link, then a summary line with the count. Routine
// ones (system messages to actors already gone, anything while the node
// closes) are not printed. WithLogger gives a node a logger, which then
// receives dead letters at warn level (rate-limited the same way) and
// protoactor's slog records (warn and above, see WithProtoactorLogLevel).
// Node.Dispatcher runs mailboxes on long-lived worker goroutines instead of
// a goroutine per mailbox run. Node.Inline goes further for actors that links feed: a message that arrives for such an
// actor while it is idle runs its Receive on the link's reader, with no
// hand-off at all (the reader role moves to a fresh goroutine when a
// Receive blocks or asks over a link; see mailbox's "The reader role").
// The activator gives it to the kinds it spawns, and package procnode to a
// child's root actor.
//
// A request whose future is on this node (RequestFuture) may read its own
// answer: when the link's reader has just delivered an answer and stands
// by, the requesting goroutine borrows the reader role inside the send and
// delivers its answer itself, so that Result finds it without a goroutine
// waking another. Such a send returns once the answer is there, or after
// about two milliseconds at most (then the reader waits for it): an actor
// that sends a request and goes on without waiting may see its Receive
// held that long.
package actor
