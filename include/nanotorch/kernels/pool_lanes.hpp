// nanotorch/kernels/pool_lanes.hpp — pooling many small planes at once: blocks of pool_lanes
// planes copied interleaved, so that each window tap is one vector operation over the block.
// The machinery shared by max and average pooling (which planes take it, the interleaving, the
// windows and their taps, the block loops); the per-op window kernels that run inside it are in
// kernels/simd.hpp and their callers in kernels/pool.hpp. Serial per block; planes are spread
// over parallel_for by block, so results do not depend on the thread count.
#pragma once

#include <algorithm>  // std::min/max
#include <cstdint>

#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>  // transpose_rows_4
#include <nanotorch/kernels/window.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels::detail {

// ---- small planes, pool_lanes at a time ----
// On a small plane (4×4 or 7×7 outputs) pooling is mostly per-plane and per-row overhead: the
// rows are too short to vectorise and the window bounds are worked out for every plane again. So
// planes this small are pooled pool_lanes at a time. The block is first copied interleaved
// (element e of its plane j at t[e·pool_lanes + j]); then every window is, per tap, one vector
// operation over the lanes (simd.hpp's max_pick_window, max_pick_window_backward, sum_window),
// with the window bounds found once for all lanes. Each lane does the ref's operation per tap
// in the ref's row-major tap order (max: max_pick's first-NaN, first-maximum rule; avg: 0 + taps
// in order, then ÷ the divisor), so every plane's result is the ref's bit for bit whatever lane
// it sits in. (avg's backward adds its shares in a plain loop, which compilers vectorise.)
inline constexpr std::int64_t pool_lanes = 16;
inline constexpr std::int64_t pool_lanes_max_plane = 1024;  // in and out planes (elements) it takes

// True when the lanes path takes these planes: at least half a block of them, each small.
inline bool pool_lanes_take(const Window2d& w, std::int64_t planes) {
    return planes >= pool_lanes / 2 && w.in_plane() <= pool_lanes_max_plane &&
           w.out_plane() <= pool_lanes_max_plane;
}

// t[e·pool_lanes + j] = src[j·size + e] for the block's n planes j (each of `size` elements), four
// planes at a time with transpose_rows_4's 4×4 shuffles where this build has them (the scalar
// copy's strided single-float stores were most of a small plane's time).
inline void interleave_planes(float* t, const float* src, std::int64_t n, std::int64_t size) {
    std::int64_t j = 0;
    if constexpr (has_transpose_rows_4)
        for (; j + 4 <= n; j += 4) transpose_rows_4(t + j, pool_lanes, src + j * size, size, size);
    for (; j < n; ++j)
        for (std::int64_t e = 0; e < size; ++e) t[e * pool_lanes + j] = src[j * size + e];
}

// dst[j·size + e] = o[e·pool_lanes + j] for the block's n planes j: interleave_planes undone.
inline void deinterleave_planes(float* dst, const float* o, std::int64_t n, std::int64_t size) {
    std::int64_t e = 0;
    if constexpr (has_transpose_rows_4)  // four elements of every plane at a time
        for (; e + 4 <= size; e += 4) transpose_rows_4(dst + e, size, o + e * pool_lanes, pool_lanes, n);
    for (; e < size; ++e)
        for (std::int64_t j = 0; j < n; ++j) dst[j * size + e] = o[e * pool_lanes + j];
}

// One pooling window: its clipped tap ranges [ih_lo, ih_hi) × [iw_lo, iw_hi) (never empty, by
// check_pool_window) and its start (h0, w0) in padded coordinates.
struct PoolTaps {
    std::int64_t ih_lo, ih_hi, iw_lo, iw_hi, h0, w0;
    std::int64_t first(std::int64_t in_w) const { return ih_lo * in_w + iw_lo; }  // its first tap's element
    std::int64_t rows() const { return ih_hi - ih_lo; }
    std::int64_t cols() const { return iw_hi - iw_lo; }
};

