// tests/fuzz/make_seeds.cpp — writes the small seed files committed under tests/fuzz/seeds/
// (run: make_seeds OUTDIR; scripts/fuzz.sh adds the large real files itself). Deterministic:
// fixed seeds and synthetic digits, so re-running it reproduces the committed bytes.
//
// Build and run (from the repo root): g++ -std=c++17 -Iinclude -isystem /usr/include/stb -pthread
//   tests/fuzz/make_seeds.cpp -o /tmp/make_seeds && /tmp/make_seeds tests/fuzz/seeds
//
//   fuzz_onnx/, fuzz_wire/   two tiny exported models (conv, pool, relu, flatten, gemm, softmax)
//                            at opset 9 and 13, the second with a symbolic batch dimension
//   fuzz_state_dict/         the weights of fuzz_state_dict's own module (loads strictly)
//   fuzz_idx/                IDX images/labels of ranks 1..4, and gzip forms (stored, fixed and
//                            dynamic Huffman blocks, optional header fields)
//   fuzz_image/              one 28x28 digit as 8-bit gray PNG, RGBA PNG, JPEG (baseline),
//                            BMP, an IDX file and a TensorProto .pb
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include <nanotorch/nanotorch.hpp>

using namespace nanotorch;
using Bytes = std::vector<unsigned char>;

