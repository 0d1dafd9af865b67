package mailbox

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/vmihailenco/msgpack/v5"
)

// typeEntry is one registered message type.
type typeEntry struct {
	name string
	typ  reflect.Type // as registered: T or *T
}

// registryTables is immutable once published; registration copies it.
type registryTables struct {
	byName map[string]*typeEntry
	byType map[reflect.Type]*typeEntry
}

var (
	registryMu sync.Mutex // serializes writers; readers load the pointer
	registry   atomic.Pointer[registryTables]
)

func init() {
	registry.Store(&registryTables{byName: map[string]*typeEntry{}, byType: map[reflect.Type]*typeEntry{}})
	// Common composite values travel without user registration and arrive
	// with their Go type intact.
	for name, sample := range map[string]any{
		"go:[]string":           []string(nil),
		"go:[]int":              []int(nil),
		"go:[]int64":            []int64(nil),
		"go:[]uint64":           []uint64(nil),
		"go:[]float64":          []float64(nil),
		"go:[]bool":             []bool(nil),
		"go:[][]byte":           [][]byte(nil),
		"go:[]any":              []any(nil),
		"go:map[string]string":  map[string]string(nil),
		"go:map[string]any":     map[string]any(nil),
		"go:map[string]int":     map[string]int(nil),
		"go:map[string]int64":   map[string]int64(nil),
		"go:map[string]float64": map[string]float64(nil),
		"go:map[string]bool":    map[string]bool(nil),
		"go:map[string][]byte":  map[string][]byte(nil),
		"go:time.Time":          time.Time{},
		"go:time.Duration":      time.Duration(0),
		"go:[]*actor.PID":       []*actor.PID(nil),
	} {
		RegisterType(name, sample)
	}
}

// RegisterType gives the type of sample a stable name on the wire. Register
// each type once, from init, with the same name in every binary that may
// receive it. sample may be a value (T) or a pointer (*T): values of exactly
// that type are encoded under the name, and decoded back to that type.
//
// A type is encoded with msgpack (github.com/vmihailenco/msgpack/v5): exported
// fields, msgpack struct tags, and msgpack.CustomEncoder/CustomDecoder for hot
// types that deserve a hand-written codec. *actor.PID fields are supported.
//
// RegisterType panics if name or the type is already registered, or if name is
// empty: a mistake there would misdeliver messages silently.
func RegisterType(name string, sample any) {
	if name == "" {
		panic("mailbox: RegisterType with an empty name")
	}
	typ := reflect.TypeOf(sample)
	if typ == nil {
		panic(fmt.Sprintf("mailbox: RegisterType(%q, nil): need a typed sample", name))
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
		byName: make(map[string]*typeEntry, len(old.byName)+1),
		byType: make(map[reflect.Type]*typeEntry, len(old.byType)+1),
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

// RegisteredName returns the wire name of v's type, if it was registered.
func RegisteredName(v any) (string, bool) {
	e := lookupType(reflect.TypeOf(v))
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

// decode decodes one value of the registered type: the pointer itself for a
// *T registration, the element for a T registration.
func (e *typeEntry) decode(d *msgpack.Decoder) (any, error) {
	if e.typ.Kind() == reflect.Pointer {
		v := reflect.New(e.typ.Elem()).Interface()
		if err := d.Decode(v); err != nil {
			return nil, err
		}
		return v, nil
	}
	v := reflect.New(e.typ)
	if err := d.Decode(v.Interface()); err != nil {
		return nil, err
	}
	return v.Elem().Interface(), nil
}
