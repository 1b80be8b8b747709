// nanotorch/onnx/op_table.hpp — the ONNX runtime's op table: from op_type to {check, run}, for
// every operator the runtime executes.
//
// Each entry checks one NodeProto against the model's default-domain opset, returning a reason
// string when the node uses a feature nanotorch does not implement (so the runtime can list every
// such node up front), and runs it on Values (onnx/ops_support.hpp). Float math goes through
// nanotorch's own ops (conv2d, max_pool2d, avg_pool2d, batch_norm, linear, matmul, softmax, reshape,
// cat, clamp, pad, index_select, ...), so a graph computes exactly what the same C++ calls would
// (Conv's group and the pools' ceil_mode included); padding nanotorch's pooling cannot express
// (asymmetric, SAME, larger than half the kernel) is applied explicitly first, which gives the
// same windows. Opset-dependent forms (attributes that became inputs, Softmax's 2-D coercion
// before opset 13, Reshape's allowzero) are chosen by the opset passed in. Deliberately absent:
// graph validation and input binding (onnx/runtime.hpp), autograd (the runtime runs under
// NoGradGuard), and operator versions outside opsets 1..17 (before 7, only those of oldest_opset()).
// Operators on other element types and float math training has no op for live in
// onnx/ops_typed.hpp and onnx/ops_math.hpp, the windowed ones (Conv, the pools) in
// onnx/ops_window.hpp; this file holds the rest and the table of all of them.
#pragma once

#include <algorithm>  // std::clamp, std::min/max
#include <cmath>      // std::sqrt, std::log
#include <cstdint>
#include <limits>     // float range and infinities
#include <map>        // the op table
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/op_args.hpp>
#include <nanotorch/onnx/ops_conv_transpose.hpp>
#include <nanotorch/onnx/ops_math.hpp>
#include <nanotorch/onnx/ops_resize.hpp>
#include <nanotorch/onnx/ops_support.hpp>
#include <nanotorch/onnx/ops_typed.hpp>
#include <nanotorch/onnx/ops_window.hpp>
#include <nanotorch/ops/activation.hpp>
#include <nanotorch/ops/clamp.hpp>
#include <nanotorch/ops/conv.hpp>
#include <nanotorch/ops/elementwise.hpp>
#include <nanotorch/ops/index.hpp>
#include <nanotorch/ops/linalg.hpp>
#include <nanotorch/ops/loss.hpp>
#include <nanotorch/ops/norm.hpp>
#include <nanotorch/ops/pad.hpp>
#include <nanotorch/ops/reduce.hpp>
#include <nanotorch/ops/shape.hpp>

