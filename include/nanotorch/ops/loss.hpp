// nanotorch/ops/loss.hpp — softmax, log_softmax, nll_loss and cross_entropy, each with its backward.
//
// softmax/log_softmax work along any dimension: the tensor is viewed as [outer, size, inner]
// and every (outer, inner) pair is one independent "line" of `size` elements, so lines are
// spread over parallel_for and the result is the same for every thread count. Both subtract
// the line's maximum before exponentiating (log_softmax([1000, 0]) is exactly [0, -1000]) and
// sum the exponentials in double. cross_entropy is a fused log_softmax + nll_loss with its own
// backward, (softmax − onehot) · scale, so no [N, C] log-probability tensor is kept alive.
// The overloads taking a class-weight tensor add PyTorch 1.13's weight, ignore_index and (for
// cross_entropy) label_smoothing, with its exact reductions: a weighted mean divides by the sum of
// the non-ignored targets' weights, and the smoothing term −Σ_c w_c·log p_c is normalised by the
// same sum. Targets equal to ignore_index (default −100) contribute nothing in either form.
// mse_loss and binary_cross_entropy_with_logits live in ops/loss_pointwise.hpp.
// Deliberately not here: soft (probability) targets, K-dimensional inputs ([N, C, d1, ...]),
// and lines that are entirely −inf (they give NaN, as in PyTorch).
#pragma once

#include <algorithm>  // std::max, std::find
#include <cmath>
#include <cstdint>
#include <limits>   // quiet_NaN for the mean of zero samples
#include <memory>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/ops/broadcast.hpp>

namespace nanotorch {

/// How a per-sample loss is reduced: None keeps shape [N], Mean and Sum give a 0-D tensor.
enum class Reduction { None, Mean, Sum };

/// PyTorch's default ignore_index for nll_loss and cross_entropy.
inline constexpr std::int64_t kIgnoreIndex = -100;

// ---- kernels ----
// All arrays are contiguous; a line is `size` floats `inner` apart starting at
// o * size * inner + i. Lines never share outputs, so chunks of lines may run concurrently.
namespace kernels {

namespace loss_detail {
/// Lines per parallel chunk: about 16k elements per chunk, so tiny tensors stay serial.
inline std::int64_t line_grain(std::int64_t size) { return size > 0 ? std::max<std::int64_t>(1, 16384 / size) : 1; }

/// Calls fn(base_offset) for every line (outer × inner of them), in parallel chunks.
template <class Fn>
inline void for_each_line(std::int64_t outer, std::int64_t size, std::int64_t inner, const Fn& fn) {
    if (size == 0) return;
    parallel_for(0, outer * inner, line_grain(size), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t r = b; r < e; ++r) fn((r / inner) * size * inner + r % inner);
    });
}

/// max over one line (the shift that keeps exp() from overflowing).
inline float line_max(const float* x, std::int64_t size, std::int64_t stride) {
    float m = x[0];
    for (std::int64_t k = 1; k < size; ++k) m = std::max(m, x[k * stride]);
    return m;
}
}  // namespace loss_detail

// out[outer, size, inner] = softmax of x[outer, size, inner] along the middle axis
inline void softmax_forward(float* out, const float* x, std::int64_t outer, std::int64_t size, std::int64_t inner) {
    loss_detail::for_each_line(outer, size, inner, [&](std::int64_t base) {
        const float* xl = x + base;
        float* ol = out + base;
        const float m = loss_detail::line_max(xl, size, inner);
        double s = 0.0;
        for (std::int64_t k = 0; k < size; ++k) {
            const float e = std::exp(xl[k * inner] - m);
            ol[k * inner] = e;
            s += e;
        }
        for (std::int64_t k = 0; k < size; ++k) ol[k * inner] = static_cast<float>(ol[k * inner] / s);
    });
}

