// nanotorch/kernels/weight_grad_lanes.hpp — a convolution's weight gradient with output channels
// across the vector lanes (AVX-512, and AVX2 with FMA), read from the images in place.
//
// dW[o, (c, i, j)] = Σ_{n, oh, ow} gy[n, o, oh, ow] · x[n, c, oh·sH + i − pH, ow·sW + j − pW].
// Here a vector holds 16 output channels (8 on AVX2): per output pixel, the pixel's gradients
// for those channels are one load from the image's gradient transposed to [pixel][channel] (once
// per image), and each tap's input value is one broadcast from the zero-padded planes, so a block of
// taps of one input channel (R rows of its kernel, all KW columns) and V vectors of channels
// keeps R·KW·V accumulators in registers over every pixel of the image: no horizontal sums, no
// pixels outside the output, and any stride (a tap's input is at ow·sW from its row). The dot
// product formulation it replaces (kernels/weight_grad.hpp) summed each element as a vector
// over a run of pixels, then across the vector, and multiplied the zeros of the padded columns.
//
// Each element is one sum in a fixed order: the images of a chunk in order, each image's pixels
// in raster order, by fused multiply-adds into an accumulator that starts at zero; chunks are
// summed in chunk order by the caller (kernels/conv_chunks.hpp's conv_weight_grad_chunked). The chunks
// depend on the shapes only, so the result is the same for every thread count.
//
// Measured on Zen 5 (1 thread, batch 64, dW alone, against the path it replaces): 1.2-1.35x on
// 3x3 layers with 48-256 channels on 32x32 to 8x8 (at 84-94 % of the FMA peak), 1.56x on 64 ->
// 64 on 7x7, 1.9-2.1x on stride-2 3x3 layers (im2col + sgemm before, at 37-40 % of the peak),
// 1.42x on 5x5 40 -> 80 on 12x12 (97 % of the peak). On the im2col path's chunks, in place of
// im2col + sgemm for the windows the other paths leave to it (kernels/conv_chunks.hpp's
// conv_weight_grad_lanes_as_gemm; same bits where that GEMM sums each element in one chain):
// 1.35x on 5x5 10 -> 20 on 12x12, 1.3-3.6x on the other small or strided windows measured.
// On AVX2 (Zen 3): weight_grad_lanes_pays below.
#pragma once

