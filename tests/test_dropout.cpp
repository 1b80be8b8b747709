// tests/test_dropout.cpp — the dropout / dropout2d *contract*, checked statistically:
// the fraction dropped is p, E[out] = x, kept values are exactly x/(1−p), eval mode and p = 0
// are the identity, a seed reproduces the mask, and backward multiplies by the same mask.
//
// Statistical bounds: with n independent draws, the dropped fraction has standard deviation
// sqrt(p(1−p)/n); each output of x = 1 is 0 or 1/(1−p), whose variance is p/(1−p), so the
// mean of n outputs has sd sqrt(p/(1−p)/n). We allow 5 sd: a correct implementation fails a
// given check with probability ~6e-7, while a wrong scale or keep probability (the classic
// "keep with probability p" bug) misses by hundreds of sd at these sizes. Seeds are fixed,
// so the test is also deterministic.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nanotorch/ops/dropout.hpp>

#include "support/gradcheck.hpp"

using namespace nanotorch;
using nanotorch::testing::gradcheck;
using nanotorch::testing::grad_input;

namespace {

struct Stats {
    double zero_fraction = 0.0;
    double mean = 0.0;
    bool kept_exact = true;  // every non-zero equals `kept`
};

Stats stats_of(const std::vector<float>& v, float kept) {
    Stats s;
    double sum = 0.0;
    std::int64_t zeros_count = 0;
    for (float x : v) {
        if (x == 0.0f) {
            ++zeros_count;
        } else if (x != kept) {
            s.kept_exact = false;
        }
        sum += x;
    }
    s.zero_fraction = static_cast<double>(zeros_count) / static_cast<double>(v.size());
    s.mean = sum / static_cast<double>(v.size());
    return s;
}

}  // namespace

TEST_CASE("dropout: fraction dropped, E[out] = x and the kept value, for p in {0.2, 0.5, 0.8}") {
    const std::int64_t n = 200000;
    const Tensor x = ones({n});
    for (float p : {0.2f, 0.5f, 0.8f}) {
        CAPTURE(p);
        Generator gen(1000 + static_cast<std::uint64_t>(p * 10));
        const Tensor out = dropout(x, p, true, gen);
        CHECK(out.shape() == x.shape());
        const float kept = 1.0f / (1.0f - p);  // the documented scale, in float
        const Stats s = stats_of(out.to_vector(), kept);
        const double sd_frac = std::sqrt(p * (1.0 - p) / n);
        const double sd_mean = std::sqrt(p / (1.0 - p) / n);
        INFO("zero fraction ", s.zero_fraction, " (sd ", sd_frac, "), mean ", s.mean, " (sd ", sd_mean, ")");
        CHECK(std::fabs(s.zero_fraction - p) <= 5 * sd_frac);
        CHECK(std::fabs(s.mean - 1.0) <= 5 * sd_mean);
        CHECK(s.kept_exact);
    }
}

TEST_CASE("dropout: kept elements are x/(1-p) for arbitrary x") {
    Generator g0(4);
    const Tensor x = uniform({50, 40}, -3.0f, 3.0f, g0);
    Generator gen(9);
    const Tensor out = dropout(x, 0.25f, true, gen);
    const auto xv = x.to_vector(), ov = out.to_vector();
    const float scale = 1.0f / (1.0f - 0.25f);
    int kept = 0;
    for (std::size_t i = 0; i < xv.size(); ++i) {
        if (ov[i] != 0.0f) {
            ++kept;
            CHECK(ov[i] == xv[i] * scale);  // one float multiply, as the op does
        }
    }
    CHECK(kept > 0);
}

TEST_CASE("dropout: eval mode and p = 0 return x itself") {
    Tensor x = ones({3, 4});
    x.requires_grad_();
    Generator gen(1);
    CHECK(dropout(x, 0.5f, false, gen).is_same(x));
    CHECK(dropout(x, 0.0f, true, gen).is_same(x));
    CHECK(dropout2d(ones({2, 3, 2, 2}), 0.0f, true, gen).shape() == Shape{2, 3, 2, 2});
    const Tensor y = ones({2, 3, 2, 2});
    CHECK(dropout2d(y, 0.7f, false, gen).is_same(y));
    // Identity draws nothing from the generator: the next draw equals a fresh one's first.
    Generator fresh(1);
    CHECK(gen.next_u64() == fresh.next_u64());
}

TEST_CASE("dropout: p outside [0, 1) is a value_error, in eval mode too") {
    const Tensor x = ones({4});
    for (float p : {-0.1f, 1.0f, 1.5f, std::numeric_limits<float>::quiet_NaN()}) {
        CAPTURE(p);
        CHECK_THROWS_AS(dropout(x, p, true), value_error);
        CHECK_THROWS_AS(dropout(x, p, false), value_error);
        CHECK_THROWS_AS(dropout2d(ones({1, 2, 2, 2}), p, true), value_error);
    }
    try {
        dropout(x, 1.0f, true);
    } catch (const value_error& e) {
        CHECK(std::string(e.what()).find("dropout: p = 1") != std::string::npos);
    }
}

