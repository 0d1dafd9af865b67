// Package names holds the actor ids that more than one package of procactor
// must agree on: the machinery's own processes, which package reach keeps
// other roots from messaging, and protoactor's futures, which a link tracks.
// One definition each, so that a rename cannot leave a check behind.
package names

const (
	// Activator is the id of a node's activator, which spawns registered
	// kinds on behalf of other nodes (package actor).
	Activator = "procactor-activator"
	// Host is the id of a child's host actor; the child's root actor is
	// Host + "/root" (package procnode).
	Host = "procactor-host"
	// ControlPrefix starts the id of each process actor's control process,
	// where its child's reports arrive (package procnode).
	ControlPrefix = "procactor-control$"
	// RemoteActivator is the id of protoactor remote's activator (remote
	// spawn by kind name).
	RemoteActivator = "activator"
	// RemoteEndpointSupervisor is the id of protoactor remote's endpoint
	// supervisor; its endpoint actors are its children ("…/$5").
	RemoteEndpointSupervisor = "EndpointSupervisor"
	// FuturePrefix starts the id of every protoactor future: its
	// actor/future.go names them "future" + the process registry's next id,
	// which starts with "$".
	FuturePrefix = "future$"
)