// out[outer, size, inner] = log_softmax of x along the middle axis: (x − m) − log Σ exp(x − m)
inline void log_softmax_forward(float* out, const float* x, std::int64_t outer, std::int64_t size,
                                std::int64_t inner) {
    loss_detail::for_each_line(outer, size, inner, [&](std::int64_t base) {
        const float* xl = x + base;
        float* ol = out + base;
        const float m = loss_detail::line_max(xl, size, inner);
        double s = 0.0;
        for (std::int64_t k = 0; k < size; ++k) s += std::exp(xl[k * inner] - m);
        const float log_s = static_cast<float>(std::log(s));
        for (std::int64_t k = 0; k < size; ++k) ol[k * inner] = (xl[k * inner] - m) - log_s;
    });
}

// dx = y · (dy − Σ dy·y) per line; dx, dy, y: [outer, size, inner], y = softmax output
inline void softmax_backward(float* dx, const float* dy, const float* y, std::int64_t outer, std::int64_t size,
                             std::int64_t inner) {
    loss_detail::for_each_line(outer, size, inner, [&](std::int64_t base) {
        double dot = 0.0;
        for (std::int64_t k = 0; k < size; ++k) dot += static_cast<double>(dy[base + k * inner]) * y[base + k * inner];
        const float d = static_cast<float>(dot);
        for (std::int64_t k = 0; k < size; ++k) {
            const std::int64_t j = base + k * inner;
            dx[j] = y[j] * (dy[j] - d);
        }
    });
}

// dx = dy − exp(y) · Σ dy per line; dx, dy, y: [outer, size, inner], y = log_softmax output
inline void log_softmax_backward(float* dx, const float* dy, const float* y, std::int64_t outer, std::int64_t size,
                                 std::int64_t inner) {
    loss_detail::for_each_line(outer, size, inner, [&](std::int64_t base) {
        double s = 0.0;
        for (std::int64_t k = 0; k < size; ++k) s += dy[base + k * inner];
        const float sf = static_cast<float>(s);
        for (std::int64_t k = 0; k < size; ++k) {
            const std::int64_t j = base + k * inner;
            dx[j] = dy[j] - std::exp(y[j]) * sf;
        }
    });
}

// losses[N] = lse[N] − logits[n, target[n]], lse[N] = log Σ_c exp(logits[n, c]); logits: [N, C]
inline void cross_entropy_forward(float* losses, float* lse, const float* logits, const std::int64_t* target,
                                  std::int64_t N, std::int64_t C) {
    loss_detail::for_each_line(N, C, 1, [&](std::int64_t base) {
        const std::int64_t n = base / C;
        const float* row = logits + base;
        const float m = loss_detail::line_max(row, C, 1);
        double s = 0.0;
        for (std::int64_t c = 0; c < C; ++c) s += std::exp(row[c] - m);
        lse[n] = m + static_cast<float>(std::log(s));
        losses[n] = lse[n] - row[target[n]];
    });
}

// dlogits[n, c] = (exp(logits[n, c] − lse[n]) − [c == target[n]]) · scale[n]; dlogits, logits: [N, C]
inline void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const std::int64_t* target,
                                   const float* scale, std::int64_t N, std::int64_t C) {
    loss_detail::for_each_line(N, C, 1, [&](std::int64_t base) {
        const std::int64_t n = base / C;
        for (std::int64_t c = 0; c < C; ++c) {
            const float p = std::exp(logits[base + c] - lse[n]);
            dlogits[base + c] = (c == target[n] ? p - 1.0f : p) * scale[n];
        }
    });
}

}  // namespace kernels

