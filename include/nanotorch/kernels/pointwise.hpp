// nanotorch/kernels/pointwise.hpp — the streaming pointwise kernels of a training step (add,
// mul, relu both ways, axpy/axpby for the optimisers), spread over the thread pool.
//
// Why: simd.hpp's kernels run on the calling thread. In a training step the convolutions split
// over both cores, but ReLU, the residual adds, gradient accumulation, dropout and the SGD update
// stayed serial: about a tenth of a ResNet8 or examples/mnist step at 1 thread, and so a fifth of
// it at 2 (Amdahl).
//
// Determinism: the range is cut into blocks of pointwise_block elements (a multiple of every
// SIMD width and unroll), and tasks get whole blocks. So every element lands in the vector body
// or the scalar tail exactly as in one serial call over the whole range, and each element's
// arithmetic is that of simd.hpp's kernel: results are bit-identical to the serial kernel for
// every thread count. Ranges under pointwise_grain elements run serially (a dispatch costs a few
// microseconds; 64k floats take ~20-40 us to stream).
#pragma once

#include <algorithm>  // std::min
#include <cstdint>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>

namespace nanotorch::kernels {

namespace detail {
inline constexpr std::int64_t pointwise_block = 4096;
inline constexpr std::int64_t pointwise_grain = 16 * pointwise_block;

/// fn(begin, length) over [0, n) in whole blocks of pointwise_block, spread over parallel_for.
template <class Fn>
void for_each_pointwise_range(std::int64_t n, const Fn& fn) {
    if (n <= 0) return;
    if (n < 2 * pointwise_grain) {
        fn(std::int64_t{0}, n);
        return;
    }
    const std::int64_t blocks = (n + pointwise_block - 1) / pointwise_block;
    parallel_for(0, blocks, pointwise_grain / pointwise_block, [&](std::int64_t b0, std::int64_t b1) {
        const std::int64_t i0 = b0 * pointwise_block;
        fn(i0, std::min(n, b1 * pointwise_block) - i0);
    });
}
}  // namespace detail

// Each is simd.hpp's kernel of the same name over the whole range, bit for bit.
inline void parallel_add(float* out, const float* a, const float* b, std::int64_t n) {
    detail::for_each_pointwise_range(n, [&](std::int64_t i, std::int64_t len) { add(out + i, a + i, b + i, len); });
}
inline void parallel_sub(float* out, const float* a, const float* b, std::int64_t n) {
    detail::for_each_pointwise_range(n, [&](std::int64_t i, std::int64_t len) { sub(out + i, a + i, b + i, len); });
}
inline void parallel_mul(float* out, const float* a, const float* b, std::int64_t n) {
    detail::for_each_pointwise_range(n, [&](std::int64_t i, std::int64_t len) { mul(out + i, a + i, b + i, len); });
}
inline void parallel_div(float* out, const float* a, const float* b, std::int64_t n) {
    detail::for_each_pointwise_range(n, [&](std::int64_t i, std::int64_t len) { div(out + i, a + i, b + i, len); });
}
inline void parallel_mul_scalar(float* out, const float* a, float s, std::int64_t n) {
    detail::for_each_pointwise_range(n, [&](std::int64_t i, std::int64_t len) { mul_scalar(out + i, a + i, s, len); });
}
inline void parallel_axpy(float* y, float alpha, const float* x, std::int64_t n) {
    detail::for_each_pointwise_range(n, [&](std::int64_t i, std::int64_t len) { axpy(y + i, alpha, x + i, len); });
}
inline void parallel_axpby(float* y, float alpha, const float* x, float beta, std::int64_t n) {
    detail::for_each_pointwise_range(n,
                                     [&](std::int64_t i, std::int64_t len) { axpby(y + i, alpha, x + i, beta, len); });
}
inline void parallel_relu_forward(float* out, const float* x, std::int64_t n) {
    detail::for_each_pointwise_range(n, [&](std::int64_t i, std::int64_t len) { relu_forward(out + i, x + i, len); });
}
inline void parallel_relu_backward(float* dx, const float* dy, const float* y, std::int64_t n) {
    detail::for_each_pointwise_range(n,
                                     [&](std::int64_t i, std::int64_t len) { relu_backward(dx + i, dy + i, y + i, len); });
}

}  // namespace nanotorch::kernels
