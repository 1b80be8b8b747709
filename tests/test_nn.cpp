// Tests for nn/module.hpp, nn/sequential.hpp, nn/init.hpp and the layer modules (conv, linear,
// pool, dropout, activation): the parameter registry (order, dotted names, name checks, buffers),
// train/eval, zero_grad, ModuleHolder semantics, printing, Sequential, the default
// initialisation (bounds, variance, fan_in, reproducibility), output shapes on the seed's
// network shapes, dropout in eval mode, and a gradient check through a small Sequential.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nanotorch/nn/activation.hpp>
#include <nanotorch/nn/conv.hpp>
#include <nanotorch/nn/dropout.hpp>
#include <nanotorch/nn/functional.hpp>
#include <nanotorch/nn/init.hpp>
#include <nanotorch/nn/linear.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/nn/pool.hpp>
#include <nanotorch/nn/sequential.hpp>
#include <nanotorch/nn/serialize.hpp>
#include <nanotorch/onnx/export.hpp>  // export_onnx of an empty holder

#include "support/gradcheck.hpp"
#include "support/expect.hpp"

namespace nt = nanotorch;
namespace nn = nanotorch::nn;
using nt::Tensor;

namespace {

// ---- test modules ----

// The seed's network (conv1, conv2, conv2_drop, fc1, fc2), registered in the seed's order.
struct SeedNet : nn::Module {
    nn::Conv2d conv1{nullptr}, conv2{nullptr};
    nn::Dropout2d conv2_drop{nullptr};
    nn::Linear fc1{nullptr}, fc2{nullptr};

    SeedNet() {
        conv1 = register_module("conv1", nn::Conv2d(1, 10, 5));
        conv2 = register_module("conv2", nn::Conv2d(10, 20, 5));
        conv2_drop = register_module("conv2_drop", nn::Dropout2d());
        fc1 = register_module("fc1", nn::Linear(320, 50));
        fc2 = register_module("fc2", nn::Linear(50, 10));
    }
    Tensor forward(const Tensor& input) override {
        Tensor x = nt::F::relu(nt::F::max_pool2d(conv1(input), 2));
        x = nt::F::relu(nt::F::max_pool2d(conv2_drop(conv2(x)), 2));
        x = x.view({-1, 320});
        x = nt::F::relu(fc1(x));
        x = nt::F::dropout(x, 0.5f, is_training());
        return nt::F::log_softmax(fc2(x), 1);
    }
    std::string type_name() const override { return "Net"; }
};

// A Sequential inside a Module, plus a buffer and a bias-free head.
struct FeatureNet : nn::Module {
    nn::Sequential features{nullptr};
    nn::Linear classifier{nullptr};
    Tensor running;

    FeatureNet() {
        features = register_module("features", nn::Sequential(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2)));
        classifier = register_module("classifier", nn::Linear(nn::LinearOptions(2, 2).bias(false)));
        running = register_buffer("running", nt::zeros({2}));
    }
    Tensor forward(const Tensor& x) override { return classifier(features(x)); }
    std::string type_name() const override { return "FeatureNet"; }
};

// A module with parameters but no forward(const Tensor&).
struct NoForward : nn::Module {
    NoForward() { register_parameter("w", nt::ones({1})); }
    std::string type_name() const override { return "NoForward"; }
};

// y = x·scale + shift, for checking the order Sequential runs its modules in.
struct AffineImpl : nn::Module {
    AffineImpl(float scale, float shift) : scale_(scale), shift_(shift) {}
    Tensor forward(const Tensor& x) override { return x * scale_ + shift_; }
    std::string type_name() const override { return "Affine"; }

private:
    float scale_, shift_;
};
NANOTORCH_MODULE(Affine);

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
    std::vector<std::string> out;
    for (auto& p : named) out.push_back(p.first);
    return out;
}

std::string printed(const nn::Module& m) {
    std::ostringstream os;
    os << m;
    return os.str();
}

using nanotorch::testing::value_error_message;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

float max_abs(const Tensor& t) {
    float m = 0.0f;
    for (float v : t.to_vector()) m = std::max(m, std::fabs(v));
    return m;
}

}  // namespace

// ---- registry ----

