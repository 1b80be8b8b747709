// conv2d, max_pool2d, avg_pool2d: kernels vs their ref:: twins, hand-computed values, the direct
// reference convolution, finite-difference gradient checks, thread-count determinism, the seed
// network's shapes and error cases.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <nanotorch/kernels/conv.hpp>
#include <nanotorch/kernels/pool.hpp>
#include <nanotorch/ops/conv.hpp>

#include "support/gradcheck.hpp"

using namespace nanotorch;
using nanotorch::testing::distinct_input;
using nanotorch::testing::grad_input;
using nanotorch::testing::gradcheck;
using V = std::vector<Tensor>;
using FV = std::vector<float>;

namespace {

// One conv/pool configuration for the randomized comparisons.
struct Geo {
    std::int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw;
    bool bias;
};

// Convolution geometries: square and not, stride/padding/dilation combinations, 1×1 (the
// pointwise shortcut), kernel as large as the padded input, and a batch larger than the threads.
const std::vector<Geo> conv_geos = {
    {2, 3, 7, 7, 4, 3, 3, 1, 1, 0, 0, 1, 1, true},  {1, 2, 6, 5, 3, 2, 3, 2, 1, 1, 0, 1, 1, false},
    {3, 1, 9, 8, 2, 3, 2, 2, 3, 1, 1, 2, 1, true},  {2, 4, 5, 5, 3, 1, 1, 1, 1, 0, 0, 1, 1, true},
    {1, 3, 4, 4, 2, 3, 3, 1, 1, 1, 1, 2, 2, false}, {5, 2, 8, 8, 3, 5, 5, 1, 1, 2, 2, 1, 1, true},
    {2, 2, 3, 3, 2, 5, 5, 1, 1, 1, 1, 1, 1, false}, {2, 3, 10, 7, 5, 1, 1, 2, 2, 0, 0, 1, 1, true},
    // Rows of at least one vector that are not whole vectors, padded and not (im2col's
    // overlapping row copies), whatever the ISA's vector width.
    {2, 2, 4, 2 * kernels::simd_width + 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, true},
    {1, 2, 5, kernels::simd_width + 2, 2, 3, 3, 1, 1, 0, 0, 1, 1, false},
};

kernels::Window2d window(const Geo& g) {
    return kernels::make_window(g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw);
}

// |a − b| <= tol·(1 + |b|) elementwise; reports the first failure.
void check_close(const FV& a, const FV& b, double tol, const std::string& what) {
    REQUIRE(a.size() == b.size());
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::fabs(static_cast<double>(a[i]) - b[i]) > tol * (1.0 + std::fabs(static_cast<double>(b[i])))) {
            if (bad++ == 0) first = i;
        }
    INFO(what, ": ", bad, " mismatches; first at ", first, ": ", (bad ? a[first] : 0.0f), " vs ",
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

// Runs `f` and checks it throws E with `needle` in the message.
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

}  // namespace

// ---- kernels ----

TEST_CASE("kernels: im2col and col2im equal their ref twins exactly, and are adjoint") {
    Generator gen(1);
    for (const Geo& g : conv_geos) {
        const auto w = window(g);
        CAPTURE(g.h);
        CAPTURE(g.kh);
        CAPTURE(g.ph);
        CAPTURE(g.dh);
        const std::int64_t rows = g.c * g.kh * g.kw, cols = w.out_plane();
        const FV im = random_vec(g.c * w.in_plane(), gen);
        FV col(static_cast<std::size_t>(rows * cols), 7.0f), col_ref(col.size(), -7.0f);
        kernels::im2col(col.data(), im.data(), g.c, w);
        kernels::ref::im2col(col_ref.data(), im.data(), g.c, w);
        CHECK(bit_equal(col, col_ref));  // a pure gather: no arithmetic, so equality is exact

        const FV y = random_vec(rows * cols, gen);
        FV back(im.size(), 7.0f), back_ref(im.size(), -7.0f);
        kernels::col2im(back.data(), y.data(), g.c, w);
        kernels::ref::col2im(back_ref.data(), y.data(), g.c, w);
        CHECK(bit_equal(back, back_ref));  // same additions in the same order

        // <im2col(x), y> == <x, col2im(y)>: col2im is the transpose of im2col. Small integer
        // values keep every float sum and every double product exact, so equality is exact.
        FV xi(im.size()), yi(y.size()), cx(col.size()), ty(im.size());
        for (auto& v : xi) v = static_cast<float>(static_cast<int>(gen.randint(7)) - 3);
        for (auto& v : yi) v = static_cast<float>(static_cast<int>(gen.randint(7)) - 3);
        kernels::im2col(cx.data(), xi.data(), g.c, w);
        kernels::col2im(ty.data(), yi.data(), g.c, w);
        double lhs = 0, rhs = 0;
        for (std::size_t i = 0; i < cx.size(); ++i) lhs += static_cast<double>(cx[i]) * yi[i];
        for (std::size_t i = 0; i < xi.size(); ++i) rhs += static_cast<double>(xi[i]) * ty[i];
        CHECK(lhs == rhs);
    }
}

TEST_CASE("kernels: pad_planes writes each plane inside its zero border and nothing past the buffer") {
    // Rows that fit one AVX-512 vector padded (a load, a permute, a whole-vector store that spills
    // zeros into the next row, masked near the ends of both buffers) and wider ones (whole-vector
    // copies, borders zeroed after); the destination is sized exactly and followed by sentinels,
    // the source ends where its last plane does.
    Generator gen(17);
    for (std::int64_t width : {1, 2, 3, 5, 7, 9, 12, 13, 14, 15, 16, 17, 28})
        for (std::int64_t pad : {0, 1, 2, 3})
            for (std::int64_t channels : {1, 3}) {
                CAPTURE(width);
                CAPTURE(pad);
                CAPTURE(channels);
                const std::int64_t height = width % 5 + 1;
                const auto w = kernels::make_window(height, width, 1, 1, 1, 1, pad, pad);
                const FV src = random_vec(channels * height * width, gen);
                const std::int64_t ph = height + 2 * pad, pw = width + 2 * pad, n = channels * ph * pw;
                FV dst(static_cast<std::size_t>(n + 16), 7.0f);
                kernels::detail::pad_planes(dst.data(), src.data(), channels, w);
                FV want(dst.size(), 7.0f);
                for (std::int64_t c = 0; c < channels; ++c)
                    for (std::int64_t r = 0; r < ph; ++r)
                        for (std::int64_t q = 0; q < pw; ++q) {
                            const std::int64_t ir = r - pad, iq = q - pad;
                            const bool inside = ir >= 0 && ir < height && iq >= 0 && iq < width;
                            want[static_cast<std::size_t>((c * ph + r) * pw + q)] =
                                inside ? src[static_cast<std::size_t>((c * height + ir) * width + iq)] : 0.0f;
                        }
                CHECK(bit_equal(dst, want));
            }
}

TEST_CASE("kernels: 2x2 max_pool2d values without indices keep the first NaN and the first maximum") {
    // The values-only 2×2 path folds pick(pick(a, b), pick(c, d)) instead of a, b, c, d in turn;
    // it must still return the first NaN (payloads tell NaNs apart) and, among equal maxima, the
    // first (−0 vs +0 tell them apart). Bit-compared with the ref on inputs drawn from a small set
    // of special values, so every kind of tie and NaN position occurs, at awkward plane sizes.
    const float inf = std::numeric_limits<float>::infinity();
    auto nan_with = [](std::uint32_t payload) {
        const std::uint32_t bits = 0x7fc00000u | payload;
        float f;
        std::memcpy(&f, &bits, sizeof f);
        return f;
    };
    const FV pool = {0.0f, -0.0f, 1.0f, -1.0f, inf, -inf, nan_with(1), nan_with(2), 1.0f, 0.5f};
    Generator gen(9);
    struct P {
        std::int64_t planes, h, w;
    };
    for (const P& c : {P{3, 24, 24}, P{2, 8, 8}, P{4, 7, 10}, P{1, 2, 2}, P{2, 5, 2}, P{1, 64, 2048}, P{1, 3, 40},
                      P{1, 4, 1024}, P{2, 6, 9}}) {
        const auto w = kernels::make_window(c.h, c.w, 2, 2, 2, 2, 0, 0);
        FV x(static_cast<std::size_t>(c.planes * w.in_plane()));
        for (auto& v : x) v = pool[static_cast<std::size_t>(gen.randint(pool.size()))];
        FV got(static_cast<std::size_t>(c.planes * w.out_plane()), 7.0f), want(got.size(), -7.0f);
        kernels::max_pool2d_forward(got.data(), nullptr, x.data(), c.planes, w);
        kernels::ref::max_pool2d_forward(want.data(), nullptr, x.data(), c.planes, w);
        CHECK(bit_equal(got, want));
    }
}

TEST_CASE("kernels: avg_pool2d_forward_strided equals the ref on the gathered input exactly") {
    // The canvas model pools one channel of an RGBA image in place: planes of [H, W] elements at
    // stride 4. The same additions in the same order as ref on a contiguous copy: exact.
    Generator gen(7);
    struct P {
        std::int64_t planes, h, w, k_h, k_w, channels;
    };
    for (const P& c : {P{1, 280, 280, 10, 10, 4}, P{3, 11, 9, 3, 2, 3}, P{2, 7, 7, 1, 1, 2}, P{1, 9, 17, 4, 5, 1}}) {
        const auto w = kernels::make_window(c.h, c.w, c.k_h, c.k_w, c.k_h, c.k_w, 0, 0);
        REQUIRE(kernels::avg_pool2d_strided_ok(w));
        const FV hwc = random_vec(c.planes * c.h * c.w * c.channels, gen);  // [P, H, W, channels]
        for (std::int64_t ch = 0; ch < c.channels; ++ch) {
            FV plane(static_cast<std::size_t>(c.planes * c.h * c.w));
            for (std::size_t i = 0; i < plane.size(); ++i)
                plane[i] = hwc[i * static_cast<std::size_t>(c.channels) + static_cast<std::size_t>(ch)];
            FV got(static_cast<std::size_t>(c.planes * w.out_plane())), want(got.size());
            const kernels::PoolStrides st{c.h * c.w * c.channels, c.w * c.channels, c.channels};
            kernels::avg_pool2d_forward_strided(got.data(), hwc.data() + ch, c.planes, st, w);
            kernels::ref::avg_pool2d_forward(want.data(), plane.data(), c.planes, w, true);
            CHECK(bit_equal(got, want));
        }
    }
    FV x(16), o(4);
    const auto overlapping = kernels::make_window(4, 4, 2, 2, 1, 1, 0, 0);
    CHECK_FALSE(kernels::avg_pool2d_strided_ok(overlapping));
    CHECK_THROWS_AS(kernels::avg_pool2d_forward_strided(o.data(), x.data(), 1, {16, 4, 1}, overlapping), value_error);
    const auto padded = kernels::make_window(4, 4, 2, 2, 2, 2, 1, 1);
    CHECK_FALSE(kernels::avg_pool2d_strided_ok(padded));
}

TEST_CASE("avg_pool2d on strided inputs: in place or via a copy, the same values and gradients") {
    Generator gen(8);
    // The canvas model's path: a channel of an HWC image, reshaped (a view) to [1, 1, H, W].
    const Tensor img = uniform({20, 30, 4}, 0.0f, 255.0f, gen);
    const Tensor alpha = img.narrow(2, 3, 1).reshape({1, 1, 20, 30});
    REQUIRE_FALSE(alpha.is_contiguous());
    CHECK(bit_equal(avg_pool2d(alpha, 10).to_vector(), avg_pool2d(alpha.contiguous(), 10).to_vector()));
    CHECK(bit_equal(avg_pool2d(alpha, {5, 3}).to_vector(), avg_pool2d(alpha.contiguous(), {5, 3}).to_vector()));
    // Overlapping windows take the copy; planes that one stride cannot walk (N and C permuted) too.
    CHECK(bit_equal(avg_pool2d(alpha, 3, 1, 1).to_vector(), avg_pool2d(alpha.contiguous(), 3, 1, 1).to_vector()));
    const Tensor nchw = uniform({2, 3, 8, 6}, -1.0f, 1.0f, gen);
    const Tensor swapped = nchw.permute({1, 0, 2, 3});  // [3, 2, 8, 6]: plane stride not uniform
    CHECK(bit_equal(avg_pool2d(swapped, 2).to_vector(), avg_pool2d(swapped.contiguous(), 2).to_vector()));
    const Tensor chw = nchw.select(0, 1).transpose(1, 2);  // 3-D, W and H swapped
    CHECK(bit_equal(avg_pool2d(chw, {2, 4}).to_vector(), avg_pool2d(chw.contiguous(), {2, 4}).to_vector()));
    // The gradient does not depend on the input's layout.
    Tensor leaf = uniform({6, 4, 4}, -1.0f, 1.0f, gen).requires_grad_();
    avg_pool2d(leaf.narrow(2, 1, 1).reshape({1, 1, 6, 4}), 2).sum().backward();
    const std::vector<float> g = leaf.grad().to_vector();
    for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == (i % 4 == 1 ? 0.25f : 0.0f));
}

TEST_CASE("kernels: pooling kernels equal their ref twins exactly") {
    Generator gen(2);
    struct P {
        std::int64_t planes, h, w, kh, kw, sh, sw, ph, pw;
    };
    const std::vector<P> cases = {{3, 8, 8, 2, 2, 2, 2, 0, 0}, {2, 7, 9, 3, 3, 2, 2, 1, 1}, {1, 5, 5, 3, 3, 1, 1, 1, 1},
                                  {4, 6, 5, 2, 3, 1, 2, 1, 1}, {2, 4, 4, 4, 4, 1, 1, 2, 2}, {1, 1, 1, 1, 1, 1, 1, 0, 0},
                                  // non-overlapping unpadded windows (avg_pool's tiling path), with
                                  // leftover rows/columns, a 1-wide window and the canvas model's 10×10
                                  {2, 11, 7, 3, 2, 3, 2, 0, 0}, {3, 9, 13, 1, 4, 1, 4, 0, 0}, {1, 280, 280, 10, 10, 10, 10, 0, 0},
                                  {2, 5, 37, 5, 1, 5, 1, 0, 0}};
    for (const P& c : cases) {
        const auto w = kernels::make_window(c.h, c.w, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw);
        REQUIRE(w.out_plane() > 0);
        const std::int64_t nin = c.planes * w.in_plane(), nout = c.planes * w.out_plane();
        const FV x = random_vec(nin, gen);
        FV out(static_cast<std::size_t>(nout)), out_ref(out.size());
        std::vector<std::int64_t> idx(out.size(), -2), idx_ref(out.size(), -3);
        kernels::max_pool2d_forward(out.data(), idx.data(), x.data(), c.planes, w);
        kernels::ref::max_pool2d_forward(out_ref.data(), idx_ref.data(), x.data(), c.planes, w);
        CHECK(bit_equal(out, out_ref));
        CHECK(idx == idx_ref);
        FV values(out.size(), 9.0f);  // without indices (what ops::max_pool2d asks for)
        kernels::max_pool2d_forward(values.data(), nullptr, x.data(), c.planes, w);
        CHECK(bit_equal(values, out_ref));
        for (std::size_t i = 0; i < idx.size(); ++i) {  // always a real element, never a sentinel
            REQUIRE(idx[i] >= 0);
            REQUIRE(idx[i] < w.in_plane());
            CHECK(x[static_cast<std::size_t>(static_cast<std::int64_t>(i) / w.out_plane() * w.in_plane() + idx[i])] ==
                  out[i]);
        }
        for (bool include_pad : {true, false}) {
            FV a(out.size()), a_ref(out.size());
            kernels::avg_pool2d_forward(a.data(), x.data(), c.planes, w, include_pad);
            kernels::ref::avg_pool2d_forward(a_ref.data(), x.data(), c.planes, w, include_pad);
            CHECK(bit_equal(a, a_ref));
            const FV go = random_vec(nout, gen);
            FV gi(x.size(), 5.0f), gi_ref(x.size(), -5.0f);
            kernels::avg_pool2d_backward(gi.data(), go.data(), c.planes, w, include_pad);
            kernels::ref::avg_pool2d_backward(gi_ref.data(), go.data(), c.planes, w, include_pad);
            CHECK(bit_equal(gi, gi_ref));
        }
    }
    {
        // Special values: NaN wins (the first NaN in window order), −inf still yields a real
        // index, +inf is an ordinary maximum. 3×3 input, 2×2 windows, stride 1 → 2×2 outputs:
        //   [ -inf  -inf  NaN ]     window (0,0) = {-inf,-inf,-inf,-inf} → -inf at flat 0
        //   [ -inf  -inf  1   ]     window (0,1) = {-inf, NaN, -inf, 1}  → NaN at flat 2
        //   [  NaN   2   +inf ]     window (1,0) = {-inf,-inf, NaN, 2}   → NaN at flat 6
        //                           window (1,1) = {-inf, 1, 2, +inf}    → +inf at flat 8
        const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
        const FV x = {-inf, -inf, nan, -inf, -inf, 1, nan, 2, inf};
        const auto w = kernels::make_window(3, 3, 2, 2, 1, 1, 0, 0);
        FV out(4), out_ref(4);
        std::vector<std::int64_t> idx(4), idx_ref(4);
        kernels::max_pool2d_forward(out.data(), idx.data(), x.data(), 1, w);
        kernels::ref::max_pool2d_forward(out_ref.data(), idx_ref.data(), x.data(), 1, w);
        CHECK(idx == std::vector<std::int64_t>{0, 2, 6, 8});
        CHECK(idx_ref == idx);
        CHECK(out[0] == -inf);
        CHECK(std::isnan(out[1]));
        CHECK(std::isnan(out[2]));
        CHECK(out[3] == inf);
    }
    // The kernels enforce the precondition that keeps every window non-empty.
    const auto bad = kernels::make_window(4, 4, 2, 2, 1, 1, 2, 2);
    FV o(64);
    std::vector<std::int64_t> i(64);
    const FV x(16, 1.0f);
    CHECK_THROWS_AS(kernels::max_pool2d_forward(o.data(), i.data(), x.data(), 1, bad), value_error);
    CHECK_THROWS_AS(kernels::avg_pool2d_forward(o.data(), x.data(), 1, bad, false), value_error);
    CHECK_THROWS_AS(kernels::make_window(4, 4, 0, 2, 1, 1, 0, 0), value_error);
    CHECK_THROWS_AS(kernels::make_window(4, 4, 2, 2, 1, 1, -1, 0), value_error);
}

