#!/usr/bin/python3
"""Write the train/ benchmark data sets as raw files for bench_train (C) and
sklearn_ref.py. Format: b"DTRB", u64 n, u32 d, then n*d float32 features
(row-major) and n float32 targets (class index or value), little-endian.

  fmnist_{train,test}.bin   Fashion-MNIST (Debian dataset-fashion-mnist)
  reg_{train,test}.bin      generated regression, N rows x 20 features
  blobs_train.bin           generated 8 Gaussian blobs, 1e6 x 10
  {iris,wine,breast_cancer,digits,diabetes,boston}_{train,test}.bin
                            scikit-learn's bundled tables (python3-sklearn),
                            split 80/20 by a seeded permutation (stratified
                            for the classification tables)

  make_data.py DIR [N_REG]      every file
  make_data.py DIR --tables     the scikit-learn tables only
"""
import gzip
import struct
import sys

import numpy as np

FMNIST = "/usr/share/datasets/fashion-mnist"


def write(path, x, y):
    x = np.ascontiguousarray(x, dtype="<f4")
    y = np.ascontiguousarray(y, dtype="<f4")
    with open(path, "wb") as f:
        f.write(b"DTRB" + struct.pack("<QI", x.shape[0], x.shape[1]))
        f.write(x.tobytes())
        f.write(y.tobytes())


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


SKDATA = "/usr/lib/python3/dist-packages/sklearn/datasets/data"


def split(x, y, classification, seed=7):
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    if classification:
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            rng.shuffle(idx)
            test[idx[: int(round(0.2 * len(idx)))]] = True
    else:
        idx = rng.permutation(len(y))
        test[idx[: int(round(0.2 * len(y)))]] = True
    return x[~test], y[~test], x[test], y[test]


def tables(out):
    from sklearn import datasets

    sets = {}
    for name, load in (("iris", datasets.load_iris), ("wine", datasets.load_wine),
                       ("breast_cancer", datasets.load_breast_cancer),
                       ("digits", datasets.load_digits)):
        b = load()
        sets[name] = (b.data, b.target, True)
    b = datasets.load_diabetes(scaled=False)
    sets["diabetes"] = (b.data, b.target, False)
    raw = np.loadtxt(f"{SKDATA}/boston_house_prices.csv", delimiter=",", skiprows=2)
    sets["boston"] = (raw[:, :-1], raw[:, -1], False)
    for name, (x, y, cls) in sets.items():
        xtr, ytr, xte, yte = split(np.asarray(x, dtype=np.float64), np.asarray(y), cls)
        write(f"{out}/{name}_train.bin", xtr, ytr)
        write(f"{out}/{name}_test.bin", xte, yte)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    if len(sys.argv) > 2 and sys.argv[2] == "--tables":
        tables(out)
        return
    n_reg = int(sys.argv[2]) if len(sys.argv) > 2 else 3_000_000
    tables(out)
    for part, name in (("train", "train"), ("test", "t10k")):
        x = idx(f"{FMNIST}/{name}-images-idx3-ubyte.gz").reshape(-1, 784)
        y = idx(f"{FMNIST}/{name}-labels-idx1-ubyte.gz")
        write(f"{out}/fmnist_{part}.bin", x.astype(np.float32), y)
    rng = np.random.default_rng(1)
    d = 20
    beta = rng.normal(size=d)
    for part, n in (("train", n_reg), ("test", 100_000)):
        x = rng.normal(size=(n, d)).astype(np.float32) * np.arange(1, d + 1) + 5
        y = x @ beta + np.sin(x[:, 0]) * 3 + rng.normal(size=n)
        write(f"{out}/reg_{part}.bin", x, y)
    centres = rng.normal(size=(8, 10)) * 5
    lab = rng.integers(0, 8, size=1_000_000)
    x = centres[lab] + rng.normal(size=(lab.size, 10))
    write(f"{out}/blobs_train.bin", x, lab)


if __name__ == "__main__":
    main()
