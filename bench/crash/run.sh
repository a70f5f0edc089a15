#!/bin/sh
# Long crash trials (issue 7): the integration test test_crash with more
# SIGKILLs; prints each group's summary (trials, rows acknowledged, rows
# lost). Exit status: non-zero when a group found a failure.
#   bench/crash/run.sh [BUILD [TRIALS [SEED]]]
# BUILD defaults to build, TRIALS to 40 (kills during ingest; a quarter of
# that during seals and during backups), SEED to the date.
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-build}
TRIALS=${2:-40}
SEED=${3:-$(date +%s)}
BIN=$BUILD/tests/integration/test_crash
if [ ! -x "$BIN" ]; then
        echo "run.sh: $BIN not built (ninja -C $BUILD)" >&2
        exit 2
fi
export DREAMD="$BUILD/server/dreamd" DREAM_CRASH_QUIET=1 DREAM_CRASH_SEED="$SEED"
echo "machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); date: $(date -u +%Y-%m-%dT%H:%MZ); seed $SEED"
rc=0
small=$((TRIALS / 4))
[ "$small" -lt 1 ] && small=1
for g in kill seal backup diskfull mapfull; do
        n=$TRIALS
        [ "$g" != kill ] && n=$small
        log=$(mktemp)
        start=$(date +%s)
        DREAM_CRASH_TRIALS=$n "$BIN" "$g" >"$log" 2>&1
        st=$?
        end=$(date +%s)
        grep -E "^$g: trials" "$log" || echo "$g: no summary (exit $st)"
        grep -E "^FAIL" "$log" | head -5
        [ $st -eq 77 ] && echo "$g: skipped ($(grep skipped "$log" | head -1))"
        [ $st -ne 0 ] && [ $st -ne 77 ] && rc=1
        echo "$g: exit $st in $((end - start)) s"
        rm -f "$log"
done
exit $rc
