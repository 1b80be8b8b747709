// nanotorch/kernels/conv_lanes.hpp — the direct convolution with output channels across the
// vector lanes (AVX-512, and AVX2 with FMA), for layers whose planes are small and whose
// channels are many.
//
// conv_direct_product (kernels/implicit_gemm.hpp) puts output pixels in the lanes: it runs over
// "pitched" columns, every padded row's full length, and rounds each image's columns up to whole
// tiles, so a 7x7 output plane (pitch 9) computes 64 columns for 49 pixels and a 64-channel
// layer pads to 72 rows of its 12-row tile: two thirds of its multiply-adds are kept. Here each
// vector holds 16 output channels of one pixel (8 on AVX2), and a tile is P consecutive output pixels in
// raster order (spanning rows; each pixel's offset in the planes is found once per tile): only
// the plane's last tile computes pixels it drops, and channel counts that are multiples of 16
// fill the lanes. A strided window reads plain padded planes (each pixel's offset carries the
// stride), where the pixels-in-lanes path needs them split into phase planes first. The price is
// a transpose of each finished tile, 16 x 16 in registers (8 x 8), to write NCHW planes; the bias and the
// inference epilogue (kernels/conv.hpp's ConvEpilogue) are applied to the transposed rows as they
// are stored, instead of in a pass over the output.
//
// The sums are the same chains as sgemm's blocked path on the im2col matrix: for each output,
// k ascending in slices of gemm_kc, each slice summed from zero with fused multiply-adds, the
// first slice kept and each later one added to it (slice + earlier). So the output is
// conv_direct_product's, and im2col + the blocked sgemm's, bit for bit, but for the taps a tile
// leaves out on zero-padded planes: kernel rows that read only padding for all of a tile's
// pixels, and kernel columns that read only padding for its first or last pixel (where the tile
// starts or ends a row). Each left-out product is 0·w, which adds nothing to a sum, so the
// results differ only where a sum is an exact zero (its sign) or a weight is infinite or NaN
// there (0·inf would have made a NaN). With 3x3 kernels, padding 1, tiles of 7 pixels leave out
// 18 % of the products on 7x7 planes (64 -> 64 at batch 64 and at batch 1 ran 1.13-1.16x faster,
// Zen 4, 1 thread), tiles of 14 on 14x14 planes 4.8 % (32 -> 32 at batch 1: 1.04x), and on a
// stride-2 layer to 14x14 2.4 % (16 -> 32: 1.02-1.03x).
//
// Measured on Zen 5 (1 thread, conv2d_forward alone, against the path taken before; batch 64,
// batch 1 alike within noise): 3x3 64 -> 64 on 7x7 1.45-1.5x, 32 -> 32 on 14x14 1.2-1.25x,
// stride-2 16 -> 32 from 28x28 and 32 -> 64 from 14x14 1.3-1.6x, 1x1 stride-2 1.7-2x (an im2col
// GEMM with K = 16 or 32 before), 48 -> 96 on 20x20 1.05-1.15x, 5x5 40 -> 80 on 12x12 1.2x;
// the batch-64 ResNet8 inference of fashion_train through the ONNX runtime 1.14x.
//
// The kernels are written once over LanesIsa, the few vector operations they use: AVX-512's
// (16 lanes, blocks of up to four vectors, a full block over tiles of 7 or 6 pixels, masked
// partial rows) or AVX2's (8 lanes, blocks of up to two vectors over tiles of 6 pixels, 8 x 8
// transposes, partial rows in 4-, 2- and 1-float pieces). AVX2's measurements are lanes_conv_pays's.
#pragma once

