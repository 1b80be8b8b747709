// nanotorch/ops/activation.hpp — the pointwise activations beyond relu/sigmoid/tanh: leaky_relu,
// elu, gelu (exact and tanh), silu, hardswish, hardsigmoid, softplus, plus erf and ONNX's general
// HardSigmoid (hardsigmoid_affine), each with its backward node and its ONNX export mapping.
//
// Semantics, defaults and operation order are PyTorch 1.13's (F.leaky_relu(x, 0.01), F.elu(x, 1.0),
// F.gelu(x, approximate="none"), F.softplus(x, beta=1, threshold=20), ...); the math is in
// kernels/activation.hpp. Every backward saves the input x and applies the op's derivative
// kernel, so the gradient at a kink is PyTorch's choice (leaky_relu: slope at 0; hardswish:
// 0 below -3, x/3 + 1/2 on [-3, 3], 1 above; hardsigmoid: 0 at ±3).
//
// Export: one ONNX node where ONNX has the op at the tracer's opset, otherwise the same formula
// composed of ONNX ops, chosen so that the ONNX.js profile (opset 9) keeps working where ONNX.js
// 0.1.8 can run it:
//   leaky_relu -> LeakyRelu(alpha)          elu -> Elu(alpha)           silu -> Sigmoid, Mul
//   hardsigmoid -> HardSigmoid(1/6, 1/2), or at opset 9 (no HardSigmoid in ONNX.js) Add 3, Clip 0..6, Div 6
//   hardswish -> HardSwish (opset >= 14), x·HardSigmoid(x) (10..13), Add/Clip/Mul/Div (9)
//   gelu "none" -> Div √2, Erf, Add 1, Mul x, Mul 0.5 (torch.onnx's form; refused at opset 9: no Erf in ONNX.js)
//   gelu "tanh" -> Mul/Add/Tanh only (so it runs in ONNX.js)
//   softplus -> Softplus (beta == 1) or Mul β, Softplus, Div β; refused when threshold < 14.5561
//               (see kSoftplusExactThreshold), and at opset 9 (ONNX.js has no Softplus)
//   erf -> Erf (refused at opset 9)
// The composed forms compute the same formula with the runtime's rounding, so they agree with the
// op to a few ulp, not bit for bit; single-node mappings run these same ops in nanotorch's runtime.
#pragma once

#include <algorithm>  // std::min/max in the composed exports' values
#include <cmath>
#include <functional>  // the backward node's kernel
#include <memory>
#include <string>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/activation.hpp>
#include <nanotorch/ops/elementwise.hpp>

namespace nanotorch {

/// The smallest softplus threshold whose linear branch is exact in float32: for every float
/// x > 14.55609, log(1 + exp(x)) rounds to x itself (measured over all floats in [8, 64] against a
/// float64 evaluation: 14.55609 is the largest float where they differ). Exporting softplus as
/// ONNX Softplus (which has no threshold) is therefore exact for threshold >= this value.
inline constexpr float kSoftplusExactThreshold = 14.5561f;

// ---- shared machinery ----
struct ActivationBackward : autograd::Node {
    Tensor x;  // the op's input (contiguous)
    std::function<void(float*, const float*, const float*, std::int64_t)> kernel;  // (dx, dy, x, n)
    const char* op_name = "ActivationBackward";
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor dx = empty(x.shape());
        kernel(dx.data_ptr(), gc.data_ptr(), x.data_ptr(), dx.numel());
        return {dx};
    }
    void release_saved() override { x = Tensor(); }
    const char* name() const override { return op_name; }
};

namespace ops::detail {
/// y = forward(x) through `fwd(out, x, n)`; `emit(tracer, x, y)` describes it to an active tracer;
/// the backward node applies `bwd(dx, dy, x, n)`.
template <class Fwd, class Bwd, class Emit>
inline Tensor activation(const Tensor& x, Fwd fwd, Bwd bwd, const char* node_name, Emit emit) {
    const Tensor xc = as_contiguous(x);
    Tensor y = empty(x.shape());
    fwd(y.data_ptr(), xc.data_ptr(), y.numel());
    if (auto* tr = trace::active()) emit(*tr, x, y);
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<ActivationBackward>();
        n->x = xc.detach();
        n->kernel = bwd;
        n->op_name = node_name;
        autograd::attach(y, n, {x});
    }
    return y;
}

/// A traced intermediate value: f applied to x elementwise (the composed export's inner nodes
/// need real tensors to name; their values are the formula's, computed without a graph).
template <class F>
inline Tensor traced_value(const Tensor& x, F f) {
    return map_unary(x, f);
}

/// ONNX Clip(v, lo, hi) with the opset-9 attribute encoding (only the ONNX.js profile uses it).
inline void emit_clip9(trace::Tracer& tr, const Tensor& v, const Tensor& out, float lo, float hi) {
    tr.emit("Clip", {trace::value(v)}, {out}, {trace::attr("min", lo), trace::attr("max", hi)});
}

