// bench/bench_kernels.cpp — the optimized kernels against their scalar references, validated, then timed.
//
// In the style of llm.c's dev/cpu/matmul_forward.c: every optimized kernel is first run on the
// same inputs as its reference and the program stops (exit status 1) if they disagree beyond
// the tolerance stated next to the check; only then are both timed, side by side, in one run.
// Covered: kernels::sgemm vs ref::sgemm (square sizes and the seed net's shapes), the vector
// kernels of kernels/simd.hpp vs kernels/reference.hpp, conv2d forward/backward (chunked im2col +
// sgemm) vs the direct ref:: versions, the shape-chosen depthwise / grouped / 1x1 paths vs the ref
// and vs the generic path, max_pool2d forward/backward, and a thread-count sweep.
// It does not tune, compare with other libraries, or claim anything the printed numbers do not
// show. Run with --help for the flags.
#include <nanotorch/nanotorch.hpp>

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
#include <vector>

namespace {

namespace k = nanotorch::kernels;
using namespace nanotorch_bench;
using i64 = std::int64_t;

constexpr double kEps = std::numeric_limits<float>::epsilon();

std::string dims(std::initializer_list<i64> ds, const char* sep = "x") {
    std::string s;
    for (i64 d : ds) s += (s.empty() ? "" : sep) + std::to_string(d);
    return s;
}

// ---- sgemm ----

struct GemmShape {
    std::string name;
    bool ta, tb;
    i64 M, N, K;
    std::string label() const {
        return std::string(ta ? "T" : "N") + (tb ? "T" : "N") + " " + dims({M, N, K});
    }
};

// A is stored K x M when transposed (else M x K), B likewise; C is M x N; no padding.
struct GemmProblem {
    GemmShape s;
    i64 lda, ldb, ldc;
    std::vector<float> A, B;
    explicit GemmProblem(const GemmShape& shape, std::uint32_t seed)
        : s(shape), lda(shape.ta ? shape.M : shape.K), ldb(shape.tb ? shape.K : shape.N), ldc(shape.N),
          A(random_vector(static_cast<std::size_t>(shape.M * shape.K), seed)),
          B(random_vector(static_cast<std::size_t>(shape.K * shape.N), seed + 1)) {}
    std::size_t c_size() const { return static_cast<std::size_t>(s.M * s.N); }
    void opt(float* C) const { k::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C, ldc); }
    void ref(float* C) const {
        k::ref::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C, ldc);
    }
    double a_at(i64 i, i64 kk) const { return A[static_cast<std::size_t>(s.ta ? kk * lda + i : i * lda + kk)]; }
    double b_at(i64 kk, i64 j) const { return B[static_cast<std::size_t>(s.tb ? j * ldb + kk : kk * ldb + j)]; }
};

// With the reference: every entry of C within 2·(K + 2)·eps·Σ_k|a·b| of ref::sgemm's (the bound
// tests/test_kernels.cpp uses: each float sum of K products is within (K + 1)·eps·Σ|a·b| of the
// exact value whatever the order or fusing, so two of them are within twice that). Σ|a·b| comes
// from ref::sgemm on |A| and |B|. Without it (too slow): 64 sampled entries against a
// double-precision dot product, within (K + 2)·eps·Σ|a·b|.
void validate_gemm(const GemmProblem& p, const std::vector<float>& got, bool with_ref) {
    const GemmShape& s = p.s;
    const std::string what = "sgemm " + s.label();
    if (with_ref) {
        std::vector<float> want(p.c_size()), mag(p.c_size());
        p.ref(want.data());
        const std::vector<float> absA = abs_copy(p.A), absB = abs_copy(p.B);
        k::ref::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, absA.data(), p.lda, absB.data(), p.ldb, 0.0f, mag.data(), p.ldc);
        const double f = 2.0 * static_cast<double>(s.K + 2) * kEps;
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
        const double tol = static_cast<double>(s.K + 2) * kEps * mag;
        expect_close(what + " (sampled entry " + dims({i, j}, ",") + " vs double)", &got[static_cast<std::size_t>(i * s.N + j)],
                     &want, 1, [&](std::size_t) { return tol; });
    }
}

void bench_gemm(const Table& table, const GemmShape& shape, const Budget& b, bool with_ref, const char* ref_note = "skipped") {
    const GemmProblem p(shape, 11);
    std::vector<float> c_opt(p.c_size()), c_ref(p.c_size());
    p.opt(c_opt.data());
    validate_gemm(p, c_opt, with_ref);
    const PairTiming t = measure_pair([&] { p.ref(c_ref.data()); }, [&] { p.opt(c_opt.data()); }, b, with_ref);
    table.row(shape.name, shape.label(), t, 2.0 * static_cast<double>(shape.M * shape.N * shape.K), 1.0, ref_note);
}

