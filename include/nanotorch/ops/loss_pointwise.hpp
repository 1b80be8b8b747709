// nanotorch/ops/loss_pointwise.hpp — elementwise losses: mse_loss and
// binary_cross_entropy_with_logits, each with its backward (to the input and to the target).
//
// Formulas, defaults and gradients are PyTorch 1.13's. binary_cross_entropy_with_logits uses the
// stable form  (1 − t)·x + lw·(log(exp(−m) + exp(−x − m)) + m),  m = max(−x, 0),
// lw = (pos_weight − 1)·t + 1 (1 without pos_weight), then multiplies by weight; it never
// evaluates exp of a large positive number, so logits of ±1000 give finite losses. Reductions:
// None keeps the input's shape; Mean divides the sum by the number of elements (NaN for an
// empty input, as PyTorch); sums run serially in double, in index order, so results do not
// depend on the thread count. Deliberately not here: broadcasting between input and target
// (PyTorch broadcasts mse_loss's with a warning that it is likely a mistake; here it is a
// shape_error), and gradients for weight and pos_weight (they are treated as constants).
#pragma once

#include <algorithm>  // std::max
#include <cmath>
#include <cstdint>
#include <limits>  // quiet_NaN for the mean of nothing
#include <memory>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/ops/broadcast.hpp>
#include <nanotorch/ops/elementwise.hpp>  // ops::detail::wants_grad
#include <nanotorch/ops/loss.hpp>  // Reduction

namespace nanotorch {

namespace ops::detail {

/// The reduced value of elementwise losses `l` for `input_shape`: a tensor of that shape for None,
/// else a 0-D tensor (Σ in double; Mean of no element is NaN).
inline Tensor reduce_elementwise(const std::vector<float>& l, const Shape& input_shape, Reduction r) {
    if (r == Reduction::None) return tensor(l, input_shape);
    double s = 0.0;
    for (float v : l) s += v;
    if (r == Reduction::Mean)
        return scalar_tensor(l.empty() ? std::numeric_limits<float>::quiet_NaN()
                                       : static_cast<float>(s / static_cast<double>(l.size())));
    return scalar_tensor(static_cast<float>(s));
}

/// The upstream gradient per element: g itself for None (input-shaped), else g broadcast.
inline std::vector<float> elementwise_upstream(const Tensor& g, std::size_t n, Reduction r) {
    if (r == Reduction::None) return as_contiguous(g).to_vector();
    return std::vector<float>(n, g.item());
}

/// Checks that `target` has `input`'s shape; `op` names the caller.
inline void check_same_shape(const Tensor& input, const Tensor& target, const char* op) {
    NANOTORCH_CHECK(input.defined() && target.defined(), value_error, op, ": input and target must be defined");
    NANOTORCH_CHECK(input.shape() == target.shape(), shape_error, op, ": target of shape ", shape_str(target.shape()),
                    " must have the input's shape ", shape_str(input.shape()));
}

/// `t` expanded to `shape` (undefined stays empty); throws shape_error unless t broadcasts to it.
inline std::vector<float> expand_to(const Tensor& t, const Shape& shape, const char* op, const char* what) {
    if (!t.defined()) return {};
    const Shape& s = t.shape();
    bool ok = s.size() <= shape.size();
    for (std::size_t k = 1; ok && k <= s.size(); ++k)
        ok = s[s.size() - k] == 1 || s[s.size() - k] == shape[shape.size() - k];
    NANOTORCH_CHECK(ok, shape_error, op, ": ", what, " of shape ", shape_str(s), " does not broadcast to the input's shape ",
                    shape_str(shape));
    return expand_copy(t, shape).to_vector();
}

}  // namespace ops::detail

// ---- mse_loss ----
struct MseLossBackward : autograd::Node {
    std::vector<float> diff;  // input − target
    Shape shape;
    Reduction reduction = Reduction::Mean;
    std::vector<Tensor> apply(const Tensor& g) override {
        const std::vector<float> up = ops::detail::elementwise_upstream(g, diff.size(), reduction);
        // PyTorch: norm · (input − target) · grad, norm = 2 (or 2 / numel for Mean)
        const float norm = reduction == Reduction::Mean ? static_cast<float>(2.0 / static_cast<double>(diff.size())) : 2.0f;
        std::vector<float> gi(diff.size()), gt(diff.size());
        for (std::size_t i = 0; i < diff.size(); ++i) {
            gi[i] = norm * diff[i] * up[i];
            gt[i] = -gi[i];
        }
        return {tensor(gi, shape), tensor(gt, shape)};
    }
    void release_saved() override { diff = {}; }
    const char* name() const override { return "MseLossBackward"; }
};

/// Mean squared error (input − target)², reduced (PyTorch's F.mse_loss). Differentiable in both
/// input and target. Throws shape_error when target's shape differs from input's, value_error
/// for an undefined tensor.
inline Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean) {
    if (auto* tr = trace::active()) tr->unsupported("mse_loss", "losses are training-only; export the model, not the loss");
    ops::detail::check_same_shape(input, target, "mse_loss");
    const std::vector<float> x = ops::detail::as_contiguous(input).to_vector();
    const std::vector<float> t = ops::detail::as_contiguous(target).to_vector();
    std::vector<float> diff(x.size()), l(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        diff[i] = x[i] - t[i];
        l[i] = diff[i] * diff[i];
    }
    Tensor out = ops::detail::reduce_elementwise(l, input.shape(), reduction);
    if (autograd::any_requires_grad({&input, &target})) {
        auto n = std::make_shared<MseLossBackward>();
        n->diff = std::move(diff);
        n->shape = input.shape();
        n->reduction = reduction;
        autograd::attach(out, n, {input, target});
    }
    return out;
}

