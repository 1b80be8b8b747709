// nanotorch/ops/conv.hpp — conv2d (with groups), max_pool2d, avg_pool2d (with ceil_mode) and
// adaptive_avg_pool2d on NCHW tensors, with backward and ONNX export.
//
// Each op validates shapes and parameters (shape_error / value_error naming the op and the
// offending values), runs the raw-pointer kernels on contiguous data (conv2d on the path
// kernels/conv_paths.hpp picks from the shape: depthwise, 1×1 or im2col + sgemm; pooling in
// kernels/pool.hpp and kernels/adaptive_pool.hpp; avg_pool2d with non-overlapping windows reads a
// strided input in place), and, only when an input requires grad, records its <Op>Backward node
// right below it. Parameters are (height, width) Pair2d values that also accept one int, as
// torch::nn::functional does: conv2d(x, w, b, /*stride=*/1). Inputs are 4-D (N, C, H, W); 3-D
// (C, H, W) is accepted as one image. Not provided: pooling dilation != 1, divisor_override,
// return_indices, adaptive max pooling.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <ostream>
#include <sstream>  // emit_pool's and adaptive_avg_pool2d's export messages
#include <string>
#include <utility>  // std::pair (max_pool2d_with_indices)
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/adaptive_pool.hpp>
#include <nanotorch/kernels/conv.hpp>
#include <nanotorch/kernels/conv_paths.hpp>
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
                                     const Pair2d& padding, bool ceil_mode, std::int64_t& planes) {
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
    const kernels::Window2d win = kernels::make_pool_window(s[static_cast<std::size_t>(nd - 2)],
                                                            s[static_cast<std::size_t>(nd - 1)], kernel.h, kernel.w,
                                                            stride.h, stride.w, padding.h, padding.w, ceil_mode);
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

/// Emits MaxPool / AveragePool for a pooling op (x 4-D, win from pool_window). Without ceil_mode,
/// or when ceil_mode adds no window, the attributes are PyTorch's own. Otherwise: from opset 10
/// the ceil_mode attribute, when ONNX's output size (which has no "last window starts inside"
/// rule) agrees; else the same windows in floor mode with the end pads extended to cover the
/// last window — exact for max pooling (padding is −inf) and for average pooling whose divisor
/// counts real elements only (count_include_pad false, or no padding at all). The one case left,
/// average pooling with count_include_pad and padding whose last window is clipped at the padded
/// edge, cannot be expressed at opset 9: unsupported_error naming the fixes.
inline void emit_pool(trace::Tracer& tr, const char* op, const Tensor& x, const Tensor& out, const Pair2d& k,
                      const Pair2d& s, const Pair2d& p, bool ceil_mode, const kernels::Window2d& win, bool avg,
                      bool count_include_pad) {
    const char* onnx_op = avg ? "AveragePool" : "MaxPool";
    if (x.dim() != 4) tr.unsupported(op, std::string("ONNX ") + onnx_op + " needs a 4-D (N, C, H, W) input");
    const bool adds = win.out_h != kernels::pool_out_size(win.in_h, k.h, s.h, p.h, false) ||
                      win.out_w != kernels::pool_out_size(win.in_w, k.w, s.w, p.w, false);
    const bool padded = p.h > 0 || p.w > 0;
    auto with_cip = [&](std::vector<trace::Attr> a, bool cip) {  // count_include_pad only when it matters
        if (avg && cip) a.insert(a.begin(), trace::attr("count_include_pad", std::int64_t{1}));
        return a;
    };
    if (!ceil_mode || !adds) {
        tr.emit(onnx_op, {trace::value(x)}, {out}, with_cip(pool_attrs(k, s, p), count_include_pad && padded));
        return;
    }
    // ONNX's ceil_mode output size: ceil((in + 2p − k) / s) + 1, with no window dropped.
    auto onnx_ceil = [](std::int64_t in, std::int64_t kk, std::int64_t st, std::int64_t pp) {
        return (in + 2 * pp - kk + st - 1) / st + 1;
    };
    const bool onnx_agrees = onnx_ceil(win.in_h, k.h, s.h, p.h) == win.out_h &&
                             onnx_ceil(win.in_w, k.w, s.w, p.w) == win.out_w;
    if (tr.opset() >= 10 && onnx_agrees) {
        auto attrs = with_cip(pool_attrs(k, s, p), avg && count_include_pad && padded);
        attrs.insert(attrs.begin(), trace::attr("ceil_mode", std::int64_t{1}));  // names in sorted order
        tr.emit(onnx_op, {trace::value(x)}, {out}, std::move(attrs));
        return;
    }
    if (avg && count_include_pad && padded) {
        std::ostringstream why;
        why << "with ceil_mode, count_include_pad and padding " << p << ", the last window over the " << win.in_h
            << "x" << win.in_w << " input reaches past the padding and PyTorch divides it by its clipped size, "
            << "which ONNX AveragePool" << (tr.opset() < 10 ? " at opset " + std::to_string(tr.opset()) : "")
            << " cannot express: use count_include_pad=false or padding 0"
            << (tr.opset() < 10 && onnx_agrees ? ", or export with ExportOptions::opset >= 10" : "");
        tr.unsupported(op, why.str());
    }
    const std::int64_t end_h = std::max(p.h, (win.out_h - 1) * s.h + k.h - win.in_h - p.h);
    const std::int64_t end_w = std::max(p.w, (win.out_w - 1) * s.w + k.w - win.in_w - p.w);
    std::vector<trace::Attr> attrs = {trace::attr("kernel_shape", std::vector<std::int64_t>{k.h, k.w}),
                                      trace::attr("pads", std::vector<std::int64_t>{p.h, p.w, end_h, end_w}),
                                      trace::attr("strides", std::vector<std::int64_t>{s.h, s.w})};
    tr.emit(onnx_op, {trace::value(x)}, {out}, std::move(attrs));
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
    Tensor weight;  // contiguous [O, C/groups, kH, kW]
    kernels::Window2d win;
    std::int64_t groups = 1;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        const Shape& xs = input.shape();
        const Shape& ws = weight.shape();
        Tensor gi, gw, gb;
        if (ops::detail::wants_grad(*this, 0)) gi = empty(xs);
        if (ops::detail::wants_grad(*this, 1)) gw = empty(ws);
        if (ops::detail::wants_grad(*this, 2)) gb = empty({ws[0]});
        kernels::conv2d_backward_auto(gi.defined() ? gi.data_ptr() : nullptr, gw.defined() ? gw.data_ptr() : nullptr,
                                      gb.defined() ? gb.data_ptr() : nullptr, gc.data_ptr(), input.data_ptr(),
                                      weight.data_ptr(), xs[0], xs[1], ws[0], win, groups);
        return {gi, gw, gb};
    }
    void release_saved() override { input = weight = Tensor(); }
    const char* name() const override { return "Conv2dBackward"; }
};

