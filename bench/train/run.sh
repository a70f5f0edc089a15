#!/bin/sh
# train/ against scikit-learn (full mode) and the training data modes.
#   bench/train/run.sh BUILD_DIR DATA_DIR [all|sklearn|modes]
# DATA_DIR is filled by make_data.py on the first run (about 700 MB).
#   sklearn  full mode, same data, model and epochs, one BLAS thread each (the
#            machine may be shared: compare cpu_seconds)
#   modes    bench_modes: full, condensed, sample and refresh at budgets 10%
#            and 1% (and 0.1% on the 3M-row table), one table per data set;
#            extra bench_modes options from $BENCH_MODES_ARGS (e.g. another
#            condensation to compare: "--cond fill=none,refine=-1" is the
#            whole-bit stage 1 alone), about 7 minutes on a loaded machine
set -eu
build=$(cd "${1:-build}" && pwd)
data=${2:-/tmp/dream-bench-train}
what=${3:-all}
here=$(cd "$(dirname "$0")" && pwd)
B="$build/bench/train/bench_train"
M="$build/bench/train/bench_modes"
S="/usr/bin/python3 $here/sklearn_ref.py"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$data"
[ -f "$data/reg_train.bin" ] || /usr/bin/python3 "$here/make_data.py" "$data"
[ -f "$data/iris_train.bin" ] || /usr/bin/python3 "$here/make_data.py" "$data" --tables
cd "$data"
run() {
        m=$1
        shift
        $B "$m" "$@" --threads 1 2>/dev/null
        $S "$m" "$@"
}
if [ "$what" = all ] || [ "$what" = sklearn ]; then
        run linear reg_train.bin reg_test.bin
        run ridge reg_train.bin reg_test.bin
        $B ridge reg_train.bin reg_test.bin --exact --threads 1 2>/dev/null
        # Softmax: L-BFGS (ours to its tolerance, sklearn's 100 iterations) on
        # the same objective (l2 1e-3 on the mean loss = sklearn C 1/60), then
        # our mini-batch Adam for 20 epochs.
        run softmax fmnist_train.bin fmnist_test.bin --epochs 100 --l2 0.001
        $B softmax fmnist_train.bin fmnist_test.bin --solver adam --epochs 20 --threads 1 2>/dev/null
        run mlp fmnist_train.bin fmnist_test.bin --epochs 20 --hidden 128
        run kmeans blobs_train.bin --k 8
        run kmeans fmnist_train.bin --k 10
fi
if [ "$what" = all ] || [ "$what" = modes ]; then
        # The default gd_condense_opts first (sample mode takes its size).
        extra="--cond default ${BENCH_MODES_ARGS:-}"
        echo "# bench_modes $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
        # Small tables: enough Adam steps for full mode to converge (the same
        # epochs for every mode), five seeds for the randomised modes.
        small="--epochs 300 --lr 0.01 --batch 32 --reps 5 --threads 1"
        for t in iris wine digits; do
                # shellcheck disable=SC2086
                $M softmax ${t}_train.bin ${t}_test.bin $small --name $t $extra
        done
        # shellcheck disable=SC2086
        $M logistic breast_cancer_train.bin breast_cancer_test.bin $small --name breast_cancer $extra
        for t in diabetes boston; do
                # shellcheck disable=SC2086
                $M ridge ${t}_train.bin ${t}_test.bin --reps 5 --threads 1 --name $t $extra
        done
        # shellcheck disable=SC2086
        $M linear diabetes_train.bin diabetes_test.bin --reps 5 --threads 1 --name diabetes $extra
        # shellcheck disable=SC2086
        $M ridge reg_train.bin reg_test.bin --budgets 0.1,0.01,0.001 --reps 3 --threads 1 \
                --name reg3m $extra
        # Images: also the entropy bit order (the better one there).
        # shellcheck disable=SC2086
        $M softmax fmnist_train.bin fmnist_test.bin --epochs 20 --reps 3 --threads 1 \
                --name fmnist $extra --cond order=entropy
        # shellcheck disable=SC2086
        $M mlp fmnist_train.bin fmnist_test.bin --epochs 20 --hidden 128 --reps 2 --threads 1 \
                --name fmnist $extra --cond order=entropy
        # k-means++ seeding decides between local optima: ten seeds, full too.
        # shellcheck disable=SC2086
        $M kmeans blobs_train.bin --k 8 --reps 10 --full-reps 10 --threads 1 --name blobs $extra
fi