namespace ops::detail {

/// x viewed as [outer, size, inner] around dimension `dim` (a 0-D tensor counts as [1]).
struct LineLayout {
    std::int64_t outer = 1, size = 1, inner = 1;
};
inline LineLayout line_layout(const Shape& shape, std::int64_t dim, const char* op) {
    const std::int64_t nd = static_cast<std::int64_t>(shape.size());
    const std::int64_t d = wrap_dim(dim, nd > 0 ? nd : 1, op);
    LineLayout l;
    if (nd == 0) return l;
    for (std::int64_t i = 0; i < d; ++i) l.outer *= shape[static_cast<std::size_t>(i)];
    l.size = shape[static_cast<std::size_t>(d)];
    for (std::int64_t i = d + 1; i < nd; ++i) l.inner *= shape[static_cast<std::size_t>(i)];
    return l;
}

/// Checks log_probs/logits is [N, C] and every target is a valid class; `op` names the caller.
inline void check_classification(const Tensor& input, const std::vector<std::int64_t>& target, const char* op) {
    NANOTORCH_CHECK(input.dim() == 2, shape_error, op, ": expected input of shape [N, C], got ",
                    shape_str(input.shape()));
    const std::int64_t N = input.shape()[0], C = input.shape()[1];
    NANOTORCH_CHECK(static_cast<std::int64_t>(target.size()) == N, shape_error, op, ": target has ", target.size(),
                    " entries but input ", shape_str(input.shape()), " has ", N, " rows");
    for (std::size_t n = 0; n < target.size(); ++n)
        NANOTORCH_CHECK(target[n] >= 0 && target[n] < C, value_error, op, ": target[", n, "] = ", target[n],
                        " is out of range for ", C, " classes (expected 0 <= target < ", C, ")");
}

/// Applies `reduction` to per-sample losses: [N] for None, else a 0-D tensor. The sum runs
/// serially in double, in index order. Mean over N = 0 is NaN, as in PyTorch.
inline Tensor reduce_losses(const std::vector<float>& losses, Reduction reduction) {
    if (reduction == Reduction::None) return tensor(losses);
    double s = 0.0;
    for (float v : losses) s += v;
    if (reduction == Reduction::Sum) return scalar_tensor(static_cast<float>(s));
    if (losses.empty()) return scalar_tensor(std::numeric_limits<float>::quiet_NaN());
    return scalar_tensor(static_cast<float>(s / static_cast<double>(losses.size())));
}

/// Per-sample factor by which the reduced loss's gradient `g` reaches sample n's loss.
inline std::vector<float> per_sample_scale(const Tensor& g, std::int64_t N, Reduction reduction) {
    std::vector<float> scale;
    if (reduction == Reduction::None) {
        scale = g.to_vector();
    } else {
        const float gv = g.item();
        const float f = reduction == Reduction::Mean && N > 0 ? gv / static_cast<float>(N) : gv;
        scale.assign(static_cast<std::size_t>(N), f);
    }
    return scale;
}

}  // namespace ops::detail

// ---- softmax ----
struct SoftmaxBackward : autograd::Node {
    Tensor y;  // the softmax output (contiguous)
    ops::detail::LineLayout layout;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor dx = empty(y.shape());
        kernels::softmax_backward(dx.data_ptr(), gc.data_ptr(), y.data_ptr(), layout.outer, layout.size, layout.inner);
        return {dx};
    }
    void release_saved() override { y = Tensor(); }
    const char* name() const override { return "SoftmaxBackward"; }
};

/// exp(x) / Σ exp(x) along `dim` (negative counts from the end), computed stably.
/// Output has x's shape. Throws value_error when dim is out of range.
/// Example: softmax(tensor({1, 2, 3}), 0) ≈ [0.0900, 0.2447, 0.6652].
namespace ops::detail {
/// ONNX Softmax/LogSoftmax: before opset 13 `axis` flattens the input to 2-D at that axis, which
/// equals our single-dim softmax only when dim is the last one.
inline void trace_softmax(const char* op_type, const Tensor& x, const Tensor& y, std::int64_t dim) {
    auto* tr = trace::active();
    if (!tr) return;
    const std::int64_t d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), op_type);
    if (tr->opset() < 13 && x.dim() > 0 && d != x.dim() - 1)
        tr->unsupported(op_type, "over a dimension other than the last, it needs opset 13 (ExportOptions::opset)");
    tr->emit(op_type, {trace::value(x)}, {y}, {trace::attr("axis", d)});
}
}  // namespace ops::detail

