#!/bin/sh
# Progress of long network commands: on a terminal (a pty from script(1)),
# export draws its bar on stderr and backup says what runs; without a
# terminal they print nothing there. Usage: test_cli_progress.sh DREAM DREAMD
set -eu
dream=$1
dreamd=$2
tmp=$(mktemp -d /tmp/dream-progress-XXXXXX)
pid=
cleanup() {
        [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
        echo "FAIL: $*" >&2
        exit 1
}

"$dreamd" --data-dir "$tmp/data" --listen 127.0.0.1:0 --port-file "$tmp/port" \
        --log-level error >/dev/null &
pid=$!
i=0
until grep -q 'listening' "$tmp/port" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 200 ] || fail "dreamd did not start"
        sleep 0.05
done
addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$tmp/port")

# 600,000 rows x 5 columns: 24 MB of 8-byte cells, over the bar's threshold.
awk 'BEGIN { print "a,b,c,d,label"; for (i = 0; i < 600000; i++)
        print i "," (i * 7) % 1000 "," (i * 13) % 997 "," i % 5 "," i % 3 }' > "$tmp/in.csv"
"$dream" -s "$addr" ingest big "$tmp/in.csv" >/dev/null

script -qec "'$dream' -s $addr export big -o '$tmp/a.csv'" /dev/null > "$tmp/tty.txt"
tr '\r' '\n' < "$tmp/tty.txt" | grep -q '^export .*100%' || fail "no export bar on a terminal"
"$dream" -s "$addr" export big -o "$tmp/b.csv" 2> "$tmp/err.txt"
[ ! -s "$tmp/err.txt" ] || fail "export wrote to stderr without a terminal: $(cat "$tmp/err.txt")"
cmp -s "$tmp/a.csv" "$tmp/b.csv" || fail "the export with a bar differs"
[ "$(wc -l < "$tmp/a.csv")" -eq 600001 ] || fail "export rows"

script -qec "'$dream' -s $addr backup '$tmp/bk'" /dev/null > "$tmp/tty2.txt"
grep -q 'backing up the store' "$tmp/tty2.txt" || fail "no backup note on a terminal"
echo "progress: ok"
