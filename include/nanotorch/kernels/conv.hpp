// nanotorch/kernels/conv.hpp — raw-pointer kernels for 2-D convolution (NCHW) and the shared
// sliding-window geometry.
//
// Provides the window geometry (Window2d, make_window, the pooling precondition used by
// kernels/pool.hpp), im2col / col2im with stride, padding, dilation and a row pitch (so several
// images' columns can sit side by side), conv2d forward/backward as im2col + one kernels::sgemm
// per chunk of images (the forward reads the images in place where that measured faster: the
// direct path, detail::conv_direct_product, or B panels packed from the images,
// detail::ConvColumns; both the same result bit for bit), and in kernels::ref the
// per-element-bounds-checked im2col/col2im twins plus a direct (non-im2col) conv2d
// forward/backward that tests use as the oracle. It deliberately
// knows nothing of Tensor or autograd (ops/conv.hpp validates shapes and records the graph), so
// the kernels can be validated and timed on raw buffers. Grouped convolution (weight
// [O, C/groups, kH, kW]) runs the same im2col + sgemm per group, reading each group's channels and
// weight rows in place; the depthwise and 1×1 paths chosen by shape are in kernels/conv_paths.hpp.
// Arguments are ordered outputs, inputs, then sizes (llm.c style). Pooling is in kernels/pool.hpp.
//
// Why chunks: one GEMM per image gives a layer with an 8×8 output an N of only 64 columns, too
// narrow for a GEMM to run well; laying the im2col columns of several images side by side
// (detail::conv_chunk) gives N ≈ 2048 while the columns still fit in L2.
//
// Determinism: every kernel here writes each output element from a fixed serial order of
// additions. conv2d spreads whole chunks of images over parallel_for (each output written by
// exactly one chunk); the chunking depends on the shapes only, and the weight/bias gradients are
// per-chunk partials summed in chunk order. So results are bit-identical for every thread count.
// The optimized im2col/col2im differ from ref:: only in how they find the in-bounds taps (ranges
// computed once instead of a test per tap); they visit the same elements in the same order, so
// they agree with ref:: exactly, not just within a tolerance.
#pragma once

#include <algorithm>  // std::min/max/fill/copy
#include <cstdint>
#include <memory>     // the offset tables of the implicit im2col

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/workspace.hpp>

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

namespace detail {
// Stride 1, dilation 1, no padding: every tap of every output is inside the input.
inline bool is_dense_window(const Window2d& w) {
    return w.stride_h == 1 && w.stride_w == 1 && w.dilation_h == 1 && w.dilation_w == 1 && w.pad_h == 0 &&
           w.pad_w == 0;
}

// dst[0, n) = src[0, n). Not std::copy: im2col copies rows of only oW floats (e.g. 24 and 8:
// 5×5 kernels on 28×28 and 12×12), where a call to memmove cost more than the copy (it was 4.5%
// of an epoch natively, and a sixth of a training step in WebAssembly); kernels::copy_floats
// moves whole vectors and never becomes a memcpy call.
inline void copy_row(float* dst, const float* src, std::int64_t n) { copy_floats(dst, src, n); }

// dst[r·N + j] = src[r·src_stride + j] for r < rows, j < N: `rows` rows of a compile-time width,
// packed. im2col's dense path uses it for narrow widths (24 and 8), where the per-row
// loop control of copy_row cost about as much as the copy itself.
template <int N>
inline void copy_rows_fixed(float* dst, const float* src, std::int64_t rows, std::int64_t src_stride) {
    for (std::int64_t r = 0; r < rows; ++r, dst += N, src += src_stride) copy_floats(dst, src, N);
}

// copy_rows_fixed for a width known only at run time, at least one vector: every row but the
// last is copied as whole vectors that run up to simd_width − 1 floats past its end, into the
// next row of dst (written next, so the overrun is overwritten) and from the next row of src
// (which exists: the caller guarantees rows rows of src_stride >= simd_width floats); the last
// row is copied exactly. Rows of 28 or 14 floats take whole vectors instead of a scalar tail each.
inline void copy_rows_overlapping(float* dst, const float* src, std::int64_t rows, std::int64_t n,
                                  std::int64_t src_stride) {
    const std::int64_t whole = (n + simd_width - 1) / simd_width * simd_width;
    std::int64_t r = 0;
    for (; r + 1 < rows; ++r, dst += n, src += src_stride)
        for (std::int64_t i = 0; i < whole; i += simd_width) copy_floats(dst + i, src + i, simd_width);
    if (rows > 0) copy_floats(dst, src, n);
}

// Padded stride-1 windows: im2col and col2im first copy the image into zero-padded planes (or
// accumulate into them and crop), then run the same window with no padding, which is the dense
// path: every row an unguarded copy. On 3x3 pad-1 layers that measured 1.6x faster than testing
// each row for the border. Worth it when the padded planes are no larger than the columns
// written from them (always, unless the padding dwarfs the kernel). A strided window gains
// nothing (its rows are gathers either way; measured 15 % slower with the extra copy).
inline bool pad_first(const Window2d& w) {
    if (w.pad_h == 0 && w.pad_w == 0) return false;
    if (w.stride_h != 1 || w.stride_w != 1 || w.dilation_h != 1 || w.dilation_w != 1) return false;
    const std::int64_t padded = (w.in_h + 2 * w.pad_h) * (w.in_w + 2 * w.pad_w);
    return padded <= w.kernel_h * w.kernel_w * w.out_plane();
}
// w over the padded planes: the same outputs and taps, no padding.
inline Window2d without_padding(const Window2d& w) {
    Window2d u = w;
    u.in_h += 2 * w.pad_h;
    u.in_w += 2 * w.pad_w;
    u.pad_h = u.pad_w = 0;
    return u;
}
// dst[C, H + 2·pH, W + 2·pW] = src[C, H, W] inside a zero border.
inline void pad_planes(float* dst, const float* src, std::int64_t channels, const Window2d& w) {
    const std::int64_t pw = w.in_w + 2 * w.pad_w, top = w.pad_h * pw;
    for (std::int64_t c = 0; c < channels; ++c) {
        zero_floats(dst, top);
        dst += top;
        for (std::int64_t r = 0; r < w.in_h; ++r, dst += pw, src += w.in_w) {
            for (std::int64_t j = 0; j < w.pad_w; ++j) dst[j] = dst[w.pad_w + w.in_w + j] = 0.0f;
            copy_row(dst + w.pad_w, src, w.in_w);
        }
        zero_floats(dst, top);
        dst += top;
    }
}
// dst[C, H, W] = the interior of src[C, H + 2·pH, W + 2·pW].
inline void crop_planes(float* dst, const float* src, std::int64_t channels, const Window2d& w) {
    const std::int64_t pw = w.in_w + 2 * w.pad_w;
    for (std::int64_t c = 0; c < channels; ++c) {
        src += w.pad_h * pw + w.pad_w;
        for (std::int64_t r = 0; r < w.in_h; ++r, dst += w.in_w, src += pw) copy_row(dst, src, w.in_w);
        src += w.pad_h * pw - w.pad_w;
    }
}

// im2col's body, for any window (padding tested row by row).
inline void im2col_rows(float* col, const float* im, std::int64_t channels, const Window2d& w, std::int64_t ld) {
    const std::int64_t ow_n = w.out_w;
    if (detail::is_dense_window(w)) {  // every tap is in bounds: rows are plain copies
        for (std::int64_t c = 0; c < channels; ++c)
            for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                for (std::int64_t kj = 0; kj < w.kernel_w; ++kj, col += ld) {
                    const float* src = im + (c * w.in_h + ki) * w.in_w + kj;
                    switch (ow_n) {  // the common narrow widths get fully unrolled copies
                        case 8: detail::copy_rows_fixed<8>(col, src, w.out_h, w.in_w); break;
                        case 16: detail::copy_rows_fixed<16>(col, src, w.out_h, w.in_w); break;
                        case 24: detail::copy_rows_fixed<24>(col, src, w.out_h, w.in_w); break;
                        default:
                            if (ow_n >= simd_width && w.in_w >= simd_width) {
                                detail::copy_rows_overlapping(col, src, w.out_h, ow_n, w.in_w);
                                break;
                            }
                            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                                detail::copy_row(col + oh * ow_n, src + oh * w.in_w, ow_n);
                    }
                }
        return;
    }
    for (std::int64_t c = 0; c < channels; ++c) {
        const float* plane = im + c * w.in_plane();
        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
            const std::int64_t off_h = ki * w.dilation_h - w.pad_h;
            std::int64_t h_lo, h_hi;
            detail::valid_outputs(off_h, w.stride_h, w.in_h, w.out_h, h_lo, h_hi);
            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj, col += ld) {
                const std::int64_t off_w = kj * w.dilation_w - w.pad_w;
                std::int64_t w_lo, w_hi;
                detail::valid_outputs(off_w, w.stride_w, w.in_w, w.out_w, w_lo, w_hi);
                float* row = col;
                for (std::int64_t oh = 0; oh < w.out_h; ++oh, row += ow_n) {
                    if (oh < h_lo || oh >= h_hi) {
                        zero_floats(row, ow_n);
                        continue;
                    }
                    const float* src = plane + (oh * w.stride_h + off_h) * w.in_w;
                    zero_floats(row, w_lo);
                    if (w.stride_w == 1) {
                        // Guarded: with an empty range, src + w_lo + off_w may point outside the plane.
                        if (w_lo < w_hi) detail::copy_row(row + w_lo, src + w_lo + off_w, w_hi - w_lo);
                    } else if (w.stride_w == 2) {  // a vector gather (a stride-2 1x1 shortcut's whole im2col)
                        if (w_lo < w_hi) take_even(row + w_lo, src + 2 * w_lo + off_w, w_hi - w_lo);
                    } else {
                        for (std::int64_t ow = w_lo; ow < w_hi; ++ow) row[ow] = src[ow * w.stride_w + off_w];
                    }
                    zero_floats(row + w_hi, ow_n - w_hi);
                }
            }
        }
    }
}
}  // namespace detail

