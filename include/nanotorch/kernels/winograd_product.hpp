// nanotorch/kernels/winograd_product.hpp — the products of the Winograd forward,
// M_ξ[O, T] = U_ξ[O, C] · V_ξ[C, T], one per position ξ of the transform, read where the
// transforms left them.
//
// Why not sgemm: its blocked path packs both operands and pads O to whole 12-row panels. With the
// short K of a small layer (C = 16 or 32) packing costs about what the multiply-adds do, and a
// 16-channel layer fills 16 of 24 panel rows: on 16 -> 16 and 32 -> 32 products (Zen 4, 1 thread)
// sgemm ran at 45-55 GFLOP/s, this kernel at 80-100. Here U_ξ's rows are broadcast from where
// winograd_weights wrote them and V_ξ's rows are read in place: a tile of MR output channels by NV
// vectors of tiles stays in registers over all of C. V and M rows are `ld` floats apart, ld a whole
// number of vectors: lanes past T are computed and never read (the caller keeps V's finite), so no
// vector is masked (masked loads in the inner loop cost a third of the speed).
//
// The sums are the chains of sgemm's blocked path: each M element is a chain of vfma from zero
// with c ascending, in slices of gemm_kc channels, each later slice's sum added to the earlier
// ones (slice + earlier). So the Winograd outputs did not change a bit with this kernel (compared
// byte for byte with the sgemm products on 3×3 and 5×5 layers of 16 to 300 channels, C past gemm_kc
// included), and they do not depend on the thread count.
#pragma once

#include <algorithm>  // std::min
#include <cstdint>

#include <nanotorch/kernels/gemm.hpp>  // gemm_kc, sgemm (the scalar build's product)
#include <nanotorch/kernels/simd.hpp>

namespace nanotorch::kernels::detail {

#if NANOTORCH_SIMD_ENABLED
/// Output channels and tile vectors per register tile: 24 accumulators on AVX-512 (32
/// registers), 12 where there are 16.
inline constexpr int winograd_mr = simd_width >= 16 ? 8 : 4;
inline constexpr int winograd_nv = 3;

// m[i·ld + j·W ..] (i < MR, j < NV) = Σ_c u[i·cg + c] · v[c·ld + j·W ..], c in slices of gemm_kc.
template <int MR, int NV>
NANOTORCH_ALWAYS_INLINE void winograd_product_tile(const float* u, std::int64_t cg, const float* v, std::int64_t ld,
                                                   float* m) {
    constexpr std::int64_t W = simd_width;
    for (std::int64_t c0 = 0; c0 < cg; c0 += gemm_kc) {
        const std::int64_t c1 = std::min(cg, c0 + gemm_kc);
        fbatch acc[MR][NV];
        unroll<MR>([&](auto i) NANOTORCH_INLINE_LAMBDA {
            unroll<NV>([&](auto j) NANOTORCH_INLINE_LAMBDA { acc[i][j] = fbatch(0.0f); });
        });
        for (std::int64_t c = c0; c < c1; ++c) {
            fbatch x[NV];
            unroll<NV>([&](auto j) NANOTORCH_INLINE_LAMBDA { x[j] = fbatch::load_unaligned(v + c * ld + j * W); });
            unroll<MR>([&](auto i) NANOTORCH_INLINE_LAMBDA {
                const fbatch b(u[i * cg + c]);
                unroll<NV>([&](auto j) NANOTORCH_INLINE_LAMBDA { acc[i][j] = vfma(b, x[j], acc[i][j]); });
            });
        }
        unroll<MR>([&](auto i) NANOTORCH_INLINE_LAMBDA {
            unroll<NV>([&](auto j) NANOTORCH_INLINE_LAMBDA {
                float* p = m + i * ld + j * W;
                (c0 == 0 ? acc[i][j] : acc[i][j] + fbatch::load_unaligned(p)).store_unaligned(p);
            });
        });
    }
}

// MR output channels over the vectors of one row of tiles (vectors of them, NV at a time).
template <int MR>
void winograd_product_rows(const float* u, std::int64_t cg, const float* v, std::int64_t ld, std::int64_t vectors,
                           float* m) {
    constexpr std::int64_t W = simd_width;
    constexpr int NV = winograd_nv;
    std::int64_t j = 0;
    // (four vectors left go as two and two: a one-vector tile is all latency)
    for (; j + NV <= vectors && vectors - j != 4; j += NV)
        winograd_product_tile<MR, NV>(u, cg, v + j * W, ld, m + j * W);
    for (; j + 2 <= vectors; j += 2) winograd_product_tile<MR, 2>(u, cg, v + j * W, ld, m + j * W);
    if (j < vectors) winograd_product_tile<MR, 1>(u, cg, v + j * W, ld, m + j * W);
}
#endif

/// m[o·ld + t] = Σ_c u[o·cg + c] · v[c·ld + t] for o < og, t < T (and, with SIMD, for the lanes up
/// to T rounded up to whole vectors, which ld must hold: winograd_ld).
inline void winograd_product(float* m, const float* u, const float* v, std::int64_t og, std::int64_t cg,
                             std::int64_t T, std::int64_t ld) {
#if NANOTORCH_SIMD_ENABLED
    const std::int64_t vectors = (T + simd_width - 1) / simd_width;
    std::int64_t o = 0;
    for (; o + winograd_mr <= og; o += winograd_mr)
        winograd_product_rows<winograd_mr>(u + o * cg, cg, v, ld, vectors, m + o * ld);
    if constexpr (winograd_mr > 4)
        for (; o + 4 <= og; o += 4) winograd_product_rows<4>(u + o * cg, cg, v, ld, vectors, m + o * ld);
    for (; o + 2 <= og; o += 2) winograd_product_rows<2>(u + o * cg, cg, v, ld, vectors, m + o * ld);
    for (; o < og; ++o) winograd_product_rows<1>(u + o * cg, cg, v, ld, vectors, m + o * ld);
#else
    sgemm(false, false, og, T, cg, 1.0f, u, cg, v, ld, 0.0f, m, ld);
#endif
}

/// The row pitch of V and M for a block of T tiles: whole vectors.
inline constexpr std::int64_t winograd_ld(std::int64_t T) { return (T + simd_width - 1) / simd_width * simd_width; }

}  // namespace nanotorch::kernels::detail
