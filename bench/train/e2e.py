#!/usr/bin/python3
"""End-to-end training benchmark through a running dreamd (started by e2e.sh).

For every dataset and model: `dream train DATASET --model M --test TEST --wait
--json` with default settings, in full mode, then at each budget the default
mode twice (cold: the condensed set is built; cached: it comes from the store),
`sample` at the same budget, and (classification) `sample` at the budget whose
training time matches the default mode's. Prints one markdown table per
dataset with ratios against full, the scikit-learn reference for full data
where cheap, and a summary of the targets.

  e2e.py --dream BUILD/client/dream --data DIR [options]   (DREAM_ADDR set)

Only the standard library, NumPy and scikit-learn (python3-sklearn).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

from make_data import FMNIST, SKDATA, idx, split  # this directory
TABLES = ("iris", "wine", "breast_cancer", "digits", "diabetes", "boston")
REG_ROWS = 3_000_000
REG_ROWS_QUICK = 300_000
REG_TEST_ROWS = 100_000

# Fields of the JSON result printed in the tables (a missing one prints '-').
FIELDS = ("mode", "budget", "rows_used", "metrics", "prep_seconds", "prep_cached",
          "train_seconds", "wall_seconds", "peak_train_bytes", "iterations", "converged",
          "evaluated_on", "holdout_rows", "fit_loss", "epochs")


# ---------------------------------------------------------------- datasets


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def write_csv(path, x, y, fmt_x, fmt_y):
    """CSV with a header f0..f{d-1},label; written to PATH.tmp, then renamed."""
    d = x.shape[1]
    fmt = fmt_x if isinstance(fmt_x, list) else [fmt_x] * d
    with open(path + ".tmp", "w") as f:
        f.write(",".join([f"f{j}" for j in range(d)] + ["label"]) + "\n")
        step = 200_000
        for a in range(0, len(y), step):
            block = np.column_stack([x[a:a + step], y[a:a + step]])
            np.savetxt(f, block, fmt=fmt + [fmt_y], delimiter=",")
    os.replace(path + ".tmp", path)


def read_csv(path):
    a = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return a[:, :-1], a[:, -1]


def csv_shape(path):
    """Stand-ins of the right shape for a CSV that need not be loaded:
    (an empty n x d array, None), n taken from the line count."""
    with open(path, "rb") as f:
        d = f.readline().count(b",")
        n = sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 24), b""))
    return np.empty((n, d), dtype=np.uint8), np.zeros(n, dtype=np.uint8)


def table_data(name):
    """(x, y, classification) of a scikit-learn bundled table."""
    from sklearn import datasets

    loaders = {"iris": datasets.load_iris, "wine": datasets.load_wine,
               "breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits}
    if name in loaders:
        b = loaders[name]()
        return b.data, b.target, True
    if name == "diabetes":
        b = datasets.load_diabetes(scaled=False)
        return b.data, b.target, False
    # California housing is not bundled (downloaded on demand): Boston
    # housing, which is, stands for the second regression table.
    raw = np.loadtxt(f"{SKDATA}/boston_house_prices.csv", delimiter=",", skiprows=2)
    return raw[:, :-1], raw[:, -1], False


def prepare_table(name, data):
    tr, te = f"{data}/{name}_train.csv", f"{data}/{name}_test.csv"
    x, y, cls = table_data(name)
    if not (os.path.exists(tr) and os.path.exists(te)):
        xtr, ytr, xte, yte = split(np.asarray(x, dtype=np.float64), np.asarray(y), cls)
        # %.10g keeps the bundled values exactly (at most 6 significant digits).
        fy = "%d" if cls else "%.10g"
        write_csv(tr, xtr, ytr, "%.10g", fy)
        write_csv(te, xte, yte, "%.10g", fy)
    return tr, te, cls


def reg_generate(n, rng):
    """A regression table with units and decimals of real measurements and a
    non-linear target (an MLP beats ridge on it). Returns (x, y, formats)."""
    z = rng.normal(size=(n, 6))  # latent factors: features are correlated
    e = rng.normal(size=(n, 20))
    cols, fmts = [], []

    def add(v, fmt):
        cols.append(v)
        fmts.append(fmt)

    add(np.clip(np.round(42 + 13 * (0.7 * z[:, 0] + 0.7 * e[:, 0])), 18, 90), "%d")  # age
    add(np.round(np.exp(10.4 + 0.45 * (0.6 * z[:, 0] + 0.8 * e[:, 1])), 2), "%.2f")  # income
    add(np.round(14 + 8 * (0.8 * z[:, 1] + 0.6 * e[:, 2]), 1), "%.1f")  # temperature
    add(np.round(np.clip(62 - 14 * (0.5 * z[:, 1] + 0.85 * e[:, 3]), 0, 100), 1), "%.1f")  # humidity
    add(np.round(np.exp(3.2 + 0.6 * (0.7 * z[:, 2] + 0.7 * e[:, 4])), 2), "%.2f")  # price
    add(rng.poisson(np.exp(1.1 + 0.3 * z[:, 2])).astype(float), "%d")  # quantity
    add(np.round(1 / (1 + np.exp(-(0.9 * z[:, 3] + 0.5 * e[:, 5]))), 3), "%.3f")  # ratio
    add(np.round(40.4 + 1.8 * (0.5 * z[:, 4] + 0.85 * e[:, 6]), 4), "%.4f")  # latitude
    add(np.round(-3.7 + 2.2 * (0.5 * z[:, 4] + 0.85 * e[:, 7]), 4), "%.4f")  # longitude
    add(rng.integers(0, 24, size=n).astype(float), "%d")  # hour
    add(np.round(rng.gamma(2.0, 4.0 * np.exp(0.2 * z[:, 5])), 2), "%.2f")  # distance km
    add(np.round(np.clip(6 + 1.8 * (0.6 * z[:, 3] + 0.8 * e[:, 8]), 0, 10), 1), "%.1f")  # score
    add(np.round(1013 + 9 * (0.4 * z[:, 1] + 0.9 * e[:, 9]), 1), "%.1f")  # pressure
    add(np.round(0.05 + 0.02 * e[:, 10], 3), "%.3f")  # rate
    add(rng.negative_binomial(3, 0.3, size=n).astype(float), "%d")  # count
    add(np.round(72 + 12 * (0.6 * z[:, 5] + 0.8 * e[:, 11]), 1), "%.1f")  # weight kg
    add(np.round(170 + 9 * (0.6 * z[:, 5] + 0.8 * e[:, 12]), 1), "%.1f")  # height cm
    add(np.round(np.abs(50 + 18 * e[:, 13]), 2), "%.2f")  # speed
    add(np.round(0.05 * rng.integers(0, 7, size=n), 2), "%.2f")  # discount
    add(np.round(230 + 2.5 * e[:, 14], 2), "%.2f")  # voltage
    x = np.column_stack(cols)
    s = (x - x.mean(0)) / x.std(0)  # the target's formula in standardised units
    hour = x[:, 9]
    # Smooth non-linear terms and two interactions, plus noise as large as
    # the non-linear part: an MLP beats ridge clearly, and a few tens of
    # thousands of rows are enough to get near the noise floor.
    y = (2.0 * np.sin(1.5 * s[:, 2]) + 1.2 * s[:, 0] * s[:, 4] + 2.0 * np.maximum(s[:, 10] - 0.5, 0)
         + 1.0 * (s[:, 11] ** 2 - 1) + 1.5 * np.tanh(2.0 * s[:, 6])
         + 1.5 * np.cos(2 * np.pi * hour / 24) + 1.0 * s[:, 1] - 0.8 * s[:, 3] + 0.6 * s[:, 5]
         + 0.4 * s[:, 12] - 0.3 * s[:, 17] + 0.5 * s[:, 15] + 0.3 * s[:, 19]
         + 1.5 * rng.normal(size=n))
    return x, np.round(50 + 10 * y, 3), fmts


def prepare_reg(data, n):
    tr, te = f"{data}/reg{n}_train.csv", f"{data}/reg{n}_test.csv"
    if not (os.path.exists(tr) and os.path.exists(te)):
        log(f"# generating the regression table ({n:,} + {REG_TEST_ROWS:,} rows) in {data}")
        rng = np.random.default_rng(20261202)
        x, y, fmts = reg_generate(n + REG_TEST_ROWS, rng)
        write_csv(tr, x[:n], y[:n], fmts, "%.3f")
        write_csv(te, x[n:], y[n:], fmts, "%.3f")
    return tr, te


def fmnist_arrays():
    out = []
    for name in ("train", "t10k"):
        x = idx(f"{FMNIST}/{name}-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32)
        y = idx(f"{FMNIST}/{name}-labels-idx1-ubyte.gz").astype(np.int64)
        out += [x, y]
    return out


# ------------------------------------------------------------------ dream


class Dream:
    def __init__(self, exe):
        self.exe = exe

    def run(self, args):
        t0 = time.perf_counter()
        p = subprocess.run([self.exe] + args, capture_output=True, text=True)
        return p, time.perf_counter() - t0

    def ingest(self, name, args):
        p, s = self.run(["ingest", name] + args + ["-q"])
        if p.returncode != 0:
            raise SystemExit(f"e2e: dream ingest {name} failed ({p.returncode}): {p.stderr.strip()}")
        p2, s2 = self.run(["flush", name])
        if p2.returncode != 0:
            raise SystemExit(f"e2e: dream flush {name} failed: {p2.stderr.strip()}")
        return s + s2

    def train(self, dataset, model, test, mode=None, budget=None):
        args = ["train", dataset, "--model", model, "--test", test, "--wait", "--json"]
        if mode:
            args += ["--mode", mode]
        if budget is not None:
            args += ["--budget", repr(budget)]
        p, s = self.run(args)
        try:
            r = json.loads(p.stdout)
        except ValueError:
            r = {"state": "failed", "error": (p.stderr.strip() or p.stdout.strip()
                                              or f"exit {p.returncode}")}
        r["client_seconds"] = s
        r["exit"] = p.returncode
        r["argv"] = " ".join(args)
        return r


# ------------------------------------------------------------ the runs


def ulp_budget(b, k):
    """b moved up by k units in the last place: the same rows (the budget is
    floored to a row count) under a cache key of its own, so that the cold run
    of each model builds its condensed set."""
    for _ in range(k):
        b = math.nextafter(b, 1.0)
    return b


def run_model(dream, ds, model, k, budgets, equal_time, out):
    """k: index of the model within the dataset (its cold runs get a budget
    k ulps up)."""
    recs = []

    def go(run, mode, budget, nominal):
        r = dream.train(ds["train"], model, ds["test"], mode, budget)
        r.update(e2e_dataset=ds["name"], e2e_model=model, e2e_run=run, e2e_budget=nominal)
        state = r.get("state")
        log(f"  {ds['name']:14} {model:8} {run:16} {fmt_budget(nominal):5} {state:6} "
            f"{metric_text(r, ds['cls'])}  {r['client_seconds']:.2f} s")
        recs.append(r)
        out.write(json.dumps(r) + "\n")
        out.flush()
        return r

    if k == 0:
        # The first job to read every row of the dataset (1.2x to 4x slower
        # than the next one in trial runs): shown apart, the ratios use the
        # next full run.
        go("full, first read", "full", None, None)
    go("full", "full", None, None)
    for b in budgets:
        cb = ulp_budget(b, k)
        cold = go("default, cold", None, cb, b)
        go("default, cached", None, cb, b)
        samp = go("sample", "sample", b, b)
        if equal_time and model not in ("ridge", "linear") and ok(cold) and ok(samp):
            tc, ts = num(cold, "train_seconds"), num(samp, "train_seconds")
            rows = cold.get("rows_used") or 0
            if tc and ts and rows and tc >= MIN_SECONDS and tc > 1.2 * ts:
                # A row count: as many rows as the default mode's training time buys.
                n = int(round(rows * tc / ts))
                go("sample, equal time", "sample", n, b)
    return recs


def ok(r):
    return r.get("state") == "done"


def num(r, key):
    v = r.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def metric(r, cls):
    m = r.get("metrics") or {}
    return m.get("accuracy" if cls else "rmse")


# ------------------------------------------------------------- printing


def fmt_budget(b):
    if b is None:
        return "-"
    if isinstance(b, int) and b >= 1:
        return f"{b}"
    return f"{b * 100:g}%"


def fmt_num(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.1f}"
    return f"{v:.{digits}f}"


def metric_text(r, cls):
    if not ok(r):
        return "failed: " + str(r.get("error") or r.get("state"))[:60]
    v = metric(r, cls)
    return "-" if v is None else (f"acc {v:.4f}" if cls else f"RMSE {v:.4f}")


def wall(r):
    """Submit to done: the result's wall_seconds, else the job's elapsed
    seconds, else the client's own measure."""
    for k in ("wall_seconds", "elapsed_seconds", "client_seconds"):
        v = num(r, k)
        if v is not None:
            return v
    return None


