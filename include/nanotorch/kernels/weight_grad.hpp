// nanotorch/kernels/weight_grad.hpp — a convolution's weight gradient read from the images in
// place, for stride-1 windows: no im2col matrix is written.
//
// dW[o, (c, i, j)] = Σ_{oh, ow} gy[o, oh, ow] · x[c, oh + i − pH, ow + j − pW] is, over the
// zero-padded planes (row pitch pw = W + 2·pW), a dot product of two contiguous runs: gy with
// each row widened from oW to pw by zeros, and the padded plane starting at i·pw + j. Every tap's
// run is a window of the same plane, so the "im2col rows" are pointers, not copies; the dot-product
// kernel (sgemm_dot_rows_kernel) takes them as such. The price is the pw − oW gap columns per
// row, whose zeros meet input values of the next row: up to half again the products, bounded by
// weight_grad_in_place_pays. A zero times an input value adds +0 to a sum, so the result equals
// the unwidened sum except when the input holds an inf or NaN (which then reaches taps it would
// not touch, in a gradient that is already non-finite through the forward's output).
// kernels/conv.hpp's conv2d_backward chooses this path by shape; each element is one fixed-order
// sum over a chunk's images (a segment per image), and the chunks' partials are added in chunk
// order, so the result is the same for every thread count.
#pragma once

#include <algorithm>  // std::min
#include <cstddef>
#include <cstdint>

#include <nanotorch/kernels/im2col.hpp>          // pad_planes, copy_row
#include <nanotorch/kernels/implicit_gemm.hpp>   // offset_table
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/simd_gemm.hpp>       // sgemm_dot_rows_kernel
#include <nanotorch/kernels/window.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels::detail {

// The products per image run over P = (oH − 1)·pw + oW rounded up to whole vectors: the
// widened rows are zero past their end and the planes are followed by simd_width zeros, which
// the last taps' runs read into (so the planes are copied even without padding).
inline std::int64_t weight_grad_run(const Window2d& w) {
    const std::int64_t used = (w.out_h - 1) * (w.in_w + 2 * w.pad_w) + w.out_w;
    return (used + simd_width - 1) / simd_width * simd_width;
}

// Whether conv2d_backward computes the weight gradient in place (below) rather than with im2col
// and sgemm, from the shape alone: stride 1 and no dilation (the taps' runs are windows of one
// plane); runs of at least 192 products per image (12 AVX-512 vectors) and at most half again
// the products for the gap columns; at least 12 taps per output channel (two blocks of
// wgrad_taps); more than one input channel per group. Measured on AVX-512 (Intel Ice Lake) at
// batch 64, 1 thread, dW alone (the A/B in the commit that added this): 1.2-1.6x faster from 14×14 to
// 32×32 outputs with 3×3 and 5×5 kernels; even on 7×7; slower on 8×8 with 256 channels, where
// a chunk holds few images of a few vectors each and the kernel's horizontal adds dominate.
// On AMD Zen 5 the path was slower than im2col + sgemm until sgemm_dot_rows_kernel kept each
// row of B in a register (in_register); with that, conv2d's whole backward at batch 64, 1
// thread: 16 -> 16 on 28x28 3.06 -> 2.71 ms, 32 -> 32 on 14x14 3.06 -> 2.73, 64 -> 128 on
// 16x16 26.3 -> 25.7, 64 -> 64 on 32x32 54.1 -> 48.7 ms against im2col + sgemm.
// A single-channel first layer (the seed net's conv1: 1.5x faster here) keeps im2col + sgemm
// so that the seed net trains bit for bit as before (issue #12: its accuracy curve unchanged).
// Native SIMD builds only (the dot kernel exists only with SIMD; WebAssembly's was not measured).
inline bool weight_grad_in_place_pays(std::int64_t cg, const Window2d& w) {
#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM)
    if (w.stride_h != 1 || w.stride_w != 1 || w.dilation_h != 1 || w.dilation_w != 1) return false;
    if (w.out_h <= 0 || w.out_w <= 0 || cg < 2 || cg * w.kernel_h * w.kernel_w < 12) return false;
    return weight_grad_run(w) >= 192 && 2 * (w.in_w + 2 * w.pad_w) <= 3 * w.out_w;
#else
    (void)cg;
    (void)w;
    return false;
#endif
}

#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM)
// Output channels × taps per block: 4 × 6 accumulators and the 5 operand vectors fit AVX-512's
// 32 registers; a square gemm_dot_r block (sgemm_dot_kernel's) where there are 16.
inline constexpr std::size_t wgrad_rows = static_cast<std::size_t>(gemm_dot_r);
inline constexpr std::size_t wgrad_taps = simd_width >= 16 ? 6 : static_cast<std::size_t>(gemm_dot_r);