namespace nanotorch::onnx::rt_detail {

// ---- dense ----

inline std::vector<Value> run_gemm(const OpArgs& a) {
    const Tensor& A = a.tensor(0);
    const Tensor& B = a.tensor(1);
    NANOTORCH_CHECK(A.dim() == 2 && B.dim() == 2, shape_error, "Gemm: A ", shape_str(A.shape()), " and B ",
                    shape_str(B.shape()), " must be 2-D");
    const float alpha = attr_float(a.node, "alpha", 1.0f), beta = attr_float(a.node, "beta", 1.0f);
    const Tensor lhs = attr_int(a.node, "transA", 0) ? A.t() : A;
    const Tensor w = attr_int(a.node, "transB", 0) ? B : B.t();  // linear wants [N, K]
    const std::int64_t M = lhs.size(0), N = w.size(0);
    check_result_size({M, N}, "Gemm");
    a.charge({M, N, lhs.size(1)});
    const Tensor C = a.has(2) ? a.tensor(2) : Tensor();
    // The common exported form (alpha = beta = 1, bias [N]) is exactly nanotorch::linear.
    if (alpha == 1.0f && (!C.defined() || (beta == 1.0f && C.dim() == 1 && C.size(0) == N)))
        return one(linear(lhs, w, C));
    Tensor y = linear(lhs, w);
    if (alpha != 1.0f) y = mul(y, alpha);
    if (C.defined() && beta != 0.0f) {
        NANOTORCH_CHECK(broadcast_shapes(C.shape(), {M, N}, "Gemm") == Shape({M, N}), shape_error, "Gemm: C of shape ",
                        shape_str(C.shape()), " does not broadcast to [", M, ", ", N, "]");
        y = add(y, beta == 1.0f ? C : mul(C, beta));
    }
    return one(y);
}

inline std::vector<Value> run_matmul(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    const Tensor& y = a.tensor(1);
    if (x.dim() >= 1 && y.dim() >= 2) {  // guard the [.., M, K] x [.., K, N] result (others cannot grow)
        const Shape xb(x.shape().begin(), x.shape().end() - std::min<std::int64_t>(x.dim(), 2));
        Shape out = broadcast_shapes(xb, Shape(y.shape().begin(), y.shape().end() - 2), "MatMul");
        out.push_back(x.dim() >= 2 ? x.size(-2) : 1);
        out.push_back(y.size(-1));
        check_result_size(out, "MatMul");
        a.charge({shape_numel(out), x.size(-1)});
    }
    return one(matmul(x, y));
}

// ---- activations and pointwise math ----

/// [prod(s[:axis]), prod(s[axis:])]: the 2-D view Flatten and pre-13 Softmax use.
inline Shape split_2d(const Shape& s, std::int64_t axis) {
    Shape out{1, 1};
    for (std::size_t d = 0; d < s.size(); ++d) out[static_cast<std::int64_t>(d) < axis ? 0 : 1] *= s[d];
    return out;
}

template <bool Log>
inline std::vector<Value> run_softmax(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    auto f = [](const Tensor& t, std::int64_t d) { return Log ? log_softmax(t, d) : softmax(t, d); };
    if (a.opset >= 13) return one(f(x, attr_int(a.node, "axis", -1)));
    // Before opset 13 the input is coerced to 2-D at `axis` and normalised over each row.
    const std::int64_t r = x.dim(), axis = wrap_axis(attr_int(a.node, "axis", 1), std::max<std::int64_t>(r, 1), "axis");
    return one(reshape(f(reshape(x, split_2d(x.shape(), axis)), 1), x.shape()));
}

// The activations run nanotorch's own ops (ops/activation.hpp), with ONNX's attribute defaults.
inline std::vector<Value> run_leaky_relu(const OpArgs& a) {
    return one(leaky_relu(a.tensor(0), attr_float(a.node, "alpha", 0.01f)));
}
inline std::vector<Value> run_elu(const OpArgs& a) { return one(elu(a.tensor(0), attr_float(a.node, "alpha", 1.0f))); }
inline std::vector<Value> run_hard_sigmoid(const OpArgs& a) {
    const float alpha = attr_float(a.node, "alpha", 0.2f), beta = attr_float(a.node, "beta", 0.5f);
    // PyTorch's coefficients run PyTorch's formula (x + 3).clamp(0, 6) / 6, which is what an exported
    // nn::Hardsigmoid computed; it differs from alpha·x + beta by at most one rounding.
    if (alpha == 1.0f / 6.0f && beta == 0.5f) return one(hardsigmoid(a.tensor(0)));
    return one(hardsigmoid_affine(a.tensor(0), alpha, beta));
}
inline std::vector<Value> run_softplus(const OpArgs& a) {
    // ONNX Softplus is log(1 + exp(x)) with no threshold; softplus's default threshold 20 is above
    // kSoftplusExactThreshold, so its linear branch equals that to the last bit.
    return one(softplus(a.tensor(0)));
}
/// Clip on integer or DOUBLE values (Clip-12+ takes every numeric type; exporters clamp int64
/// indices): bounds of the input's own type, compared exactly.
inline std::vector<Value> run_clip_typed(const OpArgs& a) {
    const Value& x = a.value(0);
    auto bound = [&](std::size_t k) -> const Value* {
        if (!a.has(k)) return nullptr;
        const Value& b = a.value(k);
        same_type(x, b, "Clip");
        NANOTORCH_CHECK(b.numel() == 1, shape_error, "Clip: bound #", k, " must hold one element, got shape ",
                        shape_str(b.shape));
        return &b;
    };
    const Value* lo = bound(1);
    const Value* hi = bound(2);
    auto clip = [&](auto v, auto lo_v, auto hi_v) {
        if (lo) v = std::max(lo_v, v);
        return hi ? std::min(hi_v, v) : v;
    };
    if (x.is_int)
        return {unary_map(
            x, [&](std::int64_t v) { return clip(v, lo ? lo->i[0] : 0, hi ? hi->i[0] : 0); }, [](double v) { return v; })};
    return {unary_map(
        x, [](std::int64_t v) { return v; },
        [&](double v) { return clip(v, lo ? lo->d[0] : 0.0, hi ? hi->d[0] : 0.0); })};
}

inline std::vector<Value> run_clip(const OpArgs& a) {
    if (a.opset >= 11 && !a.value(0).is_float()) return run_clip_typed(a);
    float lo, hi;
    if (a.opset < 11) {  // attributes, defaulting to the float range (as the opset-6 spec says)
        lo = attr_float(a.node, "min", std::numeric_limits<float>::lowest());
        hi = attr_float(a.node, "max", std::numeric_limits<float>::max());
    } else {  // optional inputs; an absent bound does not clip
        lo = a.has(1) ? a.scalar(1) : -std::numeric_limits<float>::infinity();
        hi = a.has(2) ? a.scalar(2) : std::numeric_limits<float>::infinity();
    }
    NANOTORCH_CHECK(lo == lo && hi == hi, value_error, "Clip: a bound is NaN");
    return one(clamp(a.tensor(0), lo, hi));
}

// Inference-form BatchNormalization is nanotorch::batch_norm with training = false: the op that
// export emits it from (ops/norm.hpp), so the two cannot drift.
inline std::vector<Value> run_batch_norm(const OpArgs& a) {
    return one(batch_norm(a.tensor(0), a.tensor(3), a.tensor(4), a.tensor(1), a.tensor(2), /*training=*/false,
                          /*momentum=*/0.0, attr_float(a.node, "epsilon", 1e-5f)));
}

inline std::string check_batch_norm(const NodeProto& n, std::int64_t opset) {
    if (opset < 7 && attr_int(n, "is_test", 0) == 0) return "is_test = 0 (training mode) at opset " + std::to_string(opset);
    if (opset >= 14 && attr_int(n, "training_mode", 0) != 0) return "training_mode = 1";
    if (opset < 9 && attr_int(n, "spatial", 1) == 0) return "spatial = 0";
    return "";
}

// ---- reductions ----

template <bool Mean>
inline std::vector<Value> run_reduce(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    const bool axes_input = !Mean && a.opset >= 13;  // ReduceSum-13 moved axes to an input
    Shape axes = axes_input ? (a.has(1) ? a.ints(1) : Shape{}) : attr_ints(a.node, "axes");
    const bool keep = attr_int(a.node, "keepdims", 1) != 0;
    if (axes.empty()) {
        if (axes_input && attr_int(a.node, "noop_with_empty_axes", 0) != 0) return one(x);
        for (std::int64_t d = 0; d < x.dim(); ++d) axes.push_back(d);
    }
    return one(Mean ? mean(x, axes, keep) : sum(x, axes, keep));
}

/// ReduceMax over the listed axes (all when none), one axis at a time from the last, so the
/// result is exactly what nanotorch::max computes for the single-axis case the exporter emits.
inline std::vector<Value> run_reduce_max(const OpArgs& a) {
    Tensor x = a.tensor(0);
    Shape axes = attr_ints(a.node, "axes");
    const bool keep = attr_int(a.node, "keepdims", 1) != 0;
    if (axes.empty())
        for (std::int64_t d = 0; d < x.dim(); ++d) axes.push_back(d);
    for (auto& d : axes) d = wrap_dim(d, x.dim(), "ReduceMax");
    std::sort(axes.rbegin(), axes.rend());
    NANOTORCH_CHECK(std::adjacent_find(axes.begin(), axes.end()) == axes.end(), value_error,
                    "ReduceMax: an axis is listed twice");
    for (std::int64_t d : axes) x = nanotorch::max(x, d, keep);
    return one(x);
}

// ---- layout ----

inline std::vector<Value> run_reshape(const OpArgs& a) {
    const Value& x = a.value(0);
    Shape target = a.opset < 5 ? attr_ints(a.node, "shape") : a.ints(1);  // Reshape-1: a 'shape' attribute
    const bool allow_zero = a.opset >= 14 && attr_int(a.node, "allowzero", 0) != 0;
    for (std::size_t d = 0; d < target.size() && !allow_zero; ++d) {
        if (target[d] != 0) continue;  // 0 copies the input's extent at the same position
        NANOTORCH_CHECK(d < x.shape.size(), shape_error, "Reshape: shape ", shape_str(a.ints(1)),
                        " copies dimension ", d, " of an input of shape ", shape_str(x.shape));
        target[d] = x.shape[d];
    }
    return {apply_layout({&x}, [&](const std::vector<Tensor>& t) { return reshape(t[0], target); })};
}

inline std::vector<Value> run_flatten(const OpArgs& a) {
    const Value& x = a.value(0);
    const std::int64_t r = static_cast<std::int64_t>(x.shape.size());
    std::int64_t axis = attr_int(a.node, "axis", 1);
    NANOTORCH_CHECK(axis >= -r && axis <= r, value_error, "Flatten: axis ", axis, " is out of range for rank ", r);
    const Shape target = split_2d(x.shape, axis < 0 ? axis + r : axis);
    return {apply_layout({&x}, [&](const std::vector<Tensor>& t) { return reshape(t[0], target); })};
}

inline std::vector<Value> run_transpose(const OpArgs& a) {
    const Value& x = a.value(0);
    Shape perm(x.shape.size());
    for (std::size_t d = 0; d < perm.size(); ++d) perm[d] = static_cast<std::int64_t>(perm.size() - 1 - d);
    perm = attr_ints(a.node, "perm", perm);
    return {apply_layout({&x}, [&](const std::vector<Tensor>& t) { return permute(t[0], perm).contiguous(); })};
}

inline std::vector<Value> run_concat(const OpArgs& a) {
    std::vector<const Value*> xs;
    for (std::size_t k = 0; k < a.in.size(); ++k) xs.push_back(&a.value(k));
    const std::int64_t axis = attr_int(a.node, "axis", a.opset < 4 ? 1 : 0);  // Concat-1 defaults to axis 1
    return {apply_layout(xs, [&](const std::vector<Tensor>& t) { return cat(t, axis); })};
}

template <bool Unsqueeze>
inline std::vector<Value> run_squeeze(const OpArgs& a) {
    const Value& x = a.value(0);
    const Shape axes = a.opset >= 13 ? (a.has(1) ? a.ints(1) : Shape{}) : attr_ints(a.node, "axes");
    const std::int64_t r = static_cast<std::int64_t>(x.shape.size());
    Shape target;
    if (Unsqueeze) {  // axes index the output, whose rank is r + |axes|
        const std::int64_t out_r = r + static_cast<std::int64_t>(axes.size());
        std::vector<bool> inserted(static_cast<std::size_t>(out_r), false);
        for (std::int64_t ax : axes) {
            const auto d = static_cast<std::size_t>(wrap_axis(ax, out_r, "Unsqueeze: axis"));
            NANOTORCH_CHECK(!inserted[d], value_error, "Unsqueeze: axis ", ax, " repeated");
            inserted[d] = true;
        }
        for (std::size_t d = 0, src = 0; d < inserted.size(); ++d) target.push_back(inserted[d] ? 1 : x.shape[src++]);
    } else {
        std::vector<bool> drop(x.shape.size(), axes.empty());
        for (std::size_t d = 0; d < drop.size(); ++d) drop[d] = drop[d] && x.shape[d] == 1;
        for (std::int64_t ax : axes) {
            const auto d = static_cast<std::size_t>(wrap_axis(ax, r, "Squeeze: axis"));
            NANOTORCH_CHECK(x.shape[d] == 1, shape_error, "Squeeze: dimension ", ax, " of shape ",
                            shape_str(x.shape), " is not 1");
            drop[d] = true;
        }
        for (std::size_t d = 0; d < drop.size(); ++d)
            if (!drop[d]) target.push_back(x.shape[d]);
    }
    return {apply_layout({&x}, [&](const std::vector<Tensor>& t) { return reshape(t[0], target); })};
}

inline std::vector<Value> run_slice(const OpArgs& a) {
    const Value& x = a.value(0);
    const std::int64_t r = static_cast<std::int64_t>(x.shape.size());
    Shape starts, ends, axes, steps;
    if (a.opset < 10) {
        starts = attr_ints(a.node, "starts"), ends = attr_ints(a.node, "ends"), axes = attr_ints(a.node, "axes");
    } else {
        starts = a.ints(1), ends = a.ints(2);
        if (a.has(3)) axes = a.ints(3);
        if (a.has(4)) steps = a.ints(4);
    }
    if (axes.empty())
        for (std::size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<std::int64_t>(k));
    if (steps.empty()) steps.assign(starts.size(), 1);
    NANOTORCH_CHECK(ends.size() == starts.size() && axes.size() == starts.size() && steps.size() == starts.size(),
                    value_error, "Slice: starts/ends/axes/steps have ", starts.size(), "/", ends.size(), "/",
                    axes.size(), "/", steps.size(), " entries");
    Shape start(static_cast<std::size_t>(r), 0), step(static_cast<std::size_t>(r), 1), out = x.shape;
    std::vector<bool> seen(static_cast<std::size_t>(r), false);
    bool unit = true;
    for (std::size_t k = 0; k < starts.size(); ++k) {
        const auto d = static_cast<std::size_t>(wrap_axis(axes[k], r, "Slice: axis"));
        NANOTORCH_CHECK(!seen[d], value_error, "Slice: axis ", axes[k], " repeated");
        NANOTORCH_CHECK(steps[k] != 0, value_error, "Slice: step 0 on axis ", axes[k]);
        seen[d] = true;
        const std::int64_t n = x.shape[d], st = steps[k];
        // Negative bounds count from the end; then clamp to [0, n] (step > 0) or [-1, n-1] (step < 0).
        std::int64_t b = starts[k] < 0 ? starts[k] + n : starts[k], e = ends[k] < 0 ? ends[k] + n : ends[k];
        b = st > 0 ? std::clamp<std::int64_t>(b, 0, n) : std::clamp<std::int64_t>(b, 0, n - 1);
        e = st > 0 ? std::clamp<std::int64_t>(e, 0, n) : std::clamp<std::int64_t>(e, -1, n - 1);
        // ceil(span / |step|) without overflow, even for |step| = 2^63 (unsigned negation is defined).
        const std::int64_t span = st > 0 ? e - b : b - e;
        const std::uint64_t mag = st > 0 ? std::uint64_t(st) : std::uint64_t(0) - std::uint64_t(st);
        start[d] = b, step[d] = st;
        out[d] = span > 0 ? static_cast<std::int64_t>(1 + (std::uint64_t(span) - 1) / mag) : 0;
        unit = unit && st == 1;
    }
    return {apply_layout({&x}, [&](const std::vector<Tensor>& t) {
        if (!unit) return strided_slice(t[0], start, step, out);
        // A view, not a copy: the canvas model's AveragePool reads its alpha-channel slice in
        // place (the runtime makes graph outputs contiguous; every op accepts strided inputs).
        Tensor y = t[0];
        for (std::size_t d = 0; d < start.size(); ++d) y = narrow(y, static_cast<std::int64_t>(d), start[d], out[d]);
        return y;
    })};
}

inline std::vector<Value> run_pad(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    const std::string m = attr_str(a.node, "mode", "constant");
    const PadMode mode = m == "reflect" ? PadMode::reflect : m == "edge" ? PadMode::replicate : PadMode::constant;
    const Shape pads = a.opset < 11 ? attr_ints(a.node, "pads") : a.ints(1);
    const float value = a.opset < 11 ? attr_float(a.node, "value", 0.0f) : (a.has(2) ? a.scalar(2) : 0.0f);
    const auto r = static_cast<std::size_t>(x.dim());
    NANOTORCH_CHECK(pads.size() == 2 * r, value_error, "Pad: ", pads.size(), " pads for an input of rank ", r);
    const Shape begin(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(r)), end(pads.begin() + static_cast<std::ptrdiff_t>(r), pads.end());
    Shape out(r);
    for (std::size_t d = 0; d < r; ++d) {  // bounded before nanotorch::pad allocates anything
        const std::int64_t lim = max_result_elements;
        NANOTORCH_CHECK(begin[d] >= -lim && begin[d] <= lim && end[d] >= -lim && end[d] <= lim, value_error,
                        "Pad: pads ", begin[d], "/", end[d], " on dimension ", d, " are out of range");
        out[d] = std::max<std::int64_t>(0, x.size(static_cast<std::int64_t>(d)) + begin[d] + end[d]);
    }
    check_result_size(out, "Pad");
    return one(pad(x, begin, end, mode, value));
}

inline std::string check_inputs_pad(const NodeProto& n, std::int64_t opset);

inline std::string check_pad(const NodeProto& n, std::int64_t opset) {
    const std::string counts = check_inputs_pad(n, opset);
    if (!counts.empty()) return counts;
    const std::string m = attr_str(n, "mode", "constant");
    return m == "constant" || m == "reflect" || m == "edge" ? "" : "mode '" + m + "'";
}

inline std::vector<Value> run_shape(const OpArgs& a) {
    const Shape& s = a.value(0).shape;
    const auto r = static_cast<std::int64_t>(s.size());
    auto clamp = [r](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + r : v, 0, r); };
    const std::int64_t b = a.opset >= 15 ? clamp(attr_int(a.node, "start", 0)) : 0;
    const std::int64_t e = a.opset >= 15 ? clamp(attr_int(a.node, "end", r)) : r;
    std::vector<std::int64_t> out(s.begin() + b, s.begin() + std::max(b, e));
    const auto n = static_cast<std::int64_t>(out.size());
    return {Value::of_ints(std::move(out), {n})};
}

