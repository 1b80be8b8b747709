// nanotorch/kernels/winograd.hpp — 3×3 and 5×5, stride-1 convolution by Winograd's minimal
// filtering F(2×2, r×r) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).
//
// Each 2×2 block ("tile") of an output plane is computed from the n×n patch (n = r + 1) of the
// zero-padded input under it: Y = Aᵀ·[Σ_c (G·g_oc·Gᵀ) ⊙ (Bᵀ·d_c·B)]·A. For r = 3 (points 0, ±1, ∞)
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1];
// for r = 5 (points 0, ±1, ±2, ∞; Bᵀ is then F(4×4, 3×3)'s, which uses the same points)
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1],
//   G = [¼ 0 0 0 0; −⅙(1 1 1 1 1); −⅙(1 −1 1 −1 1); ¹⁄₂₄(1 2 4 8 16); ¹⁄₂₄(1 −2 4 −8 16); 0 0 0 0 1],
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 1].
// The sum over input channels is, for each of the n² positions ξ of the transform, one matrix
// product M_ξ[O, tiles] = U_ξ[O, C] · V_ξ[C, tiles] (kernels/winograd_product.hpp): n² multiply-adds
// per tile and channel pair where the direct convolution spends 4·r² (16 against 36 for r = 3,
// 36 against 100 for r = 5), at the price of the transforms (O(input + output) work, next to the
// products' O(input · O)). For r = 3 the input and output transforms only add (coefficients ±1)
// and G holds ½, exact in binary; for r = 5 the transforms scale by 2, 4 and 5 and G by ⅙ and
// ¹⁄₂₄, so inputs are amplified up to 10× per axis before the products and rounding grows with
// them. The result is not the direct convolution's bit for bit: it sums other products in
// another order, and the input transform can cancel (x0 − x2) before the products;
// tests/test_conv.cpp states the bound each size is held to.
//
// Work is cut into blocks of tiles fixed by the shape alone (winograd_blocks: whole images, or
// runs of tile rows of one image for large planes), each block transformed, multiplied and
// transformed back by one task, so every output element is computed the same way for every
// thread count and every batch split.
#pragma once

#include <algorithm>  // std::min/max, std::fill
#include <cstdint>
#include <cstring>    // std::memcpy
#include <type_traits>  // std::is_same_v

#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/window.hpp>
#include <nanotorch/kernels/winograd_product.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels::detail {

/// Whether F(2×2, r×r) applies to the window at all: a square 3×3 or 5×5 kernel, stride 1, no
/// dilation.
inline bool winograd_window(const Window2d& w) {
    return (w.kernel_h == 3 || w.kernel_h == 5) && w.kernel_w == w.kernel_h && w.stride_h == 1 && w.stride_w == 1 &&
           w.dilation_h == 1 && w.dilation_w == 1 && w.out_h > 0 && w.out_w > 0;
}

/// n² for F(2×2, r×r), n = r + 1: the positions ξ of the transform, each one product.
inline constexpr std::int64_t winograd_positions(std::int64_t r) { return (r + 1) * (r + 1); }

// The one-dimensional transforms of F(2, r), over floats or vectors of them (V): `input` y = Bᵀ·x
// (n values), `output` (y0, y1) = Aᵀ·m, `grad` y = A·(e, o) (the weight gradient's transform of
// two outputs' gradients), `weight` u = G·g and `weight_grad` g = Gᵀ·s over Acc (once per call,
// not per tile). Each is written once, for the vector body and the scalar tail alike (for r = 5
// a compiler may still fuse a scalar tail's multiply and add where a vector's are not fused; which
// tiles run in which is fixed by the shape, so results still do not depend on the thread count).
template <int R>
struct Winograd2;

template <>
struct Winograd2<3> {
    static constexpr int n = 4;
    using Acc = float;
    template <class V>
    static NANOTORCH_ALWAYS_INLINE void input(const V* x, V* y) {
        y[0] = x[0] - x[2];
        y[1] = x[1] + x[2];
        y[2] = x[2] - x[1];
        y[3] = x[1] - x[3];
    }
    template <class V>
    static NANOTORCH_ALWAYS_INLINE void output(const V* m, V& y0, V& y1) {
        y0 = (m[0] + m[1]) + m[2];
        y1 = (m[1] - m[2]) - m[3];
    }
    template <class V>
    static NANOTORCH_ALWAYS_INLINE void grad(const V& e, const V& o, V* y) {
        y[0] = e;
        y[1] = e + o;
        y[2] = e - o;
        y[3] = V(0.0f) - o;
    }
    static void weight(const Acc* g, Acc* u) {
        u[0] = g[0];
        u[1] = 0.5f * ((g[0] + g[1]) + g[2]);
        u[2] = 0.5f * ((g[0] - g[1]) + g[2]);
        u[3] = g[2];
    }
    static void weight_grad(const Acc* s, Acc* g) {
        g[0] = s[0] + 0.5f * (s[1] + s[2]);
        g[1] = 0.5f * (s[1] - s[2]);
        g[2] = 0.5f * (s[1] + s[2]) + s[3];
    }
};