#include <algorithm>  // std::min
#include <cstdint>
#include <type_traits>  // std::integral_constant

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/conv_lanes.hpp>  // has_conv_lanes, transpose_to_lanes
#include <nanotorch/kernels/im2col.hpp>      // pad_planes
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/window.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels::detail {

#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && \
    (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
/// Whether conv_weight_grad_lanes_images exists in this build (AVX-512, or AVX2 with FMA).
inline constexpr bool has_weight_grad_lanes = true;

// One vector of output channels is simd.hpp's fbatch: 16 lanes on AVX-512, 8 on AVX2. A block
// keeps at most wgrad_accumulators of them, so that its V gradient vectors and a broadcast fit
// beside them in the registers (32 or 16).
inline constexpr std::int64_t wgrad_lanes = simd_width;
inline constexpr int wgrad_accumulators = simd_width >= 16 ? 28 : 12;
/// Whether conv2d_backward also runs the kernel on the im2col path's chunks
/// (kernels/conv_chunks.hpp's conv_weight_grad_lanes_as_gemm): AVX-512 builds only.
inline constexpr bool has_weight_grad_lanes_as_gemm = wgrad_lanes == 16;

// The largest number of kernel rows a block of V vectors of channels takes for a kernel KW wide:
// R·KW·V accumulators, at most wgrad_accumulators, and at most 3 rows of a 3-wide kernel (the
// usual kernels' height): AVX-512 3 whatever V; AVX2 2 rows for two vectors, 3 for one.
template <int V, int KW>
inline constexpr int wgrad_lanes_rows =
    KW == 3 ? std::min(3, wgrad_accumulators / (V * KW)) : wgrad_accumulators / (V * KW);

// acc[(r·KW + j)·V + v] += Σ_{oh, ow} gt[(oh·out_w + ow)·ldg + L·v + lane] · x[(oh·sh + r)·pw + ow·sw + j]
// over one image, L = wgrad_lanes: x at the block's first kernel row of one input channel's
// padded plane, gt the image's transposed gradient at the block's first channel. acc_io in and
// out ([R·KW·V][L], aligned to the vector); fresh: start from zero instead of acc_io.
template <int V, int R, int KW>
inline void wgrad_lanes_block(float* acc_io, bool fresh, const float* gt, std::int64_t ldg, const float* x,
                              std::int64_t pw, std::int64_t out_h, std::int64_t out_w, std::int64_t sh,
                              std::int64_t sw) {
    constexpr int T = R * KW;
    constexpr std::int64_t L = wgrad_lanes;
    static_assert(T * V <= wgrad_accumulators, "a block's accumulators must fit in the registers");
    fbatch acc[T * V];
    if (fresh) unroll<T * V>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = fbatch(0.0f); });
    else unroll<T * V>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = fbatch::load_aligned(acc_io + L * i); });
    const float* g = gt;
    for (std::int64_t oh = 0; oh < out_h; ++oh) {
        const float* rows[R];
        unroll<R>([&](auto r) NANOTORCH_INLINE_LAMBDA { rows[r] = x + (oh * sh + static_cast<std::int64_t>(r)) * pw; });
        for (std::int64_t ow = 0, at = 0; ow < out_w; ++ow, at += sw, g += ldg) {
            fbatch gv[V];
            unroll<V>([&](auto v) NANOTORCH_INLINE_LAMBDA { gv[v] = fbatch::load_aligned(g + L * v); });
            unroll<R>([&](auto r) NANOTORCH_INLINE_LAMBDA {
                unroll<KW>([&](auto j) NANOTORCH_INLINE_LAMBDA {
                    const fbatch b(rows[r][at + static_cast<std::int64_t>(j)]);
                    unroll<V>([&](auto v) NANOTORCH_INLINE_LAMBDA {
                        constexpr int i = (static_cast<int>(r) * KW + static_cast<int>(j)) * V + static_cast<int>(v);
                        acc[i] = vfma(b, gv[v], acc[i]);
                    });
                });
            });
        }
    }
    unroll<T * V>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i].store_aligned(acc_io + L * i); });
}

// One input channel's taps (kh kernel rows of KW) for V vectors of channels, in blocks of up to
// wgrad_lanes_rows<V, KW> kernel rows: acc_io [kh·KW·V][L].
template <int V, int KW>
inline void wgrad_lanes_channel(float* acc_io, bool fresh, const float* gt, std::int64_t ldg, const float* x,
                                std::int64_t pw, std::int64_t kh, std::int64_t out_h, std::int64_t out_w,
                                std::int64_t sh, std::int64_t sw) {
    constexpr int RM = wgrad_lanes_rows<V, KW>;
    for (std::int64_t i0 = 0; i0 < kh; i0 += RM) {
        float* a = acc_io + i0 * KW * V * wgrad_lanes;
        const float* xi = x + i0 * pw;
        const std::int64_t r = std::min<std::int64_t>(RM, kh - i0);
        // (one instantiation per row count up to RM: the rows' pointers and the taps stay in registers)
        unroll<RM>([&](auto q) NANOTORCH_INLINE_LAMBDA {
            if (r == static_cast<std::int64_t>(q) + 1)
                wgrad_lanes_block<V, static_cast<int>(q) + 1, KW>(a, fresh, gt, ldg, xi, pw, out_h, out_w, sh, sw);
        });
    }
}

