// Grouped, depthwise and 1×1 conv2d, ceil_mode pooling and adaptive_avg_pool2d: the shape-chosen
// kernels against the scalar references at awkward sizes, against PyTorch 1.13's values
// (tests/data/convpool_baseline.hpp), finite-difference gradients, thread-count bit-identity,
// export -> runtime equality (and a torch.onnx-exported model), modules and error cases.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>

#include "data/convpool_baseline.hpp"
#include "support/gradcheck.hpp"

using namespace nanotorch;
using nanotorch::testing::distinct_input;
using nanotorch::testing::grad_input;
using nanotorch::testing::gradcheck;
using V = std::vector<Tensor>;
using FV = std::vector<float>;
namespace k = nanotorch::kernels;
namespace fs = std::filesystem;

namespace {

// |a − b| <= tol·(1 + |b|) elementwise; reports the count and the first failure.
void check_close(const FV& a, const FV& b, double tol, const std::string& what) {
    REQUIRE(a.size() == b.size());
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!(std::fabs(static_cast<double>(a[i]) - b[i]) <= tol * (1.0 + std::fabs(static_cast<double>(b[i]))))) {
            if (bad++ == 0) first = i;
        }
    INFO(what, ": ", bad, " mismatches of ", a.size(), "; first at ", first, ": ", (bad ? a[first] : 0.0f), " vs ",
         (bad ? b[first] : 0.0f));
    CHECK(bad == 0);
}

