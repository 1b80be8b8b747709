// nanotorch/kernels/conv.hpp — raw-pointer kernels for 2-D convolution and pooling (NCHW).
//
// Provides the sliding-window geometry (Window2d, make_window), im2col / col2im with stride,
// padding and dilation, max_pool2d forward (value + flat argmax index per output) and backward
// (scatter through the saved indices), avg_pool2d forward/backward with count_include_pad on or
// off, conv2d forward/backward as im2col + kernels::sgemm per image, and in kernels::ref the
// per-element-bounds-checked twins plus a direct (non-im2col) conv2d forward/backward that tests
// use as the oracle. It deliberately knows nothing of Tensor or autograd (ops/conv.hpp validates
// shapes and records the graph), so the kernels can be validated and timed on raw buffers.
// groups, ceil_mode and pooling dilation are not supported. Arguments are ordered outputs,
// inputs, then sizes (llm.c style).
//
// Determinism: every kernel here writes each output element from a fixed serial order of
// additions. The pooling kernels spread whole planes, and conv2d whole images, over
// parallel_for (each written by exactly one chunk); conv2d's weight/bias gradients are per-image
// partials summed in image order. So results are bit-identical for every thread count. The optimized
// versions differ from ref:: only in how they find the in-bounds taps (ranges computed once
// instead of a test per tap); they visit the same elements in the same order, so they agree
// with ref:: exactly, not just within a tolerance.
#pragma once

#include <algorithm>  // std::min/max/fill/copy
#include <cmath>      // std::isnan (ref::max_pool2d_forward)
#include <cstdint>
#include <limits>
#include <vector>     // per-chunk im2col buffers, per-image gradient partials

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>

namespace nanotorch::kernels {

// ---- geometry ----

/// One sliding window over an in_h × in_w plane (PyTorch's conv/pool parameters). Build it with
/// make_window, which fills out_h/out_w; kernels trust those to match the buffers they are given.
struct Window2d {
    std::int64_t in_h = 0, in_w = 0;
    std::int64_t kernel_h = 1, kernel_w = 1;
    std::int64_t stride_h = 1, stride_w = 1;
    std::int64_t pad_h = 0, pad_w = 0;
    std::int64_t dilation_h = 1, dilation_w = 1;
    std::int64_t out_h = 0, out_w = 0;

