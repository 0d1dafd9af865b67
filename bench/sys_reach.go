package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/bench/benchkind"
	"github.com/procactor/procactor/procnode"
	"github.com/procactor/procactor/reach"
)

// reach is package reach's tunnel between two roots on 127.0.0.1: the bench
// is root B, the peer is root A (a child process of the bench running a
// reach host), and the echo is the root actor of A's child process A/1. A
// request goes B → gRPC → A's gateway → pipe → A/1, and its answer back the
// same way: protoactor_grpc's root-to-root round trip plus one pipe hop each
// way. reach_root asks an echo at A's root instead, through the same
// tunnel: the tunnel's own cost over protoactor_grpc, without the hop.
// Both only do the rtt scenarios: the tunnel refuses messages past its byte
// bound rather than make a sender wait, so an unpaced one-way stream
// measures refusals, and a peer that is a whole root is no spawn.

const (
	reachRole = "reach_root"
	// reachAtEnv tells root A where its echo runs: "child" or "root".
	reachAtEnv = "PROCACTOR_BENCH_REACH_AT"
)

func init() {
	registerSystem(reachSystem{sysName: "reach"})
	registerSystem(reachSystem{sysName: "reach_root", atRoot: true})
	registerRole(reachRole, runReachRoot)
}

// reachParent is the bench's own root (B), shared by every reach link and
// started on first use.
var reachParent = sync.OnceValues(func() (*reach.Host, error) {
	addr, err := loopbackAddress()
	if err != nil {
		return nil, err
	}
	node, err := procnode.NewNodeAt(addr)
	if err != nil {
		return nil, err
	}
	h, err := reach.Start(node)
	if err != nil {
		node.Close(context.Background())
		return nil, err
	}
	return h, nil
})

// loopbackAddress returns a 127.0.0.1 address whose port was free a moment
// ago (a reach root must know its address before it listens).
func loopbackAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

type reachSystem struct {
	sysName string
	atRoot  bool // the echo is a root actor of A, not A/1's
}

func (s reachSystem) name() string { return s.sysName }

func (reachSystem) notFor(k kind) string {
	if k != kindRTT {
		return "rtt only: the tunnel refuses past its byte bound instead of pacing a stream; its peer is a whole root, not a spawn"
	}
	return ""
}

func (s reachSystem) start(ctx context.Context, cfg linkConfig) (link, error) {
	h, err := reachParent()
	if err != nil {
		return nil, err
	}
	cmd, err := newChildCmd(reachRole, cfg)
	if err != nil {
		return nil, err
	}
	at := "child"
	if s.atRoot {
		at = "root"
	}
	cmd.Env = append(cmd.Env, reachAtEnv+"="+at)
	c, address, stdin, err := startAnnouncingChild(ctx, reachRole, cmd)
	if err != nil {
		return nil, fmt.Errorf("reach root: %w", err)
	}
	return &reachLink{root: h.Node().Root(), echo: pa.NewPID(address, procnode.RootID), stdin: stdin, child: c}, nil
}

type reachLink struct {
	root  *pa.RootContext
	echo  *pa.PID
	stdin io.Closer
	child *child
}

func (l *reachLink) request(p []byte) error {
	res, err := l.root.RequestFuture(l.echo, p, requestTimeout).Result()
	if err != nil {
		return err
	}
	if got, ok := res.([]byte); !ok || len(got) != len(p) {
		return fmt.Errorf("reach: echo of %d bytes came back as %T", len(p), res)
	}
	return nil
}

func (l *reachLink) oneway([]byte, int) error         { return notApplicable("rtt only") }
func (l *reachLink) onewayRecords(*Record, int) error { return notApplicable("rtt only") }

func (l *reachLink) close() error {
	l.stdin.Close() // EOF tells root A to close
	return l.child.stop()
}

// runReachRoot is root A: a reach host on a free loopback port with one
// child process running the bench's echo (or an echo at the root, named as
// a child's root actor is); it prints the echo's address and runs until its
// stdin reaches EOF.
func runReachRoot() error {
	addr, err := loopbackAddress()
	if err != nil {
		return err
	}
	node, err := procnode.NewNodeAt(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), childReadyTimeout)
	defer cancel()
	h, err := reach.Start(node)
	if err != nil {
		node.Close(ctx)
		return err
	}
	echoAt := node.Address()
	if os.Getenv(reachAtEnv) == "root" {
		_, err = node.Root().SpawnNamed(echoProps(), procnode.RootID)
	} else {
		var p *procnode.Process
		if p, err = procnode.Spawn(ctx, node.Root(), benchkind.Kind, procnode.WithRestart(false)); err == nil {
			echoAt = p.Address()
		}
	}
	if err != nil {
		h.Close(ctx)
		node.Close(ctx)
		return err
	}
	if _, err := fmt.Fprintln(os.Stdout, echoAt); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, os.Stdin)
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	h.Close(closeCtx)
	node.Close(closeCtx)
	return err
}