bool bit_equal(const FV& a, const FV& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

FV random_vec(std::int64_t n, Generator& gen) {
    FV v(static_cast<std::size_t>(n));
    for (auto& x : v) x = gen.uniform(-1.0f, 1.0f);
    return v;
}

template <class E, class F>
void check_throws_with(F&& f, const std::string& needle) {
    bool thrown = false;
    try {
        f();
    } catch (const E& e) {
        thrown = true;
        INFO("message: ", e.what());
        CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
    INFO("expected an exception mentioning '", needle, "'");
    CHECK(thrown);
}

// One convolution problem: N, C, H, W, O, kH, kW, strides, pads, dilations, groups.
struct Geo {
    std::int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups;
};

k::Window2d window(const Geo& g) { return k::make_window(g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw); }

// Depthwise (groups == C), grouped and 1×1 geometries at awkward sizes: odd channel counts,
// multipliers 1–3, strides 1–3, asymmetric padding and dilation, planes narrower than a vector
// and wider than four, a kernel as large as the padded input, batch 1 and batches > threads.
const std::vector<Geo> geos = {
    // depthwise
    {2, 3, 7, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 3},     {1, 5, 9, 8, 5, 5, 3, 1, 1, 2, 1, 2, 1, 5},
    {3, 4, 11, 13, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4},   {2, 3, 10, 9, 9, 3, 2, 3, 2, 1, 0, 1, 2, 3},
    {1, 7, 5, 37, 14, 3, 3, 1, 1, 1, 1, 1, 1, 7},   {2, 2, 6, 6, 2, 1, 1, 1, 1, 0, 0, 1, 1, 2},
    {1, 3, 4, 4, 3, 5, 5, 1, 1, 2, 2, 1, 1, 3},     {2, 6, 33, 17, 6, 3, 3, 2, 2, 1, 1, 1, 1, 6},
    {1, 2, 8, 8, 6, 7, 7, 1, 1, 3, 3, 1, 1, 2},
    // grouped (im2col + sgemm per group)
    {2, 6, 7, 6, 9, 3, 2, 1, 2, 1, 0, 2, 1, 3},     {3, 4, 5, 5, 6, 3, 3, 2, 1, 1, 1, 1, 1, 2},
    {1, 9, 6, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3},     {5, 6, 8, 8, 4, 5, 5, 1, 1, 2, 2, 1, 1, 2},
    // 1×1, stride 1, no padding (pointwise); groups 1, 2, 3; batch 1 (sgemm splits) and > 1
    {2, 5, 4, 6, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1},     {1, 8, 9, 9, 12, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {3, 4, 3, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2},     {2, 9, 7, 5, 3, 1, 1, 1, 1, 0, 0, 1, 1, 3},
    // 1×1 stride 1 whose forward takes the general path on AVX-512 (pointwise_forward_pays)
    // (and whose input gradient is then a 1×1 forward of the output gradient, groups 2 included)
    {2, 32, 9, 9, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1},   {2, 48, 7, 7, 64, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {2, 8, 7, 7, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2},
    // 1×1 but strided or padded: the general path
    {2, 4, 7, 7, 6, 1, 1, 2, 2, 0, 0, 1, 1, 2},     {1, 3, 5, 5, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
};

// The float32 kernels against ref:: (double accumulation): each output is a float sum of at most
// a few hundred products of values in [−1, 1], so its rounding error is below 1e-5·(1 + |sum|)
// with a wide margin; a wrong index or a missing term is an O(1) error.
constexpr double kernel_tol = 1e-4;

}  // namespace

// ---- primitives ----

TEST_CASE("kernels: fma_taps and dot_taps match their ref twins at awkward lengths and tap counts") {
    Generator gen(1);
    for (std::int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 257}) {
        for (std::int64_t taps : {0, 1, 3, 8, 9, 11, 25}) {
            CAPTURE(n);
            CAPTURE(taps);
            std::vector<FV> rows;
            std::vector<const float*> src;
            for (std::int64_t t = 0; t < taps; ++t) rows.push_back(random_vec(n + 3, gen));
            for (std::int64_t t = 0; t < taps; ++t) src.push_back(rows[static_cast<std::size_t>(t)].data() + t % 3);
            const FV w = random_vec(taps, gen), a = random_vec(n, gen);
            FV got(static_cast<std::size_t>(n)), want(static_cast<std::size_t>(n));
            k::fma_taps(got.data(), src.data(), w.data(), taps, 0.25f, n);
            k::ref::fma_taps(want.data(), src.data(), w.data(), taps, 0.25f, n);
            // Sums of <= 25 products in [−1, 1]: fused vs unfused rounding differs by < 1e-5.
            check_close(got, want, 1e-5, "fma_taps");
            FV dg(static_cast<std::size_t>(taps)), dr(static_cast<std::size_t>(taps));
            k::dot_taps(dg.data(), a.data(), src.data(), taps, n);
            k::ref::dot_taps(dr.data(), a.data(), src.data(), taps, n);
            check_close(dg, dr, 1e-5 * static_cast<double>(n + 1), "dot_taps");  // n-term sums, any order
        }
    }
}

TEST_CASE("kernels: a pointwise layer's forward leaves the GEMM where the GEMM fills its columns badly") {
    // pointwise_forward_pays: on AVX-512 the general path where the per-image GEMM would keep
    // less than 85 % of the columns it computes (9x9 and 7x7 planes here), the GEMM where it
    // keeps them (8x8, 14x14); elsewhere always the GEMM; the input gradient likewise (as a 1×1
    // forward of the output gradient). The results of both are checked against the reference in
    // the test below (its 1x1 cases include planes of both kinds, one with two groups).
    const bool avx512 = k::simd_width >= 16;
    CHECK(k::pointwise_forward_pays(64, 160, 81) == !avx512);
    CHECK(k::pointwise_forward_pays(128, 512, 49) == !avx512);
    CHECK(k::pointwise_forward_pays(64, 256, 64));
    CHECK(k::pointwise_forward_pays(128, 128, 196));
    CHECK(k::pointwise_forward_pays(128, 32, 784));
}

// ---- kernels vs the references ----

TEST_CASE("kernels: conv2d_forward_auto / backward_auto equal the grouped reference on every path") {
    Generator gen(2);
    for (const Geo& g : geos) {
        const k::Window2d w = window(g);
        CAPTURE(g.c);
        CAPTURE(g.o);
        CAPTURE(g.kh);
        CAPTURE(g.sh);
        CAPTURE(g.groups);
        const k::ConvPath path = k::conv_path(g.c, g.groups, w);
        CAPTURE(k::conv_path_name(path));
        if (g.groups == g.c) CHECK(path == k::ConvPath::depthwise);
        else if (g.kh == 1 && g.sh == 1 && g.ph == 0) CHECK(path == k::ConvPath::pointwise);
        else CHECK(path == k::ConvPath::gemm);
        const std::int64_t cg = g.c / g.groups;
        const FV x = random_vec(g.n * g.c * g.h * g.w, gen), wt = random_vec(g.o * cg * g.kh * g.kw, gen),
                 b = random_vec(g.o, gen), go = random_vec(g.n * g.o * w.out_plane(), gen);
        FV y(go.size()), yr(go.size());
        k::conv2d_forward_auto(y.data(), x.data(), wt.data(), b.data(), g.n, g.c, g.o, w, g.groups);
        k::ref::conv2d_forward(yr.data(), x.data(), wt.data(), b.data(), g.n, g.c, g.o, w, g.groups);
        check_close(y, yr, kernel_tol, "forward");
        k::conv2d_forward_auto(y.data(), x.data(), wt.data(), nullptr, g.n, g.c, g.o, w, g.groups);
        k::ref::conv2d_forward(yr.data(), x.data(), wt.data(), nullptr, g.n, g.c, g.o, w, g.groups);
        check_close(y, yr, kernel_tol, "forward without bias");
        // The GEMM path with groups also computes every shape; it must agree too.
        k::conv2d_forward(y.data(), x.data(), wt.data(), b.data(), g.n, g.c, g.o, w, g.groups);
        k::ref::conv2d_forward(yr.data(), x.data(), wt.data(), b.data(), g.n, g.c, g.o, w, g.groups);
        check_close(y, yr, kernel_tol, "forward (gemm path)");

        FV gi(x.size(), 7.0f), gw(wt.size(), 7.0f), gb(b.size(), 7.0f);  // 7: must be overwritten
        FV gir(x.size()), gwr(wt.size()), gbr(b.size());
        k::conv2d_backward_auto(gi.data(), gw.data(), gb.data(), go.data(), x.data(), wt.data(), g.n, g.c, g.o, w,
                                g.groups);
        k::ref::conv2d_backward(gir.data(), gwr.data(), gbr.data(), go.data(), x.data(), wt.data(), g.n, g.c, g.o, w,
                                g.groups);
        check_close(gi, gir, kernel_tol, "grad_input");
        check_close(gw, gwr, kernel_tol, "grad_weight");
        check_close(gb, gbr, kernel_tol, "grad_bias");
        // Each gradient alone (the others null) gives the same values.
        FV gi2(x.size()), gw2(wt.size());
        k::conv2d_backward_auto(gi2.data(), nullptr, nullptr, go.data(), x.data(), wt.data(), g.n, g.c, g.o, w,
                                g.groups);
        k::conv2d_backward_auto(nullptr, gw2.data(), nullptr, go.data(), x.data(), wt.data(), g.n, g.c, g.o, w,
                                g.groups);
        CHECK(bit_equal(gi2, gi));
        CHECK(bit_equal(gw2, gw));
        k::conv2d_backward(gi2.data(), gw2.data(), gb.data(), go.data(), x.data(), wt.data(), g.n, g.c, g.o, w,
                           g.groups);
        check_close(gi2, gir, kernel_tol, "grad_input (gemm path)");
        check_close(gw2, gwr, kernel_tol, "grad_weight (gemm path)");
    }
}

TEST_CASE("kernels: adaptive_avg_pool2d equals its ref twin (bit for bit except the 1x1 SIMD sum)") {
    Generator gen(3);
    struct A {
        std::int64_t p, h, w, oh, ow;
    };
    for (const A& a : {A{3, 7, 5, 3, 2}, A{2, 6, 7, 4, 5}, A{1, 3, 3, 5, 3}, A{4, 9, 9, 1, 1}, A{2, 33, 31, 1, 1},
                       A{1, 8, 8, 8, 8}, A{2, 1, 1, 2, 3}}) {
        CAPTURE(a.h);
        CAPTURE(a.oh);
        const FV x = random_vec(a.p * a.h * a.w, gen), go = random_vec(a.p * a.oh * a.ow, gen);
        FV y(go.size()), yr(go.size()), gi(x.size(), 3.0f), gir(x.size());
        k::adaptive_avg_pool2d_forward(y.data(), x.data(), a.p, a.h, a.w, a.oh, a.ow);
        k::ref::adaptive_avg_pool2d_forward(yr.data(), x.data(), a.p, a.h, a.w, a.oh, a.ow);
        if (a.oh == 1 && a.ow == 1) check_close(y, yr, 1e-6, "forward 1x1");  // sums in another order
        else CHECK(bit_equal(y, yr));
        k::adaptive_avg_pool2d_backward(gi.data(), go.data(), a.p, a.h, a.w, a.oh, a.ow);
        k::ref::adaptive_avg_pool2d_backward(gir.data(), go.data(), a.p, a.h, a.w, a.oh, a.ow);
        CHECK(bit_equal(gi, gir));
    }
}

TEST_CASE("kernels: ceil_mode pooling windows, and the fast paths step aside for clipped windows") {
    // PyTorch's sizes: in 6, k 2, s 2, p 1: floor 4; ceil 4. in 5: floor 3, ceil would be 4 but the
    // 4th window starts at 6 − 1 = 5 >= 5 + ... (5 + 1 = 6 > 5): kept? (4−1)·2 = 6 >= 5 + 1: dropped.
    CHECK(k::pool_out_size(6, 2, 2, 1, false) == 4);
    CHECK(k::pool_out_size(6, 2, 2, 1, true) == 4);
    CHECK(k::pool_out_size(5, 2, 2, 1, false) == 3);
    CHECK(k::pool_out_size(5, 2, 2, 1, true) == 3);
    CHECK(k::pool_out_size(5, 2, 2, 0, true) == 3);  // (3−1)·2 = 4 < 5: the clipped window stays
    CHECK(k::pool_out_size(7, 3, 2, 0, true) == 3);
    CHECK(k::pool_out_size(8, 3, 2, 0, true) == 4);
    CHECK(k::pool_out_size(2, 3, 1, 0, true) == 0);
    Generator gen(4);
    struct P {
        std::int64_t h, w, kh, kw, sh, sw, ph, pw;
    };
    // 2×2 stride 2 on odd sizes (the max 2x2 and tiling fast paths must not run), overlapping,
    // padded and unpadded windows.
    for (const P& q : {P{5, 7, 2, 2, 2, 2, 0, 0}, P{7, 5, 3, 3, 2, 2, 1, 1}, P{6, 7, 3, 2, 2, 2, 0, 1},
                       P{9, 9, 3, 3, 3, 3, 0, 0}, P{4, 5, 2, 3, 1, 2, 1, 1}}) {
        CAPTURE(q.h);
        CAPTURE(q.kh);
        const k::Window2d w = k::make_pool_window(q.h, q.w, q.kh, q.kw, q.sh, q.sw, q.ph, q.pw, true);
        const std::int64_t planes = 3;
        const FV x = random_vec(planes * w.in_plane(), gen), go = random_vec(planes * w.out_plane(), gen);
        FV y(go.size()), yr(go.size()), gi(x.size()), gir(x.size());
        std::vector<std::int64_t> idx(go.size()), idxr(go.size());
        k::max_pool2d_forward(y.data(), idx.data(), x.data(), planes, w);
        k::ref::max_pool2d_forward(yr.data(), idxr.data(), x.data(), planes, w);
        CHECK(bit_equal(y, yr));
        CHECK(idx == idxr);
        k::max_pool2d_backward_from_input(gi.data(), go.data(), x.data(), planes, w);
        k::ref::max_pool2d_backward(gir.data(), go.data(), idxr.data(), planes, w);
        CHECK(bit_equal(gi, gir));
        for (bool cip : {true, false}) {
            k::avg_pool2d_forward(y.data(), x.data(), planes, w, cip);
            k::ref::avg_pool2d_forward(yr.data(), x.data(), planes, w, cip);
            CHECK(bit_equal(y, yr));
            k::avg_pool2d_backward(gi.data(), go.data(), planes, w, cip);
            k::ref::avg_pool2d_backward(gir.data(), go.data(), planes, w, cip);
            CHECK(bit_equal(gi, gir));
        }
    }
}

// ---- against PyTorch 1.13 ----
// The fixture's inputs are exact fractions; PyTorch and nanotorch both compute in float32 with
// different summation orders (and FMA or not), so each value may differ by a few float32 ulps of
// the largest partial sum: at most ~100 terms of magnitude <= 1 here, i.e. below 1e-5 absolute.
// Tolerance: 2e-5·(1 + |torch|).

namespace {
constexpr double torch_tol = 2e-5;

Tensor from(const float* p, const std::vector<std::int64_t>& shape, bool grad = false) {
    Shape s(shape.begin(), shape.end());
    Tensor t = tensor(FV(p, p + shape_numel(s)), s);
    if (grad) t.requires_grad_();
    return t;
}
FV vals(const float* p, std::int64_t n) { return FV(p, p + n); }
}  // namespace

TEST_CASE("conv2d with groups matches PyTorch 1.13 (forward and all gradients)") {
    for (const auto& c : convpool_baseline::convs) {
        CAPTURE(c.name);
        Tensor x = from(c.x, c.x_shape, true), w = from(c.w, c.w_shape, true);
        Tensor b = c.bias ? from(c.b, {c.w_shape[0]}, true) : Tensor();
        const Tensor y = conv2d(x, w, b, {c.stride[0], c.stride[1]}, {c.padding[0], c.padding[1]},
                                {c.dilation[0], c.dilation[1]}, c.groups);
        REQUIRE(y.shape() == Shape(c.y_shape.begin(), c.y_shape.end()));
        check_close(y.to_vector(), vals(c.y, y.numel()), torch_tol, "forward");
        y.backward(from(c.go, c.y_shape));
        check_close(x.grad().to_vector(), vals(c.gx, x.numel()), torch_tol, "grad x");
        check_close(w.grad().to_vector(), vals(c.gw, w.numel()), torch_tol, "grad w");
        if (c.bias) check_close(b.grad().to_vector(), vals(c.gb, b.numel()), torch_tol, "grad b");
    }
}

TEST_CASE("max_pool2d / avg_pool2d with ceil_mode match PyTorch 1.13") {
    for (const auto& p : convpool_baseline::pools) {
        CAPTURE(p.name);
        Tensor x = from(p.x, p.x_shape, true);
        const Pair2d kk(p.kernel[0], p.kernel[1]), s(p.stride[0], p.stride[1]), pad(p.padding[0], p.padding[1]);
        const Tensor y = p.max ? max_pool2d(x, kk, s, pad, 1, true) : avg_pool2d(x, kk, s, pad, p.count_include_pad, true);
        REQUIRE(y.shape() == Shape(p.y_shape.begin(), p.y_shape.end()));
        check_close(y.to_vector(), vals(p.y, y.numel()), torch_tol, "forward");
        y.backward(from(p.go, p.y_shape));
        check_close(x.grad().to_vector(), vals(p.gx, x.numel()), torch_tol, "grad x");
    }
}

TEST_CASE("adaptive_avg_pool2d matches PyTorch 1.13 for divisible and non-divisible sizes") {
    for (const auto& a : convpool_baseline::adaptives) {
        CAPTURE(a.name);
        Tensor x = from(a.x, a.x_shape, true);
        const Tensor y = F::adaptive_avg_pool2d(x, {a.out[0], a.out[1]});
        check_close(y.to_vector(), vals(a.y, y.numel()), torch_tol, "forward");
        y.backward(from(a.go, y.shape()));
        check_close(x.grad().to_vector(), vals(a.gx, x.numel()), torch_tol, "grad x");
    }
}

// ---- gradient checks ----

TEST_CASE("gradcheck: grouped, depthwise and 1x1 conv2d") {
    // Linear in each argument: central differences are exact up to float32 rounding, so the
    // default tolerances of gradcheck.hpp apply unchanged.
    Generator gen(5);
    gradcheck("depthwise m2 s2 p1", [](const V& v) { return conv2d(v[0], v[1], v[2], 2, 1, 1, 3); },
              {grad_input({2, 3, 6, 5}, gen), grad_input({6, 1, 3, 3}, gen), grad_input({6}, gen)});
    gradcheck("depthwise d2 p(2,1) s(1,2)", [](const V& v) { return conv2d(v[0], v[1], Tensor(), {1, 2}, {2, 1}, 2, 4); },
              {grad_input({1, 4, 6, 7}, gen), grad_input({4, 1, 3, 2}, gen)});
    gradcheck("grouped 3", [](const V& v) { return conv2d(v[0], v[1], v[2], {1, 2}, {1, 0}, {2, 1}, 3); },
              {grad_input({2, 6, 6, 5}, gen), grad_input({9, 2, 3, 2}, gen), grad_input({9}, gen)});
    gradcheck("pointwise groups 2", [](const V& v) { return conv2d(v[0], v[1], v[2], 1, 0, 1, 2); },
              {grad_input({2, 4, 3, 5}, gen), grad_input({6, 2, 1, 1}, gen), grad_input({6}, gen)});
}

TEST_CASE("gradcheck: ceil_mode pooling and adaptive_avg_pool2d") {
    // max: distinct_input keeps values 0.05 apart (> 2·eps), so no step changes a window's argmax.
    Generator gen(6);
    gradcheck("max_pool2d ceil k3 s2 p1", [](const V& v) { return max_pool2d(v[0], 3, 2, 1, 1, true); },
              {distinct_input({1, 2, 6, 7}, gen)});
    gradcheck("max_pool2d ceil k2 s2", [](const V& v) { return max_pool2d(v[0], 2, 2, 0, 1, true); },
              {distinct_input({1, 1, 5, 7}, gen)});
    for (bool cip : {true, false}) {
        CAPTURE(cip);
        gradcheck("avg_pool2d ceil k3 s2 p1", [cip](const V& v) { return avg_pool2d(v[0], 3, 2, 1, cip, true); },
                  {grad_input({1, 2, 6, 7}, gen)});
    }
    gradcheck("adaptive (3, 2) of 7x5", [](const V& v) { return adaptive_avg_pool2d(v[0], {3, 2}); },
              {grad_input({2, 2, 7, 5}, gen)});
    gradcheck("adaptive 1", [](const V& v) { return adaptive_avg_pool2d(v[0], 1); }, {grad_input({2, 3, 4, 5}, gen)});
}

// ---- determinism ----

TEST_CASE("grouped, depthwise and 1x1 conv2d, ceil pooling and adaptive pooling are bit-identical for 1, 2, 3 threads") {
    const int saved = get_num_threads();
    Generator gen(7);
    struct Case {
        Shape x, w;
        Pair2d stride, padding;
        std::int64_t groups;
    };
    const std::vector<Case> cases = {
        {{9, 16, 13, 12}, {32, 1, 3, 3}, 1, 1, 16},  // depthwise, multiplier 2
        {{5, 12, 17, 17}, {12, 1, 5, 5}, 2, 2, 12},  // depthwise stride 2
        {{1, 8, 20, 20}, {8, 1, 3, 3}, 1, 1, 8},     // depthwise batch 1
        {{7, 12, 9, 9}, {18, 4, 3, 3}, 1, 1, 3},     // grouped
        {{11, 16, 6, 6}, {24, 16, 1, 1}, 1, 0, 1},   // pointwise: several weight-gradient chunks
        {{1, 32, 14, 14}, {64, 16, 1, 1}, 1, 0, 2},  // pointwise batch 1 (sgemm splits), groups 2
    };
    std::vector<std::vector<FV>> results;
    for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        Generator g2(8);
        std::vector<FV> r;
        for (const Case& c : cases) {
            Tensor x = uniform(c.x, -1.0f, 1.0f, g2), w = uniform(c.w, -1.0f, 1.0f, g2), b = uniform({c.w[0]}, -1.0f, 1.0f, g2);
            x.requires_grad_();
            w.requires_grad_();
            b.requires_grad_();
            const Tensor y = conv2d(x, w, b, c.stride, c.padding, 1, c.groups);
            const Tensor p = max_pool2d(y, 3, 2, 1, 1, true);
            const Tensor q = avg_pool2d(y, 2, 2, 0, true, true);
            const Tensor a = adaptive_avg_pool2d(y, {3, 2});
            (sum(p) + sum(mul(q, q)) + sum(mul(a, a)) + sum(mul(y, y))).backward();
            for (const Tensor& t : {y, p, q, a, x.grad(), w.grad(), b.grad()}) r.push_back(t.to_vector());
        }
        results.push_back(r);
    }
    set_num_threads(saved);
    (void)gen;
    for (std::size_t t = 1; t < results.size(); ++t)
        for (std::size_t i = 0; i < results[0].size(); ++i) {
            CAPTURE(t);
            CAPTURE(i);
            CHECK(bit_equal(results[t][i], results[0][i]));
        }
}

// ---- modules ----

TEST_CASE("nn::Conv2d groups: weight shape, PyTorch's init bound, repr, state_dict names, errors") {
    Generator gen(9);
    nn::Conv2d dw(nn::Conv2dOptions(6, 12, 3).padding(1).groups(6), gen);
    CHECK(dw->weight.shape() == Shape{12, 1, 3, 3});
    CHECK(dw->bias.shape() == Shape{12});
    // fan_in = in/groups·kH·kW = 9: every weight and bias within 1/3.
    for (float v : dw->weight.to_vector()) CHECK(std::fabs(v) <= 1.0f / 3.0f);
    for (float v : dw->bias.to_vector()) CHECK(std::fabs(v) <= 1.0f / 3.0f);
    std::ostringstream os;
    os << *dw;
    CHECK(os.str().find("groups=6") != std::string::npos);
    const auto names = dw->named_parameters();
    REQUIRE(names.size() == 2);
    CHECK(names[0].first == "weight");
    CHECK(dw(zeros({2, 6, 5, 5})).shape() == Shape{2, 12, 5, 5});
    nn::Conv2d gc(nn::Conv2dOptions(4, 6, {3, 1}).groups(2).bias(false), gen);
    CHECK(gc->weight.shape() == Shape{6, 2, 3, 1});
    CHECK(gc(zeros({1, 4, 5, 5})).shape() == Shape{1, 6, 3, 5});
    check_throws_with<value_error>([&] { nn::Conv2d(nn::Conv2dOptions(6, 8, 3).groups(4), gen); },
                                   "in_channels=6 is not divisible by groups=4");
    check_throws_with<value_error>([&] { nn::Conv2d(nn::Conv2dOptions(6, 8, 3).groups(3), gen); },
                                   "out_channels=8 is not divisible by groups=3");
    check_throws_with<value_error>([&] { nn::Conv2d(nn::Conv2dOptions(6, 6, 3).groups(0), gen); }, "groups must be >= 1");
    // A Conv2d applied to the wrong channel count names groups in the error.
    check_throws_with<shape_error>([&] { dw(zeros({1, 4, 5, 5})); }, "with groups=6 expects 6");
}

TEST_CASE("nn::AdaptiveAvgPool2d and the pools' ceil_mode option") {
    nn::AdaptiveAvgPool2d gap(1);
    CHECK(gap(ones({2, 3, 5, 4})).shape() == Shape{2, 3, 1, 1});
    nn::AdaptiveAvgPool2d a(nn::AdaptiveAvgPool2dOptions({2, 3}));
    const Tensor y = a(arange(0.0f, 24.0f).reshape({1, 1, 4, 6}));
    // 4×6 → 2×3: 2×2 blocks; block (0, 0) = mean of {0, 1, 6, 7} = 3.5.
    CHECK(y.to_vector() == FV{3.5f, 5.5f, 7.5f, 15.5f, 17.5f, 19.5f});
    std::ostringstream os;
    os << *a;
    CHECK(os.str().find("output_size=[2, 3]") != std::string::npos);
    nn::MaxPool2d mp(nn::MaxPool2dOptions(2).ceil_mode(true));
    CHECK(mp(zeros({1, 1, 5, 5})).shape() == Shape{1, 1, 3, 3});
    nn::MaxPool2d mf(nn::MaxPool2dOptions(2));
    CHECK(mf(zeros({1, 1, 5, 5})).shape() == Shape{1, 1, 2, 2});
    nn::AvgPool2d ap(nn::AvgPool2dOptions(3).stride(2).padding(1).ceil_mode(true).count_include_pad(true));
    // 1×1×6×6 ones, ceil: 4×4 outputs; the last window covers padded rows [5, 8) clipped to 7:
    // 2 rows (1 real + 1 pad) → divisor 2·… ; here check the size only (values: PyTorch test above).
    CHECK(ap(ones({1, 1, 6, 6})).shape() == Shape{1, 1, 4, 4});
}

// ---- export -> runtime ----

namespace {
// A module using every new option; eval-mode forward vs the ONNX runtime on the exported graph.
struct Net : nn::Module {
    nn::Conv2d dw{nullptr}, gc{nullptr}, pw{nullptr};
    nn::MaxPool2d mp{nullptr};
    nn::AvgPool2d ap{nullptr};
    nn::AdaptiveAvgPool2d gap{nullptr};
    bool cip_padded;
    explicit Net(bool avg_cip_padded, Generator& gen) : cip_padded(avg_cip_padded) {
        dw = register_module("dw", nn::Conv2d(nn::Conv2dOptions(4, 8, 3).padding(1).groups(4), gen));
        gc = register_module("gc", nn::Conv2d(nn::Conv2dOptions(8, 6, {3, 2}).stride({1, 2}).groups(2), gen));
        pw = register_module("pw", nn::Conv2d(nn::Conv2dOptions(6, 6, 1).groups(3), gen));
        mp = register_module("mp", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1).ceil_mode(true)));
        ap = register_module("ap", nn::AvgPool2d(nn::AvgPool2dOptions(3)
                                                     .stride(2)
                                                     .padding(avg_cip_padded ? 1 : 0)
                                                     .ceil_mode(true)
                                                     .count_include_pad(true)));
        gap = register_module("gap", nn::AdaptiveAvgPool2d(1));
    }
    Tensor forward(const Tensor& x) override {
        Tensor h = relu(dw(x));
        h = mp(h);
        h = relu(gc(h));
        h = ap(pw(h));
        return flatten(gap(h), 1);
    }
};
}  // namespace

