// nanotorch/kernels/simd_gemm.hpp — the sgemm micro-kernels: the register tiles of
// kernels/gemm.hpp's blocked product (and the direct convolution's tiles, which read B in
// place), the skinny-product kernels, and the tile shapes they fix for each instruction set.
// Written against kernels/simd.hpp's vector types; simd.hpp stays the only file that includes
// xsimd.
#pragma once

#include <cstddef>
#include <cstdint>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/simd.hpp>

namespace nanotorch::kernels {

// ---- sgemm micro-kernel ----
// The register-blocked core of kernels/gemm.hpp. gemm.hpp packs op(A) into panels of gemm_mr
// rows (k-major: a[k*gemm_mr + r]) and op(B) into panels of gemm_nr columns
// (b[k*gemm_nr + c], 64-byte aligned), zero-padded at the edges, and calls sgemm_micro_kernel
// once per gemm_mr x gemm_nr tile of C.
// Tile shape: gemm_nr is two vectors wide; gemm_mr is as tall as the register file allows with
// 2·gemm_mr accumulators + 2 B vectors + 1 broadcast live: 12 rows with AVX-512's 32 registers
// (27 live; 12 measured best against 6, 8 and 14 rows with bench/bench_gemm.cpp on Zen 4), 6
// with AVX/SSE's 16. WebAssembly uses 3: V8 maps SIMD128 onto the 16 SSE/AVX registers, and
// without FMA each product is a multiply into a temporary then an add; the 6-row tile ran slower
// than smaller ones (presumably spilling; not checked in V8's code). Measured in
// node 20 (CPU time of the seed net's products at batch 64, as conv.hpp issues them), 3 rows
// took 0.81x the time of 6 for one training step's GEMMs (4: 0.87x, 5: 0.90x, 8: 1.12x), and a
// 256³ product ran at 27 GFLOP/s against 24. The scalar build uses a 4 x 4 tile of plain floats.
// The skinny-product kernels after it (sgemm_small_n_kernel, sgemm_dot_kernel) exist in SIMD
// builds only; gemm.hpp routes every shape to the blocked path in the scalar build.

#if NANOTORCH_SIMD_ENABLED
/// Rows of C per micro-kernel tile.
#if defined(NANOTORCH_SIMD_WASM)
inline constexpr std::int64_t gemm_mr = 3;
#else
inline constexpr std::int64_t gemm_mr = simd_width >= 16 ? 12 : 6;
#endif
/// Columns of C per micro-kernel tile (two SIMD vectors).
inline constexpr std::int64_t gemm_nr = 2 * simd_width;

/// acc[r][c] = Σ_{k < kc} a[k·gemm_mr + r] · b[k·gemm_nr + c], k ascending, one fused
/// multiply-add per product where the ISA has FMA. Then, when c is non-null, the full tile is
/// written as C[r·ldc + c] = alpha·acc + beta·C (beta == 0 reads no C, so NaN there is ignored);
/// when c is null, acc is stored row-major to tile[gemm_mr·gemm_nr] for the caller to write.
/// b must be 64-byte aligned (gemm_nr floats per k keep every vector aligned). Never throws.
/// Out of line on purpose: inlined into gemm_block, GCC 12 at -O2 (not -O3) kept one of the two B
/// vectors on the stack and read it back for every other multiply-add, which held a 512³ sgemm
/// to 166 GFLOP/s against 230 on its own (Zen 5, AVX-512); a call per tile of kc·gemm_mr·2
/// multiply-adds costs nothing measurable at either level.
NANOTORCH_NOINLINE void sgemm_micro_kernel(std::int64_t kc, const float* a, const float* b, float alpha,
                                           float beta, float* c, std::int64_t ldc, float* tile) {
    constexpr std::size_t MR = static_cast<std::size_t>(gemm_mr);
    constexpr std::size_t W = static_cast<std::size_t>(simd_width);
    fbatch acc[2 * MR];
    detail::unroll<2 * MR>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = fbatch(0.0f); });
    for (std::int64_t k = 0; k < kc; ++k) {
        const fbatch b0 = fbatch::load_aligned(b), b1 = fbatch::load_aligned(b + W);
        detail::unroll<MR>([&](auto r) NANOTORCH_INLINE_LAMBDA {
            const fbatch ar(a[r]);
            acc[2 * r] = vfma(ar, b0, acc[2 * r]);
            acc[2 * r + 1] = vfma(ar, b1, acc[2 * r + 1]);
        });
        a += MR;
        b += 2 * W;
    }
    if (!c) {
        detail::unroll<2 * MR>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i].store_aligned(tile + i * W); });
        return;
    }
    const fbatch va(alpha), vb(beta);
    detail::unroll<2 * MR>([&](auto i) NANOTORCH_INLINE_LAMBDA {
        float* p = c + static_cast<std::int64_t>(i / 2) * ldc + static_cast<std::int64_t>((i % 2) * W);
        if (beta == 0.0f) (va * acc[i]).store_unaligned(p);
        else if (beta == 1.0f) vfma(va, acc[i], fbatch::load_unaligned(p)).store_unaligned(p);
        else vfma(va, acc[i], vb * fbatch::load_unaligned(p)).store_unaligned(p);
    });
}

