package reach

import (
	"net"
	"strconv"
	"strings"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/names"
)

// rootOf returns the first segment of an address: the root of its tree.
func rootOf(addr string) string {
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// within reports whether addr is root or a node below it.
func within(root, addr string) bool {
	return addr == root || (len(addr) > len(root) && addr[len(root)] == '/' && addr[:len(root)] == root)
}

// isHostPort reports whether addr is a root address reach serves: host:port
// with a port in 1..65535.
func isHostPort(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || strings.ContainsAny(addr, "/ \t\n") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

// gatewayID is the Id of every root's gateway: {root address, gatewayID}
// receives all tunnel frames.
const gatewayID = "procactor$reach"

// maxPIDField bounds the address and id of a PID in a frame: a peer cannot
// pin memory in the watch tables with huge ones.
const maxPIDField = 1024

// machinery reports whether id names procactor's or protoactor's own
// machinery, which another root may not message, watch or stop: the
// gateway, procactor's activator and control processes, a child's host
// actor (its root actor, "procactor-host/root", stays reachable),
// protoactor remote's activator (remote spawn by kind name; reach does not
// use it) and its endpoint supervisor.
func machinery(id string) bool {
	switch {
	case id == gatewayID, id == names.Activator, id == names.Host, id == names.RemoteActivator,
		strings.HasPrefix(id, names.ControlPrefix),
		// remote's endpoint supervisor and its endpoints' actors: a stop
		// would cut every stream of this root.
		id == names.RemoteEndpointSupervisor, strings.HasPrefix(id, names.RemoteEndpointSupervisor+"/"):
		return true
	}
	return false
}

// isFuture reports whether p is a protoactor future (an answer awaited).
func isFuture(p *pa.PID) bool { return p != nil && strings.HasPrefix(p.Id, names.FuturePrefix) }

type pidKey struct{ addr, id string }

func keyOf(p *pa.PID) pidKey { return pidKey{p.Address, p.Id} }

func (k pidKey) pid() *pa.PID { return pa.NewPID(k.addr, k.id) }

// watchTable maps a watchee to its watchers.
type watchTable map[pidKey]map[pidKey]*pa.PID

// add records the pair and reports whether it is new.
func (t watchTable) add(watchee pidKey, watcher *pa.PID) bool {
	ws := t[watchee]
	if ws == nil {
		ws = make(map[pidKey]*pa.PID)
		t[watchee] = ws
	}
	k := keyOf(watcher)
	if _, ok := ws[k]; ok {
		return false
	}
	ws[k] = watcher
	return true
}

// drop forgets the pair and reports whether it was there.
func (t watchTable) drop(watchee, watcher pidKey) bool {
	ws := t[watchee]
	if ws == nil {
		return false
	}
	if _, ok := ws[watcher]; !ok {
		return false
	}
	delete(ws, watcher)
	if len(ws) == 0 {
		delete(t, watchee)
	}
	return true
}
