package procnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/actor"
	"github.com/procactor/procactor/mailbox"
)

// Snapshot is a process tree as one node sees it at one moment: the node's
// own process, its process actors with their links and OS processes, and,
// asked over each link, every child's own Snapshot (so grandchildren too).
// It is plain data: it encodes as JSON (the debug endpoint serves it, see
// DebugHandler) and crosses links.
//
// A child that did not answer in time (stopped by a signal, busy, a binary
// without procactor's snapshot support, not up) has no Tree and says why in
// TreeError; everything the parent knows of it by itself is still there.
type Snapshot struct {
	Time       time.Time `json:"time"`       // when the node took it
	Address    string    `json:"address"`    // the node's address: "n" for a root
	Command    string    `json:"command"`    // the process's executable name
	OSPid      int       `json:"os_pid"`     // as the process sees itself
	Goroutines int       `json:"goroutines"` // runtime.NumGoroutine
	HeapBytes  uint64    `json:"heap_bytes"` // bytes in live and unswept heap objects
	Proc       ProcStats `json:"proc"`       // what the OS says of this process
	// Parent is the link to the node's parent, seen from this side (a
	// child node); nil for a root.
	Parent *LinkInfo `json:"parent,omitempty"`
	// Children are the node's process actors, by address.
	Children []Child `json:"children"`
	// Links are the node's other child links (made with ChildLink, not by
	// a process actor), by address.
	Links []LinkInfo `json:"links,omitempty"`
}

// Child is one process actor of a node, as its parent sees it.
type Child struct {
	Address     string        `json:"address"`              // the child node's address
	Kind        string        `json:"kind"`                 // the kind it runs
	Name        string        `json:"name,omitempty"`       // WithName's
	State       string        `json:"state"`                // as Process.State
	OSPid       int           `json:"os_pid"`               // of the current or last incarnation; 0 before one ran
	Incarnation uint64        `json:"incarnation"`          // as Process.Incarnation
	Restarts    int           `json:"restarts"`             // as Process.Restarts
	Uptime      time.Duration `json:"uptime_ns"`            // of the running incarnation since it came up; 0 when none is up
	LastExit    *ExitInfo     `json:"last_exit"`            // the last incarnation that exited; nil when none has
	Link        LinkInfo      `json:"link"`                 // the parent's side of the link
	Proc        ProcStats     `json:"proc"`                 // read by the parent from /proc
	Tree        *Snapshot     `json:"tree"`                 // the child's own Snapshot; nil when it did not answer
	TreeError   string        `json:"tree_error,omitempty"` // why Tree is nil
}

// ExitInfo is the part of an ExitStatus a snapshot shows.
type ExitInfo struct {
	Code        int    `json:"code"`             // exit code, -1 for a signal
	Signal      string `json:"signal,omitempty"` // "SIGKILL"...; empty when it exited
	Reason      string `json:"reason,omitempty"` // as ExitStatus.Reason
	Stopped     bool   `json:"stopped"`          // the parent stopped it
	Failed      bool   `json:"failed"`           // it ended after a failure
	Incarnation uint64 `json:"incarnation"`      // the incarnation that exited
	OSPid       int    `json:"os_pid"`           // the pid it had
}

// LinkInfo is one link's traffic and queues (see actor.LinkStats and
// actor.LinkTraffic): counts since the link was made, over all its streams.
type LinkInfo struct {
	Address string      `json:"address"` // the peer's
	State   string      `json:"state"`   // "up", "down" or "gone"
	User    LaneTraffic `json:"user"`    // the user lane's traffic
	System  LaneTraffic `json:"system"`  // the system lane's traffic
	Writes  uint64      `json:"writes"`  // writes that carried messages (batching: msgs out over writes)
	// DeadLetters counts messages that became dead letters at the link,
	// both ways (see actor.LinkTraffic).
	DeadLetters uint64 `json:"dead_letters"`
	// Queued messages wait for the stream's writer (both lanes);
	// QueuedUser of them on the user lane, whose bound makes senders wait.
	Queued      int `json:"queued"`       // messages, both lanes
	QueuedBytes int `json:"queued_bytes"` // their encoded bytes
	QueuedUser  int `json:"queued_user"`  // user-lane messages among them
	// Held messages wait for the link to come up (a restarting child).
	Held      int `json:"held"`       // messages
	HeldBytes int `json:"held_bytes"` // their encoded bytes
	// Retained messages were sent to the child's root actor and not yet
	// acknowledged: the next incarnation gets them if this one dies. Their
	// bytes are also the root actor's credit in use: once they reach its
	// window (WithRetainWindow), its senders wait.
	Retained      int `json:"retained"`       // messages
	RetainedBytes int `json:"retained_bytes"` // their encoded bytes
	// Paused counts the peer's actors whose credit is spent: their node
	// paused our sends to them (an activator-spawned actor at its inbox
	// window, actor.WithInboxLimit).
	Paused    int `json:"paused"`
	Watches   int `json:"watches"`    // watches out through the link
	WatchedBy int `json:"watched_by"` // watches in through the link
	Requests  int `json:"requests"`   // requests in flight through the link
}