// ---- binary_cross_entropy_with_logits ----
namespace ops::detail {
/// softplus(v) = log(1 + exp(v)) without overflow.
inline double softplus_stable(double v) { return std::max(v, 0.0) + std::log1p(std::exp(-std::fabs(v))); }
}  // namespace ops::detail

struct BceWithLogitsBackward : autograd::Node {
    std::vector<float> x, t, w, pw;  // w, pw empty when not given (already expanded to x's shape)
    Shape shape;
    Reduction reduction = Reduction::Mean;
    std::vector<Tensor> apply(const Tensor& g) override {
        const std::size_t n = x.size();
        const std::vector<float> up = ops::detail::elementwise_upstream(g, n, reduction);
        const float mean_div = static_cast<float>(n);
        std::vector<float> gi(n), gt;
        for (std::size_t i = 0; i < n; ++i) {
            // PyTorch: ((pw·t + 1 − t)·σ(x) − pw·t)·grad·weight, or (σ(x) − t)·grad·weight; / numel for Mean
            const float sig = x[i] >= 0.0f ? 1.0f / (1.0f + std::exp(-x[i])) : std::exp(x[i]) / (1.0f + std::exp(x[i]));
            float v;
            if (pw.empty()) {
                v = (sig - t[i]) * up[i];
            } else {
                const float pt = pw[i] * t[i];
                v = ((pt + 1.0f - t[i]) * sig - pt) * up[i];
            }
            if (!w.empty()) v *= w[i];
            gi[i] = reduction == Reduction::Mean ? v / mean_div : v;
        }
        if (ops::detail::wants_grad(*this, 1)) {
            // d/dt = −x + (pw − 1)·softplus(−x) = pw·softplus(−x) − softplus(x); −x without pos_weight
            gt.resize(n);
            for (std::size_t i = 0; i < n; ++i) {
                const double xv = x[i];
                double v = pw.empty() ? -xv
                                      : pw[i] * ops::detail::softplus_stable(-xv) - ops::detail::softplus_stable(xv);
                v *= up[i];
                if (!w.empty()) v *= w[i];
                gt[i] = static_cast<float>(reduction == Reduction::Mean ? v / static_cast<double>(n) : v);
            }
        }
        return {tensor(gi, shape), gt.empty() ? Tensor() : tensor(gt, shape)};
    }
    void release_saved() override { x = t = w = pw = {}; }
    const char* name() const override { return "BceWithLogitsBackward"; }
};

/// Binary cross-entropy on logits (PyTorch's F.binary_cross_entropy_with_logits), in the stable
/// form given at the top of this file. input, target: the same shape (target in [0, 1], soft
/// labels allowed); weight: undefined or broadcastable to input (per element rescaling);
/// pos_weight: undefined or broadcastable to input (typically [C] for input [N, C]: the weight
/// of positive examples per class). Differentiable in input and target.
/// Throws shape_error when target's shape differs from input's or weight/pos_weight do not
/// broadcast to it; value_error for an undefined input or target.
inline Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                               const Tensor& weight = Tensor(), const Tensor& pos_weight = Tensor(),
                                               Reduction reduction = Reduction::Mean) {
    constexpr const char* op = "binary_cross_entropy_with_logits";
    if (auto* tr = trace::active()) tr->unsupported(op, "losses are training-only; export the model, not the loss");
    ops::detail::check_same_shape(input, target, op);
    auto node = std::make_shared<BceWithLogitsBackward>();
    node->shape = input.shape();
    node->x = ops::detail::as_contiguous(input).to_vector();
    node->t = ops::detail::as_contiguous(target).to_vector();
    node->w = ops::detail::expand_to(weight, input.shape(), op, "weight");
    node->pw = ops::detail::expand_to(pos_weight, input.shape(), op, "pos_weight");
    const std::vector<float>&x = node->x, &t = node->t, &w = node->w, &pw = node->pw;
    std::vector<float> l(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        const float m = std::max(-x[i], 0.0f);
        const float lse = std::log(std::exp(-m) + std::exp(-x[i] - m));  // log(1 + exp(−x)) − m, stably
        float v = pw.empty() ? (1.0f - t[i]) * x[i] + m + lse
                             : (1.0f - t[i]) * x[i] + ((pw[i] - 1.0f) * t[i] + 1.0f) * (lse + m);
        if (!w.empty()) v *= w[i];
        l[i] = v;
    }
    Tensor out = ops::detail::reduce_elementwise(l, input.shape(), reduction);
    if (autograd::any_requires_grad({&input, &target})) {
        node->reduction = reduction;
        autograd::attach(out, node, {input, target});
    }
    return out;
}

}  // namespace nanotorch
