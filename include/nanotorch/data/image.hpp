// nanotorch/data/image.hpp — opt-in image loading (PNG, JPEG, BMP via stb_image) and the MNIST
// preprocessing that turns a picture of a digit into a network input.
//
// Provides decode_image()/read_image() (any PNG/JPEG/BMP as 8-bit RGBA), to_grayscale(),
// idx_image() (one image of an IDX file), area and nearest-neighbour resizing, the "ink" rule
// (MNIST is white ink on black, so an image whose border is light is inverted), and the two input
// layouts the seed's networks take: mnist_normalize() (x/255, then (x − 0.1307) / 0.3081, for a
// [1, 1, 28, 28] Net) and rgba_canvas() (the browser canvas: RGB 0 and the ink in alpha, for the
// flat 280·280·4 InferenceNet). Everything returns plain float vectors, so this layer does not
// depend on Tensor or ONNX. Deliberately not provided: writing images, other formats (GIF, TGA,
// HDR ...), colour inputs, EXIF orientation, gamma, and any resampling beyond box filtering. The
// umbrella header does not include this file, so users who never load images never compile stb's
// decoders.
//
// stb_image is included the way data/gzip.hpp includes it, and for the same reasons (read its
// comment): a second private copy, STB_IMAGE_STATIC inside namespace
// nanotorch::data::detail::image_stb, this time with only the PNG, JPEG and BMP decoders; its API
// renamed to nanotorch_detail_image_stbi_* (a name different from gzip.hpp's copy, since both copies
// may share a TU and C-linkage names ignore namespaces); every stb macro saved with push_macro,
// cleared and restored, so gzip.hpp's copy, this one, and a user's own stb_image (with or without
// STB_IMAGE_IMPLEMENTATION, before or after us) coexist in one TU. In addition, stb's allocator
// is replaced by one that refuses any block larger than what the image's own dimensions and file
// size justify (and zero-fills), so a decompression bomb (a 1×1 PNG whose IDAT inflates to
// gigabytes) fails with "outofmem" instead of allocating; the dimensions are checked before
// decoding; and a JPEG's Huffman tables are checked first (check_jpeg). stb_image says itself that
// it is not hardened against hostile files: with these checks, 300,000 mutated PNG/JPEG/BMP files
// (gray, palette, 1/16-bit, progressive, CMYK, 4:2:0 ...) ran clean under ASan + UBSan except
// for benign kinds of undefined behaviour inside stb: int overflow in the JPEG IDCT on corrupt
// coefficients, memcpy(NULL, p, 0) for an empty first PNG IDAT chunk, and (found by
// tests/fuzz/fuzz_image) an oversized shift in the JPEG bit reader on corrupt data; UBSan is told
// to ignore exactly these three inside stb (see the include below).
#pragma once

#include <algorithm>  // std::min/max
#include <cmath>      // std::lround
#include <cstddef>
#include <cstdint>
#include <cstdlib>    // std::malloc/realloc/free for stb's bounded allocator
#include <string>
#include <vector>

// As in gzip.hpp: C headers stb_image includes, included first at global scope so that its own
// #includes are no-ops inside our namespace.
#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nanotorch/config.hpp>
#include <nanotorch/data/idx.hpp>    // IdxArray, detail::read_file_bytes
#include <nanotorch/data/mnist.hpp>  // mnist_mean, mnist_std
#include <nanotorch/error.hpp>

// ---- stb's bounded allocator ----

namespace nanotorch::data::detail {

// The largest single block stb may allocate on this thread; 0 (no decode running) refuses all.
// Set for the duration of one decode by ImageAllocScope.
inline std::size_t& image_alloc_limit() noexcept {
    thread_local std::size_t limit = 0;
    return limit;
}
// Zero-filled, so that no decoder state stb forgets to initialise is ever read as garbage.
inline void* image_malloc(std::size_t n) noexcept { return n <= image_alloc_limit() ? std::calloc(1, n) : nullptr; }
// On refusal the old block stays owned by stb, which frees it on its error path.
inline void* image_realloc(void* p, std::size_t n) noexcept {
    return n <= image_alloc_limit() ? std::realloc(p, n) : nullptr;
}
inline void image_free(void* p) noexcept { std::free(p); }

struct ImageAllocScope {
    std::size_t saved;
    explicit ImageAllocScope(std::size_t limit) : saved(image_alloc_limit()) { image_alloc_limit() = limit; }
    ~ImageAllocScope() { image_alloc_limit() = saved; }
    ImageAllocScope(const ImageAllocScope&) = delete;
    ImageAllocScope& operator=(const ImageAllocScope&) = delete;
};

}  // namespace nanotorch::data::detail

// ---- stb_image, isolated ----

