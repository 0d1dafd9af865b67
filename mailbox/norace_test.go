//go:build !race

package mailbox

const raceEnabled = false

// manyMessages is the count of the in-order, nothing-lost test.
const manyMessages = 1_000_000