#include <algorithm>  // std::min
#include <cstdint>
#include <type_traits>  // std::integral_constant

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/gemm.hpp>  // gemm_kc
#include <nanotorch/kernels/implicit_gemm.hpp>  // the pixels-in-lanes direct product it competes with
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels::detail {

/// What conv_lanes_product does to each finished output value before it stores it: the
/// bias and ConvEpilogue's steps, as finish_rows does them (kernels/reference.hpp's ConvFinish).
using LanesFinish = ref::ConvFinish;

#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && \
    (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
/// Whether conv_lanes_product exists in this build (AVX-512, or AVX2 with FMA).
inline constexpr bool has_conv_lanes = true;

#if defined(__AVX512F__)
// Two-source permute: lane i of the result is a[idx[i]] for idx[i] < 16, else b[idx[i] - 16].
// (The transpose below is written with permutes only: GCC 12 flags the undefined pass-through
// operand inside _mm512_unpacklo_ps and _mm512_shuffle_f32x4 with a false -Wmaybe-uninitialized
// in every program that includes this header.)
NANOTORCH_ALWAYS_INLINE __m512 pick2(__m512 a, __m512 b, int i0, int i1, int i2, int i3, int i4, int i5, int i6,
                                     int i7, int i8, int i9, int i10, int i11, int i12, int i13, int i14, int i15) {
    const __m512i idx = _mm512_set_epi32(i15, i14, i13, i12, i11, i10, i9, i8, i7, i6, i5, i4, i3, i2, i1, i0);
    return _mm512_permutex2var_ps(a, idx, b);
}

// rows[0, 16) transposed in place: rows[c] lane p = old rows[p] lane c. Four rounds of 16
// permutes, each pairing rows (r, r + 1), then (r, r + 2) as float pairs, then groups of four
// floats (r, r + 4) and (r, r + 8): the classic unpack/shuffle network.
NANOTORCH_ALWAYS_INLINE void transpose_16x16(__m512* r) {
    __m512 t[16];
    unroll<8>([&](auto i) NANOTORCH_INLINE_LAMBDA {  // unpacklo_ps / unpackhi_ps
        t[2 * i] = pick2(r[2 * i], r[2 * i + 1], 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29);
        t[2 * i + 1] = pick2(r[2 * i], r[2 * i + 1], 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
    });
    // u[4q + j]: per 128-bit lane, columns j, j+4, j+8, j+12 of rows 4q .. 4q+3
    __m512 u[16];
    unroll<4>([&](auto q) NANOTORCH_INLINE_LAMBDA {  // unpacklo_pd / unpackhi_pd
        const auto lo = [](__m512 a, __m512 b) {
            return pick2(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
        };
        const auto hi = [](__m512 a, __m512 b) {
            return pick2(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
        };
        u[4 * q] = lo(t[4 * q], t[4 * q + 2]);
        u[4 * q + 1] = hi(t[4 * q], t[4 * q + 2]);
        u[4 * q + 2] = lo(t[4 * q + 1], t[4 * q + 3]);
        u[4 * q + 3] = hi(t[4 * q + 1], t[4 * q + 3]);
    });
    // shuffle_f32x4 0x88 (128-bit lanes 0 and 2 of each source) and 0xdd (lanes 1 and 3)
    const auto even = [](__m512 a, __m512 b) {
        return pick2(a, b, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
    };
    const auto odd = [](__m512 a, __m512 b) {
        return pick2(a, b, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    };
    unroll<4>([&](auto j) NANOTORCH_INLINE_LAMBDA {
        const __m512 lo_even = even(u[j], u[4 + j]), lo_odd = odd(u[j], u[4 + j]);  // cols j, j+8 / j+4, j+12
        const __m512 hi_even = even(u[8 + j], u[12 + j]), hi_odd = odd(u[8 + j], u[12 + j]);
        r[j] = even(lo_even, hi_even);
        r[j + 8] = odd(lo_even, hi_even);
        r[j + 4] = even(lo_odd, hi_odd);
        r[j + 12] = odd(lo_odd, hi_odd);
    });
}

// The vector operations the lanes kernels are written in, for AVX-512: 16 floats per vector,
// blocks of up to four vectors of output channels (28 accumulators beside the weight vectors in
// the 32 registers), lanes_mask'ed loads and stores for partial rows (a masked-off lane never
// faults, and costs what a full move costs).
struct LanesIsa {
    using vec = __m512;
    static constexpr int width = 16, block = 4;
    static NANOTORCH_ALWAYS_INLINE vec zero() { return _mm512_setzero_ps(); }
    static NANOTORCH_ALWAYS_INLINE vec load(const float* p) { return _mm512_load_ps(p); }
    static NANOTORCH_ALWAYS_INLINE void store(float* p, vec v) { _mm512_store_ps(p, v); }
    static NANOTORCH_ALWAYS_INLINE void store_unaligned(float* p, vec v) { _mm512_storeu_ps(p, v); }
    static NANOTORCH_ALWAYS_INLINE vec broadcast(float x) { return _mm512_set1_ps(x); }
    static NANOTORCH_ALWAYS_INLINE vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
    // (v > 0 is false for NaN and -0: both become +0, as in relu_forward)
    static NANOTORCH_ALWAYS_INLINE vec relu(vec y) {
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), y);
    }
    // The first n (0 < n <= 16) floats of p, zero past them; reads p[0, n) only.
    static NANOTORCH_ALWAYS_INLINE vec load_first(const float* p, std::int64_t n) {
        return _mm512_maskz_loadu_ps(lanes_mask(n), p);
    }
    // p[0, n) = the first n (0 < n <= 16) lanes of v; writes nothing else.
    static NANOTORCH_ALWAYS_INLINE void store_first(float* p, vec v, std::int64_t n) {
        _mm512_mask_storeu_ps(p, lanes_mask(n), v);
    }
    static NANOTORCH_ALWAYS_INLINE void transpose(vec* r) { transpose_16x16(r); }
};

// Pixels per tile for a block of V vectors of output channels: P·V accumulators, at most 28,
// and at most 16 pixels (one transpose). (With four vectors, 28 accumulators leave no register
// for the broadcast beside the four weight vectors, so the compiler reads one weight vector from
// memory in every multiply-add.)
template <int V>
inline constexpr int lanes_pixels = V == 1 ? 16 : 28 / V;

// The full block's other tile: 6 pixels by 4 vectors (24 accumulators, every weight vector in a
// register), taken where its tiles compute fewer pixels of a plane than 7-pixel ones do
// (lanes_block_pixels). Measured on Zen 4 (1 thread, batch 64, conv2d_forward alone, the two
// alternating): 64 -> 64 on 6x6 1.16x, on 8x8 1.055x, on 12x12 1.02x, 128 -> 128 on 12x12
// 1.02x, 96 -> 96 on 10x10 1.025x, 48 -> 96 on 20x20 1.01x; the product alone, planes already
// padded, 3-8 % more multiply-adds per second than 7-pixel tiles where both compute whole
// planes, but 7x7 planes, 49 pixels, still ran faster in 7-pixel tiles. Keeping more, the lanes
// now pass lanes_conv_pays on 4x4 output planes with 64 output channels (64 -> 64 1.35x, 256 ->
// 64 1.12x, stride 2 from 8x8 1.9x and from 7x7 (128 -> 64) 2.0x against the GEMM) and on
// 12x12 ones with 160 (stride 2 from 24x24 and 23x23: 1.15-1.19x against the direct path).
inline constexpr int lanes_block_alt_pixels = 6;

/// conv_lanes_product's one-vector block (16 accumulators, a broadcast per multiply-add) is
/// charged this much per product against the wider blocks' tiles (lanes_kept).
inline constexpr double lanes_one_vector_cost = 1.4;
#else
// r[0, 8) transposed in place: r[c] lane p = old r[p] lane c (unpack pairs of rows, shuffle
// pairs of floats, then exchange 128-bit halves).
NANOTORCH_ALWAYS_INLINE void transpose_8x8(__m256* r) {
    __m256 t[8], s[8];
    unroll<4>([&](auto i) NANOTORCH_INLINE_LAMBDA {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    });
    unroll<2>([&](auto h) NANOTORCH_INLINE_LAMBDA {  // rows 4h .. 4h + 3
        s[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    });
    unroll<4>([&](auto j) NANOTORCH_INLINE_LAMBDA {
        r[j] = _mm256_permute2f128_ps(s[j], s[4 + j], 0x20);
        r[j + 4] = _mm256_permute2f128_ps(s[j], s[4 + j], 0x31);
    });
}

// The first n (0 < n <= 4) floats of src in the low lanes, zero past them; reads src[0, n) only.
NANOTORCH_ALWAYS_INLINE __m128 lanes_load_head(const float* src, std::int64_t n) {
    if (n >= 4) return _mm_loadu_ps(src);
    // (two floats through __m64, which the compilers declare may_alias, unlike double)
    const __m128 two = n >= 2 ? _mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(src)) : _mm_load_ss(src);
    return n == 3 ? _mm_movelh_ps(two, _mm_load_ss(src + 2)) : two;
}
// The first n (0 < n <= 8) floats of src, zero past them; reads src[0, n) only.
NANOTORCH_ALWAYS_INLINE __m256 lanes_load_first(const float* src, std::int64_t n) {
    if (n >= 8) return _mm256_loadu_ps(src);
    if (n <= 4) return _mm256_set_m128(_mm_setzero_ps(), lanes_load_head(src, n));
    return _mm256_set_m128(lanes_load_head(src + 4, n - 4), _mm_loadu_ps(src));
}
// dst[0, n) = the first n (0 < n <= 8) lanes of v; writes nothing else.
NANOTORCH_ALWAYS_INLINE void lanes_store_first(float* dst, __m256 v, std::int64_t n) {
    if (n >= 8) {
        _mm256_storeu_ps(dst, v);
        return;
    }
    __m128 h = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(dst, h);
        h = _mm256_extractf128_ps(v, 1);
        dst += 4;
        n -= 4;
    }
    if (n >= 2) {
        _mm_storel_pi(reinterpret_cast<__m64*>(dst), h);
        h = _mm_movehl_ps(h, h);
        dst += 2;
        n -= 2;
    }
    if (n >= 1) _mm_store_ss(dst, h);
}

// The same operations for AVX2: 8 floats per vector, blocks of up to two vectors (tiles of 6
// pixels: 12 accumulators, with the two weight vectors and a broadcast 15 of the 16 registers).
// AVX2 has no cheap masked store (vmaskmovps is microcoded on AMD cores), so a partial row is
// read and written as 4-, 2- and 1-float pieces.
struct LanesIsa {
    using vec = __m256;
    static constexpr int width = 8, block = 2;
    static NANOTORCH_ALWAYS_INLINE vec zero() { return _mm256_setzero_ps(); }
    static NANOTORCH_ALWAYS_INLINE vec load(const float* p) { return _mm256_load_ps(p); }
    static NANOTORCH_ALWAYS_INLINE void store(float* p, vec v) { _mm256_store_ps(p, v); }
    static NANOTORCH_ALWAYS_INLINE void store_unaligned(float* p, vec v) { _mm256_storeu_ps(p, v); }
    static NANOTORCH_ALWAYS_INLINE vec broadcast(float x) { return _mm256_set1_ps(x); }
    static NANOTORCH_ALWAYS_INLINE vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
    // (v > 0 is false for NaN and -0: both become +0, as in relu_forward)
    static NANOTORCH_ALWAYS_INLINE vec relu(vec y) { return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), y); }
    static NANOTORCH_ALWAYS_INLINE vec load_first(const float* p, std::int64_t n) { return lanes_load_first(p, n); }
    static NANOTORCH_ALWAYS_INLINE void store_first(float* p, vec v, std::int64_t n) { lanes_store_first(p, v, n); }
    static NANOTORCH_ALWAYS_INLINE void transpose(vec* r) { transpose_8x8(r); }
};

// Pixels per tile for a block of V vectors of output channels: 6 for two vectors (12
// accumulators), 8 for one (one transpose).
template <int V>
inline constexpr int lanes_pixels = V == 1 ? 8 : 6;
inline constexpr int lanes_block_alt_pixels = 0;  // (none: 6 pixels by 2 vectors fill the registers)

/// conv_lanes_product's one-vector block (8 accumulators: 9 loads per 8 multiply-adds, against
/// 8 per 12 in a two-vector block) is charged this much per product (lanes_kept).
inline constexpr double lanes_one_vector_cost = 1.2;
#endif

// a·b + c as every other kernel computes it (kernels/simd.hpp's vfma), so that the lanes
// product and its epilogue stay the other paths' results bit for bit.
NANOTORCH_ALWAYS_INLINE LanesIsa::vec lanes_fma(LanesIsa::vec a, LanesIsa::vec b, LanesIsa::vec c) {
    return vfma(fbatch(a), fbatch(b), fbatch(c));
}

// dst[k·ld + r] = src[r·src_ld + k] for r < rows, zero for rows ≤ r < width (a multiple of the
// vector width), k < cols: a matrix's rows spread across the lanes, in squares of one vector
// width transposed in registers and stored as whole vectors (the lanes kernels' packed weights;
// the weight gradient's transposed output gradient). Transposing four rows at a time wrote 16
// bytes per k at a stride of the width, a read-modify-write of an L2 line for every four floats
// once past L1.
inline void transpose_to_lanes(float* dst, std::int64_t ld, const float* src, std::int64_t src_ld, std::int64_t rows,
                               std::int64_t width, std::int64_t cols) {
    using I = LanesIsa;
    constexpr std::int64_t W = I::width;
    for (std::int64_t r0 = 0; r0 < width; r0 += W)
        for (std::int64_t k0 = 0; k0 < cols; k0 += W) {
            const std::int64_t kn = std::min<std::int64_t>(W, cols - k0);
            I::vec sq[W];
            unroll<W>([&](auto i) NANOTORCH_INLINE_LAMBDA {
                const std::int64_t r = r0 + static_cast<std::int64_t>(i);
                sq[i] = r < rows ? I::load_first(src + r * src_ld + k0, kn) : I::zero();
            });
            I::transpose(sq);
            unroll<W>([&](auto k) NANOTORCH_INLINE_LAMBDA {
                if (static_cast<std::int64_t>(k) < kn) I::store_unaligned(dst + (k0 + k) * ld + r0, sq[k]);
            });
        }
}

// The kernel rows ki that read inside the image (0 <= oh·sH − pH + ki·dH < H) for output row oh
// are [lanes_first_row_inside, lanes_end_row_inside) of window w (empty if the second is not past
// the first); the columns of output column ow likewise. (No division where all are inside: most
// tiles ask.)
inline std::int64_t lanes_first_inside(std::int64_t at, std::int64_t kernel, std::int64_t dilation) {
    return at >= 0 ? 0 : std::min(kernel, (-at + dilation - 1) / dilation);
}
inline std::int64_t lanes_end_inside(std::int64_t at, std::int64_t size, std::int64_t kernel, std::int64_t dilation) {
    const std::int64_t room = size - 1 - at;  // input positions at or after `at`, less one
    if (room >= (kernel - 1) * dilation) return kernel;
    return room < 0 ? 0 : room / dilation + 1;
}
inline std::int64_t lanes_first_row_inside(const Window2d& w, std::int64_t oh) {
    return lanes_first_inside(oh * w.stride_h - w.pad_h, w.kernel_h, w.dilation_h);
}
inline std::int64_t lanes_end_row_inside(const Window2d& w, std::int64_t oh) {
    return lanes_end_inside(oh * w.stride_h - w.pad_h, w.in_h, w.kernel_h, w.dilation_h);
}
inline std::int64_t lanes_first_col_inside(const Window2d& w, std::int64_t ow) {
    return lanes_first_inside(ow * w.stride_w - w.pad_w, w.kernel_w, w.dilation_w);
}
inline std::int64_t lanes_end_col_inside(const Window2d& w, std::int64_t ow) {
    return lanes_end_inside(ow * w.stride_w - w.pad_w, w.in_w, w.kernel_w, w.dilation_w);
}

// Output channels [W·V·b0, min(og, W·V·b1)) (W = LanesIsa::width) over tiles of P consecutive
// output pixels (lanes_pixels<V>, or for a full block lanes_block_pixels' choice; in raster
// order, so a tile may span rows: each pixel's offset in the planes is found once per tile, and
// its row's pitch skipped). out[n, o, :] for n < nb,
// written in place (out_image floats apart per image, len per channel); wpack[b][k][c] =
// weight[(W·V·b + c)·K + k] for the blocks' rows, zero past og; planes as conv_direct_product
// reads them, pitch floats per row, row_off[k] per tap. Padded: the planes are `window`'s input
// zero-padded and the taps its (channel, kernel row, kernel column) in that order, so the taps
// that read only padding can be left out (a separate instantiation: the unpadded one, 1x1
// layers with K of 16 or 32, ran 8-11 % slower with the tests in it). Serial.
template <int V, int P = lanes_pixels<V>, bool Padded = false>
inline void conv_lanes_tiles(float* out, std::int64_t len, std::int64_t out_image, const float* wpack,
                             std::int64_t b0, std::int64_t b1, std::int64_t og, std::int64_t K, const float* planes,
                             std::int64_t image_stride, std::int64_t nb, std::int64_t pitch, std::int64_t out_w,
                             std::int64_t stride_h, std::int64_t stride_w, const std::int64_t* row_off,
                             const LanesFinish& fin, const Window2d* window = nullptr) {
    using I = LanesIsa;
    constexpr int W = I::width;
    constexpr std::int64_t CB = W * V;
    // the earlier K slices' sums (zeroed once per call only so that GCC 12 does not warn that
    // a later slice may read them before the first slice stores them)
    alignas(64) float part[P * CB] = {};
    for (std::int64_t n = 0; n < nb; ++n)
        for (std::int64_t b = b0; b < b1; ++b) {
            const float* wb = wpack + b * K * CB;
            const std::int64_t chans = std::min(CB, og - b * CB);
            const float* src = planes + n * image_stride;
            std::int64_t oh = 0, ow = 0;  // the next tile's first pixel
            for (std::int64_t q0 = 0; q0 < len; q0 += P) {
                const std::int64_t cnt = std::min<std::int64_t>(P, len - q0);
                const std::int64_t first_row = oh, first_col = ow;
                std::int64_t pix[P];  // (a partial tile repeats its last pixel: every read stays in the planes)
                for (std::int64_t p = 0; p < P; ++p) {
                    pix[p] = oh * stride_h * pitch + ow * stride_w;
                    if (p + 1 < cnt && ++ow == out_w) ow = 0, ++oh;
                }
                // Taps that read only padding (window given): kernel rows [row_lo, row_hi) read
                // inside the image for some pixel of the tile (oh is the last pixel's row here);
                // the first pixel's first left_out kernel columns, and a full tile's last pixel's
                // last right_out, read outside it. Their products are 0·w, so leaving them out
                // changes no sum (k stays ascending), except that an exact zero keeps its sign
                // and a non-finite weight there makes no NaN.
                std::int64_t row_lo = 0, row_hi = 0, left_out = 0, right_out = 0;
                bool every_row = true, every_col = true;
                if constexpr (Padded) {
                    row_lo = lanes_first_row_inside(*window, oh);
                    row_hi = lanes_end_row_inside(*window, first_row);
                    left_out = lanes_first_col_inside(*window, first_col);
                    if (cnt == P) right_out = window->kernel_w - lanes_end_col_inside(*window, ow);
                    if (left_out + right_out > window->kernel_w) right_out = 0;
                    // (each kernel row then runs as three loops: measured on Zen 4, that costs
                    // about what leaving out a twentieth of the products saves)
                    if (11 * (left_out + right_out) < window->kernel_w * P) left_out = right_out = 0;
                    every_row = row_lo == 0 && row_hi == window->kernel_h;
                    every_col = left_out == 0 && right_out == 0;
                }
                if (++ow == out_w) ow = 0, ++oh;
                I::vec acc[P * V];  // (zeroed here too: GCC cannot see that K > 0 runs the loop)
                unroll<P * V>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = I::zero(); });
                // taps [kb, ke) into acc, k ascending; Skip 1: without the first pixel, 2: the last
                const auto taps = [&](auto skip, std::int64_t kb, std::int64_t ke) NANOTORCH_INLINE_LAMBDA {
                    constexpr int S = decltype(skip)::value;
                    const float* wk = wb + kb * CB;
                    for (std::int64_t k = kb; k < ke; ++k, wk += CB) {
                        const float* x = src + row_off[k];
                        I::vec wv[V];
                        unroll<V>([&](auto v) NANOTORCH_INLINE_LAMBDA { wv[v] = I::load(wk + W * v); });
                        unroll<P>([&](auto p) NANOTORCH_INLINE_LAMBDA {
                            if constexpr (!(S == 1 && p == 0) && !(S == 2 && p == P - 1)) {
                                const I::vec xp = I::broadcast(x[pix[p]]);
                                unroll<V>([&](auto v) NANOTORCH_INLINE_LAMBDA {
                                    acc[p * V + v] = lanes_fma(xp, wv[v], acc[p * V + v]);
                                });
                            }
                        });
                    }
                };
                using all_pixels = std::integral_constant<int, 0>;
                for (std::int64_t k0 = 0; k0 < K; k0 += gemm_kc) {
                    const std::int64_t kc = std::min(gemm_kc, K - k0), k1 = k0 + kc;
                    if (k0 > 0) unroll<P * V>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = I::zero(); });
                    if (!Padded || (every_row && every_col)) {
                        taps(all_pixels{}, k0, k1);
                    } else if constexpr (Padded) {  // per input channel, the rows some pixel reads inside
                        const std::int64_t kw = window->kernel_w, channel_taps = window->kernel_h * kw;
                        for (std::int64_t base = k0 / channel_taps * channel_taps; base < k1; base += channel_taps) {
                            if (every_col) {
                                taps(all_pixels{}, std::max(k0, base + row_lo * kw), std::min(k1, base + row_hi * kw));
                                continue;
                            }
                            for (std::int64_t r = base + row_lo * kw; r < base + row_hi * kw; r += kw) {
                                const std::int64_t a = r + left_out, b = r + kw - right_out;
                                taps(std::integral_constant<int, 1>{}, std::max(k0, r), std::min(k1, a));
                                taps(all_pixels{}, std::max(k0, a), std::min(k1, b));
                                taps(std::integral_constant<int, 2>{}, std::max(k0, b), std::min(k1, r + kw));
                            }
                        }
                    }
                    if (k0 > 0)  // slice + earlier slices, as sgemm_offsets_tile adds a slice to C
                        unroll<P * V>([&](auto i) NANOTORCH_INLINE_LAMBDA {
                            acc[i] = I::add(acc[i], I::load(part + W * i));
                        });
                    if (k0 + kc < K) unroll<P * V>([&](auto i) NANOTORCH_INLINE_LAMBDA { I::store(part + W * i, acc[i]); });
                }
                unroll<V>([&](auto v) NANOTORCH_INLINE_LAMBDA {
                    I::vec rows[W];
                    unroll<W>([&](auto p) NANOTORCH_INLINE_LAMBDA {
                        if constexpr (p < P) rows[p] = acc[p * V + v];
                        else rows[p] = I::zero();
                    });
                    I::transpose(rows);
                    const std::int64_t cn = std::min<std::int64_t>(W, chans - W * v);
                    // The finish runs as a loop over the channels, not unrolled over them: unrolled
                    // (W copies of four optional steps and a masked store, per vector of the
                    // block) clang -O1 with ASan + UBSan took 184 s for kernels.cpp on AVX-512,
                    // 64 s of it in conv_lanes_tiles<4> alone, against 54 s in all this way; the
                    // trip through tr cost nothing measurable (ResNet8 inference and training
                    // step, single layers; Zen 4, AVX-512 and AVX2 builds).
                    alignas(64) float tr[W * W];
                    unroll<W>([&](auto c) NANOTORCH_INLINE_LAMBDA { I::store(tr + W * c, rows[c]); });
                    for (std::int64_t c = 0; c < cn; ++c) {
                        const std::int64_t o = b * CB + W * v + c;
                        const std::int64_t at = n * out_image + o * len + q0;
                        I::vec y = I::load(tr + W * c);
                        if (fin.bias) y = I::add(y, I::broadcast(fin.bias[o]));
                        if (fin.scale) y = lanes_fma(y, I::broadcast(fin.scale[o]), I::broadcast(fin.shift[o]));
                        if (fin.residual) {
                            const I::vec r = I::load_first(fin.residual + at, cnt);
                            y = fin.residual_first ? I::add(r, y) : I::add(y, r);
                        }
                        if (fin.relu) y = I::relu(y);
                        I::store_first(out + at, y, cnt);
                    }
                });
            }
        }
}

