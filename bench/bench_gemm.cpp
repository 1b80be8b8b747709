// bench/bench_gemm.cpp — kernels::sgemm against the scalar reference, OpenBLAS and the machine's FMA peak.
//
// Every product is first validated (kernels::sgemm and, when linked, OpenBLAS's cblas_sgemm
// against ref::sgemm, or against double-precision dot products where the reference is too
// slow; and kernels::sgemm with all threads bit-identical to 1 thread); the program exits with
// status 1 on any mismatch. Then, at 1 thread and at all threads, kernels::sgemm and OpenBLAS
// are timed with interleaved samples and printed side by side with the scalar reference (1
// thread, small products only) and with the share of the FMA peak measured at the start by an
// xsimd loop with independent accumulators. Shapes: square 128..1024 and the seed net's
// products at batch 64, both batch-major (as issue #6 lists them, M = batch·positions) and
// channel-major (as kernels/conv.hpp issues them: per image, or over the whole batch).
// OpenBLAS is optional (CMake defines NANOTORCH_BENCH_OPENBLAS when it finds it); the library
// never links BLAS. Run with --help for the flags.
#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>

#include "bench_common.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(NANOTORCH_BENCH_OPENBLAS)
#include <cblas.h>
#endif

namespace {

namespace k = nanotorch::kernels;
using namespace nanotorch_bench;
using i64 = std::int64_t;

constexpr double kEps = std::numeric_limits<float>::epsilon();

#if defined(NANOTORCH_BENCH_OPENBLAS)
constexpr bool kHaveBlas = true;
void blas_sgemm(bool ta, bool tb, i64 M, i64 N, i64 K, const float* A, i64 lda, const float* B, i64 ldb, float* C,
                i64 ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
                static_cast<int>(N), static_cast<int>(K), 1.0f, A, static_cast<int>(lda), B, static_cast<int>(ldb), 0.0f,
                C, static_cast<int>(ldc));
}
void blas_threads(int n) { openblas_set_num_threads(n); }
#else
constexpr bool kHaveBlas = false;
void blas_sgemm(bool, bool, i64, i64, i64, const float*, i64, const float*, i64, float*, i64) {}
void blas_threads(int) {}
#endif

// ---- problems ----

struct Shape {
    std::string name;
    bool ta, tb;
    i64 M, N, K;
    std::string label() const {
        return std::string(ta ? "T" : "N") + (tb ? "T" : "N") + " " + std::to_string(M) + "x" + std::to_string(N) +
               "x" + std::to_string(K);
    }
    double flops() const { return 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K); }
    double macs() const { return flops() / 2.0; }
};

// A stored K x M when transposed (else M x K), B likewise; C is M x N; no padding; alpha 1, beta 0.
struct Problem {
    Shape s;
    i64 lda, ldb, ldc;
    std::vector<float> A, B;
    Problem(const Shape& shape, std::uint32_t seed)
        : s(shape), lda(shape.ta ? shape.M : shape.K), ldb(shape.tb ? shape.K : shape.N), ldc(shape.N),
          A(random_vector(static_cast<std::size_t>(shape.M * shape.K), seed)),
          B(random_vector(static_cast<std::size_t>(shape.K * shape.N), seed + 1)) {}
    std::size_t c_size() const { return static_cast<std::size_t>(s.M * s.N); }
    void opt(float* C) const { k::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C, ldc); }
    void ref(float* C) const { k::ref::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C, ldc); }
    void blas(float* C) const { blas_sgemm(s.ta, s.tb, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, C, ldc); }
    double a_at(i64 i, i64 kk) const { return A[static_cast<std::size_t>(s.ta ? kk * lda + i : i * lda + kk)]; }
    double b_at(i64 kk, i64 j) const { return B[static_cast<std::size_t>(s.tb ? j * ldb + kk : kk * ldb + j)]; }
};

// The reference runs (validation and timing) only up to this many multiply-adds: 512^3 takes
// ~0.1 s with the naive loop; beyond it, validation samples entries against double precision.
constexpr double kRefMacs = 512.0 * 512.0 * 512.0;
// Reference timing only up to 256^3: the naive loop is ~100x slower, and only the ratio matters.
constexpr double kRefTimeMacs = 256.0 * 256.0 * 256.0;

