#!/bin/sh
# The example configuration and the man pages against the programs built
# next to them:
#   - deploy/dreamd.conf parses as shipped, and with every commented
#     '#key = default' line switched on (each documented key and default
#     is one dreamd accepts);
#   - every option of `dreamd --help` is an option in dreamd(8) and (but
#     --check, a mode) a key documented in dreamd.conf; every key of
#     dreamd.conf is named in dreamd(8);
#   - every command of `dream --help` has its section in dream(1), and every
#     long option of `dream COMMAND --help` is described there;
#   - both pages format without warnings (groff -ww; mandoc -Tlint when
#     installed).
#
#   deploy_docs.sh DREAMD DREAM DREAMD_CONF DREAMD_8 DREAM_1
#
# DREAMD or DREAM may be missing (not built): their checks are skipped.
set -u

dreamd=${1:?dreamd}
dream=${2:?dream}
conf=${3:?conf}
man8=${4:?dreamd.8}
man1=${5:?dream.1}
errors=0
ran=0

err() {
        echo "deploy_docs: $*" >&2
        errors=$((errors + 1))
}

# roff source of an option: every '-' written '\-'.
roff_opt() {
        printf '%s' "$1" | sed 's/-/\\-/g'
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/deploy_docs.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

for f in "$conf" "$man8" "$man1"; do
        [ -f "$f" ] || { echo "deploy_docs: no file '$f'" >&2; exit 1; }
done

if [ -x "$dreamd" ]; then
        ran=1
        # --config is read before --help is acted on: a parse check.
        "$dreamd" --config "$conf" --help >/dev/null ||
                err "'$conf' does not parse as shipped"
        sed 's/^#\([a-z_][a-z_]* = \)/\1/' "$conf" >"$tmp/all.conf"
        "$dreamd" --config "$tmp/all.conf" --help >/dev/null ||
                err "'$conf' with every '#key = value' line switched on does not parse"
        "$dreamd" --help >"$tmp/help" || err "dreamd --help failed"
        for flag in $(grep -o -- '--[a-z][a-z-]*' "$tmp/help" | sort -u); do
                case $flag in --help | --config) continue ;; esac
                grep -qF -- "$(roff_opt "$flag")" "$man8" ||
                        err "dreamd $flag: not in '$man8'"
                # --check, --check-config and --version are modes, not keys.
                case $flag in --check | --check-config | --version) continue ;; esac
                key=$(printf '%s' "${flag#--}" | tr - _)
                grep -q "^#\{0,1\}$key = " "$conf" ||
                        err "dreamd $flag: key '$key' not documented in '$conf'"
        done
        for key in $(sed -n 's/^#\{0,1\}\([a-z_][a-z_]*\) = .*/\1/p' "$conf" | sort -u); do
                grep -qw -- "$key" "$man8" || err "key '$key' of '$conf' not in '$man8'"
        done
fi

if [ -x "$dream" ]; then
        ran=1
        "$dream" --help >"$tmp/help" || err "dream --help failed"
        cmds=$(sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p' "$tmp/help")
        [ -n "$cmds" ] || err "no command found in 'dream --help'"
        for cmd in $cmds; do
                grep -q "^\.SS \"dream $cmd " "$man1" ||
                        err "dream $cmd: no '.SS \"dream $cmd ...' section in '$man1'"
                "$dream" "$cmd" --help >"$tmp/cmdhelp" || err "dream $cmd --help failed"
                for flag in $(grep -o -- '--[a-z][a-z-]*' "$tmp/cmdhelp" | sort -u); do
                        [ "$flag" = --help ] && continue
                        grep -qF -- "$(roff_opt "$flag")" "$man1" ||
                                err "dream $cmd $flag: not in '$man1'"
                done
        done
fi

# Formatting: groff (groff-base is in every Debian install) and mandoc.
if command -v groff >/dev/null 2>&1; then
        ran=1
        for page in "$man8" "$man1"; do
                out=$(LC_ALL=C.UTF-8 groff -man -ww -z "$page" 2>&1)
                [ -z "$out" ] || err "groff warnings in '$page': $out"
        done
fi
if command -v mandoc >/dev/null 2>&1; then
        ran=1
        for page in "$man8" "$man1"; do
                out=$(mandoc -Tlint -Wwarning "$page" 2>&1)
                [ -z "$out" ] || err "mandoc warnings in '$page': $out"
        done
fi

if [ $errors -ne 0 ]; then
        echo "deploy_docs: $errors problem(s)" >&2
        exit 1
fi
if [ $ran -eq 0 ]; then
        echo "deploy_docs: nothing to check (no dreamd, dream, groff or mandoc): skipped"
        exit 77
fi
echo "deploy_docs: ok"
exit 0
