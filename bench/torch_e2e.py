#!/usr/bin/python3
"""bench/torch_e2e.py - the workloads of bench/bench_e2e.cpp, in PyTorch, for side-by-side ratios.

    /usr/bin/python3 bench/torch_e2e.py [--threads N] [--quick] [--data DIR]

Runs what bench_e2e runs, with the seed's network defined as in the seed's blog post:
  train_epoch     one pass over the 60k training images: SGD lr 0.01 momentum 0.5, batch 64,
                  shuffled, dropout on, data preloaded as one normalized tensor (no DataLoader, no
                  worker processes). --quick trains on 6400 images and scales the time to 60k.
  infer_b1000     eval mode, torch.no_grad(), the 10k test images in batches of 1000: images/s.
  latency_net28   Net on one [1, 1, 28, 28] image, eval mode, no_grad: median of many calls.
  latency_canvas  the seed's InferenceNet on the [313600] RGBA canvas (reshape, alpha channel,
                  avg_pool2d(10), normalize, the net, softmax).
The MNIST IDX files are parsed here with numpy (no torchvision, nothing is downloaded); when they
are missing, deterministic synthetic data of the same shapes is used and a NOTE line says so.
Output: a short table and lines `RESULT torch <threads> <metric> <value> <unit>`, the format
bench_e2e prints, which scripts/bench.sh collects. --threads N sets OMP_NUM_THREADS and
MKL_NUM_THREADS to N before torch is imported, and torch.set_num_threads(N): set_num_threads alone
leaves the OpenMP pool that import sized to all cores, and on a loaded machine its idle threads
made a 1-thread epoch 3x slower here. Inter-op threads are left alone (no parallel branches).
"""
import argparse
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: torch's own)")
    ap.add_argument("--quick", action="store_true", help="6400 training images (scaled to 60k), fewer samples")
    ap.add_argument("--data", default="data/mnist", help="MNIST IDX files (default data/mnist)")
    args = ap.parse_args()
    if args.threads < 0:
        ap.error("--threads must be positive")
    return args


ARGS = parse_args()
if ARGS.threads:  # before torch is imported: OpenMP sizes its pool when it loads
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
    os.environ["MKL_NUM_THREADS"] = str(ARGS.threads)

import torch  # noqa: E402  (after the environment is set)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Net(nn.Module):
    """The seed's network, line for line."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def logits(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return self.fc2(x)

    def forward(self, x):
        return F.log_softmax(self.logits(x), dim=1)


class InferenceNet(Net):
    """The seed's canvas model: raw 280*280*4 RGBA floats in, probabilities out."""

    def forward(self, x):
        x = x.reshape(280, 280, 4)
        x = torch.narrow(x, dim=2, start=3, length=1)
        x = x.reshape(1, 1, 280, 280)
        x = F.avg_pool2d(x, 10, stride=10)
        x = x / 255
        x = (x - 0.1307) / 0.3081
        return F.softmax(self.logits(x), dim=1)


