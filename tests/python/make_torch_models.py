#!/usr/bin/python3
"""Write ONNX models the way other exporters write them, with seeded inputs, for check_torch_models.mjs.

    /usr/bin/python3 tests/python/make_torch_models.py OUTDIR

Two families, both made here at test time from Debian's python3-torch 1.13 and python3-onnx 1.12
(nothing is downloaded, no model file is committed):

  torch_*   small nets exported by torch.onnx.export (eval mode, dynamic batch axis via
            dynamic_axes) at opsets 9, 11, 13 and 17: BatchNorm2d, residual adds, depthwise and
            grouped convs, global/adaptive average pooling, MaxPool/AvgPool with ceil_mode,
            Flatten/view + Linear, eleven activations, softmax/log_softmax heads (2-D and over the
            channels of a 4-D map). A combination torch cannot export is skipped with torch's reason.
  hand_*    graphs built node by node with onnx.helper in the style of older converters and of
            tf2onnx: Conv with auto_pad, opset-6 Add with broadcast/axis, Reshape of a weight
            initializer, opset-6 BatchNormalization (is_test, spatial), NHWC Transpose around Conv,
            MaxPool with its Indices output. onnx.checker.check_model(full_check=True) must pass.

Every model is run at batch 1 and batch 3 (its first input dimension is symbolic). Inputs are
standard-normal float32 from numpy's PCG64 with a fixed seed per model, saved as TensorProto .pb.
OUTDIR gets the .onnx files, the inputs and manifest.json:
  {"seed": ..., "models": [{"name", "file", "source", "opset", "inputs": [names],
    "outputs": [{"name", "class_vector"}], "runs": [{"batch", "inputs": [files]}]}],
   "skipped": [{"name", "reason"}]}
("class_vector": the output is [batch, classes] scores whose argmax must agree.)
Prints one line per model or skip; exits 1 if a hand-built graph fails the checker or a torch
export fails for a reason other than an unsupported operator, 2 on a usage error.
"""
import io
import json
import os
import sys
import warnings

SEED = 20261203
BATCHES = (1, 3)
TORCH_OPSETS = (9, 11, 13, 17)


