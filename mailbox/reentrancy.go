package mailbox

import (
	"runtime"
	"sync"
)

// The reader goroutine of an endpoint must never wait on a writer: protoactor
// answers some messages synchronously on the delivering goroutine (a dead
// letter's DeadLetterResponse, a Watch's Terminated{NotFound}), and a reader
// that blocks on a full link while its peer does the same deadlocks both.
// Readers of every endpoint in the process are recorded here, so that a send
// made from any of them overflows the user lane's bound instead of blocking:
// up to ownReaderOverflow × the bound (at least 16384 messages and 4 MiB)
// when it answers its own peer (the peer drains it as it reads; past that
// the peer is not reading: ErrPeerStalled), up to readerOverflow × the bound
// when it relays into another link
// (past that, ErrQueueFull: a link that does not drain must not grow a
// queue without end). A reader in a lent Handler call (reader.go) hands its
// role over instead and then waits like any sender. The check costs a stack
// read and is only made on the slow path, when the lane is full.
var readerGoroutines sync.Map // goroutine id → *Endpoint

func isReaderGoroutine(id uint64) bool {
	_, ok := readerGoroutines.Load(id)
	return ok
}

// goid returns the current goroutine's id, parsed from its stack header
// ("goroutine 123 [running]:").
func goid() uint64 {
	var buf [32]byte
	n := runtime.Stack(buf[:], false)
	b := buf[:n]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	var id uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