// gt[p·ldg + o] = gy[o·len + p] for o < out_channels, zero for out_channels <= o < ldg (a
// multiple of wgrad_lanes): one image's output gradient with its channels across the lanes.
inline void wgrad_transpose(float* gt, std::int64_t ldg, const float* gy, std::int64_t len,
                            std::int64_t out_channels) {
#if defined(__AVX512F__)
    transpose_to_lanes(gt, ldg, gy, len, out_channels, ldg, len);
#else
    // In squares of one vector of channels x 64 pixels: reads of 256 contiguous bytes per
    // channel, and each pixel's channels written as one vector.
    constexpr std::int64_t L = wgrad_lanes;
    for (std::int64_t o0 = 0; o0 < ldg; o0 += L)
        for (std::int64_t p0 = 0; p0 < len; p0 += 64) {
            const std::int64_t pn = std::min<std::int64_t>(64, len - p0);
            for (std::int64_t p = p0; p < p0 + pn; ++p) {
                alignas(64) float v[L];
                for (std::int64_t l = 0; l < L; ++l) v[l] = o0 + l < out_channels ? gy[(o0 + l) * len + p] : 0.0f;
                fbatch::load_aligned(v).store_aligned(gt + p * ldg + o0);
            }
        }
#endif
}

// part[O, C·kH·kW] = the weight gradient of `images` consecutive images from their
// gy[images, O, oH, oW] and x[images, C, H, W] (groups 1; a window weight_grad_lanes_fits
// accepts). Uses the conv_padded, conv_grad_wide and conv_col scratch slots of the calling thread.
inline void conv_weight_grad_lanes_images(float* part, const float* gy, const float* x, std::int64_t images,
                                          std::int64_t channels, std::int64_t out_channels, const Window2d& w) {
    constexpr std::int64_t L = wgrad_lanes;
    const std::int64_t kh = w.kernel_h, kw = w.kernel_w, kk = kh * kw, ckk = channels * kk;
    const std::int64_t ldg = (out_channels + L - 1) / L * L, len = w.out_plane();
    const std::int64_t pw = w.in_w + 2 * w.pad_w, plane = (w.in_h + 2 * w.pad_h) * pw;
    float* planes = scratch(Scratch::conv_padded, channels * plane);
    float* gt = scratch(Scratch::conv_grad_wide, len * ldg);
    // The accumulators of every block, [block of 2L channels (L for the last odd one)][tap][lane]
    float* acc = scratch(Scratch::conv_col, ldg * ckk);
    for (std::int64_t n = 0; n < images; ++n) {
        pad_planes(planes, x + n * channels * w.in_plane(), channels, w);
        wgrad_transpose(gt, ldg, gy + n * out_channels * len, len, out_channels);  // gt[p][o]
        for (std::int64_t o0 = 0; o0 < ldg; o0 += 2 * L) {
            const bool two = o0 + 2 * L <= ldg;
            const std::int64_t step = kk * (two ? 2 * L : L);
            for (std::int64_t c = 0; c < channels; ++c) {
                float* a = acc + o0 * ckk + c * step;
                const float* xc = planes + c * plane;
                const auto run = [&](auto vectors, auto width) NANOTORCH_INLINE_LAMBDA {
                    wgrad_lanes_channel<decltype(vectors)::value, decltype(width)::value>(
                        a, n == 0, gt + o0, ldg, xc, pw, kh, w.out_h, w.out_w, w.stride_h, w.stride_w);
                };
                using One = std::integral_constant<int, 1>;
                using Two = std::integral_constant<int, 2>;
                using Three = std::integral_constant<int, 3>;
                using Five = std::integral_constant<int, 5>;
                if (kw == 3) two ? run(Two{}, Three{}) : run(One{}, Three{});
                else two ? run(Two{}, Five{}) : run(One{}, Five{});
            }
        }
    }
    // [block][tap][lane] -> part[o][tap]
    for (std::int64_t o0 = 0; o0 < ldg; o0 += 2 * L) {
        const std::int64_t lanes = o0 + 2 * L <= ldg ? 2 * L : L;
        const float* a = acc + o0 * ckk;
        for (std::int64_t l = 0; l < lanes && o0 + l < out_channels; ++l)
            for (std::int64_t t = 0; t < ckk; ++t) part[(o0 + l) * ckk + t] = a[t * lanes + l];
    }
}