    std::int64_t in_plane() const { return in_h * in_w; }
    std::int64_t out_plane() const { return out_h * out_w; }
};

/// floor((in + 2·pad − dilation·(kernel − 1) − 1) / stride) + 1, or 0 when the padded input is
/// shorter than the dilated kernel. Parameters must already be valid (see make_window).
inline std::int64_t window_out_size(std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t pad,
                                    std::int64_t dilation) {
    const std::int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
}

/// Validates the parameters and computes the output size. Throws value_error when a kernel size,
/// stride or dilation is < 1, a padding is negative, or any value is so large (> 2^31) that the
/// index arithmetic could overflow. out_h/out_w may come out 0: callers report that with context.
inline Window2d make_window(std::int64_t in_h, std::int64_t in_w, std::int64_t kernel_h, std::int64_t kernel_w,
                            std::int64_t stride_h, std::int64_t stride_w, std::int64_t pad_h, std::int64_t pad_w,
                            std::int64_t dilation_h = 1, std::int64_t dilation_w = 1) {
    constexpr std::int64_t limit = std::int64_t{1} << 31;
    NANOTORCH_CHECK(kernel_h >= 1 && kernel_w >= 1, value_error, "kernel size must be positive, got (", kernel_h,
                    ", ", kernel_w, ")");
    NANOTORCH_CHECK(stride_h >= 1 && stride_w >= 1, value_error, "stride must be positive, got (", stride_h, ", ",
                    stride_w, ")");
    NANOTORCH_CHECK(pad_h >= 0 && pad_w >= 0, value_error, "padding must be non-negative, got (", pad_h, ", ",
                    pad_w, ")");
    NANOTORCH_CHECK(dilation_h >= 1 && dilation_w >= 1, value_error, "dilation must be positive, got (",
                    dilation_h, ", ", dilation_w, ")");
    for (std::int64_t v : {in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w})
        NANOTORCH_CHECK(v >= 0 && v <= limit, value_error, "window parameter ", v, " is out of range [0, 2^31]");
    Window2d w{in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, 0, 0};
    w.out_h = window_out_size(in_h, kernel_h, stride_h, pad_h, dilation_h);
    w.out_w = window_out_size(in_w, kernel_w, stride_w, pad_w, dilation_w);
    return w;
}

namespace detail {

// [lo, hi) = the outputs o in [0, out) for which o·stride + offset lands inside [0, in).
// `offset` is tap·dilation − pad. Lets im2col/col2im drop the per-element bounds test.
inline void valid_outputs(std::int64_t offset, std::int64_t stride, std::int64_t in, std::int64_t out,
                          std::int64_t& lo, std::int64_t& hi) {
    lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    const std::int64_t top = in - 1 - offset;
    hi = top < 0 ? 0 : top / stride + 1;
    lo = std::min(lo, out);
    hi = std::max(lo, std::min(hi, out));
}

// Pooling precondition shared with PyTorch: padding at most half the kernel and no dilation.
// Together with out_h, out_w >= 1 it guarantees every window holds at least one real element,
// so max pooling always has a real argmax and count_include_pad=false never divides by zero.
inline void check_pool_window(const Window2d& w, const char* op) {
    NANOTORCH_CHECK(2 * w.pad_h <= w.kernel_h && 2 * w.pad_w <= w.kernel_w, value_error, op, ": padding (",
                    w.pad_h, ", ", w.pad_w, ") must be at most half the kernel size (", w.kernel_h, ", ",
                    w.kernel_w, ")");
    NANOTORCH_CHECK(w.dilation_h == 1 && w.dilation_w == 1, value_error, op, ": dilation is not supported");
}

// Calls fn(ih·W + iw) for every in-bounds tap of pooling output (oh, ow), in row-major window
// order, testing each tap: the ref:: pooling kernels' definition of "the window".
template <class Fn>
inline void for_each_real_tap(const Window2d& w, std::int64_t oh, std::int64_t ow, Fn&& fn) {
    for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
        for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
            const std::int64_t ih = oh * w.stride_h - w.pad_h + ki;
            const std::int64_t iw = ow * w.stride_w - w.pad_w + kj;
            if (ih >= 0 && ih < w.in_h && iw >= 0 && iw < w.in_w) fn(ih * w.in_w + iw);
        }
}

// Planes per parallel_for chunk: enough work (~32k elements) to amortise a dispatch.
inline std::int64_t plane_grain(const Window2d& w) {
    return std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(1, w.in_plane() + w.out_plane()));
}

}  // namespace detail

// ---- im2col / col2im ----

namespace ref {
// col[C·kH·kW, oH·oW] ← im[C, H, W]; row (c, ki, kj), column (oh, ow) holds
// im[c, oh·sH − pH + ki·dH, ow·sW − pW + kj·dW], or 0 where that reads padding.
inline void im2col(float* col, const float* im, std::int64_t channels, const Window2d& w) {
    for (std::int64_t c = 0; c < channels; ++c)
        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj)
                for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                    for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                        const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
                        const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
                        const bool inside = ih >= 0 && ih < w.in_h && iw >= 0 && iw < w.in_w;
                        *col++ = inside ? im[(c * w.in_h + ih) * w.in_w + iw] : 0.0f;
                    }
}

// im[C, H, W] = Σ of the col[C·kH·kW, oH·oW] entries that im2col would have copied from each
// position (the adjoint of im2col). Overwrites im. Adds in (c, ki, kj, oh, ow) order.
inline void col2im(float* im, const float* col, std::int64_t channels, const Window2d& w) {
    std::fill(im, im + channels * w.in_plane(), 0.0f);
    for (std::int64_t c = 0; c < channels; ++c)
        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj)
                for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                    for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                        const float v = *col++;
                        const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
                        const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
                        if (ih >= 0 && ih < w.in_h && iw >= 0 && iw < w.in_w) im[(c * w.in_h + ih) * w.in_w + iw] += v;
                    }
}
}  // namespace ref

