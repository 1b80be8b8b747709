// nanotorch/kernels/conv_chunks.hpp — how conv2d splits a batch into chunks of images, and the
// drivers that sum a convolution's weight gradient over them.
//
// Every convolution path works on chunks of images whose size depends on the shapes alone
// (conv_chunk): the forward's GEMMs and the backward's per-chunk weight/bias partials, which are
// computed in parallel, each into its own slot, and added in chunk order. That is why a
// convolution's results are the same for every thread count. The weight-gradient kernels
// themselves are kernels/weight_grad.hpp (dot products read in place, stride 1) and
// kernels/weight_grad_lanes.hpp (output channels in the vector lanes); kernels/conv.hpp's
// conv2d_backward picks between them and im2col + sgemm.
#pragma once

#include <algorithm>  // std::min/max
#include <cstdint>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>  // add, copy_floats
#include <nanotorch/kernels/weight_grad.hpp>
#include <nanotorch/kernels/weight_grad_lanes.hpp>
#include <nanotorch/kernels/window.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels::detail {

// Upper bound (in floats) on the per-chunk weight/bias gradient partials kept at once.
inline constexpr std::int64_t conv_partial_budget = std::int64_t{1} << 22;
// Target GEMM width (columns = images · oH·oW) and cap on one chunk's im2col buffer (floats).
inline constexpr std::int64_t conv_chunk_columns = 2048;
inline constexpr std::int64_t conv_chunk_col_budget = std::int64_t{1} << 17;

// Images per chunk: wide enough that the GEMM's N is ~conv_chunk_columns even for small planes
// (an 8×8 output has oH·oW = 64), small enough that the im2col buffer (C·kH·kW × columns)
// stays within ~512 KB, i.e. in L2, and never below 1. A function of the shapes only — never of
// the thread count — so the GEMMs, the dW/db partials and the order they are summed in are the
// same for every thread count.
inline std::int64_t conv_chunk(std::int64_t ckk, std::int64_t len) {
    const std::int64_t want = (conv_chunk_columns + len - 1) / std::max<std::int64_t>(1, len);
    const std::int64_t fit = conv_chunk_col_budget / std::max<std::int64_t>(1, ckk * len);
    return std::max<std::int64_t>(1, std::min(want, fit));
}

#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM)
// Floats of padded planes and widened output gradients per chunk of conv_weight_grad_in_place
// (1 MB: the chunk stays in L2 while every block of outputs sweeps it).
inline constexpr std::int64_t wgrad_chunk_budget = std::int64_t{1} << 18;

// grad_weight[wnum] = the sum of the partials images(part, n0, nb) writes for the chunks of
// `chunk` images [n0, n0 + nb) of the batch, computed in parallel (each chunk into its own slot,
// at most conv_partial_budget floats of them at once) and added in chunk order. With a chunk
// that depends on the shapes only, the result is the same for every thread count.
template <class Images>
inline void conv_weight_grad_chunked(float* grad_weight, std::int64_t batch, std::int64_t wnum, std::int64_t chunk,
                                     const Images& images) {
    const std::int64_t chunks = (batch + chunk - 1) / chunk;
    const std::int64_t block = std::max<std::int64_t>(1, std::min(chunks, conv_partial_budget / wnum));
    float* partial = scratch(Scratch::conv_partials, std::min(block, chunks) * wnum);
    for (std::int64_t b0 = 0; b0 < chunks; b0 += block) {
        const std::int64_t b1 = std::min(chunks, b0 + block);
        parallel_for(b0, b1, 1, [&](std::int64_t c0, std::int64_t c1) {
            for (std::int64_t c = c0; c < c1; ++c) {
                const std::int64_t n0 = c * chunk;
                images(partial + (c - b0) * wnum, n0, std::min(chunk, batch - n0));
            }
        });
        for (std::int64_t c = b0; c < b1; ++c) {
            const float* part = partial + (c - b0) * wnum;
            if (c == 0) copy_floats(grad_weight, part, wnum);
            else add(grad_weight, grad_weight, part, wnum);
        }
    }
}

