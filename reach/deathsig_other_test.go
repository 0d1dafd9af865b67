//go:build !linux

package reach_test

import "syscall"

// rootAttr has no parent-death signal to set outside Linux: a root process
// still ends when its stdin does, at the test binary's exit.
func rootAttr() *syscall.SysProcAttr { return nil }
