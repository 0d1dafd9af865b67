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
//
//	func init() {
//		procnode.RegisterKind("worker", func(args procnode.Args) (*actor.Props, error) {
//			return actor.PropsFromProducer(newWorker), nil
//		})
//	}
//
//	func main() {
//		procnode.Main() // returns at once in the parent; never in a child
//		node, _ := procnode.NewNode()
//		defer node.Close(context.Background())
//		p, err := procnode.Spawn(ctx, node.Root(), "worker", procnode.WithArgs(cfg))
//		...
//		res, err := node.Root().RequestFuture(p.PID(), job, time.Second).Result()
//		...
//		err = p.Stop(ctx)
//	}
//
// p.PID() is the child's root actor: messages to it go straight to the
// link, and it stays valid across restarts. A keeper actor spawned under the
// spawner (a root context or an actor) owns the OS process, so the spawner's
// supervisor strategy decides what a crash means: protoactor's default
// restarts the child at the same address. Process mirrors exec.Cmd: OSPid,
// Alive, Wait (any number of times), ExitStatus (code, signal, reason,
// stderr tail, whether we stopped it), Stop (poison, then SIGTERM, then
// SIGKILL, after deadlines), Terminate and Kill.
//
// What procnode owns: exec and the inherited stream (two pipes on fds 3 and
// 4, close-on-exec in the child), the handshake and its timeout, the child's
// stdio (stdout inherited, stderr copied with a bounded tail kept), process
// attributes (its own process group, and on Linux Pdeathsig=SIGKILL from a
// thread that lives as long as the process, merged with the caller's
// SysProcAttr; resource limits with WithRlimit), exit status, stop escalation, restarts, and the relay of the
// child's log records to the parent's zerolog logger, tagged with the
// child's address, name and OS pid (quiet by default, as the logger is;
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
// # Failure
//
// When a child crashes (a panic that escapes its root actor, os.Exit, a
// signal, a segfault in cgo code), the link to it is lost: watchers of its
// actors get Terminated, and requests waiting on it fail at once with a
// DeadLetterResponse rather than at their timeout. The keeper records the
// exit status (a root actor's panic text is the reason; otherwise the last
// line of stderr), then escalates the crash to the spawner's strategy. With
// a restart, the next incarnation takes the same address and messages sent
// meanwhile are delivered to it; without one, Wait returns an *ExitError
// holding the status:
//
//	err := p.Wait(ctx)
//	var ee *procnode.ExitError
//	if errors.As(err, &ee) {
//		log.Printf("worker died: %v (code %d, signal %v)\n%s", ee.Reason, ee.Code, ee.Signal, ee.StderrTail)
//	}
//
// When the parent dies, even by SIGKILL, its children exit: they treat the
// end of their stream as the order to stop, and on Linux Pdeathsig kills
// them. A process that was started as a child but whose main did not call
// Main refuses to Spawn (ErrMainNotCalled), so a mistake cannot fork-bomb.
package procnode
