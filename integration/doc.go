// Package integration holds the cross-package failure-semantics tests of
// procactor: real child processes (re-executions of the test binary, whose
// TestMain calls procnode.Main first) that crash, hang, lie on their stream
// or lose their parent, checked against the rules of docs/architecture.md
// ("Failure semantics", "Child start", "The process actor").
//
// The package has no code of its own; everything is in _test.go files and
// is Linux-only (the checks read /proc).
//
// What the tests show:
//
//   - No orphans (orphan_test.go): a spawned parent with 8 busy children is
//     SIGKILLed, in several rounds; every child is gone or a zombie within
//     the deadline. One round disarms Pdeathsig (a harmless signal instead),
//     so only the portable rule, EOF on the control stream, ends them.
//   - Crashes (crash_test.go): SIGKILL from outside, a runtime error in a
//     goroutine the actor's recover does not cover, a panic in the root
//     actor, os.Exit(3), a stream cut in the middle of a 64 MiB message
//     (hand-made frame, and the real send path with the parent's reader held
//     back): watchers get Terminated, a request in flight fails with
//     pa.ErrDeadLetter long before its 60 s timeout, the exit status says
//     why, and a second child still answers. A child that ignores SIGTERM is
//     SIGKILLed after its deadlines.
//   - Ctrl-C (ctrlc_test.go): SIGINT to the process group of a parent (a
//     re-exec of the test binary, INTEGRATION_ROLE=ctrlc-parent) reaches the
//     parent only; it stops its child gracefully, both exit 0.
//   - Node shutdown (shutdown_test.go): Node.Close stops every child
//     gracefully, deepest first (a grandchild ends before its parent).
//   - Hygiene (hygiene_test.go): a child's descriptors, and the parent's
//     goroutines, descriptors and child processes after many spawn/stop
//     cycles and crashes.
//   - Bad input (badinput_test.go): garbage, a 2^31-byte frame header, a
//     wrong cookie: a typed error, a log line, the child killed, the parent
//     healthy.
//
// # The descriptor rule
//
// TestChildDescriptors asserts, for a live child and for a grandchild:
//
//	0   /dev/null (stdin is not inherited)
//	1   the parent's stdout (the same file as the parent's fd 1)
//	2   a pipe whose other end the parent holds (the stderr copy)
//	3   a pipe whose other end the parent holds (parent → child stream)
//	4   a pipe whose other end the parent holds (child → parent stream)
//	5+  only what the Go runtime opens for itself: anon_inode:[eventpoll],
//	    anon_inode:[eventfd], anon_inode:[pidfd], anon_inode:[timerfd], and
//	    files under /sys/fs/cgroup/ (the CPU limit, read for GOMAXPROCS);
//	    plus, in a child that has children of its own, its ends of their
//	    streams (the pipes at their fds 2, 3 and 4)
//
// 2, 3 and 4 are three different pipes; every descriptor from 3 on is
// close-on-exec (so nothing passes on to the child's own children but
// through their stream); there is no other pipe, no socket, no other file.
// In particular none of the parent's descriptors reaches the child, not even
// one leaked into the parent without close-on-exec: the test makes such a
// pipe, and the shell or CI runner that starts the tests often leaks some.
//
// Children of a -race test binary are -race builds too: their stderr is
// scanned for race reports, which fail the test, and their exit-time sleep
// (GORACE atexit_sleep_ms, 1 s by default) is cut to 100 ms.
//
// Set INTEGRATION_LOG=1 to see each test's parent log (it is shown on
// failure anyway).
package integration
