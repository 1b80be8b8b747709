// bench/bench_common.hpp — shared scaffolding for the programs in bench/: flags, timing, checks.
//
// Provides the flags every bench program takes (--quick, --threads N, --help), a timer that
// reports the MEDIAN of repeated samples (the machines here are shared and noisy, and a mean
// chases the outliers) with the reference's and the optimized kernel's samples interleaved so
// that a change in machine load during a run hits both alike, element-wise comparison helpers
// that stop the program with a message naming the kernel, the index, both values and the
// tolerance, deterministic random inputs, the machine-facts banner and the table printer.
// It deliberately does not pin threads, control CPU frequency, flush caches between samples or
// compute confidence intervals: a number printed by a bench program is a wall-clock median on
// warm caches and nothing more. Bench programs are applications, so a failed check ends the
// process (exit status 1) instead of throwing.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>

namespace nanotorch_bench {

// ---- failure ----

/// Prints "VALIDATION FAILED: msg" to stderr and exits with status 1 (stdout flushed first so
/// the table printed so far stays readable above the message).
[[noreturn]] inline void fail(const std::string& msg) {
    std::fflush(stdout);
    std::fprintf(stderr, "\nVALIDATION FAILED: %s\n", msg.c_str());
    std::exit(EXIT_FAILURE);
}

// ---- flags ----

struct Options {
    bool quick = false;  ///< fewer and shorter samples, for CI smoke runs
    int threads = 0;     ///< 0 = the library's default (NANOTORCH_NUM_THREADS or all cores)
};

inline void print_usage(std::FILE* f, const char* prog, const char* what) {
    std::fprintf(f,
                 "usage: %s [--quick] [--threads N] [--help]\n\n%s\n\n"
                 "  --quick      fewer, shorter samples (a CI smoke run); the checks are unchanged\n"
                 "  --threads N  threads for the optimized kernels in the main tables (1..1024);\n"
                 "               default: NANOTORCH_NUM_THREADS, else all cores. The thread sweep\n"
                 "               always runs 1 thread and all cores (and N, when different)\n"
                 "  --help       show this help\n",
                 prog, what);
}

/// Parses the common flags; --help prints usage and exits 0, anything unknown prints usage to
/// stderr and exits 2.
inline Options parse_options(int argc, char** argv, const char* what) {
    Options o;
    const char* prog = argc > 0 ? argv[0] : "bench";
    const auto bad = [&](const std::string& msg) {
        std::fprintf(stderr, "%s: %s\n", prog, msg.c_str());
        print_usage(stderr, prog, what);
        std::exit(2);
    };
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            print_usage(stdout, prog, what);
            std::exit(0);
        } else if (arg == "--quick") {
            o.quick = true;
        } else if (arg == "--threads" || arg.rfind("--threads=", 0) == 0) {
            std::string value;
            if (arg == "--threads") {
                if (i + 1 >= argc) bad("--threads needs a value");
                value = argv[++i];
            } else {
                value = arg.substr(std::strlen("--threads="));
            }
            char* end = nullptr;
            const long n = std::strtol(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || n < 1 || n > 1024)
                bad("--threads: '" + value + "' is not a number in [1, 1024]");
            o.threads = static_cast<int>(n);
        } else {
            bad("unknown argument '" + arg + "'");
        }
    }
    return o;
}

// ---- timing ----

using Clock = std::chrono::steady_clock;

/// How long to sample one kernel. A sample repeats the kernel `inner` times so that it lasts at
/// least min_sample_s (well above steady_clock's resolution and call overhead); the number of
/// samples aims at target_s of sampling, clamped to [min_reps, max_reps].
struct Budget {
    double min_sample_s;
    double target_s;
    int min_reps;
    int max_reps;
};

// --quick is the ctest mode: its job is the correctness check each bench runs before timing, so
// one sample per kernel is enough (its timings are printed but mean little), and the naive
// references at the largest shapes cost seconds per sample.
inline Budget budget_for(bool quick) {
    return quick ? Budget{20e-6, 0.01, 1, 5} : Budget{200e-6, 0.4, 7, 101};
}

/// Median and quartiles of the per-call time over `reps` samples of `inner` calls each.
struct Timing {
    double median_s = 0.0, q1_s = 0.0, q3_s = 0.0;
    int reps = 0;   ///< 0 = not measured (e.g. a reference skipped as too slow)
    int inner = 0;
    bool measured() const { return reps > 0; }
    /// Interquartile range relative to the median: a rough noise figure for the row.
    double iqr_fraction() const { return median_s > 0.0 ? (q3_s - q1_s) / median_s : 0.0; }
};