// col[C·kH·kW, ld] ← im[C, H, W]: row r of the result starts at col + r·ld and holds the oH·oW
// values of ref::im2col's row r (ld >= oH·oW; conv2d uses ld > oH·oW to lay the columns of
// several images side by side). Same values as ref::im2col. Serial: conv2d calls it per image
// from inside a parallel loop over chunks of images. Padded stride-1 windows go through
// zero-padded planes (detail::pad_first).
inline void im2col(float* col, const float* im, std::int64_t channels, const Window2d& w, std::int64_t ld) {
    if (detail::pad_first(w)) {
        const Window2d u = detail::without_padding(w);
        float* padded = detail::scratch(detail::Scratch::conv_padded, channels * u.in_plane());
        detail::pad_planes(padded, im, channels, w);
        detail::im2col_rows(col, padded, channels, u, ld);
    } else {
        detail::im2col_rows(col, im, channels, w, ld);
    }
}
/// im2col with the rows packed back to back (ld = oH·oW), exactly ref::im2col's layout.
inline void im2col(float* col, const float* im, std::int64_t channels, const Window2d& w) {
    im2col(col, im, channels, w, w.out_plane());
}

namespace detail {
// col2im's body, for any window (padding tested row by row).
inline void col2im_rows(float* im, const float* col, std::int64_t channels, const Window2d& w, std::int64_t ld) {
    std::fill(im, im + channels * w.in_plane(), 0.0f);
    const std::int64_t ow_n = w.out_w;
    if (detail::is_dense_window(w)) {  // every tap is in bounds: rows are plain vector adds
        for (std::int64_t c = 0; c < channels; ++c)
            for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                for (std::int64_t kj = 0; kj < w.kernel_w; ++kj, col += ld) {
                    float* dst = im + (c * w.in_h + ki) * w.in_w + kj;
                    // kernels::add rather than a plain loop: clang left that loop scalar for
                    // SIMD128 (rows of 8 floats, aliasing unknown). Same additions, same order.
                    for (std::int64_t oh = 0; oh < w.out_h; ++oh) {
                        float* d = dst + oh * w.in_w;
                        add(d, d, col + oh * ow_n, ow_n);
                    }
                }
        return;
    }
    for (std::int64_t c = 0; c < channels; ++c) {
        float* plane = im + c * w.in_plane();
        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
            const std::int64_t off_h = ki * w.dilation_h - w.pad_h;
            std::int64_t h_lo, h_hi;
            detail::valid_outputs(off_h, w.stride_h, w.in_h, w.out_h, h_lo, h_hi);
            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj, col += ld) {
                const std::int64_t off_w = kj * w.dilation_w - w.pad_w;
                std::int64_t w_lo, w_hi;
                detail::valid_outputs(off_w, w.stride_w, w.in_w, w.out_w, w_lo, w_hi);
                for (std::int64_t oh = h_lo; oh < h_hi; ++oh) {
                    float* dst = plane + (oh * w.stride_h + off_h) * w.in_w;
                    const float* src = col + oh * ow_n;
                    if (w.stride_w == 1) {  // contiguous: a loop the compiler vectorises
                        for (std::int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow + off_w] += src[ow];
                    } else {
                        for (std::int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow * w.stride_w + off_w] += src[ow];
                    }
                }
            }
        }
    }
}
}  // namespace detail

