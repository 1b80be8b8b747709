// nanotorch/kernels/pool.hpp — raw-pointer max and average pooling kernels (NCHW planes).
//
// Provides max_pool2d forward (value, and optionally the flat argmax index per output), two
// backwards — a scatter through saved indices, and one that recomputes each window's argmax from
// the saved input (what ops::max_pool2d uses: it saves no index array at all) — and avg_pool2d
// forward/backward with count_include_pad on or off, each with a ref:: twin that tests compare
// against bit for bit. The 2×2 stride-2 unpadded window (max_pool2d(x, 2)) has its own branch-free
// loops that compilers vectorise (and a shorter values-only one when no indices are wanted and
// the width is even), and avg_pool2d over non-overlapping unpadded windows (the canvas
// model's 10×10 stride 10) sums a whole output row's windows at once in the ref's order. Many
// small planes (at most 32×32) are pooled 16 at a time, interleaved so that each tap is one
// vector operation over the 16 planes (max without indices and its backward from the input for
// any window but 2×2/2, avg forward and backward for any window). Other windows without indices
// take span paths (column spans found once per call; max pooling as row maxima then column
// maxima, avg pooling an output row of sums at a time), and with indices the general per-output
// path. The window geometry
// (Window2d, make_window) lives in kernels/window.hpp; make_pool_window adds PyTorch's ceil_mode
// (windows that run past the input's end; the fast paths are taken only when no window does).
// Not provided: dilation, return_indices-style int64 outputs for the recompute path.
//
// Determinism: planes are spread over parallel_for, each plane written by exactly one chunk in a
// fixed serial order, so results are bit-identical for every thread count.
#pragma once

#include <algorithm>  // std::min/max/fill
#include <cmath>      // std::isnan (ref::max_pool2d_forward)
#include <cstdint>
#include <limits>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/pool_lanes.hpp>  // many small planes at once
#include <nanotorch/kernels/simd.hpp>  // max_pool2x2_backward_row
#include <nanotorch/kernels/window.hpp>  // Window2d, detail::check_pool_window, detail::plane_grain
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels {

// ---- geometry ----

/// PyTorch's pooling output size: floor (or, with ceil_mode, ceil) of
/// (in + 2·pad − kernel) / stride, plus 1; with ceil_mode the last window must still start inside
/// the input or its left padding (else it is dropped). 0 when the padded input is shorter than the
/// kernel. Parameters must already be valid (make_window checks them).
inline std::int64_t pool_out_size(std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t pad,
                                  bool ceil_mode) {
    const std::int64_t span = in + 2 * pad - kernel;
    if (span < 0) return 0;
    std::int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) --out;
    return out;
}

/// make_window for pooling (no dilation) with ceil_mode: same checks, out_h/out_w by
/// pool_out_size. Throws value_error as make_window.
inline Window2d make_pool_window(std::int64_t in_h, std::int64_t in_w, std::int64_t kernel_h, std::int64_t kernel_w,
                                 std::int64_t stride_h, std::int64_t stride_w, std::int64_t pad_h, std::int64_t pad_w,
                                 bool ceil_mode) {
    Window2d w = make_window(in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w);
    w.out_h = pool_out_size(in_h, kernel_h, stride_h, pad_h, ceil_mode);
    w.out_w = pool_out_size(in_w, kernel_w, stride_w, pad_w, ceil_mode);
    return w;
}

namespace detail {
// True when no window reaches past the padded input (always without ceil_mode): the fast paths
// below assume every window is whole.
inline bool pool_windows_whole(const Window2d& w) {
    return (w.out_h - 1) * w.stride_h + w.kernel_h <= w.in_h + 2 * w.pad_h &&
           (w.out_w - 1) * w.stride_w + w.kernel_w <= w.in_w + 2 * w.pad_w;
}

// avg_pool2d's divisor for the window starting at padded offset (h0, w0) (PyTorch's rule): with
// count_include_pad, the window's area clipped to the padded input (kH·kW except for a ceil_mode
// window past the end); without, the number of real elements in it.
inline std::int64_t avg_divisor(const Window2d& w, std::int64_t h0, std::int64_t w0, bool count_include_pad) {
    if (count_include_pad)
        return (std::min(h0 + w.kernel_h, w.in_h + w.pad_h) - h0) * (std::min(w0 + w.kernel_w, w.in_w + w.pad_w) - w0);
    return (std::min(h0 + w.kernel_h, w.in_h) - std::max<std::int64_t>(h0, 0)) *
           (std::min(w0 + w.kernel_w, w.in_w) - std::max<std::int64_t>(w0, 0));
}
}  // namespace detail

// ---- max_pool2d ----
// PyTorch semantics: padding acts as −inf (never selected), ties keep the first element in
// row-major window order, and a NaN wins over any number (the first NaN in the window is kept).
// indices[i] is the flat position ih·W + iw inside the input plane; it is always a real
// element (see detail::check_pool_window), never a sentinel.

namespace ref {
// out, indices [P, oH, oW] ← in [P, H, W] for P = N·C planes; indices may be null.
// Throws value_error when padding > kernel/2 or dilation != 1.
inline void max_pool2d_forward(float* out, std::int64_t* indices, const float* in, std::int64_t planes,
                               const Window2d& w) {
    detail::check_pool_window(w, "max_pool2d");
    for (std::int64_t p = 0; p < planes; ++p) {
        const float* src = in + p * w.in_plane();
        for (std::int64_t oh = 0; oh < w.out_h; ++oh)
            for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                float best = -std::numeric_limits<float>::infinity();  // padding is -inf
                std::int64_t best_i = -1;
                detail::for_each_real_tap(w, oh, ow, [&](std::int64_t i) {
                    const float v = src[i];
                    if (best_i < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
                        best = v;
                        best_i = i;
                    }
                });
                const std::int64_t o = (p * w.out_h + oh) * w.out_w + ow;
                out[o] = best;
                if (indices) indices[o] = best_i;
            }
    }
}
}  // namespace ref

