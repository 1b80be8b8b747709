// Tests for data/image.hpp (decoding, grayscale, resizing, the ink rule and the two network input
// layouts) and for the onnx_run tool's logic (examples/onnx_run.hpp).
//
// This TU is also the coexistence test the stb isolation in image.hpp promises: a user's own
// stb_image declarations come first (with a user option, STBI_MAX_DIMENSIONS, set), then gzip.hpp
// and image.hpp (two private copies), then the user's STB_IMAGE_IMPLEMENTATION, and the user's
// global stbi_load_from_memory is compared with decode_image on the same bytes. stb_image_write
// (global, static) writes the PNG/JPEG/BMP test images into memory.
#define STBI_MAX_DIMENSIONS (1 << 20)  // a user option that must survive our includes
#include <stb/stb_image.h>

#include <nanotorch/data/gzip.hpp>
#include <nanotorch/data/image.hpp>

#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#if STBI_MAX_DIMENSIONS != (1 << 20)
#error "image.hpp did not restore the user's STBI_MAX_DIMENSIONS"
#endif
#if !defined(STBI_INCLUDE_STB_IMAGE_H)
#error "image.hpp did not restore the user's stb_image include guard"
#endif
#if defined(STB_IMAGE_STATIC) || defined(stbi_load_from_memory) || defined(STBI_ONLY_PNG)
#error "image.hpp leaked one of its stb configuration macros"
#endif

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../examples/mnist_net.hpp"
#include "../examples/onnx_run.hpp"

namespace fs = std::filesystem;
using namespace nanotorch;
using Bytes = std::vector<unsigned char>;

namespace {

// ---- helpers ----

void append(void* ctx, void* data, int size) {
    auto* out = static_cast<Bytes*>(ctx);
    const auto* p = static_cast<const unsigned char*>(data);
    out->insert(out->end(), p, p + size);
}

// comp = channels of `px` (1 gray, 3 RGB, 4 RGBA).
Bytes png(int w, int h, int comp, const std::vector<unsigned char>& px) {
    Bytes out;
    REQUIRE(stbi_write_png_to_func(append, &out, w, h, comp, px.data(), w * comp) != 0);
    return out;
}
// square(56, 14, 42, 0, 255) (a black square on white) as a baseline JPEG, written once by
// stb_image_write's stbi_write_jpg_to_func at quality 90. It is stored rather than written here
// because that encoder shifts a negative int left (stb_image_write.h, stbiw__jpg_writeBits),
// which UBSan reports, and the sanitizer build makes every report fatal.
const unsigned char square56_jpg[] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0xff, 0xdb, 0x00, 0x84, 0x00, 0x03, 0x02, 0x02, 0x03, 0x02, 0x02, 0x03, 0x03, 0x03, 0x03, 0x04, 0x03, 0x03,
    0x04, 0x05, 0x08, 0x05, 0x05, 0x04, 0x04, 0x05, 0x0a, 0x07, 0x07, 0x06, 0x08, 0x0c, 0x0a, 0x0c, 0x0c, 0x0b, 0x0a,
    0x0b, 0x0b, 0x0d, 0x0e, 0x12, 0x10, 0x0d, 0x0e, 0x11, 0x0e, 0x0b, 0x0b, 0x10, 0x16, 0x10, 0x11, 0x13, 0x14, 0x15,
    0x15, 0x15, 0x0c, 0x0f, 0x17, 0x18, 0x16, 0x14, 0x18, 0x12, 0x14, 0x15, 0x14, 0x01, 0x03, 0x04, 0x04, 0x05, 0x04,
    0x05, 0x09, 0x05, 0x05, 0x09, 0x14, 0x0d, 0x0b, 0x0d, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x14, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x38, 0x00, 0x38, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03,
    0x11, 0x01, 0xff, 0xc4, 0x01, 0xa2, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x00, 0x02,
    0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01, 0x02, 0x03, 0x00, 0x04,
    0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
    0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19,
    0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47,
    0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
    0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5,
    0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6,
    0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5,
    0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x11, 0x00, 0x02, 0x01,
    0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00, 0x01, 0x02, 0x03, 0x11, 0x04,
    0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1,
    0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17,
    0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47,
    0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
    0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93,
    0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
    0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5,
    0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6,
    0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0xfd,
    0x53, 0xa2, 0x8a, 0xe5, 0x3e, 0x29, 0x7c, 0x52, 0xf0, 0xc7, 0xc1, 0x6f, 0x02, 0x6a, 0x7e, 0x32, 0xf1, 0x96, 0xa7,
    0xfd, 0x8d, 0xe1, 0xbd, 0x37, 0xca, 0xfb, 0x5d, 0xef, 0xd9, 0xe5, 0x9f, 0xcb, 0xf3, 0x25, 0x48, 0x93, 0xe4, 0x89,
    0x59, 0xce, 0x5e, 0x44, 0x1c, 0x29, 0xc6, 0x72, 0x78, 0x04, 0xd0, 0x07, 0x57, 0x45, 0x7c, 0xab, 0xff, 0x00, 0x0f,
    0x47, 0xfd, 0x98, 0xbf, 0xe8, 0xa6, 0x7f, 0xe5, 0x03, 0x54, 0xff, 0x00, 0xe4, 0x6a, 0x3f, 0xe1, 0xe8, 0xff, 0x00,
    0xb3, 0x17, 0xfd, 0x14, 0xcf, 0xfc, 0xa0, 0x6a, 0x9f, 0xfc, 0x8d, 0x40, 0x1f, 0x55, 0x51, 0x5f, 0x2a, 0xff, 0x00,
    0xc3, 0xd1, 0xff, 0x00, 0x66, 0x2f, 0xfa, 0x29, 0x9f, 0xf9, 0x40, 0xd5, 0x3f, 0xf9, 0x1a, 0xbd, 0xff, 0x00, 0xe1,
    0x6f, 0xc5, 0x2f, 0x0c, 0x7c, 0x69, 0xf0, 0x26, 0x99, 0xe3, 0x2f, 0x06, 0xea, 0x7f, 0xdb, 0x3e, 0x1b, 0xd4, 0xbc,
    0xdf, 0xb2, 0x5e, 0xfd, 0x9e, 0x58, 0x3c, 0xcf, 0x2e, 0x57, 0x89, 0xfe, 0x49, 0x55, 0x5c, 0x61, 0xe3, 0x71, 0xca,
    0x8c, 0xe3, 0x23, 0x82, 0x0d, 0x00, 0x75, 0x74, 0x51, 0x45, 0x00, 0x15, 0xf2, 0xaf, 0xfc, 0x15, 0x1f, 0xfe, 0x4c,
    0x4f, 0xe2, 0x67, 0xfd, 0xc3, 0x3f, 0xf4, 0xe9, 0x69, 0x5f, 0x55, 0x57, 0xca, 0xbf, 0xf0, 0x54, 0x7f, 0xf9, 0x31,
    0x3f, 0x89, 0x9f, 0xf7, 0x0c, 0xff, 0x00, 0xd3, 0xa5, 0xa5, 0x00, 0x7e, 0x00, 0xd1, 0x45, 0x14, 0x00, 0x57, 0xef,
    0xf7, 0xfc, 0x12, 0xe3, 0xfe, 0x4c, 0x4f, 0xe1, 0x9f, 0xfd, 0xc4, 0xff, 0x00, 0xf4, 0xe9, 0x77, 0x5f, 0x80, 0x35,
    0xfb, 0xfd, 0xff, 0x00, 0x04, 0xb8, 0xff, 0x00, 0x93, 0x13, 0xf8, 0x67, 0xff, 0x00, 0x71, 0x3f, 0xfd, 0x3a, 0x5d,
    0xd0, 0x07, 0xd5, 0x54, 0x51, 0x45, 0x00, 0x15, 0xf2, 0xaf, 0xfc, 0x15, 0x1f, 0xfe, 0x4c, 0x4f, 0xe2, 0x67, 0xfd,
    0xc3, 0x3f, 0xf4, 0xe9, 0x69, 0x5f, 0x55, 0x57, 0x29, 0xf1, 0x4b, 0xe1, 0x6f, 0x86, 0x3e, 0x34, 0xf8, 0x13, 0x53,
    0xf0, 0x6f, 0x8c, 0xb4, 0xcf, 0xed, 0x9f, 0x0d, 0xea, 0x5e, 0x57, 0xda, 0xec, 0xbe, 0xd1, 0x2c, 0x1e, 0x67, 0x97,
    0x2a, 0x4a, 0x9f, 0x3c, 0x4c, 0xae, 0x30, 0xf1, 0xa1, 0xe1, 0x86, 0x71, 0x83, 0xc1, 0x22, 0x80, 0x3f, 0x98, 0x2a,
    0x2b, 0xf7, 0xfb, 0xfe, 0x1d, 0x71, 0xfb, 0x31, 0x7f, 0xd1, 0x33, 0xff, 0x00, 0xca, 0xfe, 0xa9, 0xff, 0x00, 0xc9,
    0x34, 0x7f, 0xc3, 0xae, 0x3f, 0x66, 0x2f, 0xfa, 0x26, 0x7f, 0xf9, 0x5f, 0xd5, 0x3f, 0xf9, 0x26, 0x80, 0x3f, 0x00,
    0x6b, 0xf7, 0xfb, 0xfe, 0x09, 0x71, 0xff, 0x00, 0x26, 0x27, 0xf0, 0xcf, 0xfe, 0xe2, 0x7f, 0xfa, 0x74, 0xbb, 0xa3,
    0xfe, 0x1d, 0x71, 0xfb, 0x31, 0x7f, 0xd1, 0x33, 0xff, 0x00, 0xca, 0xfe, 0xa9, 0xff, 0x00, 0xc9, 0x35, 0xef, 0xff,
    0x00, 0x0b, 0x7e, 0x16, 0xf8, 0x63, 0xe0, 0xb7, 0x81, 0x34, 0xcf, 0x06, 0xf8, 0x37, 0x4c, 0xfe, 0xc6, 0xf0, 0xde,
    0x9b, 0xe6, 0xfd, 0x92, 0xcb, 0xed, 0x12, 0xcf, 0xe5, 0xf9, 0x92, 0xbc, 0xaf, 0xf3, 0xca, 0xcc, 0xe7, 0x2f, 0x23,
    0x9e, 0x58, 0xe3, 0x38, 0x1c, 0x00, 0x28, 0x03, 0xab, 0xa2, 0x8a, 0x28, 0x00, 0xa2, 0x8a, 0x28, 0x00, 0xa2, 0x8a,
    0x28, 0x00, 0xa2, 0x8a, 0x28, 0x00, 0xa2, 0x8a, 0x28, 0x03, 0xff, 0xd9,
};
Bytes jpeg_square56() { return Bytes(std::begin(square56_jpg), std::end(square56_jpg)); }
Bytes bmp(int w, int h, int comp, const std::vector<unsigned char>& px) {
    Bytes out;
    REQUIRE(stbi_write_bmp_to_func(append, &out, w, h, comp, px.data()) != 0);
    return out;
}