MIN_SECONDS = 0.005  # speed-ups of shorter times are timer noise: not shown


def ratio(a, b, seconds=False):
    if not a or not b or (seconds and min(a, b) < MIN_SECONDS):
        return "-"
    return f"{a / b:.1f}x"


def delta(v, full, cls):
    if v is None or full is None:
        return "-"
    if cls:
        return f"{(v - full) * 100:+.2f} pt"
    return f"{(v / full - 1) * 100:+.2f}%"


def evaluated_on(r):
    v = r.get("evaluated_on")
    if v is None:
        return "-"
    if isinstance(v, dict):
        return " ".join(f"{k}={x}" for k, x in v.items())
    return str(v)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def print_table(ds, recs, sk):
    cls = ds["cls"]
    mname = "accuracy" if cls else "RMSE"
    print(f"\n### {ds['name']} ({ds['rows']:,} training rows x {ds['d']} features, test "
          f"{ds['test_rows']:,}; ingest {ds['ingest_seconds']:.1f} s; load average {ds['load']} "
          f"before its jobs; metric: test {mname})\n")
    print("| model | run | mode | budget | rows | " + mname + " | prep s | cached | train s "
          "| wall s | peak bytes | iters | conv | vs full: metric | wall speed-up "
          "| fit speed-up | memory |")
    print("|" + "---|" * 17)
    for model in ds["models"]:
        rs = [r for r in recs if r["e2e_model"] == model]
        full = next((r for r in rs if r["e2e_run"] == "full" and ok(r)), None)
        fm = metric(full, cls) if full else None
        for r in rs:
            if not ok(r):
                print(f"| {model} | {r['e2e_run']} | {r.get('mode') or '-'} | "
                      f"{fmt_budget(r['e2e_budget'])} | - | {metric_text(r, cls)} |"
                      + " - |" * 11)
                continue
            is_full = r["e2e_run"].startswith("full")
            v = metric(r, cls)
            rows = r.get("rows_used")
            print(f"| {model} | {r['e2e_run']} | {r.get('mode', '-')} | {fmt_budget(r['e2e_budget'])} "
                  f"| {fmt_num(rows)} | {fmt_num(v, 4)} | {fmt_num(num(r, 'prep_seconds'))} "
                  f"| {fmt_num(r.get('prep_cached'))} | {fmt_num(num(r, 'train_seconds'))} "
                  f"| {fmt_num(wall(r), 2)} | {fmt_num(r.get('peak_train_bytes'))} "
                  f"| {fmt_num(r.get('iterations'))} | {fmt_num(r.get('converged'))} "
                  f"| {'-' if is_full else delta(v, fm, cls)} "
                  f"| {'-' if is_full or not full else ratio(wall(full), wall(r), True)} "
                  f"| {'-' if is_full or not full else ratio(num(full, 'train_seconds'), num(r, 'train_seconds'), True)} "
                  f"| {'-' if is_full or not full else ratio(full.get('peak_train_bytes'), r.get('peak_train_bytes'))} |")
        for s in sk:
            if s["model"] == model:
                print(f"| {model} | scikit-learn {s['estimator']} | full | - | {s['rows']:,} "
                      f"| {fmt_num(s['metric'], 4)} | - | - | {s['fit_seconds']:.3f} | - | - "
                      f"| {fmt_num(s.get('iterations'))} | - "
                      f"| {delta(metric(full, cls) if full else None, s['metric'], cls)} (dream full vs it) "
                      f"| - | {ratio(s['fit_seconds'], num(full, 'train_seconds') if full else None, True)} (dream full) | - |")
    ev = sorted({evaluated_on(r) for r in recs if ok(r)})
    ho = sorted({fmt_num(r.get("holdout_rows")) for r in recs if ok(r)})
    print(f"\nevaluated_on: {', '.join(ev)}; holdout rows: {', '.join(ho)}; wall s = wall_seconds, "
          "else the job's elapsed_seconds; speed-ups of times under 5 ms not shown; budget of the "
          "cold/cached runs: the nominal one (see README)")
    warm = [r for r in recs if r["e2e_run"] == "default, cold" and r.get("prep_cached") is True]
    if warm:
        print(f"\nWARNING: {len(warm)} cold runs came from the cache ({', '.join(sorted({r['e2e_model'] for r in warm}))}): "
              "their cold figures are not cold")


