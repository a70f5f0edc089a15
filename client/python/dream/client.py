"""dream.Client: datasets, ingest, export, batches, training and prediction
on a dreamd server, over the protocol of dream.proto."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import (Any, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union)

import numpy as np

from . import dream_pb2 as pb
from ._conn import Connection, env_addr, read_token_file, varint
from .errors import (BusyError, CancelledError, DeadlineError, DreamConnectionError,
                     DreamError, ExistsError, InvalidError, NotFoundError, SchemaError,
                     error_for_status)

__all__ = ["Client", "Column", "DatasetSummary", "DatasetInfo", "IngestResult", "Batch",
           "JobInfo", "JobResult", "Job", "Prediction"]

CLIENT_NAME = "dream-python/0.1.0"

# Ingest: the rules of `dream ingest` (client/cli_net_ingest.c).
INGEST_BLOCK_ROWS = 65536        # most rows per Ingest request
INGEST_BLOCK_BYTES = 8 << 20     # about this many value bytes per request
INGEST_WINDOW = 8                # requests in flight by default
INGEST_WINDOW_MAX = 32           # at most (dreamd allows 64 per connection)
INGEST_ENCODE_AHEAD = 2          # requests encoded ahead of the sends
INGEST_RETRIES = 5               # reconnections after a lost connection
CLASSIFICATION_MAX_CLASSES = 256  # auto task: integer targets with more values are regression
PREDICT_BLOCK_BYTES = 8 << 20    # rows per Predict request: about this many value bytes

_KIND_NAMES = {pb.COLUMN_KIND_INT: "int", pb.COLUMN_KIND_DECIMAL: "decimal",
               pb.COLUMN_KIND_F64: "f64"}
_TASK_NAMES = {pb.TASK_UNSPECIFIED: None, pb.TASK_REGRESSION: "regression",
               pb.TASK_CLASSIFICATION: "classification"}
_TASKS = {"regression": pb.TASK_REGRESSION, "classification": pb.TASK_CLASSIFICATION}
_BATCH_MODES = {"condensed": pb.BATCH_MODE_CONDENSED, "rows": pb.BATCH_MODE_ROWS,
                "sample": pb.BATCH_MODE_SAMPLE}
_TRAIN_MODES = {"condensed": pb.TRAIN_MODE_CONDENSED, "full": pb.TRAIN_MODE_FULL,
                "sample": pb.TRAIN_MODE_SAMPLE, "refresh": pb.TRAIN_MODE_REFRESH,
                "exact": pb.TRAIN_MODE_EXACT}
_MODELS = {"linear": pb.MODEL_KIND_LINEAR, "ridge": pb.MODEL_KIND_RIDGE,
           "logistic": pb.MODEL_KIND_LOGISTIC, "softmax": pb.MODEL_KIND_SOFTMAX,
           "mlp": pb.MODEL_KIND_MLP, "kmeans": pb.MODEL_KIND_KMEANS}
_ORDERS = {"msb": pb.BIT_ORDER_MSB, "entropy": pb.BIT_ORDER_ENTROPY}
_SOLVERS = {"lbfgs": pb.SOLVER_LBFGS, "adam": pb.SOLVER_ADAM}
_STATES = {pb.JOB_STATE_QUEUED: "queued", pb.JOB_STATE_RUNNING: "running",
           pb.JOB_STATE_DONE: "done", pb.JOB_STATE_FAILED: "failed",
           pb.JOB_STATE_CANCELLED: "cancelled"}
_POW10 = [10 ** s for s in range(10)]


def _choice(what: str, value: Optional[str], table: Dict[str, int]) -> int:
    if value is None:
        return 0
    try:
        return table[value]
    except KeyError:
        raise InvalidError(f"{what}: '{value}', expected one of "
                           f"{', '.join(sorted(table))}") from None


def _name(table: Dict[str, int], num: int) -> Optional[str]:
    for k, v in table.items():
        if v == num:
            return k
    return None


@dataclass(frozen=True)
class Column:
    """One column of a dataset's schema."""
    name: str
    kind: str          #: "int", "decimal" or "f64"
    scale: int = 0     #: decimal digits after the point (decimal only)


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset as listed by :meth:`Client.datasets`."""
    name: str
    task: Optional[str]  #: "regression", "classification" or None (no target)
    rows: int
    columns: int
    stored_bytes: int


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's description (``dream info``)."""
    name: str
    task: Optional[str]
    target: Optional[str]   #: target column name, None when there is none
    class_count: int
    rows: int
    columns: int
    segments: int
    staged_rows: int
    stored_bytes: int
    csv_bytes: int
    bases: int
    ratio: float
    schema: List[Column]
    created_unix: int

    @property
    def feature_names(self) -> List[str]:
        """The schema's column names without the target."""
        return [c.name for c in self.schema if c.name != self.target]


@dataclass(frozen=True)
class IngestResult:
    """What :meth:`Client.ingest` stored."""
    dataset: str
    created: bool      #: the dataset was created by this ingest
    rows: int          #: rows committed (including resent_rows)
    resent_rows: int   #: rows re-sent after a reconnection and stored once
    requests: int
    seconds: float


@dataclass(frozen=True)
class Batch:
    """One mini-batch: features (n, d) float32, targets (n,) float32 or None,
    weights (n,) float32 (ones outside condensed mode)."""
    X: np.ndarray
    y: Optional[np.ndarray]
    weight: np.ndarray
    position: int        #: positions of the epoch (or shard) served after it
    epoch: int
    resume_token: bytes

    def __iter__(self) -> Iterator[Optional[np.ndarray]]:
        return iter((self.X, self.y, self.weight))


