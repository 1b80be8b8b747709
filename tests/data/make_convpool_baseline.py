#!/usr/bin/python3
"""Writes tests/data/convpool_baseline.hpp (and tests/data/torch/convpool_opset13.onnx): PyTorch's
values for grouped/depthwise/1x1 conv2d, ceil_mode pooling and adaptive_avg_pool2d, forward and
gradients, on fixed inputs. Run once with Debian's python3-torch (PyTorch 1.13):
    /usr/bin/python3 tests/data/make_convpool_baseline.py
The inputs are small exact fractions from a fixed formula, so the C++ test rebuilds nothing: it
reads inputs and expected outputs from the header."""
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def fill(shape, seed, scale=1.0):
    n = 1
    for d in shape:
        n *= d
    vals = [scale * ((((i + 1) * (37 + 2 * seed) + 11 * seed) % 97) / 48.0 - 1.0) for i in range(n)]
    return torch.tensor(vals, dtype=torch.float32).reshape(shape)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def lit(x):
    s = "%.9g" % x
    return s + (".0f" if all(c not in s for c in ".en") else "f")


def arr(name, t):
    v = flat(t)
    rows = [", ".join(lit(x) for x in v[i:i + 10]) for i in range(0, len(v), 10)]
    return "inline constexpr float %s[%d] = {\n    %s};\n" % (name, len(v), ",\n    ".join(rows))


def dims(t):
    return "{" + ", ".join(str(d) for d in t.shape) + "}"


out = []
cases = []

# ---- convolutions: (name, x shape, w shape, bias?, stride, padding, dilation, groups) ----
convs = [
    ("depthwise_m2_s2_p1", (2, 3, 7, 6), (6, 1, 3, 3), True, (2, 2), (1, 1), (1, 1), 3),
    ("depthwise_k5_d2", (1, 5, 9, 8), (5, 1, 5, 3), False, (1, 1), (2, 1), (2, 1), 5),
    ("grouped3_s12_p10_d21", (2, 6, 7, 6), (9, 2, 3, 2), True, (1, 2), (1, 0), (2, 1), 3),
    ("grouped2_odd", (3, 4, 5, 5), (6, 2, 3, 3), True, (2, 1), (1, 1), (1, 1), 2),
    ("pointwise_g1", (2, 5, 4, 6), (7, 5, 1, 1), True, (1, 1), (0, 0), (1, 1), 1),
    ("pointwise_g2", (2, 4, 3, 5), (6, 2, 1, 1), False, (1, 1), (0, 0), (1, 1), 2),
]
for k, (name, xs, ws, has_b, s, p, d, g) in enumerate(convs):
    x = fill(xs, 3 * k + 1).requires_grad_()
    w = fill(ws, 3 * k + 2, 0.5).requires_grad_()
    b = fill((ws[0],), 3 * k + 3, 0.25).requires_grad_() if has_b else None
    y = F.conv2d(x, w, b, s, p, d, g)
    go = fill(tuple(y.shape), 3 * k + 4, 0.75)
    y.backward(go)
    ns = "conv_" + name
    out.append("// conv2d(x %s, w %s, bias=%s, stride=%s, padding=%s, dilation=%s, groups=%d) -> %s\n"
               % (dims(x), dims(w), has_b, s, p, d, g, dims(y)))
    out.append(arr(ns + "_x", x) + arr(ns + "_w", w) + (arr(ns + "_b", b) if has_b else ""))
    out.append(arr(ns + "_y", y) + arr(ns + "_go", go) + arr(ns + "_gx", x.grad) + arr(ns + "_gw", w.grad))
    if has_b:
        out.append(arr(ns + "_gb", b.grad))
    cases.append('    {"%s", %s, %s, %s, %s, {%d, %d}, {%d, %d}, {%d, %d}, %d, %s, %s, %s, %s, %s, %s, %s, %s},\n' % (
        name, dims(x), dims(w), dims(y), "true" if has_b else "false", s[0], s[1], p[0], p[1], d[0], d[1], g,
        ns + "_x", ns + "_w", ns + "_b" if has_b else "nullptr", ns + "_y", ns + "_go", ns + "_gx", ns + "_gw",
        ns + "_gb" if has_b else "nullptr"))

# ---- pooling with ceil_mode: (name, max?, x shape, kernel, stride, padding, count_include_pad) ----
pools = [
    ("max_k3_s2_p1", True, (1, 2, 6, 7), (3, 3), (2, 2), (1, 1), True),
    ("max_k2_s2_p1_drop", True, (1, 1, 6, 5), (2, 2), (2, 2), (1, 1), True),  # last window would start in padding
    ("max_k3_s2_p0", True, (2, 2, 5, 8), (3, 2), (2, 2), (0, 0), True),
    ("avg_k3_s2_p1_incl", False, (1, 2, 6, 7), (3, 3), (2, 2), (1, 1), True),
    ("avg_k3_s2_p1_excl", False, (1, 2, 6, 7), (3, 3), (2, 2), (1, 1), False),
    ("avg_k2_s2_p1_drop_incl", False, (1, 1, 6, 5), (2, 2), (2, 2), (1, 1), True),
    ("avg_k3_s2_p0", False, (2, 1, 5, 8), (3, 2), (2, 2), (0, 0), True),
]
pool_cases = []
for k, (name, is_max, xs, kk, s, p, cip) in enumerate(pools):
    x = fill(xs, 50 + k).requires_grad_()
    if is_max:
        y = F.max_pool2d(x, kk, s, p, 1, ceil_mode=True)
    else:
        y = F.avg_pool2d(x, kk, s, p, ceil_mode=True, count_include_pad=cip)
    go = fill(tuple(y.shape), 70 + k, 0.5)
    y.backward(go)
    ns = "pool_" + name
    out.append("// %s_pool2d(x %s, kernel=%s, stride=%s, padding=%s, ceil_mode=True%s) -> %s\n"
               % ("max" if is_max else "avg", dims(x), kk, s, p, "" if is_max else ", count_include_pad=%s" % cip,
                  dims(y)))
    out.append(arr(ns + "_x", x) + arr(ns + "_y", y) + arr(ns + "_go", go) + arr(ns + "_gx", x.grad))
    pool_cases.append('    {"%s", %s, %s, %s, {%d, %d}, {%d, %d}, {%d, %d}, %s, %s, %s, %s, %s},\n' % (
        name, "true" if is_max else "false", dims(x), dims(y), kk[0], kk[1], s[0], s[1], p[0], p[1],
        "true" if cip else "false", ns + "_x", ns + "_y", ns + "_go", ns + "_gx"))