/// Pixels per tile of the full blocks on a plane of len pixels: lanes_pixels<LanesIsa::block>,
/// or lanes_block_alt_pixels where that ISA has one and its tiles compute fewer pixels (a tie
/// keeps the first). The same for every thread count: it depends on the plane alone.
inline int lanes_block_pixels(std::int64_t len) {
    constexpr int P = lanes_pixels<LanesIsa::block>, A = lanes_block_alt_pixels;
    if constexpr (A <= 0) {
        return P;
    } else {
        if (len <= 0) return P;
        return (len + A - 1) / A * A < (len + P - 1) / P * P ? A : P;
    }
}

/// The share of conv_lanes_product's multiply-adds that count, as if each ran at the speed of
/// the full blocks' tiles: og output channels run in blocks of LanesIsa::block vectors (the last
/// block narrower), a plane of len pixels in whole tiles, and a one-vector block's tile (a
/// broadcast per multiply-add) is charged lanes_one_vector_cost per product.
inline double lanes_kept(std::int64_t og, std::int64_t len) {
    constexpr std::int64_t W = LanesIsa::width, B = LanesIsa::block;
    const std::int64_t vecs = (og + W - 1) / W, full = vecs / B, rest = vecs % B;
    const auto computed = [len](std::int64_t v, std::int64_t p) {
        return static_cast<double>(W * v * ((len + p - 1) / p * p)) * (v == 1 ? lanes_one_vector_cost : 1.0);
    };
    constexpr int rest_pixels[4] = {1, lanes_pixels<1>, lanes_pixels<2>, lanes_pixels<3>};
    const double done =
        static_cast<double>(full) * computed(B, lanes_block_pixels(len)) + (rest ? computed(rest, rest_pixels[rest]) : 0.0);
    return static_cast<double>(og) * static_cast<double>(len) / done;
}

