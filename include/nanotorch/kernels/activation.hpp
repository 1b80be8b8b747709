// nanotorch/kernels/activation.hpp — pointwise activation kernels (leaky_relu, elu, gelu, silu,
// hardswish, hardsigmoid, softplus, erf), forward and backward, on raw float pointers.
//
// Each formula is written once as a scalar function in `act::` with PyTorch 1.13's CPU operation
// order (so results match PyTorch to float rounding); `ref::` loops apply it (the readable
// reference), and the vector versions below run an xsimd batch loop whose scalar tail calls the
// same `act::` function. The vector bodies of leaky_relu, hardsigmoid and hardswish do the same
// float operations as the scalar form, so they equal the reference bit for bit; gelu and silu use
// xsimd's erf/tanh/exp, which differ from the C library's by a few ulp (tests state the bound).
// elu, softplus and erf stay scalar: they run rarely in CNNs and vectorising them buys little.
// A kernel's output depends only on the index of an element (body or tail), never on threads:
// these kernels run serially. Argument order: outputs, inputs, parameters, n (llm.c style).
// Uses xsimd only through kernels/simd.hpp (fbatch, NANOTORCH_SIMD_ENABLED).
#pragma once

#include <algorithm>  // std::min, std::max (NaN-propagating forms, as PyTorch's scalar code)
#include <cmath>
#include <cstdint>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/simd.hpp>

