package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// snapshotter is a system whose parent can take a snapshot of its tree of
// peers (procactor's Node.Snapshot, which asks each child over its link).
type snapshotter interface {
	system
	// snapshotNA says why the system does not take part in kindSnapshot
	// cells, or "".
	snapshotNA() string
	// snapshot takes one snapshot of the parent's tree and returns the OS
	// pids of the peers in it; a peer that did not answer is an error.
	snapshot(ctx context.Context) (pids []int, err error)
}

// snapshotTimeout bounds one snapshot: a peer that has not answered by then
// fails the cell.
const snapshotTimeout = time.Second

// measureSnapshot times b.snapshotCalls snapshots of the tree of links (after
// a tenth as many untimed), and as many size-byte requests to the first
// link for the ratio; it also reads the CPU time the parent and the peers
// spent over the timed snapshots.
func measureSnapshot(ctx context.Context, s snapshotter, links []link, size int, b budget) (measurement, error) {
	take := func() ([]int, error) {
		sctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
		defer cancel()
		pids, err := s.snapshot(sctx)
		if err == nil && len(pids) != len(links) {
			err = fmt.Errorf("snapshot shows %d peers; want %d", len(pids), len(links))
		}
		return pids, err
	}
	for range max(b.snapshotCalls/10, 1) {
		if _, err := take(); err != nil {
			return measurement{}, err
		}
	}
	p := payload(size)
	rtt := newLatencyHistogram()
	for range b.snapshotCalls {
		t0 := time.Now()
		if err := links[0].request(p); err != nil {
			return measurement{}, err
		}
		if err := rtt.RecordValue(time.Since(t0).Nanoseconds()); err != nil {
			return measurement{}, err
		}
	}
	pids, err := take()
	if err != nil {
		return measurement{}, err
	}
	pids = append(pids, os.Getpid())
	before, cpuErr := cpuOf(pids)
	h := newLatencyHistogram()
	for i := range b.snapshotCalls {
		if i%16 == 15 {
			if err := ctx.Err(); err != nil {
				return measurement{}, err
			}
		}
		t0 := time.Now()
		if _, err := take(); err != nil {
			return measurement{}, err
		}
		if err := h.RecordValue(time.Since(t0).Nanoseconds()); err != nil {
			return measurement{}, err
		}
	}
	after, err := cpuOf(pids)
	m := measurement{
		p50us:  float64(h.ValueAtQuantile(50)) / 1e3,
		p99us:  float64(h.ValueAtQuantile(99)) / 1e3,
		perRTT: float64(h.ValueAtQuantile(50)) / float64(rtt.ValueAtQuantile(50)),
	}
	if cpuErr == nil && err == nil { // elsewhere than Linux the figure stays empty
		m.cpuUs = float64(after-before) / 1e3 / float64(b.snapshotCalls)
	}
	return m, nil
}

// cpuOf sums the CPU time of processes.
func cpuOf(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		d, err := processCPU(pid)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}