def find(recs, ds, model, run, b):
    return next((r for r in recs if r["e2e_dataset"] == ds and r["e2e_model"] == model
                 and r["e2e_run"] == run and r["e2e_budget"] == b), None)


def beats_sample(dsets, recs, b, equal_time):
    """The default mode (cold run) against sample at budget b, gradient
    models only: (wins, comparisons, notes). equal_time: against the
    equal-time sample run, or sample at equal rows where that trained at least
    as long. A failed default loses; a failed sample alone is a win."""
    wins, n, notes = 0, 0, []
    for ds in dsets:
        for model in ds["models"]:
            if model in ("ridge", "linear"):
                continue
            d = find(recs, ds["name"], model, "default, cold", b)
            s = find(recs, ds["name"], model, "sample, equal time" if equal_time else "sample", b)
            if equal_time and s is None:
                s = find(recs, ds["name"], model, "sample", b)
                if d and s and (num(s, "train_seconds") or 0) < (num(d, "train_seconds") or 0):
                    continue
            if not (d and s) or not (ok(d) or ok(s)):
                continue
            n += 1
            if not ok(d):
                notes.append(f"lost {ds['name']} {model}: the default mode failed")
                continue
            if not ok(s):
                wins += 1
                notes.append(f"{ds['name']} {model}: sample failed")
                continue
            dv, sv = metric(d, ds["cls"]), metric(s, ds["cls"])
            if (dv >= sv) if ds["cls"] else (dv <= sv):
                wins += 1
            else:
                notes.append(f"lost {ds['name']} {model} {dv:.4f} vs {sv:.4f}"
                             + (f" ({s.get('rows_used')} rows)" if equal_time else ""))
    return wins, n, notes