// Whether this kernel can compute the weight gradient for the window, from the shapes alone:
// one group, no dilation, kernels 3 or 5 wide (the instantiated blocks), more than one input
// channel (a single-channel first layer has too few taps per block to pay for the transposes).
inline bool weight_grad_lanes_fits(std::int64_t channels, std::int64_t out_channels, std::int64_t groups,
                                   const Window2d& w) {
    if (groups != 1 || channels < 2 || out_channels < 1 || w.dilation_h != 1 || w.dilation_w != 1) return false;
    if (w.kernel_w != 3 && w.kernel_w != 5) return false;
    return w.out_h > 0 && w.out_w > 0;
}

// Whether conv2d_backward takes this kernel first, before the in-place dot products of
// kernels/weight_grad.hpp, with its own chunks: a window it fits whose output channels fill at
// least 4/5 of the lanes they take (on AVX-512 16 fill 16, 40 fill 48, 20 only 32). With one
// vector of channels a block does a broadcast per multiply-add: 16 -> 16 on 28x28 runs as fast
// as on the dot-product path (within 5 %). Where the in-place path does not pay either, an
// AVX-512 build still runs this kernel, on the im2col path's chunks (kernels/conv_chunks.hpp's
// conv_weight_grad_lanes_as_gemm).
//
// AVX2 (8 lanes, 16 registers: blocks of 2 x 2 rows x 3 taps) also wants 12 or more input
// channels. Measured on Zen 3 (1 thread, batch 64, dW alone, -O3, against the path each layer
// took before, the in-place dot products or im2col + sgemm at 35-55 % of the FMA peak):
// 1.2-1.7x on 3x3 layers with 16-128 channels on 32x32 to 7x7 planes (64 -> 64 on 32x32
// 49 -> 68 GFLOP/s, 16 -> 16 on 28x28 35 -> 58), 1.1-1.4x strided, 1.5-2x on 5x5 40 -> 80 on
// 12x12, 1.3x on 32 -> 64 on 26x26; within 5 % on 8x8 with 128-256 channels and 0.9-0.98x on
// 96 -> 96 on 10x10. With 3 input channels it lost (3 -> 64 on 32x32 0.8x: too few taps per
// transposed gradient); 6 -> 16 and 8 -> 16 gained 1.1-1.5x, but the threshold is 12 so that the
// 5x5 10 -> 20 layer on 12x12 planes (the seed net's; 1.1-1.3x here) keeps im2col + sgemm, whose
// chains this kernel's differ from on AVX2, and the seed net trains bit for bit as before.
inline constexpr std::int64_t wgrad_lanes_min_channels = wgrad_lanes == 16 ? 2 : 12;
inline bool weight_grad_lanes_pays(std::int64_t channels, std::int64_t out_channels, std::int64_t groups,
                                   const Window2d& w) {
    return weight_grad_lanes_fits(channels, out_channels, groups, w) && channels >= wgrad_lanes_min_channels &&
           5 * out_channels >= 4 * ((out_channels + wgrad_lanes - 1) / wgrad_lanes * wgrad_lanes);
}
#else
inline constexpr bool has_weight_grad_lanes = false;
inline constexpr bool has_weight_grad_lanes_as_gemm = false;
inline bool weight_grad_lanes_fits(std::int64_t, std::int64_t, std::int64_t, const Window2d&) { return false; }
inline bool weight_grad_lanes_pays(std::int64_t, std::int64_t, std::int64_t, const Window2d&) { return false; }
// Never called where has_weight_grad_lanes is false; declared so that the caller compiles in every build.
inline void conv_weight_grad_lanes_images(float*, const float*, const float*, std::int64_t, std::int64_t, std::int64_t,
                                          const Window2d&) {}
#endif

}  // namespace nanotorch::kernels::detail