// im[C, H, W] = col2im(col[C·kH·kW, ld]) (row r at col + r·ld, as im2col writes it); overwrites
// im; bit-identical to ref::col2im (same order of additions). Serial, like im2col.
inline void col2im(float* im, const float* col, std::int64_t channels, const Window2d& w, std::int64_t ld) {
    if (detail::pad_first(w)) {  // the border cells' sums are computed and dropped
        const Window2d u = detail::without_padding(w);
        float* padded = detail::scratch(detail::Scratch::conv_padded, channels * u.in_plane());
        detail::col2im_rows(padded, col, channels, u, ld);
        detail::crop_planes(im, padded, channels, w);
    } else {
        detail::col2im_rows(im, col, channels, w, ld);
    }
}
/// col2im reading ref::col2im's packed layout (ld = oH·oW).
inline void col2im(float* im, const float* col, std::int64_t channels, const Window2d& w) {
    col2im(im, col, channels, w, w.out_plane());
}

// ---- direct convolution (test oracle) ----

namespace ref {
// out[N, O, oH, oW] = bias[O] + Σ_{c,ki,kj} in[N, C, H, W] · weight[O, C/groups, kH, kW] at the
// window positions, c running over the input channels of o's group (channels and out_channels
// are multiples of groups), accumulated in double so it is a sharper oracle than any float32
// path. bias may be null (no bias).
inline void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, std::int64_t batch,
                           std::int64_t channels, std::int64_t out_channels, const Window2d& w,
                           std::int64_t groups = 1) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
    for (std::int64_t n = 0; n < batch; ++n)
        for (std::int64_t o = 0; o < out_channels; ++o)
            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                    double acc = bias ? bias[o] : 0.0;
                    for (std::int64_t c = 0; c < cg; ++c)
                        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                                const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
                                const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
                                if (ih < 0 || ih >= w.in_h || iw < 0 || iw >= w.in_w) continue;
                                const std::int64_t ic = o / og * cg + c;
                                acc += static_cast<double>(in[((n * channels + ic) * w.in_h + ih) * w.in_w + iw]) *
                                       weight[((o * cg + c) * w.kernel_h + ki) * w.kernel_w + kj];
                            }
                    out[((n * out_channels + o) * w.out_h + oh) * w.out_w + ow] = static_cast<float>(acc);
                }
}

// Gradients of conv2d_forward given grad_out[N, O, oH, oW], each written as a gather (one sum
// per output element, in double), independent of the im2col/col2im formulation it checks:
//   grad_in[N, C, H, W], grad_weight[O, C/groups, kH, kW], grad_bias[O]; any of them may be null.
inline void conv2d_backward(float* grad_in, float* grad_weight, float* grad_bias, const float* grad_out,
                            const float* in, const float* weight, std::int64_t batch, std::int64_t channels,
                            std::int64_t out_channels, const Window2d& w, std::int64_t groups = 1) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
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
            for (std::int64_t c = 0; c < cg; ++c)
                for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                    for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                        double acc = 0.0;
                        for (std::int64_t n = 0; n < batch; ++n)
                            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                                for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                                    const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
                                    const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
                                    if (ih < 0 || ih >= w.in_h || iw < 0 || iw >= w.in_w) continue;
                                    const std::int64_t ic = o / og * cg + c;
                                    acc += go(n, o, oh, ow) * in[((n * channels + ic) * w.in_h + ih) * w.in_w + iw];
                                }
                        grad_weight[((o * cg + c) * w.kernel_h + ki) * w.kernel_w + kj] = static_cast<float>(acc);
                    }
    if (grad_in)
        for (std::int64_t n = 0; n < batch; ++n)
            for (std::int64_t c = 0; c < channels; ++c)
                for (std::int64_t ih = 0; ih < w.in_h; ++ih)
                    for (std::int64_t iw = 0; iw < w.in_w; ++iw) {
                        double acc = 0.0;
                        // Output (oh, ow) reads (ih, iw) through tap (ki, kj) iff oh·s − p + k·d = i.
                        for (std::int64_t o = c / cg * og; o < (c / cg + 1) * og; ++o)
                            for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
                                const std::int64_t th = ih + w.pad_h - ki * w.dilation_h;
                                if (th < 0 || th % w.stride_h != 0 || th / w.stride_h >= w.out_h) continue;
                                for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                                    const std::int64_t tw = iw + w.pad_w - kj * w.dilation_w;
                                    if (tw < 0 || tw % w.stride_w != 0 || tw / w.stride_w >= w.out_w) continue;
                                    acc += go(n, o, th / w.stride_h, tw / w.stride_w) *
                                           weight[((o * cg + c % cg) * w.kernel_h + ki) * w.kernel_w + kj];
                                }
                            }
                        grad_in[((n * channels + c) * w.in_h + ih) * w.in_w + iw] = static_cast<float>(acc);
                    }
}
}  // namespace ref

// ---- what inference fuses into a convolution's output ----

/// Per-channel work applied to each output plane right after the convolution writes it, while it
/// is in cache: plane (n, o) ← relu?(plane · scale[o] + shift[o] + residual plane (n, o))
/// (scale_shift when scale is non-null, the residual's add when residual is non-null, then
/// relu_forward when relu is set). All are elementwise kernels run on whole planes, as
/// batch_norm_forward (eval), add and relu run them on the separate output (add and relu are
/// exact per element, so how a pass splits the tensor does not matter), so the result is theirs
/// bit for bit; the ONNX runtime fuses Conv → BatchNormalization → Add → Relu with it.
struct ConvEpilogue {
    const float* scale = nullptr;  // [O], with shift; null: no affine map
    const float* shift = nullptr;
    const float* residual = nullptr;  // [N, O, oH, oW] like the output; null: nothing added
    bool residual_first = false;      // residual + y rather than y + residual (the graph's operand order)
    bool relu = false;
    bool active() const { return scale != nullptr || residual != nullptr || relu; }
    /// Output plane `p` (= n·O + o) of channel o, `len` floats.
    void apply(float* plane, std::int64_t p, std::int64_t o, std::int64_t len) const {
        if (residual)
            affine_residual(plane, plane, residual + p * len, scale != nullptr, scale ? scale[o] : 1.0f,
                            scale ? shift[o] : 0.0f, residual_first, relu, len);
        else if (scale && relu) scale_shift_relu(plane, plane, scale[o], shift[o], len);  // one pass, same values
        else if (scale) scale_shift(plane, plane, scale[o], shift[o], len);
        else if (relu) relu_forward(plane, plane, len);
    }
};

namespace detail {
// The epilogue over every plane of out[N, O, len], planes spread over the pool (for the paths
// that do not apply it as they write).
inline void apply_conv_epilogue(float* out, std::int64_t batch, std::int64_t out_channels, std::int64_t len,
                                const ConvEpilogue& epi) {
    if (!epi.active()) return;
    parallel_for(0, batch * out_channels, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, len)),
                 [&](std::int64_t p0, std::int64_t p1) {
                     for (std::int64_t p = p0; p < p1; ++p) epi.apply(out + p * len, p, p % out_channels, len);
                 });
}
}  // namespace detail

