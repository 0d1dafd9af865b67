// Command workerpool runs a pool of child process workers fed by an actor in
// the parent. Each job is CPU-bound (iterated SHA-256). One job makes its
// worker panic: only that child process dies, its keeper restarts it under
// the same PID (procnode's default, WithRestart(true)), and the pool keeps
// going.
//
//	go run ./examples/workerpool
//	go run ./examples/workerpool -workers 4 -jobs 40 -crash 0
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
)

// Job asks a worker for sha256 applied Iterations times to Seed. Crash makes
// the worker panic instead.
type Job struct {
	ID         int
	Seed       string
	Iterations int
	Crash      bool
}

// Result is a worker's answer to a Job.
type Result struct {
	ID     int
	Digest string // hex
	OSPid  int    // the worker process that computed it
}

func init() {
	mailbox.RegisterType("examples.workerpool.Job", &Job{})
	mailbox.RegisterType("examples.workerpool.Result", &Result{})
	actor.RegisterKind("workerpool.worker", func(actor.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return worker{} }), nil
	})
}

// worker is a child process's root actor. A panic escaping it ends the
// process (exit code 2, the panic text as the reason); the parent's keeper
// then restarts the process.
type worker struct{}

func (worker) Receive(ctx pa.Context) {
	if j, ok := ctx.Message().(*Job); ok {
		if j.Crash {
			panic(fmt.Sprintf("job %d: simulated crash", j.ID))
		}
		ctx.Respond(&Result{ID: j.ID, Digest: digest(j.Seed, j.Iterations), OSPid: os.Getpid()})
	}
}

// digest is sha256 applied n times, starting from seed.
func digest(seed string, n int) string {
	sum := sha256.Sum256([]byte(seed))
	for i := 1; i < n; i++ {
		sum = sha256.Sum256(sum[:])
	}
	return hex.EncodeToString(sum[:])
}

// outcome is what became of one job.
type outcome struct {
	job    *Job
	worker int // index in the pool
	res    *Result
	err    error
}

// runJobs asks the pool to run jobs; it answers with a []outcome in job order.
type runJobs struct {
	jobs   []*Job
	report func(outcome) // called from the pool actor as each job ends
}

// pool is the parent's dispatcher actor: it gives the next job to an idle
// worker (at most one job in flight per worker: least busy) and collects
// the outcomes. A request to a worker that crashes fails at once with a dead
// letter; the worker is idle again and gets the next job, which waits in the
// link until the restarted process is up.
type pool struct {
	workers []*pa.PID
	busy    []bool
	timeout time.Duration

	requester *pa.PID
	req       *runJobs
	queue     []*Job
	outcomes  []outcome
	pending   int
}

func (p *pool) Receive(ctx pa.Context) {
	if m, ok := ctx.Message().(*runJobs); ok {
		p.requester, p.req = ctx.Sender(), m
		p.queue = append([]*Job(nil), m.jobs...)
		p.outcomes = make([]outcome, len(m.jobs))
		p.pending = len(m.jobs)
		if p.pending == 0 {
			ctx.Respond(p.outcomes)
			return
		}
		p.dispatch(ctx)
	}
}

func (p *pool) dispatch(ctx pa.Context) {
	for w := range p.workers {
		if p.busy[w] || len(p.queue) == 0 {
			continue
		}
		job := p.queue[0]
		p.queue = p.queue[1:]
		p.busy[w] = true
		f := ctx.RequestFuture(p.workers[w], job, p.timeout)
		// The continuation runs in this actor, in order with its messages.
		ctx.ReenterAfter(f, func(res any, err error) {
			p.busy[w] = false
			o := outcome{job: job, worker: w, err: err}
			if err == nil {
				if r, ok := res.(*Result); ok {
					o.res = r
				} else {
					o.err = fmt.Errorf("unexpected answer %T", res)
				}
			}
			p.outcomes[job.ID-1] = o
			p.pending--
			if p.req.report != nil {
				p.req.report(o)
			}
			if p.pending == 0 {
				ctx.Send(p.requester, p.outcomes)
				return
			}
			p.dispatch(ctx)
		})
	}
}

