package actor

import (
	"fmt"
	"reflect"
	"sync"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
)

// Untrusted links. A child that parses untrusted input may be compromised;
// with Link.SetUntrusted its link gives it only what it was given:
//   - it may send user messages only to PIDs that crossed the link towards
//     it (the sender of what it received, PIDs inside the messages, its
//     spawn arguments: see Grant), and to its own subtree;
//   - it may not stop or poison anything outside its subtree, nor watch
//     what it was not given;
//   - everything a trusted link refuses it is refused too.
//
// What it was given is a set bounded per link (the oldest grants go first).
// Finding PIDs inside messages walks each value sent through the link with
// reflection: an untrusted link costs more per message than a trusted one.

// capabilities is the set of PIDs an untrusted peer was given.
type capabilities struct {
	mu    sync.Mutex
	limit int
	set   map[pidKey]struct{} // guarded by mu
	order []pidKey            // insertion order, for eviction (guarded by mu)
}

// SetUntrusted makes the link's peer untrusted (see above), remembering at
// most limit PIDs it was given. Call it before the first Connect.
func (l *Link) SetUntrusted(limit int) error {
	if limit < 1 {
		return fmt.Errorf("%w: SetUntrusted(%d)", ErrInvalidOption, limit)
	}
	l.caps.Store(&capabilities{limit: limit, set: make(map[pidKey]struct{})})
	return nil
}

// Grant gives the untrusted peer the PIDs found in v (a message, spawn
// arguments): it may send to them. A no-op on a trusted link.
func (l *Link) Grant(v any) {
	if c := l.caps.Load(); c != nil {
		c.grantValue(v)
	}
}

func (c *capabilities) grant(p *pa.PID) {
	if p == nil {
		return
	}
	k := keyOf(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[k]; ok {
		return
	}
	if len(c.order) >= c.limit {
		delete(c.set, c.order[0])
		c.order = c.order[1:]
	}
	c.set[k] = struct{}{}
	c.order = append(c.order, k)
}

func (c *capabilities) has(p *pa.PID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.set[keyOf(p)]
	return ok
}

// grantOutgoing records what an envelope going to the peer gives it.
func (c *capabilities) grantOutgoing(env *mailbox.Envelope) {
	c.grant(env.Sender)
	c.grantValue(env.Message)
}

var pidType = reflect.TypeOf((*pa.PID)(nil))

// grantValue grants every PID inside v (fields, elements, map values,
// interfaces), to a bounded depth.
func (c *capabilities) grantValue(v any) {
	if v == nil {
		return
	}
	if p, ok := v.(*pa.PID); ok {
		c.grant(p)
		return
	}
	switch v.(type) {
	case []byte, string, int, int64, uint64, float64, bool:
		return // the common payloads hold no PID
	}
	c.walk(reflect.ValueOf(v), 0)
}

const maxGrantDepth = 16

func (c *capabilities) walk(v reflect.Value, depth int) {
	if depth > maxGrantDepth || !v.IsValid() {
		return
	}
	if v.Type() == pidType {
		if !v.IsNil() {
			c.grant(v.Interface().(*pa.PID))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			c.walk(v.Elem(), depth+1)
		}
	case reflect.Struct:
		if v.Type() == pidType.Elem() {
			if v.CanAddr() {
				c.grant(v.Addr().Interface().(*pa.PID))
			} else {
				p := pa.PID{Address: v.FieldByName("Address").String(), Id: v.FieldByName("Id").String()}
				c.grant(&p)
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				c.walk(v.Field(i), depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := range v.Len() {
			c.walk(v.Index(i), depth+1)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			c.walk(it.Key(), depth+1)
			c.walk(it.Value(), depth+1)
		}
	}
}

// untrustedCheck refuses what an untrusted peer may not do (see above).
func (l *Link) untrustedCheck(c *capabilities, env *mailbox.Envelope) error {
	t := env.Target
	if t.Address == l.addr || isAncestor(l.addr, t.Address) {
		return nil // its own subtree
	}
	switch env.Message.(type) {
	case *pa.Stop:
		return fmt.Errorf("%w: an untrusted child may not stop %s", ErrRefused, pidString(t))
	case *pa.PoisonPill:
		return fmt.Errorf("%w: an untrusted child may not poison %s", ErrRefused, pidString(t))
	case *pa.Terminated, *pa.Unwatch:
		if env.Lane == mailbox.LaneSystem {
			return nil // checked against the watch tables; an Unwatch only gives up
		}
		// On the user lane nothing checks them: they reach an actor's
		// Receive as any message, and only what the child was given may.
	}
	if !c.has(t) {
		return fmt.Errorf("%w: %s was never given to the untrusted child", ErrRefused, pidString(t))
	}
	return nil
}