void run_gemm_section(const Budget& b) {
    const Table table{"GFLOP/s"};
    table.header("sgemm: kernels::sgemm vs ref::sgemm (alpha=1, beta=0; rate = 2*M*N*K / time; shape = M x N x K)");
    for (i64 n : {128, 256, 512}) bench_gemm(table, {"square", false, false, n, n, n}, b, true);
    bench_gemm(table, {"square", false, false, 1024, 1024, 1024}, b, false, "skipped");
    std::printf("  (ref at 1024 skipped: 8x the work of 512 for the naive triple loop; 1024 is checked on 64\n"
                "   sampled entries against double-precision dot products instead)\n");

    table.header("sgemm at the seed net's shapes, batch 64, as one batched GEMM each (threads as configured)");
    const std::vector<GemmShape> seed = {
        {"conv1 fwd", false, false, 36864, 10, 25},  // im2col [64*24*24, 1*5*5] @ W^T [25, 10]
        {"conv2 fwd", false, false, 4096, 20, 250},  // im2col [64*8*8, 10*5*5] @ W^T [250, 20]
        {"conv2 dW", true, false, 250, 20, 4096},    // col^T @ dY
        {"conv2 dX(col)", false, true, 4096, 250, 20},  // dY @ W
        {"fc1 fwd", false, true, 64, 50, 320},       // x [64, 320] @ W^T, W [50, 320]
        {"fc1 dX", false, false, 64, 320, 50},       // dY [64, 50] @ W [50, 320]
        {"fc1 dW", true, false, 50, 320, 64},        // dY^T [50, 64] @ x [64, 320]
    };
    for (const GemmShape& s : seed) bench_gemm(table, s, b, true);

    // kernels::conv2d_forward/backward call sgemm once per chunk of images (detail::conv_chunk:
    // 4 images for conv1, 8 for conv2) from inside a parallel loop over chunks, where sgemm runs
    // on one thread; these rows reproduce those calls.
    const int saved = nanotorch::get_num_threads();
    nanotorch::set_num_threads(1);
    table.header("sgemm at the per-chunk shapes kernels::conv2d_* actually issues (1 thread, as inside conv2d)");
    const std::vector<GemmShape> per_image = {
        {"conv1 fwd/chunk", false, false, 10, 2304, 25},  // W [10, 25] @ col [25, 4*24*24]
        {"conv1 dW/chunk", false, true, 10, 25, 2304},    // G [10, 4*576] @ col^T
        {"conv2 fwd/chunk", false, false, 20, 512, 250},  // W [20, 250] @ col [250, 8*8*8]
        {"conv2 dW/chunk", false, true, 20, 250, 512},    // G [20, 8*64] @ col^T
        {"conv2 dX/chunk", true, false, 250, 512, 20},    // W^T [250, 20] @ G [20, 8*64]
    };
    for (const GemmShape& s : per_image) bench_gemm(table, s, b, true);
    nanotorch::set_num_threads(saved);
}

// ---- elementwise ----

