// tests/test_reduce.cpp — sum, mean, max, argmax: hand-computed values, errors, determinism and
// finite-difference gradient checks.
//
// Hand-computed cases use small integers, which float32 adds exactly in any order, so they
// are compared with ==. Gradchecks use tests/support/gradcheck.hpp's default tolerances (see
// its header for why atol = rtol = 1e-2 at h = 1e-2); sum and mean are linear, so there the
// central difference is exact up to rounding.
#include <doctest/doctest.h>

#include <nanotorch/ops/reduce.hpp>

#include "support/gradcheck.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace nanotorch;
using nanotorch::testing::distinct_input;
using nanotorch::testing::gradcheck;
using nanotorch::testing::grad_input;

namespace {
// [[1, 2, 3],
//  [4, 5, 6]]
Tensor m23() { return tensor({1, 2, 3, 4, 5, 6}, {2, 3}); }
}  // namespace

TEST_CASE("sum: hand-computed values over all, each dim, negative dims and keepdim") {
    const Tensor x = m23();
    const Tensor all = sum(x);  // 1+2+3+4+5+6 = 21
    CHECK(all.dim() == 0);
    CHECK(all.item() == 21.0f);
    CHECK(x.sum().item() == 21.0f);

    const Tensor s0 = sum(x, {0});  // columns: 1+4, 2+5, 3+6
    CHECK(s0.shape() == Shape{3});
    CHECK(s0.to_vector() == std::vector<float>{5, 7, 9});

    const Tensor s1 = x.sum({1});  // rows: 1+2+3, 4+5+6
    CHECK(s1.shape() == Shape{2});
    CHECK(s1.to_vector() == std::vector<float>{6, 15});
    CHECK(sum(x, {-1}).to_vector() == std::vector<float>{6, 15});

    const Tensor k1 = sum(x, {1}, true);
    CHECK(k1.shape() == Shape{2, 1});
    CHECK(k1.to_vector() == std::vector<float>{6, 15});
    CHECK(sum(x, {0}, true).shape() == Shape{1, 3});

    const Tensor both = sum(x, {1, 0});
    CHECK(both.shape() == Shape{});
    CHECK(both.item() == 21.0f);
    CHECK(sum(x, {0, 1}, true).shape() == Shape{1, 1});

    // An empty dims list reduces nothing (NumPy's axis=()).
    CHECK(sum(x, {}).shape() == Shape{2, 3});
    CHECK(sum(x, {}).to_vector() == x.to_vector());
}

TEST_CASE("sum: 3-D, non-contiguous input, empty and 0-D tensors") {
    // x[i][j][k] = 12i + 4j + k. Summing over i in {0, 1} and k in {0..3} (8 terms) for each j:
    //   Σ 12i = 4·12 = 48, Σ 4j = 8·4j = 32j, Σ k = 2·(0+1+2+3) = 12, so 32j + 60 = 60, 92, 124.
    const Tensor x = arange(24).reshape({2, 3, 4});
    CHECK(sum(x, {0, 2}).to_vector() == std::vector<float>{60, 92, 124});
    CHECK(sum(x, {2, 0}, true).shape() == Shape{1, 3, 1});

    // A transposed view: x.t() = [[1,4],[2,5],[3,6]], its column sums are the row sums of x.
    CHECK(sum(m23().t(), {0}).to_vector() == std::vector<float>{6, 15});

    CHECK(sum(zeros({0, 3})).item() == 0.0f);
    CHECK(sum(zeros({0, 3}), {0}).to_vector() == std::vector<float>{0, 0, 0});
    CHECK(sum(zeros({0, 3}), {1}).shape() == Shape{0});

    const Tensor s = scalar_tensor(2.5f);
    CHECK(sum(s).item() == 2.5f);
    CHECK(sum(s, {0}).item() == 2.5f);  // a 0-D tensor accepts dim 0 / -1, as in PyTorch
    CHECK(sum(s, {-1}).shape() == Shape{});
}

TEST_CASE("sum/mean: bad dims are value_errors naming the op") {
    const Tensor x = m23();
    CHECK_THROWS_AS(sum(x, {2}), value_error);
    CHECK_THROWS_AS(sum(x, {-3}), value_error);
    CHECK_THROWS_WITH_AS(sum(x, {1, -1}), "sum: dim -1 appears more than once in [1, -1]", value_error);
    CHECK_THROWS_WITH_AS(mean(x, {0, 0}), "mean: dim 0 appears more than once in [0, 0]", value_error);
    CHECK_THROWS_AS(sum(Tensor()), value_error);
}