def targets(dsets, recs):
    """Rows: (target, pass/fail/-, figure)."""
    out = []
    res = lambda c: "-" if c is None else ("pass" if c else "FAIL")  # noqa: E731

    # 1. the default mode beats sample at equal rows; ties or beats it at equal time.
    for b in sorted({r["e2e_budget"] for r in recs if r["e2e_budget"] is not None}):
        for equal_time, what in ((False, "beats sample, equal rows"),
                                 (True, "ties or beats sample at equal training time")):
            wins, n, notes = beats_sample(dsets, recs, b, equal_time)
            if n:
                out.append((f"default {what}, {fmt_budget(b)} (softmax/logistic, mlp)",
                            res(wins == n), f"{wins} of {n}" + "".join(f"; {x}" for x in notes)))

    # 2.-4. Fashion-MNIST.
    names = {ds["name"] for ds in dsets}
    if "fmnist" in names:
        def acc(model, run, b):
            r = find(recs, "fmnist", model, run, b)
            return metric(r, True) if r and ok(r) else None

        for model, tol in (("softmax", 1.0), ("mlp", 1.5)):
            f, d = acc(model, "full", None), acc(model, "default, cold", 0.1)
            out.append((f"fmnist 10% {model} within {tol} pt of full",
                        res(None if f is None or d is None else (f - d) * 100 <= tol),
                        "-" if f is None or d is None else f"{d:.4f} vs full {f:.4f} ({(d - f) * 100:+.2f} pt)"))
        d = acc("softmax", "default, cold", 0.01)
        out.append(("fmnist 1% softmax >= 0.80", res(None if d is None else d >= 0.80),
                    "-" if d is None else f"{d:.4f}"))
        for model in ("softmax", "mlp"):
            full = find(recs, "fmnist", model, "full", None)
            for run, need in (("default, cold", 5), ("default, cached", 20)):
                r = find(recs, "fmnist", model, run, 0.1)
                if full and r and ok(full) and ok(r):
                    x = wall(full) / wall(r)
                    out.append((f"fmnist 10% {model} end to end, {run.split(', ')[1]}: >= {need}x faster than full",
                                res(x >= need), f"{x:.1f}x ({wall(r):.2f} s vs {wall(full):.2f} s)"))
            r = find(recs, "fmnist", model, "default, cached", 0.1)
            if full and r and ok(full) and ok(r) and r.get("peak_train_bytes"):
                x = full["peak_train_bytes"] / r["peak_train_bytes"]
                out.append((f"fmnist 10% {model} peak_train_bytes >= 10x lower", res(x >= 10),
                            f"{x:.1f}x ({r['peak_train_bytes']:,} vs {full['peak_train_bytes']:,})"))
        r = find(recs, "fmnist", "softmax", "default, cold", 0.1)
        if r and ok(r):
            p = num(r, "prep_seconds")
            cached = r.get("prep_cached")
            out.append(("condensing fmnist 10% cold < 1 s (prep_seconds of the cold run)",
                        res(p < 1.0 and cached is not True),
                        f"{p:.3f} s" + ("" if cached is None else f", prep_cached {cached}")))

    # 5. the generated regression table.
    for ds in dsets:
        if ds["name"].startswith("reg"):
            f = find(recs, ds["name"], "mlp", "full", None)
            d = find(recs, ds["name"], "mlp", "default, cold", 0.01)
            if f and d and ok(f) and ok(d):
                x = metric(d, False) / metric(f, False) - 1
                out.append((f"{ds['name']} mlp 1% RMSE within 1% of full", res(x <= 0.01),
                            f"{metric(d, False):.4f} vs {metric(f, False):.4f} ({x * 100:+.2f}%)"))
            else:
                out.append((f"{ds['name']} mlp 1% RMSE within 1% of full", "-", "not run or failed"))
    return out


