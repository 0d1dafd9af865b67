// Command serverclient re-creates gipc's serverclient example with process
// actors: a TCP echo server runs in the parent; a child process actor starts
// many concurrent clients against it, each sends one line and checks the
// echo, and the child answers the parent with the count and the time it took.
//
//	go run ./examples/serverclient               # 1000 clients
//	go run ./examples/serverclient -clients 200
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/mailbox"
	"github.com/procactor/procactor/procnode"
)

// RunClients asks the child to run N concurrent clients against Addr.
type RunClients struct {
	Addr string
	N    int
}

// ClientsDone is the child's answer: how many clients got their echo and how
// long all of them took, measured in the child; Err is the first failure.
type ClientsDone struct {
	Served  int
	Seconds float64
	Err     string
}

func init() {
	mailbox.RegisterType("examples.serverclient.RunClients", &RunClients{})
	mailbox.RegisterType("examples.serverclient.ClientsDone", &ClientsDone{})
	procnode.RegisterKind("serverclient.clients", func(procnode.Args) (*pa.Props, error) {
		return pa.PropsFromProducer(func() pa.Actor { return clients{} }), nil
	})
}

// clients is the child's root actor.
type clients struct{}

func (clients) Receive(ctx pa.Context) {
	if m, ok := ctx.Message().(*RunClients); ok {
		ctx.Respond(runClients(m.Addr, m.N))
	}
}

// runClients starts n clients at once and waits for all of them.
func runClients(addr string, n int) *ClientsDone {
	var served atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client(addr, i); err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("client %d: %w", i, err) })
				return
			}
			served.Add(1)
		}()
	}
	wg.Wait()
	done := &ClientsDone{Served: int(served.Load()), Seconds: time.Since(start).Seconds()}
	if firstErr != nil {
		done.Err = firstErr.Error()
	}
	return done
}

// client connects (retrying a refused or reset dial a few times, in case the
// server's accept queue overflows), sends one line and checks the echo.
func client(addr string, i int) error {
	var conn net.Conn
	var err error
	for attempt := range 5 {
		if conn, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	msg := fmt.Sprintf("hello from client %d\n", i)
	if _, err := conn.Write([]byte(msg)); err != nil {
		return err
	}
	echo, err := readLine(conn)
	if err != nil {
		return err
	}
	if echo != msg {
		return fmt.Errorf("sent %q, got %q back", msg, echo)
	}
	return nil
}

// server is a line echo server: one line in, the same line out, then close.
type server struct {
	ln net.Listener
	wg sync.WaitGroup
}

func listen() (*server, error) {
	// Go's listen backlog is the system's somaxconn (4096 on current Linux).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{ln: ln}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. EMFILE: keep serving
		}
		s.wg.Add(1)
		go s.serve(conn)
	}
}

func (s *server) serve(conn net.Conn) {
	defer s.wg.Done()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := readLine(conn)
	if err != nil {
		return
	}
	conn.Write([]byte(line))
}

// readLine reads up to and including the first newline. The peer sends
// nothing after it, so reading without a bufio.Reader (4 KiB per
// connection, 1000 connections on each side) loses nothing.
func readLine(conn net.Conn) (string, error) {
	var buf [128]byte
	n := 0
	for {
		m, err := conn.Read(buf[n:])
		n += m
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return string(buf[:i+1]), nil
		}
		if err != nil {
			return "", err
		}
		if n == len(buf) {
			return "", errors.New("line too long")
		}
	}
}

func (s *server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

func main() {
	procnode.Main() // first: in a child process this runs the child and never returns
	n := flag.Int("clients", 1000, "number of concurrent clients the child starts")
	connect := flag.String("connect", "", "let the clients connect to this echo server instead of the built-in one")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "serverclient: -clients must be at least 1")
		os.Exit(2)
	}
	if err := run(*n, *connect); err != nil {
		fmt.Fprintln(os.Stderr, "serverclient:", err)
		os.Exit(1)
	}
}

func run(n int, addr string) error {
	if addr == "" {
		srv, err := listen()
		if err != nil {
			return err
		}
		defer srv.Close()
		addr = srv.ln.Addr().String()
	}

	node, err := procnode.NewNode()
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		node.Close(ctx)
	}()

	interrupted := node.StopOnSignal() // Ctrl-C stops the child gracefully

	ctx := context.Background()
	p, err := procnode.Spawn(ctx, node.Root(), "serverclient.clients", procnode.WithRestart(false))
	if err != nil {
		return err
	}
	// If the child dies, the request fails at once (a dead letter), not at
	// the timeout.
	res, err := node.Root().RequestFuture(p.PID(), &RunClients{Addr: addr, N: n}, time.Minute).Result()
	if err != nil {
		if interrupted.Err() != nil {
			fmt.Println("interrupted: the child was stopped")
			return nil
		}
		p.Stop(ctx)
		if st := p.ExitStatus(); st != nil {
			return fmt.Errorf("child: %w (%v)", err, st)
		}
		return fmt.Errorf("child: %w", err)
	}
	done, ok := res.(*ClientsDone)
	if !ok {
		return fmt.Errorf("child answered %T", res)
	}
	if err := p.Stop(ctx); err != nil {
		return err
	}
	if done.Err != "" {
		return fmt.Errorf("%d of %d clients served; %s", done.Served, n, done.Err)
	}
	if done.Served != n {
		return fmt.Errorf("%d of %d clients served", done.Served, n)
	}
	fmt.Printf("%d clients served within %.2f s.\n", done.Served, done.Seconds) // as gipc prints it
	return p.Wait(ctx)
}
