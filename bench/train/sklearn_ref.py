#!/usr/bin/python3
"""scikit-learn reference for bench_train: same data files, same model and
epochs, prints one JSON line like bench_train. Only for benchmarks.

  sklearn_ref.py MODEL TRAIN.bin [TEST.bin] [--epochs E] [--batch B]
                 [--lr X] [--l2 X] [--hidden H] [--k K] [--max-iter N]
                 [--task reg|class] [--solver sgd|lbfgs]
"""
import argparse
import json
import struct
import time
import warnings

import numpy as np
from sklearn import cluster, linear_model, metrics, neural_network, preprocessing


def load(path):
    with open(path, "rb") as f:
        head = f.read(16)
        assert head[:4] == b"DTRB"
        n, d = struct.unpack("<QI", head[4:16])
        x = np.fromfile(f, dtype="<f4", count=n * d).reshape(n, d)
        y = np.fromfile(f, dtype="<f4", count=n)
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("train")
    ap.add_argument("test", nargs="?")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--l2", type=float, default=None)
    ap.add_argument("--hidden", default="128")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--task", default="class")
    ap.add_argument("--solver", default="lbfgs")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    x, y = load(a.train)
    xt, yt = load(a.test) if a.test else (x, y)
    # Standardisation is part of our fit; count it here too.
    t0 = time.perf_counter()
    c0 = time.process_time()
    sc = preprocessing.StandardScaler().fit(x)
    xs = sc.transform(x)
    hidden = tuple(int(h) for h in a.hidden.split(","))
    m = a.model
    if m == "linear":
        est = linear_model.LinearRegression()
    elif m == "ridge":
        est = linear_model.Ridge(alpha=1.0 if a.l2 is None else a.l2)
    elif m in ("logistic", "softmax"):
        if a.solver == "sgd":
            est = linear_model.SGDClassifier(loss="log_loss", max_iter=a.epochs, tol=None,
                                             alpha=1e-4 if a.l2 is None else a.l2, random_state=42)
        else:
            est = linear_model.LogisticRegression(max_iter=a.epochs, tol=0,
                                                  C=1e4 if a.l2 is None else 1 / (a.l2 * len(y)))
    elif m == "mlp":
        kw = dict(hidden_layer_sizes=hidden, solver="adam", batch_size=a.batch, max_iter=a.epochs,
                  tol=0, n_iter_no_change=a.epochs + 1, alpha=1e-4 if a.l2 is None else a.l2,
                  learning_rate_init=1e-3 if a.lr is None else a.lr, shuffle=True, random_state=42)
        est = (neural_network.MLPRegressor if a.task == "reg" else neural_network.MLPClassifier)(**kw)
    elif m == "kmeans":
        est = cluster.KMeans(n_clusters=a.k, init="k-means++", n_init=1, max_iter=a.max_iter,
                             tol=1e-4, algorithm="lloyd", random_state=42)
    else:
        raise SystemExit("unknown model")
    if m == "kmeans":
        est.fit(xs)
    else:
        est.fit(xs, y if (m in ("linear", "ridge") or a.task == "reg") else y.astype(int))
    t1 = time.perf_counter()
    c1 = time.process_time()
    out = {"engine": "sklearn", "model": m, "n": len(y), "d": x.shape[1],
           "train_seconds": round(t1 - t0, 4),
           "cpu_seconds": round(c1 - c0, 4)}
    xts = sc.transform(xt)
    if m == "kmeans":
        out["inertia"] = float(-est.score(xts))
        out["iterations"] = int(est.n_iter_)
    elif m in ("linear", "ridge") or a.task == "reg":
        p = est.predict(xts)
        out["rmse"] = float(np.sqrt(metrics.mean_squared_error(yt, p)))
        out["r2"] = float(metrics.r2_score(yt, p))
    else:
        p = est.predict_proba(xts)
        p = np.nan_to_num(p, nan=1.0 / p.shape[1])  # a diverged SGD gives NaN
        yi = yt.astype(int)
        out["accuracy"] = float(metrics.accuracy_score(yi, est.classes_[p.argmax(1)]))
        out["macro_f1"] = float(metrics.f1_score(yi, est.classes_[p.argmax(1)], average="macro"))
        out["logloss"] = float(metrics.log_loss(yi, p, labels=est.classes_))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