template <>
struct Winograd2<5> {
    static constexpr int n = 6;
    using Acc = double;  // G's ⅙ and ¹⁄₂₄ rounded once, on the transformed value
    template <class V>
    static NANOTORCH_ALWAYS_INLINE void input(const V* x, V* y) {
        const V two(2.0f), four(4.0f), five(5.0f);
        y[0] = (x[0] * four - x[2] * five) + x[4];
        const V a = x[4] - x[2] * four, b = x[3] - x[1] * four;
        y[1] = a + b;
        y[2] = a - b;
        const V c = x[4] - x[2], d = (x[3] - x[1]) * two;
        y[3] = c + d;
        y[4] = c - d;
        y[5] = (x[1] * four - x[3] * five) + x[5];
    }
    template <class V>
    static NANOTORCH_ALWAYS_INLINE void output(const V* m, V& y0, V& y1) {
        y0 = (((m[0] + m[1]) + m[2]) + m[3]) + m[4];
        y1 = ((m[1] - m[2]) + (m[3] - m[4]) * V(2.0f)) + m[5];
    }
    template <class V>
    static NANOTORCH_ALWAYS_INLINE void grad(const V& e, const V& o, V* y) {
        const V o2 = o * V(2.0f);
        y[0] = e;
        y[1] = e + o;
        y[2] = e - o;
        y[3] = e + o2;
        y[4] = e - o2;
        y[5] = o;
    }
    static void weight(const Acc* g, Acc* u) {
        const Acc e = (g[0] + g[2]) + g[4], o = g[1] + g[3];
        const Acc e2 = (g[0] + 4 * g[2]) + 16 * g[4], o2 = 2 * g[1] + 8 * g[3];
        u[0] = g[0] / 4;
        u[1] = -(e + o) / 6;
        u[2] = -(e - o) / 6;
        u[3] = (e2 + o2) / 24;
        u[4] = (e2 - o2) / 24;
        u[5] = g[4];
    }
    static void weight_grad(const Acc* s, Acc* g) {
        const Acc a = s[1] + s[2], b = s[2] - s[1], c = s[3] + s[4], d = s[3] - s[4];
        g[0] = (s[0] / 4 - a / 6) + c / 24;
        g[1] = b / 6 + d / 12;
        g[2] = c / 6 - a / 6;
        g[3] = b / 6 + d / 3;
        g[4] = (2 * c / 3 - a / 6) + s[5];
    }
};

// Blocks hold at least winograd_min_tiles tiles (the N of the n² products), more where the
// transformed input and products (n²·(C + O) floats per tile) fit winograd_block_floats: with
// these the products ran at 75-85 % of the FMA peak (measured against 2x and 4x larger blocks;
// for 5×5, 40 -> 80 on 12x12, blocks of 32 tiles lost 1.2x, and of 128 or 256 tiles 4-5 % in
// the forward and 10 % in the weight gradient, the input gradient within 3 %).
inline constexpr std::int64_t winograd_block_floats = 96 * 1024;  // V and M of one block: 384 KB
inline constexpr std::int64_t winograd_min_tiles = 64;

// The fewest tiles a batch must hold (or half as many in one image) for the transforms of the
// weights and the narrow products of a small batch to pay: measured at batch 1-16 on Zen 4 (the
// passes as below), 64 -> 64 on 32x32 won 1.3x at batch 1 (256 tiles), 128 -> 128 on 16x16 lost
// at batch 1 (0.72x, 64 tiles) and won at 4 (1.28x), 96 -> 96 on 12x12 lost at 2 to 8 (0.73-1.03x,
// 72-288 tiles) and won at 16 (1.14x), 128 -> 128 on 8x8 lost at 8 and 16 (0.74-1.01x, 128-256
// tiles); the weight gradient won from batch 8 on.
inline constexpr std::int64_t winograd_min_batch_tiles = 512;

/// Whether the weight gradient of a convolution of cg input and og output channels per group is
/// summed by F(2×2, r×r) (conv2d_backward; on AVX2 also the forward and the input gradient:
/// winograd_pays), from the shape alone. Measured on AVX-512 (AMD Zen 4, 1 thread, batch 64, -O3,
/// each pass alone, builds with and without it alternating, best of 5-8; × = the other paths'
/// time over this one's, forward / input gradient / weight gradient, with the products still
/// sgemm's): 64 -> 64 on 32x32 1.5 / 1.5 / 1.26, 128 -> 128 on 16x16 1.3-1.7 / 1.3-1.7 / 1.39,
/// 256 -> 256 on 8x8 1.35-1.5 / 1.4 / 1.33, 96 -> 96 on 10x10 1.3 / 1.3 / 1.4 and on 12x12
/// 1.2-1.28 / 1.23 / 1.4, 128 -> 128 on 8x8 1.24 / 1.17 / 1.13, 64 -> 64 on 12x12 1.11 / 1.11 /
/// 1.17 and on 14x14 1.13 / 1.14 / 1.24, 48 -> 96 on 20x20 1.1-1.3 / 1.32 / 1.29; with 48 outputs,
/// 96 -> 48 on 20x20 1.15-1.39 forward, 1.13-1.39 weight gradient, 128 -> 48 on 16x16 1.23-1.45 /
/// - / 1.13-1.24, 64 -> 48 on 32x32 1.24-1.41 / - / 1.14, 96 -> 48 on 12x12 1.0 (all three).
/// Lost, where the products are small next to the transforms or the 2×2 tiles overhang the
/// plane: 80 -> 80 on 9x9 1.03 / 1.02 / 0.92, 128 -> 128 on 4x4 0.95 / 0.8 / 0.7, 64 -> 64 on
/// 10x10 0.97 and on 8x8 0.85 (forward), 48 -> 48 on 14x14 0.95, 32 -> 32 on 14x14 to 32x32
/// 0.6-1.0, 16 -> 16 on 28x28 0.66, 64 -> 64 on 7x7 (8x8 computed) 0.74, 3 -> 64 on 32x32 0.3.
/// The same build for AVX2 on that host (forward): 1.87x on 64 -> 64 on 32x32, 1.26x on 14x14,
/// 1.39x on 128 -> 128 on 16x16, 1.3x on 256 -> 256 on 8x8, 1.1x on 96 -> 96 on 10x10 and 48 -> 96
/// on 20x20, 0.75x on 64 -> 64 on 8x8. Hence, for 3×3: at least 48 input and 48 output channels,
/// 112 together (48 -> 48 lost). For 5×5 (36 products per 4 outputs where the direct path spends
/// 100; the same host, padding 2): 40 -> 80 on 12x12 1.31 / 1.34 / 1.27, 24 -> 48 on 24x24 1.32 /
/// 1.36 / 1.0, 48 -> 48 on 16x16 1.28 / 1.39 / 1.09, 32 -> 64 on 14x14 1.10 / 1.13 / 1.22, 64 ->
/// 128 on 16x16 1.7 / 1.7 / 1.5, 96 -> 96 on 10x10 1.5 / 1.6 / 1.4-1.55, 128 -> 128 on 8x8
/// 1.1-1.17 / 1.08-1.14 / 1.15-1.2; lost or even: 16 -> 32 on 28x28 1.03 / 1.03 / 0.81, 32 -> 32
/// on 14x14 0.98 / 1.01 / 1.0, 16 -> 16 on 28x28 0.71 / 0.83 / 0.7, 64 -> 64 on 8x8 1.2 / 0.8 /
/// 0.88, 20 -> 50 on 12x12 unpadded 1.03 / 0.44 / 0.91, the seed net's 10 -> 20 0.44-0.57.
/// Hence, for 5×5: at least 24 input and 24 output channels, 72 together. For both: tiles
/// covering at most 1.25 times the plane, a plane of at least 12x12, or of 8x8 with 96 channels
/// or more on both sides; and at least winograd_min_batch_tiles tiles in the batch, or half
/// that in one image. Native x86 SIMD builds only (WebAssembly's and the scalar build's were not
/// measured; the kernel itself runs everywhere, and the tests run it there).
#if NANOTORCH_SIMD_ENABLED && (defined(__AVX512F__) || defined(__AVX2__))
inline constexpr bool has_winograd_rule = true;
#else
inline constexpr bool has_winograd_rule = false;
#endif
inline bool winograd_weight_grad_pays(std::int64_t cg, std::int64_t og, const Window2d& w, std::int64_t batch) {
#if NANOTORCH_SIMD_ENABLED && (defined(__AVX512F__) || defined(__AVX2__))
    if (!winograd_window(w)) return false;
    const std::int64_t least = w.kernel_h == 5 ? 24 : 48, together = w.kernel_h == 5 ? 72 : 112;
    if (cg < least || og < least || cg + og < together) return false;
    const std::int64_t th = (w.out_h + 1) / 2, tw = (w.out_w + 1) / 2, plane = w.out_plane();
    if (4 * 100 * th * tw > 125 * plane) return false;
    if (plane < 144 && (plane < 64 || std::min(cg, og) < 96)) return false;
    return batch * th * tw >= winograd_min_batch_tiles || th * tw >= winograd_min_batch_tiles / 2;
#else
    (void)cg, (void)og, (void)w, (void)batch;
    return false;
#endif
}