namespace {
// The sizes the kernel tests sweep: around the SIMD widths (8, 16) and the pooling tile.
const std::vector<std::int64_t> awkward = {1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65};
}  // namespace

TEST_CASE("kernels: col2im of dense windows, summed per input row in registers, equals the ref exactly") {
    // On AVX-512, col2im of a dense window (stride 1, no padding or dilation) with rows of up to
    // col2im_dense_max_width floats sums each input row in registers (simd.hpp's col2im_dense),
    // blocks of 4, 2 and 1 channels, one to three vectors per row. It must add every element's
    // taps in the ref's order into +0: bit-compared, on values that include -0, +0, infinities
    // and NaNs with payloads, at widths around the vector boundaries, kernel widths up to the
    // limit and past it (the plain loop), and channel counts that leave each block size as a
    // tail. Padded stride-1 windows reach it through their zero-padded planes. (One kind of NaN,
    // so no -inf beside +inf, whose sum is x86's negative default NaN: which of two NaNs a sum
    // keeps depends on the operand order the compiler picks for an add, which C++ leaves open,
    // in the plain loop as much as here.)
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const FV special = {0.0f, -0.0f, 1.0f, -1.0f, 0.25f, inf, nan, 3.0f};
    struct G {
        std::int64_t c, h, w, kh, kw, pad;
    };
    const std::int64_t lim = kernels::col2im_dense_max_width > 0 ? kernels::col2im_dense_max_width : 48;
    const std::int64_t kmax = kernels::col2im_dense_max_kernel > 0 ? kernels::col2im_dense_max_kernel : 16;
    std::vector<G> geos = {{10, 12, 12, 5, 5, 0}, {7, 9, 16, 3, 3, 0},  {3, 6, 17, 2, 4, 0},  {5, 5, 32, 5, 1, 0},
                           {6, 4, 33, 1, 5, 0},   {1, 3, 47, 3, 3, 0},  {2, 8, lim, 3, 3, 0}, {3, 4, lim + 1, 3, 3, 0},
                           {2, 5, 20, 2, kmax, 0}, {2, 5, 21, 2, kmax + 1, 0}, {9, 14, 14, 3, 3, 1}, {4, 7, 30, 5, 5, 2}};
    Generator gen(41);
    for (int round = 0; round < 2; ++round)  // random values, then special ones
        for (const G& g : geos) {
            CAPTURE(g.c);
            CAPTURE(g.w);
            CAPTURE(g.kw);
            CAPTURE(round);
            const auto w = kernels::make_window(g.h, g.w, g.kh, g.kw, 1, 1, g.pad, g.pad);
            FV y(static_cast<std::size_t>(g.c * g.kh * g.kw * w.out_plane()));
            if (round == 0) y = random_vec(static_cast<std::int64_t>(y.size()), gen);
            else
                for (auto& v : y) v = special[static_cast<std::size_t>(gen.randint(special.size()))];
            FV back(static_cast<std::size_t>(g.c * w.in_plane()), 7.0f), back_ref(back.size(), -7.0f);
            kernels::col2im(back.data(), y.data(), g.c, w);
            kernels::ref::col2im(back_ref.data(), y.data(), g.c, w);
            CHECK(bit_equal(back, back_ref));
        }
}

TEST_CASE("kernels: im2col/col2im with a row pitch (several images side by side) at awkward sizes") {
    Generator gen(21);
    struct G {
        std::int64_t c, h, w, k, s, p, d;
    };
    std::vector<G> geos;
    for (std::int64_t h : awkward) geos.push_back({2, h, 9, std::min<std::int64_t>(h, 5), 1, 0, 1});  // dense path
    for (std::int64_t w : awkward) geos.push_back({1, 6, w, 3, 2, 1, 1});                          // general path
    geos.push_back({3, 17, 16, 3, 1, 1, 2});
    for (std::int64_t ow : {8, 16, 24})  // the dense path's unrolled widths (8 and 24 are the seed's)
        for (std::int64_t k : {1, 5}) geos.push_back({2, 7, ow + k - 1, k, 1, 0, 1});
    for (const G& g : geos) {
        const auto w = kernels::make_window(g.h, g.w, g.k, g.k, g.s, g.s, g.p, g.p, g.d, g.d);
        if (w.out_plane() == 0) continue;
        CAPTURE(g.h);
        CAPTURE(g.w);
        CAPTURE(g.k);
        const std::int64_t rows = g.c * g.k * g.k, len = w.out_plane(), ld = 3 * len + 5, off = len + 2;
        const FV im = random_vec(g.c * w.in_plane(), gen);
        FV packed(static_cast<std::size_t>(rows * len));
        kernels::ref::im2col(packed.data(), im.data(), g.c, w);
        FV wide(static_cast<std::size_t>(rows * ld), 9.0f);
        kernels::im2col(wide.data() + off, im.data(), g.c, w, ld);
        bool same = true, untouched = true;
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t j = 0; j < ld; ++j) {
                const float v = wide[static_cast<std::size_t>(r * ld + j)];
                const bool inside = j >= off && j < off + len;
                if (inside) same &= v == packed[static_cast<std::size_t>(r * len + j - off)];
                else if (r * ld + j >= off && r * ld + j < off + (rows - 1) * ld + len) untouched &= v == 9.0f;
            }
        CHECK(same);       // a pure gather: exact
        CHECK(untouched);  // nothing written outside each row's oH·oW columns

        // col2im reading the same pitch: the ref twin on the packed copy gives the same bits.
        FV y_wide(wide.size());
        for (auto& v : y_wide) v = gen.uniform(-1.0f, 1.0f);
        FV y_packed(packed.size());
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t j = 0; j < len; ++j)
                y_packed[static_cast<std::size_t>(r * len + j)] = y_wide[static_cast<std::size_t>(r * ld + off + j)];
        FV back(im.size(), 3.0f), back_ref(im.size(), -3.0f);
        kernels::col2im(back.data(), y_wide.data() + off, g.c, w, ld);
        kernels::ref::col2im(back_ref.data(), y_packed.data(), g.c, w);
        CHECK(bit_equal(back, back_ref));  // same additions in the same order
    }
}

TEST_CASE("kernels: max_pool2d 2×2 fast path and backward-from-input equal the ref twins bit for bit") {
    Generator gen(22);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // Values from {-1, -0, 0, 1} (plenty of ties, and ±0 which compare equal) with a sprinkling of
    // NaN, so first-element tie breaking and NaN propagation are exercised in every tile.
    const auto tie_heavy = [&](std::int64_t n) {
        FV v(static_cast<std::size_t>(n));
        for (auto& x : v) {
            const std::int64_t r = gen.randint(41);
            x = r == 0 ? nan : r % 4 == 0 ? -1.0f : r % 4 == 1 ? -0.0f : r % 4 == 2 ? 0.0f : 1.0f;
        }
        return v;
    };
    struct P {
        std::int64_t planes, h, w, k, s, p;
    };
    std::vector<P> cases;
    for (std::int64_t h : awkward)
        for (std::int64_t w : awkward) cases.push_back({2, h, w, 2, 2, 0});  // the fast path, incl. odd sizes
    cases.push_back({2, 3, 601, 2, 2, 0});                                      // rows longer than one tile
    cases.push_back({1, 40, 30, 2, 2, 0});                                      // several rows per tile, ragged last tile
    for (std::int64_t h : {1, 7, 16, 17}) {                                     // general windows
        cases.push_back({2, h, 9, 3, 2, 1});
        cases.push_back({2, h + 1, 8, 2, 1, 0});
        cases.push_back({1, h + 2, 5, 3, 3, 0});
    }
    for (const P& c : cases) {
        const auto w = kernels::make_window(c.h, c.w, c.k, c.k, c.s, c.s, c.p, c.p);
        CAPTURE(c.h);
        CAPTURE(c.w);
        CAPTURE(c.k);
        CAPTURE(c.s);
        const std::int64_t nin = c.planes * w.in_plane(), nout = c.planes * w.out_plane();
        for (int data = 0; data < 2; ++data) {
            const FV x = data == 0 ? tie_heavy(nin) : random_vec(nin, gen);
            FV out(static_cast<std::size_t>(nout), 5.0f), out_noidx(out.size(), 6.0f), out_ref(out.size(), 7.0f);
            std::vector<std::int64_t> idx(out.size(), -2), idx_ref(out.size(), -3);
            kernels::max_pool2d_forward(out.data(), idx.data(), x.data(), c.planes, w);
            kernels::max_pool2d_forward(out_noidx.data(), nullptr, x.data(), c.planes, w);
            kernels::ref::max_pool2d_forward(out_ref.data(), idx_ref.data(), x.data(), c.planes, w);
            CHECK(bit_equal(out, out_ref));
            CHECK(bit_equal(out_noidx, out_ref));
            CHECK(idx == idx_ref);

            // Gradients with ±0 in them: the scatter's 0 += g turns −0 into +0, and so must the
            // fused 2×2 backward.
            FV go = random_vec(nout, gen);
            for (std::size_t i = 0; i < go.size(); i += 3) go[i] = i % 2 ? -0.0f : 0.0f;
            FV gi(static_cast<std::size_t>(nin), 5.0f), gi_scatter(gi.size(), 6.0f), gi_ref(gi.size(), 7.0f);
            kernels::max_pool2d_backward_from_input(gi.data(), go.data(), x.data(), c.planes, w);
            kernels::max_pool2d_backward(gi_scatter.data(), go.data(), idx.data(), c.planes, w);
            kernels::ref::max_pool2d_backward(gi_ref.data(), go.data(), idx_ref.data(), c.planes, w);
            CHECK(bit_equal(gi, gi_ref));
            CHECK(bit_equal(gi_scatter, gi_ref));
        }
    }
}

namespace {
// n pooling inputs of a kind: 0 uniform in [-1, 1]; 1 from {-1, -0, +0, 1} (ties, and zeros whose
// sign shows which tap a maximum kept); 2 that with about one NaN in 61.
FV pool_test_values(Generator& gen, std::int64_t n, int kind) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    FV v(static_cast<std::size_t>(n));
    for (auto& x : v) {
        if (kind == 0) {
            x = gen.uniform(-1.0f, 1.0f);
            continue;
        }
        const std::int64_t r = gen.randint(kind == 2 ? 61 : 60);
        x = r == 60 ? nan : r % 4 == 0 ? -1.0f : r % 4 == 1 ? -0.0f : r % 4 == 2 ? 0.0f : 1.0f;
    }
    return v;
}
}  // namespace

TEST_CASE("kernels: general pooling windows without indices equal the ref twins bit for bit, ceil_mode too") {
    // Windows other than 2×2/2 (max) or tiling (avg) take the span paths when no indices are
    // wanted: max pooling as row maxima then column maxima, avg pooling one output row of sums at
    // a time. Both must keep the ref's results exactly: the first maximum in row-major window
    // order (±0 compare equal, so which one is returned shows), a NaN plane's first NaN, and each
    // average's sum in row-major order. Shapes include ceil_mode's partial windows (PyTorch's
    // MaxPool2d(3, 2, ceil_mode=True) on 15×15, AvgPool2d(3, 2, 1, ceil_mode=True) on 7×7).
    Generator gen(23);
    const auto values = [&](std::int64_t n, int kind) { return pool_test_values(gen, n, kind); };
    struct P {
        std::int64_t planes, h, w, k, s, p;
        bool ceil;
    };
    const std::vector<P> cases = {{3, 15, 15, 3, 2, 0, true}, {3, 7, 7, 3, 2, 1, true},   {2, 4, 4, 3, 1, 1, false},
                                  {2, 9, 13, 3, 2, 1, false}, {2, 10, 11, 4, 3, 2, true}, {1, 1, 6, 1, 2, 0, true},
                                  {2, 17, 5, 5, 1, 2, false}, {1, 6, 6, 2, 1, 0, true}};
    for (const P& c : cases) {
        const auto w = kernels::make_pool_window(c.h, c.w, c.k, c.k, c.s, c.s, c.p, c.p, c.ceil);
        CAPTURE(c.h);
        CAPTURE(c.w);
        CAPTURE(c.k);
        CAPTURE(c.s);
        CAPTURE(c.ceil);
        REQUIRE(w.out_plane() > 0);
        const std::int64_t nin = c.planes * w.in_plane(), nout = c.planes * w.out_plane();
        for (int kind = 0; kind < 3; ++kind) {
            CAPTURE(kind);
            const FV x = values(nin, kind);
            FV got(static_cast<std::size_t>(nout), 5.0f), want(got.size(), 7.0f);
            kernels::max_pool2d_forward(got.data(), nullptr, x.data(), c.planes, w);
            kernels::ref::max_pool2d_forward(want.data(), nullptr, x.data(), c.planes, w);
            CHECK(bit_equal(got, want));
            for (bool include_pad : {true, false}) {
                FV a(got.size(), 5.0f), a_ref(got.size(), 7.0f);
                kernels::avg_pool2d_forward(a.data(), x.data(), c.planes, w, include_pad);
                kernels::ref::avg_pool2d_forward(a_ref.data(), x.data(), c.planes, w, include_pad);
                CHECK(bit_equal(a, a_ref));
            }
        }
    }
    // The order trap of a two-pass maximum: row 0 is {-1, +0}, row 1 {-0, -1}. The first maximum
    // in row-major order is +0 (row 0); taking column maxima first would give -0 (column 0).
    const FV x = {-1.0f, 0.0f, -0.0f, -1.0f};
    const auto w = kernels::make_pool_window(2, 2, 2, 2, 1, 1, 0, 0, false);  // one 2×2 window, stride 1
    FV got(1, 5.0f);
    kernels::max_pool2d_forward(got.data(), nullptr, x.data(), 1, w);
    CHECK(got[0] == 0.0f);
    CHECK_FALSE(std::signbit(got[0]));
}

TEST_CASE("kernels: pooling of many small planes, pool_lanes at a time, equals the ref twins bit for bit") {
    // From pool_lanes / 2 planes of at most pool_lanes_max_plane elements, max pooling without
    // indices (any window but 2×2/2) and avg pooling (any window), forward and backward,
    // interleave a block of planes and pool them side by side, one lane per plane. Each lane must
    // still give its own plane's ref result exactly: the first NaN or first maximum in row-major
    // window order (±0 shows which), each average's row-major sum and divisor, and the backwards'
    // additions in the ref's output order. Plane counts cover a part block alone, whole
    // blocks, and whole blocks plus a part; sizes reach the limit (32×32) and pass it (32×33).
    Generator gen(29);
    const auto values = [&](std::int64_t n, int kind) { return pool_test_values(gen, n, kind); };
    struct P {
        std::int64_t h, w, k, s, p;
        bool ceil;
    };
    const std::vector<P> windows = {{15, 15, 3, 2, 0, true}, {7, 7, 3, 2, 1, true},  {4, 4, 3, 1, 1, false},
                                    {4, 4, 2, 2, 0, false},  {9, 13, 3, 2, 1, false}, {1, 6, 1, 2, 0, true},
                                    {32, 32, 3, 2, 1, false}, {32, 33, 3, 2, 1, false}, {6, 6, 2, 1, 0, true}};
    const std::int64_t half = kernels::detail::pool_lanes / 2, lanes = kernels::detail::pool_lanes;
    const std::vector<std::int64_t> plane_counts = {half, lanes, lanes + 5, 2 * lanes + half + 3};
    const int saved = get_num_threads();
    for (const P& c : windows)
        for (std::int64_t planes : plane_counts) {
            const auto w = kernels::make_pool_window(c.h, c.w, c.k, c.k, c.s, c.s, c.p, c.p, c.ceil);
            CAPTURE(c.h);
            CAPTURE(c.w);
            CAPTURE(c.k);
            CAPTURE(planes);
            REQUIRE(w.out_plane() > 0);
            const bool lanes_path = kernels::detail::pool_lanes_take(w, planes);
            CHECK(lanes_path == (w.in_plane() <= 1024));  // the size limit is what this case says
            const std::int64_t nin = planes * w.in_plane(), nout = planes * w.out_plane();
            for (int kind = 0; kind < 3; ++kind) {
                CAPTURE(kind);
                const FV x = values(nin, kind);
                FV want(static_cast<std::size_t>(nout), 7.0f);
                std::vector<std::int64_t> idx_ref(want.size());
                kernels::ref::max_pool2d_forward(want.data(), idx_ref.data(), x.data(), planes, w);
                // Gradients with ±0 and (kind 2) NaN in them: the ref's scatter starts at +0.
                FV go = values(nout, kind == 2 ? 2 : 0);
                for (std::size_t i = 0; i < go.size(); i += 3) go[i] = i % 2 ? -0.0f : 0.0f;
                FV gi_ref(static_cast<std::size_t>(nin), 7.0f);
                kernels::ref::max_pool2d_backward(gi_ref.data(), go.data(), idx_ref.data(), planes, w);
                for (int threads : {1, 3}) {
                    set_num_threads(threads);
                    FV got(want.size(), 5.0f);
                    kernels::max_pool2d_forward(got.data(), nullptr, x.data(), planes, w);
                    CHECK(bit_equal(got, want));
                    FV gi(gi_ref.size(), 5.0f);
                    kernels::max_pool2d_backward_from_input(gi.data(), go.data(), x.data(), planes, w);
                    CHECK(bit_equal(gi, gi_ref));
                    for (bool include_pad : {true, false}) {
                        FV a(want.size(), 5.0f), a_ref(want.size(), 7.0f);
                        kernels::avg_pool2d_forward(a.data(), x.data(), planes, w, include_pad);
                        kernels::ref::avg_pool2d_forward(a_ref.data(), x.data(), planes, w, include_pad);
                        CHECK(bit_equal(a, a_ref));
                        FV ga(gi_ref.size(), 5.0f), ga_ref(gi_ref.size(), 7.0f);
                        kernels::avg_pool2d_backward(ga.data(), go.data(), planes, w, include_pad);
                        kernels::ref::avg_pool2d_backward(ga_ref.data(), go.data(), planes, w, include_pad);
                        CHECK(bit_equal(ga, ga_ref));
                    }
                }
            }
        }
    set_num_threads(saved);
    // The two-pass order trap, in one lane (plane 9) of a block: row 0 {-1, +0}, row 1 {-0, -1}
    // must give +0, the first maximum in row-major order.
    const std::int64_t planes = lanes;
    FV x(static_cast<std::size_t>(planes * 4), 1.0f);
    const FV trap = {-1.0f, 0.0f, -0.0f, -1.0f};
    std::copy(trap.begin(), trap.end(), x.begin() + 9 * 4);
    const auto w = kernels::make_pool_window(2, 2, 2, 2, 1, 1, 0, 0, false);  // one 2×2 window, stride 1
    REQUIRE(kernels::detail::pool_lanes_take(w, planes));
    FV got(static_cast<std::size_t>(planes), 5.0f);
    kernels::max_pool2d_forward(got.data(), nullptr, x.data(), planes, w);
    CHECK(got[9] == 0.0f);
    CHECK_FALSE(std::signbit(got[9]));
    CHECK(got[8] == 1.0f);
}

