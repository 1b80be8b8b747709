// nanotorch/data/gzip.hpp — a validating, size-bounded gunzip for in-memory buffers, and CRC-32.
//
// Provides crc32(), is_gzip() and gunzip(): one RFC 1952 gzip member is parsed here (header
// flags FEXTRA/FNAME/FCOMMENT/FHCRC, trailer CRC32 and ISIZE are all checked), and the raw deflate
// stream in between is inflated by the zlib decoder of Debian's stb_image.h (libstb-dev). The
// output is written into a buffer we size ourselves and stb may not grow it, so a hostile file can
// never make us allocate more than the caller's limit. Deliberately not provided: compression,
// streaming, zlib/raw-deflate framing, and multi-member (concatenated) gzip files, which are
// rejected because the trailer is taken to be the last 8 bytes of the buffer.
//
// How stb_image is included, and why that is safe with several translation units (TUs):
// stb_image is a single-header library whose function bodies appear only where the including TU
// defines STB_IMAGE_IMPLEMENTATION. We compile it with STB_IMAGE_STATIC inside
// namespace nanotorch::data::detail::stb, trimmed to the zlib decoder (STBI_ONLY_ZLIB +
// STBI_SUPPORT_ZLIB; no stdio, SIMD, HDR or GIF). Every stb function therefore has internal
// linkage: each TU that includes this header gets its own private copy and the linker never sees a
// duplicate. stb's API functions are also renamed to nanotorch_detail_stbi_* for the duration of
// the include, because GCC emits C-linkage functions under their plain names even when static, so
// a user's own global stbi_* definitions in the same TU would otherwise collide in the assembler.
// All of stb's configuration and helper macros are saved with push_macro, cleared, and restored
// afterwards, so it does not matter whether a user's `#include <stb/stb_image.h>` (with or without
// STB_IMAGE_IMPLEMENTATION, with any STBI_* options) comes before or after ours in a TU.
// The one formal wrinkle is the usual header-only one: the inline function inflate_raw() calls a
// TU-local copy of identical code; nothing diagnoses or miscompiles that. Checked by hand with
// g++ 12 and clang++ 14 (-O0 and -flto -O2, -Wall -Wextra -Wpedantic -Werror): two TUs including
// this header, plus user TUs that include stb_image with its implementation before or after it.
#pragma once

#include <algorithm>    // std::min
#include <array>        // the CRC-32 table
#include <climits>      // INT_MAX: stb_image addresses buffers with int
#include <cstddef>      // std::size_t
#include <cstdint>      // fixed-width header fields
#include <sstream>      // hex formatting in error messages
#include <string>
#include <vector>

// stb_image.h includes these C headers itself. Including them first, at global scope, makes its
// own #includes no-ops, so no C library declaration ends up inside our namespace (libstdc++'s
// <stdlib.h> wrapper would otherwise put using-declarations there).
#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nanotorch/error.hpp>
#include <nanotorch/util/crc32.hpp>

// ---- stb_image, isolated ----

