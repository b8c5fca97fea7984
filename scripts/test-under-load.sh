#!/usr/bin/env bash
# Runs README's test command, `go test -race ./...`, RUNS times in a row
# (default 3) while a CPU hog keeps every core busy: the proof that the
# tests check correctness, not the machine's speed. Each run is uncached
# (-count=1). Exits non-zero if any run fails; the logs are kept.
#
#   scripts/test-under-load.sh            # 3 runs, hog = stress-ng --cpu 2×cores
#   RUNS=1 HOG_WORKERS=8 scripts/test-under-load.sh
#
# Environment: RUNS, HOG_WORKERS (default twice the cores), LOGDIR
# (default a new temp dir), GO_TEST_FLAGS (added to go test), and
# CAMFEED_REQUIRE_TOOLS (default 1: a test whose tool is missing fails
# rather than skips, so a green run skipped nothing for want of a tool).
# The hog is stress-ng when installed, else a small Go spinner.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export CAMFEED_REQUIRE_TOOLS=${CAMFEED_REQUIRE_TOOLS:-1}
runs=${RUNS:-3}
cores=$(nproc)
workers=${HOG_WORKERS:-$((2 * cores))}
logdir=${LOGDIR:-$(mktemp -d -t camfeed-under-load-XXXXXX)}
mkdir -p "$logdir"

hog_pid=
stop_hog() {
	if [ -n "$hog_pid" ]; then
		kill "$hog_pid" 2>/dev/null || true
		wait "$hog_pid" 2>/dev/null || true
		hog_pid=
	fi
}
trap stop_hog EXIT
trap 'stop_hog; exit 130' INT TERM

if command -v stress-ng >/dev/null 2>&1; then
	stress-ng --cpu "$workers" --timeout 0 --quiet &
	hog_pid=$!
	hog="stress-ng --cpu $workers"
else
	spin=$(mktemp -d)
	cat >"$spin/main.go" <<'GO'
package main

import (
	"os"
	"runtime"
	"strconv"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	runtime.GOMAXPROCS(n)
	for range n - 1 {
		go func() {
			for x := 0; ; x++ {
				_ = x * x
			}
		}()
	}
	for x := 0; ; x++ {
		_ = x * x
	}
}
GO
	(cd "$spin" && go mod init spin >/dev/null 2>&1 && go build -o spin .)
	"$spin/spin" "$workers" &
	hog_pid=$!
	hog="a Go spinner on $workers threads"
fi
echo "test-under-load: $hog on $cores cores; $runs runs of go test -race -count=1 ./...; logs in $logdir"
sleep 2
uptime

failed=0
for i in $(seq 1 "$runs"); do
	start=$SECONDS
	log="$logdir/run-$i.log"
	# shellcheck disable=SC2086
	if go test -race -count=1 ${GO_TEST_FLAGS:-} ./... >"$log" 2>&1; then
		result=PASS
	else
		result=FAIL
		failed=$((failed + 1))
	fi
	echo "run $i/$runs: $result in $((SECONDS - start)) s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	if [ $result = FAIL ]; then
		grep -E '^(--- FAIL|FAIL|panic:)|_test.go:[0-9]+:' "$log" | head -40 || true
	fi
done
stop_hog
echo "test-under-load: $((runs - failed)) of $runs runs passed under $hog"
[ "$failed" -eq 0 ]
