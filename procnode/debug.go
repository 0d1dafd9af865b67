package procnode

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// The debug endpoint shows a node's process tree to a person: a page that
// draws it and refreshes itself, and the Snapshot it draws, as JSON. It is
// read-only: it answers GET and HEAD and has no way to send a message, stop
// an actor or change anything. It is off unless asked for (ServeDebug, or
// DebugHandler mounted by the user) and ServeDebug listens on loopback
// unless given another host.

//go:embed debug.html
var debugPage []byte

// debugCSP allows the page's own inline script and style (by hash) and
// fetches from its own origin, nothing else.
var debugCSP = func() string {
	hash := func(tag string) string {
		_, rest, _ := bytes.Cut(debugPage, []byte("<"+tag+">"))
		body, _, _ := bytes.Cut(rest, []byte("</"+tag+">"))
		sum := sha256.Sum256(body)
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return "default-src 'none'; script-src " + hash("script") + "; style-src " + hash("style") +
		"; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// DebugHandler returns the node's debug endpoint as an http.Handler, to
// mount in the user's own server. It serves, read-only (GET and HEAD):
//
//	/               a self-contained HTML page (no external resource) drawing
//	                the tree with per-link rates and their recent history,
//	                refreshing itself every second
//	/snapshot.json  n.Snapshot as JSON
//
// Mounted under a prefix, strip it and keep the trailing slash (the page
// fetches snapshot.json relative to itself):
//
//	mux.Handle("/debug/procactor/", http.StripPrefix("/debug/procactor", node.DebugHandler()))
//
// Concurrent requests share one snapshot.
func (n *Node) DebugHandler() http.Handler { return &debugHandler{n: n} }

type debugHandler struct {
	n    *Node
	mu   sync.Mutex
	call *snapshotCall // the snapshot being taken (guarded by mu)
}

// snapshotCall is one snapshot shared by the requests that wait for it.
type snapshotCall struct {
	done chan struct{}
	body []byte // JSON; set before done is closed
}

func (h *debugHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the procactor debug endpoint is read-only", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	switch r.URL.Path {
	case "", "/", "/index.html":
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Content-Security-Policy", debugCSP)
		hdr.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(debugPage)
	case "/snapshot.json":
		body, err := h.snapshot(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		hdr.Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

// snapshot returns the JSON of a snapshot taken for this request or shared
// with the requests that arrived while it was being taken.
func (h *debugHandler) snapshot(ctx context.Context) ([]byte, error) {
	h.mu.Lock()
	c := h.call
	if c == nil {
		c = &snapshotCall{done: make(chan struct{})}
		h.call = c
		go func() {
			sctx, cancel := context.WithTimeout(context.Background(), DefaultSnapshotTimeout)
			s := h.n.Snapshot(sctx)
			cancel()
			c.body, _ = json.Marshal(&s) // plain data: it always encodes
			h.mu.Lock()
			h.call = nil
			h.mu.Unlock()
			close(c.done)
		}()
	}
	h.mu.Unlock()
	select {
	case <-c.done:
		return c.body, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// DebugServer is the debug endpoint ServeDebug started.
type DebugServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
	once sync.Once
}

// DefaultDebugAddr is where ServeDebug listens when given "": loopback, a
// port the system picks.
const DefaultDebugAddr = "127.0.0.1:0"

// ServeDebug starts the node's debug endpoint (see DebugHandler) on its own
// HTTP server listening on addr: host:port, where an empty host means
// 127.0.0.1 and an empty addr DefaultDebugAddr. It listens on loopback
// unless addr names another host. On loopback it answers only requests whose
// Host header names a loopback address or localhost (a web page the user
// visits cannot read it by rebinding a name of its own to 127.0.0.1); on
// another host it answers any. Close it, or
// close the node. Errors: the listener's, ErrNodeClosed.
func (n *Node) ServeDebug(addr string) (*DebugServer, error) {
	if addr == "" {
		addr = DefaultDebugAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: ServeDebug(%q): %w", ErrInvalidOption, addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	var h http.Handler = n.DebugHandler()
	if ip := ln.Addr().(*net.TCPAddr).IP; ip.IsLoopback() {
		h = loopbackOnly(h)
	}
	d := &DebugServer{
		ln:   ln,
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute},
		done: make(chan struct{}),
	}
	if !n.extras.addServer(d) {
		ln.Close()
		return nil, ErrNodeClosed
	}
	go func() {
		defer close(d.done)
		_ = d.srv.Serve(ln) // http.ErrServerClosed once closed
	}()
	return d, nil
}

// loopbackOnly refuses requests whose Host is not a loopback name.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		host = strings.Trim(host, "[]")
		ip := net.ParseIP(host)
		if !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "the procactor debug endpoint answers loopback names only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Addr is the address the server listens on.
func (d *DebugServer) Addr() net.Addr { return d.ln.Addr() }

// URL is the page's address, "http://127.0.0.1:PORT/".
func (d *DebugServer) URL() string { return "http://" + d.ln.Addr().String() + "/" }

// Close stops the server and its connections and returns once it has
// stopped. It is idempotent.
func (d *DebugServer) Close() error {
	var err error
	d.once.Do(func() { err = d.srv.Close() })
	<-d.done
	return err
}

// nodeExtras are what introspection adds to a node and closes with it.
type nodeExtras struct {
	mu      sync.Mutex
	closed  bool                  // guarded by mu
	servers []*DebugServer        // guarded by mu
	regs    []metric.Registration // guarded by mu
}

func (x *nodeExtras) addServer(d *DebugServer) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return false
	}
	x.servers = append(x.servers, d)
	return true
}

func (x *nodeExtras) addRegistration(r metric.Registration) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return false
	}
	x.regs = append(x.regs, r)
	return true
}

// close stops the debug servers and unregisters the metrics: the node is
// closing, there is nobody to tell of an error.
func (x *nodeExtras) close() {
	x.mu.Lock()
	x.closed = true
	servers, regs := x.servers, x.regs
	x.servers, x.regs = nil, nil
	x.mu.Unlock()
	for _, d := range servers {
		_ = d.Close()
	}
	for _, r := range regs {
		_ = r.Unregister()
	}
}