// Tolerances (as tests/test_kernels.cpp states them): add/mul/relu bit-exact (one correctly
// rounded operation or a selection per element); axpy within 4·eps·(|alpha·x| + |y|) (the vector
// body fuses the multiply-add); sum/dot within 2·(n + 1)·eps·Σ|term| (both are float sums of n
// terms in different orders, each within (n − 1)·eps/2·Σ|term| of the exact sum, with margin).
void run_elementwise_section(const Budget& b) {
    const Table table{"GB/s", /*per_item=*/true};
    table.header("vector kernels: kernels::X vs ref::X (GB/s counts each array read or written once, 4 B per float)");
    for (const i64 n : {i64{4096}, i64{1} << 20}) {
        const auto un = static_cast<std::size_t>(n);
        const std::vector<float> a = random_vector(un, 21), bb = random_vector(un, 22);
        std::vector<float> out_o(un), out_r(un), y_o = random_vector(un, 23), y_r = y_o;
        const float alpha = 1e-3f;  // small, so thousands of timed in-place axpys keep y well in range
        const std::string sz = "n=" + std::to_string(n);
        const double dn = static_cast<double>(n);

        k::add(out_o.data(), a.data(), bb.data(), n);
        k::ref::add(out_r.data(), a.data(), bb.data(), n);
        expect_close("add " + sz, out_o.data(), out_r.data(), un, [](std::size_t) { return 0.0; });
        table.row("add", sz, measure_pair([&] { k::ref::add(out_r.data(), a.data(), bb.data(), n); },
                                          [&] { k::add(out_o.data(), a.data(), bb.data(), n); }, b),
                  12.0 * dn, dn);

        k::mul(out_o.data(), a.data(), bb.data(), n);
        k::ref::mul(out_r.data(), a.data(), bb.data(), n);
        expect_close("mul " + sz, out_o.data(), out_r.data(), un, [](std::size_t) { return 0.0; });
        table.row("mul", sz, measure_pair([&] { k::ref::mul(out_r.data(), a.data(), bb.data(), n); },
                                          [&] { k::mul(out_o.data(), a.data(), bb.data(), n); }, b),
                  12.0 * dn, dn);

        k::axpy(y_o.data(), alpha, a.data(), n);
        k::ref::axpy(y_r.data(), alpha, a.data(), n);
        const std::vector<float> y0 = random_vector(un, 23);
        expect_close("axpy " + sz, y_o.data(), y_r.data(), un, [&](std::size_t i) {
            return 4.0 * kEps * (std::fabs(static_cast<double>(alpha) * a[i]) + std::fabs(static_cast<double>(y0[i])));
        });
        table.row("axpy (y+=ax)", sz, measure_pair([&] { k::ref::axpy(y_r.data(), alpha, a.data(), n); },
                                                   [&] { k::axpy(y_o.data(), alpha, a.data(), n); }, b),
                  12.0 * dn, dn);

        k::relu_forward(out_o.data(), a.data(), n);
        k::ref::relu_forward(out_r.data(), a.data(), n);
        expect_close("relu_forward " + sz, out_o.data(), out_r.data(), un, [](std::size_t) { return 0.0; });
        table.row("relu_forward", sz, measure_pair([&] { k::ref::relu_forward(out_r.data(), a.data(), n); },
                                                   [&] { k::relu_forward(out_o.data(), a.data(), n); }, b),
                  8.0 * dn, dn);

        k::relu_backward(out_o.data(), bb.data(), a.data(), n);
        k::ref::relu_backward(out_r.data(), bb.data(), a.data(), n);
        expect_close("relu_backward " + sz, out_o.data(), out_r.data(), un, [](std::size_t) { return 0.0; });
        table.row("relu_backward", sz, measure_pair([&] { k::ref::relu_backward(out_r.data(), bb.data(), a.data(), n); },
                                                    [&] { k::relu_backward(out_o.data(), bb.data(), a.data(), n); }, b),
                  12.0 * dn, dn);

        double abs_sum = 0.0, abs_dot = 0.0;
        for (std::size_t i = 0; i < un; ++i) {
            abs_sum += std::fabs(a[i]);
            abs_dot += std::fabs(static_cast<double>(a[i]) * bb[i]);
        }
        const float s_o = k::sum(a.data(), n), s_r = k::ref::sum(a.data(), n);
        expect_close("sum " + sz, &s_o, &s_r, 1, [&](std::size_t) { return 2.0 * (dn + 1.0) * kEps * abs_sum; });
        table.row("sum", sz, measure_pair([&] { keep(k::ref::sum(a.data(), n)); }, [&] { keep(k::sum(a.data(), n)); }, b),
                  4.0 * dn, dn);

        const float d_o = k::dot(a.data(), bb.data(), n), d_r = k::ref::dot(a.data(), bb.data(), n);
        expect_close("dot " + sz, &d_o, &d_r, 1, [&](std::size_t) { return 2.0 * (dn + 1.0) * kEps * abs_dot; });
        table.row("dot", sz, measure_pair([&] { keep(k::ref::dot(a.data(), bb.data(), n)); },
                                          [&] { keep(k::dot(a.data(), bb.data(), n)); }, b),
                  8.0 * dn, dn);
    }
}

// ---- conv2d ----

struct ConvShape {
    std::string name;
    i64 batch, channels, out_channels, hw, kernel;
    bool grad_in;  // the seed net needs no gradient for conv1's input (the image)
};

// One conv2d problem with its inputs and the outputs of both implementations.
struct ConvProblem {
    ConvShape s;
    k::Window2d w;
    std::vector<float> in, weight, bias, grad_out;
    explicit ConvProblem(const ConvShape& shape)
        : s(shape), w(k::make_window(shape.hw, shape.hw, shape.kernel, shape.kernel, 1, 1, 0, 0)),
          in(random_vector(static_cast<std::size_t>(shape.batch * shape.channels * shape.hw * shape.hw), 31)),
          weight(random_vector(static_cast<std::size_t>(shape.out_channels * shape.channels * shape.kernel * shape.kernel),
                               32, -0.2f, 0.2f)),
          bias(random_vector(static_cast<std::size_t>(shape.out_channels), 33, -0.1f, 0.1f)),
          grad_out(random_vector(static_cast<std::size_t>(shape.batch * shape.out_channels * w.out_plane()), 34)) {}
    i64 ckk() const { return s.channels * s.kernel * s.kernel; }
    std::size_t in_size() const { return in.size(); }
    std::size_t out_size() const { return grad_out.size(); }
    // 2 flops per multiply-add of the forward pass; each of dX and dW costs the same again.
    double fwd_flops() const { return 2.0 * static_cast<double>(s.batch * s.out_channels * w.out_plane() * ckk()); }
    std::string label() const {
        return dims({s.batch, s.channels, s.hw, s.hw}) + " k" + std::to_string(s.kernel) + "->" +
               std::to_string(s.out_channels);
    }
    void fwd(float* out, bool ref) const {
        (ref ? k::ref::conv2d_forward : k::conv2d_forward)(out, in.data(), weight.data(), bias.data(), s.batch,
                                                           s.channels, s.out_channels, w, 1);
    }
    void bwd(float* gi, float* gw, float* gb, bool ref) const {
        (ref ? k::ref::conv2d_backward : k::conv2d_backward)(s.grad_in ? gi : nullptr, gw, gb, grad_out.data(),
                                                             in.data(), weight.data(), s.batch, s.channels,
                                                             s.out_channels, w, 1);
    }
    struct Grads {
        std::vector<float> gi, gw, gb;
    };
    Grads make_grads() const {
        return {std::vector<float>(in_size()), std::vector<float>(weight.size()), std::vector<float>(bias.size())};
    }
};