namespace {
// Checks |got − want| <= 1.01·n·2^-24·mag + 1e-30 elementwise, where mag is the same sum over
// |terms| (the ref kernel run on absolute values) and n the number of roundings per element (the
// float additions, plus one for rounding the double reference to float): the classical bound
// γ_n·Σ|terms| on a float32 sum of n terms in any order (γ_n = n·u/(1 − n·u) < 1.01·n·u here),
// so it holds for any GEMM blocking or FMA use.
void check_within_sum_bound(const FV& got, const FV& want, const FV& mag, double n, const std::string& what) {
    REQUIRE(got.size() == want.size());
    REQUIRE(mag.size() == want.size());
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (std::fabs(static_cast<double>(got[i]) - want[i]) > 1.01 * n * std::ldexp(1.0, -24) * mag[i] + 1e-30)
            if (bad++ == 0) first = i;
    INFO(what, ": ", bad, " outside the bound; first at ", first);
    CHECK(bad == 0);
}
// v with every element replaced by its absolute value (the magnitudes check_within_sum_bound reads).
FV abs_of(FV v) {
    for (auto& e : v) e = std::fabs(e);
    return v;
}
// mag with each run of kk values (one kernel's taps) replaced by the run's largest: the
// normwise magnitude a fast algorithm's error is relative to (see the F(2x2, 5x5) bound below).
FV kernel_max_of(FV mag, std::int64_t kk) {
    for (std::size_t q = 0; q < mag.size(); q += static_cast<std::size_t>(kk)) {
        const float m = *std::max_element(mag.begin() + static_cast<std::ptrdiff_t>(q),
                                          mag.begin() + static_cast<std::ptrdiff_t>(q) + kk);
        std::fill(mag.begin() + static_cast<std::ptrdiff_t>(q), mag.begin() + static_cast<std::ptrdiff_t>(q) + kk, m);
    }
    return mag;
}
}  // namespace

TEST_CASE("kernels: conv2d at the seed net's shapes, batches across chunk boundaries, vs the direct reference") {
    Generator gen(23);
    struct S {
        std::int64_t c, o, hw, k;
    };
    // conv1 (1→10, 28×28) runs 4 images per chunk, conv2 (10→20, 12×12) 8: batches 7, 9 and 17
    // end in a partial chunk, 64 is the seed's batch.
    for (const S& s : {S{1, 10, 28, 5}, S{10, 20, 12, 5}}) {
        const auto w = kernels::make_window(s.hw, s.hw, s.k, s.k, 1, 1, 0, 0);
        const std::int64_t ckk = s.c * s.k * s.k, len = w.out_plane();
        CHECK(kernels::detail::conv_chunk(ckk, len) == (s.c == 1 ? 4 : 8));
        for (std::int64_t n : {0, 1, 7, 8, 9, 17, 64}) {
            CAPTURE(s.c);
            CAPTURE(n);
            const FV x = random_vec(n * s.c * w.in_plane(), gen), wt = random_vec(s.o * ckk, gen);
            const FV b = random_vec(s.o, gen), go = random_vec(n * s.o * len, gen);
            FV y(static_cast<std::size_t>(n * s.o * len)), y_ref(y.size()), y_mag(y.size());
            kernels::conv2d_forward(y.data(), x.data(), wt.data(), b.data(), n, s.c, s.o, w);
            kernels::ref::conv2d_forward(y_ref.data(), x.data(), wt.data(), b.data(), n, s.c, s.o, w);
            kernels::ref::conv2d_forward(y_mag.data(), abs_of(x).data(), abs_of(wt).data(), abs_of(b).data(), n, s.c,
                                         s.o, w);
            check_within_sum_bound(y, y_ref, y_mag, static_cast<double>(ckk + 2), "forward");

            FV gi(x.size(), 1.0f), gw(wt.size(), 1.0f), gb(b.size(), 1.0f);
            FV gi_ref(x.size()), gw_ref(wt.size()), gb_ref(b.size()), gi_mag(x.size()), gw_mag(wt.size()),
                gb_mag(b.size());
            kernels::conv2d_backward(gi.data(), gw.data(), gb.data(), go.data(), x.data(), wt.data(), n, s.c, s.o, w);
            kernels::ref::conv2d_backward(gi_ref.data(), gw_ref.data(), gb_ref.data(), go.data(), x.data(), wt.data(),
                                          n, s.c, s.o, w);
            kernels::ref::conv2d_backward(gi_mag.data(), gw_mag.data(), gb_mag.data(), abs_of(go).data(),
                                          abs_of(x).data(), abs_of(wt).data(), n, s.c, s.o, w);
            check_within_sum_bound(gi, gi_ref, gi_mag, static_cast<double>(s.o * s.k * s.k + 1), "grad_input");
            check_within_sum_bound(gw, gw_ref, gw_mag, static_cast<double>(n * len + 2), "grad_weight");
            check_within_sum_bound(gb, gb_ref, gb_mag, static_cast<double>(n * len + 2), "grad_bias");
        }
    }
}

// Tolerance for the im2col+sgemm path vs the double-accumulated direct reference: each output
// sums at most C·kH·kW <= 100 float32 products of values in [-1, 1] (plus a bias), so its
// rounding error is below ~100·2^-24·Σ|terms| ≈ 1e-5·(1 + |value|); 1e-4 relative leaves margin.
// Gradients sum up to N·oH·oW <= 320 products: same bound, same tolerance.
constexpr double conv_tol = 1e-4;

TEST_CASE("kernels: conv2d_forward/backward vs the direct reference") {
    Generator gen(3);
    for (const Geo& g : conv_geos) {
        const auto w = window(g);
        CAPTURE(g.kh);
        CAPTURE(g.sh);
        CAPTURE(g.ph);
        CAPTURE(g.dh);
        const FV x = random_vec(g.n * g.c * w.in_plane(), gen);
        const FV wt = random_vec(g.o * g.c * g.kh * g.kw, gen);
        const FV b = random_vec(g.o, gen);
        const float* bp = g.bias ? b.data() : nullptr;
        const std::int64_t nout = g.n * g.o * w.out_plane();
        FV y(static_cast<std::size_t>(nout)), y_ref(y.size());
        kernels::conv2d_forward(y.data(), x.data(), wt.data(), bp, g.n, g.c, g.o, w);
        kernels::ref::conv2d_forward(y_ref.data(), x.data(), wt.data(), bp, g.n, g.c, g.o, w);
        check_close(y, y_ref, conv_tol, "forward");

        const FV go = random_vec(nout, gen);
        FV gi(x.size()), gw(wt.size()), gb(b.size()), gi_ref(x.size()), gw_ref(wt.size()), gb_ref(b.size());
        kernels::conv2d_backward(gi.data(), gw.data(), gb.data(), go.data(), x.data(), wt.data(), g.n, g.c, g.o, w);
        kernels::ref::conv2d_backward(gi_ref.data(), gw_ref.data(), gb_ref.data(), go.data(), x.data(), wt.data(), g.n,
                                      g.c, g.o, w);
        check_close(gi, gi_ref, conv_tol, "grad_input");
        check_close(gw, gw_ref, conv_tol, "grad_weight");
        check_close(gb, gb_ref, conv_tol, "grad_bias");

        // Each output alone (null for the others) gives the same values.
        FV gw_only(wt.size()), gi_only(x.size());
        kernels::conv2d_backward(nullptr, gw_only.data(), nullptr, go.data(), x.data(), wt.data(), g.n, g.c, g.o, w);
        kernels::conv2d_backward(gi_only.data(), nullptr, nullptr, go.data(), x.data(), wt.data(), g.n, g.c, g.o, w);
        CHECK(bit_equal(gw_only, gw));
        CHECK(bit_equal(gi_only, gi));
    }
}

TEST_CASE("kernels: conv2d_forward's paths that read the images in place equal im2col + sgemm bit for bit") {
    // Two paths read the (zero-padded) images where they lie instead of materialising im2col:
    // where detail::direct_conv_pays, the direct path (its micro-kernel reads B's rows from the
    // planes, over pitched columns); else where detail::implicit_im2col_pays, the blocked GEMM
    // with its B panels packed from the images. Both multiply the same values in the same order
    // as the blocked GEMM on the im2col matrix, so the result must be the explicit path's
    // exactly: im2col of each chunk of images side by side (detail::conv_chunk), one sgemm, the
    // bias added. The cases cover both paths: widths that are and are not whole panels
    // (whatever the ISA), output channels that are not whole micro-kernel rows, K past one
    // gemm_kc slice, batches with a partial last chunk, groups, padding, dilation, no padding,
    // and strides 2 and 3 (the direct path over phase planes, detail::phase_planes), and stride-1
    // windows where the direct path reads shifted copies of the planes instead (few output
    // columns per padded row: detail::shifted_planes, detail::shifted_columns_pay). The direct
    // path runs in each of its tile shapes (detail::direct_tile; the short one exists where the
    // build has rows to spare for it): they must give the same bits. Output-channel counts that
    // are not whole panels in the shape taken check that a partial panel writes only its rows.
    struct Case {
        std::int64_t n, c, o, h, w, k, pad, dil, groups, stride = 1;
    };
    const std::int64_t nr = kernels::gemm_nr;
    const std::vector<Case> cases = {
        {5, 8, 5, 7, 2 * nr, 3, 1, 1, 1},        // 3x3 pad 1, K = 72
        {3, 16, 6, 5, nr, 3, 1, 1, 2},           // two groups of 8 channels
        {4, 3, 7, 9, nr + 4, 5, 0, 1, 1},        // 5x5 without padding, K = 75
        {2, 8, 4, 6, nr, 3, 2, 2, 1},            // dilation 2, pad 2
        {70, 9, 3, 3, nr, 3, 1, 1, 1},           // many images per chunk, then a partial one
        {3, 8, 96, 8, nr, 3, 1, 1, 1},           // many output channels on whole-panel rows (direct on AVX-512)
        {2, 8, 96, 27, 56, 3, 0, 12, 1},         // a window 25 wide, 32 columns per row: packed on every ISA
        {2, 16, 16, 28, 28, 3, 1, 1, 1},         // ResNet8's first block: 28 columns, K = 144 (2 images:
                                                 // fewer tiles than F(2x2, 3x3) asks for)
        {5, 32, 13, 7, 7, 3, 1, 1, 1},           // 7x7 planes, 13 output rows, K = 288 (two slices)
        {2, 12, 10, 11, 13, 5, 2, 1, 1},         // 5x5 pad 2 on an odd plane
        {3, 10, 20, 12, 12, 5, 0, 1, 1},         // 5x5 without padding, K = 250
        {2, 24, 18, 9, 10, 3, 2, 2, 2},          // dilation 2, two groups, K = 108
        {9, 40, 11, 5, 6, 3, 1, 1, 1},           // K = 360, partial chunk
        {3, 16, 32, 28, 28, 3, 1, 1, 1, 2},      // stride 2 (phase planes): ResNet8's 16 -> 32 block
        {2, 24, 40, 30, 29, 3, 1, 1, 1, 2},      // stride 2 on an odd width
        {2, 32, 64, 14, 14, 3, 1, 1, 1, 2},      // stride 2, K = 288 (two slices)
        {2, 12, 18, 17, 19, 5, 2, 1, 1, 2},      // 5x5 stride 2
        {2, 16, 16, 15, 15, 3, 2, 2, 2, 2},      // stride 2, dilation 2, two groups
        {2, 16, 8, 20, 20, 3, 0, 1, 1, 3},       // stride 3, no padding
        {3, 1, 16, 28, 28, 3, 1, 1, 1},          // one input channel, K = 9: ResNet8's stem
        {2, 1, 32, 28, 28, 3, 0, 1, 1},          // K = 9 unpadded: examples/mnist's first layer
    };
    bool took_direct = false, took_packed = false, took_strided = false, took_shifted = false;
    bool took_tile[3] = {false, false, false};
    Generator gen(21);
    for (const Case& t : cases) {
        CAPTURE(t.c);
        CAPTURE(t.w);
        CAPTURE(t.stride);
        const auto w = kernels::make_window(t.h, t.w, t.k, t.k, t.stride, t.stride, t.pad, t.pad, t.dil, t.dil);
        const std::int64_t cg = t.c / t.groups, og = t.o / t.groups, ckk = cg * t.k * t.k, len = w.out_plane();
        const std::int64_t chunk = kernels::detail::conv_chunk(ckk, len);
        const bool direct = kernels::detail::direct_conv_pays(og, ckk, w, chunk);
        REQUIRE((direct || kernels::detail::implicit_im2col_pays(ckk, w)));
        REQUIRE_FALSE(kernels::detail::winograd_pays(cg, og, w, t.n));  // which conv2d_forward_fused takes first
        (direct ? took_direct : took_packed) = true;
        took_strided = took_strided || (direct && t.stride > 1);
        const bool shifted = direct && !kernels::detail::lanes_conv_pays(og, ckk, w, direct) &&
                             kernels::detail::shifted_columns_pay(og, ckk, w);
        took_shifted = took_shifted || shifted;
        if (direct)
            took_tile[static_cast<int>(
                kernels::detail::direct_tile(og, shifted ? len : kernels::detail::pitched_columns(w)))] = true;
        const FV x = random_vec(t.n * t.c * w.in_plane(), gen), wt = random_vec(t.o * ckk, gen);
        const FV b = random_vec(t.o, gen);
        FV y(static_cast<std::size_t>(t.n * t.o * len), 7.0f), expect(y.size(), -7.0f);
        kernels::conv2d_forward(y.data(), x.data(), wt.data(), b.data(), t.n, t.c, t.o, w, t.groups);

        bool blocked = false;
        for (std::int64_t n0 = 0; n0 < t.n; n0 += chunk) {
            const std::int64_t nb = std::min(chunk, t.n - n0), cols = nb * len;
            blocked = blocked || kernels::detail::gemm_path(false, false, og, cols, ckk) ==
                                     kernels::detail::GemmPath::blocked;
            FV col(static_cast<std::size_t>(ckk * cols)), g(static_cast<std::size_t>(og * cols));
            for (std::int64_t gr = 0; gr < t.groups; ++gr) {
                for (std::int64_t i = 0; i < nb; ++i)
                    kernels::im2col(col.data() + i * len, x.data() + ((n0 + i) * t.c + gr * cg) * w.in_plane(), cg, w,
                                    cols);
                // The direct path is the blocked GEMM's arithmetic whatever path sgemm would
                // pick for this shape (on AVX-512, stride 2 on 14x14 gives sgemm a skinny
                // product), so its reference is the blocked GEMM itself; the packed path runs only
                // where sgemm is blocked (checked below), so sgemm is its reference.
                if (direct)
                    kernels::detail::gemm_driver(og, cols, ckk, 1.0f,
                                                 kernels::detail::StridedMatrix{wt.data() + gr * og * ckk, ckk, 1},
                                                 kernels::detail::StridedMatrix{col.data(), cols, 1}, 0.0f, g.data(),
                                                 cols, 1);
                else
                    kernels::sgemm(false, false, og, cols, ckk, 1.0f, wt.data() + gr * og * ckk, ckk, col.data(),
                                   cols, 0.0f, g.data(), cols);
                for (std::int64_t i = 0; i < nb; ++i)
                    for (std::int64_t o = 0; o < og; ++o)
                        kernels::add_scalar(expect.data() + ((n0 + i) * t.o + gr * og + o) * len,
                                            g.data() + o * cols + i * len, b[static_cast<std::size_t>(gr * og + o)],
                                            len);
            }
        }
        if (!direct) REQUIRE(blocked);  // the shape really runs the blocked GEMM the implicit path replaces
        CHECK(bit_equal(y, expect));
        FV y_ref(y.size()), y_mag(y.size());
        kernels::ref::conv2d_forward(y_ref.data(), x.data(), wt.data(), b.data(), t.n, t.c, t.o, w, t.groups);
        kernels::ref::conv2d_forward(y_mag.data(), abs_of(x).data(), abs_of(wt).data(), abs_of(b).data(), t.n, t.c,
                                     t.o, w, t.groups);
        check_within_sum_bound(y, y_ref, y_mag, static_cast<double>(ckk + 1), "forward vs the reference");
    }
    CHECK(took_direct);
    CHECK(took_packed);
    CHECK(took_strided);
    CHECK(took_shifted);
    CHECK(took_tile[0]);
    CHECK(took_tile[1]);
    if (kernels::conv_tile_mr_short < kernels::gemm_mr) CHECK(took_tile[2]);
}

