// nanotorch/ops/conv.hpp — conv2d, max_pool2d and avg_pool2d on NCHW tensors, with backward.
//
// Each op validates shapes and parameters (shape_error / value_error naming the op and the
// offending values), runs the raw-pointer kernels of kernels/conv.hpp and kernels/pool.hpp on contiguous data
// (avg_pool2d with non-overlapping windows reads a strided input in place), and,
// only when an input requires grad, records its <Op>Backward node right below it. Parameters
// are (height, width) Pair2d values that also accept one int, as torch::nn::functional does:
// conv2d(x, w, b, /*stride=*/1). Inputs are 4-D (N, C, H, W); 3-D (C, H, W) is accepted as one
// image. Not provided: groups != 1, ceil_mode, pooling dilation, divisor_override, return_indices.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <ostream>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/conv.hpp>
#include <nanotorch/kernels/pool.hpp>
#include <nanotorch/ops/broadcast.hpp>
#include <nanotorch/ops/elementwise.hpp>  // ops::detail::wants_grad
#include <nanotorch/ops/shape.hpp>        // reshape, for 3-D inputs

namespace nanotorch {

/// A (height, width) pair for kernel size, stride, padding and dilation. Converts implicitly
/// from one integer (both sides equal), from {h, w}, and from std::array<int64_t, 2>.
struct Pair2d {
    std::int64_t h = 0;
    std::int64_t w = 0;
    Pair2d(std::int64_t both) : h(both), w(both) {}  // implicit on purpose: stride = 2
    Pair2d(std::int64_t height, std::int64_t width) : h(height), w(width) {}
    Pair2d(const std::array<std::int64_t, 2>& hw) : h(hw[0]), w(hw[1]) {}
    bool operator==(const Pair2d& o) const { return h == o.h && w == o.w; }
    bool operator!=(const Pair2d& o) const { return !(*this == o); }
};

/// Prints "(h, w)", the form the error messages use.
inline std::ostream& operator<<(std::ostream& os, const Pair2d& p) { return os << '(' << p.h << ", " << p.w << ')'; }

namespace ops::detail {

/// ONNX attributes shared by MaxPool and AveragePool (sorted by name, as exporters write them).
inline std::vector<trace::Attr> pool_attrs(const Pair2d& k, const Pair2d& s, const Pair2d& p) {
    return {trace::attr("kernel_shape", std::vector<std::int64_t>{k.h, k.w}),
            trace::attr("pads", std::vector<std::int64_t>{p.h, p.w, p.h, p.w}),
            trace::attr("strides", std::vector<std::int64_t>{s.h, s.w})};
}

/// Checks one parameter pair is >= `min` on both sides (value_error naming op and parameter).
inline void check_pair(const char* op, const char* what, const Pair2d& p, std::int64_t min) {
    NANOTORCH_CHECK(p.h >= min && p.w >= min, value_error, op, ": ", what, " must be ", (min > 0 ? ">= 1" : ">= 0"),
                    ", got ", p);
}

/// The pooling window for x (3-D or 4-D), after validating every argument; `planes` = N·C.
inline kernels::Window2d pool_window(const char* op, const Tensor& x, const Pair2d& kernel, const Pair2d& stride,
                                     const Pair2d& padding, std::int64_t& planes) {
    NANOTORCH_CHECK(x.dim() == 4 || x.dim() == 3, shape_error, op,
                    ": expected a 4-D (N, C, H, W) or 3-D (C, H, W) input, got shape ", shape_str(x.shape()));
    check_pair(op, "kernel_size", kernel, 1);
    check_pair(op, "stride", stride, 1);
    check_pair(op, "padding", padding, 0);
    NANOTORCH_CHECK(2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w, value_error, op, ": padding ", padding,
                    " must be at most half of kernel_size ", kernel);
    const Shape& s = x.shape();
    const std::int64_t nd = x.dim();
    planes = nd == 4 ? s[0] * s[1] : s[0];
    const kernels::Window2d win = kernels::make_window(s[static_cast<std::size_t>(nd - 2)],
                                                       s[static_cast<std::size_t>(nd - 1)], kernel.h, kernel.w,
                                                       stride.h, stride.w, padding.h, padding.w);
    NANOTORCH_CHECK(win.out_h >= 1 && win.out_w >= 1, shape_error, op, ": input of shape ", shape_str(s),
                    " is too small for kernel_size ", kernel, " with padding ", padding);
    return win;
}

/// The element strides of x (3-D or 4-D) as planes of H×W: true when plane p = n·C + c starts at
/// p·st.plane for every p (always for N == 1 or C == 1, else when the N stride is C times the C
/// stride), so a kernel can walk the planes with one stride.
inline bool plane_strides(const Tensor& x, kernels::PoolStrides& st) {
    const Shape& s = x.shape();
    const Shape& d = x.strides();
    const std::size_t nd = s.size();
    st.row = d[nd - 2];
    st.col = d[nd - 1];
    if (nd == 3) {
        st.plane = d[0];
        return true;
    }
    if (s[1] == 1) st.plane = d[0];
    else if (s[0] == 1 || d[0] == s[1] * d[1]) st.plane = d[1];
    else return false;
    return true;
}

/// x's shape with the last two extents replaced by the window's output size.
inline Shape pooled_shape(const Tensor& x, const kernels::Window2d& win) {
    Shape out = x.shape();
    out[out.size() - 2] = win.out_h;
    out[out.size() - 1] = win.out_w;
    return out;
}

}  // namespace ops::detail

// ---- conv2d ----
struct Conv2dBackward : autograd::Node {
    Tensor input;   // contiguous [N, C, H, W]
    Tensor weight;  // contiguous [O, C, kH, kW]
    kernels::Window2d win;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        const Shape& xs = input.shape();
        const Shape& ws = weight.shape();
        Tensor gi, gw, gb;
        if (ops::detail::wants_grad(*this, 0)) gi = empty(xs);
        if (ops::detail::wants_grad(*this, 1)) gw = empty(ws);
        if (ops::detail::wants_grad(*this, 2)) gb = empty({ws[0]});
        kernels::conv2d_backward(gi.defined() ? gi.data_ptr() : nullptr, gw.defined() ? gw.data_ptr() : nullptr,
                                 gb.defined() ? gb.data_ptr() : nullptr, gc.data_ptr(), input.data_ptr(),
                                 weight.data_ptr(), xs[0], xs[1], ws[0], win);
        return {gi, gw, gb};
    }
    void release_saved() override { input = weight = Tensor(); }
    const char* name() const override { return "Conv2dBackward"; }
};