// ---- conv2d via im2col + sgemm, a chunk of images per GEMM ----

namespace detail {
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
}  // namespace detail

// ---- implicit im2col: GEMM panels packed straight from the images ----

namespace detail {

// The im2col matrix of a chunk of images, one group, read where it lies instead of copied:
// element (k, j), k = (c, ki, kj) and j = (image, oh, ow), is planes[row_off[k] + col_off[j]],
// the planes being the chunk's images (zero-padded first when the window pads). gemm_driver
// packs its B panels from here through the pack_b_block overload below, which writes exactly
// the values the StridedMatrix packer would read from a materialised im2col, so
// the product is sgemm's on that matrix bit for bit, without writing and re-reading
// C·kH·kW·oH·oW floats per image (for a 64-channel 32×32 layer, 2.4 MB per image: far past L2).
// It is only ever gemm_driver's B: the Cᵀ = colᵀ·Wᵀ formulation packs colᵀ in narrow panels,
// where finding the runs cost more than the copy saved.
struct ConvColumns {
    const float* planes;
    const std::int64_t* row_off;  // per k
    const std::int64_t* col_off;  // per j
};

// A run of columns whose elements are contiguous in the planes (one output row of a stride-1
// window, cut where a row or image ends): dst[t .. t + len) = src[off .. off + len).
struct ColumnRun {
    std::int64_t t, len, off;
};
inline int column_runs(ColumnRun* runs, const std::int64_t* col_off, std::int64_t n) {
    int count = 0;
    for (std::int64_t t = 0; t < n;) {
        std::int64_t e = t + 1;
        while (e < n && col_off[e] == col_off[e - 1] + 1) ++e;
        runs[count++] = {t, e - t, col_off[t]};
        t = e;
    }
    return count;
}
inline void copy_runs(float* dst, const float* src, const ColumnRun* runs, int count) {
    for (int r = 0; r < count; ++r) copy_floats(dst + runs[r].t, src + runs[r].off, runs[r].len);
}

// pack_b_block's layout (kernels/gemm.hpp) for B = col.
inline void pack_b_block(float* dst, const ConvColumns& B, std::int64_t k0, std::int64_t kc, std::int64_t j0,
                         std::int64_t nc) {
    ColumnRun runs[gemm_nr];
    for (std::int64_t jp = 0; jp < nc; jp += gemm_nr, dst += kc * gemm_nr) {
        const std::int64_t n = std::min(gemm_nr, nc - jp);
        if (n < gemm_nr) std::fill(dst, dst + kc * gemm_nr, 0.0f);
        const int count = column_runs(runs, B.col_off + j0 + jp, n);
        for (std::int64_t k = 0; k < kc; ++k) copy_runs(dst + k * gemm_nr, B.planes + B.row_off[k0 + k], runs, count);
    }
}

// Where packing from the images beats materialising im2col (measured on the conv shapes of
// bench_kernels and of the VGG, ResNet8 and seed nets, 1 thread): stride-1 columns whose output
// rows are whole panels (oW a multiple of gemm_nr), so every packed panel row is one vector copy
// from the planes, as from a materialised im2col; and a K of at least 64, so that the K slice a
// panel's runs are found for is long enough to pay for finding them. Panels that straddle rows
// (oW = 8, 24 or 28 with 16-column panels) are copied in two runs, and that measured 5-15 %
// slower than im2col's dense copies followed by the plain pack; a strided window would gather
// them one element at a time (2-3x slower).
inline bool implicit_im2col_pays(std::int64_t ckk, const Window2d& w) {
    return w.stride_w == 1 && w.out_w % gemm_nr == 0 && ckk >= 64;
}

// ---- direct convolution: B read from the images in place ----
//
// conv_direct_product computes a stride-1 window's product without im2col and without packing
// B: the micro-kernel reads each row of B straight from the zero-padded planes
// (sgemm_offsets_micro_kernel). That needs every panel row to be gemm_nr consecutive floats of
// the planes, so the product runs over "pitched" columns: per image, every column
// jj = oh·pitch + ow (pitch = the padded row length) from the first output to the last,
// (oH − 1)·pitch + oW of them, rounded up to whole panels. Column jj reads the planes at
// row_off[k] + jj; the columns with ow ≥ oW read the next row's left edge (in bounds) and are
// dropped when the result is copied out. The kept columns are the im2col columns, with the same K
// slices and the same order of multiply-adds as sgemm's blocked path, so the result is the same
// bit for bit. The dropped columns are the price; packing and im2col are what it saves, and those
// weigh most where few output channels share each packed column.

// Product columns per image on the direct path (its last panel is a partial one).
inline std::int64_t pitched_columns(const Window2d& w) {
    const std::int64_t pitch = (w.in_w + 2 * w.pad_w + w.stride_w - 1) / w.stride_w;  // phase_planes' rows
    return (w.out_h - 1) * pitch + w.out_w;
}

// Strided windows on the direct path: each channel's zero-padded plane split into
// stride_h·stride_w phase planes of ceil((H + 2·pad_h) / stride_h) rows and
// ceil((W + 2·pad_w) / stride_w) columns, phase (a, b) holding the padded pixels (i·stride_h + a,
// j·stride_w + b). Tap (ki, kj) of output (oh, ow) is then pixel (oh + ki·dh / sh, ow + kj·dw / sw)
// of phase (ki·dh mod sh, kj·dw mod sw): a unit-stride read, so a strided window's columns are
// pitched columns of the phase planes. For stride 1 this is pad_planes' layout.
// Each phase row is zeros, a strided run of one input row, zeros: the run's bounds are found
// once per column phase rather than tested per element (that per-element test was 7 % of a
// ResNet8 inference).
inline constexpr std::int64_t phase_pair_max_cols = 512;  // stride-2 columns: a padded row on the stack

inline void phase_planes(float* dst, const float* src, std::int64_t channels, const Window2d& w) {
    const std::int64_t sh = w.stride_h, sw = w.stride_w;
    const std::int64_t rows = (w.in_h + 2 * w.pad_h + sh - 1) / sh, cols = (w.in_w + 2 * w.pad_w + sw - 1) / sw;
    if (sw == 2 && cols <= phase_pair_max_cols) {
        // Column stride 2: both column phases of a row from one pass. The row is zero-padded into
        // `padded` (2·cols floats), then split into its even (phase 0) and odd (phase 1) columns
        // with deinterleave2's shuffles; the strided loop below read one float at a time (about
        // 4 % of a batch-64 ResNet8 inference). The same values land in the same places.
        alignas(64) float padded[2 * phase_pair_max_cols];
        const std::int64_t phase = rows * cols;  // floats per phase plane
        for (std::int64_t c = 0; c < channels; ++c, src += w.in_plane())
            for (std::int64_t a = 0; a < sh; ++a)
                for (std::int64_t i = 0; i < rows; ++i) {
                    float* d0 = dst + (c * sh * 2 + a * 2) * phase + i * cols;
                    float* d1 = d0 + phase;
                    const std::int64_t h = i * sh + a - w.pad_h;
                    if (h < 0 || h >= w.in_h) {
                        zero_floats(d0, cols);
                        zero_floats(d1, cols);
                        continue;
                    }
                    zero_floats(padded, w.pad_w);
                    copy_row(padded + w.pad_w, src + h * w.in_w, w.in_w);
                    zero_floats(padded + w.pad_w + w.in_w, 2 * cols - w.pad_w - w.in_w);
                    deinterleave2(d0, d1, padded, cols);
                }
        return;
    }
    // Column j of phase b reads input column j·sw + b − pad_w, inside [0, W) for j in [lo, hi).
    const auto first_inside = [sw](std::int64_t from) { return from <= 0 ? 0 : (from + sw - 1) / sw; };
    for (std::int64_t c = 0; c < channels; ++c, src += w.in_plane())
        for (std::int64_t a = 0; a < sh; ++a)
            for (std::int64_t b = 0; b < sw; ++b) {
                const std::int64_t lo = std::min(cols, first_inside(w.pad_w - b));
                const std::int64_t hi = std::max(lo, std::min(cols, first_inside(w.in_w + w.pad_w - b)));
                for (std::int64_t i = 0; i < rows; ++i, dst += cols) {
                    const std::int64_t h = i * sh + a - w.pad_h;
                    if (h < 0 || h >= w.in_h) {
                        zero_floats(dst, cols);
                        continue;
                    }
                    const float* row = src + h * w.in_w;
                    const std::int64_t shift = b - w.pad_w;
                    zero_floats(dst, lo);
                    for (std::int64_t j = lo; j < hi; ++j) dst[j] = row[j * sw + shift];
                    zero_floats(dst + hi, cols - hi);
                }
            }
}

// Whether the direct path beats im2col (or the packed implicit im2col) + sgemm, by a cost model
// fitted to 1-thread timings of 17 layer shapes (bench_kernels' conv shapes and those of the
// seed, VGG, ResNet8 and examples/mnist nets; AVX2, Zen 2). Both compute og·K multiply-adds per
// column of their panels: the direct path over ceil(pitched / gemm_nr) panels per image, the
// GEMM over ceil(chunk·oH·oW / gemm_nr) per chunk of images. What the GEMM pays on top, copying
// every column twice (im2col, packing), is shared by its og rows: it measured like 12 more rows
// of multiply-adds for K >= 64 (1.7x the direct path's speed at 16 output channels, 1.2x at 64,
// none at 256), like 4 for shorter K (the micro-kernel's start-up weighs more there), and
// im2col of rows narrower than a vector costs about a quarter more. The direct path is chosen
// where its panels, so weighted, are at least 3 % fewer. It needs 9 taps or more: a 3x3 window
// on one input channel (a grayscale network's first layer) qualifies, and on AVX-512 (Ice Lake,
// 1 thread, conv2d forward alone, the two builds alternating) ran 1.3-1.45x faster than im2col
// + sgemm: 1 -> 16 channels with padding 1 on 28x28, 600 -> 420 us at batch 64 and 9.1 -> 6.5 us
// at batch 1; 1 -> 32 unpadded, 930 -> 730 us at batch 64, 19.5 -> 16.4 ms at batch 1000 (the
// threshold was 16 before). Fewer taps (2x2 windows on one or two channels) were not measured
// and stay with the GEMM.
inline bool direct_conv_pays(std::int64_t og, std::int64_t ckk, const Window2d& w, std::int64_t chunk) {
    // A strided window reads every phase plane only when its taps reach past the stride.
    if (ckk < 9 || og < 1 || chunk < 1 || (w.kernel_h - 1) * w.dilation_h + 1 < w.stride_h ||
        (w.kernel_w - 1) * w.dilation_w + 1 < w.stride_w)
        return false;
    const auto panels = [](std::int64_t cols) { return static_cast<double>((cols + gemm_nr - 1) / gemm_nr); };
    const double direct = panels(pitched_columns(w));
    const double gemm = panels(chunk * w.out_plane()) / static_cast<double>(chunk);
    const double copies = (ckk >= 64 ? 12.0 : 4.0) / static_cast<double>(og) + (w.out_w < simd_width ? 0.25 : 0.0);
    return direct < 0.97 * gemm * (1.0 + copies);
}

// A per-thread table of offsets that only grows (the steady state allocates nothing).
inline std::int64_t* offset_table(int which, std::int64_t n) {
    thread_local std::unique_ptr<std::int64_t[]> tables[2];
    thread_local std::int64_t sizes[2] = {0, 0};
    if (sizes[which] < n) {
        tables[which].reset(new std::int64_t[static_cast<std::size_t>(n)]);
        sizes[which] = n;
    }
    return tables[which].get();
}

// Whether conv_direct_product runs og output channels over vlen pitched columns per image in
// conv_tile_mr x conv_tile_nr tiles rather than gemm_mr x gemm_nr. Both shapes hold the same
// number of accumulators; the narrow one loads fewer A values per multiply-add and pads fewer
// rows where og is a multiple of its height (gemm_mr = 6 pads 16 output channels to 18, 32 to 36;
// gemm_mr = 12 pads 16 to 24, 64 to 72), but its wider rows of B cost more where an image has few
// column blocks. Taken where it pads no more rows and an image fills at least four of its column
// blocks. Measured on 3x3 "same" windows, 1 thread, AVX2 (Zen 2; the direct product alone,
// GFLOP/s of the 4 x 24 tile over the 6 x 16 one): 1.25 at 16 channels on 28x28, 1.10-1.15 at
// 16-256 channels on 10x10 to 14x14, 1.05-1.07 at 64-256 on 16x16 to 32x32, but 0.88-0.97 on 7x7
// and 8x8 planes (under four blocks). AVX-512 (Ice Lake, 8 x 48 over 12 x 32, whole
// conv2d_forward at batch 64, 1 thread): 1.5 at 16 channels on 28x28, 1.2 at 32 on 14x14 and 64
// on 32x32, 1.25 on 5x5 40 -> 80 at 12x12, 1.05-1.15 at 48 -> 96 on 20x20 and on a stride-2
// 16 -> 32 layer; slower only on a 3 -> 64 first layer (0.85-0.9: K = 27) and, not taken here,
// on 7x7 planes and a stride-2 14x14 layer (0.93).
inline bool direct_tile_alt(std::int64_t og, std::int64_t vlen) {
    const auto padded = [og](std::int64_t mr) { return (og + mr - 1) / mr * mr; };
    return padded(conv_tile_mr) <= padded(gemm_mr) && vlen >= 4 * conv_tile_nr;
}

// The slack past the last image that the direct path's last panel may read (its widest tile).
inline constexpr std::int64_t direct_slack = std::max(gemm_nr, conv_tile_nr);

// y[o, n·vlen + jj] = Σ_k weight[o, k] · planes[n·image_stride + row_off[k] + jj] for o < og,
// n < nb, jj < vlen, k < K (= C/groups·kH·kW): the product sgemm's blocked path computes on the
// im2col matrix, with its K slices (gemm_kc, ascending; the first stored, the others added), but
// with MR-row panels of A and B read in place (sgemm_offsets_tile) rather than packed. Each
// element's sum is the same chain of multiply-adds whatever the tile shape, so the result is too.
// The planes must be readable NR floats past the last image's last column. Serial.
template <std::int64_t MR, std::int64_t NR>
inline void conv_direct_tiles(float* y, std::int64_t ldy, const float* weight, std::int64_t og, std::int64_t K,
                              const float* planes, std::int64_t image_stride, std::int64_t nb, std::int64_t vlen,
                              const std::int64_t* row_off) {
    constexpr auto mr = static_cast<std::size_t>(MR), nr = static_cast<std::size_t>(NR);
    const std::int64_t panels = (og + MR - 1) / MR;
    float* a = scratch(Scratch::conv_weight_panels, panels * K * MR);
    // a[p][k][r] = weight[p·MR + r, k], zero past og: a transpose of each panel's rows, four rows
    // at a time with transpose_rows_4's 4x4 shuffles where the build has them (the scalar loop's
    // strided reads were a tenth of a batch-1 ResNet8 inference).
    for (std::int64_t p = 0; p < panels; ++p) {
        float* ap = a + p * K * MR;
        const std::int64_t rows = std::min(MR, og - p * MR);
        std::int64_t r = 0;
        if constexpr (has_transpose_rows_4)
            for (; r + 4 <= rows; r += 4) transpose_rows_4(ap + r, MR, weight + (p * MR + r) * K, K, K);
        for (; r < MR; ++r)
            for (std::int64_t k = 0; k < K; ++k) ap[k * MR + r] = r < rows ? weight[(p * MR + r) * K + k] : 0.0f;
    }
    alignas(64) float tile[MR * NR];
    for (std::int64_t n = 0; n < nb; ++n)
        for (std::int64_t p = 0; p < panels; ++p) {
            const std::int64_t m = std::min(MR, og - p * MR);
            for (std::int64_t j = 0; j < vlen; j += NR) {
                const std::int64_t cols = std::min(NR, vlen - j);
                float* c = y + p * MR * ldy + n * vlen + j;
                const float* b = planes + n * image_stride + j;
                for (std::int64_t k0 = 0; k0 < K; k0 += gemm_kc) {
                    const std::int64_t kc = std::min(gemm_kc, K - k0);
                    const float* ap = a + (p * K + k0) * MR;
                    if (m == MR && cols == NR) {
                        // tile is unused when c is set; a nullptr there trips GCC 12's -Warray-bounds
                        sgemm_offsets_tile<mr, nr>(kc, ap, b, row_off + k0, k0 > 0, c, ldy, tile);
                    } else {
                        sgemm_offsets_tile<mr, nr>(kc, ap, b, row_off + k0, false, nullptr, 0, tile);
                        write_tile(c, ldy, 1, m, cols, tile, NR, 1.0f, k0 > 0 ? 1.0f : 0.0f);
                    }
                }
            }
        }
}

// conv_direct_tiles in the tile shape direct_tile_alt picks. The planes must be readable
// direct_slack floats past the last image's last column.
inline void conv_direct_product(float* y, std::int64_t ldy, const float* weight, std::int64_t og, std::int64_t K,
                                const float* planes, std::int64_t image_stride, std::int64_t nb, std::int64_t vlen,
                                const std::int64_t* row_off) {
    if (direct_tile_alt(og, vlen))
        conv_direct_tiles<conv_tile_mr, conv_tile_nr>(y, ldy, weight, og, K, planes, image_stride, nb, vlen, row_off);
    else
        conv_direct_tiles<gemm_mr, gemm_nr>(y, ldy, weight, og, K, planes, image_stride, nb, vlen, row_off);
}

}  // namespace detail

