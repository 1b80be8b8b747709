// Tests for ops/clamp.hpp, ops/pad.hpp and ops/index.hpp (and kernels/layout.hpp under them):
// forward values against hand-computed references, gradient checks, PyTorch's argument rules,
// errors, the nn padding modules, and each op's ONNX export run back through the runtime.
// Values are moved or compared, never computed, so forward checks are exact (no tolerance);
// gradient checks use gradcheck.hpp's tolerances (see its header for why).
#include <doctest/doctest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>

#include "support/expect.hpp"
#include "support/gradcheck.hpp"

using namespace nanotorch;
using nanotorch::testing::distinct_input;
using nanotorch::testing::grad_input;
using nanotorch::testing::gradcheck;
using nanotorch::testing::value_error_message;
using V = std::vector<Tensor>;

namespace {

std::vector<std::string> op_types(const onnx::ModelProto& m) {
    std::vector<std::string> out;
    for (const auto& n : m.graph.node) out.push_back(n.op_type);
    return out;
}

// A module around one function, so trace_module can export it.
struct Fn : nn::Module {
    std::function<Tensor(const Tensor&)> f;
    explicit Fn(std::function<Tensor(const Tensor&)> fn) : f(std::move(fn)) {}
    Tensor forward(const Tensor& x) override { return f(x); }
};

// Exports f at `opset`, checks the graph's only node is `op`, runs it in the runtime and
// requires the same values bit for bit (the runtime calls the same op).
void export_round_trip(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, std::int64_t opset,
                       const std::string& op) {
    CAPTURE(opset);
    CAPTURE(op);
    Fn net(f);
    onnx::ExportOptions o;
    o.opset = opset;
    const auto m = onnx::trace_module(net, x, o);
    CHECK(op_types(m) == std::vector<std::string>{op});
    const onnx::Runtime rt(m);
    CHECK(rt.run({{"input", x}})[0].second.to_vector() == f(x).to_vector());
}

}  // namespace

// ---- clamp ----

TEST_CASE("clamp: both bounds, one bound, NaN kept, min > max gives max") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Tensor x = tensor({-2.0f, -0.5f, 0.0f, 0.5f, 2.0f});
    CHECK(clamp(x, -1.0f, 1.0f).to_vector() == std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f});
    CHECK(clamp(x, 0.0f, std::nullopt).to_vector() == std::vector<float>{0.0f, 0.0f, 0.0f, 0.5f, 2.0f});
    CHECK(clamp(x, std::nullopt, 0.0f).to_vector() == std::vector<float>{-2.0f, -0.5f, 0.0f, 0.0f, 0.0f});
    CHECK(clamp(x, 1.0f, -1.0f).to_vector() == std::vector<float>(5, -1.0f));
    const float y = clamp(tensor({nan}), -1.0f, 1.0f).to_vector()[0];
    CHECK(y != y);
    // A strided (transposed) input is read in its logical order.
    const Tensor t = tensor({1, 5, 2, 6}, {2, 2}).transpose(0, 1);
    CHECK(clamp(t, 2.0f, 5.0f).to_vector() == std::vector<float>{2, 2, 5, 5});
    CHECK(value_error_message([&] { clamp(x, std::nullopt, std::nullopt); }).find("at least one") != std::string::npos);
    CHECK_THROWS_AS(clamp(x, nan, 1.0f), value_error);
}

TEST_CASE("clamp: gradient passes inside [min, max] (bounds included), 0 outside; gradcheck") {
    Tensor x = tensor({-2.0f, -1.0f, 0.0f, 1.0f, 2.0f});
    x.requires_grad_();
    clamp(x, -1.0f, 1.0f).sum().backward();
    CHECK(x.grad().to_vector() == std::vector<float>{0, 1, 1, 1, 0});  // PyTorch's rule at the bounds
    // Inputs on a 0.05 grid offset by 0.025 stay 0.025 > h = 0.01 away from the kinks at -0.3, 0.2.
    Generator gen(7);
    gradcheck("clamp", [](const V& v) { return clamp(v[0], -0.3f, 0.2f); }, {distinct_input({4, 6}, gen)});
    gradcheck("clamp min only", [](const V& v) { return clamp(v[0], -0.3f, std::nullopt); }, {distinct_input({24}, gen)});
}

TEST_CASE("clamp exports as Clip (attributes at opset 9, inputs from 11) and runs back identically") {
    const Tensor x = tensor({-2.0f, -0.5f, 0.25f, 3.0f}, {2, 2});
    for (std::int64_t opset : {9, 11, 13}) {
        export_round_trip([](const Tensor& t) { return clamp(t, -1.0f, 1.0f); }, x, opset, "Clip");
        export_round_trip([](const Tensor& t) { return clamp(t, std::nullopt, 0.0f); }, x, opset, "Clip");
    }
    Fn net([](const Tensor& t) { return clamp(t, 0.0f, std::nullopt); });
    onnx::ExportOptions o;
    o.opset = 13;
    const auto m = onnx::trace_module(net, x, o);
    REQUIRE(m.graph.node.size() == 1);
    CHECK(m.graph.node[0].input.size() == 2);  // x, min; the absent max is dropped
}