// The ref:: conv accumulates in double, so the tolerance is one float sum's worst case:
// (n + 2)·eps·Σ|term| with n the number of products per output (forward: C·k·k; dX: O·k·k;
// dW and db: batch·oH·oW). Σ|term| is the ref:: kernel run on |in|, |weight|, |bias|, |grad_out|.
void validate_conv(const ConvProblem& p) {
    const std::vector<float> a_in = abs_copy(p.in), a_w = abs_copy(p.weight), a_b = abs_copy(p.bias),
                             a_go = abs_copy(p.grad_out);
    const ConvShape& s = p.s;
    const double n_fwd = static_cast<double>(p.ckk()), n_dx = static_cast<double>(s.out_channels * s.kernel * s.kernel),
                 n_dw = static_cast<double>(s.batch * p.w.out_plane());
    std::vector<float> got(p.out_size()), want(p.out_size()), mag(p.out_size());
    p.fwd(got.data(), false);
    p.fwd(want.data(), true);
    k::ref::conv2d_forward(mag.data(), a_in.data(), a_w.data(), a_b.data(), s.batch, s.channels, s.out_channels, p.w);
    expect_close("conv2d_forward " + s.name, got.data(), want.data(), got.size(),
                 [&](std::size_t i) { return (n_fwd + 2.0) * kEps * mag[i]; });

    ConvProblem::Grads g = p.make_grads(), r = p.make_grads(), m = p.make_grads();
    p.bwd(g.gi.data(), g.gw.data(), g.gb.data(), false);
    p.bwd(r.gi.data(), r.gw.data(), r.gb.data(), true);
    k::ref::conv2d_backward(s.grad_in ? m.gi.data() : nullptr, m.gw.data(), m.gb.data(), a_go.data(), a_in.data(),
                            a_w.data(), s.batch, s.channels, s.out_channels, p.w);
    if (s.grad_in)
        expect_close("conv2d_backward grad_in " + s.name, g.gi.data(), r.gi.data(), g.gi.size(),
                     [&](std::size_t i) { return (n_dx + 2.0) * kEps * m.gi[i]; });
    expect_close("conv2d_backward grad_weight " + s.name, g.gw.data(), r.gw.data(), g.gw.size(),
                 [&](std::size_t i) { return (n_dw + 2.0) * kEps * m.gw[i]; });
    expect_close("conv2d_backward grad_bias " + s.name, g.gb.data(), r.gb.data(), g.gb.size(),
                 [&](std::size_t i) { return (n_dw + 2.0) * kEps * m.gb[i]; });
}

const std::vector<ConvShape>& seed_convs() {
    static const std::vector<ConvShape> shapes = {
        {"conv1", 64, 1, 10, 28, 5, false},
        {"conv2", 64, 10, 20, 12, 5, true},
    };
    return shapes;
}

void run_conv_section(const Budget& b) {
    const Table table{"GFLOP/s"};
    table.header("conv2d: kernels::conv2d_* (chunked im2col + sgemm) vs ref::conv2d_* (direct, double accumulation);\n"
                 "   stride 1, no padding; shape = N x C x H x W, kernel, out channels; rate counts 2 flops per\n"
                 "   multiply-add (fwd), twice that for bwd with dX, bias terms not counted");
    for (const ConvShape& s : seed_convs()) {
        const ConvProblem p(s);
        validate_conv(p);
        std::vector<float> out_o(p.out_size()), out_r(p.out_size());
        table.row(s.name + " fwd", p.label(),
                  measure_pair([&] { p.fwd(out_r.data(), true); }, [&] { p.fwd(out_o.data(), false); }, b),
                  p.fwd_flops());
        ConvProblem::Grads g = p.make_grads(), r = p.make_grads();
        table.row(s.name + (s.grad_in ? " bwd dX,dW,db" : " bwd dW,db"), p.label(),
                  measure_pair([&] { p.bwd(r.gi.data(), r.gw.data(), r.gb.data(), true); },
                               [&] { p.bwd(g.gi.data(), g.gw.data(), g.gb.data(), false); }, b),
                  p.fwd_flops() * (s.grad_in ? 2.0 : 1.0));
    }
}

// ---- conv2d paths chosen by shape: depthwise, grouped, 1x1 ----

struct PathShape {
    std::string name;
    i64 batch, channels, out_channels, hw, kernel, stride, pad, groups;
};