// grad_weight[O, C/groups·kH·kW] of conv2d_backward for a window weight_grad_in_place_pays
// accepts, read from the images in place (kernels/weight_grad.hpp): chunks of a power-of-two
// number of images (within wgrad_chunk_budget, so a batch of 64 splits evenly over threads).
inline void conv_weight_grad_in_place(float* grad_weight, const float* grad_out, const float* in,
                                      std::int64_t batch, std::int64_t channels, std::int64_t out_channels,
                                      const Window2d& w, std::int64_t groups) {
    const std::int64_t wnum = out_channels * (channels / groups) * w.kernel_h * w.kernel_w;
    std::int64_t chunk = 1;
    while (2 * chunk <= batch && 2 * chunk * weight_grad_floats_per_image(channels, out_channels, w) <= wgrad_chunk_budget)
        chunk *= 2;
    const std::int64_t* taps = weight_grad_taps(channels / groups, w);  // built once, read by the tasks
    conv_weight_grad_chunked(grad_weight, batch, wnum, chunk, [&](float* part, std::int64_t n0, std::int64_t nb) {
        conv_weight_grad_images(part, grad_out + n0 * out_channels * w.out_plane(), in + n0 * channels * w.in_plane(),
                                nb, channels, out_channels, w, groups, taps);
    });
}

// grad_weight[O, C·kH·kW] of conv2d_backward with the output channels in the lanes
// (kernels/weight_grad_lanes.hpp), the batch summed in chunks of `chunk` images.
inline void conv_weight_grad_lanes(float* grad_weight, const float* grad_out, const float* in, std::int64_t batch,
                                   std::int64_t channels, std::int64_t out_channels, const Window2d& w,
                                   std::int64_t chunk) {
    const std::int64_t wnum = out_channels * channels * w.kernel_h * w.kernel_w;
    conv_weight_grad_chunked(grad_weight, batch, wnum, chunk, [&](float* part, std::int64_t n0, std::int64_t nb) {
        conv_weight_grad_lanes_images(part, grad_out + n0 * out_channels * w.out_plane(),
                                      in + n0 * channels * w.in_plane(), nb, channels, out_channels, w);
    });
}

// The chunks for a window weight_grad_lanes_pays accepts: the largest power of two of images up
// to a quarter of the batch (a batch of 64: four chunks of 16, two per thread on two), whose
// partials are few (each is the weight's size) and whose images are many (each chunk's
// accumulators pass through L2 once per image).
inline std::int64_t weight_grad_lanes_chunk(std::int64_t batch) {
    std::int64_t chunk = 1;
    while (8 * chunk <= batch) chunk *= 2;
    return chunk;
}

// grad_weight of conv2d_backward for a window that weight_grad_lanes_fits but that neither
// weight_grad_lanes_pays nor weight_grad_in_place_pays: the lanes kernel in place of im2col +
// sgemm, on the im2col path's chunks (conv_chunk). The lanes kernel sums each element as one
// chain of fused multiply-adds from zero over the chunk's images in order, each image's pixels
// in raster order; sgemm's small-N paths (kernels/gemm.hpp) sum the product G @ colᵀ (K = the
// chunk's columns) in that same chain. So where sgemm would take one of them, for the full
// chunks and the last (the 5x5 10 -> 20 layer on 12x12 planes of the seed net, most small
// layers), the result is the im2col path's bit for bit, and the seed net trains exactly as
// before (test_conv checks it); elsewhere (the dot-product and blocked GEMM paths) it is another fixed order, the same
// for every thread count. Measured on Zen 5 (1 thread, batch 64, dW alone): 1.35x on that 5x5
// layer, 1.3-3.6x on 3x3 layers with 1-36 output channels on 6x6 to 32x32 planes, strided or
// not (2.45x on 16 -> 24 stride 2; 1.09x on 32 -> 36 on 8x8, the least).
inline void conv_weight_grad_lanes_as_gemm(float* grad_weight, const float* grad_out, const float* in,
                                           std::int64_t batch, std::int64_t channels, std::int64_t out_channels,
                                           const Window2d& w) {
    const std::int64_t ckk = channels * w.kernel_h * w.kernel_w;
    conv_weight_grad_lanes(grad_weight, grad_out, in, batch, channels, out_channels, w,
                           conv_chunk(ckk, w.out_plane()));
}
#endif

}  // namespace nanotorch::kernels::detail
