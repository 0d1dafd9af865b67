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
// link, and it stays valid across restarts. It is the spawner's child in
// protoactor's supervision tree (ctx.Children() lists it), so the spawner's
// supervisor strategy decides what a failure means: protoactor's default
// restarts it. From inside an actor, ctx.Spawn(procnode.Props("worker"))
// makes one without waiting for the child process (Node.Process gives its
// *Process). Process mirrors exec.Cmd: OSPid, Alive, Wait (any number of
// times), ExitStatus (code, signal, reason, stderr tail, whether we stopped
// it), Stop (poison, then SIGTERM, then SIGKILL, after deadlines), Terminate
// and Kill.
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
// logger is disabled).
//
// What procnode must not know: the wire format, message encoding and
// batching (package mailbox), addresses, routing, watches and requests
// across links (package actor), and what the user's messages mean. It never
// reads or writes a message of the user's, and it never puts a byte of the
// protocol on stdout or stderr.
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
// others (at most WithRetainWindow bytes) and sends them first, in order, to
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
// (WithRestart(false)); Why is AddressTerminated when its last process died,
// Stopped otherwise. The exit status says the rest; without a restart, Wait
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
// Main refuses to Spawn (ErrMainNotCalled), so a mistake cannot fork-bomb.
package procnode