TEST_CASE("kernels: the direct product with output channels in the lanes equals the blocked GEMM bit for bit") {
    // Where detail::lanes_conv_pays (AVX-512 and AVX2 builds), conv2d_forward_fused runs
    // detail::conv_lanes_product: tiles of P output pixels (in raster order, spanning rows) by one
    // to four vectors of output channels (AVX-512: 16 lanes, blocks of four vectors; AVX2: 8 lanes,
    // blocks of two), transposed in registers and written straight to the output
    // with the bias and the epilogue applied on the way. Its sums are the blocked GEMM's chains on
    // the im2col matrix (k ascending, gemm_kc slices added in order), and the epilogue is
    // ConvEpilogue::apply's operations, so the output must equal im2col + the blocked GEMM +
    // bias + apply on each plane exactly. The cases require the model to pick the lanes path and
    // cover every block width (a full block, and each narrower last block), both tile widths
    // of a full block where the ISA has two (AVX-512: 7 pixels, or 6 where fewer are computed), channel
    // counts that are not whole vectors, partial last tiles, K past one and two gemm_kc slices,
    // strides 2 and 3, dilation, groups, no padding (the images read in place), several images
    // per chunk, and each epilogue (scale and shift, the residual in both operand orders, relu).
    // On padded planes the tiles leave out the taps that read only padding (kernel rows for all
    // their pixels, kernel columns for a first or last pixel): products 0·w, which change no sum
    // of these finite values, so the bits must still be equal; the padded cases cover 7x7 tiles
    // of one row (rows and columns left out), 14-pixel rows, dilation 2 with pad 2, 5x5 pad 2
    // (two rows), and pad 3, where whole tiles read padding only (the bias alone).
    struct Case {
        std::int64_t n, c, o, h, w, k, pad, stride, dil, groups;
    };
    const std::vector<Case> cases = {
        {2, 64, 64, 7, 7, 3, 1, 1, 1, 1},     // four vectors, K = 576: three slices
        {3, 32, 32, 14, 14, 3, 1, 1, 1, 1},   // two vectors
        {2, 24, 48, 14, 14, 3, 1, 2, 1, 1},   // three vectors, stride 2
        {2, 6, 16, 14, 14, 5, 0, 1, 1, 1},    // one vector, unpadded: the images in place
        {2, 40, 80, 12, 12, 5, 2, 1, 1, 1},   // four vectors then one
        {1, 40, 96, 20, 20, 3, 1, 1, 1, 1},   // four vectors then two (40 inputs: not by Winograd)
        {2, 64, 56, 7, 7, 3, 1, 1, 1, 1},     // 56 channels: a partial block
        {5, 16, 32, 28, 28, 1, 0, 2, 1, 1},   // 1x1 stride 2 (a GEMM shape with K = 16)
        {2, 32, 64, 14, 14, 3, 1, 2, 1, 2},   // two groups of 16 -> 32, stride 2
        {2, 32, 32, 15, 13, 3, 2, 1, 2, 1},   // dilation 2 on an odd plane: partial tiles
        {2, 32, 64, 20, 20, 3, 0, 3, 1, 1},   // stride 3 unpadded
        {4, 30, 33, 9, 9, 3, 1, 1, 1, 1},     // 33 channels: three vectors, 17 lanes unused
        {2, 64, 64, 5, 5, 3, 3, 1, 1, 1},     // pad 3: the first and last tiles read padding only
    };
    // A full block's vectors in this build, and which full and last-block widths the cases took.
    const std::int64_t lanes_width = kernels::simd_width, block_vecs = lanes_width >= 16 ? 4 : 2;
    bool took_full = false, took_last[4] = {false, false, false, false};
    bool took_alt_tile = false, took_first_tile = false;  // the full blocks' two tile widths (AVX-512)
    Generator gen(31);
    for (const Case& t : cases) {
        CAPTURE(t.c);
        CAPTURE(t.o);
        CAPTURE(t.h);
        CAPTURE(t.stride);
        const auto w = kernels::make_window(t.h, t.w, t.k, t.k, t.stride, t.stride, t.pad, t.pad, t.dil, t.dil);
        const std::int64_t cg = t.c / t.groups, og = t.o / t.groups, ckk = cg * t.k * t.k, len = w.out_plane();
        const std::int64_t chunk = kernels::detail::conv_chunk(ckk, len);
        const bool lanes =
            kernels::detail::lanes_conv_pays(og, ckk, w, kernels::detail::direct_conv_pays(og, ckk, w, chunk));
        REQUIRE(lanes == kernels::detail::has_conv_lanes);
        REQUIRE_FALSE(kernels::detail::winograd_pays(cg, og, w, t.n));  // which conv2d_forward_fused takes first
        const std::int64_t vecs = (og + lanes_width - 1) / lanes_width;
        took_full = took_full || vecs >= block_vecs;
        took_last[vecs % block_vecs] = true;
        if (vecs >= block_vecs)
            (kernels::detail::lanes_block_pixels(len) == kernels::detail::lanes_block_alt_pixels ? took_alt_tile
                                                                                               : took_first_tile) = true;
        const FV x = random_vec(t.n * t.c * w.in_plane(), gen), wt = random_vec(t.o * ckk, gen);
        const FV b = random_vec(t.o, gen), scale = random_vec(t.o, gen), shift = random_vec(t.o, gen);
        const FV res = random_vec(t.n * t.o * len, gen);
        // im2col + the blocked GEMM + bias, per chunk and group as conv2d_forward_fused splits them
        FV plain(static_cast<std::size_t>(t.n * t.o * len));
        for (std::int64_t n0 = 0; n0 < t.n; n0 += chunk) {
            const std::int64_t nb = std::min(chunk, t.n - n0), cols = nb * len;
            FV col(static_cast<std::size_t>(ckk * cols)), g(static_cast<std::size_t>(og * cols));
            for (std::int64_t gr = 0; gr < t.groups; ++gr) {
                for (std::int64_t i = 0; i < nb; ++i)
                    kernels::im2col(col.data() + i * len, x.data() + ((n0 + i) * t.c + gr * cg) * w.in_plane(), cg, w,
                                    cols);
                kernels::detail::gemm_driver(og, cols, ckk, 1.0f,
                                             kernels::detail::StridedMatrix{wt.data() + gr * og * ckk, ckk, 1},
                                             kernels::detail::StridedMatrix{col.data(), cols, 1}, 0.0f, g.data(), cols,
                                             1);
                for (std::int64_t i = 0; i < nb; ++i)
                    for (std::int64_t o = 0; o < og; ++o)
                        kernels::add_scalar(plain.data() + ((n0 + i) * t.o + gr * og + o) * len,
                                            g.data() + o * cols + i * len, b[static_cast<std::size_t>(gr * og + o)],
                                            len);
            }
        }
        for (int e = 0; e < 5; ++e) {
            CAPTURE(e);
            kernels::ConvEpilogue epi;
            if (e == 1 || e == 3) epi.scale = scale.data(), epi.shift = shift.data();
            if (e >= 2) epi.residual = res.data(), epi.residual_first = e == 4;
            epi.relu = e >= 1 && e != 3;
            FV expect = plain;
            for (std::int64_t p = 0; p < t.n * t.o; ++p) epi.apply(expect.data() + p * len, p, p % t.o, len);
            FV y(expect.size(), 7.0f);
            kernels::conv2d_forward_fused(y.data(), x.data(), wt.data(), b.data(), t.n, t.c, t.o, w, t.groups, epi);
            CHECK(bit_equal(y, expect));
        }
    }
    if (kernels::detail::has_conv_lanes) {
        CHECK(took_full);
        for (std::int64_t v = 0; v < block_vecs; ++v) CHECK(took_last[v]);
        CHECK(took_first_tile);
        if (kernels::detail::lanes_block_alt_pixels > 0) CHECK(took_alt_tile);  // 6-pixel tiles: 20x20, 12x12
    }
}

TEST_CASE("kernels: conv2d_forward gives the same bits for any thread count where its chunks are cut for the threads") {
    // The lanes and direct products compute each image on its own, so conv2d_forward_fused cuts
    // their chunks (detail::conv_chunk's, large for a short K) into at least two per thread; the
    // result must not depend on it. Shapes whose chunks hold many images: a 1x1 layer on 9x9
    // (the general path on AVX-512), 3x3 4 -> 16 on 9x9, 5x5 1 -> 10 on 28x28; an odd batch.
    struct Case {
        std::int64_t c, o, h, k, pad;
    };
    const Case cases[] = {{160, 64, 9, 1, 0}, {4, 16, 9, 3, 1}, {1, 10, 28, 5, 0}};
    const std::int64_t n = 37;
    const int saved = get_num_threads();
    Generator gen(51);
    for (const Case& t : cases) {
        CAPTURE(t.c);
        CAPTURE(t.k);
        const auto w = kernels::make_window(t.h, t.h, t.k, t.k, 1, 1, t.pad, t.pad);
        const FV x = random_vec(n * t.c * w.in_plane(), gen), wt = random_vec(t.o * t.c * t.k * t.k, gen);
        const FV b = random_vec(t.o, gen);
        FV one(static_cast<std::size_t>(n * t.o * w.out_plane()), 7.0f);
        set_num_threads(1);
        kernels::conv2d_forward_auto(one.data(), x.data(), wt.data(), b.data(), n, t.c, t.o, w, 1);
        for (int threads : {2, 3}) {
            CAPTURE(threads);
            set_num_threads(threads);
            FV y(one.size(), -7.0f);
            kernels::conv2d_forward_auto(y.data(), x.data(), wt.data(), b.data(), n, t.c, t.o, w, 1);
            CHECK(bit_equal(y, one));
        }
    }
    set_num_threads(saved);
}

// F(2×2, r×r) (kernels/winograd.hpp) is held to the double-accumulated direct reference with a
// bound of the check_within_sum_bound kind, mag = the reference convolution of |x| and |w|. For
// r = 3 its transformed operands are sums of up to 4 inputs and up to 9/4 of a weight's
// magnitude, and the output transform adds 9 products of channel sums, so each output's rounding
// is that of a sum about 9 times as large and a few additions longer than the direct one's C·9
// products: we allow n = 16·(C·9 + 16), and for the weight gradient n = 16·(N·oH·oW + 16)
// (measured on these shapes: the largest errors are below C·9·2^-24·mag and
// 2·N·oH·oW·2^-24·mag). For r = 5 the transforms scale inputs by up to 10 per axis and the output
// transform adds up to 49 products, so we allow the same 16·(C·25 + 36) over a sum 36 positions
// long (measured: below 30·2^-24·mag, where C·25 is 50 to 3200). Its weight gradient is held
// per kernel: a tap whose window only meets padding has the exact gradient 0 and magnitude 0, but
// F(2, 5) forms it as a cancelling combination of the 36 transformed sums (Gᵀ's ⅙ and ¹⁄₂₄ are
// not exact in binary), so its error is relative to the kernel's largest magnitude: n =
// 16·(N·oH·oW + 36) times the largest mag of the kernel's 25 taps (measured: below 70·2^-24·that).
TEST_CASE("kernels: 3x3 and 5x5 convolution by F(2x2, r x r) vs the direct reference, at awkward sizes") {
    struct Case {
        std::int64_t n, c, o, h, w, pad, k;
    };
    // Odd and non-square planes (tiles past the edge), pads 0-2, a 1x1 input, blocks of several
    // images with a partial last one (9 tiles per image: 7 per block), planes cut into several
    // blocks of tile rows (64 channels: 64 tiles per block) with a partial last block; 12 blocks
    // (3 images of 15x15 tiles, 4 tile rows per block), so that the weight gradient's 8 groups of
    // blocks hold one or two blocks each. For 5x5 the same kinds, and padded rows that the
    // horizontal step reads 4 floats past. The products (winograd_product.hpp) at every row
    // remainder (5, 3, 2, 7, 9, 21 outputs), with C past gemm_kc (260: two slices), and ResNet8's
    // 16 -> 16 on 28x28.
    const Case cases[] = {{2, 3, 5, 7, 9, 1, 3},     {1, 4, 3, 6, 5, 0, 3},     {3, 2, 2, 3, 3, 2, 3},
                          {2, 5, 7, 1, 1, 1, 3},     {9, 48, 64, 6, 6, 1, 3},   {2, 48, 64, 13, 11, 1, 3},
                          {1, 64, 64, 17, 19, 1, 3}, {1, 64, 80, 33, 20, 0, 3}, {3, 64, 48, 30, 30, 1, 3},
                          {2, 3, 5, 7, 9, 1, 5},     {1, 4, 3, 6, 5, 0, 5},     {3, 2, 2, 5, 5, 2, 5},
                          {2, 5, 7, 1, 1, 2, 5},     {9, 24, 48, 6, 6, 2, 5},   {2, 40, 80, 13, 11, 2, 5},
                          {1, 64, 64, 17, 19, 2, 5}, {3, 48, 24, 30, 30, 2, 5}, {4, 128, 128, 8, 8, 2, 5},
                          {2, 16, 16, 28, 28, 1, 3}, {2, 260, 9, 6, 5, 1, 3},   {1, 16, 21, 14, 14, 2, 5}};
    Generator gen(61);
    for (const Case& t : cases) {
        CAPTURE(t.k);
        CAPTURE(t.c);
        CAPTURE(t.o);
        CAPTURE(t.h);
        CAPTURE(t.w);
        const auto w = kernels::make_window(t.h, t.w, t.k, t.k, 1, 1, t.pad, t.pad);
        REQUIRE(kernels::detail::winograd_window(w));
        const std::int64_t len = w.out_plane(), kk = t.k * t.k, positions = (t.k + 1) * (t.k + 1);
        REQUIRE(kernels::detail::winograd_positions(t.k) == positions);
        const FV x = random_vec(t.n * t.c * w.in_plane(), gen), wt = random_vec(t.o * t.c * kk, gen);
        FV u(static_cast<std::size_t>(positions * t.o * t.c));
        kernels::detail::winograd_weights(u.data(), wt.data(), t.o, t.c, t.k);
        FV y(static_cast<std::size_t>(t.n * t.o * len), std::numeric_limits<float>::quiet_NaN());
        kernels::detail::conv_winograd(u.data(), t.o, t.c, x.data(), t.c * w.in_plane(), t.n, w,
                                       [&](std::int64_t n, std::int64_t o, std::int64_t row0, std::int64_t rows,
                                           const float* src) {
                                           std::copy(src, src + rows * w.out_w,
                                                     y.begin() + (n * t.o + o) * len + row0 * w.out_w);
                                       });
        FV y_ref(y.size()), y_mag(y.size());
        kernels::ref::conv2d_forward(y_ref.data(), x.data(), wt.data(), nullptr, t.n, t.c, t.o, w);
        kernels::ref::conv2d_forward(y_mag.data(), abs_of(x).data(), abs_of(wt).data(), nullptr, t.n, t.c, t.o, w);
        check_within_sum_bound(y, y_ref, y_mag, 16.0 * static_cast<double>(t.c * kk + positions), "winograd");

        // The weight gradient by F(2x2, r x r) (conv_winograd_weight_grad), against the reference
        // with the same kind of bound over its N·oH·oW-term sums (per kernel for r = 5).
        const FV go = random_vec(t.n * t.o * len, gen);
        FV gw(static_cast<std::size_t>(t.o * t.c * kk), std::numeric_limits<float>::quiet_NaN());
        kernels::detail::conv_winograd_weight_grad(gw.data(), go.data(), t.o * len, x.data(), t.c * w.in_plane(), t.n,
                                                   t.o, t.c, w);
        FV gw_ref(gw.size()), gw_mag(gw.size()), gi_ref(x.size()), gb_ref(static_cast<std::size_t>(t.o));
        kernels::ref::conv2d_backward(gi_ref.data(), gw_ref.data(), gb_ref.data(), go.data(), x.data(), wt.data(), t.n,
                                      t.c, t.o, w);
        kernels::ref::conv2d_backward(gi_ref.data(), gw_mag.data(), gb_ref.data(), abs_of(go).data(), abs_of(x).data(),
                                      abs_of(wt).data(), t.n, t.c, t.o, w);
        if (t.k == 5) gw_mag = kernel_max_of(gw_mag, kk);
        check_within_sum_bound(gw, gw_ref, gw_mag, 16.0 * static_cast<double>(t.n * len + positions), "winograd dW");
    }
}

