// nanotorch/kernels/gemm.hpp — single-precision matrix multiply, C = alpha·op(A)·op(B) + beta·C.
//
// op(X) is X or Xᵀ (trans_a / trans_b), so one entry point serves the NN, NT, TN (and TT)
// products that linear, matmul and conv2d forward/backward need. Row-major, with leading
// dimensions. ref::sgemm is the plain triple loop kept as the test oracle.
//
// kernels::sgemm is a packed, register- and cache-blocked GEMM in the BLIS style:
//   * C is cut into blocks of gemm_mc x gemm_nc; each block is one parallel task.
//   * Per block, K is walked in slices of gemm_kc (ascending). op(B)'s kc x nc slice is packed
//     into gemm_nr-column panels (L2-resident), and op(A)'s rows into one gemm_mr-row panel at a
//     time (L1-resident); kernels/simd_gemm.hpp's sgemm_micro_kernel keeps a gemm_mr x gemm_nr tile
//     of C in registers over the whole slice. Packing pads edges with zeros, so the micro-kernel
//     never branches on sizes; edge tiles are written back through a small tile buffer.
//   * Skinny shapes (small-N convolution and linear products), where packing would cost as
//     much as the few multiply-adds per element it feeds (measured with bench/bench_gemm.cpp):
//     - N <= 2·gemm_nr: op(B) alone is packed and simd_gemm.hpp's sgemm_small_n_kernel reads
//       op(A) in place, one to four vectors wide;
//     - M <= gemm_nr with a transposed B (conv weight gradients): the same on Cᵀ = op(B)ᵀ·op(A)ᵀ,
//       so B is read in place instead of being transposed into panels;
//     - A·Bᵀ with few outputs and a long K (a first conv layer's weight gradient): blocks of dot products
//       along K (sgemm_dot_kernel), nothing packed;
//     - otherwise, when N is small next to M, padding N up to gemm_nr would waste much of each
//       tile, so the blocked product is computed as Cᵀ (operands swapped, C written through
//       its transpose).
//     The choice depends only on the flags, M, N and K. The scalar build has only the blocked
//     path.
// Determinism: every C element is one accumulator per K slice (one over all of K on the
// small-N and dot paths), the slices are added into C in ascending order, and the block sizes are
// compile-time constants. Threads only decide which block is computed where, never how, so
// results are bit-identical for every thread count. K is never split across threads.
// Memory: the packing buffers are thread_local and only grow: the blocked path's are sized by
// the block constants, the small-N path's by K (op(B) and one edge row block). A thread
// allocates on its first call (or a larger K), so steady-state calls allocate nothing.
// Not here: batched GEMM, mixed precision, runtime ISA dispatch (the tile is fixed at compile
// time by simd_gemm.hpp), and any BLAS dependency.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/simd_gemm.hpp>  // the micro-kernels

namespace nanotorch::kernels {

namespace ref {
// C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C[M,N]
inline void sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                  const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                  std::int64_t ldc) {
    for (std::int64_t i = 0; i < M; ++i) {
        for (std::int64_t j = 0; j < N; ++j) {
            float acc = 0.0f;
            for (std::int64_t k = 0; k < K; ++k) {
                const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
                const float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                acc += a * b;
            }
            float& c = C[i * ldc + j];
            c = alpha * acc + (beta == 0.0f ? 0.0f : beta * c);
        }
    }
}
}  // namespace ref

// ---- blocking ----

/// K slice per packed panel: a gemm_mr x kc A panel (12 KB with the AVX-512 tile) stays in L1
/// while the kc x nc B slice (512 KB at most) streams from L2.
inline constexpr std::int64_t gemm_kc = 256;
/// Rows of C per parallel task (a multiple of gemm_mr); the B slice is re-packed once per task,
/// which costs 1/gemm_mc of the multiply-adds.
inline constexpr std::int64_t gemm_mc = gemm_mr * std::max<std::int64_t>(1, 96 / gemm_mr);
/// Columns of C per parallel task (a multiple of gemm_nr).
inline constexpr std::int64_t gemm_nc = gemm_nr * std::max<std::int64_t>(1, 512 / gemm_nr);

