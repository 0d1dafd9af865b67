#!/usr/bin/env bash
# test.sh: everything CI and a newcomer run — vet, the race-enabled tests,
# bounded fuzz runs of every decoder, and the quick bench as a smoke test.
set -euo pipefail
cd "$(dirname "$0")"
FUZZTIME="${FUZZTIME:-10s}"

echo "== go vet ./..."
go vet ./...

echo "== go test -race ./..."
go test -race -count=1 -timeout 5m ./...

echo "== fuzz, ${FUZZTIME} per target"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
  done
done

echo "== go run ./bench -quick"
go run ./bench -quick