namespace nanotorch::kernels {

namespace act {
// Constants as PyTorch's kernels spell them (float after rounding).
inline constexpr float kSqrt1_2 = 0.70710678118654752440f;               // 1/√2 (gelu)
inline constexpr float kGeluPdf = 0.39894228040143267794f;               // 1/√(2π) = M_2_SQRTPI·M_SQRT1_2/2
inline constexpr float kGeluTanhBeta = 0.79788456080286535588f;          // √(2/π) = M_SQRT2·M_2_SQRTPI/2
inline constexpr float kGeluTanhKappa = 0.044715f;
inline constexpr float kErfDeriv = 1.12837916709551257390f;              // 2/√π

inline float leaky_relu(float x, float slope) { return x > 0.0f ? x : x * slope; }
inline float leaky_relu_grad(float dy, float x, float slope) { return x > 0.0f ? dy : dy * slope; }

inline float elu(float x, float alpha) { return x <= 0.0f ? std::expm1(x) * alpha : x; }
inline float elu_grad(float dy, float x, float alpha) { return x <= 0.0f ? dy * alpha * std::exp(x) : dy; }

// 0.5·x·(1 + erf(x/√2)) in PyTorch's order: x · 0.5 · (1 + erf(x · (1/√2)))
inline float gelu(float x) { return x * 0.5f * (1.0f + std::erf(x * kSqrt1_2)); }
// dy · (Φ(x) + x·φ(x))
inline float gelu_grad(float dy, float x) {
    const float cdf = 0.5f * (1.0f + std::erf(x * kSqrt1_2));
    const float pdf = kGeluPdf * std::exp(x * x * -0.5f);
    return dy * (cdf + x * pdf);
}
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
inline float gelu_tanh(float x) {
    const float inner = kGeluTanhBeta * (x + kGeluTanhKappa * (x * x * x));
    return 0.5f * x * (1.0f + std::tanh(inner));
}
inline float gelu_tanh_grad(float dy, float x) {
    const float x_sq = x * x;
    const float inner = kGeluTanhBeta * (x + kGeluTanhKappa * (x_sq * x));
    const float t = std::tanh(inner);
    const float left = 0.5f * x, right = 1.0f + t;
    const float right_derivative = left * (1.0f - t * t) * (kGeluTanhBeta * (1.0f + 3.0f * kGeluTanhKappa * x_sq));
    return dy * (0.5f * right + right_derivative);
}

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
inline float silu_grad(float dy, float x) {
    const float s = 1.0f / (1.0f + std::exp(-x));
    return dy * s * (1.0f + x * (1.0f - s));
}

// min(max(x + 3, 0), 6) / 6; std::max/min keep a NaN x as NaN, as PyTorch does.
inline float hardsigmoid(float x) { return std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f; }
inline float hardsigmoid_grad(float dy, float x) { return x > -3.0f && x < 3.0f ? dy * (1.0f / 6.0f) : 0.0f; }
inline float hardswish(float x) { return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f; }
inline float hardswish_grad(float dy, float x) {
    if (x < -3.0f) return 0.0f;
    return x <= 3.0f ? dy * (x / 3.0f + 0.5f) : dy;
}
// ONNX HardSigmoid's general form max(0, min(1, alpha·x + beta)).
inline float hardsigmoid_affine(float x, float alpha, float beta) {
    return std::max(0.0f, std::min(1.0f, alpha * x + beta));
}
inline float hardsigmoid_affine_grad(float dy, float x, float alpha, float beta) {
    const float v = alpha * x + beta;
    return v > 0.0f && v < 1.0f ? dy * alpha : 0.0f;
}

// log(1 + exp(β·x)) / β, or x where β·x > threshold (PyTorch's linear branch).
inline float softplus(float x, float beta, float threshold) {
    const float z = x * beta;
    return z > threshold ? x : std::log1p(std::exp(z)) / beta;
}
inline float softplus_grad(float dy, float x, float beta, float threshold) {
    const float z = std::exp(x * beta);
    return x * beta > threshold ? dy : dy * z / (z + 1.0f);
}

inline float erf_grad(float dy, float x) { return dy * kErfDeriv * std::exp(-x * x); }
}  // namespace act

// ---- scalar references ----
// out[i] = f(x[i]) / dx[i] = f'(dy[i], x[i])                   shapes: out, x, dx, dy [n]
namespace ref {
inline void leaky_relu_forward(float* out, const float* x, float slope, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = act::leaky_relu(x[i], slope);
}
inline void leaky_relu_backward(float* dx, const float* dy, const float* x, float slope, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dx[i] = act::leaky_relu_grad(dy[i], x[i], slope);
}
inline void gelu_forward(float* out, const float* x, bool tanh_approx, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = tanh_approx ? act::gelu_tanh(x[i]) : act::gelu(x[i]);
}
inline void gelu_backward(float* dx, const float* dy, const float* x, bool tanh_approx, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
        dx[i] = tanh_approx ? act::gelu_tanh_grad(dy[i], x[i]) : act::gelu_grad(dy[i], x[i]);
}
inline void silu_forward(float* out, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = act::silu(x[i]);
}
inline void silu_backward(float* dx, const float* dy, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dx[i] = act::silu_grad(dy[i], x[i]);
}
inline void hardsigmoid_forward(float* out, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = act::hardsigmoid(x[i]);
}
inline void hardsigmoid_backward(float* dx, const float* dy, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dx[i] = act::hardsigmoid_grad(dy[i], x[i]);
}
inline void hardswish_forward(float* out, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = act::hardswish(x[i]);
}
inline void hardswish_backward(float* dx, const float* dy, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dx[i] = act::hardswish_grad(dy[i], x[i]);
}
}  // namespace ref

// ---- vector versions (same signatures) ----
// Not on WebAssembly: SIMD128 has no exp/tanh/erf, so the wasm build uses the scalar forms.
#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM)
namespace act_detail {
// x > 0 ? x : x·slope — one multiply, as the scalar form.
inline fbatch leaky_relu(fbatch x, fbatch slope) { return xsimd::select(x > fbatch(0.0f), x, x * slope); }
// min(max(x + 3, 0), 6) written with select so that NaN propagates exactly as std::max/std::min do
// (and GCC 12's false -Wmaybe-uninitialized on _mm512_max_ps is avoided, see relu_forward).
inline fbatch relu6_shift3(fbatch x) {
    const fbatch t = x + fbatch(3.0f);
    const fbatch lo = xsimd::select(t < fbatch(0.0f), fbatch(0.0f), t);
    return xsimd::select(fbatch(6.0f) < lo, fbatch(6.0f), lo);
}
inline fbatch sigmoid(fbatch x) { return fbatch(1.0f) / (fbatch(1.0f) + xsimd::exp(-x)); }
}  // namespace act_detail

inline void leaky_relu_forward(float* out, const float* x, float slope, std::int64_t n) {
    const fbatch vs(slope);
    detail::unary_map(out, x, n, [vs](fbatch v) { return act_detail::leaky_relu(v, vs); },
                      [slope](float v) { return act::leaky_relu(v, slope); });
}
inline void leaky_relu_backward(float* dx, const float* dy, const float* x, float slope, std::int64_t n) {
    const fbatch vs(slope);
    detail::binary_map(dx, dy, x, n,
                       [vs](fbatch g, fbatch v) { return xsimd::select(v > fbatch(0.0f), g, g * vs); },
                       [slope](float g, float v) { return act::leaky_relu_grad(g, v, slope); });
}
inline void gelu_forward(float* out, const float* x, bool tanh_approx, std::int64_t n) {
    if (tanh_approx) {
        detail::unary_map(out, x, n, [](fbatch v) {
            const fbatch inner = fbatch(act::kGeluTanhBeta) * (v + fbatch(act::kGeluTanhKappa) * (v * v * v));
            return fbatch(0.5f) * v * (fbatch(1.0f) + xsimd::tanh(inner));
        }, [](float v) { return act::gelu_tanh(v); });
    } else {
        detail::unary_map(out, x, n, [](fbatch v) {
            return v * fbatch(0.5f) * (fbatch(1.0f) + xsimd::erf(v * fbatch(act::kSqrt1_2)));
        }, [](float v) { return act::gelu(v); });
    }
}
inline void gelu_backward(float* dx, const float* dy, const float* x, bool tanh_approx, std::int64_t n) {
    if (tanh_approx) {
        detail::binary_map(dx, dy, x, n, [](fbatch g, fbatch v) {
            const fbatch v_sq = v * v;
            const fbatch beta(act::kGeluTanhBeta), kappa(act::kGeluTanhKappa), one(1.0f), half(0.5f);
            const fbatch t = xsimd::tanh(beta * (v + kappa * (v_sq * v)));
            const fbatch right_derivative = half * v * (one - t * t) * (beta * (one + fbatch(3.0f) * kappa * v_sq));
            return g * (half * (one + t) + right_derivative);
        }, [](float g, float v) { return act::gelu_tanh_grad(g, v); });
    } else {
        detail::binary_map(dx, dy, x, n, [](fbatch g, fbatch v) {
            const fbatch cdf = fbatch(0.5f) * (fbatch(1.0f) + xsimd::erf(v * fbatch(act::kSqrt1_2)));
            const fbatch pdf = fbatch(act::kGeluPdf) * xsimd::exp(v * v * fbatch(-0.5f));
            return g * (cdf + v * pdf);
        }, [](float g, float v) { return act::gelu_grad(g, v); });
    }
}
inline void silu_forward(float* out, const float* x, std::int64_t n) {
    detail::unary_map(out, x, n, [](fbatch v) { return v / (fbatch(1.0f) + xsimd::exp(-v)); },
                      [](float v) { return act::silu(v); });
}
inline void silu_backward(float* dx, const float* dy, const float* x, std::int64_t n) {
    detail::binary_map(dx, dy, x, n, [](fbatch g, fbatch v) {
        const fbatch s = act_detail::sigmoid(v);
        return g * s * (fbatch(1.0f) + v * (fbatch(1.0f) - s));
    }, [](float g, float v) { return act::silu_grad(g, v); });
}
inline void hardsigmoid_forward(float* out, const float* x, std::int64_t n) {
    detail::unary_map(out, x, n, [](fbatch v) { return act_detail::relu6_shift3(v) / fbatch(6.0f); },
                      [](float v) { return act::hardsigmoid(v); });
}
inline void hardsigmoid_backward(float* dx, const float* dy, const float* x, std::int64_t n) {
    detail::binary_map(dx, dy, x, n, [](fbatch g, fbatch v) {
        return xsimd::select((v > fbatch(-3.0f)) && (v < fbatch(3.0f)), g * fbatch(1.0f / 6.0f), fbatch(0.0f));
    }, [](float g, float v) { return act::hardsigmoid_grad(g, v); });
}
inline void hardswish_forward(float* out, const float* x, std::int64_t n) {
    detail::unary_map(out, x, n, [](fbatch v) { return v * act_detail::relu6_shift3(v) / fbatch(6.0f); },
                      [](float v) { return act::hardswish(v); });
}
inline void hardswish_backward(float* dx, const float* dy, const float* x, std::int64_t n) {
    detail::binary_map(dx, dy, x, n, [](fbatch g, fbatch v) {
        const fbatch mid = g * (v / fbatch(3.0f) + fbatch(0.5f));
        return xsimd::select(v < fbatch(-3.0f), fbatch(0.0f), xsimd::select(v <= fbatch(3.0f), mid, g));
    }, [](float g, float v) { return act::hardswish_grad(g, v); });
}
#else
using ref::gelu_backward;
using ref::gelu_forward;
using ref::hardsigmoid_backward;
using ref::hardsigmoid_forward;
using ref::hardswish_backward;
using ref::hardswish_forward;
using ref::leaky_relu_backward;
using ref::leaky_relu_forward;
using ref::silu_backward;
using ref::silu_forward;
#endif

}  // namespace nanotorch::kernels