TEST_CASE("dropout: same seed gives the same mask, another seed a different one") {
    const Tensor x = ones({1000});
    Generator a(77), b(77), c(78);
    const auto ma = dropout(x, 0.5f, true, a).to_vector();
    const auto mb = dropout(x, 0.5f, true, b).to_vector();
    const auto mc = dropout(x, 0.5f, true, c).to_vector();
    CHECK(ma == mb);
    CHECK(ma != mc);  // equal by chance with probability 2^-1000
    // The generator advances: a second call with the same generator gives a new mask.
    CHECK(dropout(x, 0.5f, true, a).to_vector() != ma);
    // Draws are serial and row-major, so a shorter tensor's mask is a prefix of a longer one's.
    Generator d(77);
    const auto prefix = dropout(ones({10}), 0.5f, true, d).to_vector();
    CHECK(prefix == std::vector<float>(ma.begin(), ma.begin() + 10));
}

TEST_CASE("dropout: the mask is one gen.bernoulli(p) draw per element, in order") {
    // dropout compares the draws with an integer threshold instead of calling bernoulli; the
    // mask must be exactly what bernoulli gives, at probabilities whose p·2^53 is and is not an
    // integer, and the generator must end where n bernoulli calls leave it.
    for (float p : {0.5f, 0.25f, 0.1f, 0.3f, 1e-7f, 0.9999999f}) {
        CAPTURE(p);
        Generator g1(5), g2(5);
        const std::int64_t n = 5000;
        const auto m = dropout(ones({n}), p, true, g1).to_vector();
        const float scale = 1.0f / (1.0f - p);
        for (std::int64_t i = 0; i < n; ++i) {
            const float want = g2.bernoulli(static_cast<double>(p)) ? 0.0f : scale;
            if (m[static_cast<std::size_t>(i)] != want) {
                FAIL_CHECK("element " << i << ": " << m[static_cast<std::size_t>(i)] << " != " << want);
                break;
            }
        }
        CHECK(g1.next_u64() == g2.next_u64());
    }
}

TEST_CASE("BatchShardGuard: each shard's mask is its rows of the global batch's mask") {
    // A global batch of 7 rows split 3 / 2 / 2 (as DataLoaderOptions::shard gives 3 ranks):
    // every shard, from a generator in the same state, draws exactly its rows of the mask that
    // the whole batch draws, for dropout and dropout2d, and leaves the generator where the whole
    // batch left it (so the next layer and the next step stay in step across ranks).
    const Tensor x = ones({7, 3, 2, 2});
    Generator whole_gen(41);
    const auto whole = dropout(x, 0.4f, true, whole_gen).to_vector();
    const auto whole2d = dropout2d(x, 0.4f, true, whole_gen).to_vector();
    const std::uint64_t after_whole = whole_gen.next_u64();
    const std::int64_t per_row = 3 * 2 * 2;
    const std::vector<std::pair<std::int64_t, std::int64_t>> shards = {{0, 3}, {3, 2}, {5, 2}};
    for (const auto& shard : shards) {
        // Not a structured binding: clang 14 cannot capture one in CAPTURE's lambda (C++17).
        const std::int64_t offset = shard.first, rows = shard.second;
        CAPTURE(offset);
        Generator gen(41);
        BatchShardGuard guard(offset, 7);
        const Tensor part = x.narrow(0, 0, rows).contiguous();
        const auto m = dropout(part, 0.4f, true, gen).to_vector();
        const auto m2d = dropout2d(part, 0.4f, true, gen).to_vector();
        CHECK(m == std::vector<float>(whole.begin() + offset * per_row, whole.begin() + (offset + rows) * per_row));
        CHECK(m2d ==
              std::vector<float>(whole2d.begin() + offset * per_row, whole2d.begin() + (offset + rows) * per_row));
        CHECK(gen.next_u64() == after_whole);
    }
    // The guard restores the previous setting (none here): an unguarded call draws the full rows.
    Generator plain(41), ref(41);
    const Tensor two = x.narrow(0, 0, 2).contiguous();
    { BatchShardGuard g(4, 7); }
    CHECK(dropout(two, 0.4f, true, plain).to_vector() == dropout(two, 0.4f, true, ref).to_vector());
    // Rows that do not fit, or a guard that is not inside its batch, are refused.
    {
        BatchShardGuard g(6, 7);
        Generator gen(1);
        CHECK_THROWS_AS(dropout(two, 0.4f, true, gen), shape_error);
    }
    CHECK_THROWS_AS(BatchShardGuard(7, 7), value_error);
    CHECK_THROWS_AS(BatchShardGuard(0, 0), value_error);
    CHECK_THROWS_AS(BatchShardGuard(-1, 4), value_error);
}

TEST_CASE("dropout/dropout2d: the mask does not depend on the thread count") {
    const Tensor x = ones({8, 64, 16, 16});
    const int saved = get_num_threads();
    set_num_threads(1);
    Generator g1(5), h1(6);
    const auto a1 = dropout(x, 0.3f, true, g1).to_vector(), b1 = dropout2d(x, 0.3f, true, h1).to_vector();
    set_num_threads(4);
    Generator g4(5), h4(6);
    const auto a4 = dropout(x, 0.3f, true, g4).to_vector(), b4 = dropout2d(x, 0.3f, true, h4).to_vector();
    set_num_threads(saved);
    CHECK(a1 == a4);
    CHECK(b1 == b4);
}