// gzip.hpp's list (every macro stb_image.h reads or leaves defined), plus the macros the PNG,
// JPEG and BMP sections define, plus the API names we rename: all saved here and restored below.
#define NANOTORCH_DETAIL_IMAGE_STB_MACROS(X)                                                        \
    X(STBI_INCLUDE_STB_IMAGE_H) X(STB_IMAGE_IMPLEMENTATION) X(STB_IMAGE_STATIC) X(STBIDEF)           \
    X(STBI_VERSION) X(STBI_EXTERN) X(stbi_inline) X(STBI_NOTUSED) X(stbi_lrot) X(STBI_SIMD_ALIGN)    \
    X(STBI__BYTECAST) X(STBI__X86_TARGET) X(STBI__X64_TARGET) X(STBI__ZFAST_BITS)                    \
    X(STBI__ZFAST_MASK) X(STBI__ZNSYMS) X(stbi__err) X(stbi__errpf) X(stbi__errpuc)                  \
    X(stbi__vertically_flip_on_load) X(STBI_ASSERT) X(STBI_MALLOC) X(STBI_REALLOC)                   \
    X(STBI_REALLOC_SIZED) X(STBI_FREE) X(STBI_MAX_DIMENSIONS) X(STBI_THREAD_LOCAL)                   \
    X(STBI_NO_THREAD_LOCALS) X(STBI_NO_FAILURE_STRINGS) X(STBI_FAILURE_USERMSG) X(STBI_NO_STDIO)     \
    X(STBI_NO_LINEAR) X(STBI_NO_HDR) X(STBI_NO_SIMD) X(STBI_NO_JPEG) X(STBI_NO_PNG) X(STBI_NO_BMP)   \
    X(STBI_NO_PSD) X(STBI_NO_TGA) X(STBI_NO_GIF) X(STBI_NO_PIC) X(STBI_NO_PNM) X(STBI_NO_ZLIB)       \
    X(STBI_ONLY_JPEG) X(STBI_ONLY_PNG) X(STBI_ONLY_BMP) X(STBI_ONLY_PSD) X(STBI_ONLY_TGA)            \
    X(STBI_ONLY_GIF) X(STBI_ONLY_HDR) X(STBI_ONLY_PIC) X(STBI_ONLY_PNM) X(STBI_ONLY_ZLIB)            \
    X(STBI_SUPPORT_ZLIB) X(STBI_SSE2) X(STBI_NEON) X(STBI_MINGW_ENABLE_SSE2) X(STBI_HAS_LROTL)       \
    X(STBI_WINDOWS_UTF8)                                                                             \
    X(FAST_BITS) X(STBI__COMBO) X(STBI__IDCT_1D) X(STBI__MARKER_none) X(STBI__PNG_TYPE)              \
    X(STBI__RESTART) X(stbi__DNL) X(stbi__EOI) X(stbi__SOF) X(stbi__SOF_progressive) X(stbi__SOI)    \
    X(stbi__SOS) X(stbi__de_iphone_flag) X(stbi__div16) X(stbi__div4) X(stbi__f2f)                   \
    X(stbi__float2fixed) X(stbi__fsh) X(stbi__unpremultiply_on_load)                                 \
    X(stbi_convert_iphone_png_to_rgb) X(stbi_convert_iphone_png_to_rgb_thread)                       \
    X(stbi_failure_reason) X(stbi_image_free) X(stbi_info_from_callbacks) X(stbi_info_from_memory)   \
    X(stbi_is_16_bit_from_callbacks) X(stbi_is_16_bit_from_memory) X(stbi_is_hdr_from_callbacks)    \
    X(stbi_is_hdr_from_memory) X(stbi_load_16_from_callbacks) X(stbi_load_16_from_memory)           \
    X(stbi_load_from_callbacks) X(stbi_load_from_memory) X(stbi_set_flip_vertically_on_load)         \
    X(stbi_set_flip_vertically_on_load_thread) X(stbi_set_unpremultiply_on_load)                     \
    X(stbi_set_unpremultiply_on_load_thread) X(stbi_zlib_decode_buffer) X(stbi_zlib_decode_malloc)   \
    X(stbi_zlib_decode_malloc_guesssize) X(stbi_zlib_decode_malloc_guesssize_headerflag)             \
    X(stbi_zlib_decode_noheader_buffer) X(stbi_zlib_decode_noheader_malloc)
#define NANOTORCH_DETAIL_IMAGE_PRAGMA(x) _Pragma(#x)
#define NANOTORCH_DETAIL_IMAGE_PUSH(m) NANOTORCH_DETAIL_IMAGE_PRAGMA(push_macro(#m))
#define NANOTORCH_DETAIL_IMAGE_POP(m) NANOTORCH_DETAIL_IMAGE_PRAGMA(pop_macro(#m))

