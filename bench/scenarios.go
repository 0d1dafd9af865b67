package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// kind is what a scenario measures.
type kind int

const (
	kindRTT      kind = iota // sequential request/response; latency percentiles
	kindOneway               // pipelined one-way []byte payloads; msgs/s
	kindRecords              // pipelined one-way Records; msgs/s
	kindLarge                // one large message, acknowledged; MB/s
	kindFanout               // one-way to several peers at once; aggregate msgs/s
	kindSpawn                // start of a peer to its first reply; ms
	kindSnapshot             // a snapshot of the parent's tree of peers; µs and CPU µs per call
	kindIdleRSS              // resident memory of an idle peer process; MB
)

// scenario is one row group of the table.
type scenario struct {
	name string
	kind kind
	// size is the payload size in bytes (kindRTT, kindOneway, kindLarge,
	// kindFanout).
	size int
	// peers is the number of peers of a kindFanout scenario.
	peers int
	// quick puts the scenario in -quick runs.
	quick bool
	// warm (kindSpawn) takes the peer from a pool of pre-started ones
	// (systems that have none are n/a).
	warm bool
	// relativeTo names the scenario whose figure, of the same system in the
	// same repetition, divides this one's in its ratio column (instead of
	// raw_pipe's): spawn_warm is read against spawn_cold.
	relativeTo string
	// maxReps caps the scenario's repetitions (0: the run's): a figure that
	// hardly moves between repetitions need not wait for each of them.
	maxReps int
}

// scenarios is every scenario, in run and table order.
var scenarios = []scenario{
	{name: "rtt_64b", kind: kindRTT, size: 64, quick: true},
	{name: "rtt_1k", kind: kindRTT, size: 1 << 10},
	{name: "rtt_64k", kind: kindRTT, size: 64 << 10},
	{name: "oneway_64b", kind: kindOneway, size: 64, quick: true},
	{name: "oneway_struct", kind: kindRecords, quick: true},
	{name: "large_64m", kind: kindLarge, size: 64 << 20, quick: true},
	{name: "fanout_1", kind: kindFanout, size: 64, peers: 1},
	{name: "fanout_2", kind: kindFanout, size: 64, peers: 2},
	{name: "fanout_4", kind: kindFanout, size: 64, peers: 4, quick: true},
	{name: "fanout_8", kind: kindFanout, size: 64, peers: 8},
	{name: "spawn_cold", kind: kindSpawn, size: 64, quick: true},
	{name: "spawn_warm", kind: kindSpawn, size: 64, quick: true, warm: true, relativeTo: "spawn_cold"},
	{name: "snapshot_8", kind: kindSnapshot, size: 64, peers: 8, quick: true},
	{name: "idle_rss", kind: kindIdleRSS, size: 64, quick: true, maxReps: 2},
}

// reps returns how many repetitions of sc a run of reps repetitions makes.
func (sc scenario) reps(reps int) int {
	if sc.maxReps > 0 {
		return min(reps, sc.maxReps)
	}
	return reps
}

// maxMessage returns the largest payload the scenario sends.
func (sc scenario) maxMessage() int {
	if sc.kind == kindRecords {
		return 1 << 10 // an encoded sampleRecord is far smaller
	}
	return sc.size
}

// budget holds the iteration counts and durations of one run.
type budget struct {
	rttWarmup, rttIters int
	// rttMaxTime ends an RTT cell early (after rttMinIters) on a slow system.
	rttMaxTime  time.Duration
	rttMinIters int
	// onewayTime is the target duration of a measured one-way stream;
	// onewayMaxMsgs caps its message count.
	onewayTime    time.Duration
	onewayMaxMsgs int
	// largeSends is the number of timed large messages per cell, after one
	// untimed. A 64 MiB send's time swings by 3× from one to the next (a
	// child's fresh buffer may or may not find its pages resident): the median
	// of 7 kept every repetition's ratio within 1.06–1.58 where a median of 3
	// ranged 0.22–1.64.
	largeSends int
	// spawnSamples is the number of timed starts per cell, after one untimed.
	spawnSamples int
	// snapshotCalls is the number of timed snapshots per cell, after
	// snapshotCalls/10 untimed; as many requests measure the round trip
	// they are compared with.
	snapshotCalls int
	// idleTime is how long a peer idles before its resident memory is read.
	idleTime time.Duration
}