TEST_CASE("kernels: conv2d takes F(2x2, r x r) where winograd_pays, with its epilogue, the same bits for any thread count") {
    const auto same = [](std::int64_t hw) { return kernels::make_window(hw, hw, 3, 3, 1, 1, 1, 1); };
    const auto same5 = [](std::int64_t hw) { return kernels::make_window(hw, hw, 5, 5, 1, 1, 2, 2); };
    // The rule (x86 SIMD builds): VGG's layers yes, a first layer no, nor a small batch of small
    // planes (fewer than 512 tiles, or 256 in an image). The forward's rule on AVX-512 also takes
    // layers of 16 to 48 channels (ResNet8's 16 -> 16 on 28x28 and 32 -> 32 on 14x14, not its
    // 64 -> 64 on 7x7, whose tiles overhang); the weight gradient's, and AVX2's, do not.
    namespace d = kernels::detail;
    const bool rule = d::has_winograd_rule, narrow = d::has_winograd_rule && kernels::simd_width >= 16;
    CHECK(d::winograd_pays(64, 64, same(32), 64) == rule);
    CHECK(d::winograd_pays(128, 128, same(16), 64) == rule);
    CHECK(d::winograd_pays(256, 256, same(8), 64) == rule);
    CHECK_FALSE(d::winograd_pays(256, 256, same(8), 16));
    CHECK(d::winograd_pays(256, 256, same(8), 32) == rule);
    CHECK(d::winograd_pays(64, 64, same(32), 1) == rule);
    CHECK(d::winograd_pays(96, 48, same(20), 64) == rule);
    CHECK(d::winograd_pays(48, 48, same(14), 64) == narrow);
    CHECK(d::winograd_pays(16, 16, same(28), 64) == narrow);
    CHECK(d::winograd_pays(32, 32, same(14), 64) == narrow);
    CHECK(d::winograd_pays(16, 32, same(12), 64) == narrow);
    CHECK(d::winograd_pays(32, 64, kernels::make_window(26, 26, 3, 3, 1, 1, 0, 0), 64) == narrow);
    CHECK_FALSE(d::winograd_pays(16, 16, same(12), 64));  // (16 -> 16 from 13x13)
    CHECK_FALSE(d::winograd_pays(15, 32, same(28), 64));
    CHECK_FALSE(d::winograd_pays(16, 16, same(28), 1));   // 196 tiles
    CHECK_FALSE(d::winograd_pays(64, 64, same(7), 64));
    CHECK_FALSE(d::winograd_pays(3, 64, same(32), 64));
    CHECK_FALSE(d::winograd_pays(64, 64, kernels::make_window(16, 16, 3, 3, 2, 2, 1, 1), 64));
    CHECK(d::weight_grad_by_winograd(64, 64, same(32), 64) == rule);
    CHECK(d::weight_grad_by_winograd(96, 48, same(20), 64) == rule);
    CHECK_FALSE(d::weight_grad_by_winograd(48, 48, same(14), 64));
    CHECK_FALSE(d::weight_grad_by_winograd(16, 16, same(28), 64));
    CHECK(d::input_grad_by_winograd(16, 16, same(28), 64) == narrow);
    // 5x5 from 24 channels on both sides and 72 together (the weight gradient; the forward on
    // AVX-512 from 16): 40 -> 80 on 12x12 and 24 -> 48 on 24x24 yes; the seed net's 10 -> 20 on
    // 12x12 (unpadded) and 64 -> 64 on 8x8 no; never a dilated or strided 5x5.
    CHECK(d::winograd_pays(40, 80, same5(12), 64) == rule);
    CHECK(d::winograd_pays(80, 40, same5(12), 64) == rule);
    CHECK(d::winograd_pays(24, 48, same5(24), 64) == rule);
    CHECK_FALSE(d::winograd_pays(10, 20, kernels::make_window(12, 12, 5, 5, 1, 1, 0, 0), 64));
    CHECK(d::winograd_pays(16, 32, same5(28), 64) == narrow);
    CHECK(d::winograd_pays(32, 32, same5(14), 64) == narrow);
    CHECK_FALSE(d::weight_grad_by_winograd(16, 32, same5(28), 64));
    CHECK_FALSE(d::weight_grad_by_winograd(32, 32, same5(14), 64));
    CHECK(d::weight_grad_by_winograd(24, 48, same5(24), 64) == rule);
    CHECK_FALSE(d::winograd_pays(64, 64, same5(8), 64));
    CHECK_FALSE(d::winograd_pays(64, 64, kernels::make_window(16, 16, 5, 5, 2, 2, 2, 2), 64));
    CHECK_FALSE(d::winograd_pays(64, 64, kernels::make_window(16, 16, 5, 5, 1, 1, 4, 4, 2, 2), 64));

    // 64 -> 64 3x3 and 40 -> 80 5x5 on 13x13 (odd: the last tiles overhang), batches 11 and 15
    // (at least 512 tiles), against the reference; with an epilogue against conv2d_forward then
    // ConvEpilogue::apply, bit for bit; at 1 to 3 threads.
    struct Case {
        std::int64_t k, c, o, n;
    };
    for (const Case& t : {Case{3, 64, 64, 11}, Case{5, 40, 80, 15}}) {
        CAPTURE(t.k);
        const std::int64_t n = t.n, c = t.c, o = t.o, hw = 13, kk = t.k * t.k;
        const auto window = [&](std::int64_t side) { return t.k == 5 ? same5(side) : same(side); };
        const auto w = window(hw);
        const std::int64_t len = w.out_plane();
        REQUIRE(kernels::detail::winograd_pays(c, o, w, n) == kernels::detail::has_winograd_rule);
        Generator gen(67);
        const FV x = random_vec(n * c * w.in_plane(), gen), wt = random_vec(o * c * kk, gen), b = random_vec(o, gen);
        const FV scale = random_vec(o, gen), shift = random_vec(o, gen), res = random_vec(n * o * len, gen);
        const int saved = get_num_threads();
        set_num_threads(1);
        FV y(static_cast<std::size_t>(n * o * len)), y_ref(y.size()), y_mag(y.size());
        kernels::conv2d_forward(y.data(), x.data(), wt.data(), b.data(), n, c, o, w);
        kernels::ref::conv2d_forward(y_ref.data(), x.data(), wt.data(), b.data(), n, c, o, w);
        kernels::ref::conv2d_forward(y_mag.data(), abs_of(x).data(), abs_of(wt).data(), abs_of(b).data(), n, c, o, w);
        const double positions = static_cast<double>(kernels::detail::winograd_positions(t.k));
        check_within_sum_bound(y, y_ref, y_mag, 16.0 * (static_cast<double>(c * kk) + positions), "forward");
        kernels::ConvEpilogue epi;
        epi.scale = scale.data();
        epi.shift = shift.data();
        epi.residual = res.data();
        epi.relu = true;
        FV applied = y;
        kernels::detail::apply_conv_epilogue(applied.data(), n, o, len, epi);
        FV fused(y.size());
        kernels::conv2d_forward_fused(fused.data(), x.data(), wt.data(), b.data(), n, c, o, w, 1, epi);
        CHECK(bit_equal(fused, applied));
        // With a pooled epilogue (each block's rows pooled on their own): 13x13 at batch 11 (blocks
        // of two images, the last row dropped by the pool), 34x34 and 33x33 at batch 1 (blocks of 3
        // tile rows: 6 rows, the last block 4 rows, or 3 of which the pool keeps 2), relu before and
        // after the pool.
        for (std::int64_t phw : {13, 34, 33}) {
            CAPTURE(phw);
            const auto pw = window(phw);
            const std::int64_t plen = pw.out_plane(), pn = phw == 13 ? n : 1;
            REQUIRE(kernels::detail::winograd_pays(c, o, pw, pn) == kernels::detail::has_winograd_rule);
            const FV px = random_vec(pn * c * pw.in_plane(), gen);
            FV py(static_cast<std::size_t>(pn * o * plen));
            kernels::conv2d_forward(py.data(), px.data(), wt.data(), b.data(), pn, c, o, pw);
            const auto pool = kernels::make_window(pw.out_h, pw.out_w, 2, 2, 2, 2, 0, 0);
            for (bool before : {true, false}) {
                kernels::ConvEpilogue pe;
                pe.max_pool2x2 = true;
                pe.relu = true;
                pe.relu_before_pool = before;
                FV expect(static_cast<std::size_t>(pn * o * pool.out_plane())), plane(static_cast<std::size_t>(plen));
                for (std::int64_t q = 0; q < pn * o; ++q) {
                    std::copy(py.begin() + q * plen, py.begin() + (q + 1) * plen, plane.begin());
                    if (before) kernels::relu_forward(plane.data(), plane.data(), plen);
                    kernels::detail::pool_finished_plane(expect.data() + q * pool.out_plane(), plane.data(), pool, !before);
                }
                FV pooled(expect.size(), 7.0f);
                kernels::conv2d_forward_fused(pooled.data(), px.data(), wt.data(), b.data(), pn, c, o, pw, 1, pe);
                CHECK(bit_equal(pooled, expect));
            }
        }
        // The input gradient: the flipped convolution, by F(2x2, 3x3) where input_grad_by_winograd.
        CHECK(kernels::detail::input_grad_by_winograd(c, o, w, n) == kernels::detail::has_winograd_rule);
        const FV go = random_vec(n * o * len, gen);
        FV gi(x.size()), gi_ref(x.size()), gi_mag(x.size()), gw_ref(wt.size()), gb_ref(b.size());
        kernels::conv2d_backward(gi.data(), nullptr, nullptr, go.data(), x.data(), wt.data(), n, c, o, w);
        kernels::ref::conv2d_backward(gi_ref.data(), gw_ref.data(), gb_ref.data(), go.data(), x.data(), wt.data(), n, c,
                                      o, w);
        kernels::ref::conv2d_backward(gi_mag.data(), gw_ref.data(), gb_ref.data(), abs_of(go).data(), abs_of(x).data(),
                                      abs_of(wt).data(), n, c, o, w);
        check_within_sum_bound(gi, gi_ref, gi_mag, 16.0 * (static_cast<double>(o * kk) + positions), "grad_input");
        // The weight gradient, where weight_grad_by_winograd, through conv2d_backward (bias too).
        CHECK(kernels::detail::weight_grad_by_winograd(c, o, w, n) == kernels::detail::has_winograd_rule);
        FV gw(wt.size()), gb(b.size()), gw_mag(wt.size());
        kernels::conv2d_backward(nullptr, gw.data(), gb.data(), go.data(), x.data(), wt.data(), n, c, o, w);
        kernels::ref::conv2d_backward(gi_mag.data(), gw_ref.data(), gb_ref.data(), go.data(), x.data(), wt.data(), n, c,
                                      o, w);
        FV gb_mag(b.size());
        kernels::ref::conv2d_backward(gi_mag.data(), gw_mag.data(), gb_mag.data(), abs_of(go).data(), abs_of(x).data(),
                                      abs_of(wt).data(), n, c, o, w);
        if (t.k == 5) gw_mag = kernel_max_of(gw_mag, kk);  // per kernel: see the bound above
        check_within_sum_bound(gw, gw_ref, gw_mag, 16.0 * (static_cast<double>(n * len) + positions), "grad_weight");
        check_within_sum_bound(gb, gb_ref, gb_mag, static_cast<double>(n * len + 2), "grad_bias");
        for (int threads : {2, 3}) {
            CAPTURE(threads);
            set_num_threads(threads);
            FV y2(y.size()), fused2(y.size()), gi2(gi.size()), gw2(gw.size()), gb2(gb.size());
            kernels::conv2d_forward(y2.data(), x.data(), wt.data(), b.data(), n, c, o, w);
            kernels::conv2d_forward_fused(fused2.data(), x.data(), wt.data(), b.data(), n, c, o, w, 1, epi);
            kernels::conv2d_backward(gi2.data(), nullptr, nullptr, go.data(), x.data(), wt.data(), n, c, o, w);
            kernels::conv2d_backward(nullptr, gw2.data(), gb2.data(), go.data(), x.data(), wt.data(), n, c, o, w);
            CHECK(bit_equal(y2, y));
            CHECK(bit_equal(fused2, fused));
            CHECK(bit_equal(gi2, gi));
            CHECK(bit_equal(gw2, gw));
            CHECK(bit_equal(gb2, gb));
        }
        set_num_threads(saved);
    }
}

TEST_CASE("kernels: conv2d_forward_fused's epilogue on the direct and GEMM paths equals conv2d_forward, then apply") {
    // Where the product is not the lanes path's, conv2d_forward_fused copies it out with the bias
    // and the epilogue in one pass (finish_rows, from pitched rows on the direct path, from shifted
    // planes' or the GEMM's whole planes otherwise). Each value gets the operations of the bias
    // add and then of ConvEpilogue::apply, so the result must equal the plain convolution with
    // apply run on each plane afterwards, bit for bit, with and without a bias, for each
    // epilogue (scale and shift, the residual in both operand orders, relu, their mixes). The
    // paths differ by ISA, so a case the lanes product takes (tested above) is skipped here, and
    // the cases must take each of the three paths at least once.
    struct Case {
        std::int64_t n, c, o, h, w, k, pad;
    };
    const std::vector<Case> cases = {
        {2, 16, 16, 28, 28, 3, 1},  // direct, pitched rows of 28
        {3, 10, 20, 12, 12, 5, 0},  // direct over shifted planes (the seed's conv2; AVX2: lanes)
        {3, 4, 20, 12, 12, 5, 0},   // direct over shifted planes, K = 100
        {2, 1, 10, 28, 28, 5, 0},   // direct, one input channel
        {2, 128, 256, 8, 8, 3, 1},  // a GEMM (im2col or packed from the images; AVX2: lanes)
        {1, 320, 64, 4, 4, 3, 1},   // a GEMM on AVX2 (K = 2880)
        {2, 5, 7, 9, 11, 3, 1},     // odd sizes: rows shorter than a vector
    };
    bool took_pitched = false, took_shifted = false, took_gemm = false;
    Generator gen(41);
    for (const Case& t : cases) {
        CAPTURE(t.c);
        CAPTURE(t.o);
        CAPTURE(t.h);
        const auto w = kernels::make_window(t.h, t.w, t.k, t.k, 1, 1, t.pad, t.pad);
        const std::int64_t ckk = t.c * t.k * t.k, len = w.out_plane();
        const std::int64_t chunk = kernels::detail::conv_chunk(ckk, len);
        const bool direct = kernels::detail::direct_conv_pays(t.o, ckk, w, chunk);
        if (kernels::detail::lanes_conv_pays(t.o, ckk, w, direct)) continue;
        const bool shifted = direct && kernels::detail::shifted_columns_pay(t.o, ckk, w);
        (shifted ? took_shifted : direct ? took_pitched : took_gemm) = true;
        const FV x = random_vec(t.n * t.c * w.in_plane(), gen), wt = random_vec(t.o * ckk, gen);
        const FV b = random_vec(t.o, gen), scale = random_vec(t.o, gen), shift = random_vec(t.o, gen);
        const FV res = random_vec(t.n * t.o * len, gen);
        for (int with_bias = 0; with_bias < 2; ++with_bias)
            for (int e = 0; e < 8; ++e) {
                CAPTURE(with_bias);
                CAPTURE(e);
                kernels::ConvEpilogue epi;
                if (e & 1) epi.scale = scale.data(), epi.shift = shift.data();
                if (e & 2) epi.residual = res.data(), epi.residual_first = with_bias == 1;
                epi.relu = (e & 4) != 0;
                const float* bias = with_bias ? b.data() : nullptr;
                FV expect(static_cast<std::size_t>(t.n * t.o * len), -7.0f);
                kernels::conv2d_forward(expect.data(), x.data(), wt.data(), bias, t.n, t.c, t.o, w, 1);
                for (std::int64_t p = 0; p < t.n * t.o; ++p) epi.apply(expect.data() + p * len, p, p % t.o, len);
                FV y(expect.size(), 7.0f);
                kernels::conv2d_forward_fused(y.data(), x.data(), wt.data(), bias, t.n, t.c, t.o, w, 1, epi);
                CHECK(bit_equal(y, expect));
            }
    }
    CHECK(took_pitched);
    CHECK(took_shifted);
    CHECK(took_gemm);
}