NANOTORCH_DETAIL_IMAGE_STB_MACROS(NANOTORCH_DETAIL_IMAGE_PUSH)
// A pushed macro keeps its value, so clear each one; #undef cannot be generated by a macro.
#undef STBI_INCLUDE_STB_IMAGE_H
#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#undef STBIDEF
#undef STBI_VERSION
#undef STBI_EXTERN
#undef stbi_inline
#undef STBI_NOTUSED
#undef stbi_lrot
#undef STBI_SIMD_ALIGN
#undef STBI__BYTECAST
#undef STBI__X86_TARGET
#undef STBI__X64_TARGET
#undef STBI__ZFAST_BITS
#undef STBI__ZFAST_MASK
#undef STBI__ZNSYMS
#undef stbi__err
#undef stbi__errpf
#undef stbi__errpuc
#undef stbi__vertically_flip_on_load
#undef STBI_ASSERT
#undef STBI_MALLOC
#undef STBI_REALLOC
#undef STBI_REALLOC_SIZED
#undef STBI_FREE
#undef STBI_MAX_DIMENSIONS
#undef STBI_THREAD_LOCAL
#undef STBI_NO_THREAD_LOCALS
#undef STBI_NO_FAILURE_STRINGS
#undef STBI_FAILURE_USERMSG
#undef STBI_NO_STDIO
#undef STBI_NO_LINEAR
#undef STBI_NO_HDR
#undef STBI_NO_SIMD
#undef STBI_NO_JPEG
#undef STBI_NO_PNG
#undef STBI_NO_BMP
#undef STBI_NO_PSD
#undef STBI_NO_TGA
#undef STBI_NO_GIF
#undef STBI_NO_PIC
#undef STBI_NO_PNM
#undef STBI_NO_ZLIB
#undef STBI_ONLY_JPEG
#undef STBI_ONLY_PNG
#undef STBI_ONLY_BMP
#undef STBI_ONLY_PSD
#undef STBI_ONLY_TGA
#undef STBI_ONLY_GIF
#undef STBI_ONLY_HDR
#undef STBI_ONLY_PIC
#undef STBI_ONLY_PNM
#undef STBI_ONLY_ZLIB
#undef STBI_SUPPORT_ZLIB
#undef STBI_SSE2
#undef STBI_NEON
#undef STBI_MINGW_ENABLE_SSE2
#undef STBI_HAS_LROTL
#undef STBI_WINDOWS_UTF8
#undef FAST_BITS
#undef STBI__COMBO
#undef STBI__IDCT_1D
#undef STBI__MARKER_none
#undef STBI__PNG_TYPE
#undef STBI__RESTART
#undef stbi__DNL
#undef stbi__EOI
#undef stbi__SOF
#undef stbi__SOF_progressive
#undef stbi__SOI
#undef stbi__SOS
#undef stbi__de_iphone_flag
#undef stbi__div16
#undef stbi__div4
#undef stbi__f2f
#undef stbi__float2fixed
#undef stbi__fsh
#undef stbi__unpremultiply_on_load

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO  // we read files ourselves, with a size limit
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_SIMD   // its SSE2 path would #include <emmintrin.h> inside our namespace
#define STBI_NO_GIF    // the header part declares the GIF entry point before STBI_ONLY_* disables it
#define STBI_ASSERT(x) assert(x)
#define STBI_MALLOC(sz) ::nanotorch::data::detail::image_malloc(sz)
#define STBI_REALLOC(p, sz) ::nanotorch::data::detail::image_realloc(p, sz)
#define STBI_FREE(p) ::nanotorch::data::detail::image_free(p)

// Renamed so that these C-linkage names differ from gzip.hpp's copy and from a user's stb_image.
#define stbi_convert_iphone_png_to_rgb nanotorch_detail_image_stbi_convert_iphone_png_to_rgb
#define stbi_convert_iphone_png_to_rgb_thread nanotorch_detail_image_stbi_convert_iphone_png_to_rgb_thread
#define stbi_failure_reason nanotorch_detail_image_stbi_failure_reason
#define stbi_image_free nanotorch_detail_image_stbi_image_free
#define stbi_info_from_callbacks nanotorch_detail_image_stbi_info_from_callbacks
#define stbi_info_from_memory nanotorch_detail_image_stbi_info_from_memory
#define stbi_is_16_bit_from_callbacks nanotorch_detail_image_stbi_is_16_bit_from_callbacks
#define stbi_is_16_bit_from_memory nanotorch_detail_image_stbi_is_16_bit_from_memory
#define stbi_is_hdr_from_callbacks nanotorch_detail_image_stbi_is_hdr_from_callbacks
#define stbi_is_hdr_from_memory nanotorch_detail_image_stbi_is_hdr_from_memory
#define stbi_load_16_from_callbacks nanotorch_detail_image_stbi_load_16_from_callbacks
#define stbi_load_16_from_memory nanotorch_detail_image_stbi_load_16_from_memory
#define stbi_load_from_callbacks nanotorch_detail_image_stbi_load_from_callbacks
#define stbi_load_from_memory nanotorch_detail_image_stbi_load_from_memory
#define stbi_set_flip_vertically_on_load nanotorch_detail_image_stbi_set_flip_vertically_on_load
#define stbi_set_flip_vertically_on_load_thread nanotorch_detail_image_stbi_set_flip_vertically_on_load_thread
#define stbi_set_unpremultiply_on_load nanotorch_detail_image_stbi_set_unpremultiply_on_load
#define stbi_set_unpremultiply_on_load_thread nanotorch_detail_image_stbi_set_unpremultiply_on_load_thread
#define stbi_zlib_decode_buffer nanotorch_detail_image_stbi_zlib_decode_buffer
#define stbi_zlib_decode_malloc nanotorch_detail_image_stbi_zlib_decode_malloc
#define stbi_zlib_decode_malloc_guesssize nanotorch_detail_image_stbi_zlib_decode_malloc_guesssize
#define stbi_zlib_decode_malloc_guesssize_headerflag nanotorch_detail_image_stbi_zlib_decode_malloc_guesssize_headerflag
#define stbi_zlib_decode_noheader_buffer nanotorch_detail_image_stbi_zlib_decode_noheader_buffer
#define stbi_zlib_decode_noheader_malloc nanotorch_detail_image_stbi_zlib_decode_noheader_malloc

