//go:build linux

package integration

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
	"golang.org/x/sys/unix"
)

// The kinds the tests spawn. They are registered in every process of the
// test binary; their code runs in the children.
const (
	kindEcho         = "it.echo"
	kindStubborn     = "it.stubborn"
	kindBusy         = "it.busy"
	kindOrphanParent = "it.orphan-parent"
	kindChain        = "it.chain"
	kindLeaf         = "it.leaf"
)

// PidList answers "pids": the OS pids of a child's own children.
type PidList struct {
	Pids []int
	Err  string
}

// Report is sent by children to a collector in the test process.
type Report struct {
	From string
	Text string
}

// BigSend asks an echo child to start sending a 64 MiB []byte to Sink (after
// eight "block" strings that stall the parent's reader, see crash_test.go)
// and to die in the middle of it: os.Exit(3), or SIGKILL when Kill.
type BigSend struct {
	Sink *pa.PID
	Kill bool
}

const bigSize = 64 << 20

func init() {
	mailbox.RegisterType("integration.PidList", &PidList{})
	mailbox.RegisterType("integration.Report", &Report{})
	mailbox.RegisterType("integration.BigSend", &BigSend{})

	actor.RegisterKind(kindEcho, func(actor.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return &echoActor{} }), nil
	})
	actor.RegisterKind(kindStubborn, func(a actor.Args) (*pa.Props, error) {
		if ignoreTerm, _ := a.Value.(bool); ignoreTerm {
			signal.Ignore(syscall.SIGTERM) // runs in the child
		}
		return pa.PropsFromProducer(func() pa.Actor { return &stubbornActor{} }), nil
	})
	actor.RegisterKind(kindBusy, func(a actor.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return &busyActor{node: a.Node} }), nil
	})
	actor.RegisterKind(kindOrphanParent, func(a actor.Args) (*pa.Props, error) {
		mode, _ := a.Value.(int) // 0: Pdeathsig and EOF; 1: EOF only; 2: EOF only, children blocked
		return pa.PropsFromProducer(func() pa.Actor { return &orphanParent{eofOnly: mode >= 1, blocked: mode == 2} }), nil
	})
	actor.RegisterKind(kindChain, func(a actor.Args) (*pa.Props, error) {
		col, _ := a.Value.(*pa.PID)
		return pa.PropsFromProducer(func() pa.Actor { return &chainActor{collector: col} }), nil
	})
	actor.RegisterKind(kindLeaf, func(a actor.Args) (*pa.Props, error) {
		col, _ := a.Value.(*pa.PID)
		return pa.PropsFromProducer(func() pa.Actor { return &leafActor{collector: col} }), nil
	})
}

// echoActor answers strings with "echo: " + the string, except for the
// orders below, which make the child fail in one way or another.
type echoActor struct{}

func (echoActor) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case string:
		switch m {
		case "hang": // a request that is never answered
		case "crash:nilmap": // a runtime error where no recover reaches
			go func() {
				var mm map[string]int
				//lint:ignore SA5000 the crash is the point
				mm["x"]++
			}()
		case "crash:index":
			go func() {
				s := []int{1, 2, 3}
				i := len(os.Args) + 5
				s[i]++
			}()
		case "crash:panic": // escapes the root actor
			panic("boom from the root actor")
		case "crash:exit3":
			os.Exit(3)
		case "crash:killself":
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		case "raw:garbage": // bytes that are no frame header at all
			mustWrite([]byte("GARBAGE!"))
		case "raw:huge": // a data frame header announcing 2^31 bytes
			mustWrite(frameHeader(1, 1<<31))
		case "raw:cut-exit", "raw:cut-kill": // a 64 MiB data frame cut after 4 MiB
			mustWrite(frameHeader(1, bigSize+64))
			mustWrite(make([]byte, 4<<20))
			if m == "raw:cut-kill" {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
			os.Exit(3)
		default:
			ctx.Respond("echo: " + m)
		}
	case *BigSend:
		root := ctx.ActorSystem().Root
		for range 8 {
			root.Send(m.Sink, "block")
		}
		go root.Send(m.Sink, make([]byte, bigSize))
		// Wait until the pipe to the parent holds at least 512 KiB: the 64 MiB
		// frame is being written, and cannot finish while the parent's reader
		// is held back.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if n, err := unix.IoctlGetInt(4, unix.TIOCINQ); err == nil && n >= 512<<10 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if m.Kill {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		os.Exit(3)
	}
}

// frameHeader is a frame header (mailbox/wire.go): [len u32 BE][type][version=2][0 0].
func frameHeader(typ byte, length uint32) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint32(h[0:4], length)
	h[4], h[5] = typ, 2
	return h
}

