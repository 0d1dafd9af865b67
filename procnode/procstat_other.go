//go:build !linux

package procnode

// readProcStats has no /proc to read outside Linux.
func readProcStats(int) ProcStats { return ProcStats{Error: "not available on this system"} }
