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

echo "== fuzz, ${FUZZTIME} per target"
fuzzed=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
    fuzzed=$((fuzzed + 1))
  done
done

echo "== go run ./bench -quick"
go run ./bench -quick

passed=$(grep -c '^ok' "$log" || true)
echo "test.sh: $passed packages and $fuzzed fuzz targets passed, the quick bench ran"
echo "$((passed + fuzzed)) passed, 0 failed"
