// Command workerpool runs a pool of child process workers supervised by an
// actor in the parent. Each job is CPU-bound (iterated SHA-256) and each
// worker has a few jobs queued at a time. One job makes its worker panic:
// the pool's supervisor strategy hears which job failed, the worker's root
// actor is restarted inside its process, and the jobs queued behind the
// failing one are done. One worker process is killed (as an OOM killer or a
// segfault in cgo code would): it is restarted and gets the jobs it had not
// finished. No job is lost; only the one it panicked on fails.
//
//	go run ./examples/workerpool
//	go run ./examples/workerpool -workers 4 -jobs 40 -crash 0 -kill 0
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
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
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
	// Every message crossing a process boundary is registered, in every
	// binary that sends or receives it (here one binary plays both parts).
	mailbox.RegisterType("examples.workerpool.Job", &Job{})
	mailbox.RegisterType("examples.workerpool.Result", &Result{})
	procnode.RegisterKind("workerpool.worker", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return worker{} }), nil
	})
}

// worker is a child process's root actor.
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
	ended  bool
}

// runJobs asks the pool to run jobs; it answers with a *report.
type runJobs struct {
	jobs   []*Job
	kill   int           // the job after whose result its worker's process is killed (0 = none)
	print  func(outcome) // called from the pool actor as each job ends
	node   *procnode.Node
	report *report
}

// report is the pool's answer: the outcomes in job order and what its
// strategy saw.
type report struct {
	outcomes      []outcome
	childRestarts int // failures of a worker's root actor (panics), restarted in its process
	procRestarts  int // deaths of a worker process, restarted as a new process
	workers       []*pa.PID
}

// pool is the parent's dispatcher actor. It spawns the workers as its own
// children (procnode.Props: the spawn does not wait for the processes), so
// it is their supervisor: HandleFailure below is its strategy. It keeps up
// to depth jobs in flight per worker (least busy first); a worker's mailbox
// holds the ones it has not started.
type pool struct {
	nworkers int
	depth    int
	timeout  time.Duration

	workers   []*pa.PID
	inflight  []int
	requester *pa.PID
	req       *runJobs
	queue     []*Job
	pending   int
	// killed is how many workers were killed whose death the strategy has
	// not seen yet: the report waits for it, as a kill can land after its
	// worker has answered every job it had (the run would end before the
	// restart it shows).
	killed int
}

func (p *pool) Receive(ctx pa.Context) {
	if m, ok := ctx.Message().(*runJobs); ok {
		p.requester, p.req = ctx.Sender(), m
		m.report = &report{outcomes: make([]outcome, len(m.jobs))}
		for i := range p.nworkers {
			pid, err := ctx.SpawnNamed(procnode.Props("workerpool.worker"), fmt.Sprintf("worker-%d", i+1))
			if err != nil {
				panic(err)
			}
			p.workers = append(p.workers, pid)
		}
		m.report.workers = p.workers
		p.inflight = make([]int, p.nworkers)
		p.queue = append([]*Job(nil), m.jobs...)
		p.pending = len(m.jobs)
		if p.pending == 0 {
			ctx.Respond(m.report)
			return
		}
		p.dispatch(ctx)
	}
}

func (p *pool) dispatch(ctx pa.Context) {
	for len(p.queue) > 0 {
		w := 0
		for i := range p.workers {
			if p.inflight[i] < p.inflight[w] {
				w = i
			}
		}
		if p.inflight[w] >= p.depth {
			return
		}
		job := p.queue[0]
		p.queue = p.queue[1:]
		p.inflight[w]++
		f := ctx.RequestFuture(p.workers[w], job, p.timeout)
		// The continuation runs in this actor, in order with its messages.
		ctx.ReenterAfter(f, func(res any, err error) {
			if err == nil {
				if r, ok := res.(*Result); ok {
					p.end(ctx, outcome{job: job, worker: w, res: r})
					if job.ID == p.req.kill {
						p.killWorker(w)
					}
					return
				}
				err = fmt.Errorf("unexpected answer %T", res)
			}
			p.end(ctx, outcome{job: job, worker: w, err: err})
		})
	}
}

// end records a job's outcome once (a job whose worker panicked on it is
// ended by the strategy; its request then times out unanswered).
func (p *pool) end(ctx pa.Context, o outcome) {
	rep := p.req.report
	if rep.outcomes[o.job.ID-1].ended {
		return
	}
	o.ended = true
	rep.outcomes[o.job.ID-1] = o
	p.inflight[o.worker]--
	p.pending--
	p.req.print(o)
	if p.pending == 0 {
		p.reportIfDone(ctx)
		return
	}
	p.dispatch(ctx)
}

// reportIfDone answers the requester once every job has ended and every
// killed worker's death has reached the strategy.
func (p *pool) reportIfDone(ctx pa.Context) {
	if p.pending == 0 && p.killed == 0 {
		ctx.Send(p.requester, p.req.report)
	}
}

// killWorker kills worker w's current OS process, as the OOM killer would.
func (p *pool) killWorker(w int) {
	proc, ok := p.req.node.Process(p.workers[w])
	if !ok || proc.OSPid() <= 0 {
		return
	}
	fmt.Printf("killing worker %d (pid %d) with jobs queued\n", w+1, proc.OSPid())
	if err := proc.Signal(syscall.SIGKILL); err != nil { // to the current incarnation, whatever its pid
		fmt.Printf("killing worker %d: %v\n", w+1, err)
		return
	}
	p.killed++
}

