package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// protoactor_grpc is protoactor-go's own remote: the bench and a child, each with
// an actor system and remote listening on 127.0.0.1, talk over gRPC. The child
// spawns its actors under well-known names and prints its address on stdout; the
// bench addresses them with actor.NewPID(address, name). Payloads travel as
// *wrapperspb.BytesValue; a Record travels as msgpack inside one, since remote
// only carries protobuf messages.

const (
	protoactorGRPCRole = "protoactor_grpc_child"

	grpcEchoName    = "echo"
	grpcCounterName = "counter"
	grpcRecordsName = "records"

	// grpcDefaultMaxRecv is gRPC's default MaxRecvMsgSize; a remote whose cells
	// send more raises its server's limit to maxMessage + grpcEnvelopeSlack.
	grpcDefaultMaxRecv = 4 << 20
	// grpcEnvelopeSlack covers the batch, envelope and type-name framing around
	// the largest payload.
	grpcEnvelopeSlack = 1 << 20
	// childReadyTimeout bounds a child's start, up to the line that says it is
	// ready.
	childReadyTimeout = 15 * time.Second
)

func init() {
	registerSystem(protoactorGRPC{})
	registerRole(protoactorGRPCRole, runProtoactorGRPCChild)
}

// grpcParent is the bench's own actor system and remote, shared by every
// protoactor_grpc link and started on first use. It only receives answers and
// counts, so it keeps gRPC's default message limit.
var grpcParent = sync.OnceValues(func() (*pa.ActorSystem, error) {
	system := newQuietActorSystem()
	if err := startRemote(remote.NewRemote(system, remote.Configure("127.0.0.1", 0))); err != nil {
		return nil, err
	}
	return system, nil
})

// startRemote starts r, turning Remote.Start's panics (listen failure, activator
// timeout) into an error.
func startRemote(r *remote.Remote) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("start protoactor remote: %v", p)
		}
	}()
	r.Start()
	return nil
}

// grpcRemoteConfig returns the remote configuration of a child for cells whose
// payloads reach maxMessage bytes.
func grpcRemoteConfig(maxMessage int) *remote.Config {
	var opts []remote.ConfigOption
	if maxMessage+grpcEnvelopeSlack > grpcDefaultMaxRecv {
		opts = append(opts, remote.WithServerOptions(grpc.MaxRecvMsgSize(maxMessage+grpcEnvelopeSlack)))
	}
	return remote.Configure("127.0.0.1", 0, opts...)
}

type protoactorGRPC struct{}

func (protoactorGRPC) name() string { return "protoactor_grpc" }

func (protoactorGRPC) start(ctx context.Context, cfg linkConfig) (link, error) {
	system, err := grpcParent()
	if err != nil {
		return nil, err
	}
	cmd, err := newChildCmd(protoactorGRPCRole, cfg)
	if err != nil {
		return nil, err
	}
	c, address, stdin, err := startAnnouncingChild(ctx, protoactorGRPCRole, cmd)
	if err != nil {
		return nil, fmt.Errorf("protoactor_grpc child: %w", err)
	}
	return &grpcLink{
		root:    system.Root,
		echo:    pa.NewPID(address, grpcEchoName),
		counter: pa.NewPID(address, grpcCounterName),
		records: pa.NewPID(address, grpcRecordsName),
		stdin:   stdin,
		child:   c,
	}, nil
}

// startAnnouncingChild starts a child that prints its address on its first
// line of stdout when it is ready, and keeps its stdin open while it should
// run (it exits when stdin closes). On an error nothing is left running.
func startAnnouncingChild(ctx context.Context, role string, cmd *exec.Cmd) (c *child, address string, stdin io.WriteCloser, err error) {
	cmd.Stdout = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", nil, err
	}
	stdin, err = cmd.StdinPipe()
	if err != nil {
		stdout.Close()
		return nil, "", nil, err
	}
	if c, err = startChild(role, cmd); err != nil {
		return nil, "", nil, err
	}
	if address, err = readReadyLine(ctx, stdout); err != nil {
		stdin.Close()
		c.kill()
		c.untrack()
		return nil, "", nil, err
	}
	return c, address, stdin, nil
}

// readReadyLine returns the first line a child prints on r, waiting at most
// childReadyTimeout.
func readReadyLine(ctx context.Context, r io.Reader) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		ch <- result{strings.TrimSpace(line), err}
	}()
	timer := time.NewTimer(childReadyTimeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		if res.err != nil {
			return "", fmt.Errorf("no ready line: %w", res.err)
		}
		return res.line, nil
	case <-timer.C:
		return "", fmt.Errorf("not ready after %v", childReadyTimeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

type grpcLink struct {
	root                   *pa.RootContext
	echo, counter, records *pa.PID
	stdin                  io.Closer
	child                  *child
}

func (l *grpcLink) childPID() int { return l.child.cmd.Process.Pid }

func (l *grpcLink) request(p []byte) error {
	res, err := l.root.RequestFuture(l.echo, wrapperspb.Bytes(p), requestTimeout).Result()
	if err != nil {
		return err
	}
	if got, ok := res.(*wrapperspb.BytesValue); !ok || len(got.Value) != len(p) {
		return fmt.Errorf("echo: got %T; want %d bytes", res, len(p))
	}
	return nil
}

func (l *grpcLink) oneway(p []byte, n int) error {
	return countedStream(l.root, l.counter, n, func() { l.root.Send(l.counter, wrapperspb.Bytes(p)) })
}

func (l *grpcLink) onewayRecords(r *Record, n int) error {
	var encErr error
	err := countedStream(l.root, l.records, n, func() {
		b, err := msgpack.Marshal(r)
		if err != nil {
			encErr = err
		}
		l.root.Send(l.records, wrapperspb.Bytes(b))
	})
	if encErr != nil {
		return encErr
	}
	return err
}

func (l *grpcLink) close() error {
	l.stdin.Close() // EOF tells the child to exit
	return l.child.stop()
}

// runProtoactorGRPCChild hosts the echo and counting actors behind a gRPC remote,
// prints the remote's address and runs until its stdin reaches EOF.
func runProtoactorGRPCChild() error {
	maxMessage, err := childMaxMessage()
	if err != nil {
		return err
	}
	system := newQuietActorSystem()
	r := remote.NewRemote(system, grpcRemoteConfig(maxMessage))
	if err := startRemote(r); err != nil {
		return err
	}
	defer r.Shutdown(false)
	for name, props := range map[string]*pa.Props{
		grpcEchoName:    echoProps(),
		grpcCounterName: counterProps(false),
		grpcRecordsName: counterProps(true),
	} {
		if _, err := system.Root.SpawnNamed(props, name); err != nil {
			return fmt.Errorf("spawn %s: %w", name, err)
		}
	}
	if _, err := fmt.Fprintln(os.Stdout, system.Address()); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}