TEST_CASE("named_parameters of the seed's Net: registration order, dotted names, shapes") {
    SeedNet net;
    const auto named = net.named_parameters();
    CHECK(names_of(named) == std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                                      "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
    const std::vector<nt::Shape> shapes = {{10, 1, 5, 5}, {10}, {20, 10, 5, 5}, {20}, {50, 320}, {50}, {10, 50}, {10}};
    std::int64_t total = 0;
    for (std::size_t i = 0; i < named.size(); ++i) {
        CAPTURE(named[i].first);
        CHECK(named[i].second.shape() == shapes[i]);
        CHECK(named[i].second.requires_grad());
        CHECK(named[i].second.is_leaf());
        total += named[i].second.numel();
    }
    CHECK(total == 21840);  // 260 + 5020 + 16050 + 510: the seed's parameter count
    const auto params = net.parameters();
    REQUIRE(params.size() == 8);
    CHECK(params[4].is_same(net.fc1->weight));  // handles, not copies
    CHECK(net.named_parameters(/*recurse=*/false).empty());
    CHECK(net.named_children().size() == 5);
    CHECK(net.named_children()[2].first == "conv2_drop");
}

TEST_CASE("a Sequential inside a Module gives features.<index>.<name>") {
    FeatureNet net;
    CHECK(names_of(net.named_parameters()) == std::vector<std::string>{"features.0.weight", "features.0.bias",
                                                                       "features.2.weight", "features.2.bias",
                                                                       "classifier.weight"});
    CHECK(net.parameters().size() == 5);
    CHECK(names_of(net.features->named_parameters()) ==
          std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
}

TEST_CASE("empty, dotted and duplicate member names are value_errors") {
    nn::Module m;
    m.register_parameter("w", nt::ones({1}));
    CHECK(contains(value_error_message([&] { m.register_parameter("", nt::ones({1})); }), "empty"));
    CHECK(contains(value_error_message([&] { m.register_parameter("a.b", nt::ones({1})); }), "'a.b'"));
    CHECK(contains(value_error_message([&] { m.register_buffer("x.y", nt::ones({1})); }), "dot"));
    CHECK(contains(value_error_message([&] { m.register_module("sub.mod", nn::ReLU()); }), "dot"));
    CHECK(contains(value_error_message([&] { m.register_parameter("w", nt::ones({1})); }), "already registered"));
    // Names are unique across parameters, buffers and submodules (they share one namespace).
    CHECK_THROWS_AS(m.register_buffer("w", nt::ones({1})), nt::value_error);
    CHECK_THROWS_AS(m.register_module("w", nn::ReLU()), nt::value_error);
    m.register_module("act", nn::ReLU());
    CHECK_THROWS_AS(m.register_parameter("act", nt::ones({1})), nt::value_error);
    // Null submodules and undefined parameters are rejected too.
    CHECK(contains(value_error_message([&] { m.register_module("null", std::shared_ptr<nn::Module>()); }), "null"));
    CHECK(contains(value_error_message([&] { m.register_module("empty", nn::Linear(nullptr)); }), "null"));
    CHECK(contains(value_error_message([&] { m.register_parameter("u", Tensor()); }), "undefined"));
    CHECK(m.parameters().size() == 1);  // failed registrations leave nothing behind
    CHECK(m.named_children().size() == 1);
}

TEST_CASE("register_buffer: saved in the state_dict, not a parameter, not trained") {
    FeatureNet net;
    CHECK(names_of(net.named_buffers()) == std::vector<std::string>{"running"});
    CHECK_FALSE(net.running.requires_grad());
    for (auto& p : net.named_parameters()) CHECK(p.first != "running");
    const auto sd = nn::state_dict(net);
    CHECK(names_of(sd) == std::vector<std::string>{"features.0.weight", "features.0.bias", "features.2.weight",
                                                   "features.2.bias", "classifier.weight", "running"});

    // Nested buffers get dotted names; register_parameter(..., false) makes a frozen parameter.
    nn::Module outer;
    outer.register_module("inner", std::make_shared<FeatureNet>());
    Tensor frozen = outer.register_parameter("frozen", nt::ones({3}), /*requires_grad=*/false);
    CHECK(names_of(outer.named_buffers()) == std::vector<std::string>{"inner.running"});
    CHECK_FALSE(frozen.requires_grad());
    CHECK(outer.parameters().size() == 6);
}

TEST_CASE("train() and eval() propagate to every submodule") {
    FeatureNet net;
    nn::Module outer;
    auto inner = outer.register_module("net", std::make_shared<FeatureNet>());
    CHECK(outer.is_training());  // modules start in training mode, as in PyTorch
    outer.eval();
    CHECK_FALSE(outer.is_training());
    CHECK_FALSE(inner->is_training());
    CHECK_FALSE(inner->features->is_training());
    CHECK_FALSE((*inner->features)[1]->is_training());  // a grandchild inside the Sequential
    outer.train();
    CHECK((*inner->features)[2]->is_training());
    outer.train(false);
    CHECK_FALSE(inner->classifier->is_training());
    // eval() on a child does not touch the parent.
    net.train();
    net.features->eval();
    CHECK(net.is_training());
    CHECK_FALSE((*net.features)[0]->is_training());
}

TEST_CASE("zero_grad clears the gradients of all nested parameters") {
    FeatureNet net;
    nt::sum(net.forward(nt::ones({2, 4}))).backward();
    for (auto& p : net.named_parameters()) {
        CAPTURE(p.first);
        CHECK(p.second.grad().defined());
    }
    net.zero_grad();
    for (auto& p : net.named_parameters()) {
        CAPTURE(p.first);
        CHECK_FALSE(p.second.grad().defined());
    }
}

// ---- ModuleHolder ----

TEST_CASE("ModuleHolder: empty holders throw value_error on use; copies alias one module") {
    nn::Linear empty_holder(nullptr);
    CHECK(empty_holder.is_empty());
    CHECK(empty_holder.ptr() == nullptr);
    CHECK(contains(value_error_message([&] { (void)empty_holder->weight; }), "empty module holder"));
    CHECK_THROWS_AS(empty_holder(nt::ones({1, 2})), nt::value_error);
    CHECK_THROWS_AS((void)*empty_holder, nt::value_error);
    // export_onnx's holder overload used to dereference the null pointer; it throws before
    // touching the file system (the path is never created).
    CHECK(contains(value_error_message([&] {
                       nt::onnx::export_onnx(empty_holder, nt::ones({1, 2}), "never_written.onnx");
                   }),
                   "empty module holder"));

    nt::Generator gen(3);
    nn::Linear a(2, 3, gen);
    nn::Linear b = a;  // a copy of the handle, not of the module
    CHECK_FALSE(a.is_empty());
    CHECK(a.get() == b.get());
    {
        nt::NoGradGuard ng;
        b->weight.fill_(0.5f);
    }
    CHECK(a->weight.at({1, 1}) == 0.5f);
    empty_holder = a;  // assignment aliases too
    CHECK(empty_holder.get() == a.get());

    // register_module returns the same module it registered.
    nn::Module m;
    nn::Linear registered = m.register_module("fc", a);
    CHECK(registered.get() == a.get());
    CHECK(m.named_parameters()[0].second.is_same(a->weight));

    // The holder's operator() runs forward: Linear with W = 0.5, b = U(±1/√2) drawn above.
    const Tensor y = a(nt::ones({1, 2}));
    CHECK(y.shape() == nt::Shape{1, 3});
    CHECK(y.at({0, 0}) == doctest::Approx(1.0f + a->bias.at({0})).epsilon(1e-6));

    static_assert(!std::is_copy_constructible<nn::Module>::value, "a Module must not be copied silently");
    static_assert(std::is_copy_constructible<nn::Linear>::value, "holders are copyable handles");
}

// ---- printing and forward ----

TEST_CASE("a module tree prints like PyTorch") {
    struct Small : nn::Module {
        Small() {
            register_module("conv1", nn::Conv2d(1, 10, 5));
            register_module("drop", nn::Dropout2d());
            register_module("features", nn::Sequential(nn::Linear(320, 50), nn::ReLU()));
            register_module("fc2", nn::Linear(nn::LinearOptions(50, 10).bias(false)));
            register_module("pool", nn::MaxPool2d(2));
        }
        std::string type_name() const override { return "Small"; }
    };
    Small net;
    CHECK(printed(net) ==
          "Small(\n"
          "  (conv1): Conv2d(1, 10, kernel_size=[5, 5], stride=[1, 1])\n"
          "  (drop): Dropout2d(p=0.5)\n"
          "  (features): Sequential(\n"
          "    (0): Linear(in_features=320, out_features=50, bias=true)\n"
          "    (1): ReLU()\n"
          "  )\n"
          "  (fc2): Linear(in_features=50, out_features=10, bias=false)\n"
          "  (pool): MaxPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0])\n"
          ")");

    // Leaf modules print on one line; options that differ from the defaults are shown.
    std::ostringstream os;
    os << nn::Conv2d(nn::Conv2dOptions(3, 8, {3, 2}).stride(2).padding(1).bias(false));
    CHECK(os.str() == "Conv2d(3, 8, kernel_size=[3, 2], stride=[2, 2], padding=[1, 1], bias=false)");
    CHECK(printed(*nn::LogSoftmax(1)) == "LogSoftmax(dim=1)");
    CHECK(printed(*nn::Flatten()) == "Flatten(start_dim=1, end_dim=-1)");
    CHECK(printed(*nn::AvgPool2d(nn::AvgPool2dOptions(10).stride(5))) ==
          "AvgPool2d(kernel_size=[10, 10], stride=[5, 5], padding=[0, 0])");
    CHECK(printed(*nn::Dropout(0.25)) == "Dropout(p=0.25)");
    CHECK(printed(nn::Module()) == "Module()");
}

TEST_CASE("forward of a module that does not define it is an unsupported_error naming the type") {
    NoForward m;
    CHECK_THROWS_WITH_AS(m.forward(nt::ones({1})), doctest::Contains("NoForward does not define forward"),
                         nt::unsupported_error);
    CHECK_THROWS_AS(m(nt::ones({1})), nt::unsupported_error);
    nn::Sequential seq;
    seq->push_back(std::make_shared<NoForward>());
    CHECK_THROWS_AS(seq(nt::ones({1})), nt::unsupported_error);
}

// ---- Sequential ----

TEST_CASE("Sequential runs its modules in order and indexes them") {
    // (x·2 + 1)·10 − 3 vs (x·10 − 3)·2 + 1 at x = 1: 27 vs 15, so the order is visible.
    nn::Sequential seq(Affine(2.0f, 1.0f), Affine(10.0f, -3.0f));
    CHECK(seq(nt::ones({1})).item() == 27.0f);
    nn::Sequential rev(Affine(10.0f, -3.0f), Affine(2.0f, 1.0f));
    CHECK(rev(nt::ones({1})).item() == 15.0f);

    REQUIRE(seq->size() == 2);
    CHECK((*seq)[0]->type_name() == "Affine");
    CHECK(seq->named_children()[1].first == "1");
    CHECK(seq->named_children()[1].second == (*seq)[1]);
    CHECK(contains(value_error_message([&] { (void)(*seq)[2]; }), "index 2 out of range for 2"));

    seq->push_back(Affine(1.0f, 100.0f));  // appended modules are named "2", "3", ...
    CHECK(seq->size() == 3);
    CHECK(seq->named_children()[2].first == "2");
    CHECK(seq(nt::ones({1})).item() == 127.0f);

    nn::Sequential none;
    const Tensor x = nt::ones({2});
    CHECK(none(x).is_same(x));  // an empty Sequential is the identity

    // Sequential of real layers equals composing them by hand.
    nt::Generator gen(11);
    nn::Linear l1(4, 3, gen), l2(3, 2, gen);
    nn::Sequential mlp(l1, nn::ReLU(), l2);
    const Tensor in = nt::uniform({5, 4}, -1.0f, 1.0f, gen);
    CHECK(mlp(in).to_vector() == l2(nt::relu(l1(in))).to_vector());
}

// ---- initialisation ----

TEST_CASE("Linear(320, 50): weight and bias in ±1/sqrt(320), uniform variance bound²/3") {
    nt::Generator gen(42);
    nn::Linear fc(320, 50, gen);
    const double bound = 1.0 / std::sqrt(320.0);
    const std::vector<float> w = fc->weight.to_vector();
    double sum = 0.0, sum_sq = 0.0;
    for (float v : w) {
        sum += v;
        sum_sq += static_cast<double>(v) * v;
    }
    const double n = static_cast<double>(w.size());
    const double mean = sum / n, var = sum_sq / n - mean * mean;
    // max |w| <= bound (float rounding of the bound: 1e-7 slack); and above 0.99·bound, which all
    // 16000 draws would miss with probability 0.99^16000 ~ e^-160 (catches a too-small bound).
    CHECK(max_abs(fc->weight) <= bound + 1e-7);
    CHECK(max_abs(fc->weight) > 0.99 * bound);
    // U(−b, b) has mean 0 and variance b²/3. Standard errors at n = 16000: mean b·0.0046,
    // variance 0.7% of b²/3; the tolerances below are > 6 standard errors.
    CHECK(std::fabs(mean) < 0.03 * bound);
    CHECK(var == doctest::Approx(bound * bound / 3.0).epsilon(0.05));
    CHECK(max_abs(fc->bias) <= bound + 1e-7);
    CHECK(max_abs(fc->bias) > 0.5 * bound);  // 50 draws: P(all in ±b/2) = 2^-50
}

TEST_CASE("Conv2d's fan_in is in·kH·kW; kaiming/xavier bounds; same seed gives the same weights") {
    nt::Generator gen(5);
    nn::Conv2d conv(10, 20, 5, gen);  // fan_in = 10·5·5 = 250
    const Tensor& w = conv->weight;
    CHECK(nn::init::fan_in_and_fan_out(w) == std::pair<std::int64_t, std::int64_t>{250, 500});
    const double bound = 1.0 / std::sqrt(250.0);
    CHECK(max_abs(w) <= bound + 1e-7);
    CHECK(max_abs(w) > 0.99 * bound);  // 5000 draws: 0.99^5000 ~ e^-50; fan_in = 10 would give a bound 5× larger
    CHECK(max_abs(conv->bias) <= bound + 1e-7);
    CHECK(nn::init::fan_in_and_fan_out(nt::empty({50, 320})) == std::pair<std::int64_t, std::int64_t>{320, 50});
    CHECK_THROWS_AS(nn::init::fan_in_and_fan_out(nt::empty({5})), nt::shape_error);

    // Reproducibility: the same seed gives bit-identical weights, another seed different ones.
    nt::Generator g1(7), g2(7), g3(8);
    nn::Conv2d c1(1, 10, 5, g1), c2(1, 10, 5, g2), c3(1, 10, 5, g3);
    CHECK(c1->weight.to_vector() == c2->weight.to_vector());
    CHECK(c1->bias.to_vector() == c2->bias.to_vector());
    CHECK(c1->weight.to_vector() != c3->weight.to_vector());
    nt::manual_seed(99);
    nn::Linear d1(6, 4);
    nt::manual_seed(99);
    nn::Linear d2(6, 4);  // the default generator, reseeded
    CHECK(d1->weight.to_vector() == d2->weight.to_vector());

    // kaiming_uniform_(a = 0) (He, for ReLU): bound = √2·√(3/fan_in) = √(6/fan_in) = √(6/600) = 0.1.
    Tensor k = nt::empty({40, 600});
    nn::init::kaiming_uniform_(k, 0.0, gen);
    CHECK(max_abs(k) <= 0.1 + 1e-7);
    CHECK(max_abs(k) > 0.099);  // 24000 draws
    // xavier_uniform_(gain 2): bound = 2·√(6/(fan_in + fan_out)) = 2·√(6/(3·4·4 + 6·4·4)) = 2·√(6/144) ≈ 0.408.
    Tensor x = nt::empty({6, 3, 4, 4});
    nn::init::xavier_uniform_(x, 2.0, gen);
    const double xb = 2.0 * std::sqrt(6.0 / 144.0);
    CHECK(max_abs(x) <= xb + 1e-6);
    CHECK(max_abs(x) > 0.95 * xb);  // 288 draws: 0.95^288 ~ 4e-7
    // The fill helpers.
    nn::init::constant_(x, 0.25f);
    CHECK(x.at({5, 2, 3, 3}) == 0.25f);
    nn::init::zeros_(x);
    CHECK(max_abs(x) == 0.0f);
    // Initialisers work on trainable parameters (they run under NoGradGuard).
    nn::init::uniform_(conv->weight, -0.5f, 0.5f, gen);
    CHECK(max_abs(conv->weight) <= 0.5f);
    CHECK(max_abs(conv->weight) > 0.45f);
}

TEST_CASE("invalid layer options are value_errors") {
    CHECK_THROWS_AS(nn::Linear(0, 3), nt::value_error);
    CHECK_THROWS_AS(nn::Conv2d(1, 10, 0), nt::value_error);
    CHECK_THROWS_AS(nn::Conv2d(0, 10, 3), nt::value_error);
    CHECK_THROWS_AS(nn::Dropout(1.0), nt::value_error);
    CHECK_THROWS_AS(nn::Dropout2d(-0.1), nt::value_error);
}

// ---- layer output shapes on the seed's shapes ----

TEST_CASE("every layer type gives the right output shape on the seed's shapes") {
    nt::Generator gen(1);
    const std::int64_t n = 3;
    const Tensor x = nt::uniform({n, 1, 28, 28}, 0.0f, 1.0f, gen);
    nn::Conv2d conv1(1, 10, 5, gen), conv2(10, 20, 5, gen);
    nn::MaxPool2d pool(2);
    nn::Dropout2d drop2d;
    nn::Dropout drop;
    nn::Flatten flat;
    nn::Linear fc1(320, 50, gen), fc2(50, 10, gen);
    nn::ReLU relu;

    const Tensor c1 = conv1(x);
    CHECK(c1.shape() == nt::Shape{n, 10, 24, 24});
    const Tensor p1 = relu(pool(c1));
    CHECK(p1.shape() == nt::Shape{n, 10, 12, 12});
    const Tensor c2 = drop2d(conv2(p1));
    CHECK(c2.shape() == nt::Shape{n, 20, 8, 8});
    const Tensor p2 = pool(c2);
    CHECK(p2.shape() == nt::Shape{n, 20, 4, 4});
    const Tensor f = flat(p2);
    CHECK(f.shape() == nt::Shape{n, 320});
    const Tensor h = drop(fc1(f));
    CHECK(h.shape() == nt::Shape{n, 50});
    const Tensor logits = fc2(h);
    CHECK(logits.shape() == nt::Shape{n, 10});

    const Tensor logp = nn::LogSoftmax(1)(logits);
    const Tensor prob = nn::Softmax(1)(logits);
    CHECK(logp.shape() == nt::Shape{n, 10});
    CHECK(prob.shape() == nt::Shape{n, 10});
    for (std::int64_t i = 0; i < n; ++i) {
        double s = 0.0, se = 0.0;
        for (std::int64_t j = 0; j < 10; ++j) {
            s += prob.at({i, j});
            se += std::exp(static_cast<double>(logp.at({i, j})));
        }
        CHECK(s == doctest::Approx(1.0).epsilon(1e-5));  // float32 sums of 10 terms
        CHECK(se == doctest::Approx(1.0).epsilon(1e-5));
    }

    // The seed's in-model preprocessing: a 280×280 canvas channel pooled 10×10 down to 28×28.
    const Tensor canvas = nt::uniform({1, 1, 280, 280}, 0.0f, 255.0f, gen);
    CHECK(nn::AvgPool2d(nn::AvgPool2dOptions(10).stride(10))(canvas).shape() == nt::Shape{1, 1, 28, 28});
    CHECK(nn::AvgPool2d(2)(c1).shape() == nt::Shape{n, 10, 12, 12});
    CHECK(nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(1).padding(1))(c1).shape() == nt::Shape{n, 10, 24, 24});
    CHECK(nn::Flatten(0)(c1).shape() == nt::Shape{n * 10 * 24 * 24});
    CHECK(nn::Flatten(2, 3)(c1).shape() == nt::Shape{n, 10, 576});
    nn::Conv2d same(nn::Conv2dOptions(1, 4, 3).padding(1), gen);
    CHECK(same(x).shape() == nt::Shape{n, 4, 28, 28});

    // Elementwise activations keep the shape; spot-check values at x = −1, 0, 2.
    const Tensor v = nt::tensor({-1.0f, 0.0f, 2.0f});
    CHECK(nn::ReLU()(v).to_vector() == std::vector<float>{0.0f, 0.0f, 2.0f});
    const Tensor s = nn::Sigmoid()(v);
    CHECK(s.at({0}) == doctest::Approx(1.0 / (1.0 + std::exp(1.0))).epsilon(1e-6));
    CHECK(s.at({1}) == 0.5f);
    const Tensor t = nn::Tanh()(v);
    CHECK(t.at({2}) == doctest::Approx(std::tanh(2.0)).epsilon(1e-6));
    CHECK(nn::Tanh()(c1).shape() == c1.shape());
    CHECK(nn::Sigmoid()(c1).shape() == c1.shape());
}

TEST_CASE("the seed's Net runs forward and backward, with a gradient for every parameter") {
    nt::Generator gen(2);
    SeedNet net;
    const Tensor x = nt::uniform({2, 1, 28, 28}, 0.0f, 1.0f, gen);
    const Tensor out = net.forward(x);
    CHECK(out.shape() == nt::Shape{2, 10});
    nt::F::nll_loss(out, {3, 7}).backward();
    for (auto& p : net.named_parameters()) {
        CAPTURE(p.first);
        REQUIRE(p.second.grad().defined());
        CHECK(p.second.grad().shape() == p.second.shape());
    }
}

// ---- dropout modules ----

TEST_CASE("Dropout and Dropout2d are the identity in eval() and drop in train()") {
    nt::Generator gen(9);
    const Tensor x = nt::uniform({4, 8, 5, 5}, 1.0f, 2.0f, gen);  // no zeros of its own
    nt::Generator mask_gen(1);
    nn::Dropout drop(0.5, &mask_gen);
    nn::Dropout2d drop2d(0.5, &mask_gen);

    drop->eval();
    drop2d->eval();
    CHECK(drop(x).is_same(x));  // not even a copy
    CHECK(drop2d(x).is_same(x));

    drop->train();
    drop2d->train();
    const std::vector<float> in = x.to_vector();
    const std::vector<float> y = drop(x).to_vector();
    std::size_t zeros = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        if (y[i] == 0.0f) {
            ++zeros;
        } else {
            CHECK(y[i] == doctest::Approx(2.0f * in[i]).epsilon(1e-6));  // kept values scaled by 1/(1−p)
        }
    }
    // 800 elements at p = 0.5: 400 ± 14 (one standard deviation); allow ±100.
    CHECK(zeros > 300);
    CHECK(zeros < 500);

    // Dropout2d: each 5×5 plane is all zero or all scaled.
    const Tensor z = drop2d(x);
    int dropped = 0;
    for (std::int64_t b = 0; b < 4; ++b)
        for (std::int64_t c = 0; c < 8; ++c) {
            int plane_zeros = 0;
            for (std::int64_t i = 0; i < 5; ++i)
                for (std::int64_t j = 0; j < 5; ++j) plane_zeros += z.at({b, c, i, j}) == 0.0f;
            CHECK((plane_zeros == 0 || plane_zeros == 25));
            dropped += plane_zeros == 25;
        }
    CHECK(dropped > 0);  // 32 planes at p = 0.5: P(none dropped) = 2^-32
    CHECK(dropped < 32);

    // The module's generator fixes the masks.
    nt::Generator g1(123), g2(123);
    nn::Dropout a(0.3, &g1), b(0.3, &g2);
    CHECK(a(x).to_vector() == b(x).to_vector());
}

// ---- gradient check ----

TEST_CASE("gradcheck through Sequential(Linear, Tanh, Linear) with respect to its input") {
    // Tolerances: gradcheck's defaults (atol = rtol = 1e-2 at h = 1e-2; see support/gradcheck.hpp).
    nt::Generator gen(21);
    nn::Sequential mlp(nn::Linear(3, 4, gen), nn::Tanh(), nn::Linear(4, 2, gen));
    const Tensor x = nt::testing::grad_input({5, 3}, gen);
    CHECK(nt::testing::gradcheck(
        "Sequential(Linear, Tanh, Linear)", [&](const std::vector<Tensor>& in) { return mlp(in[0]); }, {x}));
    // The backward pass also reached the layer parameters.
    CHECK((*mlp)[0]->named_parameters()[0].second.grad().defined());
}