inline Tensor softmax(const Tensor& x, std::int64_t dim) {
    const ops::detail::LineLayout l = ops::detail::line_layout(x.shape(), dim, "softmax");
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor y = empty(x.shape());
    kernels::softmax_forward(y.data_ptr(), xc.data_ptr(), l.outer, l.size, l.inner);
    ops::detail::trace_softmax("Softmax", x, y, dim);
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<SoftmaxBackward>();
        n->y = y.detach();
        n->layout = l;
        autograd::attach(y, n, {x});
    }
    return y;
}

// ---- log_softmax ----
struct LogSoftmaxBackward : autograd::Node {
    Tensor y;  // the log_softmax output (contiguous); exp(y) is the softmax
    ops::detail::LineLayout layout;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor dx = empty(y.shape());
        kernels::log_softmax_backward(dx.data_ptr(), gc.data_ptr(), y.data_ptr(), layout.outer, layout.size,
                                      layout.inner);
        return {dx};
    }
    void release_saved() override { y = Tensor(); }
    const char* name() const override { return "LogSoftmaxBackward"; }
};

/// x − log Σ exp(x) along `dim` (negative counts from the end), computed stably: the maximum
/// is subtracted first, so log_softmax(tensor({1000, 0}), 0) is exactly [0, -1000].
/// Throws value_error when dim is out of range.
inline Tensor log_softmax(const Tensor& x, std::int64_t dim) {
    const ops::detail::LineLayout l = ops::detail::line_layout(x.shape(), dim, "log_softmax");
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor y = empty(x.shape());
    kernels::log_softmax_forward(y.data_ptr(), xc.data_ptr(), l.outer, l.size, l.inner);
    ops::detail::trace_softmax("LogSoftmax", x, y, dim);
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<LogSoftmaxBackward>();
        n->y = y.detach();
        n->layout = l;
        autograd::attach(y, n, {x});
    }
    return y;
}

inline Tensor Tensor::softmax(std::int64_t dim) const { return nanotorch::softmax(*this, dim); }
inline Tensor Tensor::log_softmax(std::int64_t dim) const { return nanotorch::log_softmax(*this, dim); }

// ---- nll_loss ----
struct NllLossBackward : autograd::Node {
    std::vector<std::int64_t> target;
    std::int64_t N = 0, C = 0;
    Reduction reduction = Reduction::Mean;
    std::vector<Tensor> apply(const Tensor& g) override {
        // Only log_probs[n, target[n]] reaches the loss, with weight −1 (times the reduction's factor).
        const std::vector<float> scale = ops::detail::per_sample_scale(g, N, reduction);
        Tensor dx = zeros({N, C});
        float* d = dx.data_ptr();
        for (std::int64_t n = 0; n < N; ++n) d[n * C + target[static_cast<std::size_t>(n)]] = -scale[static_cast<std::size_t>(n)];
        return {dx};
    }
    void release_saved() override { target = {}; }
    const char* name() const override { return "NllLossBackward"; }
};

/// Negative log-likelihood: loss[n] = −log_probs[n, target[n]], then reduced.
/// log_probs: [N, C] (typically log_softmax output); target: N class indices in [0, C).
/// Returns [N] for Reduction::None, else a 0-D tensor (Mean of N = 0 samples is NaN).
/// Throws shape_error when log_probs is not 2-D or target.size() != N, value_error naming
/// the first target index and value outside [0, C). A target equal to −100 (PyTorch's default
/// ignore_index) is ignored, as in the weighted overload below.
inline Tensor nll_loss(const Tensor& log_probs, const std::vector<std::int64_t>& target, const Tensor& weight,
                       Reduction reduction = Reduction::Mean, std::int64_t ignore_index = kIgnoreIndex);
