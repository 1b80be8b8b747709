// nanotorch/onnx/ops_math.hpp — the runtime's float operators that training has no op for:
// pointwise math (Floor, Ceil, Round, Reciprocal, the trigonometric family, Softsign, IsNaN,
// IsInf, ThresholdedRelu, Shrink, Celu), the reductions beyond Sum/Mean/Max (ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp), normalisations (Selu, PRelu,
// LayerNormalization, InstanceNormalization, LRN), GlobalMaxPool, Hardmax and Trilu.
//
// Where the op is a composition of nanotorch ops (Selu = gamma·elu, PRelu from relu, the norms
// from mean/sub/mul/sqrt/div, ReduceL2 = sqrt(sum(x·x)), ReduceMin = −max(−x)), the runtime calls
// those ops, so the numbers are training's; the rest are plain loops on contiguous data (FLOAT, and
// DOUBLE for the pointwise ones). Inference only: none of these has a backward, because training
// does not use them yet; one that training gains moves to ops/ with its gradient check.
// Deliberately absent: anything on integer types (onnx/ops_typed.hpp).
#pragma once

#include <algorithm>  // std::sort, std::max
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/op_args.hpp>
#include <nanotorch/onnx/ops_support.hpp>
#include <nanotorch/onnx/ops_typed.hpp>
#include <nanotorch/ops/activation.hpp>
#include <nanotorch/ops/elementwise.hpp>
#include <nanotorch/ops/reduce.hpp>
#include <nanotorch/ops/shape.hpp>

