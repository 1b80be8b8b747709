// nanotorch/data/idx.hpp — a validating reader for IDX files (the MNIST format), raw or gzipped.
//
// Provides read_idx / read_idx_images / read_idx_labels (from a path) and the matching parse_*
// functions (from memory). They return a plain IdxArray {dims, bytes}: this layer deliberately does
// not depend on Tensor, does not normalise or convert pixels, and reads only the unsigned-byte
// element type (0x08) that MNIST and Fashion-MNIST use. Unlike loaders that seek past 16 bytes and
// hope, every header field is checked: the two zero bytes, the type byte, the rank (1..4, and 1 for
// labels / 3 for images), and the product of the big-endian dimensions (with overflow checks) must
// equal the payload size exactly, before anything is allocated from it. A gzip file is recognised by
// its magic bytes 1F 8B, not by its name, and inflated with size limits (see gzip.hpp).
#pragma once

#include <cerrno>   // errno after fopen/fread, for io_error messages
#include <cstddef>  // std::size_t
#include <cstdint>
#include <cstdio>   // std::FILE: lets us report strerror(errno), which iostreams do not promise
#include <cstring>  // std::strerror
#include <filesystem>  // file_size, as a capacity hint only
#include <limits>
#include <memory>   // std::unique_ptr closes the FILE on every path
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/data/gzip.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/util/bytes.hpp>

namespace nanotorch::data {

// ---- public types ----

/// Bounds that protect against hostile or mistaken inputs. Raise them for larger data sets.
struct IdxLimits {
    /// Largest file that will be read, and largest decompressed size of a gzip file (1 GiB).
    std::uint64_t max_bytes = std::uint64_t(1) << 30;
};

/// An IDX array of unsigned bytes: `dims` in file order (e.g. {N, 28, 28} for images, {N} for
/// labels) and the row-major payload, data.size() == product of dims.
struct IdxArray {
    std::vector<std::int64_t> dims;
    std::vector<std::uint8_t> data;