# ---------------------------------------------------------- scikit-learn


def sklearn_ref(ds, xtr, ytr, xte, yte, slow):
    """Full-data references on standardised features (fit time includes the
    scaling). Cheap ones always; the slow ones (Fashion-MNIST, the MLP on the
    generated table) only with `slow`."""
    import warnings

    from sklearn import linear_model, metrics, neural_network, preprocessing

    warnings.simplefilter("ignore")
    big = len(ytr) > 20_000
    out = []
    for model in ds["models"]:
        if big and not slow and not (model == "ridge"):
            continue
        if model in ("softmax", "logistic"):
            est, name = linear_model.LogisticRegression(max_iter=1000), "LogisticRegression"
        elif model == "ridge":
            est, name = linear_model.Ridge(alpha=1.0), "Ridge(alpha=1)"
        else:
            # On the large sets, early stopping on sklearn's own 10% validation
            # share bounds the time (200 epochs of 3M rows take about an hour).
            kw = dict(hidden_layer_sizes=(128,), random_state=42, early_stopping=big)
            mlp = neural_network.MLPClassifier if ds["cls"] else neural_network.MLPRegressor
            est = mlp(**kw)
            name = f"{mlp.__name__}(128{', early_stopping' if big else ''})"
        t0 = time.perf_counter()
        sc = preprocessing.StandardScaler().fit(xtr)
        est.fit(sc.transform(xtr), ytr)
        t = time.perf_counter() - t0
        p = est.predict(sc.transform(xte))
        if ds["cls"]:
            v = float(metrics.accuracy_score(yte, p))
        else:
            v = float(np.sqrt(metrics.mean_squared_error(yte, p)))
        it = getattr(est, "n_iter_", None)
        it = int(np.max(it)) if it is not None else None
        out.append({"model": model, "estimator": name, "rows": len(ytr), "metric": v,
                    "fit_seconds": t, "iterations": it})
        log(f"  {ds['name']:14} {model:8} scikit-learn {name}: {v:.4f} in {t:.2f} s")
    return out