namespace detail {

// True for PyTorch's max_pool2d(x, 2): 2×2, stride 2, no padding, no window past the end.
inline bool is_pool_2x2(const Window2d& w) {
    return w.kernel_h == 2 && w.kernel_w == 2 && w.stride_h == 2 && w.stride_w == 2 && w.pad_h == 0 && w.pad_w == 0 &&
           pool_windows_whole(w);
}

// PyTorch's "does v replace the current best?": v is greater, or v is the first NaN (a NaN best
// is never replaced). Written as !(v <= best || best is NaN), which is the same predicate, because
// GCC 12 vectorises this form of the loops below and not the (v > best) | (isnan(v) & ...) one.
inline bool max_takes(float v, float best) { return !(v <= best || best != best); }

// The tap (0..3, row-major) of window {a b; c d} that max pooling selects; its value in best.
// Tap is a template parameter; the kernels use float so the loop body is all-float, the form
// GCC 12 vectorises (the tap is 0..3, exact in float).
template <class Tap>
inline Tap argmax4(float a, float b, float c, float d, float& best) {
    best = a;
    Tap tap = 0;
    bool take = max_takes(b, best);
    best = take ? b : best;
    tap = take ? Tap(1) : tap;
    take = max_takes(c, best);
    best = take ? c : best;
    tap = take ? Tap(2) : tap;
    take = max_takes(d, best);
    best = take ? d : best;
    tap = take ? Tap(3) : tap;
    return tap;
}

// Flat index ih·W + iw of the element max pooling selects for output (oh, ow) of plane src.
// Two branch-free passes (a "new max?" branch is a coin flip on real data and was measured ~2.5x
// slower): the max and a NaN flag, then the first element equal to it (or the first NaN), picked
// with integer masks. The window is never empty (check_pool_window), so it names a real element.
inline std::int64_t window_argmax(const float* src, const Window2d& w, std::int64_t oh, std::int64_t ow) {
    const std::int64_t h0 = oh * w.stride_h - w.pad_h;
    const std::int64_t ih_lo = std::max<std::int64_t>(h0, 0);
    const std::int64_t ih_hi = std::min(h0 + w.kernel_h, w.in_h);
    const std::int64_t w0 = ow * w.stride_w - w.pad_w;
    const std::int64_t iw_lo = std::max<std::int64_t>(w0, 0);
    const std::int64_t iw_hi = std::min(w0 + w.kernel_w, w.in_w);
    float best = -std::numeric_limits<float>::infinity();
    bool has_nan = false;
    for (std::int64_t ih = ih_lo; ih < ih_hi; ++ih)
        for (std::int64_t iw = iw_lo; iw < iw_hi; ++iw) {
            const float v = src[ih * w.in_w + iw];
            best = best < v ? v : best;
            has_nan |= v != v;
        }
    std::int64_t best_i = ih_lo * w.in_w + iw_lo;
    std::int64_t found = 0;  // all ones once the first match is taken
    for (std::int64_t ih = ih_lo; ih < ih_hi; ++ih)
        for (std::int64_t iw = iw_lo; iw < iw_hi; ++iw) {
            const float v = src[ih * w.in_w + iw];
            const bool match = has_nan ? v != v : v == best;
            const std::int64_t take = -static_cast<std::int64_t>(match) & ~found;
            best_i = ((ih * w.in_w + iw) & take) | (best_i & ~take);
            found |= take;
        }
    return best_i;
}

// The 2×2 stride-2 kernels work on tiles of at most pool_tile outputs: first the four taps of
// each output are gathered into four contiguous arrays (plain moves), then one flat loop over the
// tile computes the argmax. Looping over an output row directly left GCC a 12- or 4-iteration
// loop (output rows of 12 or 4) that ran almost entirely in its branchy scalar epilogue; the flat
// loop over up to 256 outputs is vectorised throughout.
inline constexpr std::int64_t pool_tile = 256;

// Calls fn(oh0, oh1, ow0, ow1) for tiles covering the output plane in row-major order: whole
// rows when a row fits in a tile, else segments of one row. Either way a tile's outputs are one
// contiguous run starting at oh0·oW + ow0.
template <class Fn>
inline void for_each_pool_tile(const Window2d& w, Fn&& fn) {
    const std::int64_t seg = std::min(w.out_w, pool_tile);
    const std::int64_t rows = std::max<std::int64_t>(1, pool_tile / std::max<std::int64_t>(1, w.out_w));
    for (std::int64_t oh0 = 0; oh0 < w.out_h; oh0 += rows)
        for (std::int64_t ow0 = 0; ow0 < w.out_w; ow0 += seg)
            fn(oh0, std::min(w.out_h, oh0 + rows), ow0, std::min(w.out_w, ow0 + seg));
}

// Copies the taps {a b; c d} of the tile's outputs, row-major, into a, b, c, d.
inline void gather_taps(float* a, float* b, float* c, float* d, const float* src, const Window2d& w,
                        std::int64_t oh0, std::int64_t oh1, std::int64_t ow0, std::int64_t ow1) {
    std::int64_t i = 0;
    for (std::int64_t oh = oh0; oh < oh1; ++oh) {
        const float* r0 = src + 2 * oh * w.in_w;
        const float* r1 = r0 + w.in_w;
        for (std::int64_t ow = ow0; ow < ow1; ++ow, ++i) {
            a[i] = r0[2 * ow];
            b[i] = r0[2 * ow + 1];
            c[i] = r1[2 * ow];
            d[i] = r1[2 * ow + 1];
        }
    }
}

// The value max pooling keeps of x then y (PyTorch's rule, see max_takes).
inline float max_pick(float x, float y) { return max_takes(y, x) ? y : x; }

// Values only (no indices) of one plane of the 2×2 stride-2 forward, for an even input width:
// first every horizontal pair of the used rows is reduced in one flat loop (the rows are
// contiguous, so it is a plain deinterleave), then each output takes its two pairs. The value
// is that of argmax4's fold over a, b, c, d: pick(pick(a, b), pick(c, d)) keeps the first NaN
// if there is one and else the first maximum in window order, exactly as the sequential fold
// does (−0 vs +0 included), so this matches the ref bit for bit. It avoids the tap gather,
// which dominated small planes (24×24 and 8×8).
inline constexpr std::int64_t pool_pair_chunk = 1024;  // floats of row pairs per chunk (stack)

inline void max_pool2x2_values_plane(float* dst, const float* src, const Window2d& w) {
    alignas(64) float pairs[pool_pair_chunk];
    const std::int64_t ow_n = w.out_w;
    const std::int64_t rows = std::max<std::int64_t>(1, pool_pair_chunk / (2 * ow_n));  // output rows per chunk
    for (std::int64_t oh0 = 0; oh0 < w.out_h; oh0 += rows) {
        const std::int64_t oh1 = std::min(w.out_h, oh0 + rows);
        const float* in = src + 2 * oh0 * w.in_w;
        const std::int64_t n = 2 * (oh1 - oh0) * ow_n;  // in_w == 2·out_w: input rows are whole pairs
        for (std::int64_t i = 0; i < n; ++i) pairs[i] = max_pick(in[2 * i], in[2 * i + 1]);
        for (std::int64_t oh = oh0; oh < oh1; ++oh) {
            const float* top = pairs + 2 * (oh - oh0) * ow_n;
            const float* bottom = top + ow_n;
            float* out = dst + oh * ow_n;
            if constexpr (has_partial_vectors) max_pick_rows(out, top, bottom, ow_n);  // simd.hpp
            else
                for (std::int64_t ow = 0; ow < ow_n; ++ow) out[ow] = max_pick(top[ow], bottom[ow]);
        }
    }
}

// One plane of the 2×2 stride-2 forward; indices may be null.
inline void max_pool2x2_plane(float* dst, std::int64_t* idx, const float* src, const Window2d& w) {
    alignas(64) float a[pool_tile], b[pool_tile], c[pool_tile], d[pool_tile], tap[pool_tile];
    for_each_pool_tile(w, [&](std::int64_t oh0, std::int64_t oh1, std::int64_t ow0, std::int64_t ow1) {
        gather_taps(a, b, c, d, src, w, oh0, oh1, ow0, ow1);
        const std::int64_t n = (oh1 - oh0) * (ow1 - ow0);
        float* out = dst + oh0 * w.out_w + ow0;
        for (std::int64_t i = 0; i < n; ++i) {
            float best;
            tap[i] = argmax4<float>(a[i], b[i], c[i], d[i], best);
            out[i] = best;
        }
        if (!idx) return;
        std::int64_t i = 0;
        for (std::int64_t oh = oh0; oh < oh1; ++oh)
            for (std::int64_t ow = ow0; ow < ow1; ++ow, ++i) {
                const auto t = static_cast<std::int64_t>(tap[i]);
                idx[oh * w.out_w + ow] = (2 * oh + (t >> 1)) * w.in_w + 2 * ow + (t & 1);
            }
    });
}

// One plane of the 2×2 stride-2 forward, values only, on the plane kernel its width allows:
// max_pool2d_forward's choice, and conv2d_forward_fused's pooled epilogue (kernels/conv.hpp).
inline void max_pool2x2_values(float* dst, const float* src, const Window2d& w) {
    if (w.in_w == 2 * w.out_w && 2 * w.out_w <= pool_pair_chunk) max_pool2x2_values_plane(dst, src, w);
    else max_pool2x2_plane(dst, nullptr, src, w);
}

// One plane of the 2×2 stride-2 backward-from-input: writes all of gi.
inline void max_pool2x2_backward_plane(float* gi, const float* go, const float* src, const Window2d& w) {
    if (has_max_pool2x2_backward_row && w.in_w == 2 * w.out_w) {  // simd.hpp's shuffling row kernel
        for (std::int64_t oh = 0; oh < w.out_h; ++oh) {
            const std::int64_t r = 2 * oh * w.in_w;
            max_pool2x2_backward_row(gi + r, gi + r + w.in_w, go + oh * w.out_w, src + r, src + r + w.in_w, w.out_w);
        }
        std::fill(gi + 2 * w.out_h * w.in_w, gi + w.in_plane(), 0.0f);  // odd height: last row
        return;
    }
    alignas(64) float a[pool_tile], b[pool_tile], c[pool_tile], d[pool_tile];
    for_each_pool_tile(w, [&](std::int64_t oh0, std::int64_t oh1, std::int64_t ow0, std::int64_t ow1) {
        gather_taps(a, b, c, d, src, w, oh0, oh1, ow0, ow1);
        const std::int64_t n = (oh1 - oh0) * (ow1 - ow0);
        const float* g = go + oh0 * w.out_w + ow0;
        for (std::int64_t i = 0; i < n; ++i) {  // in place: a..d become the four gradients
            float best;
            const float t = argmax4<float>(a[i], b[i], c[i], d[i], best);
            const float v = 0.0f + g[i];  // 0 + g, as the scatter's 0 += g (turns −0 into +0)
            a[i] = t == 0.0f ? v : 0.0f;
            b[i] = t == 1.0f ? v : 0.0f;
            c[i] = t == 2.0f ? v : 0.0f;
            d[i] = t == 3.0f ? v : 0.0f;
        }
        std::int64_t i = 0;
        for (std::int64_t oh = oh0; oh < oh1; ++oh) {
            float* g0 = gi + 2 * oh * w.in_w;
            float* g1 = g0 + w.in_w;
            for (std::int64_t ow = ow0; ow < ow1; ++ow, ++i) {
                g0[2 * ow] = a[i];
                g0[2 * ow + 1] = b[i];
                g1[2 * ow] = c[i];
                g1[2 * ow + 1] = d[i];
            }
        }
    });
    for (std::int64_t oh = 0; oh < w.out_h && w.in_w > 2 * w.out_w; ++oh)  // odd width: last column
        gi[2 * oh * w.in_w + w.in_w - 1] = gi[(2 * oh + 1) * w.in_w + w.in_w - 1] = 0.0f;
    std::fill(gi + 2 * w.out_h * w.in_w, gi + w.in_plane(), 0.0f);  // odd height: last row
}

// Each output column's clipped input span [lo, hi) along one axis (windows are never empty:
// check_pool_window). General windows keep these in tables sized on the stack.
inline constexpr std::int64_t pool_span_max = 1024;
inline constexpr std::int64_t pool_span_in_max = std::int64_t{1} << 30;  // spans fit int32
struct PoolSpans {
    std::int32_t lo[pool_span_max], hi[pool_span_max];  // (int32: 8 KB of the caller's stack)
};
inline void pool_spans(PoolSpans& s, std::int64_t out, std::int64_t in, std::int64_t kernel, std::int64_t stride,
                       std::int64_t pad) {
    for (std::int64_t o = 0; o < out; ++o) {
        const std::int64_t start = o * stride - pad;
        s.lo[o] = static_cast<std::int32_t>(std::max<std::int64_t>(start, 0));
        s.hi[o] = static_cast<std::int32_t>(std::min(start + kernel, in));
    }
}

// One plane of max pooling's values for any window (no indices), in two passes: each input row's
// maximum over every window's columns (rows[ih·oW + ow]), then each output the maximum of its
// window's rows of those. Both passes keep the earlier of equal values, so the element taken is
// the first maximum in row-major window order, as in the ref (which matters for −0 against +0).
// The maxima of different columns (then rows) are independent chains the CPU overlaps, where
// window_argmax's one chain per output waited on each comparison. A NaN is not ordered, so a plane
// that holds one takes window_argmax instead (the first NaN wins there). Returns nothing; rows
// needs in_h·oW floats.
inline void max_pool_values_plane(float* dst, const float* src, const Window2d& w, const PoolSpans& cols,
                                  float* rows) {
    bool nan = false;
    for (std::int64_t ih = 0; ih < w.in_h; ++ih) {
        const float* row = src + ih * w.in_w;
        float* rmax = rows + ih * w.out_w;
        for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
            float best = row[cols.lo[ow]];
            for (std::int64_t iw = cols.lo[ow] + 1; iw < cols.hi[ow]; ++iw) best = best < row[iw] ? row[iw] : best;
            rmax[ow] = best;
        }
        for (std::int64_t iw = 0; iw < w.in_w; ++iw) nan |= row[iw] != row[iw];
    }
    if (nan) {
        for (std::int64_t oh = 0; oh < w.out_h; ++oh)
            for (std::int64_t ow = 0; ow < w.out_w; ++ow) dst[oh * w.out_w + ow] = src[window_argmax(src, w, oh, ow)];
        return;
    }
    for (std::int64_t oh = 0; oh < w.out_h; ++oh) {
        const std::int64_t h0 = oh * w.stride_h - w.pad_h;
        const std::int64_t ih_lo = std::max<std::int64_t>(h0, 0), ih_hi = std::min(h0 + w.kernel_h, w.in_h);
        float* out = dst + oh * w.out_w;
        std::copy(rows + ih_lo * w.out_w, rows + (ih_lo + 1) * w.out_w, out);
        for (std::int64_t ih = ih_lo + 1; ih < ih_hi; ++ih) {
            const float* r = rows + ih * w.out_w;
            for (std::int64_t ow = 0; ow < w.out_w; ++ow) out[ow] = out[ow] < r[ow] ? r[ow] : out[ow];
        }
    }
}