// One problem on the path kernels::conv_path picks, with the generic im2col + sgemm path (per
// group) as a second implementation to time it against.
struct PathProblem {
    PathShape s;
    k::Window2d w;
    std::vector<float> in, weight, bias, grad_out;
    explicit PathProblem(const PathShape& shape)
        : s(shape), w(k::make_window(shape.hw, shape.hw, shape.kernel, shape.kernel, shape.stride, shape.stride,
                                     shape.pad, shape.pad)),
          in(random_vector(static_cast<std::size_t>(shape.batch * shape.channels * shape.hw * shape.hw), 51)),
          weight(random_vector(static_cast<std::size_t>(shape.out_channels * (shape.channels / shape.groups) *
                                                        shape.kernel * shape.kernel),
                               52, -0.2f, 0.2f)),
          bias(random_vector(static_cast<std::size_t>(shape.out_channels), 53, -0.1f, 0.1f)),
          grad_out(random_vector(static_cast<std::size_t>(shape.batch * shape.out_channels * w.out_plane()), 54)) {}
    i64 ckk() const { return s.channels / s.groups * s.kernel * s.kernel; }
    double fwd_flops() const { return 2.0 * static_cast<double>(s.batch * s.out_channels * w.out_plane() * ckk()); }
    std::string label() const {
        return dims({s.batch, s.channels, s.hw, s.hw}) + " k" + std::to_string(s.kernel) + "s" + std::to_string(s.stride) +
               "g" + std::to_string(s.groups) + "->" + std::to_string(s.out_channels);
    }
    // which: 0 = chosen path, 1 = im2col + sgemm per group, 2 = ref
    void fwd(float* out, int which) const {
        const auto f = which == 0 ? k::conv2d_forward_auto : which == 1 ? k::conv2d_forward : k::ref::conv2d_forward;
        f(out, in.data(), weight.data(), bias.data(), s.batch, s.channels, s.out_channels, w, s.groups);
    }
    void bwd(float* gi, float* gw, float* gb, int which) const {
        const auto f = which == 0 ? k::conv2d_backward_auto : which == 1 ? k::conv2d_backward : k::ref::conv2d_backward;
        f(gi, gw, gb, grad_out.data(), in.data(), weight.data(), s.batch, s.channels, s.out_channels, w, s.groups);
    }
};

// Same bound as validate_conv: (n + 2)·eps·Σ|term| with n the products per output (forward:
// (C/groups)·k·k; dX: (O/groups)·k·k; dW, db: batch·oH·oW), Σ|term| from the ref on |inputs|.
void validate_path(const PathProblem& p) {
    const PathShape& s = p.s;
    const std::vector<float> a_in = abs_copy(p.in), a_w = abs_copy(p.weight), a_b = abs_copy(p.bias),
                             a_go = abs_copy(p.grad_out);
    const double n_fwd = static_cast<double>(p.ckk()),
                 n_dx = static_cast<double>(s.out_channels / s.groups * s.kernel * s.kernel),
                 n_dw = static_cast<double>(s.batch * p.w.out_plane());
    const std::size_t no = p.grad_out.size();
    std::vector<float> got(no), want(no), mag(no);
    p.fwd(got.data(), 0);
    p.fwd(want.data(), 2);
    k::ref::conv2d_forward(mag.data(), a_in.data(), a_w.data(), a_b.data(), s.batch, s.channels, s.out_channels, p.w,
                           s.groups);
    expect_close("conv2d_forward_auto " + s.name, got.data(), want.data(), no,
                 [&](std::size_t i) { return (n_fwd + 2.0) * kEps * mag[i]; });
    std::vector<float> gi(p.in.size()), gw(p.weight.size()), gb(p.bias.size()), ri = gi, rw = gw, rb = gb, mi = gi,
                                                                                mw = gw, mb = gb;
    p.bwd(gi.data(), gw.data(), gb.data(), 0);
    p.bwd(ri.data(), rw.data(), rb.data(), 2);
    k::ref::conv2d_backward(mi.data(), mw.data(), mb.data(), a_go.data(), a_in.data(), a_w.data(), s.batch, s.channels,
                            s.out_channels, p.w, s.groups);
    expect_close("conv2d_backward_auto grad_in " + s.name, gi.data(), ri.data(), gi.size(),
                 [&](std::size_t i) { return (n_dx + 2.0) * kEps * mi[i]; });
    expect_close("conv2d_backward_auto grad_weight " + s.name, gw.data(), rw.data(), gw.size(),
                 [&](std::size_t i) { return (n_dw + 2.0) * kEps * mw[i]; });
    expect_close("conv2d_backward_auto grad_bias " + s.name, gb.data(), rb.data(), gb.size(),
                 [&](std::size_t i) { return (n_dw + 2.0) * kEps * mb[i]; });
}

// Batch 32 for timing; --quick (the ctest run, a correctness check) uses batch 4, which still
// reaches every path and the batch split across threads, at 1/8 of the naive references' cost.
std::vector<PathShape> path_shapes(bool quick) {
    const i64 n = quick ? 4 : 32;
    return {
        {"dw3x3", n, 32, 32, 32, 3, 1, 1, 32},     {"dw3x3 s2", n, 64, 64, 16, 3, 2, 1, 64},
        {"dw3x3 8x8", n, 128, 128, 8, 3, 1, 1, 128}, {"dw5x5 x2", n, 24, 48, 14, 5, 1, 2, 24},
        {"grouped g4", n, 64, 64, 16, 3, 1, 1, 4},  {"1x1", n, 64, 128, 16, 1, 1, 0, 1},
        {"1x1 8x8", n, 256, 64, 8, 1, 1, 0, 1},     {"1x1 32x32", n, 32, 64, 32, 1, 1, 0, 1},
        {"1x1 g2", n, 64, 64, 16, 1, 1, 0, 2},
    };
}

