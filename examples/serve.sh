#!/usr/bin/env bash
# The main job, over the network: start dreamd with a data directory inside
# the checkout, ingest Fashion-MNIST over the socket, show `dream info`,
# export the dataset and check it is identical to the input (to `dream
# unpack` of a pack of the same files, and to an independent IDX reader),
# then train softmax on the condensed samples (cold, then cached), on a
# uniform sample of the same size and on every row, evaluate them on the test
# images, print end-to-end and fit-only ratios, predict a few of them, and stop the daemon with
# SIGTERM and check it exits 0.
# Usage: examples/serve.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-release}
dream="$PWD/$build/client/dream"
dreamd="$PWD/$build/server/dreamd"
fm=/usr/share/datasets/fashion-mnist
out=run/serve
data=run/dreamd-data
mkdir -p "$out"
rm -rf "$data"
rm -f "$out/port"

echo "== start dreamd on a free loopback port, data in $data"
"$dreamd" --listen 127.0.0.1:0 --data-dir "$data" --port-file "$out/port" \
  >"$out/dreamd.out" 2>"$out/dreamd.log" &
pid=$!
stop() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
trap stop EXIT
for _ in $(seq 100); do
  [ -s "$out/port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$out/dreamd.log" >&2; exit 1; }
  sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$out/port" | head -1)
[ -n "$addr" ] || { echo "serve.sh: dreamd did not report its address" >&2; exit 1; }
export DREAM_ADDR=$addr
echo "dreamd (pid $pid) listening on $addr"
echo

echo "== ingest Fashion-MNIST (60,000 images of 28x28 pixels + labels) over the socket"
"$dream" ingest fmnist "$fm/train-images-idx3-ubyte.gz" \
  --labels "$fm/train-labels-idx1-ubyte.gz"
"$dream" flush fmnist
echo
echo "== dream info fmnist"
"$dream" info fmnist
echo
"$dream" ls
echo
echo "== export and compare"
"$dream" export fmnist --force -o "$out/fmnist-export.csv"
"$dream" pack "$fm/train-images-idx3-ubyte.gz" --labels "$fm/train-labels-idx1-ubyte.gz" \
  --force -o "$out/fmnist.dream" -q
"$dream" unpack "$out/fmnist.dream" --force -o "$out/fmnist-unpack.csv"
cmp "$out/fmnist-export.csv" "$out/fmnist-unpack.csv"
echo "export identical to dream unpack: $(($(wc -l < "$out/fmnist-export.csv") - 1)) rows"
/usr/bin/python3 examples/idx2csv.py "$fm/train-images-idx3-ubyte.gz" \
  "$fm/train-labels-idx1-ubyte.gz" > "$out/fmnist-ref.csv"
cmp "$out/fmnist-export.csv" "$out/fmnist-ref.csv"
echo "export identical to an independent IDX reader (examples/idx2csv.py)"
echo
echo "== mini-batches: 2 batches of 4 samples in rows mode (first 8 columns)"
"$dream" batch fmnist --size 4 --mode rows --seed 1 --max-batches 2 | cut -d, -f1-8
echo
echo "== train on the compressed form: softmax on condensed samples (10% budget, the default"
echo "   mode) against a uniform sample of the same size and every row, all scored on the test set"
"$dream" ingest fmnist-test "$fm/t10k-images-idx3-ubyte.gz" \
  --labels "$fm/t10k-labels-idx1-ubyte.gz"
cold=$("$dream" train fmnist --model softmax --budget 0.1 --test fmnist-test --wait --json)
cached=$("$dream" train fmnist --model softmax --budget 0.1 --test fmnist-test --wait --json)
samp=$("$dream" train fmnist --model softmax --mode sample --budget 0.1 --test fmnist-test \
  --wait --json)
full=$("$dream" train fmnist --model softmax --mode full --test fmnist-test --wait --json)
/usr/bin/python3 - "$cold" "$cached" "$samp" "$full" <<'PY'
import json, sys
c, k, s, f = (json.loads(a) for a in sys.argv[1:5])
for name, j in (("condensed, cold", c), ("condensed, cached", k), ("sample 10%", s), ("full", f)):
    print(f"{name:18} rows {j['rows_used']:6}  prep {j['prep_seconds']:6.2f} s  "
          f"train {j['train_seconds']:6.2f} s  wall {j['wall_seconds']:6.2f} s  "
          f"peak {j['peak_train_bytes'] / 1e6:7.1f} MB  "
          f"test accuracy {j['metrics']['accuracy']:.4f}")
print(f"condensed / full: {f['wall_seconds'] / c['wall_seconds']:.1f}x faster end to end cold "
      f"(submitted to done, condensing included), {f['wall_seconds'] / k['wall_seconds']:.1f}x "
      f"with the condensed set cached, {f['train_seconds'] / k['train_seconds']:.1f}x in fitting "
      f"alone; {f['peak_train_bytes'] / k['peak_train_bytes']:.1f}x less training memory; "
      f"accuracy {k['metrics']['accuracy'] - f['metrics']['accuracy']:+.4f} against full, "
      f"{k['metrics']['accuracy'] - s['metrics']['accuracy']:+.4f} against the sample")
PY
"$dream" jobs
job=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["job"])' "$cached")
echo
echo "== predict the first 5 test images with job $job (labels: $("$dream" export fmnist-test \
  --rows 0:5 | tail -n +2 | awk -F, '{printf "%s ", $NF}'))"
"$dream" export fmnist-test --rows 0:5 --force -o "$out/five.csv"
"$dream" predict "$job" "$out/five.csv" | cut -d, -f1
echo
echo "== stop dreamd (SIGTERM)"
trap - EXIT
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "serve.sh: dreamd exited with status $rc" >&2
  tail -5 "$out/dreamd.log" >&2
  exit 1
fi
echo "dreamd drained and exited with status 0"
