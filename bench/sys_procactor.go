package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/bench/benchkind"
	"github.com/procactor/procactor/procnode"
)

// procactor is the subject: the parent's root context talking to a child
// process actor over procactor's transport, written as a user would write it
// (RequestFuture to p.PID(), Send for one-way). The child is the re-executed
// bench binary (procnode.Main runs first in main). procactor_lean differs only
// in its child: bench/leanchild, a binary that links nothing but procactor,
// built once per run; it shows what a cold spawn costs without the bench's
// own dependencies. procactor_1p runs its child with GOMAXPROCS=1
// (procnode.WithGOMAXPROCS): the child's reader → actor hand-offs stay on
// one thread.

func init() {
	registerSystem(procactorSystem{sysName: "procactor"})
	registerSystem(procactorSystem{sysName: "procactor_lean", lean: true})
	registerSystem(procactorSystem{sysName: "procactor_1p", oneP: true})
}

// procactorNode is the bench process's root node, shared by every procactor link.
var procactorNode = sync.OnceValues(func() (*procnode.Node, error) { return procnode.NewNode() })

// leanChild is bench/leanchild, built on first use and removed by run when
// the bench ends.
var leanChild leanBuild

// leanBuild builds bench/leanchild once into a temp dir of its own.
type leanBuild struct {
	mu  sync.Mutex
	dir string // "" until built
	bin string
	err error
}

// binary returns the path of the lean child, building it on first use.
func (b *leanBuild) binary() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bin != "" || b.err != nil {
		return b.bin, b.err
	}
	dir, err := os.MkdirTemp("", "procactor-bench-lean-")
	if err != nil {
		b.err = err
		return "", err
	}
	bin := filepath.Join(dir, "leanchild")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/procactor/procactor/bench/leanchild")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		b.err = fmt.Errorf("building bench/leanchild: %w", err)
		return "", b.err
	}
	b.dir, b.bin = dir, bin
	return bin, nil
}

// remove deletes the lean child's temp dir; a later binary builds it again.
func (b *leanBuild) remove() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	dir := b.dir
	b.dir, b.bin, b.err = "", "", nil
	if dir == "" {
		return nil
	}
	return os.RemoveAll(dir)
}

type procactorSystem struct {
	sysName string
	lean    bool
	oneP    bool // the child runs with GOMAXPROCS=1 (procnode.WithGOMAXPROCS)
}

func (s procactorSystem) name() string { return s.sysName }

func (s procactorSystem) options() ([]procnode.Option, error) {
	// stdout to the bench's stderr, as the raw children's (newChildCmd):
	// children print nothing, and the table on stdout stays the bench's.
	opts := []procnode.Option{procnode.WithRestart(false), procnode.WithStdout(os.Stderr)}
	if s.oneP {
		opts = append(opts, procnode.WithGOMAXPROCS(1))
	}
	if s.lean {
		bin, err := leanChild.binary()
		if err != nil {
			return nil, err
		}
		opts = append(opts, procnode.WithBinary(bin))
	}
	return opts, nil
}

// nodeAndOptions returns the bench's parent node and the options of this
// system's children.
func (s procactorSystem) nodeAndOptions() (*procnode.Node, []procnode.Option, error) {
	node, err := procactorNode()
	if err != nil {
		return nil, nil, err
	}
	opts, err := s.options()
	return node, opts, err
}

func (s procactorSystem) start(ctx context.Context, _ linkConfig) (link, error) {
	node, opts, err := s.nodeAndOptions()
	if err != nil {
		return nil, err
	}
	p, err := procnode.Spawn(ctx, node.Root(), benchkind.Kind, opts...)
	if err != nil {
		return nil, err
	}
	return &procactorLink{root: node.Root(), p: p}, nil
}

// startPool implements warmSystem with a procnode.Pool of one child.
func (s procactorSystem) startPool(ctx context.Context, _ linkConfig) (warmPool, error) {
	node, opts, err := s.nodeAndOptions()
	if err != nil {
		return nil, err
	}
	pl, err := procnode.NewPool(node, benchkind.Kind, 1, opts...)
	if err != nil {
		return nil, err
	}
	return &procactorPool{node: node, pool: pl}, nil
}

type procactorPool struct {
	node *procnode.Node
	pool *procnode.Pool
}

func (p *procactorPool) ready(ctx context.Context) error {
	for p.pool.Idle() == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func (p *procactorPool) take(ctx context.Context) (link, error) {
	proc, err := p.pool.Take(ctx, p.node.Root())
	if err != nil {
		return nil, err
	}
	return &procactorLink{root: p.node.Root(), p: proc}, nil
}

func (p *procactorPool) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	return p.pool.Close(ctx)
}

type procactorLink struct {
	root *pa.RootContext
	p    *procnode.Process
}

func (l *procactorLink) childPID() int { return l.p.OSPid() }

func (l *procactorLink) request(p []byte) error {
	res, err := l.root.RequestFuture(l.p.PID(), p, requestTimeout).Result()
	if err != nil {
		return err
	}
	if got, ok := res.([]byte); !ok || len(got) != len(p) {
		return fmt.Errorf("procactor: echo of %d bytes came back as %T", len(p), res)
	}
	return nil
}

func (l *procactorLink) oneway(p []byte, n int) error {
	pid := l.p.PID()
	for i := 0; i < n; i++ {
		l.root.Send(pid, p)
	}
	return l.confirm(n)
}

func (l *procactorLink) onewayRecords(r *Record, n int) error {
	rec := &benchkind.Record{ID: r.ID, Name: r.Name, Tags: r.Tags, Value: r.Value}
	pid := l.p.PID()
	for i := 0; i < n; i++ {
		l.root.Send(pid, rec)
	}
	return l.confirm(n)
}

// confirm asks the child how many messages it counted; the request travels
// behind them on the same ordered link.
func (l *procactorLink) confirm(n int) error {
	res, err := l.root.RequestFuture(l.p.PID(), &benchkind.CountRequest{}, streamTimeout).Result()
	if err != nil {
		return err
	}
	if got, ok := res.(int); !ok || got != n {
		return fmt.Errorf("procactor: child counted %v of %d messages", res, n)
	}
	return nil
}

func (l *procactorLink) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	if err := l.p.Stop(ctx); err != nil {
		return err
	}
	return l.p.Wait(ctx)
}

var _ snapshotter = procactorSystem{}

// snapshotNA: the variants differ from procactor in their child only, which
// answers a snapshot with the same code; one row is enough.
func (s procactorSystem) snapshotNA() string {
	if s.sysName != subjectSystem {
		return "measured on " + subjectSystem
	}
	return ""
}

// snapshot takes the shared node's Snapshot: the cell's peers are its only
// children (every cell stops its peers before the next starts).
func (s procactorSystem) snapshot(ctx context.Context) ([]int, error) {
	node, err := procactorNode()
	if err != nil {
		return nil, err
	}
	snap := node.Snapshot(ctx)
	pids := make([]int, 0, len(snap.Children))
	for _, c := range snap.Children {
		if c.Tree == nil {
			return nil, fmt.Errorf("snapshot: child %s did not answer: %s", c.Address, c.TreeError)
		}
		pids = append(pids, c.OSPid)
	}
	return pids, nil
}