/// A convolution weight packed once for the kernel conv2d_fused runs on small planes (output
/// channels across the vector lanes, kernels::conv_pack_weight), for a weight that many calls
/// share and that does not change between them: the ONNX runtime packs each Conv initializer
/// when it loads a model (repacking on every call was 4 % of a batch-1 ResNet8 inference).
/// conv2d_fused reads it only for the tensor it was packed from (the same data, size, output
/// channels and groups) and only where that kernel runs; otherwise it packs as it always does.
struct PackedConvWeight {
    Tensor weight;  // the weight packed, held so that its buffer is not reused; it must not change
    std::int64_t groups = 1;
    Tensor data;  // the packing (64-byte aligned); undefined: nothing was packed
    /// Whether this is the packing of w for `g` groups.
    bool fits(const Tensor& w, std::int64_t g) const {
        return data.defined() && g == groups && w.data_ptr() == weight.data_ptr() && w.numel() == weight.numel() &&
               w.dim() >= 1 && w.size(0) == weight.size(0) && w.is_contiguous();
    }
};

/// The packing of weight [O, C/groups, kH, kW] for conv2d_fused with these strides, padding and
/// dilation: data undefined where no input size takes the kernel that reads it (a build without
/// AVX-512 or AVX2 + FMA, fewer than 16 taps per output, a depthwise or 1x1 stride-1
/// convolution), or where the weight is not a contiguous 4-D tensor. Costs one more copy of the
/// weight, rounded up to 16 output channels per group (8 on AVX2).
inline PackedConvWeight pack_conv_weight(const Tensor& weight, std::int64_t groups, Pair2d stride = 1,
                                         Pair2d padding = 0, Pair2d dilation = 1) {
    PackedConvWeight p;
    p.weight = weight;
    p.groups = groups;
    if (!weight.defined() || weight.dim() != 4 || !weight.is_contiguous() || groups < 1 ||
        weight.size(0) % groups != 0 || stride.h < 1 || stride.w < 1 || padding.h < 0 || padding.w < 0 ||
        dilation.h < 1 || dilation.w < 1)
        return p;
    const std::int64_t kh = weight.size(2), kw = weight.size(3);
    if (kh < 1 || kw < 1 || weight.size(1) < 1) return p;
    // A window whose input is the dilated kernel: conv_path reads only its kernel, strides,
    // padding and dilation.
    const kernels::Window2d w = kernels::make_window(dilation.h * (kh - 1) + 1, dilation.w * (kw - 1) + 1, kh, kw,
                                                     stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w);
    const std::int64_t channels = weight.size(1) * groups;
    const std::int64_t n = kernels::conv_packed_weight_floats(channels, weight.size(0), w, groups);
    if (n == 0) return p;
    p.data = empty({n});
    kernels::conv_pack_weight(p.data.data_ptr(), weight.data_ptr(), channels, weight.size(0), w, groups);
    return p;
}