// col[C·kH·kW, oH·oW] ← im[C, H, W]; same result as ref::im2col. Serial: ops call it once per
// image from inside a parallel loop over the batch.
inline void im2col(float* col, const float* im, std::int64_t channels, const Window2d& w) {
    const std::int64_t ow_n = w.out_w;
    for (std::int64_t c = 0; c < channels; ++c) {
        const float* plane = im + c * w.in_plane();
        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
            const std::int64_t off_h = ki * w.dilation_h - w.pad_h;
            std::int64_t h_lo, h_hi;
            detail::valid_outputs(off_h, w.stride_h, w.in_h, w.out_h, h_lo, h_hi);
            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                const std::int64_t off_w = kj * w.dilation_w - w.pad_w;
                std::int64_t w_lo, w_hi;
                detail::valid_outputs(off_w, w.stride_w, w.in_w, w.out_w, w_lo, w_hi);
                for (std::int64_t oh = 0; oh < w.out_h; ++oh, col += ow_n) {
                    if (oh < h_lo || oh >= h_hi) {
                        std::fill(col, col + ow_n, 0.0f);
                        continue;
                    }
                    const float* src = plane + (oh * w.stride_h + off_h) * w.in_w;
                    std::fill(col, col + w_lo, 0.0f);
                    if (w.stride_w == 1) {
                        // Guarded: with an empty range, src + w_lo + off_w may point outside the plane.
                        if (w_lo < w_hi) std::copy(src + w_lo + off_w, src + w_hi + off_w, col + w_lo);
                    } else {
                        for (std::int64_t ow = w_lo; ow < w_hi; ++ow) col[ow] = src[ow * w.stride_w + off_w];
                    }
                    std::fill(col + w_hi, col + ow_n, 0.0f);
                }
            }
        }
    }
}

// im[C, H, W] = col2im(col[C·kH·kW, oH·oW]); overwrites im; bit-identical to ref::col2im
// (same order of additions). Serial, like im2col.
inline void col2im(float* im, const float* col, std::int64_t channels, const Window2d& w) {
    std::fill(im, im + channels * w.in_plane(), 0.0f);
    const std::int64_t ow_n = w.out_w;
    for (std::int64_t c = 0; c < channels; ++c) {
        float* plane = im + c * w.in_plane();
        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
            const std::int64_t off_h = ki * w.dilation_h - w.pad_h;
            std::int64_t h_lo, h_hi;
            detail::valid_outputs(off_h, w.stride_h, w.in_h, w.out_h, h_lo, h_hi);
            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                const std::int64_t off_w = kj * w.dilation_w - w.pad_w;
                std::int64_t w_lo, w_hi;
                detail::valid_outputs(off_w, w.stride_w, w.in_w, w.out_w, w_lo, w_hi);
                for (std::int64_t oh = h_lo; oh < h_hi; ++oh) {
                    float* dst = plane + (oh * w.stride_h + off_h) * w.in_w;
                    const float* src = col + oh * ow_n;
                    for (std::int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow * w.stride_w + off_w] += src[ow];
                }
                col += w.out_h * ow_n;
            }
        }
    }
}

// ---- direct convolution (test oracle) ----

namespace ref {
// out[N, O, oH, oW] = bias[O] + Σ_{c,ki,kj} in[N, C, H, W] · weight[O, C, kH, kW] at the window
// positions, accumulated in double so it is a sharper oracle than any float32 path.
// bias may be null (no bias).
inline void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, std::int64_t batch,
                           std::int64_t channels, std::int64_t out_channels, const Window2d& w) {
    for (std::int64_t n = 0; n < batch; ++n)
        for (std::int64_t o = 0; o < out_channels; ++o)
            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                    double acc = bias ? bias[o] : 0.0;
                    for (std::int64_t c = 0; c < channels; ++c)
                        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                                const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
                                const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
                                if (ih < 0 || ih >= w.in_h || iw < 0 || iw >= w.in_w) continue;
                                acc += static_cast<double>(in[((n * channels + c) * w.in_h + ih) * w.in_w + iw]) *
                                       weight[((o * channels + c) * w.kernel_h + ki) * w.kernel_w + kj];
                            }
                    out[((n * out_channels + o) * w.out_h + oh) * w.out_w + ow] = static_cast<float>(acc);
                }
}