// HandleFailure makes the pool the supervisor strategy of its workers: a
// worker whose root actor panicked reports the job it failed on (the
// failing message, as protoactor gives it in one process), which ends that
// job at once; a dead worker process is reported with an *ExitError. Either
// way the worker is restarted, and keeps its PID.
func (p *pool) HandleFailure(sys *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, rs *pa.RestartStatistics, reason, msg any) {
	var ee *procnode.ExitError
	if err, ok := reason.(error); ok && errors.As(err, &ee) {
		p.req.report.procRestarts++
		if p.killed > 0 {
			p.killed--
			if ctx, ok := sup.(pa.Context); ok {
				defer p.reportIfDone(ctx) // after the restart below
			}
		}
	} else {
		p.req.report.childRestarts++
	}
	// The strategy runs in the pool actor (sup is its context): the pool's
	// state is ours to change here.
	if job, ok := msg.(*Job); ok {
		ctx, _ := sup.(pa.Context)
		for w, pid := range p.workers {
			if pid.Equal(child) && ctx != nil {
				p.end(ctx, outcome{job: job, worker: w, err: fmt.Errorf("its worker panicked: %v", reason)})
			}
		}
	}
	pa.DefaultSupervisorStrategy().HandleFailure(sys, sup, child, rs, reason, msg)
}

func main() {
	procnode.Main() // first: in a child process this runs the child and never returns
	workers := flag.Int("workers", runtime.NumCPU(), "worker processes")
	jobs := flag.Int("jobs", 12, "jobs to run")
	iterations := flag.Int("iterations", 500000, "sha256 iterations per job")
	crash := flag.Int("crash", 5, "the job that makes its worker panic (0 = none)")
	kill := flag.Int("kill", 3, "the job after whose result its worker's process is killed (0 = none)")
	flag.Parse()
	if *workers < 1 || *jobs < 0 || *iterations < 1 || *crash < 0 || *kill < 0 {
		fmt.Fprintln(os.Stderr, "workerpool: need -workers ≥ 1, -jobs ≥ 0, -iterations ≥ 1, -crash ≥ 0, -kill ≥ 0")
		os.Exit(2)
	}
	if err := run(*workers, *jobs, *iterations, *crash, *kill); err != nil {
		fmt.Fprintln(os.Stderr, "workerpool:", err)
		os.Exit(1)
	}
}

func run(nworkers, njobs, iterations, crash, kill int) error {
	n, err := procnode.NewNode()
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	}()

	jobs := make([]*Job, njobs)
	for i := range jobs {
		jobs[i] = &Job{ID: i + 1, Seed: fmt.Sprintf("job-%d", i+1), Iterations: iterations, Crash: i+1 == crash}
	}
	print := func(o outcome) { // runs in the pool actor: one at a time
		if o.err != nil {
			fmt.Printf("job %2d on worker %d: failed: %v\n", o.job.ID, o.worker+1, o.err)
			return
		}
		fmt.Printf("job %2d on worker %d (pid %d): sha256^%d(%q) = %s…\n",
			o.job.ID, o.worker+1, o.res.OSPid, iterations, o.job.Seed, o.res.Digest[:16])
	}
	interrupted := n.StopOnSignal() // Ctrl-C stops the workers gracefully
	poolPID := n.Root().Spawn(pa.PropsFromProducer(func() pa.Actor {
		return &pool{nworkers: nworkers, depth: 3, timeout: time.Minute}
	}))
	start := time.Now()
	f := n.Root().RequestFuture(poolPID, &runJobs{jobs: jobs, kill: kill, print: print, node: n}, 10*time.Minute)
	answer := make(chan *report, 1)
	go func() {
		res, _ := f.Result()
		rep, _ := res.(*report)
		answer <- rep
	}()
	var rep *report
	select {
	case rep = <-answer:
		if rep == nil {
			return errors.New("the pool did not answer")
		}
	case <-interrupted.Done():
		fmt.Println("interrupted: the workers were stopped")
		return nil
	}
	elapsed := time.Since(start)

	done, failed, lost := 0, 0, 0
	var unexpected []string
	for _, o := range rep.outcomes {
		switch {
		case o.err == nil:
			done++
		case errors.Is(o.err, pa.ErrTimeout):
			lost++
			unexpected = append(unexpected, fmt.Sprintf("job %d: %v", o.job.ID, o.err))
		default:
			failed++
			if !o.job.Crash {
				unexpected = append(unexpected, fmt.Sprintf("job %d: %v", o.job.ID, o.err))
			}
		}
	}
	for i, pid := range rep.workers {
		if p, ok := n.Process(pid); ok {
			fmt.Printf("worker %d: pid %d, incarnation %d, %d restarts\n", i+1, p.OSPid(), p.Incarnation(), p.Restarts())
		}
	}
	fmt.Printf("%d jobs on %d workers in %.2f s: %d done, %d failed, %d lost; restarts: %d of a root actor, %d of a process\n",
		njobs, nworkers, elapsed.Seconds(), done, failed, lost, rep.childRestarts, rep.procRestarts)

	// Stopping the pool stops its children, the worker processes.
	if err := n.Root().StopFuture(poolPID).Wait(); err != nil {
		return err
	}
	if len(unexpected) > 0 {
		return fmt.Errorf("jobs failed: %s", strings.Join(unexpected, "; "))
	}
	return nil
}
