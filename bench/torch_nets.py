#!/usr/bin/python3
"""bench/torch_nets.py - bench/bench_nets.cpp's work in PyTorch, for side-by-side ratios.

    /usr/bin/python3 bench/torch_nets.py [--threads N] [--quick]

Three nets, defined as PyTorch users write them:
  resnet8        examples/fashion_net_torch.py's ResNet8 (torchvision-style BasicBlocks)
  mnist_example  the Net of github.com/pytorch/examples mnist/main.py
  vgg            issue #12's VGG-style CIFAR net on [3, 32, 32]: three stages of two 3x3 convs
                 (padding 1), ReLU after each, 64/128/256 channels, max-pool 2 after every stage
                 (the last too: the fc sees 256x4x4), fc 4096->10, cross-entropy (as bench_nets.cpp)
and two workloads each, as in bench_nets.cpp:
  train_step_b64  one SGD step (momentum 0.9) on a batch of 64 random images: median ms
  infer_b1000     eval mode, torch.no_grad(), a batch of 1000: images/s from the median batch
(vgg takes fewer samples, as in bench_nets.cpp: 10 steps after 2 warm-up, 3 batches after 1;
--quick: 2 steps after 1, one batch without warm-up). Then single conv2d layers forward +
backward (input, weight and bias gradients; a fixed output gradient) at batch 64 on the shapes
bench_nets.cpp times: conv_fb_b64_<shape>, median ms.
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


class Vgg(nn.Module):
    """Issue #12's VGG-style CIFAR net; bench_nets.cpp's VggNet is the same."""

    def __init__(self):
        super().__init__()
        self.conv1a = nn.Conv2d(3, 64, 3, padding=1)
        self.conv1b = nn.Conv2d(64, 64, 3, padding=1)
        self.conv2a = nn.Conv2d(64, 128, 3, padding=1)
        self.conv2b = nn.Conv2d(128, 128, 3, padding=1)
        self.conv3a = nn.Conv2d(128, 256, 3, padding=1)
        self.conv3b = nn.Conv2d(256, 256, 3, padding=1)
        self.fc = nn.Linear(256 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1b(F.relu(self.conv1a(x)))), 2)  # 64 x 16 x 16
        x = F.max_pool2d(F.relu(self.conv2b(F.relu(self.conv2a(x)))), 2)  # 128 x 8 x 8
        x = F.max_pool2d(F.relu(self.conv3b(F.relu(self.conv3a(x)))), 2)  # 256 x 4 x 4
        return self.fc(torch.flatten(x, 1))


# bench_nets.cpp's conv_cases: (metric suffix, in channels, out channels, kernel, stride, padding, plane)
CONV_CASES = (
    ("3x3p1_48to96_20x20", 48, 96, 3, 1, 1, 20),
    ("3x3p1_96to96_10x10", 96, 96, 3, 1, 1, 10),
    ("3x3s2p1_24to40_30x30", 24, 40, 3, 2, 1, 30),
    ("5x5p2_40to80_12x12", 40, 80, 5, 1, 2, 12),
    ("1x1_160to64_9x9", 160, 64, 1, 1, 0, 9),
)


def bench_convs(threads):
    warmup, reps = 3, (3 if ARGS.quick else 30)
    print(f"{'conv2d fwd+bwd, b64':22} {'time':>12}")
    for desc, cin, cout, k, stride, pad, hw in CONV_CASES:
        x = torch.randn(64, cin, hw, hw, requires_grad=True)
        w = torch.randn(cout, cin, k, k, requires_grad=True)
        b = torch.randn(cout, requires_grad=True)
        ohw = (hw + 2 * pad - k) // stride + 1
        grad_out = torch.randn(64, cout, ohw, ohw)  # fixed, as in bench_nets.cpp
        times = []
        for i in range(warmup + reps):
            x.grad = w.grad = b.grad = None
            t0 = time.perf_counter()
            out = F.conv2d(x, w, b, stride=stride, padding=pad)
            out.backward(grad_out)
            s = time.perf_counter() - t0
            if i >= warmup:
                times.append(s)
        t = statistics.median(times)
        print(f"{desc:22} {t * 1e3:9.3f} ms")
        print(f"RESULT torch {threads} conv_fb_b64_{desc} {t * 1e3:.6g} ms")


def main():
    torch.manual_seed(1)
    steps, reps = (5, 2) if ARGS.quick else (30, 7)
    threads = torch.get_num_threads()
    print(f"torch_nets: torch {torch.__version__}, {threads} thread(s)")
    print(f"{'net':15} {'train step':>12} {'infer b1000':>16}")
    nets = (("resnet8", ResNet8, False, (1, 28, 28), False),
            ("mnist_example", MnistExampleNet, True, (1, 28, 28), False),
            ("vgg", Vgg, False, (3, 32, 32), True))
    for name, make, log_softmax, image, heavy in nets:
        train_warmup = (1 if ARGS.quick else 2) if heavy else 3
        train_steps = (2 if ARGS.quick else 10) if heavy else steps
        infer_warmup = 0 if heavy and ARGS.quick else 1
        infer_reps = (1 if ARGS.quick else 3) if heavy else reps
        model = make()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x64 = torch.randn(64, *image)
        y64 = torch.randint(0, 10, (64,))
        model.train()
        times = []
        for i in range(train_steps + train_warmup):
            if i == train_warmup:
                cpu0 = time.process_time()
            t0 = time.perf_counter()
            opt.zero_grad()
            out = model(x64)
            loss = F.nll_loss(out, y64) if log_softmax else F.cross_entropy(out, y64)
            loss.backward()
            opt.step()
            s = time.perf_counter() - t0
            if i >= train_warmup:
                times.append(s)
        step_cpu = (time.process_time() - cpu0) / train_steps
        step = statistics.median(times)
        model.eval()
        x1000 = torch.randn(1000, *image)
        times = []
        with torch.no_grad():
            for i in range(infer_reps + infer_warmup):
                if i == infer_warmup:
                    icpu0 = time.process_time()
                t0 = time.perf_counter()
                model(x1000)
                s = time.perf_counter() - t0
                if i >= infer_warmup:
                    times.append(s)
        infer_cpu = (time.process_time() - icpu0) / infer_reps
        infer = statistics.median(times)
        print(f"{name:15} {step * 1e3:9.2f} ms {1000.0 / infer:10.0f} img/s")
        print(f"RESULT torch {threads} train_step_b64_{name} {step * 1e3:.6g} ms")
        print(f"RESULT torch {threads} infer_b1000_{name} {1000.0 / infer:.6g} img/s")
        print(f"RESULT torch {threads} cpu_train_step_b64_{name} {step_cpu * 1e3:.6g} ms")
        print(f"RESULT torch {threads} cpu_infer_b1000_{name} {infer_cpu * 1e3:.6g} ms")
        sys.stdout.flush()  # the heavy net takes a while: show each row when it is done
    bench_convs(threads)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
