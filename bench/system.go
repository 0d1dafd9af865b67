package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// system is one contender in the table: a way for this process to exchange messages
// with a peer. Adding a contender is one file whose init calls registerSystem.
//
// A system must be cheap to construct; everything costly (actor systems, listeners,
// child processes) happens in start, once per cell, so that every cell starts from a
// fresh peer.
type system interface {
	// name labels the system's rows and ratio keys, e.g. "raw_pipe". It is
	// lower_snake_case and unique.
	name() string
	// start brings up one peer ready to answer (a child process, or an actor for an
	// in-process system) and returns the parent's link to it. The harness times
	// start plus the first request for spawn_cold. ctx cancels a start in progress;
	// cfg says how large the cell's messages get. A start that fails must leave no
	// process or goroutine behind.
	start(ctx context.Context, cfg linkConfig) (link, error)
}

// scenarioLimiter is implemented by a system that can run only some kinds of
// scenario: notFor returns why it cannot run kind k ("" when it can), and the
// harness marks such a cell n/a without starting a peer.
type scenarioLimiter interface {
	notFor(k kind) string
}

// linkConfig is what a system needs to know to size one link before it starts.
type linkConfig struct {
	// maxMessage is the largest payload, in bytes, that the cell sends on the link.
	// Systems size pipe buffers and message limits from it (F_SETPIPE_SZ, gRPC's
	// MaxRecvMsgSize) so that the small-message cells run with the defaults.
	maxMessage int
}

// link is the parent's end of one connection to one peer. Its methods are called
// from one goroutine at a time; fanout uses one link per goroutine. A method that
// the system cannot perform returns a *naError (see notApplicable); any other
// error fails the cell.
type link interface {
	// request sends p and returns when the peer's echo of p has arrived.
	request(p []byte) error
	// oneway sends n messages carrying p without waiting for each, then returns
	// once the peer has confirmed that it received all n. large_64m calls it with
	// n = 1.
	oneway(p []byte, n int) error
	// onewayRecords is oneway for the struct r, encoded the way the system encodes
	// a user's struct (its codec is part of the measure).
	onewayRecords(r *Record, n int) error
	// close stops the peer, waits for it to exit and releases the link's
	// resources. It is called exactly once, also after a failed method.
	close() error
}

// Record is the small struct of oneway_struct. It is exported because net/rpc
// (goplugin) only carries exported types.
type Record struct {
	ID    int64    `msgpack:"id"`
	Name  string   `msgpack:"name"`
	Tags  []string `msgpack:"tags"`
	Value float64  `msgpack:"value"`
}

// sampleRecord is the value every system sends in oneway_struct.
func sampleRecord() *Record {
	return &Record{ID: 1 << 40, Name: "sensor-17/temperature", Tags: []string{"alpha", "beta", "gamma"}, Value: 21.375}
}

// naError marks a cell a system cannot do; reason says why.
type naError struct{ reason string }

func (e *naError) Error() string { return "n/a: " + e.reason }

// notApplicable returns the error for a cell a system cannot do.
func notApplicable(reason string) error { return &naError{reason: reason} }

// naReason reports whether err marks a cell as not applicable, and why.
func naReason(err error) (string, bool) {
	var na *naError
	if errors.As(err, &na) {
		return na.reason, true
	}
	return "", false
}

const (
	// baselineSystem is the denominator of the "× raw_pipe" ratios.
	baselineSystem = "raw_pipe"
	// subjectSystem is the system the ratios against the other contenders are
	// oriented to, once it is registered.
	subjectSystem = "procactor"
)

// systems holds every registered system by name; written only by init functions.
var systems = map[string]system{}

// registerSystem adds s to the systems the bench can run. It panics on a duplicate
// name, which is a programming error found by any run.
func registerSystem(s system) {
	if _, dup := systems[s.name()]; dup {
		panic(fmt.Sprintf("bench: system %q registered twice", s.name()))
	}
	systems[s.name()] = s
}

// systemOrder returns the registered systems in table order: the baseline, the
// subject and its variants ("procactor*"), then the rest by name.
func systemOrder() []system {
	rank := func(name string) int {
		switch {
		case name == baselineSystem:
			return 0
		case strings.HasPrefix(name, subjectSystem):
			return 1
		}
		return 2
	}
	out := make([]system, 0, len(systems))
	for _, s := range systems {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i].name()), rank(out[j].name())
		if ri != rj {
			return ri < rj
		}
		return out[i].name() < out[j].name()
	})
	return out
}