// Gradients of conv2d_forward given grad_out[N, O, oH, oW], each written as a gather (one sum
// per output element, in double), independent of the im2col/col2im formulation it checks:
//   grad_in[N, C, H, W], grad_weight[O, C, kH, kW], grad_bias[O]; any of them may be null.
inline void conv2d_backward(float* grad_in, float* grad_weight, float* grad_bias, const float* grad_out,
                            const float* in, const float* weight, std::int64_t batch, std::int64_t channels,
                            std::int64_t out_channels, const Window2d& w) {
    const auto go = [&](std::int64_t n, std::int64_t o, std::int64_t oh, std::int64_t ow) {
        return static_cast<double>(grad_out[((n * out_channels + o) * w.out_h + oh) * w.out_w + ow]);
    };
    if (grad_bias)
        for (std::int64_t o = 0; o < out_channels; ++o) {
            double acc = 0.0;
            for (std::int64_t n = 0; n < batch; ++n)
                for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                    for (std::int64_t ow = 0; ow < w.out_w; ++ow) acc += go(n, o, oh, ow);
            grad_bias[o] = static_cast<float>(acc);
        }
    if (grad_weight)
        for (std::int64_t o = 0; o < out_channels; ++o)
            for (std::int64_t c = 0; c < channels; ++c)
                for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                    for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                        double acc = 0.0;
                        for (std::int64_t n = 0; n < batch; ++n)
                            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                                for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                                    const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
                                    const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
                                    if (ih < 0 || ih >= w.in_h || iw < 0 || iw >= w.in_w) continue;
                                    acc += go(n, o, oh, ow) * in[((n * channels + c) * w.in_h + ih) * w.in_w + iw];
                                }
                        grad_weight[((o * channels + c) * w.kernel_h + ki) * w.kernel_w + kj] = static_cast<float>(acc);
                    }
    if (grad_in)
        for (std::int64_t n = 0; n < batch; ++n)
            for (std::int64_t c = 0; c < channels; ++c)
                for (std::int64_t ih = 0; ih < w.in_h; ++ih)
                    for (std::int64_t iw = 0; iw < w.in_w; ++iw) {
                        double acc = 0.0;
                        // Output (oh, ow) reads (ih, iw) through tap (ki, kj) iff oh·s − p + k·d = i.
                        for (std::int64_t o = 0; o < out_channels; ++o)
                            for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
                                const std::int64_t th = ih + w.pad_h - ki * w.dilation_h;
                                if (th < 0 || th % w.stride_h != 0 || th / w.stride_h >= w.out_h) continue;
                                for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                                    const std::int64_t tw = iw + w.pad_w - kj * w.dilation_w;
                                    if (tw < 0 || tw % w.stride_w != 0 || tw / w.stride_w >= w.out_w) continue;
                                    acc += go(n, o, th / w.stride_h, tw / w.stride_w) *
                                           weight[((o * channels + c) * w.kernel_h + ki) * w.kernel_w + kj];
                                }
                            }
                        grad_in[((n * channels + c) * w.in_h + ih) * w.in_w + iw] = static_cast<float>(acc);
                    }
}
}  // namespace ref

// ---- conv2d via im2col + sgemm ----

namespace detail {
// A 1×1 kernel with unit stride/dilation and no padding has im2col(x) == x: skip the copy.
inline bool is_pointwise(const Window2d& w) {
    return w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 && w.pad_h == 0 &&
           w.pad_w == 0 && w.dilation_h == 1 && w.dilation_w == 1;
}
// Upper bound (in floats) on the per-image weight/bias gradient partials kept at once.
inline constexpr std::int64_t conv_partial_budget = std::int64_t{1} << 22;
}  // namespace detail

// out[N, O, oH, oW] = conv(in[N, C, H, W], weight[O, C, kH, kW]) + bias[O]; bias may be null.
// Per image: col = im2col(in[n]) (a buffer of C·kH·kW × oH·oW floats per parallel chunk), then
// out[n] = weight[O, C·kH·kW] @ col by sgemm. Images are spread over parallel_for; each chunk
// writes only its own images (sgemm inside a chunk runs serially; with one chunk it splits rows).
inline void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, std::int64_t batch,
                           std::int64_t channels, std::int64_t out_channels, const Window2d& w) {
    const std::int64_t ckk = channels * w.kernel_h * w.kernel_w;
    const std::int64_t len = w.out_plane();
    const bool pointwise = detail::is_pointwise(w);
    parallel_for(0, batch, 1, [&](std::int64_t n0, std::int64_t n1) {
        std::vector<float> col(pointwise ? 0 : static_cast<std::size_t>(ckk * len));
        for (std::int64_t n = n0; n < n1; ++n) {
            const float* x = in + n * channels * w.in_plane();
            float* y = out + n * out_channels * len;
            if (!pointwise) im2col(col.data(), x, channels, w);
            sgemm(false, false, out_channels, len, ckk, 1.0f, weight, ckk, pointwise ? x : col.data(), len, 0.0f, y,
                  len);
            if (bias)
                for (std::int64_t o = 0; o < out_channels; ++o) add_scalar(y + o * len, y + o * len, bias[o], len);
        }
    });
}