/// Whether a convolution of cg input and og output channels per group runs forward by F(2×2,
/// r×r) (conv2d_forward_fused; conv2d_backward's input gradient, the flipped convolution, asks
/// with its own shape), from the shape alone. On AVX2: winograd_weight_grad_pays. On AVX-512,
/// since the products have their own kernel (winograd_product.hpp) and the output transform
/// writes its rows with permutes, the forward also pays with few channels. Measured on Zen 4
/// (1 thread, batch 64, F(2×2, r×r) against the path taken otherwise, forward / input gradient):
/// 3×3 16 -> 16 on 28x28 1.09 / 1.25, on 16x16 1.14 / 1.23, on 14x14 1.14 / 1.15, on 13x13 1.12 /
/// 1.15, on 12x12 0.92 / 0.84-0.93 (lost), 16 -> 32 and 32 -> 32 on 28x28 1.3 / 1.13 and 1.2 /
/// 1.17, 16 -> 64 and 64 -> 16 on 28x28 1.10 / 1.09 and 1.08 / 1.19, 16 -> 16 on 56x56 1.02 /
/// 1.06, 24 -> 24 on 14x14 and 12x12 1.35 and 1.32, 32 -> 32 on 14x14 1.21 / 1.26 and on 12x12
/// 1.31 / 1.26, 16 -> 32 on 12x12 1.09 / 1.10, 20 -> 20 on 20x20 1.29 / 1.30, 48 -> 48 on 14x14
/// 1.52 / 1.43, 32 -> 64 on 26x26 unpadded 1.29 / 1.09, 12 -> 12 on 28x28 1.13 / 1.11; 5×5 16 ->
/// 16 on 28x28, 14x14 and 12x12 1.29 / 1.35, 1.41 / 1.38, 1.11 / 1.10, 16 -> 32 on 28x28 1.33 /
/// 1.42, 32 -> 32 on 14x14 1.35 / 1.39, 24 -> 24 on 12x12 1.5 / 1.5. (The AVX2 build of the same
/// code on that host lost on 16 -> 16 on 28x28 and 14x14, 0.87 and 0.67, and was even on 32 ->
/// 32 on 14x14; its weight gradient, summed by sgemm, still lost on these shapes: 16 -> 16 on
/// 28x28 0.57, 32 -> 32 on 14x14 0.91.) Hence, on AVX-512: at least 16 input and 16 output
/// channels, and 48 together or a plane of 13x13 or more; the plane, overhang and batch
/// conditions as above.
inline bool winograd_pays(std::int64_t cg, std::int64_t og, const Window2d& w, std::int64_t batch) {
    if (simd_width < 16) return winograd_weight_grad_pays(cg, og, w, batch);
#if NANOTORCH_SIMD_ENABLED && defined(__AVX512F__) && !defined(NANOTORCH_SIMD_WASM)
    if (!winograd_window(w)) return false;
    const std::int64_t th = (w.out_h + 1) / 2, tw = (w.out_w + 1) / 2, plane = w.out_plane();
    if (cg < 16 || og < 16 || (cg + og < 48 && plane < 169)) return false;
    if (4 * 100 * th * tw > 125 * plane) return false;
    if (plane < 144 && (plane < 64 || std::min(cg, og) < 96)) return false;
    return batch * th * tw >= winograd_min_batch_tiles || th * tw >= winograd_min_batch_tiles / 2;
#else
    return false;
#endif
}