TEST_CASE("kernels: conv2d_backward's input gradient computed as a convolution") {
    // Where detail::input_grad_as_conv_pays ("same" stride-1 windows, at least
    // input_grad_as_conv_min_channels input and at most 64 output channels per group, or more
    // output channels with at least 32 input channels: on AVX2 no more than the inputs), grad_in
    // is conv2d_forward of grad_out with the flipped, channel-swapped weights instead of
    // Wᵀ·grad_out + col2im: a different order of additions,
    // so it is checked against the double-precision reference within the float32 bound of
    // O/groups·kH·kW terms, with groups, dilation and 5x5 kernels. Which cases take the path
    // depends on the ISA's panel width; the 28x28 ones take it on every ISA.
    struct Case {
        std::int64_t n, c, o, h, w, k, pad, dil, groups;
    };
    const std::vector<Case> cases = {
        {2, 16, 16, 28, 28, 3, 1, 1, 1},   // ResNet8's first block
        {3, 32, 24, 28, 28, 3, 1, 1, 2},   // two groups of 16 input channels
        {2, 16, 8, 28, 28, 3, 2, 2, 1},    // dilation 2
        {2, 16, 20, 28, 28, 5, 2, 1, 1},   // 5x5
        {3, 32, 32, 7, 7, 3, 1, 1, 1},     // a 7x7 plane
        {2, 24, 40, 13, 11, 3, 1, 1, 1},   // odd sizes
        {2, 10, 20, 12, 12, 3, 1, 1, 1},   // few input channels (the path on AVX-512 only)
        {3, 2, 8, 9, 10, 3, 1, 1, 1},      // two input channels, odd plane
        {2, 6, 12, 11, 11, 5, 2, 1, 3},    // three groups of 2 input channels, 5x5
        {2, 40, 72, 9, 9, 3, 1, 1, 1},     // more than 64 output channels (the path on AVX-512 only)
        {2, 32, 96, 16, 16, 3, 1, 1, 1},   // the same on a plane of 256 floats (the direct path's)
        {2, 96, 80, 10, 10, 3, 1, 1, 1},   // more than 64 output channels, fewer than the inputs (native SIMD)
    };
    Generator gen(31);
    int took = 0;
    for (const Case& t : cases) {
        CAPTURE(t.c);
        CAPTURE(t.h);
        const auto w = kernels::make_window(t.h, t.w, t.k, t.k, 1, 1, t.pad, t.pad, t.dil, t.dil);
        REQUIRE(w.out_plane() == w.in_plane());
        const bool path = kernels::detail::input_grad_as_conv_pays(t.c / t.groups, t.o / t.groups, w);
        took += path ? 1 : 0;
        const std::int64_t ckk = t.c / t.groups * t.k * t.k;
        const FV x = random_vec(t.n * t.c * w.in_plane(), gen), wt = random_vec(t.o * ckk, gen);
        const FV go = random_vec(t.n * t.o * w.out_plane(), gen);
        FV gi(x.size(), 5.0f), gi_ref(x.size()), gi_mag(x.size());
        kernels::conv2d_backward(gi.data(), nullptr, nullptr, go.data(), x.data(), wt.data(), t.n, t.c, t.o, w,
                                 t.groups);
        kernels::ref::conv2d_backward(gi_ref.data(), nullptr, nullptr, go.data(), x.data(), wt.data(), t.n, t.c, t.o,
                                      w, t.groups);
        kernels::ref::conv2d_backward(gi_mag.data(), nullptr, nullptr, abs_of(go).data(), x.data(),
                                      abs_of(wt).data(), t.n, t.c, t.o, w, t.groups);
        check_within_sum_bound(gi, gi_ref, gi_mag, static_cast<double>(t.o / t.groups * t.k * t.k + 1), "grad_input");
        // With the other gradients requested too, grad_in is the same bit for bit.
        FV gi2(x.size(), -5.0f), gw(wt.size()), gb(static_cast<std::size_t>(t.o));
        kernels::conv2d_backward(gi2.data(), gw.data(), gb.data(), go.data(), x.data(), wt.data(), t.n, t.c, t.o, w,
                                 t.groups);
        CHECK(bit_equal(gi2, gi));
    }
    CHECK(took >= 2);
    if (kernels::detail::input_grad_as_conv_min_channels < 10) CHECK(took >= 5);  // the few-channel cases too
    // More than 64 output channels: with 32 or more input channels and, on AVX-512, at most three
    // times as many outputs (planes of a multiple of 256 floats included) where the flipped
    // convolution takes its direct path; on AVX2 at most as many outputs as inputs, on planes
    // that are not a multiple of 256 floats. 256 -> 128 on 8x8 is AVX2's alone: on AVX-512 the
    // forward would run it on the small-N GEMM, where the two ways measured the same speed.
    const auto same = [](std::int64_t h) { return kernels::make_window(h, h, 3, 3, 1, 1, 1, 1); };
    CHECK(kernels::detail::input_grad_as_conv_pays(96, 96, same(10)) == (kernels::simd_width >= 8));
    CHECK(kernels::detail::input_grad_as_conv_pays(256, 128, same(8)) == (kernels::simd_width == 8));
    CHECK(kernels::detail::input_grad_as_conv_pays(128, 128, same(32)) == (kernels::simd_width >= 16));
    CHECK(kernels::detail::input_grad_as_conv_pays(40, 72, same(9)) == (kernels::simd_width >= 16));
    CHECK_FALSE(kernels::detail::input_grad_as_conv_pays(16, 128, same(14)));
    CHECK_FALSE(kernels::detail::input_grad_as_conv_pays(32, 128, same(14)));
    CHECK(kernels::detail::input_grad_as_conv_pays(64, 128, same(16)) == (kernels::simd_width >= 16));
}

TEST_CASE("kernels: conv2d_backward's weight gradient read from the images in place") {
    // Where detail::weight_grad_in_place_pays (stride-1 windows with long rows, native SIMD
    // builds), dW is a dot product per element over each image's padded planes, the output
    // gradient's rows widened to the padded pitch by zeros (kernels/weight_grad.hpp), summed over
    // chunks of images: a different order from im2col + sgemm, so it is checked against the
    // double-precision reference within the float32 bound for its number of products (every
    // image's widened run, zero products included). The cases cover padding and none, groups,
    // output channels and taps that are not whole blocks, a 5×5 kernel, non-square planes and
    // batches that end in a partial chunk; and the result must not depend on the thread count.
    struct Case {
        std::int64_t n, c, o, h, w, k, pad, groups;
    };
    const std::vector<Case> cases = {
        {3, 16, 12, 28, 28, 3, 1, 1},  // 16 -> 12 on 28x28; chunks of 2 + 1 images
        {2, 8, 12, 32, 32, 3, 1, 2},   // two groups of 6 output channels
        {3, 3, 10, 30, 26, 5, 2, 1},   // 5x5, 75 taps, non-square
        {2, 4, 5, 28, 28, 3, 0, 1},    // no padding
        {5, 2, 7, 24, 24, 5, 0, 1},    // 50 taps, 5 images
    };
    const int saved = get_num_threads();
    Generator gen(37);
    int took = 0;
    for (const Case& t : cases) {
        CAPTURE(t.c);
        CAPTURE(t.h);
        CAPTURE(t.groups);
        const auto w = kernels::make_window(t.h, t.w, t.k, t.k, 1, 1, t.pad, t.pad);
        const std::int64_t ckk = t.c / t.groups * t.k * t.k;
        took += kernels::detail::weight_grad_in_place_pays(t.c / t.groups, w) &&
                        !kernels::detail::weight_grad_lanes_pays(t.c, t.o, t.groups, w)
                    ? 1
                    : 0;
        const FV x = random_vec(t.n * t.c * w.in_plane(), gen), wt = random_vec(t.o * ckk, gen);
        const FV go = random_vec(t.n * t.o * w.out_plane(), gen);
        FV gw(wt.size(), 5.0f), gw_ref(wt.size()), gw_mag(wt.size());
        set_num_threads(1);
        kernels::conv2d_backward(nullptr, gw.data(), nullptr, go.data(), x.data(), wt.data(), t.n, t.c, t.o, w,
                                 t.groups);
        kernels::ref::conv2d_backward(nullptr, gw_ref.data(), nullptr, go.data(), x.data(), wt.data(), t.n, t.c, t.o,
                                      w, t.groups);
        kernels::ref::conv2d_backward(nullptr, gw_mag.data(), nullptr, abs_of(go).data(), abs_of(x).data(), wt.data(),
                                      t.n, t.c, t.o, w, t.groups);
        const std::int64_t run = (w.out_h - 1) * (t.w + 2 * t.pad) + w.out_w + 16;  // padded to whole vectors
        check_within_sum_bound(gw, gw_ref, gw_mag, static_cast<double>(t.n * run + 1), "grad_weight");
        // With the input and bias gradients requested too, and on 3 threads: the same bits.
        FV gw3(wt.size(), -5.0f), gi(x.size()), gb(static_cast<std::size_t>(t.o));
        set_num_threads(3);
        kernels::conv2d_backward(gi.data(), gw3.data(), gb.data(), go.data(), x.data(), wt.data(), t.n, t.c, t.o, w,
                                 t.groups);
        CHECK(bit_equal(gw3, gw));
    }
    set_num_threads(saved);
#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM)
    CHECK(took == static_cast<int>(cases.size()));
#else
    CHECK(took == 0);  // the scalar and WebAssembly builds keep im2col + sgemm
#endif
}

// conv2d_backward's weight gradient of one window (groups 1) from random inputs, checked against
// the double-precision reference within the float32 bound of `terms` products per element, and
// on 3 threads, with the input and bias gradients requested too, for the same bits. Returns the
// inputs and the 1-thread gradient for further checks; leaves 1 thread set.
struct WeightGradRun {
    FV x, go, gw;
};
WeightGradRun check_weight_grad(std::int64_t n, std::int64_t c, std::int64_t o, const kernels::Window2d& w,
                                Generator& gen, double terms) {
    const std::int64_t ckk = c * w.kernel_h * w.kernel_w;
    WeightGradRun r;
    r.x = random_vec(n * c * w.in_plane(), gen);
    const FV wt = random_vec(o * ckk, gen);
    r.go = random_vec(n * o * w.out_plane(), gen);
    r.gw.assign(wt.size(), 5.0f);
    FV gw_ref(wt.size()), gw_mag(wt.size());
    set_num_threads(1);
    kernels::conv2d_backward(nullptr, r.gw.data(), nullptr, r.go.data(), r.x.data(), wt.data(), n, c, o, w);
    kernels::ref::conv2d_backward(nullptr, gw_ref.data(), nullptr, r.go.data(), r.x.data(), wt.data(), n, c, o, w);
    kernels::ref::conv2d_backward(nullptr, gw_mag.data(), nullptr, abs_of(r.go).data(), abs_of(r.x).data(), wt.data(),
                                  n, c, o, w);
    check_within_sum_bound(r.gw, gw_ref, gw_mag, terms, "grad_weight");
    FV gw3(wt.size(), -5.0f), gi(r.x.size()), gb(static_cast<std::size_t>(o));
    set_num_threads(3);
    kernels::conv2d_backward(gi.data(), gw3.data(), gb.data(), r.go.data(), r.x.data(), wt.data(), n, c, o, w);
    CHECK(bit_equal(gw3, r.gw));
    set_num_threads(1);
    return r;
}

TEST_CASE("kernels: conv2d_backward's weight gradient with the output channels in the lanes") {
    // Where detail::weight_grad_lanes_pays (AVX-512 and AVX2 builds; 3- or 5-wide kernels, one
    // group, more than one input channel (AVX2: 12 or more), output channels filling 4/5 of their
    // lanes), dW keeps 16 output channels per vector (8 on AVX2) and sums every pixel of a
    // chunk's images in raster order (kernels/weight_grad_lanes.hpp): checked against the
    // double-precision reference within the float32 bound for its number of products (the
    // chunk's pixels), and on 3 threads, with the input and bias gradients requested too, for the
    // same bits. The cases: a last block of one vector (40 channels: 32 + 16 lanes, 8 of them
    // empty; on AVX2 16 + 16 + 8), strides 2 and 3 with and without padding, a 5x5 kernel split
    // into blocks of 2 + 2 + 1 rows (AVX2: 5 blocks of 1, or of 2 + 2 + 1 for the last vector),
    // a 3-high 5-wide kernel, non-square planes, and 17 images (chunks of 4: the last one of 1).
    struct Case {
        std::int64_t n, c, o, h, w, kh, kw, stride, pad;
    };
    const std::vector<Case> cases = {
        {3, 13, 40, 11, 9, 3, 3, 1, 1},   // 32 + 16 lanes
        {2, 12, 16, 7, 8, 3, 3, 2, 0},    // stride 2, no padding
        {5, 12, 48, 13, 10, 5, 5, 1, 2},  // 5x5: blocks of 2 + 2 + 1 kernel rows
        {4, 12, 64, 11, 9, 5, 5, 3, 1},   // stride 3
        {17, 12, 32, 6, 6, 3, 3, 1, 1},   // chunks of 4 images
        {2, 14, 16, 9, 12, 3, 5, 2, 1},   // a 3-high, 5-wide kernel
    };
    const int saved = get_num_threads();
    Generator gen(53);
    int took = 0;
    for (const Case& t : cases) {
        CAPTURE(t.c);
        CAPTURE(t.o);
        CAPTURE(t.kw);
        CAPTURE(t.stride);
        const auto w = kernels::make_window(t.h, t.w, t.kh, t.kw, t.stride, t.stride, t.pad, t.pad);
        took += kernels::detail::weight_grad_lanes_pays(t.c, t.o, 1, w) ? 1 : 0;
        check_weight_grad(t.n, t.c, t.o, w, gen, static_cast<double>(t.n * w.out_plane() + 1));
    }
    set_num_threads(saved);
    CHECK(took == (kernels::detail::has_weight_grad_lanes ? static_cast<int>(cases.size()) : 0));
    // Not taken: the seed net's 10 -> 20 (on AVX-512 20 fill less than 4/5 of their lanes; on
    // AVX2 10 input channels are fewer than 12), one input channel, two groups, a dilated or
    // 7-wide window.
    const auto w3 = kernels::make_window(12, 12, 5, 5, 1, 1, 0, 0);
    CHECK_FALSE(kernels::detail::weight_grad_lanes_pays(10, 20, 1, w3));
    CHECK_FALSE(kernels::detail::weight_grad_lanes_pays(1, 32, 1, w3));
    CHECK_FALSE(kernels::detail::weight_grad_lanes_pays(8, 32, 2, w3));
    CHECK_FALSE(kernels::detail::weight_grad_lanes_pays(8, 32, 1, kernels::make_window(12, 12, 3, 3, 1, 1, 0, 0, 2, 2)));
    CHECK_FALSE(kernels::detail::weight_grad_lanes_pays(8, 32, 1, kernels::make_window(12, 12, 7, 7, 1, 1, 3, 3)));
}

#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM)
// Whether sgemm sums each element of that path's product G @ colᵀ (M = O, N = C·kH·kW, K = a
// chunk's columns) as one chain of fused multiply-adds over K ascending from zero, for the full
// chunks and the last one: its small-N paths do (kernels/gemm.hpp), and that is the lanes
// kernel's order too, so there the two must give the same bits.
bool weight_grad_gemm_is_one_chain(std::int64_t batch, std::int64_t out_channels, std::int64_t ckk, std::int64_t len) {
    namespace d = kernels::detail;
    const std::int64_t chunk = std::min(batch, d::conv_chunk(ckk, len)), last = batch - (batch - 1) / chunk * chunk;
    const auto chain = [&](std::int64_t images) {
        const d::GemmPath p = d::gemm_path(false, true, out_channels, ckk, images * len);
        return p == d::GemmPath::small_n || p == d::GemmPath::small_n_transposed;
    };
    return chain(chunk) && chain(last);
}

// The im2col path's weight gradient spelled out, as conv2d_backward computed it before the lanes
// kernel took its windows: per chunk of conv_chunk images, G = their output gradients side by
// side and col = their im2col side by side, the chunk's part = G @ colᵀ by sgemm, and the parts
// added in chunk order onto zeros.
FV im2col_weight_grad(const FV& go, const FV& x, std::int64_t n, std::int64_t c, std::int64_t o,
                      const kernels::Window2d& w) {
    const std::int64_t ckk = c * w.kernel_h * w.kernel_w, len = w.out_plane();
    const std::int64_t chunk = kernels::detail::conv_chunk(ckk, len);
    FV gw(static_cast<std::size_t>(o * ckk), 0.0f), part(gw.size());
    for (std::int64_t n0 = 0; n0 < n; n0 += chunk) {
        const std::int64_t nb = std::min(chunk, n - n0), cols = nb * len;
        FV g(static_cast<std::size_t>(o * cols)), col(static_cast<std::size_t>(ckk * cols));
        for (std::int64_t i = 0; i < nb; ++i) {
            for (std::int64_t k = 0; k < o; ++k)
                std::copy_n(go.data() + ((n0 + i) * o + k) * len, len, g.data() + k * cols + i * len);
            kernels::im2col(col.data() + i * len, x.data() + (n0 + i) * c * w.in_plane(), c, w, cols);
        }
        kernels::sgemm(false, true, o, ckk, cols, 1.0f, g.data(), cols, col.data(), cols, 0.0f, part.data(), ckk);
        for (std::size_t i = 0; i < gw.size(); ++i) gw[i] += part[i];
    }
    return gw;
}
#endif

