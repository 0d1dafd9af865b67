package procnode

import "github.com/procactor/procactor/actor"

// Args are what a kind's producer gets in the child: the kind, the name
// given with WithName, the value given with WithArgs (decoded in the child)
// and the child's node. An alias of actor.Args.
type Args = actor.Args

// Producer makes the Props of a kind's root actor from its spawn arguments.
// An alias of actor.Producer: a producer that cannot work with its Args
// returns an error, and the child exits with ExitSpawnFailed.
type Producer = actor.Producer

// RegisterKind registers a kind that Spawn may start in a child process. Call
// it from init, in every binary that may host the kind (the child re-executes
// the parent's binary, or runs the one given with WithBinary). It panics on an
// empty name, a nil producer or a name registered twice. The same registry
// serves actor.Node.Spawn.
func RegisterKind(name string, p Producer) { actor.RegisterKind(name, p) }