/// How a batch is cut into blocks of tiles: a block's transformed input (n²·C·tiles floats) and
/// products (n²·O·tiles) are sized to stay in a core's L2 next to the transformed weights.
struct WinogradBlocks {
    std::int64_t r = 3;           // the kernel's size: F(2×2, r×r)
    std::int64_t th = 0, tw = 0;  // 2×2 output tiles per image: rows, columns
    std::int64_t rows = 0;        // tile rows per block (all th when a block holds whole images)
    std::int64_t images = 1;      // images per block (1 when an image is cut into several blocks)
    std::int64_t per_image = 1;   // blocks per image (1 when a block holds whole images)
    std::int64_t tiles = 0;       // tiles in a full block
    std::int64_t count(std::int64_t batch) const {
        return images > 1 ? (batch + images - 1) / images : batch * per_image;
    }
    // A padded input row holds 2·tw + r − 1 floats: steps() 2-float steps, one per tile and
    // (r − 1) / 2 past the last; a block reads 2·rows + r − 1 of them (qrows).
    std::int64_t steps() const { return tw + (r - 1) / 2; }
    std::int64_t qrows() const { return 2 * rows + r - 1; }
};

inline WinogradBlocks winograd_blocks(std::int64_t cg, std::int64_t og, const Window2d& w) {
    WinogradBlocks b;
    b.r = w.kernel_h;
    b.th = (w.out_h + 1) / 2;
    b.tw = (w.out_w + 1) / 2;
    const std::int64_t target = std::max<std::int64_t>(
        winograd_min_tiles, winograd_block_floats / (winograd_positions(b.r) * std::max<std::int64_t>(1, cg + og)));
    const std::int64_t per = b.th * b.tw;
    if (per >= target) {
        b.rows = std::max<std::int64_t>(1, std::min(b.th, target / b.tw));
        b.per_image = (b.th + b.rows - 1) / b.rows;
        b.images = 1;
    } else {
        b.rows = b.th;
        b.images = (target + per - 1) / per;
        b.per_image = 1;
    }
    b.tiles = b.images * b.rows * b.tw;
    return b;
}

// Elementwise passes over runs of tiles, written once for whole vectors, a masked last vector
// (AVX-512: rows of 14, 7 or 4 tiles would otherwise run one float at a time) or single floats:
// the same additions in the same order, so every lane gets the same bits. Their loops over the n
// values of a tile are unrolled by construction (unroll<n>): GCC 12 unrolls such loops fully
// only at -O3 (-fpeel-loops), and at -O2 (Debian's default flags, meson's debugoptimized, CMake's
// RelWithDebInfo) the n vectors went through the stack: the forward ran 1.2-1.5x slower than at
// -O3 on Zen 4 (24 -> 24 on 14x14 1.52-1.95 ms against 1.11; now 1.12 at both levels).
struct WinogradScalarIo {
    float ld(const float* p) const { return *p; }
    void st(float* p, float v) const { *p = v; }
};
#if NANOTORCH_SIMD_ENABLED
struct WinogradVectorIo {
    fbatch ld(const float* p) const { return fbatch::load_unaligned(p); }
    void st(float* p, const fbatch& v) const { v.store_unaligned(p); }
};
struct WinogradPartialIo {  // lanes [0, n): reads and writes nothing past them
    std::int64_t n;
    fbatch ld(const float* p) const { return load_partial(p, n); }
    void st(float* p, const fbatch& v) const { store_partial(p, v, n); }
};
#endif
template <class F>
NANOTORCH_ALWAYS_INLINE void winograd_runs(std::int64_t n, F f) {
    std::int64_t i = 0;
#if NANOTORCH_SIMD_ENABLED
    for (; i + simd_width <= n; i += simd_width) f(i, WinogradVectorIo{});
    if constexpr (has_partial_vectors) {
        if (i < n) f(i, WinogradPartialIo{n - i});
        return;
    }
#endif
    for (; i < n; ++i) f(i, WinogradScalarIo{});
}

/// u[ξ][o][c] = (G·g·Gᵀ)[ξ] for weight[o, c, r, r] (one group: og × cg kernels), ξ = n·row + column:
/// winograd_positions(r)·og·cg floats.
template <int R>
void winograd_weights_r(float* u, const float* weight, std::int64_t og, std::int64_t cg) {
    using T = Winograd2<R>;
    using Acc = typename T::Acc;
    constexpr int n = T::n;
    const std::int64_t plane = og * cg;
    for (std::int64_t o = 0; o < og; ++o)
        for (std::int64_t c = 0; c < cg; ++c) {
            const float* g = weight + (o * cg + c) * R * R;
            Acc t[n][R];  // G·g, column by column
            for (int j = 0; j < R; ++j) {
                Acc col[R], tc[n];
                for (int k = 0; k < R; ++k) col[k] = g[k * R + j];
                T::weight(col, tc);
                for (int i = 0; i < n; ++i) t[i][j] = tc[i];
            }
            float* at = u + o * cg + c;
            for (int i = 0; i < n; ++i) {
                Acc row[n];
                T::weight(t[i], row);
                for (int k = 0; k < n; ++k) at[(n * i + k) * plane] = static_cast<float>(row[k]);
            }
        }
}
inline void winograd_weights(float* u, const float* weight, std::int64_t og, std::int64_t cg, std::int64_t r) {
    if (r == 5)
        winograd_weights_r<5>(u, weight, og, cg);
    else
        winograd_weights_r<3>(u, weight, og, cg);
}

#if NANOTORCH_SIMD_ENABLED && defined(__AVX512F__)
// even = p[0], p[2], ..., p[30]; odd = p[1], p[3], ..., p[31]
inline void winograd_deinterleave(const float* p, fbatch& even, fbatch& odd) {
    const __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    even = fbatch(_mm512_permutex2var_ps(a, ie, b));
    odd = fbatch(_mm512_permutex2var_ps(a, io, b));
}
#elif NANOTORCH_SIMD_ENABLED && defined(__AVX2__)
// even = p[0], p[2], ..., p[14]; odd = p[1], p[3], ..., p[15]
inline void winograd_deinterleave(const float* p, fbatch& even, fbatch& odd) {
    const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    // within 128-bit halves: [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit quarters reordered
    const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    even = fbatch(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
    odd = fbatch(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0))));
}
#endif