inline Tensor nll_loss(const Tensor& log_probs, const std::vector<std::int64_t>& target,
                       Reduction reduction = Reduction::Mean) {
    if (auto* tr = trace::active()) tr->unsupported("nll_loss", "losses are training-only; export the model, not the loss");
    if (std::find(target.begin(), target.end(), kIgnoreIndex) != target.end())
        return nll_loss(log_probs, target, Tensor(), reduction, kIgnoreIndex);  // PyTorch's default ignore_index
    ops::detail::check_classification(log_probs, target, "nll_loss");
    const std::int64_t N = log_probs.shape()[0], C = log_probs.shape()[1];
    const Tensor xc = ops::detail::as_contiguous(log_probs);
    const float* x = xc.data_ptr();
    std::vector<float> losses(static_cast<std::size_t>(N));
    for (std::int64_t n = 0; n < N; ++n)
        losses[static_cast<std::size_t>(n)] = -x[n * C + target[static_cast<std::size_t>(n)]];
    Tensor out = ops::detail::reduce_losses(losses, reduction);
    if (autograd::any_requires_grad({&log_probs})) {
        auto node = std::make_shared<NllLossBackward>();
        node->target = target;
        node->N = N;
        node->C = C;
        node->reduction = reduction;
        autograd::attach(out, node, {log_probs});
    }
    return out;
}

// ---- cross_entropy ----
struct CrossEntropyBackward : autograd::Node {
    Tensor logits;           // contiguous [N, C]
    std::vector<float> lse;  // log Σ exp(logits[n, :]) per row, from the forward
    std::vector<std::int64_t> target;
    Reduction reduction = Reduction::Mean;
    std::vector<Tensor> apply(const Tensor& g) override {
        const std::int64_t N = logits.shape()[0], C = logits.shape()[1];
        const std::vector<float> scale = ops::detail::per_sample_scale(g, N, reduction);
        Tensor dx = empty({N, C});
        kernels::cross_entropy_backward(dx.data_ptr(), logits.data_ptr(), lse.data(), target.data(), scale.data(), N, C);
        return {dx};
    }
    void release_saved() override {
        logits = Tensor();
        lse = {};
        target = {};
    }
    const char* name() const override { return "CrossEntropyBackward"; }
};

/// nll_loss(log_softmax(logits, 1), target, reduction) fused into one stable pass:
/// loss[n] = log Σ_c exp(logits[n, c]) − logits[n, target[n]]. Its gradient is
/// (softmax(logits) − onehot(target)) scaled by the reduction (1/N for Mean).
/// logits: [N, C]; target: N class indices in [0, C) (or −100, ignored). Same shapes, result
/// and errors as nll_loss. With class weights, label smoothing or another ignore_index: below.
inline Tensor cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& target, const Tensor& weight,
                            float label_smoothing = 0.0f, Reduction reduction = Reduction::Mean,
                            std::int64_t ignore_index = kIgnoreIndex);
inline Tensor cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& target,
                            Reduction reduction = Reduction::Mean) {
    if (auto* tr = trace::active())
        tr->unsupported("cross_entropy", "losses are training-only; export the model, not the loss");
    if (std::find(target.begin(), target.end(), kIgnoreIndex) != target.end())
        return cross_entropy(logits, target, Tensor(), 0.0f, reduction, kIgnoreIndex);
    ops::detail::check_classification(logits, target, "cross_entropy");
    const std::int64_t N = logits.shape()[0], C = logits.shape()[1];
    const Tensor xc = ops::detail::as_contiguous(logits);
    std::vector<float> losses(static_cast<std::size_t>(N)), lse(static_cast<std::size_t>(N));
    kernels::cross_entropy_forward(losses.data(), lse.data(), xc.data_ptr(), target.data(), N, C);
    Tensor out = ops::detail::reduce_losses(losses, reduction);
    if (autograd::any_requires_grad({&logits})) {
        auto node = std::make_shared<CrossEntropyBackward>();
        node->logits = xc;
        node->lse = std::move(lse);
        node->target = target;
        node->reduction = reduction;
        autograd::attach(out, node, {logits});
    }
    return out;
}

