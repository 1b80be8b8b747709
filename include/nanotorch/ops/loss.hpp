// nanotorch/ops/loss.hpp — softmax, log_softmax, nll_loss and cross_entropy, each with its backward.
//
// softmax/log_softmax work along any dimension: the tensor is viewed as [outer, size, inner]
// and every (outer, inner) pair is one independent "line" of `size` elements, so lines are
// spread over parallel_for and the result is the same for every thread count. Both subtract
// the line's maximum before exponentiating (log_softmax([1000, 0]) is exactly [0, -1000]) and
// sum the exponentials in double. cross_entropy is a fused log_softmax + nll_loss with its own
// backward, (softmax − onehot) · scale, so no [N, C] log-probability tensor is kept alive.
// Deliberately not here: class weights, ignore_index, label smoothing, soft (probability)
// targets, K-dimensional losses, and lines that are entirely −inf (they give NaN, as in PyTorch).
#pragma once

#include <algorithm>  // std::max
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
/// the first target index and value outside [0, C).
inline Tensor nll_loss(const Tensor& log_probs, const std::vector<std::int64_t>& target,
                       Reduction reduction = Reduction::Mean) {
    if (auto* tr = trace::active()) tr->unsupported("nll_loss", "losses are training-only; export the model, not the loss");
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
/// logits: [N, C]; target: N class indices in [0, C). Same shapes, result and errors as nll_loss.
inline Tensor cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& target,
                            Reduction reduction = Reduction::Mean) {
    if (auto* tr = trace::active())
        tr->unsupported("cross_entropy", "losses are training-only; export the model, not the loss");
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

}  // namespace nanotorch