namespace nanotorch::onnx::rt_detail {

// ---- pointwise ----

/// f elementwise on a FLOAT (computed in double, rounded once) or DOUBLE input.
template <class F>
inline Value float_unary(const Value& x, const std::string& op, F f) {
    NANOTORCH_CHECK(!x.is_int, unsupported_error, op, " on ", dtype_name(x.type), " (FLOAT and DOUBLE only)");
    if (x.is_double()) return unary_map(x, [](std::int64_t v) { return v; }, f);
    return Value::of(ops::detail::map_unary(x.f, [&](float v) { return static_cast<float>(f(static_cast<double>(v))); }));
}

enum class Fn { floor, ceil, round, reciprocal, sin, cos, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh, softsign };

template <Fn K>
inline std::vector<Value> run_math(const OpArgs& a) {
    return {float_unary(a.value(0), a.node.op_type, [](double v) {
        switch (K) {
            case Fn::floor: return std::floor(v);
            case Fn::ceil: return std::ceil(v);
            case Fn::round: return std::nearbyint(v);  // halves to even, the default rounding mode
            case Fn::reciprocal: return 1.0 / v;
            case Fn::sin: return std::sin(v);
            case Fn::cos: return std::cos(v);
            case Fn::tan: return std::tan(v);
            case Fn::asin: return std::asin(v);
            case Fn::acos: return std::acos(v);
            case Fn::atan: return std::atan(v);
            case Fn::sinh: return std::sinh(v);
            case Fn::cosh: return std::cosh(v);
            case Fn::asinh: return std::asinh(v);
            case Fn::acosh: return std::acosh(v);
            case Fn::atanh: return std::atanh(v);
            case Fn::softsign: return v / (1.0 + std::fabs(v));
        }
        return v;
    })};
}

/// IsNaN / IsInf (detect_positive, detect_negative): BOOL results.
template <bool Nan>
inline std::vector<Value> run_is_special(const OpArgs& a) {
    const Value& x = a.value(0);
    NANOTORCH_CHECK(!x.is_int, value_error, a.node.op_type, " on ", dtype_name(x.type), " (FLOAT and DOUBLE only)");
    const bool pos = attr_int(a.node, "detect_positive", 1) != 0, negv = attr_int(a.node, "detect_negative", 1) != 0;
    const std::vector<double> v = elements<double>(x);
    std::vector<std::int64_t> r(v.size());
    for (std::size_t k = 0; k < v.size(); ++k)
        r[k] = Nan ? std::isnan(v[k]) : std::isinf(v[k]) && ((v[k] > 0 && pos) || (v[k] < 0 && negv));
    return {Value::of_ints(std::move(r), x.shape, DataType::boolean)};
}

inline std::vector<Value> run_thresholded_relu(const OpArgs& a) {
    const float alpha = attr_float(a.node, "alpha", 1.0f);
    return {float_unary(a.value(0), "ThresholdedRelu", [alpha](double v) { return v > alpha ? v : 0.0; })};
}

inline std::vector<Value> run_shrink(const OpArgs& a) {
    const double lambd = attr_float(a.node, "lambd", 0.5f), bias = attr_float(a.node, "bias", 0.0f);
    return {float_unary(a.value(0), "Shrink",
                        [=](double v) { return v < -lambd ? v + bias : v > lambd ? v - bias : 0.0; })};
}

inline std::vector<Value> run_celu(const OpArgs& a) {
    const double alpha = attr_float(a.node, "alpha", 1.0f);
    NANOTORCH_CHECK(alpha != 0, value_error, "Celu: alpha = 0");
    return {float_unary(a.value(0), "Celu", [=](double v) {
        return std::max(0.0, v) + std::min(0.0, alpha * (std::exp(v / alpha) - 1.0));
    })};
}

/// Selu is gamma · elu(x, alpha): nanotorch's elu and mul.
inline std::vector<Value> run_selu(const OpArgs& a) {
    const float alpha = attr_float(a.node, "alpha", 1.67326319217681884765625f);
    const float gamma = attr_float(a.node, "gamma", 1.05070102214813232421875f);
    return one(mul(elu(a.tensor(0), alpha), gamma));
}

/// PRelu(x, slope) = relu(x) + slope · (x − relu(x)) with slope broadcast to x: for x > 0 that is
/// x + slope·0, otherwise 0 + slope·x, exactly ONNX's definition, on nanotorch's ops.
inline std::vector<Value> run_prelu(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    Tensor slope = a.tensor(1);
    if (a.opset < 7 && slope.dim() == 1 && x.dim() >= 2 && slope.size(0) == x.size(1) && x.dim() > 2) {
        Shape s(static_cast<std::size_t>(x.dim() - 1), 1);  // PRelu-6: a [C] slope is per channel
        s[0] = slope.size(0);
        slope = reshape(slope, s);
    }
    NANOTORCH_CHECK(broadcast_shapes(x.shape(), slope.shape(), "PRelu") == x.shape(), shape_error, "PRelu: slope of shape ",
                    shape_str(slope.shape()), " does not broadcast to the input's shape ", shape_str(x.shape()));
    const Tensor r = relu(x);
    return one(add(r, mul(slope, sub(x, r))));
}

// ---- reductions ----

/// The axes a reduction names (attribute; all when absent), wrapped and checked for repeats.
inline Shape reduce_axes(const OpArgs& a, std::int64_t rank) {
    Shape axes = attr_ints(a.node, "axes");
    if (axes.empty())
        for (std::int64_t d = 0; d < rank; ++d) axes.push_back(d);
    for (auto& d : axes) d = wrap_axis(d, std::max<std::int64_t>(rank, 1), "axis");
    std::sort(axes.begin(), axes.end());
    NANOTORCH_CHECK(std::adjacent_find(axes.begin(), axes.end()) == axes.end(), value_error, a.node.op_type,
                    ": an axis is listed twice");
    return axes;
}

/// max over several axes, from the last, with nanotorch::max.
inline Tensor max_over(Tensor x, const Shape& sorted_axes, bool keep) {
    for (auto it = sorted_axes.rbegin(); it != sorted_axes.rend(); ++it) x = nanotorch::max(x, *it, keep);
    return x;
}

enum class Red { min, prod, l1, l2, sum_square, log_sum, log_sum_exp };

template <Red K>
inline std::vector<Value> run_reduce_more(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    const Shape axes = reduce_axes(a, x.dim());
    const bool keep = attr_int(a.node, "keepdims", 1) != 0;
    if (x.dim() == 0) return one(x);
    switch (K) {
        case Red::min: return one(neg(max_over(neg(x), axes, keep)));
        case Red::l2: return one(nanotorch::sqrt(sum(mul(x, x), axes, keep)));
        case Red::sum_square: return one(sum(mul(x, x), axes, keep));
        case Red::log_sum: return one(nanotorch::log(sum(x, axes, keep)));
        case Red::log_sum_exp: return one(nanotorch::log(sum(nanotorch::exp(x), axes, keep)));
        case Red::l1: return one(sum(ops::detail::map_unary(x, [](float v) { return std::fabs(v); }), axes, keep));
        case Red::prod: break;
    }
    // ReduceProd: no nanotorch op; a loop in a fixed order (the reduced elements in row-major order).
    const Shape& s = x.shape();
    Shape os = s;
    std::vector<bool> red(s.size(), false);
    for (const std::int64_t d : axes) red[static_cast<std::size_t>(d)] = true, os[static_cast<std::size_t>(d)] = 1;
    const Shape ost = contiguous_strides(os);
    std::vector<float> out(static_cast<std::size_t>(shape_numel(os)), 1.0f);
    const std::vector<float> in = x.to_vector();
    std::vector<std::int64_t> idx(s.size(), 0);
    for (std::size_t k = 0; k < in.size(); ++k) {
        std::int64_t o = 0;
        for (std::size_t d = 0; d < s.size(); ++d) o += red[d] ? 0 : idx[d] * ost[d];
        out[static_cast<std::size_t>(o)] *= in[k];
        for (std::size_t d = s.size(); d-- > 0;) {
            if (++idx[d] < s[d]) break;
            idx[d] = 0;
        }
    }
    if (!keep) {
        Shape kept;
        for (std::size_t d = 0; d < s.size(); ++d)
            if (!red[d]) kept.push_back(s[d]);
        os = kept;
    }
    return one(tensor(out, os));
}

inline std::vector<Value> run_global_max(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    NANOTORCH_CHECK(x.dim() >= 3, shape_error, "GlobalMaxPool: expected (N, C, D1, ...), got ", shape_str(x.shape()));
    Shape axes;
    for (std::int64_t d = 2; d < x.dim(); ++d) axes.push_back(d);
    return one(max_over(x, axes, true));
}

// ---- normalisation ----

/// (x − mean) / sqrt(var + eps) over `dims` (biased variance), with nanotorch's ops; also returns
/// the mean and 1/sqrt(var + eps) with the reduced dims kept.
struct Normalized {
    Tensor y, mean, inv_std;
};
inline Normalized normalize(const Tensor& x, const Shape& dims, float eps) {
    const Tensor m = mean(x, dims, true);
    const Tensor d = sub(x, m);
    const Tensor var = mean(mul(d, d), dims, true);
    const Tensor inv = div(scalar_tensor(1.0f), nanotorch::sqrt(add(var, eps)));
    return {mul(d, inv), m, inv};
}

inline std::vector<Value> run_layer_norm(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    const std::int64_t axis = wrap_axis(attr_int(a.node, "axis", -1), x.dim(), "LayerNormalization: axis");
    Shape dims;
    for (std::int64_t d = axis; d < x.dim(); ++d) dims.push_back(d);
    const Normalized n = normalize(x, dims, attr_float(a.node, "epsilon", 1e-5f));
    const Tensor& scale = a.tensor(1);
    NANOTORCH_CHECK(broadcast_shapes(x.shape(), scale.shape(), "LayerNormalization") == x.shape(), shape_error,
                    "LayerNormalization: scale of shape ", shape_str(scale.shape()), " does not broadcast to ",
                    shape_str(x.shape()));
    Tensor y = mul(n.y, scale);
    if (a.has(2)) y = add(y, a.tensor(2));
    return {Value::of(y), Value::of(n.mean), Value::of(n.inv_std)};
}

inline std::string check_layer_norm(const NodeProto& n, std::int64_t opset) {
    if (opset < 17) return check_since<17>(n, opset);
    const std::int64_t stash = attr_int(n, "stash_type", 1);
    return stash == 1 ? "" : str_cat("stash_type ", stash, " (only 1, float)");
}

inline std::vector<Value> run_instance_norm(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    NANOTORCH_CHECK(x.dim() >= 3, shape_error, "InstanceNormalization: expected (N, C, D1, ...), got ",
                    shape_str(x.shape()));
    const Tensor& scale = a.tensor(1);
    const Tensor& bias = a.tensor(2);
    const std::int64_t C = x.size(1);
    NANOTORCH_CHECK(scale.shape() == Shape{C} && bias.shape() == Shape{C}, shape_error,
                    "InstanceNormalization: scale and B must have shape [", C, "], got ", shape_str(scale.shape()),
                    " and ", shape_str(bias.shape()));
    Shape dims, per_channel(static_cast<std::size_t>(x.dim() - 1), 1);
    for (std::int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
    per_channel[0] = C;
    const Normalized n = normalize(x, dims, attr_float(a.node, "epsilon", 1e-5f));
    return one(add(mul(n.y, reshape(scale, per_channel)), reshape(bias, per_channel)));
}

/// LRN across channels: y = x / (bias + alpha/size · Σ x²)^beta over the channel window
/// [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉]. A loop (no nanotorch op), in double per element.
inline std::vector<Value> run_lrn(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    NANOTORCH_CHECK(x.dim() >= 3, shape_error, "LRN: expected (N, C, D1, ...), got ", shape_str(x.shape()));
    const AttributeProto* sz = typed_attr(a.node, "size", AttributeType::int_, "an INT");
    NANOTORCH_CHECK(sz && sz->i >= 1 && sz->i <= (std::int64_t(1) << 20), value_error,
                    "LRN: 'size' must be given, in 1..2^20");
    const std::int64_t size = sz->i;
    const double alpha = attr_float(a.node, "alpha", 1e-4f), beta = attr_float(a.node, "beta", 0.75f),
                 bias = attr_float(a.node, "bias", 1.0f);
    const std::int64_t N = x.size(0), C = x.size(1), inner = x.numel() / std::max<std::int64_t>(1, N * C);
    a.charge({x.numel(), std::min(size, C)});  // the window is clipped to the C channels
    const std::vector<float> in = x.to_vector();
    std::vector<float> out(in.size());
    const std::int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t i = 0; i < inner; ++i) {
                double ss = 0;
                for (std::int64_t j = std::max<std::int64_t>(0, c - lo); j <= std::min(C - 1, c + hi); ++j) {
                    const double v = in[static_cast<std::size_t>((n * C + j) * inner + i)];
                    ss += v * v;
                }
                const auto k = static_cast<std::size_t>((n * C + c) * inner + i);
                out[k] = static_cast<float>(in[k] / std::pow(bias + alpha / static_cast<double>(size) * ss, beta));
            }
    return one(tensor(out, x.shape()));
}

// ---- selection ----

/// Hardmax: 1 at the first maximum along `axis` (before opset 13: of each row of the 2-D view).
inline std::vector<Value> run_hardmax(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    const std::int64_t r = x.dim();
    NANOTORCH_CHECK(r >= 1, shape_error, "Hardmax of a scalar");
    const std::int64_t axis = wrap_axis(attr_int(a.node, "axis", a.opset >= 13 ? -1 : 1), r, "Hardmax: axis");
    std::int64_t outer = 1, n = 1, inner = 1;
    for (std::int64_t d = 0; d < r; ++d) {
        const std::int64_t e = x.size(d);
        if (a.opset >= 13) (d < axis ? outer : d == axis ? n : inner) *= e;
        else (d < axis ? outer : n) *= e;
    }
    const std::vector<float> in = x.to_vector();
    std::vector<float> out(in.size(), 0.0f);
    if (in.empty()) return one(tensor(out, x.shape()));  // the loops would still visit outer x inner
    for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t i = 0; i < inner; ++i) {
            std::int64_t best = 0;
            for (std::int64_t k = 1; k < n; ++k)
                if (in[static_cast<std::size_t>((o * n + k) * inner + i)] > in[static_cast<std::size_t>((o * n + best) * inner + i)])
                    best = k;
            out[static_cast<std::size_t>((o * n + best) * inner + i)] = 1.0f;
        }
    return one(tensor(out, x.shape()));
}

