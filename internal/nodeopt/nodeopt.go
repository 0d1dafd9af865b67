// Package nodeopt carries the options of package actor that only procactor's
// own packages use: they belong to the protocol between a parent and its
// child processes, not to the public API (a user never needs them, and a
// wrong value would break what they guarantee).
//
// Package actor fills the hooks in from its init; this package imports
// nothing of procactor's, so both actor and procnode may import it.
package nodeopt

// Incarnation returns an actor.NodeOption, as any, that seeds the node's
// actor id sequence with the incarnation of a restarted child, so that ids
// of unnamed actors never repeat across incarnations at one address. Set by
// package actor.
var Incarnation func(n uint64) any

// LeanRegistry returns an actor.NodeOption, as any, that gives the node's
// process registry one map (one lock) per bucket: a child process's node.
// Set by package actor.
var LeanRegistry func() any
