#!/bin/sh
# deploy/dreamd.sysusers and deploy/dreamd.tmpfiles applied to an empty
# root directory (systemd-sysusers/systemd-tmpfiles --root), as a package
# install would apply them to /: the user and group dreamd exist, without a
# login shell, and /var/lib/dreamd is theirs with mode 0700.
#
#   deploy_sysusers.sh SYSUSERS TMPFILES
#
# Exit 77 (skipped) without systemd-sysusers and systemd-tmpfiles, or when
# not run as root (tmpfiles cannot give the directory to another user).
set -u

sysusers=${1:?sysusers file}
tmpfiles=${2:?tmpfiles file}

fail() {
        echo "deploy_sysusers: $*" >&2
        exit 1
}

for t in systemd-sysusers systemd-tmpfiles; do
        command -v $t >/dev/null 2>&1 || {
                echo "deploy_sysusers: $t not found: skipped"
                exit 77
        }
done
if [ "$(id -u)" != 0 ]; then
        echo "deploy_sysusers: needs root (chown in a scratch root): skipped"
        exit 77
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/deploy_sysusers.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc" || fail "mkdir failed"

systemd-sysusers --root="$root" "$sysusers" || fail "systemd-sysusers failed on '$sysusers'"
line=$(grep '^dreamd:' "$root/etc/passwd") || fail "no user dreamd in the scratch passwd"
grep -q '^dreamd:' "$root/etc/group" || fail "no group dreamd in the scratch group file"
uid=$(printf '%s' "$line" | cut -d: -f3)
gid=$(printf '%s' "$line" | cut -d: -f4)
home=$(printf '%s' "$line" | cut -d: -f6)
shell=$(printf '%s' "$line" | cut -d: -f7)
[ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "dreamd uid $uid is not a system uid"
[ "$home" = /var/lib/dreamd ] || fail "dreamd home is '$home', not /var/lib/dreamd"
case $shell in
*/nologin | */false) ;;
*) fail "dreamd has a login shell '$shell'" ;;
esac

systemd-tmpfiles --root="$root" --create "$tmpfiles" || fail "systemd-tmpfiles failed on '$tmpfiles'"
[ -d "$root/var/lib/dreamd" ] || fail "/var/lib/dreamd not created"
got=$(stat -c '%a %u %g' "$root/var/lib/dreamd")
[ "$got" = "700 $uid $gid" ] || fail "/var/lib/dreamd is '$got', want '700 $uid $gid'"

echo "deploy_sysusers: user dreamd ($uid:$gid), /var/lib/dreamd 0700: ok"
exit 0