namespace detail {

// ---- packing ----

// A matrix operand seen through strides: element (i, j) is at p[i * rs + j * cs]. Transposing
// is swapping rs and cs, which is how the trans flags and the Cᵀ formulation are expressed.
struct StridedMatrix {
    const float* p;
    std::int64_t rs, cs;
    float at(std::int64_t i, std::int64_t j) const { return p[i * rs + j * cs]; }
};

// A 64-byte-aligned float buffer that only grows (the micro-kernel loads B panels aligned).
class GemmBuffer {
public:
    GemmBuffer() = default;
    GemmBuffer(const GemmBuffer&) = delete;
    GemmBuffer& operator=(const GemmBuffer&) = delete;
    ~GemmBuffer() { release(); }
    float* reserve(std::size_t n) {
        if (n > size_) {
            release();
            data_ = static_cast<float*>(::operator new(n * sizeof(float), std::align_val_t{64}));
            size_ = n;
        }
        return data_;
    }

private:
    void release() {
        if (data_) ::operator delete(data_, std::align_val_t{64});
        data_ = nullptr;
        size_ = 0;
    }
    float* data_ = nullptr;
    std::size_t size_ = 0;
};

// Per thread (the pool's workers are persistent, so these are allocated once per thread).
inline float* gemm_a_buffer() {
    thread_local GemmBuffer buf;
    return buf.reserve(static_cast<std::size_t>(gemm_mr * gemm_kc));
}
inline float* gemm_b_buffer() {
    thread_local GemmBuffer buf;
    return buf.reserve(static_cast<std::size_t>(gemm_kc * gemm_nc));
}

// dst[k * gemm_mr + r] = A(i0 + r, k0 + k) for r < m, 0 for m <= r < gemm_mr.
inline void pack_a_panel(float* dst, const StridedMatrix& A, std::int64_t i0, std::int64_t m, std::int64_t k0,
                         std::int64_t kc) {
    if (m < gemm_mr) std::fill(dst, dst + kc * gemm_mr, 0.0f);
    if (A.cs == 1) {  // rows contiguous along k: read each row sequentially
        std::int64_t r = 0;
        if (has_transpose_rows_4)  // four rows at a time, as 4x4 blocks
            for (; r + 4 <= m; r += 4) transpose_rows_4(dst + r, gemm_mr, A.p + (i0 + r) * A.rs + k0, A.rs, kc);
        for (; r < m; ++r) {
            const float* src = A.p + (i0 + r) * A.rs + k0;
            for (std::int64_t k = 0; k < kc; ++k) dst[k * gemm_mr + r] = src[k];
        }
    } else if (A.rs == 1) {  // columns contiguous along i (a transposed A): copy m floats per k
        for (std::int64_t k = 0; k < kc; ++k) {
            const float* src = A.p + (k0 + k) * A.cs + i0;
            copy_floats(dst + k * gemm_mr, src, m);  // not std::copy: see copy_floats
        }
    } else {
        for (std::int64_t k = 0; k < kc; ++k)
            for (std::int64_t r = 0; r < m; ++r) dst[k * gemm_mr + r] = A.at(i0 + r, k0 + k);
    }
}

// Packs B(k0 .. k0+kc, j0 .. j0+nc) into ceil(nc / gemm_nr) panels of kc x gemm_nr, panel p at
// dst + p * kc * gemm_nr holding dst[k * gemm_nr + c] = B(k0 + k, j0 + p * gemm_nr + c), zero
// past column nc.
inline void pack_b_block(float* dst, const StridedMatrix& B, std::int64_t k0, std::int64_t kc, std::int64_t j0,
                         std::int64_t nc) {
    for (std::int64_t jp = 0; jp < nc; jp += gemm_nr, dst += kc * gemm_nr) {
        const std::int64_t n = std::min(gemm_nr, nc - jp);
        if (n < gemm_nr) std::fill(dst, dst + kc * gemm_nr, 0.0f);
        if (B.cs == 1) {  // rows contiguous along j: copy n floats per k
            for (std::int64_t k = 0; k < kc; ++k) {
                const float* src = B.p + (k0 + k) * B.rs + j0 + jp;
                copy_floats(dst + k * gemm_nr, src, n);
            }
        } else if (B.rs == 1) {  // columns contiguous along k (a transposed B): read each column sequentially
            std::int64_t j = 0;
            if (has_transpose_rows_4)  // four columns at a time, as 4x4 blocks (SSE2, wasm)
                for (; j + 4 <= n; j += 4) transpose_rows_4(dst + j, gemm_nr, B.p + (j0 + jp + j) * B.cs + k0, B.cs, kc);
            for (; j < n; ++j) {
                const float* src = B.p + (j0 + jp + j) * B.cs + k0;
                for (std::int64_t k = 0; k < kc; ++k) dst[k * gemm_nr + j] = src[k];
            }
        } else {
            for (std::int64_t k = 0; k < kc; ++k)
                for (std::int64_t j = 0; j < n; ++j) dst[k * gemm_nr + j] = B.at(k0 + k, j0 + jp + j);
        }
    }
}

// ---- driver ----

// Writes an m x n corner of a kernel tile (row stride ldt) to C (element (r, j) at
// c[r * rs + j * cs]).
inline void write_tile(float* c, std::int64_t rs, std::int64_t cs, std::int64_t m, std::int64_t n, const float* tile,
                       std::int64_t ldt, float alpha, float beta) {
    // Walk C along whichever of its strides is 1 (rows of C, or rows of Cᵀ in the swapped case).
    const auto put = [&](float& x, float t) { x = beta == 0.0f ? alpha * t : alpha * t + beta * x; };
    if (cs == 1) {
        for (std::int64_t r = 0; r < m; ++r) {
            float* row = c + r * rs;
            const float* t = tile + r * ldt;
            std::int64_t j = 0;
#if NANOTORCH_SIMD_ENABLED
            // Whole vectors by hand: at -O2 (no loop unswitching) GCC left this loop scalar with
            // the beta test inside, a fifth of a 64-column weight gradient's time. The operations
            // g++ makes of put (beta·x fused onto the rounded alpha·t), so its bits do not move.
            const fbatch va(alpha), vb(beta);
            for (; j + simd_width <= n; j += simd_width) {
                const fbatch at = va * fbatch::load_unaligned(t + j);
                (beta == 0.0f ? at : vfma(vb, fbatch::load_unaligned(row + j), at)).store_unaligned(row + j);
            }
#endif
            for (; j < n; ++j) put(row[j], t[j]);
        }
    } else {
        for (std::int64_t j = 0; j < n; ++j) {
            float* col = c + j * cs;
            for (std::int64_t r = 0; r < m; ++r) put(col[r * rs], tile[r * ldt + j]);
        }
    }
}

// One task: C(i0 .. i0+mc, j0 .. j0+nc) over all of K, slice by slice in ascending order; the
// first slice applies beta, the later ones add (beta = 1). A and B are StridedMatrix, or any
// operand with pack_a_panel / pack_b_block overloads that write the same packed layout (the
// convolution's implicit im2col, kernels/implicit_gemm.hpp): the packed values alone decide the result.
template <class ASource, class BSource>
inline void gemm_block(std::int64_t i0, std::int64_t mc, std::int64_t j0, std::int64_t nc, std::int64_t K,
                       float alpha, const ASource& A, const BSource& B, float beta, float* C, std::int64_t rs_c,
                       std::int64_t cs_c) {
    float* const abuf = gemm_a_buffer();
    float* const bbuf = gemm_b_buffer();
    alignas(64) float tile[gemm_mr * gemm_nr];
    for (std::int64_t k0 = 0; k0 < K; k0 += gemm_kc) {
        const std::int64_t kc = std::min(gemm_kc, K - k0);
        const float b_eff = k0 == 0 ? beta : 1.0f;
        pack_b_block(bbuf, B, k0, kc, j0, nc);
        for (std::int64_t ir = 0; ir < mc; ir += gemm_mr) {
            const std::int64_t m = std::min(gemm_mr, mc - ir);
            pack_a_panel(abuf, A, i0 + ir, m, k0, kc);
            for (std::int64_t jr = 0; jr < nc; jr += gemm_nr) {
                const std::int64_t n = std::min(gemm_nr, nc - jr);
                float* c = C + (i0 + ir) * rs_c + (j0 + jr) * cs_c;
                const float* bp = bbuf + (jr / gemm_nr) * kc * gemm_nr;
                if (m == gemm_mr && n == gemm_nr && cs_c == 1) {
                    sgemm_micro_kernel(kc, abuf, bp, alpha, b_eff, c, rs_c, tile);  // tile unused when c is set
                } else {
                    sgemm_micro_kernel(kc, abuf, bp, alpha, b_eff, nullptr, 0, tile);
                    write_tile(c, rs_c, cs_c, m, n, tile, gemm_nr, alpha, b_eff);
                }
            }
        }
    }
}

// C (element (i, j) at C[i * rs_c + j * cs_c]) = alpha·A·B + beta·C for M, N, K >= 1.
template <class ASource, class BSource>
inline void gemm_driver(std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const ASource& A,
                        const BSource& B, float beta, float* C, std::int64_t rs_c, std::int64_t cs_c) {
    const std::int64_t mblocks = (M + gemm_mc - 1) / gemm_mc;
    // A product of few blocks over a long K (a Linear layer's forward at batch 64: 64 x 128 over
    // K = 9216, one block) left the other cores idle for its whole length: ~0.6 ms of every
    // examples/mnist training step on one of two cores. Such a product is split into narrower
    // column blocks (whole micro-kernel panels), at least four tasks where N allows. Every C
    // element is computed the same way whatever the blocks (the same K slices, added in order),
    // so the result does not change. Only where the blocks can run in parallel: at one thread,
    // or called from inside a parallel loop (conv2d's chunks of images), narrower blocks would
    // only pack A more often. From 2 MFLOP: the seed net's 320 -> 50 layer's two gradient
    // products at batch 64 (2 MFLOP each) ran serially before, a sixth of the 2-thread step's
    // serial remainder; split, its forward and backward at 2 threads took 43 instead of 48 us.
    std::int64_t nc = gemm_nc;
    const bool few_blocks = mblocks * ((N + gemm_nc - 1) / gemm_nc) < 4;
    if (few_blocks && 2.0 * static_cast<double>(M) * N * K >= 2e6 && get_num_threads() > 1 &&
        !nanotorch::detail::inside_parallel_region()) {
        const std::int64_t parts = (4 + mblocks - 1) / mblocks;
        nc = std::min(gemm_nc, std::max(gemm_nr, ((N + parts - 1) / parts + gemm_nr - 1) / gemm_nr * gemm_nr));
    }
    const std::int64_t nblocks = (N + nc - 1) / nc;
    // Enough multiply-adds per chunk (~1 MFLOP) that waking a worker pays off.
    const double block_flops = 2.0 * static_cast<double>(std::min(M, gemm_mc) * std::min(N, nc) * K);
    const auto grain = static_cast<std::int64_t>(std::max(1.0, (1 << 20) / block_flops));
    parallel_for(0, mblocks * nblocks, grain, [&](std::int64_t t0, std::int64_t t1) {
        for (std::int64_t t = t0; t < t1; ++t) {
            const std::int64_t i0 = (t / nblocks) * gemm_mc, j0 = (t % nblocks) * nc;
            gemm_block(i0, std::min(gemm_mc, M - i0), j0, std::min(nc, N - j0), K, alpha, A, B, beta, C, rs_c, cs_c);
        }
    });
}

// ---- skinny products (N <= 2·gemm_nr) ----

inline float* gemm_small_b_buffer(std::size_t n) {
    thread_local GemmBuffer buf;
    return buf.reserve(n);
}
inline float* gemm_edge_a_buffer(std::size_t n) {
    thread_local GemmBuffer buf;
    return buf.reserve(n);
}

// C = alpha·A·B + beta·C for N <= NV·simd_width: op(B) packed once (K x NV·simd_width, zero
// past N), op(A) read in place by sgemm_small_n_kernel, parallel over blocks of
// gemm_small_rows<NV> rows. C's element (i, j) is at C[i * rs_c + j * cs_c].
// K is not sliced: each C element is one accumulator over all of K, in ascending order.
template <std::size_t NV>
inline void gemm_small_n(std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const StridedMatrix& A,
                         const StridedMatrix& B, float beta, float* C, std::int64_t rs_c, std::int64_t cs_c) {
    constexpr auto w = static_cast<std::int64_t>(NV) * simd_width;
    float* const bp = gemm_small_b_buffer(static_cast<std::size_t>(K * w));
    if (B.rs == 1 && B.cs != 1) {
        // A transposed B (the Winograd weight gradient's S = Ŷ·Vᵀ): its N rows are contiguous
        // along K, so copy four of them at a time as 4x4 blocks. Read one float per (k, j), a
        // 64 x 64 x 1024 product ran at 33 GFLOP/s (Zen 4, -O2 and -O3), now at 85-95.
        std::int64_t j = 0;
        if constexpr (has_transpose_rows_4)
            for (; j + 4 <= N; j += 4) transpose_rows_4(bp + j, w, B.p + j * B.cs, B.cs, K);
        for (; j < N; ++j)
            for (std::int64_t kk = 0; kk < K; ++kk) bp[kk * w + j] = B.p[j * B.cs + kk];
        for (std::int64_t kk = 0; kk < K; ++kk) std::fill(bp + kk * w + N, bp + (kk + 1) * w, 0.0f);
    } else {
        for (std::int64_t kk = 0; kk < K; ++kk) {
            float* d = bp + kk * w;
            if (B.cs == 1)
                copy_floats(d, B.p + kk * B.rs, N);
            else
                for (std::int64_t j = 0; j < N; ++j) d[j] = B.at(kk, j);
            std::fill(d + N, d + w, 0.0f);
        }
    }
    constexpr std::int64_t rows = gemm_small_rows<NV>;
    const std::int64_t blocks = (M + rows - 1) / rows;
    const double block_flops = 2.0 * static_cast<double>(rows * N * K);
    const auto grain = static_cast<std::int64_t>(std::max(1.0, (1 << 20) / block_flops));
    parallel_for(0, blocks, grain, [&](std::int64_t b0, std::int64_t b1) {
        alignas(64) float tile[gemm_mr * gemm_nr];
        for (std::int64_t blk = b0; blk < b1; ++blk) {
            const std::int64_t i0 = blk * rows, m = std::min(rows, M - i0);
            const float* a = A.p + i0 * A.rs;
            std::int64_t rs = A.rs, cs = A.cs;
            if (m < rows) {  // the last rows: copy them, zero-padded, so the kernel reads no further
                float* e = gemm_edge_a_buffer(static_cast<std::size_t>(rows * K));
                for (std::int64_t r = 0; r < rows; ++r)
                    for (std::int64_t kk = 0; kk < K; ++kk) e[r * K + kk] = r < m ? A.at(i0 + r, kk) : 0.0f;
                a = e;
                rs = K;
                cs = 1;
            }
            sgemm_small_n_kernel<NV>(K, a, rs, cs, bp, tile);
            write_tile(C + i0 * rs_c, rs_c, cs_c, m, N, tile, w, alpha, beta);
        }
    });
}

// ---- A·Bᵀ as dot products ----

// C = alpha·A·Bᵀ + beta·C with A [M, K] and B [N, K] both contiguous along K: blocks of
// gemm_dot_r x gemm_dot_r dot products, parallel over blocks; nothing packed, K not sliced.
inline void gemm_dot(std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A, std::int64_t lda,
                     const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
    const std::int64_t R = gemm_dot_r;
    const std::int64_t mblocks = (M + R - 1) / R, nblocks = (N + R - 1) / R;
    const double block_flops = 2.0 * static_cast<double>(R * R * K);
    const auto grain = static_cast<std::int64_t>(std::max(1.0, (1 << 20) / block_flops));
    parallel_for(0, mblocks * nblocks, grain, [&](std::int64_t t0, std::int64_t t1) {
        float out[gemm_dot_r * gemm_dot_r];
        for (std::int64_t t = t0; t < t1; ++t) {
            const std::int64_t i0 = (t / nblocks) * R, j0 = (t % nblocks) * R;
            const std::int64_t m = std::min(R, M - i0), n = std::min(R, N - j0);
            sgemm_dot_kernel(K, A + i0 * lda, lda, m, B + j0 * ldb, ldb, n, out);
            for (std::int64_t r = 0; r < m; ++r)
                for (std::int64_t s = 0; s < n; ++s) {
                    float& x = C[(i0 + r) * ldc + j0 + s];
                    const float v = alpha * out[r * R + s];
                    x = beta == 0.0f ? v : v + beta * x;
                }
        }
    });
}

// Padded tile area of computing C directly vs as Cᵀ: swap when that saves a fifth or more.
inline bool gemm_prefers_transposed(std::int64_t M, std::int64_t N) {
    const auto up = [](std::int64_t x, std::int64_t to) { return (x + to - 1) / to * to; };
    const double direct = static_cast<double>(up(M, gemm_mr)) * static_cast<double>(up(N, gemm_nr));
    const double swapped = static_cast<double>(up(N, gemm_mr)) * static_cast<double>(up(M, gemm_nr));
    return swapped * 5.0 <= direct * 4.0;
}

/// The path sgemm takes for a shape (see the file comment), from the flags and sizes alone.
enum class GemmPath { dot, small_n, small_n_transposed, blocked_transposed, blocked };

inline GemmPath gemm_path(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K) {
    if (gemm_has_small_n && !trans_a && trans_b && M * N <= 1024 && K >= 256) return GemmPath::dot;
    // Not when all of M is one partial row block with a long K (a weight gradient such as
    // 10x25x36864 TN): the blocked path keeps its K slices in cache, where the small-N path
    // would copy those rows whole (measured 0.65x of the blocked path).
    if (gemm_has_small_n && N <= 2 * gemm_nr && (M >= gemm_mr || K <= 4 * gemm_kc)) return GemmPath::small_n;
    // Few rows and a Bᵀ that the blocked path would have to transpose while packing: the
    // small-N path on Cᵀ = op(B)ᵀ·op(A)ᵀ reads B in place and packs only the small op(A).
    if (gemm_has_small_n && trans_b && M <= gemm_nr && (N >= gemm_mr || K <= 4 * gemm_kc))
        return GemmPath::small_n_transposed;
    return gemm_prefers_transposed(M, N) ? GemmPath::blocked_transposed : GemmPath::blocked;
}

}  // namespace detail

/// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C[M,N], row-major, where op(X) is X or Xᵀ
/// per trans_a / trans_b; A is stored M x K (K x M when transposed) with leading dimension lda,
/// likewise B, and C has leading dimension ldc. beta == 0 ignores C's old contents (even NaN),
/// as BLAS does; K == 0 gives C = beta·C. Nothing is done when M or N is 0. Runs on
/// parallel_for; bit-identical for every thread count. Never throws (leading dimensions are the
/// caller's contract, as in BLAS), except std::bad_alloc for the first call on a thread.
NANOTORCH_KERNEL_API void sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                                const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                                std::int64_t ldc)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (std::int64_t i = 0; i < M; ++i) {
            float* c = C + i * ldc;
            if (beta == 0.0f) std::fill(c, c + N, 0.0f);
            else if (beta != 1.0f) mul_scalar(c, c, beta, N);
        }
        return;
    }
    const detail::StridedMatrix a = trans_a ? detail::StridedMatrix{A, 1, lda} : detail::StridedMatrix{A, lda, 1};
    const detail::StridedMatrix b = trans_b ? detail::StridedMatrix{B, 1, ldb} : detail::StridedMatrix{B, ldb, 1};
    // Which path, from the shape alone (so never from the thread count); see the file comment.
    switch (detail::gemm_path(trans_a, trans_b, M, N, K)) {
        case detail::GemmPath::dot:
            detail::gemm_dot(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            break;
        case detail::GemmPath::small_n:
            if (N <= simd_width) detail::gemm_small_n<1>(M, N, K, alpha, a, b, beta, C, ldc, 1);
            else if (N <= 2 * simd_width) detail::gemm_small_n<2>(M, N, K, alpha, a, b, beta, C, ldc, 1);
            else if (N <= 3 * simd_width) detail::gemm_small_n<3>(M, N, K, alpha, a, b, beta, C, ldc, 1);
            else detail::gemm_small_n<4>(M, N, K, alpha, a, b, beta, C, ldc, 1);
            break;
        case detail::GemmPath::small_n_transposed: {
            const detail::StridedMatrix at{a.p, a.cs, a.rs}, bt{b.p, b.cs, b.rs};
            if (M <= simd_width) detail::gemm_small_n<1>(N, M, K, alpha, bt, at, beta, C, 1, ldc);
            else detail::gemm_small_n<2>(N, M, K, alpha, bt, at, beta, C, 1, ldc);
            break;
        }
        case detail::GemmPath::blocked_transposed:
            // Cᵀ[N,M] = op(B)ᵀ · op(A)ᵀ: transposing a strided operand swaps its strides.
            detail::gemm_driver(N, M, K, alpha, detail::StridedMatrix{b.p, b.cs, b.rs},
                                detail::StridedMatrix{a.p, a.cs, a.rs}, beta, C, 1, ldc);
            break;
        case detail::GemmPath::blocked:
            detail::gemm_driver(M, N, K, alpha, a, b, beta, C, ldc, 1);
            break;
    }
}
#endif

}  // namespace nanotorch::kernels
