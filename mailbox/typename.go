package mailbox

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// A type expression names a Go type on the wire, built from registered
// names, predeclared types and protobuf message names:
//
//	expr := name | basic | "any" | "error" | "pb:" fullname
//	      | "*" expr | "[]" expr | "[" n "]" expr | "map[" expr "]" expr
//
// so []*bench.Record, map[string]any or [3]int need no registration of
// their own. "error" stands for an error value whose type is not
// registered: it crosses as a RemoteError.

var basicTypes = map[string]reflect.Type{
	"bool":    reflect.TypeFor[bool](),
	"int":     reflect.TypeFor[int](),
	"int8":    reflect.TypeFor[int8](),
	"int16":   reflect.TypeFor[int16](),
	"int32":   reflect.TypeFor[int32](),
	"int64":   reflect.TypeFor[int64](),
	"uint":    reflect.TypeFor[uint](),
	"uint8":   reflect.TypeFor[uint8](),
	"uint16":  reflect.TypeFor[uint16](),
	"uint32":  reflect.TypeFor[uint32](),
	"uint64":  reflect.TypeFor[uint64](),
	"uintptr": reflect.TypeFor[uintptr](),
	"float32": reflect.TypeFor[float32](),
	"float64": reflect.TypeFor[float64](),
	"string":  reflect.TypeFor[string](),
}

var (
	anyType     = reflect.TypeFor[any]()
	errorType   = reflect.TypeFor[error]()
	protoMsgTyp = reflect.TypeFor[proto.Message]()
)

// wireType is a Go type with its type expression and codec.
type wireType struct {
	typ   reflect.Type
	name  string       // type expression
	codec *codec       // how its values are encoded
	atoms []*typeEntry // registered types the expression names (for fingerprint mismatches)
	err   error        // set when the type has no expression (not registered)
	proto bool         // an unregistered protobuf message: a payload of kindProto
}

// wireTypes caches wireTypeOf per registry version: a type registered
// after its first use gets its name from then on.
type wireTypeKey struct {
	t       reflect.Type
	version uint64
}

var wireTypes sync.Map // wireTypeKey → *wireType

// wireTypeOf returns t's wire type; its err is set (wrapping
// ErrTypeNotRegistered) when t cannot be named.
func wireTypeOf(t reflect.Type) *wireType {
	reg := registry.Load()
	key := wireTypeKey{t, reg.version}
	if v, ok := wireTypes.Load(key); ok {
		return v.(*wireType)
	}
	wt := &wireType{typ: t}
	wt.proto = t.Kind() == reflect.Pointer && t.Implements(protoMsgTyp) && reg.byType[t.Elem()] == nil
	var sb strings.Builder
	if bad := nameType(&sb, t, reg, &wt.atoms, 0); bad != nil {
		if bad == t {
			wt.err = notRegistered(t)
		} else {
			wt.err = fmt.Errorf("%w: %v in a %v (call mailbox.RegisterType from init)", ErrTypeNotRegistered, bad, t)
		}
	} else {
		wt.name = sb.String()
		wt.codec = codecOf(t)
		if wt.codec.err != nil {
			wt.err = fmt.Errorf("%w: %v: %w", ErrEncode, t, wt.codec.err)
		}
	}
	v, _ := wireTypes.LoadOrStore(key, wt)
	return v.(*wireType)
}

func notRegistered(t reflect.Type) error {
	return fmt.Errorf("%w: %v (call mailbox.RegisterType from init)", ErrTypeNotRegistered, t)
}

