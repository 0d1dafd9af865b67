//go:build browser

package procnode_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The browser test needs a real browser: test.sh installs Debian's
// chromium and runs it with -tags browser. CHROMIUM names another binary.

// chromium returns the browser's path; the test fails without one (it is
// never skipped: test.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium in PATH (test.sh installs Debian's chromium; or set CHROMIUM)")
	return ""
}

// headless runs chromium on url with the flags this machine needs (root,
// no GPU, no background network) and extra, and returns its stdout. The
// virtual time budget lets the page's timers and fetches run: it refreshes
// itself a few times before the DOM is dumped.
func headless(t *testing.T, url string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=6000",
	}, extra...)
	cmd := exec.CommandContext(ctx, chromium(t), append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// nodeCard returns the part of the DOM that draws the node at address: its
// card, up to the next node's.
func nodeCard(t *testing.T, dom, address string) string {
	t.Helper()
	_, rest, ok := strings.Cut(dom, `data-address="`+address+`"`)
	if !ok {
		t.Fatalf("node %s is not on the page", address)
	}
	card, _, _ := strings.Cut(rest, "data-address=")
	return card
}

// TestDebugPageInBrowser loads the debug page in headless chromium against
// a running tree (the parent, two children, a grandchild; the first child's
// root actor restarted once), takes a screenshot and checks the DOM the
// page's script built: all four nodes, their states, the restart count.
func TestDebugPageInBrowser(t *testing.T) {
	n := newNode(t)
	first, second, gc := snapshotTree(t, n)
	d, err := n.ServeDebug("")
	if err != nil {
		t.Fatal(err)
	}

	dom := string(headless(t, d.URL(), "--dump-dom"))
	if !strings.Contains(dom, `id="status" class="">live`) {
		t.Fatalf("the page did not draw a snapshot (status line):\n%s", dom)
	}
	restarts := regexp.MustCompile(`data-restarts="(\d+)"`)
	for _, c := range []struct {
		address  string
		restarts string // "" for the root
	}{
		{n.Address(), ""},
		{first.Address(), "1"},
		{second.Address(), "0"},
		{gc.Address, "0"},
	} {
		card := nodeCard(t, dom, c.address)
		if c.restarts == "" {
			continue
		}
		if !strings.Contains(card, `data-state="up"`) {
			t.Errorf("node %s is not shown up: %s", c.address, card)
		}
		m := restarts.FindStringSubmatch(card)
		if m == nil || m[1] != c.restarts || !strings.Contains(card, "restarts <b>"+c.restarts+"</b>") {
			t.Errorf("node %s: restarts %v; want %s shown: %s", c.address, m, c.restarts, card)
		}
		if !strings.Contains(card, "/s") {
			t.Errorf("node %s: no rates on its link row: %s", c.address, card)
		}
	}
	// The grandchild is drawn inside its parent's subtree.
	if i, j := strings.Index(dom, `data-address="`+first.Address()+`"`), strings.Index(dom, `data-address="`+gc.Address+`"`); j < i {
		t.Errorf("grandchild %s drawn before its parent %s", gc.Address, first.Address())
	}

	dir := os.Getenv("PROCACTOR_SCREENSHOT_DIR") // keep it to look at
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "procactor-debug-page.png")
	headless(t, d.URL(), "--screenshot="+shot, "--window-size=1280,800", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 800 {
		t.Fatalf("screenshot is %v; want 1280×800", b.Size())
	}
	t.Logf("screenshot: %s", shot)
}
