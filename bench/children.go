package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// stopGrace is how long a child may take to exit after its link closed before it
// is killed.
const stopGrace = 2 * time.Second

// child is one re-executed bench binary playing a role.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result; read after done is closed
	// untrack removes the child from liveChildren.
	untrack func()
}

// newChildCmd returns the command that re-executes this binary as role, sized by
// cfg. Its stdout and stderr go to the parent's stderr (children print nothing in
// normal operation; a role that needs stdout replaces it). On Linux the child gets
// SIGKILL when the parent dies and runs in its own process group, so Ctrl-C reaches
// the parent alone and the parent stops the child.
func newChildCmd(role string, cfg linkConfig) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate own executable: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(),
		roleEnv+"="+role,
		maxMessageEnv+"="+strconv.Itoa(cfg.maxMessage))
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childSysProcAttr()
	return cmd, nil
}

// startChild starts cmd, made by newChildCmd for role, and tracks it in
// liveChildren until it is stopped.
func startChild(role string, cmd *exec.Cmd) (*child, error) {
	c := &child{cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s child: %w", role, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	c.untrack = liveChildren.add(c.kill)
	return c, nil
}

// kill sends SIGKILL and waits for the child to exit.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// stop waits up to stopGrace for a child whose link the caller has closed to exit,
// then kills it. It returns the child's exit error, if it exited on its own with
// one, and is idempotent.
func (c *child) stop() error {
	defer c.untrack()
	select {
	case <-c.done:
		return c.err
	case <-time.After(stopGrace):
		c.kill()
		return fmt.Errorf("child %d did not exit %v after its link closed; killed", c.cmd.Process.Pid, stopGrace)
	}
}

// tracker holds the kill functions of every running child so that an interrupted
// or failing run leaves none behind.
type tracker struct {
	mu   sync.Mutex
	next int
	live map[int]func() // guarded by mu
}

// liveChildren tracks every child started by this process.
var liveChildren = &tracker{live: map[int]func(){}}

// add registers kill, which must kill one child and wait for it, and returns the
// function that unregisters it.
func (t *tracker) add(kill func()) (remove func()) {
	t.mu.Lock()
	id := t.next
	t.next++
	t.live[id] = kill
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			delete(t.live, id)
			t.mu.Unlock()
		})
	}
}

// killAll kills every tracked child and waits for them. It is safe to call more
// than once and concurrently with add; a child added meanwhile is left to the
// next call.
func (t *tracker) killAll() {
	t.mu.Lock()
	kills := make([]func(), 0, len(t.live))
	for id, k := range t.live {
		kills = append(kills, k)
		delete(t.live, id)
	}
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, k := range kills {
		wg.Go(k)
	}
	wg.Wait()
}

// count returns the number of tracked children.
func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}
