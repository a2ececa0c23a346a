#!/usr/bin/env bash
# Runs every fuzz target of the project for $1 (default 60s) each, one after another.
# A crasher is written by go test under the package's testdata/fuzz: commit it as a
# regression seed once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
fail=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $f ($t)"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime 5s "$pkg" || fail=1
  done
done
exit $fail
