package apicheck

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The code a newcomer copies must build and print what its comments say:
// the README's quickstart and procnode's package sketch are built as
// programs and run.

// repo is the module's root, from this package's folder.
const repo = "../.."

// readmeQuickstart is the first Go block after the README's "## Quickstart".
func readmeQuickstart(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "## Quickstart")
	if !ok {
		t.Fatal("README has no Quickstart section")
	}
	_, code, ok := strings.Cut(after, "```go\n")
	if !ok {
		t.Fatal("the Quickstart has no Go block")
	}
	code, _, ok = strings.Cut(code, "```")
	if !ok {
		t.Fatal("the Quickstart's Go block does not end")
	}
	return code
}

// procnodeSketch is the program in procnode's package comment: the
// tab-indented block that starts with "package main".
func procnodeSketch(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repo, "procnode", "doc.go"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var code strings.Builder
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "//\tpackage main":
			in, line = true, "package main"
		case !in:
			continue
		case strings.HasPrefix(line, "//\t"):
			line = strings.TrimPrefix(line, "//\t")
		case line == "//":
			line = "" // a blank line of the block
		default:
			return code.String()
		}
		code.WriteString(line + "\n")
	}
	t.Fatal("procnode's package comment has no program")
	return ""
}

// buildAndRun builds code as a program of this module and runs it, bounded.
func buildAndRun(t *testing.T, code string) []string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog")
	build := exec.Command("go", "build", "-o", bin, src)
	build.Dir = repo // imports resolve in this module
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s\ncode:\n%s", err, out, code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard against a hang
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// TestReadmeQuickstart: the quickstart prints what its comments say.
func TestReadmeQuickstart(t *testing.T) {
	t.Parallel()
	lines := buildAndRun(t, readmeQuickstart(t))
	if len(lines) != 2 || lines[0] != "hello, parent <nil>" {
		t.Fatalf("output %q; want hello, parent <nil>, then <nil> and a pid", lines)
	}
	pid, ok := strings.CutPrefix(lines[1], "<nil> ")
	if n, err := strconv.Atoi(pid); !ok || err != nil || n <= 0 {
		t.Fatalf("second line %q; want <nil> and the child's pid", lines[1])
	}
}

// TestProcnodeSketch: procnode's package sketch prints what its comments
// say.
func TestProcnodeSketch(t *testing.T) {
	t.Parallel()
	lines := buildAndRun(t, procnodeSketch(t))
	want := []string{"squared: 49 <nil>", "<nil> exit code 0"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output %q; want %q", lines, want)
	}
}

// TestDocsStayInTheRepo: the README's links lead to files of the
// repository, the license is there, and no file refers to documents kept
// outside it.
func TestDocsStayInTheRepo(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#]+)\)`).FindAllStringSubmatch(string(b), -1) {
		link := m[1]
		if strings.Contains(link, "://") {
			continue
		}
		if _, err := os.Stat(filepath.Join(repo, link)); err != nil {
			t.Errorf("README links to %s: %v", link, err)
		}
	}
	lic, err := os.ReadFile(filepath.Join(repo, "LICENSE"))
	if err != nil || !strings.Contains(string(lic), "Apache License\n                           Version 2.0, January 2004") {
		t.Errorf("LICENSE is not the Apache License 2.0 (%v)", err)
	}
	outside := regexp.MustCompile(`DESIGN\.md|STYLE\.md|notes/performance\.md|/work/`)
	err = filepath.WalkDir(repo, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".md")) {
			return nil
		}
		if strings.HasSuffix(path, filepath.Join("apicheck", "docs_test.go")) {
			return nil // this file names what it looks for
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if loc := outside.FindIndex(b); loc != nil {
			t.Errorf("%s refers to %q, which is not in the repository", path, b[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
