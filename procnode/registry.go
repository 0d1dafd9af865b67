package procnode

import (
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/internal/nodeopt"
)

// newChildNode makes a child's node with a lean process registry: one lock
// per bucket (a child holds few actors and needs no 1024 locks).
func newChildNode(address string, opts ...actor.NodeOption) (*actor.Node, error) {
	opts = append(opts, nodeopt.LeanRegistry().(actor.NodeOption))
	return actor.NewNode(address, opts...)
}