// out[N, O, oH, oW] = conv(in[N, C, H, W], weight[O, C/groups, kH, kW]) + bias[O]; bias may be
// null. Per chunk of images (detail::conv_chunk) and per group g (its C/groups input channels and
// O/groups weight rows, read in place): col[(C/groups)·kH·kW, chunk·oH·oW] = the images' im2col
// side by side, Y[O/groups, chunk·oH·oW] = weight_g @ col in one sgemm, then out[n, o] =
// Y[o, n's columns] + bias[o]. Chunks are spread over parallel_for (sgemm inside a chunk runs serially; with a single
// chunk it splits its own rows). Each output is one GEMM dot product over C·kH·kW in sgemm's
// fixed order plus the bias, so the result does not depend on the thread count. Scratch buffers
// are per thread and reused (kernels/workspace.hpp). Then `epi` on each output plane as it is
// written (ConvEpilogue; conv2d_forward passes none).
inline void conv2d_forward_fused(float* out, const float* in, const float* weight, const float* bias,
                                 std::int64_t batch, std::int64_t channels, std::int64_t out_channels,
                                 const Window2d& w, std::int64_t groups, const ConvEpilogue& epi) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
    const std::int64_t ckk = cg * w.kernel_h * w.kernel_w;
    const std::int64_t len = w.out_plane();
    if (batch <= 0 || len <= 0 || out_channels <= 0) return;
    const std::int64_t chunk = detail::conv_chunk(ckk, len);
    const std::int64_t chunks = (batch + chunk - 1) / chunk;
    // Three ways to the same product, chosen from the shapes alone (so the same for every thread
    // count): the direct path (detail::conv_direct_product) where it pays; else, where sgemm would
    // run its blocked path on the im2col matrix and the output rows are whole panels, that GEMM
    // with its B panels packed from the images (detail::ConvColumns); else im2col + sgemm. The
    // offset tables are built once here, by the calling thread, and only read by the tasks.
    const bool direct = detail::direct_conv_pays(og, ckk, w, chunk);
    const bool packed_from_images = !direct && detail::implicit_im2col_pays(ckk, w);
    const bool pad = w.pad_h > 0 || w.pad_w > 0;
    const bool copy = direct || pad;  // read the images from zero-padded copies (phase planes if strided)
    const bool phases = direct && (w.stride_h > 1 || w.stride_w > 1);
    const std::int64_t sh = direct ? w.stride_h : 1, sw = direct ? w.stride_w : 1;  // phases per axis
    const std::int64_t pitch = (w.in_w + 2 * w.pad_w + sw - 1) / sw, rows = (w.in_h + 2 * w.pad_h + sh - 1) / sh;
    const std::int64_t plane = sh * sw * rows * pitch;  // one channel's planes
    const std::int64_t image_stride = copy ? cg * plane : channels * w.in_plane();
    const std::int64_t ylen = direct ? detail::pitched_columns(w) : len;  // product columns per image
    std::int64_t* row_off = direct || packed_from_images ? detail::offset_table(0, ckk) : nullptr;
    if (row_off)
        for (std::int64_t ci = 0, k = 0; ci < cg; ++ci)
            for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                    const std::int64_t th = ki * w.dilation_h, tw = kj * w.dilation_w;
                    row_off[k++] = ci * plane + ((th % sh) * sw + tw % sw) * rows * pitch + th / sh * pitch + tw / sw;
                }
    std::int64_t* col_off = packed_from_images ? detail::offset_table(1, chunk * len) : nullptr;
    if (col_off)
        for (std::int64_t n = 0, j = 0; n < chunk; ++n)
            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                for (std::int64_t ow = 0; ow < w.out_w; ++ow)
                    col_off[j++] = n * image_stride + oh * w.stride_h * pitch + ow * w.stride_w;
    parallel_for(0, chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) {
            const std::int64_t n0 = c * chunk, nb = std::min(chunk, batch - n0), cols = nb * len, ycols = nb * ylen;
            const bool implicit = packed_from_images &&
                                  detail::gemm_path(false, false, og, cols, ckk) == detail::GemmPath::blocked;
            const bool im2col_cols = !direct && !implicit;
            float* col = im2col_cols ? detail::scratch(detail::Scratch::conv_col, ckk * cols) : nullptr;
            // (direct_slack floats of slack: the direct path's last panel reads past the last image)
            float* padded = !im2col_cols && copy
                                ? detail::scratch(detail::Scratch::conv_padded, nb * cg * plane + detail::direct_slack)
                                : nullptr;
            if (padded) zero_floats(padded + nb * cg * plane, detail::direct_slack);
            float* y = detail::scratch(detail::Scratch::conv_gemm_out, og * ycols);
            for (std::int64_t g = 0; g < groups; ++g) {
                const float* wg = weight + g * og * ckk;
                const float* images = in + (n0 * channels + g * cg) * w.in_plane();
                if (padded)
                    for (std::int64_t n = 0; n < nb; ++n) {
                        const float* image = images + n * channels * w.in_plane();
                        if (phases) detail::phase_planes(padded + n * cg * plane, image, cg, w);
                        else detail::pad_planes(padded + n * cg * plane, image, cg, w);
                    }
                if (direct) {
                    detail::conv_direct_product(y, ycols, wg, og, ckk, padded, cg * plane, nb, ylen, row_off);
                } else if (implicit) {  // as sgemm's blocked path: y = W · col
                    const detail::ConvColumns cols_view{padded ? padded : images, row_off, col_off};
                    detail::gemm_driver(og, cols, ckk, 1.0f, detail::StridedMatrix{wg, ckk, 1}, cols_view, 0.0f, y,
                                        cols, 1);
                } else {
                    for (std::int64_t n = 0; n < nb; ++n)
                        im2col(col + n * len, images + n * channels * w.in_plane(), cg, w, cols);
                    sgemm(false, false, og, cols, ckk, 1.0f, wg, ckk, col, cols, 0.0f, y, cols);
                }
                // out[n, o] = y[o, n's columns] + bias[o]: whole planes, or row by row from the
                // direct path's pitched columns.
                const std::int64_t run = direct ? w.out_w : len, ystep = direct ? pitch : len;
                for (std::int64_t n = 0; n < nb; ++n)
                    for (std::int64_t o = 0; o < og; ++o) {
                        float* dst = out + ((n0 + n) * out_channels + g * og + o) * len;
                        const float* src = y + o * ycols + n * ylen;
                        for (std::int64_t r = 0; r < len; r += run, dst += run, src += ystep) {
                            if (bias) add_scalar(dst, src, bias[g * og + o], run);
                            else detail::copy_row(dst, src, run);
                        }
                        if (epi.active())
                            epi.apply(dst - len, (n0 + n) * out_channels + g * og + o, g * og + o, len);
                    }
            }
        }
    });
}

