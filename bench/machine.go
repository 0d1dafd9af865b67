package main

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"time"
)

// machineInfo describes where a run took place, for the JSON report.
type machineInfo struct {
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	Kernel    string `json:"kernel"`
	Hostname  string `json:"hostname"`
	LoadAvg   string `json:"loadavg_at_start"`
	Date      string `json:"date"`
}

// readMachine gathers machineInfo; what the system does not tell is "unknown".
func readMachine() machineInfo {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return machineInfo{
		CPUModel:  cpuModel(),
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		Kernel:    firstLine("/proc/sys/kernel/osrelease"),
		Hostname:  host,
		LoadAvg:   firstLine("/proc/loadavg"),
		Date:      time.Now().UTC().Format(time.RFC3339),
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// firstLine returns the first line of a file, or "unknown".
func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}
