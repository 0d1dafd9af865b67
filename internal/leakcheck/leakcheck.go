// Package leakcheck holds the goleak options shared by the project's tests:
// the goroutines protoactor-go itself leaves behind for a bounded time.
package leakcheck

import "go.uber.org/goleak"

// Options ignores protoactor's dead-letter throttle timer, a goroutine that
// lives for one throttle interval (1 s by default) after a dead letter.
func Options() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
	}
}