namespace ops::detail {
// conv2d's body, with an epilogue (kernels::ConvEpilogue) applied to each output plane; `op`
// names the caller in error messages. `residual`, when defined, must have the output's shape:
// the epilogue adds it (its pointer is set here, once the shape is checked). `packed`: null, or
// a packing of some weight, read when it fits this one (PackedConvWeight::fits).
inline Tensor conv2d_impl(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias, Pair2d stride,
                          Pair2d padding, Pair2d dilation, std::int64_t groups, const kernels::ConvEpilogue& epi,
                          const Tensor& residual = Tensor(), const PackedConvWeight* packed = nullptr) {
    NANOTORCH_CHECK(input.dim() == 4 || input.dim() == 3, shape_error,
                    op, ": expected a 4-D (N, C, H, W) or 3-D (C, H, W) input, got shape ", shape_str(input.shape()));
    NANOTORCH_CHECK(weight.dim() == 4, shape_error, op, ": expected a 4-D weight (O, C, kH, kW), got shape ",
                    shape_str(weight.shape()));
    ops::detail::check_pair(op, "stride", stride, 1);
    ops::detail::check_pair(op, "padding", padding, 0);
    ops::detail::check_pair(op, "dilation", dilation, 1);
    NANOTORCH_CHECK(groups >= 1, value_error, op, ": groups must be >= 1, got ", groups);
    if (input.dim() == 3) {  // one image: run it as a batch of 1 through differentiable reshapes
        const Shape& s = input.shape();
        NANOTORCH_CHECK(!residual.defined() || residual.dim() == 3, shape_error, op, ": the residual of shape ",
                        shape_str(residual.defined() ? residual.shape() : Shape{}),
                        " must be 3-D (O, oH, oW) like the output of a 3-D input");
        const Tensor r4 = residual.defined() ? reshape(residual, {1, residual.size(0), residual.size(1), residual.size(2)})
                                             : Tensor();
        const Tensor y = conv2d_impl(op, reshape(input, {1, s[0], s[1], s[2]}), weight, bias, stride, padding, dilation,
                                     groups, epi, r4, packed);
        return reshape(y, {y.size(1), y.size(2), y.size(3)});
    }
    const Shape& xs = input.shape();
    const Shape& ws = weight.shape();
    NANOTORCH_CHECK(xs[1] == ws[1] * groups, shape_error, op, ": input of shape ", shape_str(xs), " has ", xs[1],
                    " channels but weight of shape ", shape_str(ws), " with groups=", groups, " expects ",
                    ws[1] * groups, " (weight is [out_channels, in_channels / groups, kH, kW])");
    NANOTORCH_CHECK(ws[0] % groups == 0, shape_error, op, ": weight of shape ", shape_str(ws), " has ", ws[0],
                    " output channels, not divisible by groups=", groups);
    NANOTORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == ws[0]), shape_error, op, ": bias of shape ",
                    (bias.defined() ? shape_str(bias.shape()) : std::string()), " does not match weight of shape ",
                    shape_str(ws), "; expected [", ws[0], "]");
    NANOTORCH_CHECK(ws[2] >= 1 && ws[3] >= 1, shape_error, op, ": weight of shape ", shape_str(ws),
                    " has an empty kernel");
    const kernels::Window2d win = kernels::make_window(xs[2], xs[3], ws[2], ws[3], stride.h, stride.w, padding.h,
                                                       padding.w, dilation.h, dilation.w);
    NANOTORCH_CHECK(win.out_h >= 1 && win.out_w >= 1, shape_error, op, ": input of shape ", shape_str(xs),
                    " is too small for a ", ws[2], "x", ws[3], " kernel with padding ", padding, " and dilation ",
                    dilation, " (padded input ", xs[2] + 2 * padding.h, "x", xs[3] + 2 * padding.w,
                    ", dilated kernel ", dilation.h * (ws[2] - 1) + 1, "x", dilation.w * (ws[3] - 1) + 1, ")");

    const Tensor xc = ops::detail::as_contiguous(input);
    const Tensor wc = ops::detail::as_contiguous(weight);
    const Tensor bc = bias.defined() ? ops::detail::as_contiguous(bias) : Tensor();
    NANOTORCH_CHECK(!epi.max_pool2x2 || (win.out_h >= 2 && win.out_w >= 2), shape_error, op, ": input of shape ",
                    shape_str(xs), " gives a ", win.out_h, "x", win.out_w,
                    " convolution output, smaller than the 2x2 pooling window");
    Tensor out = epi.max_pool2x2 ? empty({xs[0], ws[0], win.out_h / 2, win.out_w / 2})
                                 : empty({xs[0], ws[0], win.out_h, win.out_w});
    kernels::ConvEpilogue e = epi;
    Tensor rc;
    if (residual.defined()) {
        NANOTORCH_CHECK(residual.shape() == out.shape(), shape_error, op, ": the residual of shape ",
                        shape_str(residual.shape()), " does not match the output's shape ", shape_str(out.shape()));
        rc = ops::detail::as_contiguous(residual);
        e.residual = rc.data_ptr();
    }
    const float* packed_weight = packed && packed->fits(weight, groups) ? packed->data.data_ptr() : nullptr;
    if (out.numel() > 0)
        kernels::conv2d_forward_auto_fused(out.data_ptr(), xc.data_ptr(), wc.data_ptr(),
                                           bc.defined() ? bc.data_ptr() : nullptr, xs[0], xs[1], ws[0], win, groups, e,
                                           packed_weight);
    if (e.active()) return out;  // inference only (conv2d_fused checked): no graph, no trace
    if (autograd::any_requires_grad({&input, &weight, &bias})) {
        auto n = std::make_shared<Conv2dBackward>();
        n->input = xc.detach();
        n->weight = wc.detach();
        n->win = win;
        n->groups = groups;
        autograd::attach(out, n, {input, weight, bias});
    }
    if (auto* tr = trace::active())  // ONNX Conv; pads are [top, left, bottom, right]
        tr->emit("Conv", {trace::value(input), trace::value(weight), trace::value(bias)}, {out},
                 {trace::attr("dilations", std::vector<std::int64_t>{dilation.h, dilation.w}),
                  trace::attr("group", groups), trace::attr("kernel_shape", std::vector<std::int64_t>{ws[2], ws[3]}),
                  trace::attr("pads", std::vector<std::int64_t>{padding.h, padding.w, padding.h, padding.w}),
                  trace::attr("strides", std::vector<std::int64_t>{stride.h, stride.w})});
    return out;
}
}  // namespace ops::detail

