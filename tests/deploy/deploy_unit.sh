#!/bin/sh
# The generated dreamd.service, checked offline by systemd-analyze.
#
#   deploy_unit.sh verify   UNIT DREAMD
#   deploy_unit.sh security UNIT DREAMD MAX_EXPOSURE
#
# UNIT is the unit meson generated from deploy/dreamd.service.in; DREAMD the
# dreamd built alongside it (may not exist). The unit's ExecStart names the
# installed binary, which a build tree does not have, so the checks run on a
# copy whose ExecStart names DREAMD (or a stub when it was not built).
# Exit 77 (skipped) when systemd-analyze, or its --offline security mode
# (systemd >= 250), is missing.
set -u

mode=${1:?mode}
unit=${2:?unit}
dreamd=${3:?dreamd}
max=${4:-2.0}

fail() {
        echo "deploy_unit: $*" >&2
        exit 1
}

command -v systemd-analyze >/dev/null 2>&1 || {
        echo "deploy_unit: systemd-analyze not found: skipped"
        exit 77
}
[ -f "$unit" ] || fail "no unit file '$unit'"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/deploy_unit.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$tmp"' EXIT

# Every @var@ of dreamd.service.in was substituted.
if grep -n '@[A-Za-z_]*@' "$unit"; then
        fail "'$unit' still holds unsubstituted @variables@"
fi

# The contract with the daemon (issue 6) and the packaging, line by line.
for want in '^Type=notify$' '^NotifyAccess=main$' '^WatchdogSec=30s$' \
        '^ExecStart=/[^ ]*/dreamd --config /[^ ]*/dreamd/dreamd\.conf$' \
        '^ExecReload=/bin/kill -HUP \$MAINPID$' '^StateDirectory=dreamd$' \
        '^RuntimeDirectory=dreamd$' '^User=dreamd$' '^Group=dreamd$' \
        '^IPAddressDeny=any$' '^IPAddressAllow=localhost$' '^UMask=0077$'; do
        grep -q "$want" "$unit" || fail "'$unit': no line matching '$want'"
done

if [ -x "$dreamd" ]; then
        exe=$dreamd
else
        exe=$tmp/dreamd
        printf '#!/bin/sh\nexit 0\n' >"$exe" && chmod 755 "$exe" || fail "cannot write a stub"
fi
case $exe in
/*) ;;
*) exe=$(pwd)/$exe ;;
esac
sed "s|^ExecStart=[^ ]*/dreamd |ExecStart=$exe |" "$unit" >"$tmp/dreamd.service" ||
        fail "cannot copy '$unit'"

case $mode in
verify)
        # verify exits 0 on unknown keys and bad values ("ignoring"), so
        # any line naming the unit is a failure too. --man=no: dreamd(8)
        # is not installed yet.
        out=$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/dreamd.service" 2>&1)
        rc=$?
        [ -n "$out" ] && printf '%s\n' "$out"
        [ $rc -eq 0 ] || fail "systemd-analyze verify failed ($rc)"
        if printf '%s\n' "$out" | grep -q 'dreamd\.service'; then
                fail "systemd-analyze verify reported problems in the unit"
        fi
        echo "deploy_unit: systemd-analyze verify: ok"
        ;;
security)
        if ! systemd-analyze --help 2>&1 | grep -q -- '--offline'; then
                echo "deploy_unit: systemd-analyze has no --offline: skipped"
                exit 77
        fi
        out=$(systemd-analyze security --offline=yes --no-pager "$tmp/dreamd.service" 2>&1)
        rc=$?
        printf '%s\n' "$out" | grep -v '^✓'
        [ $rc -eq 0 ] || fail "systemd-analyze security failed ($rc)"
        level=$(printf '%s\n' "$out" |
                sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p')
        [ -n "$level" ] || fail "no 'Overall exposure level' line"
        awk -v l="$level" -v m="$max" 'BEGIN { exit !(l + 0 <= m + 0) }' ||
                fail "exposure level $level is above $max"
        echo "deploy_unit: exposure level $level (at most $max): ok"
        ;;
*)
        fail "unknown mode '$mode'"
        ;;
esac
exit 0