void run_conv_paths_section(const Budget& b, bool quick) {
    const Table table{"GFLOP/s"};
    const std::vector<PathShape> shapes = path_shapes(quick);
    table.header("conv2d by shape: kernels::conv2d_*_auto (depthwise direct / 1x1 plain GEMM / im2col + sgemm per\n"
                 "   group, named in brackets) vs ref::conv2d_* (direct, double); validated first;\n"
                 "   shape = N x C x H x W, kernel, stride, groups, out channels; bwd = dX, dW, db");
    for (const PathShape& s : shapes) {
        const PathProblem p(s);
        validate_path(p);
        const std::string tag = std::string(" [") + k::conv_path_name(k::conv_path(s.channels, s.groups, p.w)) + "]";
        std::vector<float> o(p.grad_out.size()), r(p.grad_out.size());
        table.row(s.name + " fwd", p.label() + tag,
                  measure_pair([&] { p.fwd(r.data(), 2); }, [&] { p.fwd(o.data(), 0); }, b), p.fwd_flops());
        std::vector<float> gi(p.in.size()), gw(p.weight.size()), gb(p.bias.size());
        table.row(s.name + " bwd", p.label() + tag,
                  measure_pair([&] { p.bwd(gi.data(), gw.data(), gb.data(), 2); },
                               [&] { p.bwd(gi.data(), gw.data(), gb.data(), 0); }, b),
                  2.0 * p.fwd_flops());
    }
    table.header("the same shapes: chosen path (opt) vs the generic im2col + sgemm per group (ref column);\n"
                 "   opt/ref = speedup of the shape-chosen kernel (the grouped row runs the generic path in both)");
    for (const PathShape& s : shapes) {
        const PathProblem p(s);
        std::vector<float> o(p.grad_out.size()), r(p.grad_out.size());
        p.fwd(o.data(), 0);
        p.fwd(r.data(), 1);
        const std::vector<float> a_in = abs_copy(p.in), a_w = abs_copy(p.weight), a_b = abs_copy(p.bias);
        std::vector<float> mag(o.size());
        k::ref::conv2d_forward(mag.data(), a_in.data(), a_w.data(), a_b.data(), s.batch, s.channels, s.out_channels,
                               p.w, s.groups);
        // Two float sums of the same products: each within (n + 2)·eps·Σ|term| of the exact value.
        expect_close("conv2d_forward gemm vs auto " + s.name, o.data(), r.data(), o.size(),
                     [&](std::size_t i) { return 2.0 * (static_cast<double>(p.ckk()) + 2.0) * kEps * mag[i]; });
        table.row(s.name + " fwd", p.label(), measure_pair([&] { p.fwd(r.data(), 1); }, [&] { p.fwd(o.data(), 0); }, b),
                  p.fwd_flops());
        std::vector<float> gi(p.in.size()), gw(p.weight.size()), gb(p.bias.size());
        table.row(s.name + " bwd", p.label(),
                  measure_pair([&] { p.bwd(gi.data(), gw.data(), gb.data(), 1); },
                               [&] { p.bwd(gi.data(), gw.data(), gb.data(), 0); }, b),
                  2.0 * p.fwd_flops());
    }
}

// ---- max_pool2d ----