// The horizontal half of the input transform over a stream of 2-float steps: for j < count,
// h[k·hs + j] = (Bᵀ x)[k] of x = p[2j .. 2j + r], so it reads r − 1 floats past p[2·count] (the
// last row's unused tiles; winograd_padded_floats leaves room for them and the caller zeroes them).
template <int R>
void winograd_rows_transform(float* h, std::int64_t hs, const float* p, std::int64_t count) {
    using T = Winograd2<R>;
    constexpr int n = T::n;
    std::int64_t j = 0;
#if NANOTORCH_SIMD_ENABLED && (defined(__AVX512F__) || defined(__AVX2__))
    for (; j + simd_width <= count; j += simd_width) {
        fbatch x[n], y[n];  // x[k] = p[2j + k] per lane
        unroll<n / 2>([&](auto k) NANOTORCH_INLINE_LAMBDA {
            winograd_deinterleave(p + 2 * j + 2 * k, x[2 * k], x[2 * k + 1]);
        });
        T::input(x, y);
        unroll<n>([&](auto k) NANOTORCH_INLINE_LAMBDA { y[k].store_unaligned(h + k * hs + j); });
    }
#endif
    for (; j < count; ++j) {
        float y[n];
        T::input(p + 2 * j, y);
        for (int k = 0; k < n; ++k) h[k * hs + j] = y[k];
    }
}

// Floats of one channel's horizontal transforms (per k) and of its padded rows (with the slack
// the horizontal step reads past them).
inline std::int64_t winograd_hstride(const WinogradBlocks& b) { return b.qrows() * b.steps(); }
inline std::int64_t winograd_padded_floats(const WinogradBlocks& b) { return b.qrows() * 2 * b.steps() + b.r - 1; }

/// Scratch floats of one task: V and M of a full block, one channel's horizontal transforms and
/// padded rows, the output transform's values of one tile row and the output rows of one channel.
inline std::int64_t winograd_task_floats(std::int64_t cg, std::int64_t og, const Window2d& w, const WinogradBlocks& b) {
    return winograd_positions(b.r) * ((cg + og) * winograd_ld(b.tiles) + 2 * simd_width) +
           (b.r + 1) * winograd_hstride(b) + winograd_padded_floats(b) + 4 * b.tw + 2 * b.rows * w.out_w;
}

// One block of tiles: images n0 .. n0 + nimg − 1, tile rows ty0 .. ty0 + rows − 1 of each.
struct WinogradBlock {
    std::int64_t n0 = 0, nimg = 1, ty0 = 0, rows = 0;
    std::int64_t tiles(std::int64_t tw) const { return nimg * rows * tw; }
};
inline WinogradBlock winograd_block(const WinogradBlocks& b, std::int64_t blk, std::int64_t batch) {
    WinogradBlock k;
    if (b.images > 1) {
        k.n0 = blk * b.images, k.nimg = std::min(b.images, batch - k.n0), k.ty0 = 0, k.rows = b.th;
    } else {
        k.n0 = blk / b.per_image, k.nimg = 1, k.ty0 = blk % b.per_image * b.rows;
        k.rows = std::min(b.rows, b.th - k.ty0);
    }
    return k;
}

// V[ξ][c][t] = (Bᵀ·d·B)[ξ] for the block's tiles (t = (image·rows + row)·tw + column; V_ξ at
// v + ξ·xs, its rows ld floats apart) and cg channels of images (image n at images + n·image_stride).
// h: n·winograd_hstride(b) floats, padded: winograd_padded_floats(b). The block's zero-padded
// rows of one channel lie back to back, 2·steps floats each (even, so tile tx of row q starts
// at float 2·j with j = q·steps + tx): the horizontal step runs over all of them as one stream
// of 2-float steps, the last (r − 1) / 2 "tiles" of each row reading into the next row
// (computed, never used).
template <int R>
void winograd_input_block(float* v, std::int64_t xs, std::int64_t ld, const WinogradBlock& k, const WinogradBlocks& b,
                          const float* images, std::int64_t image_stride, std::int64_t cg, const Window2d& w,
                          float* h, float* padded) {
    constexpr int n = Winograd2<R>::n;
    const std::int64_t tw = b.tw, steps = b.steps(), pw = 2 * steps, hstride = winograd_hstride(b);
    const std::int64_t qrows = 2 * k.rows + R - 1;
    // a padded row: pad_w zeros (lead), the input row (body), zeros to pw
    const std::int64_t lead = std::min(w.pad_w, pw), body = std::max<std::int64_t>(0, std::min(w.in_w, pw - lead));
    // The zeros (rows above and below the image, the columns left and right of it, and what the
    // last row's unused tiles read) are the same for every channel: written once per block.
    zero_floats(padded, qrows * pw + R - 1);
    const std::int64_t y0 = std::max<std::int64_t>(0, w.pad_h - 2 * k.ty0);  // the rows the image covers
    const std::int64_t y1 = std::min(qrows, w.in_h + w.pad_h - 2 * k.ty0);
    for (std::int64_t i = 0; i < k.nimg; ++i)
        for (std::int64_t c = 0; c < cg; ++c) {
            const float* x = images + (k.n0 + i) * image_stride + c * w.in_plane();
            for (std::int64_t q = y0; q < y1; ++q)
                copy_floats(padded + q * pw + lead, x + (2 * k.ty0 + q - w.pad_h) * w.in_w, body);
            winograd_rows_transform<R>(h, hstride, padded, qrows * steps);
            for (std::int64_t r = 0; r < k.rows; ++r) {
                const std::int64_t t0 = (i * k.rows + r) * tw;
                for (int col = 0; col < n; ++col) {
                    const float* a = h + col * hstride + 2 * r * steps;  // rows 2r .. 2r + n − 1, column col
                    float* vt = v + col * xs + c * ld + t0;                // V[a·n + col][c][t0 ..]
                    winograd_runs(tw, [&](std::int64_t j, auto io) NANOTORCH_INLINE_LAMBDA {
                        using V = decltype(io.ld(a));
                        V e[n], y[n];
                        unroll<n>([&](auto q) NANOTORCH_INLINE_LAMBDA { e[q] = io.ld(a + q * steps + j); });
                        Winograd2<R>::input(e, y);
                        unroll<n>([&](auto q) NANOTORCH_INLINE_LAMBDA { io.st(vt + q * n * xs + j, y[q]); });
                    });
                }
            }
        }
}