// The offsets of the taps' runs in one group's padded planes, tap t = (c, i, j) at
// c·plane + i·pw + j; conv2d_backward fills it once per call (calling thread) for the tasks.
inline const std::int64_t* weight_grad_taps(std::int64_t cg, const Window2d& w) {
    const std::int64_t pw = w.in_w + 2 * w.pad_w, plane = (w.in_h + 2 * w.pad_h) * pw;
    std::int64_t* off = offset_table(2, cg * w.kernel_h * w.kernel_w);
    std::int64_t t = 0;
    for (std::int64_t c = 0; c < cg; ++c)
        for (std::int64_t i = 0; i < w.kernel_h; ++i)
            for (std::int64_t j = 0; j < w.kernel_w; ++j) off[t++] = c * plane + i * pw + j;
    return off;
}

// Scratch floats per image of conv_weight_grad_images: padded planes and widened gradients.
inline std::int64_t weight_grad_floats_per_image(std::int64_t channels, std::int64_t out_channels, const Window2d& w) {
    return channels * (w.in_h + 2 * w.pad_h) * (w.in_w + 2 * w.pad_w) + out_channels * weight_grad_run(w) +
           2 * simd_width;
}

// part[O, C/groups·kH·kW] = the weight gradient of `images` consecutive images, from their
// gy[images, O, oH, oW] and x[images, C, H, W], for a window weight_grad_in_place_pays accepts;
// taps from weight_grad_taps. Each element is one sgemm_dot_rows_kernel sum with a segment per
// image, over P = (oH − 1)·pw + oW products per image (padded with zero products to whole
// vectors). Uses the conv_padded and conv_grad_wide scratch slots of the calling thread.
inline void conv_weight_grad_images(float* part, const float* gy, const float* x, std::int64_t images,
                                    std::int64_t channels, std::int64_t out_channels, const Window2d& w,
                                    std::int64_t groups, const std::int64_t* taps) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
    const std::int64_t ckk = cg * w.kernel_h * w.kernel_w;
    const std::int64_t pw = w.in_w + 2 * w.pad_w, plane = (w.in_h + 2 * w.pad_h) * pw;
    const std::int64_t used = (w.out_h - 1) * pw + w.out_w, P = weight_grad_run(w);
    // Per image; one vector of skew each, so that the images' rows do not all fall in the same
    // L1 sets (O·P floats is often a multiple of 4 KB, and a block reads one row per image).
    const std::int64_t x_step = channels * plane + simd_width, g_step = out_channels * P + simd_width;
    float* planes = scratch(Scratch::conv_padded, images * x_step);
    for (std::int64_t n = 0; n < images; ++n) {
        pad_planes(planes + n * x_step, x + n * channels * w.in_plane(), channels, w);
        zero_floats(planes + n * x_step + channels * plane, simd_width);  // what the last runs read into
    }
    float* wide = scratch(Scratch::conv_grad_wide, images * g_step);
    for (std::int64_t n = 0; n < images; ++n)
        for (std::int64_t o = 0; o < out_channels; ++o) {
            float* row = wide + n * g_step + o * P;
            const float* src = gy + (n * out_channels + o) * w.out_plane();
            for (std::int64_t oh = 0; oh < w.out_h; ++oh) {
                copy_row(row + oh * pw, src + oh * w.out_w, w.out_w);
                if (oh + 1 < w.out_h) zero_floats(row + oh * pw + w.out_w, pw - w.out_w);
            }
            zero_floats(row + used, P - used);
        }
    constexpr std::size_t MB = wgrad_rows, NB = wgrad_taps;
    for (std::int64_t g = 0; g < groups; ++g) {
        const float* gplanes = planes + g * cg * plane;
        for (std::int64_t o0 = 0; o0 < og; o0 += static_cast<std::int64_t>(MB)) {
            const std::int64_t m = std::min<std::int64_t>(static_cast<std::int64_t>(MB), og - o0);
            const float* a[MB];
            for (std::size_t r = 0; r < MB; ++r)  // rows past m repeat the last one (results dropped)
                a[r] = wide + (g * og + o0 + std::min<std::int64_t>(static_cast<std::int64_t>(r), m - 1)) * P;
            for (std::int64_t t0 = 0; t0 < ckk; t0 += static_cast<std::int64_t>(NB)) {
                const std::int64_t n = std::min<std::int64_t>(static_cast<std::int64_t>(NB), ckk - t0);
                const float* b[NB];
                for (std::size_t s = 0; s < NB; ++s)
                    b[s] = gplanes + taps[t0 + std::min<std::int64_t>(static_cast<std::int64_t>(s), n - 1)];
                float out[MB * NB];
                sgemm_dot_rows_kernel<MB, NB>(P, a, b, out, images, g_step, x_step);
                for (std::int64_t r = 0; r < m; ++r)
                    for (std::int64_t s = 0; s < n; ++s)
                        part[(g * og + o0 + r) * ckk + t0 + s] = out[r * static_cast<std::int64_t>(NB) + s];
            }
        }
    }
}
#endif

}  // namespace nanotorch::kernels::detail