void run_pool_section(const Budget& b) {
    const Table table{"GB/s"};
    table.header("max_pool2d 2x2 stride 2 (the seed's), N*C planes, vs the ref:: twins, bit-exact checks:\n"
                 "   fwd = value only (what training runs); fwd+idx also writes int64 indices;\n"
                 "   bwd(input) = backward_from_input (what ops::max_pool2d runs) vs ref fwd indices + ref scatter;\n"
                 "   bwd(idx) = scatter through saved indices vs ref::max_pool2d_backward;\n"
                 "   GB/s counts input and output once each (4 B per float; indices not counted)");
    struct PoolShape {
        std::string name;
        i64 planes, hw;
    };
    for (const PoolShape& s : {PoolShape{"pool1", 64 * 10, 24}, PoolShape{"pool2", 64 * 20, 8}}) {
        const k::Window2d w = k::make_window(s.hw, s.hw, 2, 2, 2, 2, 0, 0);
        const auto n_in = static_cast<std::size_t>(s.planes * w.in_plane());
        const auto n_out = static_cast<std::size_t>(s.planes * w.out_plane());
        const std::vector<float> x = random_vector(n_in, 41), go = random_vector(n_out, 42);
        std::vector<float> y_o(n_out), y_r(n_out), gi_o(n_in), gi_r(n_in), gi_i(n_in);
        std::vector<i64> idx_o(n_out), idx_r(n_out);
        k::max_pool2d_forward(y_o.data(), idx_o.data(), x.data(), s.planes, w);
        k::ref::max_pool2d_forward(y_r.data(), idx_r.data(), x.data(), s.planes, w);
        expect_identical("max_pool2d_forward values " + s.name, y_o.data(), y_r.data(), n_out);
        expect_identical("max_pool2d_forward indices " + s.name, idx_o.data(), idx_r.data(), n_out);
        k::max_pool2d_forward(y_o.data(), nullptr, x.data(), s.planes, w);
        expect_identical("max_pool2d_forward (no indices) " + s.name, y_o.data(), y_r.data(), n_out);
        k::ref::max_pool2d_backward(gi_r.data(), go.data(), idx_r.data(), s.planes, w);
        k::max_pool2d_backward_from_input(gi_o.data(), go.data(), x.data(), s.planes, w);
        expect_identical("max_pool2d_backward_from_input " + s.name, gi_o.data(), gi_r.data(), n_in);
        k::max_pool2d_backward(gi_i.data(), go.data(), idx_o.data(), s.planes, w);
        expect_identical("max_pool2d_backward " + s.name, gi_i.data(), gi_r.data(), n_in);

        const std::string shape = dims({s.planes, s.hw, s.hw});
        const double bytes = 4.0 * static_cast<double>(n_in + n_out);
        table.row(s.name + " fwd", shape,
                  measure_pair([&] { k::ref::max_pool2d_forward(y_r.data(), nullptr, x.data(), s.planes, w); },
                               [&] { k::max_pool2d_forward(y_o.data(), nullptr, x.data(), s.planes, w); }, b),
                  bytes);
        table.row(s.name + " fwd+idx", shape,
                  measure_pair([&] { k::ref::max_pool2d_forward(y_r.data(), idx_r.data(), x.data(), s.planes, w); },
                               [&] { k::max_pool2d_forward(y_o.data(), idx_o.data(), x.data(), s.planes, w); }, b),
                  bytes);
        table.row(s.name + " bwd(input)", shape,
                  measure_pair(
                      [&] {
                          k::ref::max_pool2d_forward(y_r.data(), idx_r.data(), x.data(), s.planes, w);
                          k::ref::max_pool2d_backward(gi_r.data(), go.data(), idx_r.data(), s.planes, w);
                      },
                      [&] { k::max_pool2d_backward_from_input(gi_o.data(), go.data(), x.data(), s.planes, w); }, b),
                  bytes);
        table.row(s.name + " bwd(idx)", shape,
                  measure_pair([&] { k::ref::max_pool2d_backward(gi_r.data(), go.data(), idx_r.data(), s.planes, w); },
                               [&] { k::max_pool2d_backward(gi_i.data(), go.data(), idx_o.data(), s.planes, w); }, b),
                  bytes);
    }
}

// ---- pooling windows on many small planes ----

// The small-plane path of kernels/pool.hpp (16 planes interleaved, one vector operation per tap)
// on windows other than 2x2/2: PyTorch's ceil_mode and padded pools as the PyTorch-exported
// pooling net has them at batch 64, and a 3x3/2 pad-1 pool on 32x32, each forward and backward
// against its ref twin, checked bit for bit first.
void run_small_plane_pool_section(const Budget& b) {
    const Table table{"GB/s"};
    table.header("pooling windows other than 2x2/2 on many small planes (interleaved 16 at a time), vs the\n"
                 "   ref:: twins, bit-exact checks: max fwd = values only, max bwd = backward_from_input vs ref fwd\n"
                 "   indices + ref scatter; avg = count_include_pad as named. GB/s counts input and output once each");
    struct Shape {
        std::string name;
        i64 planes, hw, k, s, p;
        bool ceil, avg, include_pad;
    };
    const Shape shapes[] = {{"max 3x3/2 ceil", 512, 15, 3, 2, 0, true, false, false},
                            {"avg 3x3/2/1 ceil", 512, 7, 3, 2, 1, true, true, true},
                            {"avg 3x3/1/1 excl", 512, 4, 3, 1, 1, false, true, false},
                            {"max 3x3/2/1", 64 * 32, 32, 3, 2, 1, false, false, false}};
    for (const Shape& s : shapes) {
        const k::Window2d w = k::make_pool_window(s.hw, s.hw, s.k, s.k, s.s, s.s, s.p, s.p, s.ceil);
        const auto n_in = static_cast<std::size_t>(s.planes * w.in_plane());
        const auto n_out = static_cast<std::size_t>(s.planes * w.out_plane());
        const std::vector<float> x = random_vector(n_in, 43), go = random_vector(n_out, 44);
        std::vector<float> y_o(n_out), y_r(n_out), gi_o(n_in), gi_r(n_in);
        std::vector<i64> idx(n_out);
        const auto fwd = [&](float* y, bool ref) {
            if (s.avg && ref) k::ref::avg_pool2d_forward(y, x.data(), s.planes, w, s.include_pad);
            else if (s.avg) k::avg_pool2d_forward(y, x.data(), s.planes, w, s.include_pad);
            else if (ref) k::ref::max_pool2d_forward(y, idx.data(), x.data(), s.planes, w);
            else k::max_pool2d_forward(y, nullptr, x.data(), s.planes, w);
        };
        const auto bwd = [&](float* gi, bool ref) {
            if (s.avg && ref) k::ref::avg_pool2d_backward(gi, go.data(), s.planes, w, s.include_pad);
            else if (s.avg) k::avg_pool2d_backward(gi, go.data(), s.planes, w, s.include_pad);
            else if (ref) {
                k::ref::max_pool2d_forward(y_r.data(), idx.data(), x.data(), s.planes, w);
                k::ref::max_pool2d_backward(gi, go.data(), idx.data(), s.planes, w);
            } else k::max_pool2d_backward_from_input(gi, go.data(), x.data(), s.planes, w);
        };
        fwd(y_o.data(), false);
        fwd(y_r.data(), true);
        expect_identical(s.name + " forward", y_o.data(), y_r.data(), n_out);
        bwd(gi_o.data(), false);
        bwd(gi_r.data(), true);
        expect_identical(s.name + " backward", gi_o.data(), gi_r.data(), n_in);
        const std::string shape = dims({s.planes, s.hw, s.hw});
        const double bytes = 4.0 * static_cast<double>(n_in + n_out);
        table.row(s.name + " fwd", shape,
                  measure_pair([&] { fwd(y_r.data(), true); }, [&] { fwd(y_o.data(), false); }, b), bytes);
        table.row(s.name + " bwd", shape,
                  measure_pair([&] { bwd(gi_r.data(), true); }, [&] { bwd(gi_o.data(), false); }, b), bytes);
    }
}

