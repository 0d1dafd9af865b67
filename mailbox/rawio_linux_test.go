package mailbox

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// A PipeConn's raw reads and writes behave as its files' would: data in
// order (a write larger than the pipe waits for room), a deadline, end of
// file and a closed file reported in the file's own errors.
func TestPipeConnRawIO(t *testing.T) {
	a, b, err := Pipe(0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	if a.rr == nil || a.rw == nil || b.rr == nil || b.rw == nil {
		t.Fatal("a PipeConn over os.Pipe's files does not use raw calls")
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), (3*maxRawChunk+100)/16) // several chunks, several pipes full
	done := make(chan error, 1)
	go func() {
		n, err := a.Write(big)
		if err == nil && n != len(big) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("bytes changed on the way")
	}

	// A deadline: the file's error, which errors.Is recognises.
	if err := b.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err = b.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	if err := b.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}

	// End of file once the other side's write end is closed.
	if _, err := a.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := a.w.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := b.Read(buf)
	if err != nil || string(buf[:n]) != "last" {
		t.Fatalf("read %q, %v; want \"last\"", buf[:n], err)
	}
	if n, err := b.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the writer closed: %d, %v; want 0, io.EOF", n, err)
	}
	// A write after close: the file's error.
	if _, err := a.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write to a closed file: %v; want os.ErrClosed", err)
	}
	// A read blocked when the file is closed returns the file's error.
	readErr := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 8))
		readErr <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := a.r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("read interrupted by close: %v; want os.ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("a read blocked on a closed file did not return")
	}
}

// A blocking descriptor is used as a file: raw calls would block a thread
// holding a P.
func TestPipeConnBlockingFilesNotRaw(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	_ = r.Fd() // Fd puts a file into blocking mode
	_ = w.Fd()
	c := NewPipeConn(r, w)
	if c.rr != nil || c.rw != nil {
		t.Fatal("raw calls chosen for blocking descriptors")
	}
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}
}