#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && defined(__AVX512F__)
/// Whether the output transform writes its rows with winograd_interleave_row (AVX-512: every run
/// of tiles is a vector, the last one masked), rather than through ys and a scalar interleave.
inline constexpr bool winograd_vector_rows = true;
// dst[2t] = left[t], dst[2t + 1] = right[t] for 2t + 1 < n (and dst[2t] alone where 2t + 1 = n):
// the output transform's two tile columns as one output row, two permutes and masked stores,
// nothing written at or past dst + n.
NANOTORCH_ALWAYS_INLINE void winograd_interleave_row(float* dst, std::int64_t n, const fbatch& left,
                                                     const fbatch& right) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const fbatch a(_mm512_permutex2var_ps(left, lo, right)), b(_mm512_permutex2var_ps(left, hi, right));
    if (n >= 2 * simd_width) {
        a.store_unaligned(dst);
        b.store_unaligned(dst + simd_width);
    } else if (n > simd_width) {
        a.store_unaligned(dst);
        store_partial(dst + simd_width, b, n - simd_width);
    } else if (n == simd_width) {
        a.store_unaligned(dst);
    } else if (n > 0) {
        store_partial(dst, a, n);
    }
}
#else
inline constexpr bool winograd_vector_rows = false;
#endif

/// The raw convolution (no bias) of one group, block by block: `store(n, o, row0, rows, src)`
/// receives `rows` output rows of image n (0.. of the batch passed in), channel o (0..og),
/// starting at output row row0 (even), out_w floats each, contiguous, in the task's scratch
/// (store may overwrite them).
/// u from winograd_weights; images[n] at images + n·image_stride, cg planes of in_h × in_w.
/// Blocks are spread over parallel_for; each task calls store for its own rows only.
template <int R, class Store>
void conv_winograd_r(const float* u, std::int64_t og, std::int64_t cg, const float* images, std::int64_t image_stride,
                     std::int64_t batch, const Window2d& w, Store store) {
    using Tr = Winograd2<R>;
    constexpr int n = Tr::n, P = n * n;
    const WinogradBlocks b = winograd_blocks(cg, og, w);
    const std::int64_t tw = b.tw;
    const std::int64_t hstride = winograd_hstride(b), pad_floats = winograd_padded_floats(b);
    parallel_for(0, b.count(batch), 1, [&](std::int64_t b0, std::int64_t b1) {
        float* work = scratch(Scratch::winograd_work, winograd_task_floats(cg, og, w, b));
        for (std::int64_t blk = b0; blk < b1; ++blk) {
            const WinogradBlock k = winograd_block(b, blk, batch);
            const std::int64_t T = k.tiles(tw);       // tiles of this block: the products' N
            const std::int64_t ld = winograd_ld(T);   // V's and M's rows: whole vectors
            // V_ξ and M_ξ one vector further apart than their rows need: the output transform
            // reads the n² M_ξ at once, and with og·ld a multiple of 1024 floats (64 channels,
            // 64 tiles) all n² rows fell in one set of the L1 cache (24 -> 48 5x5: 0.93x).
            const std::int64_t vs = cg * ld + simd_width, ms = og * ld + simd_width;
            float* v = work;                          // V[ξ][c][t]
            float* m = v + P * vs;                    // M[ξ][o][t]
            float* h = m + P * ms;                    // horizontal transforms: [k][q·steps + tx]
            float* padded = h + n * hstride;          // one channel's zero-padded rows
            float* ys = padded + pad_floats;          // the output transform's 4 values per tile
            float* out_rows = ys + 4 * tw;            // a channel's finished rows of the block
            winograd_input_block<R>(v, vs, ld, k, b, images, image_stride, cg, w, h, padded);
            if (ld > T)  // the products also compute the lanes past T: keep them finite
                for (std::int64_t xi = 0; xi < P; ++xi)
                    for (std::int64_t c = 0; c < cg; ++c)
                        std::fill(v + xi * vs + c * ld + T, v + xi * vs + (c + 1) * ld, 0.0f);
            // ---- the n² products M_ξ = U_ξ · V_ξ ----
            for (std::int64_t xi = 0; xi < P; ++xi)
                winograd_product(m + xi * ms, u + xi * og * cg, v + xi * vs, og, cg, T, ld);
            // ---- output transform: Y = Aᵀ·M·A per tile and output channel ----
            const std::int64_t row0 = 2 * k.ty0, nrows = std::min(2 * k.rows, w.out_h - row0);
            for (std::int64_t i = 0; i < k.nimg; ++i)
                for (std::int64_t o = 0; o < og; ++o) {
                    for (std::int64_t r = 0; r < k.rows; ++r) {
                        const float* mt = m + o * ld + (i * k.rows + r) * tw;
                        const std::int64_t mstep = ms;  // from M_ξ to M_ξ+1
                        winograd_runs(tw, [&](std::int64_t j, auto io) NANOTORCH_INLINE_LAMBDA {
                            using V = decltype(io.ld(mt));
                            V s0[n], s1[n], y00, y01, y10, y11;
                            unroll<n>([&](auto a) NANOTORCH_INLINE_LAMBDA {
                                V mr[n];
                                unroll<n>([&](auto c) NANOTORCH_INLINE_LAMBDA {
                                    mr[c] = io.ld(mt + (n * a + c) * mstep + j);
                                });
                                Tr::output(mr, s0[a], s1[a]);
                            });
                            Tr::output(s0, y00, y10);
                            Tr::output(s1, y01, y11);
#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && defined(__AVX512F__)
                            if constexpr (std::is_same_v<V, fbatch>) {
                                // the tiles' two columns interleaved straight into the block's rows
                                for (std::int64_t e = 0; e < 2 && 2 * r + e < nrows; ++e)
                                    winograd_interleave_row(out_rows + (2 * r + e) * w.out_w + 2 * j,
                                                            w.out_w - 2 * j, e ? y10 : y00, e ? y11 : y01);
                                return;
                            }
#endif
                            io.st(ys + j, y00);
                            io.st(ys + tw + j, y01);
                            io.st(ys + 2 * tw + j, y10);
                            io.st(ys + 3 * tw + j, y11);
                        });
                        if constexpr (winograd_vector_rows) continue;
                        // interleave the tiles' columns into the block's two output rows (clipped)
                        for (std::int64_t e = 0; e < 2 && 2 * r + e < nrows; ++e) {
                            float* dst = out_rows + (2 * r + e) * w.out_w;
                            const float* left = ys + 2 * e * tw;
                            const float* right = left + tw;
                            const std::int64_t pairs = w.out_w / 2;
                            for (std::int64_t tx = 0; tx < pairs; ++tx) {
                                dst[2 * tx] = left[tx];
                                dst[2 * tx + 1] = right[tx];
                            }
                            if (w.out_w % 2) dst[w.out_w - 1] = left[pairs];
                        }
                    }
                    store(k.n0 + i, o, row0, nrows, out_rows);
                }
        }
    });
}
/// conv_winograd_r for the window's kernel size (winograd_window: 3 or 5).
template <class Store>
void conv_winograd(const float* u, std::int64_t og, std::int64_t cg, const float* images, std::int64_t image_stride,
                   std::int64_t batch, const Window2d& w, Store store) {
    if (w.kernel_h == 5)
        conv_winograd_r<5>(u, og, cg, images, image_stride, batch, w, store);
    else
        conv_winograd_r<3>(u, og, cg, images, image_stride, batch, w, store);
}