inline std::vector<Value> run_gather(const OpArgs& a) {
    const Value& x = a.value(0);
    const Value& idx = a.value(1);
    NANOTORCH_CHECK(idx.is_int, value_error, "Gather: indices must be int64");
    const std::int64_t r = static_cast<std::int64_t>(x.shape.size());
    const std::int64_t axis = wrap_axis(attr_int(a.node, "axis", 0), r, "Gather: axis");
    const std::int64_t n = x.shape[static_cast<std::size_t>(axis)];
    std::vector<std::int64_t> flat(idx.i.size());
    for (std::size_t j = 0; j < flat.size(); ++j) {  // ONNX counts negative indices from the end
        NANOTORCH_CHECK(idx.i[j] >= -n && idx.i[j] < n, value_error, "Gather: index ", idx.i[j],
                        " is out of range for axis ", axis, " of size ", n);
        flat[j] = idx.i[j] < 0 ? idx.i[j] + n : idx.i[j];
    }
    // out = x[:axis] ++ indices' shape ++ x[axis+1:]
    Shape os(x.shape.begin(), x.shape.begin() + axis);
    os.insert(os.end(), idx.shape.begin(), idx.shape.end());
    os.insert(os.end(), x.shape.begin() + axis + 1, x.shape.end());
    check_result_size(os, "Gather");
    return {apply_layout({&x}, [&](const std::vector<Tensor>& t) { return reshape(index_select(t[0], axis, flat), os); })};
}

