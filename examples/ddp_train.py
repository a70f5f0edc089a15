#!/usr/bin/python3
"""Train an MLP on Fashion-MNIST with torch DistributedDataParallel (gloo,
CPU), every rank streaming its shard of each epoch from dreamd.

Ingest the data once (the dataset-fashion-mnist package's IDX files):

    dream ingest fashion /usr/share/dataset-fashion-mnist/train-images-idx3-ubyte.gz \\
        --labels /usr/share/dataset-fashion-mnist/train-labels-idx1-ubyte.gz
    dream ingest fashion-test /usr/share/dataset-fashion-mnist/t10k-images-idx3-ubyte.gz \\
        --labels /usr/share/dataset-fashion-mnist/t10k-labels-idx1-ubyte.gz

Two processes on this machine:

    python3 -m torch.distributed.run --nproc_per_node 2 examples/ddp_train.py

Two hosts (one launcher per host; dreamd's address in DREAM_ADDR or -s):

    host A: python3 -m torch.distributed.run --nnodes 2 --node_rank 0 --nproc_per_node 1 \\
              --master_addr A --master_port 29500 examples/ddp_train.py -s DREAMD:7878
    host B: the same with --node_rank 1

The global batch (--batch-size) is split over the ranks, so a run on any
number of ranks takes the same optimisation steps on the same data. Rank 0
prints the test accuracy after each epoch and, at the end, one JSON line.
"""

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

import dream
from dream.torch import DreamDataset, weighted_loss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-s", "--server", default=None, help="dreamd address (default $DREAM_ADDR)")
    ap.add_argument("--token-file", default=None)
    ap.add_argument("--dataset", default="fashion")
    ap.add_argument("--test-dataset", default="fashion-test")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=256, help="global batch (all ranks)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--scale", type=float, default=1 / 255, help="feature scale (pixels: 1/255)")
    ap.add_argument("--mode", default="rows", help="rows, condensed or sample")
    ap.add_argument("--budget", type=float, default=None)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers per rank")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)

    client = dream.Client(a.server, token_file=a.token_file)
    info = client.info(a.dataset)
    d = len(info.feature_names)
    classes = info.class_count or 10
    if rank == 0:
        Xt, yt = client.export(a.test_dataset)
        Xt = torch.from_numpy(Xt.astype(np.float32) * a.scale)
        yt = torch.from_numpy(yt.astype(np.int64))

    model = torch.nn.Sequential(torch.nn.Linear(d, a.hidden), torch.nn.ReLU(),
                                torch.nn.Linear(a.hidden, classes))
    if distributed:
        model = DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
    ds = DreamDataset(a.dataset, batch_size=max(1, a.batch_size // world), mode=a.mode,
                      budget=a.budget, seed=a.seed, addr=client.addr,
                      token_file=a.token_file, y_dtype=torch.long)
    loader = DataLoader(ds, batch_size=None, num_workers=a.workers)
    acc = 0.0
    for epoch in range(a.epochs):
        ds.set_epoch(epoch)
        t0 = time.monotonic()
        model.train()
        rows = 0
        # Shards differ by at most one row, so a rank may have one batch
        # fewer: DDP's join lets it shadow the others' last all-reduce.
        with model.join() if distributed else contextlib.nullcontext():
            for X, y, w in loader:
                opt.zero_grad()
                loss = weighted_loss(F.cross_entropy(model(X * a.scale), y, reduction="none"), w)
                loss.backward()
                opt.step()
                rows += len(y)
        if rank == 0:
            net = model.module if distributed else model  # no collectives: rank 0 only
            net.eval()
            with torch.no_grad():
                acc = float((net(Xt * a.scale).argmax(1) == yt).float().mean())
            print(f"epoch {epoch + 1}/{a.epochs}: {rows} rows on rank 0 in "
                  f"{time.monotonic() - t0:.2f}s, test accuracy {acc:.4f}", file=sys.stderr)
    if rank == 0:
        print(json.dumps({"ranks": world, "epochs": a.epochs, "test_accuracy": acc}))
    client.close()
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