// Every macro stb_image.h reads as an option or leaves defined (as of the 2022-09 Debian version;
// a macro that a newer stb adds is at worst left defined, which is how stb behaves anyway).
#define NANOTORCH_DETAIL_STB_MACROS(X)                                                            \
    X(STBI_INCLUDE_STB_IMAGE_H) X(STB_IMAGE_IMPLEMENTATION) X(STB_IMAGE_STATIC) X(STBIDEF)         \
    X(STBI_VERSION) X(STBI_EXTERN) X(stbi_inline) X(STBI_NOTUSED) X(stbi_lrot) X(STBI_SIMD_ALIGN)  \
    X(STBI__BYTECAST) X(STBI__X86_TARGET) X(STBI__X64_TARGET) X(STBI__ZFAST_BITS)                  \
    X(STBI__ZFAST_MASK) X(STBI__ZNSYMS) X(stbi__err) X(stbi__errpf) X(stbi__errpuc)                \
    X(stbi__vertically_flip_on_load) X(STBI_ASSERT) X(STBI_MALLOC) X(STBI_REALLOC)                 \
    X(STBI_REALLOC_SIZED) X(STBI_FREE) X(STBI_MAX_DIMENSIONS) X(STBI_THREAD_LOCAL)                 \
    X(STBI_NO_THREAD_LOCALS) X(STBI_NO_FAILURE_STRINGS) X(STBI_FAILURE_USERMSG) X(STBI_NO_STDIO)   \
    X(STBI_NO_LINEAR) X(STBI_NO_HDR) X(STBI_NO_SIMD) X(STBI_NO_JPEG) X(STBI_NO_PNG) X(STBI_NO_BMP) \
    X(STBI_NO_PSD) X(STBI_NO_TGA) X(STBI_NO_GIF) X(STBI_NO_PIC) X(STBI_NO_PNM) X(STBI_NO_ZLIB)     \
    X(STBI_ONLY_JPEG) X(STBI_ONLY_PNG) X(STBI_ONLY_BMP) X(STBI_ONLY_PSD) X(STBI_ONLY_TGA)          \
    X(STBI_ONLY_GIF) X(STBI_ONLY_HDR) X(STBI_ONLY_PIC) X(STBI_ONLY_PNM) X(STBI_ONLY_ZLIB)          \
    X(STBI_SUPPORT_ZLIB) X(STBI_SSE2) X(STBI_NEON) X(STBI_MINGW_ENABLE_SSE2) X(STBI_HAS_LROTL)     \
    X(STBI_WINDOWS_UTF8)
#define NANOTORCH_DETAIL_PRAGMA(x) _Pragma(#x)
#define NANOTORCH_DETAIL_PUSH_MACRO(m) NANOTORCH_DETAIL_PRAGMA(push_macro(#m))
#define NANOTORCH_DETAIL_POP_MACRO(m) NANOTORCH_DETAIL_PRAGMA(pop_macro(#m))

NANOTORCH_DETAIL_STB_MACROS(NANOTORCH_DETAIL_PUSH_MACRO)
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

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_ZLIB     // no image formats at all ...
#define STBI_SUPPORT_ZLIB  // ... but keep the inflater
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_SIMD
#define STBI_NO_GIF  // the header part declares the GIF entry point before STBI_ONLY_* disables it
#define STBI_ASSERT(x) assert(x)  // stb's internal invariants only; <assert.h> is included above

// stb declares its API inside extern "C", and GCC emits a C-linkage function under its plain name
// even when it is static and namespaced, so our copy of stbi_failure_reason would collide in the
// assembler with a user's global one in the same TU. Renaming every API function that this
// configuration declares avoids that; these names are #undef'd right after the include.
#define stbi_convert_iphone_png_to_rgb nanotorch_detail_stbi_convert_iphone_png_to_rgb
#define stbi_convert_iphone_png_to_rgb_thread nanotorch_detail_stbi_convert_iphone_png_to_rgb_thread
#define stbi_failure_reason nanotorch_detail_stbi_failure_reason
#define stbi_image_free nanotorch_detail_stbi_image_free
#define stbi_info_from_callbacks nanotorch_detail_stbi_info_from_callbacks
#define stbi_info_from_memory nanotorch_detail_stbi_info_from_memory
#define stbi_is_16_bit_from_callbacks nanotorch_detail_stbi_is_16_bit_from_callbacks
#define stbi_is_16_bit_from_memory nanotorch_detail_stbi_is_16_bit_from_memory
#define stbi_is_hdr_from_callbacks nanotorch_detail_stbi_is_hdr_from_callbacks
#define stbi_is_hdr_from_memory nanotorch_detail_stbi_is_hdr_from_memory
#define stbi_load_16_from_callbacks nanotorch_detail_stbi_load_16_from_callbacks
#define stbi_load_16_from_memory nanotorch_detail_stbi_load_16_from_memory
#define stbi_load_from_callbacks nanotorch_detail_stbi_load_from_callbacks
#define stbi_load_from_memory nanotorch_detail_stbi_load_from_memory
#define stbi_set_flip_vertically_on_load nanotorch_detail_stbi_set_flip_vertically_on_load
#define stbi_set_flip_vertically_on_load_thread nanotorch_detail_stbi_set_flip_vertically_on_load_thread
#define stbi_set_unpremultiply_on_load nanotorch_detail_stbi_set_unpremultiply_on_load
#define stbi_set_unpremultiply_on_load_thread nanotorch_detail_stbi_set_unpremultiply_on_load_thread
#define stbi_zlib_decode_buffer nanotorch_detail_stbi_zlib_decode_buffer
#define stbi_zlib_decode_malloc nanotorch_detail_stbi_zlib_decode_malloc
#define stbi_zlib_decode_malloc_guesssize nanotorch_detail_stbi_zlib_decode_malloc_guesssize
#define stbi_zlib_decode_malloc_guesssize_headerflag nanotorch_detail_stbi_zlib_decode_malloc_guesssize_headerflag
#define stbi_zlib_decode_noheader_buffer nanotorch_detail_stbi_zlib_decode_noheader_buffer
#define stbi_zlib_decode_noheader_malloc nanotorch_detail_stbi_zlib_decode_noheader_malloc