// ---- constants and identities ----

inline std::vector<Value> run_constant(const OpArgs& a) {
    const NodeProto& n = a.node;
    if (const AttributeProto* v = find_attr(n, "value")) {
        NANOTORCH_CHECK(v->t.size() == 1, value_error, "Constant: attribute 'value' holds no tensor");
        return {value_from_proto(v->t[0])};
    }
    if (const AttributeProto* v = find_attr(n, "value_float")) return one(scalar_tensor(v->f));
    if (const AttributeProto* v = find_attr(n, "value_floats")) return one(tensor(v->floats));
    if (const AttributeProto* v = find_attr(n, "value_int")) return {Value::of_ints({v->i}, {})};
    if (const AttributeProto* v = find_attr(n, "value_ints"))
        return {Value::of_ints(v->ints, {static_cast<std::int64_t>(v->ints.size())})};
    throw value_error("Constant: no value attribute");
}

inline std::string check_constant(const NodeProto& n, std::int64_t) {
    for (const char* s : {"sparse_value", "value_string", "value_strings"})
        if (find_attr(n, s)) return std::string("attribute '") + s + "'";
    const AttributeProto* v = find_attr(n, "value");
    if (v && v->t.size() == 1) {
        if (v->t[0].data_location == 1) return "external data";
        const std::int32_t dt = v->t[0].data_type;
        if (!runtime_type(dt)) return "value of element type " + dtype_name(dt);
    }
    return "";
}