// max_pool2d_forward's values (no indices) for pool_lanes_take planes.
inline void max_pool_lanes(float* out, const float* in, std::int64_t planes, const Window2d& w) {
    constexpr std::int64_t L = pool_lanes;
    const std::int64_t in_w = w.in_w;
    parallel_for(0, pool_lanes_block_count(planes), pool_lanes_grain(w), [&](std::int64_t b0, std::int64_t b1) {
        pool_lanes_blocks(out, in, planes, w, b0, b1, [in_w](float* o, const float* t, const PoolTaps& taps) {
            max_pick_window(o, t + taps.first(in_w) * L, L, taps.rows(), taps.cols(), in_w);
        });
    });
}

// max_pool2d_backward_from_input for pool_lanes_take planes: each lane adds its gradient at the
// tap max_pick_window keeps (the forward's argmax), in the ref's output order.
inline void max_pool_lanes_backward(float* grad_in, const float* grad_out, const float* in, std::int64_t planes,
                                    const Window2d& w) {
    constexpr std::int64_t L = pool_lanes;
    const std::int64_t in_w = w.in_w;
    parallel_for(0, pool_lanes_block_count(planes), pool_lanes_grain(w), [&](std::int64_t b0, std::int64_t b1) {
        pool_lanes_backward_blocks(grad_in, grad_out, in, planes, w, b0, b1,
                                   [in_w](float* gi, const float* t, const float* g, const PoolTaps& taps) {
                                       const std::int64_t e = taps.first(in_w) * L;
                                       max_pick_window_backward(gi + e, t + e, g, L, taps.rows(), taps.cols(), in_w);
                                   });
    });
}

}  // namespace detail