// LaneTraffic counts one lane of a link, both ways.
type LaneTraffic struct {
	MsgsIn   uint64 `json:"msgs_in"`   // messages read from the stream
	MsgsOut  uint64 `json:"msgs_out"`  // messages written to the stream
	BytesIn  uint64 `json:"bytes_in"`  // their encoded bytes, read
	BytesOut uint64 `json:"bytes_out"` // their encoded bytes, written
}

// ProcStats is what the operating system says of a process: on Linux, read
// from /proc/PID/stat; elsewhere Error says it is not available.
type ProcStats struct {
	RSS       uint64        `json:"rss_bytes"`       // resident set size
	CPUUser   time.Duration `json:"cpu_user_ns"`     // CPU time in user mode, whole process
	CPUSystem time.Duration `json:"cpu_sys_ns"`      // CPU time in the kernel
	Threads   int           `json:"threads"`         // OS threads
	State     string        `json:"state,omitempty"` // "R" running, "S" sleeping, "T" stopped, "Z" zombie...
	Error     string        `json:"error,omitempty"` // why the rest is empty
}

// DefaultSnapshotTimeout bounds Snapshot when its ctx has no deadline.
const DefaultSnapshotTimeout = time.Second

// Bounds on what a child may answer: its Snapshot is its word, and a child
// may be compromised (see DESIGN's least privilege).
const (
	maxTreeDepth    = 32   // levels of process tree below the asking node
	maxTreeChildren = 4096 // process actors or links in one answer
	// minAskBudget: with less time left, a child is not asked.
	minAskBudget = time.Millisecond
	// maxWaiters bounds the requests a node's responder keeps waiting for
	// one snapshot.
	maxWaiters = 16
)

// snapshotID names a child node's responder to its parent's snapshot
// requests.
const snapshotID = "procactor-snapshot"

// snapshotRequest is a parent's request for a child's Snapshot. The child
// answers within Budget (its own children get less), so that its answer
// arrives before the parent stops waiting.
type snapshotRequest struct {
	Budget time.Duration
}

func init() {
	mailbox.RegisterType("procactor.Snapshot", &Snapshot{})
	mailbox.RegisterType("procactor.snapshotRequest", &snapshotRequest{})
}

// Snapshot returns the node's process tree as plain data: this process, its
// process actors (state, OS pid, incarnation, restarts, uptime, last exit,
// RSS and CPU time), their links (messages and bytes per lane both ways,
// dead letters, queued, held and retained messages), and each child's own
// Snapshot, asked over its link, with its children, and so on down.
//
// It never blocks past ctx's deadline (DefaultSnapshotTimeout when ctx has
// none) and never fails: all children are asked at once, and one that does
// not answer in time is shown with TreeError set. Each child gets three
// quarters of the time left for its own children, so that a slow
// grandchild shows up as such in its parent's answer. Its cost: one
// request per child over its link (in parallel; the request and its answer
// are counted in the link's traffic like any message) and a read of /proc
// per process; the bench's snapshot_8 row measures it on a tree of 8
// children.
func (n *Node) Snapshot(ctx context.Context) Snapshot {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultSnapshotTimeout)
		defer cancel()
	}
	s := selfSnapshot(n.Address())
	procs := n.Processes()
	owned := make(map[string]bool, len(procs))
	s.Children = make([]Child, len(procs))
	for i, p := range procs {
		s.Children[i] = p.childInfo()
		owned[p.address] = true
	}
	for _, l := range n.Links() {
		switch {
		case !strings.HasPrefix(l.Address(), n.Address()+"/"):
			li := linkInfo(l.Address(), l.Stats())
			s.Parent = &li
		case !owned[l.Address()]:
			s.Links = append(s.Links, linkInfo(l.Address(), l.Stats()))
		}
	}
	sortByAddress(s.Children, func(c Child) string { return c.Address })
	sortByAddress(s.Links, func(l LinkInfo) string { return l.Address })
	n.askChildren(ctx, s.Children, procsByAddress(procs))
	return s
}

func procsByAddress(procs []*Process) map[string]*Process {
	m := make(map[string]*Process, len(procs))
	for _, p := range procs {
		m[p.address] = p
	}
	return m
}

// heapMetric is read for Snapshot.HeapBytes (runtime/metrics: no stop of the world).
const heapMetric = "/memory/classes/heap/objects:bytes"

