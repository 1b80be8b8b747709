// nanotorch/kernels/window.hpp — the sliding-window geometry that convolution and pooling
// share: Window2d (PyTorch's kernel, stride, padding and dilation over one plane), make_window
// (validates them and computes the output size), and the helpers both kernels use to find a
// window's in-bounds taps.
#pragma once

#include <algorithm>  // std::min/max
#include <cstdint>

#include <nanotorch/config.hpp>  // NANOTORCH_CHECK
#include <nanotorch/error.hpp>

namespace nanotorch::kernels {

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

}  // namespace nanotorch::kernels
