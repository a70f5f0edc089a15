#!/bin/sh
# The dream CLI end to end: pack, unpack (byte-for-byte against the canonical
# CSV), inspect, condense, exit codes and messages for bad input, and no
# output file left behind on error. Usage: test_cli.sh PATH/TO/dream
set -u
DREAM=$1
case "$DREAM" in
/*) ;;
*) DREAM=$(pwd)/$DREAM ;;
esac
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
cd "$T" || exit 1
n_fail=0

fail() {
        echo "FAIL: $*"
        n_fail=$((n_fail + 1))
}

# expect CODE MESSAGE CMD...: exit code and exact stderr.
expect() {
        code=$1
        msg=$2
        shift 2
        "$@" >out.txt 2>err.txt
        got=$?
        [ "$got" -eq "$code" ] || fail "$* exited $got, expected $code ($(cat err.txt))"
        if [ -n "$msg" ]; then
                [ "$(cat err.txt)" = "$msg" ] || fail "$*: stderr '$(cat err.txt)', expected '$msg'"
        fi
}

# No .dream, .csv output or temporary file may be left but the inputs.
no_leftovers() {
        left=$(ls -a | grep -E '\.tmp-|^out\.(dream|csv)$' || true)
        [ -z "$left" ] || fail "left behind after '$1': $left"
}

# ---- a generated table, already in canonical form -------------------------
awk 'function dec(v, s,   neg, ip, fp, f, out) {
        neg = v < 0; if (neg) v = -v
        ip = int(v / 10 ^ s); fp = v - ip * 10 ^ s; out = ip
        if (fp > 0) { f = sprintf("%0" s "d", fp); sub(/0+$/, "", f); out = out "." f }
        return (neg ? "-" : "") out
}
BEGIN {
        srand(7)
        print "id,temp,small,const,big,label"
        for (i = 0; i < 5000; i++)
                printf "%d,%s,%s,42,%s,%d\n", i, dec(int(rand() * 8000) - 3000, 2),
                        dec(int(rand() * 2000) - 1000, 6), dec(int(rand() * 2000000000), 0),
                        int(rand() * 4)
}' >gen.csv

expect 0 "" "$DREAM" pack gen.csv -o gen.dream -q
[ -s gen.dream ] || fail "pack wrote no gen.dream"
expect 0 "" "$DREAM" unpack gen.dream -o back.csv
cmp -s gen.csv back.csv || fail "unpack(pack(gen.csv)) differs from gen.csv"
"$DREAM" unpack gen.dream | cmp -s gen.csv - || fail "unpack to stdout differs"

# --rows A:B: 0-based, half-open.
expect 0 "" "$DREAM" unpack gen.dream --rows 10:20 -o part.csv
{ head -n 1 gen.csv; sed -n '12,21p' gen.csv; } >want.csv
cmp -s want.csv part.csv || fail "--rows 10:20 gave the wrong rows"
expect 0 "" "$DREAM" unpack gen.dream --rows 4990: -o part.csv -f
[ "$(wc -l <part.csv)" -eq 11 ] || fail "--rows 4990: gave $(wc -l <part.csv) lines"
expect 0 "" "$DREAM" unpack gen.dream --rows 7:7 --force -o part.csv
[ "$(cat part.csv)" = "$(head -n 1 gen.csv)" ] || fail "--rows 7:7 is not the header alone"
expect 1 "dream: invalid --rows '5:2' (the file has 5000 rows) (see 'dream unpack --help')" \
        "$DREAM" unpack gen.dream --rows 5:2 -o out.csv
expect 1 "" "$DREAM" unpack gen.dream --rows 0:5001 -o out.csv
expect 1 "" "$DREAM" unpack gen.dream --rows x -o out.csv
no_leftovers "bad --rows"

# pack --json: one line, the same field names as the other commands.
expect 0 "" "$DREAM" pack gen.csv --json -o json.dream
grep -q '^{"input":"gen.csv","file":"json.dream","rows":5000,"columns":6,"input_bytes":' out.txt ||
        fail "pack --json: $(cat out.txt)"
[ "$(wc -l <out.txt)" -eq 1 ] || fail "pack --json is not one line"

# Sizes in text output: 1024-based units with one decimal, or exact bytes
# with the global --bytes (before or after the command).
expect 0 "" "$DREAM" pack gen.csv -o size.dream
grep -Eq "^packed 'gen.csv' -> 'size.dream': 5000 rows, 6 columns, [0-9]+\.[0-9] KiB -> [0-9]+\.[0-9] KiB \(" out.txt ||
        fail "pack: sizes not in KiB: $(cat out.txt)"
src_bytes=$(wc -c <gen.csv)
expect 0 "" "$DREAM" --bytes pack gen.csv -o size.dream --force
grep -q " $src_bytes bytes -> [0-9]* bytes (" out.txt || fail "pack --bytes: $(cat out.txt)"
expect 0 "" "$DREAM" inspect size.dream --bytes
grep -q "^vs source .*($src_bytes bytes)$" out.txt || fail "inspect --bytes: $(grep source out.txt)"
rm -f size.dream

# unpack --json and condense --json: one line, the field names of pack --json.
expect 0 "" "$DREAM" unpack gen.dream --rows 10:20 -o json.csv --json
grep -Eq '^\{"file":"gen.dream","output":"json.csv","rows":10,"columns":6,"output_bytes":[1-9][0-9]*,"first_row":10\}$' out.txt ||
        fail "unpack --json: $(cat out.txt)"
[ "$(wc -l <out.txt)" -eq 1 ] || fail "unpack --json is not one line"
grep -q "\"output_bytes\":$(wc -c <json.csv)," out.txt || fail "unpack --json: output_bytes is not the size"
expect 0 "" "$DREAM" condense gen.dream --budget 40 -o json.csv --json -f
grep -Eq '^\{"file":"gen.dream","output":"json.csv","rows":[1-9][0-9]*,"columns":7,"output_bytes":[1-9][0-9]*,"source_rows":5000,"stored":false\}$' out.txt ||
        fail "condense --json: $(cat out.txt)"
expect 1 "dream: --json needs -o FILE (the CSV would share standard output) (see 'dream unpack --help')" \
        "$DREAM" unpack gen.dream --json
expect 1 "" "$DREAM" condense gen.dream --budget 4 --json
rm -f json.csv

# inspect, text and JSON.
expect 0 "" "$DREAM" inspect gen.dream
grep -Eq "^stored  *[0-9]+\.[0-9] KiB$" out.txt || fail "inspect: stored not in KiB: $(grep ^stored out.txt)"
grep -q '^rows  *5000$' out.txt || fail "inspect does not say 5000 rows"
grep -q "^task  *classification$" out.txt || fail "inspect does not say classification"
grep -q "^temp  *dec  *2 " out.txt || fail "inspect: temp is not dec scale 2"
expect 0 "" "$DREAM" inspect --json gen.dream
grep -q '^{"file":"gen.dream","rows":5000,"columns":6,' out.txt || fail "inspect --json: $(head -c 80 out.txt)"
[ "$(wc -l <out.txt)" -eq 1 ] || fail "inspect --json is not one line"

# condense: at most the budget, weights sum to the rows.
expect 0 "" "$DREAM" condense gen.dream --budget 40 -o cond.csv
[ "$(head -n 1 cond.csv)" = "id,temp,small,const,big,label,weight" ] ||
        fail "condense header: $(head -n 1 cond.csv)"
rows=$(($(wc -l <cond.csv) - 1))
[ "$rows" -ge 1 ] && [ "$rows" -le 40 ] || fail "condense gave $rows samples for a budget of 40"
sum=$(awk -F, 'NR > 1 { s += $NF } END { print s }' cond.csv)
[ "$sum" = 5000 ] || fail "condense weights sum to $sum"
expect 0 "" "$DREAM" condense gen.dream --budget 1% --order entropy
expect 1 "" "$DREAM" condense gen.dream
expect 1 "" "$DREAM" condense gen.dream --budget 0

# Condensed samples stored by pack --budget.
expect 0 "" "$DREAM" pack gen.csv -o withc.dream --budget 25 -q
expect 0 "" "$DREAM" condense withc.dream -o cond2.csv
rows=$(($(wc -l <cond2.csv) - 1))
[ "$rows" -ge 1 ] && [ "$rows" -le 25 ] || fail "stored condensed: $rows samples"
"$DREAM" inspect withc.dream | grep -q "^condensed  *$rows samples" ||
        fail "inspect does not show the stored samples"

# ---- non-canonical input: quotes, CRLF, +, trailing zeros, blank lines ----
printf '"a","b c",label\r\n+1.50,"2",0\r\n\r\n-0.0,3.000,1\r\n7,  -4.25 ,1' >messy.csv
printf 'a,b c,label\n1.5,2,0\n0,3,1\n7,-4.25,1\n' >messy.want
expect 0 "" "$DREAM" pack messy.csv -q -o messy.dream
"$DREAM" unpack messy.dream | cmp -s messy.want - || fail "messy.csv is not canonicalized"

# Header names that need quoting print back quoted.
printf '"x,y","say ""hi""",z\n1,2,3\n' >names.csv
expect 0 "" "$DREAM" pack names.csv -q -o names.dream
"$DREAM" unpack names.dream | cmp -s names.csv - || fail "quoted names do not round-trip"

# Doubles: exponents, NaN, Inf, many decimals.
printf 'x,y\n1e300,nan\n-2.5e-7,inf\n0.12345678901234,-inf\n' >f64.csv
printf 'x,y\n1e+300,nan\n-2.5e-07,inf\n0.12345678901234,-inf\n' >f64.want
expect 0 "" "$DREAM" pack f64.csv -q -o f64.dream
"$DREAM" unpack f64.dream | cmp -s f64.want - || fail "doubles: $("$DREAM" unpack f64.dream | tr '\n' ' ')"

# --label and --task.
expect 0 "" "$DREAM" pack gen.csv -o lab.dream -q --label temp --task regression
"$DREAM" inspect lab.dream | grep -q "target 'temp'" || fail "--label temp not used"
"$DREAM" inspect lab.dream | grep -q "^task  *regression$" || fail "--task regression not used"

# gzip input and the default output name (basename, extensions dropped).
mkdir sub
gzip -c gen.csv >sub/zipped.csv.gz
expect 0 "" "$DREAM" pack sub/zipped.csv.gz -q
[ -s zipped.dream ] || fail "pack sub/zipped.csv.gz did not write ./zipped.dream"
"$DREAM" unpack zipped.dream | cmp -s gen.csv - || fail "gzip input does not round-trip"
head -c 2000 sub/zipped.csv.gz >cut.csv.gz
expect 2 "dream: cut.csv.gz: cannot read: truncated gzip data" "$DREAM" pack cut.csv.gz -o out.dream
no_leftovers "truncated gzip"

# Standard input.
"$DREAM" pack - -o stdin.dream -q <gen.csv || fail "pack from stdin"
"$DREAM" unpack stdin.dream | cmp -s gen.csv - || fail "stdin input does not round-trip"

# A tiny IDX pair: 3 images of 2x2 ubyte pixels, 3 labels.
printf '\000\000\010\003\000\000\000\003\000\000\000\002\000\000\000\002' >img.idx
printf '\001\002\003\004\005\006\007\010\011\012\013\377' >>img.idx
printf '\000\000\010\001\000\000\000\003\007\000\011' >lab.idx
expect 0 "" "$DREAM" pack img.idx --labels lab.idx -o img.dream -q
printf 'px0,px1,px2,px3,label\n1,2,3,4,7\n5,6,7,8,0\n9,10,11,255,9\n' >img.want
"$DREAM" unpack img.dream | cmp -s img.want - || fail "idx does not unpack as expected"
printf '\000\000\010\001\000\000\000\002\007\000' >lab2.idx
expect 2 "dream: lab2.idx: labels: 2 labels for 3 images" \
        "$DREAM" pack img.idx --labels lab2.idx -o out.dream
head -c 20 img.idx >cut.idx
expect 2 "dream: cut.idx: images: truncated data (4 of 12 bytes)" "$DREAM" pack cut.idx -o out.dream
no_leftovers "bad idx"

# ---- bad input: exit 2, one line naming file, line and column -------------
printf 'a,b,c\n1,2,3\n4,5\n' >ragged.csv
expect 2 "dream: ragged.csv:3:3: expected 3 cells, found 2" "$DREAM" pack ragged.csv -o out.dream
printf 'a,b\n1,2\n3,abc\n' >text.csv
expect 2 "dream: text.csv:3:2: non-numeric cell 'abc'" "$DREAM" pack text.csv -o out.dream
printf '1,2\n3,4\n' >nohead.csv
expect 2 "dream: nohead.csv:1: missing header: the first line holds numbers, not column names" \
        "$DREAM" pack nohead.csv -o out.dream
: >empty.csv
expect 2 "dream: empty.csv: empty file" "$DREAM" pack empty.csv -o out.dream
expect 2 "dream: gen.csv:1: label column 'nope' not found in the header" \
        "$DREAM" pack gen.csv --label nope -o out.dream
expect 2 "dream: missing.csv: cannot read: No such file or directory" \
        "$DREAM" pack missing.csv -o out.dream
printf 'a\n12345678901234567890123\n' >inexact.csv
expect 2 "" "$DREAM" pack inexact.csv -o out.dream
grep -q "^dream: inexact.csv:2:1: '12345678901234567890123' cannot be stored exactly" err.txt ||
        fail "inexact: $(cat err.txt)"
expect 2 "" "$DREAM" pack ragged.csv
[ ! -e ragged.dream ] || fail "ragged.dream written on error"
no_leftovers "bad csv"

# ---- corrupt .dream files: exit 3, nothing written ------------------------
size=$(wc -c <gen.dream)
head -c $((size / 2)) gen.dream >trunc.dream
expect 3 "" "$DREAM" unpack trunc.dream -o out.csv
expect 3 "" "$DREAM" inspect trunc.dream
cp gen.csv notdream.dream
expect 3 "" "$DREAM" unpack notdream.dream -o out.csv
expect 3 "" "$DREAM" inspect empty.csv
# Flip one byte at several places: an error (3) or, never, wrong rows.
for off in 20 100 $((size / 3)) $((size / 2)) $((size - 10)); do
        cp gen.dream flip.dream
        printf '\377' | dd of=flip.dream bs=1 seek="$off" conv=notrunc 2>/dev/null
        "$DREAM" unpack flip.dream -o out.csv >/dev/null 2>err.txt
        got=$?
        if [ "$got" -eq 0 ]; then
                cmp -s gen.csv out.csv || fail "byte $off flipped: exit 0 with wrong rows"
                rm -f out.csv
        elif [ "$got" -ne 3 ]; then
                fail "byte $off flipped: exit $got ($(cat err.txt))"
        fi
done
no_leftovers "corrupt dream"

# An existing output file is replaced only with --force (-f), for every
# command with -o; without it, it is left as it was.
echo keep >exists.out
expect 2 "dream: pack: output 'exists.out' already exists (give --force to overwrite it)" \
        "$DREAM" pack gen.csv -q -o exists.out
expect 2 "" "$DREAM" unpack gen.dream -o exists.out
expect 2 "" "$DREAM" condense gen.dream --budget 5 -o exists.out
[ "$(cat exists.out)" = keep ] || fail "an existing -o file was changed without --force"
cp gen.dream gen2.dream
expect 2 "" "$DREAM" pack gen.csv -q
[ "$(cat exists.out)" = keep ] || fail "an existing -o file was changed without --force"
expect 0 "" "$DREAM" pack gen.csv -q -o exists.out --force
expect 0 "" "$DREAM" unpack gen.dream -o exists.out -f
cmp -s gen.csv exists.out || fail "unpack -f did not replace the file"
expect 0 "" "$DREAM" condense gen.dream --budget 5 -o exists.out --force
DREAM_ADDR=127.0.0.1:1 expect 2 "" "$DREAM" export ds -o exists.out
DREAM_ADDR=127.0.0.1:1 expect 2 "" "$DREAM" batch ds --size 5 -o exists.out
DREAM_ADDR=127.0.0.1:1 expect 2 "" "$DREAM" model 1 -o exists.out
DREAM_ADDR=127.0.0.1:1 expect 2 "" "$DREAM" predict 1 gen.csv -o exists.out
DREAM_ADDR=127.0.0.1:1 expect 5 "" "$DREAM" model 1 -o exists.out -f
rm -f exists.out gen2.dream

# Never overwrite the input; a column called weight keeps its name.
cp gen.csv same.csv
expect 1 "dream: output 'same.csv' would overwrite the input (see 'dream pack --help')" \
        "$DREAM" pack same.csv -o same.csv
cmp -s gen.csv same.csv || fail "pack -o INPUT changed the input"
expect 1 "" "$DREAM" unpack gen.dream -o gen.dream
printf 'weight,label\n1,0\n2,1\n3,1\n' >w.csv
expect 0 "" "$DREAM" pack w.csv -q -o w.dream
expect 0 "" "$DREAM" condense w.dream --budget 3 -o w.out
[ "$(head -n 1 w.out)" = "weight,label,_weight" ] || fail "weight clash: $(head -n 1 w.out)"

# ---- usage -----------------------------------------------------------------
expect 1 "" "$DREAM"
expect 0 "" "$DREAM" --help
expect 1 "dream: unknown command 'frobnicate' (see 'dream --help')" "$DREAM" frobnicate
for cmd in pack unpack inspect condense; do
        expect 0 "" "$DREAM" $cmd --help
        grep -q "^usage: dream $cmd" out.txt || fail "$cmd --help"
        expect 1 "" "$DREAM" $cmd
        expect 1 "" "$DREAM" $cmd --bogus x
done
expect 1 "dream: unknown task 'foo' (see 'dream pack --help')" "$DREAM" pack gen.csv --task foo
expect 1 "" "$DREAM" pack gen.csv --format xml
expect 1 "" "$DREAM" pack gen.csv --budget -3

# ---- training-job commands: help and usage errors need no server -----------
# (a closed port: a usage error must come before any connection)
export DREAM_ADDR=127.0.0.1:1
for cmd in train jobs job cancel predict model stats; do
        expect 0 "" "$DREAM" $cmd --help
        grep -q "^usage: dream $cmd" out.txt || fail "$cmd --help"
        expect 1 "" "$DREAM" $cmd --bogus
done
for cmd in train job cancel predict model; do
        expect 1 "" "$DREAM" $cmd
done
expect 1 "dream: missing --model (linear, ridge, logistic, softmax, mlp or kmeans) (see 'dream train --help')" \
        "$DREAM" train ds
expect 1 "dream: --mode exact is for linear and ridge, not mlp (see 'dream train --help')" \
        "$DREAM" train ds --model mlp --mode exact
expect 1 "dream: invalid job id 'x1' (a number from 'dream jobs') (see 'dream job --help')" \
        "$DREAM" job x1
expect 1 "" "$DREAM" cancel 0
expect 1 "" "$DREAM" predict 3
expect 1 "" "$DREAM" jobs extra
expect 5 "" "$DREAM" train ds --model linear
expect 5 "" "$DREAM" jobs
# dream help CMD is dream CMD --help; "did you mean" for misspelt names.
"$DREAM" pack --help >help1.txt
expect 0 "" "$DREAM" help pack
cmp -s out.txt help1.txt || fail "dream help pack differs from dream pack --help"
rm -f help1.txt
expect 1 "dream: unknown command 'ingset' (did you mean 'ingest'? see 'dream --help')" "$DREAM" ingset
expect 1 "dream: unknown command 'inpsect' (did you mean 'inspect'? see 'dream --help')" \
        "$DREAM" help inpsect
expect 1 "dream: unknown command 'xyzzy' (see 'dream --help')" "$DREAM" xyzzy
expect 1 "dream: unknown option '--forse' (did you mean '--force'?) (see 'dream pack --help')" \
        "$DREAM" pack gen.csv --forse
expect 1 "dream: unknown option '--tokn-file=t' (did you mean '--token-file'?) (see 'dream ls --help')" \
        "$DREAM" ls --tokn-file=t
expect 1 "dream: unknown option '--zzz' (see 'dream ls --help')" "$DREAM" ls --zzz
expect 1 "dream: unknown model 'lienar' (did you mean 'linear'?) (see 'dream train --help')" \
        "$DREAM" train ds --model lienar
expect 1 "dream: unknown model 'tree' (linear, ridge, logistic, softmax, mlp or kmeans) (see 'dream train --help')" \
        "$DREAM" train ds --model tree
expect 1 "dream: unknown mode 'sampel' (did you mean 'sample'?) (see 'dream train --help')" \
        "$DREAM" train ds --model mlp --mode sampel
expect 1 "dream: unknown mode 'condesned' (did you mean 'condensed'?) (see 'dream batch --help')" \
        "$DREAM" batch ds --size 4 --mode condesned

# "every row": full and rows in both batch and train (exit 5: no server, so
# the mode was taken).
for m in full rows; do
        expect 5 "" "$DREAM" batch ds --size 4 --mode $m
        expect 5 "" "$DREAM" train ds --model linear --mode $m
done
expect 1 "dream: unknown mode 'everything' (condensed, full or sample) (see 'dream batch --help')" \
        "$DREAM" batch ds --size 4 --mode everything
expect 5 "" "$DREAM" stats --json
"$DREAM" train --help | grep -q -- "--epochs E" || fail "train --help lacks --epochs"
"$DREAM" --help | grep -q "10 the training job failed" || fail "dream --help lacks exit 10"
"$DREAM" --help | grep -q "12 the server's store is full" || fail "dream --help lacks exit 12"
# ingest --help: the real --window default (8, as in the man page), --resume.
"$DREAM" ingest --help | grep -q -- "--window N .*(default 8)" ||
        fail "ingest --help: --window default is not 8: $("$DREAM" ingest --help | grep -- --window)"
"$DREAM" ingest --help | grep -q -- "--resume" || fail "ingest --help lacks --resume"

if [ "$n_fail" -ne 0 ]; then
        echo "$n_fail failures"
        exit 1
fi
echo "all CLI checks passed"
exit 0