// Gradients of conv2d_forward given grad_out[N, O, oH, oW]; each output is overwritten and may
// be null when not wanted (`in` is read only for grad_weight, `weight` only for grad_in):
//   grad_in[n]     = col2im(weightᵀ @ grad_out[n])                    (sgemm + col2im per image)
//   grad_weight    = Σ_n grad_out[n] @ im2col(in[n])ᵀ                  (dot products per image)
//   grad_bias[o]   = Σ_n Σ_{oh,ow} grad_out[n, o, oh, ow]
// The sums over n are made deterministic by computing each image's contribution into its own
// partial buffer (in parallel, blocks of images bounded by detail::conv_partial_budget) and then
// adding the partials in image order; the block size never changes the arithmetic.
inline void conv2d_backward(float* grad_in, float* grad_weight, float* grad_bias, const float* grad_out,
                            const float* in, const float* weight, std::int64_t batch, std::int64_t channels,
                            std::int64_t out_channels, const Window2d& w) {
    const std::int64_t ckk = channels * w.kernel_h * w.kernel_w;
    const std::int64_t len = w.out_plane();
    const std::int64_t wnum = out_channels * ckk;
    const bool pointwise = detail::is_pointwise(w);
    const bool reduce = grad_weight != nullptr || grad_bias != nullptr;
    if (grad_weight) std::fill(grad_weight, grad_weight + wnum, 0.0f);
    if (grad_bias) std::fill(grad_bias, grad_bias + out_channels, 0.0f);
    const std::int64_t stride = wnum + out_channels;  // one image's partial: [weight grads | bias grads]
    const std::int64_t block =
        reduce ? std::max<std::int64_t>(1, std::min(batch, detail::conv_partial_budget / std::max<std::int64_t>(1, stride)))
               : std::max<std::int64_t>(1, batch);
    std::vector<float> partial(reduce ? static_cast<std::size_t>(std::min(block, batch) * stride) : 0);

    for (std::int64_t b0 = 0; b0 < batch; b0 += block) {
        const std::int64_t b1 = std::min(batch, b0 + block);
        parallel_for(b0, b1, 1, [&](std::int64_t n0, std::int64_t n1) {
            std::vector<float> col(pointwise ? 0 : static_cast<std::size_t>(ckk * len));
            for (std::int64_t n = n0; n < n1; ++n) {
                const float* go = grad_out + n * out_channels * len;
                float* part = reduce ? partial.data() + (n - b0) * stride : nullptr;
                if (grad_weight) {
                    const float* x = in + n * channels * w.in_plane();
                    if (!pointwise) im2col(col.data(), x, channels, w);
                    const float* cx = pointwise ? x : col.data();
                    for (std::int64_t o = 0; o < out_channels; ++o)
                        for (std::int64_t r = 0; r < ckk; ++r) part[o * ckk + r] = dot(go + o * len, cx + r * len, len);
                }
                if (grad_bias)
                    for (std::int64_t o = 0; o < out_channels; ++o) part[wnum + o] = sum(go + o * len, len);
                if (grad_in) {
                    float* gi = grad_in + n * channels * w.in_plane();
                    // col is free again: grad_col[C·kH·kW, oH·oW] = weightᵀ @ grad_out[n].
                    sgemm(true, false, ckk, len, out_channels, 1.0f, weight, ckk, go, len, 0.0f,
                          pointwise ? gi : col.data(), len);
                    if (!pointwise) col2im(gi, col.data(), channels, w);
                }
            }
        });
        if (!reduce) continue;
        // Add this block's partials in image order; chunks over elements are disjoint and a float
        // add is exact-rounded the same in the SIMD body and the scalar tail.
        parallel_for(0, stride, 4096, [&](std::int64_t e0, std::int64_t e1) {
            for (std::int64_t n = b0; n < b1; ++n) {
                const float* part = partial.data() + (n - b0) * stride;
                const std::int64_t w1 = std::min(e1, wnum);
                if (grad_weight && e0 < w1) add(grad_weight + e0, grad_weight + e0, part + e0, w1 - e0);
                const std::int64_t b_lo = std::max(e0, wnum);
                if (grad_bias && b_lo < e1) add(grad_bias + (b_lo - wnum), grad_bias + (b_lo - wnum), part + b_lo, e1 - b_lo);
            }
        });
    }
}

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

