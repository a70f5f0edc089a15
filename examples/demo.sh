#!/usr/bin/env bash
# The main job: pack a real dataset, inspect it, unpack it and check it is
# identical, print condensed samples. Usage: examples/demo.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-release}
dream="$build/client/dream"
fm=/usr/share/datasets/fashion-mnist
out=run/demo
mkdir -p "$out"

echo "== Fashion-MNIST training set: 60,000 images of 28x28 pixels, with labels"
"$dream" pack "$fm/train-images-idx3-ubyte.gz" --labels "$fm/train-labels-idx1-ubyte.gz" \
  --force -o "$out/fmnist.dream"
"$dream" inspect "$out/fmnist.dream" | sed '/^px[0-9]/d'
echo
echo "== unpack and compare with an independent IDX reader"
"$dream" unpack "$out/fmnist.dream" --force -o "$out/fmnist.csv"
/usr/bin/python3 examples/idx2csv.py "$fm/train-images-idx3-ubyte.gz" \
  "$fm/train-labels-idx1-ubyte.gz" > "$out/fmnist-ref.csv"
cmp "$out/fmnist.csv" "$out/fmnist-ref.csv"
echo "identical: $(($(wc -l < "$out/fmnist.csv") - 1)) rows x 785 columns"
echo
echo "== condensed samples, 1% budget, first 3 rows (first 12 columns)"
"$dream" condense "$out/fmnist.dream" --budget 0.01 --force -o "$out/fmnist-condensed.csv"
head -4 "$out/fmnist-condensed.csv" | cut -d, -f1-12
echo "... $(($(wc -l < "$out/fmnist-condensed.csv") - 1)) condensed samples, weights sum to" \
  "$(awk -F, 'NR > 1 { s += $NF } END { print s }' "$out/fmnist-condensed.csv")"
echo
echo "== a regression table: scikit-learn's Boston housing (506 rows, 14 columns)"
./bench/data/prepare.sh "$out" >/dev/null
"$dream" pack "$out/boston.csv" --label MEDV --force -o "$out/boston.dream"
"$dream" inspect "$out/boston.dream" | head -12
"$dream" unpack "$out/boston.dream" --force -o "$out/boston-back.csv"
/usr/bin/python3 -c 'import sys, numpy as np
a = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
b = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1)
assert a.shape == b.shape and np.array_equal(a, b), "values differ"
print("identical values:", a.shape[0], "rows x", a.shape[1], "columns")' "$out/boston.csv" "$out/boston-back.csv"
"$dream" condense "$out/boston.dream" --budget 0.05 | head -4