/// Trilu: keeps the upper (upper = 1) or lower triangle of the last two dims from diagonal k.
inline std::vector<Value> run_trilu(const OpArgs& a) {
    const Value& x = a.value(0);
    NANOTORCH_CHECK(x.shape.size() >= 2, shape_error, "Trilu: input of rank ", x.shape.size(), " (at least 2)");
    std::int64_t k = 0;
    if (a.has(1)) {
        const Value& kv = a.value(1);
        NANOTORCH_CHECK(kv.is_int && kv.numel() == 1, value_error, "Trilu: k must be one INT64");
        k = kv.i[0];
    }
    const bool upper = attr_int(a.node, "upper", 1) != 0;
    const std::int64_t rows = x.shape[x.shape.size() - 2], cols = x.shape.back();
    // Element (i, j) stays when j − i >= k (upper) or j − i <= k (lower); others read a zero,
    // appended after x's elements so that one take() serves every element type.
    const std::int64_t n = x.numel();
    std::vector<std::int64_t> src(static_cast<std::size_t>(n));
    for (std::int64_t e = 0; e < n; ++e) {
        const std::int64_t i = (e / cols) % rows, j = e % cols;
        const bool keep = upper ? j - i >= k : j - i <= k;
        src[static_cast<std::size_t>(e)] = keep ? e : n;
    }
    const Value zero = cast_value(Value::of_ints({0}, {1}), x.type);
    const Value flat = apply_layout({&x}, [&](const std::vector<Tensor>& t) { return reshape(t[0], {n}); });
    const Value both = apply_layout({&flat, &zero}, [](const std::vector<Tensor>& t) { return cat(t, 0); });
    return {take(both, src, x.shape)};
}

}  // namespace nanotorch::onnx::rt_detail
