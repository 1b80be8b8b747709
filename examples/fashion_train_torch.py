#!/usr/bin/python3
"""examples/fashion_train_torch.py - fashion_train's recipe in PyTorch, for the README's comparison.

    /usr/bin/python3 examples/fashion_train_torch.py [--data DIR] [--epochs N] [--threads N]
                                                    [--seed N] [--limit N] [--batch-size N]

Trains the same ResNet-8 as examples/fashion_train.cpp (examples/fashion_net.hpp) with the
same recipe: RandomCrop(28, padding=2) + RandomHorizontalFlip() before Normalize, SGD (momentum
0.9, Nesterov, weight decay 5e-4 on every parameter) with OneCycleLR(max_lr 0.1) stepped per
batch, cross-entropy, batch 128, 6 epochs; prints the test accuracy after each epoch. The
augmentation is written here with torch ops (torchvision is not in Debian 12's python3-torch):
the same transforms, drawn from torch's generator, so the random streams differ from
nanotorch's (only the recipe is the same). Data: the gzipped IDX files of Debian's
dataset-fashion-mnist (scripts/fetch_fashion_mnist.sh), parsed with numpy.
"""
import argparse
import gzip
import os
import struct
import time

import numpy as np

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--data", default="data/fashion-mnist")
ap.add_argument("--epochs", type=int, default=6)
ap.add_argument("--batch-size", type=int, default=128)
ap.add_argument("--lr", type=float, default=0.1, help="OneCycleLR max_lr")
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--limit", type=int, default=0, help="train on the first N images only")
ARGS = ap.parse_args()
if ARGS.threads:  # before torch is imported: OpenMP sizes its pool when it loads
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from fashion_net_torch import ResNet8  # noqa: E402  (examples/, next to this script)

if ARGS.threads:
    torch.set_num_threads(ARGS.threads)

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's training-set pixel mean and standard deviation


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(ARGS.data, prefix + "-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = read_idx(os.path.join(ARGS.data, prefix + "-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def augment(x, gen):
    """RandomCrop(28, padding=2) then RandomHorizontalFlip(0.5), per image."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2))
    tops = torch.randint(0, 5, (n,), generator=gen)
    lefts = torch.randint(0, 5, (n,), generator=gen)
    out = torch.empty_like(x)
    for i in range(n):
        t, l = int(tops[i]), int(lefts[i])
        out[i] = padded[i, :, t:t + 28, l:l + 28]
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def main():
    torch.manual_seed(ARGS.seed)
    gen = torch.Generator().manual_seed(ARGS.seed)
    train_x, train_y = load("train")
    test_x, test_y = load("test")
    if ARGS.limit:
        train_x, train_y = train_x[:ARGS.limit], train_y[:ARGS.limit]
    test_x = (test_x - MEAN) / STD
    model = ResNet8()
    steps_per_epoch = (len(train_y) + ARGS.batch_size - 1) // ARGS.batch_size
    opt = torch.optim.SGD(model.parameters(), lr=ARGS.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=ARGS.lr, epochs=ARGS.epochs,
                                                steps_per_epoch=steps_per_epoch)
    print(f"torch {torch.__version__} | {torch.get_num_threads()} threads | train {len(train_y)}, test {len(test_y)}")
    for epoch in range(1, ARGS.epochs + 1):
        model.train()
        start = time.time()
        perm = torch.randperm(len(train_y), generator=gen)
        loss_sum, seen = 0.0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * ARGS.batch_size:(b + 1) * ARGS.batch_size]
            x = (augment(train_x[idx], gen) - MEAN) / STD
            y = train_y[idx]
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
        seconds = time.time() - start
        model.eval()
        correct, test_loss = 0, 0.0
        with torch.no_grad():
            for b in range(0, len(test_y), 1000):
                out = model(test_x[b:b + 1000])
                test_loss += F.cross_entropy(out, test_y[b:b + 1000], reduction="sum").item()
                correct += (out.argmax(1) == test_y[b:b + 1000]).sum().item()
        print(f"epoch {epoch}: train loss {loss_sum / seen:.4f}, test loss {test_loss / len(test_y):.4f}, "
              f"accuracy {100.0 * correct / len(test_y):.2f} %, {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