TEST_CASE("kernels: conv2d_backward's weight gradient in the lanes on the im2col path's chunks") {
    // Where neither detail::weight_grad_lanes_pays nor detail::weight_grad_in_place_pays but
    // the lanes kernel fits (AVX-512 builds only: has_weight_grad_lanes_as_gemm; 3- or 5-wide kernels, one group, more than one input
    // channel: small planes, strided windows, channel counts that fill few lanes), dW is the
    // lanes kernel on the im2col path's chunks. Where that path's sgemm summed each element in
    // one chain (weight_grad_gemm_is_one_chain above: the seed net's 5x5 10 -> 20 layer on
    // 12x12 planes, here with 9 images, chunks of 8 + 1), the result must be the im2col path's
    // bit for bit: the seed net trains exactly as before. Every case is also checked against the
    // double-precision reference within the float32 bound for its chunk's products, and on 3
    // threads, with the input and bias gradients requested too, for the same bits.
    struct Case {
        std::int64_t n, c, o, h, w, kh, kw, stride, pad;
        bool one_chain;  // what weight_grad_gemm_is_one_chain must say
    };
    const std::vector<Case> cases = {
        {9, 10, 20, 12, 12, 5, 5, 1, 0, true},   // the seed net's second layer
        {5, 6, 9, 11, 11, 5, 5, 1, 2, true},     // one vector of channels, 7 of its lanes empty
        {4, 16, 24, 16, 16, 3, 3, 2, 1, true},   // stride 2, 24 of 32 lanes
        {6, 40, 20, 6, 7, 3, 3, 1, 1, true},     // non-square 6x7 planes
        {3, 2, 1, 32, 32, 3, 3, 2, 1, false},    // one output channel: sgemm's dot-product path
        {4, 32, 36, 8, 8, 3, 3, 1, 1, false},    // sgemm's blocked path
        {3, 4, 8, 10, 9, 3, 5, 1, 1, true},      // a 3-high, 5-wide kernel
    };
    const int saved = get_num_threads();
    Generator gen(59);
    int took = 0;
    for (const Case& t : cases) {
        CAPTURE(t.c);
        CAPTURE(t.o);
        CAPTURE(t.h);
        CAPTURE(t.stride);
        const auto w = kernels::make_window(t.h, t.w, t.kh, t.kw, t.stride, t.stride, t.pad, t.pad);
        const std::int64_t ckk = t.c * t.kh * t.kw;
        took += kernels::detail::has_weight_grad_lanes_as_gemm &&
                        kernels::detail::weight_grad_lanes_fits(t.c, t.o, 1, w) &&
                        !kernels::detail::weight_grad_lanes_pays(t.c, t.o, 1, w) &&
                        !kernels::detail::weight_grad_in_place_pays(t.c, w)
                    ? 1
                    : 0;
        const std::int64_t chunk = kernels::detail::conv_chunk(ckk, w.out_plane());
        const WeightGradRun r =
            check_weight_grad(t.n, t.c, t.o, w, gen, static_cast<double>(std::min(chunk, t.n) * w.out_plane() + t.n));
#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM)
        // (The chain depends on sgemm's block sizes, which an AVX2 build sets otherwise.)
        const bool one_chain = weight_grad_gemm_is_one_chain(t.n, t.o, ckk, w.out_plane());
        if (kernels::detail::has_weight_grad_lanes_as_gemm) CHECK(one_chain == t.one_chain);
        if (one_chain) CHECK(bit_equal(r.gw, im2col_weight_grad(r.go, r.x, t.n, t.c, t.o, w)));
#else
        (void)r;
#endif
    }
    set_num_threads(saved);
    CHECK(took == (kernels::detail::has_weight_grad_lanes_as_gemm ? static_cast<int>(cases.size()) : 0));
}

TEST_CASE("kernels: conv2d_backward's input gradient of strided windows, phase by phase") {
    // Where detail::input_grad_phases_pays (AVX-512 and AVX2 builds; strides no larger than the kernel,
    // 16 or more input and output channels, one group), grad_in is one stride-1 product per phase
    // of the input on the lanes kernel, the phases interleaved back
    // (kernels/input_grad_phases.hpp): checked against the double-precision reference within the
    // float32 bound for its number of products, and on 3 threads, with the weight and bias
    // gradients requested too, for the same bits. The cases: stride 2 with a 3x3 kernel on even
    // and odd planes, with padding and without, stride 3 with a 5x5 kernel, a 4x4 kernel, a
    // 3-high 5-wide kernel strided along the rows only, channel counts that are not multiples of 16.
    struct Case {
        std::int64_t n, c, o, h, w, kh, kw, sh, sw, pad;
    };
    const std::vector<Case> cases = {
        {3, 16, 32, 28, 28, 3, 3, 2, 2, 1},  // ResNet8's first downsampling layer
        {2, 24, 40, 15, 15, 3, 3, 2, 2, 1},  // odd planes
        {2, 16, 16, 7, 8, 3, 3, 2, 2, 0},    // no padding
        {2, 16, 17, 11, 9, 5, 5, 3, 3, 2},   // stride 3
        {5, 17, 16, 13, 10, 4, 4, 2, 2, 2},  // an even kernel
        {2, 20, 24, 12, 9, 3, 5, 2, 1, 1},   // strided along the rows only
    };
    const int saved = get_num_threads();
    Generator gen(59);
    int took = 0;
    for (const Case& t : cases) {
        CAPTURE(t.c);
        CAPTURE(t.o);
        CAPTURE(t.h);
        CAPTURE(t.sh);
        const auto w = kernels::make_window(t.h, t.w, t.kh, t.kw, t.sh, t.sw, t.pad, t.pad);
        took += kernels::detail::input_grad_phases_pays(t.c, t.o, 1, w) ? 1 : 0;
        const FV x = random_vec(t.n * t.c * w.in_plane(), gen), wt = random_vec(t.o * t.c * t.kh * t.kw, gen);
        const FV go = random_vec(t.n * t.o * w.out_plane(), gen);
        FV gi(x.size(), 5.0f), gi_ref(x.size()), gi_mag(x.size());
        set_num_threads(1);
        kernels::conv2d_backward(gi.data(), nullptr, nullptr, go.data(), x.data(), wt.data(), t.n, t.c, t.o, w);
        kernels::ref::conv2d_backward(gi_ref.data(), nullptr, nullptr, go.data(), x.data(), wt.data(), t.n, t.c, t.o,
                                      w);
        kernels::ref::conv2d_backward(gi_mag.data(), nullptr, nullptr, abs_of(go).data(), x.data(), abs_of(wt).data(),
                                      t.n, t.c, t.o, w);
        check_within_sum_bound(gi, gi_ref, gi_mag, static_cast<double>(t.o * t.kh * t.kw + 1), "grad_in");
        FV gi3(x.size(), -5.0f), gw(wt.size()), gb(static_cast<std::size_t>(t.o));
        set_num_threads(3);
        kernels::conv2d_backward(gi3.data(), gw.data(), gb.data(), go.data(), x.data(), wt.data(), t.n, t.c, t.o, w);
        CHECK(bit_equal(gi3, gi));
    }
    set_num_threads(saved);
    CHECK(took == (kernels::detail::has_input_grad_phases ? static_cast<int>(cases.size()) : 0));
    // Not taken: a 1x1 stride-2 window (half its phases see no tap), fewer than 16 channels, two
    // groups, stride 1.
    CHECK_FALSE(kernels::detail::input_grad_phases_pays(16, 32, 1, kernels::make_window(28, 28, 1, 1, 2, 2, 0, 0)));
    CHECK_FALSE(kernels::detail::input_grad_phases_pays(8, 32, 1, kernels::make_window(28, 28, 3, 3, 2, 2, 1, 1)));
    CHECK_FALSE(kernels::detail::input_grad_phases_pays(32, 32, 2, kernels::make_window(28, 28, 3, 3, 2, 2, 1, 1)));
    CHECK_FALSE(kernels::detail::input_grad_phases_pays(32, 32, 1, kernels::make_window(28, 28, 3, 3, 1, 1, 1, 1)));
}

TEST_CASE("kernels: conv2d_backward with weights too large for one block of per-image partials") {
    // 32·32·37·37 = 1,401,856 weights: detail::conv_partial_budget (2^22 floats) holds the partials
    // of only 2 images, so 5 images run as blocks 2 + 2 + 1. The sum must not notice.
    const std::int64_t n = 5, c = 32, o = 32, k = 37, h = 38;
    const auto w = kernels::make_window(h, h, k, k, 1, 1, 0, 0);
    REQUIRE(kernels::detail::conv_partial_budget / (o * c * k * k + o) == 2);
    Generator gen(11);
    const FV x = random_vec(n * c * h * h, gen), wt = random_vec(o * c * k * k, gen);
    const FV go = random_vec(n * o * w.out_plane(), gen);
    FV gw(wt.size()), gb(static_cast<std::size_t>(o)), gw_ref(wt.size()), gb_ref(gb.size());
    kernels::conv2d_backward(nullptr, gw.data(), gb.data(), go.data(), x.data(), wt.data(), n, c, o, w);
    kernels::ref::conv2d_backward(nullptr, gw_ref.data(), gb_ref.data(), go.data(), x.data(), wt.data(), n, c, o, w);
    check_close(gw, gw_ref, 1e-4, "grad_weight");  // 20 products per element: well inside 1e-4
    check_close(gb, gb_ref, 1e-4, "grad_bias");
}

// ---- conv2d: hand-computed values ----

TEST_CASE("conv2d: hand-computed values") {
    // x = [[1,2,3],[4,5,6],[7,8,9]], k = [[1,2],[3,4]].
    const Tensor x = tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
    const Tensor k = tensor({1, 2, 3, 4}, {1, 1, 2, 2});

    SUBCASE("valid, with and without bias") {
        // out[0][0] = 1·1 + 2·2 + 3·4 + 4·5 = 37     out[0][1] = 1·2 + 2·3 + 3·5 + 4·6 = 47
        // out[1][0] = 1·4 + 2·5 + 3·7 + 4·8 = 67     out[1][1] = 1·5 + 2·6 + 3·8 + 4·9 = 77
        const Tensor y = conv2d(x, k);
        CHECK(y.shape() == Shape{1, 1, 2, 2});
        CHECK(y.to_vector() == FV{37, 47, 67, 77});
        CHECK(conv2d(x, k, tensor({0.5f})).to_vector() == FV{37.5f, 47.5f, 67.5f, 77.5f});
    }
    SUBCASE("padding 1") {
        // The zero-padded 5×5 input; output 4×4 = floor((3 + 2 − 2)/1) + 1. Corners see one tap:
        // out[0][0] = 4·x00 = 4, out[0][3] = 3·x02 = 9, out[3][0] = 2·x20 = 14, out[3][3] = 1·x22 = 9;
        // edges two taps: out[0][1] = 3·1 + 4·2 = 11, out[1][0] = 2·1 + 4·4 = 18;
        // interior rows 1–2, cols 1–2 are the valid result above (37, 47, 67, 77).
        const Tensor y = conv2d(x, k, Tensor(), 1, 1);
        CHECK(y.shape() == Shape{1, 1, 4, 4});
        CHECK(y.to_vector() == FV{4, 11, 18, 9, 18, 37, 47, 21, 36, 67, 77, 33, 14, 23, 26, 9});
    }
    SUBCASE("stride 2") {
        // 4×4 input 1..16 and a 2×2 kernel of ones, stride 2: sums of the four 2×2 blocks
        // 1+2+5+6 = 14, 3+4+7+8 = 22, 9+10+13+14 = 46, 11+12+15+16 = 54.
        const Tensor x4 = arange(1.0f, 17.0f).reshape({1, 1, 4, 4});
        const Tensor y = conv2d(x4, ones({1, 1, 2, 2}), Tensor(), /*stride=*/2);
        CHECK(y.shape() == Shape{1, 1, 2, 2});
        CHECK(y.to_vector() == FV{14, 22, 46, 54});
    }
    SUBCASE("dilation 2") {
        // The 2×2 kernel spread to 3×3 reads the corners: 1·1 + 2·3 + 3·7 + 4·9 = 64.
        const Tensor y = conv2d(x, k, Tensor(), 1, 0, /*dilation=*/2);
        CHECK(y.shape() == Shape{1, 1, 1, 1});
        CHECK(y.item() == 64.0f);
    }
    SUBCASE("two channels in, two out, 1×1 kernel, with bias") {
        // ch0 = [[1,2],[3,4]], ch1 = [[5,6],[7,8]]; w[0] = (1, 10), w[1] = (−1, 0.5); b = (100, 0).
        // out0 = ch0 + 10·ch1 + 100 = 151, 162, 173, 184;  out1 = −ch0 + 0.5·ch1 = 1.5, 1, 0.5, 0.
        Tensor xi = tensor({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2});
        Tensor w = tensor({1, 10, -1, 0.5f}, {2, 2, 1, 1});
        Tensor b = tensor({100, 0});
        xi.requires_grad_();
        w.requires_grad_();
        b.requires_grad_();
        const Tensor y = conv2d(xi, w, b);
        CHECK(y.to_vector() == FV{151, 162, 173, 184, 1.5f, 1, 0.5f, 0});
        // d(sum y): grad_x[c] = Σ_o w[o][c] → ch0: 1 − 1 = 0, ch1: 10 + 0.5 = 10.5 at every pixel;
        // grad_w[o][c] = Σ pixels of ch c → 10 and 26 for both o; grad_b[o] = 4 pixels.
        y.backward(ones(y.shape()));
        CHECK(xi.grad().to_vector() == FV{0, 0, 0, 0, 10.5f, 10.5f, 10.5f, 10.5f});
        CHECK(w.grad().to_vector() == FV{10, 26, 10, 26});
        CHECK(b.grad().to_vector() == FV{4, 4});
    }
}

TEST_CASE("conv2d: hand-computed backward") {
    // Same x and k as above, loss = Σ out (valid conv, 2×2 output).
    // grad_k[a][b] = Σ of the 2×2 block of x at (a, b): 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24,
    //                5+6+8+9 = 28.
    // grad_x[p][q] = Σ of the taps covering (p, q): corners 1, 2, 3, 4; edges x01: 1+2 = 3,
    //                x10: 1+3 = 4, x12: 2+4 = 6, x21: 3+4 = 7; centre 1+2+3+4 = 10. grad_b = 4.
    Tensor x = tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
    Tensor k = tensor({1, 2, 3, 4}, {1, 1, 2, 2});
    Tensor b = tensor({0});
    x.requires_grad_();
    k.requires_grad_();
    b.requires_grad_();
    const Tensor y = conv2d(x, k, b);
    y.backward(ones(y.shape()));
    CHECK(k.grad().to_vector() == FV{12, 16, 24, 28});
    CHECK(x.grad().to_vector() == FV{1, 3, 2, 4, 10, 6, 3, 7, 4});
    CHECK(b.grad().to_vector() == FV{4});
}

// ---- conv2d vs the direct reference, through the op ----

TEST_CASE("conv2d: op forward and backward match the direct reference at random shapes") {
    Generator gen(4);
    for (const Geo& g : conv_geos) {
        const auto w = window(g);
        CAPTURE(g.kh);
        CAPTURE(g.ph);
        CAPTURE(g.dh);
        Tensor x = grad_input({g.n, g.c, g.h, g.w}, gen);
        Tensor wt = grad_input({g.o, g.c, g.kh, g.kw}, gen);
        Tensor b = g.bias ? grad_input({g.o}, gen) : Tensor();
        const Tensor y = conv2d(x, wt, b, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw});
        REQUIRE(y.shape() == Shape{g.n, g.o, w.out_h, w.out_w});
        FV y_ref(static_cast<std::size_t>(y.numel()));
        kernels::ref::conv2d_forward(y_ref.data(), x.data_ptr(), wt.data_ptr(), g.bias ? b.data_ptr() : nullptr, g.n,
                                     g.c, g.o, w);
        check_close(y.to_vector(), y_ref, conv_tol, "forward");

        const Tensor go = uniform(y.shape(), -1.0f, 1.0f, gen);
        y.backward(go);
        FV gi(static_cast<std::size_t>(x.numel())), gw(static_cast<std::size_t>(wt.numel())),
            gb(static_cast<std::size_t>(g.o));
        kernels::ref::conv2d_backward(gi.data(), gw.data(), gb.data(), go.data_ptr(), x.data_ptr(), wt.data_ptr(), g.n,
                                      g.c, g.o, w);
        check_close(x.grad().to_vector(), gi, conv_tol, "grad_input");
        check_close(wt.grad().to_vector(), gw, conv_tol, "grad_weight");
        if (g.bias) check_close(b.grad().to_vector(), gb, conv_tol, "grad_bias");
    }
}

// ---- gradchecks ----

TEST_CASE("gradcheck: conv2d w.r.t. input, weight and bias") {
    // conv2d is linear in each argument, so central differences are exact up to float32
    // rounding; the default tolerances (see gradcheck.hpp) apply unchanged.
    Generator gen(5);
    SUBCASE("stride 1, no padding") {
        gradcheck("conv2d", [](const V& v) { return conv2d(v[0], v[1], v[2]); },
                  {grad_input({2, 2, 5, 5}, gen), grad_input({3, 2, 3, 3}, gen), grad_input({3}, gen)});
    }
    SUBCASE("stride 2, padding 1, dilation 1") {
        gradcheck("conv2d s2 p1", [](const V& v) { return conv2d(v[0], v[1], v[2], 2, 1); },
                  {grad_input({1, 3, 6, 5}, gen), grad_input({2, 3, 3, 2}, gen), grad_input({2}, gen)});
    }
    SUBCASE("stride (1, 2), padding (2, 1), dilation 2, no bias") {
        gradcheck("conv2d d2", [](const V& v) { return conv2d(v[0], v[1], Tensor(), {1, 2}, {2, 1}, 2); },
                  {grad_input({2, 2, 5, 6}, gen), grad_input({2, 2, 2, 3}, gen)});
    }
}

TEST_CASE("gradcheck: max_pool2d") {
    // distinct_input keeps values 0.05 apart, more than 2·eps = 0.02, so no ±eps step changes
    // which element is a window's maximum (no ties, no kink crossed).
    Generator gen(6);
    gradcheck("max_pool2d k2", [](const V& v) { return max_pool2d(v[0], 2); }, {distinct_input({2, 2, 4, 6}, gen)});
    gradcheck("max_pool2d k3 s2 p1", [](const V& v) { return max_pool2d(v[0], 3, 2, 1); },
              {distinct_input({1, 2, 5, 5}, gen)});
    gradcheck("max_pool2d k3 s1 p1 (overlapping)", [](const V& v) { return max_pool2d(v[0], 3, 1, 1); },
              {distinct_input({1, 1, 4, 4}, gen)});
}