// ---- pad ----

TEST_CASE("pad: constant, reflect and replicate, per dimension, with crops") {
    const Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(pad(x, {0, 2}, {0, 1}, PadMode::constant, 9).to_vector() ==
          std::vector<float>{9, 9, 1, 2, 3, 9, 9, 9, 4, 5, 6, 9});
    CHECK(pad(x, {0, 2}, {0, 1}, PadMode::reflect).to_vector() == std::vector<float>{3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5});
    CHECK(pad(x, {0, 2}, {0, 1}, PadMode::replicate).to_vector() ==
          std::vector<float>{1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6});
    // Two dims at once: reflecting a dimension of 2 repeats the other row (and column).
    const Tensor r = pad(x, {1, 1}, {0, 0}, PadMode::reflect);
    CHECK(r.shape() == Shape{3, 4});
    CHECK(r.to_vector() == std::vector<float>{5, 4, 5, 6, 2, 1, 2, 3, 5, 4, 5, 6});
    // Reflection longer than the dimension keeps mirroring (period 2·(3−1) = 4): NumPy's rule.
    CHECK(pad(tensor({1, 2, 3}), {5}, {0}, PadMode::reflect).to_vector() == std::vector<float>{2, 1, 2, 3, 2, 1, 2, 3});
    // Negative pads crop; a 0-d tensor is copied.
    CHECK(pad(x, {-1, 1}, {0, -1}).to_vector() == std::vector<float>{0, 4, 5});
    CHECK(pad(scalar_tensor(3.0f), {}, {}).to_vector() == std::vector<float>{3});
    // Constant padding of an empty dimension is allowed, reflecting it is not.
    CHECK(pad(zeros({0, 2}), {1, 0}, {1, 0}, PadMode::constant, 7).to_vector() == std::vector<float>{7, 7, 7, 7});
    CHECK_THROWS_AS(pad(zeros({0, 2}), {1, 0}, {0, 0}, PadMode::reflect), value_error);
    CHECK(value_error_message([&] { pad(x, {0}, {0}); }).find("one of each per dimension") != std::string::npos);
    CHECK(value_error_message([&] { pad(x, {0, -2}, {0, -2}); }).find("remove more than") != std::string::npos);
}

TEST_CASE("pad: gradients of all three modes (reflected and replicated borders sum); gradcheck") {
    Tensor x = tensor({1, 2, 3});
    x.requires_grad_();
    pad(x, {2}, {1}, PadMode::replicate).sum().backward();  // [1 1 1 2 3 3]
    CHECK(x.grad().to_vector() == std::vector<float>{3, 1, 2});
    x.zero_grad();
    pad(x, {2}, {1}, PadMode::reflect).sum().backward();  // [3 2 1 2 3 2]
    CHECK(x.grad().to_vector() == std::vector<float>{1, 3, 2});
    x.zero_grad();
    pad(x, {1}, {-1}, PadMode::constant, 5).sum().backward();  // [5 1 2]: the cropped 3 gets 0
    CHECK(x.grad().to_vector() == std::vector<float>{1, 1, 0});
    Generator gen(11);
    for (PadMode mode : {PadMode::constant, PadMode::reflect, PadMode::replicate}) {
        CAPTURE(static_cast<int>(mode));
        gradcheck("pad", [mode](const V& v) { return pad(v[0], {0, 0, 2, 1}, {0, 1, 1, 2}, mode, 0.5f); },
                  {grad_input({2, 1, 3, 4}, gen)});
    }
    gradcheck("pad crop", [](const V& v) { return pad(v[0], {-1, 2}, {1, -1}); }, {grad_input({3, 4}, gen)});
}

TEST_CASE("F::pad follows PyTorch: pairs from the last dimension, mode names, reflect limit") {
    const Tensor x = arange(0, 6).reshape({1, 1, 2, 3});
    const Tensor y = F::pad(x, {1, 0, 0, 1});  // width: 1 before; height: 1 after
    CHECK(y.shape() == Shape{1, 1, 3, 4});
    CHECK(y.to_vector() == std::vector<float>{0, 0, 1, 2, 0, 3, 4, 5, 0, 0, 0, 0});
    CHECK(F::pad(x, {1, 1}, "replicate").to_vector() == std::vector<float>{0, 0, 1, 2, 2, 3, 3, 4, 5, 5});
    CHECK(F::pad(x, {2, 2}, "reflect").shape() == Shape{1, 1, 2, 7});
    CHECK_THROWS_AS(F::pad(x, {3, 0}, "reflect"), value_error);  // PyTorch: pad < dimension size
    CHECK_THROWS_AS(F::pad(x, {1}), value_error);
    CHECK_THROWS_AS(F::pad(x, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}), value_error);
    CHECK_THROWS_AS(F::pad(x, {1, 1}, "mirror"), value_error);
    CHECK_THROWS_AS(F::pad(x, {1, 1}, "circular"), unsupported_error);
}