// mustWrite writes raw bytes on the child's write end of its stream (fd 4,
// procnode's childWriteFD), beside its endpoint.
func mustWrite(b []byte) {
	if err := writeFD(4, b); err != nil {
		fmt.Fprintf(os.Stderr, "raw write: %v\n", err)
		os.Exit(5)
	}
}

// stubbornActor never finishes stopping; with WithArgs(true) its process
// also ignores SIGTERM.
type stubbornActor struct{}

func (stubbornActor) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Stopping:
		select {} // only SIGKILL ends this process
	case string:
		ctx.Respond("echo: " + m)
	}
}

// busyActor keeps a goroutine working until it stops; stopping, it logs a
// warning through its node's logger (an orphan's log goes to its stderr,
// whose reader, the parent, is gone: that must not kill it).
type busyActor struct {
	node *actor.Node
	stop chan struct{}
}

func (b *busyActor) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		b.stop = make(chan struct{})
		go busyLoop(b.stop)
	case *pa.Stopping:
		close(b.stop)
		if b.node != nil {
			log := b.node.Logger()
			log.Warn().Msg("busy child stopping")
		}
	case string:
		ctx.Respond("echo: " + m)
		if m == "block" {
			select {} // for good: only the process's end ends it
		}
	}
}

func busyLoop(stop <-chan struct{}) {
	var sum [32]byte
	for {
		select {
		case <-stop:
			return
		default:
		}
		for range 200 {
			sum = sha256.Sum256(sum[:])
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// orphanParent spawns 8 busy children when it starts and answers "pids"
// with their OS pids. With eofOnly its children get a harmless Pdeathsig
// (SIGWINCH), so only EOF on their stream tells them the parent is gone;
// with blocked each child's root actor is then blocked for good in a
// Receive that runs on its link's reader.
type orphanParent struct {
	eofOnly bool
	blocked bool
	pids    PidList
}

func (o *orphanParent) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		root := ctx.ActorSystem().Root
		opts := []procnode.Option{procnode.WithRestart(false), procnode.WithStderr(nil)}
		if o.eofOnly {
			opts = append(opts, procnode.WithSysProcAttr(&syscall.SysProcAttr{Pdeathsig: syscall.SIGWINCH}))
		}
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				p, err := procnode.Spawn(sctx, root, kindBusy, opts...)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					o.pids.Err = err.Error()
					return
				}
				o.pids.Pids = append(o.pids.Pids, p.OSPid())
				if o.blocked {
					// Answered just before the Receive blocks.
					if _, err := root.RequestFuture(p.PID(), "block", 30*time.Second).Result(); err != nil {
						o.pids.Err = "block: " + err.Error()
					}
				}
			})
		}
		wg.Wait()
	case string:
		switch m {
		case "pids":
			ctx.Respond(&o.pids)
		default:
			ctx.Respond("echo: " + m)
		}
	}
}

// chainActor spawns a leaf grandchild under itself (its keeper is the chain
// actor's child) and, once stopped, reports whether the grandchild had
// ended before it, with the grandchild's exit status.
type chainActor struct {
	collector *pa.PID
	gc        *procnode.Process
	err       error
}

func (c *chainActor) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c.gc, c.err = procnode.Spawn(sctx, ctx, kindLeaf, procnode.WithArgs(c.collector),
			procnode.WithRestart(false), procnode.WithStderr(nil))
	case *pa.Stopped:
		text := fmt.Sprintf("spawn error: %v", c.err)
		if c.gc != nil {
			done := false
			select {
			case <-c.gc.Done():
				done = true
			default:
			}
			text = fmt.Sprintf("gc-done=%v gc-status=%v gc-stopped=%v", done, c.gc.ExitStatus(), c.gc.ExitStatus() != nil && c.gc.ExitStatus().Stopped)
		}
		ctx.ActorSystem().Root.Send(c.collector, &Report{From: "child", Text: text})
	case string:
		switch {
		case m == "gcpid" && c.gc != nil:
			ctx.Respond(c.gc.OSPid())
		case m == "gcpid":
			ctx.Respond(fmt.Sprintf("spawn error: %v", c.err))
		default:
			ctx.Respond("echo: " + m)
		}
	}
}

// leafActor reports to the collector when it starts stopping.
type leafActor struct{ collector *pa.PID }

func (l *leafActor) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Stopping:
		ctx.ActorSystem().Root.Send(l.collector, &Report{From: "grandchild", Text: "stopping"})
	case string:
		ctx.Respond("echo: " + m)
	}
}

// collector is a parent actor that passes Reports and []byte sizes on.
type collector struct {
	reports chan *Report
}

func (c *collector) Receive(ctx pa.Context) {
	if r, ok := ctx.Message().(*Report); ok {
		c.reports <- r
	}
}
