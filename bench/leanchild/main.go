// Command leanchild is the smallest program that can host the bench's kind:
// it links procactor and nothing else, to measure a cold spawn without the
// bench's own dependencies (gRPC, go-plugin).
package main

import (
	_ "github.com/procactor/procactor/bench/benchkind"
	"github.com/procactor/procactor/procnode"
)

func main() {
	procnode.Main()
	panic("leanchild: run me through procnode.Spawn")
}