/// The direct convolution's second tile shape (kernels/implicit_gemm.hpp): two thirds of gemm_mr rows by
/// three vectors, the same number of accumulators as gemm_mr rows by two. Output-channel counts
/// that are multiples of 4 or 8 (16, 32, 64, ...: most CNNs) fill its panels where gemm_mr = 6 or
/// 12 pads them (16 to 18 or 24); implicit_gemm.hpp's direct_tile decides which shape runs.
#if defined(NANOTORCH_SIMD_WASM)
inline constexpr std::int64_t conv_tile_mr = 2;
#else
inline constexpr std::int64_t conv_tile_mr = gemm_mr * 2 / 3;
#endif
inline constexpr std::int64_t conv_tile_nr = 3 * simd_width;
/// Its third (implicit_gemm.hpp's direct_tile): five sixths of gemm_mr rows by two vectors, for channel
/// counts that 10 (AVX-512) or 5 (AVX2) rows fill and gemm_mr rows pad (10, 20, 40, ...). The
/// wasm build has too few rows to spare one; its short tile is the gemm tile.
#if defined(NANOTORCH_SIMD_WASM)
inline constexpr std::int64_t conv_tile_mr_short = gemm_mr;
#else
inline constexpr std::int64_t conv_tile_mr_short = gemm_mr * 5 / 6;
#endif

/// A gemm_mr x gemm_nr (or conv_tile_mr x conv_tile_nr: MR rows by NR columns, NR a multiple of
/// the vector width) tile with B read in place: row k of the tile's B is the NR floats at
/// b + b_off[k] (any alignment) instead of a packed panel. kernels/implicit_gemm.hpp's direct convolution
/// passes the zero-padded input planes (phase planes for a strided window) and the offset of each
/// (channel, tap), so a window's columns come straight from the image, with no im2col and no
/// packing. The same products in the same order as sgemm_micro_kernel on the packed copy, so the
/// same result: acc[r][c] = Σ_{k < kc} a[k·MR + r] · b[b_off[k] + c]. Then c (when non-null) gets
/// acc (accumulate false) or c + acc (true); when c is null, acc goes row-major to tile
/// [MR·NR]. rows < MR writes only the first rows rows of c (a panel's last, partial rows;
/// the tile is always computed whole). Never throws.
template <std::size_t MR, std::size_t NR>
NANOTORCH_ALWAYS_INLINE void sgemm_offsets_tile(std::int64_t kc, const float* a, const float* b,
                                                const std::int64_t* b_off, bool accumulate, float* c,
                                                std::int64_t ldc, float* tile,
                                                std::int64_t rows = static_cast<std::int64_t>(MR)) {
    constexpr std::size_t W = static_cast<std::size_t>(simd_width);
    static_assert(NR % W == 0, "sgemm_offsets_tile: NR must be whole vectors");
    constexpr std::size_t NV = NR / W;
    fbatch acc[NV * MR];
    detail::unroll<NV * MR>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = fbatch(0.0f); });
    for (std::int64_t k = 0; k < kc; ++k) {
        const float* bk = b + b_off[k];
        fbatch bv[NV];
        detail::unroll<NV>([&](auto v) NANOTORCH_INLINE_LAMBDA { bv[v] = fbatch::load_unaligned(bk + v * W); });
        detail::unroll<MR>([&](auto r) NANOTORCH_INLINE_LAMBDA {
            const fbatch ar(a[r]);
            detail::unroll<NV>([&](auto v) NANOTORCH_INLINE_LAMBDA {
                acc[NV * r + v] = vfma(ar, bv[v], acc[NV * r + v]);
            });
        });
        a += MR;
    }
    if (!c) {
        detail::unroll<NV * MR>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i].store_aligned(tile + i * W); });
        return;
    }
    detail::unroll<NV * MR>([&](auto i) NANOTORCH_INLINE_LAMBDA {
        if (static_cast<std::int64_t>(i / NV) >= rows) return;
        float* p = c + static_cast<std::int64_t>(i / NV) * ldc + static_cast<std::int64_t>((i % NV) * W);
        if (accumulate) (acc[i] + fbatch::load_unaligned(p)).store_unaligned(p);
        else acc[i].store_unaligned(p);
    });
}

