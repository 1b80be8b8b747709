#!/usr/bin/python3
"""Writes the PyTorch-exported models that tests/test_onnx_torch.cpp runs through nanotorch's ONNX runtime.

Run with Debian's PyTorch 1.13 and ONNX 1.12 (python3-torch, python3-onnx), from the repository root:
    /usr/bin/python3 tests/data/torch/make_torch_models.py

The networks are the seed blog post's Net and InferenceNet, copied verbatim (including the implicit-dim
F.log_softmax(x) / F.softmax(x), which pick dim 1 for these 2-D logits). Their weights are PyTorch's default
initialisation after torch.manual_seed(1): no training is needed to check that the runtime computes what torch
computes. The models are exported exactly as the seed does (torch.onnx.export with its defaults, which export
in eval mode and fold constants):

  net_opset9.onnx            Net, dummy zeros(1, 1, 28, 28), opset 9: the seed's first export.
  net_opset13_dynamic.onnx   Net, opset 13 with dynamic_axes on the batch dimension, so view(-1, 320) is
                             exported as a Shape/Gather/Unsqueeze/Concat chain feeding Reshape.
  inference_opset9.onnx      InferenceNet, dummy zeros(280*280*4), opset 9: the model the seed serves.
  shapechain_opset{9,13}_dynamic.onnx
                             ShapeChainNet (below, not from the seed), dummy zeros(1, 1, 14, 14), dynamic
                             batch: flattening with x.view(x.size(0), -1) is exported as a
                             Shape/Gather/Unsqueeze/Concat chain (Unsqueeze's axes an attribute at 9,
                             an input at 13). Its inputs have batch sizes 1, 3 and 2.

For each model, K = 0..2:
  <model>_input_K.pb(.gz)    the input as a TensorProto (onnx.numpy_helper.from_array, raw float32).
                             InferenceNet's inputs are 280*280*4 floats (1.2 MB each), so they are
                             gzipped: they are canvases (integers 0..255, mostly zeros), which
                             compress ~40x. The C++ test gunzips them with nanotorch/data/gzip.hpp.
  <model>_output_K.pb        torch's output for that input (model.eval(), torch.no_grad()).
net_opset13_dynamic's inputs have batch sizes 1, 3 and 3 (the export's dummy has batch 1).
And once:
  param_<name>.pb            Net's state_dict entries (conv1.weight ...), raw float32 TensorProtos.

Everything is deterministic: fixed seed, fixed inputs, single-threaded torch, and gzip with mtime 0. onnx.checker
(full_check) validates every exported model. The script prints each model's opset and the op types of its
graph, and the total size of the files (kept under ~400 KB).
"""
import gzip
import os
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN, STANDARD_DEVIATION = 0.1307, 0.3081


# ---- the seed's networks, verbatim ----

class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
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
        x = self.fc2(x)

        return F.log_softmax(x)


class InferenceNet(nn.Module):
    def __init__(self):
        super(InferenceNet, self).__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = x.reshape(280, 280, 4)
        x = torch.narrow(x, dim=2, start=3, length=1)
        x = x.reshape(1, 1, 280, 280)
        x = F.avg_pool2d(x, 10, stride=10)
        x = x / 255
        x = (x - MEAN) / STANDARD_DEVIATION

        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.softmax(x)


class ShapeChainNet(nn.Module):
    """Not from the seed: a small CNN using the other common flattening idiom, x.view(x.size(0), -1).

    torch 1.13 exports the seed's view(-1, 320) as a Constant shape [-1, 320], even with a dynamic batch,
    so the seed's Net never produces a shape computation. x.size(0) does: with a dynamic batch axis it
    becomes Shape -> Gather -> Unsqueeze -> Concat -> Reshape, int64 arithmetic the runtime must run.
    Kept small (1x14x14 input, 1.5 K parameters) so its files cost a few KB.
    """

    def __init__(self):
        super(ShapeChainNet, self).__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3)
        self.fc = nn.Linear(4 * 6 * 6, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv(x), 2))
        x = x.view(x.size(0), -1)
        return F.log_softmax(self.fc(x), dim=1)


# ---- inputs ----

def mnist_like(gen, batch):
    """Normalised-MNIST-like images: background at (0 - MEAN) / STD, a random bright blob, plus noise."""
    x = torch.full((batch, 1, 28, 28), (0.0 - MEAN) / STANDARD_DEVIATION)
    for b in range(batch):
        r0, c0 = torch.randint(4, 14, (2,), generator=gen).tolist()
        x[b, 0, r0:r0 + 12, c0:c0 + 6] = (1.0 - MEAN) / STANDARD_DEVIATION
    return x + 0.3 * torch.randn(x.shape, generator=gen)