/// Floats of conv_lanes_product's packed weights for og output channels of K taps.
inline std::int64_t lanes_packed_floats(std::int64_t og, std::int64_t K) {
    constexpr std::int64_t W = LanesIsa::width;
    return (og + W - 1) / W * W * K;
}

/// weight[og, K] (rows K floats apart) packed as conv_lanes_product reads it, into
/// wpack[lanes_packed_floats(og, K)] (64-byte aligned): blocks of LanesIsa::block vectors of
/// channels (64 on AVX-512, 16 on AVX2), then one of the channels left, each as wpack[k][c]
/// (transpose_to_lanes), channels past og zero.
inline void conv_lanes_pack(float* wpack, const float* weight, std::int64_t og, std::int64_t K) {
    constexpr std::int64_t W = LanesIsa::width, CB = W * LanesIsa::block;
    const std::int64_t vecs = (og + W - 1) / W, full = vecs / LanesIsa::block, rest = vecs % LanesIsa::block;
    for (std::int64_t b = 0; b < full; ++b)
        transpose_to_lanes(wpack + b * CB * K, CB, weight + CB * b * K, K, og - CB * b, CB, K);
    if (rest)
        transpose_to_lanes(wpack + full * CB * K, W * rest, weight + CB * full * K, K, og - CB * full, W * rest, K);
}