/// sgemm_offsets_tile in sgemm_micro_kernel's shape (gemm_mr x gemm_nr).
NANOTORCH_ALWAYS_INLINE void sgemm_offsets_micro_kernel(std::int64_t kc, const float* a, const float* b,
                                                        const std::int64_t* b_off, bool accumulate, float* c,
                                                        std::int64_t ldc, float* tile) {
    sgemm_offsets_tile<static_cast<std::size_t>(gemm_mr), static_cast<std::size_t>(gemm_nr)>(kc, a, b, b_off,
                                                                                             accumulate, c, ldc, tile);
}

/// Whether sgemm_small_n_kernel exists (it needs SIMD vectors to be worth a second path).
inline constexpr bool gemm_has_small_n = true;

/// Rows of op(A) per sgemm_small_n_kernel call for a tile NV vectors wide: gemm_mr up to two
/// vectors, fewer beyond so the accumulators (at most 2·gemm_mr) still fit in registers.
template <std::size_t NV>
inline constexpr std::int64_t gemm_small_rows = NV <= 2 ? gemm_mr : 2 * gemm_mr / static_cast<std::int64_t>(NV);

/// The kernel for products with at most 4·simd_width columns (skinny shapes), where op(A) is
/// read in place instead of packed (packing would transpose A for a handful of multiply-adds
/// per element): tile[r·NV·simd_width + c] = Σ_{k < K} A(r, k) · b[k·NV·simd_width + c] for
/// r < gemm_small_rows<NV>, c < NV·simd_width, k ascending, with A(r, k) = a[r·rs + k·cs]
/// (rs == 1 or cs == 1) and b packed K x NV·simd_width, 64-byte aligned. Never throws.
template <std::size_t NV>
inline void sgemm_small_n_kernel(std::int64_t K, const float* a, std::int64_t rs, std::int64_t cs, const float* b,
                                 float* tile) {
    constexpr std::size_t MR = static_cast<std::size_t>(gemm_small_rows<NV>);
    constexpr std::size_t W = static_cast<std::size_t>(simd_width);
    fbatch acc[NV * MR];
    detail::unroll<NV * MR>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = fbatch(0.0f); });
    const auto step = [&](const float* bk, auto&& a_at) NANOTORCH_INLINE_LAMBDA {
        fbatch bv[NV];
        detail::unroll<NV>([&](auto v) NANOTORCH_INLINE_LAMBDA { bv[v] = fbatch::load_aligned(bk + v * W); });
        detail::unroll<MR>([&](auto r) NANOTORCH_INLINE_LAMBDA {
            const fbatch ar(a_at(r));
            detail::unroll<NV>([&](auto v) NANOTORCH_INLINE_LAMBDA {
                acc[NV * r + v] = vfma(ar, bv[v], acc[NV * r + v]);
            });
        });
    };
    if (rs == 1) {  // op(A) stored transposed: the rows' values for one k are adjacent
        for (std::int64_t k = 0; k < K; ++k, b += NV * W) {
            const float* ak = a + k * cs;
            step(b, [ak](std::size_t r) NANOTORCH_INLINE_LAMBDA { return ak[r]; });
        }
    } else {  // rows of op(A) contiguous along k
        for (std::int64_t k = 0; k < K; ++k, b += NV * W) {
            const float* ak = a + k;
            step(b, [ak, rs](std::size_t r) NANOTORCH_INLINE_LAMBDA { return ak[static_cast<std::int64_t>(r) * rs]; });
        }
    }
    detail::unroll<NV * MR>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i].store_aligned(tile + i * W); });
}

/// Rows of op(A) and of B per sgemm_dot_kernel block (dot_r x dot_r accumulators).
inline constexpr std::int64_t gemm_dot_r = simd_width >= 16 ? 4 : 3;