TEST_CASE("gradcheck: avg_pool2d") {
    Generator gen(7);  // linear in x: default tolerances
    for (bool include_pad : {true, false}) {
        CAPTURE(include_pad);
        gradcheck("avg_pool2d k2", [](const V& v) { return avg_pool2d(v[0], 2); }, {grad_input({2, 1, 4, 4}, gen)});
        gradcheck("avg_pool2d k3 s2 p1",
                  [include_pad](const V& v) { return avg_pool2d(v[0], 3, 2, 1, include_pad); },
                  {grad_input({1, 2, 5, 6}, gen)});
        gradcheck("avg_pool2d k(2,3) s1 p(1,1)",
                  [include_pad](const V& v) { return avg_pool2d(v[0], {2, 3}, 1, {1, 1}, include_pad); },
                  {grad_input({1, 1, 4, 4}, gen)});
    }
}

// ---- pooling: hand-computed values ----

TEST_CASE("max_pool2d: hand-computed values and gradients") {
    SUBCASE("2×2 windows") {
        // x = [[1,5,2,0],[3,4,8,7],[9,6,1,2],[0,3,4,5]]: block maxima 5 (flat 1), 8 (6), 9 (8), 5 (15).
        Tensor x = tensor({1, 5, 2, 0, 3, 4, 8, 7, 9, 6, 1, 2, 0, 3, 4, 5}, {1, 1, 4, 4});
        x.requires_grad_();
        const Tensor y = max_pool2d(x, 2);
        CHECK(y.shape() == Shape{1, 1, 2, 2});
        CHECK(y.to_vector() == FV{5, 8, 9, 5});
        // Each output's gradient lands on its argmax only.
        y.backward(tensor({1, 2, 3, 4}, {1, 1, 2, 2}));
        CHECK(x.grad().to_vector() == FV{0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 4});
    }
    SUBCASE("padding is -inf, not 0") {
        // x = −[[1,2,3],[4,5,6],[7,8,9]], kernel 3, stride 2, padding 1 → 2×2 windows over the real
        // elements {1,2,4,5}, {2,3,5,6}, {4,5,7,8}, {5,6,8,9} (negated): maxima −1, −2, −4, −5.
        const Tensor x = tensor({-1, -2, -3, -4, -5, -6, -7, -8, -9}, {1, 1, 3, 3});
        CHECK(max_pool2d(x, 3, 2, 1).to_vector() == FV{-1, -2, -4, -5});
    }
    SUBCASE("overlapping windows add their gradients") {
        // Same x, kernel 3, stride 1, padding 1 → 3×3 outputs. Windows (0,0), (0,1), (1,0), (1,1)
        // all contain x00 = −1; (0,2), (1,2) pick x01 = −2; (2,0), (2,1) pick x10 = −4; (2,2) picks
        // x11 = −5. With all output gradients 1: grad x00 = 4, x01 = 2, x10 = 2, x11 = 1.
        Tensor x = tensor({-1, -2, -3, -4, -5, -6, -7, -8, -9}, {1, 1, 3, 3});
        x.requires_grad_();
        const Tensor y = max_pool2d(x, 3, 1, 1);
        CHECK(y.to_vector() == FV{-1, -1, -2, -1, -1, -2, -4, -4, -5});
        y.backward(ones(y.shape()));
        CHECK(x.grad().to_vector() == FV{4, 2, 0, 2, 1, 0, 0, 0, 0});
    }
    SUBCASE("ties pick the first element; NaN propagates") {
        Tensor x = full({1, 1, 2, 2}, 3.0f);
        x.requires_grad_();
        const Tensor y = max_pool2d(x, 2);
        y.backward(ones(y.shape()));
        CHECK(x.grad().to_vector() == FV{1, 0, 0, 0});
        const float nan = std::numeric_limits<float>::quiet_NaN();
        CHECK(std::isnan(max_pool2d(tensor({1, nan, 3, 2}, {1, 1, 2, 2}), 2).item()));
    }
}

TEST_CASE("avg_pool2d: hand-computed values and gradients") {
    SUBCASE("2×2 windows") {
        // x = 1..16 as 4×4: block means (1+2+5+6)/4 = 3.5, (3+4+7+8)/4 = 5.5, (9+10+13+14)/4 = 11.5,
        // (11+12+15+16)/4 = 13.5.
        CHECK(avg_pool2d(arange(1.0f, 17.0f).reshape({1, 1, 4, 4}), 2).to_vector() == FV{3.5f, 5.5f, 11.5f, 13.5f});
    }
    // x = [[1,2],[3,4]], kernel 2, stride 1, padding 1 → 3×3 outputs whose real elements are
    // {1} {1,2} {2} / {1,3} {1,2,3,4} {2,4} / {3} {3,4} {4}.
    Tensor x = tensor({1, 2, 3, 4}, {1, 1, 2, 2});
    x.requires_grad_();
    SUBCASE("count_include_pad = true divides by 4") {
        // 1/4, 3/4, 2/4 / 4/4, 10/4, 6/4 / 3/4, 7/4, 4/4.
        const Tensor y = avg_pool2d(x, 2, 1, 1, true);
        CHECK(y.to_vector() == FV{0.25f, 0.75f, 0.5f, 1, 2.5f, 1.5f, 0.75f, 1.75f, 1});
        // Every input sits in 4 windows, each passing on 1/4: gradient 1.
        y.backward(ones(y.shape()));
        CHECK(x.grad().to_vector() == FV{1, 1, 1, 1});
    }
    SUBCASE("count_include_pad = false divides by the real count") {
        // 1/1, 3/2, 2/1 / 4/2, 10/4, 6/2 / 3/1, 7/2, 4/1.
        const Tensor y = avg_pool2d(x, 2, 1, 1, false);
        CHECK(y.to_vector() == FV{1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4});
        // x00 is in windows of counts 1, 2, 2, 4: 1 + 1/2 + 1/2 + 1/4 = 2.25; same for each corner.
        y.backward(ones(y.shape()));
        CHECK(x.grad().to_vector() == FV{2.25f, 2.25f, 2.25f, 2.25f});
    }
}

// ---- determinism ----

TEST_CASE("conv2d: forward and backward are bit-identical for 1, 2 and 4 threads") {
    const int saved = get_num_threads();
    Generator gen(8);
    const Tensor x0 = uniform({7, 3, 11, 10}, -1.0f, 1.0f, gen);
    const Tensor w0 = uniform({5, 3, 3, 3}, -1.0f, 1.0f, gen);
    const Tensor b0 = uniform({5}, -1.0f, 1.0f, gen);
    const Tensor x1 = uniform({1, 4, 9, 9}, -1.0f, 1.0f, gen);  // batch 1: sgemm splits rows instead
    const Tensor w1 = uniform({16, 4, 3, 3}, -1.0f, 1.0f, gen);
    // The seed's conv2 at batch 20: chunks of 8 + 8 + 4 images, so dW/db are three partials.
    const Tensor x2 = uniform({20, 10, 12, 12}, -1.0f, 1.0f, gen);
    const Tensor w2 = uniform({20, 10, 5, 5}, -1.0f, 1.0f, gen);
    const Tensor b2 = uniform({20}, -1.0f, 1.0f, gen);
    const Tensor g2 = uniform({20, 20, 8, 8}, -1.0f, 1.0f, gen);
    const Tensor gp = uniform({20, 20, 4, 4}, -1.0f, 1.0f, gen);
    std::vector<std::vector<FV>> results;
    for (int threads : {1, 2, 4}) {
        set_num_threads(threads);
        std::vector<FV> r;
        for (int which = 0; which < 2; ++which) {
            Tensor x = (which == 0 ? x0 : x1).clone(), w = (which == 0 ? w0 : w1).clone(), b = b0.clone();
            x.requires_grad_();
            w.requires_grad_();
            b.requires_grad_();
            const Tensor y = which == 0 ? conv2d(x, w, b, 2, 1) : conv2d(x, w, Tensor(), 1, 1);
            y.backward(full(y.shape(), 0.37f));
            r.push_back(y.to_vector());
            r.push_back(x.grad().to_vector());
            r.push_back(w.grad().to_vector());
            if (which == 0) r.push_back(b.grad().to_vector());
            const Tensor p = max_pool2d(y, 2);
            r.push_back(p.to_vector());
        }
        {
            Tensor x = x2.clone(), w = w2.clone(), b = b2.clone();
            x.requires_grad_();
            w.requires_grad_();
            b.requires_grad_();
            const Tensor y = conv2d(x, w, b);
            y.backward(g2);
            for (const Tensor& t : {y, x.grad(), w.grad(), b.grad()}) r.push_back(t.to_vector());
            Tensor yl = y.detach();
            yl.requires_grad_();
            const Tensor p = max_pool2d(yl, 2);
            p.backward(gp);
            r.push_back(p.to_vector());
            r.push_back(yl.grad().to_vector());
        }
        results.push_back(r);
    }
    set_num_threads(saved);
    CHECK(get_num_threads() == saved);
    for (std::size_t t = 1; t < results.size(); ++t)
        for (std::size_t i = 0; i < results[0].size(); ++i) {
            CAPTURE(t);
            CAPTURE(i);
            CHECK(bit_equal(results[t][i], results[0][i]));
        }
}

// ---- the seed network's shapes ----

TEST_CASE("the seed net's shapes: 28×28 → conv5 → pool2 → conv5 → pool2, and avg_pool2d(10)") {
    Generator gen(9);
    Tensor x = uniform({64, 1, 28, 28}, 0.0f, 1.0f, gen);
    Tensor w1 = uniform({10, 1, 5, 5}, -0.2f, 0.2f, gen), b1 = uniform({10}, -0.2f, 0.2f, gen);
    Tensor w2 = uniform({20, 10, 5, 5}, -0.06f, 0.06f, gen), b2 = uniform({20}, -0.06f, 0.06f, gen);
    for (Tensor* p : {&w1, &b1, &w2, &b2}) p->requires_grad_();
    const Tensor c1 = conv2d(x, w1, b1);
    CHECK(c1.shape() == Shape{64, 10, 24, 24});
    FV ref1(static_cast<std::size_t>(c1.numel()));
    const auto win1 = kernels::make_window(28, 28, 5, 5, 1, 1, 0, 0);
    kernels::ref::conv2d_forward(ref1.data(), x.data_ptr(), w1.data_ptr(), b1.data_ptr(), 64, 1, 10, win1);
    check_close(c1.to_vector(), ref1, conv_tol, "conv1");
    const Tensor p1 = max_pool2d(c1, 2);
    CHECK(p1.shape() == Shape{64, 10, 12, 12});
    const Tensor c2 = conv2d(p1, w2, b2);
    CHECK(c2.shape() == Shape{64, 20, 8, 8});
    FV ref2(static_cast<std::size_t>(c2.numel()));
    const auto win2 = kernels::make_window(12, 12, 5, 5, 1, 1, 0, 0);
    kernels::ref::conv2d_forward(ref2.data(), p1.data_ptr(), w2.data_ptr(), b2.data_ptr(), 64, 10, 20, win2);
    check_close(c2.to_vector(), ref2, conv_tol, "conv2");
    const Tensor p2 = max_pool2d(c2, 2);
    CHECK(p2.shape() == Shape{64, 20, 4, 4});
    p2.backward(ones(p2.shape()));
    CHECK(w1.grad().shape() == w1.shape());
    CHECK(b1.grad().shape() == Shape{10});
    CHECK(w2.grad().shape() == w2.shape());
    // Σ of p2's gradient (all ones) reaches b2 once per pooled output: 64 images × 4×4 each.
    for (float v : b2.grad().to_vector()) CHECK(v == 1024.0f);

    // avg_pool2d(10) on a 280×280 image of values i·280 + j: block (a, b) averages to
    // (10a + 4.5)·280 + 10b + 4.5. All partial sums are integers < 2^24, so the result is exact.
    const Tensor big = arange(0.0f, 280.0f * 280.0f).reshape({1, 1, 280, 280});
    const Tensor small = avg_pool2d(big, 10);
    REQUIRE(small.shape() == Shape{1, 1, 28, 28});
    bool all_exact = true;
    for (int a = 0; a < 28; ++a)
        for (int b = 0; b < 28; ++b)
            all_exact = all_exact && small.at({0, 0, a, b}) == (10.0f * a + 4.5f) * 280.0f + 10.0f * b + 4.5f;
    CHECK(all_exact);
}

// ---- other inputs ----

TEST_CASE("conv2d and pooling: 3-D inputs, strided inputs, grad mode") {
    Generator gen(10);
    const Tensor x = uniform({2, 3, 6, 6}, -1.0f, 1.0f, gen);
    const Tensor w = uniform({4, 3, 3, 3}, -1.0f, 1.0f, gen);
    SUBCASE("a 3-D input is one image") {
        const Tensor y3 = conv2d(x.select(0, 1), w, Tensor(), 1, 1);
        CHECK(y3.shape() == Shape{4, 6, 6});
        CHECK(bit_equal(y3.to_vector(), conv2d(x, w, Tensor(), 1, 1).select(0, 1).to_vector()));
        CHECK(max_pool2d(x.select(0, 0), 2).shape() == Shape{3, 3, 3});
        CHECK(avg_pool2d(x.select(0, 0), 3, 3).shape() == Shape{3, 2, 2});
        // and the gradient flows back through the reshape to the 3-D tensor
        Tensor xi = x.select(0, 0).clone();
        xi.requires_grad_();
        conv2d(xi, w).backward(ones({4, 4, 4}));
        CHECK(xi.grad().shape() == Shape{3, 6, 6});
    }
    SUBCASE("non-contiguous inputs are read through their strides") {
        const Tensor xt = x.transpose(2, 3);  // [2, 3, 6, 6] with swapped strides
        REQUIRE_FALSE(xt.is_contiguous());
        CHECK(bit_equal(conv2d(xt, w).to_vector(), conv2d(xt.contiguous(), w).to_vector()));
        CHECK(bit_equal(max_pool2d(xt, 2).to_vector(), max_pool2d(xt.contiguous(), 2).to_vector()));
        CHECK(bit_equal(avg_pool2d(xt, 2).to_vector(), avg_pool2d(xt.contiguous(), 2).to_vector()));
    }
    SUBCASE("no graph without requires_grad or under NoGradGuard; freed graph throws") {
        CHECK_FALSE(conv2d(x, w).requires_grad());
        Tensor wg = w.clone();
        wg.requires_grad_();
        {
            NoGradGuard ng;
            CHECK_FALSE(conv2d(x, wg).requires_grad());
            CHECK_FALSE(max_pool2d(wg, 2).requires_grad());
        }
        const Tensor y = max_pool2d(conv2d(x, wg), 2);
        CHECK(y.requires_grad());
        y.backward(ones(y.shape()));
        CHECK_THROWS_AS(y.backward(ones(y.shape())), autograd_error);
    }
}

// ---- errors ----

TEST_CASE("conv2d and pooling: bad shapes and arguments throw clear errors") {
    const Tensor x = ones({1, 3, 5, 5});
    const Tensor w = ones({2, 3, 3, 3});
    check_throws_with<shape_error>([&] { conv2d(ones({3, 5}), w); }, "conv2d: expected a 4-D");
    check_throws_with<shape_error>([&] { conv2d(x, ones({2, 3, 3})); }, "4-D weight");
    check_throws_with<shape_error>([&] { conv2d(x, ones({2, 2, 3, 3})); }, "has 3 channels");
    check_throws_with<shape_error>([&] { conv2d(x, w, ones({3})); }, "bias of shape [3]");
    check_throws_with<shape_error>([&] { conv2d(x, ones({2, 3, 7, 7})); }, "too small");
    check_throws_with<shape_error>([&] { conv2d(x, w, Tensor(), 1, 0, 3); }, "too small");  // dilated 7×7
    check_throws_with<value_error>([&] { conv2d(x, w, Tensor(), 0); }, "stride must be >= 1");
    check_throws_with<value_error>([&] { conv2d(x, w, Tensor(), 1, {0, -1}); }, "padding must be >= 0");
    check_throws_with<value_error>([&] { conv2d(x, w, Tensor(), 1, 0, {1, 0}); }, "dilation must be >= 1");

    for (const char* op : {"max_pool2d", "avg_pool2d"}) {
        CAPTURE(op);
        const bool is_max = std::string(op) == "max_pool2d";
        auto pool = [is_max](const Tensor& t, Pair2d k, Pair2d s, Pair2d p) {
            return is_max ? max_pool2d(t, k, s, p) : avg_pool2d(t, k, s, p);
        };
        check_throws_with<shape_error>([&] { pool(ones({5, 5}), 2, 2, 0); }, "expected a 4-D");
        check_throws_with<value_error>([&] { pool(x, 0, 1, 0); }, "kernel_size must be >= 1");
        check_throws_with<value_error>([&] { pool(x, 2, 0, 0); }, "stride must be >= 1");
        check_throws_with<value_error>([&] { pool(x, 2, 2, -1); }, "padding must be >= 0");
        check_throws_with<value_error>([&] { pool(x, 3, 1, 2); }, "at most half");
        check_throws_with<shape_error>([&] { pool(x, 6, 1, 0); }, "too small");
    }
}