/// out[n, o, :] (o < og, n < nb; out_image floats apart per image, len per plane) = the product
/// conv_direct_product computes, without its pitched columns: every output pixel of
/// weight[og, K] (rows K floats apart) over the planes (pitch floats per row, out_w output pixels
/// per output row; strides as the window's), each output value finished by `fin`. Reads only
/// inside the planes. `packed`: the weight as conv_lanes_pack packs it, or null to pack it here
/// (on every call: 4 % of a batch-1 ResNet8 inference, which the ONNX runtime saves by packing
/// its Conv initializers once at load). `window`, when the planes are its input zero-padded and
/// K its taps in order: the taps that read only padding are left out (conv_lanes_tiles'
/// Padded). Serial.
inline void conv_lanes_product(float* out, std::int64_t len, std::int64_t out_image, const float* weight,
                               std::int64_t og, std::int64_t K, const float* planes, std::int64_t image_stride,
                               std::int64_t nb, std::int64_t pitch, std::int64_t out_w, std::int64_t stride_h,
                               std::int64_t stride_w, const std::int64_t* row_off, const LanesFinish& fin,
                               const float* packed = nullptr, const Window2d* window = nullptr) {
    constexpr std::int64_t W = LanesIsa::width;
    constexpr int B = LanesIsa::block;
    const std::int64_t vecs = (og + W - 1) / W, full = vecs / B, rest = vecs % B;
    const float* wpack = packed;
    if (!wpack) {
        float* w = scratch(Scratch::conv_weight_panels, lanes_packed_floats(og, K));
        conv_lanes_pack(w, weight, og, K);
        wpack = w;
    }
    if (full) {
        // (without an alternative A names the one width, so no tile of 0 pixels is instantiated)
        constexpr int A = lanes_block_alt_pixels > 0 ? lanes_block_alt_pixels : lanes_pixels<B>;
        const auto tiles = [&](auto padded) {
            constexpr bool Pd = decltype(padded)::value;
            if (lanes_block_pixels(len) == A)
                conv_lanes_tiles<B, A, Pd>(out, len, out_image, wpack, 0, full, og, K, planes, image_stride, nb, pitch,
                                           out_w, stride_h, stride_w, row_off, fin, window);
            else
                conv_lanes_tiles<B, lanes_pixels<B>, Pd>(out, len, out_image, wpack, 0, full, og, K, planes,
                                                         image_stride, nb, pitch, out_w, stride_h, stride_w, row_off,
                                                         fin, window);
        };
        if (window) tiles(std::true_type{});
        else tiles(std::false_type{});
    }
    if (rest) {
        // the rest block as block 0 of its own width: out, the weights and the finish shifted to it
        const std::int64_t first = W * B * full, left = og - first;
        LanesFinish f = fin;
        if (f.bias) f.bias += first;
        if (f.scale) f.scale += first, f.shift += first;
        if (f.residual) f.residual += first * len;
        float* o = out + first * len;
        const float* wr = wpack + first * K;
        unroll<B - 1>([&](auto r) NANOTORCH_INLINE_LAMBDA {  // a block of r + 1 vectors
            constexpr int Vr = static_cast<int>(r) + 1;
            if (rest != Vr) return;
            if (window)
                conv_lanes_tiles<Vr, lanes_pixels<Vr>, true>(o, len, out_image, wr, 0, 1, left, K, planes, image_stride,
                                                             nb, pitch, out_w, stride_h, stride_w, row_off, f, window);
            else
                conv_lanes_tiles<Vr>(o, len, out_image, wr, 0, 1, left, K, planes, image_stride, nb, pitch, out_w,
                                     stride_h, stride_w, row_off, f);
        });
    }
}
#else
inline constexpr bool has_conv_lanes = false;
inline constexpr int lanes_block_alt_pixels = 0;
inline int lanes_block_pixels(std::int64_t) { return 0; }
inline double lanes_kept(std::int64_t, std::int64_t) { return 0.0; }
// Never called where has_conv_lanes is false; declared so that the caller compiles in every build.
inline void conv_lanes_product(float*, std::int64_t, std::int64_t, const float*, std::int64_t, std::int64_t,
                               const float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                               std::int64_t, const std::int64_t*, const LanesFinish&, const float* = nullptr,
                               const Window2d* = nullptr) {}