// nameType writes t's type expression, or returns the type that has none.
func nameType(sb *strings.Builder, t reflect.Type, reg *registryTables, atoms *[]*typeEntry, depth int) reflect.Type {
	if depth > maxExprDepth {
		return t
	}
	if e := reg.byType[t]; e != nil {
		*atoms = append(*atoms, e)
		sb.WriteString(e.name)
		return nil
	}
	switch {
	case t == anyType:
		sb.WriteString("any")
		return nil
	case t == errorType:
		sb.WriteString("error")
		return nil
	case t.Name() != "" && t.PkgPath() == "" && basicTypes[t.Name()] == t:
		sb.WriteString(t.Name())
		return nil
	case t.Kind() == reflect.Pointer && t.Implements(protoMsgTyp) && t.Elem().Name() != "" && reg.byType[t.Elem()] == nil:
		m, ok := reflect.Zero(t).Interface().(proto.Message)
		if !ok {
			return t
		}
		sb.WriteString(protoPrefix)
		sb.WriteString(string(m.ProtoReflect().Descriptor().FullName()))
		return nil
	case t.Name() != "":
		return t
	}
	switch t.Kind() {
	case reflect.Pointer:
		sb.WriteByte('*')
	case reflect.Slice:
		sb.WriteString("[]")
	case reflect.Array:
		sb.WriteByte('[')
		sb.WriteString(strconv.Itoa(t.Len()))
		sb.WriteByte(']')
	case reflect.Map:
		sb.WriteString("map[")
		if bad := nameType(sb, t.Key(), reg, atoms, depth+1); bad != nil {
			return bad
		}
		sb.WriteByte(']')
	default:
		return t
	}
	return nameType(sb, t.Elem(), reg, atoms, depth+1)
}

type exprKey struct {
	s       string
	version uint64
}

// exprTable caches the type expressions resolved from peers, at most max;
// untrusted peers together add at most untrustedMax of them.
type exprTable struct {
	max          int64
	untrustedMax int64
	cache        sync.Map // exprKey → *wireType, or exprFailure
	count        atomic.Int64
	untrusted    atomic.Int64 // of count, those untrusted peers added
}

var peerTypeExprs = &exprTable{max: maxTypeExprs, untrustedMax: maxUntrustedTypeExprs}

// parseTypeExpr resolves a type expression received from a peer. added
// counts the expressions the link added to the process's table (see
// exprTable.resolve); nil for none. untrusted: the peer's additions come
// out of the untrusted share.
func parseTypeExpr(s string, added *int, untrusted bool) (*wireType, error) {
	return peerTypeExprs.resolve(s, added, maxLinkTypeExprs, untrusted)
}

// resolve returns what s names, from the cache or resolved and cached. A
// link adds at most linkMax expressions to the table: *added counts those it
// added (when added is not nil), so one peer cannot fill the table for all;
// an untrusted one's additions also count toward untrustedMax, so that
// untrusted peers together cannot either.
func (t *exprTable) resolve(s string, added *int, linkMax int, untrusted bool) (*wireType, error) {
	reg := registry.Load()
	key := exprKey{s, reg.version}
	if v, ok := t.cache.Load(key); ok {
		if f, ok := v.(exprFailure); ok {
			return nil, f.err
		}
		return v.(*wireType), nil
	}
	// A plain name that resolves (a registered type, a basic type, a linked
	// protobuf message) builds no Go type, and this binary knows finitely
	// many: it counts toward neither bound, so an honest peer naming many
	// registered types never meets them. What composes types, and any name
	// that fails, counts.
	plain := !strings.ContainsAny(s, "*[")
	var wt *wireType
	var err error
	if plain {
		if wt, err = resolveTypeExpr(s, reg); err == nil {
			v, _ := t.cache.LoadOrStore(key, wt)
			return v.(*wireType), nil
		}
	}
	if added != nil && *added >= linkMax {
		return nil, fmt.Errorf("%w: %q: the link named more than %d distinct type expressions", ErrUnknownType, s, linkMax)
	}
	if t.count.Load() >= t.max {
		return nil, fmt.Errorf("%w: %q: more than %d distinct type expressions", ErrUnknownType, s, t.max)
	}
	if untrusted && t.untrusted.Load() >= t.untrustedMax {
		return nil, fmt.Errorf("%w: %q: untrusted peers named more than %d distinct type expressions", ErrUnknownType, s, t.untrustedMax)
	}
	// A failed expression is counted and remembered too: reflect may have
	// built types for a part of it ("[5]int]" fails after making [5]int).
	if !plain {
		wt, err = resolveTypeExpr(s, reg)
	}
	var v any
	if err != nil {
		v = exprFailure{err}
	} else {
		v = wt
	}
	if _, loaded := t.cache.LoadOrStore(key, v); !loaded {
		t.count.Add(1)
		if untrusted {
			t.untrusted.Add(1)
		}
		if added != nil {
			*added++
		}
	}
	return wt, err
}

