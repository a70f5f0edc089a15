"""PyTorch integration: a streaming dataset of dreamd batches and a weighted
loss for condensed batches. Needs torch (Debian's python3-torch); importing
:mod:`dream` alone does not.

Each epoch's rows are split disjointly over the DataLoader workers and the
torch.distributed ranks: worker w of rank r streams shard
``(r * workers + w, world_size * workers)`` of the epoch from the server,
every shard cut from the same permutation (seed, epoch), so together they
serve every row (position) of the epoch exactly once.
"""

from __future__ import annotations

from typing import Iterator, Optional, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from .client import Client

__all__ = ["DreamDataset", "weighted_loss", "shard_of"]


def shard_of(worker_id: int = 0, num_workers: int = 1, rank: Optional[int] = None,
             world_size: Optional[int] = None) -> Tuple[int, int]:
    """The (index, count) shard of a DataLoader worker on a rank; rank and
    world size default to torch.distributed's when it is initialised, else
    (0, 1)."""
    if rank is None or world_size is None:
        if dist.is_available() and dist.is_initialized():
            rank, world_size = dist.get_rank(), dist.get_world_size()
        else:
            rank, world_size = 0, 1
    return rank * num_workers + worker_id, world_size * num_workers


class DreamDataset(IterableDataset):
    """An IterableDataset of mini-batches streamed from dreamd: each item is
    a tuple of tensors (X (n, d) float32, y (n,) float32, weight (n,)
    float32); use it with ``DataLoader(ds, batch_size=None)``.

    Args:
        dataset: the dataset's name on the server.
        batch_size: rows per batch (per worker and rank).
        mode: "rows" (every row once per epoch), "condensed" (weighted
            condensed samples) or "sample".
        budget: condensed/sample budget, a fraction (float) or a row count.
        seed: the permutation's seed; the epoch is set with :meth:`set_epoch`.
        addr, token, token_file, timeout: as :class:`dream.Client`; each
            worker opens its own connection.
        rank, world_size: override torch.distributed's.
        y_dtype: dtype of the targets (e.g. torch.long for class labels).
    """

    def __init__(self, dataset: str, batch_size: int = 256, mode: str = "rows",
                 budget: Union[None, float, int] = None, seed: int = 0,
                 addr: Optional[str] = None, token: Optional[str] = None,
                 token_file: Optional[str] = None, timeout: Optional[float] = 60.0,
                 rank: Optional[int] = None, world_size: Optional[int] = None,
                 y_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.dataset = dataset
        self.batch_size = batch_size
        self.mode = mode
        self.budget = budget
        self.seed = seed
        self.epoch = 0
        self.addr = addr
        self.token = token
        self.token_file = token_file
        self.timeout = timeout
        self.rank = rank
        self.world_size = world_size
        self.y_dtype = y_dtype

    def set_epoch(self, epoch: int) -> None:
        """The epoch to stream next (its permutation): call before each
        epoch, as with DistributedSampler."""
        self.epoch = epoch

    def shard(self) -> Tuple[int, int]:
        """This process's (and DataLoader worker's) shard of the epoch."""
        w = get_worker_info()
        return shard_of(w.id if w else 0, w.num_workers if w else 1, self.rank, self.world_size)

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]]:
        shard = self.shard()
        # A connection per epoch and worker: nothing to share or pickle.
        with Client(self.addr, token=self.token, timeout=self.timeout,
                    token_file=self.token_file) as c:
            for X, y, w in c.batches(self.dataset, self.batch_size, mode=self.mode,
                                     budget=self.budget, seed=self.seed, epoch=self.epoch,
                                     shard=shard if shard[1] > 1 else None):
                # Copies: the received arrays are read-only views of the reply.
                yield (torch.from_numpy(np.array(X)),
                       None if y is None else torch.from_numpy(np.array(y)).to(self.y_dtype),
                       torch.from_numpy(np.array(w)))


def weighted_loss(loss: torch.Tensor, weight: Optional[torch.Tensor]) -> torch.Tensor:
    """The weighted mean of per-sample losses (a loss computed with
    ``reduction="none"``): sum(loss * weight) / sum(weight). For condensed
    batches, whose weights are the sizes of the groups each sample stands
    for, this is the loss over the rows the samples represent; with weights
    of 1 it is the plain mean."""
    if weight is None:
        return loss.mean()
    weight = weight.to(loss.dtype)
    return (loss * weight).sum() / weight.sum().clamp_min(torch.finfo(loss.dtype).tiny)
