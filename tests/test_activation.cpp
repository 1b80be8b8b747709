// tests/test_activation.cpp — leaky_relu, elu, gelu, silu, hardswish, hardsigmoid, softplus, erf:
// values and gradients against PyTorch 1.13 (tests/data/activation_baseline.hpp), vector kernels
// against their scalar references, gradchecks away from the kinks, nn modules, bad arguments,
// ONNX export (graphs, refusals, export -> runtime equality, onnx.checker) and import (the ONNX
// backend node tests of these operators, when libonnx-testdata is installed).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>  // std::getenv, std::system (onnx.checker)
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>

#include "data/activation_baseline.hpp"
#include "support/gradcheck.hpp"

using namespace nanotorch;
using nanotorch::testing::gradcheck;

namespace {

using Fn = std::function<Tensor(const Tensor&)>;

// The op behind each baseline case (same names as tests/data/make_activation_baseline.py).
const std::map<std::string, Fn>& ops_by_case() {
    static const std::map<std::string, Fn> m = {
        {"leaky_relu_default", [](const Tensor& x) { return F::leaky_relu(x); }},
        {"leaky_relu_0_2", [](const Tensor& x) { return F::leaky_relu(x, 0.2f); }},
        {"elu_default", [](const Tensor& x) { return F::elu(x); }},
        {"elu_0_5", [](const Tensor& x) { return F::elu(x, 0.5f); }},
        {"gelu_none", [](const Tensor& x) { return F::gelu(x); }},
        {"gelu_tanh", [](const Tensor& x) { return F::gelu(x, "tanh"); }},
        {"silu", [](const Tensor& x) { return F::silu(x); }},
        {"hardswish", [](const Tensor& x) { return F::hardswish(x); }},
        {"hardsigmoid", [](const Tensor& x) { return F::hardsigmoid(x); }},
        {"softplus_default", [](const Tensor& x) { return F::softplus(x); }},
        {"softplus_beta2_th10", [](const Tensor& x) { return F::softplus(x, 2.0f, 10.0f); }},
        {"softplus_beta0_5", [](const Tensor& x) { return F::softplus(x, 0.5f); }},
        {"erf", [](const Tensor& x) { return nanotorch::erf(x); }},
    };
    return m;
}

// |got - want| <= atol + rtol·|want| at every element; returns the number of violations.
int count_far(const std::vector<float>& got, const std::vector<float>& want, double atol, double rtol,
              std::string* first = nullptr) {
    REQUIRE(got.size() == want.size());
    int bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
        if (d <= atol + rtol * std::fabs(static_cast<double>(want[i]))) continue;
        if (bad++ == 0 && first) {
            std::ostringstream os;
            os << "element " << i << ": got " << got[i] << ", want " << want[i];
            *first = os.str();
        }
    }
    return bad;
}

std::string message_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const error& e) {
        return e.what();
    }
    return "(no exception)";
}

std::vector<std::string> op_types(const onnx::ModelProto& m) {
    std::vector<std::string> out;
    for (const auto& n : m.graph.node) out.push_back(n.op_type);
    return out;
}

// A module applying one function, so that export traces exactly that op.
struct Apply : nn::Module {
    Fn fn;
    explicit Apply(Fn f) : fn(std::move(f)) {}
    Tensor forward(const Tensor& x) override { return fn(x); }
};

onnx::ExportOptions at_opset(std::int64_t opset) {
    onnx::ExportOptions o;
    o.opset = opset;
    return o;
}

// Inputs in [-5, 5) spaced 0.37 apart: none within 0.05 of the kinks at 0 and ±3 (checked).
Tensor kink_free_input(std::int64_t n = 27) {
    std::vector<float> v;
    for (std::int64_t i = 0; i < n; ++i) v.push_back(-4.9f + 0.37f * static_cast<float>(i));
    for (float x : v)
        for (float kink : {0.0f, -3.0f, 3.0f}) REQUIRE(std::fabs(x - kink) >= 0.05f);
    Tensor t = tensor(v, {3, n / 3});
    t.requires_grad_();
    return t;
}

}  // namespace

