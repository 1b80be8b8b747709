#!/usr/bin/python3
"""bench/torch_ddp.py - bench/bench_ddp.cpp's steps in PyTorch DDP over gloo, for side-by-side ratios.

    /usr/bin/python3 bench/torch_ddp.py [--world N] [--threads N] [--steps N] [--warmup N] [--quick]

The seed's Net (examples/mnist_net.hpp's PyTorch original), a global batch of 64 random images
split across --world processes (torch.multiprocessing, gloo on 127.0.0.1), SGD lr 0.01 momentum
0.5, nll_loss; one process (--world 1) trains the plain model without DDP. As in bench_ddp: the
wall time of --steps steps after --warmup untimed ones, divided by --steps, on rank 0 after a
barrier. Output: `RESULT torch <world>x<threads> seed ms_per_batch X`.
"""
import argparse
import os
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--world", type=int, default=1)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--steps", type=int, default=200)
ap.add_argument("--warmup", type=int, default=20)
ap.add_argument("--global-batch", type=int, default=64)
ap.add_argument("--quick", action="store_true")
ARGS = ap.parse_args()
if ARGS.quick:
    ARGS.steps, ARGS.warmup = 10, 2
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)  # before torch is imported (see torch_e2e.py)
os.environ["MKL_NUM_THREADS"] = str(ARGS.threads)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Net(nn.Module):
    """The seed's Net."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def worker(rank, world, port):
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(1)
    model = Net()
    if world > 1:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    g = torch.Generator().manual_seed(7)
    x_all = torch.randn(ARGS.global_batch, 1, 28, 28, generator=g)
    lo, hi = rank * ARGS.global_batch // world, (rank + 1) * ARGS.global_batch // world
    x = x_all[lo:hi].contiguous()
    y = torch.arange(lo, hi) % 10
    model.train()
    start = 0.0
    for s in range(ARGS.warmup + ARGS.steps):
        if s == ARGS.warmup:
            if world > 1:
                dist.barrier()
            start = time.perf_counter()
        opt.zero_grad()
        F.nll_loss(model(x), y).backward()
        opt.step()
    if world > 1:
        dist.barrier()
    per_batch = (time.perf_counter() - start) * 1000.0 / ARGS.steps
    if rank == 0:
        print(f"torch_ddp: seed net, global batch {ARGS.global_batch}, {world} process(es) x {ARGS.threads} "
              f"thread(s){' (DDP, gloo)' if world > 1 else ''}, {ARGS.steps} steps: {per_batch:.3f} ms per global batch")
        print(f"RESULT torch {world}x{ARGS.threads} seed ms_per_batch {per_batch:.4f}", flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    if ARGS.world == 1:
        worker(0, 1, 0)
    else:
        port = 29500 + os.getpid() % 1000
        mp.spawn(worker, args=(ARGS.world, port), nprocs=ARGS.world, join=True)