/// 2-D cross-correlation, as torch::nn::functional::conv2d with groups = 1:
///   out[n, o, i, j] = bias[o] + Σ_{c, ki, kj} input[n, c, i·sH − pH + ki·dH, j·sW − pW + kj·dW]
///                                            · weight[o, c, ki, kj]          (zero outside input)
/// input [N, C, H, W] (or [C, H, W]), weight [O, C, kH, kW], bias [O] or undefined.
/// Output [N, O, oH, oW] (or [O, oH, oW]) with oH = floor((H + 2pH − dH(kH − 1) − 1) / sH) + 1.
/// Example: conv2d(x, w, b, /*stride=*/1, /*padding=*/2).
/// Throws shape_error when a rank is wrong, the channels of input and weight differ, bias is not
/// [O], or the padded input is smaller than the dilated kernel; value_error when a stride or
/// dilation is < 1 or a padding is negative.
inline Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), Pair2d stride = 1,
                     Pair2d padding = 0, Pair2d dilation = 1) {
    NANOTORCH_CHECK(input.dim() == 4 || input.dim() == 3, shape_error,
                    "conv2d: expected a 4-D (N, C, H, W) or 3-D (C, H, W) input, got shape ", shape_str(input.shape()));
    NANOTORCH_CHECK(weight.dim() == 4, shape_error, "conv2d: expected a 4-D weight (O, C, kH, kW), got shape ",
                    shape_str(weight.shape()));
    ops::detail::check_pair("conv2d", "stride", stride, 1);
    ops::detail::check_pair("conv2d", "padding", padding, 0);
    ops::detail::check_pair("conv2d", "dilation", dilation, 1);
    if (input.dim() == 3) {  // one image: run it as a batch of 1 through differentiable reshapes
        const Shape& s = input.shape();
        const Tensor y = conv2d(reshape(input, {1, s[0], s[1], s[2]}), weight, bias, stride, padding, dilation);
        return reshape(y, {y.size(1), y.size(2), y.size(3)});
    }
    const Shape& xs = input.shape();
    const Shape& ws = weight.shape();
    NANOTORCH_CHECK(xs[1] == ws[1], shape_error, "conv2d: input of shape ", shape_str(xs), " has ", xs[1],
                    " channels but weight of shape ", shape_str(ws), " expects ", ws[1],
                    " (weight is [out_channels, in_channels, kH, kW]; groups != 1 is not supported)");
    NANOTORCH_CHECK(!bias.defined() || bias.shape() == Shape{ws[0]}, shape_error, "conv2d: bias of shape ",
                    (bias.defined() ? shape_str(bias.shape()) : std::string()), " does not match weight of shape ",
                    shape_str(ws), "; expected [", ws[0], "]");
    NANOTORCH_CHECK(ws[2] >= 1 && ws[3] >= 1, shape_error, "conv2d: weight of shape ", shape_str(ws),
                    " has an empty kernel");
    const kernels::Window2d win = kernels::make_window(xs[2], xs[3], ws[2], ws[3], stride.h, stride.w, padding.h,
                                                       padding.w, dilation.h, dilation.w);
    NANOTORCH_CHECK(win.out_h >= 1 && win.out_w >= 1, shape_error, "conv2d: input of shape ", shape_str(xs),
                    " is too small for a ", ws[2], "x", ws[3], " kernel with padding ", padding, " and dilation ",
                    dilation, " (padded input ", xs[2] + 2 * padding.h, "x", xs[3] + 2 * padding.w,
                    ", dilated kernel ", dilation.h * (ws[2] - 1) + 1, "x", dilation.w * (ws[3] - 1) + 1, ")");

    const Tensor xc = ops::detail::as_contiguous(input);
    const Tensor wc = ops::detail::as_contiguous(weight);
    const Tensor bc = bias.defined() ? ops::detail::as_contiguous(bias) : Tensor();
    Tensor out = empty({xs[0], ws[0], win.out_h, win.out_w});
    if (out.numel() > 0)
        kernels::conv2d_forward(out.data_ptr(), xc.data_ptr(), wc.data_ptr(), bc.defined() ? bc.data_ptr() : nullptr,
                                xs[0], xs[1], ws[0], win);
    if (autograd::any_requires_grad({&input, &weight, &bias})) {
        auto n = std::make_shared<Conv2dBackward>();
        n->input = xc.detach();
        n->weight = wc.detach();
        n->win = win;
        autograd::attach(out, n, {input, weight, bias});
    }
    if (auto* tr = trace::active())  // ONNX Conv; pads are [top, left, bottom, right]
        tr->emit("Conv", {trace::value(input), trace::value(weight), trace::value(bias)}, {out},
                 {trace::attr("dilations", std::vector<std::int64_t>{dilation.h, dilation.w}),
                  trace::attr("group", std::int64_t{1}), trace::attr("kernel_shape", std::vector<std::int64_t>{ws[2], ws[3]}),
                  trace::attr("pads", std::vector<std::int64_t>{padding.h, padding.w, padding.h, padding.w}),
                  trace::attr("strides", std::vector<std::int64_t>{stride.h, stride.w})});
    return out;
}

