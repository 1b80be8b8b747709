// ONNX export by tracing: the graphs the ops describe, profiles, naming, determinism.
#include <doctest/doctest.h>

#include <filesystem>
#include <sstream>

#include <nanotorch/nanotorch.hpp>

#include "../examples/mnist_net.hpp"

using namespace nanotorch;

namespace {

std::vector<std::string> op_types(const onnx::ModelProto& m) {
    std::vector<std::string> out;
    for (const auto& n : m.graph.node) out.push_back(n.op_type);
    return out;
}

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name) {
    for (const auto& a : n.attribute)
        if (a.name == name) return &a;
    return nullptr;
}

struct TinyNet : nn::Module {
    nn::Linear fc{nullptr};
    bool use_log_softmax;
    explicit TinyNet(bool log_softmax) : use_log_softmax(log_softmax) { fc = register_module("fc", nn::Linear(4, 3)); }
    Tensor forward(const Tensor& x) override { return use_log_softmax ? F::log_softmax(fc(x), 1) : F::softmax(fc(x), 1); }
};

}  // namespace

TEST_CASE("the seed's InferenceNet exports as the seed describes") {
    manual_seed(1);
    mnist::InferenceNet net;
    const onnx::ModelProto m = onnx::trace_module(net, zeros({280 * 280 * 4}));
    CHECK(m.ir_version == 4);
    CHECK(m.default_opset() == 9);
    CHECK(m.producer_name == "nanotorch");
    const std::vector<std::string> expected = {"Reshape", "Slice", "Reshape", "AveragePool", "Mul",  "Add",
                                               "Mul",     "Conv",  "MaxPool", "Relu",        "Conv", "MaxPool",
                                               "Relu",    "Reshape", "Gemm",  "Relu",        "Gemm", "Softmax"};
    CHECK(op_types(m) == expected);  // no Dropout (eval mode), no LogSoftmax, no Shape/Gather
    // Slice takes attributes at opset 9: the alpha channel, [3, 4) along dim 2.
    const auto& slice = m.graph.node[1];
    REQUIRE(find_attr(slice, "starts"));
    CHECK(find_attr(slice, "starts")->ints == std::vector<std::int64_t>{3});
    CHECK(find_attr(slice, "ends")->ints == std::vector<std::int64_t>{4});
    CHECK(find_attr(slice, "axes")->ints == std::vector<std::int64_t>{2});
    // Weights are initializers named by their dotted parameter names, in first-use order.
    std::vector<std::string> params;
    for (const auto& t : m.graph.initializer)
        if (t.name.rfind("const_", 0) != 0) params.push_back(t.name);
    CHECK(params == std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
                                             "fc1.bias", "fc2.weight", "fc2.bias"});
    REQUIRE(m.graph.input.size() == 1);
    CHECK(m.graph.input[0].name == "input");
    CHECK(m.graph.input[0].shape.size() == 1);
    CHECK(m.graph.input[0].shape[0].value == 280 * 280 * 4);
    REQUIRE(m.graph.output.size() == 1);
    CHECK(m.graph.output[0].name == "output");
    CHECK(m.graph.node.back().output[0] == "output");
    // The constants repeat our arithmetic: x·(1/255), + (−0.1307), ·(1/0.3081).
    auto scalar = [&](const std::string& name) {
        for (const auto& t : m.graph.initializer)
            if (t.name == name) return onnx::tensor_to_floats(t).at(0);
        FAIL("no initializer ", name);
        return 0.0f;
    };
    CHECK(scalar(m.graph.node[4].input[1]) == 1.0f / 255.0f);
    CHECK(scalar(m.graph.node[5].input[1]) == -0.1307f);
    CHECK(scalar(m.graph.node[6].input[1]) == 1.0f / 0.3081f);
    CHECK(net.is_training());  // the module's mode is restored after export
}

