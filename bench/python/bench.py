#!/usr/bin/python3
"""Python client figures: batches into NumPy (samples/s, MB/s) for 9-column
rows and 784-column images, beside an in-memory NumPy array read by a torch
DataLoader and a CSV read by pandas; ingest from NumPy (rows/s) beside
`dream ingest` of the same CSV. Prints figures; never a pass/fail test.

    PYTHONPATH=build-release/client/python /usr/bin/python3 bench/python/bench.py \\
        --dreamd build-release/server/dreamd --cli build-release/client/dream

Starts its own dreamd on a loopback port with a temporary data directory.
"""

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time

import numpy as np

import dream


def start(exe, d):
    p = subprocess.Popen([exe, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(d, "data")],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().strip()
    return p, line[len("listening on "):]


def stream(c, name, size, reps):
    """Best of reps epochs of batches into NumPy: (samples/s, MB/s of features)."""
    best = None
    for e in range(reps):
        n = nbytes = 0
        t0 = time.perf_counter()
        for X, y, w in c.batches(name, size, mode="rows", epoch=e):
            n += len(X)
            nbytes += X.nbytes
        dt = time.perf_counter() - t0
        if best is None or dt < best[0]:
            best = (dt, n, nbytes)
    dt, n, nbytes = best
    return n / dt, nbytes / dt / 1e6


def torch_loader(X, y, size):
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    ds = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    t0 = time.perf_counter()
    n = 0
    for xb, yb in DataLoader(ds, batch_size=size, shuffle=True):
        n += len(xb)
    dt = time.perf_counter() - t0
    return n / dt, X.nbytes / dt / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dreamd", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--rows", type=int, default=2_000_000, help="9-column rows")
    ap.add_argument("--images", type=int, default=60_000, help="784-column rows")
    ap.add_argument("--batch", type=int, default=65536)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="dream-pybench-")
    p, addr = start(a.dreamd, tmp)
    try:
        c = dream.Client(addr, timeout=600)
        rng = np.random.default_rng(0)
        # 9 columns: 8 float features + an integer label.
        X = np.round(rng.normal(0, 1, (a.rows, 8)), 3)
        y = rng.integers(0, 10, a.rows)
        csv = os.path.join(tmp, "rows.csv")
        import pandas as pd
        df = pd.DataFrame(X, columns=[f"x{j}" for j in range(8)])
        df["label"] = y
        df.to_csv(csv, index=False)
        os.sync()  # the CSV's writeback is no part of the first ingest's time
        t0 = time.perf_counter()
        r = c.ingest("rows", X, y)
        t_py = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([a.cli, "ingest", "-q", "-s", addr, "rows-cli", csv], check=True)
        t_cli = time.perf_counter() - t0
        print(f"ingest {a.rows} x 9: Python from NumPy {r.rows / t_py:,.0f} rows/s "
              f"({t_py:.2f} s); dream ingest of the CSV {a.rows / t_cli:,.0f} rows/s "
              f"({t_cli:.2f} s)")
        c.flush("rows")
        sps, mbs = stream(c, "rows", a.batch, 3)
        print(f"batches 9-column rows into NumPy: {sps:,.0f} samples/s, {mbs:,.1f} MB/s "
              f"of float32 features (batch {a.batch})")
        Xf = np.ascontiguousarray(X, dtype=np.float32)
        sps, mbs = torch_loader(Xf, y.astype(np.float32), a.batch)
        print(f"  beside: torch DataLoader over an in-memory array: {sps:,.0f} samples/s, "
              f"{mbs:,.1f} MB/s")
        t0 = time.perf_counter()
        pd.read_csv(csv)
        dt = time.perf_counter() - t0
        print(f"  beside: pandas read_csv of the same rows: {a.rows / dt:,.0f} samples/s, "
              f"{os.path.getsize(csv) / dt / 1e6:,.1f} MB/s of CSV")
        # 784-column images (pixels 0..255) and a label.
        I = rng.integers(0, 256, (a.images, 784), dtype=np.int64)
        yl = rng.integers(0, 10, a.images)
        t0 = time.perf_counter()
        c.ingest("img", I, yl)
        dt = time.perf_counter() - t0
        print(f"ingest {a.images} x 785 from NumPy: {a.images / dt:,.0f} rows/s "
              f"({a.images * 785 * 8 / dt / 1e6:,.0f} MB/s of wire values)")
        c.flush("img")
        sps, mbs = stream(c, "img", 1024, 3)
        print(f"batches 784-column images into NumPy: {sps:,.0f} samples/s, {mbs:,.1f} MB/s "
              "of float32 features (batch 1024)")
        sps, mbs = torch_loader(I.astype(np.float32), yl.astype(np.float32), 1024)
        print(f"  beside: torch DataLoader over an in-memory array: {sps:,.0f} samples/s, "
              f"{mbs:,.1f} MB/s")
        c.close()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