// conv2d_forward_fused with no epilogue: the plain convolution.
inline void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, std::int64_t batch,
                           std::int64_t channels, std::int64_t out_channels, const Window2d& w,
                           std::int64_t groups = 1) {
    conv2d_forward_fused(out, in, weight, bias, batch, channels, out_channels, w, groups, ConvEpilogue{});
}

namespace detail {
// The input gradient of a stride-1 convolution is itself a stride-1 convolution: of grad_out,
// padded by dilation·(kernel − 1) − pad, with the weights flipped in both spatial axes and their
// two channel axes swapped (per group). Where its padding is not negative that is a window
// conv2d_forward can run, and where conv2d_forward's direct path takes it, it reads grad_out in
// place instead of computing Wᵀ·grad_out column by column and scattering them back (col2im).
inline bool input_grad_as_conv(const Window2d& w) {
    return w.stride_h == 1 && w.stride_w == 1 && w.pad_h <= w.dilation_h * (w.kernel_h - 1) &&
           w.pad_w <= w.dilation_w * (w.kernel_w - 1);
}
inline Window2d input_grad_window(const Window2d& w) {
    Window2d t = w;
    t.in_h = w.out_h;
    t.in_w = w.out_w;
    t.pad_h = w.dilation_h * (w.kernel_h - 1) - w.pad_h;
    t.pad_w = w.dilation_w * (w.kernel_w - 1) - w.pad_w;
    t.out_h = w.in_h;
    t.out_w = w.in_w;
    return t;
}
// Where that pays (1-thread timings of the input gradient alone on 17 layer shapes, AVX2, Zen 2):
// the old way multiplies Wᵀ·grad_out with an inner dimension of only O/groups, which runs
// store-bound for few output channels, while the convolution's inner dimension is
// O/groups·kH·kW. It won 1.1-1.3x on "same" windows (output plane = input plane: no padded
// zeros multiplied) with 16 or more input channels per group (the convolution's rows), at most
// 64 output channels per group, and where conv2d_forward then takes its direct path; elsewhere
// it lost, up to 2x for "valid" windows (their padded grad_out holds mostly zeros) and for a
// single input channel.
inline bool input_grad_as_conv_pays(std::int64_t cg, std::int64_t og, const Window2d& w) {
    if (!input_grad_as_conv(w) || w.out_h != w.in_h || w.out_w != w.in_w || cg < 16 || og > 64) return false;
    const std::int64_t ckk = og * w.kernel_h * w.kernel_w;
    return direct_conv_pays(cg, ckk, input_grad_window(w), conv_chunk(ckk, w.in_plane()));
}
}  // namespace detail