namespace detail {

template <class Fn>
inline double time_calls(Fn& fn, int inner) {
    const auto t0 = Clock::now();
    for (int i = 0; i < inner; ++i) fn();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Plan {
    int inner = 1;
    int reps = 0;
    std::vector<double> samples;  // seconds per call
};

// One warm-up call (first touch of the buffers, thread-pool start-up), then doubles `inner`
// until one sample lasts min_sample_s, and sizes the number of samples from that.
template <class Fn>
inline Plan make_plan(Fn& fn, const Budget& b) {
    fn();
    Plan p;
    double t = time_calls(fn, p.inner);
    while (t < b.min_sample_s && p.inner < (1 << 24)) {
        p.inner *= 2;
        t = time_calls(fn, p.inner);
    }
    const double want = t > 0.0 ? b.target_s / t : b.max_reps;
    p.reps = static_cast<int>(std::clamp(want, static_cast<double>(b.min_reps), static_cast<double>(b.max_reps)));
    return p;
}

inline Timing summarize(Plan& p) {
    Timing t;
    std::vector<double>& s = p.samples;
    if (s.empty()) return t;
    std::sort(s.begin(), s.end());
    const std::size_t n = s.size();
    t.median_s = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    t.q1_s = s[n / 4];
    t.q3_s = s[(3 * n) / 4 < n ? (3 * n) / 4 : n - 1];
    t.reps = static_cast<int>(n);
    t.inner = p.inner;
    return t;
}

// Spreads `reps` samples evenly over `rounds` rounds: true in exactly `reps` of them.
inline bool due(long long round, long long reps, long long rounds) {
    return (round + 1) * reps / rounds > round * reps / rounds;
}

}  // namespace detail

struct PairTiming {
    Timing ref, opt;
};

/// Times `ref` (unless run_ref is false) and `opt`, interleaving their samples round by round.
template <class RefFn, class OptFn>
inline PairTiming measure_pair(RefFn&& ref, OptFn&& opt, const Budget& b, bool run_ref = true) {
    detail::Plan pr, po;
    if (run_ref) pr = detail::make_plan(ref, b);
    po = detail::make_plan(opt, b);
    const int rounds = std::max(run_ref ? pr.reps : 0, po.reps);
    for (int i = 0; i < rounds; ++i) {
        if (run_ref && detail::due(i, pr.reps, rounds)) pr.samples.push_back(detail::time_calls(ref, pr.inner) / pr.inner);
        if (detail::due(i, po.reps, rounds)) po.samples.push_back(detail::time_calls(opt, po.inner) / po.inner);
    }
    return {detail::summarize(pr), detail::summarize(po)};
}

/// Times one function (no reference).
template <class Fn>
inline Timing measure(Fn&& fn, const Budget& b) {
    detail::Plan p = detail::make_plan(fn, b);
    for (int i = 0; i < p.reps; ++i) p.samples.push_back(detail::time_calls(fn, p.inner) / p.inner);
    return detail::summarize(p);
}

/// Stores a result where the optimizer must assume it is observed (reductions such as sum/dot
/// would otherwise be dead code inside a timing loop).
inline volatile float keep_sink = 0.0f;
inline void keep(float v) { keep_sink = v; }

// ---- inputs and checks ----

/// n floats uniform in [lo, hi) from a fixed seed (the same inputs on every run).
inline std::vector<float> random_vector(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(gen);
    return v;
}

inline std::vector<float> abs_copy(const std::vector<float>& v) {
    std::vector<float> a(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
    return a;
}

/// Fails unless |got[i] − want[i]| <= tol(i) for every i < n; a NaN anywhere fails. The message
/// names `what`, the first bad index, both values, its tolerance and how many entries are bad.
template <class TolFn>
inline void expect_close(const std::string& what, const float* got, const float* want, std::size_t n, TolFn tol) {
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
        if (!(d <= tol(i))) {
            if (bad++ == 0) first = i;
        }
    }
    if (bad == 0) return;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s: %zu of %zu entries differ; first at index %zu: optimized %.9g, reference %.9g, "
                  "|diff| %.3g > tolerance %.3g", what.c_str(), bad, n, first, static_cast<double>(got[first]),
                  static_cast<double>(want[first]),
                  std::fabs(static_cast<double>(got[first]) - static_cast<double>(want[first])), tol(first));
    fail(buf);
}