/// 2-D cross-correlation, as torch::nn::functional::conv2d:
///   out[n, o, i, j] = bias[o] + Σ_{c, ki, kj} input[n, g·C/G + c, i·sH − pH + ki·dH, j·sW − pW + kj·dW]
///                                            · weight[o, c, ki, kj]          (zero outside input)
/// where g = o / (O/G) is o's group and c runs over C/G channels (G = groups: grouped
/// convolution; G = C is depthwise, with O = C·multiplier).
/// input [N, C, H, W] (or [C, H, W]), weight [O, C/G, kH, kW], bias [O] or undefined.
/// Output [N, O, oH, oW] (or [O, oH, oW]) with oH = floor((H + 2pH − dH(kH − 1) − 1) / sH) + 1.
/// Example: conv2d(x, w, b, /*stride=*/1, /*padding=*/2); depthwise 3×3: conv2d(x, w, b, 1, 1, 1, C).
/// Throws shape_error when a rank is wrong, the input's channels are not weight.size(1)·groups,
/// the output channels are not a multiple of groups, bias is not [O], or the padded input is
/// smaller than the dilated kernel; value_error when groups, a stride or a dilation is < 1 or a
/// padding is negative.
inline Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), Pair2d stride = 1,
                     Pair2d padding = 0, Pair2d dilation = 1, std::int64_t groups = 1) {
    return ops::detail::conv2d_impl("conv2d", input, weight, bias, stride, padding, dilation, groups, {});
}