// selfSnapshot is the part of a Snapshot about this process.
func selfSnapshot(address string) Snapshot {
	sample := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(sample)
	s := Snapshot{
		Time:       time.Now(),
		Address:    address,
		Command:    filepath.Base(os.Args[0]),
		OSPid:      os.Getpid(),
		Goroutines: runtime.NumGoroutine(),
		Proc:       readProcStats(os.Getpid()),
	}
	if sample[0].Value.Kind() == metrics.KindUint64 {
		s.HeapBytes = sample[0].Value.Uint64()
	}
	return s
}

// childInfo is what the parent knows of its process actor by itself.
func (p *Process) childInfo() Child {
	who := p.who()
	p.mu.Lock()
	c := Child{
		Address:     p.address,
		Kind:        who.kind,
		Name:        who.name,
		State:       p.state.String(),
		Incarnation: p.incarnation,
		Restarts:    p.restarts,
	}
	alive := false
	if p.cmd != nil {
		c.OSPid = p.cmd.pid()
		alive = !p.cmd.hasExited()
	}
	switch p.state {
	case stateUp, stateFailed, stateStopping:
		if alive && !p.upSince.IsZero() {
			c.Uptime = time.Since(p.upSince)
		}
	}
	if st := p.last; st != nil {
		c.LastExit = &ExitInfo{Code: st.Code, Reason: st.Reason, Stopped: st.Stopped, Failed: st.Failed,
			Incarnation: st.Incarnation, OSPid: st.OSPid}
		if st.Signal != 0 {
			c.LastExit.Signal = signalName(st.Signal)
		}
	}
	p.mu.Unlock()
	c.Link = linkInfo(p.address, p.link.Stats())
	if alive {
		c.Proc = readProcStats(c.OSPid)
	} else {
		c.Proc.Error = "no process running"
	}
	return c
}

func linkInfo(addr string, s actor.LinkStats) LinkInfo {
	t := s.Traffic
	u, y := mailbox.LaneUser, mailbox.LaneSystem
	return LinkInfo{
		Address: addr,
		State:   s.State,
		User:    LaneTraffic{MsgsIn: t.MsgsIn[u], MsgsOut: t.MsgsOut[u], BytesIn: t.BytesIn[u], BytesOut: t.BytesOut[u]},
		System:  LaneTraffic{MsgsIn: t.MsgsIn[y], MsgsOut: t.MsgsOut[y], BytesIn: t.BytesIn[y], BytesOut: t.BytesOut[y]},
		Writes:  t.Writes, DeadLetters: s.DeadLetters,
		Queued: s.Queued, QueuedBytes: s.QueuedBytes, QueuedUser: s.QueuedUser,
		Held: s.Held, HeldBytes: s.HeldBytes, Retained: s.Retained, RetainedBytes: s.RetainedBytes, Paused: s.Paused,
		Watches: s.Watches, WatchedBy: s.WatchedBy, Requests: s.Requests,
	}
}

// askChildren asks every child that is up for its own Snapshot, all at
// once, and waits for the answers until ctx ends. Children it cannot ask or
// that do not answer get TreeError.
func (n *Node) askChildren(ctx context.Context, children []Child, procs map[string]*Process) {
	type answer struct {
		s   *Snapshot
		err string
	}
	pending := make([]chan answer, len(children))
	deadline, _ := ctx.Deadline()
	left := time.Until(deadline)
	for i := range children {
		c := &children[i]
		p := procs[c.Address]
		switch {
		case p == nil || !p.link.IsUp():
			c.TreeError = "not asked: its link is " + c.Link.State
			continue
		case left < minAskBudget:
			c.TreeError = "not asked: no time left"
			continue
		}
		ch := make(chan answer, 1) // the asker never waits for us
		pending[i] = ch
		pid := pa.NewPID(c.Address, snapshotID)
		f := n.Root().RequestFuture(pid, &snapshotRequest{Budget: left * 3 / 4}, left)
		// The future ends with ctx, not only at its deadline: a ctx
		// cancelled early would otherwise leave it, its timer and this
		// goroutine waiting for a child that does not answer.
		stop := context.AfterFunc(ctx, func() { stopFuture(n.System(), f.PID()) })
		go func() {
			defer stop()
			res, err := f.Result()
			if res == nil && err == nil { // stopped by ctx
				err = context.Cause(ctx)
			}
			if err != nil {
				ch <- answer{err: fmt.Sprintf("no answer: %v", err)}
				return
			}
			s, ok := res.(*Snapshot)
			if !ok {
				ch <- answer{err: fmt.Sprintf("answered with %T", res)}
				return
			}
			ch <- answer{s: s}
		}()
	}
	for i, ch := range pending {
		if ch == nil {
			continue
		}
		c := &children[i]
		select {
		case a := <-ch:
			if a.s != nil {
				if why := checkTree(a.s, c.Address, 1, new(int)); why != "" {
					c.TreeError = "answer refused: " + why
					continue
				}
				c.Tree = a.s
			} else {
				c.TreeError = a.err
			}
		case <-ctx.Done():
			c.TreeError = fmt.Sprintf("no answer within %v", left.Round(time.Millisecond))
		}
	}
}