// Third-party C-style code: silence what stricter user flags would report in it (these fire only
// when stb is not found as a system header). Our own code stays fully checked.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-declarations"
#pragma GCC diagnostic ignored "-Wundef"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
// Under Clang, UBSan does not instrument stb's functions for the benign kinds of undefined
// behaviour named at the top of this file (signed overflow in the JPEG IDCT on corrupt
// coefficients; memcpy(NULL, p, 0); a shift by more than 31 when the JPEG bit reader's count
// goes negative on corrupt entropy-coded data, which only yields garbage bits), so that a
// sanitized build with -fno-sanitize-recover (the fuzz targets, clang-asan CI) can decode hostile
// files. ASan still checks every memory access stb makes.
#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((no_sanitize("signed-integer-overflow", "nonnull-attribute", "shift"))),          \
    apply_to = function)
#endif
namespace nanotorch::data::detail::image_stb {
#include <stb/stb_image.h>
}  // namespace nanotorch::data::detail::image_stb
#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC diagnostic pop

// Restores each macro's earlier definition, or its absence (which also drops our renames).
NANOTORCH_DETAIL_IMAGE_STB_MACROS(NANOTORCH_DETAIL_IMAGE_POP)
#undef NANOTORCH_DETAIL_IMAGE_STB_MACROS
#undef NANOTORCH_DETAIL_IMAGE_PRAGMA
#undef NANOTORCH_DETAIL_IMAGE_PUSH
#undef NANOTORCH_DETAIL_IMAGE_POP

namespace nanotorch::data {

// ---- public types ----

/// Bounds for untrusted image files.
struct ImageLimits {
    /// Largest file read or decoded (stb_image addresses buffers with int, so at most INT_MAX).
    std::uint64_t max_file_bytes = std::uint64_t(1) << 28;
    /// Largest width × height accepted (64 Mpx).
    std::uint64_t max_pixels = std::uint64_t(1) << 26;
};

/// A decoded image: 8-bit RGBA, row-major, rgba.size() == 4 · width · height.
struct Image {
    std::int64_t width = 0, height = 0;
    std::vector<std::uint8_t> rgba;
};

/// A single-channel image with float pixels (nominally 0..255), row-major.
struct GrayImage {
    std::int64_t width = 0, height = 0;
    std::vector<float> pixels;

