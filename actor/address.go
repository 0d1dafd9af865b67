package actor

import (
	"fmt"
	"strings"
)

// Addresses are hierarchical, so routing needs no tables: the root node has a
// name ("n"); a child's address is its parent's plus "/" and a segment that
// the parent never reuses ("n/1", "n/2", "n/1/1"). A node routes a PID to
// itself, down to the child whose segment matches, or up to its parent. A PID
// of another tree goes up to the root, whose later resolvers (package reach)
// may carry it to another host.

// ChildAddress returns the address of parent's child with the given segment.
func ChildAddress(parent, segment string) string { return parent + "/" + segment }

// ValidateAddress checks an address: non-empty segments without spaces,
// not protoactor's "nonhost".
func ValidateAddress(addr string) error {
	if addr == "" || addr == "nonhost" {
		return fmt.Errorf("%w: %q", ErrInvalidAddress, addr)
	}
	for _, seg := range strings.Split(addr, "/") {
		if seg == "" || strings.ContainsAny(seg, " \t\n") {
			return fmt.Errorf("%w: %q has an empty or blank segment", ErrInvalidAddress, addr)
		}
	}
	return nil
}

// rootOf returns the first segment of an address: the tree it belongs to.
func rootOf(addr string) string {
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// hop says where a message for target goes from self.
type hop uint8

const (
	hopNone   hop = iota // a root's view of another tree: another resolver's business
	hopSelf              // this node
	hopChild             // down to child segment seg
	hopParent            // up
)

func route(self, target string) (h hop, seg string) {
	if target == self {
		return hopSelf, ""
	}
	if len(target) > len(self) && target[len(self)] == '/' && strings.HasPrefix(target, self) {
		rest := target[len(self)+1:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		return hopChild, rest
	}
	if rt := rootOf(target); rt != rootOf(self) {
		// Another tree. A root leaves it to the resolvers after its own
		// (package reach, protoactor's gRPC remote); any other node sends it
		// up, so that its root can take it across hosts.
		if rt == "" || !strings.Contains(self, "/") {
			return hopNone, ""
		}
	}
	return hopParent, ""
}

// isAncestor reports whether a is a proper ancestor of b ("n" of "n/1/2").
func isAncestor(a, b string) bool {
	return len(b) > len(a) && b[len(a)] == '/' && b[:len(a)] == a
}