// ---- the weight gradient ----
// With Ŷ = A·dY_t·Aᵀ (n×n from a 2×2 tile of the output gradient) and V_t as in the forward,
// dW[o, c] = Gᵀ·[Σ_t Ŷ_t[o] ⊙ V_t[c]]·G: for each ξ one product S_ξ[O, C] = Ŷ_ξ[O, T]·V_ξ[C, T]ᵀ
// over the batch's tiles, then Gᵀ·S·G per (o, c). The tiles past the output's edge have zero
// gradient, so they add nothing. The sum over the batch runs in fixed groups of blocks
// (winograd_wgrad_groups, by shape), each group's blocks added in order into its own partial
// by one task (sgemm with beta = 1), the partials then added in group order: the same bits
// for every thread count.
// At most 8 groups, and partials of at most 4 M floats (16 MB) in all, as conv2d_backward's own
// (a 256 -> 256 layer's S takes 1 M floats with r = 3: 4 groups; 512 -> 512 one group, whose
// products then split their own blocks over the threads).
inline constexpr std::int64_t winograd_wgrad_groups = 8;
inline constexpr std::int64_t winograd_partial_budget = std::int64_t{1} << 22;

/// Scratch floats of one weight-gradient task: V and Ŷ of a full block, the input transform's
/// buffers, and the gradient's rows and their horizontal transforms.
inline std::int64_t winograd_wgrad_task_floats(std::int64_t cg, std::int64_t og, const WinogradBlocks& b) {
    const std::int64_t n = b.r + 1;
    return winograd_positions(b.r) * (cg + og) * b.tiles + n * winograd_hstride(b) + winograd_padded_floats(b) +
           2 * b.rows * 2 * b.tw + n * 2 * b.rows * b.tw + 2 * simd_width + 4;
}

// Ŷ[ξ][o][t] = (A·dY·Aᵀ)[ξ] for the block's tiles, from gy (image n's channel o plane at
// gy + n·gy_stride + o·out_plane). The block's gradient rows of one channel are copied into
// 2·rows rows of 2·tw floats (zero past the output's edge), then each row's pairs
// (e, o) = (dY[2tx], dY[2tx + 1]) become A·(e, o) (n values) as one stream, then the rows' pairs.
template <int R>
void winograd_grad_block(float* yh, std::int64_t T, const WinogradBlock& k, const WinogradBlocks& b, const float* gy,
                         std::int64_t gy_stride, std::int64_t og, const Window2d& w, float* rowsbuf, float* hz) {
    using Tr = Winograd2<R>;
    constexpr int n = Tr::n;
    const std::int64_t tw = b.tw, rw = 2 * tw, nrow = 2 * k.rows, hs = nrow * tw;
    for (std::int64_t i = 0; i < k.nimg; ++i)
        for (std::int64_t o = 0; o < og; ++o) {
            const float* src = gy + (k.n0 + i) * gy_stride + o * w.out_plane();
            for (std::int64_t q = 0; q < nrow; ++q) {
                float* row = rowsbuf + q * rw;
                const std::int64_t y = 2 * k.ty0 + q;
                if (y >= w.out_h) {
                    std::fill(row, row + rw, 0.0f);
                    continue;
                }
                std::memcpy(row, src + y * w.out_w, static_cast<std::size_t>(w.out_w) * sizeof(float));
                std::fill(row + w.out_w, row + rw, 0.0f);
            }
            std::int64_t j = 0;
            const std::int64_t count = nrow * tw;
#if NANOTORCH_SIMD_ENABLED && (defined(__AVX512F__) || defined(__AVX2__))
            for (; j + simd_width <= count; j += simd_width) {
                fbatch e, d, y[n];
                winograd_deinterleave(rowsbuf + 2 * j, e, d);
                Tr::grad(e, d, y);
                unroll<n>([&](auto q) NANOTORCH_INLINE_LAMBDA { y[q].store_unaligned(hz + q * hs + j); });
            }
#endif
            for (; j < count; ++j) {
                float y[n];
                Tr::grad(rowsbuf[2 * j], rowsbuf[2 * j + 1], y);
                for (int q = 0; q < n; ++q) hz[q * hs + j] = y[q];
            }
            for (std::int64_t r = 0; r < k.rows; ++r) {
                const std::int64_t t0 = (i * k.rows + r) * tw;
                for (int col = 0; col < n; ++col) {
                    const float* a0 = hz + col * hs + 2 * r * tw;
                    const float* a1 = a0 + tw;
                    float* vt = yh + col * og * T + o * T + t0;  // Ŷ[a·n + col][o][t0 ..]
                    winograd_runs(tw, [&](std::int64_t jj, auto io) NANOTORCH_INLINE_LAMBDA {
                        using V = decltype(io.ld(a0));
                        V y[n];
                        Tr::grad(io.ld(a0 + jj), io.ld(a1 + jj), y);
                        unroll<n>([&](auto q) NANOTORCH_INLINE_LAMBDA { io.st(vt + q * n * og * T + jj, y[q]); });
                    });
                }
            }
        }
}