/// conv2d, then per output channel o the map y·scale[o] + shift[o] (when scale is given), the
/// addition of `residual` (when defined; a tensor of the output's shape, added as y + residual, or
/// residual + y when residual_first) and ReLU (when relu), applied to each output plane as the
/// convolution writes it: the same bits as batch_norm (eval mode, scale/shift from
/// batch_norm_eval_affine), add and relu run on conv2d's output, without their passes over it.
/// Inference only. The ONNX runtime runs Conv → BatchNormalization → Add → Relu chains (each
/// part optional) with it, such as a residual block's last convolution. `packed`, when given,
/// is pack_conv_weight's packing of a weight: read when it is this weight's (PackedConvWeight).
/// Example: conv2d_fused(x, w, b, 1, 1, 1, 1, scale, shift, true);
///          conv2d_fused(x, w, b, 1, 1, 1, 1, scale, shift, shortcut, false, true).
/// Throws as conv2d; shape_error when scale/shift do not hold one value per output channel or
/// the residual's shape is not the output's; value_error when grad mode is on and an argument
/// requires grad (use conv2d there).
namespace ops::detail {
// The checks the fused convolutions share: inference only, and one scale and shift per output
// channel when given.
inline void check_fused_conv(const char* op, const char* unfused, const Tensor& input, const Tensor& weight,
                             const Tensor& bias, const Tensor& residual, const std::vector<float>& scale,
                             const std::vector<float>& shift) {
    NANOTORCH_CHECK(!(GradMode::is_enabled() && autograd::any_requires_grad({&input, &weight, &bias, &residual})),
                    value_error, op, ": inference only, but an argument requires grad (use ", unfused, ")");
    NANOTORCH_CHECK(scale.size() == shift.size() &&
                        (scale.empty() || (weight.dim() >= 1 && static_cast<std::int64_t>(scale.size()) == weight.size(0))),
                    shape_error, op, ": scale and shift must hold one value per output channel (",
                    weight.dim() >= 1 ? weight.size(0) : 0, "), got ", scale.size(), " and ", shift.size());
}
}  // namespace ops::detail