    /// Product of dims (the number of elements; 0 if any dim is 0). Throws nothing.
    std::int64_t numel() const noexcept {
        std::int64_t n = 1;
        for (std::int64_t d : dims)
            if (d == 0) return 0;  // checked first: the other dims may not multiply without overflow
        for (std::int64_t d : dims) n *= d;
        return n;
    }
};

namespace detail {

// ---- validation ----

inline constexpr int idx_max_rank = 4;

// What a caller requires of the header; rank 0 means "any rank in 1..4".
struct IdxExpect {
    int rank = 0;
    const char* what = "";  // "images" / "labels", for messages
};

inline std::string dims_to_string(const std::vector<std::int64_t>& dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

inline std::string hex_byte(unsigned v) {
    const char* digits = "0123456789ABCDEF";
    return std::string("0x") + digits[(v >> 4) & 0xF] + digits[v & 0xF];
}

// Names of the IDX element types other than 0x08, for unsupported_error; null if not an IDX type.
inline const char* idx_type_name(unsigned type) {
    switch (type) {
        case 0x09: return "signed byte";
        case 0x0B: return "int16";
        case 0x0C: return "int32";
        case 0x0D: return "float32";
        case 0x0E: return "float64";
        default: return nullptr;
    }
}

// Parses an uncompressed IDX image. `context` prefixes messages ("" or "gunzipped data: ") so that
// an offset into decompressed bytes is not mistaken for a file offset.
inline IdxArray parse_idx_raw(const unsigned char* bytes, std::size_t size, const std::string& name,
                              const IdxLimits& limits, const IdxExpect& expect,
                              const std::string& context) {
    auto fail = [&](std::uint64_t offset, const std::string& msg) {
        throw parse_error(offset, context + "IDX " + msg, name);
    };
    // Truncation is reported at the offset where the data ends, whatever field was cut.
    auto need = [&](std::size_t pos, std::size_t n, const std::string& what) {
        if (pos > size || size - pos < n)
            fail(size, "truncated: " + what + " needs " + std::to_string(n) + " byte(s) at byte " +
                           std::to_string(pos) + ", but the data ends at byte " + std::to_string(size));
    };

    // Magic: 00 00 <type> <rank>. Each byte is checked as soon as it is known to exist.
    for (std::size_t i = 0; i < 2; ++i) {
        need(i, 1, "the magic number");
        if (bytes[i] != 0)
            fail(i, "magic number must start with two zero bytes, found " + hex_byte(bytes[0]) +
                        (size > 1 ? " " + hex_byte(bytes[1]) : std::string()));
    }
    need(2, 1, "the type byte");
    const unsigned type = bytes[2];
    if (type != 0x08) {
        if (const char* type_name = idx_type_name(type))
            throw unsupported_error(name + ": byte 2: " + context + "IDX element type " +
                                    hex_byte(type) + " (" + type_name +
                                    ") is not supported; only 0x08 (unsigned byte) is");
        fail(2, "type byte " + hex_byte(type) +
                    " is not an IDX element type (0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)");
    }
    need(3, 1, "the rank byte");
    const int rank = bytes[3];
    if (rank < 1 || rank > idx_max_rank)
        fail(3, "rank " + std::to_string(rank) + " is outside the supported range 1.." +
                    std::to_string(idx_max_rank));
    if (expect.rank != 0 && rank != expect.rank)
        fail(3, std::string("file has rank ") + std::to_string(rank) + " (magic 0x0000080" +
                    std::to_string(rank) + "), but " + expect.what + " need rank " +
                    std::to_string(expect.rank) + " (magic 0x0000080" +
                    std::to_string(expect.rank) + ")");

    // Dimensions: rank big-endian uint32. The product is formed in 64 bits with an overflow check
    // and compared with the bytes actually present before the payload is allocated.
    const std::size_t dims_pos = 4;
    need(dims_pos, 4 * std::size_t(rank), "the " + std::to_string(rank) + " dimension size(s)");
    IdxArray out;
    out.dims.resize(std::size_t(rank));
    bool any_zero = false;
    for (int i = 0; i < rank; ++i) {
        out.dims[std::size_t(i)] = util::load_be32(bytes + dims_pos + 4 * std::size_t(i));
        any_zero = any_zero || out.dims[std::size_t(i)] == 0;
    }
    std::uint64_t count = 1;
    if (any_zero) {
        count = 0;  // an empty array; no overflow is possible whatever the other dims say
    } else {
        for (int i = 0; i < rank; ++i) {
            const auto d = std::uint64_t(out.dims[std::size_t(i)]);
            if (count > std::numeric_limits<std::uint64_t>::max() / d)
                fail(dims_pos + 4 * std::size_t(i),
                     "dimensions " + dims_to_string(out.dims) + " overflow a 64-bit element count");
            count *= d;
        }
    }
    if (count > limits.max_bytes)
        fail(dims_pos, "dimensions " + dims_to_string(out.dims) + " declare " +
                           std::to_string(count) + " payload bytes, more than the limit of " +
                           std::to_string(limits.max_bytes) + " (IdxLimits::max_bytes)");

    const std::size_t payload_pos = dims_pos + 4 * std::size_t(rank);
    const std::size_t available = size - payload_pos;
    if (count > available)
        fail(size, "truncated: dimensions " + dims_to_string(out.dims) + " need " +
                       std::to_string(count) + " payload bytes from byte " +
                       std::to_string(payload_pos) + ", but the data ends at byte " +
                       std::to_string(size));
    if (count < available)
        fail(payload_pos + count, std::to_string(available - count) +
                                      " trailing byte(s) after the payload of dimensions " +
                                      dims_to_string(out.dims));
    out.data.assign(bytes + payload_pos, bytes + size);
    return out;
}

inline IdxArray parse_idx_any(const unsigned char* bytes, std::size_t size, const std::string& name,
                              const IdxLimits& limits, const IdxExpect& expect) {
    if (!is_gzip(bytes, size)) return parse_idx_raw(bytes, size, name, limits, expect, "");
    const std::vector<std::uint8_t> raw = gunzip(bytes, size, name, limits.max_bytes);
    return parse_idx_raw(raw.data(), raw.size(), name, limits, expect, "gunzipped data: ");
}

inline void check_labels(const IdxArray& labels, int num_classes, const std::string& name,
                         std::size_t payload_offset, const std::string& context) {
    for (std::size_t i = 0; i < labels.data.size(); ++i)
        if (labels.data[i] >= num_classes)
            throw parse_error(payload_offset + i,
                              context + "label " + std::to_string(labels.data[i]) + " of item " +
                                  std::to_string(i) + " is not below num_classes = " +
                                  std::to_string(num_classes),
                              name);
}

inline void check_num_classes(int num_classes) {
    NANOTORCH_CHECK(num_classes >= 1 && num_classes <= 256, value_error,
                    "read_idx_labels: num_classes must be in 1..256 for byte labels, got ",
                    num_classes);
}

inline IdxArray parse_labels(const unsigned char* bytes, std::size_t size, const std::string& name,
                             int num_classes, const IdxLimits& limits) {
    check_num_classes(num_classes);
    IdxArray labels = parse_idx_any(bytes, size, name, limits, IdxExpect{1, "labels"});
    // A rank-1 payload starts at byte 8 of the (possibly decompressed) IDX data.
    check_labels(labels, num_classes, name, 8, is_gzip(bytes, size) ? "gunzipped data: " : "");
    return labels;
}

// ---- file input ----

/// Reads a whole file, refusing to read more than max_bytes. Throws io_error (path + strerror)
/// when it cannot be opened or read, parse_error when it is larger than max_bytes.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path, std::uint64_t max_bytes) {
    errno = 0;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) throw io_error(path, errno ? std::strerror(errno) : "cannot open file");
    std::vector<std::uint8_t> bytes;
    // The size on disk is only a hint (the file may change, or be a pipe): the first read asks for
    // one byte more than it, so a regular file is read in one call into a buffer of its own size
    // (not a zero-filled 1 MiB chunk, which made every small file cost a 1 MiB memset).
    std::error_code ec;
    const std::uintmax_t hint = std::filesystem::file_size(path, ec);
    const std::size_t chunk = std::size_t(1) << 20;
    std::size_t next = !ec && hint < max_bytes ? std::size_t(hint) + 1 : chunk;
    for (;;) {
        // Never ask for more than one byte past the limit, so a huge file costs at most the limit.
        // (bytes.size() <= max_bytes holds here; the +1 is added last so it cannot wrap.)
        const std::uint64_t left = max_bytes - bytes.size();
        const std::size_t want = left < next ? std::size_t(left) + 1 : next;
        next = chunk;
        const std::size_t old = bytes.size();
        bytes.resize(old + want);
        errno = 0;
        const std::size_t got = std::fread(bytes.data() + old, 1, want, file.get());
        bytes.resize(old + got);
        if (std::ferror(file.get()))
            throw io_error(path, errno ? std::strerror(errno) : "read error");
        if (bytes.size() > max_bytes)
            throw parse_error(max_bytes, "file is larger than the limit of " +
                                             std::to_string(max_bytes) + " bytes (IdxLimits::max_bytes)",
                              path);
        if (got < want) return bytes;  // end of file
    }
}

}  // namespace detail

