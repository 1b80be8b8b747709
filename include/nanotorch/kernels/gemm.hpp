// nanotorch/kernels/gemm.hpp — single-precision matrix multiply, C = alpha·op(A)·op(B) + beta·C.
//
// op(X) is X or Xᵀ (trans_a / trans_b), so one entry point serves the NN, NT and TN products
// that linear, matmul and conv2d forward/backward need. Row-major, with leading dimensions.
//
// The optimized version packs op(B) into a contiguous K×N panel, then computes each row of C
// as a sequence of SIMD axpys over k in increasing order; rows are spread over parallel_for.
// Every C element therefore sums its K products in the same order whatever the thread count.
// ref::sgemm is the plain triple loop kept as the test oracle.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>

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

// C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C[M,N]. beta == 0 ignores C's old contents
// (even NaN), as BLAS does.
inline void sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                  const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                  std::int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    // op(B) as a contiguous K x N panel (a copy only when B is transposed or strided).
    std::vector<float> packed;
    const float* Bp = B;
    if (trans_b || ldb != N) {
        packed.resize(static_cast<std::size_t>(K * N));
        for (std::int64_t k = 0; k < K; ++k)
            for (std::int64_t j = 0; j < N; ++j)
                packed[static_cast<std::size_t>(k * N + j)] = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        Bp = packed.data();
    }
    const std::int64_t grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, N * K));
    parallel_for(0, M, grain, [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) {
            float* c = C + i * ldc;
            if (beta == 0.0f) {
                for (std::int64_t j = 0; j < N; ++j) c[j] = 0.0f;
            } else if (beta != 1.0f) {
                mul_scalar(c, c, beta, N);
            }
            for (std::int64_t k = 0; k < K; ++k) {
                const float a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);
                axpy(c, a, Bp + k * N, N);
            }
        }
    });
}

}  // namespace nanotorch::kernels
