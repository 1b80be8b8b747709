// tests/test_gemm.cpp — the packed, blocked kernels::sgemm against ref::sgemm.
//
// Covered: all four trans combinations at the awkward sizes of issue #6 (every M, N in
// {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129}, K drawn from the same list), with
// alpha/beta in {1, -0.5} x {0, 1, 0.5}, NaN in C whenever beta == 0 (it must be ignored),
// leading dimensions larger than needed (their padding holds a sentinel that must survive);
// shapes chosen from the blocking constants to reach every path of gemm.hpp (several K slices,
// M and N blocks, the Cᵀ formulation, the small-N kernel with and without an edge row block,
// and on Cᵀ, the dot-product blocks of A·Bᵀ);
// and bit-identical results for 1, 2 and 3 threads on each of those paths.
//
// Tolerance, and why: C = alpha·Σ_k a·b + beta·c computed in float passes each product through
// at most K + 3 roundings (the additions within and across K slices, the alpha scaling and the
// beta update), in whatever association and fusing the kernel uses; so each of kernels::sgemm
// and ref::sgemm is within (K + 3)·u·M of the exact value, where u = eps/2 and M = |alpha|·Σ|a·b|
// + |beta·c| (first-order bound, γ_n ≈ n·u). The two are then within (K + 3)·eps·M of each other;
// the check allows twice that, 2·(K + 3)·eps·M, as margin for the second-order terms.
#include <doctest/doctest.h>

#include <nanotorch/core/random.hpp>
#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/parallel.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace k = nanotorch::kernels;
using nanotorch::Generator;
using i64 = std::int64_t;

namespace {

constexpr double kEps = std::numeric_limits<float>::epsilon();
constexpr float kSentinel = 12345.0f;  // written into the padding of C's rows; must survive

struct Case {
    bool ta, tb;
    i64 M, N, K, pad;
    float alpha, beta;
};

// A problem's operands, stored as the flags say (op(A) is M x K, so A is K x M when
// transposed), every leading dimension widened by `pad`, all of it random (padding included,
// so reading it by mistake would show).
struct Operands {
    i64 lda, ldb, ldc;
    std::vector<float> A, B, C;
    Operands(const Case& c, Generator& gen)
        : lda((c.ta ? c.M : c.K) + c.pad), ldb((c.tb ? c.K : c.N) + c.pad), ldc(c.N + c.pad),
          A(fill(c.ta ? c.K : c.M, lda, gen)), B(fill(c.tb ? c.N : c.K, ldb, gen)), C(fill(c.M, ldc, gen)) {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        for (i64 i = 0; i < c.M; ++i)
            for (i64 j = 0; j < ldc; ++j) {
                float& x = C[static_cast<std::size_t>(i * ldc + j)];
                if (j >= c.N) x = kSentinel;
                else if (c.beta == 0.0f) x = nan;  // must be ignored
            }
    }
    static std::vector<float> fill(i64 rows, i64 ld, Generator& gen) {
        std::vector<float> m(static_cast<std::size_t>(std::max<i64>(rows * ld, 1)));
        for (float& v : m) v = gen.uniform(-1.0f, 1.0f);
        return m;
    }
    void run(const Case& c, float* out) const {
        k::sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, out, ldc);
    }
};