TEST_CASE("export -> runtime: grouped/depthwise/1x1 conv, ceil pooling and adaptive pooling run the same ops") {
    Generator gen(10);
    const Tensor x = uniform({2, 4, 11, 10}, -1.0f, 1.0f, gen);
    for (std::int64_t opset : {9, 13}) {
        CAPTURE(opset);
        Net net(false, gen);
        net.eval();
        const Tensor want = net.forward(x);
        onnx::ExportOptions o;
        o.opset = opset;
        const onnx::ModelProto m = onnx::trace_module(net, x, o);
        bool has_group = false, has_gap = false;
        for (const auto& n : m.graph.node) {
            for (const auto& a : n.attribute)
                if (a.name == "group" && a.i > 1) has_group = true;
            has_gap = has_gap || n.op_type == "GlobalAveragePool";
        }
        CHECK(has_group);
        CHECK(has_gap);
        const onnx::Runtime rt{onnx::ModelProto(m)};
        const Tensor got = rt.run({{"input", x}})[0].second;
        // The same ops on the same values; the explicit-pad form of a ceil_mode pool (opset 9)
        // pads first and so may sum in another order: 1e-6 relative.
        check_close(got.to_vector(), want.to_vector(), 1e-6, "runtime vs module");
    }
    // avg_pool2d(ceil_mode, count_include_pad, padding) whose last window is clipped: ceil_mode
    // attribute from opset 10, refused at opset 9 with the fixes named.
    Net clipped(true, gen);
    onnx::ExportOptions o9;
    check_throws_with<unsupported_error>([&] { onnx::trace_module(clipped, x, o9); }, "count_include_pad=false");
    onnx::ExportOptions o13;
    o13.opset = 13;
    clipped.eval();
    const onnx::Runtime rt{onnx::trace_module(clipped, x, o13)};
    check_close(rt.run({{"input", x}})[0].second.to_vector(), clipped.forward(x).to_vector(), 1e-6, "opset 13 ceil");
}

