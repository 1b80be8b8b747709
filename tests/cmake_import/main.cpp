// The consumer app used by the packaging tests: built against an *installed* nanotorch, once via
// find_package(nanotorch) (tests/cmake_import/CMakeLists.txt) and once via pkg-config
// (tests/pkgconfig_import/build.sh), and once via add_subdirectory. It must use real API so a
// broken include path, a missing header in the install, or a missing usage requirement
// (C++17, -pthread, xsimd's include dir) fails here. Exits non-zero on any mismatch.
#include <nanotorch/nanotorch.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "consumer: FAILED: %s\n", what);
        ++failures;
    }
}

void check_rank(int rank) {
    NANOTORCH_CHECK(rank == 4, nanotorch::shape_error, "conv2d: expected a rank-4 input, got rank ", rank);
}

}  // namespace

int main() {
    // Exceptions: thrown through NANOTORCH_CHECK, caught by the specific and by the base type.
    try {
        check_rank(2);
        expect(false, "NANOTORCH_CHECK did not throw");
    } catch (const nanotorch::shape_error& e) {
        expect(std::string(e.what()) == "conv2d: expected a rank-4 input, got rank 2",
               "shape_error message");
    }
    try {
        throw nanotorch::parse_error(12, "truncated varint", "model.onnx");
    } catch (const nanotorch::error& e) {
        expect(std::string(e.what()) == "model.onnx: byte 12: truncated varint", "parse_error message");
    }

    // Byte helpers: the IDX label-file magic number, and a little-endian round trip.
    const unsigned char magic[4] = {0x00, 0x00, 0x08, 0x01};
    expect(nanotorch::util::load_be32(magic) == 0x00000801u, "load_be32");
    unsigned char buf[4] = {};
    nanotorch::util::store_le32(buf, nanotorch::util::float_bits(1.0f));
    expect(nanotorch::util::bits_float(nanotorch::util::load_le32(buf)) == 1.0f, "float le32 round trip");

    // Tensors, autograd and an optimizer step through the SIMD kernels (needs xsimd's include dir
    // and -pthread from the usage requirements).
    using namespace nanotorch;
    manual_seed(0);
    nn::Linear fc(3, 2);
    optim::SGD opt(fc->parameters(), optim::SGDOptions(0.1));
    const Tensor x = tensor({1, 2, 3}, {1, 3});
    const float before = F::cross_entropy(fc(x), {1}).item();
    for (int i = 0; i < 5; ++i) {
        opt.zero_grad();
        F::cross_entropy(fc(x), {1}).backward();
        opt.step();
    }
    expect(F::cross_entropy(fc(x), {1}).item() < before, "five SGD steps lower the loss");
    // ONNX export and the runtime, in memory: the graph reproduces the module exactly.
    const auto bytes = onnx::encode_model(onnx::trace_module(*fc.ptr(), x));
    const onnx::Runtime rt(onnx::decode_model(bytes.data(), bytes.size()));
    expect(rt.run({{"input", x}})[0].second.to_vector() == fc(x).to_vector(), "ONNX round trip");

    // A convolution through the convolution kernels: tests/pkgconfig_import/build.sh also builds
    // this file with -O2 -march=native, where it runs the widest SIMD paths (on AVX-512 the
    // product with output channels in the lanes), so those must compile without warnings in user
    // code too. All-ones 32-channel 3x3 windows with padding 1: 288 inside, 128 in a corner.
    const Tensor img = ones({1, 32, 14, 14}), kernel = ones({32, 32, 3, 3});
    const std::vector<float> conv = F::conv2d(img, kernel, Tensor(), 1, 1).to_vector();
    expect(conv.size() == 32u * 14 * 14 && conv[0] == 128.0f && conv[15] == 288.0f, "conv2d of ones");

    if (failures != 0) return 1;
    std::printf("nanotorch consumer OK (nanotorch %s)\n", NANOTORCH_VERSION_STRING);
    return 0;
}