/// Fails unless got and want are equal bit for bit (n elements of trivially copyable T).
template <class T>
inline void expect_identical(const std::string& what, const T* got, const T* want, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (std::memcmp(got + i, want + i, sizeof(T)) != 0)
            fail(what + ": not bit-identical, first difference at index " + std::to_string(i));
}

// ---- printing ----

/// "812 ns", "3.41 us", "12.6 ms", "1.52 s".
inline std::string fmt_time(double s) {
    char buf[32];
    if (s < 1e-6) std::snprintf(buf, sizeof buf, "%.0f ns", s * 1e9);
    else if (s < 1e-3) std::snprintf(buf, sizeof buf, "%.2f us", s * 1e6);
    else if (s < 1.0) std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
    else std::snprintf(buf, sizeof buf, "%.2f s", s);
    return buf;
}

inline std::string fmt_num(double v, int precision = 2) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", precision, v);
    return buf;
}

// ---- FMA peak ----

// One thread's FMA throughput: independent accumulator vectors, at least latency x ports (about
// 10) on current x86 cores, acc = acc·x + y converging to 1 so no value overflows or goes
// subnormal. 16 with AVX-512's 32 registers; 12 with AVX2's or SSE's 16, where 16 accumulators
// plus x and y do not fit and the spills measured the peak ~20 % low (Zen 2: 60 GFLOP/s against
// 70+ reached by a 3x3 convolution).
inline double fma_loop_flops(long long iters) {
#if NANOTORCH_SIMD_ENABLED
    using V = nanotorch::kernels::fbatch;
    constexpr int kAcc = nanotorch::kernels::simd_width >= 16 ? 16 : 12;
    V acc[kAcc];
    for (int i = 0; i < kAcc; ++i) acc[i] = V(static_cast<float>(i) * 0.01f);
    const V x(0.999f), y(0.001f);
    // (unrolled by construction: g++ 12 at -O2 kept the array in memory, a load and a store per
    // multiply-add, and measured 50 GFLOP/s on a 118 GFLOP/s core, so every share of peak of an
    // -O2 build of bench/ came out twice too high)
    for (long long n = 0; n < iters; ++n)
        nanotorch::kernels::detail::unroll<kAcc>(
            [&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = xsimd::fma(acc[i], x, y); });
    V s(0.0f);
    for (int i = 0; i < kAcc; ++i) s += acc[i];
    keep(xsimd::hadd(s));
    return 2.0 * kAcc * static_cast<double>(V::size) * static_cast<double>(iters);
#else
    constexpr int kAcc = 16;
    float acc[kAcc];
    for (int i = 0; i < kAcc; ++i) acc[i] = static_cast<float>(i) * 0.01f;
    for (long long n = 0; n < iters; ++n)
        for (int i = 0; i < kAcc; ++i) acc[i] = acc[i] * 0.999f + 0.001f;
    float s = 0.0f;
    for (float a : acc) s += a;
    keep(s);
    return 2.0 * kAcc * static_cast<double>(iters);
#endif
}

// GFLOP/s of the loop above on `threads` threads at once (each runs its own copy): the best of
// 40 runs of about a millisecond, so that on a shared machine at least one run is likely to
// have had the cores to itself (a peak measured under contention would flatter every share).
inline double measure_peak(int threads) {
    static constexpr long long iters = 250'000;
    double best = 0.0;
    for (int rep = 0; rep < 40; ++rep) {
        std::vector<std::thread> pool;
        std::vector<double> flops(static_cast<std::size_t>(threads));
        // Each thread stamps the start and end of its own loop, and the run is the span from the
        // first start to the last end: the main thread's start-up of the pool (tens of
        // microseconds, a few per cent of a run) is not FMA time, while threads that did not
        // overlap still count as the time they took.
        std::vector<Clock::time_point> start(static_cast<std::size_t>(threads)), end(start);
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&flops, &start, &end, t] {
                const auto i = static_cast<std::size_t>(t);
                start[i] = Clock::now();
                flops[i] = fma_loop_flops(iters);
                end[i] = Clock::now();
            });
        for (auto& th : pool) th.join();
        const double s =
            std::chrono::duration<double>(*std::max_element(end.begin(), end.end()) -
                                          *std::min_element(start.begin(), start.end()))
                .count();
        double total = 0.0;
        for (double f : flops) total += f;
        best = std::max(best, total / s / 1e9);
    }
    return best;
}

