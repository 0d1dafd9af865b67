// Command workerpool runs a pool of child process workers fed by an actor in
// the parent, and shows what becomes of a worker when something goes wrong.
// Each job is CPU-bound (iterated SHA-256). The pool actor spawns its workers
// itself (procnode.Props, so it is their supervisor, as for any child actor)
// and gives the next job to an idle worker.
//
// Job -crash makes its worker's actor panic: as in one process, its
// supervisor (the pool, which is told which job failed) restarts it, inside
// the same worker process, and only that job is lost. Job -kill goes to a
// worker whose process the pool then kills with SIGKILL: the worker is
// restarted in a new process behind the same PID, which gets the job again
// (what its actor had not finished is redelivered), so that job completes.
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
	// Both types cross between processes: registered in this binary, which
	// is the parent's and the workers'.
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
	done bool
	err  string
}

// workersPlease asks the pool for its workers' PIDs.
type workersPlease struct{}

// runJobs asks the pool to run jobs; it answers with a []outcome in job order.
type runJobs struct{ jobs []*Job }

// pool is the parent's dispatcher actor and its workers' supervisor. It
// gives the next job to an idle worker (at most one job in flight per
// worker: least busy) with a Request, so that the worker's Result comes back
// to it as a message.
type pool struct {
	node     *procnode.Node
	nworkers int
	kill     int                   // the job whose worker's process is killed once it is sent
	restart  pa.SupervisorStrategy // what the pool does about a failure, after taking note

	workers   []*pa.PID
	busy      []int // the job in flight on each worker; 0: idle
	requester *pa.PID
	jobs      []*Job // by ID-1
	queue     []*Job
	outcomes  []outcome
	pending   int
}

var _ pa.SupervisorStrategy = (*pool)(nil)

func (p *pool) Receive(ctx pa.Context) {
	switch m := ctx.Message().(type) {
	case *pa.Started:
		for i := range p.nworkers {
			// Spawned like any child actor: the PID comes back at once, the
			// process starts meanwhile, and messages wait for it.
			pid, err := ctx.SpawnNamed(procnode.Props("workerpool.worker"), fmt.Sprintf("worker-%d", i+1))
			if err != nil {
				panic(err)
			}
			p.workers = append(p.workers, pid)
		}
		p.busy = make([]int, p.nworkers)
	case *workersPlease:
		ctx.Respond(p.workers)
	case *runJobs:
		p.requester, p.jobs = ctx.Sender(), m.jobs
		p.queue = append([]*Job(nil), m.jobs...)
		p.outcomes = make([]outcome, len(m.jobs))
		p.pending = len(m.jobs)
		if p.pending == 0 {
			ctx.Respond(p.outcomes)
			return
		}
		p.dispatch(ctx)
	case *Result:
		w := p.inFlight(m.ID)
		if w < 0 {
			return // a job delivered twice after a crash (at least once): settled already
		}
		job := p.jobs[m.ID-1]
		fmt.Printf("job %2d on worker %d (pid %d): sha256^%d(%q) = %s…\n", m.ID, w+1, m.OSPid, job.Iterations, job.Seed, m.Digest[:16])
		p.settle(ctx, w, m.ID, outcome{done: true})
	}
}

func (p *pool) dispatch(ctx pa.Context) {
	for w := range p.workers {
		if p.busy[w] != 0 || len(p.queue) == 0 {
			continue
		}
		job := p.queue[0]
		p.queue = p.queue[1:]
		p.busy[w] = job.ID
		ctx.Request(p.workers[w], job)
		if job.ID == p.kill {
			proc, _ := p.node.Process(p.workers[w])
			err := proc.Signal(syscall.SIGKILL)
			fmt.Printf("job %2d sent to worker %d, whose process (pid %d) the pool kills: %v\n", job.ID, w+1, proc.OSPid(), errOrOK(err))
		}
	}
}

// settle records the outcome of the job on worker w and moves on.
func (p *pool) settle(ctx pa.Context, w, id int, o outcome) {
	p.busy[w] = 0
	p.outcomes[id-1] = o
	p.pending--
	if p.pending == 0 {
		ctx.Send(p.requester, p.outcomes)
		return
	}
	p.dispatch(ctx)
}

