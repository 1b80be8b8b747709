// nanotorch/data/image_decode.hpp — PNG, JPEG and BMP files to 8-bit RGBA, via stb_image, bounded
// against hostile files.
//
// Provides Image, ImageLimits, is_image(), decode_image() and read_image(). Deliberately not
// provided: writing images, other formats (GIF, TGA, HDR ...), EXIF orientation and gamma.
// Included by data/image.hpp (the opt-in image header), not by the umbrella header, so users who
// never load images never compile stb's decoders.
//
// stb_image is a private, isolated copy (data/stb_private.hpp, the PNG/JPEG/BMP one), so it
// coexists with gzip.hpp's zlib-only copy and with a user's own stb_image in one TU. In addition,
// stb's allocator is replaced by one that refuses any block larger than what the image's own
// dimensions and file size justify (and zero-fills), so a decompression bomb (a 1×1 PNG whose
// IDAT inflates to gigabytes) fails with "outofmem" instead of allocating; the dimensions are
// checked before decoding; and a JPEG's Huffman tables are checked first (check_jpeg). stb_image
// says itself that it is not hardened against hostile files: with these checks, 300,000 mutated
// PNG/JPEG/BMP files (gray, palette, 1/16-bit, progressive, CMYK, 4:2:0 ...) ran clean under
// ASan + UBSan except for benign kinds of undefined behaviour inside stb: int overflow in the JPEG
// IDCT on corrupt coefficients, memcpy(NULL, p, 0) for an empty first PNG IDAT chunk, and (found
// by tests/fuzz/fuzz_image) an oversized shift in the JPEG bit reader on corrupt data; UBSan is
// told to ignore exactly these three inside stb (see stb_private.hpp).
#pragma once

#include <algorithm>  // std::min/max
#include <climits>    // INT_MAX: stb_image addresses buffers with int
#include <cstddef>
#include <cstdint>
#include <cstdlib>    // std::malloc/realloc/free for stb's bounded allocator
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/data/idx.hpp>    // detail::read_file_bytes
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

// The PNG/JPEG/BMP copy of stb_image: namespace detail::image_stb, functions
// nanotorch_detail_image_stbi_*, allocating through image_malloc/realloc/free above.
#define NANOTORCH_DETAIL_STB_IMAGE_FORMATS
#include <nanotorch/data/stb_private.hpp>

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

}  // namespace nanotorch::data
