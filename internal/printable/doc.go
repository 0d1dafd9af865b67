// Package printable makes text another process sent fit for a terminal or a
// log line: what a child says about itself (its snapshot, its dead-letter
// lines) reaches the parent's stderr and an operator's terminal, and a
// compromised child must not send escape sequences or forge lines there.
// It knows nothing of procactor's packages.
package printable