// ---- parse from memory ----

/// Parses IDX bytes of any rank 1..4 (raw, or gzip recognised by its 1F 8B magic).
/// `name_for_errors` is reported as the path in exceptions.
/// Throws parse_error (with byte offset; offsets into gunzipped data say so) for a bad magic,
/// rank or type byte, a dims product that overflows or exceeds limits.max_bytes, truncation
/// (offset = where the data ends), trailing bytes, or any gzip defect; unsupported_error for a valid
/// IDX element type other than 0x08.
inline IdxArray parse_idx(const unsigned char* bytes, std::size_t size,
                          const std::string& name_for_errors, const IdxLimits& limits = {}) {
    return detail::parse_idx_any(bytes, size, name_for_errors, limits, detail::IdxExpect{});
}

/// Like parse_idx, but requires an image file: magic 0x00000803 (rank 3, dims {N, rows, cols}).
inline IdxArray parse_idx_images(const unsigned char* bytes, std::size_t size,
                                 const std::string& name_for_errors, const IdxLimits& limits = {}) {
    return detail::parse_idx_any(bytes, size, name_for_errors, limits,
                                 detail::IdxExpect{3, "images"});
}

/// Like parse_idx, but requires a label file: magic 0x00000801 (rank 1, dims {N}) with every
/// label < num_classes. Throws value_error when num_classes is outside 1..256, parse_error at the
/// offending label's byte offset for an out-of-range label.
inline IdxArray parse_idx_labels(const unsigned char* bytes, std::size_t size,
                                 const std::string& name_for_errors, int num_classes = 10,
                                 const IdxLimits& limits = {}) {
    return detail::parse_labels(bytes, size, name_for_errors, num_classes, limits);
}

// ---- read from a file ----

/// Reads and parses an IDX file (raw or gzip, decided by content). Throws io_error naming the path
/// and the system's reason when the file cannot be opened or read; otherwise as parse_idx.
/// Example: IdxArray a = read_idx("data/mnist/t10k-images-idx3-ubyte");  // dims {10000, 28, 28}
inline IdxArray read_idx(const std::string& path, const IdxLimits& limits = {}) {
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, limits.max_bytes);
    return parse_idx(bytes.data(), bytes.size(), path, limits);
}

/// Reads an image file (magic 0x00000803); throws as read_idx and parse_idx_images.
inline IdxArray read_idx_images(const std::string& path, const IdxLimits& limits = {}) {
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, limits.max_bytes);
    return parse_idx_images(bytes.data(), bytes.size(), path, limits);
}

/// Reads a label file (magic 0x00000801, labels < num_classes); throws as read_idx and
/// parse_idx_labels. num_classes is checked before the file is opened.
/// Example: IdxArray y = read_idx_labels("data/mnist/t10k-labels-idx1-ubyte");  // dims {10000}
inline IdxArray read_idx_labels(const std::string& path, int num_classes = 10,
                                const IdxLimits& limits = {}) {
    detail::check_num_classes(num_classes);
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, limits.max_bytes);
    return parse_idx_labels(bytes.data(), bytes.size(), path, num_classes, limits);
}

}  // namespace nanotorch::data
