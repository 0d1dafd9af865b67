package reach_test

import "syscall"

// rootAttr makes a test's root process die with the test binary, even when
// the test is killed before its cleanup runs.
func rootAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
