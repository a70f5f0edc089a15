#!/bin/sh
# `meson install` into a scratch DESTDIR, then the file list:
#   - every EXPECTED path (absolute, as installed: dreamd, dream, the unit,
#     the sysusers, tmpfiles and example config files, the man pages) is
#     there under DESTDIR, the programs executable;
#   - the installed unit's ExecStart names the installed dreamd and its
#     --config the installed example;
#   - every file meson reports installing is there;
#   - when libdream is installed, so are a public header and a .pc file.
#
#   deploy_install.sh MESON BUILD_DIR EXPECTED...
#
# Exit 77 (skipped) when MESON is not a program.
set -u

meson=${1:?meson}
build=${2:?build dir}
shift 2

fail() {
        echo "deploy_install: $*" >&2
        exit 1
}

command -v "$meson" >/dev/null 2>&1 || {
        echo "deploy_install: no meson program '$meson': skipped"
        exit 77
}
[ -d "$build" ] || fail "no build directory '$build'"

dest=$(mktemp -d "${TMPDIR:-/tmp}/deploy_install.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$dest"' EXIT

# DESTDIR in the environment and --destdir, as packagers use either.
if ! DESTDIR="$dest" "$meson" install -C "$build" --no-rebuild --destdir "$dest" \
        >"$dest.log" 2>&1; then
        cat "$dest.log" >&2
        rm -f "$dest.log"
        fail "meson install failed"
fi

errors=0
err() {
        echo "deploy_install: $*" >&2
        errors=$((errors + 1))
}

unit=
for p in "$@"; do
        case $p in
        /*) ;;
        *) err "expected path '$p' is not absolute" ;;
        esac
        if [ ! -f "$dest$p" ]; then
                err "not installed: $p"
                continue
        fi
        case $p in
        */bin/* | */sbin/*) [ -x "$dest$p" ] || err "not executable: $p" ;;
        */dreamd.service) unit=$p ;;
        esac
done

# The unit names what was installed (not the build tree).
if [ -n "$unit" ]; then
        exec_line=$(sed -n 's/^ExecStart=//p' "$dest$unit")
        exe=${exec_line%% *}
        [ -n "$exe" ] && [ -x "$dest$exe" ] ||
                err "$unit: ExecStart program '$exe' is not installed"
        conf=$(printf '%s\n' "$exec_line" | sed -n 's/.*--config \([^ ]*\).*/\1/p')
        [ -n "$conf" ] && [ -f "$dest$conf" ] ||
                err "$unit: --config file '$conf' is not installed"
fi

# Everything meson installed (its install log, written under the build
# directory, lists DESTDIR-prefixed or plain destination paths).
log=$build/meson-logs/install-log.txt
if [ -f "$log" ]; then
        n=0
        while IFS= read -r f; do
                case $f in '#'* | '') continue ;; esac
                case $f in
                "$dest"/*) g=$f ;;
                *) g=$dest$f ;;
                esac
                [ -e "$g" ] || [ -L "$g" ] || err "listed in the install log but missing: $f"
                n=$((n + 1))
        done <"$log"
        [ $n -gt 0 ] || err "empty install log '$log'"
        # libdream, its public header and its pkg-config file go together.
        if grep -q '/libdream[^/]*\.\(so\|a\)' "$log"; then
                grep -q '/include/.*\.h$' "$log" || err "libdream installed without a header"
                grep -q '/pkgconfig/[^/]*\.pc$' "$log" || err "libdream installed without a .pc file"
        fi
else
        err "no install log '$log'"
fi
rm -f "$dest.log"

if [ $errors -ne 0 ]; then
        echo "deploy_install: $errors problem(s); installed tree:" >&2
        (cd "$dest" && find . ! -type d | sort) >&2
        exit 1
fi
echo "deploy_install: $# expected files installed under DESTDIR: ok"
exit 0
