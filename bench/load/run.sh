#!/bin/sh
# Load benchmark (issue 7; prints figures, never fails on them).
#   bench/load/run.sh [BUILD [SECONDS [bench_load options...]]]
# BUILD defaults to build-release, SECONDS (the mixed load) to 60. Runs the
# mixed load (64 ingesters, 16 batch streamers, 2 trainers), then the slow-
# client latency probe (1,000 dribbling + 100 idle connections).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${1:-build-release}
SECONDS_=${2:-60}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] && shift
BIN=$BUILD/bench/load/bench_load
if [ ! -x "$BIN" ]; then
        echo "run.sh: $BIN not built (ninja -C $BUILD)" >&2
        exit 2
fi
echo "machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); date: $(date -u +%Y-%m-%dT%H:%MZ)"
"$BIN" -t "$SECONDS_" "$@" mixed
"$BIN" "$@" slow