TEST_CASE("nn padding modules: ZeroPad2d, ConstantPad2d, ReflectionPad2d, ReplicationPad2d") {
    const Tensor x = arange(0, 4).reshape({1, 1, 2, 2});
    CHECK(nn::ZeroPad2d(1)(x).shape() == Shape{1, 1, 4, 4});
    CHECK(nn::ConstantPad2d(std::vector<std::int64_t>{1, 0, 0, 0}, 7.0f)(x).to_vector() ==
          std::vector<float>{7, 0, 1, 7, 2, 3});
    CHECK(nn::ReflectionPad2d(std::vector<std::int64_t>{1, 1, 0, 0})(x).to_vector() ==
          std::vector<float>{1, 0, 1, 0, 3, 2, 3, 2});
    CHECK(nn::ReplicationPad2d(1)(x).to_vector() ==
          std::vector<float>{0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3});
    CHECK_THROWS_AS(nn::ZeroPad2d(std::vector<std::int64_t>{1, 2}), value_error);
    CHECK_THROWS_AS(nn::ZeroPad2d(1)(ones({4})), value_error);
}

TEST_CASE("pad exports as Pad (attributes at opset 9, inputs from 11) and runs back identically") {
    const Tensor x = arange(0, 12).reshape({1, 1, 3, 4});
    for (std::int64_t opset : {9, 11, 13}) {
        export_round_trip([](const Tensor& t) { return F::pad(t, {1, 2, 0, 1}, "constant", 0.5f); }, x, opset, "Pad");
        export_round_trip([](const Tensor& t) { return F::pad(t, {2, 1, 1, 2}, "reflect"); }, x, opset, "Pad");
        export_round_trip([](const Tensor& t) { return F::pad(t, {1, 1, 2, 0}, "replicate"); }, x, opset, "Pad");
    }
    Fn net([](const Tensor& t) { return F::pad(t, {1, 1}, "replicate"); });
    const auto m = onnx::trace_module(net, x);  // the ONNX.js profile (opset 9)
    REQUIRE(m.graph.node.size() == 1);
    const auto& attrs = m.graph.node[0].attribute;
    bool edge = false;
    for (const auto& a : attrs) edge = edge || (a.name == "mode" && a.s == "edge");
    CHECK(edge);  // PyTorch's "replicate" is ONNX's "edge"
}

// ---- index_select ----

TEST_CASE("index_select: order, repeats, any dim; PyTorch's range rule") {
    const Tensor x = arange(0, 6).reshape({2, 3});
    CHECK(index_select(x, 1, {2, 0, 2}).to_vector() == std::vector<float>{2, 0, 2, 5, 3, 5});
    CHECK(index_select(x, 0, {1}).to_vector() == std::vector<float>{3, 4, 5});
    CHECK(index_select(x, -1, {}).shape() == Shape{2, 0});
    CHECK(index_select(x.transpose(0, 1), 0, {1}).to_vector() == std::vector<float>{1, 4});
    CHECK(value_error_message([&] { index_select(x, 1, {3}); }).find("out of range") != std::string::npos);
    CHECK_THROWS_AS(index_select(x, 1, {-1}), value_error);  // as torch.index_select
    CHECK_THROWS_AS(index_select(x, 2, {0}), value_error);
}

TEST_CASE("index_select: gradient sums repeated rows; gradcheck") {
    Tensor x = arange(0, 6).reshape({2, 3});
    x.requires_grad_();
    index_select(x, 1, {2, 0, 2}).sum().backward();
    CHECK(x.grad().to_vector() == std::vector<float>{1, 0, 2, 1, 0, 2});
    Generator gen(3);
    gradcheck("index_select", [](const V& v) { return index_select(v[0], 1, {3, 0, 3, 1}); },
              {grad_input({2, 4, 3}, gen)});
}

TEST_CASE("index_select exports as Gather and runs back identically") {
    const Tensor x = arange(0, 24).reshape({2, 3, 4});
    for (std::int64_t opset : {9, 13})
        for (std::int64_t dim : {0, 1, 2})
            export_round_trip([dim](const Tensor& t) { return index_select(t, dim, {1, 0, 1}); }, x, opset, "Gather");
}