// Number of C entries (padding included) where kernels::sgemm and ref::sgemm disagree beyond
// the tolerance stated at the top of this file.
int mismatches(const Case& c, Generator& gen) {
    const Operands p(c, gen);
    std::vector<float> got = p.C, want = p.C;
    p.run(c, got.data());
    k::ref::sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, c.beta, want.data(), p.ldc);
    int bad = 0;
    for (i64 i = 0; i < c.M; ++i)
        for (i64 j = 0; j < p.ldc; ++j) {
            const auto at = static_cast<std::size_t>(i * p.ldc + j);
            if (j >= c.N) {
                bad += got[at] != kSentinel;
                continue;
            }
            double mag = 0.0;
            for (i64 kk = 0; kk < c.K; ++kk) {
                const double a = p.A[static_cast<std::size_t>(c.ta ? kk * p.lda + i : i * p.lda + kk)];
                const double b = p.B[static_cast<std::size_t>(c.tb ? j * p.ldb + kk : kk * p.ldb + j)];
                mag += std::fabs(a * b);
            }
            mag = std::fabs(c.alpha) * mag + (c.beta == 0.0f ? 0.0 : std::fabs(c.beta * p.C[at]));
            const double tol = 2.0 * static_cast<double>(c.K + 3) * kEps * mag;
            bad += !(std::fabs(static_cast<double>(got[at]) - want[at]) <= tol);  // NaN counts as bad
        }
    return bad;
}

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Shapes that reach each path of gemm.hpp, from its blocking constants.
std::vector<Case> path_cases() {
    std::vector<Case> cases;
    const i64 mr = k::gemm_mr, nr = k::gemm_nr, kc = k::gemm_kc, mc = k::gemm_mc, nc = k::gemm_nc;
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            // Blocked: 3 row blocks, 2 column blocks, 2 K slices, edges everywhere.
            cases.push_back({ta, tb, 2 * mc + 5, nc + 3, kc + 7, 2, 0.75f, 0.5f});
            // Cᵀ formulation: N small next to M, but wider than one kernel row.
            cases.push_back({ta, tb, 1500, 2 * nr + 8, 70, 0, 1.0f, 0.0f});
            // Small-N kernel, one and two vectors wide, with a partial last row block.
            cases.push_back({ta, tb, 100 * mr + 5, std::max<i64>(1, nr / 2), 200, 1, 1.0f, 0.0f});
            cases.push_back({ta, tb, 80 * mr + 1, nr, 300, 0, -0.5f, 1.0f});
            // ... three and four vectors wide (fewer rows per block).
            cases.push_back({ta, tb, 50 * mr + 5, nr + nr / 2 - 3, 120, 0, 1.0f, 0.5f});
            cases.push_back({ta, tb, 40 * mr + 1, 2 * nr, 200, 2, 1.0f, 0.0f});
            // Fewer rows than one kernel tile: small-N with a short K, blocked with a long one
            // (the dot-product path for A·Bᵀ, the small-N kernel on Cᵀ for AᵀBᵀ).
            cases.push_back({ta, tb, mr - 1, std::max<i64>(1, nr - 3), 4 * kc, 3, 1.0f, 0.5f});
            cases.push_back({ta, tb, mr - 2, std::max<i64>(1, nr - 7), 4 * kc + 1, 0, 1.0f, 0.0f});
            // Few rows, many columns: with a transposed B, the small-N kernel on Cᵀ.
            cases.push_back({ta, tb, std::max<i64>(1, nr / 2 - 1), 20 * mr + 3, 600, 2, 1.0f, 0.0f});
            cases.push_back({ta, tb, nr, 20 * mr + 7, 300, 0, 0.5f, 0.25f});
            // Few outputs, long K: for A·Bᵀ, blocks of dot products (full and edge blocks).
            cases.push_back({ta, tb, 30, 30, 4096 + 3, 1, 1.0f, 0.0f});
            cases.push_back({ta, tb, 10, 25, 576, 0, -1.0f, 0.5f});
        }
    return cases;
}

}  // namespace

TEST_CASE("sgemm: matches ref::sgemm at every awkward size, trans combination, alpha and beta") {
    const i64 sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129};
    constexpr int n = sizeof(sizes) / sizeof(sizes[0]);
    const float alphas[] = {1.0f, -0.5f}, betas[] = {0.0f, 1.0f, 0.5f};
    const i64 pads[] = {0, 3, 17};
    Generator gen(61);
    int checked = 0;
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (int im = 0; im < n; ++im)
                for (int in = 0; in < n; ++in)
                    // Every (M, N) pair with two values of K; over the (M, N) grid each K, alpha,
                    // beta and padding appears many times (all of them with every trans pair).
                    for (int pick = 0; pick < 2; ++pick) {
                        const int s = im * 3 + in * 7 + pick * 5 + (ta ? 1 : 0) + (tb ? 2 : 0);
                        const Case c{ta, tb, sizes[im], sizes[in], sizes[(im + in + pick * 8) % n], pads[s % 3],
                                     alphas[s % 2], betas[(s / 2) % 3]};
                        CAPTURE(c.ta); CAPTURE(c.tb); CAPTURE(c.M); CAPTURE(c.N); CAPTURE(c.K);
                        CAPTURE(c.pad); CAPTURE(c.alpha); CAPTURE(c.beta);
                        CHECK(mismatches(c, gen) == 0);
                        ++checked;
                    }
    CHECK(checked == 4 * n * n * 2);
}