// stb_image is third-party C-style code: silence what stricter user flags would report in it
// (these fire only when stb is not found as a system header). Our own code stays fully checked.
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
namespace nanotorch::data::detail::stb {
#include <stb/stb_image.h>
}  // namespace nanotorch::data::detail::stb
#pragma GCC diagnostic pop
#undef stbi_convert_iphone_png_to_rgb
#undef stbi_convert_iphone_png_to_rgb_thread
#undef stbi_failure_reason
#undef stbi_image_free
#undef stbi_info_from_callbacks
#undef stbi_info_from_memory
#undef stbi_is_16_bit_from_callbacks
#undef stbi_is_16_bit_from_memory
#undef stbi_is_hdr_from_callbacks
#undef stbi_is_hdr_from_memory
#undef stbi_load_16_from_callbacks
#undef stbi_load_16_from_memory
#undef stbi_load_from_callbacks
#undef stbi_load_from_memory
#undef stbi_set_flip_vertically_on_load
#undef stbi_set_flip_vertically_on_load_thread
#undef stbi_set_unpremultiply_on_load
#undef stbi_set_unpremultiply_on_load_thread
#undef stbi_zlib_decode_buffer
#undef stbi_zlib_decode_malloc
#undef stbi_zlib_decode_malloc_guesssize
#undef stbi_zlib_decode_malloc_guesssize_headerflag
#undef stbi_zlib_decode_noheader_buffer
#undef stbi_zlib_decode_noheader_malloc

// Restores each macro's earlier definition, or its absence.
NANOTORCH_DETAIL_STB_MACROS(NANOTORCH_DETAIL_POP_MACRO)
#undef NANOTORCH_DETAIL_STB_MACROS
#undef NANOTORCH_DETAIL_PRAGMA
#undef NANOTORCH_DETAIL_PUSH_MACRO
#undef NANOTORCH_DETAIL_POP_MACRO