TEST_CASE("mean: hand-computed values") {
    const Tensor x = m23();
    CHECK(mean(x).item() == 3.5f);  // 21 / 6
    CHECK(x.mean().dim() == 0);
    CHECK(mean(x, {0}).to_vector() == std::vector<float>{2.5f, 3.5f, 4.5f});  // (1+4)/2, ...
    CHECK(x.mean({1}).to_vector() == std::vector<float>{2, 5});             // 6/3, 15/3
    CHECK(mean(x, {1}, true).shape() == Shape{2, 1});
    CHECK(std::isnan(mean(zeros({0})).item()));  // 0/0, as in PyTorch
}

TEST_CASE("sum/mean backward: hand-computed gradients") {
    Tensor x = m23();
    x.requires_grad_();
    // y = row sums; dy/dx[i][j] = 1, so x.grad[i][j] = g[i].
    sum(x, {1}).backward(tensor({1, 2}));
    CHECK(x.grad().to_vector() == std::vector<float>{1, 1, 1, 2, 2, 2});

    x.zero_grad();
    // y = column means; x.grad[i][j] = g[j] / 2.
    mean(x, {0}, true).backward(tensor({1, 2, 3}, {1, 3}));
    CHECK(x.grad().to_vector() == std::vector<float>{0.5f, 1, 1.5f, 0.5f, 1, 1.5f});

    x.zero_grad();
    mean(x).backward();  // every element gets 1/6
    for (float g : x.grad().to_vector()) CHECK(g == doctest::Approx(1.0 / 6.0));

    // No node is recorded without grad mode.
    {
        NoGradGuard ng;
        CHECK_FALSE(sum(x).requires_grad());
    }
    CHECK_FALSE(sum(m23()).requires_grad());
    CHECK(sum(x, {0}).grad_fn() != nullptr);
    CHECK(std::string(mean(x).grad_fn()->name()) == "MeanBackward");
}

TEST_CASE("max: values, indices, ties and NaN") {
    // [[1, 5, 5],
    //  [7, 2, 7]]
    const Tensor x = tensor({1, 5, 5, 7, 2, 7}, {2, 3});
    const MaxResult r = max_with_indices(x, 1);
    CHECK(r.values.shape() == Shape{2});
    CHECK(r.values.to_vector() == std::vector<float>{5, 7});
    CHECK(r.indices == std::vector<std::int64_t>{1, 0});  // ties: the first maximum wins

    const MaxResult c = max_with_indices(x, 0, true);  // per column: max(1,7), max(5,2), max(5,7)
    CHECK(c.values.shape() == Shape{1, 3});
    CHECK(c.values.to_vector() == std::vector<float>{7, 5, 7});
    CHECK(c.indices == std::vector<std::int64_t>{1, 0, 1});

    CHECK(max(x, -1).to_vector() == std::vector<float>{5, 7});

    const float nan = std::numeric_limits<float>::quiet_NaN();
    const MaxResult n = max_with_indices(tensor({1, nan, 3, nan}), 0);
    CHECK(std::isnan(n.values.item()));
    CHECK(n.indices == std::vector<std::int64_t>{1});  // NaN counts as the maximum; the first one
}

TEST_CASE("max backward: the gradient goes to the first maximal element on ties") {
    Tensor x = tensor({1, 5, 5, 7, 2, 7}, {2, 3});
    x.requires_grad_();
    // Row 0's max 5 is taken from column 1 (not 2), row 1's 7 from column 0 (not 2).
    max(x, 1).backward(tensor({10, 20}));
    CHECK(x.grad().to_vector() == std::vector<float>{0, 10, 0, 20, 0, 0});
}

TEST_CASE("argmax: row-major order of the reduced shape") {
    const Tensor x = tensor({1, 5, 5, 7, 2, 7}, {2, 3});
    CHECK(argmax(x, 1) == std::vector<std::int64_t>{1, 0});
    CHECK(x.argmax(0) == std::vector<std::int64_t>{1, 0, 1});
    CHECK(x.argmax(-1) == std::vector<std::int64_t>{1, 0});
    // [2, 2, 3] along dim 1: output [2, 3], element (i, k) compares x[i][0][k] with x[i][1][k].
    // x[0] = [[0, 9, 2], [3, 1, 5]] -> {1, 0, 1};  x[1] = [[8, 0, 0], [1, 4, 0]] -> {0, 1, 0} (tie: 0).
    const Tensor y = tensor({0, 9, 2, 3, 1, 5, 8, 0, 0, 1, 4, 0}, {2, 2, 3});
    CHECK(argmax(y, 1) == std::vector<std::int64_t>{1, 0, 1, 0, 1, 0});
    // argmax never records a graph, even for an input requiring grad.
    Tensor z = y.detach();
    z.requires_grad_();
    CHECK(argmax(z, 2) == std::vector<std::int64_t>{1, 2, 0, 1});
}