// Tolerance (as tests/test_gemm.cpp states it): each product passes through at most K + 3
// roundings whatever the association and fusing, so each result is within (K + 3)·(eps/2)·Σ|a·b|
// of the exact value and two results within (K + 3)·eps·Σ|a·b| of each other; the check allows
// twice that. Σ|a·b| comes from ref::sgemm on |A| and |B|. Without the reference: 64 sampled
// entries against a double-precision dot product, within (K + 3)·eps·Σ|a·b|.
void validate(const Problem& p, const std::vector<float>& got, const std::string& who) {
    const Shape& s = p.s;
    const std::string what = who + " " + s.name + " " + s.label();
    if (s.macs() <= kRefMacs) {
        std::vector<float> want(p.c_size()), mag(p.c_size());
        p.ref(want.data());
        const std::vector<float> absA = abs_copy(p.A), absB = abs_copy(p.B);
        k::ref::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, absA.data(), p.lda, absB.data(), p.ldb, 0.0f, mag.data(), p.ldc);
        const double f = 2.0 * static_cast<double>(s.K + 3) * kEps;
        expect_close(what, got.data(), want.data(), got.size(), [&](std::size_t i) { return f * mag[i]; });
        return;
    }
    std::mt19937 gen(7);
    for (int t = 0; t < 64; ++t) {
        const i64 i = static_cast<i64>(gen() % static_cast<std::uint32_t>(s.M));
        const i64 j = static_cast<i64>(gen() % static_cast<std::uint32_t>(s.N));
        double exact = 0.0, mag = 0.0;
        for (i64 kk = 0; kk < s.K; ++kk) {
            exact += p.a_at(i, kk) * p.b_at(kk, j);
            mag += std::fabs(p.a_at(i, kk) * p.b_at(kk, j));
        }
        const float want = static_cast<float>(exact);
        const double tol = static_cast<double>(s.K + 3) * kEps * mag;
        expect_close(what + " (sampled entry " + std::to_string(i) + "," + std::to_string(j) + " vs double)",
                     &got[static_cast<std::size_t>(i * s.N + j)], &want, 1, [&](std::size_t) { return tol; });
    }
}

// ---- table ----

struct Peaks {
    double one = 0.0, all = 0.0;
};

void print_header(const char* title) {
    std::printf("\n== %s ==\n", title);
    std::printf("%-16s %-20s %3s %9s %9s %6s %9s %8s %7s %5s\n", "product", "shape (MxNxK)", "thr", "ref GF/s",
                "opt GF/s", "%peak", "blas GF/s", "opt/blas", "opt/ref", "iqr%");
}

void bench_shape(const Shape& shape, int all_threads, const Peaks& peaks, const Budget& b) {
    const Problem p(shape, 11);
    std::vector<float> c_one(p.c_size()), c_all(p.c_size()), c_blas(p.c_size());
    // Validate first: kernels::sgemm at 1 thread against the reference, at all threads against
    // the 1-thread output bit for bit; OpenBLAS (1 thread) against the reference.
    nanotorch::set_num_threads(1);
    p.opt(c_one.data());
    validate(p, c_one, "kernels::sgemm");
    nanotorch::set_num_threads(all_threads);
    p.opt(c_all.data());
    expect_identical("kernels::sgemm " + shape.name + " " + shape.label() + " at " + std::to_string(all_threads) +
                         " threads vs 1 thread", c_all.data(), c_one.data(), c_all.size());
    if (kHaveBlas) {
        blas_threads(1);
        p.blas(c_blas.data());
        validate(p, c_blas, "OpenBLAS");
    }

    std::vector<int> counts = {1};
    if (all_threads > 1) counts.push_back(all_threads);
    for (int t : counts) {
        nanotorch::set_num_threads(t);
        blas_threads(t);
        Timing ref;
        if (t == 1 && shape.macs() <= kRefTimeMacs) ref = measure([&] { p.ref(c_blas.data()); }, b);
        PairTiming pt;
        if (kHaveBlas) pt = measure_pair([&] { p.blas(c_blas.data()); }, [&] { p.opt(c_all.data()); }, b);
        else pt.opt = measure([&] { p.opt(c_all.data()); }, b);
        const double opt_gf = shape.flops() / pt.opt.median_s / 1e9;
        const double peak = t == 1 ? peaks.one : peaks.all;
        const std::string ref_gf = ref.measured() ? fmt_num(shape.flops() / ref.median_s / 1e9) : "-";
        const std::string blas_gf = pt.ref.measured() ? fmt_num(shape.flops() / pt.ref.median_s / 1e9) : "-";
        const std::string vs_blas = pt.ref.measured() ? fmt_num(pt.ref.median_s / pt.opt.median_s) : "-";
        const std::string vs_ref = ref.measured() ? fmt_num(ref.median_s / pt.opt.median_s, 1) : "-";
        const double iqr = std::max({pt.opt.iqr_fraction(), pt.ref.measured() ? pt.ref.iqr_fraction() : 0.0,
                                     ref.measured() ? ref.iqr_fraction() : 0.0});
        std::printf("%-16s %-20s %3d %9s %9s %6s %9s %8s %7s %5.0f\n", shape.name.c_str(), shape.label().c_str(), t,
                    ref_gf.c_str(), fmt_num(opt_gf).c_str(), fmt_num(100.0 * opt_gf / peak, 1).c_str(), blas_gf.c_str(),
                    vs_blas.c_str(), vs_ref.c_str(), 100.0 * iqr);
        std::fflush(stdout);
    }
}