@dataclass(frozen=True)
class JobResult:
    """Metrics and costs of a finished job. The metrics are on
    ``evaluated_on``: "test dataset 'NAME'", "holdout" (the share of the
    rows set aside, never trained on) or "training rows" (every row, with
    no holdout); ``fit_loss`` is the loss on the fit's own samples, not a
    result."""
    rows_used: int
    prep_seconds: float
    train_seconds: float
    peak_train_bytes: int
    epochs: int
    evaluated_rows: int
    metrics: Dict[str, float]  #: e.g. {"accuracy": .., "macro_f1": .., "logloss": ..}
    evaluated_on: str = ""
    holdout_share: float = 0.0
    holdout_rows: int = 0
    fit_loss: float = 0.0
    iterations: int = 0
    converged: bool = False
    wall_seconds: float = 0.0   #: submission to the end of the job
    prep_cached: bool = False   #: condensed: the samples came from the server's cache
    l2: float = 0.0
    var_scale: float = 0.0
    solver: str = ""            #: "lbfgs", "adam", "closed form" or "lloyd"

    @property
    def accuracy(self) -> Optional[float]:
        """Classification accuracy (0..1), None for other models."""
        return self.metrics.get("accuracy")


@dataclass(frozen=True)
class JobInfo:
    """A training job's state."""
    job_id: int
    state: str         #: "queued", "running", "done", "failed" or "cancelled"
    dataset: str
    model: Optional[str]
    epoch: int
    epochs: int
    loss: float
    elapsed_seconds: float
    eta_seconds: float
    error: str
    error_code: int
    result: Optional[JobResult]
    test_dataset: str

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")


@dataclass(frozen=True)
class Prediction:
    """Predictions: values (n,) float64 (value, class label or cluster) and,
    for classification, scores (n, classes) float32 probabilities."""
    values: np.ndarray
    scores: Optional[np.ndarray] = None


def _job_info(m: pb.JobInfo) -> JobInfo:
    result = None
    if m.HasField("result"):
        r = m.result
        which = r.WhichOneof("metrics")
        metrics: Dict[str, float] = {}
        if which:
            sub = getattr(r, which)
            metrics = {f.name: v for f, v in sub.ListFields()}
            for f in sub.DESCRIPTOR.fields:
                metrics.setdefault(f.name, getattr(sub, f.name))
        result = JobResult(r.rows_used, r.prep_seconds, r.train_seconds, r.peak_train_bytes,
                           r.epochs, r.evaluated_rows, metrics, r.evaluated_on, r.holdout_share,
                           r.holdout_rows, r.fit_loss, r.iterations, r.converged,
                           r.wall_seconds, r.prep_cached, r.l2, r.var_scale, r.solver)
    return JobInfo(m.job_id, _STATES.get(m.state, str(m.state)), m.dataset, _name(_MODELS, m.model),
                   m.epoch, m.epochs, m.loss, m.elapsed_seconds, m.eta_seconds, m.error,
                   m.error_code, result, m.test_dataset)


def _decode_columns(cols: pb.Columns, out: List[List[np.ndarray]]) -> None:
    """Append each column of a block as an int64 (INT, DECIMAL scaled) or
    float64 array."""
    for j, cv in enumerate(cols.columns):
        a = np.frombuffer(cv.values, dtype="<f8" if cv.kind == pb.COLUMN_KIND_F64 else "<i8")
        out[j].append((a, cv.kind, cv.scale))  # type: ignore[arg-type]


def _column_values(parts: List[Tuple[np.ndarray, int, int]], kind: int,
                   scale: int) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=np.int64 if kind == pb.COLUMN_KIND_INT else np.float64)
    arrays = []
    for a, k, s in parts:
        if k == pb.COLUMN_KIND_DECIMAL:
            a = a / _POW10[s]
        arrays.append(a)
    v = np.concatenate(arrays) if len(arrays) > 1 else arrays[0].copy()
    if kind == pb.COLUMN_KIND_INT:
        return v.astype(np.int64, copy=False)
    return v.astype(np.float64, copy=False)


class Job:
    """A training job of dreamd (returned by :meth:`Client.train`)."""

    def __init__(self, client: "Client", job_id: int) -> None:
        self.client = client
        self.job_id = job_id
        self._info: Optional[JobInfo] = None

    def __repr__(self) -> str:
        return f"Job({self.job_id})"

    def status(self) -> JobInfo:
        """The job's current state (``dream job``)."""
        req = pb.Request()
        req.job_status.job_id = self.job_id
        self._info = _job_info(self.client._call(req).job_status)
        return self._info

    def wait(self, progress: Optional[bool] = None) -> JobInfo:
        """Wait for the job to finish, following its progress; with progress
        (default: when standard error is a terminal) a progress line is drawn.

        Returns:
            The final JobInfo of a job that is done.
        Raises:
            CancelledError: the job was cancelled.
            DreamError: the job failed (the class of its failure's status,
                carrying the job's error message).
        """
        if progress is None:
            progress = sys.stderr.isatty()
        req = pb.Request()
        req.job_watch.job_id = self.job_id
        conn = self.client._connection()
        rid = conn.send(req)
        info = None
        try:
            while True:
                resp = conn.recv(rid)
                info = _job_info(resp.job_watch)
                if progress:
                    eta = f"  ETA {info.eta_seconds:.0f}s" if info.eta_seconds >= 0 else ""
                    sys.stderr.write(f"\r\033[Kjob {self.job_id} {info.state} epoch "
                                     f"{info.epoch}/{info.epochs}  loss {info.loss:.4g}  "
                                     f"{info.elapsed_seconds:.1f}s{eta}")
                    sys.stderr.flush()
                if not resp.more:
                    break
        finally:
            if progress:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
        self._info = info
        assert info is not None
        if info.state == "cancelled":
            raise CancelledError(f"job {self.job_id} was cancelled")
        if info.state == "failed":
            raise error_for_status(info.error_code or pb.STATUS_INTERNAL,
                                   f"job {self.job_id} failed: {info.error}")
        return info

    @property
    def result(self) -> Optional[JobResult]:
        """The result of a finished job (None while it runs)."""
        if self._info is None or not self._info.finished:
            self.status()
        assert self._info is not None
        return self._info.result

    def cancel(self) -> JobInfo:
        """Ask the job to stop (within one epoch); returns its state."""
        req = pb.Request()
        req.job_cancel.job_id = self.job_id
        self._info = _job_info(self.client._call(req).job_cancel)
        return self._info


JobLike = Union[Job, int]