// ---- class weights, ignore_index, label smoothing (PyTorch 1.13's formulas) ----
namespace ops::detail {

/// Everything the weighted forms need from the arguments, checked. w has C entries (all 1 when no
/// weight was given); valid[n] is false for ignored samples.
struct ClassLossArgs {
    std::int64_t N = 0, C = 0;
    std::vector<float> w;
    std::vector<bool> valid;
    double denom = 0.0;  // Σ w[target[n]] over the valid samples: the weighted mean's divisor
};

inline ClassLossArgs class_loss_args(const Tensor& input, const std::vector<std::int64_t>& target,
                                     const Tensor& weight, std::int64_t ignore_index, const char* op) {
    NANOTORCH_CHECK(input.dim() == 2, shape_error, op, ": expected input of shape [N, C], got ",
                    shape_str(input.shape()));
    ClassLossArgs a;
    a.N = input.shape()[0];
    a.C = input.shape()[1];
    NANOTORCH_CHECK(static_cast<std::int64_t>(target.size()) == a.N, shape_error, op, ": target has ", target.size(),
                    " entries but input ", shape_str(input.shape()), " has ", a.N, " rows");
    if (weight.defined()) {
        NANOTORCH_CHECK(weight.dim() == 1 && weight.numel() == a.C, shape_error, op,
                        ": weight must hold one value per class (shape [", a.C, "]), got ", shape_str(weight.shape()));
        a.w = weight.to_vector();
    } else {
        a.w.assign(static_cast<std::size_t>(a.C), 1.0f);
    }
    a.valid.resize(target.size());
    for (std::size_t n = 0; n < target.size(); ++n) {
        const std::int64_t t = target[n];
        a.valid[n] = t != ignore_index;
        if (!a.valid[n]) continue;
        NANOTORCH_CHECK(t >= 0 && t < a.C, value_error, op, ": target[", n, "] = ", t, " is out of range for ", a.C,
                        " classes (expected 0 <= target < ", a.C, ", or ignore_index = ", ignore_index, ")");
        a.denom += a.w[static_cast<std::size_t>(t)];
    }
    return a;
}

/// Reduces per-sample terms: None keeps [N]; Sum adds them; Mean divides the sum by `denom` (all
/// sums in double, in index order). Mean over a zero denominator is NaN, as in PyTorch.
inline double reduce_weighted(const std::vector<double>& v, double denom, Reduction r) {
    double s = 0.0;
    for (double x : v) s += x;
    if (r == Reduction::Mean) return denom == 0.0 ? std::numeric_limits<double>::quiet_NaN() : s / denom;
    return s;
}

/// Per-sample factor by which the reduced loss's gradient reaches sample n (weighted-mean form).
inline std::vector<float> weighted_scale(const Tensor& g, std::int64_t N, double denom, Reduction r) {
    if (r == Reduction::None) return g.to_vector();
    const double f = r == Reduction::Mean ? static_cast<double>(g.item()) / denom : g.item();
    return std::vector<float>(static_cast<std::size_t>(N), static_cast<float>(f));
}

}  // namespace ops::detail

struct WeightedNllLossBackward : autograd::Node {
    std::vector<std::int64_t> target;
    ops::detail::ClassLossArgs args;
    Reduction reduction = Reduction::Mean;
    std::vector<Tensor> apply(const Tensor& g) override {
        const std::vector<float> scale = ops::detail::weighted_scale(g, args.N, args.denom, reduction);
        Tensor dx = zeros({args.N, args.C});
        float* d = dx.data_ptr();
        for (std::int64_t n = 0; n < args.N; ++n) {
            const auto k = static_cast<std::size_t>(n);
            if (args.valid[k]) d[n * args.C + target[k]] = -args.w[static_cast<std::size_t>(target[k])] * scale[k];
        }
        return {dx};
    }
    void release_saved() override { target = {}; }
    const char* name() const override { return "WeightedNllLossBackward"; }
};

