// nanotorch/onnx/ops_window.hpp — the runtime's windowed operators: Conv, MaxPool (with its
// Indices output and dilations), AveragePool and GlobalAveragePool, in 1-D and 2-D.
//
// Each calls nanotorch's own op (conv2d, max_pool2d / max_pool2d_with_indices, avg_pool2d,
// adaptive_avg_pool2d), so a graph computes exactly what the same C++ calls would (Conv's group and
// the pools' ceil_mode included); padding nanotorch's pooling cannot express (asymmetric, SAME,
// larger than half the kernel) is applied explicitly first, which gives the same windows. A 1-D
// problem runs as 2-D with a (1, k) window. Split from onnx/op_table.hpp, which lists these in the
// table. Deliberately absent: 3-D windows and AveragePool dilations (refused by check_pool/check_conv).
#pragma once

#include <algorithm>  // std::equal, std::max, std::min
#include <cmath>      // std::isnan
#include <cstdint>
#include <limits>     // -infinity padding
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/op_args.hpp>
#include <nanotorch/onnx/ops_support.hpp>
#include <nanotorch/ops/conv.hpp>
#include <nanotorch/ops/elementwise.hpp>
#include <nanotorch/ops/pad.hpp>
#include <nanotorch/ops/reduce.hpp>
#include <nanotorch/ops/shape.hpp>