class Client:
    """A client of dreamd.

    Args:
        addr: ``HOST:PORT``, ``[IPV6]:PORT`` or ``unix:PATH``; default
            ``$DREAM_ADDR`` when set, else ``127.0.0.1:7878`` (as the CLI).
        token: the bearer token, when the server has tokens.
        token_file: read the token from the first line of this file (blanks
            and the line end are not part of it), as ``dream --token-file``.
        timeout: seconds to wait for the server on any one read or write
            (None: forever).

    The connection is opened on first use, and again after a lost one.
    Use as a context manager to close it::

        with dream.Client() as c:
            print(c.datasets())
    """

    def __init__(self, addr: Optional[str] = None, token: Optional[str] = None,
                 timeout: Optional[float] = 60.0, token_file: Optional[str] = None) -> None:
        self.addr = env_addr(addr)
        if token is None and token_file is not None:
            token = read_token_file(token_file)
        self._token = token
        self.timeout = timeout
        self._conn: Optional[Connection] = None
        self._connection()  # fail early: unreachable server, refused token

    # ---- connection -----------------------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.sock is None:
            self._conn = Connection(self.addr, self._token, self.timeout, CLIENT_NAME)
        return self._conn

    def _call(self, req: pb.Request) -> pb.Response:
        return self._connection().call(req)

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        """Close the connection (the client reconnects if used again)."""
        self._reset()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def roles(self) -> List[str]:
        """Roles granted to this connection ("ingest", "read", "train", "admin")."""
        names = {pb.ROLE_INGEST: "ingest", pb.ROLE_READ: "read", pb.ROLE_TRAIN: "train",
                 pb.ROLE_ADMIN: "admin"}
        return [names.get(r, str(r)) for r in self._connection().roles]

    # ---- server and datasets --------------------------------------------------------------

    def server_info(self) -> Dict[str, Any]:
        """Server version and limits (``dream server``) as a dict."""
        req = pb.Request()
        req.server_info.SetInParent()
        return _as_dict(self._call(req).server_info)

    def stats(self) -> Dict[str, Any]:
        """Server metrics (role admin) as a dict of StatsReply's fields."""
        req = pb.Request()
        req.stats.SetInParent()
        return _as_dict(self._call(req).stats)

    def datasets(self) -> List[DatasetSummary]:
        """The datasets, sorted by name."""
        req = pb.Request()
        req.list_datasets.SetInParent()
        return [DatasetSummary(d.name, _TASK_NAMES.get(d.task), d.rows, d.columns, d.stored_bytes)
                for d in self._call(req).list_datasets.datasets]

    def info(self, name: str) -> DatasetInfo:
        """A dataset's description. Raises NotFoundError when it does not exist."""
        req = pb.Request()
        req.describe_dataset.name = name
        d = self._call(req).describe_dataset
        return DatasetInfo(d.name, _TASK_NAMES.get(d.task), d.target or None, d.class_count,
                           d.rows, d.columns, d.segments, d.staged_rows, d.stored_bytes,
                           d.csv_bytes, d.bases, d.ratio,
                           [Column(c.name, _KIND_NAMES.get(c.kind, str(c.kind)), c.scale)
                            for c in d.schema], d.created_unix)

    def create(self, name: str, columns: Sequence[Column], target: Optional[str] = None,
               task: Optional[str] = None, class_count: int = 0) -> None:
        """Create an empty dataset with this schema (ingest creates one itself)."""
        req = pb.Request()
        m = req.create_dataset
        m.name = name
        kinds = {v: k for k, v in _KIND_NAMES.items()}
        for c in columns:
            spec = m.columns.add()
            spec.name = c.name
            spec.kind = _choice("column kind", c.kind, kinds)
            spec.scale = c.scale
        if target:
            m.target = target
        m.task = _choice("task", task, _TASKS)
        m.class_count = class_count
        self._call(req)

    def drop(self, name: str) -> None:
        """Delete a dataset and its models' data (role admin)."""
        req = pb.Request()
        req.drop_dataset.name = name
        self._call(req)

    def flush(self, name: str) -> Tuple[int, int]:
        """Seal the staged rows of a dataset now; returns (segments sealed,
        rows sealed)."""
        req = pb.Request()
        req.flush.dataset = name
        r = self._call(req).flush
        return r.segments_sealed, r.rows_sealed

    # ---- ingest ---------------------------------------------------------------------------

    def ingest(self, name: str, X: Any, y: Any = None, columns: Optional[Sequence[str]] = None,
               task: Optional[str] = None, label: Optional[str] = None,
               window: int = INGEST_WINDOW, rows_per_request: Optional[int] = None
               ) -> IngestResult:
        """Append rows to a dataset, creating it when it does not exist, by
        the rules of ``dream ingest``.

        Args:
            name: the dataset.
            X: a 2-D NumPy array (rows x columns) or a pandas DataFrame.
                Integer and boolean columns are stored as integers; floating
                ones as exact decimals when every value is the double
                nearest to a decimal of at most 9 digits after the point
                (integers when none are needed), as ``dream ingest`` stores
                such CSV columns, else as float64 (NaN and infinities kept).
            y: the target (1-D, one value per row), appended as the last
                column; None: X holds the target, if any, in the column
                named by ``label`` (default "label", when present).
            columns: names of X's columns (default: a DataFrame's, else
                x0, x1, ...); the target of y is named ``label`` (default:
                a pandas Series' name, else "label").
            task: "regression", "classification" or None (auto: an integer
                target with at most 256 distinct values is classification,
                anything else regression), used when the dataset is created.
            window: requests in flight (1 to 32).
            rows_per_request: rows per Ingest request (default: up to 65536,
                about 8 MB of values, half the server's frame limit at most).

        Returns:
            An IngestResult.
        Raises:
            SchemaError: the dataset exists with other columns (the message
                says which); InvalidError: bad arguments; the server's errors.
        """
        t0 = time.monotonic()
        names, cols, target = _table(X, y, columns, label)
        if not 1 <= window <= INGEST_WINDOW_MAX:
            raise InvalidError(f"ingest: invalid window {window} (1 to {INGEST_WINDOW_MAX})")
        if task is not None:
            _choice("task", task, _TASKS)
        n_rows = len(cols[0]) if cols else 0
        created = False
        try:
            info = self.info(name)
        except NotFoundError:
            info = None
            if target is None:
                task_num = pb.TASK_UNSPECIFIED
            elif task is not None:
                task_num = _TASKS[task]
            else:
                task_num = _guess_task(cols[names.index(target)])
            req = pb.Request()
            m = req.create_dataset
            m.name = name
            for nm, col in zip(names, cols):
                spec = m.columns.add()
                spec.name = nm
                spec.kind = col.kind
                spec.scale = col.scale
            if target is not None:
                m.target = target
                m.task = task_num
            try:
                self._call(req)
                created = True
            except ExistsError:  # created meanwhile by another client
                info = self.info(name)
        if info is not None:
            why = _schema_mismatch(info, names)
            if why:
                raise SchemaError(f"input does not match the schema of dataset '{name}': {why}")
        per = rows_per_request or _rows_per_request(self._connection().max_frame,
                                                    INGEST_BLOCK_BYTES, len(cols) * 8,
                                                    INGEST_BLOCK_ROWS)
        n_blocks = (n_rows + per - 1) // per
        base = int.from_bytes(os.urandom(8), "little") & ~0xFFFFFFFF or (1 << 32)

        enc = _IngestEncoder(name, cols, per, n_rows, base)
        # A thread encodes the next blocks while this one sends and waits
        # for acknowledgements (NumPy and the socket let go of the GIL).
        pool = ThreadPoolExecutor(1, thread_name_prefix="dream-ingest")
        encoded: Deque[Future] = deque()  # of blocks nxt, nxt + 1, ...
        acked = dup = 0
        retries = 0
        nxt = 0
        inflight: Deque[Tuple[int, int]] = deque()  # (request id, block), oldest first
        try:
            while nxt < n_blocks or inflight:
                while len(encoded) < INGEST_ENCODE_AHEAD and nxt + len(encoded) < n_blocks:
                    encoded.append(pool.submit(enc.encode, nxt + len(encoded)))
                try:
                    conn = self._connection()
                    if nxt < n_blocks and len(inflight) < window:
                        parts, buf = encoded.popleft().result()
                        try:
                            inflight.append((conn.send_parts(parts), nxt))
                        finally:
                            enc.release(buf)
                        nxt += 1
                        continue
                    rid, block = inflight[0]
                    ack = conn.recv(rid).ingest
                    inflight.popleft()
                except (DreamConnectionError, BusyError, DeadlineError):
                    if retries >= INGEST_RETRIES:
                        raise
                    # Re-send from the oldest unacknowledged block: the batch
                    # ids make blocks committed meanwhile count once
                    # (duplicates).
                    nxt = inflight[0][1] if inflight else nxt
                    inflight.clear()
                    enc.drop(encoded)
                    self._reset()
                    time.sleep(0.2 * (1 << retries))
                    retries += 1
                    continue
                except DreamError as e:
                    done = acked + dup
                    self._reset()  # requests still in flight: start afresh
                    raise type(e)(f"ingest into dataset '{name}' failed at row {block * per}: "
                                  f"{e.message}" + (f" ({done} rows before it were committed)"
                                                    if done else ""), e.status) from None
                if ack.duplicate:
                    dup += ack.rows
                else:
                    acked += ack.rows
                retries = 0
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return IngestResult(name, created, acked + dup, dup, n_blocks, time.monotonic() - t0)

    def ingest_csv(self, name: str, path: str, label: Optional[str] = None,
                   task: Optional[str] = None, **kw: Any) -> IngestResult:
        """Append the rows of a CSV file (header line, numeric cells) to a
        dataset, creating it when it does not exist, with the kinds ``dream
        ingest`` gives the columns: integers, decimals of up to 9 digits after
        the point (stored exactly, at the column's largest scale), else
        float64. The target is ``label`` (default: a column named "label").
        Other keywords as :meth:`ingest`."""
        import pandas as pd  # optional dependency

        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        if df.shape[1] == 0:
            raise InvalidError(f"{path}: no columns")
        cols: Dict[str, Any] = {}
        for c in df.columns:
            try:
                cols[c] = _csv_column(df[c])
            except ValueError as e:
                raise InvalidError(f"{path}: column '{c}': {e}") from None
        return self._ingest_typed(name, list(df.columns), cols, label, task, **kw)

    def _ingest_typed(self, name: str, names: List[str], cols: Dict[str, Any],
                      label: Optional[str], task: Optional[str], **kw: Any) -> IngestResult:
        return self.ingest(name, _Typed(names, cols), None, None, task, label, **kw)

    # ---- export ---------------------------------------------------------------------------

    def export(self, name: str, rows: Union[None, int, range, slice] = None,
               dataframe: bool = False) -> Any:
        """The rows of a dataset, losslessly, in row order.

        Args:
            rows: None (all), a count n (the first n rows), or a range/slice
                of row numbers (step 1).
            dataframe: return a pandas DataFrame of every column (integer
                columns int64, the others float64) instead of (X, y).

        Returns:
            (X, y): X float64 (n, features) of the non-target columns, y the
            target (int64 for an integer target, else float64) or None.
        """
        first, count = 0, 0
        if isinstance(rows, int):
            count = rows
            if count <= 0:
                raise InvalidError(f"export: rows {rows}, expected a positive count")
        elif isinstance(rows, (range, slice)):
            if (rows.step or 1) != 1:
                raise InvalidError("export: rows with a step other than 1")
            first = rows.start or 0
            if rows.stop is not None:
                count = rows.stop - first
                if count <= 0:
                    raise InvalidError(f"export: empty row range {rows}")
        info = self.info(name)
        req = pb.Request()
        req.export.dataset = name
        req.export.first_row = first
        req.export.row_count = count
        conn = self._connection()
        rid = conn.send(req)
        parts: List[List[Any]] = [[] for _ in info.schema]
        while True:
            resp = conn.recv(rid)
            _decode_columns(resp.export.rows, parts)
            if not resp.more:
                break
        kinds = {v: k for k, v in _KIND_NAMES.items()}
        values = {c.name: _column_values(p, kinds[c.kind], c.scale)
                  for c, p in zip(info.schema, parts)}
        if dataframe:
            import pandas as pd
            return pd.DataFrame(values, columns=[c.name for c in info.schema])
        feats = info.feature_names
        n = len(next(iter(values.values()))) if values else 0
        X = np.empty((n, len(feats)), dtype=np.float64)
        for j, f in enumerate(feats):
            X[:, j] = values[f]
        y = values[info.target] if info.target else None
        return X, y

    # ---- batches --------------------------------------------------------------------------

    def batches(self, name: str, size: int = 0, mode: str = "rows",
                budget: Union[None, float, int] = None, seed: int = 0, epoch: int = 0,
                shard: Optional[Tuple[int, int]] = None, start: int = 0,
                max_batches: int = 0, order: Optional[str] = None,
                full: bool = False) -> Iterator[Any]:
        """Stream mini-batches of float32 features, targets and weights.

        Args:
            size: rows per batch (0: the server's default).
            mode: "rows" (every row once per epoch, shuffled by seed and
                epoch, weights 1), "condensed" (the condensed samples of the
                budget, weights = group sizes) or "sample" (a uniform subset
                of the budget, weights 1).
            budget: condensed/sample: a fraction (float, 0 < f <= 1) or a row
                count (int); None: the server's default.
            seed, epoch: the permutation (the same seed and epoch always
                give the same order).
            shard: (index, count): only this share of the epoch, the shards
                together serving every position exactly once.
            start: positions (of the epoch or shard) to skip.
            max_batches: stop after this many batches (0: end of the epoch).
            full: yield :class:`Batch` objects (with position and resume
                token) instead of (X, y, weight) tuples.

        Yields:
            (X, y, weight): X (n, d) float32, y (n,) float32 or None when the
            dataset has no target, weight (n,) float32. The arrays are
            read-only views of the received bytes.
        """
        req = pb.Request()
        m = req.get_batches
        m.dataset = name
        m.mode = _choice("batches mode", mode, _BATCH_MODES)
        m.batch_size = size
        _set_budget(m.budget, budget, "batches")
        if budget is None:
            m.ClearField("budget")
        m.order = _choice("batches order", order, _ORDERS)
        m.seed = seed
        m.epoch = epoch
        m.start = start
        m.max_batches = max_batches
        if shard is not None:
            i, k = shard
            if not (0 <= i < k):
                raise InvalidError(f"batches: shard {shard}, expected (index, count) with "
                                   "0 <= index < count")
            m.shard_index = i
            m.shard_count = k
        conn = self._connection()
        rid = conn.send(req)
        finished = False
        try:
            while True:
                resp = conn.recv(rid)
                b = resp.get_batches
                n, d = b.n, b.d
                X = np.frombuffer(b.features, dtype="<f4").reshape(n, d)
                y = np.frombuffer(b.targets, dtype="<f4") if b.targets else None
                w = np.frombuffer(b.weights, dtype="<f4") if b.weights else np.ones(
                    n, dtype=np.float32)
                if not resp.more:
                    finished = True
                if n == 0:  # an empty epoch or shard: nothing to yield
                    if finished:
                        return
                    continue
                if full:
                    yield Batch(X, y, w, b.position, b.epoch, b.resume_token)
                else:
                    yield X, y, w
                if finished:
                    return
        except DreamError:
            finished = True
            raise
        finally:
            if not finished:
                # Left early: the rest of the stream would have to be read;
                # a new connection is cheaper.
                self._reset()

    # ---- training -------------------------------------------------------------------------

    def train(self, dataset: str, model: str, mode: Optional[str] = None,
              budget: Union[None, float, int] = None, epochs: int = 0, lr: float = 0.0,
              batch_size: int = 0, hidden: Sequence[int] = (), k: int = 0, l2: float = 0.0,
              seed: int = 0, test_dataset: Optional[str] = None,
              order: Optional[str] = None, holdout: Optional[float] = None,
              solver: Optional[str] = None,
              patience: Union[None, int, bool] = None) -> Job:
        """Submit a training job (``dream train``); zero values take the
        server's defaults. model: linear, ridge, logistic, softmax, mlp or
        kmeans; mode: condensed, full, sample, refresh or exact (None: exact
        for linear and ridge without a budget, else condensed); budget: a
        fraction (float) or a row count (int); holdout: the share of the
        rows set aside and scored on (0 <= h < 1; None: the server's 0.1;
        0: none, the metrics are then on every row); solver: logistic and
        softmax, "lbfgs" (the default: full-batch L-BFGS to a tolerance) or
        "adam" (mini-batches for ``epochs``; refresh mode always uses it);
        patience: mlp early stopping on the holdout, the epochs without a
        better score before it stops (None: the server's 5; False: off, every
        epoch runs; no holdout means no early stopping either)."""
        req = pb.Request()
        m = req.train
        m.dataset = dataset
        m.model = _choice("train model", model, _MODELS)
        m.mode = _choice("train mode", mode, _TRAIN_MODES)
        if budget is not None:
            _set_budget(m.budget, budget, "train")
        m.epochs = epochs
        m.lr = lr
        m.batch_size = batch_size
        m.hidden.extend(hidden)
        m.k = k
        m.l2 = l2
        m.seed = seed
        if test_dataset:
            m.test_dataset = test_dataset
        m.order = _choice("train order", order, _ORDERS)
        if holdout is not None:
            if isinstance(holdout, bool) or not 0 <= float(holdout) < 1:
                raise InvalidError(f"train: holdout {holdout!r} must be a share from 0 to "
                                   "below 1 (0 = none)")
            m.holdout = float(holdout) if holdout else -1.0
        m.solver = _choice("train solver", solver, _SOLVERS)
        if patience is False:
            m.early_stopping_off = True
        elif patience is not None:
            if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
                raise InvalidError(f"train: patience {patience!r} must be an integer >= 1 "
                                   "(False: no early stopping)")
            m.patience = patience
        return Job(self, self._call(req).train.job_id)

    def job(self, job_id: int) -> Job:
        """A handle on an existing job."""
        return Job(self, job_id)

    def jobs(self) -> List[JobInfo]:
        """The server's jobs, newest first."""
        req = pb.Request()
        req.job_list.SetInParent()
        return [_job_info(j) for j in self._call(req).job_list.jobs]

    def predict(self, job: JobLike, X: Any, scores: bool = False,
                features: bool = False) -> Any:
        """Predict with the model of a finished job.

        Args:
            X: rows in the training dataset's schema, every column in order,
                with or without the target (a 2-D array or a DataFrame), as
                ``dream predict`` sends them; with features=True, already
                built float32 features (the model's inputs).
            scores: also return the class probabilities.

        Returns:
            values (n,) float64 (the value, class label or cluster), or a
            :class:`Prediction` with scores when scores=True.
        """
        job_id = job.job_id if isinstance(job, Job) else int(job)
        vals: List[np.ndarray] = []
        scs: List[np.ndarray] = []
        if features:
            F = np.ascontiguousarray(X, dtype="<f4")
            if F.ndim != 2:
                raise InvalidError("predict: features must be a 2-D array")
            per = _rows_per_request(self._connection().max_frame, PREDICT_BLOCK_BYTES,
                                    max(F.shape[1], 1) * 4, 1 << 20)
            blocks = [(F[i:i + per], None) for i in range(0, max(F.shape[0], 1), per)]
        else:
            if hasattr(X, "columns") and hasattr(X, "dtypes"):
                # A DataFrame: its columns matched to the schema by name, in
                # any order, the target used when present (as dream predict).
                info = self.info(Job(self, job_id).status().dataset)
                names = [str(c) for c in X.columns]
                missing = [f for f in info.feature_names if f not in names]
                if missing:
                    raise SchemaError(f"predict: column '{missing[0]}' of dataset '{info.name}' "
                                      "is missing from the input")
                extra = [c for c in names if c not in {c.name for c in info.schema}]
                if extra:
                    raise SchemaError(f"predict: column '{extra[0]}' is not in dataset "
                                      f"'{info.name}'")
                X = X[[c.name for c in info.schema if c.name in names]]
            names, cols, _ = _table(X, None, None, "\0")  # no target split
            n = len(cols[0]) if cols else 0
            per = _rows_per_request(self._connection().max_frame, PREDICT_BLOCK_BYTES,
                                    max(len(cols), 1) * 8, 1 << 20)
            blocks = [(None, (i, min(per, n - i))) for i in range(0, max(n, 1), per)]
        for fblock, rblock in blocks:
            req = pb.Request()
            m = req.predict
            m.job_id = job_id
            if fblock is not None:
                m.features.n, m.features.d = fblock.shape
                m.features.values = fblock.tobytes()
            else:
                first, count = rblock  # type: ignore[misc]
                _put_rows(m.rows, cols, first, count)
            r = self._call(req).predict
            vals.append(np.frombuffer(r.values, dtype="<f8"))
            if r.classes:
                scs.append(np.frombuffer(r.scores, dtype="<f4").reshape(r.n, r.classes))
        values = np.concatenate(vals) if len(vals) > 1 else vals[0].copy()
        if not scores:
            return values
        return Prediction(values, np.concatenate(scs) if scs else None)

    def model(self, job: JobLike) -> Dict[str, Any]:
        """The model of a finished job as a dict (the JSON of train/MODEL.md)."""
        req = pb.Request()
        req.get_model.job_id = job.job_id if isinstance(job, Job) else int(job)
        return json.loads(self._call(req).get_model.json)