namespace nanotorch::data {

// ---- CRC-32 (util/crc32.hpp) ----

using util::crc32;

namespace detail {

inline std::string hex32(std::uint32_t v) {
    std::ostringstream os;
    os << "0x" << std::hex << v;
    return os.str();
}

}  // namespace detail

// ---- gzip ----

/// True when the buffer starts with the gzip magic bytes 1F 8B. Throws nothing.
inline bool is_gzip(const unsigned char* bytes, std::size_t size) noexcept {
    return size >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B;
}

namespace detail {

// gzip header flag bits (RFC 1952 section 2.3.1).
inline constexpr unsigned gz_fhcrc = 0x02, gz_fextra = 0x04, gz_fname = 0x08, gz_fcomment = 0x10;
inline constexpr unsigned gz_reserved = 0xE0;
inline constexpr std::size_t gz_header_size = 10, gz_trailer_size = 8;

// Deflate cannot expand by more than 1032x: the densest code is a 258-byte match in 2 bits
// (a 1-bit length code plus a 1-bit distance code). An ISIZE above this is a lie, and rejecting it
// keeps a tiny crafted file from making us allocate a large buffer even within the limit.
inline constexpr std::uint64_t deflate_max_ratio = 1032;

// Inflates a raw deflate stream into out[0, capacity). Returns the number of bytes produced, or -1
// with *reason set (never null) when the data is invalid or needs more than `capacity` bytes.
inline int inflate_raw(const unsigned char* in, int in_size, unsigned char* out, int capacity,
                       const char** reason) {
    // stb reports errors through a thread-local string it never clears; reset it so that a stale
    // reason from an earlier failure is not reported for this one.
    stb::stbi__g_failure_reason = nullptr;
    const int n = stb::nanotorch_detail_stbi_zlib_decode_noheader_buffer(
        reinterpret_cast<char*>(out), capacity, reinterpret_cast<const char*>(in), in_size);
    const char* r = stb::nanotorch_detail_stbi_failure_reason();
    *reason = r ? r : "reserved block type or truncated data";
    return n;
}

}  // namespace detail

/// Decompresses one gzip member held in memory.
/// `name_for_errors` (usually the file path) is put into every exception; `max_output_bytes` bounds
/// the decompressed size, and with it the only large allocation made here.
/// Throws parse_error (offset into `bytes`) for: a missing 1F 8B magic, a compression method other
/// than 8 (deflate), reserved flag bits, a truncated header or extra/name/comment field, a header
/// CRC16 mismatch (FHCRC), invalid deflate data (offset = start of the deflate stream), a trailer
/// ISIZE above the limit or above what deflate can produce from the input, an output length that
/// differs from ISIZE, and a CRC-32 mismatch. Throws unsupported_error for a member larger than
/// INT_MAX bytes (stb_image's int-sized buffers).
/// Example: auto raw = gunzip(buf.data(), buf.size(), "x.gz", 1u << 30);
inline std::vector<std::uint8_t> gunzip(const unsigned char* bytes, std::size_t size,
                                        const std::string& name_for_errors,
                                        std::uint64_t max_output_bytes) {
    const std::string& name = name_for_errors;
    auto fail = [&](std::uint64_t offset, const std::string& msg) {
        throw parse_error(offset, "gzip: " + msg, name);
    };
    auto need = [&](std::size_t pos, std::size_t n, const char* what) {
        if (pos > size || size - pos < n)
            fail(size, std::string("truncated: ") + what + " needs " + std::to_string(n) +
                           " byte(s) at byte " + std::to_string(pos) + ", but the data ends at byte " +
                           std::to_string(size));
    };

    // Header: ID1 ID2 CM FLG MTIME(4) XFL OS.
    need(0, 2, "the magic 1F 8B");
    if (!is_gzip(bytes, size)) fail(0, "missing the gzip magic bytes 1F 8B");
    need(2, detail::gz_header_size - 2, "the fixed header");
    if (bytes[2] != 8)
        fail(2, "compression method " + std::to_string(bytes[2]) + " is not 8 (deflate)");
    const unsigned flags = bytes[3];
    if (flags & detail::gz_reserved)
        fail(3, "reserved flag bits are set (FLG = " + detail::hex32(flags) + ")");
    std::size_t pos = detail::gz_header_size;
    if (flags & detail::gz_fextra) {
        need(pos, 2, "the FEXTRA length");
        const std::size_t xlen = std::size_t(bytes[pos]) | (std::size_t(bytes[pos + 1]) << 8);
        pos += 2;
        need(pos, xlen, "the FEXTRA field");
        pos += xlen;
    }
    for (unsigned field : {detail::gz_fname, detail::gz_fcomment}) {
        if (!(flags & field)) continue;
        const char* what = field == detail::gz_fname ? "the zero-terminated FNAME field"
                                                     : "the zero-terminated FCOMMENT field";
        while (pos < size && bytes[pos] != 0) ++pos;
        need(pos, 1, what);
        ++pos;  // the terminating zero
    }
    if (flags & detail::gz_fhcrc) {
        need(pos, 2, "the header CRC16");
        const std::uint32_t stored = std::uint32_t(bytes[pos]) | (std::uint32_t(bytes[pos + 1]) << 8);
        const std::uint32_t actual = crc32(bytes, pos) & 0xFFFFu;
        if (stored != actual)
            fail(pos, "header CRC16 mismatch: stored " + detail::hex32(stored) + ", computed " +
                          detail::hex32(actual));
        pos += 2;
    }
    need(pos, detail::gz_trailer_size, "the deflate data and the 8-byte CRC32/ISIZE trailer");

    // Trailer: the last 8 bytes (single-member files only).
    const std::size_t trailer = size - detail::gz_trailer_size;
    const std::uint32_t stored_crc = std::uint32_t(bytes[trailer]) |
                                     (std::uint32_t(bytes[trailer + 1]) << 8) |
                                     (std::uint32_t(bytes[trailer + 2]) << 16) |
                                     (std::uint32_t(bytes[trailer + 3]) << 24);
    const std::uint32_t isize = std::uint32_t(bytes[trailer + 4]) |
                                (std::uint32_t(bytes[trailer + 5]) << 8) |
                                (std::uint32_t(bytes[trailer + 6]) << 16) |
                                (std::uint32_t(bytes[trailer + 7]) << 24);
    const std::size_t deflate_size = trailer - pos;
    if (size > std::size_t(INT_MAX))
        throw unsupported_error(name + ": gzip member of " + std::to_string(size) +
                                " bytes is larger than the 2 GiB the stb_image inflater supports");

    // ISIZE is the true size modulo 2^32 and we cap the output below 2^31, so within the cap the
    // only consistent size is ISIZE itself; it is still only a hint, checked against the output.
    const std::uint64_t cap = std::min<std::uint64_t>(max_output_bytes, INT_MAX - 1);
    if (isize > cap)
        fail(trailer + 4, "trailer ISIZE declares " + std::to_string(isize) +
                              " decompressed bytes, more than the limit of " + std::to_string(cap));
    if (isize > detail::deflate_max_ratio * deflate_size)
        fail(trailer + 4, "trailer ISIZE declares " + std::to_string(isize) +
                              " bytes, more than deflate can produce from " +
                              std::to_string(deflate_size) + " compressed bytes");

    // One spare byte lets "more output than ISIZE" show up as a length mismatch when it is
    // exactly one byte too long; longer outputs fail inside stb with "output buffer limit".
    // The input handed to stb runs on through the trailer: this stb version gives up on a Huffman
    // code when fewer than 16 bits remain before the end of its input, even if the code is
    // shorter (zlib streams always have a 4-byte Adler-32 after them, so PNG never notices). The
    // 8 trailer bytes are that slack; should a corrupt stream run into them, the CRC catches it.
    std::vector<std::uint8_t> out(std::size_t(isize) + 1);
    const char* reason = nullptr;
    const int n = detail::inflate_raw(bytes + pos, static_cast<int>(size - pos), out.data(),
                                      static_cast<int>(out.size()), &reason);
    if (n < 0) {
        if (std::string(reason) == "output buffer limit")
            fail(pos, "the deflate data decompresses to more than the " + std::to_string(isize) +
                          " bytes the trailer's ISIZE declares");
        fail(pos, std::string("invalid deflate data (stb_image: ") + reason + ")");
    }
    if (std::uint64_t(n) != isize)
        fail(trailer + 4, "trailer ISIZE declares " + std::to_string(isize) +
                              " bytes, but the deflate data decompresses to " + std::to_string(n));
    out.resize(std::size_t(isize));
    const std::uint32_t actual_crc = crc32(out.data(), out.size());
    if (actual_crc != stored_crc)
        fail(trailer, "CRC32 mismatch: trailer says " + detail::hex32(stored_crc) +
                          ", decompressed data hashes to " + detail::hex32(actual_crc));
    return out;
}

}  // namespace nanotorch::data
