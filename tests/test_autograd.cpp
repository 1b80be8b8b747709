// Autograd engine: hand-computed graphs, accumulation, graph freeing, guards, deep chains.
#include <doctest/doctest.h>

#include <nanotorch/nanotorch.hpp>

using namespace nanotorch;

namespace {
Tensor leaf(float v) {
    Tensor t = scalar_tensor(v);
    t.requires_grad_();
    return t;
}
}  // namespace

TEST_CASE("micrograd's sanity graph") {
    // The expression from micrograd's test_more_ops; reference values from PyTorch in double:
    // g = 24.70408163265306, dg/da = 138.83381924198252, dg/db = 645.5772594752186.
    // We run in float32, so we allow 1e-5 relative error (a handful of float32 ulps through ~20 ops).
    Tensor a = leaf(-4.0f), b = leaf(2.0f);
    Tensor c = a + b;
    Tensor d = a * b + b.pow(3.0f);
    c = c + (c + 1.0f);
    c = c + (1.0f + c + (-a));
    d = d + (d * 2.0f + (b + a).relu());
    d = d + (3.0f * d + (b - a).relu());
    Tensor e = c - d;
    Tensor f = e.pow(2.0f);
    Tensor g = f / 2.0f;
    g = g + 10.0f / f;
    g.backward();
    CHECK(g.item() == doctest::Approx(24.70408163265306).epsilon(1e-5));
    CHECK(a.grad().item() == doctest::Approx(138.83381924198252).epsilon(1e-5));
    CHECK(b.grad().item() == doctest::Approx(645.5772594752186).epsilon(1e-5));
}

TEST_CASE("diamond and reuse accumulate gradients from every path") {
    // y = x*x + x*3 -> dy/dx = 2x + 3 = 7 at x = 2 (x used three times).
    Tensor x = leaf(2.0f);
    Tensor y = x * x + x * 3.0f;
    y.backward();
    CHECK(x.grad().item() == 7.0f);
    // Diamond: u = x*2, v = u + u*u -> dv/dx = 2 + 2u*2 = 2 + 8x = 18 at x = 2.
    Tensor x2 = leaf(2.0f);
    Tensor u = x2 * 2.0f;
    Tensor v = u + u * u;
    v.backward();
    CHECK(x2.grad().item() == 18.0f);
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
    Tensor x = leaf(3.0f);
    (x * 2.0f).backward();
    (x * 2.0f).backward();
    CHECK(x.grad().item() == 4.0f);
    x.zero_grad();
    CHECK_FALSE(x.grad().defined());
    (x * 5.0f).backward();
    CHECK(x.grad().item() == 5.0f);
}

TEST_CASE("broadcast operands get gradients of their own shape") {
    Tensor a = ones({2, 3});
    a.requires_grad_();
    Tensor b = tensor({1, 2, 3});  // broadcast along dim 0
    b.requires_grad_();
    Tensor s = scalar_tensor(2.0f);  // broadcast everywhere
    s.requires_grad_();
    ((a * b) * s).sum().backward();
    CHECK(b.grad().shape() == Shape{3});
    CHECK(b.grad().to_vector() == std::vector<float>{4, 4, 4});   // sum over 2 rows of a*s = 2*2
    CHECK(a.grad().to_vector() == std::vector<float>{2, 4, 6, 2, 4, 6});
    CHECK(s.grad().shape() == Shape{});
    CHECK(s.grad().item() == 12.0f);  // sum of a*b = 2*(1+2+3)
}

TEST_CASE("non-scalar backward needs an explicit gradient") {
    Tensor x = ones({3});
    x.requires_grad_();
    Tensor y = x * 2.0f;
    CHECK_THROWS_AS(y.backward(), autograd_error);
    CHECK_THROWS_AS(y.backward(ones({2})), shape_error);
    y.backward(tensor({1, 2, 3}));
    CHECK(x.grad().to_vector() == std::vector<float>{2, 4, 6});
}

TEST_CASE("clear errors: no grad, freed graph") {
    Tensor plain = ones({1});
    CHECK_THROWS_AS(plain.backward(), autograd_error);
    Tensor x = leaf(1.0f);
    Tensor y = (x * x).exp();
    y.backward();
    try {
        y.backward();
        FAIL("expected autograd_error");
    } catch (const autograd_error& e) {
        CHECK(std::string(e.what()).find("second time") != std::string::npos);
    }
    Tensor z = (x * x).exp();
    z.backward(Tensor(), /*retain_graph=*/true);
    z.backward();  // allowed: the first pass kept the graph
    // d/dx exp(x^2) = 2x·exp(x^2) = 2e at x = 1, accumulated three times (y once, z twice).
    CHECK(x.grad().item() == doctest::Approx(3 * (2.0 * std::exp(1.0))).epsilon(1e-6));
}

TEST_CASE("NoGradGuard and detach stop recording") {
    Tensor x = leaf(1.0f);
    {
        NoGradGuard ng;
        Tensor y = x * 2.0f;
        CHECK_FALSE(y.requires_grad());
        CHECK(y.grad_fn() == nullptr);
        {
            EnableGradGuard eg;
            CHECK((x * 2.0f).requires_grad());
        }
        CHECK_FALSE(GradMode::is_enabled());
    }
    CHECK(GradMode::is_enabled());
    Tensor y = x.detach() * x;  // only the second factor carries gradient
    y.backward();
    CHECK(x.grad().item() == 1.0f);
    CHECK_THROWS_AS((x * 2.0f).requires_grad_(false), autograd_error);
}

TEST_CASE("a chain of 100,000 ops runs and frees without recursion") {
    Tensor x = leaf(1.0f);
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.0f + 0.0f;  // 200,000 nodes
    y.backward();
    CHECK(x.grad().item() == 1.0f);
    // Dropping the last handle destroys the graph; a recursive destructor would overflow here.
    y = Tensor();
    CHECK(x.grad().item() == 1.0f);
}

TEST_CASE("leaf gradient is an independent copy") {
    Tensor a = ones({2});
    a.requires_grad_();
    Tensor b = ones({2});
    b.requires_grad_();
    (a + b).sum().backward();  // AddBackward hands the same gradient to both inputs
    NoGradGuard ng;
    Tensor ga = a.grad();
    ga.fill_(5.0f);
    CHECK(b.grad().to_vector() == std::vector<float>{1, 1});
}

TEST_CASE("backward on a leaf accumulates the seed") {
    Tensor x = ones({2});
    x.requires_grad_();
    x.backward(tensor({3, 4}));
    CHECK(x.grad().to_vector() == std::vector<float>{3, 4});
}
