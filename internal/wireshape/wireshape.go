package wireshape

// Known is a type's registered name, its shape digest, and its number of
// fields (0 for a type that is not a struct).
type Known struct {
	Name   string
	Digest uint64
	Fields int
}

// Digests maps a type's full path (its package path, ".", its name) to the
// name it is registered under and its digest. A type is looked up by its
// path, and the name it was registered under and its number of fields must
// match: no other type (of another package, or under another name) takes a
// digest from here, and a copy of procactor whose type gained or lost a
// field without this table being brought up to date computes its digest
// (a change deeper in the type is caught by the test alone).
var Digests = map[string]Known{
	"github.com/asynkron/protoactor-go/actor.PID":             {"go:actor.PID", 0xaca6a778e14c3c3e, 7},
	"github.com/procactor/procactor/actor.inboxCredit":        {"procactor.InboxCredit", 0xc1b257458732bcde, 2},
	"github.com/procactor/procactor/actor.spawnRequest":       {"procactor.SpawnRequest", 0x7fe4eb619deab60e, 3},
	"github.com/procactor/procactor/actor.spawnResponse":      {"procactor.SpawnResponse", 0x932581bb6bf6774c, 3},
	"github.com/procactor/procactor/procnode.Snapshot":        {"procactor.Snapshot", 0x7d4f6da6e454b13a, 10},
	"github.com/procactor/procactor/procnode.assign":          {"procactor.assign", 0x42b8d127ed7650d7, 4},
	"github.com/procactor/procactor/procnode.assigned":        {"procactor.assigned", 0x450d8870865fcf26, 1},
	"github.com/procactor/procactor/procnode.boot":            {"procactor.boot", 0x9c5ae4d93cb38240, 15},
	"github.com/procactor/procactor/procnode.directive":       {"procactor.directive", 0x220b6725ee4f1c23, 1},
	"github.com/procactor/procactor/procnode.exitNotice":      {"procactor.ExitNotice", 0x0b978f39ea728c82, 2},
	"github.com/procactor/procactor/procnode.logRecord":       {"procactor.logRecord", 0x787dfd094da78dc4, 3},
	"github.com/procactor/procactor/procnode.rootFailed":      {"procactor.rootFailed", 0x785a4e91f78874fe, 5},
	"github.com/procactor/procactor/procnode.rootRestarted":   {"procactor.rootRestarted", 0x2b8fb403d83a425e, 1},
	"github.com/procactor/procactor/procnode.snapshotRequest": {"procactor.snapshotRequest", 0x6a8810c65155bb5b, 1},
	"github.com/procactor/procactor/reach.Activation":         {"procactor.reach.Activation", 0xf173733196559dbc, 2},
	"time.Duration": {"go:time.Duration", 0xc6098fd6949a6c27, 0},
	"time.Time":     {"go:time.Time", 0xa4cfa1edb05d15b6, 3},
}

// Hooks set by package mailbox, for the test.
var (
	// Compute returns what Digests should hold for the type registered
	// under name, its digest computed from its codec (never taken from
	// Digests), and the type's full path.
	Compute func(name string) (k Known, typePath string, ok bool)
	// Registered lists the registered type names.
	Registered func() []string
)
