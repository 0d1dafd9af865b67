// Command helper is another binary that calls procnode.Main: the tests build
// it and spawn it with procnode.WithBinary. It hosts one kind, which the test
// binary does not register.
package main

import (
	"fmt"
	"os"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/procnode"
)

func init() {
	procnode.RegisterKind("helper.greeter", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(func(c pa.Context) {
			if s, ok := c.Message().(string); ok {
				c.Respond("hello " + s + " from the helper binary")
			}
		}), nil
	})
}

func main() {
	procnode.Main()
	fmt.Fprintln(os.Stderr, "helper: only procnode.Spawn runs this binary")
	os.Exit(1)
}
