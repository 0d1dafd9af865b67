//go:build !linux

package mailbox

import (
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// rawFile is Linux's; elsewhere a PipeConn uses its files as they are.
type rawFile struct {
	io.ReadWriter
	polls atomic.Uint64
}

func newRawFile(*os.File) *rawFile { return nil }

func writeNonblocking(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }

func (r *rawFile) setSpin(time.Duration) {}
func (r *rawFile) setIdle(func() bool)   {}
func (r *rawFile) setDeadline(time.Time) {}
func (r *rawFile) markClosing()          {}
func (r *rawFile) expectAnswer()         {}
func (r *rawFile) hopeForMessage()       {}