// out, indices [P, oH, oW] ← in [P, H, W]; indices may be null. Same results as the ref twin;
// planes are spread over parallel_for. Throws value_error when padding > kernel/2 or dilation != 1.
inline void max_pool2d_forward(float* out, std::int64_t* indices, const float* in, std::int64_t planes,
                               const Window2d& w) {
    detail::check_pool_window(w, "max_pool2d");
    parallel_for(0, planes, detail::plane_grain(w), [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const float* src = in + p * w.in_plane();
            float* dst = out + p * w.out_plane();
            std::int64_t* idx = indices ? indices + p * w.out_plane() : nullptr;
            for (std::int64_t oh = 0; oh < w.out_h; ++oh) {
                const std::int64_t h0 = oh * w.stride_h - w.pad_h;
                const std::int64_t ih_lo = std::max<std::int64_t>(h0, 0);
                const std::int64_t ih_hi = std::min(h0 + w.kernel_h, w.in_h);
                for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                    const std::int64_t w0 = ow * w.stride_w - w.pad_w;
                    const std::int64_t iw_lo = std::max<std::int64_t>(w0, 0);
                    const std::int64_t iw_hi = std::min(w0 + w.kernel_w, w.in_w);
                    // Two branch-free passes (a "new max?" branch is a coin flip on real data and
                    // was measured ~2.5x slower on 2×2 pools): the max and a NaN flag, then the first element
                    // equal to it (or the first NaN), picked with integer masks. The window is never
                    // empty (check_pool_window), so best_i always names a real element.
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
                    best = src[best_i];
                    dst[oh * w.out_w + ow] = best;
                    if (idx) idx[oh * w.out_w + ow] = best_i;
                }
            }
        }
    });
}

// grad_in [P, H, W] = scatter-add of grad_out [P, oH, oW] through indices [P, oH, oW] (from
// max_pool2d_forward). Overwrites grad_in. One plane per task and serial within a plane, so
// overlapping windows (stride < kernel) add in output order whatever the thread count.
inline void max_pool2d_backward(float* grad_in, const float* grad_out, const std::int64_t* indices,
                                std::int64_t planes, const Window2d& w) {
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

// ---- avg_pool2d ----
// The divisor is kH·kW when count_include_pad (padding counts as zeros; without ceil_mode a
// window never reaches past the padding), else the number of real elements in the window
// (>= 1 by check_pool_window).

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
                const std::int64_t div = count_include_pad ? w.kernel_h * w.kernel_w : count;
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
                const std::int64_t div = count_include_pad ? w.kernel_h * w.kernel_w : count;
                const float g = grad_out[(p * w.out_h + oh) * w.out_w + ow] / static_cast<float>(div);
                detail::for_each_real_tap(w, oh, ow, [&](std::int64_t i) { grad_in[p * w.in_plane() + i] += g; });
            }
}
}  // namespace ref

// out [P, oH, oW] ← in [P, H, W]; bit-identical to the ref twin, planes spread over parallel_for.
// Throws value_error when padding > kernel/2 or dilation != 1.
inline void avg_pool2d_forward(float* out, const float* in, std::int64_t planes, const Window2d& w,
                               bool count_include_pad) {
    detail::check_pool_window(w, "avg_pool2d");
    parallel_for(0, planes, detail::plane_grain(w), [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const float* src = in + p * w.in_plane();
            float* dst = out + p * w.out_plane();
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
                    const std::int64_t div =
                        count_include_pad ? w.kernel_h * w.kernel_w : (ih_hi - ih_lo) * (iw_hi - iw_lo);
                    dst[oh * w.out_w + ow] = sum / static_cast<float>(div);
                }
            }
        }
    });
}

// grad_in [P, H, W] ← grad_out [P, oH, oW]; overwrites grad_in; bit-identical to the ref twin.
inline void avg_pool2d_backward(float* grad_in, const float* grad_out, std::int64_t planes, const Window2d& w,
                                bool count_include_pad) {
    detail::check_pool_window(w, "avg_pool2d");
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
                    const std::int64_t div =
                        count_include_pad ? w.kernel_h * w.kernel_w : (ih_hi - ih_lo) * (iw_hi - iw_lo);
                    const float g = go[oh * w.out_w + ow] / static_cast<float>(div);
                    for (std::int64_t ih = ih_lo; ih < ih_hi; ++ih)
                        for (std::int64_t iw = iw_lo; iw < iw_hi; ++iw) gi[ih * w.in_w + iw] += g;
                }
            }
        }
    });
}

}  // namespace nanotorch::kernels
