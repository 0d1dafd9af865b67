//go:build race

package mailbox

// raceEnabled: the race detector slows message passing ~10-20×, so the
// volume tests send fewer messages.
const raceEnabled = true

// manyMessages is the count of the in-order, nothing-lost test.
const manyMessages = 100_000