inline std::vector<Value> run_identity(const OpArgs& a) { return {a.value(0)}; }

inline std::string check_dropout(const NodeProto& n, std::int64_t opset) {
    if (opset < 7 && attr_int(n, "is_test", 0) == 0) return "is_test = 0 (training mode) at opset " + std::to_string(opset);
    return opset >= 12 && n.input.size() > 2 && !n.input[2].empty() ? "training_mode input" : "";
}

template <Tensor (*F)(const Tensor&)>
inline std::vector<Value> run_unary(const OpArgs& a) {
    return one(F(a.tensor(0)));
}

inline std::string check_inputs_pad(const NodeProto& n, std::int64_t opset) {
    return check_inputs<11, 1, 1, 2, 3>(n, opset);
}

// ---- opsets 1..6 ----

/// Binary ops before opset 7 broadcast only when asked (broadcast = 1), aligning B with A at
/// `axis` (default: at the end, as NumPy does); without it the shapes must be equal. B is reshaped
/// to the NumPy form and the op runs as from opset 7.
template <RunFn F>
inline std::vector<Value> legacy_broadcast(const OpArgs& a) {
    if (a.opset >= 7) return F(a);
    const Value& x = a.value(0);
    const Value& y = a.value(1);
    if (attr_int(a.node, "broadcast", 0) == 0) {
        NANOTORCH_CHECK(x.shape == y.shape, shape_error, a.node.op_type, " at opset ", a.opset, ": shapes ",
                        shape_str(x.shape), " and ", shape_str(y.shape), " differ and 'broadcast' is not set");
        return F(a);
    }
    const auto r = static_cast<std::int64_t>(x.shape.size()), rb = static_cast<std::int64_t>(y.shape.size());
    NANOTORCH_CHECK(rb <= r, shape_error, a.node.op_type, ": B of shape ", shape_str(y.shape),
                    " has a higher rank than A ", shape_str(x.shape));
    const AttributeProto* ax = typed_attr(a.node, "axis", AttributeType::int_, "an INT");
    const std::int64_t axis = ax ? wrap_axis(ax->i, std::max<std::int64_t>(r, 1), "axis") : r - rb;
    NANOTORCH_CHECK(axis + rb <= r, shape_error, a.node.op_type, ": B of shape ", shape_str(y.shape),
                    " does not fit A ", shape_str(x.shape), " at axis ", axis);
    Shape target = y.shape;
    target.insert(target.end(), static_cast<std::size_t>(r - axis - rb), 1);  // trailing ones align B at axis
    const Value yb = apply_layout({&y}, [&](const std::vector<Tensor>& t) { return reshape(t[0], target); });
    OpArgs moved{a.node, a.opset, {&x, &yb}};
    return F(moved);
}