// ---- max_pool2d ----
struct MaxPool2dBackward : autograd::Node {
    // The forward's (contiguous) input, not an index array: the backward finds each window's
    // argmax again (kernels::max_pool2d_backward_from_input, bit-identical to scattering through
    // saved indices). The input tensor already exists, so the forward allocates nothing for the
    // graph, and the 2×2 backward writes every input gradient in one pass.
    Tensor input;
    kernels::Window2d win;
    std::int64_t planes = 0;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor gi = empty(input.shape());
        if (gi.numel() > 0)
            kernels::max_pool2d_backward_from_input(gi.data_ptr(), gc.data_ptr(), input.data_ptr(), planes, win);
        return {gi};
    }
    void release_saved() override { input = Tensor(); }
    const char* name() const override { return "MaxPool2dBackward"; }
};

/// Max over kernel_size windows moved by `stride`, with implicit −inf padding (PyTorch
/// semantics: ties keep the first element, NaN propagates). x [N, C, H, W] or [C, H, W].
/// The gradient flows only to each window's argmax. Example: max_pool2d(x, 2, 2).
/// Throws shape_error for a wrong rank or an input smaller than the window; value_error when
/// kernel_size or stride is < 1, padding is negative, or padding > kernel_size / 2.
inline Tensor max_pool2d(const Tensor& x, Pair2d kernel_size, Pair2d stride, Pair2d padding = 0) {
    std::int64_t planes = 0;
    const kernels::Window2d win = ops::detail::pool_window("max_pool2d", x, kernel_size, stride, padding, planes);
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor out = empty(ops::detail::pooled_shape(x, win));
    if (out.numel() > 0) kernels::max_pool2d_forward(out.data_ptr(), nullptr, xc.data_ptr(), planes, win);
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<MaxPool2dBackward>();
        n->input = xc.detach();
        n->win = win;
        n->planes = planes;
        autograd::attach(out, n, {x});
    }
    if (auto* tr = trace::active()) {
        if (x.dim() != 4) tr->unsupported("max_pool2d", "ONNX MaxPool needs a 4-D (N, C, H, W) input");
        tr->emit("MaxPool", {trace::value(x)}, {out}, ops::detail::pool_attrs(kernel_size, stride, padding));
    }
    return out;
}
/// max_pool2d with stride = kernel_size and no padding (PyTorch's default).
inline Tensor max_pool2d(const Tensor& x, Pair2d kernel_size) { return max_pool2d(x, kernel_size, kernel_size, 0); }

