// Command proctree shows a procactor process tree live in a terminal, like
// top: each process actor with its state, OS pid, restarts, memory, CPU and
// its link's traffic, refreshed every second, readable at 80 columns.
//
// It reads the tree from the debug endpoint of the tree's top process
// (procnode's Node.ServeDebug, or Node.DebugHandler mounted in the
// program's own server), which serves it as JSON; the page at the same
// address draws it in a browser.
//
//	go run ./cmd/proctree -addr 127.0.0.1:41234
//	go run ./cmd/proctree -addr http://127.0.0.1:8080/debug/procactor/ -once
//
// Columns: NODE (address and kind, indented by depth), STATE, PID (the OS
// process id), RST (restarts), RSS, CPU% (of one core, since the last
// refresh), IN/s and OUT/s (messages per second on the link from its
// parent, as the parent counts them: in is from the child), QUEUE (messages
// waiting in the link: queued for its writer, held while it is down, and
// sent to the root actor but not yet acknowledged) and DL (dead letters at
// the link). A child that did not answer its parent in time is shown with
// why, below its line.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/procactor/procactor/procnode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: it returns the exit code (0, 1 when -once could not
// read the tree, 2 for bad usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proctree", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "the debug endpoint: host:port, or its URL")
	interval := fs.Duration("interval", time.Second, "time between refreshes")
	once := fs.Bool("once", false, "print the tree once, without rates, and exit")
	width := fs.Int("width", termWidth(), "columns to fit (default $COLUMNS, else 80)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" || fs.NArg() > 0 || *interval <= 0 || *width < 40 {
		fmt.Fprintln(stderr, "usage: proctree -addr host:port [-interval 1s] [-once] [-width 80]")
		return 2
	}
	url, err := snapshotURL(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "proctree: %v\n", err)
		return 2
	}
	client := &http.Client{Timeout: 5 * time.Second}
	v := newView(*width)
	for {
		s, err := fetch(ctx, client, url)
		var frame strings.Builder
		if err != nil {
			if *once {
				fmt.Fprintf(stderr, "proctree: %v\n", err)
				return 1
			}
			fmt.Fprintf(&frame, "proctree: %s: %v; retrying every %v\n", *addr, err, *interval)
		} else {
			v.render(&frame, s)
		}
		if !*once {
			io.WriteString(stdout, "\x1b[H\x1b[2J") // home, clear: one frame per refresh
		}
		io.WriteString(stdout, frame.String())
		if *once {
			return 0
		}
		t := time.NewTimer(*interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0
		case <-t.C:
		}
	}
}

// snapshotURL turns -addr into the URL of snapshot.json.
func snapshotURL(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		return "", fmt.Errorf("-addr %q: want host:port or an http URL", addr)
	}
	if !strings.HasSuffix(addr, "/") {
		addr += "/"
	}
	return addr + "snapshot.json", nil
}

func fetch(ctx context.Context, c *http.Client, url string) (*procnode.Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, errors.New(res.Status)
	}
	var s procnode.Snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding the snapshot: %w", err)
	}
	return &s, nil
}

func termWidth() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 40 {
		return n
	}
	return 80
}
