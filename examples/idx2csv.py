#!/usr/bin/python3
"""Independent reference for the demo: IDX images (+ labels) to the CSV that
`dream unpack` must produce (header px0..pxN-1[,label], integers)."""
import gzip
import struct
import sys

import numpy as np


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"idx2csv: {path}: only unsigned-byte IDX is supported here")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims[0], -1)


def main():
    images = load(sys.argv[1])
    labels = load(sys.argv[2]) if len(sys.argv) > 2 else None
    out = sys.stdout
    header = ["px%d" % i for i in range(images.shape[1])]
    if labels is not None:
        header.append("label")
        images = np.hstack([images, labels.reshape(-1, 1)])
    out.write(",".join(header) + "\n")
    np.savetxt(out, images, fmt="%d", delimiter=",")


if __name__ == "__main__":
    main()