func main() {
	procnode.Main() // first: in a child process this runs the child and never returns
	workers := flag.Int("workers", runtime.NumCPU(), "worker processes")
	jobs := flag.Int("jobs", 12, "jobs to run")
	iterations := flag.Int("iterations", 500000, "sha256 iterations per job")
	crash := flag.Int("crash", 5, "the job that makes its worker panic (0 = none)")
	flag.Parse()
	if *workers < 1 || *jobs < 0 || *iterations < 1 || *crash < 0 {
		fmt.Fprintln(os.Stderr, "workerpool: need -workers ≥ 1, -jobs ≥ 0, -iterations ≥ 1, -crash ≥ 0")
		os.Exit(2)
	}
	if err := run(*workers, *jobs, *iterations, *crash); err != nil {
		fmt.Fprintln(os.Stderr, "workerpool:", err)
		os.Exit(1)
	}
}

func run(nworkers, njobs, iterations, crash int) error {
	n, err := procnode.NewNode()
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	}()

	// Start the workers at once; each Spawn returns when its child is up.
	ctx := context.Background()
	procs := make([]*procnode.Process, nworkers)
	errs := make([]error, nworkers)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = procnode.Spawn(ctx, n.Root(), "workerpool.worker",
				procnode.WithName(fmt.Sprintf("worker-%d", i+1)))
		}()
	}
	wg.Wait()
	pids := make([]*pa.PID, nworkers)
	startPids := make([]int, nworkers)
	for i, p := range procs {
		if errs[i] != nil {
			return fmt.Errorf("worker %d: %w", i+1, errs[i])
		}
		pids[i], startPids[i] = p.PID(), p.OSPid()
	}
	fmt.Printf("%d workers started: pids %s\n", nworkers, joinInts(startPids))

	jobs := make([]*Job, njobs)
	for i := range jobs {
		jobs[i] = &Job{ID: i + 1, Seed: fmt.Sprintf("job-%d", i+1), Iterations: iterations, Crash: i+1 == crash}
	}
	report := func(o outcome) { // runs in the pool actor: one at a time
		if errors.Is(o.err, pa.ErrDeadLetter) {
			fmt.Printf("job %2d on worker %d: failed: the worker process went away (%v)\n", o.job.ID, o.worker+1, o.err)
			return
		} else if o.err != nil {
			fmt.Printf("job %2d on worker %d: failed: %v\n", o.job.ID, o.worker+1, o.err)
			return
		}
		fmt.Printf("job %2d on worker %d (pid %d): sha256^%d(%q) = %s…\n",
			o.job.ID, o.worker+1, o.res.OSPid, iterations, o.job.Seed, o.res.Digest[:16])
	}
	poolPID := n.Root().Spawn(n.WithDispatcher(pa.PropsFromProducer(func() pa.Actor {
		return &pool{workers: pids, busy: make([]bool, nworkers), timeout: time.Minute}
	})))
	start := time.Now()
	res, err := n.Root().RequestFuture(poolPID, &runJobs{jobs: jobs, report: report}, 10*time.Minute).Result()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	outcomes := res.([]outcome)

	done, failed := 0, 0
	var unexpected []string
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			done++
		case o.job.Crash:
			failed++
		default:
			failed++
			unexpected = append(unexpected, fmt.Sprintf("job %d: %v", o.job.ID, o.err))
		}
	}
	// Every worker answers again, a restarted one too: a request to a worker
	// whose process is restarting waits in the link until it is back.
	for i, pid := range pids {
		if _, err := n.Root().RequestFuture(pid, &Job{Seed: "ping", Iterations: 1}, time.Minute).Result(); err != nil {
			return fmt.Errorf("worker %d does not answer after the jobs: %w", i+1, err)
		}
	}
	restarts := 0
	for i, p := range procs {
		line := fmt.Sprintf("worker %d: pid %d", i+1, p.OSPid())
		if st := p.ExitStatus(); st != nil { // an earlier incarnation ended
			restarts += int(st.Incarnation) + 1
			line += fmt.Sprintf(", restarted %d× (pid %d: %v)", st.Incarnation+1, st.OSPid, st)
		}
		fmt.Println(line)
	}
	fmt.Printf("%d jobs on %d workers in %.2f s: %d done, %d failed, %d worker restarts\n",
		njobs, nworkers, elapsed.Seconds(), done, failed, restarts)

	for _, p := range procs {
		if err := p.Stop(ctx); err != nil {
			return err
		}
	}
	if len(unexpected) > 0 {
		return fmt.Errorf("jobs failed: %s", strings.Join(unexpected, "; "))
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