    /// Pixel (x, y); no bounds check beyond assert.
    float at(std::int64_t x, std::int64_t y) const {
        assert(x >= 0 && x < width && y >= 0 && y < height);
        return pixels[static_cast<std::size_t>(y * width + x)];
    }
};

namespace detail {

using ::nanotorch::detail::str_cat;

// A file must be big enough to encode the pixels its header declares; otherwise stb_image would
// "decode" megapixels of zeros past the end of a 150-byte file (it reads zeros past the end),
// spending memory and time out of all proportion to the input. The densest encodings give the
// bounds, so no real file is refused: an uncompressed BMP holds at least 1 bit per pixel (stb
// reads no RLE BMPs); every JPEG block of 8x8 pixels needs at least a 1-bit DC code in some scan,
// 512 pixels per byte; a PNG is at most 8 one-bit pixels per byte of deflate output times
// deflate's maximal ratio 1032. Images of up to image_free_pixels pixels (64x64) are exempt,
// which keeps tiny hand-made files valid whatever their encoding.
inline constexpr std::uint64_t image_free_pixels = 4096;
inline constexpr std::uint64_t bmp_pixels_per_byte = 8;
inline constexpr std::uint64_t jpeg_pixels_per_byte = 512;
inline constexpr std::uint64_t png_pixels_per_byte = 8256;

// The bound above for the format the signature names (see is_image).
inline std::uint64_t max_pixels_per_byte(const unsigned char* bytes, std::size_t size) {
    if (size >= 1 && bytes[0] == 0x89) return png_pixels_per_byte;
    if (size >= 1 && bytes[0] == 0xFF) return jpeg_pixels_per_byte;
    return bmp_pixels_per_byte;
}

inline std::string reason_text(const char* r) {
    const std::string s = r ? r : "unknown error";
    if (s == "outofmem")
        return "outofmem: the decoder needed more memory than the image's size and dimensions justify "
               "(corrupt data or a decompression bomb)";
    return s;
}

// ---- JPEG pre-check ----
// Debian's stb_image (2.27, git 2022-09) trusts a JPEG's Huffman tables: a DHT whose 16 code
// counts sum to more than 256 overflows stbi__huffman (stb issue #1289, fixed upstream later),
// and a scan that uses a table no DHT defined decodes from uninitialised state. So the marker
// structure is walked here first, exactly as stb will walk it (junk before a marker skipped, FF
// fill bytes, entropy-coded data running to the first FF not followed by 00, FF or an RSTn),
// and those two cases are rejected. Truncation is left to stb, which reads zeros past the end.

// Big-endian 16-bit at p, or -1 past the end.
inline long jpeg_be16(const unsigned char* b, std::size_t size, std::size_t p) {
    return p + 1 < size ? (long(b[p]) << 8) | long(b[p + 1]) : -1;
}

inline void check_jpeg(const unsigned char* b, std::size_t size, const std::string& name) {
    auto fail = [&](std::size_t offset, const std::string& msg) {
        throw parse_error(offset, "image: JPEG " + msg, name);
    };
    bool defined[2][4] = {};  // [class: 0 DC, 1 AC][table id]
    std::size_t p = 2;        // after SOI
    while (p < size) {
        if (b[p] != 0xFF) {  // stb skips junk between segments
            ++p;
            continue;
        }
        while (p < size && b[p] == 0xFF) ++p;  // fill bytes
        if (p >= size) return;
        const unsigned m = b[p++];
        const std::size_t seg = p - 2;  // offset of the marker, for messages
        if (m == 0xD9) return;          // EOI
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // no length; stb rejects what it must
        const long len = jpeg_be16(b, size, p);
        if (len < 2) return;  // truncated or invalid: stb fails on its own
        const std::size_t end = std::min(size, p + std::size_t(len));
        if (m == 0xC4) {  // DHT: one or more tables, which must fill the segment exactly
            std::size_t q = p + 2;
            while (q < p + std::size_t(len)) {
                if (q + 17 > end) fail(q, "Huffman table header runs past its DHT segment");
                const unsigned tc = b[q] >> 4, th = b[q] & 15;
                if (tc > 1 || th > 3) fail(q, str_cat("Huffman table class/id ", tc, "/", th, " is invalid"));
                std::size_t n = 0;
                for (std::size_t i = 1; i <= 16; ++i) n += b[q + i];
                if (n > 256) fail(q + 1, str_cat("Huffman table declares ", n, " codes (at most 256)"));
                if (q + 17 + n > end) fail(q, "Huffman table values run past their DHT segment");
                defined[tc][th] = true;
                q += 17 + n;
            }
        } else if (m == 0xDA) {  // SOS: each component names its DC and AC tables
            const std::size_t ns_at = p + 2;
            if (ns_at >= end) return;
            const std::size_t ns = b[ns_at];
            const std::size_t ss_at = ns_at + 1 + 2 * ns;
            if (ss_at + 1 >= end) return;  // stb checks the SOS length itself
            const unsigned ss = b[ss_at], se = b[ss_at + 1];
            for (std::size_t c = 0; c < ns; ++c) {
                const unsigned td = b[ns_at + 2 + 2 * c] >> 4, ta = b[ns_at + 2 + 2 * c] & 15;
                if (td > 3 || ta > 3) continue;  // stb rejects these
                if ((ss == 0 && !defined[0][td]) || (se > 0 && !defined[1][ta]))
                    fail(seg, str_cat("scan uses Huffman table ", ss == 0 && !defined[0][td] ? "DC " : "AC ",
                                      ss == 0 && !defined[0][td] ? td : ta, ", which no DHT segment defined"));
            }
            // Entropy-coded data: runs to the first FF followed by neither 00, FF nor RSTn.
            std::size_t q = p + std::size_t(len);
            while (q + 1 < size && !(b[q] == 0xFF && b[q + 1] != 0x00 && b[q + 1] != 0xFF &&
                                     !(b[q + 1] >= 0xD0 && b[q + 1] <= 0xD7)))
                ++q;
            p = q;
            continue;
        }
        p += std::size_t(len);
    }
}

}  // namespace detail

// ---- decoding ----

/// True when the bytes start like a PNG (89 50 4E 47), JPEG (FF D8 FF) or BMP ("BM") file.
inline bool is_image(const unsigned char* bytes, std::size_t size) noexcept {
    if (size >= 4 && bytes[0] == 0x89 && bytes[1] == 'P' && bytes[2] == 'N' && bytes[3] == 'G') return true;
    if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return true;
    return size >= 2 && bytes[0] == 'B' && bytes[1] == 'M';
}

/// Decodes a PNG, JPEG or BMP held in memory into 8-bit RGBA (gray, gray+alpha and RGB are
/// expanded; 16-bit PNGs are reduced to 8 bits). `name_for_errors` labels exceptions.
/// Throws parse_error (offset 0, naming the file) when the data is not a supported image or is
/// corrupt (stb_image's reason is quoted), when width × height exceeds limits.max_pixels, or when
/// a file declares more pixels than its size can encode in its format (BMP 8, JPEG 512, PNG 8256
/// pixels per byte; images of up to 64x64 pixels are exempt: see detail::max_pixels_per_byte);
/// and when the bytes exceed limits.max_file_bytes.
/// Example: Image im = decode_image(buf.data(), buf.size(), "digit.png");
inline Image decode_image(const unsigned char* bytes, std::size_t size, const std::string& name_for_errors,
                          const ImageLimits& limits = {}) {
    namespace stb = detail::image_stb;
    auto fail = [&](const std::string& msg) { throw parse_error(0, "image: " + msg, name_for_errors); };
    const std::uint64_t max_bytes = std::min<std::uint64_t>(limits.max_file_bytes, INT_MAX);
    if (size > max_bytes)
        fail(detail::str_cat(size, " bytes exceed the limit of ", max_bytes, " (ImageLimits::max_file_bytes)"));
    if (!is_image(bytes, size)) fail("not a PNG, JPEG or BMP file (unrecognised signature)");
    if (size >= 3 && bytes[0] == 0xFF) detail::check_jpeg(bytes, size, name_for_errors);
    const int len = static_cast<int>(size);
    int w = 0, h = 0, channels = 0;
    {
        // Reading the header allocates only stb's decoder state (~20 KB for JPEG).
        detail::ImageAllocScope scope(std::size_t(1) << 20);
        stb::stbi__g_failure_reason = nullptr;
        if (!stb::nanotorch_detail_image_stbi_info_from_memory(bytes, len, &w, &h, &channels))
            fail(detail::str_cat("stb_image cannot read the header (",
                         detail::reason_text(stb::nanotorch_detail_image_stbi_failure_reason()), ")"));
    }
    const std::uint64_t pixels = std::uint64_t(w) * std::uint64_t(h);
    if (w <= 0 || h <= 0) fail(detail::str_cat("empty image (", w, "x", h, ")"));
    if (pixels > limits.max_pixels)
        fail(detail::str_cat(w, "x", h, " = ", pixels, " pixels exceed the limit of ", limits.max_pixels,
                     " (ImageLimits::max_pixels)"));
    const std::uint64_t per_byte = detail::max_pixels_per_byte(bytes, size);
    if (pixels > detail::image_free_pixels && pixels > per_byte * size)
        fail(detail::str_cat("header declares ", w, "x", h, " pixels, more than a ", size,
                             "-byte file can encode (at most ", per_byte, " pixels per byte in this format)"));

    // Every buffer stb needs is at most ~16 bytes per pixel (16-bit RGBA plus zlib's doubling,
    // or JPEG's padded planes) or twice the compressed data, plus fixed decoder state.
    const std::uint64_t budget = 16 * pixels + 2 * std::uint64_t(size) + (std::uint64_t(1) << 20);
    Image out;
    {
        detail::ImageAllocScope scope(static_cast<std::size_t>(budget));
        stb::stbi__g_failure_reason = nullptr;
        int dw = 0, dh = 0, dc = 0;
        unsigned char* px = stb::nanotorch_detail_image_stbi_load_from_memory(bytes, len, &dw, &dh, &dc, 4);
        if (!px)
            fail(detail::str_cat("stb_image cannot decode it (",
                         detail::reason_text(stb::nanotorch_detail_image_stbi_failure_reason()), ")"));
        // The header said w x h; a decoder that disagreed would make the copy below wrong.
        if (dw != w || dh != h) {
            stb::nanotorch_detail_image_stbi_image_free(px);
            fail(detail::str_cat("decoded size ", dw, "x", dh, " differs from the header's ", w, "x", h));
        }
        out.width = w;
        out.height = h;
        out.rgba.assign(px, px + 4 * pixels);
        stb::nanotorch_detail_image_stbi_image_free(px);
    }
    return out;
}

/// Reads and decodes an image file. Throws io_error (path + the system's reason) when it cannot
/// be opened or read, parse_error when it is larger than limits.max_file_bytes; otherwise as
/// decode_image. Example: Image im = read_image("digit.png");
inline Image read_image(const std::string& path, const ImageLimits& limits = {}) {
    const std::uint64_t max_bytes = std::min<std::uint64_t>(limits.max_file_bytes, INT_MAX);
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, max_bytes);
    return decode_image(bytes.data(), bytes.size(), path, limits);
}

