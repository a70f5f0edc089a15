#!/bin/sh
# A million rows through the CLI: unpack(pack(x)) == x byte for byte, with
# integer, decimal (negative, mixed precision), constant and double columns.
# Usage: test_cli_big.sh PATH/TO/dream [ROWS]
set -u
DREAM=$1
ROWS=${2:-1000000}
case "$DREAM" in
/*) ;;
*) DREAM=$(pwd)/$DREAM ;;
esac
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
cd "$T" || exit 1

awk -v n="$ROWS" 'function dec(v, s,   neg, ip, fp, f, out) {
        neg = v < 0; if (neg) v = -v
        ip = int(v / 10 ^ s); fp = v - ip * 10 ^ s; out = ip
        if (fp > 0) { f = sprintf("%0" s "d", fp); sub(/0+$/, "", f); out = out "." f }
        return (neg ? "-" : "") out
}
BEGIN {
        srand(11)
        print "t,temp,press,const,ratio,label"
        for (i = 0; i < n; i++)
                printf "%d,%s,%s,7,%s,%d\n", 1600000000 + i * 60, dec(int(rand() * 8000) - 3000, 2),
                        dec(int(rand() * 300000) + 900000, 3),
                        (i % 1000 == 0 ? "1e+300" : dec(int(rand() * 1000), 4)), int(rand() * 10)
}' >big.csv || exit 1

"$DREAM" pack big.csv -o big.dream -q || { echo "FAIL: pack"; exit 1; }
"$DREAM" unpack big.dream -o back.csv || { echo "FAIL: unpack"; exit 1; }
if ! cmp -s big.csv back.csv; then
        echo "FAIL: unpack(pack(x)) differs: $(cmp big.csv back.csv)"
        exit 1
fi
"$DREAM" inspect big.dream | head -n 4
echo "$ROWS rows identical"
exit 0
