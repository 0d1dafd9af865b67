#!/usr/bin/env bash
# test.sh: everything CI and a newcomer run — vet, the race-enabled tests,
# bounded fuzz runs of every decoder, and the quick bench as a smoke test.
set -euo pipefail
cd "$(dirname "$0")"
FUZZTIME="${FUZZTIME:-10s}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "== go vet ./..."
go vet ./...

echo "== go test -race ./..."
go test -race -count=1 -timeout 5m ./... 2>&1 | tee "$log"

echo "== browser test: the debug page in headless chromium"
# The page is drawn by its own script: only a real browser shows that it
# works. CI runs as root and reaches Debian's packages; a machine without
# chromium gets Debian's. No browser is a failure, never a skip.
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
  echo "test.sh: chromium is missing; installing Debian's chromium"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
     ! command -v chromium >/dev/null 2>&1; then
    echo "test.sh: FAILED: chromium could not be installed (apt-get install chromium); the browser test (go test -tags browser ./procnode) needs it" >&2
    exit 1
  fi
fi
go test -tags browser -count=1 -run '^TestDebugPageInBrowser$' ./procnode 2>&1 | tee -a "$log"

echo "== fuzz, ${FUZZTIME} per target"
fuzzed=0
# A target that fails without writing a reproducer to testdata/fuzz failed
# in the fuzzing engine itself (on a loaded machine its coordinator has
# ended with "context deadline exceeded" and no input): it runs once more.
# A failure that wrote an input is a bug found, and fails at once.
fuzz() { go test -run '^$' -fuzz "^$1\$" -fuzztime "$FUZZTIME" "$2"; }
inputs() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    corpus="$(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$target"
    before="$(inputs "$corpus")"
    if ! fuzz "$target" "$pkg"; then
      if [ "$(inputs "$corpus")" != "$before" ]; then
        echo "test.sh: FAILED: $target found a failing input (in $corpus)" >&2
        exit 1
      fi
      echo "test.sh: $target failed without a failing input; running it once more"
      fuzz "$target" "$pkg"
    fi
    fuzzed=$((fuzzed + 1))
  done
done

echo "== go run ./bench -quick"
go run ./bench -quick

passed=$(grep -c '^ok' "$log" || true)
echo "test.sh: $passed packages and $fuzzed fuzz targets passed, the quick bench ran"
echo "$((passed + fuzzed)) passed, 0 failed"
