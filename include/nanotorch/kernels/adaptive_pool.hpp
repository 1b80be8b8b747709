// nanotorch/kernels/adaptive_pool.hpp — raw-pointer adaptive average pooling (NCHW planes).
//
// Provides adaptive_avg_pool2d forward/backward for any output size, with PyTorch's windows:
// output row i averages input rows [floor(i·H/oH), ceil((i + 1)·H/oH)), columns likewise, so the
// windows cover the input, may overlap by one row when oH does not divide H, and have sizes that
// differ by at most one. Each has a ref:: twin; the 1×1 output (global average pooling) sums each
// plane with kernels::sum (SIMD), every other size runs the ref's loops. Deliberately absent:
// adaptive max pooling, and Tensor/autograd (ops/conv.hpp).
//
// Determinism: planes are spread over parallel_for, each written by one task in a fixed order,
// so results are bit-identical for every thread count.
#pragma once

#include <algorithm>  // std::fill
#include <cstdint>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>

namespace nanotorch::kernels {

/// First input index of adaptive window i of `out` over `in`: floor(i·in / out).
inline std::int64_t adaptive_start(std::int64_t i, std::int64_t in, std::int64_t out) { return i * in / out; }
/// One past the last input index of adaptive window i: ceil((i + 1)·in / out).
inline std::int64_t adaptive_end(std::int64_t i, std::int64_t in, std::int64_t out) {
    return ((i + 1) * in + out - 1) / out;
}

namespace ref {
// out[P, oH, oW] ← in[P, H, W]: each output the float sum of its window in row-major order,
// divided by the window's size.
inline void adaptive_avg_pool2d_forward(float* out, const float* in, std::int64_t planes, std::int64_t in_h,
                                        std::int64_t in_w, std::int64_t out_h, std::int64_t out_w) {
    for (std::int64_t p = 0; p < planes; ++p) {
        const float* src = in + p * in_h * in_w;
        for (std::int64_t oh = 0; oh < out_h; ++oh) {
            const std::int64_t h0 = adaptive_start(oh, in_h, out_h), h1 = adaptive_end(oh, in_h, out_h);
            for (std::int64_t ow = 0; ow < out_w; ++ow) {
                const std::int64_t w0 = adaptive_start(ow, in_w, out_w), w1 = adaptive_end(ow, in_w, out_w);
                float sum = 0.0f;
                for (std::int64_t ih = h0; ih < h1; ++ih)
                    for (std::int64_t iw = w0; iw < w1; ++iw) sum += src[ih * in_w + iw];
                out[(p * out_h + oh) * out_w + ow] = sum / static_cast<float>((h1 - h0) * (w1 - w0));
            }
        }
    }
}

// grad_in[P, H, W] ← grad_out[P, oH, oW]: each output spreads grad / window size over its window,
// outputs in row-major order. Overwrites grad_in.
inline void adaptive_avg_pool2d_backward(float* grad_in, const float* grad_out, std::int64_t planes,
                                         std::int64_t in_h, std::int64_t in_w, std::int64_t out_h,
                                         std::int64_t out_w) {
    std::fill(grad_in, grad_in + planes * in_h * in_w, 0.0f);
    for (std::int64_t p = 0; p < planes; ++p) {
        float* gi = grad_in + p * in_h * in_w;
        for (std::int64_t oh = 0; oh < out_h; ++oh) {
            const std::int64_t h0 = adaptive_start(oh, in_h, out_h), h1 = adaptive_end(oh, in_h, out_h);
            for (std::int64_t ow = 0; ow < out_w; ++ow) {
                const std::int64_t w0 = adaptive_start(ow, in_w, out_w), w1 = adaptive_end(ow, in_w, out_w);
                const float g = grad_out[(p * out_h + oh) * out_w + ow] / static_cast<float>((h1 - h0) * (w1 - w0));
                for (std::int64_t ih = h0; ih < h1; ++ih)
                    for (std::int64_t iw = w0; iw < w1; ++iw) gi[ih * in_w + iw] += g;
            }
        }
    }
}
}  // namespace ref

namespace detail {
inline std::int64_t adaptive_grain(std::int64_t in_plane) {
    return std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(1, in_plane));
}
}  // namespace detail

// out[P, oH, oW] ← in[P, H, W] (see the file comment). A 1×1 output is kernels::sum of the plane
// divided by H·W (within float rounding of the ref, not bit-equal: the sum's order differs);
// other sizes equal the ref bit for bit. Planes spread over parallel_for.
NANOTORCH_KERNEL_API void adaptive_avg_pool2d_forward(float* out, const float* in, std::int64_t planes, std::int64_t in_h,
                                                      std::int64_t in_w, std::int64_t out_h, std::int64_t out_w)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    const std::int64_t plane = in_h * in_w;
    parallel_for(0, planes, detail::adaptive_grain(plane), [&](std::int64_t p0, std::int64_t p1) {
        if (out_h == 1 && out_w == 1) {
            for (std::int64_t p = p0; p < p1; ++p) out[p] = sum(in + p * plane, plane) / static_cast<float>(plane);
            return;
        }
        ref::adaptive_avg_pool2d_forward(out + p0 * out_h * out_w, in + p0 * plane, p1 - p0, in_h, in_w, out_h, out_w);
    });
}
#endif

// grad_in[P, H, W] ← grad_out[P, oH, oW]; overwrites grad_in; bit-identical to the ref twin.
NANOTORCH_KERNEL_API void adaptive_avg_pool2d_backward(float* grad_in, const float* grad_out, std::int64_t planes,
                                                       std::int64_t in_h, std::int64_t in_w, std::int64_t out_h,
                                                       std::int64_t out_w)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    const std::int64_t plane = in_h * in_w;
    parallel_for(0, planes, detail::adaptive_grain(plane), [&](std::int64_t p0, std::int64_t p1) {
        if (out_h == 1 && out_w == 1) {  // one window: every element gets g / (H·W)
            for (std::int64_t p = p0; p < p1; ++p) {
                float* gi = grad_in + p * plane;
                std::fill(gi, gi + plane, 0.0f + grad_out[p] / static_cast<float>(plane));
            }
            return;
        }
        ref::adaptive_avg_pool2d_backward(grad_in + p0 * plane, grad_out + p0 * out_h * out_w, p1 - p0, in_h, in_w,
                                          out_h, out_w);
    });
}
#endif

}  // namespace nanotorch::kernels