// HandleFailure is the pool's supervisor strategy (protoactor uses an
// actor's own when it has one), called in the pool's context: it notes what
// failed, then lets protoactor's default strategy decide (a restart). A
// panic comes with the job the worker failed on; a process death with none,
// since the job in flight will be delivered to the next process.
func (p *pool) HandleFailure(sys *pa.ActorSystem, sup pa.Supervisor, child *pa.PID, rs *pa.RestartStatistics, reason, message any) {
	w := p.index(child)
	if job, ok := message.(*Job); ok && w >= 0 && p.busy[w] == job.ID {
		fmt.Printf("job %2d on worker %d: failed: %v; the worker's actor restarts in the same process\n", job.ID, w+1, reason)
		p.settle(sup.(pa.Context), w, job.ID, outcome{err: fmt.Sprint(reason)})
	} else if w >= 0 {
		fmt.Printf("worker %d: %v; a new process takes over\n", w+1, reason)
	}
	p.restart.HandleFailure(sys, sup, child, rs, reason, message)
}

func (p *pool) inFlight(id int) int {
	for w, j := range p.busy {
		if j == id {
			return w
		}
	}
	return -1
}

func (p *pool) index(pid *pa.PID) int {
	for w, x := range p.workers {
		if x.Equal(pid) {
			return w
		}
	}
	return -1
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "SIGKILL sent"
}

func main() {
	procnode.Main() // first: in a child process this runs the child and never returns
	workers := flag.Int("workers", runtime.NumCPU(), "worker processes")
	jobs := flag.Int("jobs", 12, "jobs to run")
	iterations := flag.Int("iterations", 500000, "sha256 iterations per job")
	crash := flag.Int("crash", 5, "the job that makes its worker's actor panic (0 = none)")
	kill := flag.Int("kill", 8, "the job whose worker's process is killed once it is sent (0 = none)")
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
	interrupted := n.StopOnSignal() // Ctrl-C stops the workers gracefully

	poolPID := n.Root().Spawn(n.WithDispatcher(pa.PropsFromProducer(func() pa.Actor {
		return &pool{node: n, nworkers: nworkers, kill: kill, restart: pa.DefaultSupervisorStrategy()}
	})))
	res, err := n.Root().RequestFuture(poolPID, &workersPlease{}, time.Minute).Result()
	if err != nil {
		return err
	}
	pids := res.([]*pa.PID)
	procs := make([]*procnode.Process, len(pids))
	startPids := make([]string, len(pids))
	for i, pid := range pids {
		// A first request waits for the worker's process to be up.
		if _, err := n.Root().RequestFuture(pid, &Job{Seed: "ping", Iterations: 1}, time.Minute).Result(); err != nil {
			return fmt.Errorf("worker %d: %w", i+1, err)
		}
		procs[i], _ = n.Process(pid)
		startPids[i] = fmt.Sprint(procs[i].OSPid())
	}
	fmt.Printf("%d workers started: pids %s\n", nworkers, strings.Join(startPids, ", "))

	jobs := make([]*Job, njobs)
	for i := range jobs {
		jobs[i] = &Job{ID: i + 1, Seed: fmt.Sprintf("job-%d", i+1), Iterations: iterations, Crash: i+1 == crash}
	}
	start := time.Now()
	f := n.Root().RequestFuture(poolPID, &runJobs{jobs: jobs}, 10*time.Minute)
	results := make(chan []outcome, 1)
	go func() {
		res, err := f.Result()
		if err != nil {
			close(results)
			return
		}
		results <- res.([]outcome)
	}()
	var outcomes []outcome
	select {
	case outcomes = <-results:
		if outcomes == nil {
			return errors.New("the pool did not answer")
		}
	case <-interrupted.Done():
		fmt.Println("interrupted: the workers were stopped")
		return nil
	}
	elapsed := time.Since(start)

	done, failed := 0, 0
	var unexpected []string
	for i, o := range outcomes {
		switch {
		case o.done:
			done++
		case jobs[i].Crash:
			failed++
		default:
			failed++
			unexpected = append(unexpected, fmt.Sprintf("job %d: %s", i+1, o.err))
		}
	}
	restarts := 0
	for i, p := range procs {
		line := fmt.Sprintf("worker %d: pid %d", i+1, p.OSPid())
		if r := p.Restarts(); r > 0 {
			restarts += r
			line += fmt.Sprintf(", %d restart(s)", r)
		}
		if st := p.ExitStatus(); st != nil { // an earlier process of it ended
			line += fmt.Sprintf(", process %d (pid %d before: %v)", p.Incarnation()+1, st.OSPid, st)
		}
		fmt.Println(line)
	}
	fmt.Printf("%d jobs on %d workers in %.2f s: %d done, %d failed, %d worker restarts\n",
		njobs, nworkers, elapsed.Seconds(), done, failed, restarts)

	if len(unexpected) > 0 {
		return fmt.Errorf("jobs failed: %s", strings.Join(unexpected, "; "))
	}
	return nil
}