// out, indices [P, oH, oW] ← in [P, H, W]; indices may be null. Same results as the ref twin;
// planes are spread over parallel_for. Throws value_error when padding > kernel/2 or dilation != 1.
NANOTORCH_KERNEL_API void max_pool2d_forward(float* out, std::int64_t* indices, const float* in, std::int64_t planes,
                                             const Window2d& w)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    detail::check_pool_window(w, "max_pool2d");
    const bool fast = detail::is_pool_2x2(w);
    if (!indices && !fast && detail::pool_lanes_take(w, planes)) return detail::max_pool_lanes(out, in, planes, w);
    // Values only, any other window: the two-pass plane kernel over column spans found once here.
    const bool spans = !fast && !indices && w.out_w <= detail::pool_span_max && w.in_w <= detail::pool_span_in_max;
    detail::PoolSpans cols;
    if (spans) detail::pool_spans(cols, w.out_w, w.in_w, w.kernel_w, w.stride_w, w.pad_w);
    parallel_for(0, planes, detail::plane_grain(w), [&](std::int64_t p0, std::int64_t p1) {
        float* rows = spans ? detail::scratch(detail::Scratch::pool_rows, w.in_h * w.out_w) : nullptr;
        for (std::int64_t p = p0; p < p1; ++p) {
            const float* src = in + p * w.in_plane();
            float* dst = out + p * w.out_plane();
            std::int64_t* idx = indices ? indices + p * w.out_plane() : nullptr;
            if (fast && !idx) {
                detail::max_pool2x2_values(dst, src, w);
            } else if (fast) {
                detail::max_pool2x2_plane(dst, idx, src, w);
            } else if (spans) {
                detail::max_pool_values_plane(dst, src, w, cols, rows);
            } else {
                for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                    for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                        const std::int64_t best_i = detail::window_argmax(src, w, oh, ow);
                        dst[oh * w.out_w + ow] = src[best_i];
                        if (idx) idx[oh * w.out_w + ow] = best_i;
                    }
            }
        }
    });
}
#endif

