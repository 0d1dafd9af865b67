package procnode_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/procactor/procactor/procnode"
)

// TestDebugHandler: the page and the snapshot, read-only; anything else is
// refused.
func TestDebugHandler(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := spawn(t, n, "test.echo")
	srv := httptest.NewServer(n.DebugHandler())
	t.Cleanup(srv.Close)

	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page), `fetch("snapshot.json"`) || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-") {
		t.Fatalf("page: %d %q, CSP %q", res.StatusCode, res.Header.Get("Content-Type"), csp)
	}
	for _, external := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(strings.ReplaceAll(string(page), "http://www.w3.org/2000/svg", ""), external) {
			t.Errorf("page refers to %q: it must be self-contained", external)
		}
	}

	res, err = http.Get(srv.URL + "/snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	var s procnode.Snapshot
	err = json.NewDecoder(res.Body).Decode(&s)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("snapshot.json: %d, %v", res.StatusCode, err)
	}
	if len(s.Children) != 1 || s.Children[0].Address != p.Address() || s.Children[0].Tree == nil {
		t.Fatalf("snapshot.json: %+v; want the child, answering", s)
	}

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/snapshot.json", http.StatusMethodNotAllowed},
		{http.MethodPut, "/", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/", http.StatusMethodNotAllowed},
		{http.MethodGet, "/stop", http.StatusNotFound},
		{http.MethodHead, "/snapshot.json", http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("{}"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s %s: %d; want %d", tc.method, tc.path, res.StatusCode, tc.want)
		}
	}
	if !p.Alive() || p.State() != "up" {
		t.Fatalf("child after the requests: %s; want up", p.State())
	}
}

// TestServeDebug: loopback by default, refuses a Host that is not a
// loopback name (DNS rebinding), and closes with the node.
func TestServeDebug(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	for _, addr := range []string{"", ":0"} {
		d, err := n.ServeDebug(addr)
		if err != nil {
			t.Fatal(err)
		}
		if ip := d.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Fatalf("ServeDebug(%q) listens on %v; want loopback", addr, ip)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	if _, err := n.ServeDebug("no-port"); !errors.Is(err, procnode.ErrInvalidOption) {
		t.Fatalf("ServeDebug(no-port): %v; want ErrInvalidOption", err)
	}

	d, err := n.ServeDebug("")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{
		"":                           http.StatusOK, // the listener's own address
		"localhost":                  http.StatusOK,
		"[::1]:1234":                 http.StatusOK,
		"attacker.example":           http.StatusForbidden,
		"attacker.example:" + "8080": http.StatusForbidden,
		"10.0.0.1":                   http.StatusForbidden,
	} {
		req, _ := http.NewRequest(http.MethodGet, d.URL()+"snapshot.json", nil)
		if host != "" {
			req.Host = host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Host %q: %d; want %d", host, res.StatusCode, want)
		}
	}
	if err := n.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(d.URL()); err == nil {
		t.Fatal("the debug endpoint still answers after the node closed")
	}
	if _, err := n.ServeDebug(""); !errors.Is(err, procnode.ErrNodeClosed) {
		t.Fatalf("ServeDebug on a closed node: %v; want ErrNodeClosed", err)
	}
}