/// The oldest opset whose form of `op` the runtime implements. Operators not listed changed
/// before opset 7 in ways the runtime does not follow (or did not exist) and are refused in
/// models older than 7. The listed ones differ before 7 only in attributes the runtime reads
/// by opset (Reshape's 'shape', Concat's default axis, Cast's string 'to', the legacy
/// broadcast/axis of binary ops, BatchNormalization's and Dropout's is_test) or ignores
/// (consumed_inputs, an optimisation hint for in-place buffers).
inline std::int64_t oldest_opset(const std::string& op) {
    static const std::map<std::string, std::int64_t> since = {
        {"Abs", 1}, {"Add", 1}, {"And", 1}, {"ArgMax", 1}, {"ArgMin", 1}, {"AveragePool", 1},
        {"BatchNormalization", 1}, {"Cast", 1}, {"Ceil", 1}, {"Clip", 1}, {"Concat", 1}, {"Constant", 1},
        {"Conv", 1}, {"Div", 1}, {"Dropout", 1}, {"Elu", 1}, {"Equal", 1}, {"Exp", 1}, {"Flatten", 1},
        {"Floor", 1}, {"Gather", 1}, {"Gemm", 1}, {"GlobalAveragePool", 1}, {"GlobalMaxPool", 1}, {"Greater", 1},
        {"HardSigmoid", 1}, {"Hardmax", 1}, {"Identity", 1}, {"InstanceNormalization", 1}, {"LRN", 1},
        {"LeakyRelu", 1}, {"Less", 1}, {"Log", 1}, {"LogSoftmax", 1}, {"MatMul", 1}, {"Max", 1}, {"MaxPool", 1},
        {"Mean", 1}, {"Min", 1}, {"Mul", 1}, {"Neg", 1}, {"Not", 1}, {"Or", 1}, {"PRelu", 1}, {"Pad", 2}, {"ConvTranspose", 1},
        {"Pow", 1}, {"Reciprocal", 1}, {"ReduceL1", 1}, {"ReduceL2", 1}, {"ReduceLogSum", 1},
        {"ReduceLogSumExp", 1}, {"ReduceMax", 1}, {"ReduceMean", 1}, {"ReduceMin", 1}, {"ReduceProd", 1},
        {"ReduceSum", 1}, {"ReduceSumSquare", 1}, {"Relu", 1}, {"Reshape", 1}, {"Selu", 1}, {"Shape", 1},
        {"Sigmoid", 1}, {"Size", 1}, {"Slice", 1}, {"Softmax", 1}, {"Softplus", 1}, {"Softsign", 1},
        {"Split", 2}, {"Sqrt", 1}, {"Squeeze", 1}, {"Sub", 1}, {"Sum", 1}, {"Tanh", 1}, {"Tile", 6},
        {"Transpose", 1}, {"Unsqueeze", 1}, {"Xor", 1},
    };
    const auto it = since.find(op);
    return it == since.end() ? 7 : it->second;
}

// ---- the table ----

