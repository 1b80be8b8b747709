// nanotorch/kernels/im2col.hpp — im2col and col2im: a convolution's input windows laid out as
// the columns of a matrix (and that matrix's gradient scattered back), with stride, padding,
// dilation and a row pitch, so several images' columns can sit side by side in one GEMM
// operand. kernels::ref holds the per-element bounds-checked twins; the optimized versions find
// each row's in-bounds range once and copy whole runs, visiting the same elements in the same
// order, so they agree with ref:: exactly. Padded stride-1 windows go through zero-padded
// copies of the planes (detail::pad_planes), which the convolution's direct path reads too.
#pragma once

#include <algorithm>  // std::min/max/fill
#include <cstdint>

#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/window.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels {

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
// Padded rows of at most 16 floats on AVX-512 (7x7 to 14x14 planes, padding 1): one vector per
// row, see below (64 planes of 7x7 at batch 64 2.7x faster, 32 of 14x14 2.2x, alone on Zen 4).
// Otherwise each row is copied in whole vectors, its last one spilling past the row into what is written
// after it (the right border, the next row), then its borders are zeroed: a masked store per row
// was a quarter of this copy on Zen 5 (5 % of a batch-64 ResNet8 inference). The buffer's last
// row, and rows too close to the end of src, are copied exactly.
inline void pad_planes(float* dst, const float* src, std::int64_t channels, const Window2d& w) {
    const std::int64_t pw = w.in_w + 2 * w.pad_w, top = w.pad_h * pw;
#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && defined(__AVX512F__)
    if (pw <= 16 && w.in_w > 0) {
        // A padded row fits one vector: a load, a permute that places the row between its zero
        // borders, a store of all 16 lanes (the lanes past the row are zeros that the next row
        // or the bottom border overwrites); only near the ends of src and dst masked ones.
        // (The path below took 3.5x a memcpy of the same data on 7x7 planes, Zen 4: a copy and
        // two border stores per 7-float row.)
        const float* const src_end = src + channels * w.in_plane();
        float* const dst_end = dst + channels * (w.in_h + 2 * w.pad_h) * pw;
        for (std::int64_t c = 0; c < channels; ++c) {
            zero_floats(dst, top);
            dst += top;
            for (std::int64_t r = 0; r < w.in_h; ++r, dst += pw, src += w.in_w) {
                const __m512 v = src + 16 <= src_end ? _mm512_loadu_ps(src)
                                                     : _mm512_maskz_loadu_ps(lanes_mask(w.in_w), src);
                const __m512 row = padded_row_vector(v, w.in_w, w.pad_w);
                if (dst + 16 <= dst_end) _mm512_storeu_ps(dst, row);
                else _mm512_mask_storeu_ps(dst, lanes_mask(pw), row);
            }
            zero_floats(dst, top);
            dst += top;
        }
        return;
    }
#endif
    const float* const src_end = src + channels * w.in_plane();
    float* const dst_end = dst + channels * (w.in_h + 2 * w.pad_h) * pw;
    for (std::int64_t c = 0; c < channels; ++c) {
        zero_floats(dst, top);
        dst += top;
        for (std::int64_t r = 0; r < w.in_h; ++r, dst += pw, src += w.in_w) {
            const std::int64_t whole = (w.in_w + simd_width - 1) / simd_width * simd_width;
            if (src + whole <= src_end && dst + w.pad_w + whole <= dst_end)
                copy_floats_spill(dst + w.pad_w, src, w.in_w);
            else
                copy_row(dst + w.pad_w, src, w.in_w);
            zero_floats(dst, w.pad_w);  // (a loop here became two calls to memset per row)
            zero_floats(dst + w.pad_w + w.in_w, w.pad_w);
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
    if (detail::is_dense_window(w) && w.in_w <= col2im_dense_max_width && w.kernel_w <= col2im_dense_max_kernel &&
        w.out_h > 0 && w.out_w > 0)
        return col2im_dense(im, col, ld, channels, w.kernel_h, w.kernel_w, w.in_h, w.in_w, w.out_h, w.out_w);  // simd.hpp
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

}  // namespace nanotorch::kernels