/// Add 3, Clip 0..6: the shared head of hardsigmoid/hardswish for ONNX.js. Returns the clipped value.
inline Tensor emit_relu6_shift3(trace::Tracer& tr, const Tensor& x) {
    const Tensor t = traced_value(x, [](float v) { return v + 3.0f; });
    const Tensor c = traced_value(t, [](float v) { return std::min(std::max(v, 0.0f), 6.0f); });
    tr.emit("Add", {trace::value(x), trace::scalar_constant(3.0f)}, {t});
    emit_clip9(tr, t, c, 0.0f, 6.0f);
    return c;
}

inline trace::Attr onnx_alpha_1_6() { return trace::attr("alpha", 1.0f / 6.0f); }
inline trace::Attr onnx_beta_1_2() { return trace::attr("beta", 0.5f); }
}  // namespace ops::detail

// ---- leaky_relu ----
/// x where x > 0, else negative_slope·x (PyTorch's F.leaky_relu). Never throws for a defined x.
inline Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f) {
    return ops::detail::activation(
        x, [=](float* o, const float* in, std::int64_t n) { kernels::leaky_relu_forward(o, in, negative_slope, n); },
        [=](float* dx, const float* dy, const float* in, std::int64_t n) {
            kernels::leaky_relu_backward(dx, dy, in, negative_slope, n);
        },
        "LeakyReluBackward",
        [=](trace::Tracer& tr, const Tensor& in, const Tensor& y) {
            tr.emit("LeakyRelu", {trace::value(in)}, {y}, {trace::attr("alpha", negative_slope)});
        });
}

// ---- elu ----
/// x where x > 0, else alpha·(exp(x) − 1) (computed with expm1, as PyTorch). Never throws.
inline Tensor elu(const Tensor& x, float alpha = 1.0f) {
    return ops::detail::activation(
        x,
        [=](float* o, const float* in, std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) o[i] = kernels::act::elu(in[i], alpha);
        },
        [=](float* dx, const float* dy, const float* in, std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) dx[i] = kernels::act::elu_grad(dy[i], in[i], alpha);
        },
        "EluBackward",
        [=](trace::Tracer& tr, const Tensor& in, const Tensor& y) {
            tr.emit("Elu", {trace::value(in)}, {y}, {trace::attr("alpha", alpha)});
        });
}

// ---- erf ----
/// The error function, elementwise (the exact GELU's building block; ONNX Erf). Never throws.
inline Tensor erf(const Tensor& x) {
    return ops::detail::activation(
        x,
        [](float* o, const float* in, std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) o[i] = std::erf(in[i]);
        },
        [](float* dx, const float* dy, const float* in, std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) dx[i] = kernels::act::erf_grad(dy[i], in[i]);
        },
        "ErfBackward", [](trace::Tracer& tr, const Tensor& in, const Tensor& y) { tr.emit("Erf", {trace::value(in)}, {y}); });
}