// fullBudget is a -full run's (the README's table, about ten minutes on a
// 2-core machine); defaultBudget keeps a plain run (every scenario, fewer
// repetitions) within three minutes; quickBudget keeps a -quick run under a
// minute.
var (
	fullBudget = budget{
		rttWarmup: 1000, rttIters: 20000, rttMaxTime: 4 * time.Second, rttMinIters: 2000,
		onewayTime: 500 * time.Millisecond, onewayMaxMsgs: 2_000_000,
		largeSends: 7, spawnSamples: 15, snapshotCalls: 500, idleTime: time.Second,
	}
	defaultBudget = budget{
		rttWarmup: 300, rttIters: 5000, rttMaxTime: time.Second, rttMinIters: 1000,
		onewayTime: 200 * time.Millisecond, onewayMaxMsgs: 1_000_000,
		largeSends: 5, spawnSamples: 7, snapshotCalls: 200, idleTime: time.Second,
	}
	quickBudget = budget{
		rttWarmup: 200, rttIters: 3000, rttMaxTime: time.Second, rttMinIters: 500,
		onewayTime: 150 * time.Millisecond, onewayMaxMsgs: 500_000,
		largeSends: 3, spawnSamples: 5, snapshotCalls: 100, idleTime: time.Second,
	}
)

// measurement is one repetition of one cell. Fields a scenario does not measure
// are zero.
type measurement struct {
	p50us, p99us, p999us float64
	msgsPerS, mbPerS     float64
	p50ms                float64
	// cpuUs is the CPU time per call of a snapshot, parent and children
	// (kindSnapshot); perRTT its p50 over the p50 of a request's round trip
	// to one of the same children, measured in the same cell.
	cpuUs, perRTT float64
	rssMB         float64
	// hist holds the round-trip times in ns (kindRTT).
	hist *hdrhistogram.Histogram
}

// measure runs one repetition of sc on sys.
func measure(ctx context.Context, sys system, sc scenario, b budget) (measurement, error) {
	cfg := linkConfig{maxMessage: sc.maxMessage()}
	if l, ok := sys.(scenarioLimiter); ok {
		if reason := l.notFor(sc.kind); reason != "" {
			return measurement{}, notApplicable(reason)
		}
	}
	if sc.kind == kindSpawn && sc.warm {
		return measureWarmSpawn(ctx, sys, cfg, sc.size, b)
	}
	if sc.kind == kindSpawn {
		return measureSpawn(ctx, sys, cfg, sc.size, b)
	}
	if sc.kind == kindIdleRSS {
		return measureIdleRSS(ctx, sys, cfg, sc.size, b)
	}
	snap, canSnap := sys.(snapshotter)
	if sc.kind == kindSnapshot && (!canSnap || snap.snapshotNA() != "") {
		reason := "no snapshot of its tree"
		if canSnap {
			reason = snap.snapshotNA()
		}
		return measurement{}, notApplicable(reason)
	}
	peers := max(sc.peers, 1)
	links := make([]link, 0, peers)
	defer func() {
		for _, l := range links {
			l.close()
		}
	}()
	for range peers {
		l, err := sys.start(ctx, cfg)
		if err != nil {
			return measurement{}, err
		}
		links = append(links, l)
	}
	var (
		m   measurement
		err error
	)
	switch sc.kind {
	case kindRTT:
		m, err = measureRTT(ctx, links[0], sc.size, b)
	case kindOneway, kindFanout:
		p := payload(sc.size)
		m.msgsPerS, err = measureStream(ctx, b, func(n int) error {
			return onAll(links, func(l link) error { return l.oneway(p, n) })
		}, peers)
	case kindRecords:
		r := sampleRecord()
		m.msgsPerS, err = measureStream(ctx, b, func(n int) error { return links[0].onewayRecords(r, n) }, 1)
	case kindLarge:
		m.mbPerS, err = measureLarge(ctx, links[0], sc.size, b)
	case kindSnapshot:
		m, err = measureSnapshot(ctx, snap, links, sc.size, b)
	default:
		err = fmt.Errorf("scenario %s: unknown kind %d", sc.name, sc.kind)
	}
	// Close now rather than in the deferred loop so that a child's exit error
	// fails the cell.
	ls := links
	links = nil
	for _, l := range ls {
		if cerr := l.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}
	return m, err
}