// ---- grayscale and IDX images ----

/// Luma (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B) composited over white by alpha, so that a
/// transparent background (as a browser canvas saves it) reads as white paper. Throws nothing.
inline GrayImage to_grayscale(const Image& im) {
    GrayImage g{im.width, im.height, std::vector<float>(static_cast<std::size_t>(im.width * im.height))};
    for (std::size_t i = 0; i < g.pixels.size(); ++i) {
        const std::uint8_t* p = &im.rgba[4 * i];
        const double luma = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        const double a = p[3] / 255.0;
        g.pixels[i] = static_cast<float>(luma * a + 255.0 * (1.0 - a));
    }
    return g;
}

/// Image `index` of an IDX image array (dims {N, rows, cols}) as a GrayImage, pixels 0..255.
/// Throws value_error when `images` is not rank 3 or when index is outside [0, N), naming
/// `name_for_errors` and N.
inline GrayImage idx_image(const IdxArray& images, std::int64_t index, const std::string& name_for_errors = "") {
    const std::string who = name_for_errors.empty() ? std::string("IDX images") : name_for_errors;
    NANOTORCH_CHECK(images.dims.size() == 3 && static_cast<std::int64_t>(images.data.size()) == images.numel(),
                    value_error, who, ": expected an IDX image array with dims {N, rows, cols}, got ",
                    detail::dims_to_string(images.dims));
    const std::int64_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
    NANOTORCH_CHECK(index >= 0 && index < n, value_error, who, ": image index ", index,
                    " is out of range (the file holds ", n, " images, 0..", n - 1, ")");
    GrayImage g{cols, rows, std::vector<float>(static_cast<std::size_t>(rows * cols))};
    const std::uint8_t* src = images.data.data() + index * rows * cols;
    for (std::size_t i = 0; i < g.pixels.size(); ++i) g.pixels[i] = src[i];
    return g;
}