namespace ref {
// grad_in [P, H, W] = 0, then grad_in[p, indices[p, o]] += grad_out[p, o] for every output o
// in order: the definition both optimized backwards below are checked against.
inline void max_pool2d_backward(float* grad_in, const float* grad_out, const std::int64_t* indices,
                                std::int64_t planes, const Window2d& w) {
    std::fill(grad_in, grad_in + planes * w.in_plane(), 0.0f);
    for (std::int64_t p = 0; p < planes; ++p)
        for (std::int64_t o = 0; o < w.out_plane(); ++o)
            grad_in[p * w.in_plane() + indices[p * w.out_plane() + o]] += grad_out[p * w.out_plane() + o];
}
}  // namespace ref

// grad_in [P, H, W] = scatter-add of grad_out [P, oH, oW] through indices [P, oH, oW] (from
// max_pool2d_forward). Overwrites grad_in. One plane per task and serial within a plane, so
// overlapping windows (stride < kernel) add in output order whatever the thread count.
NANOTORCH_KERNEL_API void max_pool2d_backward(float* grad_in, const float* grad_out, const std::int64_t* indices,
                                              std::int64_t planes, const Window2d& w)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    parallel_for(0, planes, detail::plane_grain(w), [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            float* gi = grad_in + p * w.in_plane();
            const float* go = grad_out + p * w.out_plane();
            const std::int64_t* idx = indices + p * w.out_plane();
            std::fill(gi, gi + w.in_plane(), 0.0f);
            for (std::int64_t o = 0; o < w.out_plane(); ++o) gi[idx[o]] += go[o];
        }
    });
}
#endif

