package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/rpc"
	"os"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// goplugin is hashicorp/go-plugin with its net/rpc protocol (gob over yamux over a
// Unix socket): the plugin server is a child re-execution of the bench, a request
// is the Plugin.Echo call. net/rpc has no one-way call, so the one-way cells
// pipeline asynchronous calls (rpc.Client.Go) with goPluginWindow of them in
// flight; each reply acknowledges one message and a final Plugin.Sync checks the
// server's count. A Record travels as gob, net/rpc's codec.

const (
	goPluginRole = "goplugin_child"
	// goPluginWindow is the number of pipelined calls in flight in one-way cells.
	goPluginWindow = 128
)

// goPluginHandshake is the cookie go-plugin checks before it serves.
var goPluginHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PROCACTOR_BENCH_PLUGIN",
	MagicCookieValue: "echo",
}

func init() {
	registerSystem(goPlugin{})
	registerRole(goPluginRole, runGoPluginChild)
}

// echoPlugin serves an *EchoService and hands the client the plain *rpc.Client.
type echoPlugin struct{}

func (echoPlugin) Server(*plugin.MuxBroker) (any, error) { return &EchoService{}, nil }

func (echoPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) { return c, nil }

// EchoService is the net/rpc service of the plugin child, registered as "Plugin".
// net/rpc runs each call on its own goroutine, so the count is atomic.
type EchoService struct {
	count atomic.Int64
}

// Echo answers p with itself.
func (s *EchoService) Echo(p []byte, reply *[]byte) error {
	*reply = p
	return nil
}

// Deliver counts one one-way payload.
func (s *EchoService) Deliver(_ []byte, _ *int64) error {
	s.count.Add(1)
	return nil
}

// DeliverRecord counts one one-way Record.
func (s *EchoService) DeliverRecord(_ Record, _ *int64) error {
	s.count.Add(1)
	return nil
}

// Sync answers the number of messages delivered since the previous Sync.
func (s *EchoService) Sync(_ int64, count *int64) error {
	*count = s.count.Swap(0)
	return nil
}

type goPlugin struct{}

func (goPlugin) name() string { return "goplugin" }

func (goPlugin) start(_ context.Context, cfg linkConfig) (link, error) {
	cmd, err := newChildCmd(goPluginRole, cfg)
	if err != nil {
		return nil, err
	}
	// go-plugin takes the child's stdout (its handshake line) and stderr itself,
	// and gives it the bench's stdin, so the child's lifeline is an extra pipe.
	cmd.Stdout, cmd.Stderr = nil, nil
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer lifeR.Close()
	cmd.ExtraFiles = []*os.File{lifeR}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  goPluginHandshake,
		Plugins:          map[string]plugin.Plugin{"echo": echoPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC},
		Logger:           hclog.NewNullLogger(),
		StartTimeout:     childReadyTimeout,
	})
	// On an interrupted run: the lifeline's EOF ends the plugin at once, and
	// client.Kill, safe at any point of the start, reaps it.
	untrack := liveChildren.add(func() {
		lifeW.Close()
		client.Kill()
	})
	fail := func(err error) (link, error) {
		lifeW.Close()
		client.Kill()
		untrack()
		return nil, fmt.Errorf("goplugin: %w", err)
	}
	protocol, err := client.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := protocol.Dispense("echo")
	if err != nil {
		return fail(err)
	}
	rc, ok := raw.(*rpc.Client)
	if !ok {
		return fail(fmt.Errorf("dispensed %T; want *rpc.Client", raw))
	}
	return &goPluginLink{client: client, rpc: rc, lifeline: lifeW, untrack: untrack}, nil
}

type goPluginLink struct {
	client   *plugin.Client
	rpc      *rpc.Client
	lifeline io.Closer
	untrack  func()
}

func (l *goPluginLink) childPID() int {
	if rc := l.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

func (l *goPluginLink) request(p []byte) error {
	var reply []byte
	if err := l.rpc.Call("Plugin.Echo", p, &reply); err != nil {
		return err
	}
	if len(reply) != len(p) {
		return fmt.Errorf("echo: got %d bytes; want %d", len(reply), len(p))
	}
	return nil
}

func (l *goPluginLink) oneway(p []byte, n int) error {
	return l.pipeline("Plugin.Deliver", p, n)
}

func (l *goPluginLink) onewayRecords(r *Record, n int) error {
	return l.pipeline("Plugin.DeliverRecord", *r, n)
}

// pipeline makes n asynchronous calls of method with arg, at most goPluginWindow
// in flight, waits for every reply, then checks the server's count.
func (l *goPluginLink) pipeline(method string, arg any, n int) error {
	done := make(chan *rpc.Call, goPluginWindow)
	inFlight := 0
	var firstErr error
	collect := func() {
		call := <-done
		inFlight--
		if call.Error != nil && firstErr == nil {
			firstErr = call.Error
		}
	}
	for range n {
		if inFlight == goPluginWindow {
			collect()
		}
		l.rpc.Go(method, arg, new(int64), done)
		inFlight++
	}
	for inFlight > 0 {
		collect()
	}
	if firstErr != nil {
		return firstErr
	}
	var count int64
	if err := l.rpc.Call("Plugin.Sync", int64(n), &count); err != nil {
		return err
	}
	if count != int64(n) {
		return fmt.Errorf("sync: plugin counted %d messages; want %d", count, n)
	}
	return nil
}

func (l *goPluginLink) close() error {
	defer l.untrack()
	// Quit the plugin gracefully, close every stream, and only then let it exit
	// (lifeline EOF): a plugin that exits at Control.Quit races the client's
	// last writes, and yamux logs "[ERR] ... broken pipe" on stderr.
	rpcErr := l.rpc.Close()
	if protocol, err := l.client.Client(); err == nil {
		_ = protocol.Close() // Control.Quit, then the control, stdio and broker streams
	}
	lifeErr := l.lifeline.Close()
	l.client.Kill() // waits for the exit; kills a plugin that is still running
	if lifeErr != nil {
		return lifeErr
	}
	return rpcErr
}

// runGoPluginChild serves EchoService through go-plugin until the lifeline on fd 3
// reaches EOF: the parent closes it once done, or dies.
func runGoPluginChild() error {
	lifeline := os.NewFile(3, "lifeline")
	go func() {
		_, _ = io.Copy(io.Discard, lifeline)
		os.Exit(0)
	}()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: goPluginHandshake,
		Plugins:         map[string]plugin.Plugin{"echo": echoPlugin{}},
		Logger:          hclog.NewNullLogger(),
	})
	// Serve returns at Control.Quit, before the client has closed its streams;
	// the lifeline's EOF follows them.
	time.Sleep(stopGrace)
	return errors.New("lifeline still open after Control.Quit")
}