/// nll_loss with class weights and ignore_index, as PyTorch 1.13: loss[n] = −weight[t]·log_probs[n, t]
/// (0 where t == ignore_index); Mean = Σ loss / Σ weight[t] over the non-ignored samples (NaN if
/// there are none); Sum = Σ loss. weight: undefined (all ones) or [C]; it receives no gradient.
/// Throws shape_error for a log_probs that is not [N, C], a target of the wrong length or a weight
/// that is not [C]; value_error naming the first target outside [0, C) that is not ignore_index.
inline Tensor nll_loss(const Tensor& log_probs, const std::vector<std::int64_t>& target, const Tensor& weight,
                       Reduction reduction, std::int64_t ignore_index) {
    if (auto* tr = trace::active()) tr->unsupported("nll_loss", "losses are training-only; export the model, not the loss");
    ops::detail::ClassLossArgs a = ops::detail::class_loss_args(log_probs, target, weight, ignore_index, "nll_loss");
    const std::vector<float> x = log_probs.to_vector();
    std::vector<double> loss(static_cast<std::size_t>(a.N), 0.0);
    for (std::int64_t n = 0; n < a.N; ++n) {
        const auto k = static_cast<std::size_t>(n);
        if (a.valid[k])
            loss[k] = -static_cast<double>(a.w[static_cast<std::size_t>(target[k])]) * x[static_cast<std::size_t>(n * a.C + target[k])];
    }
    Tensor out;
    if (reduction == Reduction::None) {
        out = tensor(std::vector<float>(loss.begin(), loss.end()));
    } else {
        out = scalar_tensor(static_cast<float>(ops::detail::reduce_weighted(loss, a.denom, reduction)));
    }
    if (autograd::any_requires_grad({&log_probs})) {
        auto node = std::make_shared<WeightedNllLossBackward>();
        node->target = target;
        node->args = std::move(a);
        node->reduction = reduction;
        autograd::attach(out, node, {log_probs});
    }
    return out;
}

struct SmoothedCrossEntropyBackward : autograd::Node {
    Tensor logits;           // contiguous [N, C]
    std::vector<float> lse;  // log Σ exp per row
    std::vector<std::int64_t> target;
    ops::detail::ClassLossArgs args;
    float label_smoothing = 0.0f;
    Reduction reduction = Reduction::Mean;
    std::vector<Tensor> apply(const Tensor& g) override {
        // d/dx_c of (1−ε)·w_t·(−log p_t) + (ε/C)·(−Σ_k w_k log p_k)
        //   = (1−ε)·w_t·(p_c − [c = t]) + (ε/C)·(W·p_c − w_c),   W = Σ_k w_k
        const std::int64_t N = args.N, C = args.C;
        const std::vector<float> scale = ops::detail::weighted_scale(g, N, args.denom, reduction);
        double W = 0.0;
        for (float v : args.w) W += v;
        const double b = static_cast<double>(label_smoothing) / static_cast<double>(C);
        Tensor dx = zeros({N, C});
        float* d = dx.data_ptr();
        const float* x = logits.data_ptr();
        for (std::int64_t n = 0; n < N; ++n) {
            const auto k = static_cast<std::size_t>(n);
            if (!args.valid[k]) continue;
            const std::int64_t t = target[k];
            const double a = (1.0 - label_smoothing) * args.w[static_cast<std::size_t>(t)];
            for (std::int64_t c = 0; c < C; ++c) {
                const double p = std::exp(static_cast<double>(x[n * C + c]) - lse[k]);
                const double v = a * (p - (c == t ? 1.0 : 0.0)) + b * (W * p - args.w[static_cast<std::size_t>(c)]);
                d[n * C + c] = static_cast<float>(v * scale[k]);
            }
        }
        return {dx};
    }
    void release_saved() override {
        logits = Tensor();
        lse = {};
        target = {};
    }
    const char* name() const override { return "SmoothedCrossEntropyBackward"; }
};