// grad_in [P, H, W] ← grad_out [P, oH, oW], finding each window's argmax again in the forward's
// input in [P, H, W] instead of reading saved indices: bit-identical to max_pool2d_forward's
// indices followed by max_pool2d_backward (same argmax, same additions in the same order — the
// 2×2 path writes 0 + g, not g, so a −0 gradient becomes +0 exactly as the scatter's 0 += g
// does). This is what ops::max_pool2d uses: the forward then saves no index array, and for the
// 2×2 stride-2 window every input element is written once with no separate zero fill.
// Overwrites grad_in. Throws value_error when padding > kernel/2 or dilation != 1.
NANOTORCH_KERNEL_API void max_pool2d_backward_from_input(float* grad_in, const float* grad_out, const float* in,
                                                         std::int64_t planes, const Window2d& w)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    detail::check_pool_window(w, "max_pool2d");
    const bool fast = detail::is_pool_2x2(w);
    if (!fast && detail::pool_lanes_take(w, planes))
        return detail::max_pool_lanes_backward(grad_in, grad_out, in, planes, w);
    parallel_for(0, planes, detail::plane_grain(w), [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const float* src = in + p * w.in_plane();
            const float* go = grad_out + p * w.out_plane();
            float* gi = grad_in + p * w.in_plane();
            if (!fast) {
                std::fill(gi, gi + w.in_plane(), 0.0f);
                for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                    for (std::int64_t ow = 0; ow < w.out_w; ++ow)
                        gi[detail::window_argmax(src, w, oh, ow)] += go[oh * w.out_w + ow];
                continue;
            }
            detail::max_pool2x2_backward_plane(gi, go, src, w);
        }
    });
}
#endif

// ---- avg_pool2d ----
// The divisor is detail::avg_divisor: kH·kW when count_include_pad (padding counts as zeros),
// clipped to the padded input for a ceil_mode window past the end, else the number of real
// elements in the window (>= 1 by check_pool_window and pool_out_size's rule).

namespace ref {
// out [P, oH, oW] ← in [P, H, W]. Throws value_error when padding > kernel/2 or dilation != 1.
inline void avg_pool2d_forward(float* out, const float* in, std::int64_t planes, const Window2d& w,
                               bool count_include_pad) {
    detail::check_pool_window(w, "avg_pool2d");
    for (std::int64_t p = 0; p < planes; ++p)
        for (std::int64_t oh = 0; oh < w.out_h; ++oh)
            for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                float sum = 0.0f;
                std::int64_t count = 0;
                detail::for_each_real_tap(w, oh, ow, [&](std::int64_t i) {
                    sum += in[p * w.in_plane() + i];
                    ++count;
                });
                const std::int64_t div = count_include_pad ? detail::avg_divisor(w, oh * w.stride_h - w.pad_h,
                                                                                 ow * w.stride_w - w.pad_w, true)
                                                           : count;
                out[(p * w.out_h + oh) * w.out_w + ow] = sum / static_cast<float>(div);
            }
}

// grad_in [P, H, W] ← grad_out [P, oH, oW]: each output spreads grad/divisor over its real
// elements, in output order. Overwrites grad_in.
inline void avg_pool2d_backward(float* grad_in, const float* grad_out, std::int64_t planes, const Window2d& w,
                                bool count_include_pad) {
    detail::check_pool_window(w, "avg_pool2d");
    std::fill(grad_in, grad_in + planes * w.in_plane(), 0.0f);
    for (std::int64_t p = 0; p < planes; ++p)
        for (std::int64_t oh = 0; oh < w.out_h; ++oh)
            for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                std::int64_t count = 0;
                detail::for_each_real_tap(w, oh, ow, [&](std::int64_t) { ++count; });
                const std::int64_t div = count_include_pad ? detail::avg_divisor(w, oh * w.stride_h - w.pad_h,
                                                                                 ow * w.stride_w - w.pad_w, true)
                                                           : count;
                const float g = grad_out[(p * w.out_h + oh) * w.out_w + ow] / static_cast<float>(div);
                detail::for_each_real_tap(w, oh, ow, [&](std::int64_t i) { grad_in[p * w.in_plane() + i] += g; });
            }
}
}  // namespace ref