TEST_CASE("dropout2d: whole channels, fraction dropped near p, E[out] = x") {
    // 200 × 100 = 20000 channel planes of 3×4: each plane is one draw.
    const std::int64_t N = 200, C = 100, H = 3, W = 4, planes = N * C;
    const Tensor x = ones({N, C, H, W});
    for (float p : {0.2f, 0.5f, 0.8f}) {
        CAPTURE(p);
        Generator gen(300 + static_cast<std::uint64_t>(p * 10));
        const Tensor out = dropout2d(x, p, true, gen);
        const auto v = out.to_vector();
        const float kept = 1.0f / (1.0f - p);
        std::int64_t dropped = 0;
        bool uniform_planes = true;
        for (std::int64_t c = 0; c < planes; ++c) {
            const float first = v[static_cast<std::size_t>(c * H * W)];
            uniform_planes = uniform_planes && (first == 0.0f || first == kept);
            for (std::int64_t k = 1; k < H * W; ++k)
                uniform_planes = uniform_planes && v[static_cast<std::size_t>(c * H * W + k)] == first;
            if (first == 0.0f) ++dropped;
        }
        CHECK(uniform_planes);
        // Bounds as for dropout, with n = the number of planes (the independent draws).
        const double frac = static_cast<double>(dropped) / planes;
        const double mean = stats_of(v, kept).mean;
        INFO("dropped fraction ", frac, ", mean ", mean);
        CHECK(std::fabs(frac - p) <= 5 * std::sqrt(p * (1.0 - p) / planes));
        CHECK(std::fabs(mean - 1.0) <= 5 * std::sqrt(p / (1.0 - p) / planes));
    }
}

TEST_CASE("dropout2d: kept planes are x/(1-p); 3-D input; bad rank") {
    Tensor x = arange(0.0f, 2.0f * 6 * 5, 1.0f).reshape({6, 2, 5});  // [C=6, H=2, W=5]
    Generator gen(12);
    const Tensor out = dropout2d(x, 0.5f, true, gen);
    const auto xv = x.to_vector(), ov = out.to_vector();
    int kept_planes = 0, dropped_planes = 0;
    for (std::size_t c = 0; c < 6; ++c) {
        // Element 0 of channel 0 is 0 whatever happens, so decide on element 1.
        const bool kept = ov[c * 10 + 1] != 0.0f;
        (kept ? kept_planes : dropped_planes)++;
        for (std::size_t k = 0; k < 10; ++k) CHECK(ov[c * 10 + k] == (kept ? xv[c * 10 + k] * 2.0f : 0.0f));
    }
    CHECK(kept_planes + dropped_planes == 6);
    CHECK_THROWS_AS(dropout2d(ones({4, 4}), 0.5f, true), shape_error);
    CHECK_THROWS_AS(dropout2d(ones({1, 2, 3, 4, 5}), 0.5f, true), shape_error);
    CHECK_THROWS_AS(dropout2d(ones({4, 4}), 0.5f, false), shape_error);
}

TEST_CASE("dropout: backward multiplies by the saved mask / (1-p)") {
    for (float p : {0.2f, 0.5f, 0.8f}) {
        CAPTURE(p);
        Generator gen(40);
        Tensor x = ones({1000});
        x.requires_grad_();
        const Tensor out = dropout(x, p, true, gen);
        REQUIRE(out.requires_grad());
        out.backward(ones({1000}));
        // With x = 1 and upstream 1, d out/dx = mask/(1-p) = out / x = out, exactly.
        CHECK(x.grad().to_vector() == out.to_vector());

        Generator gen2(41);
        Tensor y = ones({10, 20, 2, 3});
        y.requires_grad_();
        const Tensor out2 = dropout2d(y, p, true, gen2);
        out2.backward(ones(y.shape()));
        CHECK(y.grad().to_vector() == out2.to_vector());
    }
    // No graph when x does not require grad.
    Generator gen(3);
    CHECK_FALSE(dropout(ones({5}), 0.5f, true, gen).requires_grad());
}

TEST_CASE("dropout/dropout2d gradcheck with a fixed mask") {
    // gradcheck calls f many times (once per ±eps perturbation). A dropout that drew a new mask
    // on each call would be a different function every time and finite differences would be
    // meaningless, so f builds a Generator with the same seed on every call: each call then
    // draws the identical mask and f is the fixed linear map x ↦ x·mask/(1−p) we differentiate.
    Generator g(2);
    gradcheck("dropout", [](const std::vector<Tensor>& in) {
        Generator fixed(42);
        return dropout(in[0], 0.5f, true, fixed);
    }, {grad_input({6, 7}, g)});
    gradcheck("dropout2d", [](const std::vector<Tensor>& in) {
        Generator fixed(43);
        return dropout2d(in[0], 0.3f, true, fixed);
    }, {grad_input({2, 4, 3, 2}, g)});
}
