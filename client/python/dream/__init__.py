"""dream: the Python client of dreamd (datasets, ingest, export, batches,
training, prediction) over the wire protocol of dream.proto, whose messages
(dream_pb2) protoc generates at build time.

    import dream
    with dream.Client("127.0.0.1:7878") as c:
        c.ingest("iris", X, y)
        for X, y, w in c.batches("iris", 256, mode="rows", epoch=0):
            ...

PyTorch integration (optional): :mod:`dream.torch`.
"""

from .client import (Batch, Client, Column, DatasetInfo, DatasetSummary, IngestResult, Job,
                     JobInfo, JobResult, Prediction)
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all

__version__ = "0.1.0"

__all__ = ["Client", "Column", "DatasetSummary", "DatasetInfo", "IngestResult", "Batch",
           "Job", "JobInfo", "JobResult", "Prediction"] + list(_errors_all)