/// grad_weight[og, cg, r, r] (one group; overwritten) of the convolution of images (cg
/// channels, image n at images + n·image_stride) whose output gradient is gy (og channels,
/// image n at gy + n·gy_stride), for a window winograd_window accepts.
template <int R>
void conv_winograd_weight_grad_r(float* grad_weight, const float* gy, std::int64_t gy_stride, const float* images,
                                 std::int64_t image_stride, std::int64_t batch, std::int64_t og, std::int64_t cg,
                                 const Window2d& w) {
    using Tr = Winograd2<R>;
    using Acc = typename Tr::Acc;
    constexpr int n = Tr::n, P = n * n;
    const WinogradBlocks b = winograd_blocks(cg, og, w);
    const std::int64_t tw = b.tw, nblk = b.count(batch);
    const std::int64_t sz = P * og * cg;  // one partial: S_ξ for the n² ξ
    const std::int64_t groups = std::max<std::int64_t>(1, std::min({nblk, winograd_wgrad_groups, winograd_partial_budget / sz}));
    const std::int64_t hstride = winograd_hstride(b), pad_floats = winograd_padded_floats(b);
    float* partial = scratch(Scratch::winograd_weight, groups * sz);
    parallel_for(0, groups, 1, [&](std::int64_t g0, std::int64_t g1) {
        float* work = scratch(Scratch::winograd_work, winograd_wgrad_task_floats(cg, og, b));
        for (std::int64_t g = g0; g < g1; ++g) {
            float* s = partial + g * sz;
            const std::int64_t first = g * nblk / groups, last = (g + 1) * nblk / groups;
            for (std::int64_t blk = first; blk < last; ++blk) {
                const WinogradBlock k = winograd_block(b, blk, batch);
                const std::int64_t T = k.tiles(tw);
                float* v = work;                    // V[ξ][c][t]
                float* yh = v + P * cg * T;         // Ŷ[ξ][o][t]
                float* h = yh + P * og * T;
                float* padded = h + n * hstride;
                float* rowsbuf = padded + pad_floats;
                float* hz = rowsbuf + 2 * b.rows * 2 * tw + 2 * simd_width + 4;
                winograd_input_block<R>(v, cg * T, T, k, b, images, image_stride, cg, w, h, padded);
                winograd_grad_block<R>(yh, T, k, b, gy, gy_stride, og, w, rowsbuf, hz);
                for (std::int64_t xi = 0; xi < P; ++xi)
                    sgemm(false, true, og, cg, T, 1.0f, yh + xi * og * T, T, v + xi * cg * T, T, blk == first ? 0.0f : 1.0f,
                          s + xi * og * cg, cg);
            }
        }
    });
    for (std::int64_t g = 1; g < groups; ++g) add(partial, partial, partial + g * sz, sz);
    // dW = Gᵀ·S·G, row by row, then column by column
    const std::int64_t plane = og * cg;
    for (std::int64_t o = 0; o < og; ++o)
        for (std::int64_t c = 0; c < cg; ++c) {
            const float* at = partial + o * cg + c;
            Acc t[n][R];  // S·G, row by row
            for (int i = 0; i < n; ++i) {
                Acc row[n];
                for (int q = 0; q < n; ++q) row[q] = at[(n * i + q) * plane];
                Tr::weight_grad(row, t[i]);
            }
            float* dw = grad_weight + (o * cg + c) * R * R;
            for (int j = 0; j < R; ++j) {
                Acc col[n], out[R];
                for (int i = 0; i < n; ++i) col[i] = t[i][j];
                Tr::weight_grad(col, out);
                for (int i = 0; i < R; ++i) dw[i * R + j] = static_cast<float>(out[i]);
            }
        }
}
/// conv_winograd_weight_grad_r for the window's kernel size (winograd_window: 3 or 5).
inline void conv_winograd_weight_grad(float* grad_weight, const float* gy, std::int64_t gy_stride, const float* images,
                                      std::int64_t image_stride, std::int64_t batch, std::int64_t og, std::int64_t cg,
                                      const Window2d& w) {
    if (w.kernel_h == 5)
        conv_winograd_weight_grad_r<5>(grad_weight, gy, gy_stride, images, image_stride, batch, og, cg, w);
    else
        conv_winograd_weight_grad_r<3>(grad_weight, gy, gy_stride, images, image_stride, batch, og, cg, w);
}

}  // namespace nanotorch::kernels::detail
