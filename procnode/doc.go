// Package procnode runs actors in child processes: it wires package actor
// (nodes, links, PIDs across processes) and package mailbox (the wire) to
// real OS processes.
//
// A parent makes its root node with NewNode and starts a child with Spawn,
// which returns a *Process: the process actor. The child is a re-execution
// of the parent's own binary (or of another binary given with WithBinary)
// whose main function calls Main first; Main reads the bootstrap from the
// environment, builds the child's node and runs the registered kind as the
// child's root actor. Only kinds registered in the binary (RegisterKind,
// from init) can run in a child: the environment selects a name, never code.
// Every struct type sent across is registered with mailbox.RegisterType in
// every binary that sends or receives it (an unregistered one is a dead
// letter, and a request with it fails at once). A whole program:
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"time"
//
//		pa "github.com/asynkron/protoactor-go/actor"
//		"github.com/procactor/procactor/mailbox"
//		"github.com/procactor/procactor/procnode"
//	)
//
//	// Job is what the parent asks of the worker.
//	type Job struct{ N int }
//
//	func init() { // runs in the parent and in the child alike
//		mailbox.RegisterType("example.Job", &Job{})
//		procnode.RegisterKind("worker", func(args procnode.Args) (*pa.Props, error) {
//			prefix, _ := args.Value.(string) // WithArgs, decoded in the child
//			return pa.PropsFromFunc(func(c pa.Context) {
//				if job, ok := c.Message().(*Job); ok {
//					c.Respond(fmt.Sprintf("%s%d", prefix, job.N*job.N))
//				}
//			}), nil
//		})
//	}
//
//	func main() {
//		procnode.Main() // returns at once in the parent; never in a child
//		node, err := procnode.NewNode()
//		if err != nil {
//			panic(err)
//		}
//		defer node.Close(context.Background()) // stops the children
//		node.StopOnSignal()                     // Ctrl-C stops them gracefully
//
//		ctx := context.Background()
//		p, err := procnode.Spawn(ctx, node.Root(), "worker", procnode.WithArgs("squared: "))
//		if err != nil {
//			panic(err)
//		}
//		res, err := node.Root().RequestFuture(p.PID(), &Job{N: 7}, 5*time.Second).Result()
//		fmt.Println(res, err) // squared: 49 <nil>
//		if err := p.Stop(ctx); err != nil {
//			panic(err)
//		}
//		fmt.Println(p.Wait(ctx), p.ExitStatus()) // <nil> exit code 0
//	}
//
// p.PID() is the child's root actor: an ordinary protoactor PID, a child of
// its spawner (a root context or an actor) in protoactor's supervision tree
// (ctx.Children() lists it), so the spawner's supervisor strategy decides
// what a failure means; messages to it go straight to the link, and it
// stays valid across restarts. From inside an actor, Props spawns the same
// process actor without waiting (ctx.Spawn(procnode.Props("worker"));
// Node.Process gives its *Process), and a Pool keeps children started ahead
// of time. Process mirrors exec.Cmd: OSPid, Alive, Signal, Wait (any number
// of times), ExitStatus (code, signal, reason, stderr tail, the
// *os.ProcessState, whether the parent stopped it and how), Stop (poison,
// then SIGTERM, then SIGKILL, after deadlines), Terminate and Kill;
// WithContext binds its life to a context, as exec.CommandContext does,
// while Spawn's own ctx bounds only the start.
//
// What procnode owns: exec and the inherited stream (two pipes on fds 3 and
// 4, close-on-exec in the child), the handshake and its timeout, the child's
// stdio (stdin /dev/null unless WithStdin, stdout inherited, stderr copied
// with a bounded tail kept), its environment (the parent's, or exactly
// WithEnviron's, plus procactor's own variables) and working directory, process attributes (its own process
// group, and on Linux Pdeathsig=SIGKILL from a thread that lives as long as
// the process, merged with the caller's SysProcAttr; resource limits with
// WithRlimit), exit status, stop escalation, restarts, and the relay of the
// child's log records to the parent's zerolog logger, tagged with the
// child's address, kind, name (WithName) and OS pid, at most 1000 a second
// per child, a record over 1 MiB cut, control characters in its message,
// field names and caller replaced by '?' (quiet by default, as the logger is;
// PROCACTOR_LOG=debug makes children log at debug, to stderr if the parent's
// logger is disabled). A quiet child's dead-letter lines come through the
// same relay and are printed by the parent as its own (see
// actor.WithDeadLetterLog), not on the child's stderr.
//
// What procnode must not know: the wire format, message encoding and
// batching (package mailbox), addresses, routing, watches and requests
// across links (package actor), and what the user's messages mean. It never
// reads or writes a message of the user's, and it never puts a byte of the
// protocol on stdout or stderr.
//
// # Addresses
//
// NewNode's root is "n" (RootAddress), or "n2", "n3"... while another node
// of the process has that root; a child's address is its parent's plus a
// number that Spawn never reuses ("n/1", "n/1/1"), kept across restarts.
// Node.ChildLink refuses those numbers, so a link made by hand never takes a
// process actor's address.
//
// # Introspection
//
// Node.Snapshot returns the process tree as plain data: each process
// actor's state, OS pid, incarnation, restarts, uptime and last exit, its
// link's traffic per lane and its queues, its RSS and CPU time, and each
// child's own snapshot, asked over its link with a deadline (a child that
// does not answer is shown as such). Node.ServeDebug, off unless called and
// on loopback by default, serves it read-only as JSON with a page that
// draws the tree and refreshes itself (Node.DebugHandler mounts the same in
// the program's own server); cmd/proctree shows it in a terminal.
// Node.RegisterMetrics exports it through the user's OpenTelemetry
// MeterProvider.
//
// # Failure
//
// A process actor keeps protoactor's actor semantics across the process
// boundary: the same script gives the same answers with the actor in
// process and in a child.
//
// A panic of the child's root actor is an actor failure. The child reports
// it (the panic value and the failing message, when they can cross) and
// keeps the root actor's mailbox suspended; the spawner's strategy decides
// (its decider gets the panic value, or a *PanicError with its text); the
// child carries the directive out with protoactor's own machinery: Restart
// makes a new root actor instance with the same mailbox and replays its
// stash, Resume goes on, Stop stops it and the child exits 0. Only the
// failing message is lost. With WithPanicExits a panic ends the process
// instead (exit code ExitRootFailed), and a restart starts a new one.
//
// A death of the process (os.Exit, a signal, a segfault in cgo code, a lost
// stream) is a failure too: the strategy gets an *ExitError. Nothing queued
// for the root actor is lost: the parent numbers the messages it sends to
// the root actor, the child acknowledges those its root actor has finished
// (cumulatively, riding on its outgoing traffic), and the parent keeps the
// others (WithRetainWindow bounds them: a sender that finds the window full
// waits, then its message is a dead letter) and sends them first, in order, to
// the next incarnation, then what was sent while the child was down
// (delivery is at least once: a message finished just before the death,
// whose acknowledgement had not left, is delivered again). Messages to other
// actors of the dead child die with it, as in Erlang: requests among them
// fail at once with a DeadLetterResponse, watchers of them get
// Terminated{AddressTerminated}. Process restarts of one child are spaced by
// a backoff floor (WithRestartBackoff), so that a kind that crashes at once
// cannot fork-storm, and protoactor's intensity limit still ends a loop,
// such as a message that kills every incarnation.
//
// Restarts are invisible to senders and watchers: p.PID() stays valid, and
// watchers of it (and the spawner) get one Terminated when the process
// actor ends for good: stopped, its strategy gave up, or restarts off
// (WithRestart(false)); Why is AddressTerminated when its last process died
// and nothing stopped it (a crash with restarts off), Stopped otherwise,
// also when its strategy gave up after a crash (as in one process, where a
// supervisor's Stop directive ends a child with Stopped). The exit status
// says the rest; without a restart, Wait
// returns an *ExitError holding it:
//
//	err := p.Wait(ctx)
//	var ee *procnode.ExitError
//	if errors.As(err, &ee) {
//		log.Printf("worker ended: %v (code %d, signal %v, failed %v)\n%s", ee.Reason, ee.Code, ee.Signal, ee.Failed, ee.StderrTail)
//	}
//
// When the parent dies, even by SIGKILL, its children exit: they treat the
// end of their stream as the order to stop, and on Linux Pdeathsig kills
// them. A process that was started as a child but whose main did not call
// Main refuses to Spawn (ErrMainNotCalled), so a mistake cannot fork-bomb,
// and exits in time with ExitMainNotCalled, which its parent's Spawn reports
// as ErrMainNotCalled.
package procnode