TEST_CASE("activations match PyTorch 1.13: values and gradients") {
    // Tolerance: |a − b| <= 1e-6 + 1e-5·|b|. Both sides are float32 but use different libm-style
    // implementations of exp/expm1/erf/tanh/log1p (glibc and xsimd here, Sleef and PyTorch's own
    // polynomials there), which agree to a few ulp (~1e-7 relative); the 1e-6 absolute term covers
    // results that are tiny differences of O(1) terms (gelu_tanh's gradient, silu at −6). A wrong
    // formula or branch is an error of 1e-3 or more (tanh- vs erf-GELU differ by up to 5e-4 here).
    const Tensor x0 = tensor(activation_baseline::X);
    const Tensor w = tensor(activation_baseline::W);
    REQUIRE(activation_baseline::activations.size() == ops_by_case().size());
    for (const auto& c : activation_baseline::activations) {
        CAPTURE(c.name);
        const Fn& f = ops_by_case().at(c.name);
        Tensor x = x0.clone();
        x.requires_grad_();
        const Tensor y = f(x);
        std::string first;
        CHECK_MESSAGE(count_far(y.to_vector(), c.y, 1e-6, 1e-5, &first) == 0, "forward ", first);
        (y * w).sum().backward();
        CHECK_MESSAGE(count_far(x.grad().to_vector(), c.grad, 1e-6, 1e-5, &first) == 0, "gradient ", first);
    }
}

TEST_CASE("vector kernels equal their scalar references") {
    // leaky_relu, hardsigmoid and hardswish do the same float operations in both forms: bit for bit.
    // gelu and silu use xsimd's erf/tanh/exp in the vector body and the C library's in the
    // reference: within 1e-6 + 2e-6·|ref| (a few ulp of O(1) values; inputs are in [-8, 8)).
    namespace k = kernels;
    Generator gen(31);
    for (std::int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1023}) {
        CAPTURE(n);
        const std::vector<float> x = uniform({n}, -8.0f, 8.0f, gen).to_vector();
        const std::vector<float> dy = uniform({n}, -1.0f, 1.0f, gen).to_vector();
        std::vector<float> a(static_cast<std::size_t>(n)), b(static_cast<std::size_t>(n));
        auto exact = [&](auto&& vec, auto&& ref) {
            vec(a.data());
            ref(b.data());
            CHECK(a == b);
        };
        auto close = [&](auto&& vec, auto&& ref) {
            vec(a.data());
            ref(b.data());
            std::string first;
            CHECK_MESSAGE(count_far(a, b, 1e-6, 2e-6, &first) == 0, first);
        };
        exact([&](float* o) { k::leaky_relu_forward(o, x.data(), 0.1f, n); },
              [&](float* o) { k::ref::leaky_relu_forward(o, x.data(), 0.1f, n); });
        exact([&](float* o) { k::leaky_relu_backward(o, dy.data(), x.data(), 0.1f, n); },
              [&](float* o) { k::ref::leaky_relu_backward(o, dy.data(), x.data(), 0.1f, n); });
        exact([&](float* o) { k::hardsigmoid_forward(o, x.data(), n); },
              [&](float* o) { k::ref::hardsigmoid_forward(o, x.data(), n); });
        exact([&](float* o) { k::hardsigmoid_backward(o, dy.data(), x.data(), n); },
              [&](float* o) { k::ref::hardsigmoid_backward(o, dy.data(), x.data(), n); });
        exact([&](float* o) { k::hardswish_forward(o, x.data(), n); },
              [&](float* o) { k::ref::hardswish_forward(o, x.data(), n); });
        exact([&](float* o) { k::hardswish_backward(o, dy.data(), x.data(), n); },
              [&](float* o) { k::ref::hardswish_backward(o, dy.data(), x.data(), n); });
        for (bool t : {false, true}) {
            close([&](float* o) { k::gelu_forward(o, x.data(), t, n); },
                  [&](float* o) { k::ref::gelu_forward(o, x.data(), t, n); });
            close([&](float* o) { k::gelu_backward(o, dy.data(), x.data(), t, n); },
                  [&](float* o) { k::ref::gelu_backward(o, dy.data(), x.data(), t, n); });
        }
        close([&](float* o) { k::silu_forward(o, x.data(), n); }, [&](float* o) { k::ref::silu_forward(o, x.data(), n); });
        close([&](float* o) { k::silu_backward(o, dy.data(), x.data(), n); },
              [&](float* o) { k::ref::silu_backward(o, dy.data(), x.data(), n); });
    }
    SUBCASE("NaN propagates and the kinks take PyTorch's one-sided values") {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        const Tensor x = tensor({nan, -3.0f, 0.0f, 3.0f});
        CHECK(std::isnan(F::hardswish(x).to_vector()[0]));
        CHECK(std::isnan(F::hardsigmoid(x).to_vector()[0]));
        CHECK(std::isnan(F::leaky_relu(x).to_vector()[0]));
        Tensor xs = tensor({-3.0f, 0.0f, 3.0f});
        xs.requires_grad_();
        F::hardswish(xs).sum().backward();
        CHECK(xs.grad().to_vector() == std::vector<float>{-0.5f, 0.5f, 1.5f});  // x/3 + 1/2 on [-3, 3]
        xs.zero_grad();
        F::hardsigmoid(xs).sum().backward();
        CHECK(xs.grad().to_vector() == std::vector<float>{0.0f, 1.0f / 6.0f, 0.0f});  // open interval
        xs.zero_grad();
        F::leaky_relu(xs, 0.25f).sum().backward();
        CHECK(xs.grad().to_vector() == std::vector<float>{0.25f, 0.25f, 1.0f});  // slope at 0
    }
}

