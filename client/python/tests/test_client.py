"""The Python client against a real dreamd: round trips, errors, tokens and
roles, shards, training, prediction against the CLI."""

import os
import subprocess

import numpy as np
import pandas as pd
import pytest

import dream
from dream import dream_pb2 as pb
from dream.errors import _BY_STATUS


def blobs(n, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(0, 3, (classes, d))
    X = centres[y] + rng.normal(0, 1, (n, d))
    return X, y


# ---- round trips ----------------------------------------------------------------------------

def test_numpy_round_trip(client):
    X, y = blobs(3001)
    r = client.ingest("np", X, y, rows_per_request=500, window=4)
    assert (r.created, r.rows, r.requests) == (True, 3001, 7)
    info = client.info("np")
    assert info.target == "label" and info.task == "classification"
    assert [c.kind for c in info.schema] == ["f64"] * 6 + ["int"]
    assert info.feature_names == [f"x{j}" for j in range(6)]
    X2, y2 = client.export("np")
    assert X2.dtype == np.float64 and y2.dtype == np.int64
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    X3, y3 = client.export("np", rows=range(100, 200))
    assert np.array_equal(X3, X[100:200]) and np.array_equal(y3, y[100:200])
    # Appending keeps the order; the existing schema is kept.
    r = client.ingest("np", X[:10], y[:10])
    assert not r.created and client.info("np").rows == 3011
    assert "np" in [d.name for d in client.datasets()]


def test_pandas_round_trip(client):
    df = pd.DataFrame({"a": np.arange(50, dtype=np.int32), "b": np.linspace(-1, 1, 50),
                       "flag": np.arange(50) % 2 == 0, "price": np.linspace(0, 1e6, 50)})
    client.ingest("pd", df, label="price")
    info = client.info("pd")
    assert info.target == "price" and info.task == "regression"
    assert [c.kind for c in info.schema] == ["int", "f64", "int", "f64"]
    out = client.export("pd", dataframe=True)
    assert list(out.columns) == ["a", "b", "flag", "price"]
    assert np.array_equal(out["a"], df["a"]) and np.array_equal(out["b"], df["b"])
    assert np.array_equal(out["flag"], df["flag"].astype(int))
    X, y = client.export("pd")
    assert X.shape == (50, 3) and np.array_equal(y, df["price"])
    # A Series target takes its name.
    client.ingest("pd2", df[["a", "b"]], df["price"].rename("p"))
    assert client.info("pd2").target == "p"


def test_ingest_csv_kinds_like_cli(client, server, tmp_path):
    csv = tmp_path / "k.csv"
    csv.write_text("i,dec,f,label\n1,1.50,1e-30,0\n-2,2.25,3.5,1\n3,-0.1,7,1\n")
    client.ingest_csv("csvpy", str(csv))
    subprocess.run([os.environ["DREAM_CLI"], "ingest", "-q", "-s", server.addr, "csvcli",
                    str(csv)], check=True)
    py, cli = client.info("csvpy"), client.info("csvcli")
    assert py.schema == cli.schema
    assert [(c.kind, c.scale) for c in py.schema] == [("int", 0), ("decimal", 2), ("f64", 0),
                                                      ("int", 0)]
    assert (py.target, py.task) == (cli.target, cli.task)
    a, b = client.export("csvpy", dataframe=True), client.export("csvcli", dataframe=True)
    assert a.equals(b)


def test_ingest_schema_mismatch(client):
    client.ingest("sm", np.zeros((3, 2)), columns=["a", "b"])
    with pytest.raises(dream.SchemaError, match="column 2 is 'b' in the dataset but 'c'"):
        client.ingest("sm", np.zeros((3, 2)), columns=["a", "c"])
    with pytest.raises(dream.SchemaError, match="the dataset has 2 columns, the input 3"):
        client.ingest("sm", np.zeros((3, 3)))
    with pytest.raises(dream.InvalidError):
        client.ingest("sm", np.zeros((3, 2)), y=np.zeros(4))


# ---- errors ---------------------------------------------------------------------------------

def test_every_status_has_its_class():
    names = pb.Status.keys()
    seen = set()
    for name in names:
        num = pb.Status.Value(name)
        if num == 0:
            continue
        e = dream.errors.error_for_status(num, f"msg {num}")
        assert type(e) is _BY_STATUS[num] and e.status == num and e.message == f"msg {num}"
        assert isinstance(e, dream.DreamError)
        seen.add(type(e))
    assert len(seen) == len(names) - 1
    for retryable in ("STATUS_BUSY", "STATUS_FULL", "STATUS_TIMEOUT"):
        assert isinstance(dream.errors.error_for_status(pb.Status.Value(retryable), ""),
                          dream.RetryableError)


def test_errors_from_the_server(client):
    X, y = blobs(200)
    client.ingest("err", X, y)
    with pytest.raises(dream.NotFoundError, match="nope"):
        client.info("nope")
    with pytest.raises(dream.ExistsError):
        client.create("err", [dream.Column("a", "int")])
    with pytest.raises(dream.LimitError, match="batch_size"):
        next(iter(client.batches("err", 1 << 21)))
    with pytest.raises(dream.RangeError, match="start"):
        list(client.batches("err", 10, start=1000))
    with pytest.raises(dream.InvalidError, match="exact"):
        client.train("err", "logistic", mode="exact")
    with pytest.raises(dream.InvalidError, match="shard_index"):
        req = pb.Request()
        req.get_batches.dataset = "err"
        req.get_batches.shard_index = 3
        req.get_batches.shard_count = 3
        client._connection().call(req)
    client.create("empty", [dream.Column("a", "f64"), dream.Column("label", "int")],
                  target="label", task="classification")
    with pytest.raises(dream.EmptyError):
        client.train("empty", "logistic").wait(progress=False)
    # The connection is still usable after errors.
    assert client.info("err").rows == 200


def test_cancel(client):
    X, y = blobs(5000, d=20)
    client.ingest("cancel", X, y)
    job = client.train("cancel", "mlp", mode="full", epochs=100000, hidden=[64],
                       patience=False)  # runs until cancelled
    job.cancel()
    with pytest.raises(dream.CancelledError):
        job.wait(progress=False)


def test_tokens_and_roles(daemon_factory, tmp_path, monkeypatch):
    tokens = tmp_path / "tokens"
    tokens.write_text("admin-token\nread:reader-token\ningest:ingester\n")
    d = daemon_factory("--token-file", str(tokens))
    with pytest.raises(dream.AuthError):
        d.client(token="wrong")
    with pytest.raises(dream.AuthError):
        d.client().datasets()
    tf = tmp_path / "tok"
    tf.write_text("  ingester \r\nsecond line\n")
    with d.client(token_file=str(tf)) as ing:
        assert ing.roles == ["ingest"]
        ing.ingest("r", np.ones((4, 2)))
        with pytest.raises(dream.DeniedError):
            ing.drop("r")
    with d.client(token="reader-token") as rd:
        assert rd.export("r")[0].shape == (4, 2)
        with pytest.raises(dream.DeniedError):
            rd.ingest("r", np.ones((4, 2)))
        with pytest.raises(dream.DeniedError):
            rd.stats()
    monkeypatch.setenv("DREAM_ADDR", d.addr)
    with dream.Client(token="admin-token") as adm:
        assert adm.stats()["datasets"] == 1
        adm.drop("r")
        assert adm.datasets() == []


def test_unix_socket_and_addresses(daemon_factory, tmp_path):
    sock = tmp_path / "d.sock"
    d = daemon_factory(listen=f"unix:{sock}")
    with dream.Client(f"unix:{sock}") as c:
        c.ingest("u", np.arange(6).reshape(3, 2))
        assert c.info("u").rows == 3
    for bad in ("", "a:b:c", "[::1", "host:99999", "unix:"):
        with pytest.raises(dream.InvalidError, match="invalid server address"):
            dream.Client(bad or "x:")
    with pytest.raises(dream.DreamConnectionError, match="is dreamd running"):
        dream.Client(f"unix:{tmp_path}/none.sock")


# ---- batches and shards ---------------------------------------------------------------------

def ids_dataset(client, name, n):
    X = np.arange(n, dtype=np.float64).reshape(-1, 1) * np.ones((1, 3))
    client.ingest(name, X, np.arange(n), task="regression")


def test_batches_decode(client):
    ids_dataset(client, "ids", 1000)
    seen = []
    for X, y, w in client.batches("ids", 128, mode="rows", seed=7, epoch=1):
        assert X.dtype == np.float32 and X.shape == (len(y), 3)
        assert np.array_equal(X[:, 0], y) and np.all(w == 1)
        seen.append(y)
    allv = np.concatenate(seen)
    assert sorted(allv) == list(range(1000)) and not np.array_equal(allv, np.arange(1000))
    # The same seed and epoch give the same order, another epoch another.
    again = np.concatenate([y for _, y, _ in client.batches("ids", 300, seed=7, epoch=1)])
    other = np.concatenate([y for _, y, _ in client.batches("ids", 300, seed=7, epoch=2)])
    assert np.array_equal(allv, again) and not np.array_equal(allv, other)
    # Leaving a stream early leaves the client usable.
    for _ in client.batches("ids", 10):
        break
    assert client.info("ids").rows == 1000
    X, y, w = next(iter(client.batches("ids", 50, mode="condensed", budget=0.2)))
    assert w.sum() >= len(w)


@pytest.mark.parametrize("n,shards", [(1003, 2), (1003, 3), (1003, 4), (5, 4), (2, 3)])
def test_shards_cover_the_epoch_once(client, n, shards):
    name = f"sh{n}"
    if name not in [d.name for d in client.datasets()]:
        ids_dataset(client, name, n)
    whole = np.concatenate([y for _, y, _ in client.batches(name, 64, seed=3, epoch=5)])
    parts = [np.concatenate([np.empty(0, np.float32)] +
                            [y for _, y, _ in client.batches(name, 64, seed=3, epoch=5,
                                                             shard=(i, shards))])
             for i in range(shards)]
    # Contiguous shares of the same permutation: their concatenation is it.
    assert np.array_equal(np.concatenate(parts), whole)
    assert sorted(np.concatenate(parts).astype(int)) == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # start counts within the shard (past its end: RangeError).
    if not len(parts[0]):
        with pytest.raises(dream.RangeError):
            list(client.batches(name, 64, seed=3, epoch=5, shard=(0, shards), start=1))
        return
    tail = np.concatenate([np.empty(0, np.float32)] + [
        y for _, y, _ in client.batches(name, 64, seed=3, epoch=5, shard=(0, shards), start=1)])
    assert np.array_equal(tail, parts[0][1:])


def test_shard_sample_and_condensed_modes(client):
    ids_dataset(client, "shm", 2000)
    for mode, budget in (("sample", 500), ("condensed", 0.1)):
        whole = [b for b in client.batches("shm", 64, mode=mode, budget=budget, seed=1)]
        parts = [b for i in range(3) for b in client.batches("shm", 64, mode=mode,
                                                                budget=budget, seed=1,
                                                                shard=(i, 3))]
        assert np.array_equal(np.concatenate([b[0] for b in whole]),
                              np.concatenate([b[0] for b in parts]))


# ---- training and prediction ----------------------------------------------------------------

def test_train_predict_model_like_cli(client, server, tmp_path):
    X, y = blobs(1500, d=5, classes=3, seed=4)
    client.ingest("tp", X, y)
    job = client.train("tp", "softmax", mode="full", epochs=20, seed=1)
    info = job.wait(progress=False)
    assert info.state == "done" and job.result.accuracy > 0.9
    model = client.model(job)
    assert model["kind"] == "softmax" and model["n_classes"] == 3
    pred = client.predict(job, X[:200])
    full = client.predict(job, np.column_stack([X[:200], y[:200]]), scores=True)
    assert np.array_equal(pred, full.values) and full.scores.shape == (200, 3)
    df = pd.DataFrame(X[:200], columns=[f"x{j}" for j in range(5)])
    assert np.array_equal(client.predict(job, df[df.columns[::-1]]), pred)
    csv, out = tmp_path / "in.csv", tmp_path / "out.csv"
    df.to_csv(csv, index=False)  # shortest round-trip decimals
    subprocess.run([os.environ["DREAM_CLI"], "predict", "-s", server.addr, str(job.job_id),
                    str(csv), "-o", str(out)], check=True, capture_output=True)
    cli = pd.read_csv(out)
    assert np.array_equal(cli["prediction"].to_numpy(), pred)
    assert np.allclose(cli[[c for c in cli.columns if c.startswith("p_")]].to_numpy(),
                       full.scores, atol=1e-6)
    with pytest.raises(dream.SchemaError):
        client.predict(job, df.drop(columns=["x1"]))
    with pytest.raises(dream.NotFoundError):
        client.predict(987654, X[:2])


def test_train_holdout_results(client):
    X, y = blobs(1000, d=3, classes=2, seed=6)
    client.ingest("ho", X, y)
    r = client.train("ho", "logistic", mode="full", epochs=5, seed=3).wait(progress=False).result
    assert r.evaluated_on == "holdout" and r.holdout_rows == 100 and r.holdout_share == 0.1
    assert r.evaluated_rows == 100 and r.rows_used == 900
    assert r.wall_seconds >= r.train_seconds and r.l2 > 0 and not r.prep_cached
    assert isinstance(r.converged, bool) and r.fit_loss == r.fit_loss
    # The same seed sets the same rows aside in every mode.
    s = client.train("ho", "logistic", mode="sample", budget=0.5, epochs=5,
                     seed=3).wait(progress=False).result
    assert s.holdout_rows == 100 and s.rows_used == 450
    n = client.train("ho", "logistic", mode="condensed", holdout=0, epochs=5,
                     seed=3).wait(progress=False).result
    assert n.evaluated_on == "training rows" and n.evaluated_rows == 1000 and n.holdout_rows == 0
    q = client.train("ho", "logistic", mode="full", holdout=0.25, epochs=5).wait(
        progress=False).result
    assert q.holdout_rows == 250 and q.evaluated_rows == 250
    with pytest.raises(dream.InvalidError):
        client.train("ho", "logistic", holdout=1.0)


def test_train_solver_and_patience(client):
    X, y = blobs(600, d=3, classes=2, seed=8)
    client.ingest("sv", X, y)
    r = client.train("sv", "logistic", mode="full", seed=3).wait(progress=False).result
    assert r.solver == "lbfgs" and r.var_scale == 0  # no condensed samples: no variances
    a = client.train("sv", "logistic", mode="full", solver="adam", epochs=4,
                     seed=3).wait(progress=False).result
    assert a.solver == "adam" and a.epochs == 4
    m = client.train("sv", "mlp", mode="full", hidden=[4], epochs=7, patience=False,
                     seed=3).wait(progress=False).result
    assert m.solver == "adam" and m.epochs == 7 and not m.converged
    p = client.train("sv", "mlp", mode="full", hidden=[4], epochs=3, patience=2,
                     seed=3).wait(progress=False).result
    assert p.epochs <= 3
    with pytest.raises(dream.InvalidError):
        client.train("sv", "logistic", solver="sgd")
    with pytest.raises(dream.InvalidError):
        client.train("sv", "logistic", patience=0)
    with pytest.raises(dream.InvalidError):
        client.train("sv", "mlp", solver="adam")  # the server: logistic, softmax only


def test_exact_decimals_stored_like_cli(client):
    rng = np.random.default_rng(5)
    X = np.column_stack([np.round(rng.normal(0, 10, 500), 3), np.arange(500) * 2.0,
                         rng.normal(0, 1, 500)])
    client.ingest("dec", X, columns=["d3", "whole", "f"])
    assert [(c.kind, c.scale) for c in client.info("dec").schema] == [
        ("decimal", 3), ("int", 0), ("f64", 0)]
    X2, _ = client.export("dec")
    assert np.array_equal(X2, X)


def test_decimal_scale_from_every_row(client):
    # The scale is the fewest digits that hold every value, not only the
    # first ones': whole numbers at first, 2 and then 4 digits further on
    # (dream ingest's CSV reader keeps a column at its largest scale).
    n = 20000
    a = np.arange(n, dtype=np.float64)
    a[15000] = 0.25
    a[19999] = -1.0625
    b = np.full(n, 0.5)
    b[12345] = np.nan  # not a decimal: float64
    c = np.arange(n) / 10  # each the double nearest to k/10 (k * 0.1 is not)
    X = np.column_stack([a, b, c, np.arange(n) * 0.1])
    client.ingest("scales", X, columns=["a", "b", "c", "d"], rows_per_request=3000)
    assert [(c.kind, c.scale) for c in client.info("scales").schema] == [
        ("decimal", 4), ("f64", 0), ("decimal", 1), ("f64", 0)]
    X2, _ = client.export("scales")
    assert np.array_equal(X2, X, equal_nan=True)


def test_ingest_frame_is_the_messages_serialization():
    # The hand-built Ingest frames are byte for byte what protobuf makes.
    from dream.client import _IngestEncoder, _put_rows, _table
    rng = np.random.default_rng(1)
    X = np.column_stack([np.round(rng.normal(0, 1, 1000), 3), rng.normal(0, 1, 1000),
                         np.arange(1000) * 2.0, rng.integers(-5, 5, 1000)])
    names, cols, _ = _table(X, rng.integers(0, 300, 1000) > 5, None, None)
    enc = _IngestEncoder("données", cols, 300, 1000, 1 << 40)
    for b in range(4):
        parts, buf = enc.encode(b)
        req = pb.Request()
        req.ingest.dataset = "données"
        req.ingest.client_batch_id = (1 << 40) + b
        _put_rows(req.ingest.rows, cols, b * 300, min(300, 1000 - b * 300))
        assert b"".join(bytes(memoryview(p).cast("B")) for p in parts) == \
            req.SerializeToString()
        enc.release(buf)