// ---- avg_pool2d ----
struct AvgPool2dBackward : autograd::Node {
    Shape input_shape;
    kernels::Window2d win;
    std::int64_t planes = 0;
    bool count_include_pad = true;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor gi = empty(input_shape);
        if (gi.numel() > 0) kernels::avg_pool2d_backward(gi.data_ptr(), gc.data_ptr(), planes, win, count_include_pad);
        return {gi};
    }
    const char* name() const override { return "AvgPool2dBackward"; }
};

/// Mean over kernel_size windows moved by `stride`, with zero padding. The divisor is
/// kH·kW when count_include_pad (PyTorch's default), else the number of real (non-padding)
/// elements in the window. x [N, C, H, W] or [C, H, W]. Example: avg_pool2d(x, 3, 1, 1, false).
/// Throws like max_pool2d.
inline Tensor avg_pool2d(const Tensor& x, Pair2d kernel_size, Pair2d stride, Pair2d padding = 0,
                         bool count_include_pad = true) {
    std::int64_t planes = 0;
    const kernels::Window2d win = ops::detail::pool_window("avg_pool2d", x, kernel_size, stride, padding, planes);
    Tensor out = empty(ops::detail::pooled_shape(x, win));
    kernels::PoolStrides st;
    if (out.numel() > 0) {
        if (!x.is_contiguous() && ops::detail::plane_strides(x, st) && kernels::avg_pool2d_strided_ok(win)) {
            // A strided input (the canvas model's alpha channel) is read in place, not copied.
            kernels::avg_pool2d_forward_strided(out.data_ptr(), x.data_ptr(), planes, st, win);
        } else {
            const Tensor xc = ops::detail::as_contiguous(x);
            kernels::avg_pool2d_forward(out.data_ptr(), xc.data_ptr(), planes, win, count_include_pad);
        }
    }
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<AvgPool2dBackward>();
        n->input_shape = x.shape();
        n->win = win;
        n->planes = planes;
        n->count_include_pad = count_include_pad;
        autograd::attach(out, n, {x});
    }
    if (auto* tr = trace::active()) {
        if (x.dim() != 4) tr->unsupported("avg_pool2d", "ONNX AveragePool needs a 4-D (N, C, H, W) input");
        auto attrs = ops::detail::pool_attrs(kernel_size, stride, padding);
        // Without padding both divisors agree; ONNX's default (0) then needs no attribute.
        if (count_include_pad && (padding.h > 0 || padding.w > 0))
            attrs.insert(attrs.begin(), trace::attr("count_include_pad", std::int64_t{1}));
        tr->emit("AveragePool", {trace::value(x)}, {out}, std::move(attrs));
    }
    return out;
}
/// avg_pool2d with stride = kernel_size and no padding (PyTorch's default).
inline Tensor avg_pool2d(const Tensor& x, Pair2d kernel_size) { return avg_pool2d(x, kernel_size, kernel_size, 0); }

}  // namespace nanotorch