# ----------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dream", required=True, help="the dream client")
    ap.add_argument("--data", required=True, help="directory for the CSV files (kept)")
    ap.add_argument("--only", default="all",
                    help="comma-separated: fmnist, tables, reg, or a table name "
                         f"({', '.join(TABLES)}); default all")
    ap.add_argument("--quick", action="store_true",
                    help=f"the generated table at {REG_ROWS_QUICK:,} rows instead of "
                         f"{REG_ROWS:,}, and no equal-time sample runs")
    ap.add_argument("--budgets", default="0.01,0.1", help="fractions (default 0.01,0.1)")
    ap.add_argument("--reg-rows", type=int, default=None, help="rows of the generated table")
    ap.add_argument("--no-sklearn", action="store_true", help="no scikit-learn reference")
    ap.add_argument("--sklearn-slow", action="store_true",
                    help="also the slow references: Fashion-MNIST LogisticRegression and "
                         "MLPClassifier, MLPRegressor on the generated table")
    ap.add_argument("--json-out", default=None,
                    help="every result as one JSON line (default DATA/e2e-results.jsonl)")
    a = ap.parse_args()
    budgets = [float(b) for b in a.budgets.split(",")]
    only = set(a.only.split(","))
    want = lambda n: "all" in only or n in only or (n in TABLES and "tables" in only)  # noqa: E731
    reg_rows = a.reg_rows or (REG_ROWS_QUICK if a.quick else REG_ROWS)
    os.makedirs(a.data, exist_ok=True)
    dream = Dream(a.dream)
    out = open(a.json_out or f"{a.data}/e2e-results.jsonl", "w")
    t_start = time.perf_counter()

    dsets, recs, sks = [], [], {}
    plan = []
    if want("fmnist"):
        plan.append("fmnist")
    plan += [t for t in TABLES if want(t)]
    if want("reg"):
        plan.append("reg")
    for name in plan:
        if name == "fmnist":
            xtr, ytr, xte, yte = fmnist_arrays()
            ds = {"name": "fmnist", "cls": True, "models": ("softmax", "mlp")}
            s = 0.0
            for part, idxname in (("train", "train"), ("test", "t10k")):
                s += dream.ingest(f"fmnist-{part}", [
                    f"{FMNIST}/{idxname}-images-idx3-ubyte.gz", "--labels",
                    f"{FMNIST}/{idxname}-labels-idx1-ubyte.gz"])
        else:
            if name == "reg":
                tr, te = prepare_reg(a.data, reg_rows)
                cls, label = False, f"reg{reg_rows // 1000}k" if reg_rows < 1_000_000 else \
                    f"reg{reg_rows // 1_000_000}m"
            else:
                tr, te, cls = prepare_table(name, a.data)
                label = name
            if a.no_sklearn:  # only the shapes
                xtr, ytr = csv_shape(tr)
                xte, yte = csv_shape(te)
            else:
                xtr, ytr = read_csv(tr)
                xte, yte = read_csv(te)
            task = "classification" if cls else "regression"
            models = (("logistic" if name == "breast_cancer" else "softmax") if cls else "ridge", "mlp")
            ds = {"name": label, "cls": cls, "models": models}
            s = 0.0
            for part, path in (("train", tr), ("test", te)):
                s += dream.ingest(f"{label}-{part}", [path, "--task", task])
        ds.update(train=f"{ds['name']}-train", test=f"{ds['name']}-test", rows=len(ytr),
                  d=xtr.shape[1], test_rows=len(yte), ingest_seconds=s, load=loadavg())
        log(f"# {ds['name']}: ingested {len(ytr):,} + {len(yte):,} rows in {s:.1f} s")
        dsets.append(ds)
        for k, model in enumerate(ds["models"]):
            recs += run_model(dream, ds, model, k, budgets, not a.quick, out)
        sks[ds["name"]] = [] if a.no_sklearn else sklearn_ref(ds, xtr, ytr, xte, yte, a.sklearn_slow)
        del xtr, ytr, xte, yte

    print("\n## End-to-end training through dreamd (bench/train/e2e.sh)")
    for ds in dsets:
        print_table(ds, [r for r in recs if r["e2e_dataset"] == ds["name"]], sks[ds["name"]])
    print("\n### Targets\n")
    print("| target | result | figure |")
    print("|---|---|---|")
    for t, r, f in targets(dsets, recs):
        print(f"| {t} | {r} | {f} |")
    n_fail = sum(1 for r in recs if not ok(r))
    print(f"\n{len(recs)} jobs ({n_fail} failed) in {time.perf_counter() - t_start:.0f} s; "
          f"every result: {out.name}")


if __name__ == "__main__":
    main()