TEST_CASE("export: adaptive_avg_pool2d as GlobalAveragePool, AveragePool, or refused naming the shapes") {
    auto op_of = [](Pair2d out, const Shape& in) {
        nn::Sequential s{nn::AdaptiveAvgPool2d(out)};
        const onnx::ModelProto m = onnx::trace_module(*s, zeros(in));
        REQUIRE(m.graph.node.size() == 1);
        return m.graph.node[0];
    };
    CHECK(op_of(1, {1, 2, 5, 7}).op_type == "GlobalAveragePool");
    const onnx::NodeProto ap = op_of({2, 3}, {1, 2, 6, 9});
    CHECK(ap.op_type == "AveragePool");
    CHECK(ap.attribute[0].ints == std::vector<std::int64_t>{3, 3});  // kernel_shape
    check_throws_with<unsupported_error>([&] { op_of({4, 3}, {1, 2, 6, 9}); }, "output size (4, 3) does not divide the input's 6x9");
}

TEST_CASE("a torch.onnx-exported model with group and ceil_mode runs in the runtime with PyTorch's output") {
    std::vector<fs::path> dirs;
    if (const char* src = std::getenv("NANOTORCH_SOURCE_DIR")) dirs.push_back(fs::path(src) / "tests/data/torch");
    dirs.push_back(fs::path(__FILE__).parent_path() / "data/torch");
    std::string path;
    for (const auto& d : dirs)
        if (fs::exists(d / "convpool_opset13.onnx")) path = (d / "convpool_opset13.onnx").string();
    REQUIRE_MESSAGE(!path.empty(), "tests/data/torch/convpool_opset13.onnx not found (set NANOTORCH_SOURCE_DIR)");
    const onnx::Runtime rt = onnx::load_onnx(path);
    CHECK(onnx::Runtime::unsupported_features(onnx::read_model(path)).empty());
    const Tensor got = rt.run({{"input", from(convpool_baseline::model_x, {2, 4, 11, 10})}})[0].second;
    check_close(got.to_vector(), vals(convpool_baseline::model_y, 12), torch_tol, "torch model");
}

