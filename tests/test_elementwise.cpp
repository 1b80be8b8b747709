// Elementwise and layout ops: hand-computed values and finite-difference gradient checks.
#include <doctest/doctest.h>

#include <cmath>

#include <nanotorch/nanotorch.hpp>

#include "support/gradcheck.hpp"

using namespace nanotorch;
using nanotorch::testing::distinct_input;
using nanotorch::testing::grad_input;
using nanotorch::testing::gradcheck;
using nanotorch::testing::GradcheckOptions;
using V = std::vector<Tensor>;

TEST_CASE("arithmetic values and broadcasting") {
    Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor r = tensor({10, 20, 30});
    Tensor c = tensor({100, 200}, {2, 1});
    CHECK((a + r).to_vector() == std::vector<float>{11, 22, 33, 14, 25, 36});
    CHECK((a - c).to_vector() == std::vector<float>{-99, -98, -97, -196, -195, -194});
    CHECK((a * r).to_vector() == std::vector<float>{10, 40, 90, 40, 100, 180});
    CHECK((r / tensor({2})).to_vector() == std::vector<float>{5, 10, 15});
    CHECK((c + r).shape() == Shape{2, 3});  // [2,1] with [3] -> [2,3]
    CHECK((a * 2.0f).to_vector() == std::vector<float>{2, 4, 6, 8, 10, 12});
    CHECK((1.0f - r).to_vector() == std::vector<float>{-9, -19, -29});
    CHECK((60.0f / r).to_vector() == std::vector<float>{6, 3, 2});
    CHECK((-r).to_vector() == std::vector<float>{-10, -20, -30});
    CHECK((r / 10.0f - 1.0f).to_vector() == std::vector<float>{0, 1, 2});
    CHECK_THROWS_AS(a + tensor({1, 2}), shape_error);
    // A strided (transposed) operand is read through its strides.
    CHECK((a.t() + 0.0f).to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("pointwise functions") {
    Tensor x = tensor({-2, -0.5f, 0, 0.5f, 2});
    CHECK(x.relu().to_vector() == std::vector<float>{0, 0, 0, 0.5f, 2});
    const auto s = x.sigmoid().to_vector();
    const auto t = x.tanh().to_vector();
    const auto xv = x.to_vector();
    for (std::size_t i = 0; i < xv.size(); ++i) {
        // Tolerance 1e-6: float32 evaluation of the same formula as the double reference.
        CHECK(s[i] == doctest::Approx(1.0 / (1.0 + std::exp(-static_cast<double>(xv[i])))).epsilon(1e-6));
        CHECK(t[i] == doctest::Approx(std::tanh(static_cast<double>(xv[i]))).epsilon(1e-6));
    }
    CHECK(tensor({-1000.0f, 1000.0f}).sigmoid().to_vector() == std::vector<float>{0.0f, 1.0f});  // no overflow
    CHECK(tensor({0, 1}).exp().to_vector()[1] == doctest::Approx(2.718281828).epsilon(1e-6));
    CHECK(tensor({1, 4, 9}).sqrt().to_vector() == std::vector<float>{1, 2, 3});
    CHECK(tensor({1, 4, 9}).pow(0.5f).to_vector() == std::vector<float>{1, 2, 3});
    CHECK(tensor({2, 3}).pow(2.0f).to_vector() == std::vector<float>{4, 9});
    CHECK(tensor({1.0f}).log().item() == 0.0f);
    // relu's gradient at exactly 0 is 0 (PyTorch's convention).
    Tensor z = zeros({1});
    z.requires_grad_();
    z.relu().sum().backward();
    CHECK(z.grad().item() == 0.0f);
}

TEST_CASE("gradcheck: binary ops with broadcasting and scalars") {
    Generator gen(1);
    gradcheck("add", [](const V& v) { return v[0] + v[1]; }, {grad_input({2, 3}, gen), grad_input({3}, gen)});
    gradcheck("sub", [](const V& v) { return v[0] - v[1]; }, {grad_input({2, 1, 3}, gen), grad_input({4, 1}, gen)});
    gradcheck("mul", [](const V& v) { return v[0] * v[1]; }, {grad_input({2, 3}, gen), grad_input({2, 1}, gen)});
    // div: keep the denominator in [0.5, 1.5] so 1/b is smooth at the step size.
    gradcheck("div", [](const V& v) { return v[0] / v[1]; },
              {grad_input({2, 3}, gen), grad_input({3}, gen, 0.5f, 1.5f)});
    gradcheck("mul same tensor", [](const V& v) { return v[0] * v[0]; }, {grad_input({4}, gen)});
    gradcheck("scalar affine", [](const V& v) { return (2.0f - v[0] * 3.0f) / 4.0f + 1.0f; }, {grad_input({5}, gen)});
    gradcheck("rdiv", [](const V& v) { return 2.0f / v[0]; }, {grad_input({5}, gen, 0.5f, 2.0f)});
    gradcheck("neg", [](const V& v) { return -v[0]; }, {grad_input({3}, gen)});
}

TEST_CASE("gradcheck: unary functions") {
    Generator gen(2);
    gradcheck("exp", [](const V& v) { return v[0].exp(); }, {grad_input({2, 3}, gen)});
    gradcheck("log", [](const V& v) { return v[0].log(); }, {grad_input({2, 3}, gen, 0.5f, 2.0f)});
    gradcheck("sqrt", [](const V& v) { return v[0].sqrt(); }, {grad_input({2, 3}, gen, 0.5f, 2.0f)});
    gradcheck("pow 3", [](const V& v) { return v[0].pow(3.0f); }, {grad_input({2, 3}, gen)});
    gradcheck("pow -1.5", [](const V& v) { return v[0].pow(-1.5f); }, {grad_input({6}, gen, 0.5f, 2.0f)});
    gradcheck("sigmoid", [](const V& v) { return v[0].sigmoid(); }, {grad_input({2, 3}, gen, -3.0f, 3.0f)});
    gradcheck("tanh", [](const V& v) { return v[0].tanh(); }, {grad_input({2, 3}, gen, -2.0f, 2.0f)});
    // relu has a kink at 0: distinct_input keeps every value >= 0.025 away from it, beyond the
    // 0.01 step, so the central difference never straddles the kink.
    gradcheck("relu", [](const V& v) { return v[0].relu(); }, {distinct_input({4, 5}, gen)});
}

TEST_CASE("gradcheck: layout ops") {
    Generator gen(3);
    gradcheck("view", [](const V& v) { return v[0].view({3, 2}) * tensor({1, 2}); }, {grad_input({2, 3}, gen)});
    gradcheck("reshape of transpose", [](const V& v) { return v[0].t().reshape({-1}); }, {grad_input({2, 3}, gen)});
    gradcheck("flatten", [](const V& v) { return v[0].flatten(1); }, {grad_input({2, 3, 2}, gen)});
    gradcheck("narrow", [](const V& v) { return v[0].narrow(1, 1, 2); }, {grad_input({3, 4}, gen)});
    gradcheck("slice", [](const V& v) { return slice(v[0], 0, 1, 3); }, {grad_input({4, 2}, gen)});
    gradcheck("select", [](const V& v) { return v[0].select(1, 2); }, {grad_input({3, 4}, gen)});
    gradcheck("transpose", [](const V& v) { return v[0].transpose(0, 2); }, {grad_input({2, 3, 4}, gen)});
    gradcheck("permute", [](const V& v) { return v[0].permute({1, 2, 0}) * 2.0f; }, {grad_input({2, 3, 4}, gen)});
    gradcheck("clone", [](const V& v) { return v[0].clone(); }, {grad_input({3}, gen)});
    gradcheck("contiguous", [](const V& v) { return v[0].t().contiguous(); }, {grad_input({2, 3}, gen)});
    gradcheck("cat dim 1", [](const V& v) { return cat({v[0], v[1], v[0]}, 1); },
              {grad_input({2, 2}, gen), grad_input({2, 3}, gen)});
    gradcheck("cat dim 0", [](const V& v) { return cat({v[0], v[1]}, 0); },
              {grad_input({1, 3}, gen), grad_input({2, 3}, gen)});
}

TEST_CASE("narrow gradient lands in the right place") {
    Tensor x = zeros({2, 3});
    x.requires_grad_();
    x.narrow(1, 1, 2).backward(tensor({1, 2, 3, 4}, {2, 2}));
    CHECK(x.grad().to_vector() == std::vector<float>{0, 1, 2, 0, 3, 4});
    Tensor y = zeros({2, 3});
    y.requires_grad_();
    y.select(0, 1).backward(tensor({7, 8, 9}));
    CHECK(y.grad().to_vector() == std::vector<float>{0, 0, 0, 7, 8, 9});
}