inline Tensor conv2d_fused(const Tensor& input, const Tensor& weight, const Tensor& bias, Pair2d stride, Pair2d padding,
                           Pair2d dilation, std::int64_t groups, const std::vector<float>& scale,
                           const std::vector<float>& shift, const Tensor& residual, bool residual_first, bool relu,
                           const PackedConvWeight* packed = nullptr) {
    ops::detail::check_fused_conv("conv2d_fused", "conv2d, batch_norm, add, relu", input, weight, bias, residual, scale,
                                  shift);
    kernels::ConvEpilogue epi;
    epi.scale = scale.empty() ? nullptr : scale.data();
    epi.shift = shift.empty() ? nullptr : shift.data();
    epi.residual_first = residual_first;
    epi.relu = relu;
    if (!epi.active() && !residual.defined())
        return ops::detail::conv2d_impl("conv2d", input, weight, bias, stride, padding, dilation, groups, {}, Tensor(),
                                        packed);
    return ops::detail::conv2d_impl("conv2d_fused", input, weight, bias, stride, padding, dilation, groups, epi,
                                    residual, packed);
}

/// conv2d_fused without a residual: conv2d, the per-channel map, ReLU.
inline Tensor conv2d_fused(const Tensor& input, const Tensor& weight, const Tensor& bias, Pair2d stride, Pair2d padding,
                           Pair2d dilation, std::int64_t groups, const std::vector<float>& scale,
                           const std::vector<float>& shift, bool relu) {
    return conv2d_fused(input, weight, bias, stride, padding, dilation, groups, scale, shift, Tensor(), false, relu);
}

/// Where conv2d_max_pool2x2 applies a ReLU: none, after the pool (LeNet's
/// `F.relu(F.max_pool2d(conv(x), 2))`) or before it (VGG's `F.max_pool2d(F.relu(conv(x)), 2)`).
/// The two differ where a window holds a NaN: the pool keeps it, the ReLU makes it 0.
enum class PoolRelu { none, after_pool, before_pool };