// ---- errors ----

TEST_CASE("conv2d groups and the new pooling arguments: clear errors") {
    const Tensor x = zeros({1, 6, 5, 5});
    check_throws_with<shape_error>([&] { conv2d(x, zeros({6, 3, 3, 3}), Tensor(), 1, 0, 1, 3); },
                                   "with groups=3 expects 9");
    check_throws_with<shape_error>([&] { conv2d(x, zeros({4, 2, 3, 3}), Tensor(), 1, 0, 1, 3); },
                                   "4 output channels, not divisible by groups=3");
    check_throws_with<value_error>([&] { conv2d(x, zeros({6, 6, 3, 3}), Tensor(), 1, 0, 1, 0); }, "groups must be >= 1");
    check_throws_with<shape_error>([&] { conv2d(x, zeros({6, 1, 3, 3}), zeros({5}), 1, 0, 1, 6); }, "bias of shape");
    check_throws_with<value_error>([&] { max_pool2d(x, 2, 2, 0, 2); }, "dilation (2, 2) is not supported");
    check_throws_with<value_error>([&] { adaptive_avg_pool2d(x, {0, 2}); }, "output_size must be >= 1");
    check_throws_with<shape_error>([&] { adaptive_avg_pool2d(zeros({5, 5}), 1); }, "expected a 4-D");
    check_throws_with<shape_error>([&] { adaptive_avg_pool2d(zeros({1, 2, 0, 5}), 1); }, "empty plane");
    // ceil_mode cannot rescue an input smaller than the window.
    check_throws_with<shape_error>([&] { max_pool2d(zeros({1, 1, 2, 2}), 3, 1, 0, 1, true); }, "too small");
}