TEST_CASE("the ONNX.js profile refuses LogSoftmax and names the fix; opset 13 allows it") {
    manual_seed(2);
    TinyNet net(/*log_softmax=*/true);
    try {
        onnx::trace_module(net, zeros({2, 4}));
        FAIL("expected unsupported_error");
    } catch (const unsupported_error& e) {
        const std::string msg = e.what();
        CHECK(msg.find("LogSoftmax") != std::string::npos);
        CHECK(msg.find("softmax") != std::string::npos);   // the fix: end in softmax ...
        CHECK(msg.find("opset = 13") != std::string::npos);  // ... or the onnxruntime profile
    }
    onnx::ExportOptions o13;
    o13.opset = 13;
    const onnx::ModelProto m = onnx::trace_module(net, zeros({2, 4}), o13);
    CHECK(m.ir_version == 7);
    CHECK(op_types(m) == std::vector<std::string>{"Gemm", "LogSoftmax"});
    CHECK_THROWS_AS(onnx::trace_module(net, zeros({2, 4}), [] {
                        onnx::ExportOptions o;
                        o.opset = 8;
                        return o;
                    }()),
                    value_error);
}

TEST_CASE("opset-dependent encodings: Slice and ReduceSum move attributes to inputs") {
    struct Slicer : nn::Module {
        Tensor forward(const Tensor& x) override { return x.narrow(1, 1, 2).sum({1}, true); }
    } net;
    const onnx::ModelProto m9 = onnx::trace_module(net, ones({2, 4}));
    REQUIRE(m9.graph.node.size() == 2);
    CHECK(m9.graph.node[0].input.size() == 1);
    CHECK(find_attr(m9.graph.node[1], "axes") != nullptr);
    onnx::ExportOptions o13;
    o13.opset = 13;
    const onnx::ModelProto m13 = onnx::trace_module(net, ones({2, 4}), o13);
    CHECK(m13.graph.node[0].input.size() == 4);  // data, starts, ends, axes
    CHECK(m13.graph.node[1].input.size() == 2);  // data, axes
    CHECK(find_attr(m13.graph.node[1], "axes") == nullptr);
}

TEST_CASE("export is deterministic and the file round-trips byte for byte") {
    manual_seed(3);
    mnist::InferenceNet net;
    const auto a = onnx::encode_model(onnx::trace_module(net, zeros({280 * 280 * 4})));
    const auto b = onnx::encode_model(onnx::trace_module(net, zeros({280 * 280 * 4})));
    CHECK(a == b);
    const auto decoded = onnx::decode_model(a.data(), a.size());
    CHECK(onnx::encode_model(decoded) == a);
    // Through a file, with a dynamic batch dimension on the 28x28 network.
    const auto dir = std::filesystem::temp_directory_path() / "nanotorch_test_onnx_export";
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "net.onnx").string();
    mnist::Net plain;
    onnx::ExportOptions o;
    o.dynamic_batch = true;
    onnx::export_onnx(plain, zeros({1, 1, 28, 28}), path, [] {
        onnx::ExportOptions x;
        x.dynamic_batch = true;
        x.opset = 13;  // Net ends in log_softmax: the onnxruntime profile
        return x;
    }());
    const onnx::ModelProto m = onnx::read_model(path);
    CHECK(m.graph.input[0].shape[0].param == "batch");
    CHECK(m.graph.output[0].shape[0].param == "batch");
    // view({-1, 320}) keeps its -1, so the graph works for any batch.
    const auto& reshape = m.graph.node[6];
    REQUIRE(reshape.op_type == "Reshape");
    for (const auto& t : m.graph.initializer)
        if (t.name == reshape.input[1]) CHECK(onnx::tensor_to_int64s(t) == std::vector<std::int64_t>{-1, 320});
    std::filesystem::remove_all(dir);
}

TEST_CASE("training-only ops cannot be exported; verbose prints the graph") {
    struct WithLoss : nn::Module {
        Tensor forward(const Tensor& x) override { return F::nll_loss(F::log_softmax(x, 1), {0, 1}); }
    } lossy;
    onnx::ExportOptions o13;
    o13.opset = 13;
    CHECK_THROWS_AS(onnx::trace_module(lossy, zeros({2, 3}), o13), unsupported_error);
    struct Identity : nn::Module {
        Tensor forward(const Tensor& x) override { return x; }
    } id;
    const onnx::ModelProto m = onnx::trace_module(id, zeros({3}));
    CHECK(op_types(m) == std::vector<std::string>{"Identity"});
    CHECK(m.graph.node[0].input[0] == "input");
    CHECK(m.graph.node[0].output[0] == "output");
    manual_seed(4);
    mnist::InferenceNet net;
    const std::string text = onnx::format_graph(onnx::trace_module(net, zeros({280 * 280 * 4})));
    CHECK(text.find("%Conv_7 = Conv[dilations=[1, 1], group=1, kernel_shape=[5, 5]") != std::string::npos);
    CHECK(text.find("output %output : Float(1, 10)") != std::string::npos);
}

