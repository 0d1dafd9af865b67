// Command observe runs a small process tree with procactor's debug endpoint
// on, so that you can watch it work, crash and restart: in a browser (the
// page it prints), or in a terminal (cmd/proctree).
//
// The tree: a feeder actor in the parent sends jobs to three child
// processes. worker n/1 panics on every -crash'th job: its root actor is
// restarted inside the same process (its restarts count up, its pid stays).
// worker n/2 is killed (SIGKILL, as an out-of-memory killer would) every
// -crash'th job: its process is restarted (its incarnation, restarts and
// pid change; it is "restarting" for a moment), and the jobs it had not
// finished go to the next one. team n/3 keeps a worker of its own, n/3/1 (a
// grandchild of the parent), and forwards its jobs to it; results come
// straight back to the feeder across two links.
//
//	go run ./examples/observe                 # until Ctrl-C
//	go run ./cmd/proctree -addr 127.0.0.1:PORT  # in another terminal, with the printed address
//	go run ./examples/observe -for 10s -rate 500 -crash 200
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
)

// Job is one unit of work; Crash makes the worker panic instead.
type Job struct {
	ID    int
	Crash bool
}

// Result is a worker's answer to a Job.
type Result struct {
	ID    int
	Sum   byte
	OSPid int
}

func init() {
	mailbox.RegisterType("examples.observe.Job", &Job{})
	mailbox.RegisterType("examples.observe.Result", &Result{})
	procnode.RegisterKind("observe.worker", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromFunc(work), nil
	})
	procnode.RegisterKind("observe.team", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return &team{} }), nil
	})
}

// work is a worker's root actor: it answers each job, or panics when told.
func work(ctx pa.Context) {
	if j, ok := ctx.Message().(*Job); ok {
		if j.Crash {
			panic(fmt.Sprintf("job %d: simulated crash", j.ID))
		}
		sum := sha256.Sum256([]byte(fmt.Sprint(j.ID)))
		ctx.Respond(&Result{ID: j.ID, Sum: sum[0], OSPid: os.Getpid()})
	}
}

// team is a child's root actor with a child process of its own: it
// forwards jobs to it, and the answers go to the job's sender directly.
type team struct{ worker *pa.PID }

func (t *team) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		// Props: spawning from an actor does not block it.
		t.worker = ctx.Spawn(procnode.Props("observe.worker"))
	case *Job:
		ctx.Forward(t.worker)
		_ = m
	}
}

// feeder sends a job to every target each tick and counts the answers.
type feeder struct {
	targets []*pa.PID
	crashAt int // every crashAt'th job to targets[0] crashes it; 0: never
	next    int
	done    int
}

type tick struct{}

type stats struct{ sent, done int }

func (f *feeder) Receive(ctx pa.Context) {
	switch ctx.Message().(type) {
	case tick:
		f.next++
		for i, to := range f.targets {
			crash := i == 0 && f.crashAt > 0 && f.next%f.crashAt == 0
			ctx.Request(to, &Job{ID: f.next, Crash: crash})
		}
	case *Result:
		f.done++
	case stats:
		ctx.Respond(stats{sent: f.next * len(f.targets), done: f.done})
	}
}

func main() {
	procnode.Main()
	debugAddr := flag.String("debug", procnode.DefaultDebugAddr, "where the debug endpoint listens (loopback by default)")
	runFor := flag.Duration("for", 0, "stop after this long (0: run until interrupted)")
	rate := flag.Int("rate", 100, "jobs per second to each child")
	crash := flag.Int("crash", 500, "every N'th job crashes n/1 and kills n/2 (0: never)")
	flag.Parse()
	if *rate < 1 || *crash < 0 {
		fmt.Fprintln(os.Stderr, "observe: -rate must be positive and -crash not negative")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	if err := run(ctx, *debugAddr, *rate, *crash); err != nil {
		fmt.Fprintln(os.Stderr, "observe:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, debugAddr string, rate, crashAt int) error {
	node, err := procnode.NewNode()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = node.Close(cctx)
	}()
	dbg, err := node.ServeDebug(debugAddr)
	if err != nil {
		return err
	}
	fmt.Printf("debug page: %s\n", dbg.URL())
	fmt.Printf("terminal:   go run ./cmd/proctree -addr %s\n", dbg.Addr())

	spawnCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var procs []*procnode.Process
	var targets []*pa.PID
	for _, c := range []struct{ kind, name string }{
		{"observe.worker", "restarts-in-place"},
		{"observe.worker", "restarts-process"},
		{"observe.team", "team"},
	} {
		p, err := procnode.Spawn(spawnCtx, node.Root(), c.kind, procnode.WithName(c.name))
		if err != nil {
			return err
		}
		procs = append(procs, p)
		targets = append(targets, p.PID())
	}
	f := node.Root().Spawn(pa.PropsFromProducer(func() pa.Actor { return &feeder{targets: targets, crashAt: crashAt} }))
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	begin := time.Now()
	ticks := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			node.Root().Send(f, tick{})
			ticks++
			if crashAt > 0 && ticks%crashAt == crashAt/2 {
				if pid := procs[1].OSPid(); procs[1].Alive() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	res, err := node.Root().RequestFuture(f, stats{}, 5*time.Second).Result()
	if err != nil {
		return err
	}
	st := res.(stats)
	s := node.Snapshot(context.Background())
	fmt.Printf("ran %.1f s: %d jobs sent, %d answered\n", time.Since(begin).Seconds(), st.sent, st.done)
	for _, c := range s.Children {
		fmt.Printf("%s %s: %s, %d restarts, incarnation %d\n", c.Address, c.Name, c.State, c.Restarts, c.Incarnation)
	}
	return nil
}
