#!/bin/sh
# Ingest / batch-serving benchmark over loopback (issue 4; prints figures,
# never fails on them).
#   bench/ingest/run.sh [BUILD [ROWS [bench_ingest options...]]]
# BUILD defaults to build-release, ROWS to 3000000. The sensor CSV is
# generated once by BUILD/bench/gen_sensor (seed 42) into run/bench/ingest/.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${1:-build-release}
ROWS=${2:-3000000}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] && shift
BIN=$BUILD/bench/ingest/bench_ingest
if [ ! -x "$BIN" ]; then
        echo "run.sh: $BIN not built (ninja -C $BUILD)" >&2
        exit 2
fi
mkdir -p run/bench/ingest
CSV=run/bench/ingest/sensor$ROWS.csv
if [ ! -s "$CSV" ]; then
        "$BUILD/bench/gen_sensor" "$ROWS" 42 >"$CSV.tmp"
        mv "$CSV.tmp" "$CSV"
fi
echo "machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); date: $(date -u +%Y-%m-%dT%H:%MZ)"
exec "$BIN" "$@" "$CSV"
