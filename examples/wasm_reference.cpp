// wasm_reference — native nanotorch's outputs for the wasm build's exactness test
// (tests/js/wasm_api.test.mjs, scripts/test.sh step wasm).
//
//   wasm_reference MODEL.onnx IMAGES.idx COUNT OUT.f32
//
// Runs the canvas model MODEL.onnx (mnist::InferenceNet exported at any opset: [313600] RGBA in,
// [1, 10] probabilities out) with native nanotorch's onnx::Runtime on the first COUNT digits of an
// IDX image file, each drawn as the page's canvas would send it (every pixel a 10x10 block of the
// alpha channel, RGB 0; the test builds the same canvases in JavaScript), and writes the outputs
// as COUNT x 10 little-endian float32 to OUT.f32.
// Exit status: 0 on success, 1 on an error (one line), 2 on a usage error.
#include <nanotorch/nanotorch.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

using namespace nanotorch;

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: wasm_reference MODEL.onnx IMAGES.idx COUNT OUT.f32\n");
        return 2;
    }
    try {
        const onnx::Runtime rt = onnx::load_onnx(argv[1]);
        const data::IdxArray images = data::read_idx_images(argv[2]);
        const long count = std::strtol(argv[3], nullptr, 10);
        NANOTORCH_CHECK(count > 0 && count <= images.dims[0], value_error, "COUNT ", argv[3], " is not in [1, ",
                        images.dims[0], "]");
        NANOTORCH_CHECK(images.dims[1] == 28 && images.dims[2] == 28, shape_error, argv[2], " does not hold 28x28 digits");
        const std::string input = rt.inputs().at(0).name;
        std::vector<float> out;
        out.reserve(static_cast<std::size_t>(count) * 10);
        for (long i = 0; i < count; ++i) {
            const std::uint8_t* px = images.data.data() + i * 784;
            Tensor canvas = zeros({280 * 280 * 4});
            float* c = canvas.data_ptr();
            for (int y = 0; y < 280; ++y)
                for (int x = 0; x < 280; ++x) c[(y * 280 + x) * 4 + 3] = static_cast<float>(px[(y / 10) * 28 + x / 10]);
            const auto result = rt.run({{input, canvas}});
            const std::vector<float> p = result.at(0).second.to_vector();
            NANOTORCH_CHECK(p.size() == 10, shape_error, argv[1], " gives ", p.size(), " outputs, not 10");
            out.insert(out.end(), p.begin(), p.end());
        }
        util::write_file_atomic(argv[4], reinterpret_cast<const unsigned char*>(out.data()), out.size() * sizeof(float));
        std::printf("wasm_reference: %ld digits -> %s\n", count, argv[4]);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wasm_reference: error: %s\n", e.what());
        return 1;
    }
}
