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
// stb_image's zlib decoder is a private, isolated copy (data/stb_private.hpp: internal linkage,
// renamed API, every stb macro saved and restored), so it coexists with a user's own stb_image,
// included before or after this header, with or without its implementation, in the same TU.
#pragma once

#include <algorithm>    // std::min
#include <array>        // the CRC-32 table
#include <climits>      // INT_MAX: stb_image addresses buffers with int
#include <cstddef>      // std::size_t
#include <cstdint>      // fixed-width header fields
#include <sstream>      // hex formatting in error messages
#include <string>
#include <vector>

#include <nanotorch/error.hpp>
#include <nanotorch/util/crc32.hpp>

// The zlib-only copy of stb_image: namespace detail::stb, functions nanotorch_detail_stbi_*.
#include <nanotorch/data/stb_private.hpp>

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
