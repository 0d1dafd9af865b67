// Package wireshape keeps the shape digests of the wire types that
// procactor's own packages register (mailbox.RegisterType: boot,
// Snapshot, SpawnRequest...), so that a process does not compute them at
// its start. A handshake announces a digest of every registered type's
// shape (package mailbox, fingerprint.go); computing one means compiling
// the type's codec and spelling its shape out, and procactor's own types
// were most of a child's schema (Snapshot alone about half of its 150–300
// µs, measured on the 2-core machine), while a child that is never asked
// for a snapshot never needs Snapshot's codec.
//
// The digests are the ones mailbox computes, not other ones: a peer that
// computes them gets the same. TestDigestsMatchTheTypes (this package)
// computes every one from its type and fails, printing the table to paste,
// when a type or the codec changed.
//
// It imports nothing of procactor's: package mailbox reads the table and
// fills in the hooks. The table names types of actor, procnode and reach as
// data only; mailbox still knows nothing of those packages.
package wireshape