// Calls fn(i, taps) for every output i = oh·oW + ow, in row-major order.
template <class Fn>
inline void for_each_pool_window(const Window2d& w, Fn&& fn) {
    for (std::int64_t oh = 0; oh < w.out_h; ++oh) {
        const std::int64_t h0 = oh * w.stride_h - w.pad_h;
        const std::int64_t ih_lo = std::max<std::int64_t>(h0, 0), ih_hi = std::min(h0 + w.kernel_h, w.in_h);
        for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
            const std::int64_t w0 = ow * w.stride_w - w.pad_w;
            fn(oh * w.out_w + ow, PoolTaps{ih_lo, ih_hi, std::max<std::int64_t>(w0, 0),
                                           std::min(w0 + w.kernel_w, w.in_w), h0, w0});
        }
    }
}

// Pools planes [b·pool_lanes, ...) for blocks b in [b0, b1) of `planes` planes: interleaves each
// block into the thread's scratch (lanes past the last plane are zeros, never read back), calls
// window(o, t, taps) for every output in row-major order (o: the output's pool_lanes floats; t:
// the interleaved input), then writes the outputs back to their planes.
template <class Window>
inline void pool_lanes_blocks(float* out, const float* in, std::int64_t planes, const Window2d& w,
                              std::int64_t b0, std::int64_t b1, Window&& window) {
    constexpr std::int64_t L = pool_lanes;
    const std::int64_t ip = w.in_plane(), op = w.out_plane();
    float* t = scratch(Scratch::pool_lanes, (ip + op) * L);
    float* o = t + ip * L;
    for (std::int64_t b = b0; b < b1; ++b) {
        const std::int64_t p0 = b * L, n = std::min(L, planes - p0);
        if (n < L) std::fill(t, t + ip * L, 0.0f);
        interleave_planes(t, in + p0 * ip, n, ip);
        for_each_pool_window(w, [&](std::int64_t i, const PoolTaps& taps) { window(o + i * L, t, taps); });
        deinterleave_planes(out + p0 * op, o, n, op);
    }
}

// The backward of the small-plane path over blocks [b0, b1): grad_out (and, for max pooling,
// the input; in may be null) interleaved like the forward's input, the input gradient summed
// into an interleaved plane that starts at +0 by window(gi, t, g, taps) for every output in
// row-major order (g: its pool_lanes gradients), which is the ref's order of additions, then
// written back to grad_in's planes.
template <class Window>
inline void pool_lanes_backward_blocks(float* grad_in, const float* grad_out, const float* in, std::int64_t planes,
                                       const Window2d& w, std::int64_t b0, std::int64_t b1, Window&& window) {
    constexpr std::int64_t L = pool_lanes;
    const std::int64_t ip = w.in_plane(), op = w.out_plane();
    float* t = scratch(Scratch::pool_lanes, (2 * ip + op) * L);
    float* gi = t + ip * L;
    float* g = gi + ip * L;
    for (std::int64_t b = b0; b < b1; ++b) {
        const std::int64_t p0 = b * L, n = std::min(L, planes - p0);
        if (n < L) {
            std::fill(t, t + ip * L, 0.0f);
            std::fill(g, g + op * L, 0.0f);
        }
        if (in) interleave_planes(t, in + p0 * ip, n, ip);
        interleave_planes(g, grad_out + p0 * op, n, op);
        std::fill(gi, gi + ip * L, 0.0f);
        for_each_pool_window(w, [&](std::int64_t i, const PoolTaps& taps) { window(gi, t, g + i * L, taps); });
        deinterleave_planes(grad_in + p0 * ip, gi, n, ip);
    }
}

// Blocks of pool_lanes planes per parallel_for chunk (plane_grain's planes, at least one block).
inline std::int64_t pool_lanes_grain(const Window2d& w) {
    return std::max<std::int64_t>(1, plane_grain(w) / pool_lanes);
}

inline std::int64_t pool_lanes_block_count(std::int64_t planes) { return (planes + pool_lanes - 1) / pool_lanes; }

}  // namespace nanotorch::kernels::detail