def canvas(kind, gen):
    """A 280x280 RGBA canvas as the browser's getImageData gives it, flattened to 280*280*4 floats.

    kind 0: empty (the seed's dummy input); 1: a thick '7' with anti-aliased edges;
    2: a ring (a '0') plus a 40x40 patch of random alpha values 0..255.
    RGB stay 0 (black strokes on a transparent canvas); only alpha carries the drawing.
    """
    img = np.zeros((280, 280, 4), dtype=np.float32)
    yy, xx = np.mgrid[0:280, 0:280].astype(np.float32)
    if kind == 1:
        top = np.abs(yy - 60) - 14                                   # horizontal bar at y = 60
        top = np.maximum(top, np.maximum(70 - xx, xx - 210))
        # diagonal from (210, 60) down to (110, 240): distance to the line, in pixels
        d = np.abs((xx - 210) * 180 + (yy - 60) * 100) / np.hypot(180, 100) - 14
        d = np.maximum(d, np.maximum(60 - yy, yy - 240))
        dist = np.minimum(top, d)
        img[..., 3] = np.round(255 * np.clip(0.5 - dist / 3, 0, 1))
    elif kind == 2:
        r = np.hypot(xx - 140, yy - 140)
        dist = np.abs(r - 80) - 15
        img[..., 3] = np.round(255 * np.clip(0.5 - dist / 3, 0, 1))
        patch = torch.randint(0, 256, (40, 40), generator=gen).numpy().astype(np.float32)
        img[200:240, 20:60, 3] = patch
    return torch.from_numpy(img.reshape(-1).copy())


# ---- files ----

def save_tensor(name, t, gz=False):
    proto = numpy_helper.from_array(t.detach().numpy().astype(np.float32), name=name)
    data = proto.SerializeToString()
    path = os.path.join(HERE, name + ".pb" + (".gz" if gz else ""))
    if gz:
        with open(path, "wb") as f:
            f.write(gzip.compress(data, compresslevel=9, mtime=0))
    else:
        with open(path, "wb") as f:
            f.write(data)
    return path


def export(model, dummy, name, **kwargs):
    path = os.path.join(HERE, name + ".onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the seed's implicit-dim softmax warns
        torch.onnx.export(model, dummy, path, **kwargs)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = []
    for n in m.graph.node:
        if n.op_type not in ops:
            ops.append(n.op_type)
    opsets = ", ".join("%s:%d" % (o.domain or "ai.onnx", o.version) for o in m.opset_import)
    print("%s: ir_version %d, opset %s" % (name, m.ir_version, opsets))
    print("  inputs:  %s" % [(i.name, [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim])
                             for i in m.graph.input])
    print("  outputs: %s" % [(o.name, [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim])
                             for o in m.graph.output])
    print("  initializers: %s" % [i.name for i in m.graph.initializer])
    print("  %d nodes, op types in order of first use: %s" % (len(m.graph.node), " ".join(ops)))
    return path


def write_cases(model, name, inputs, gz=False):
    with torch.no_grad():
        for k, x in enumerate(inputs):
            y = model(x)
            save_tensor("%s_input_%d" % (name, k), x, gz)
            save_tensor("%s_output_%d" % (name, k), y)
            print("  case %d: input %s -> output %s, argmax %s" %
                  (k, list(x.shape), list(y.shape), y.argmax(dim=1).tolist()))


def main():
    torch.set_num_threads(1)
    torch.manual_seed(1)
    net = Net()
    net.eval()
    for pname, p in net.state_dict().items():
        save_tensor("param_" + pname, p)

    infer = InferenceNet()
    infer.load_state_dict(net.state_dict())  # the seed's "same weights, softmax head"
    infer.eval()

    gen = torch.Generator().manual_seed(1)

    export(net, torch.zeros(1, 1, 28, 28), "net_opset9", opset_version=9)
    write_cases(net, "net_opset9", [torch.zeros(1, 1, 28, 28), mnist_like(gen, 1), mnist_like(gen, 1)])

    export(net, torch.zeros(1, 1, 28, 28), "net_opset13_dynamic", opset_version=13,
           input_names=["input"], output_names=["output"],
           dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    write_cases(net, "net_opset13_dynamic", [mnist_like(gen, 1), mnist_like(gen, 3), 3.0 * torch.randn(3, 1, 28, 28, generator=gen)])

    export(infer, torch.zeros(280 * 280 * 4), "inference_opset9", opset_version=9)
    write_cases(infer, "inference_opset9", [canvas(0, gen), canvas(1, gen), canvas(2, gen)], gz=True)

    chain = ShapeChainNet()
    chain.eval()
    for opset in (9, 13):
        name = "shapechain_opset%d_dynamic" % opset
        export(chain, torch.zeros(1, 1, 14, 14), name, opset_version=opset,
               input_names=["input"], output_names=["output"],
               dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        write_cases(chain, name, [torch.randn(1, 1, 14, 14, generator=gen), torch.randn(3, 1, 14, 14, generator=gen),
                                  torch.randn(2, 1, 14, 14, generator=gen)])

    total = sum(os.path.getsize(os.path.join(HERE, f)) for f in os.listdir(HERE) if not f.endswith(".py"))
    print("total size of the generated files: %d bytes" % total)


if __name__ == "__main__":
    main()
