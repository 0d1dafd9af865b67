package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/procactor/procactor/internal/printable"
	"github.com/procactor/procactor/procnode"
)

// view draws snapshots as frames; it keeps the previous counters of each
// node to show rates.
type view struct {
	width int
	prev  map[string]sample // by address, from the last frame
	next  map[string]sample // being filled by the frame being drawn
}

// sample is one node's counters at one snapshot's time.
type sample struct {
	at      time.Time
	in, out uint64
	cpu     time.Duration
	hasProc bool
}

func newView(width int) *view { return &view{width: width, prev: map[string]sample{}} }

// The table: 79 columns with the spaces between them; text left-aligned,
// figures right-aligned.
var columns = []struct {
	name  string
	width int
	left  bool
}{
	{"NODE", 21, true}, {"STATE", 10, true}, {"PID", 7, false}, {"RST", 3, false}, {"RSS", 5, false},
	{"CPU%", 5, false}, {"IN/s", 5, false}, {"OUT/s", 5, false}, {"QUEUE", 5, false}, {"DL", 4, false},
}

// counts of the tree, for the title line.
type counts struct{ procs, up, restarts, unanswered int }

// render writes one frame of s to w.
func (v *view) render(w io.Writer, s *procnode.Snapshot) {
	v.next = map[string]sample{}
	var rows []string
	var c counts
	rows = append(rows, v.row(rootCells(s, v.cpu(s.Address, s.Time, &s.Proc))))
	v.children(&rows, s, "", &c)
	for _, l := range s.Links {
		li := l
		in, out := v.rates(l.Address, s.Time, &li)
		rows = append(rows, v.row([]string{"· " + l.Address + " link", l.State, "-", "-", "-", "-", in, out, queue(&li), count(li.DeadLetters)}))
	}
	v.prev = v.next

	v.line(w, fmt.Sprintf("%d processes, %d of %d children up, %d restarts", c.procs+1, c.up, c.procs, c.restarts))
	sub := fmt.Sprintf("%s  %s  %s pid %d  goroutines %d  heap %s", s.Time.Local().Format("15:04:05"),
		s.Address, s.Command, s.OSPid, s.Goroutines, size(s.HeapBytes))
	if c.unanswered > 0 {
		sub += fmt.Sprintf("  %d not answering", c.unanswered)
	}
	v.line(w, sub)
	v.line(w, "")
	head := make([]string, len(columns))
	for i, col := range columns {
		head[i] = col.name
	}
	v.line(w, v.row(head))
	for _, r := range rows {
		v.line(w, r)
	}
}

// children adds the rows of s's process actors and their subtrees, each
// line prefixed by the tree's guides (indent).
func (v *view) children(rows *[]string, s *procnode.Snapshot, indent string, c *counts) {
	for i := range s.Children {
		ch := &s.Children[i]
		last := i == len(s.Children)-1
		branch, more := "├ ", "│ "
		if last {
			branch, more = "└ ", "  "
		}
		c.procs++
		c.restarts += ch.Restarts
		if ch.State == "up" {
			c.up++
		}
		in, out := v.rates(ch.Address, s.Time, &ch.Link)
		pid := "-"
		if ch.OSPid > 0 {
			pid = fmt.Sprint(ch.OSPid)
		}
		rss, cpu := "-", "-"
		if ch.Proc.Error == "" {
			rss = size(ch.Proc.RSS)
			cpu = v.cpu(ch.Address, s.Time, &ch.Proc)
		}
		name := ch.Address + " " + ch.Kind
		if ch.Name != "" {
			name += "·" + ch.Name
		}
		*rows = append(*rows, v.row([]string{indent + branch + name, ch.State, pid, fmt.Sprint(ch.Restarts), rss, cpu,
			in, out, queue(&ch.Link), count(ch.Link.DeadLetters)}))
		detail := indent + more + "  "
		if x := ch.LastExit; x != nil && !(x.Code == 0 && x.Signal == "" && !x.Failed) {
			what := fmt.Sprintf("exit code %d", x.Code)
			if x.Signal != "" {
				what = "killed by " + x.Signal
			}
			if x.Reason != "" {
				what += ": " + x.Reason
			}
			*rows = append(*rows, v.fit(detail+"last exit: "+oneLine(what)))
		}
		if ch.Tree == nil {
			if ch.TreeError != "" {
				c.unanswered++
				*rows = append(*rows, v.fit(detail+"! "+oneLine(ch.TreeError)))
			}
			continue
		}
		v.children(rows, ch.Tree, indent+more, c)
	}
}