// An n×n gray image: `bg` everywhere, `fg` in the square [lo, hi)².
std::vector<unsigned char> square(int n, int lo, int hi, unsigned char fg, unsigned char bg) {
    std::vector<unsigned char> px(static_cast<std::size_t>(n * n), bg);
    for (int y = lo; y < hi; ++y)
        for (int x = lo; x < hi; ++x) px[static_cast<std::size_t>(y * n + x)] = fg;
    return px;
}

void put_be32(Bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
}

// One PNG chunk: length, type, data, CRC-32 of type + data.
void chunk(Bytes& out, const char* type, const Bytes& data) {
    put_be32(out, static_cast<std::uint32_t>(data.size()));
    Bytes body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    out.insert(out.end(), body.begin(), body.end());
    put_be32(out, util::crc32(body.data(), body.size()));
}

// A hand-built 8-bit grayscale PNG with the given IHDR size and IDAT payload (zlib stream).
Bytes raw_png(std::uint32_t w, std::uint32_t h, const Bytes& idat) {
    Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    Bytes ihdr;
    put_be32(ihdr, w);
    put_be32(ihdr, h);
    ihdr.insert(ihdr.end(), {8, 0, 0, 0, 0});  // depth 8, gray, deflate, filter 0, no interlace
    chunk(out, "IHDR", ihdr);
    if (!idat.empty()) chunk(out, "IDAT", idat);
    chunk(out, "IEND", {});
    return out;
}

Bytes zlib(std::vector<unsigned char> raw) {
    int len = 0;
    unsigned char* z = stbi_zlib_compress(raw.data(), static_cast<int>(raw.size()), &len, 8);
    REQUIRE(z != nullptr);
    Bytes out(z, z + len);
    STBIW_FREE(z);
    return out;
}

