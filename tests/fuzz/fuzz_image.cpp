// tests/fuzz/fuzz_image.cpp — libFuzzer target for onnx_run's input loading
// (examples/onnx_run.hpp: load_input), which is where the tool reads untrusted images.
//
// load_input takes a path, so each input is written to a private temporary file, named without
// an extension: the tool then sniffs the content, exactly as for `--input FILE`. A PNG/JPEG/BMP
// goes through data::read_image and the MNIST preprocessing (decode_image, to_grayscale, to_ink,
// resize_area, mnist_normalize / rgba_canvas); anything else is read as a TensorProto .pb, the
// tool's other input kind. Input starting like IDX (00 00 08) or gzip (1F 8B) is loaded as
// idx:FILE:0 instead (read_idx_images, idx_image, idx_to_mnist). An input of even length is
// prepared for a [1, 1, 28, 28] grayscale model input, an odd one for a flat 28x28 RGBA canvas.
// Images whose header declares more than 2^18 pixels are not decoded (see max_fuzz_pixels).
// Heap rule: 64 x input + 64 bytes per pixel the header declares (RGBA, the float planes of the
// preprocessing, and the decoder's working buffers, which data/image.hpp bounds by 16 bytes per
// pixel) + 2 MiB: a compressed image legitimately decodes to far more than 64x its size.
#include <unistd.h>  // getpid

#include <climits>  // INT_MAX

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "onnx_run.hpp"  // examples/

#include "fuzz_common.hpp"

namespace {

using namespace nanotorch;

std::string g_path;
constexpr std::int64_t max_fuzz_pixels = std::int64_t(1) << 18;  // 512 x 512

onnx::ValueInfoProto input_info(std::vector<std::int64_t> dims) {
    onnx::ValueInfoProto v;
    v.name = "x";
    v.elem_type = static_cast<std::int32_t>(onnx::DataType::float32);
    v.has_shape = true;
    for (const std::int64_t d : dims) {
        onnx::Dimension dim;
        dim.value = d;
        dim.has_value = true;
        v.shape.push_back(dim);
    }
    return v;
}

// Width x height the image header declares (stb_image's info call, as decode_image makes it),
// or 0 when it is not an image: the pixels a decoder legitimately needs memory for.
std::int64_t header_pixels(const std::uint8_t* data, std::size_t size) {
    namespace stb = data::detail::image_stb;
    if (!data::is_image(data, size) || size > std::size_t(INT_MAX)) return 0;
    try {
        // decode_image validates a JPEG's Huffman tables before stb sees them; so must we, since
        // stb's header parser builds those tables too.
        if (data[0] == 0xFF) data::detail::check_jpeg(data, size, "fuzz");
    } catch (const error&) {
        return 0;
    }
    const data::detail::ImageAllocScope scope(std::size_t(1) << 20);
    int w = 0, h = 0, c = 0;
    if (!stb::nanotorch_detail_image_stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &c)) return 0;
    return w > 0 && h > 0 ? std::int64_t(w) * std::int64_t(h) : 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    set_num_threads(1);
    const char* dir = std::getenv("TMPDIR");
    g_path = std::string(dir ? dir : "/tmp") + "/nanotorch_fuzz_image_" + std::to_string(getpid());
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (g_path.empty()) LLVMFuzzerInitialize(nullptr, nullptr);
    {
        std::FILE* f = std::fopen(g_path.c_str(), "wb");
        if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) {
            std::fprintf(stderr, "fuzz_image: cannot write %s\n", g_path.c_str());
            std::abort();
        }
    }
    const bool idx = (size >= 3 && data[0] == 0 && data[1] == 0 && data[2] == 8) ||
                     (size >= 2 && data[0] == 0x1F && data[1] == 0x8B);
    const std::string spec = idx ? "idx:" + g_path + ":0" : g_path;
    fuzz::HeapScope heap;
    const std::int64_t pixels = header_pixels(data, size);
    // Decoding time is proportional to pixels, which a compressed format may legitimately
    // declare at up to 8256 per file byte (data/image.hpp): a valid 4 KB PNG of 33 Mpx cannot
    // decode in 1 s under ASan. Such inputs are skipped, as the ONNX target skips large runs.
    if (pixels > max_fuzz_pixels) return 0;
    // The layout is chosen by the input's length, so both are fuzzed without decoding twice.
    const std::vector<std::int64_t> dims =
        size % 2 == 0 ? std::vector<std::int64_t>{1, 1, 28, 28} : std::vector<std::int64_t>{1, 4 * 28 * 28};
    try {
        (void)onnx_run::load_input(spec, input_info(dims));
    } catch (const error&) {
        // Not an image, a corrupt one, or one the input shape cannot take: rejected.
    }
    std::int64_t budget = fuzz::budget_64x(size) + (std::int64_t(1) << 20) + 64 * pixels;
    if (idx) budget += 2 * 1032 * std::int64_t(size);  // a gzipped IDX file may inflate (see fuzz_idx)
    fuzz::check_peak(heap.peak(), budget, size, "onnx_run::load_input");
    return 0;
}