void run(const Options& o, const Budget& b) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int all_threads = o.threads ? o.threads : nanotorch::get_num_threads();
    std::printf("  sgemm tile (MR x NR)    %lld x %lld, blocks kc %lld, mc %lld, nc %lld\n",
                static_cast<long long>(k::gemm_mr), static_cast<long long>(k::gemm_nr),
                static_cast<long long>(k::gemm_kc), static_cast<long long>(k::gemm_mc),
                static_cast<long long>(k::gemm_nc));
#if defined(NANOTORCH_BENCH_OPENBLAS)
    std::printf("  OpenBLAS                %s (core %s)\n", openblas_get_config(), openblas_get_corename());
#else
    std::printf("  OpenBLAS                not found at configure time: blas columns show '-'\n");
#endif
    Peaks peaks;
    peaks.one = nanotorch_bench::measure_peak(1);
    peaks.all = all_threads > 1 ? nanotorch_bench::measure_peak(std::min(all_threads, hw)) : peaks.one;
    std::printf("  measured FMA peak       %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d threads (16 independent\n"
                "                          %s fma chains; %%peak below divides by the one for the row's threads)\n",
                peaks.one, peaks.all, std::min(all_threads, hw), k::simd_arch_name());
    std::printf("Columns: GF/s = 2*M*N*K / median time; opt = kernels::sgemm, blas = OpenBLAS cblas_sgemm with\n"
                "the same thread count (openblas_set_num_threads), ref = ref::sgemm (1 thread, <= 256^3 only);\n"
                "opt/blas and opt/ref are throughput ratios (> 1: kernels::sgemm is faster). alpha = 1, beta = 0.\n");

    print_header("square");
    for (i64 n : {128, 256, 512, 1024}) bench_shape({"square", false, false, n, n, n}, all_threads, peaks, b);

    print_header("seed net at batch 64, batch-major (issue #6's shapes: rows = batch x positions)");
    const std::vector<Shape> batch_major = {
        {"conv1 fwd", false, false, 36864, 10, 25},     // col [64*24*24, 25] @ W^T [25, 10]
        {"conv2 fwd", false, false, 4096, 20, 250},     // col [64*8*8, 250] @ W^T [250, 20]
        {"conv2 dW", true, false, 250, 20, 4096},       // col^T @ dY
        {"conv2 dX(col)", false, true, 4096, 250, 20},  // dY @ W
        {"fc1 fwd", false, true, 64, 50, 320},          // x [64, 320] @ W^T, W [50, 320]
        {"fc1 dX", false, false, 64, 320, 50},          // dY [64, 50] @ W [50, 320]
        {"fc1 dW", true, false, 50, 320, 64},           // dY^T [50, 64] @ x [64, 320]
        {"fc2 fwd", false, true, 64, 10, 50},           // x [64, 50] @ W^T, W [10, 50]
        {"fc2 dX", false, false, 64, 50, 10},
        {"fc2 dW", true, false, 10, 50, 64},
    };
    for (const Shape& s : batch_major) bench_shape(s, all_threads, peaks, b);

    print_header("seed convs channel-major, as kernels/conv.hpp issues them (per image; whole batch)");
    const std::vector<Shape> channel_major = {
        {"conv1 fwd/img", false, false, 10, 576, 25},    // W [10, 25] @ col [25, 576]
        {"conv1 dW/img", false, true, 10, 25, 576},      // dY [10, 576] @ col^T
        {"conv2 fwd/img", false, false, 20, 64, 250},    // W [20, 250] @ col [250, 64]
        {"conv2 dW/img", false, true, 20, 250, 64},      // dY [20, 64] @ col^T
        {"conv2 dX/img", true, false, 250, 64, 20},      // W^T [250, 20] @ dY [20, 64]
        {"conv1 fwd/batch", false, false, 10, 36864, 25},
        {"conv1 dW/batch", false, true, 10, 25, 36864},
        {"conv2 fwd/batch", false, false, 20, 4096, 250},
        {"conv2 dW/batch", false, true, 20, 250, 4096},
        {"conv2 dX/batch", true, false, 250, 4096, 20},
    };
    for (const Shape& s : channel_major) bench_shape(s, all_threads, peaks, b);
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse_options(argc, argv,
                                    "Validates kernels::sgemm (and OpenBLAS, when linked) against ref::sgemm, then\n"
                                    "times them side by side at 1 and all threads, with the measured FMA peak.");
    try {
        if (o.threads) nanotorch::set_num_threads(o.threads);
        const auto t0 = Clock::now();
        print_machine_facts(o, "bench_gemm");
        run(o, budget_for(o.quick));
        std::printf("\nAll products matched the reference within the stated tolerances. Total %s.\n",
                    fmt_time(std::chrono::duration<double>(Clock::now() - t0).count()).c_str());
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "bench_gemm: %s\n", e.what());
        return 1;
    }
    return 0;
}