namespace nanotorch::onnx::rt_detail {

// ---- spatial windows (Conv, MaxPool, AveragePool) ----

/// Checks the attributes every windowed op shares; "" when supported.
inline std::string check_window(const NodeProto& n, std::size_t spatial) {
    const std::string mode = attr_str(n, "auto_pad", "NOTSET");
    if (mode != "NOTSET" && mode != "VALID" && mode != "SAME_UPPER" && mode != "SAME_LOWER")
        return "auto_pad '" + mode + "'";
    if (spatial != 1 && spatial != 2) return std::to_string(spatial) + "-D windows (only 1-D and 2-D)";
    return "";
}

/// Runs a 2-D op on x (rank 2 + spatial, spatial 1 or 2): a 1-D problem [N, C, L] becomes
/// [N, C, 1, L] with a (1, k) window. `fn(x4, kernel, stride, dilation, pb, pe)` gets Pair2d's.
template <class Fn>
inline Tensor as_2d(const Tensor& x, const Window& w, Fn&& fn) {
    const bool one_d = w.kernel.size() == 1;
    auto pair = [&](const Shape& v) { return one_d ? Pair2d(1, v[0]) : Pair2d(v[0], v[1]); };
    auto pad_pair = [&](const Shape& v) { return one_d ? Pair2d(0, v[0]) : Pair2d(v[0], v[1]); };
    const Shape& s = x.shape();
    const Tensor x4 = one_d ? reshape(x, {s[0], s[1], 1, s[2]}) : x;
    const Tensor y = fn(x4, pair(w.kernel), pair(w.stride), pair(w.dilation), pad_pair(w.pad_begin),
                        pad_pair(w.pad_end));
    return one_d ? reshape(y, {y.size(0), y.size(1), y.size(3)}) : y;
}

/// x padded on its last two dims by (pb.h, pb.w) before and (pe.h, pe.w) after with `value`.
inline Tensor pad_hw(const Tensor& x, Pair2d pb, Pair2d pe, float value) {
    Shape b(4, 0), e(4, 0);
    b[2] = pb.h, b[3] = pb.w, e[2] = pe.h, e[3] = pe.w;
    return pad(x, b, e, PadMode::constant, value);
}

// nanotorch's pooling pads symmetrically by at most half the kernel; anything else is padded
// explicitly first (with -inf for max, zeros for average), which gives the same windows.
inline bool native_pads(Pair2d k, Pair2d pb, Pair2d pe) {
    return pb == pe && 2 * pb.h <= k.h && 2 * pb.w <= k.w;
}

/// What the runtime fuses into a Conv node (Runtime's load-time plan): the per-channel map of an
/// inference-form BatchNormalization that reads the Conv's output (batch_norm_eval_affine), an
/// Add of another value to that (a residual connection), and a Relu after any of them. The
/// other operand of the Add is the step's input #residual_input (after the Conv's own X, W and B,
/// an absent B held as a missing input);
/// add_node and relu_node are the fused nodes' indices in the graph, for running them apart when
/// the operand does not fit (run_conv_fused). Empty scale, no residual and relu false: the plain Conv.
struct ConvFusion {
    std::vector<float> scale, shift;
    bool max_pool2x2 = false;  // a MaxPool with a 2x2 window and stride 2 (then no Add)
    bool relu_before_pool = false;  // with max_pool2x2: Conv -> Relu -> MaxPool rather than MaxPool -> Relu
    bool residual = false;
    bool residual_first = false;  // the Add reads the residual as its first operand
    static constexpr std::size_t residual_input = 3;
    std::size_t add_node = 0, relu_node = 0;
    bool relu = false;
};

/// Conv with `fusion` applied to each output plane (nanotorch::conv2d_fused): the same bits as
/// running the Conv, then the fused BatchNormalization, Add and Relu nodes. The Add is fused only
/// where its other operand is a FLOAT tensor of the Conv's output shape (the epilogue adds plane
/// to plane); otherwise this runs the Conv and BatchNormalization alone, sets *tail_left
/// (which must then be given) and the caller runs the Add and Relu nodes themselves.
inline std::vector<Value> run_conv_fused(const OpArgs& a, const ConvFusion& fusion, bool* tail_left = nullptr) {
    const Tensor& x = a.tensor(0);
    Tensor w = a.tensor(1);
    const Tensor b = a.has(2) ? a.tensor(2) : Tensor();
    const std::int64_t sp = w.dim() - 2;
    NANOTORCH_CHECK(sp == 1 || sp == 2, unsupported_error, "Conv with ", sp, " spatial dimensions (only 1-D and 2-D)");
    NANOTORCH_CHECK(x.dim() == w.dim(), shape_error, "Conv: input of shape ", shape_str(x.shape()),
                    " does not match weight of shape ", shape_str(w.shape()));
    // The load-time plan's window holds while the weight has the kernel it was planned for (an
    // initializer given a new value at run() may not).
    const Shape& ws = w.shape();
    Window resolved;
    const Window* planned = a.window;
    if (!planned || !std::equal(ws.begin() + 2, ws.end(), planned->kernel.begin(), planned->kernel.end())) {
        const Shape kernel(ws.begin() + 2, ws.end());
        NANOTORCH_CHECK(attr_ints(a.node, "kernel_shape", kernel) == kernel, shape_error, "Conv: kernel_shape ",
                        shape_str(attr_ints(a.node, "kernel_shape")), " does not match weight of shape ",
                        shape_str(ws));
        resolved = resolve_window(a.node, Shape(x.shape().begin() + 2, x.shape().end()), kernel);
        planned = &resolved;
    }
    const Window& win = *planned;
    a.charge({window_result_numel(x, w.size(0), win, "Conv"), w.numel() / std::max<std::int64_t>(1, w.size(0))});
    const std::int64_t group = attr_int(a.node, "group", 1);  // conv2d checks it against the shapes
    Tensor residual;
    bool relu = fusion.relu;
    if (fusion.residual) {
        const Value& r = a.value(fusion.residual_input);
        const Shape out_shape = window_result_shape(x, w.size(0), win, "Conv");
        if (r.is_float() && r.shape == out_shape) {
            residual = sp == 1 ? reshape(r.f, {out_shape[0], out_shape[1], 1, out_shape[2]}) : r.f;
        } else {
            NANOTORCH_CHECK(tail_left, value_error, "Conv: a fused Add's operand does not fit the output");
            *tail_left = true;
            relu = false;
        }
    }
    if (sp == 1) w = reshape(w, {w.size(0), w.size(1), 1, w.size(2)});
    return one(as_2d(x, win, [&](const Tensor& x4, Pair2d, Pair2d s, Pair2d d, Pair2d pb, Pair2d pe) {
        const Tensor xp = pb == pe ? x4 : pad_hw(x4, pb, pe, 0.0f);  // asymmetric: zero-pad explicitly
        const Pair2d pad = pb == pe ? pb : Pair2d(0);
        if (fusion.max_pool2x2)  // (fused only after a Conv with a 4-D weight: Runtime::fuse_conv_chains)
            return conv2d_max_pool2x2(xp, w, b, s, pad, d, group, fusion.scale, fusion.shift,
                                      !relu                     ? PoolRelu::none
                                      : fusion.relu_before_pool ? PoolRelu::before_pool
                                                                : PoolRelu::after_pool,
                                      a.packed_weight);
        return conv2d_fused(xp, w, b, s, pad, d, group, fusion.scale, fusion.shift, residual, fusion.residual_first,
                            relu, a.packed_weight);
    }));
}

inline std::vector<Value> run_conv(const OpArgs& a) { return run_conv_fused(a, ConvFusion{}); }

/// Whether a MaxPool node is the 2x2, stride-2, unpadded, undilated, floor-mode pool of a 2-D
/// input that conv2d_max_pool2x2 runs in a convolution's epilogue, with no Indices output. A
/// malformed attribute is not fused (the node's own run reports it).
inline bool is_pool2x2_node(const NodeProto& n) {
    if (n.op_type != "MaxPool" || n.input.size() != 1 || (n.output.size() > 1 && !n.output[1].empty())) return false;
    try {
        const std::vector<std::int64_t> two{2, 2}, one{1, 1}, none{0, 0, 0, 0};
        const std::string pad = attr_str(n, "auto_pad", "NOTSET");
        return attr_ints(n, "kernel_shape") == two && attr_ints(n, "strides", one) == two &&
               (pad == "NOTSET" || pad == "VALID") && attr_ints(n, "pads", none) == none &&
               attr_ints(n, "dilations", one) == one && attr_int(n, "ceil_mode", 0) == 0;
    } catch (const error&) {
        return false;
    }
}

inline std::string check_conv(const NodeProto& n, std::int64_t) {
    const AttributeProto* k = find_attr(n, "kernel_shape");
    return check_window(n, k ? k->ints.size() : 2);
}

// ceil_mode with explicit padding: the end pads extended to cover the last window (PyTorch's
// rule: a window must start inside the input or its begin padding), so that pooling in floor mode
// gives the ceil-mode windows.
inline Pair2d ceil_end_pads(const Tensor& x4, Pair2d k, Pair2d s, Pair2d pb, Pair2d pe) {
    auto end = [](std::int64_t n, std::int64_t kk, std::int64_t st, std::int64_t b, std::int64_t e) {
        std::int64_t out = (n + b + e - kk + st - 1) / st + 1;
        if ((out - 1) * st >= n + b) --out;
        return std::max(e, (out - 1) * st + kk - n - b);
    };
    return Pair2d(end(x4.size(2), k.h, s.h, pb.h, pe.h), end(x4.size(3), k.w, s.w, pb.w, pe.w));
}

/// The input of a dilated MaxPool padded with −inf (ceil_mode extends the end pads as for
/// undilated windows, with the dilated extent `ke`), checked to hold at least one window.
inline Tensor pad_for_dilated_max(const Tensor& x4, Pair2d ke, Pair2d s, Pair2d pb, Pair2d pe, bool ceil) {
    const Pair2d pe2 = ceil ? ceil_end_pads(x4, ke, s, pb, pe) : pe;
    check_result_size({x4.size(0), x4.size(1), x4.size(2) + pb.h + pe2.h, x4.size(3) + pb.w + pe2.w}, "MaxPool");
    const Tensor xp = pad_hw(x4, pb, pe2, -std::numeric_limits<float>::infinity());
    NANOTORCH_CHECK(xp.size(2) >= ke.h && xp.size(3) >= ke.w, shape_error, "MaxPool: the dilated window ", ke.h, "x",
                    ke.w, " is larger than the padded input ", xp.size(2), "x", xp.size(3));
    return xp;
}

/// MaxPool with dilations, which nanotorch's max_pool2d does not take: the input padded with −inf
/// (pad_for_dilated_max), then, for each kernel tap in row-major order, the strided slice of the
/// elements that tap sees in every window, folded with max_pool2d's rule (a larger value or the
/// first NaN wins; ties keep the earlier tap). The same windows and the same choice of element as
/// a dilated max_pool2d would make.
inline Tensor dilated_max_pool(const Tensor& x4, Pair2d k, Pair2d s, Pair2d d, Pair2d pb, Pair2d pe, bool ceil) {
    const Pair2d ke((k.h - 1) * d.h + 1, (k.w - 1) * d.w + 1);  // the dilated window's extent
    const Tensor xp = pad_for_dilated_max(x4, ke, s, pb, pe, ceil);
    const std::int64_t Hp = xp.size(2), Wp = xp.size(3);
    const Shape out{xp.size(0), xp.size(1), (Hp - ke.h) / s.h + 1, (Wp - ke.w) / s.w + 1};
    Tensor best;
    for (std::int64_t i = 0; i < k.h; ++i)
        for (std::int64_t j = 0; j < k.w; ++j) {
            const Tensor tap = strided_slice(xp, {0, 0, i * d.h, j * d.w}, {1, 1, s.h, s.w}, out);
            best = !best.defined() ? tap : ops::detail::map_binary_same(best, tap, [](float b, float v) {
                return v > b || (std::isnan(v) && !std::isnan(b)) ? v : b;
            });
        }
    return best;
}

/// A dilated MaxPool over an already padded input xp (pad_for_dilated_max) that also reports where
/// each maximum is: its position row * Wp + col in the padded plane, as max_pool2d_with_indices
/// reports positions. One scalar pass per output element over the taps in row-major order with
/// dilated_max_pool's rule (a larger value or the first NaN wins; ties keep the earlier tap), so
/// the values are dilated_max_pool's. Only for the Indices output, which models rarely ask for.
inline std::pair<Tensor, std::vector<std::int64_t>> dilated_max_pool_with_positions(const Tensor& xp, Pair2d k,
                                                                                    Pair2d s, Pair2d d) {
    const Pair2d ke((k.h - 1) * d.h + 1, (k.w - 1) * d.w + 1);
    const std::int64_t planes = xp.size(0) * xp.size(1), Hp = xp.size(2), Wp = xp.size(3);
    const std::int64_t oh = (Hp - ke.h) / s.h + 1, ow = (Wp - ke.w) / s.w + 1;
    const Tensor xc = xp.contiguous();
    const float* src = xc.data_ptr();
    std::vector<float> y(static_cast<std::size_t>(planes * oh * ow));
    std::vector<std::int64_t> at(y.size());
    std::size_t o = 0;
    for (std::int64_t p = 0; p < planes; ++p)
        for (std::int64_t i = 0; i < oh; ++i)
            for (std::int64_t j = 0; j < ow; ++j, ++o) {
                float best = 0.0f;
                std::int64_t where = -1;
                for (std::int64_t a = 0; a < k.h; ++a)
                    for (std::int64_t b = 0; b < k.w; ++b) {
                        const std::int64_t pos = (i * s.h + a * d.h) * Wp + j * s.w + b * d.w;
                        const float v = src[p * Hp * Wp + pos];
                        if (where < 0 || v > best || (std::isnan(v) && !std::isnan(best))) best = v, where = pos;
                    }
                y[o] = best, at[o] = where;
            }
    return {tensor(std::move(y), {xp.size(0), xp.size(1), oh, ow}), std::move(at)};
}

template <bool Max>
inline std::vector<Value> run_pool(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    const Shape kernel = a.window ? Shape() : attr_ints(a.node, "kernel_shape");  // planned: a.window->kernel
    const Shape& kshape = a.window ? a.window->kernel : kernel;
    NANOTORCH_CHECK(x.dim() == static_cast<std::int64_t>(kshape.size()) + 2, shape_error, a.node.op_type,
                    ": input of shape ", shape_str(x.shape()), " does not match kernel_shape ", shape_str(kshape));
    Window resolved;
    if (!a.window) resolved = resolve_window(a.node, Shape(x.shape().begin() + 2, x.shape().end()), kernel);
    const Window& win = a.window ? *a.window : resolved;
    a.charge({window_result_numel(x, x.size(1), win, a.node.op_type), shape_numel(win.kernel)});
    const bool include_pad = attr_int(a.node, "count_include_pad", 0) != 0;
    const bool ceil = attr_int(a.node, "ceil_mode", 0) != 0;
    return one(as_2d(x, win, [&](const Tensor& x4, Pair2d k, Pair2d s, Pair2d d, Pair2d pb, Pair2d pe) {
        if (Max && !(d == Pair2d(1))) return dilated_max_pool(x4, k, s, d, pb, pe, ceil);
        if (native_pads(k, pb, pe))
            return Max ? max_pool2d(x4, k, s, pb, 1, ceil) : avg_pool2d(x4, k, s, pb, include_pad, ceil);
        const std::int64_t H = x4.size(2), W = x4.size(3);
        const Pair2d pe2 = ceil ? ceil_end_pads(x4, k, s, pb, pe) : pe;
        const float fill = Max ? -std::numeric_limits<float>::infinity() : 0.0f;
        Tensor y = Max ? max_pool2d(pad_hw(x4, pb, pe2, fill), k, s, 0) : avg_pool2d(pad_hw(x4, pb, pe2, 0.0f), k, s, 0);
        if (Max || (include_pad && pe2 == pe)) return y;
        // Rescale the k.h*k.w average to the divisor ONNX uses: the window's real (non-pad)
        // elements, or with count_include_pad its extent clipped to the padded input [−pb, n + pe).
        const std::int64_t oh = y.size(2), ow = y.size(3);
        auto span = [](std::int64_t o, std::int64_t st, std::int64_t kk, std::int64_t lo, std::int64_t hi) {
            return std::max<std::int64_t>(0, std::min(o * st + kk, hi) - std::max(o * st, lo));
        };
        std::vector<float> scale(static_cast<std::size_t>(oh * ow));
        for (std::int64_t i = 0; i < oh; ++i)
            for (std::int64_t j = 0; j < ow; ++j) {
                const std::int64_t div = include_pad ? span(i, s.h, k.h, 0, pb.h + H + pe.h) *
                                                           span(j, s.w, k.w, 0, pb.w + W + pe.w)
                                                     : span(i, s.h, k.h, pb.h, pb.h + H) * span(j, s.w, k.w, pb.w, pb.w + W);
                scale[static_cast<std::size_t>(i * ow + j)] = static_cast<float>(k.h * k.w) / static_cast<float>(div);
            }
        return mul(y, tensor(scale, {oh, ow}));
    }));
}

/// MaxPool with its Indices output: nanotorch's max_pool2d_with_indices (the same kernel pass as
/// max_pool2d), or with dilations dilated_max_pool_with_positions, its per-plane positions turned
/// into ONNX's flat indices over the whole input (row-major, or with storage_order = 1
/// column-major within each plane). Explicit padding the op cannot express is applied first, as
/// in run_pool, and subtracted from the positions again.
inline std::vector<Value> run_max_pool(const OpArgs& a) {
    if (a.node.output.size() < 2 || a.node.output[1].empty()) return run_pool<true>(a);
    const Tensor& x = a.tensor(0);
    const Shape kernel = attr_ints(a.node, "kernel_shape");
    NANOTORCH_CHECK(x.dim() == static_cast<std::int64_t>(kernel.size()) + 2, shape_error, "MaxPool: input of shape ",
                    shape_str(x.shape()), " does not match kernel_shape ", shape_str(kernel));
    const Window win = resolve_window(a.node, Shape(x.shape().begin() + 2, x.shape().end()), kernel);
    a.charge({window_result_numel(x, x.size(1), win, "MaxPool"), shape_numel(kernel)});
    const bool ceil = attr_int(a.node, "ceil_mode", 0) != 0, column_major = attr_int(a.node, "storage_order", 0) != 0;
    std::vector<std::int64_t> idx;
    std::int64_t Wp = 0, top = 0, left = 0;  // the pooled tensor's width and the explicit pads
    const Tensor y = as_2d(x, win, [&](const Tensor& x4, Pair2d k, Pair2d s, Pair2d d, Pair2d pb, Pair2d pe) {
        if (!(d == Pair2d(1))) {
            const Tensor xp = pad_for_dilated_max(x4, Pair2d((k.h - 1) * d.h + 1, (k.w - 1) * d.w + 1), s, pb, pe, ceil);
            Wp = xp.size(3), top = pb.h, left = pb.w;
            auto r = dilated_max_pool_with_positions(xp, k, s, d);
            idx = std::move(r.second);
            return r.first;
        }
        if (native_pads(k, pb, pe)) {
            Wp = x4.size(3);
            auto r = max_pool2d_with_indices(x4, k, s, pb, 1, ceil);
            idx = std::move(r.second);
            return r.first;
        }
        const Pair2d pe2 = ceil ? ceil_end_pads(x4, k, s, pb, pe) : pe;
        const Tensor xp = pad_hw(x4, pb, pe2, -std::numeric_limits<float>::infinity());
        Wp = xp.size(3), top = pb.h, left = pb.w;
        auto r = max_pool2d_with_indices(xp, k, s, 0);
        idx = std::move(r.second);
        return r.first;
    });
    const std::int64_t H = kernel.size() == 1 ? 1 : x.size(2), W = x.size(-1);
    const std::int64_t out_plane = y.numel() / std::max<std::int64_t>(1, x.size(0) * x.size(1));
    std::vector<std::int64_t> flat(idx.size());
    for (std::size_t k = 0; k < idx.size(); ++k) {
        const std::int64_t plane = static_cast<std::int64_t>(k) / std::max<std::int64_t>(1, out_plane);
        const std::int64_t ih = idx[k] / Wp - top, iw = idx[k] % Wp - left;
        flat[k] = plane * H * W + (column_major ? iw * H + ih : ih * W + iw);
    }
    return {Value::of(y), Value::of_ints(std::move(flat), y.shape())};
}

inline std::string check_pool(const NodeProto& n, std::int64_t) {
    const std::int64_t order = attr_int(n, "storage_order", 0);
    if (order != 0 && order != 1) return "storage_order " + std::to_string(order);
    for (std::int64_t d : attr_ints(n, "dilations")) {
        if (d == 1) continue;
        if (n.op_type != "MaxPool") return "dilations != 1 in " + n.op_type;
    }
    const AttributeProto* k = find_attr(n, "kernel_shape");
    if (!k) return "missing kernel_shape";
    return check_window(n, k->ints.size());
}

inline std::vector<Value> run_global_avg(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    NANOTORCH_CHECK(x.dim() >= 3, shape_error, "GlobalAveragePool: expected (N, C, D1, ...), got ",
                    shape_str(x.shape()));
    if (x.dim() == 4) return one(adaptive_avg_pool2d(x, 1));  // the op nn::AdaptiveAvgPool2d(1) runs
    Shape dims;
    for (std::int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
    return one(mean(x, dims, true));
}

}  // namespace nanotorch::onnx::rt_detail