TEST_CASE("export -> load -> run equals the module's forward bit for bit") {
    manual_seed(5);
    mnist::Net trained;  // stands in for a trained model: any weights will do for equality
    mnist::InferenceNet canvas;
    nn::load_state_dict(canvas, nn::state_dict(trained));
    Generator g(9);
    Tensor pixels = uniform({280 * 280 * 4}, 0.0f, 255.0f, g);
    for (std::int64_t opset : {9, 13}) {
        onnx::ExportOptions o;
        o.opset = opset;
        const auto bytes = onnx::encode_model(onnx::trace_module(canvas, zeros({280 * 280 * 4}), o));
        const onnx::Runtime rt(onnx::decode_model(bytes.data(), bytes.size()));
        canvas.eval();
        const Tensor expected = canvas(pixels);
        const auto out = rt.run({{"input", pixels}});
        REQUIRE(out.size() == 1);
        CHECK(out[0].first == "output");
        CHECK(out[0].second.shape() == Shape{1, 10});
        CHECK(out[0].second.to_vector() == expected.to_vector());  // exact: the same ops run
    }
    // The 28x28 network with a dynamic batch, at batch 3 (traced at batch 1).
    onnx::ExportOptions o13;
    o13.opset = 13;
    o13.dynamic_batch = true;
    const auto bytes = onnx::encode_model(onnx::trace_module(trained, zeros({1, 1, 28, 28}), o13));
    const onnx::Runtime rt(onnx::decode_model(bytes.data(), bytes.size()));
    Tensor batch = randn({3, 1, 28, 28}, g);
    trained.eval();
    CHECK(rt.run({{"input", batch}})[0].second.to_vector() == trained(batch).to_vector());
}

TEST_CASE("load_onnx_weights copies an exported model's weights back into a module") {
    manual_seed(6);
    mnist::Net source;
    const auto dir = std::filesystem::temp_directory_path() / "nanotorch_test_onnx_weights";
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "canvas.onnx").string();
    mnist::InferenceNet canvas;
    nn::load_state_dict(canvas, nn::state_dict(source));
    onnx::export_onnx(canvas, zeros({280 * 280 * 4}), path);
    manual_seed(7);
    mnist::Net target;  // different initial weights
    onnx::load_onnx_weights(target, path);
    const auto a = nn::state_dict(source), b = nn::state_dict(target);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].first == b[i].first);
        CHECK(a[i].second.to_vector() == b[i].second.to_vector());
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("every op the exporter emits runs in the runtime with the same result") {
    // One forward touching the remaining mappings: Pow, ReduceMax, ReduceMean, Exp/Log/Sqrt,
    // Sigmoid/Tanh, Sub/Div with tensors, Neg, rdiv, Transpose, Gather, Concat, MatMul, Identity.
    struct Everything : nn::Module {
        Tensor w = tensor({0.5f, -1.0f, 2.0f, 0.25f, 1.5f, -0.75f}, {3, 2});
        Tensor forward(const Tensor& x) override {  // x [2, 3], positive
            Tensor a = x.pow(2.0f) + x.sqrt() - x.log() / (x.exp() + 1.0f);
            Tensor b = (-a).sigmoid() * a.tanh() + 2.0f / x;
            Tensor c = cat({b, x.transpose(0, 1).transpose(0, 1)}, 1);   // [2, 6]
            Tensor m = max(c, 1, true) + c.mean({1}, true) + c.select(1, 2).reshape({2, 1});
            Tensor y = matmul(c.narrow(1, 0, 3), w) + m;                  // [2, 2]
            return y.contiguous().clone();
        }
    } net;
    const Tensor x = tensor({0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f}, {2, 3});
    CHECK_THROWS_AS(onnx::trace_module(net, x), unsupported_error);  // Pow is not in ONNX.js's list
    for (std::int64_t opset : {11, 13}) {
        onnx::ExportOptions o;
        o.opset = opset;
        const auto m = onnx::trace_module(net, x, o);
        const onnx::Runtime rt(m);
        CHECK(rt.run({{"input", x}})[0].second.to_vector() == net(x).to_vector());
    }
}