/// conv2d, the per-channel map y·scale[o] + shift[o] (when scale is given), max_pool2d with a 2×2
/// window and stride 2, and a ReLU where `relu` says: the ONNX runtime's Conv →
/// [BatchNormalization →] MaxPool → [Relu] and Conv → [BatchNormalization →] Relu → MaxPool, in
/// one pass. Each output plane is pooled while it is in cache, as the convolution writes it, so
/// the full-size output is never stored (on a 1 -> 10 channel 5×5 layer over 28×28 images that
/// output is 4× the pooled one). The same bits as the separate calls. Inference only. `packed`
/// as conv2d_fused. Output [N, O, oH/2, oW/2] (oH, oW: conv2d's output, halved rounding down).
/// Example: conv2d_max_pool2x2(x, w, b, 1, 0, 1, 1, {}, {}, PoolRelu::after_pool)
///          = relu(max_pool2d(conv2d(x, w, b), 2)).
/// Throws as conv2d; shape_error when conv2d's output is smaller than 2×2 or scale/shift do not
/// hold one value per output channel; value_error when grad mode is on and an argument requires
/// grad (use conv2d, max_pool2d, relu there).
inline Tensor conv2d_max_pool2x2(const Tensor& input, const Tensor& weight, const Tensor& bias, Pair2d stride,
                                 Pair2d padding, Pair2d dilation, std::int64_t groups, const std::vector<float>& scale,
                                 const std::vector<float>& shift, PoolRelu relu,
                                 const PackedConvWeight* packed = nullptr) {
    ops::detail::check_fused_conv("conv2d_max_pool2x2", "conv2d, max_pool2d, relu", input, weight, bias, Tensor(), scale,
                                  shift);
    kernels::ConvEpilogue epi;
    epi.scale = scale.empty() ? nullptr : scale.data();
    epi.shift = shift.empty() ? nullptr : shift.data();
    epi.max_pool2x2 = true;
    epi.relu = relu != PoolRelu::none;
    epi.relu_before_pool = relu == PoolRelu::before_pool;
    return ops::detail::conv2d_impl("conv2d_max_pool2x2", input, weight, bias, stride, padding, dilation, groups, epi,
                                    Tensor(), packed);
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
/// ceil_mode rounds the output size up (PyTorch's rule: the last window must start inside the
/// input or its left padding); dilation is in PyTorch's position but only 1 is supported.
/// The gradient flows only to each window's argmax. Example: max_pool2d(x, 3, 2, 0, 1, true).
/// Throws shape_error for a wrong rank or an input smaller than the window; value_error when
/// kernel_size or stride is < 1, padding is negative, padding > kernel_size / 2, or dilation != 1.
inline Tensor max_pool2d(const Tensor& x, Pair2d kernel_size, Pair2d stride, Pair2d padding = 0,
                         Pair2d dilation = 1, bool ceil_mode = false) {
    NANOTORCH_CHECK(dilation == Pair2d(1), value_error, "max_pool2d: dilation ", dilation,
                    " is not supported (only 1)");
    std::int64_t planes = 0;
    const kernels::Window2d win =
        ops::detail::pool_window("max_pool2d", x, kernel_size, stride, padding, ceil_mode, planes);
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
    if (auto* tr = trace::active())
        ops::detail::emit_pool(*tr, "max_pool2d", x, out, kernel_size, stride, padding, ceil_mode, win, false, false);
    return out;
}
/// max_pool2d that also returns where each maximum came from (PyTorch's return_indices = true):
/// for every output element, the flat position ih·W + iw inside its input plane, from the same
/// kernel pass (the kernel's ties-first / NaN rule). The values, their gradient and their traced
/// ONNX node are exactly max_pool2d's. ONNX MaxPool's Indices output is this plus each plane's
/// offset.
/// Throws as max_pool2d.
inline std::pair<Tensor, std::vector<std::int64_t>> max_pool2d_with_indices(const Tensor& x, Pair2d kernel_size,
                                                                            Pair2d stride, Pair2d padding = 0,
                                                                            Pair2d dilation = 1, bool ceil_mode = false) {
    NANOTORCH_CHECK(dilation == Pair2d(1), value_error, "max_pool2d_with_indices: dilation ", dilation,
                    " is not supported (only 1)");
    std::int64_t planes = 0;
    const kernels::Window2d win =
        ops::detail::pool_window("max_pool2d_with_indices", x, kernel_size, stride, padding, ceil_mode, planes);
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor out = empty(ops::detail::pooled_shape(x, win));
    std::vector<std::int64_t> indices(static_cast<std::size_t>(out.numel()));
    if (out.numel() > 0) kernels::max_pool2d_forward(out.data_ptr(), indices.data(), xc.data_ptr(), planes, win);
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<MaxPool2dBackward>();
        n->input = xc.detach();
        n->win = win;
        n->planes = planes;
        autograd::attach(out, n, {x});
    }
    if (auto* tr = trace::active())  // the values export as max_pool2d's MaxPool; indices are not a tensor
        ops::detail::emit_pool(*tr, "max_pool2d", x, out, kernel_size, stride, padding, ceil_mode, win, false, false);
    return {out, std::move(indices)};
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
/// elements in the window. ceil_mode as in max_pool2d; a window that then reaches past the
/// padding is divided by its size clipped to the padded input (PyTorch's rule). Note the order:
/// count_include_pad comes before ceil_mode here (PyTorch has ceil_mode first).
/// x [N, C, H, W] or [C, H, W]. Example: avg_pool2d(x, 3, 1, 1, false).
/// Throws like max_pool2d.
inline Tensor avg_pool2d(const Tensor& x, Pair2d kernel_size, Pair2d stride, Pair2d padding = 0,
                         bool count_include_pad = true, bool ceil_mode = false) {
    std::int64_t planes = 0;
    const kernels::Window2d win =
        ops::detail::pool_window("avg_pool2d", x, kernel_size, stride, padding, ceil_mode, planes);
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
    if (auto* tr = trace::active())  // without padding both divisors agree: ONNX's default (0) needs no attribute
        ops::detail::emit_pool(*tr, "avg_pool2d", x, out, kernel_size, stride, padding, ceil_mode, win, true,
                               count_include_pad);
    return out;
}
/// avg_pool2d with stride = kernel_size and no padding (PyTorch's default).
inline Tensor avg_pool2d(const Tensor& x, Pair2d kernel_size) { return avg_pool2d(x, kernel_size, kernel_size, 0); }

// ---- adaptive_avg_pool2d ----
struct AdaptiveAvgPool2dBackward : autograd::Node {
    Shape input_shape;
    std::int64_t planes = 0, out_h = 1, out_w = 1;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor gi = empty(input_shape);
        const std::size_t nd = input_shape.size();
        if (gi.numel() > 0)
            kernels::adaptive_avg_pool2d_backward(gi.data_ptr(), gc.data_ptr(), planes, input_shape[nd - 2],
                                                  input_shape[nd - 1], out_h, out_w);
        return {gi};
    }
    const char* name() const override { return "AdaptiveAvgPool2dBackward"; }
};