// v, kept in a register for its later uses. In sgemm_dot_rows_kernel GCC otherwise re-reads each
// row of B from memory as an operand of every one of its MB multiply-adds (it folds the load into
// each vfmadd): 28 loads per 24 FMAs in the in-place weight gradient's 4x6 block, each a
// cache-line split, which made that kernel load-bound on AMD Zen 5 (slower there than im2col +
// sgemm). An empty asm statement that "modifies" the register forbids re-reading it; it emits no
// instruction and changes no value.
NANOTORCH_ALWAYS_INLINE fbatch in_register(fbatch v) {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    auto r = v.data;
    __asm__("" : "+v"(r));
    return fbatch(r);
#else
    return v;
#endif
}

/// The dot-product block with its rows given as pointers, MB rows of A by NB rows of B, over
/// `segments` runs of K: out[r·NB + s] = Σ_{q < segments} Σ_{k < K} a[r][q·a_step + k] ·
/// b[s][q·b_step + k]. Each sum is in a fixed order: simd_width lane partial sums over
/// k ≡ lane (mod simd_width), q then k ascending, then vhadd, then the K % simd_width tails, q
/// then k ascending (one segment: sgemm_dot_kernel's order). Rows may be anywhere, even
/// overlapping: conv2d's weight gradient passes windows of padded image planes as the rows of
/// B, one segment per image. Never throws.
template <std::size_t MB, std::size_t NB>
NANOTORCH_ALWAYS_INLINE void sgemm_dot_rows_kernel(std::int64_t K, const float* const* a, const float* const* b,
                                                   float* out, std::int64_t segments = 1, std::int64_t a_step = 0,
                                                   std::int64_t b_step = 0) {
    constexpr std::int64_t W = simd_width;
    fbatch acc[MB * NB];
    detail::unroll<MB * NB>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = fbatch(0.0f); });
    const std::int64_t vk = K / W * W;
    for (std::int64_t q = 0; q < segments; ++q) {
        const std::int64_t ao = q * a_step, bo = q * b_step;
        for (std::int64_t k = 0; k < vk; k += W) {
            fbatch av[MB];
            detail::unroll<MB>([&](auto r) NANOTORCH_INLINE_LAMBDA { av[r] = fbatch::load_unaligned(a[r] + ao + k); });
            detail::unroll<NB>([&](auto s) NANOTORCH_INLINE_LAMBDA {
                const fbatch bv = in_register(fbatch::load_unaligned(b[s] + bo + k));
                detail::unroll<MB>([&](auto r) NANOTORCH_INLINE_LAMBDA {
                    acc[r * NB + s] = vfma(av[r], bv, acc[r * NB + s]);
                });
            });
        }
    }
    detail::unroll<MB * NB>([&](auto i) NANOTORCH_INLINE_LAMBDA {
        float t = vhadd(acc[i]);
        for (std::int64_t q = 0; q < segments; ++q) {
            const float* pa = a[i / NB] + q * a_step;
            const float* pb = b[i % NB] + q * b_step;
            for (std::int64_t kk = vk; kk < K; ++kk) t += pa[kk] * pb[kk];
        }
        out[i] = t;
    });
}

/// The kernel for C = A·Bᵀ with both operands contiguous along K (linear's forward, conv's
/// weight gradient), where packing either operand would transpose it: a block of dot products
/// out[r·gemm_dot_r + s] = Σ_{k < K} a[r·lda + k] · b[s·ldb + k] for r < m, s < n (m, n <=
/// gemm_dot_r; rows past m or n are read from the last real row and their results dropped).
/// Each sum is fixed-order: simd_width lane partial sums over k ≡ lane (mod simd_width), k
/// ascending, then vhadd, then the K % simd_width tail in ascending k. Never throws.
inline void sgemm_dot_kernel(std::int64_t K, const float* a, std::int64_t lda, std::int64_t m, const float* b,
                             std::int64_t ldb, std::int64_t n, float* out) {
    constexpr std::size_t R = static_cast<std::size_t>(gemm_dot_r);
    const float* ar[R];
    const float* br[R];
    detail::unroll<R>([&](auto r) NANOTORCH_INLINE_LAMBDA {
        ar[r] = a + std::min<std::int64_t>(static_cast<std::int64_t>(r), m - 1) * lda;
        br[r] = b + std::min<std::int64_t>(static_cast<std::int64_t>(r), n - 1) * ldb;
    });
    // One row of A (a Linear layer at batch 1) runs a 1 x R block: the R x R block would repeat
    // that row R times, R times the multiply-adds (the batch-1 seed net's 320 -> 50 layer took
    // 0.8 us, 7 % of its run). Each sum's order does not depend on the block, so neither do the bits.
    if (m == 1) sgemm_dot_rows_kernel<1, R>(K, ar, br, out);
    else sgemm_dot_rows_kernel<R, R>(K, ar, br, out);
}
#else
inline constexpr std::int64_t gemm_mr = 4;
inline constexpr std::int64_t gemm_nr = 4;

