#!/bin/sh
# train/ in full mode against scikit-learn, same data, model and epochs, one
# BLAS thread each (the machine may be shared: compare cpu_seconds).
#   bench/train/run.sh BUILD_DIR DATA_DIR
# DATA_DIR is filled by make_data.py on the first run (about 700 MB).
set -eu
build=$(cd "${1:-build}" && pwd)
data=${2:-/tmp/dream-bench-train}
here=$(cd "$(dirname "$0")" && pwd)
B="$build/bench/train/bench_train"
S="/usr/bin/python3 $here/sklearn_ref.py"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$data"
[ -f "$data/reg_train.bin" ] || /usr/bin/python3 "$here/make_data.py" "$data"
cd "$data"
run() {
        m=$1
        shift
        $B "$m" "$@" --threads 1 2>/dev/null
        $S "$m" "$@"
}
run linear reg_train.bin reg_test.bin
run ridge reg_train.bin reg_test.bin
$B ridge reg_train.bin reg_test.bin --exact --threads 1 2>/dev/null
run softmax fmnist_train.bin fmnist_test.bin --epochs 20
run mlp fmnist_train.bin fmnist_test.bin --epochs 20 --hidden 128
run kmeans blobs_train.bin --k 8
run kmeans fmnist_train.bin --k 10