// ---- gelu ----
/// x·Φ(x) with approximate = "none" (Φ via erf), or PyTorch's tanh approximation
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) with approximate = "tanh".
/// Throws value_error for any other `approximate`. Export: see the file comment (exact GELU is
/// refused in the ONNX.js profile; the message names the fixes).
inline Tensor gelu(const Tensor& x, const std::string& approximate = "none") {
    NANOTORCH_CHECK(approximate == "none" || approximate == "tanh", value_error,
                    "gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
    const bool tanh_approx = approximate == "tanh";
    return ops::detail::activation(
        x, [=](float* o, const float* in, std::int64_t n) { kernels::gelu_forward(o, in, tanh_approx, n); },
        [=](float* dx, const float* dy, const float* in, std::int64_t n) {
            kernels::gelu_backward(dx, dy, in, tanh_approx, n);
        },
        "GeluBackward",
        [=](trace::Tracer& tr, const Tensor& in, const Tensor& y) {
            using ops::detail::traced_value;
            using trace::scalar_constant;
            using trace::value;
            if (!tanh_approx) {
                if (tr.opset() <= 9)
                    tr.unsupported("gelu", "approximate=\"none\" needs ONNX Erf, which ONNX.js 0.1.8 (the opset-9 "
                                           "profile) lacks: use F::gelu(x, \"tanh\") / nn::GELU(\"tanh\"), which "
                                           "exports with Mul/Add/Tanh, or export with ExportOptions::opset = 13 "
                                           "for onnxruntime only");
                // torch.onnx (1.13): x · (erf(x / √2) + 1) · 0.5
                const float sqrt2 = 1.41421356237309504880f;
                const Tensor d = traced_value(in, [=](float v) { return v / sqrt2; });
                const Tensor e = traced_value(d, [](float v) { return std::erf(v); });
                const Tensor a = traced_value(e, [](float v) { return v + 1.0f; });
                const Tensor m = ops::detail::map_binary_same(in, a, [](float p, float q) { return p * q; });
                tr.emit("Div", {value(in), scalar_constant(sqrt2)}, {d});
                tr.emit("Erf", {value(d)}, {e});
                tr.emit("Add", {value(e), scalar_constant(1.0f)}, {a});
                tr.emit("Mul", {value(in), value(a)}, {m});
                tr.emit("Mul", {value(m), scalar_constant(0.5f)}, {y});
                return;
            }
            // The kernel's order: inner = β·(x + κ·((x·x)·x)); y = (0.5·x)·(1 + tanh(inner)).
            namespace act = kernels::act;
            const Tensor x2 = traced_value(in, [](float v) { return v * v; });
            const Tensor x3 = ops::detail::map_binary_same(x2, in, [](float p, float q) { return p * q; });
            const Tensor k = traced_value(x3, [](float v) { return act::kGeluTanhKappa * v; });
            const Tensor s = ops::detail::map_binary_same(in, k, [](float p, float q) { return p + q; });
            const Tensor inner = traced_value(s, [](float v) { return act::kGeluTanhBeta * v; });
            const Tensor t = traced_value(inner, [](float v) { return std::tanh(v); });
            const Tensor a = traced_value(t, [](float v) { return 1.0f + v; });
            const Tensor h = traced_value(in, [](float v) { return 0.5f * v; });
            tr.emit("Mul", {value(in), value(in)}, {x2});
            tr.emit("Mul", {value(x2), value(in)}, {x3});
            tr.emit("Mul", {value(x3), scalar_constant(act::kGeluTanhKappa)}, {k});
            tr.emit("Add", {value(in), value(k)}, {s});
            tr.emit("Mul", {value(s), scalar_constant(act::kGeluTanhBeta)}, {inner});
            tr.emit("Tanh", {value(inner)}, {t});
            tr.emit("Add", {value(t), scalar_constant(1.0f)}, {a});
            tr.emit("Mul", {value(in), scalar_constant(0.5f)}, {h});
            tr.emit("Mul", {value(h), value(a)}, {y});
        });
}

// ---- silu ----
/// x·sigmoid(x) = x / (1 + exp(−x)) (also known as swish). Never throws for a defined x.
inline Tensor silu(const Tensor& x) {
    return ops::detail::activation(
        x, [](float* o, const float* in, std::int64_t n) { kernels::silu_forward(o, in, n); },
        [](float* dx, const float* dy, const float* in, std::int64_t n) { kernels::silu_backward(dx, dy, in, n); },
        "SiluBackward",
        [](trace::Tracer& tr, const Tensor& in, const Tensor& y) {
            const Tensor s = ops::detail::traced_value(in, [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
            tr.emit("Sigmoid", {trace::value(in)}, {s});
            tr.emit("Mul", {trace::value(in), trace::value(s)}, {y});
        });
}

// ---- hardsigmoid ----
/// min(max(x + 3, 0), 6) / 6 (PyTorch's F.hardsigmoid). Gradient 1/6 on (−3, 3), else 0. Never throws.
inline Tensor hardsigmoid(const Tensor& x) {
    return ops::detail::activation(
        x, [](float* o, const float* in, std::int64_t n) { kernels::hardsigmoid_forward(o, in, n); },
        [](float* dx, const float* dy, const float* in, std::int64_t n) {
            kernels::hardsigmoid_backward(dx, dy, in, n);
        },
        "HardsigmoidBackward",
        [](trace::Tracer& tr, const Tensor& in, const Tensor& y) {
            if (tr.opset() >= 10) {  // ONNX's alpha·x + beta with alpha = 1/6, beta = 1/2 (torch.onnx's choice)
                tr.emit("HardSigmoid", {trace::value(in)}, {y},
                        {ops::detail::onnx_alpha_1_6(), ops::detail::onnx_beta_1_2()});
                return;
            }
            const Tensor c = ops::detail::emit_relu6_shift3(tr, in);  // ONNX.js has no HardSigmoid
            tr.emit("Div", {trace::value(c), trace::scalar_constant(6.0f)}, {y});
        });
}

/// ONNX HardSigmoid's general form max(0, min(1, alpha·x + beta)), used by the ONNX runtime for
/// models with other coefficients than PyTorch's. Gradient alpha where 0 < alpha·x + beta < 1.
/// Never throws for a defined x.
inline Tensor hardsigmoid_affine(const Tensor& x, float alpha, float beta) {
    return ops::detail::activation(
        x,
        [=](float* o, const float* in, std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) o[i] = kernels::act::hardsigmoid_affine(in[i], alpha, beta);
        },
        [=](float* dx, const float* dy, const float* in, std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i)
                dx[i] = kernels::act::hardsigmoid_affine_grad(dy[i], in[i], alpha, beta);
        },
        "HardSigmoidAffineBackward",
        [=](trace::Tracer& tr, const Tensor& in, const Tensor& y) {
            if (tr.opset() >= 10) {
                tr.emit("HardSigmoid", {trace::value(in)}, {y}, {trace::attr("alpha", alpha), trace::attr("beta", beta)});
                return;
            }
            const Tensor m = ops::detail::traced_value(in, [=](float v) { return alpha * v; });
            const Tensor a = ops::detail::traced_value(m, [=](float v) { return v + beta; });
            tr.emit("Mul", {trace::value(in), trace::scalar_constant(alpha)}, {m});
            tr.emit("Add", {trace::value(m), trace::scalar_constant(beta)}, {a});
            ops::detail::emit_clip9(tr, a, y, 0.0f, 1.0f);
        });
}

// ---- hardswish ----
/// x · min(max(x + 3, 0), 6) / 6 (PyTorch's F.hardswish). Never throws for a defined x.
inline Tensor hardswish(const Tensor& x) {
    return ops::detail::activation(
        x, [](float* o, const float* in, std::int64_t n) { kernels::hardswish_forward(o, in, n); },
        [](float* dx, const float* dy, const float* in, std::int64_t n) { kernels::hardswish_backward(dx, dy, in, n); },
        "HardswishBackward",
        [](trace::Tracer& tr, const Tensor& in, const Tensor& y) {
            if (tr.opset() >= 14) {
                tr.emit("HardSwish", {trace::value(in)}, {y});
            } else if (tr.opset() >= 10) {  // x · HardSigmoid(x)
                const Tensor h = ops::detail::traced_value(in, [](float v) { return kernels::act::hardsigmoid(v); });
                tr.emit("HardSigmoid", {trace::value(in)}, {h},
                        {ops::detail::onnx_alpha_1_6(), ops::detail::onnx_beta_1_2()});
                tr.emit("Mul", {trace::value(in), trace::value(h)}, {y});
            } else {  // ONNX.js: (x · clip(x + 3, 0, 6)) / 6, the kernel's own order
                const Tensor c = ops::detail::emit_relu6_shift3(tr, in);
                const Tensor m = ops::detail::map_binary_same(in, c, [](float p, float q) { return p * q; });
                tr.emit("Mul", {trace::value(in), trace::value(c)}, {m});
                tr.emit("Div", {trace::value(m), trace::scalar_constant(6.0f)}, {y});
            }
        });
}

// ---- softplus ----
/// log(1 + exp(beta·x)) / beta, and x itself where beta·x > threshold (PyTorch's F.softplus).
/// Throws value_error when beta is 0 or not finite, or threshold is negative or NaN (PyTorch
/// accepts them and returns NaN, or an output below the linear branch's that is not a softplus).
/// Export refuses threshold < kSoftplusExactThreshold (ONNX Softplus has no threshold).
inline Tensor softplus(const Tensor& x, float beta = 1.0f, float threshold = 20.0f) {
    NANOTORCH_CHECK(beta != 0.0f && std::isfinite(beta), value_error, "softplus: beta must be finite and non-zero, got ",
                    beta);
    NANOTORCH_CHECK(threshold >= 0.0f, value_error, "softplus: threshold must be >= 0, got ", threshold);
    return ops::detail::activation(
        x,
        [=](float* o, const float* in, std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) o[i] = kernels::act::softplus(in[i], beta, threshold);
        },
        [=](float* dx, const float* dy, const float* in, std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) dx[i] = kernels::act::softplus_grad(dy[i], in[i], beta, threshold);
        },
        "SoftplusBackward",
        [=](trace::Tracer& tr, const Tensor& in, const Tensor& y) {
            if (threshold < kSoftplusExactThreshold)
                tr.unsupported("softplus", nanotorch::detail::str_cat("threshold = ", threshold, ": ONNX Softplus has no threshold, and "
                                                   "below 14.5561 the linear branch differs from log(1 + exp(x)) by "
                                                   "more than float rounding; use threshold >= 14.5561 (the default "
                                                   "20 exports exactly)"));
            if (beta == 1.0f) {
                tr.emit("Softplus", {trace::value(in)}, {y});
                return;
            }
            const Tensor z = ops::detail::traced_value(in, [=](float v) { return v * beta; });
            const Tensor s = ops::detail::traced_value(z, [](float v) { return kernels::act::softplus(v, 1.0f, 20.0f); });
            tr.emit("Mul", {trace::value(in), trace::scalar_constant(beta)}, {z});
            tr.emit("Softplus", {trace::value(z)}, {s});
            tr.emit("Div", {trace::value(s), trace::scalar_constant(beta)}, {y});
        });
}

}  // namespace nanotorch