def read_idx(path):
    """numpy array of an IDX file (raw or .gz), checking the magic and the size."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    rank = raw[3]
    dims = struct.unpack(">" + "I" * rank, raw[4:4 + 4 * rank])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data for dims {dims}")
    return data.reshape(dims)


def find(dirname, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(dirname, name)
        if os.path.exists(p):
            return p
    return None


def load(dirname, split):
    """(images [N, 1, 28, 28] normalized float32, labels int64) or None when the files are missing."""
    img, lbl = find(dirname, f"{split}-images-idx3-ubyte"), find(dirname, f"{split}-labels-idx1-ubyte")
    if img is None or lbl is None:
        return None
    x = torch.from_numpy(read_idx(img).astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(read_idx(lbl).astype(np.int64))
    return (x - 0.1307) / 0.3081, y


def synthetic(n, seed):
    """MNIST-shaped data (about 19 % of pixels lit), normalized like the real thing."""
    g = np.random.default_rng(seed)
    lit = g.random((n, 1, 28, 28)) < 0.19
    x = np.where(lit, g.random((n, 1, 28, 28)), 0.0).astype(np.float32)
    y = g.integers(0, 10, n).astype(np.int64)
    return (torch.from_numpy(x) - 0.1307) / 0.3081, torch.from_numpy(y)


def train_pass(model, opt, x, y):
    model.train()
    n = x.shape[0]
    t0 = time.perf_counter()
    perm = torch.randperm(n)
    for start in range(0, n, 64):
        idx = perm[start:start + 64]
        data, target = x[idx], y[idx]
        opt.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        opt.step()
    s = time.perf_counter() - t0
    if not torch.isfinite(loss):
        sys.exit("torch_e2e: training produced a non-finite loss")
    return s


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def quantile(v, q):
    v = sorted(v)
    return v[int(q * (len(v) - 1) + 0.5)]


def main():
    args = ARGS
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    torch.manual_seed(1)

    train, test = load(args.data, "train"), load(args.data, "t10k")
    real = train is not None and test is not None
    if not real:
        print(f"MNIST not found in {args.data}: using SYNTHETIC data of MNIST's shape")
        train, test = synthetic(60000, 1), synthetic(10000, 2)
    print(f"torch_e2e: PyTorch {torch.__version__}, {threads} thread(s), {'MNIST' if real else 'SYNTHETIC'} data, "
          f"{'--quick' if args.quick else 'full'}")

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    train_pass(model, opt, train[0][:640], train[1][:640])  # warm-up
    n = 6400 if args.quick else train[0].shape[0]
    epoch_s = train_pass(model, opt, train[0][:n], train[1][:n]) * 60000.0 / n

    model.eval()
    pass_s = []
    with torch.no_grad():
        for p in range(2 if args.quick else 5):
            t0 = time.perf_counter()
            for b in range(0, test[0].shape[0], 1000):
                model(test[0][b:b + 1000])
            if p > 0:  # pass 0 warms up
                pass_s.append((time.perf_counter() - t0) / test[0].shape[0])
    infer_ips = 1.0 / median(pass_s)

    canvas_net = InferenceNet()
    canvas_net.load_state_dict(model.state_dict())
    canvas_net.eval()
    digit = test[0][:1].contiguous()
    digit01 = digit * 0.3081 + 0.1307
    canvas = torch.zeros(280, 280, 4)
    canvas[:, :, 3] = digit01[0, 0].repeat_interleave(10, 0).repeat_interleave(10, 1) * 255.0
    canvas = canvas.reshape(-1).contiguous()

    variants = [("latency_net28", "28x28 net", lambda: model(digit)),
                ("latency_canvas", "canvas model", lambda: canvas_net(canvas))]
    samples = {m: [] for m, _, _ in variants}
    rounds = 300 if args.quick else 3000
    with torch.no_grad():
        for _, _, fn in variants:
            for _ in range(50):
                fn()
        for _ in range(rounds):
            for metric, _, fn in variants:
                t0 = time.perf_counter()
                fn()
                samples[metric].append(time.perf_counter() - t0)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    print(f"{'workload':34} {'value':>12}")
    print(f"{'training epoch (60k, batch 64)':34} {epoch_s:10.2f} s" +
          ("" if n == 60000 else f"  scaled from {n} images (--quick)"))
    print(f"{'inference, batch 1000':34} {infer_ips:8.0f} img/s")
    for metric, label, _ in variants:
        s = samples[metric]
        print(f"{label + ', eager':34} {median(s) * 1e6:9.1f} us  q1 {quantile(s, .25) * 1e6:.1f}, "
              f"q3 {quantile(s, .75) * 1e6:.1f}, {len(s)} calls")
    print(f"{'peak RSS of this process':34} {rss_mb:9.1f} MB")
    print(f"RESULT torch {threads} train_epoch {epoch_s:.6g} s")
    print(f"RESULT torch {threads} infer_b1000 {infer_ips:.6g} img/s")
    for metric, _, _ in variants:
        print(f"RESULT torch {threads} {metric} {median(samples[metric]) * 1e6:.6g} us")
    print(f"RESULT torch {threads} peak_rss {rss_mb:.6g} MB")
    if not real:
        print("NOTE synthetic data")


if __name__ == "__main__":
    main()
