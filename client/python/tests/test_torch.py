"""dream.torch: the streaming dataset over DataLoader workers and
distributed ranks, the weighted loss, and a two-rank DDP run on loopback
(examples/ddp_train.py) against a single process."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader

from dream.torch import DreamDataset, shard_of, weighted_loss

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "ddp_train.py")


def test_workers_times_ranks_cover_each_epoch_once(client, server):
    n = 1001
    client.ingest("tids", np.arange(n, dtype=np.float64).reshape(-1, 1), np.arange(n),
                  task="regression")
    orders = []
    for epoch in (0, 1):
        got = []
        for rank in range(2):
            ds = DreamDataset("tids", batch_size=50, seed=9, addr=server.addr, rank=rank,
                              world_size=2)
            ds.set_epoch(epoch)
            for X, y, w in DataLoader(ds, batch_size=None, num_workers=2):
                assert X.dtype == torch.float32 and torch.equal(X[:, 0], y)
                assert torch.all(w == 1)
                got.append(y)
        allv = torch.cat(got).long()
        assert sorted(allv.tolist()) == list(range(n))  # every row once, no overlap
        orders.append(allv)
    assert not torch.equal(orders[0], orders[1])  # set_epoch: another permutation
    assert shard_of(1, 2, rank=1, world_size=2) == (3, 4)
    assert shard_of() == (0, 1)


def test_weighted_loss():
    loss = torch.tensor([1.0, 2.0, 3.0])
    assert weighted_loss(loss, None) == 2.0
    assert weighted_loss(loss, torch.tensor([1.0, 1.0, 2.0])) == 9.0 / 4
    # A condensed sample of weight 3 counts as three rows of weight 1.
    assert weighted_loss(torch.tensor([1.0, 5.0]), torch.tensor([3.0, 1.0])) == \
        weighted_loss(torch.tensor([1.0, 1.0, 1.0, 5.0]), torch.ones(4))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_ranks_match_one_process(client, server):
    def blobs(n, seed):
        r = np.random.default_rng(seed)
        y = r.integers(0, 4, n)
        centres = np.random.default_rng(99).normal(0, 1.2, (4, 16))
        return centres[y] + r.normal(0, 1, (n, 16)), y

    client.ingest("ddp", *blobs(4000, 1))
    client.ingest("ddp-test", *blobs(1000, 2))
    args = [EXAMPLE, "-s", server.addr, "--dataset", "ddp", "--test-dataset", "ddp-test",
            "--epochs", "3", "--batch-size", "64", "--hidden", "32", "--scale", "1",
            "--lr", "0.05"]
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    # The two ranks are started as torch.distributed.run would start them
    # (env:// rendezvous), without the launcher: on a loaded machine its
    # shutdown once outlived its ranks. The README shows the launcher.
    port = str(free_port())
    ranks = [subprocess.Popen([sys.executable] + args, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2",
                                       LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=port))
             for r in range(2)]
    one = subprocess.run([sys.executable] + args, env=env, capture_output=True, text=True,
                         timeout=240)
    outs = [p.communicate(timeout=240) for p in ranks]
    out2, err2 = outs[0][0], outs[0][1] + outs[1][1]
    assert one.returncode == 0, one.stderr
    assert all(p.returncode == 0 for p in ranks), err2
    r1 = json.loads(one.stdout.strip().splitlines()[-1])
    line = [x for x in out2.splitlines() if '"test_accuracy"' in x][-1]
    r2 = json.loads(line[line.index("{"):])
    assert (r1["ranks"], r2["ranks"]) == (1, 2)
    assert r1["test_accuracy"] > 0.9
    assert abs(r1["test_accuracy"] - r2["test_accuracy"]) <= 0.01