namespace detail {

// True for non-overlapping, unpadded, whole windows (stride == kernel, padding 0, none past the
// end): every input element belongs to at most one window and no window is clipped, so all
// divisors are kH·kW.
inline bool is_pool_tiling(const Window2d& w) {
    return w.stride_h == w.kernel_h && w.stride_w == w.kernel_w && w.pad_h == 0 && w.pad_w == 0 &&
           pool_windows_whole(w);
}

// One output row of a tiling avg_pool (is_pool_tiling) over a band of kH input rows whose
// element (kh, iw) is band[kh·row_stride + iw·col_stride]: the partial sums of the row's out_w
// windows live in acc, and the band's rows are added into them one row at a time, each read
// front to back. Per output that is still 0 + x(0,0) + x(0,1) + ... in row-major window order —
// the ref's order, so the result is bit-identical — but the out_w sums are short independent
// chains the CPU overlaps, with no per-output bounds arithmetic (the general path on the canvas
// model's 10×10 pool over 280×280 was about twice as slow). Blocks of eight windows, then four,
// keep that many chains in registers: one chain at a time ran at one add per cycle (its adds
// wait on each other; the canvas model's 10×10 pool took 18 us of its 36).
template <std::int64_t Lanes>
inline std::int64_t avg_pool_tiling_block(float* acc, const float* row, std::int64_t ow, std::int64_t ow_n,
                                          std::int64_t kw, std::int64_t col_stride) {
    for (; ow + Lanes <= ow_n; ow += Lanes) {
        float a[Lanes];
        const float* x = row + ow * kw * col_stride;
        for (std::int64_t j = 0; j < Lanes; ++j) a[j] = acc[ow + j];
        for (std::int64_t kx = 0; kx < kw; ++kx, x += col_stride)
            for (std::int64_t j = 0; j < Lanes; ++j) a[j] += x[j * kw * col_stride];
        for (std::int64_t j = 0; j < Lanes; ++j) acc[ow + j] = a[j];
    }
    return ow;
}

inline void avg_pool_tiling_row(float* dst, float* acc, const float* band, std::int64_t row_stride,
                                std::int64_t col_stride, const Window2d& w) {
    const std::int64_t ow_n = w.out_w, kw = w.kernel_w;
    std::fill(acc, acc + ow_n, 0.0f);
    for (std::int64_t kh = 0; kh < w.kernel_h; ++kh) {
        const float* row = band + kh * row_stride;
        std::int64_t ow = avg_pool_tiling_block<8>(acc, row, 0, ow_n, kw, col_stride);
        ow = avg_pool_tiling_block<4>(acc, row, ow, ow_n, kw, col_stride);
        avg_pool_tiling_block<1>(acc, row, ow, ow_n, kw, col_stride);
    }
    const auto div = static_cast<float>(w.kernel_h * w.kernel_w);
    for (std::int64_t ow = 0; ow < ow_n; ++ow) dst[ow] = acc[ow] / div;
}

// Output rows wider than this take the per-output general path (acc lives on the stack).
inline constexpr std::int64_t avg_tiling_max_out_w = 1024;

// avg_pool2d_forward for pool_lanes_take planes.
inline void avg_pool_lanes(float* out, const float* in, std::int64_t planes, const Window2d& w,
                           bool count_include_pad) {
    constexpr std::int64_t L = pool_lanes;
    parallel_for(0, pool_lanes_block_count(planes), pool_lanes_grain(w), [&](std::int64_t b0, std::int64_t b1) {
        pool_lanes_blocks(out, in, planes, w, b0, b1,
                          [&w, count_include_pad](float* o, const float* t, const PoolTaps& taps) {
                              const auto div = static_cast<float>(avg_divisor(w, taps.h0, taps.w0, count_include_pad));
                              sum_window(o, t + taps.first(w.in_w) * L, L, taps.rows(), taps.cols(), w.in_w, div);
                          });
    });
}

// avg_pool2d_backward for pool_lanes_take planes: per output, its gradients ÷ the divisor, added
// to every tap of its window, in the ref's order.
inline void avg_pool_lanes_backward(float* grad_in, const float* grad_out, std::int64_t planes, const Window2d& w,
                                    bool count_include_pad) {
    constexpr std::int64_t L = pool_lanes;
    parallel_for(0, pool_lanes_block_count(planes), pool_lanes_grain(w), [&](std::int64_t b0, std::int64_t b1) {
        pool_lanes_backward_blocks(
            grad_in, grad_out, nullptr, planes, w, b0, b1,
            [&w, count_include_pad](float* gi, const float*, const float* g, const PoolTaps& taps) {
                const auto div = static_cast<float>(avg_divisor(w, taps.h0, taps.w0, count_include_pad));
                alignas(64) float share[L];
                for (std::int64_t j = 0; j < L; ++j) share[j] = g[j] / div;
                // A plain loop, not kernels::add: GCC 12 -O2 without -march inlined add's scalar tail
                // here and warned (-Waggressive-loop-optimizations) about the 16-float array.
                for (std::int64_t ih = taps.ih_lo; ih < taps.ih_hi; ++ih)
                    for (std::int64_t iw = taps.iw_lo; iw < taps.iw_hi; ++iw) {
                        float* p = gi + (ih * w.in_w + iw) * L;
                        for (std::int64_t j = 0; j < L; ++j) p[j] += share[j];
                    }
            });
    });
}

}  // namespace detail

// out [P, oH, oW] ← in [P, H, W]; bit-identical to the ref twin, planes spread over parallel_for.
// Throws value_error when padding > kernel/2 or dilation != 1.
NANOTORCH_KERNEL_API void avg_pool2d_forward(float* out, const float* in, std::int64_t planes, const Window2d& w,
                                             bool count_include_pad)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    detail::check_pool_window(w, "avg_pool2d");
    if (detail::pool_lanes_take(w, planes)) return detail::avg_pool_lanes(out, in, planes, w, count_include_pad);
    const bool tiling = detail::is_pool_tiling(w) && w.out_w <= detail::avg_tiling_max_out_w;
    // Any other window of at most pool_span_max output columns: one output row at a time, its
    // sums side by side (each still added in row-major window order, the ref's, so the result is
    // the ref's bit for bit) and the column spans found once here rather than per output.
    const bool spans = !tiling && w.out_w <= detail::pool_span_max && w.in_w <= detail::pool_span_in_max;
    detail::PoolSpans cols;
    if (spans) detail::pool_spans(cols, w.out_w, w.in_w, w.kernel_w, w.stride_w, w.pad_w);
    parallel_for(0, planes, detail::plane_grain(w), [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const float* src = in + p * w.in_plane();
            float* dst = out + p * w.out_plane();
            if (tiling) {  // count_include_pad is moot: no window reaches padding
                alignas(64) float acc[detail::avg_tiling_max_out_w];
                for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                    detail::avg_pool_tiling_row(dst + oh * w.out_w, acc, src + oh * w.kernel_h * w.in_w, w.in_w, 1, w);
                continue;
            }
            if (spans) {
                alignas(64) float acc[detail::pool_span_max];
                for (std::int64_t oh = 0; oh < w.out_h; ++oh) {
                    const std::int64_t h0 = oh * w.stride_h - w.pad_h;
                    const std::int64_t ih_lo = std::max<std::int64_t>(h0, 0), ih_hi = std::min(h0 + w.kernel_h, w.in_h);
                    std::fill(acc, acc + w.out_w, 0.0f);
                    for (std::int64_t ih = ih_lo; ih < ih_hi; ++ih) {
                        const float* row = src + ih * w.in_w;
                        for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                            float a = acc[ow];
                            for (std::int64_t iw = cols.lo[ow]; iw < cols.hi[ow]; ++iw) a += row[iw];
                            acc[ow] = a;
                        }
                    }
                    for (std::int64_t ow = 0; ow < w.out_w; ++ow)
                        dst[oh * w.out_w + ow] =
                            acc[ow] / static_cast<float>(detail::avg_divisor(w, h0, ow * w.stride_w - w.pad_w,
                                                                              count_include_pad));
                }
                continue;
            }
            for (std::int64_t oh = 0; oh < w.out_h; ++oh) {
                const std::int64_t h0 = oh * w.stride_h - w.pad_h;
                const std::int64_t ih_lo = std::max<std::int64_t>(h0, 0);
                const std::int64_t ih_hi = std::min(h0 + w.kernel_h, w.in_h);
                for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                    const std::int64_t w0 = ow * w.stride_w - w.pad_w;
                    const std::int64_t iw_lo = std::max<std::int64_t>(w0, 0);
                    const std::int64_t iw_hi = std::min(w0 + w.kernel_w, w.in_w);
                    float sum = 0.0f;
                    for (std::int64_t ih = ih_lo; ih < ih_hi; ++ih)
                        for (std::int64_t iw = iw_lo; iw < iw_hi; ++iw) sum += src[ih * w.in_w + iw];
                    const std::int64_t div = detail::avg_divisor(w, h0, w0, count_include_pad);
                    dst[oh * w.out_w + ow] = sum / static_cast<float>(div);
                }
            }
        }
    });
}
#endif

