#!/bin/sh
# End-to-end training benchmark through a real dreamd: starts dreamd from
# BUILD_DIR on a free loopback port with a temporary data directory, ingests
# the datasets with `dream ingest`, trains with `dream train ... --wait --json`
# (bench/train/e2e.py), prints markdown tables and the targets, stops dreamd.
#   bench/train/e2e.sh BUILD_DIR [e2e.py options: --only fmnist,tables,reg
#                     --quick --budgets 0.01,0.1 --sklearn-slow --no-sklearn]
# CSV files are generated once into $E2E_DATA (default /tmp/dream-bench-e2e,
# about 600 MB with the 3M-row table); dreamd's store is removed at the end.
# Extra dreamd options: $E2E_DREAMD_ARGS (e.g. "--blas-threads 1").
set -eu
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
        sed -n '2,10s/^# \{0,1\}//p' "$0"
        exit 1
fi
build=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
data=${E2E_DATA:-/tmp/dream-bench-e2e}
dream="$build/client/dream"
dreamd="$build/server/dreamd"
for f in "$dream" "$dreamd"; do
        [ -x "$f" ] || {
                echo "e2e.sh: $f not found (build with ninja -C $build)" >&2
                exit 1
        }
done
mkdir -p "$data"
tmp=$(mktemp -d /tmp/dream-e2e.XXXXXX)
pid=
# shellcheck disable=SC2317 # called by the trap
stop() {
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
        rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 130' INT TERM HUP PIPE

src=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$here" status --porcelain --untracked-files=no 2>/dev/null | head -1)
echo "# e2e $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $src${dirty:+ (with uncommitted changes)}," \
        "$("$dreamd" --version), build $build"
echo "# machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
        "$(awk '/MemAvailable/ { printf "%.1f GB available", $2 / 1048576 }' /proc/meminfo)"
echo "# options: $*"

# shellcheck disable=SC2086
"$dreamd" --listen 127.0.0.1:0 --data-dir "$tmp/store" --port-file "$tmp/port" \
        ${E2E_DREAMD_ARGS:-} >"$tmp/dreamd.out" 2>"$tmp/dreamd.log" &
pid=$!
for _ in $(seq 100); do
        [ -s "$tmp/port" ] && break
        kill -0 "$pid" 2>/dev/null || {
                cat "$tmp/dreamd.log" >&2
                exit 1
        }
        sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$tmp/port" | head -1)
[ -n "$addr" ] || {
        echo "e2e.sh: dreamd did not report its address" >&2
        exit 1
}
export DREAM_ADDR="$addr"
echo "# dreamd pid $pid on $addr, store $tmp/store"

rc=0
/usr/bin/python3 "$here/e2e.py" --dream "$dream" --data "$data" "$@" || rc=$?
echo "# done $(date -u +%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$rc" -ne 0 ]; then
        echo "e2e.sh: e2e.py failed ($rc); dreamd log:" >&2
        tail -20 "$tmp/dreamd.log" >&2
fi
exit "$rc"