// payload returns n bytes of a fixed pattern.
func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// onAll runs f on every link at once and returns their errors joined.
func onAll(links []link, f func(link) error) error {
	if len(links) == 1 {
		return f(links[0])
	}
	errs := make([]error, len(links))
	var wg sync.WaitGroup
	for i, l := range links {
		wg.Go(func() { errs[i] = f(l) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// measureRTT times sequential requests of size bytes on l.
func measureRTT(ctx context.Context, l link, size int, b budget) (measurement, error) {
	p := payload(size)
	for range b.rttWarmup {
		if err := l.request(p); err != nil {
			return measurement{}, err
		}
	}
	h := newLatencyHistogram()
	begin := time.Now()
	for i := range b.rttIters {
		t0 := time.Now()
		if err := l.request(p); err != nil {
			return measurement{}, err
		}
		if err := h.RecordValue(time.Since(t0).Nanoseconds()); err != nil {
			return measurement{}, err
		}
		if i%256 == 255 {
			if err := ctx.Err(); err != nil {
				return measurement{}, err
			}
			if i >= b.rttMinIters && time.Since(begin) > b.rttMaxTime {
				break
			}
		}
	}
	return measurement{
		p50us:  float64(h.ValueAtQuantile(50)) / 1e3,
		p99us:  float64(h.ValueAtQuantile(99)) / 1e3,
		p999us: float64(h.ValueAtQuantile(99.9)) / 1e3,
		hist:   h,
	}, nil
}

// newLatencyHistogram records 1 ns to 100 s with 3 significant digits.
func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(100*time.Second), 3)
}

// measureStream returns the rate of send(n), which sends n messages to each of
// peers peers and returns once all have arrived. It first grows n until a stream
// takes a quarter of the target time (these runs are the warm-up), then times
// one stream sized for b.onewayTime.
func measureStream(ctx context.Context, b budget, send func(n int) error, peers int) (float64, error) {
	const firstN = 1000
	maxN := max(b.onewayMaxMsgs/peers, firstN)
	n := firstN
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t0 := time.Now()
		if err := send(n); err != nil {
			return 0, err
		}
		d := time.Since(t0)
		if d >= b.onewayTime/4 || n == maxN {
			rate := float64(n) / d.Seconds()
			n = min(max(int(rate*b.onewayTime.Seconds()), firstN), maxN)
			break
		}
		n = min(n*8, maxN)
	}
	t0 := time.Now()
	if err := send(n); err != nil {
		return 0, err
	}
	return float64(n*peers) / time.Since(t0).Seconds(), nil
}

// measureLarge returns the throughput in MB/s (10^6 bytes) of one size-byte
// message sent and acknowledged: the median of b.largeSends sends after one
// untimed send.
func measureLarge(ctx context.Context, l link, size int, b budget) (float64, error) {
	p := payload(size)
	if err := l.oneway(p, 1); err != nil {
		return 0, err
	}
	rates := make([]float64, 0, b.largeSends)
	for range b.largeSends {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t0 := time.Now()
		if err := l.oneway(p, 1); err != nil {
			return 0, err
		}
		rates = append(rates, float64(size)/1e6/time.Since(t0).Seconds())
	}
	return median(rates), nil
}

// measureSpawn returns the median time in ms from the start of a peer to its
// first reply to a size-byte request, over b.spawnSamples starts after one
// untimed start. Closing a peer is not timed.
func measureSpawn(ctx context.Context, sys system, cfg linkConfig, size int, b budget) (measurement, error) {
	return timeFirstReplies(ctx, size, b, nil, func() (link, error) { return sys.start(ctx, cfg) })
}

// timeFirstReplies times b.spawnSamples peers, after one untimed: from
// get, which makes a peer, to its first reply to a size-byte request. Before
// each, prepare (if not nil) runs untimed. Closing a peer is not timed.
func timeFirstReplies(ctx context.Context, size int, b budget, prepare func() error, get func() (link, error)) (measurement, error) {
	p := payload(size)
	samples := make([]float64, 0, b.spawnSamples)
	for i := range b.spawnSamples + 1 {
		if err := ctx.Err(); err != nil {
			return measurement{}, err
		}
		if prepare != nil {
			if err := prepare(); err != nil {
				return measurement{}, err
			}
		}
		t0 := time.Now()
		l, err := get()
		if err != nil {
			return measurement{}, err
		}
		err = l.request(p)
		d := time.Since(t0)
		if cerr := l.close(); err == nil && cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
		if err != nil {
			return measurement{}, err
		}
		if i > 0 {
			samples = append(samples, float64(d)/float64(time.Millisecond))
		}
	}
	slices.Sort(samples)
	return measurement{p50ms: median(samples)}, nil
}

// warmSystem is a system that can keep pre-started peers (procactor's Pool).
type warmSystem interface {
	// startPool starts a pool of pre-started peers for one cell.
	startPool(ctx context.Context, cfg linkConfig) (warmPool, error)
}

// warmPool hands out pre-started peers.
type warmPool interface {
	// ready waits until a pre-started peer is there (not timed).
	ready(ctx context.Context) error
	// take makes a pre-started peer the caller's and returns its link.
	take(ctx context.Context) (link, error)
	close() error
}

// measureWarmSpawn is measureSpawn for a peer taken from a pool: the time
// from the take to the first reply. Refilling the pool between samples is
// not timed.
func measureWarmSpawn(ctx context.Context, sys system, cfg linkConfig, size int, b budget) (measurement, error) {
	ws, ok := sys.(warmSystem)
	if !ok {
		return measurement{}, notApplicable("no pool of pre-started peers")
	}
	pool, err := ws.startPool(ctx, cfg)
	if err != nil {
		return measurement{}, err
	}
	defer pool.close()
	return timeFirstReplies(ctx, size, b, func() error { return pool.ready(ctx) }, func() (link, error) { return pool.take(ctx) })
}

// childProcess is a link whose peer is a child process of this one.
type childProcess interface {
	// childPID returns the peer's OS process id.
	childPID() int
}

// measureIdleRSS starts a peer, asks it one size-byte request, lets it idle
// for b.idleTime and reads its resident memory (VmRSS) in MB (10^6 bytes).
func measureIdleRSS(ctx context.Context, sys system, cfg linkConfig, size int, b budget) (measurement, error) {
	l, err := sys.start(ctx, cfg)
	if err != nil {
		return measurement{}, err
	}
	m, err := idleRSS(ctx, l, size, b)
	if cerr := l.close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	return m, err
}

func idleRSS(ctx context.Context, l link, size int, b budget) (measurement, error) {
	cp, ok := l.(childProcess)
	if !ok {
		return measurement{}, notApplicable("the peer is not a child process")
	}
	if err := l.request(payload(size)); err != nil {
		return measurement{}, err
	}
	t := time.NewTimer(b.idleTime)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return measurement{}, ctx.Err()
	}
	kb, err := vmRSSKiB(cp.childPID())
	if err != nil {
		return measurement{}, err
	}
	return measurement{rssMB: float64(kb) * 1024 / 1e6}, nil
}
