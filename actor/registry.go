package actor

import (
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"unsafe"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/extensions"
	cmap "github.com/orcaman/concurrent-map"
)

// registryBuckets is how many buckets a node's process registry keeps.
//
// protoactor makes 1024 buckets, each an orcaman/concurrent-map of
// SHARD_COUNT (32) shards: 32768 maps, each with its own lock, about 3 MB
// that every garbage collection of the process scans again, and more locks
// than any process has cores. 32 buckets of 32 shards are still 1024 locks.
// protoactor picks a bucket as murmur32(id) % len(buckets), so fewer buckets
// need no change of its code.
const registryBuckets = 32

// protoLocalAddress is the address protoactor gives a new system's registry
// (its unexported localAddress); NewNode sets the node's before anything is
// spawned.
const protoLocalAddress = "nonhost"

// newActorSystem makes a protoactor ActorSystem as
// pa.NewActorSystemWithConfig does, step for step, except for two parts
// that cost a process's start most of that function's time (about 200 µs of
// a child's, measured on the 2-core machine) and that a node does not need:
//   - the process registry is made with registryBuckets buckets, not made
//     with 1024 and then given up (3072 allocations);
//   - the system's id is 128 random bits from math/rand/v2 (seeded by the
//     runtime from the kernel's randomness), in hex, not a shortuuid drawn
//     from crypto/rand, whose first use in a process sets up its random
//     state (tens of µs). The id names the system in logs and metrics and
//     to protoactor's cluster; it need not be secret, only unique.
//
// lean gives each bucket one map, which all its SHARD_COUNT slots point to
// (a child process needs no 1024 locks); otherwise each bucket has
// SHARD_COUNT maps of its own.
//
// Two of ActorSystem's fields are unexported (its logger and its stopper);
// they are set through reflection. Should a protoactor version change the
// struct so that they cannot be (systemFieldsOf checks every field's name
// and type once), newActorSystem falls back to pa.NewActorSystemWithConfig
// and then cuts its registry down (TestNewActorSystemMatchesProtoactor
// fails on such a version, so the fallback is not taken silently).
func newActorSystem(config *pa.Config, lean bool) *pa.ActorSystem {
	fields := systemFields()
	if !fields.ok {
		system := pa.NewActorSystemWithConfig(config)
		replaceRegistry(system, lean)
		return system
	}
	system := &pa.ActorSystem{}
	system.ID = newSystemID()
	system.Config = config
	*(**slog.Logger)(fields.at(system, fields.logger)) = config.LoggerFactory(system)
	system.ProcessRegistry = &pa.ProcessRegistryValue{
		ActorSystem: system,
		Address:     protoLocalAddress,
		LocalPIDs:   &pa.SliceMap{LocalPIDs: newRegistryBuckets(lean)},
	}
	system.Root = pa.NewRootContext(system, pa.EmptyMessageHeader)
	system.Guardians = pa.NewGuardians(system)
	system.EventStream = eventstream.NewEventStream()
	system.DeadLetter = pa.NewDeadLetter(system)
	system.Extensions = extensions.NewExtensions()
	pa.SubscribeSupervision(system)
	system.Extensions.Register(pa.NewMetrics(system, config.MetricsProvider))
	system.ProcessRegistry.Add(pa.NewEventStreamProcess(system), "eventstream")
	*(*chan struct{})(fields.at(system, fields.stopper)) = make(chan struct{})
	system.Logger().Info("actor system started", slog.String("id", system.ID))
	return system
}

// newSystemID returns 128 random bits in hex.
func newSystemID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// newRegistryBuckets makes registryBuckets buckets of SHARD_COUNT slots:
// lean, all the slots of a bucket hold one shard.
func newRegistryBuckets(lean bool) []cmap.ConcurrentMap {
	buckets := make([]cmap.ConcurrentMap, registryBuckets)
	if !lean {
		for i := range buckets {
			buckets[i] = cmap.New()
		}
		return buckets
	}
	// One map of the library (SHARD_COUNT shards, each a map of its own)
	// gives each bucket its shard, and one array holds every bucket's
	// slots. Should a program set SHARD_COUNT below registryBuckets,
	// buckets share shards: still correct, fewer locks.
	shards := cmap.SHARD_COUNT
	held := cmap.New()
	slots := make([]*cmap.ConcurrentMapShared, registryBuckets*shards)
	for i := range buckets {
		b := slots[i*shards : (i+1)*shards : (i+1)*shards]
		for j := range b {
			b[j] = held[i%len(held)]
		}
		buckets[i] = b
	}
	return buckets
}

// replaceRegistry gives sys's process registry new buckets (see
// newRegistryBuckets), moving what is registered already. It runs before
// anything of the system runs on another goroutine.
func replaceRegistry(sys *pa.ActorSystem, lean bool) {
	sm := sys.ProcessRegistry.LocalPIDs
	old := sm.LocalPIDs
	sm.LocalPIDs = newRegistryBuckets(lean)
	for _, b := range old {
		b.IterCb(func(id string, p any) {
			sm.GetBucket(id).Set(id, p)
		})
	}
}

// systemFieldSet locates ActorSystem's unexported fields.
type systemFieldSet struct {
	ok              bool
	logger, stopper uintptr // offsets
}

// systemFields checks, once, that pa.ActorSystem is the struct newActorSystem
// fills in: every field by name and type.
var systemFields = sync.OnceValue(func() systemFieldSet {
	want := map[string]reflect.Type{
		"ProcessRegistry": reflect.TypeFor[*pa.ProcessRegistryValue](),
		"Root":            reflect.TypeFor[*pa.RootContext](),
		"Guardians":       reflect.TypeOf(pa.NewGuardians),
		"EventStream":     reflect.TypeFor[*eventstream.EventStream](),
		"DeadLetter":      reflect.TypeOf(pa.NewDeadLetter),
		"Extensions":      reflect.TypeFor[*extensions.Extensions](),
		"Config":          reflect.TypeFor[*pa.Config](),
		"ID":              reflect.TypeFor[string](),
		"stopper":         reflect.TypeFor[chan struct{}](),
		"logger":          reflect.TypeFor[*slog.Logger](),
	}
	// Guardians and DeadLetter have unexported types: compare with what
	// their constructors return.
	for _, name := range []string{"Guardians", "DeadLetter"} {
		want[name] = want[name].Out(0)
	}
	t := reflect.TypeFor[pa.ActorSystem]()
	if t.NumField() != len(want) {
		return systemFieldSet{}
	}
	var s systemFieldSet
	for i := range t.NumField() {
		f := t.Field(i)
		if want[f.Name] != f.Type {
			return systemFieldSet{}
		}
		switch f.Name {
		case "logger":
			s.logger = f.Offset
		case "stopper":
			s.stopper = f.Offset
		}
	}
	s.ok = true
	return s
})

// at points at the field of sys at offset, one of those systemFields
// checked (so its type is the one the caller stores).
func (s systemFieldSet) at(sys *pa.ActorSystem, offset uintptr) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(sys), offset)
}