/// cross_entropy with class weights, label smoothing and ignore_index, as PyTorch 1.13's
/// F.cross_entropy(input, target, weight, ignore_index=..., reduction=..., label_smoothing=...):
///   nll[n]    = −w[t]·log p[n, t]              smooth[n] = −Σ_c w[c]·log p[n, c]
///   None: (1−ε)·nll[n] + (ε/C)·smooth[n]  (0 for ignored samples)
///   Sum:  (1−ε)·Σ nll + (ε/C)·Σ smooth
///   Mean: the Sum form with both sums divided by Σ w[t] over the non-ignored samples (NaN if none)
/// where p = softmax(logits) and w = weight (all ones when undefined; it receives no gradient).
/// With no weight, ε = 0 and no ignored target this is exactly the fused overload above.
/// Throws value_error when label_smoothing is outside [0, 1] or a target is outside [0, C) and not
/// ignore_index; shape_error as nll_loss (logits not [N, C], target length, weight not [C]).
inline Tensor cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& target, const Tensor& weight,
                            float label_smoothing, Reduction reduction, std::int64_t ignore_index) {
    if (auto* tr = trace::active())
        tr->unsupported("cross_entropy", "losses are training-only; export the model, not the loss");
    NANOTORCH_CHECK(label_smoothing >= 0.0f && label_smoothing <= 1.0f, value_error,
                    "cross_entropy: label_smoothing must be between 0.0 and 1.0, got ", label_smoothing);
    ops::detail::ClassLossArgs a = ops::detail::class_loss_args(logits, target, weight, ignore_index, "cross_entropy");
    const bool all_valid = std::find(a.valid.begin(), a.valid.end(), false) == a.valid.end();
    if (!weight.defined() && label_smoothing == 0.0f && all_valid) return cross_entropy(logits, target, reduction);
    const std::int64_t N = a.N, C = a.C;
    const Tensor xc = ops::detail::as_contiguous(logits);
    const float* x = xc.data_ptr();
    std::vector<float> lse(static_cast<std::size_t>(N));
    std::vector<double> nll(static_cast<std::size_t>(N), 0.0), smooth(static_cast<std::size_t>(N), 0.0);
    for (std::int64_t n = 0; n < N; ++n) {
        const auto k = static_cast<std::size_t>(n);
        const float* row = x + n * C;
        const float m = C > 0 ? kernels::loss_detail::line_max(row, C, 1) : 0.0f;
        double s = 0.0;
        for (std::int64_t c = 0; c < C; ++c) s += std::exp(row[c] - m);
        lse[k] = m + static_cast<float>(std::log(s));
        if (!a.valid[k]) continue;
        const std::int64_t t = target[k];
        nll[k] = -static_cast<double>(a.w[static_cast<std::size_t>(t)]) * (row[t] - lse[k]);
        for (std::int64_t c = 0; c < C; ++c)
            smooth[k] -= static_cast<double>(a.w[static_cast<std::size_t>(c)]) * (row[c] - lse[k]);
    }
    const double eps = label_smoothing, b = eps / static_cast<double>(C);
    Tensor out;
    if (reduction == Reduction::None) {
        std::vector<float> v(static_cast<std::size_t>(N));
        for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>((1.0 - eps) * nll[k] + b * smooth[k]);
        out = tensor(v);
    } else {
        const double nll_r = ops::detail::reduce_weighted(nll, a.denom, reduction);
        const double smooth_r = eps == 0.0 ? 0.0 : ops::detail::reduce_weighted(smooth, a.denom, reduction);
        out = scalar_tensor(static_cast<float>((1.0 - eps) * nll_r + b * smooth_r));
    }
    if (autograd::any_requires_grad({&logits})) {
        auto node = std::make_shared<SmoothedCrossEntropyBackward>();
        node->logits = xc;
        node->lse = std::move(lse);
        node->target = target;
        node->args = std::move(a);
        node->label_smoothing = label_smoothing;
        node->reduction = reduction;
        autograd::attach(out, node, {logits});
    }
    return out;
}

}  // namespace nanotorch