# ---- helpers -------------------------------------------------------------------------------

def _as_dict(msg: Any) -> Dict[str, Any]:
    from google.protobuf.json_format import MessageToDict
    return MessageToDict(msg, preserving_proto_field_name=True,
                         including_default_value_fields=True)


def _set_budget(b: pb.Budget, budget: Union[None, float, int], what: str) -> None:
    if budget is None:
        return
    if isinstance(budget, bool):
        raise InvalidError(f"{what}: budget must be a fraction or a row count")
    if isinstance(budget, (int, np.integer)):
        b.rows = int(budget)
    else:
        b.fraction = float(budget)


def _rows_per_request(max_frame: int, target_bytes: int, row_bytes: int, max_rows: int) -> int:
    """Rows per request: about target_bytes, at most half the frame limit
    and max_rows (cli_rows_per_request)."""
    target_bytes = min(target_bytes, max_frame // 2)
    return max(1, min(target_bytes // max(row_bytes, 1), max_rows))


def _put_rows(rows: pb.Columns, cols: List["_Col"], first: int, count: int) -> None:
    rows.n_rows = count
    for c in cols:
        cv = rows.columns.add()
        cv.kind = c.kind
        cv.scale = c.scale
        cv.values = c.wire(first, count)


def _guess_task(col: "_Col") -> int:
    """gd_table_guess_task: an integer target with at most 256 distinct
    values is classification, anything else regression."""
    if col.kind != pb.COLUMN_KIND_INT:
        return pb.TASK_REGRESSION
    v = col.values()
    lo, hi = (int(v.min()), int(v.max())) if v.size else (0, 0)
    distinct = np.count_nonzero(np.bincount(v - lo)) if hi - lo < 1 << 20 else len(np.unique(v))
    return pb.TASK_CLASSIFICATION if distinct <= CLASSIFICATION_MAX_CLASSES else pb.TASK_REGRESSION


def _schema_mismatch(info: DatasetInfo, names: List[str]) -> Optional[str]:
    if info.columns != len(names):
        return f"the dataset has {info.columns} columns, the input {len(names)}"
    for j, (c, nm) in enumerate(zip(info.schema, names)):
        if c.name != nm:
            return f"column {j + 1} is '{c.name}' in the dataset but '{nm}' in the input"
    return None


class _Col:
    """One column to send: its kind, its scale and its source values (1-D,
    any stride). INT and DECIMAL columns made from floats (scaled) are
    multiplied by 10^scale block by block as they are sent, so that no
    whole column is converted or copied first."""

    __slots__ = ("src", "kind", "scale", "scaled")

    def __init__(self, src: np.ndarray, kind: int, scale: int = 0, scaled: bool = False) -> None:
        self.src = src
        self.kind = kind
        self.scale = scale
        self.scaled = scaled

    def __len__(self) -> int:
        return len(self.src)

    def values(self, first: int = 0, count: Optional[int] = None) -> np.ndarray:
        """Rows [first, first + count) as the wire's numbers: little-endian
        int64 (INT; DECIMAL times 10^scale) or float64 (F64)."""
        v = self.src[first:None if count is None else first + count]
        if self.kind == pb.COLUMN_KIND_F64:
            return v.astype("<f8", copy=False)
        if self.scaled and self.scale:
            v = np.rint(v * float(_POW10[self.scale]))
        return v.astype("<i8", copy=False)

    def wire(self, first: int, count: int) -> bytes:
        return self.values(first, count).tobytes()

    def fill(self, out: np.ndarray, first: int, tmp: np.ndarray) -> None:
        """Rows [first, first + len(out)) into out (int64), as values()
        gives them but without a new array; tmp: float64 scratch space."""
        v = self.src[first:first + len(out)]
        if self.kind == pb.COLUMN_KIND_F64:
            np.copyto(out.view("<f8"), v, casting="unsafe")
        elif self.scaled and self.scale:
            t = tmp[:len(out)]
            np.multiply(v, float(_POW10[self.scale]), out=t)
            np.rint(t, out=t)
            np.copyto(out, t, casting="unsafe")
        else:
            np.copyto(out, v, casting="unsafe")


def _field(msg: Any, name: str, wire_type: int) -> bytes:
    """The key of a field of a generated message (its number from the
    descriptor) with a wire type: 0 varint, 2 length-delimited."""
    return varint(msg.DESCRIPTOR.fields_by_name[name].number << 3 | wire_type)


class _IngestEncoder:
    """The Ingest requests of a table's blocks, serialized by hand into the
    buffers of one scatter-gather send: the values go from the columns into
    one of a few reused NumPy buffers and from there to the socket, without
    the copies of building a message and of serializing it (each fresh
    megabyte also costs its page faults). The frame is what
    Request(ingest=Ingest(...)).SerializeToString() gives, without the
    request id, which the connection puts before it."""

    _REQ_INGEST = _field(pb.Request, "ingest", 2)
    _DATASET = _field(pb.Ingest, "dataset", 2)
    _BATCH_ID = _field(pb.Ingest, "client_batch_id", 0)
    _ROWS = _field(pb.Ingest, "rows", 2)
    _N_ROWS = _field(pb.Columns, "n_rows", 0)
    _COLUMNS = _field(pb.Columns, "columns", 2)
    _KIND = _field(pb.ColumnValues, "kind", 0)
    _SCALE = _field(pb.ColumnValues, "scale", 0)
    _VALUES = _field(pb.ColumnValues, "values", 2)

    def __init__(self, dataset: str, cols: List["_Col"], per: int, n_rows: int,
                 base_id: int) -> None:
        self.cols = cols
        self.per = per
        self.n_rows = n_rows
        self.base_id = base_id
        name = dataset.encode()
        self.dataset = self._DATASET + varint(len(name)) + name
        self.free: List[np.ndarray] = []  # buffers not in use
        self.lock = threading.Lock()
        self.tmp = np.empty(min(per, max(n_rows, 1)), dtype="<f8")  # the encoding thread's

    def encode(self, block: int) -> Tuple[List[Any], np.ndarray]:
        """The frame of a block as buffers, and the values' buffer, to be
        given back with release() once sent."""
        first = block * self.per
        count = min(self.per, self.n_rows - first)
        with self.lock:
            buf = self.free.pop() if self.free else None
        if buf is None:
            buf = np.empty((len(self.cols), min(self.per, self.n_rows)), dtype="<i8")
        nbytes = count * 8
        parts: List[Any] = []
        size = 0
        for j, c in enumerate(self.cols):
            out = buf[j, :count]
            c.fill(out, first, self.tmp)
            inner = self._KIND + varint(c.kind)
            if c.scale:
                inner += self._SCALE + varint(c.scale)
            inner += self._VALUES + varint(nbytes)
            head = self._COLUMNS + varint(len(inner) + nbytes) + inner
            parts += (head, out)
            size += len(head) + nbytes
        n = self._N_ROWS + varint(count)
        size += len(n)
        ingest = self.dataset + self._BATCH_ID + varint(self.base_id + block) + \
            self._ROWS + varint(size) + n
        size += len(ingest) - len(n)
        parts.insert(0, self._REQ_INGEST + varint(size) + ingest)
        return parts, buf

    def release(self, buf: np.ndarray) -> None:
        with self.lock:
            self.free.append(buf)

    def drop(self, encoded: "Deque[Future]") -> None:
        """Forget the blocks encoded ahead (their buffers are reused)."""
        for f in encoded:
            f.cancel()
        for f in encoded:
            if not f.cancelled():
                try:
                    self.release(f.result()[1])
                except Exception:  # noqa: BLE001 (encoding failed: nothing to give back)
                    pass
        encoded.clear()


class _Typed:
    """Columns already converted (ingest_csv): names and their _Col."""

    def __init__(self, names: List[str], cols: Dict[str, _Col]) -> None:
        self.names = names
        self.cols = cols


def _columns_of(A: np.ndarray) -> List[_Col]:
    """The columns of a 2-D array of numbers. Integer and boolean columns
    are integers; float ones exact decimals (or integers) when every value
    is the double nearest to a decimal of at most 9 digits after the point,
    at the fewest digits that hold them all (dream ingest's CSV reader keeps
    a column at its largest scale), else float64."""
    if A.dtype.kind in "iub":
        if A.dtype.kind == "u" and A.dtype.itemsize == 8 and A.size and A.max() >= 1 << 63:
            raise InvalidError("unsigned values of 2^63 and above do not fit a column")
        return [_Col(A[:, j], pb.COLUMN_KIND_INT) for j in range(A.shape[1])]
    if A.dtype.kind != "f":
        raise InvalidError(f"dtype {A.dtype}: expected numbers (integer, bool or float)")
    A = A.astype(np.float64, copy=False)
    return [_Col(A[:, j], pb.COLUMN_KIND_F64) if s is None else
            _Col(A[:, j], pb.COLUMN_KIND_DECIMAL if s else pb.COLUMN_KIND_INT, s, True)
            for j, s in enumerate(_decimal_scales(A))]


def _exact_at(v: np.ndarray, s: int) -> bool:
    """Each value of v is the double nearest to the decimal rint(v * 10^s)
    / 10^s, with |v| < 1e9 and |v| * 10^s < 1e18 (NaN and infinities are
    not)."""
    f = float(_POW10[s])
    t = np.rint(v * f)
    return bool(np.all((t / f == v) & (np.abs(v) < 1e9) & (np.abs(t) < 1e18)))


def _decimal_scales(A: np.ndarray) -> List[Optional[int]]:
    """Per column of A (n x d float64): the fewest decimals (0..9) at which
    _exact_at holds for all its values, or None (the column stays float64).
    One pass over A in blocks of rows, all columns at once; a column whose
    scale rises in a block is checked again over the rows before it."""
    n, d = A.shape
    if n == 0:
        return [None] * d
    scale: List[Optional[int]] = [0] * d
    live = list(range(d))  # the columns not float64 yet
    step = max(1024, (1 << 16) // d)
    i = 0
    while i < n and live:
        c = A[i:i + step] if len(live) == d else A[i:i + step, live]
        f = np.array([float(_POW10[scale[j] or 0]) for j in live])
        t = c * f
        np.rint(t, out=t)
        ok = t / f == c
        ok &= np.abs(t) < 1e18
        ok &= np.abs(c) < 1e9
        bad = np.flatnonzero(~ok.all(axis=0))
        if not bad.size:
            i += step
            continue
        for b in bad:  # rarely: the first block of a column, or more digits
            j = live[b]
            s = next((s for s in range((scale[j] or 0) + 1, 10) if _exact_at(c[:, b], s)), None)
            if s is not None and i and not _exact_at(A[:i, j], s):
                s = None
            scale[j] = s
        live = [j for j in live if scale[j] is not None]
    return scale


def _table(X: Any, y: Any, columns: Optional[Sequence[str]], label: Optional[str]
           ) -> Tuple[List[str], List[_Col], Optional[str]]:
    """Names, the columns and the target column's name."""
    names: List[str]
    cols: List[_Col] = []
    if isinstance(X, _Typed):
        names = list(X.names)
        cols = [X.cols[n] for n in names]
    elif hasattr(X, "columns") and hasattr(X, "dtypes"):  # a pandas DataFrame
        names = [str(c) for c in (columns if columns is not None else X.columns)]
        if len(names) != X.shape[1]:
            raise InvalidError(f"columns: {len(names)} names for {X.shape[1]} columns")
        for j in range(X.shape[1]):
            s = X.iloc[:, j]
            try:
                cols += _columns_of(s.to_numpy().reshape(-1, 1))
            except InvalidError as e:
                raise InvalidError(f"column '{names[j]}': {e.message}") from None
    else:
        A = np.asarray(X)
        if A.ndim == 1:
            A = A.reshape(-1, 1)
        if A.ndim != 2:
            raise InvalidError(f"X: a {A.ndim}-D array, expected rows x columns")
        names = [str(c) for c in columns] if columns is not None else \
            [f"x{j}" for j in range(A.shape[1])]
        if len(names) != A.shape[1]:
            raise InvalidError(f"columns: {len(names)} names for {A.shape[1]} columns")
        if A.dtype.kind in "iubf":
            cols = _columns_of(A)
        else:
            raise InvalidError(f"X: dtype {A.dtype}, expected numbers")
    target: Optional[str] = None
    if y is not None:
        yname = label or getattr(y, "name", None) or "label"
        ya = np.asarray(y)
        if ya.ndim != 1:
            ya = ya.reshape(-1)
        n = len(cols[0]) if cols else len(ya)
        if len(ya) != n:
            raise InvalidError(f"y: {len(ya)} values for {n} rows")
        if str(yname) in names:
            raise InvalidError(f"y: its name '{yname}' is also a column of X")
        names.append(str(yname))
        try:
            cols += _columns_of(ya.reshape(-1, 1))
        except InvalidError as e:
            raise InvalidError(f"y: {e.message}") from None
        target = str(yname)
    elif label != "\0":
        want = label or "label"
        if want in names:
            target = want
        elif label:
            raise InvalidError(f"label: no column named '{label}'")
    if not names:
        raise InvalidError("X: no columns")
    if len(set(names)) != len(names):
        raise InvalidError("columns: names must be unique")
    return names, cols, target


def _csv_column(s: Any) -> _Col:
    """A CSV column's cells as exact integers, exact decimals (up to 9
    digits after the point; trailing zeros do not count) or float64."""
    txt = s.str.strip().str.strip('"')
    if txt.str.fullmatch(r"[+-]?\d{1,18}").all():
        return _Col(txt.astype(np.int64).to_numpy(), pb.COLUMN_KIND_INT)
    m = txt.str.extract(r"^([+-]?)(\d*)\.(\d*?)0*$")
    plain = txt.str.fullmatch(r"[+-]?\d+")
    dec_ok = (m[1].notna() & ((m[1].str.len() > 0) | (m[2].str.len() > 0))) | plain
    if dec_ok.all() and len(txt):
        frac = m[2].fillna("")
        scale = int(frac.str.len().max())
        intpart = m[1].where(m[1].notna(), txt.str.lstrip("+-"))
        sign = m[0].where(m[0].notna(), txt.str[0].where(txt.str[0] == "-", ""))
        if 0 < scale <= 9 and (intpart.str.lstrip("0").str.len() + scale <= 18).all():
            digits = sign + intpart.where(intpart.str.len() > 0, "0") + frac.str.ljust(scale, "0")
            return _Col(digits.astype(np.int64).to_numpy(), pb.COLUMN_KIND_DECIMAL, scale)
    try:  # correctly rounded, as strtod (pandas' own parser is not)
        return _Col(np.array(txt.tolist(), dtype=np.float64), pb.COLUMN_KIND_F64)
    except ValueError as e:
        raise ValueError(f"not a number: {e}") from None
