package main

import (
	"fmt"
	"os"
	"strconv"
)

// Child processes are re-executions of this binary. The parent sets roleEnv to a
// registered role name; runChildRole, called first thing in main (and in TestMain),
// then runs that role instead of the bench and exits.
const (
	// roleEnv names the role a re-executed bench binary plays.
	roleEnv = "PROCACTOR_BENCH_ROLE"
	// maxMessageEnv carries linkConfig.maxMessage to the child, in bytes.
	maxMessageEnv = "PROCACTOR_BENCH_MAX_MESSAGE"
)

// roles maps a role name to the function that runs it; written only by init
// functions (registerRole).
var roles = map[string]func() error{}

// registerRole makes name runnable as a child role. It panics on a duplicate name.
func registerRole(name string, run func() error) {
	if _, dup := roles[name]; dup {
		panic(fmt.Sprintf("bench: role %q registered twice", name))
	}
	roles[name] = run
}

// runChildRole runs this process as a bench child and exits when roleEnv is set;
// otherwise it returns at once. It exits 0 when the role ends normally (its parent
// closed the link), 1 when the role fails and 2 for an unknown role.
func runChildRole() {
	name, ok := os.LookupEnv(roleEnv)
	if !ok {
		return
	}
	// The child's own children, if any, must not inherit the role.
	os.Unsetenv(roleEnv)
	run, ok := roles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench child: unknown role %q\n", name)
		os.Exit(2)
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench child %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childMaxMessage returns the parent's linkConfig.maxMessage, read from the
// environment of a child role.
func childMaxMessage() (int, error) {
	s := os.Getenv(maxMessageEnv)
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad %s=%q", maxMessageEnv, s)
	}
	return n, nil
}