namespace {

std::string g_out;

void put(const std::string& target, const std::string& name, const Bytes& b) {
    std::filesystem::create_directories(g_out + "/" + target);
    std::ofstream(g_out + "/" + target + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void append_le32(Bytes& b, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

// gzip member around raw deflate data made by stb_image_write's zlib encoder (its 2-byte zlib
// header and 4-byte Adler-32 trailer stripped). flags adds FNAME/FCOMMENT/FEXTRA fields.
Bytes gzip(const Bytes& raw, int quality, unsigned flags) {
    int len = 0;
    unsigned char* z = stbi_zlib_compress(const_cast<unsigned char*>(raw.data()), int(raw.size()), &len, quality);
    Bytes out = {0x1F, 0x8B, 8, static_cast<unsigned char>(flags), 0, 0, 0, 0, 0, 3};
    if (flags & 0x04) out.insert(out.end(), {3, 0, 'a', 'b', 'c'});
    if (flags & 0x08) out.insert(out.end(), {'x', '.', 'i', 'd', 'x', 0});
    if (flags & 0x10) out.insert(out.end(), {'h', 'i', 0});
    out.insert(out.end(), z + 2, z + len - 4);
    STBIW_FREE(z);
    append_le32(out, util::crc32(raw.data(), raw.size()));
    append_le32(out, static_cast<std::uint32_t>(raw.size()));
    return out;
}

// A stored-block gzip member (deflate BTYPE 00), which stb_image_write never emits.
Bytes gzip_stored(const Bytes& raw) {
    Bytes out = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0x01};
    const auto n = static_cast<std::uint16_t>(raw.size());
    out.insert(out.end(), {static_cast<unsigned char>(n), static_cast<unsigned char>(n >> 8),
                           static_cast<unsigned char>(~n), static_cast<unsigned char>(~n >> 8)});
    out.insert(out.end(), raw.begin(), raw.end());
    append_le32(out, util::crc32(raw.data(), raw.size()));
    append_le32(out, static_cast<std::uint32_t>(raw.size()));
    return out;
}

Bytes idx(const std::vector<std::uint32_t>& dims, const Bytes& payload) {
    Bytes b = {0, 0, 8, static_cast<unsigned char>(dims.size())};
    for (const std::uint32_t d : dims)
        for (int i = 3; i >= 0; --i) b.push_back(static_cast<unsigned char>(d >> (8 * i)));
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

// A 28x28 "7": white ink on black, like MNIST.
Bytes digit() {
    Bytes px(28 * 28, 0);
    for (int x = 6; x < 22; ++x) px[6 * 28 + x] = px[7 * 28 + x] = 255;
    for (int y = 8; y < 23; ++y) {
        const int x = 21 - (y - 8) / 2;
        px[y * 28 + x] = px[y * 28 + x - 1] = 230;
    }
    return px;
}

void sink(void* ctx, void* data, int n) {
    auto* b = static_cast<Bytes*>(ctx);
    b->insert(b->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + n);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seeds OUTDIR\n");
        return 2;
    }
    g_out = argv[1];

    // ---- ONNX (also the wire target's seeds) ----
    manual_seed(11);
    nn::Sequential net(nn::Conv2d(1, 2, 3), nn::MaxPool2d(2), nn::ReLU(), nn::Flatten(), nn::Linear(8, 3),
                       nn::Softmax(1));
    onnx::ExportOptions o9;
    onnx::ExportOptions o13;
    o13.opset = 13;
    o13.dynamic_batch = true;
    const Bytes m9 = onnx::encode_model(onnx::trace_module(*net.ptr(), zeros({1, 1, 6, 6}), o9));
    const Bytes m13 = onnx::encode_model(onnx::trace_module(*net.ptr(), zeros({1, 1, 6, 6}), o13));
    for (const char* t : {"fuzz_onnx", "fuzz_wire"}) {
        put(t, "tiny_opset9.onnx", m9);
        put(t, "tiny_opset13_batch.onnx", m13);
    }

    // ---- state_dict: the module fuzz_state_dict.cpp loads into (same seed, same layers) ----
    manual_seed(7);
    nn::Sequential sd(nn::Conv2d(1, 2, 3), nn::ReLU(), nn::Flatten(), nn::Linear(8, 3));
    put("fuzz_state_dict", "module.ntsd", nn::encode_state_dict(nn::state_dict(*sd.ptr())));

    // ---- IDX ----
    const Bytes d = digit();
    Bytes two = d;
    two.insert(two.end(), d.rbegin(), d.rend());
    const Bytes images = idx({2, 28, 28}, two);
    const Bytes labels = idx({2}, {7, 3});
    put("fuzz_idx", "images2.idx", images);
    put("fuzz_idx", "labels2.idx", labels);
    put("fuzz_idx", "rank2.idx", idx({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
    put("fuzz_idx", "rank4_empty.idx", idx({2, 0, 3, 1}, {}));
    put("fuzz_idx", "images2_dynamic.idx.gz", gzip(images, 8, 0));
    put("fuzz_idx", "labels2_fields.idx.gz", gzip(labels, 5, 0x04 | 0x08 | 0x10));
    put("fuzz_idx", "labels2_stored.idx.gz", gzip_stored(labels));

    // ---- images, and the other inputs onnx_run accepts ----
    Bytes rgba;
    for (const unsigned char v : d) rgba.insert(rgba.end(), {0, 0, 0, v});  // ink in alpha, as a canvas saves it
    Bytes png_gray, png_rgba, jpg, bmp;
    stbi_write_png_to_func(sink, &png_gray, 28, 28, 1, d.data(), 28);
    stbi_write_png_to_func(sink, &png_rgba, 28, 28, 4, rgba.data(), 28 * 4);
    stbi_write_jpg_to_func(sink, &jpg, 28, 28, 1, d.data(), 75);
    stbi_write_bmp_to_func(sink, &bmp, 28, 28, 1, d.data());
    put("fuzz_image", "digit_gray.png", png_gray);
    put("fuzz_image", "digit_rgba.png", png_rgba);
    put("fuzz_image", "digit.jpg", jpg);
    put("fuzz_image", "digit.bmp", bmp);
    put("fuzz_image", "digit.idx", idx({1, 28, 28}, d));
    put("fuzz_image", "digit.idx.gz", gzip(idx({1, 28, 28}, d), 8, 0));
    const float values[4] = {0.5f, -1.0f, 2.0f, 0.0f};
    put("fuzz_image", "tensor.pb", onnx::encode_tensor(onnx::make_float_tensor("x", {2, 2}, values)));
    return 0;
}