// An IDX image file (magic 0x00000803) holding `images` of rows × cols.
Bytes idx_file(const std::vector<std::vector<unsigned char>>& images, std::uint32_t rows, std::uint32_t cols) {
    Bytes out = {0, 0, 8, 3};
    put_be32(out, static_cast<std::uint32_t>(images.size()));
    put_be32(out, rows);
    put_be32(out, cols);
    for (const auto& im : images) out.insert(out.end(), im.begin(), im.end());
    return out;
}

class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("nanotorch_test_onnx_run_" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name, const Bytes& bytes) const {
        const std::string p = (path_ / name).string();
        std::ofstream out(p, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        REQUIRE_MESSAGE(out.good(), "cannot write ", p);
        return p;
    }
    std::string path(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

// tests/data/onnx: $NANOTORCH_SOURCE_DIR/..., then relative to this file, then to the cwd.
std::string golden_dir() {
    std::vector<fs::path> candidates;
    if (const char* src = std::getenv("NANOTORCH_SOURCE_DIR")) candidates.push_back(fs::path(src) / "tests/data/onnx");
    candidates.push_back(fs::path(__FILE__).parent_path() / "data/onnx");
    candidates.push_back("tests/data/onnx");
    for (const auto& dir : candidates) {
        std::error_code ec;
        if (fs::exists(dir / "relu_opset9.onnx", ec)) return dir.string();
    }
    return {};
}

struct Run {
    int status;
    std::string out, err;
};
Run run_tool(const std::vector<std::string>& args) {
    std::vector<const char*> argv = {"onnx_run"};
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream out, err;
    const int status = onnx_run::main(static_cast<int>(argv.size()), argv.data(), out, err);
    return {status, out.str(), err.str()};
}

// Expected values of the seed's preprocessing for ink 0 and 255 (same float expression as the code).
const float norm0 = (0.0f / 255.0f - data::mnist_mean) / data::mnist_std;
const float norm255 = (255.0f / 255.0f - data::mnist_mean) / data::mnist_std;

}  // namespace

// ---- decoding ----

TEST_CASE("decode_image: PNG, BMP and JPEG come back as RGBA of the right size and values") {
    const auto px = square(8, 2, 6, 200, 10);
    SUBCASE("gray PNG is exact and expanded to RGBA") {
        const Bytes b = png(8, 8, 1, px);
        const data::Image im = data::decode_image(b.data(), b.size(), "sq.png");
        REQUIRE(im.width == 8);
        REQUIRE(im.height == 8);
        REQUIRE(im.rgba.size() == 8 * 8 * 4);
        for (std::size_t i = 0; i < px.size(); ++i) {
            CHECK(im.rgba[4 * i] == px[i]);
            CHECK(im.rgba[4 * i + 1] == px[i]);
            CHECK(im.rgba[4 * i + 2] == px[i]);
            CHECK(im.rgba[4 * i + 3] == 255);
        }
    }
    SUBCASE("RGBA PNG keeps colour and alpha") {
        const std::vector<unsigned char> rgba = {255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0, 1, 2, 3, 4};
        const Bytes b = png(2, 2, 4, rgba);
        const data::Image im = data::decode_image(b.data(), b.size(), "c.png");
        CHECK(im.rgba == rgba);
    }
    SUBCASE("BMP (RGB, bottom-up on disk) is exact") {
        const Bytes b = bmp(8, 8, 1, px);
        const data::Image im = data::decode_image(b.data(), b.size(), "sq.bmp");
        REQUIRE(im.width == 8);
        for (std::size_t i = 0; i < px.size(); ++i) CHECK(im.rgba[4 * i] == px[i]);
    }
    SUBCASE("JPEG is close (lossy: within 12 grey levels away from the square's edges)") {
        const Bytes b = jpeg_square56();
        const data::Image im = data::decode_image(b.data(), b.size(), "sq.jpg");
        REQUIRE(im.width == 56);
        REQUIRE(im.height == 56);
        CHECK(std::abs(int(im.rgba[4 * (28 * 56 + 28)]) - 0) <= 12);
        CHECK(std::abs(int(im.rgba[4 * (2 * 56 + 2)]) - 255) <= 12);
        CHECK(im.rgba[4 * (2 * 56 + 2) + 3] == 255);
    }
}

TEST_CASE("decode_image agrees with the user's own global stb_image in the same TU") {
    const auto px = square(16, 3, 9, 255, 0);
    const Bytes b = png(16, 16, 1, px);
    int w = 0, h = 0, c = 0;
    unsigned char* user = stbi_load_from_memory(b.data(), static_cast<int>(b.size()), &w, &h, &c, 4);
    REQUIRE(user != nullptr);
    const data::Image ours = data::decode_image(b.data(), b.size(), "x.png");
    CHECK(w == ours.width);
    CHECK(h == ours.height);
    CHECK(std::vector<unsigned char>(user, user + 16 * 16 * 4) == ours.rgba);
    stbi_image_free(user);
    CHECK(stbi_failure_reason() == nullptr);  // the user's error state is separate from ours
    CHECK_THROWS_AS(data::decode_image(b.data(), 10, "cut.png"), parse_error);
    CHECK(stbi_failure_reason() == nullptr);
}

TEST_CASE("decode_image rejects what it cannot decode with a parse_error naming the file") {
    SUBCASE("unknown signature") {
        const Bytes b = {'G', 'I', 'F', '8', '9', 'a', 0, 0};
        CHECK_THROWS_WITH_AS(data::decode_image(b.data(), b.size(), "x.gif"),
                             "x.gif: byte 0: image: not a PNG, JPEG or BMP file (unrecognised signature)", parse_error);
        CHECK_THROWS_AS(data::decode_image(b.data(), 0, "empty"), parse_error);
    }
    SUBCASE("every truncation of a PNG, JPEG and BMP fails cleanly or decodes to the full size") {
        const auto px = square(16, 4, 12, 255, 0);
        for (const Bytes& full : {png(16, 16, 1, px), jpeg_square56(), bmp(16, 16, 1, px)}) {
            for (std::size_t n = 0; n < full.size(); ++n) {
                try {
                    const data::Image im = data::decode_image(full.data(), n, "cut");
                    CHECK(static_cast<std::int64_t>(im.rgba.size()) == 4 * im.width * im.height);  // stb pads some cut data
                } catch (const parse_error& e) {
                    CHECK(e.path() == "cut");
                }
            }
        }
    }
    // Not JPEG: stb's IDCT overflows int on corrupt coefficients (stb_image.h:2468), harmless in
    // practice but undefined behaviour that the sanitizer build makes fatal.
    SUBCASE("every single-byte corruption of a PNG and a BMP fails cleanly or decodes") {
        for (const Bytes& full : {png(16, 16, 1, square(16, 4, 12, 255, 0)), bmp(16, 16, 3, std::vector<unsigned char>(16 * 16 * 3, 99))}) {
            std::size_t outcomes = 0;  // any other exception type fails the test case
            for (std::size_t i = 0; i < full.size(); ++i) {
                Bytes b = full;
                b[i] ^= 0xFF;
                try {
                    const data::Image im = data::decode_image(b.data(), b.size(), "bad");
                    CHECK(static_cast<std::int64_t>(im.rgba.size()) == 4 * im.width * im.height);
                } catch (const parse_error& e) {
                    CHECK(e.path() == "bad");
                }
                ++outcomes;
            }
            CHECK(outcomes == full.size());
        }
    }
    SUBCASE("JPEG Huffman tables stb_image 2.27 would trust are refused first") {
        const Bytes good = jpeg_square56();
        std::size_t dht = 0, sos = 0;  // offsets of the first DHT and SOS markers
        for (std::size_t i = 0; i + 1 < good.size() && !(dht && sos); ++i) {
            if (good[i] == 0xFF && good[i + 1] == 0xC4 && !dht) dht = i;
            if (good[i] == 0xFF && good[i + 1] == 0xDA && !sos) sos = i;
        }
        REQUIRE(dht > 0);
        REQUIRE(sos > dht);
        Bytes overfull = good;  // 16 code counts summing to more than 256 (stb issue #1289)
        for (std::size_t i = 0; i < 16; ++i) overfull[dht + 5 + i] = 0x20;
        CHECK_THROWS_WITH_AS(data::decode_image(overfull.data(), overfull.size(), "o.jpg"),
                             doctest::Contains("Huffman table declares 512 codes (at most 256)"), parse_error);
        Bytes undefined = good;  // first scan component uses DC/AC table 3, never defined
        undefined[sos + 6] = 0x33;
        CHECK_THROWS_WITH_AS(data::decode_image(undefined.data(), undefined.size(), "u.jpg"),
                             doctest::Contains("which no DHT segment defined"), parse_error);
    }
    SUBCASE("a header declaring too many pixels is refused before decoding") {
        const Bytes huge = raw_png(30000, 30000, {});
        CHECK_THROWS_WITH_AS(data::decode_image(huge.data(), huge.size(), "huge.png"),
                             doctest::Contains("= 900000000 pixels exceed the limit of 67108864"), parse_error);
        const Bytes big = raw_png(5000, 5000, zlib({0}));  // 25 Mpx from ~70 bytes
        CHECK_THROWS_WITH_AS(data::decode_image(big.data(), big.size(), "big.png"),
                             doctest::Contains("more than a"), parse_error);
        const Bytes ok = png(16, 16, 1, square(16, 4, 12, 255, 0));
        data::ImageLimits tight;
        tight.max_pixels = 100;
        CHECK_THROWS_AS(data::decode_image(ok.data(), ok.size(), "ok.png", tight), parse_error);
        tight.max_file_bytes = 10;
        CHECK_THROWS_WITH_AS(data::decode_image(ok.data(), ok.size(), "ok.png", tight),
                             doctest::Contains("(ImageLimits::max_file_bytes)"), parse_error);
    }
    SUBCASE("a decompression bomb (1x1 PNG whose IDAT inflates to 4 MB) hits the allocation budget") {
        const Bytes bomb = raw_png(1, 1, zlib(std::vector<unsigned char>(std::size_t(4) << 20, 0)));
        CHECK(bomb.size() < 65536);  // stb's compressor gets ~100:1 here; the budget allows ~2x this + 1 MiB
        CHECK_THROWS_WITH_AS(data::decode_image(bomb.data(), bomb.size(), "bomb.png"), doctest::Contains("outofmem"),
                             parse_error);
        CHECK(data::detail::image_alloc_limit() == 0);  // the budget is reset after a failure too
    }
    SUBCASE("a valid 1x1 PNG built the same way decodes (the bomb test is not failing for another reason)") {
        const Bytes one = raw_png(1, 1, zlib({0, 77}));  // filter byte 0, one pixel
        const data::Image im = data::decode_image(one.data(), one.size(), "one.png");
        CHECK(im.rgba == std::vector<std::uint8_t>{77, 77, 77, 255});
    }
}

TEST_CASE("read_image reads files and names missing ones") {
    TempDir dir;
    const std::string p = dir.file("a.png", png(4, 4, 1, square(4, 1, 3, 255, 0)));
    CHECK(data::read_image(p).width == 4);
    CHECK_THROWS_AS(data::read_image(dir.path("missing.png")), io_error);
}

// ---- pixels ----

TEST_CASE("to_grayscale: BT.601 luma, composited over white by alpha") {
    data::Image im{4, 1, {255, 0, 0, 255, /**/ 0, 0, 0, 0, /**/ 0, 0, 0, 255, /**/ 0, 0, 0, 51}};
    const data::GrayImage g = data::to_grayscale(im);
    REQUIRE(g.pixels.size() == 4);
    // Tolerance 1e-4: float rounding of a double expression.
    CHECK(g.pixels[0] == doctest::Approx(0.299 * 255).epsilon(1e-6));
    CHECK(g.pixels[1] == doctest::Approx(255.0));  // transparent = white paper
    CHECK(g.pixels[2] == doctest::Approx(0.0));
    CHECK(g.pixels[3] == doctest::Approx(204.0));  // 20% black over white
}

TEST_CASE("resize_area and resize_nearest") {
    const data::GrayImage g{4, 2, {0, 2, 4, 6, 8, 10, 12, 14}};
    SUBCASE("integer downscale is a block average (exact)") {
        const auto r = data::resize_area(g, 2, 1);
        CHECK(r.pixels == std::vector<float>{5, 9});
    }
    SUBCASE("integer upscale repeats pixels (exact)") {
        const data::GrayImage s{2, 1, {3, 7}};
        CHECK(data::resize_area(s, 4, 2).pixels == std::vector<float>{3, 3, 7, 7, 3, 3, 7, 7});
        CHECK(data::resize_nearest(s, 4, 2).pixels == std::vector<float>{3, 3, 7, 7, 3, 3, 7, 7});
    }
    SUBCASE("non-integer factor weights by covered area and preserves the mean") {
        const data::GrayImage s{3, 1, {3, 6, 9}};
        const auto r = data::resize_area(s, 2, 1);  // [0,1.5) and [1.5,3)
        CHECK(r.pixels[0] == doctest::Approx((3 + 0.5 * 6) / 1.5));
        CHECK(r.pixels[1] == doctest::Approx((0.5 * 6 + 9) / 1.5));
        CHECK((r.pixels[0] + r.pixels[1]) / 2 == doctest::Approx(6.0));
        CHECK(data::resize_nearest(s, 2, 1).pixels == std::vector<float>{3, 6});
    }
    SUBCASE("bad sizes") {
        CHECK_THROWS_AS(data::resize_area(g, 0, 3), value_error);
        CHECK_THROWS_AS(data::resize_nearest(data::GrayImage{}, 2, 2), value_error);
    }
}

TEST_CASE("border_mean and to_ink invert only light backgrounds") {
    data::GrayImage dark{3, 3, {0, 0, 0, 0, 255, 0, 0, 0, 0}};
    CHECK(data::border_mean(dark) == 0.0f);
    CHECK(data::to_ink(dark).pixels == dark.pixels);
    data::GrayImage light{3, 3, {255, 255, 255, 255, 0, 255, 255, 255, 255}};
    CHECK(data::border_mean(light) == 255.0f);
    CHECK(data::to_ink(light).pixels == dark.pixels);
    CHECK(data::border_mean(data::GrayImage{1, 1, {9}}) == 9.0f);
}

TEST_CASE("mnist_normalize and rgba_canvas") {
    const data::GrayImage ink{2, 1, {0, 255}};
    CHECK(data::mnist_normalize(ink) == std::vector<float>{norm0, norm255});
    CHECK(norm0 == doctest::Approx(-0.4242).epsilon(1e-3));
    CHECK(norm255 == doctest::Approx(2.8215).epsilon(1e-3));
    const data::GrayImage odd{3, 1, {-5, 127.6f, 300}};
    CHECK(data::rgba_canvas(odd) == std::vector<float>{0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0, 255});
}

TEST_CASE("a white square on black, and the same on white, through both input layouts") {
    // 56×56 with the square at [14, 42): at 28×28 it is exactly [7, 21); at 280×280, [70, 210).
    const auto white_on_black = square(56, 14, 42, 255, 0);
    const auto black_on_white = square(56, 14, 42, 0, 255);
    for (const Bytes& file : {png(56, 56, 1, white_on_black), png(56, 56, 1, black_on_white), bmp(56, 56, 1, black_on_white)}) {
        const data::Image im = data::decode_image(file.data(), file.size(), "square");
        const std::vector<float> m = data::image_to_mnist(im, 28, 28);
        REQUIRE(m.size() == 28 * 28);
        for (int y = 0; y < 28; ++y)
            for (int x = 0; x < 28; ++x) {
                const bool in = x >= 7 && x < 21 && y >= 7 && y < 21;
                CHECK(m[static_cast<std::size_t>(y * 28 + x)] == (in ? norm255 : norm0));
            }
        const std::vector<float> c = data::image_to_canvas(im, 280);
        REQUIRE(c.size() == 280 * 280 * 4);
        for (int y = 0; y < 280; y += 7)
            for (int x = 0; x < 280; x += 7) {
                const std::size_t i = static_cast<std::size_t>(y * 280 + x) * 4;
                const bool in = x >= 70 && x < 210 && y >= 70 && y < 210;
                CHECK(c[i] == 0.0f);
                CHECK(c[i + 1] == 0.0f);
                CHECK(c[i + 2] == 0.0f);
                CHECK(c[i + 3] == (in ? 255.0f : 0.0f));
            }
    }
    SUBCASE("a JPEG of the square is close (lossy, so within 0.35 after normalisation, i.e. ~28 grey levels)") {
        const Bytes j = jpeg_square56();
        const std::vector<float> m = data::image_to_mnist(data::decode_image(j.data(), j.size(), "sq.jpg"));
        CHECK(m[14 * 28 + 14] == doctest::Approx(norm255).epsilon(0.35 / 2.8215));
        CHECK(std::abs(m[2 * 28 + 2] - norm0) < 0.35f);
    }
}

TEST_CASE("IDX digits: idx_image, idx_to_mnist and idx_to_canvas") {
    std::vector<unsigned char> a(28 * 28, 0), b(28 * 28, 0);
    a[0] = 255;
    b[5 * 28 + 9] = 100;
    const Bytes file = idx_file({a, b}, 28, 28);
    const data::IdxArray arr = data::parse_idx_images(file.data(), file.size(), "two.idx");
    const data::GrayImage g = data::idx_image(arr, 1, "two.idx");
    CHECK(g.width == 28);
    CHECK(g.at(9, 5) == 100.0f);
    CHECK_THROWS_WITH_AS(data::idx_image(arr, 2, "two.idx"),
                         "two.idx: image index 2 is out of range (the file holds 2 images, 0..1)", value_error);
    CHECK_THROWS_AS(data::idx_image(arr, -1), value_error);

    const std::vector<float> m = data::idx_to_mnist(g);
    CHECK(m[5 * 28 + 9] == (100.0f / 255.0f - data::mnist_mean) / data::mnist_std);
    CHECK(m[0] == norm0);
    CHECK(data::idx_to_mnist(g, 14, 14).size() == 14 * 14);

    // 28 → 280 by nearest neighbour: each pixel becomes a 10×10 block, which the InferenceNet's
    // 10×10 average pool turns back into the original value exactly.
    const std::vector<float> c = data::idx_to_canvas(g);
    REQUIRE(c.size() == 280 * 280 * 4);
    for (int y = 50; y < 60; ++y)
        for (int x = 90; x < 100; ++x) CHECK(c[static_cast<std::size_t>(y * 280 + x) * 4 + 3] == 100.0f);
    CHECK(c[static_cast<std::size_t>(49 * 280 + 90) * 4 + 3] == 0.0f);
    double alpha_sum = 0;
    for (std::size_t i = 3; i < c.size(); i += 4) alpha_sum += c[i];
    CHECK(alpha_sum == 100.0 * 100);
}

// ---- the tool's logic ----

TEST_CASE("onnx_run::parse_args") {
    using onnx_run::parse_args;
    const auto o = parse_args({"m.onnx", "--input", "a.pb", "-q", "--input=idx:x:3", "-i", "b.png"});
    CHECK(o.model == "m.onnx");
    CHECK(o.inputs == std::vector<std::string>{"a.pb", "idx:x:3", "b.png"});
    CHECK(o.quiet);
    CHECK(parse_args({"--help"}).help);
    CHECK_THROWS_WITH_AS(parse_args({"m.onnx", "--frobnicate"}), "unknown option '--frobnicate' (see --help)", value_error);
    CHECK_THROWS_AS(parse_args({"m.onnx", "--input"}), value_error);
    CHECK_THROWS_AS(parse_args({"m.onnx", "n.onnx"}), value_error);
    CHECK_THROWS_AS(parse_args({}), value_error);
}

TEST_CASE("onnx_run::parse_args: --output, --time, --threads and --max-work") {
    using onnx_run::parse_args;
    const auto o = parse_args({"m.onnx", "-o", "a.pb", "--output=b.pb", "--time", "50", "--threads=2"});
    CHECK(o.outputs == std::vector<std::string>{"a.pb", "b.pb"});
    CHECK(o.time_runs == 50);
    CHECK(o.threads == 2);
    CHECK(parse_args({"m.onnx"}).time_runs == 0);
    CHECK_THROWS_WITH_AS(parse_args({"m.onnx", "--time", "0"}), doctest::Contains("--time needs a whole number"), value_error);
    CHECK_THROWS_AS(parse_args({"m.onnx", "--time", "-3"}), value_error);
    CHECK_THROWS_AS(parse_args({"m.onnx", "--time", "1e3"}), value_error);
    CHECK_THROWS_AS(parse_args({"m.onnx", "--threads", "2000"}), value_error);
    CHECK_THROWS_AS(parse_args({"m.onnx", "--threads"}), value_error);
    CHECK_THROWS_AS(parse_args({"m.onnx", "--output"}), value_error);
    CHECK(parse_args({"m.onnx"}).max_work == 0);
    CHECK(parse_args({"m.onnx", "--max-work", "123456789012"}).max_work == 123456789012);
    CHECK(parse_args({"m.onnx", "--max-work=7"}).max_work == 7);
    CHECK_THROWS_AS(parse_args({"m.onnx", "--max-work", "0"}), value_error);
    CHECK_THROWS_AS(parse_args({"m.onnx", "--max-work", "1234567890123456789"}), value_error);  // 19 digits
}

TEST_CASE("onnx_run::output_paths: one per output, or a directory") {
    TempDir tmp;
    const std::string dir = tmp.path("");
    CHECK(onnx_run::output_paths({}, {"y"}).empty());
    CHECK(onnx_run::output_paths({"a.pb", "b.pb"}, {"y", "z"}) == std::vector<std::string>{"a.pb", "b.pb"});
    const auto in_dir = onnx_run::output_paths({dir}, {"y", "/fc2/Gemm:0", ".."});
    REQUIRE(in_dir.size() == 3);
    CHECK(fs::path(in_dir[0]).filename() == "y.pb");
    CHECK(fs::path(in_dir[1]).filename() == "_fc2_Gemm_0.pb");  // no path separators from names
    CHECK(fs::path(in_dir[2]).filename() == "output.pb");
    CHECK(onnx_run::output_paths({"new/"}, {"y"}) == std::vector<std::string>{"new/y.pb"});
    CHECK_THROWS_WITH_AS(onnx_run::output_paths({"a.pb"}, {"y", "z"}), doctest::Contains("2 output(s) but 1 --output"),
                         value_error);
    CHECK_THROWS_WITH_AS(onnx_run::output_paths({dir}, {"a/b", "a_b"}), doctest::Contains("both be written"), value_error);
}

TEST_CASE("onnx_run: summary and time lines") {
    onnx::ModelProto m;
    for (const char* op : {"Conv", "Relu", "Conv", "Relu", "Gemm"}) {
        onnx::NodeProto n;
        n.op_type = op;
        m.graph.node.push_back(n);
    }
    CHECK(onnx_run::summary_line(m, 1.234) == "ran 5 nodes: Conv x2, Relu x2, Gemm; loaded (decoded, validated, planned) in 1.23 ms");
    CHECK(onnx_run::summary_line(m, 1.234, 2) ==
          "ran 5 nodes: Conv x2, Relu x2, Gemm; 2 run inside the Conv or Gemm before them; loaded (decoded, validated, planned) "
          "in 1.23 ms");
    CHECK(onnx_run::summary_line(m, 1.234, 2, 1) ==
          "ran 5 nodes: Conv x2, Relu x2, Gemm; 2 run inside the Conv or Gemm before them; 1 Conv weight packed; loaded "
          "(decoded, validated, planned) in 1.23 ms");
    CHECK(onnx_run::time_line({30, 10, 20, 40}, 1) == "time: median 25.0 us over 4 runs (min 10.0 us, max 40.0 us), 1 thread");
    CHECK(onnx_run::time_line({7}, 2) == "time: median 7.0 us over 1 run (min 7.0 us, max 7.0 us), 2 threads");
}

TEST_CASE("onnx_run: .npy and random:SEED inputs") {
    auto info = [](std::vector<std::int64_t> dims, onnx::DataType t = onnx::DataType::float32) {
        onnx::ValueInfoProto v;
        v.name = "in";
        v.elem_type = static_cast<std::int32_t>(t);
        v.has_shape = true;
        for (const std::int64_t d : dims) v.shape.push_back(onnx::Dimension{true, d, ""});
        return v;
    };
    TempDir tmp;
    data::NpyArray f;
    f.shape = {2, 2};
    f.f = {1.5f, -2.0f, 0.25f, 8.0f};
    const std::string fpath = tmp.path("f.npy");
    data::write_npy(f, fpath);
    const onnx_run::LoadedInput lf = onnx_run::load_input(fpath, info({2, 2}));
    CHECK(lf.value.shape == Shape{2, 2});
    CHECK(lf.value.f.to_vector() == f.f);
    CHECK(lf.description == "array " + fpath + " [2, 2]");

    data::NpyArray i;
    i.is_int = true;
    i.shape = {3};
    i.i = {4, -5, std::int64_t(1) << 40};
    const std::string ipath = tmp.path("i.npy");
    data::write_npy(i, ipath);
    const onnx_run::LoadedInput li = onnx_run::load_input(ipath, info({3}, onnx::DataType::int64));
    CHECK(li.value.is_int);
    CHECK(li.value.i == i.i);
    CHECK_THROWS_WITH_AS(onnx_run::load_input(ipath, info({3})), doctest::Contains("holds int64"), value_error);
    CHECK_THROWS_WITH_AS(onnx_run::load_input(fpath, info({2, 2}, onnx::DataType::int64)), doctest::Contains("holds float32"),
                         value_error);

    // random:SEED is the Generator's standard normal stream over the declared shape (symbolic dim = 1).
    const onnx_run::LoadedInput r1 = onnx_run::load_input("random:42", info({1, 3, 4}));
    Generator gen(42);
    std::vector<float> expect(12);
    for (float& x : expect) x = gen.normal();
    CHECK(r1.value.shape == Shape{1, 3, 4});
    CHECK(r1.value.f.to_vector() == expect);
    CHECK(onnx_run::load_input("random:42", info({1, 3, 4})).value.f.to_vector() == expect);
    CHECK(onnx_run::load_input("random:43", info({1, 3, 4})).value.f.to_vector() != expect);
    CHECK_THROWS_AS(onnx_run::load_input("random:", info({2})), value_error);
    CHECK_THROWS_AS(onnx_run::load_input("random:-1", info({2})), value_error);
    CHECK_THROWS_WITH_AS(onnx_run::load_input("random:1", info({2}, onnx::DataType::int64)),
                         doctest::Contains("FLOAT inputs only"), value_error);
}

TEST_CASE("onnx_run::parse_idx_spec") {
    CHECK(onnx_run::parse_idx_spec("idx:data/t10k:7") == std::make_pair(std::string("data/t10k"), std::int64_t(7)));
    CHECK(onnx_run::parse_idx_spec("idx:C:/x.gz:0").first == "C:/x.gz");
    CHECK_THROWS_AS(onnx_run::parse_idx_spec("idx:file"), value_error);
    CHECK_THROWS_AS(onnx_run::parse_idx_spec("idx::3"), value_error);
    CHECK_THROWS_AS(onnx_run::parse_idx_spec("idx:f:"), value_error);
    CHECK_THROWS_AS(onnx_run::parse_idx_spec("idx:f:-1"), value_error);
    CHECK_THROWS_AS(onnx_run::parse_idx_spec("idx:f:1e3"), value_error);
    CHECK_THROWS_AS(onnx_run::parse_idx_spec("idx:f:99999999999999999999"), value_error);
}

TEST_CASE("onnx_run: declared shapes and image targets") {
    auto info = [](std::vector<onnx::Dimension> dims, onnx::DataType t = onnx::DataType::float32) {
        onnx::ValueInfoProto v;
        v.name = "in";
        v.elem_type = static_cast<std::int32_t>(t);
        v.has_shape = true;
        v.shape = std::move(dims);
        return v;
    };
    const onnx::Dimension batch{false, 0, "N"};
    auto d = [](std::int64_t v) { return onnx::Dimension{true, v, ""}; };

    CHECK(onnx_run::declared_shape(info({batch, d(1), d(28), d(28)})) == Shape{1, 1, 28, 28});
    const auto gray = onnx_run::image_target(info({batch, d(1), d(28), d(28)}));
    CHECK(gray.kind == onnx_run::ImageTarget::Kind::gray);
    CHECK(gray.height == 28);
    CHECK(onnx_run::image_target(info({d(1), d(20), d(24)})).width == 24);
    const auto canvas = onnx_run::image_target(info({d(313600)}));
    CHECK(canvas.kind == onnx_run::ImageTarget::Kind::canvas);
    CHECK(canvas.width == 280);
    CHECK(onnx_run::image_target(info({d(1), d(3136)})).width == 28);
    CHECK_THROWS_WITH_AS(onnx_run::image_target(info({batch, d(3)})), doctest::Contains("which takes no image"), value_error);
    CHECK_THROWS_AS(onnx_run::image_target(info({d(2), d(1), d(28), d(28)})), value_error);
    CHECK_THROWS_AS(onnx_run::image_target(info({d(1), d(1), d(28), d(28)}, onnx::DataType::int64)), value_error);
    onnx::ValueInfoProto shapeless = info({});
    shapeless.has_shape = false;
    CHECK_THROWS_WITH_AS(onnx_run::zeros_input(shapeless), doctest::Contains("declares no shape"), value_error);
    CHECK_THROWS_AS(onnx_run::zeros_input(info({d(1 << 20), d(1 << 20)})), value_error);  // 2^40 zeros: refused

    const onnx::Value z = onnx_run::zeros_input(info({batch, d(3)}));
    CHECK(z.shape == Shape{1, 3});
    CHECK(z.f.to_vector() == std::vector<float>{0, 0, 0});
    const onnx::Value zi = onnx_run::zeros_input(info({d(2)}, onnx::DataType::int64));
    CHECK(zi.is_int);
    CHECK(zi.i == std::vector<std::int64_t>{0, 0});
}

TEST_CASE("onnx_run: output and prediction lines") {
    const onnx::Value v = onnx::Value::of(tensor({0.1f, 0.05f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.8f, 0.05f, 0.0f}, {1, 10}));
    CHECK(onnx_run::output_line("p", v) == "output p [1, 10]: 0.1 0.05 0 0 0 0 0 0.8 0.05 0");
    CHECK(onnx_run::prediction_line(onnx_run::output_values(v)) == "prediction: 7 (0.8000)");
    CHECK(onnx_run::prediction_line({1, 2, 3}).empty());
    std::vector<float> many(25);
    for (std::size_t i = 0; i < many.size(); ++i) many[i] = float(i) / 3;
    const std::string line = onnx_run::output_line("y", onnx::Value::of(tensor(many, {25})));
    CHECK(line.rfind("output y [25]: 0 0.333333 0.666667 1 ", 0) == 0);
    CHECK(line.substr(line.size() - 14) == " 6 6.33333 ...");
    CHECK(onnx_run::output_line("i", onnx::Value::of_ints({-3, 4}, {2})) == "output i [2]: -3 4");
}

TEST_CASE("onnx_run::main on the golden Relu model") {
    const std::string dir = golden_dir();
    REQUIRE_MESSAGE(!dir.empty(), "tests/data/onnx not found (set NANOTORCH_SOURCE_DIR)");
    const std::string model = dir + "/relu_opset9.onnx";
    SUBCASE("no --input: zeros of [N, 3] with N = 1") {
        const Run r = run_tool({model});
        CHECK(r.status == 0);
        CHECK(r.err.empty());
        CHECK(r.out.find("graph relu_graph (ir_version 4, opset 9)\n") == 0);
        CHECK(r.out.find("input x [1, 3]: zeros\n") != std::string::npos);
        CHECK(r.out.find("output y [1, 3]: 0 0 0\n") != std::string::npos);
    }
    SUBCASE("--max-work: Relu of [1, 3] zeros reads 3 elements and writes 3, so 6 units pass and 5 do not") {
        CHECK(run_tool({model, "--max-work", "6"}).status == 0);
        const Run r = run_tool({model, "--max-work=5"});
        CHECK(r.status == 1);
        CHECK(r.err.find("onnx_run: error: ") == 0);
        CHECK(r.err.find("(Relu): the run needs more than RuntimeOptions::max_work = 5 units") != std::string::npos);
    }
    SUBCASE("a .pb input: Relu of the golden tensor w") {
        const Run r = run_tool({model, "--input", dir + "/tensor_w.pb"});
        CHECK(r.status == 0);
        CHECK(r.out.find("output y [2, 3]: 0.5 0 2.25 0 0 3\n") != std::string::npos);
        CHECK(run_tool({model, "-q", "--input", dir + "/tensor_w.pb"}).out.empty());  // no 10-value output
    }
    SUBCASE("errors are one line on stderr and status 1") {
        TempDir tmp;
        const std::string cut = tmp.file("cut.onnx", Bytes(40, 0x0A));
        const std::vector<std::vector<std::string>> cases = {
            {},
            {"--nope"},
            {tmp.path("missing.onnx")},
            {cut},
            {model, "--input", "idx:" + tmp.path("none") + ":3"},
            {model, "--input", dir + "/tensor_w.pb", "--input", dir + "/tensor_w.pb"},
            {model, "--input", tmp.file("x.png", png(4, 4, 1, square(4, 1, 3, 255, 0)))},  // [N, 3] takes no image
        };
        for (const auto& args : cases) {
            const Run r = run_tool(args);
            CHECK(r.status == 1);
            CHECK(r.err.rfind("onnx_run: error: ", 0) == 0);
            CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        }
    }
    SUBCASE("--output writes TensorProto files that read back; --time prints a median") {
        TempDir tmp;
        const std::string outdir = tmp.path("outs") + "/";
        const Run r = run_tool({model, "--input", dir + "/tensor_w.pb", "--output", outdir, "--time", "5", "--threads", "1"});
        REQUIRE(r.status == 0);
        CHECK(r.out.find("ran 1 node: Relu; loaded (decoded, validated, planned) in ") != std::string::npos);
        CHECK(r.out.find("time: median ") != std::string::npos);
        CHECK(r.out.find(" over 5 runs (min ") != std::string::npos);
        CHECK(r.out.find(", 1 thread\n") != std::string::npos);
        const onnx::TensorProto y = onnx::read_tensor(outdir + "y.pb");
        CHECK(y.name == "y");
        CHECK(y.dims == std::vector<std::int64_t>{2, 3});
        CHECK(onnx::tensor_to_floats(y) == std::vector<float>{0.5f, 0, 2.25f, 0, 0, 3});
        const std::string one = tmp.path("one.pb");
        REQUIRE(run_tool({model, "-q", "--input", dir + "/tensor_w.pb", "-o", one}).status == 0);
        CHECK(onnx::tensor_to_floats(onnx::read_tensor(one)) == onnx::tensor_to_floats(y));
        const Run bad = run_tool({model, "-o", "a.pb", "-o", "b.pb"});  // 1 output, 2 paths: refused before running
        CHECK(bad.status == 1);
        CHECK(bad.err.find("1 output(s) but 2 --output") != std::string::npos);
    }
    SUBCASE("--help") {
        const Run r = run_tool({"--help"});
        CHECK(r.status == 0);
        CHECK(r.out.rfind("usage: onnx_run MODEL.onnx", 0) == 0);
    }
}

TEST_CASE("onnx_run on the seed's InferenceNet: image, IDX and the module itself agree") {
    // An untrained InferenceNet (fixed seed) exported as mnist_train does; the tool's inputs must be
    // exactly the canvases data/image.hpp builds, so the runtime's output equals the module's.
    manual_seed(7);
    mnist::InferenceNet net;
    net.eval();
    TempDir tmp;
    const std::string model = tmp.path("net.onnx");
    onnx::export_onnx(net, zeros({280 * 280 * 4}), model);

    std::vector<unsigned char> digit(28 * 28, 0);
    for (int y = 6; y < 22; ++y)
        for (int x = 12; x < 16; ++x) digit[static_cast<std::size_t>(y * 28 + x)] = 255;  // a "1"
    std::vector<unsigned char> inverted(digit.size());
    for (std::size_t i = 0; i < digit.size(); ++i) inverted[i] = static_cast<unsigned char>(255 - digit[i]);
    const std::string idx = tmp.file("digits.idx", idx_file({std::vector<unsigned char>(784, 0), digit}, 28, 28));
    const std::string img = tmp.file("digit.png", png(28, 28, 1, inverted));  // dark on light, 28×28

    const onnx::Runtime rt = onnx::load_onnx(model);
    REQUIRE(rt.required_inputs().size() == 1);
    const onnx::ValueInfoProto info = rt.required_inputs()[0];  // required_inputs() returns a copy
    const auto from_idx = onnx_run::load_input("idx:" + idx + ":1", info);
    const auto from_png = onnx_run::load_input(img, info);
    CHECK(from_idx.value.shape == Shape{313600});
    // The PNG is 28×28, so image_to_canvas upscales by area (= repetition for ×10) after
    // inverting: the same canvas as the IDX path's nearest-neighbour upscale.
    CHECK(from_idx.value.f.to_vector() == from_png.value.f.to_vector());

    const Bytes one = idx_file({digit}, 28, 28);
    const data::GrayImage parsed = data::idx_image(data::parse_idx_images(one.data(), one.size(), "one"), 0);
    const Tensor expected = net.forward(tensor(data::idx_to_canvas(parsed), {313600}));
    const Tensor got = rt.run({{info.name, from_idx.value.f}})[0].second;
    const std::vector<float> e = expected.to_vector(), g = got.to_vector();
    REQUIRE(g.size() == 10);
    // Same kernels on the same canvas; 1e-5 allows for a different summation order in the runtime.
    for (std::size_t i = 0; i < 10; ++i) CHECK(g[i] == doctest::Approx(e[i]).epsilon(1e-5));

    const Run r = run_tool({model, "--quiet", "--input", "idx:" + idx + ":1"});
    CHECK(r.status == 0);
    CHECK(r.out == onnx_run::prediction_line(std::vector<double>(g.begin(), g.end())) + "\n");
    const Run full = run_tool({model, "--input", img});
    CHECK(full.out.find("input input [313600]: image " + img + " (28x28) as RGBA canvas 280x280, ink in alpha\n") !=
          std::string::npos);
    CHECK(run_tool({model, "--input", "idx:" + idx + ":2"}).status == 1);  // only images 0 and 1
}