func rootCells(s *procnode.Snapshot, cpu string) []string {
	rss := "-"
	if s.Proc.Error == "" {
		rss = size(s.Proc.RSS)
	} else {
		cpu = "-"
	}
	return []string{s.Address + " (root)", "-", fmt.Sprint(s.OSPid), "-", rss, cpu, "-", "-", "-", "-"}
}

// rates returns a link's messages per second in and out since the last
// frame ("-" on the first).
func (v *view) rates(addr string, at time.Time, l *procnode.LinkInfo) (in, out string) {
	cur := sample{at: at, in: l.User.MsgsIn + l.System.MsgsIn, out: l.User.MsgsOut + l.System.MsgsOut}
	key := "link " + addr
	p, ok := v.prev[key]
	v.next[key] = cur
	dt := cur.at.Sub(p.at).Seconds()
	if !ok || dt <= 0 || cur.in < p.in || cur.out < p.out {
		return "-", "-"
	}
	return rate(float64(cur.in-p.in) / dt), rate(float64(cur.out-p.out) / dt)
}

// cpu returns a process's share of one core since the last frame.
func (v *view) cpu(addr string, at time.Time, p *procnode.ProcStats) string {
	if p.Error != "" {
		return "-"
	}
	cur := sample{at: at, cpu: p.CPUUser + p.CPUSystem, hasProc: true}
	key := "cpu " + addr
	prev, ok := v.prev[key]
	v.next[key] = cur
	dt := cur.at.Sub(prev.at)
	if !ok || dt <= 0 || cur.cpu < prev.cpu {
		return "-"
	}
	return fmt.Sprintf("%.1f", 100*float64(cur.cpu-prev.cpu)/float64(dt))
}

func queue(l *procnode.LinkInfo) string { return count(uint64(l.Queued + l.Held + l.Retained)) }

// count prints a count in at most 4 characters (below 10^9).
func count(n uint64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// row lays cells out in the columns, cutting what does not fit.
func (v *view) row(cells []string) string {
	var b strings.Builder
	for i, col := range columns {
		cell := cut(cells[i], col.width)
		pad := strings.Repeat(" ", col.width-utf8.RuneCountInString(cell))
		if i > 0 {
			b.WriteByte(' ')
		}
		if col.left {
			b.WriteString(cell + pad)
		} else {
			b.WriteString(pad + cell)
		}
	}
	return strings.TrimRight(b.String(), " ")
}

func (v *view) fit(s string) string { return cut(s, v.width-1) }

func (v *view) line(w io.Writer, s string) { fmt.Fprintln(w, v.fit(s)) }

// cut shortens s to n runes, marking the cut with "…". Every line of a
// frame passes here, so it also replaces control characters with '?' (and
// bytes that are not UTF-8 with U+FFFD): most of the text is a child's word,
// and a compromised child must not reach the terminal with escape sequences
// or break the table with newlines.
func cut(s string, n int) string {
	s = printable.String(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// size prints bytes as top does: K, M, G of 1024.
func size(b uint64) string {
	const k = 1024
	switch {
	case b >= k*k*k:
		return fmt.Sprintf("%.1fG", float64(b)/(k*k*k))
	case b >= k*k:
		return fmt.Sprintf("%.1fM", float64(b)/(k*k))
	case b >= k:
		return fmt.Sprintf("%.0fK", float64(b)/k)
	}
	return fmt.Sprintf("%dB", b)
}

// rate prints a per-second figure in at most 6 characters.
func rate(x float64) string {
	switch {
	case x >= 1e7:
		return fmt.Sprintf("%.0fM", x/1e6)
	case x >= 1e6:
		return fmt.Sprintf("%.1fM", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.0fk", x/1e3)
	case x >= 10:
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}