// ---- resizing ----

namespace detail {

// Area weights for resampling `src` samples onto `dst`: output i covers source interval
// [i·src/dst, (i+1)·src/dst). In units of 1/dst source pixels every bound is an integer, so the
// weights are exact (an integer downscale is a plain box average, an integer upscale a copy).
struct AreaTap {
    std::int64_t first;
    std::vector<double> w;
};
inline std::vector<AreaTap> area_taps(std::int64_t src, std::int64_t dst) {
    std::vector<AreaTap> taps(static_cast<std::size_t>(dst));
    for (std::int64_t i = 0; i < dst; ++i) {
        const std::int64_t lo = i * src, hi = (i + 1) * src;  // in 1/dst units; hi - lo == src
        AreaTap& t = taps[static_cast<std::size_t>(i)];
        t.first = lo / dst;
        for (std::int64_t j = t.first; j * dst < hi; ++j)
            t.w.push_back(double(std::min(hi, (j + 1) * dst) - std::max(lo, j * dst)) / double(src));
    }
    return taps;
}

inline void check_resize(const GrayImage& g, std::int64_t width, std::int64_t height, const char* fn) {
    NANOTORCH_CHECK(g.width > 0 && g.height > 0 && static_cast<std::int64_t>(g.pixels.size()) == g.width * g.height,
                    value_error, fn, ": source image is empty or inconsistent (", g.width, "x", g.height, ", ",
                    g.pixels.size(), " pixels)");
    NANOTORCH_CHECK(width > 0 && height > 0 && width <= (1 << 16) && height <= (1 << 16), value_error, fn,
                    ": target size ", width, "x", height, " is outside 1..65536");
}

}  // namespace detail

/// Resizes by area averaging (a box filter): each output pixel is the mean of the source area it
/// covers, so 280→28 averages 10×10 blocks and 28→280 repeats each pixel 10×10 times.
/// Throws value_error for an empty source or a target size outside 1..65536.
inline GrayImage resize_area(const GrayImage& g, std::int64_t width, std::int64_t height) {
    detail::check_resize(g, width, height, "resize_area");
    const auto tx = detail::area_taps(g.width, width), ty = detail::area_taps(g.height, height);
    std::vector<double> rows(static_cast<std::size_t>(g.height * width));  // horizontal pass
    for (std::int64_t y = 0; y < g.height; ++y)
        for (std::int64_t x = 0; x < width; ++x) {
            const auto& t = tx[static_cast<std::size_t>(x)];
            double s = 0;
            for (std::size_t k = 0; k < t.w.size(); ++k) s += t.w[k] * g.at(t.first + std::int64_t(k), y);
            rows[static_cast<std::size_t>(y * width + x)] = s;
        }
    GrayImage out{width, height, std::vector<float>(static_cast<std::size_t>(width * height))};
    for (std::int64_t y = 0; y < height; ++y) {
        const auto& t = ty[static_cast<std::size_t>(y)];
        for (std::int64_t x = 0; x < width; ++x) {
            double s = 0;
            for (std::size_t k = 0; k < t.w.size(); ++k)
                s += t.w[k] * rows[static_cast<std::size_t>((t.first + std::int64_t(k)) * width + x)];
            out.pixels[static_cast<std::size_t>(y * width + x)] = static_cast<float>(s);
        }
    }
    return out;
}

