package mailbox

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// typeEntry is one registered message type.
type typeEntry struct {
	name string
	typ  reflect.Type // the value type T, whether T or *T was registered

	shapeOnce  sync.Once
	shape      typeShape // see fingerprint.go
	leavesOnce sync.Once
	leaves     []shapeField // the shape's leaves (fingerprint.go)
}

// registryTables is immutable once published; registration copies it.
type registryTables struct {
	byName  map[string]*typeEntry
	byType  map[reflect.Type]*typeEntry // T only; *T is looked up through T
	version uint64

	schemaOnce sync.Once
	schema     *schema // see fingerprint.go
}

var (
	registryMu sync.Mutex // serializes writers; readers load the pointer
	registry   atomic.Pointer[registryTables]
)

func init() {
	registry.Store(&registryTables{byName: map[string]*typeEntry{}, byType: map[reflect.Type]*typeEntry{}})
	// Named types of the standard library and protoactor that messages hold.
	// Slices, arrays, maps and pointers of registered and predeclared types
	// need no registration: they travel under a type expression ([]string,
	// map[string]any, []*go:actor.PID).
	RegisterType("go:time.Time", time.Time{})
	RegisterType("go:time.Duration", time.Duration(0))
	RegisterType("go:actor.PID", pa.PID{})
}

// RegisterType gives the type of sample a stable name on the wire. Register
// each type once, from init, with the same name in every binary that may
// receive it. sample may be a value (T) or a pointer (*T): either way both T
// and *T cross the link, each arriving in the form it was sent, and so do
// slices, arrays and maps of them ([]*T, map[string]T) and values of them
// held in interfaces (an any field, a []any, a map[string]any).
//
// A type is encoded as msgpack by a codec compiled once per type: exported
// fields by name, msgpack struct tags ("name", "-", "omitempty", and
// "as_array" on a _msgpack field), *pa.PID fields, time.Time; types that
// implement msgpack.CustomEncoder/CustomDecoder, msgpack.Marshaler,
// encoding.BinaryMarshaler or encoding.TextMarshaler are encoded by those.
//
// The name must not contain '[', ']' or '*' (they build type expressions)
// and must not be a predeclared type name (int, string, any, error...).
// RegisterType panics if name or the type is already registered, or if the
// name is empty or reserved: a mistake there would misdeliver messages
// silently.
func RegisterType(name string, sample any) {
	if name == "" {
		panic("mailbox: RegisterType with an empty name")
	}
	if strings.ContainsAny(name, "[]*") || basicTypes[name] != nil || name == "any" || name == "error" || strings.HasPrefix(name, protoPrefix) {
		panic(fmt.Sprintf("mailbox: RegisterType(%q): reserved name (no '[', ']', '*', %q prefix or predeclared type name)", name, protoPrefix))
	}
	typ := reflect.TypeOf(sample)
	if typ == nil {
		panic(fmt.Sprintf("mailbox: RegisterType(%q, nil): need a typed sample", name))
	}
	if typ.Kind() == reflect.Pointer && typ.Name() == "" {
		typ = typ.Elem()
	}
	if typ.Kind() == reflect.Interface {
		panic(fmt.Sprintf("mailbox: RegisterType(%q, %v): an interface type cannot be registered", name, typ))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	old := registry.Load()
	if e, ok := old.byName[name]; ok {
		panic(fmt.Sprintf("mailbox: type name %q registered twice (%v and %v)", name, e.typ, typ))
	}
	if e, ok := old.byType[typ]; ok {
		panic(fmt.Sprintf("mailbox: type %v registered twice (%q and %q)", typ, e.name, name))
	}
	next := &registryTables{
		byName:  make(map[string]*typeEntry, len(old.byName)+1),
		byType:  make(map[reflect.Type]*typeEntry, len(old.byType)+1),
		version: old.version + 1,
	}
	for k, v := range old.byName {
		next.byName[k] = v
	}
	for k, v := range old.byType {
		next.byType[k] = v
	}
	e := &typeEntry{name: name, typ: typ}
	next.byName[name] = e
	next.byType[typ] = e
	registry.Store(next)
}

// RegisteredName returns the name v's type (T or *T) was registered under.
func RegisteredName(v any) (string, bool) {
	t := reflect.TypeOf(v)
	if t == nil {
		return "", false
	}
	e := lookupType(t)
	if e == nil && t.Kind() == reflect.Pointer {
		e = lookupType(t.Elem())
	}
	if e == nil {
		return "", false
	}
	return e.name, true
}

// IsRegistered reports whether a type name is registered in this binary.
func IsRegistered(name string) bool {
	return lookupName(name) != nil
}

func lookupType(t reflect.Type) *typeEntry { return registry.Load().byType[t] }
func lookupName(n string) *typeEntry       { return registry.Load().byName[n] }