inline std::int64_t lanes_packed_floats(std::int64_t, std::int64_t) { return 0; }
inline void conv_lanes_pack(float*, const float*, std::int64_t, std::int64_t) {}
#endif

// The share of conv_direct_product's multiply-adds that are kept over pitched columns (its tiles
// pad the output channels to whole rows and each image's pitched columns to whole tiles; the
// columns past a row's end are dropped). Where the direct path reads shifted planes instead
// (implicit_gemm.hpp's shifted_columns_pay) it keeps more, but copies more: measured against
// the lanes on 6 -> 16 5x5 on 14x14 (lanes 0.64 of 1.4x-charged tiles, shifted 0.63), the
// lanes were 5-10 % faster, so the comparison stays with the pitched columns.
inline double direct_kept(std::int64_t og, const Window2d& w) {
    return static_cast<double>(og) * static_cast<double>(w.out_plane()) / direct_tiles_size(og, pitched_columns(w));
}

// Whether conv2d_forward_fused takes conv_lanes_product, from the shapes alone (so the same for
// every thread count).
// AVX-512 (Zen 5). Against the direct path (direct_pays): where it keeps over 1.15 times the
// share of multiply-adds the direct path keeps (the two tiles ran at about the same speed per
// multiply-add computed: 75-80 % of peak, but the examples/mnist net's 32 -> 64 layer on
// 26x26, 0.985 against 0.88 kept, ran 4 % slower at batch 64). Against the GEMMs: where K is
// short (below 64: the GEMMs copy more than they multiply; a 1x1 stride-2 layer ran 1.7x faster)
// or the output channels few (at most 64: 64 -> 64 on 8x8 1.2x; 128 and more keep the GEMM, 75-80 %
// of peak), and at least 85 % is kept. Never for K below 16 (a finished tile's transposes and
// stores then outweigh its multiply-adds), nor for output planes of a multiple of 256 floats: a
// tile's stores then fall 1 KB or 4 KB apart, in a few L1 sets, and 3 -> 64 on 32x32 (K = 27)
// ran 2.5x slower than the GEMM.
// AVX2 (Zen 3, 1 thread, batch 64, conv2d_forward alone, the lanes product forced on and off in
// turn; the machine noisy, so several runs each): the lanes product runs at 70-80 % of peak from
// K = 128 up, where the direct path ran at 50-75 %: against the direct path it won where it
// keeps more (64 -> 64 on 7x7 1.24x, 32 -> 32 on 14x14 1.22x, 5x5 10 -> 20 on 12x12 1.4x, 6 -> 16
// on 14x14 1.64x), on layers of 64 channels and more even where the shares kept are close
// (64 -> 64 on 32x32 1.25-1.31x, 32 -> 64 on 26x26 1.24-1.65x, 256 -> 256 on 16x16 1.28x,
// 128 -> 128 on 16x16 1.13x; 64 -> 128 on 16x16 0.95-1.01x), and on strided windows, where the
// direct path reads phase planes (16 -> 32 stride 2 from 28x28 1.26x, 32 -> 64 from 14x14 1.34x);
// with fewer channels and close shares it ran at parity (16 -> 16 and 32 -> 32 on 28x28:
// 0.93-1.03x), and below K = 128 it lost (K = 72 0.92-0.95x, K = 27 0.66x). Against the GEMMs it
// won up to K = 2304 (1x1 stride 2 1.05-2.3x; 3x3 on 4x4 and stride 2 to 8x8 with 128-512
// channels 1.1-1.55x) and lost past it to the small-N GEMM on 4x4 planes (384 -> 384 0.95x,
// 512 -> 512 0.53x). No plane size stood out on AVX2 (16x16 and 32x32 won).
inline bool lanes_conv_pays(std::int64_t og, std::int64_t K, const Window2d& w, bool direct_pays) {
    const std::int64_t len = w.out_plane();
    if (!has_conv_lanes || K < 16) return false;
    const double kept = lanes_kept(og, len);
    if (simd_width >= 16) {
        if (len % 256 == 0) return false;
        return direct_pays ? kept > 1.15 * direct_kept(og, w) : (K < 64 || og <= 64) && kept >= 0.85;
    }
    if (!direct_pays) return K <= 2304 && kept >= 0.85;
    const bool strided = w.stride_h > 1 || w.stride_w > 1;
    return K >= 128 && kept >= (og >= 64 || strided ? 1.0 : 1.1) * direct_kept(og, w);
}

}  // namespace nanotorch::kernels::detail