TEST_CASE("sgemm: matches ref::sgemm on the shapes that reach each blocking path") {
    Generator gen(62);
    for (const Case& c : path_cases()) {
        CAPTURE(c.ta); CAPTURE(c.tb); CAPTURE(c.M); CAPTURE(c.N); CAPTURE(c.K);
        CAPTURE(c.alpha); CAPTURE(c.beta);
        CHECK(mismatches(c, gen) == 0);
    }
}

TEST_CASE("sgemm: K = 0 gives beta * C, and beta = 0 clears NaN") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float A[1] = {1.0f}, B[1] = {1.0f};
    std::vector<float> C = {nan, 2.0f, -4.0f, 8.0f};
    k::sgemm(false, false, 2, 2, 0, 1.0f, A, 1, B, 2, 0.0f, C.data(), 2);
    CHECK(C == std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f});
    std::vector<float> D = {1.0f, 2.0f, -4.0f, 8.0f};
    k::sgemm(true, true, 2, 2, 0, 1.0f, A, 2, B, 1, 0.5f, D.data(), 2);
    CHECK(D == std::vector<float>{0.5f, 1.0f, -2.0f, 4.0f});
}

TEST_CASE("sgemm: bit-identical for 1, 2 and 3 threads on every blocking path") {
    const int saved = nanotorch::get_num_threads();
    Generator gen(63);
    for (const Case& c : path_cases()) {
        CAPTURE(c.ta); CAPTURE(c.tb); CAPTURE(c.M); CAPTURE(c.N); CAPTURE(c.K);
        const Operands p(c, gen);
        std::vector<std::vector<float>> results;
        for (int threads : {1, 2, 3}) {
            nanotorch::set_num_threads(threads);
            std::vector<float> out = p.C;
            p.run(c, out.data());
            results.push_back(out);
        }
        CHECK(bits_equal(results[0], results[1]));
        CHECK(bits_equal(results[0], results[2]));
    }
    nanotorch::set_num_threads(saved);
    CHECK(nanotorch::get_num_threads() == saved);
}

TEST_CASE("sgemm: a long-K product of few blocks, split into narrower column blocks, gives the one-block bits") {
    // With more than one thread (outside a parallel region), gemm_driver splits a product of
    // fewer than four blocks and at least 2 MFLOP into column blocks of whole panels (so that
    // every core gets work: a Linear layer's forward or gradients at batch 64). Each element's K slices are
    // the same whatever the blocks, so the bits must be those of the same product done as one
    // block (gemm_block over all of C, as before the split), at 1 thread (no split) and 2.
    const int saved = nanotorch::get_num_threads();
    Generator gen(71);
    struct Shape3 {
        i64 M, N, K;
    };
    for (const Shape3& s : {Shape3{64, 128, 9216}, Shape3{40, 300, 2000}, Shape3{13, 70, 20000}, Shape3{64, 320, 50}}) {
        CAPTURE(s.M); CAPTURE(s.N); CAPTURE(s.K);
        REQUIRE(s.M <= k::gemm_mc);
        REQUIRE(s.N <= k::gemm_nc);
        std::vector<float> A(static_cast<std::size_t>(s.M * s.K)), B(static_cast<std::size_t>(s.K * s.N));
        for (auto& v : A) v = gen.uniform(-1.0f, 1.0f);
        for (auto& v : B) v = gen.uniform(-1.0f, 1.0f);
        std::vector<float> whole(static_cast<std::size_t>(s.M * s.N), 3.0f), split(whole.size(), -3.0f);
        const k::detail::StridedMatrix a{A.data(), s.K, 1}, b{B.data(), s.N, 1};
        k::detail::gemm_block(0, s.M, 0, s.N, s.K, 1.0f, a, b, 0.0f, whole.data(), s.N, 1);
        for (int threads : {1, 2}) {
            nanotorch::set_num_threads(threads);
            k::detail::gemm_driver(s.M, s.N, s.K, 1.0f, a, b, 0.0f, split.data(), s.N, 1);
            CHECK(bits_equal(whole, split));
        }
    }
    nanotorch::set_num_threads(saved);
}
