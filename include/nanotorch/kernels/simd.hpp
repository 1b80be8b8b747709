// nanotorch/kernels/simd.hpp — the only file that includes xsimd.
//
// Vector kernels written once against xsimd::batch<float> (the architecture is fixed at compile
// time by the compiler flags: -mavx512f gives 16 lanes, plain x86-64 gives SSE2's 4), each as a
// batch loop plus a scalar tail, with the same signatures as kernels/reference.hpp.
// With NANOTORCH_NO_SIMD, or when xsimd finds no supported architecture, every function here
// forwards to the reference, so the library builds everywhere.
// Written against Debian's xsimd 8.1.0 API (hadd, not the later reduce_add).
#pragma once

#include <cstdint>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/reference.hpp>

#if !defined(NANOTORCH_NO_SIMD)
#include <xsimd/xsimd.hpp>
#if defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
#define NANOTORCH_SIMD_ENABLED 0
#else
#define NANOTORCH_SIMD_ENABLED 1
#endif
#else
#define NANOTORCH_SIMD_ENABLED 0
#endif

namespace nanotorch::kernels {

#if NANOTORCH_SIMD_ENABLED
using fbatch = xsimd::batch<float>;
/// Floats per SIMD register in this build (1 for the scalar build).
inline constexpr std::int64_t simd_width = static_cast<std::int64_t>(fbatch::size);
/// Name of the instruction set the kernels were compiled for.
inline const char* simd_arch_name() { return xsimd::default_arch::name(); }

namespace detail {
// Applies a lane-wise binary op: batch loop then scalar tail (same op on scalars).
template <class VecOp, class ScalarOp>
inline void binary_map(float* out, const float* a, const float* b, std::int64_t n, VecOp vop, ScalarOp sop) {
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width)
        vop(fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i)).store_unaligned(out + i);
    for (; i < n; ++i) out[i] = sop(a[i], b[i]);
}
template <class VecOp, class ScalarOp>
inline void unary_map(float* out, const float* a, std::int64_t n, VecOp vop, ScalarOp sop) {
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width) vop(fbatch::load_unaligned(a + i)).store_unaligned(out + i);
    for (; i < n; ++i) out[i] = sop(a[i]);
}
}  // namespace detail

inline void add(float* out, const float* a, const float* b, std::int64_t n) {
    detail::binary_map(out, a, b, n, [](fbatch x, fbatch y) { return x + y; }, [](float x, float y) { return x + y; });
}
inline void sub(float* out, const float* a, const float* b, std::int64_t n) {
    detail::binary_map(out, a, b, n, [](fbatch x, fbatch y) { return x - y; }, [](float x, float y) { return x - y; });
}
inline void mul(float* out, const float* a, const float* b, std::int64_t n) {
    detail::binary_map(out, a, b, n, [](fbatch x, fbatch y) { return x * y; }, [](float x, float y) { return x * y; });
}
inline void div(float* out, const float* a, const float* b, std::int64_t n) {
    detail::binary_map(out, a, b, n, [](fbatch x, fbatch y) { return x / y; }, [](float x, float y) { return x / y; });
}
inline void add_scalar(float* out, const float* a, float s, std::int64_t n) {
    const fbatch vs(s);
    detail::unary_map(out, a, n, [vs](fbatch x) { return x + vs; }, [s](float x) { return x + s; });
}
inline void mul_scalar(float* out, const float* a, float s, std::int64_t n) {
    const fbatch vs(s);
    detail::unary_map(out, a, n, [vs](fbatch x) { return x * vs; }, [s](float x) { return x * s; });
}
// y += alpha * x. The vector body uses a fused multiply-add where the ISA has one, so it may
// differ from the reference in the last bit; tests compare with a tolerance.
inline void axpy(float* y, float alpha, const float* x, std::int64_t n) {
    const fbatch va(alpha);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width)
        xsimd::fma(va, fbatch::load_unaligned(x + i), fbatch::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] += alpha * x[i];
}
inline void axpby(float* y, float alpha, const float* x, float beta, std::int64_t n) {
    const fbatch va(alpha), vb(beta);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width)
        (va * fbatch::load_unaligned(x + i) + vb * fbatch::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
}
inline void relu_forward(float* out, const float* x, std::int64_t n) {
    const fbatch zero(0.0f);
    // select rather than xsimd::max: GCC 12 flags _mm512_max_ps's internal undefined operand
    // with a false -Wmaybe-uninitialized at -O2 -mavx512f.
    detail::unary_map(out, x, n, [zero](fbatch v) { return xsimd::select(v > zero, v, zero); },
                      [](float v) { return v > 0.0f ? v : 0.0f; });
}
inline void relu_backward(float* dx, const float* dy, const float* y, std::int64_t n) {
    const fbatch zero(0.0f);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width) {
        const fbatch vy = fbatch::load_unaligned(y + i);
        xsimd::select(vy > zero, fbatch::load_unaligned(dy + i), zero).store_unaligned(dx + i);
    }
    for (; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
// Lane-wise partial sums, then one horizontal add, then the tail: a fixed order per build.
inline float sum(const float* x, std::int64_t n) {
    fbatch acc(0.0f);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width) acc += fbatch::load_unaligned(x + i);
    float s = xsimd::hadd(acc);
    for (; i < n; ++i) s += x[i];
    return s;
}
inline float dot(const float* a, const float* b, std::int64_t n) {
    fbatch acc(0.0f);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width)
        acc = xsimd::fma(fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i), acc);
    float s = xsimd::hadd(acc);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}
#else
inline constexpr std::int64_t simd_width = 1;
inline const char* simd_arch_name() { return "scalar"; }
using ref::add;
using ref::axpby;
using ref::axpy;
using ref::div;
using ref::dot;
using ref::mul;
using ref::mul_scalar;
using ref::add_scalar;
using ref::relu_backward;
using ref::relu_forward;
using ref::sub;
using ref::sum;
#endif

}  // namespace nanotorch::kernels