TEST_CASE("gradcheck: every activation, away from its kinks") {
    // The default gradcheck tolerances (atol = rtol = 1e-2 with h = 1e-2, see gradcheck.hpp).
    // kink_free_input keeps every x at least 0.05 = 5h from 0 and ±3.
    const std::vector<std::pair<std::string, Fn>> cases = {
        {"leaky_relu", [](const Tensor& x) { return F::leaky_relu(x, 0.1f); }},
        {"elu", [](const Tensor& x) { return F::elu(x, 0.7f); }},
        {"gelu", [](const Tensor& x) { return F::gelu(x); }},
        {"gelu_tanh", [](const Tensor& x) { return F::gelu(x, "tanh"); }},
        {"silu", [](const Tensor& x) { return F::silu(x); }},
        {"hardswish", [](const Tensor& x) { return F::hardswish(x); }},
        {"hardsigmoid", [](const Tensor& x) { return F::hardsigmoid(x); }},
        {"hardsigmoid_affine", [](const Tensor& x) { return hardsigmoid_affine(x, 0.3f, 0.4f); }},
        {"softplus", [](const Tensor& x) { return F::softplus(x); }},
        // threshold 3 with beta 2: the linear branch starts at x = 1.5 (no input within 0.05 of it)
        {"softplus_linear_branch", [](const Tensor& x) { return F::softplus(x, 2.0f, 3.0f); }},
        {"erf", [](const Tensor& x) { return nanotorch::erf(x); }},
    };
    for (const auto& [name, f] : cases) {
        const Tensor x = kink_free_input();
        for (float v : x.to_vector()) REQUIRE(std::fabs(v - 1.5f) >= 0.05f);
        gradcheck(name, [f = f](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
    }
}

TEST_CASE("nn modules: defaults, repr and forward as F") {
    const Tensor x = tensor({-2.5f, -0.5f, 0.25f, 4.0f});
    auto same = [&](nn::Module& m, const Tensor& want) { CHECK(m.forward(x).to_vector() == want.to_vector()); };
    nn::LeakyReLU lrelu;
    nn::ELU elu_m(0.5f);
    nn::GELU gelu_m("tanh");
    nn::SiLU silu_m;
    nn::Hardswish hswish;
    nn::Hardsigmoid hsig;
    nn::Softplus sp(2.0f, 15.0f);
    same(*lrelu, F::leaky_relu(x, 0.01f));
    same(*elu_m, F::elu(x, 0.5f));
    same(*gelu_m, F::gelu(x, "tanh"));
    same(*silu_m, F::silu(x));
    same(*hswish, F::hardswish(x));
    same(*hsig, F::hardsigmoid(x));
    same(*sp, F::softplus(x, 2.0f, 15.0f));
    auto repr = [](const auto& m) {
        std::ostringstream os;
        os << m;
        return os.str();
    };
    CHECK(repr(lrelu) == "LeakyReLU(negative_slope=0.01)");
    CHECK(repr(elu_m) == "ELU(alpha=0.5)");
    CHECK(repr(nn::GELU()) == "GELU(approximate='none')");
    CHECK(repr(silu_m) == "SiLU()");
    CHECK(repr(sp) == "Softplus(beta=2, threshold=15)");
    // parameter-free: nothing in the state_dict
    CHECK(nn::state_dict(*nn::Sequential(nn::LeakyReLU(), nn::GELU(), nn::Softplus())).empty());
}

TEST_CASE("relu of a temporary reuses its buffer only where nothing else can see it") {
    const Tensor src = tensor({-2.0f, -0.0f, 0.5f, 3.0f, -1.0f, 7.0f}, {2, 3});
    const std::vector<float> want = {0.0f, 0.0f, 0.5f, 3.0f, 0.0f, 7.0f};
    {
        NoGradGuard no_grad;
        // A fresh temporary: its buffer is the result's, with the values of relu(const&).
        Tensor t = src.clone();
        const float* data = t.data_ptr();
        const Tensor y = relu(std::move(t));
        CHECK(y.data_ptr() == data);
        CHECK(y.to_vector() == relu(src).to_vector());
        CHECK(y.to_vector() == want);
        // A view shares its storage with a tensor the caller still holds: left alone.
        Tensor base = src.clone();
        const Tensor z = relu(base.reshape({3, 2}));
        CHECK(z.data_ptr() != base.data_ptr());
        CHECK(base.to_vector() == src.to_vector());
        CHECK(z.to_vector() == want);
        // A second handle to the same tensor: left alone.
        Tensor a = src.clone();
        Tensor b = a;
        const Tensor w = relu(std::move(a));
        CHECK(w.data_ptr() != b.data_ptr());
        CHECK(b.to_vector() == src.to_vector());
        // A tensor over the caller's memory (from_blob) is never written, temporary or not.
        std::vector<float> user = src.to_vector();
        const Tensor fb = relu(from_blob(user.data(), {2, 3}));
        CHECK(fb.data_ptr() != user.data());
        CHECK(user == src.to_vector());
        CHECK(fb.to_vector() == want);
        // A non-contiguous temporary (a transpose's view of a temporary) is copied.
        const Tensor tr = relu(src.clone().t());
        CHECK(tr.is_contiguous());
        CHECK(tr.to_vector() == relu(src.t()).to_vector());
    }
    // With autograd recording, the op and its gradient are relu's: nothing is reused.
    Tensor leaf = src.clone();
    leaf.requires_grad_(true);
    Tensor mid = leaf * 2.0f;
    const float* mid_data = mid.data_ptr();
    const Tensor y = relu(std::move(mid));
    CHECK(y.data_ptr() != mid_data);
    y.sum().backward();
    CHECK(leaf.grad().to_vector() == std::vector<float>{0.0f, 0.0f, 2.0f, 2.0f, 0.0f, 2.0f});
}

TEST_CASE("bad arguments are value_errors naming the argument") {
    const Tensor x = tensor({1.0f, 2.0f});
    CHECK(message_of([&] { F::gelu(x, "erf"); }).find("approximate must be \"none\" or \"tanh\"") != std::string::npos);
    CHECK_THROWS_AS(nn::GELU("fast"), value_error);
    CHECK(message_of([&] { F::softplus(x, 1.0f, -1.0f); }).find("threshold must be >= 0, got -1") != std::string::npos);
    CHECK(message_of([&] { F::softplus(x, 0.0f); }).find("beta must be finite and non-zero") != std::string::npos);
    CHECK_THROWS_AS(F::softplus(x, 1.0f, std::numeric_limits<float>::quiet_NaN()), value_error);
    CHECK_THROWS_AS(nn::Softplus(1.0f, -5.0f), value_error);
    CHECK_THROWS_AS(F::leaky_relu(Tensor()), error);  // an undefined tensor, as relu
}

TEST_CASE("export: graphs per opset, and the runtime computes the module's forward") {
    struct Expect {
        std::string name;
        Fn fn;
        std::int64_t opset;
        std::vector<std::string> ops;
        bool bit_exact;  // single-node mappings (and ONNX.js compositions in the kernel's order) run the same float ops
    };
    const Fn hsig = [](const Tensor& x) { return F::hardsigmoid(x); };
    const Fn hswish = [](const Tensor& x) { return F::hardswish(x); };
    const Fn gelu_tanh = [](const Tensor& x) { return F::gelu(x, "tanh"); };
    const std::vector<std::string> gelu_tanh_ops = {"Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"};
    const std::vector<Expect> cases = {
        {"leaky_relu", [](const Tensor& x) { return F::leaky_relu(x, 0.2f); }, 9, {"LeakyRelu"}, true},
        {"elu", [](const Tensor& x) { return F::elu(x, 0.5f); }, 9, {"Elu"}, true},
        {"silu", [](const Tensor& x) { return F::silu(x); }, 9, {"Sigmoid", "Mul"}, false},
        {"hardsigmoid", hsig, 9, {"Add", "Clip", "Div"}, true},
        {"hardsigmoid", hsig, 13, {"HardSigmoid"}, true},
        {"hardswish", hswish, 9, {"Add", "Clip", "Mul", "Div"}, true},
        {"hardswish", hswish, 13, {"HardSigmoid", "Mul"}, false},
        {"hardswish", hswish, 14, {"HardSwish"}, true},
        {"gelu_tanh", gelu_tanh, 9, gelu_tanh_ops, false},
        {"gelu_tanh", gelu_tanh, 17, gelu_tanh_ops, false},
        {"gelu", [](const Tensor& x) { return F::gelu(x); }, 13, {"Div", "Erf", "Add", "Mul", "Mul"}, false},
        {"softplus", [](const Tensor& x) { return F::softplus(x); }, 13, {"Softplus"}, true},
        {"softplus_beta", [](const Tensor& x) { return F::softplus(x, 2.0f, 20.0f); }, 13, {"Mul", "Softplus", "Div"}, false},
        {"erf", [](const Tensor& x) { return nanotorch::erf(x); }, 13, {"Erf"}, true},
        {"hardsigmoid_affine", [](const Tensor& x) { return hardsigmoid_affine(x, 0.2f, 0.4f); }, 9, {"Mul", "Add", "Clip"}, false},
        {"hardsigmoid_affine", [](const Tensor& x) { return hardsigmoid_affine(x, 0.2f, 0.4f); }, 13, {"HardSigmoid"}, true},
    };
    Generator gen(5);
    const Tensor x = uniform({4, 33}, -7.0f, 7.0f, gen);  // 132 values: vector body and scalar tail
    for (const auto& c : cases) {
        CAPTURE(c.name);
        CAPTURE(c.opset);
        Apply m(c.fn);
        const onnx::ModelProto model = onnx::trace_module(m, x, at_opset(c.opset));
        CHECK(op_types(model) == c.ops);
        const onnx::Runtime rt(model);
        const std::vector<float> got = rt.run({{"input", x}})[0].second.to_vector();
        const std::vector<float> want = c.fn(x).to_vector();
        if (c.bit_exact) {
            CHECK(got == want);
        } else {
            // Composed forms round differently (and the runtime's Tanh/Sigmoid/Erf are the C
            // library's where the fused kernel may use xsimd's): a few ulp of O(1) values.
            std::string first;
            CHECK_MESSAGE(count_far(got, want, 2e-6, 2e-6, &first) == 0, first);
        }
    }
}

TEST_CASE("export: refusals name the fix") {
    const Tensor x = tensor({-1.0f, 0.5f, 2.0f});
    auto refusal = [&](Fn f, std::int64_t opset) {
        Apply m(std::move(f));
        try {
            onnx::trace_module(m, x, at_opset(opset));
        } catch (const unsupported_error& e) {
            return std::string(e.what());
        }
        return std::string("(exported)");
    };
    const std::string gelu9 = refusal([](const Tensor& t) { return F::gelu(t); }, 9);
    CHECK(gelu9.find("Erf") != std::string::npos);
    CHECK(gelu9.find("\"tanh\"") != std::string::npos);
    CHECK(gelu9.find("opset = 13") != std::string::npos);
    const std::string sp_threshold = refusal([](const Tensor& t) { return F::softplus(t, 1.0f, 10.0f); }, 13);
    CHECK(sp_threshold.find("threshold = 10") != std::string::npos);
    CHECK(sp_threshold.find("14.5561") != std::string::npos);
    CHECK(refusal([](const Tensor& t) { return F::softplus(t); }, 9).find("Softplus is not available in the ONNX.js") !=
          std::string::npos);
    CHECK(refusal([](const Tensor& t) { return nanotorch::erf(t); }, 9).find("opset = 13") != std::string::npos);
}

TEST_CASE("kSoftplusExactThreshold: above it, log(1 + exp(x)) rounds to x") {
    // The measurement behind the constant, repeated over every float in (threshold, 64]: the
    // float64 softplus rounds to x itself, so the linear branch loses nothing.
    int differ = 0;
    for (float v = std::nextafter(kSoftplusExactThreshold, 100.0f); v <= 64.0f; v = std::nextafter(v, 100.0f)) {
        const double exact = static_cast<double>(v) + std::log1p(std::exp(-static_cast<double>(v)));
        differ += static_cast<float>(exact) != v;
    }
    CHECK(differ == 0);
    // ... and just below it they differ (the bound is tight to 1e-4).
    const float below = 14.5560f;
    CHECK(static_cast<float>(static_cast<double>(below) + std::log1p(std::exp(-static_cast<double>(below)))) != below);
}

TEST_CASE("import: the ONNX backend node tests of these operators run through the ops") {
    namespace conf = onnx::conformance;
    const std::filesystem::path root = "/usr/share/libonnx-testdata/data/node";
    if (!std::filesystem::exists(root)) {
        MESSAGE("libonnx-testdata is not installed; skipping the backend-test directories");
        return;
    }
    // (test_elu*, test_hardsigmoid* and test_softplus* are written at opsets 6 and 1, below the runtime's
    // 7..17; the next test case covers those operators.)
    for (const char* name : {"test_leakyrelu", "test_leakyrelu_default", "test_leakyrelu_example", "test_hardswish",
                             "test_hardswish_expanded", "test_erf"}) {
        const conf::Result r = conf::run_test_dir(root / name);
        CAPTURE(r.name);
        CAPTURE(r.detail);
        CHECK(r.status == conf::Status::pass);
    }
    // HardSwish before opset 14 is not an operator: refused up front with the reason.
    onnx::ModelProto m = onnx::trace_module(*std::make_shared<Apply>([](const Tensor& t) { return F::hardswish(t); }),
                                            tensor({1.0f}), at_opset(14));
    m.opset_import[0].version = 13;
    CHECK(message_of([&] { onnx::Runtime rt(m); }).find("HardSwish at opset 13 (the operator exists from opset 14)") !=
          std::string::npos);
    // Erf exists from opset 9.
    onnx::ModelProto e = onnx::trace_module(*std::make_shared<Apply>([](const Tensor& t) { return nanotorch::erf(t); }),
                                            tensor({1.0f}), at_opset(13));
    e.opset_import[0].version = 8;
    CHECK(message_of([&] { onnx::Runtime rt(e); }).find("Erf at opset 8 (the operator exists from opset 9)") !=
          std::string::npos);
}

TEST_CASE("import: Elu, HardSigmoid, Softplus and LeakyRelu follow the ONNX spec, attribute defaults included") {
    // Reference: the spec's formulas evaluated in double, rounded once. Tolerance 1e-6 + 1e-6·|ref|
    // (float32 evaluation of exp/log1p and one multiply-add: a few ulp).
    Generator gen(8);
    const Tensor x = uniform({40}, -6.0f, 6.0f, gen);
    const std::vector<float> xv = x.to_vector();
    struct Spec {
        Fn fn;                    // traced to produce the node
        std::string attr_to_drop;  // "" or an attribute removed to test the spec default
        std::function<double(double)> formula;
    };
    const std::vector<Spec> specs = {
        {[](const Tensor& t) { return F::elu(t, 2.0f); }, "", [](double v) { return v < 0 ? 2.0 * std::expm1(v) : v; }},
        {[](const Tensor& t) { return F::elu(t, 2.0f); }, "alpha", [](double v) { return v < 0 ? std::expm1(v) : v; }},
        {[](const Tensor& t) { return hardsigmoid_affine(t, 0.5f, 0.6f); }, "",
         [](double v) { return std::max(0.0, std::min(1.0, 0.5 * v + 0.6)); }},
        {[](const Tensor& t) { return hardsigmoid_affine(t, 0.5f, 0.6f); }, "alpha",  // default alpha 0.2
         [](double v) { return std::max(0.0, std::min(1.0, static_cast<double>(0.2f) * v + 0.6)); }},
        {[](const Tensor& t) { return F::hardsigmoid(t); }, "",
         [](double v) { return std::max(0.0, std::min(1.0, v / 6.0 + 0.5)); }},
        {[](const Tensor& t) { return F::softplus(t); }, "", [](double v) { return std::log1p(std::exp(v)); }},
        {[](const Tensor& t) { return F::leaky_relu(t, 0.3f); }, "alpha",  // default alpha 0.01
         [](double v) { return v < 0 ? static_cast<double>(0.01f) * v : v; }},
    };
    for (std::size_t k = 0; k < specs.size(); ++k) {
        CAPTURE(k);
        Apply m(specs[k].fn);
        onnx::ModelProto model = onnx::trace_module(m, x, at_opset(13));
        REQUIRE(model.graph.node.size() == 1);
        auto& attrs = model.graph.node[0].attribute;
        attrs.erase(std::remove_if(attrs.begin(), attrs.end(),
                                   [&](const onnx::AttributeProto& a) { return a.name == specs[k].attr_to_drop; }),
                    attrs.end());
        const std::vector<float> got = onnx::Runtime(model).run({{"input", x}})[0].second.to_vector();
        std::vector<float> want;
        for (float v : xv) want.push_back(static_cast<float>(specs[k].formula(v)));
        std::string first;
        CHECK_MESSAGE(count_far(got, want, 1e-6, 1e-6, &first) == 0, first);
    }
}

namespace {

// Writes every activation's export at opsets 9, 13, 14 and 17 into `dir` as <name>_opset<k>.onnx
// (the opset-9 refusals tested above are skipped), the input [4, 33] as input.f32 and each
// module's forward as <name>.f32 (raw little-endian float32, as tests/js/check_activations.mjs reads).
int write_exports(const std::filesystem::path& dir) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto write_f32 = [&](const std::string& file, const Tensor& t) {
        const std::vector<float> v = t.to_vector();
        std::ofstream(dir / file, std::ios::binary)
            .write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
    };
    Generator gen(4);
    const Tensor x = uniform({4, 33}, -7.0f, 7.0f, gen);
    write_f32("input.f32", x);
    const std::vector<std::pair<std::string, Fn>> all = {
        {"leaky_relu", [](const Tensor& t) { return F::leaky_relu(t, 0.2f); }},
        {"elu", [](const Tensor& t) { return F::elu(t, 0.5f); }},
        {"silu", [](const Tensor& t) { return F::silu(t); }},
        {"hardsigmoid", [](const Tensor& t) { return F::hardsigmoid(t); }},
        {"hardswish", [](const Tensor& t) { return F::hardswish(t); }},
        {"gelu_tanh", [](const Tensor& t) { return F::gelu(t, "tanh"); }},
        {"gelu", [](const Tensor& t) { return F::gelu(t); }},
        {"softplus", [](const Tensor& t) { return F::softplus(t); }},
        {"softplus_beta2", [](const Tensor& t) { return F::softplus(t, 2.0f); }},
        {"erf", [](const Tensor& t) { return nanotorch::erf(t); }},
    };
    int written = 0;
    for (const auto& [name, f] : all) {
        write_f32(name + ".f32", f(x));
        for (std::int64_t opset : {9, 13, 14, 17}) {
            Apply m(f);
            try {
                onnx::export_onnx(m, x, (dir / (name + "_opset" + std::to_string(opset) + ".onnx")).string(),
                                  at_opset(opset));
                ++written;
            } catch (const unsupported_error&) {  // the refusals tested above (gelu, softplus, erf at opset 9)
                CHECK(opset == 9);
            }
        }
    }
    return written;
}

// Runs `cmd` with its output captured; returns {exit status, output}.
std::pair<int, std::string> run_tool(const std::string& cmd, const std::filesystem::path& log_path) {
    const int rc = std::system((cmd + " > " + log_path.string() + " 2>&1").c_str());
    std::ifstream log(log_path);
    std::stringstream text;
    text << log.rdbuf();
    return {rc, text.str()};
}

}  // namespace

TEST_CASE("onnx.checker accepts every exported graph (python3-onnx)") {
    const char* src = std::getenv("NANOTORCH_SOURCE_DIR");
    if (!src || std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") != 0) {
        MESSAGE("NANOTORCH_SOURCE_DIR unset or python3-onnx missing; skipping onnx.checker");
        return;
    }
    const auto dir = std::filesystem::temp_directory_path() / "nanotorch_test_activation_checker";
    CHECK(write_exports(dir) == 36);
    // (no structured bindings: clang 14 cannot capture them in INFO's lambda)
    const std::pair<int, std::string> r = run_tool(
        "/usr/bin/python3 " + std::string(src) + "/tests/python/check_models.py " + dir.string(), dir / "checker.log");
    const int rc = r.first;
    const std::string& text = r.second;
    INFO(text);
    CHECK(rc == 0);
    CHECK(text.find("36 passed, 0 failed") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("onnxruntime-node and ONNX.js 0.1.8 compute what the module computed") {
    // tests/js/check_activations.mjs runs every export in onnxruntime-node and the opset-9 ones in
    // ONNX.js (cpu backend); its tolerance is stated there. Skipped without node or node_modules.
    const char* src = std::getenv("NANOTORCH_SOURCE_DIR");
    const std::filesystem::path root = src ? src : "";
    if (!src || !std::filesystem::exists(root / "node_modules/onnxjs") ||
        !std::filesystem::exists(root / "node_modules/onnxruntime-node") ||
        std::system("node --version >/dev/null 2>&1") != 0) {
        MESSAGE("node or node_modules (onnxjs, onnxruntime-node) missing; skipping the JavaScript runtimes");
        return;
    }
    const auto dir = std::filesystem::temp_directory_path() / "nanotorch_test_activation_js";
    REQUIRE(write_exports(dir) == 36);
    const std::pair<int, std::string> r =
        run_tool("node " + (root / "tests/js/check_activations.mjs").string() + " " + dir.string(), dir / "node.log");
    const int rc = r.first;
    const std::string& text = r.second;
    INFO(text);
    CHECK(rc == 0);
    CHECK(text.find("onnxruntime-node: 36 passed, 0 failed; onnxjs: 6 passed, 0 failed") != std::string::npos);
    std::filesystem::remove_all(dir);
}