// stopFuture ends a future that is still waiting (its Result is then nil);
// one already done is gone from the registry, and nothing is sent to it.
func stopFuture(sys *pa.ActorSystem, pid *pa.PID) {
	if proc, ok := sys.ProcessRegistry.GetLocal(pid.Id); ok {
		proc.Stop(pid)
	}
}

// checkTree checks a child's answer: it must be about the child (address),
// every node in it below the one before, within the bounds on depth and
// size. A child's word is taken for its own figures, not for where it sits.
func checkTree(s *Snapshot, address string, depth int, count *int) string {
	if s.Address != address {
		return fmt.Sprintf("snapshot of %q from %q", s.Address, address)
	}
	if depth > maxTreeDepth {
		return fmt.Sprintf("deeper than %d levels", maxTreeDepth)
	}
	*count += len(s.Children) + len(s.Links)
	if *count > maxTreeChildren {
		return fmt.Sprintf("more than %d nodes", maxTreeChildren)
	}
	for _, l := range s.Links {
		if !isChildAddress(address, l.Address) {
			return fmt.Sprintf("link to %q under %q", l.Address, address)
		}
	}
	for i := range s.Children {
		c := &s.Children[i]
		if !isChildAddress(address, c.Address) {
			return fmt.Sprintf("child %q under %q", c.Address, address)
		}
		if c.Tree != nil {
			if why := checkTree(c.Tree, c.Address, depth+1, count); why != "" {
				return why
			}
		}
	}
	return ""
}

// isChildAddress reports whether addr is a direct child of parent.
func isChildAddress(parent, addr string) bool {
	seg, ok := strings.CutPrefix(addr, parent+"/")
	return ok && seg != "" && !strings.Contains(seg, "/")
}

// sortByAddress orders by address, numeric segments by value ("n/2" before
// "n/10").
func sortByAddress[T any](xs []T, addr func(T) string) {
	slices.SortFunc(xs, func(a, b T) int { return compareAddress(addr(a), addr(b)) })
}

func compareAddress(a, b string) int {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		x, errx := strconv.ParseUint(as[i], 10, 64)
		y, erry := strconv.ParseUint(bs[i], 10, 64)
		if errx == nil && erry == nil {
			if x < y {
				return -1
			}
			return 1
		}
		return strings.Compare(as[i], bs[i])
	}
	return len(as) - len(bs)
}

// snapshotResponder answers the parent's snapshot requests in a child node.
// It is a pa.Process, not an actor: the link's reader hands it the request,
// and a goroutine (one at a time; requests that arrive meanwhile share its
// answer) takes the snapshot, so the reader never waits. It answers only
// requests whose sender is on the parent node: the answer goes nowhere
// else, whoever asks.
type snapshotResponder struct {
	n      *Node
	parent string // the parent node's address

	mu      sync.Mutex
	waiting []*pa.PID // guarded by mu
	running bool      // a snapshot is being taken (guarded by mu)
}

var _ pa.Process = (*snapshotResponder)(nil)

// serveSnapshots registers the responder of a child node (an address with
// a parent); a root node has nobody to answer.
func (n *Node) serveSnapshots() {
	i := strings.LastIndexByte(n.Address(), '/')
	if i <= 0 {
		return
	}
	r := &snapshotResponder{n: n, parent: n.Address()[:i]}
	n.System().ProcessRegistry.Add(r, snapshotID)
}

func (r *snapshotResponder) SendUserMessage(_ *pa.PID, message any) {
	env, ok := message.(*pa.MessageEnvelope)
	if !ok || env.Sender == nil || env.Sender.Address != r.parent {
		return
	}
	req, ok := env.Message.(*snapshotRequest)
	if !ok {
		return
	}
	budget := min(max(req.Budget, minAskBudget), DefaultSnapshotTimeout)
	r.mu.Lock()
	if len(r.waiting) >= maxWaiters {
		r.mu.Unlock()
		return // the asker times out: it asked too often
	}
	r.waiting = append(r.waiting, env.Sender)
	start := !r.running
	r.running = true
	r.mu.Unlock()
	if start {
		go r.answer(budget)
	}
}

// answer takes one snapshot and sends it to everyone waiting for it.
func (r *snapshotResponder) answer(budget time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	s := r.n.Snapshot(ctx)
	cancel()
	r.mu.Lock()
	to := r.waiting
	r.waiting, r.running = nil, false
	r.mu.Unlock()
	for _, pid := range to {
		r.n.Root().Send(pid, &s)
	}
}

func (*snapshotResponder) SendSystemMessage(*pa.PID, any) {}
func (*snapshotResponder) Stop(*pa.PID)                   {}