/// The banner every bench program starts with: what was compiled, and for which machine.
inline void print_machine_facts(const Options& o, const char* program) {
    namespace k = nanotorch::kernels;
    std::printf("%s (nanotorch %s)\n", program, NANOTORCH_VERSION_STRING);
    std::printf("  simd_arch_name()        %s\n", k::simd_arch_name());
    std::printf("  simd_width              %lld floats\n", static_cast<long long>(k::simd_width));
    std::printf("  get_num_threads()       %d%s\n", nanotorch::get_num_threads(),
                o.threads ? "  (from --threads)" : "  (library default)");
    std::printf("  hardware_concurrency    %u\n", std::thread::hardware_concurrency());
    // Other processes compete for the cores on a shared machine; the load says how much.
    if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
        double l1 = 0.0, l5 = 0.0;
        if (std::fscanf(f, "%lf %lf", &l1, &l5) == 2)
            std::printf("  load average            %.2f (1 min), %.2f (5 min) at start\n", l1, l5);
        std::fclose(f);
    }
#if defined(__clang__)
    std::printf("  compiler                clang %s\n", __clang_version__);
#elif defined(__GNUC__)
    std::printf("  compiler                g++ %s\n", __VERSION__);
#elif defined(_MSC_VER)
    std::printf("  compiler                MSVC %d\n", _MSC_VER);
#endif
#if defined(__OPTIMIZE__) || (defined(_MSC_VER) && defined(NDEBUG))
    std::printf("  optimized build         yes\n");
#else
    std::printf("  optimized build         NO: these timings say little about an optimized build\n");
#endif
#if defined(__SANITIZE_ADDRESS__)
    std::printf("  sanitizers              AddressSanitizer is on: timings are not representative\n");
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    std::printf("  sanitizers              AddressSanitizer is on: timings are not representative\n");
#endif
#endif
    std::printf("  mode                    %s (samples of >= %s, ~%s per kernel, %d..%d samples)\n",
                o.quick ? "--quick" : "full", fmt_time(budget_for(o.quick).min_sample_s).c_str(),
                fmt_time(budget_for(o.quick).target_s).c_str(), budget_for(o.quick).min_reps,
                budget_for(o.quick).max_reps);
    std::printf("Times are MEDIANS of wall-clock samples on warm caches; iqr%% = interquartile range / median\n"
                "(a noise figure). Reference and optimized samples are interleaved. The reference kernels\n"
                "are compiled with the same flags as everything else, so the compiler may auto-vectorize\n"
                "them; ratios compare the two kernels as built, not \"SIMD vs no SIMD\".\n");
}

/// One table: a title line, a header and rows of reference vs optimized.
/// per_item: the time column shows ns per item (work_items) instead of time per call.
struct Table {
    const char* rate_unit;  ///< e.g. "GFLOP/s", "GB/s"
    bool per_item = false;

    void header(const char* title) const {
        std::printf("\n== %s ==\n", title);
        std::printf("%-18s %-24s %10s %9s  %10s %9s  %8s %5s %7s\n", "kernel", "shape", per_item ? "ref ns/el" : "ref time",
                    rate_unit, per_item ? "opt ns/el" : "opt time", rate_unit, "opt/ref", "iqr%", "samples");
    }

    /// rate = rate_amount / median / 1e9 (so bytes give GB/s and flops GFLOP/s); opt/ref is the
    /// throughput ratio (reference time / optimized time): > 1 means the optimized kernel is faster.
    void row(const std::string& name, const std::string& shape, const PairTiming& t, double rate_amount,
             double work_items = 1.0, const char* ref_note = "skipped") const {
        const auto time_col = [&](const Timing& x) {
            return per_item ? fmt_num(x.median_s * 1e9 / work_items, 3) : fmt_time(x.median_s);
        };
        const std::string ref_time = t.ref.measured() ? time_col(t.ref) : ref_note;
        const std::string ref_rate = t.ref.measured() ? fmt_num(rate_amount / t.ref.median_s / 1e9) : "-";
        const std::string ratio = t.ref.measured() ? fmt_num(t.ref.median_s / t.opt.median_s) : "-";
        const double iqr = std::max(t.ref.measured() ? t.ref.iqr_fraction() : 0.0, t.opt.iqr_fraction());
        const std::string samples =
            (t.ref.measured() ? std::to_string(t.ref.reps) : std::string("-")) + "/" + std::to_string(t.opt.reps);
        std::printf("%-18s %-24s %10s %9s  %10s %9s  %8s %5.0f %7s\n", name.c_str(), shape.c_str(), ref_time.c_str(),
                    ref_rate.c_str(), time_col(t.opt).c_str(), fmt_num(rate_amount / t.opt.median_s / 1e9).c_str(),
                    ratio.c_str(), 100.0 * iqr, samples.c_str());
    }
};

}  // namespace nanotorch_bench