/// Resizes by nearest neighbour: output (x, y) takes source (⌊x·w/W⌋, ⌊y·h/H⌋).
/// Throws value_error as resize_area.
inline GrayImage resize_nearest(const GrayImage& g, std::int64_t width, std::int64_t height) {
    detail::check_resize(g, width, height, "resize_nearest");
    GrayImage out{width, height, std::vector<float>(static_cast<std::size_t>(width * height))};
    for (std::int64_t y = 0; y < height; ++y)
        for (std::int64_t x = 0; x < width; ++x)
            out.pixels[static_cast<std::size_t>(y * width + x)] = g.at(x * g.width / width, y * g.height / height);
    return out;
}

// ---- ink and network inputs ----

/// Mean of the pixels on the image's outer edge (each counted once). Throws value_error for an
/// empty image.
inline float border_mean(const GrayImage& g) {
    NANOTORCH_CHECK(g.width > 0 && g.height > 0, value_error, "border_mean: empty image");
    double sum = 0;
    std::int64_t n = 0;
    for (std::int64_t y = 0; y < g.height; ++y)
        for (std::int64_t x = 0; x < g.width; ++x)
            if (y == 0 || y == g.height - 1 || x == 0 || x == g.width - 1) {
                sum += g.at(x, y);
                ++n;
            }
    return static_cast<float>(sum / double(n));
}

/// The image as MNIST-style ink: white on black. MNIST digits are light strokes on a black
/// background, while a digit drawn or photographed on paper is dark on light; the background is
/// judged by the border, since a centred digit rarely touches it. A border mean above 127.5
/// means a light background, and the image is inverted (255 − v). Throws value_error when empty.
inline GrayImage to_ink(const GrayImage& g) {
    GrayImage out = g;
    if (border_mean(g) > 127.5f)
        for (float& v : out.pixels) v = 255.0f - v;
    return out;
}

/// MNIST normalisation of 0..255 ink, as the seed's transforms: ToTensor (x / 255) then
/// Normalize((0.1307,), (0.3081,)). Row-major, one value per pixel. Throws nothing.
inline std::vector<float> mnist_normalize(const GrayImage& ink) {
    std::vector<float> out(ink.pixels.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = (ink.pixels[i] / 255.0f - mnist_mean) / mnist_std;
    return out;
}

/// The browser canvas the seed's InferenceNet reads: 4 floats per pixel (R, G, B, A), RGB 0 and
/// A = the ink rounded and clamped to a byte, as a canvas's Uint8ClampedArray holds it.
/// Throws nothing.
inline std::vector<float> rgba_canvas(const GrayImage& ink) {
    std::vector<float> out(4 * ink.pixels.size(), 0.0f);
    for (std::size_t i = 0; i < ink.pixels.size(); ++i)
        out[4 * i + 3] = static_cast<float>(std::lround(std::min(255.0f, std::max(0.0f, ink.pixels[i]))));
    return out;
}

/// A picture of a digit (dark on light or light on dark) as a [height, width] MNIST input:
/// grayscale, to_ink, resize_area, mnist_normalize. Throws value_error for a bad size.
inline std::vector<float> image_to_mnist(const Image& im, std::int64_t height = 28, std::int64_t width = 28) {
    return mnist_normalize(resize_area(to_ink(to_grayscale(im)), width, height));
}

/// A picture of a digit as the browser canvas (size × size RGBA, ink in alpha): grayscale,
/// to_ink, resize_area, rgba_canvas. Throws value_error for a bad size.
inline std::vector<float> image_to_canvas(const Image& im, std::int64_t size = 280) {
    return rgba_canvas(resize_area(to_ink(to_grayscale(im)), size, size));
}

/// An IDX digit (already white on black, so never inverted) as a [height, width] MNIST input:
/// resize_area when the size differs, then mnist_normalize. Throws value_error for a bad size.
inline std::vector<float> idx_to_mnist(const GrayImage& digit, std::int64_t height = 28, std::int64_t width = 28) {
    if (digit.width == width && digit.height == height) return mnist_normalize(digit);
    return mnist_normalize(resize_area(digit, width, height));
}

/// An IDX digit as the browser canvas: resize_nearest to size × size (28 → 280 repeats each pixel
/// 10×10 times, which the model's 10×10 average pool undoes exactly), then rgba_canvas.
/// Throws value_error for a bad size.
inline std::vector<float> idx_to_canvas(const GrayImage& digit, std::int64_t size = 280) {
    return rgba_canvas(resize_nearest(digit, size, size));
}

}  // namespace nanotorch::data