// exprFailure is a cached expression that did not resolve, and why.
type exprFailure struct{ err error }

func resolveTypeExpr(s string, reg *registryTables) (*wireType, error) {
	wt := &wireType{name: s}
	t, rest, err := parseExpr(s, reg, &wt.atoms, 0)
	if err == nil && rest != "" {
		err = fmt.Errorf("stray %q", rest)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrUnknownType, s, err)
	}
	wt.typ = t
	wt.codec = codecOf(t)
	if wt.codec.err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrUnknownType, s, wt.codec.err)
	}
	return wt, nil
}

func parseExpr(s string, reg *registryTables, atoms *[]*typeEntry, depth int) (t reflect.Type, rest string, err error) {
	if depth > maxExprDepth {
		return nil, "", fmt.Errorf("nested deeper than %d", maxExprDepth)
	}
	defer func() {
		if r := recover(); r != nil { // reflect refuses a type (too large an array)
			t, rest, err = nil, "", fmt.Errorf("%v", r)
		}
	}()
	switch {
	case strings.HasPrefix(s, "*"):
		e, rest, err := parseExpr(s[1:], reg, atoms, depth+1)
		if err != nil {
			return nil, "", err
		}
		return reflect.PointerTo(e), rest, nil
	case strings.HasPrefix(s, "[]"):
		e, rest, err := parseExpr(s[2:], reg, atoms, depth+1)
		if err != nil {
			return nil, "", err
		}
		return reflect.SliceOf(e), rest, nil
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return nil, "", fmt.Errorf("unterminated array length")
		}
		n, err := strconv.Atoi(s[1:end])
		if err != nil || n < 0 || n > maxExprArray {
			return nil, "", fmt.Errorf("array length %q", s[1:end])
		}
		e, rest, err := parseExpr(s[end+1:], reg, atoms, depth+1)
		if err != nil {
			return nil, "", err
		}
		return reflect.ArrayOf(n, e), rest, nil
	case strings.HasPrefix(s, "map["):
		k, rest, err := parseExpr(s[4:], reg, atoms, depth+1)
		if err != nil {
			return nil, "", err
		}
		if !strings.HasPrefix(rest, "]") {
			return nil, "", fmt.Errorf("map key not closed")
		}
		if !k.Comparable() {
			return nil, "", fmt.Errorf("map key %v is not comparable", k)
		}
		v, rest, err := parseExpr(rest[1:], reg, atoms, depth+1)
		if err != nil {
			return nil, "", err
		}
		return reflect.MapOf(k, v), rest, nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		end = len(s)
	}
	name, rest := s[:end], s[end:]
	switch {
	case name == "any":
		return anyType, rest, nil
	case name == "error":
		return errorType, rest, nil
	case basicTypes[name] != nil:
		return basicTypes[name], rest, nil
	case strings.HasPrefix(name, protoPrefix):
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name[len(protoPrefix):]))
		if err != nil {
			return nil, "", fmt.Errorf("proto %s not known here", name[len(protoPrefix):])
		}
		return reflect.TypeOf(mt.Zero().Interface()), rest, nil
	}
	e := reg.byName[name]
	if e == nil {
		return nil, "", fmt.Errorf("%s not registered here", name)
	}
	*atoms = append(*atoms, e)
	return e.typ, rest, nil
}