// Gradients of conv2d_forward given grad_out[N, O, oH, oW]; each output is overwritten and may
// be null when not wanted (`in` is read only for grad_weight, `weight` only for grad_in). Per
// chunk of images, with G[O, chunk·oH·oW] = the chunk's grad_out gathered side by side and col
// its im2col as in the forward:
//   grad_in[n]  = col2im(weightᵀ @ G, n's columns)                  (one sgemm per chunk)
//   dW_chunk    = G @ colᵀ,  db_chunk[o] = Σ G[o, :]                 (one sgemm per chunk)
// (with groups, both sgemms per group: its rows of G and weight, its channels of col and grad_in)
//   grad_weight = Σ_chunks dW_chunk, grad_bias = Σ_chunks db_chunk, summed in chunk order.
// Where detail::input_grad_as_conv_pays (a "same" stride-1 window, few output channels),
// grad_in is instead conv2d_forward of grad_out with the flipped, channel-swapped weights.
// Chunk boundaries depend on the shapes only (detail::conv_chunk), the partials are computed in
// parallel into their own slots (at most detail::conv_partial_budget floats at once, so huge
// weights are processed in blocks of chunks; the running sum is the same either way) and added in
// chunk order: bit-identical for every thread count.
inline void conv2d_backward(float* grad_in, float* grad_weight, float* grad_bias, const float* grad_out,
                            const float* in, const float* weight, std::int64_t batch, std::int64_t channels,
                            std::int64_t out_channels, const Window2d& w, std::int64_t groups = 1) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
    const std::int64_t ckk = cg * w.kernel_h * w.kernel_w;
    const std::int64_t len = w.out_plane();
    const std::int64_t wnum = out_channels * ckk;
    const bool reduce = grad_weight != nullptr || grad_bias != nullptr;
    if (grad_weight) std::fill(grad_weight, grad_weight + wnum, 0.0f);
    if (grad_bias) std::fill(grad_bias, grad_bias + out_channels, 0.0f);
    if (grad_in && (len <= 0 || out_channels <= 0))  // nothing flows back: the gradient is 0
        std::fill(grad_in, grad_in + batch * channels * w.in_plane(), 0.0f);
    if (batch <= 0 || len <= 0 || out_channels <= 0 || (!reduce && !grad_in)) return;

    if (grad_in && detail::input_grad_as_conv_pays(cg, og, w)) {
        // grad_in = conv2d_forward(grad_out, flipped weights) (detail::input_grad_as_conv).
        const Window2d t = detail::input_grad_window(w);
        const std::int64_t kk = w.kernel_h * w.kernel_w;
        float* flipped = detail::scratch(detail::Scratch::conv_flipped_weight, channels * og * kk);
        for (std::int64_t g = 0; g < groups; ++g)
            for (std::int64_t c = 0; c < cg; ++c)
                for (std::int64_t o = 0; o < og; ++o)
                    for (std::int64_t k = 0; k < kk; ++k)
                        flipped[(((g * cg + c) * og + o) * kk) + k] = weight[((g * og + o) * cg + c) * kk + kk - 1 - k];
        conv2d_forward(grad_in, grad_out, flipped, nullptr, batch, out_channels, channels, t, groups);
        grad_in = nullptr;
        if (!reduce) return;
    }
    const std::int64_t chunk = detail::conv_chunk(ckk, len);
    const std::int64_t chunks = (batch + chunk - 1) / chunk;
    const std::int64_t stride = wnum + out_channels;  // one chunk's partial: [weight grads | bias grads]
    const std::int64_t block =
        reduce ? std::max<std::int64_t>(1, std::min(chunks, detail::conv_partial_budget / stride)) : chunks;
    float* partial = reduce ? detail::scratch(detail::Scratch::conv_partials, std::min(block, chunks) * stride) : nullptr;

    for (std::int64_t b0 = 0; b0 < chunks; b0 += block) {
        const std::int64_t b1 = std::min(chunks, b0 + block);
        parallel_for(b0, b1, 1, [&](std::int64_t c0, std::int64_t c1) {
            for (std::int64_t c = c0; c < c1; ++c) {
                const std::int64_t n0 = c * chunk, nb = std::min(chunk, batch - n0), cols = nb * len;
                float* g = detail::scratch(detail::Scratch::conv_grad_out, out_channels * cols);
                for (std::int64_t n = 0; n < nb; ++n)
                    for (std::int64_t o = 0; o < out_channels; ++o)
                        detail::copy_row(g + o * cols + n * len, grad_out + ((n0 + n) * out_channels + o) * len, len);
                float* part = reduce ? partial + (c - b0) * stride : nullptr;
                if (grad_bias)
                    for (std::int64_t o = 0; o < out_channels; ++o) part[wnum + o] = sum(g + o * cols, cols);
                for (std::int64_t gr = 0; gr < groups; ++gr) {  // group gr: rows gr·og.. of g and weight
                    const float* gg = g + gr * og * cols;
                    const float* wg = weight + gr * og * ckk;
                    if (grad_weight) {
                        float* col = detail::scratch(detail::Scratch::conv_col, ckk * cols);
                        for (std::int64_t n = 0; n < nb; ++n)
                            im2col(col + n * len, in + ((n0 + n) * channels + gr * cg) * w.in_plane(), cg, w, cols);
                        sgemm(false, true, og, ckk, cols, 1.0f, gg, cols, col, cols, 0.0f, part + gr * og * ckk, ckk);
                    }
                    if (grad_in) {
                        float* gcol = detail::scratch(detail::Scratch::conv_grad_col, ckk * cols);
                        sgemm(true, false, ckk, cols, og, 1.0f, wg, ckk, gg, cols, 0.0f, gcol, cols);
                        for (std::int64_t n = 0; n < nb; ++n)
                            col2im(grad_in + ((n0 + n) * channels + gr * cg) * w.in_plane(), gcol + n * len, cg, w,
                                   cols);
                    }
                }
            }
        });
        if (!reduce) continue;
        // Add this block's partials in chunk order (serially: a few thousand floats per chunk).
        for (std::int64_t c = b0; c < b1; ++c) {
            const float* part = partial + (c - b0) * stride;
            if (grad_weight) add(grad_weight, grad_weight, part, wnum);
            if (grad_bias) add(grad_bias, grad_bias, part + wnum, out_channels);
        }
    }
}

}  // namespace nanotorch::kernels
