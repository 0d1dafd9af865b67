// Package wireshape keeps the shape digests of the wire types that
// procactor's own packages register (mailbox.RegisterType: boot,
// Snapshot, SpawnRequest...), so that a process does not compute them at
// its start. A handshake announces a digest of every registered type's
// shape (package mailbox, fingerprint.go); computing one means compiling
// the type's codec and spelling its shape out, and procactor's own types
// were most of a child's schema (Snapshot alone about half of its 150–300
// µs, measured on the 2-core machine), while a child that is never asked
// for a snapshot never needs Snapshot's codec.
//
// The digests are the ones mailbox computes, not other ones: a peer that
// computes them gets the same. TestDigestsMatchTheTypes (this package)
// computes every one from its type and fails, printing the table to paste,
// when a type or the codec changed.
//
// It imports nothing of procactor's: package mailbox reads the table and
// fills in the hooks.
package wireshape

// Known is a type's registered name and its shape digest.
type Known struct {
	Name   string
	Digest uint64
}

// Digests maps a type's full path (its package path, ".", its name) to the
// name it is registered under and its digest. A type is looked up by its
// path and the name it was registered under must match: no other type
// (of another package, or under another name) takes a digest from here.
var Digests = map[string]Known{
	"github.com/asynkron/protoactor-go/actor.PID":             {"go:actor.PID", 0xaca6a778e14c3c3e},
	"github.com/procactor/procactor/actor.inboxCredit":        {"procactor.InboxCredit", 0xc1b257458732bcde},
	"github.com/procactor/procactor/actor.spawnRequest":       {"procactor.SpawnRequest", 0x7fe4eb619deab60e},
	"github.com/procactor/procactor/actor.spawnResponse":      {"procactor.SpawnResponse", 0x932581bb6bf6774c},
	"github.com/procactor/procactor/procnode.Snapshot":        {"procactor.Snapshot", 0x7d4f6da6e454b13a},
	"github.com/procactor/procactor/procnode.assign":          {"procactor.assign", 0x42b8d127ed7650d7},
	"github.com/procactor/procactor/procnode.assigned":        {"procactor.assigned", 0x450d8870865fcf26},
	"github.com/procactor/procactor/procnode.boot":            {"procactor.boot", 0x9c5ae4d93cb38240},
	"github.com/procactor/procactor/procnode.directive":       {"procactor.directive", 0x220b6725ee4f1c23},
	"github.com/procactor/procactor/procnode.exitNotice":      {"procactor.ExitNotice", 0x0b978f39ea728c82},
	"github.com/procactor/procactor/procnode.logRecord":       {"procactor.logRecord", 0x787dfd094da78dc4},
	"github.com/procactor/procactor/procnode.rootFailed":      {"procactor.rootFailed", 0x785a4e91f78874fe},
	"github.com/procactor/procactor/procnode.rootRestarted":   {"procactor.rootRestarted", 0x2b8fb403d83a425e},
	"github.com/procactor/procactor/procnode.snapshotRequest": {"procactor.snapshotRequest", 0x6a8810c65155bb5b},
	"github.com/procactor/procactor/reach.Activation":         {"procactor.reach.Activation", 0xf173733196559dbc},
	"time.Duration": {"go:time.Duration", 0xc6098fd6949a6c27},
	"time.Time":     {"go:time.Time", 0xa4cfa1edb05d15b6},
}

// Hooks set by package mailbox, for the test.
var (
	// Compute returns the digest of the type registered under name,
	// computed from its codec (never taken from Digests), and the type's
	// full path.
	Compute func(name string) (digest uint64, typePath string, ok bool)
	// Registered lists the registered type names.
	Registered func() []string
)
