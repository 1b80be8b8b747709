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
