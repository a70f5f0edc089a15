#!/bin/sh
# Fuzzing run (issue 7): builds the libFuzzer targets (clang, ASan + UBSan)
# when BUILD does not hold them yet, runs each for SECONDS on a scratch copy
# of its checked-in corpus (never modified), and prints per target: runs
# (executions), coverage at start and at the end (libFuzzer's `cov:`), new
# coverage, corpus growth and crashes. Non-zero exit when a target crashed.
#   bench/fuzz/run.sh [BUILD [SECONDS [TARGET...]]]
# BUILD defaults to build-fuzz, SECONDS to 60, the targets to every
# BUILD/tests/fuzz/fuzz_*.
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-build-fuzz}
SECS=${2:-60}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] && shift
if [ ! -d "$BUILD" ]; then
        CC=clang meson setup "$BUILD" -Dfuzzing=true -Db_lundef=false \
                -Db_sanitize=address,undefined >/dev/null || exit 2
fi
# Only the fuzz executables (the rest of the tree need not build).
fuzz_exes=$(ninja -C "$BUILD" -t targets all | sed -n 's/^\(tests\/fuzz\/fuzz_[a-z_]*\): .*/\1/p')
[ -n "$fuzz_exes" ] || { echo "run.sh: $BUILD has no fuzz targets (-Dfuzzing=true?)" >&2; exit 2; }
# shellcheck disable=SC2086 # one word per target
ninja -C "$BUILD" -j2 $fuzz_exes >/dev/null || { echo "run.sh: build of $BUILD failed" >&2; exit 2; }
if [ $# -gt 0 ]; then
        targets="$*"
else
        targets=
        for f in "$BUILD"/tests/fuzz/fuzz_*; do
                [ -f "$f" ] && [ -x "$f" ] && targets="$targets ${f##*/}"
        done
fi
[ -n "$targets" ] || { echo "run.sh: no fuzz_* in $BUILD/tests/fuzz (-Dfuzzing=true?)" >&2; exit 2; }
echo "machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); date: $(date -u +%Y-%m-%dT%H:%MZ); $SECS s per target"
printf '%-16s %12s %10s %8s %8s %8s %8s %s\n' target runs runs/s cov0 cov cov+ corpus+ crashes
rc=0
for t in $targets; do
        name=${t#fuzz_}
        exe=$BUILD/tests/fuzz/$t
        src=tests/fuzz/$name/corpus
        work=$(mktemp -d)
        mkdir -p "$work/corpus" "$work/art"
        log=$work/log
        ASAN_OPTIONS=detect_leaks=1 "$exe" -max_total_time="$SECS" -print_final_stats=1 \
                -artifact_prefix="$work/art/" -rss_limit_mb=2048 -timeout=20 \
                "$work/corpus" "$src" >"$log" 2>&1
        st=$?
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov0=$(grep -E 'INITED.* cov: ' "$log" | sed 's/.* cov: \([0-9]*\).*/\1/' | tail -1)
        cov=$(grep -E '^#[0-9]+.* cov: ' "$log" | sed 's/.* cov: \([0-9]*\).*/\1/' | tail -1)
        added=$(find "$work/corpus" -type f | wc -l)
        crashes=$(find "$work/art" -type f | wc -l)
        [ -n "$runs" ] || runs=0
        [ -n "$cov0" ] || cov0=0
        [ -n "$cov" ] || cov=$cov0
        printf '%-16s %12s %10s %8s %8s %8s %8s %s\n' "$t" "$runs" $((runs / SECS)) "$cov0" "$cov" \
                $((cov - cov0)) "$added" "$crashes"
        if [ "$crashes" -gt 0 ] || { [ $st -ne 0 ] && [ "$runs" = 0 ]; }; then
                rc=1
                echo "  $t: exit $st; artifacts kept in $work/art; log $log" >&2
                grep -E 'ERROR|SUMMARY' "$log" | head -5 >&2
        else
                rm -rf "$work"
        fi
done
exit $rc