/// Average pooling to a fixed output size, as torch::nn::functional::adaptive_avg_pool2d: output
/// (i, j) averages rows [floor(i·H/oH), ceil((i+1)·H/oH)) and the same columns of W/oW, for any
/// output size (windows may overlap by one when it does not divide the input). x [N, C, H, W] or
/// [C, H, W]; output [N, C, oH, oW]. Example: adaptive_avg_pool2d(x, 1) (global average pooling).
/// Exported as GlobalAveragePool for 1×1, as AveragePool (kernel = stride = H/oH, W/oW) when the
/// output divides the input; any other size cannot be exported (unsupported_error naming shapes).
/// Throws shape_error for a wrong rank or an empty H or W; value_error for an output size < 1.
inline Tensor adaptive_avg_pool2d(const Tensor& x, Pair2d output_size) {
    NANOTORCH_CHECK(x.dim() == 4 || x.dim() == 3, shape_error,
                    "adaptive_avg_pool2d: expected a 4-D (N, C, H, W) or 3-D (C, H, W) input, got shape ",
                    shape_str(x.shape()));
    ops::detail::check_pair("adaptive_avg_pool2d", "output_size", output_size, 1);
    const Shape& s = x.shape();
    const std::size_t nd = s.size();
    const std::int64_t H = s[nd - 2], W = s[nd - 1];
    NANOTORCH_CHECK(H >= 1 && W >= 1, shape_error, "adaptive_avg_pool2d: input of shape ", shape_str(s),
                    " has an empty plane");
    const std::int64_t planes = nd == 4 ? s[0] * s[1] : s[0];
    Shape os = s;
    os[nd - 2] = output_size.h;
    os[nd - 1] = output_size.w;
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor out = empty(os);
    if (out.numel() > 0)
        kernels::adaptive_avg_pool2d_forward(out.data_ptr(), xc.data_ptr(), planes, H, W, output_size.h, output_size.w);
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<AdaptiveAvgPool2dBackward>();
        n->input_shape = s;
        n->planes = planes;
        n->out_h = output_size.h;
        n->out_w = output_size.w;
        autograd::attach(out, n, {x});
    }
    if (auto* tr = trace::active()) {
        if (x.dim() != 4) tr->unsupported("adaptive_avg_pool2d", "ONNX pooling needs a 4-D (N, C, H, W) input");
        if (output_size == Pair2d(1)) {
            tr->emit("GlobalAveragePool", {trace::value(x)}, {out});
        } else if (H % output_size.h == 0 && W % output_size.w == 0) {
            const Pair2d k(H / output_size.h, W / output_size.w);
            tr->emit("AveragePool", {trace::value(x)}, {out}, ops::detail::pool_attrs(k, k, 0));
        } else {
            std::ostringstream why;
            why << "output size " << output_size << " does not divide the input's " << H << "x" << W
                << " plane, so its windows (sizes differing by one, some overlapping) are no ONNX "
                   "AveragePool: choose an output size that divides the input, or 1 (GlobalAveragePool)";
            tr->unsupported("adaptive_avg_pool2d", why.str());
        }
    }
    return out;
}

}  // namespace nanotorch
