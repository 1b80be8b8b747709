// Hostile ONNX files: an exported model truncated at every byte and thousands of random bit
// flips must each end in a nanotorch::error (or a model that loads and runs), never a crash,
// a hang or a huge allocation. Run under ASan+UBSan by scripts/test.sh (clang-asan).
#include <doctest/doctest.h>

#include <nanotorch/nanotorch.hpp>

using namespace nanotorch;

namespace {

// A small but complete model: conv, pool, relu, reshape, gemm, softmax (opset 9).
std::vector<unsigned char> small_model() {
    manual_seed(11);
    nn::Sequential net(nn::Conv2d(1, 2, 3), nn::MaxPool2d(2), nn::ReLU(), nn::Flatten(), nn::Linear(8, 3),
                       nn::Softmax(1));
    return onnx::encode_model(onnx::trace_module(*net.ptr(), zeros({1, 1, 6, 6})));
}

/// Decodes, builds a runtime and runs it once on zeros. Returns "" on success or the error kind.
std::string try_everything(const std::vector<unsigned char>& bytes) {
    try {
        onnx::Runtime rt(onnx::decode_model(bytes.data(), bytes.size()));
        onnx::NamedTensors inputs;
        for (const auto& in : rt.required_inputs()) {
            Shape s;
            for (const auto& d : in.shape) s.push_back(d.has_value ? d.value : 1);
            if (shape_numel(s) > (1 << 20)) return "too large to run";  // a flip can inflate a declared dim
            inputs.emplace_back(in.name, zeros(s));
        }
        rt.run(inputs);
        return "";
    } catch (const error& e) {
        return "error";
    }
}

}  // namespace

TEST_CASE("a model truncated at every byte fails cleanly") {
    const auto bytes = small_model();
    REQUIRE(try_everything(bytes).empty());  // the intact model loads and runs
    int errors = 0;
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
        const std::vector<unsigned char> part(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
        errors += try_everything(part) == "error";  // anything else (a crash) would abort the test binary
    }
    MESSAGE(bytes.size(), " truncations, ", errors, " rejected");
    CHECK(errors > 0);
}

TEST_CASE("random bit flips never escape as anything but nanotorch::error") {
    const auto bytes = small_model();
    Generator g(12345);
    int rejected = 0, loaded = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        std::vector<unsigned char> mutated = bytes;
        const int flips = 1 + static_cast<int>(g.randint(4));
        for (int k = 0; k < flips; ++k) {
            const auto at = static_cast<std::size_t>(g.randint(mutated.size()));
            mutated[at] = static_cast<unsigned char>(mutated[at] ^ (1u << g.randint(8)));
        }
        const std::string r = try_everything(mutated);
        (r.empty() ? loaded : rejected)++;
    }
    MESSAGE("3000 mutants: ", loaded, " loaded and ran, ", rejected, " rejected with nanotorch::error");
    CHECK(loaded + rejected == 3000);
    CHECK(rejected > 0);
}

TEST_CASE("onnx::Limits: each lowered limit is a parse_error naming it") {
    const auto bytes = small_model();
    const auto message = [&](const onnx::Limits& l) {
        try {
            onnx::decode_model(bytes.data(), bytes.size(), "m.onnx", l);
        } catch (const parse_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(message(onnx::Limits{}) == "no error");
    onnx::Limits nodes;
    nodes.max_nodes = 2;  // the model has 6 nodes or more
    CHECK(message(nodes).find("more than the limit of 2 nodes (Limits::max_nodes)") != std::string::npos);
    onnx::Limits elements;
    elements.max_tensor_elements = 3;  // the conv weight alone has 2 x 1 x 3 x 3
    CHECK(message(elements).find("(Limits::max_tensor_elements)") != std::string::npos);
    onnx::Limits file;
    file.max_file_bytes = bytes.size() - 1;
    CHECK(message(file).find("(Limits::max_file_bytes)") != std::string::npos);
    onnx::Limits depth;
    depth.max_depth = 1;  // model > graph > node is already depth 2
    CHECK(message(depth).find("nested deeper than the limit of 1") != std::string::npos);
}

TEST_CASE("onnx::Limits::max_memory_per_byte refuses files of tiny empty messages, not real models") {
    // A model whose one node holds 4000 empty attributes: 8 KB that would decode into 4000
    // 312-byte AttributeProto structs (156 bytes per input byte, before vector growth).
    onnx::wire::Writer w;
    w.write_int64_field(1, 7);  // ir_version
    w.write_message(7, [](onnx::wire::Writer& g) {
        g.write_message(1, [](onnx::wire::Writer& n) {
            for (int k = 0; k < 4000; ++k) n.write_bytes_field(5, "");
        });
    });
    w.write_message(8, [](onnx::wire::Writer& o) { o.write_int64_field(2, 13); });
    const std::vector<unsigned char> bytes = w.take();
    try {
        onnx::decode_model(bytes.data(), bytes.size(), "empty.onnx");
        FAIL("no exception");
    } catch (const parse_error& e) {
        CHECK(std::string(e.what()).find("(Limits::max_memory_per_byte)") != std::string::npos);
        CHECK(std::string(e.what()).find("ModelProto.graph.node[0]") != std::string::npos);
        CHECK(e.offset() < bytes.size());
    }
    // Raising the limit lets it through (the caller decides); the exported model needs far less.
    onnx::Limits lenient;
    lenient.max_memory_per_byte = 1000;
    CHECK(onnx::decode_model(bytes.data(), bytes.size(), "empty.onnx", lenient).graph.node[0].attribute.size() == 4000);
    const auto model = small_model();
    onnx::Limits strict;
    strict.max_memory_per_byte = 4;  // an exported model's structs need well under 4 bytes per byte
    CHECK_NOTHROW(onnx::decode_model(model.data(), model.size(), "m.onnx", strict));
}

TEST_CASE("a 0 dim does not exempt a tensor's other dims from max_tensor_elements") {
    // Found by fuzz_image (onnx_run's .pb input): dims [0, 2^40, 2^40] hold no elements, so the
    // payload check passed, and making a Tensor of that shape overflowed its int64 strides.
    onnx::TensorProto t;
    t.name = "empty";
    t.data_type = static_cast<std::int32_t>(onnx::DataType::float32);
    t.dims = {0, std::int64_t(1) << 40, std::int64_t(1) << 40};
    const auto bytes = onnx::encode_tensor(t);
    CHECK_THROWS_WITH_AS(onnx::decode_tensor(bytes.data(), bytes.size()),
                         doctest::Contains("a 0 dim does not exempt the others (Limits::max_tensor_elements)"),
                         parse_error);
    t.dims = {0, 1000, 1000};  // within the limit: an ordinary empty tensor
    const auto ok = onnx::encode_tensor(t);
    CHECK(onnx::decode_tensor(ok.data(), ok.size()).dims.size() == 3);
}