/// Element strides of a strided pooling input: in[p·plane + ih·row + iw·col].
struct PoolStrides {
    std::int64_t plane = 0, row = 0, col = 1;
};

/// True when avg_pool2d_forward_strided handles window w: non-overlapping, unpadded windows
/// (stride == kernel, padding 0) with at most avg_tiling_max_out_w outputs per row.
inline bool avg_pool2d_strided_ok(const Window2d& w) {
    return detail::is_pool_tiling(w) && w.out_w <= detail::avg_tiling_max_out_w;
}

// out [P, oH, oW] ← a strided input (element (p, ih, iw) at in[p·st.plane + ih·st.row + iw·st.col])
// without copying it first: the canvas model pools the alpha channel of an RGBA image in place.
// Bit-identical to ref::avg_pool2d_forward on the same elements laid out contiguously; planes
// spread over parallel_for. Throws value_error unless avg_pool2d_strided_ok(w).
NANOTORCH_KERNEL_API void avg_pool2d_forward_strided(float* out, const float* in, std::int64_t planes, const PoolStrides& st,
                                                     const Window2d& w)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    detail::check_pool_window(w, "avg_pool2d");
    NANOTORCH_CHECK(avg_pool2d_strided_ok(w), value_error,
                    "avg_pool2d_forward_strided: only non-overlapping, unpadded windows (stride == kernel)");
    parallel_for(0, planes, detail::plane_grain(w), [&](std::int64_t p0, std::int64_t p1) {
        alignas(64) float acc[detail::avg_tiling_max_out_w];
        for (std::int64_t p = p0; p < p1; ++p)
            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                detail::avg_pool_tiling_row(out + p * w.out_plane() + oh * w.out_w, acc,
                                            in + p * st.plane + oh * w.kernel_h * st.row, st.row, st.col, w);
    });
}
#endif

// grad_in [P, H, W] ← grad_out [P, oH, oW]; overwrites grad_in; bit-identical to the ref twin.
NANOTORCH_KERNEL_API void avg_pool2d_backward(float* grad_in, const float* grad_out, std::int64_t planes, const Window2d& w,
                                              bool count_include_pad)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    detail::check_pool_window(w, "avg_pool2d");
    if (detail::pool_lanes_take(w, planes))
        return detail::avg_pool_lanes_backward(grad_in, grad_out, planes, w, count_include_pad);
    parallel_for(0, planes, detail::plane_grain(w), [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            float* gi = grad_in + p * w.in_plane();
            const float* go = grad_out + p * w.out_plane();
            std::fill(gi, gi + w.in_plane(), 0.0f);
            for (std::int64_t oh = 0; oh < w.out_h; ++oh) {
                const std::int64_t h0 = oh * w.stride_h - w.pad_h;
                const std::int64_t ih_lo = std::max<std::int64_t>(h0, 0);
                const std::int64_t ih_hi = std::min(h0 + w.kernel_h, w.in_h);
                for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                    const std::int64_t w0 = ow * w.stride_w - w.pad_w;
                    const std::int64_t iw_lo = std::max<std::int64_t>(w0, 0);
                    const std::int64_t iw_hi = std::min(w0 + w.kernel_w, w.in_w);
                    const std::int64_t div = detail::avg_divisor(w, h0, w0, count_include_pad);
                    const float g = go[oh * w.out_w + ow] / static_cast<float>(div);
                    for (std::int64_t ih = ih_lo; ih < ih_hi; ++ih)
                        for (std::int64_t iw = iw_lo; iw < iw_hi; ++iw) gi[ih * w.in_w + iw] += g;
                }
            }
        }
    });
}
#endif

}  // namespace nanotorch::kernels