/// Every operator the runtime implements (default domain), with its input/output bounds.
/// Under NANOTORCH_ONNX_OPS_EXTERN (config.hpp) only the translation unit that defines
/// NANOTORCH_ONNX_OPS_IMPLEMENTATION compiles it (as an ordinary, non-inline function), so the
/// kernels it points to are generated there and nowhere else.
#if defined(NANOTORCH_ONNX_OPS_EXTERN) && !defined(NANOTORCH_ONNX_OPS_IMPLEMENTATION)
const std::map<std::string, OpSpec>& op_table();
#else
#ifndef NANOTORCH_ONNX_OPS_EXTERN
inline
#endif
const std::map<std::string, OpSpec>& op_table() {
    static const std::map<std::string, OpSpec> table = {
        {"Abs", {1, 1, 1, nullptr, &run_abs_sign<false>}},
        {"Acos", {1, 1, 1, nullptr, &run_math<Fn::acos>}},
        {"Acosh", {1, 1, 1, &check_since<9>, &run_math<Fn::acosh>}},
        {"Add", {2, 2, 1, nullptr, &legacy_broadcast<&run_arith<0>>}},
        {"And", {2, 2, 1, nullptr, &legacy_broadcast<&run_logic<0>>}},
        {"ArgMax", {1, 1, 1, nullptr, &run_arg_extreme<true>}},
        {"ArgMin", {1, 1, 1, nullptr, &run_arg_extreme<false>}},
        {"Asin", {1, 1, 1, nullptr, &run_math<Fn::asin>}},
        {"Asinh", {1, 1, 1, &check_since<9>, &run_math<Fn::asinh>}},
        {"Atan", {1, 1, 1, nullptr, &run_math<Fn::atan>}},
        {"Atanh", {1, 1, 1, &check_since<9>, &run_math<Fn::atanh>}},
        {"AveragePool", {1, 1, 1, &check_pool, &run_pool<false>}},
        {"BatchNormalization", {5, 5, 1, &check_batch_norm, &run_batch_norm}},
        {"Cast", {1, 1, 1, &check_cast, &run_cast}},
        {"CastLike", {2, 2, 1, &check_since<15>, &run_cast_like}},
        {"Ceil", {1, 1, 1, nullptr, &run_math<Fn::ceil>}},
        {"Celu", {1, 1, 1, &check_since<12>, &run_celu}},
        {"Clip", {1, 3, 1, &check_inputs<11, 1, 1, 1, 3>, &run_clip}},
        {"Concat", {1, std::size_t(-1), 1, nullptr, &run_concat}},
        {"Constant", {0, 0, 1, &check_constant, &run_constant}},
        {"ConstantOfShape", {1, 1, 1, &check_constant_of_shape, &run_constant_of_shape}},
        {"Conv", {2, 3, 1, &check_conv, &run_conv}},
        {"ConvTranspose", {2, 3, 1, &check_conv_transpose, &run_conv_transpose}},
        {"Cos", {1, 1, 1, nullptr, &run_math<Fn::cos>}},
        {"Cosh", {1, 1, 1, &check_since<9>, &run_math<Fn::cosh>}},
        {"Div", {2, 2, 1, nullptr, &legacy_broadcast<&run_arith<3>>}},
        {"Dropout", {1, 3, 1, &check_dropout, &run_identity}},
        {"Elu", {1, 1, 1, nullptr, &run_elu}},
        {"Equal", {2, 2, 1, nullptr, &legacy_broadcast<&run_compare<0>>}},
        {"Erf", {1, 1, 1, &check_since<9>, &run_unary<&nanotorch::erf>}},
        {"Exp", {1, 1, 1, nullptr, &run_unary<&nanotorch::exp>}},
        {"Expand", {2, 2, 1, &check_since<8>, &run_expand}},
        {"Flatten", {1, 1, 1, nullptr, &run_flatten}},
        {"Floor", {1, 1, 1, nullptr, &run_math<Fn::floor>}},
        {"Gather", {2, 2, 1, nullptr, &run_gather}},
        {"Gemm", {2, 3, 1, nullptr, &run_gemm}},
        {"GlobalAveragePool", {1, 1, 1, nullptr, &run_global_avg}},
        {"GlobalMaxPool", {1, 1, 1, nullptr, &run_global_max}},
        {"Greater", {2, 2, 1, nullptr, &legacy_broadcast<&run_compare<2>>}},
        {"GreaterOrEqual", {2, 2, 1, &check_since<12>, &run_compare<4>}},
        {"HardSigmoid", {1, 1, 1, nullptr, &run_hard_sigmoid}},
        {"HardSwish", {1, 1, 1, &check_since<14>, &run_unary<&nanotorch::hardswish>}},
        {"Hardmax", {1, 1, 1, nullptr, &run_hardmax}},
        {"Identity", {1, 1, 1, nullptr, &run_identity}},
        {"InstanceNormalization", {3, 3, 1, nullptr, &run_instance_norm}},
        {"IsInf", {1, 1, 1, &check_since<10>, &run_is_special<false>}},
        {"IsNaN", {1, 1, 1, &check_since<9>, &run_is_special<true>}},
        {"LRN", {1, 1, 1, nullptr, &run_lrn}},
        {"LayerNormalization", {2, 3, 3, &check_layer_norm, &run_layer_norm}},
        {"LeakyRelu", {1, 1, 1, nullptr, &run_leaky_relu}},
        {"Less", {2, 2, 1, nullptr, &legacy_broadcast<&run_compare<1>>}},
        {"LessOrEqual", {2, 2, 1, &check_since<12>, &run_compare<3>}},
        {"Log", {1, 1, 1, nullptr, &run_unary<&nanotorch::log>}},
        {"LogSoftmax", {1, 1, 1, nullptr, &run_softmax<true>}},
        {"MatMul", {2, 2, 1, nullptr, &run_matmul}},
        {"Max", {1, std::size_t(-1), 1, nullptr, &run_variadic<0>}},
        {"MaxPool", {1, 1, 2, &check_pool, &run_max_pool}},
        {"Mean", {1, std::size_t(-1), 1, nullptr, &run_variadic<3>}},
        {"Min", {1, std::size_t(-1), 1, nullptr, &run_variadic<1>}},
        {"Mod", {2, 2, 1, &check_since<10>, &run_mod}},
        {"Mul", {2, 2, 1, nullptr, &legacy_broadcast<&run_arith<2>>}},
        {"Neg", {1, 1, 1, nullptr, &run_neg}},
        {"Not", {1, 1, 1, nullptr, &run_not}},
        {"Or", {2, 2, 1, nullptr, &legacy_broadcast<&run_logic<1>>}},
        {"PRelu", {2, 2, 1, nullptr, &run_prelu}},
        {"Pad", {1, 3, 1, &check_pad, &run_pad}},
        {"Pow", {2, 2, 1, nullptr, &legacy_broadcast<&run_pow>}},
        {"Range", {3, 3, 1, &check_since<11>, &run_range}},
        {"Reciprocal", {1, 1, 1, nullptr, &run_math<Fn::reciprocal>}},
        {"ReduceL1", {1, 1, 1, nullptr, &run_reduce_more<Red::l1>}},
        {"ReduceL2", {1, 1, 1, nullptr, &run_reduce_more<Red::l2>}},
        {"ReduceLogSum", {1, 1, 1, nullptr, &run_reduce_more<Red::log_sum>}},
        {"ReduceLogSumExp", {1, 1, 1, nullptr, &run_reduce_more<Red::log_sum_exp>}},
        {"ReduceMax", {1, 1, 1, &check_inputs<18, 1, 1, 1, 1>, &run_reduce_max}},
        {"ReduceMean", {1, 1, 1, nullptr, &run_reduce<true>}},
        {"ReduceMin", {1, 1, 1, nullptr, &run_reduce_more<Red::min>}},
        {"ReduceProd", {1, 1, 1, nullptr, &run_reduce_more<Red::prod>}},
        {"ReduceSum", {1, 2, 1, &check_inputs<13, 1, 1, 1, 2>, &run_reduce<false>}},
        {"ReduceSumSquare", {1, 1, 1, nullptr, &run_reduce_more<Red::sum_square>}},
        {"Relu", {1, 1, 1, nullptr, &run_unary<&nanotorch::relu>}},
        {"Reshape", {1, 2, 1, &check_inputs<5, 1, 1, 2, 2>, &run_reshape}},
        {"Resize", {1, 4, 1, &check_resize, &run_resize}},
        {"Round", {1, 1, 1, &check_since<11>, &run_math<Fn::round>}},
        {"Selu", {1, 1, 1, nullptr, &run_selu}},
        {"Shape", {1, 1, 1, nullptr, &run_shape}},
        {"Shrink", {1, 1, 1, &check_since<9>, &run_shrink}},
        {"Sigmoid", {1, 1, 1, nullptr, &run_unary<&nanotorch::sigmoid>}},
        {"Sign", {1, 1, 1, &check_since<9>, &run_abs_sign<true>}},
        {"Sin", {1, 1, 1, nullptr, &run_math<Fn::sin>}},
        {"Sinh", {1, 1, 1, &check_since<9>, &run_math<Fn::sinh>}},
        {"Size", {1, 1, 1, nullptr, &run_size}},
        {"Slice", {1, 5, 1, &check_inputs<10, 1, 1, 3, 5>, &run_slice}},
        {"Softmax", {1, 1, 1, nullptr, &run_softmax<false>}},
        {"Softplus", {1, 1, 1, nullptr, &run_softplus}},
        {"Softsign", {1, 1, 1, nullptr, &run_math<Fn::softsign>}},
        {"Split", {1, 2, std::size_t(-1), &check_inputs<13, 1, 1, 1, 2>, &run_split}},
        {"Sqrt", {1, 1, 1, nullptr, &run_unary<&nanotorch::sqrt>}},
        {"Squeeze", {1, 2, 1, &check_inputs<13, 1, 1, 1, 2>, &run_squeeze<false>}},
        {"Sub", {2, 2, 1, nullptr, &legacy_broadcast<&run_arith<1>>}},
        {"Sum", {1, std::size_t(-1), 1, nullptr, &run_variadic<2>}},
        {"Tan", {1, 1, 1, nullptr, &run_math<Fn::tan>}},
        {"Tanh", {1, 1, 1, nullptr, &run_unary<&nanotorch::tanh>}},
        {"ThresholdedRelu", {1, 1, 1, &check_since<10>, &run_thresholded_relu}},
        {"Tile", {2, 2, 1, nullptr, &run_tile}},
        {"Transpose", {1, 1, 1, nullptr, &run_transpose}},
        {"Trilu", {1, 2, 1, &check_since<14>, &run_trilu}},
        {"Unsqueeze", {1, 2, 1, &check_inputs<13, 1, 1, 2, 2>, &run_squeeze<true>}},
        {"Upsample", {1, 2, 1, &check_resize, &run_resize}},
        {"Where", {3, 3, 1, &check_since<9>, &run_where}},
        {"Xor", {2, 2, 1, nullptr, &legacy_broadcast<&run_logic<2>>}},
    };
    return table;
}
#endif  // NANOTORCH_ONNX_OPS_EXTERN

}  // namespace nanotorch::onnx::rt_detail