TEST_CASE("max/argmax: errors") {
    const Tensor x = m23();
    CHECK_THROWS_AS(max(x, 2), value_error);
    CHECK_THROWS_AS(argmax(x, -3), value_error);
    CHECK_THROWS_WITH_AS(max(zeros({2, 0}), 1), "max: cannot reduce dim 1 of size 0 (shape [2, 0])", shape_error);
    CHECK_THROWS_AS(max(scalar_tensor(1.0f), 0), shape_error);
    CHECK(max(zeros({0, 3}), 1).shape() == Shape{0});  // nothing to reduce per row, and no rows
}

TEST_CASE("sum: the summation order does not depend on the thread count") {
    const int saved = get_num_threads();
    Generator gen(11);
    // 3 * 16 * 4096 + 5 elements: 49 blocks of 4096, enough for three parallel chunks.
    const Tensor big = uniform({3 * 16 * 4096 + 5}, -1.0f, 1.0f, gen);
    const Tensor rows = uniform({300, 517}, -1.0f, 1.0f, gen);
    std::vector<float> totals;
    std::vector<std::vector<float>> row_sums, col_sums;
    for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        totals.push_back(sum(big).item());
        row_sums.push_back(sum(rows, {1}).to_vector());
        col_sums.push_back(sum(rows, {0}).to_vector());
    }
    set_num_threads(saved);
    CHECK(totals[0] == totals[1]);
    CHECK(totals[0] == totals[2]);
    CHECK(row_sums[0] == row_sums[1]);
    CHECK(row_sums[0] == row_sums[2]);
    CHECK(col_sums[0] == col_sums[2]);
    // And it is accurate: within n·eps·Σ|x| of the double-precision sum (the worst-case bound
    // for float summation in any order; the blocked order is usually far better).
    double exact = 0.0, mag = 0.0;
    for (float v : big.to_vector()) {
        exact += v;
        mag += std::fabs(v);
    }
    CHECK(std::fabs(totals[0] - exact) <= 4096.0 * std::numeric_limits<float>::epsilon() * mag);
}

TEST_CASE("gradcheck: sum") {
    Generator gen(21);
    CHECK(gradcheck("sum all", [](const std::vector<Tensor>& in) { return sum(in[0]); },
                    {grad_input({3, 4}, gen)}));
    CHECK(gradcheck("sum dim 0", [](const std::vector<Tensor>& in) { return sum(in[0], {0}); },
                    {grad_input({3, 4}, gen)}));
    CHECK(gradcheck("sum dims {0, 2} keepdim", [](const std::vector<Tensor>& in) { return sum(in[0], {0, 2}, true); },
                    {grad_input({2, 3, 4}, gen)}));
    CHECK(gradcheck("sum dim -1", [](const std::vector<Tensor>& in) { return in[0].sum({-1}); },
                    {grad_input({2, 3, 4}, gen)}));
    CHECK(gradcheck("sum of a transposed view", [](const std::vector<Tensor>& in) { return sum(in[0].t(), {0}); },
                    {grad_input({3, 5}, gen)}));
}

TEST_CASE("gradcheck: mean") {
    Generator gen(22);
    CHECK(gradcheck("mean all", [](const std::vector<Tensor>& in) { return mean(in[0]); },
                    {grad_input({3, 4}, gen)}));
    CHECK(gradcheck("mean dim 1 keepdim", [](const std::vector<Tensor>& in) { return mean(in[0], {1}, true); },
                    {grad_input({2, 3, 4}, gen)}));
    CHECK(gradcheck("mean dims {0, 1}", [](const std::vector<Tensor>& in) { return in[0].mean({0, 1}); },
                    {grad_input({2, 3, 4}, gen)}));
}

TEST_CASE("gradcheck: max") {
    // distinct_input keeps all values >= 0.05 apart, i.e. > 2h for h = 1e-2: a ±h step can then
    // never change which element is the maximum. With a tie the function is not differentiable
    // there (the one-sided slopes differ), and the central difference would average them.
    Generator gen(23);
    CHECK(gradcheck("max dim 1", [](const std::vector<Tensor>& in) { return max(in[0], 1); },
                    {distinct_input({4, 5}, gen)}));
    CHECK(gradcheck("max dim 0 keepdim", [](const std::vector<Tensor>& in) { return max(in[0], 0, true); },
                    {distinct_input({4, 5}, gen)}));
    CHECK(gradcheck("max dim -1 of 3-D", [](const std::vector<Tensor>& in) { return max(in[0], -1); },
                    {distinct_input({2, 3, 4}, gen)}));
    CHECK(gradcheck("max dim 1 of 3-D", [](const std::vector<Tensor>& in) { return max(in[0], 1); },
                    {distinct_input({2, 3, 4}, gen)}));
}