def fail(msg):
    print(f"make_torch_models.py: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# PyTorch nets. Weights come from torch's default init under a fixed seed; BatchNorm gets random
# running statistics and affine parameters so that it is not an identity in eval mode.
# ---------------------------------------------------------------------------------------------

def torch_nets(torch):
    nn = torch.nn
    F = torch.nn.functional

    class ResidualNet(nn.Module):
        """Conv-BN-ReLU stem, a residual block, depthwise (groups=C) and grouped convs, global
        average pooling, Flatten + Linear, log_softmax."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                       nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
            self.depthwise = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False),
                                           nn.BatchNorm2d(8), nn.ReLU())
            self.grouped = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, groups=2), nn.BatchNorm2d(16), nn.ReLU(),
                                         nn.Conv2d(16, 16, 1, groups=4))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))

        def forward(self, x):
            x = self.stem(x)
            x = F.relu(x + self.block(x))  # the residual add
            x = self.grouped(self.depthwise(x))
            return F.log_softmax(self.fc(self.pool(x)), dim=1)

    class PoolNet(nn.Module):
        """MaxPool and AvgPool with ceil_mode on odd sizes (partial last windows), AvgPool with and
        without count_include_pad, a padded MaxPool, adaptive pooling to 2x2 (exported as an
        AveragePool), x.view(N, -1) + Linear (Shape/Gather/Concat/Reshape on the dynamic batch),
        softmax."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3)
            self.max_ceil = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.avg_ceil = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)
            self.conv2 = nn.Conv2d(8, 8, 1)
            self.avg_excl = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
            self.max_pad = nn.MaxPool2d(3, stride=1, padding=1)
            self.fc = nn.Linear(8 * 2 * 2, 10)

        def forward(self, x):                       # [N, 3, 17, 17]
            x = self.max_ceil(self.conv1(x))        # 15 -> 7 (ceil)
            x = self.avg_ceil(x)                    # 7 -> 4 (ceil, padded)
            x = self.avg_excl(self.conv2(x))        # 4 -> 4
            x = F.adaptive_avg_pool2d(self.max_pad(x), (2, 2))  # 4 -> 4 -> 2
            return F.softmax(self.fc(x.view(x.size(0), -1)), dim=1)

    class ChannelHeads(nn.Module):
        """softmax and log_softmax over the channels of a 4-D map: torch writes these with
        Transpose/Reshape (opsets < 13) or with an axis (13+), a different graph per opset."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return F.softmax(y, dim=1), F.log_softmax(y, dim=1)

    class ActivationNet(nn.Module):
        """Conv -> act -> strided conv -> act -> global average pool -> Linear. The first
        activation's map is an output too, so the activation is compared element by element.
        The input is scaled by 3 so the conv outputs reach the regions where the activations bend
        (HardSigmoid saturates at +-3, ELU/SELU's exponential side, Softplus's curve)."""

        def __init__(self, make_act):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
            self.act1 = make_act(6)
            self.conv2 = nn.Conv2d(6, 6, 3, stride=2)
            self.act2 = make_act(6)
            self.fc = nn.Linear(6, 10)

        def forward(self, x):
            features = self.act1(self.conv1(3 * x))
            y = self.act2(self.conv2(features))
            return features, self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))

    def prelu(c):
        p = nn.PReLU(c)
        with torch.no_grad():
            p.weight.uniform_(-0.5, 0.5)  # per-channel slopes, some negative
        return p

    activations = {
        "leakyrelu": lambda c: nn.LeakyReLU(0.1),
        "elu": lambda c: nn.ELU(alpha=0.8),
        "selu": lambda c: nn.SELU(),
        "gelu": lambda c: nn.GELU(),
        "silu": lambda c: nn.SiLU(),
        "hardswish": lambda c: nn.Hardswish(),
        "hardsigmoid": lambda c: nn.Hardsigmoid(),
        "softplus": lambda c: nn.Softplus(),
        "prelu": prelu,
        "sigmoid": lambda c: nn.Sigmoid(),
        "tanh": lambda c: nn.Tanh(),
    }
    # (name, make module, input shape without batch, output names, which outputs are class vectors)
    nets = [
        ("residual", ResidualNet, (3, 16, 16), ["log_probs"], [True]),
        ("pools", PoolNet, (3, 17, 17), ["probs"], [True]),
        ("channel_heads", ChannelHeads, (3, 6, 6), ["softmax", "log_softmax"], [False, False]),
    ]
    for name, make in activations.items():
        nets.append((name, (lambda make=make: ActivationNet(make)), (3, 8, 8), ["features", "logits"], [False, True]))
    return nets


def randomize_batchnorm(torch, module):
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def export_torch(torch, onnx, out, models, skipped):
    ok = True
    for index, (name, make, shape, outputs, classes) in enumerate(torch_nets(torch)):
        for opset in TORCH_OPSETS:
            full = f"torch_{name}_opset{opset}"
            torch.manual_seed(SEED + index)  # the same weights at every opset
            net = make()
            randomize_batchnorm(torch, net)
            net.eval()
            dynamic = {"x": {0: "batch"}, **{o: {0: "batch"} for o in outputs}}
            buf = io.BytesIO()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch's export chatter (constant folding notes)
                    torch.onnx.export(net, torch.zeros((2,) + shape), buf, opset_version=opset,
                                      input_names=["x"], output_names=outputs, dynamic_axes=dynamic)
            except Exception as e:  # torch's own refusal: report it, it is not nanotorch's to pass
                reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                unsupported = "Unsupported" in type(e).__name__ or "not supported" in str(e) or "Unsupported" in str(e)
                if not unsupported:
                    print(f"ERROR {full}: torch.onnx.export failed: {reason}")
                    ok = False
                    continue
                print(f"skip  {full}: torch 1.13 cannot export it ({reason})")
                skipped.append({"name": full, "reason": f"torch.onnx.export: {reason}"})
                continue
            model = onnx.load_from_string(buf.getvalue())
            ok &= save_model(onnx, out, full, "torch.onnx.export " + torch.__version__, model, shape,
                             [{"name": o, "class_vector": c} for o, c in zip(outputs, classes)], models)
    return ok


# ---------------------------------------------------------------------------------------------
# Hand-built graphs (onnx.helper), each in the style of a converter that is not torch.
# ---------------------------------------------------------------------------------------------

def hand_graphs(onnx, np):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED)

    def init(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    def ints(name, values):
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    def io_info(name, dims, elem=TensorProto.FLOAT):
        return helper.make_tensor_value_info(name, elem, dims)

    graphs = []

    # auto_pad convs as Keras-era converters write them, all with uneven padding on the 8x8 input:
    # SAME_UPPER with kernel 3 stride 2 (total pad 1: 0 before, 1 after), SAME_LOWER with kernel 2
    # (total pad 1: 1 before, 0 after), VALID, and a SAME_UPPER MaxPool (3 -> 2: 0 before, 1 after).
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["y_upper"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Conv", ["x", "w2"], ["y_lower"], auto_pad="SAME_LOWER", kernel_shape=[2, 2]),
        helper.make_node("Conv", ["x", "w1"], ["v"], auto_pad="VALID", strides=[2, 2]),
        helper.make_node("MaxPool", ["v"], ["y_pool"], auto_pad="SAME_UPPER", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    g = helper.make_graph(nodes, "conv_auto_pad", [io_info("x", ["batch", 3, 8, 8])],
                          [io_info("y_upper", ["batch", 4, 4, 4]), io_info("y_lower", ["batch", 4, 8, 8]),
                           io_info("y_pool", ["batch", 4, 2, 2])],
                          [init("w1", 4, 3, 3, 3), init("b1", 4), init("w2", 4, 3, 2, 2)])
    graphs.append(("hand_conv_auto_pad", g, 11, (3, 8, 8), ["y_upper", "y_lower", "y_pool"], [False] * 3, {}))

    # An opset-6 graph as 2017-2018 converters (caffe2onnx, onnx-coreml era) wrote it: the conv
    # weight stored flat and reshaped by a Reshape whose shape is an initializer, the bias added
    # by a legacy Add with broadcast=1 axis=1, BatchNormalization with is_test/spatial, a Reshape
    # to [0, -1] (keeps the batch), Gemm-6 with its broadcast attribute, Softmax.
    # onnxruntime has no opset-6 kernels (it needs opset 7+: "Could not find an implementation for
    # Add(6)"), so it runs an opset-7 twin: the same initializers, the bias stored as [C, 1, 1]
    # (the multidirectional broadcasting that replaced broadcast/axis), no is_test, no Gemm
    # broadcast. The twin is written here rather than by onnx.version_converter because 1.12's
    # Add 6->7 adapter unsqueezes the [C] bias at axes 1,2,3 (to [C,1,1,1]), which broadcasts
    # against the batch instead of the channels.
    def legacy(opset):
        old = opset < 7
        w_flat, bias = init("w_flat", 4 * 3 * 3 * 3), init("bias", 4)
        if not old:
            bias = numpy_helper.from_array(numpy_helper.to_array(bias).reshape(4, 1, 1), "bias")
        nodes = [
            helper.make_node("Reshape", ["w_flat", "w_shape"], ["w"]),
            helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Add", ["c", "bias"], ["cb"], **({"broadcast": 1, "axis": 1} if old else {})),
            helper.make_node("BatchNormalization", ["cb", "gamma", "beta", "mean", "var"], ["bn"],
                             epsilon=1e-5, spatial=1, **({"is_test": 1} if old else {})),
            helper.make_node("Relu", ["bn"], ["r"]),
            helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Reshape", ["p", "flat_shape"], ["flat"]),
            helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, **({"broadcast": 1} if old else {})),
            helper.make_node("Softmax", ["logits"], ["probs"]),
        ]
        var = numpy_helper.from_array(rng.uniform(0.5, 2.0, 4).astype(np.float32), "var")
        return helper.make_graph(nodes, f"legacy_opset{opset}", [io_info("x", ["batch", 3, 8, 8])],
                                 [io_info("probs", ["batch", 10])],
                                 [w_flat, ints("w_shape", [4, 3, 3, 3]), bias, init("gamma", 4), init("beta", 4),
                                  init("mean", 4), var, ints("flat_shape", [0, -1]), init("fc_w", 10, 4 * 4 * 4),
                                  init("fc_b", 10)])

    state = rng.bit_generator.state
    g = legacy(6)
    rng.bit_generator.state = state  # the twin draws the same initializers
    graphs.append(("hand_legacy_opset6", g, 6, (3, 8, 8), ["probs"], [True], {"reference": (legacy(7), 7)}))

    # tf2onnx's NHWC pattern: the Keras input stays NHWC, each Conv is wrapped in Transposes
    # (perm 0,3,1,2 before, 0,2,3,1 after), SAME padding as auto_pad, a depthwise conv as
    # group=C, global pooling as ReduceMean over axes 1,2, Dense as MatMul + Add, tensor names
    # with ":0" as TensorFlow names them.
    nodes = [
        helper.make_node("Transpose", ["input_1:0"], ["t0"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t0", "conv2d/kernel", "conv2d/bias"], ["c0"], auto_pad="SAME_UPPER",
                         kernel_shape=[3, 3], strides=[1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "depthwise/kernel"], ["c1"], auto_pad="SAME_UPPER", kernel_shape=[3, 3],
                         strides=[2, 2], group=6),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Transpose", ["r1"], ["features:0"], perm=[0, 2, 3, 1]),
        helper.make_node("ReduceMean", ["features:0"], ["gap"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["gap", "dense/kernel"], ["mm"]),
        helper.make_node("Add", ["mm", "dense/bias"], ["dense:0"]),
        helper.make_node("Softmax", ["dense:0"], ["dense/Softmax:0"], axis=-1),
    ]
    g = helper.make_graph(nodes, "tf2onnx_nhwc", [io_info("input_1:0", ["batch", 8, 8, 3])],
                          [io_info("features:0", ["batch", 4, 4, 6]), io_info("dense/Softmax:0", ["batch", 10])],
                          [init("conv2d/kernel", 6, 3, 3, 3), init("conv2d/bias", 6), init("depthwise/kernel", 6, 1, 3, 3),
                           init("dense/kernel", 6, 10), init("dense/bias", 10)])
    graphs.append(("hand_tf2onnx_nhwc", g, 13, (8, 8, 3), ["features:0", "dense/Softmax:0"], [False, True], {}))

    # MaxPool's second output: the flat index of each maximum, counted over the whole NCHW input
    # (so batch 3 checks the batch term too): padded, in ceil_mode with a last window that hangs
    # over the edge (8 wide, kernel 3, stride 2: 4 windows, not 3), and dilated in ceil_mode
    # (effective kernel 3, the same 4 windows). Random inputs have no ties, so the indices are unique.
    nodes = [
        helper.make_node("MaxPool", ["x"], ["y", "indices"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["x"], ["y_ceil", "indices_ceil"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        helper.make_node("MaxPool", ["x"], ["y_dilated", "indices_dilated"], kernel_shape=[2, 2], strides=[2, 2],
                         dilations=[2, 2], ceil_mode=1),
    ]
    outputs = ["y", "indices", "y_ceil", "indices_ceil", "y_dilated", "indices_dilated"]
    g = helper.make_graph(nodes, "maxpool_indices", [io_info("x", ["batch", 2, 8, 8])],
                          [io_info(o, ["batch", 2, 4, 4], TensorProto.INT64 if o.startswith("indices") else TensorProto.FLOAT)
                           for o in outputs], [])
    graphs.append(("hand_maxpool_indices", g, 12, (2, 8, 8), outputs, [False] * len(outputs), {}))
    return graphs


def make_hand_model(onnx, graph, opset):
    from onnx import helper
    # IR version as a converter of that opset's time wrote it (IR 3 for opsets 6-7, IR 6/7 later).
    ir = {6: 3, 7: 3, 11: 6, 12: 7, 13: 7}[opset]
    if ir < 4:  # before IR 4 every initializer was also a graph input, and old converters wrote it so
        graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in graph.initializer)
    return helper.make_model(graph, producer_name="nanotorch make_torch_models.py (hand-built)",
                             opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)


def build_hand(onnx, np, out, models):
    ok = True
    for name, graph, opset, shape, outputs, classes, extra in hand_graphs(onnx, np):
        entry = {}
        if "reference" in extra:  # a twin for onnxruntime, checked like the model itself
            twin, twin_opset = extra["reference"]
            twin_model = make_hand_model(onnx, twin, twin_opset)
            try:
                onnx.checker.check_model(twin_model, full_check=True)
            except Exception as e:
                print(f"ERROR {name}: the opset-{twin_opset} twin fails onnx.checker: {str(e).strip().splitlines()[0]}")
                ok = False
                continue
            entry["reference_file"] = f"{name}_ort_opset{twin_opset}.onnx"
            onnx.save(twin_model, os.path.join(out, entry["reference_file"]))
        ok &= save_model(onnx, out, name, "onnx.helper", make_hand_model(onnx, graph, opset), shape,
                         [{"name": o, "class_vector": c} for o, c in zip(outputs, classes)], models, entry)
    return ok


# ---------------------------------------------------------------------------------------------

def save_model(onnx, out, name, source, model, shape, outputs, models, extra=None):
    """Checks `model`, writes it and its batch-1 and batch-3 inputs, and adds it to the manifest."""
    import numpy as np
    from onnx import numpy_helper
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        print(f"ERROR {name}: onnx.checker: {type(e).__name__}: {str(e).strip().splitlines()[0]}")
        return False
    file = name + ".onnx"
    onnx.save(model, os.path.join(out, file))
    inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    assert len(inputs) == 1, f"{name}: one graph input expected, got {inputs}"
    runs = []
    for batch in BATCHES:
        # A fixed seed per (model, batch): the name's bytes, so adding a model changes no other input.
        rng = np.random.default_rng([SEED, batch] + list(name.encode()))
        x = rng.standard_normal((batch,) + tuple(shape)).astype(np.float32)
        pb = f"{name}_b{batch}_x.pb"
        with open(os.path.join(out, pb), "wb") as f:
            f.write(numpy_helper.from_array(x, inputs[0]).SerializeToString())
        runs.append({"batch": batch, "inputs": [pb]})
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    ops = sorted({n.op_type for n in model.graph.node})
    models.append({"name": name, "file": file, "source": source, "opset": opset, "inputs": inputs,
                   "outputs": outputs, "runs": runs, **(extra or {})})
    print(f"model {name}: opset {opset}, {len(model.graph.node)} nodes ({' '.join(ops)})")
    return True


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print("usage: /usr/bin/python3 tests/python/make_torch_models.py OUTDIR", file=sys.stderr)
        return 2
    out = argv[1]
    try:
        import numpy as np
        import onnx
        import onnx.checker
        import torch
    except ImportError as e:
        fail(f"cannot import {e.name} ({e}); install Debian's python3-torch and python3-onnx")
    torch.set_num_threads(1)
    os.makedirs(out, exist_ok=True)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, numpy {np.__version__}; seed {SEED}; batches {BATCHES}")
    models, skipped = [], []
    ok = export_torch(torch, onnx, out, models, skipped)
    ok &= build_hand(onnx, np, out, models)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"seed": SEED, "models": models, "skipped": skipped}, f, indent=1)
    print(f"{len(models)} models written to {out}, {len(skipped)} skipped" + ("" if ok else "; ERRORS above"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
