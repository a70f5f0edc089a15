#!/usr/bin/env bash
# Codec benchmark (issue 2): for each dataset, in one run, the sizes of the
# CSV, fixed-width binary, float32, the dream file and plain S(B); gzip -9,
# zstd -19 and xz -9 of the CSV and of the column-wise binary; pack and
# unpack throughput in MB/s of CSV; stage 2 selection, stage 1 (1% budget)
# and random-row times; and a lossless check of every row. Prints a Markdown
# table. Not a test: it never fails on a figure.
#
# Usage: bench/codec.sh BUILD_DIR [--quick] [DATASET...]
#   datasets: boston iris wine breast_cancer digits diabetes fashion_mnist sensor3m
#   --quick: sensor table of 300,000 rows instead of 3,000,000
# The compressors' sizes are cached per input file (run/bench/codec/*.baselines).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: bench/codec.sh BUILD_DIR [--quick] [DATASET...]}
shift
rows=3000000
if [ "${1:-}" = "--quick" ]; then rows=300000; shift; fi
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(boston iris wine breast_cancer digits diabetes fashion_mnist sensor3m)

dream="$build/client/dream"
stats="$build/bench/codec_stats"
csvcmp="$build/bench/csvcmp"
work=run/bench/codec
mkdir -p "$work"
bench/data/prepare.sh "$work" >/dev/null

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
size() { stat -c %s "$1"; }
# Compressed size of a file with a command (reads stdin).
csize() { "${@:2}" < "$1" | wc -c; }
json() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
v=d
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  command: bench/codec.sh $build ${rows/#3000000/} ${sets[*]}"
echo
printf '| dataset | rows x cols | CSV | fixed | float32 | dream | S(B) | gzip-9 CSV | zstd-19 CSV | xz-9 CSV | gzip-9 col | zstd-19 col | xz-9 col | dream / zstd-19 CSV | dream / xz-9 col | pack MB/s | unpack MB/s | select s | stage 1 s | row us | lossless |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'

for name in "${sets[@]}"; do
  label=()
  case "$name" in
    boston) csv="$work/boston.csv"; label=(--label MEDV) ;;
    diabetes) csv="$work/diabetes.csv"; label=(--label target) ;;
    iris | wine | breast_cancer | digits) csv="$work/$name.csv" ;;
    fashion_mnist)
      csv="$work/fashion_mnist.csv"
      if [ ! -s "$csv" ]; then
        fm=/usr/share/datasets/fashion-mnist
        "$dream" pack "$fm/train-images-idx3-ubyte.gz" --labels "$fm/train-labels-idx1-ubyte.gz" \
          --force -o "$work/fm-idx.dream" >/dev/null
        "$dream" unpack "$work/fm-idx.dream" --force -o "$csv"
      fi
      ;;
    sensor3m)
      csv="$work/sensor_$rows.csv"
      [ -s "$csv" ] || "$build/bench/gen_sensor" "$rows" 42 > "$csv"
      label=(--label power)
      ;;
    *) echo "unknown dataset '$name'" >&2; exit 1 ;;
  esac
  out="$work/$name.dream"
  t0=$(now); "$dream" pack "$csv" "${label[@]}" --force -o "$out" >/dev/null; t1=$(now)
  "$dream" unpack "$out" --force -o "$work/$name.back.csv"; t2=$(now)
  "$dream" inspect "$out" --json > "$work/$name.json"
  lossless=$("$csvcmp" "$csv" "$work/$name.back.csv" | cut -d: -f1)
  "$stats" "$out" --colbin "$work/$name.colbin" > "$work/$name.stats"
  st() { awk -v k="$1" '$1 == k { print $2 }' "$work/$name.stats"; }
  csv_b=$(size "$csv")
  col="$work/$name.colbin"
  dream_b=$(size "$out")
  # The general-purpose compressors' sizes depend only on the input: they are
  # cached next to it, keyed by its size and checksum.
  key="$csv_b-$(cksum < "$csv" | cut -d' ' -f1)"
  cache="$work/$name.baselines"
  if [ -s "$cache" ] && [ "$(head -1 "$cache")" = "$key" ]; then
    read -r gz_csv zs_csv xz_csv gz_col zs_col xz_col < <(tail -1 "$cache")
  else
    gz_csv=$(csize "$csv" gzip -9); zs_csv=$(csize "$csv" zstd -19 -T1 -q -c)
    xz_csv=$(csize "$csv" xz -9 -T1 -c)
    gz_col=$(csize "$col" gzip -9); zs_col=$(csize "$col" zstd -19 -T1 -q -c)
    xz_col=$(csize "$col" xz -9 -T1 -c)
    printf '%s\n%s %s %s %s %s %s\n' "$key" "$gz_csv" "$zs_csv" "$xz_csv" "$gz_col" "$zs_col" "$xz_col" > "$cache"
  fi
  printf '| %s | %s x %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.3f | %.3f | %s | %s | %s | %s | %s | %s |\n' \
    "$name" "$(json "$work/$name.json" rows)" "$(json "$work/$name.json" columns)" \
    "$csv_b" "$(json "$work/$name.json" fixed_width_bytes)" "$(json "$work/$name.json" float32_bytes)" \
    "$dream_b" "$(json "$work/$name.json" s_bytes)" \
    "$gz_csv" "$zs_csv" "$xz_csv" "$gz_col" "$zs_col" "$xz_col" \
    "$(awk -v a="$dream_b" -v b="$zs_csv" 'BEGIN { print a / b }')" \
    "$(awk -v a="$dream_b" -v b="$xz_col" 'BEGIN { print a / b }')" \
    "$(mbps "$csv_b" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")" \
    "$(mbps "$(size "$work/$name.back.csv")" "$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')")" \
    "$(st select_p0_seconds)" "$(st condense_msb_seconds)" "$(st random_row_us)" "$lossless"
  rm -f "$col"
done
