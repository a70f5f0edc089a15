#!/usr/bin/python3
"""Write the train/ benchmark data sets as raw files for bench_train (C) and
sklearn_ref.py. Format: b"DTRB", u64 n, u32 d, then n*d float32 features
(row-major) and n float32 targets (class index or value), little-endian.

  fmnist_{train,test}.bin   Fashion-MNIST (Debian dataset-fashion-mnist)
  reg_{train,test}.bin      generated regression, N rows x 20 features
  blobs_train.bin           generated 8 Gaussian blobs, 1e6 x 10
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


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    n_reg = int(sys.argv[2]) if len(sys.argv) > 2 else 3_000_000
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
