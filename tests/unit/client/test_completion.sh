#!/bin/bash
# deploy/dream.bash-completion: sourced in bash, COMPREPLY for commands,
# options, models and modes; its option lists are those of
# `dream COMMAND --help` (so that they stay in step).
# Usage: test_completion.sh DREAM COMPLETION_FILE
DREAM=$1
# shellcheck source=/dev/null
. "$2" || exit 1
n_fail=0
fail() {
        echo "FAIL: $*"
        n_fail=$((n_fail + 1))
}

# complete WANT WORD...: COMPREPLY for the last word of "WORD...".
complete_is() {
        local want=$1
        shift
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        DREAM_ADDR=127.0.0.1:1 _dream
        local got
        got=""
        [ ${#COMPREPLY[@]} -eq 0 ] || got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
        [ "$got" = "${want:+$want }" ] || fail "'$*': '$got', expected '$want'"
}

complete_is "info ingest inspect" dream in
complete_is "info ingest inspect" dream -s 127.0.0.1:1 in
complete_is "--mode --model" dream train ds --mo
complete_is "linear" dream train ds --model li
complete_is "logistic" dream train ds --model lo
complete_is "full" dream batch ds --mode f
complete_is "--bytes" dream --by
complete_is "" dream info d # no dreamd answers: no names

for cmd in pack unpack inspect condense ingest ls info export flush drop batch backup stats \
        train jobs job cancel predict model; do
        want=$("$DREAM" "$cmd" --help | grep -o -- '--[a-z][a-z0-9-]*' | grep -v -- --data-dir |
                sort -u | tr '\n' ' ')
        [ "$(_dream_opts "$cmd") " = "$want" ] ||
                fail "options of $cmd: '$(_dream_opts "$cmd")', dream $cmd --help: '$want'"
done

if [ "$n_fail" -ne 0 ]; then
        echo "$n_fail failures"
        exit 1
fi
echo "all completion checks passed"