# ---- adaptive_avg_pool2d: (name, x shape, output size) ----
adaptive = [
    ("a3x2_of_7x5", (2, 3, 7, 5), (3, 2)),
    ("a1x1_of_5x6", (2, 2, 5, 6), (1, 1)),
    ("a4x5_of_6x7", (1, 2, 6, 7), (4, 5)),
    ("a5x3_of_3x3", (1, 1, 3, 3), (5, 3)),  # output larger than the input: windows repeat rows
]
ad_cases = []
for k, (name, xs, os_) in enumerate(adaptive):
    x = fill(xs, 90 + k).requires_grad_()
    y = F.adaptive_avg_pool2d(x, os_)
    go = fill(tuple(y.shape), 110 + k, 0.5)
    y.backward(go)
    ns = "adaptive_" + name
    out.append("// adaptive_avg_pool2d(x %s, %s) -> %s\n" % (dims(x), os_, dims(y)))
    out.append(arr(ns + "_x", x) + arr(ns + "_y", y) + arr(ns + "_go", go) + arr(ns + "_gx", x.grad))
    ad_cases.append('    {"%s", %s, {%d, %d}, %s, %s, %s, %s},\n' % (
        name, dims(x), os_[0], os_[1], ns + "_x", ns + "_y", ns + "_go", ns + "_gx"))


# ---- a small model exported by torch.onnx (opset 13): the runtime must run group and ceil_mode ----
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = torch.nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.gc = torch.nn.Conv2d(8, 6, (3, 2), stride=(1, 2), groups=2)
        self.pw = torch.nn.Conv2d(6, 6, 1, groups=3)
        self.mp = torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.ap = torch.nn.AvgPool2d(2, 2, 0, ceil_mode=True)
        self.gap = torch.nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = torch.relu(self.dw(x))
        x = self.mp(x)
        x = torch.relu(self.gc(x))
        x = self.ap(self.pw(x))
        return self.gap(x).flatten(1)


torch.manual_seed(0)
net = Net().eval()
with torch.no_grad():
    for i, prm in enumerate(net.parameters()):
        prm.copy_(fill(tuple(prm.shape), 200 + i, 0.5))
mx = fill((2, 4, 11, 10), 300)
with torch.no_grad():
    my = net(mx)
onnx_path = os.path.join(HERE, "torch", "convpool_opset13.onnx")
torch.onnx.export(net, mx, onnx_path, opset_version=13, input_names=["input"], output_names=["output"])
out.append("// Net (see make_convpool_baseline.py) exported as torch/convpool_opset13.onnx: input %s -> %s\n"
           % (dims(mx), dims(my)))
out.append(arr("model_x", mx) + arr("model_y", my))

with open(os.path.join(HERE, "convpool_baseline.hpp"), "w") as f:
    f.write("// tests/data/convpool_baseline.hpp — GENERATED by tests/data/make_convpool_baseline.py with PyTorch %s;\n"
            "// do not edit. Forward values and gradients of grouped/depthwise/1x1 conv2d, ceil_mode pooling and\n"
            "// adaptive_avg_pool2d on fixed inputs (see the script).\n#pragma once\n\n#include <cstdint>\n"
            "#include <vector>\n\nnamespace convpool_baseline {\n\n" % torch.__version__)
    f.write("".join(out))
    f.write("\nstruct Conv {\n    const char* name;\n    std::vector<std::int64_t> x_shape, w_shape, y_shape;\n"
            "    bool bias;\n    std::int64_t stride[2], padding[2], dilation[2], groups;\n"
            "    const float *x, *w, *b, *y, *go, *gx, *gw, *gb;\n};\n")
    f.write("inline const Conv convs[] = {\n" + "".join(cases) + "};\n\n")
    f.write("struct Pool {\n    const char* name;\n    bool max;\n    std::vector<std::int64_t> x_shape, y_shape;\n"
            "    std::int64_t kernel[2], stride[2], padding[2];\n    bool count_include_pad;\n"
            "    const float *x, *y, *go, *gx;\n};\n")
    f.write("inline const Pool pools[] = {\n" + "".join(pool_cases) + "};\n\n")
    f.write("struct Adaptive {\n    const char* name;\n    std::vector<std::int64_t> x_shape;\n"
            "    std::int64_t out[2];\n    const float *x, *y, *go, *gx;\n};\n")
    f.write("inline const Adaptive adaptives[] = {\n" + "".join(ad_cases) + "};\n\n")
    f.write("}  // namespace convpool_baseline\n")
print("wrote", os.path.join(HERE, "convpool_baseline.hpp"), "and", onnx_path)