// The scalar build's tile: same contract as the SIMD version above (plain multiply-add).
NANOTORCH_ALWAYS_INLINE void sgemm_micro_kernel(std::int64_t kc, const float* a, const float* b, float alpha,
                                                float beta, float* c, std::int64_t ldc, float* tile) {
    float acc[gemm_mr * gemm_nr] = {};
    for (std::int64_t k = 0; k < kc; ++k, a += gemm_mr, b += gemm_nr)
        for (std::int64_t r = 0; r < gemm_mr; ++r)
            for (std::int64_t j = 0; j < gemm_nr; ++j) acc[r * gemm_nr + j] += a[r] * b[j];
    for (std::int64_t r = 0; r < gemm_mr; ++r)
        for (std::int64_t j = 0; j < gemm_nr; ++j) {
            const float v = acc[r * gemm_nr + j];
            // Testing tile too lets GCC fold the branch at each call site (exactly one of c and
            // tile is null); testing c alone made -O3 warn about the nullptr tile (-Warray-bounds).
            if (!c && tile) {
                tile[r * gemm_nr + j] = v;
                continue;
            }
            float& x = c[r * ldc + j];
            x = beta == 0.0f ? alpha * v : alpha * v + beta * x;
        }
}

// The direct convolution's second tile shape, as in the SIMD build (two thirds of the rows).
inline constexpr std::int64_t conv_tile_mr = 2;
inline constexpr std::int64_t conv_tile_nr = 6;
inline constexpr std::int64_t conv_tile_mr_short = gemm_mr;  // (no third shape: 4 rows is all)

// The same for sgemm_offsets_tile (B's row k read at b + b_off[k]; MR x NR plain floats).
template <std::size_t MR, std::size_t NR>
NANOTORCH_ALWAYS_INLINE void sgemm_offsets_tile(std::int64_t kc, const float* a, const float* b,
                                                const std::int64_t* b_off, bool accumulate, float* c,
                                                std::int64_t ldc, float* tile,
                                                std::int64_t rows = static_cast<std::int64_t>(MR)) {
    float acc[MR * NR] = {};
    for (std::int64_t k = 0; k < kc; ++k, a += MR)
        for (std::size_t r = 0; r < MR; ++r)
            for (std::size_t j = 0; j < NR; ++j) acc[r * NR + j] += a[r] * b[b_off[k] + static_cast<std::int64_t>(j)];
    for (std::size_t r = 0; r < MR; ++r)
        for (std::size_t j = 0; j < NR; ++j) {
            const float v = acc[r * NR + j];
            if (c && static_cast<std::int64_t>(r) >= rows) break;
            if (!c && tile) {  // (both tested, as in sgemm_micro_kernel)
                tile[r * NR + j] = v;
                continue;
            }
            float& x = c[static_cast<std::int64_t>(r) * ldc + static_cast<std::int64_t>(j)];
            x = accumulate ? v + x : v;
        }
}

NANOTORCH_ALWAYS_INLINE void sgemm_offsets_micro_kernel(std::int64_t kc, const float* a, const float* b,
                                                        const std::int64_t* b_off, bool accumulate, float* c,
                                                        std::int64_t ldc, float* tile) {
    sgemm_offsets_tile<static_cast<std::size_t>(gemm_mr), static_cast<std::size_t>(gemm_nr)>(kc, a, b, b_off,
                                                                                             accumulate, c, ldc, tile);
}

inline constexpr bool gemm_has_small_n = false;
inline constexpr std::int64_t gemm_dot_r = 1;
// Never called in the scalar build (gemm_has_small_n is false); declared so gemm.hpp compiles.
inline void sgemm_dot_kernel(std::int64_t, const float*, std::int64_t, std::int64_t, const float*, std::int64_t,
                             std::int64_t, float*) {}
template <std::size_t NV>
inline constexpr std::int64_t gemm_small_rows = 1;
// Never called in the scalar build (gemm_has_small_n is false); declared so gemm.hpp compiles.
template <std::size_t NV>
inline void sgemm_small_n_kernel(std::int64_t, const float*, std::int64_t, std::int64_t, const float*, float*) {}
#endif

}  // namespace nanotorch::kernels
