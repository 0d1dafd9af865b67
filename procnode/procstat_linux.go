package procnode

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of CPU times in /proc/PID/stat: USER_HZ, which Linux
// fixes at 100 on every architecture for what it reports to user space.
const userHZ = 100

// readProcStats reads /proc/PID/stat (see proc(5)).
func readProcStats(pid int) ProcStats {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcStats{Error: err.Error()}
	}
	st, err := parseProcStat(b, os.Getpagesize())
	if err != nil {
		return ProcStats{Error: err.Error()}
	}
	return st
}

// parseProcStat reads the fields of /proc/PID/stat that a snapshot shows.
// The command name (field 2) is in parentheses and may hold spaces and
// parentheses itself: the fields that follow start after the last ')'.
func parseProcStat(b []byte, pageSize int) (ProcStats, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcStats{}, fmt.Errorf("procnode: /proc stat without a command name")
	}
	// Fields are numbered from 1 as in proc(5); those after the name start
	// at 3 (state).
	rest := bytes.Fields(b[i+1:])
	const (
		state      = 3
		utime      = 14
		stime      = 15
		numThreads = 20
		rss        = 24
	)
	if len(rest) < rss-2 {
		return ProcStats{}, fmt.Errorf("procnode: /proc stat of %d fields", len(rest)+2)
	}
	field := func(k int) []byte { return rest[k-3] }
	var v [4]uint64
	for j, k := range []int{utime, stime, numThreads, rss} {
		x, err := strconv.ParseUint(string(field(k)), 10, 64)
		if err != nil {
			return ProcStats{}, fmt.Errorf("procnode: /proc stat field %d: %w", k, err)
		}
		v[j] = x
	}
	tick := time.Second / userHZ
	return ProcStats{
		State:     string(field(state)),
		CPUUser:   time.Duration(v[0]) * tick,
		CPUSystem: time.Duration(v[1]) * tick,
		Threads:   int(v[2]),
		RSS:       v[3] * uint64(pageSize),
	}, nil
}