// ---- thread sweep ----

// The optimized kernels at 1 thread, all cores and --threads (when different). The library
// documents results as bit-identical for every thread count, so each output is also compared
// bit for bit with the 1-thread output.
void run_thread_sweep(const Options& o, const Budget& b) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<int> counts = {1, hw};
    if (o.threads) counts.push_back(o.threads);
    std::sort(counts.begin(), counts.end());
    counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
    const int saved = nanotorch::get_num_threads();

    std::printf("\n== thread sweep: optimized kernels only; speedup = time at 1 thread / time; outputs checked\n"
                "   bit-identical to the 1-thread output ==\n");
    std::printf("%-18s %-24s %7s %10s %9s %8s %5s %7s\n", "kernel", "shape", "threads", "time", "GFLOP/s", "speedup",
                "iqr%", "samples");
    // run(out) computes into out; every case is timed at each thread count.
    const auto sweep = [&](const std::string& name, const std::string& shape, double flops, std::size_t out_n,
                           const auto& run) {
        std::vector<float> first(out_n), out(out_n);
        double t1 = 0.0;
        for (int t : counts) {
            nanotorch::set_num_threads(t);
            run(out.data());
            if (t == counts.front()) first = out;
            else expect_identical(name + " at " + std::to_string(t) + " threads vs 1 thread", out.data(), first.data(), out_n);
            const Timing tm = measure([&] { run(out.data()); }, b);
            if (t == counts.front()) t1 = tm.median_s;
            std::printf("%-18s %-24s %7d %10s %9s %8s %5.0f %7d\n", name.c_str(), shape.c_str(), t,
                        fmt_time(tm.median_s).c_str(), fmt_num(flops / tm.median_s / 1e9).c_str(),
                        fmt_num(t1 / tm.median_s).c_str(), 100.0 * tm.iqr_fraction(), tm.reps);
        }
    };

    const GemmProblem g({"sgemm", false, false, 512, 512, 512}, 11);
    sweep("sgemm", g.s.label(), 2.0 * 512 * 512 * 512, g.c_size(), [&](float* c) { g.opt(c); });
    for (const ConvShape& s : seed_convs()) {
        const ConvProblem p(s);
        sweep(s.name + " fwd", p.label(), p.fwd_flops(), p.out_size(), [&](float* out) { p.fwd(out, false); });
        // All three gradients packed into one buffer so one comparison covers them.
        ConvProblem::Grads gr = p.make_grads();
        const std::size_t ni = gr.gi.size(), nw = gr.gw.size(), nb = gr.gb.size();
        sweep(s.name + (s.grad_in ? " bwd dX,dW,db" : " bwd dW,db"), p.label(), p.fwd_flops() * (s.grad_in ? 2.0 : 1.0),
              ni + nw + nb, [&](float* out) {
                  p.bwd(out, out + ni, out + ni + nw, false);
              });
    }
    nanotorch::set_num_threads(saved);
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse_options(argc, argv,
                                    "Validates nanotorch's optimized kernels against their scalar references, then\n"
                                    "times both (median of repeated samples) and prints them side by side.");
    try {
        if (o.threads) nanotorch::set_num_threads(o.threads);
        const auto t0 = Clock::now();
        print_machine_facts(o, "bench_kernels");
        const Budget b = budget_for(o.quick);
        run_gemm_section(b);
        run_elementwise_section(b);
        run_conv_section(b);
        run_conv_paths_section(b, o.quick);
        run_pool_section(b);
        run_small_plane_pool_section(b);
        run_thread_sweep(o, b);
        std::printf("\nAll optimized kernels matched their references within the stated tolerances. Total %s.\n",
                    fmt_time(std::chrono::duration<double>(Clock::now() - t0).count()).c_str());
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "bench_kernels: %s\n", e.what());
        return 1;
    }
    return 0;
}
