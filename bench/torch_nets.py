#!/usr/bin/python3
"""bench/torch_nets.py - bench/bench_nets.cpp's work in PyTorch, for side-by-side ratios.

    /usr/bin/python3 bench/torch_nets.py [--threads N] [--quick]

Two nets, defined as PyTorch users write them:
  resnet8        examples/fashion_net_torch.py's ResNet8 (torchvision-style BasicBlocks)
  mnist_example  the Net of github.com/pytorch/examples mnist/main.py
and two workloads each, as in bench_nets.cpp:
  train_step_b64  one SGD step (momentum 0.9) on a batch of 64 random [1, 28, 28] images: median ms
  infer_b1000     eval mode, torch.no_grad(), a batch of 1000: images/s from the median batch
Output: a short table and lines `RESULT torch <threads> <metric> <value> <unit>` (cpu_* metrics:
the mean process CPU time per step / batch, as bench_nets prints). --threads N sets
OMP_NUM_THREADS before torch is imported, and torch.set_num_threads(N) (see bench/torch_e2e.py for
why both).
"""
import argparse
import os
import statistics
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--quick", action="store_true")
ARGS = ap.parse_args()
if ARGS.threads < 0:
    ap.error("--threads must be positive")
if ARGS.threads:
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
    os.environ["MKL_NUM_THREADS"] = str(ARGS.threads)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from fashion_net_torch import ResNet8  # noqa: E402  (examples/fashion_net_torch.py)

if ARGS.threads:
    torch.set_num_threads(ARGS.threads)


class MnistExampleNet(nn.Module):
    """pytorch/examples mnist/main.py's Net."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def main():
    torch.manual_seed(1)
    steps, reps = (5, 2) if ARGS.quick else (30, 7)
    threads = torch.get_num_threads()
    print(f"torch_nets: torch {torch.__version__}, {threads} thread(s)")
    print(f"{'net':15} {'train step':>12} {'infer b1000':>16}")
    for name, make, log_softmax in (("resnet8", ResNet8, False), ("mnist_example", MnistExampleNet, True)):
        model = make()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x64 = torch.randn(64, 1, 28, 28)
        y64 = torch.randint(0, 10, (64,))
        model.train()
        times = []
        for i in range(steps + 3):
            if i == 3:
                cpu0 = time.process_time()
            t0 = time.perf_counter()
            opt.zero_grad()
            out = model(x64)
            loss = F.nll_loss(out, y64) if log_softmax else F.cross_entropy(out, y64)
            loss.backward()
            opt.step()
            s = time.perf_counter() - t0
            if i >= 3:
                times.append(s)
        step_cpu = (time.process_time() - cpu0) / steps
        step = statistics.median(times)
        model.eval()
        x1000 = torch.randn(1000, 1, 28, 28)
        times = []
        with torch.no_grad():
            for i in range(reps + 1):
                if i == 1:
                    icpu0 = time.process_time()
                t0 = time.perf_counter()
                model(x1000)
                s = time.perf_counter() - t0
                if i >= 1:
                    times.append(s)
        infer_cpu = (time.process_time() - icpu0) / reps
        infer = statistics.median(times)
        print(f"{name:15} {step * 1e3:9.2f} ms {1000.0 / infer:10.0f} img/s")
        print(f"RESULT torch {threads} train_step_b64_{name} {step * 1e3:.6g} ms")
        print(f"RESULT torch {threads} infer_b1000_{name} {1000.0 / infer:.6g} img/s")
        print(f"RESULT torch {threads} cpu_train_step_b64_{name} {step_cpu * 1e3:.6g} ms")
        print(f"RESULT torch {threads} cpu_infer_b1000_{name} {infer_cpu * 1e3:.6g} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
