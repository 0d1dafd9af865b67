// Package reach joins a procactor process tree to other hosts: its root
// runs protoactor-go's own gRPC remote (or a cluster member), and every PID
// of every tree stays valid from every host. A user who outgrows one machine
// keeps the PIDs, the supervision and the child processes, and adds hosts.
//
//	node, _ := procnode.NewNodeAt("10.0.0.1:8090") // the root's address is its host:port
//	host, _ := reach.Start(node)                    // before or after spawning children
//	defer node.Close(ctx)                           // after host.Close
//	defer host.Close(ctx)
//	p, _ := procnode.Spawn(ctx, node.Root(), "worker")  // p.PID() is at 10.0.0.1:8090/1
//	// On 10.0.0.2:8090, a root asks this child's actor, or its grandchild's:
//	res, err := other.Root().RequestFuture(pa.NewPID("10.0.0.1:8090/1", procnode.RootID), job, time.Second).Result()
//
// # What it owns
//
// The root's address is the host:port its remote listens on and advertises;
// children are host:port/1, grandchildren host:port/1/2 (package actor
// routes a PID of another tree from any node up to its root). Start puts
// reach's resolver after the node's own and before protoactor's remote:
// every PID of another host:port tree resolves to one stable Process per
// root (the tunnel; protoactor caches it in each PID). The tunnel carries
// user messages (sender and header in remote's own envelope, so Request,
// RequestFuture, Respond and Forward work) and system messages (Watch,
// Unwatch, Stop, Terminated with its real reason) as ordinary remote user
// messages to the gateway of the other root, {host:port,
// "procactor$reach"}, which hands each one to its target by full PID, as
// that root's own links would. The pinned remote is never asked to deliver
// a system message: it would deliver it by Id alone, to whatever root actor
// has that Id, and it carries no Terminated reason.
//
// Every message travels inside one committed protobuf type (Frame, in
// internal/wire; regenerate with go generate, which needs protoc): the
// payload is package mailbox's Marshal of the value (msgpack for registered
// types, protobuf messages by full name, PIDs) and its registered type name.
// remote's RootSerializable/RootSerialized hooks are not used: the sender
// encodes (an unregistered type is a dead letter with its reason on the
// sending side, where remote's writer would log and drop it) and the
// gateway decodes (a type this binary does not know is a dead letter with a
// DeadLetterResponse, where a hook's error would end remote's stream).
//
// Watches are reach's own, per other root: the watches that went out to its
// tree (a Terminated from it is accepted only for one of these), and the
// watches its tree holds here (at most WithMaxWatches). Of the frames of a
// root this one has not sent to, only a Watch makes this state, for at most
// 1024 such roots over the host's life; a Watch from one more is answered
// with Terminated{AddressTerminated}. When a root is lost
// (remote's endpoint to it terminates, or its last stream here ends) every
// watcher here of its actors gets Terminated{AddressTerminated}, actors here
// forget their watchers there, and requests in flight to it get a
// DeadLetterResponse at once. A child process that dies tells remote
// watchers the same way (its parent's link answers for it).
//
// Cluster: WithCluster makes the root a cluster member (disthash identity
// lookup); NewStaticProvider lists members without a service; ProcessKind
// makes a kind whose activations run in child processes behind a root-local
// stub. Members are roots only: a child address is not host:port.
//
// # Guarding the pinned remote
//
// Every root's gRPC server has a stream interceptor that sanitises each
// batch before remote's reader sees it (an index out of range, a serializer
// other than protobuf, an unknown type name, a system message, a target
// below the root, a remote spawn request, any message to procactor's machinery,
// remote's activator or its endpoint supervisor, a frame naming another root than
// its stream announced: dropped, logged, a request answered with a
// DeadLetterResponse) and recovers a panic in the stream's handler (the
// stream ends, the process lives), and a unary interceptor that refuses the
// two RPCs the pinned remote does not implement (they panic). Remote's
// endpoint queue grows without a bound: reach counts the frame bytes handed
// to remote and not yet to gRPC per root, and refuses past WithQueueBytes.
// A connection attempt is bounded by WithDialTimeout, and made once.
//
// # What it must not know
//
// reach knows protoactor's remote, cluster and gRPC, and nothing of pipes,
// links or OS processes beyond package procnode's public API: package actor
// routes, package mailbox encodes, package procnode spawns. mailbox and
// actor do not import gRPC.
//
// # Trust
//
// Another root may do what its own tree's traffic could legitimately do:
// message, stop or watch an actor of this tree (protoactor's rule: a PID
// holder may), with watchers of its own tree only, a Terminated only for a
// watch this side sent, and never reach procactor's machinery (the gateway,
// the activator, control and host actors), remote's activator or its
// endpoint supervisor. The
// connection is insecure gRPC and a root is known by the address it
// announces: run reach on a trusted network only. Every root must run the
// same build (the frame carries a version; the pinned remote's wire is not
// upstream's, #1184).
//
// # Failure
//
// When a root dies, for example by SIGKILL, the other roots' endpoints to it
// fail: an actor of B watching an actor of A's grandchild gets
// Terminated{Why: AddressTerminated}, and B's request to A/1/1 in flight
// fails at once with pa.ErrDeadLetter, not at its timeout. A root that never
// answers is found lost after WithDialTimeout plus the 2 s the pinned
// remote's writer waits.
//
// Limits: one reach host per process (every remote.Start rewrites gRPC's
// global logger, which running transports read); cluster member ids are the
// roots' addresses, so a member restarted at the same address within the
// cluster's heartbeat expiry may be refused by the others.
package reach
