// nanotorch/data/npy.hpp — a validating reader and a writer for NumPy's .npy array files.
//
// Reads the arrays a Python user saves with numpy.save: format versions 1.0, 2.0 and 3.0, C order,
// little-endian float32 ('<f4') or int64 ('<i8'), any rank up to 8. Every field of the header is
// checked before anything is allocated from it: the magic, the version, the header length against
// the bytes present, the header dict's three keys and nothing else, each dimension, and the
// product of the dimensions (with overflow checks) against the payload, which must be exactly the
// rest of the file. A file that breaks a rule gets a parse_error with the byte offset; a valid
// file in a form not read here (big-endian, Fortran order, float64, object arrays) gets an
// unsupported_error naming the form. Like data/idx.hpp, this layer returns plain vectors and does
// not depend on Tensor.
#pragma once

#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/shape.hpp>  // shape_str, for messages
#include <nanotorch/error.hpp>
#include <nanotorch/util/bytes.hpp>
#include <nanotorch/util/file.hpp>

namespace nanotorch::data {

/// Bounds that protect against hostile or mistaken files.
struct NpyLimits {
    /// Largest file that will be read (1 GiB).
    std::uint64_t max_bytes = std::uint64_t(1) << 30;
};

/// An array read from or written to a .npy file: exactly one of `f` (float32) and `i` (int64)
/// holds the row-major values, per `is_int`; product(shape) == values.
struct NpyArray {
    std::vector<std::int64_t> shape;
    bool is_int = false;
    std::vector<float> f;
    std::vector<std::int64_t> i;

    /// Number of elements (the product of shape; 1 for a 0-d array). Throws nothing.
    std::int64_t numel() const noexcept { return is_int ? std::int64_t(i.size()) : std::int64_t(f.size()); }
};

namespace detail {

inline constexpr std::size_t npy_max_rank = 8;
inline constexpr unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/// A cursor over the header dict text ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
/// reporting errors at file offsets.
class NpyHeader {
public:
    NpyHeader(const unsigned char* text, std::size_t size, std::uint64_t base, const std::string& path)
        : p_(text), n_(size), base_(base), path_(path) {}

    [[noreturn]] void fail(const std::string& what) const { throw parse_error(base_ + k_, "npy header: " + what, path_); }

    void skip_space() {
        while (k_ < n_ && (p_[k_] == ' ' || p_[k_] == '\t' || p_[k_] == '\n' || p_[k_] == '\r')) ++k_;
    }
    bool peek(char c) {
        skip_space();
        return k_ < n_ && p_[k_] == static_cast<unsigned char>(c);
    }
    void expect(char c) {
        if (!peek(c)) fail(std::string("expected '") + c + "'");
        ++k_;
    }
    std::string quoted() {
        skip_space();
        if (k_ >= n_ || (p_[k_] != '\'' && p_[k_] != '"')) fail("expected a quoted string");
        const unsigned char q = p_[k_++];
        std::string s;
        while (k_ < n_ && p_[k_] != q) {
            if (s.size() >= 64) fail("string longer than 64 characters");
            s += static_cast<char>(p_[k_++]);
        }
        if (k_ >= n_) fail("unterminated string");
        ++k_;
        return s;
    }
    std::string word() {
        skip_space();
        std::string s;
        while (k_ < n_ && std::isalpha(p_[k_]) && s.size() < 8) s += static_cast<char>(p_[k_++]);
        if (s.empty()) fail("expected True or False");
        return s;
    }
    std::int64_t integer() {
        skip_space();
        std::int64_t v = 0;
        std::size_t digits = 0;
        while (k_ < n_ && p_[k_] >= '0' && p_[k_] <= '9') {
            if (++digits > 15) fail("dimension has more than 15 digits");
            v = v * 10 + (p_[k_++] - '0');
        }
        if (k_ < n_ && p_[k_] == 'L') ++k_;  // Python 2 longs
        if (digits == 0) fail("expected a non-negative dimension");
        return v;
    }
    bool at_end() {
        skip_space();
        return k_ >= n_;
    }

private:
    const unsigned char* p_;
    std::size_t n_;
    std::size_t k_ = 0;
    std::uint64_t base_;
    const std::string& path_;
};

}  // namespace detail

/// Decodes .npy bytes (see the file comment). path_for_errors only labels errors.
/// @throws parse_error (with the byte offset) for a bad magic, version, header or payload size;
///   unsupported_error for a valid file in another dtype, byte order or Fortran order.
inline NpyArray parse_npy(const unsigned char* data, std::size_t size, const std::string& path_for_errors = {}) {
    const std::string& path = path_for_errors;
    if (size < 10 || std::memcmp(data, detail::npy_magic, 6) != 0)
        throw parse_error(0, "not a .npy file (missing the \\x93NUMPY magic)", path);
    const unsigned major = data[6];
    if (major < 1 || major > 3)
        throw parse_error(6, nanotorch::detail::str_cat("unsupported .npy format version ", major, ".", unsigned(data[7]),
                                     " (1.0, 2.0 and 3.0 are read)"),
                          path);
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    if (size < 8 + len_bytes) throw parse_error(8, "file ends inside the header length", path);
    const std::uint64_t header_len = major == 1 ? (std::uint64_t(data[8]) | (std::uint64_t(data[9]) << 8))
                                                : std::uint64_t(util::load_le32(data + 8));
    const std::uint64_t header_start = 8 + len_bytes;
    if (header_len > size - header_start)
        throw parse_error(8, nanotorch::detail::str_cat("header length ", header_len, " exceeds the ", size - header_start,
                                     " bytes after it"),
                          path);

    detail::NpyHeader h(data + header_start, static_cast<std::size_t>(header_len), header_start, path);
    std::string descr;
    bool fortran = false, have_descr = false, have_order = false, have_shape = false;
    std::vector<std::int64_t> shape;
    h.expect('{');
    while (!h.peek('}')) {
        const std::string key = h.quoted();
        h.expect(':');
        if (key == "descr" && !have_descr) {
            descr = h.quoted();
            have_descr = true;
        } else if (key == "fortran_order" && !have_order) {
            const std::string w = h.word();
            if (w != "True" && w != "False") h.fail("fortran_order must be True or False, got '" + w + "'");
            fortran = w == "True";
            have_order = true;
        } else if (key == "shape" && !have_shape) {
            h.expect('(');
            while (!h.peek(')')) {
                if (shape.size() == detail::npy_max_rank)
                    h.fail(nanotorch::detail::str_cat("more than ", detail::npy_max_rank, " dimensions"));
                shape.push_back(h.integer());
                if (!h.peek(')')) h.expect(',');
            }
            h.expect(')');
            have_shape = true;
        } else {
            h.fail("unexpected or repeated key '" + key + "'");
        }
        if (!h.peek('}')) h.expect(',');
    }
    h.expect('}');
    if (!h.at_end()) h.fail("text after the closing '}'");
    if (!have_descr || !have_order || !have_shape) h.fail("the dict must have 'descr', 'fortran_order' and 'shape'");

    NpyArray a;
    std::size_t elem = 0;
    if (descr == "<f4") elem = 4;
    else if (descr == "<i8") a.is_int = true, elem = 8;
    else
        throw unsupported_error(nanotorch::detail::str_cat(path.empty() ? std::string() : path + ": ", "npy dtype '", descr,
                                        "' is not read (little-endian float32 '<f4' and int64 '<i8' are)"));
    if (fortran)
        throw unsupported_error(nanotorch::detail::str_cat(path.empty() ? std::string() : path + ": ",
                                        "Fortran-order .npy arrays are not read (save with C order)"));

    const std::uint64_t payload_at = header_start + header_len;
    const std::uint64_t payload = size - payload_at;
    std::uint64_t n = 1;
    for (std::int64_t d : shape)
        if (d == 0) n = 0;  // checked first: the other dims may not multiply without overflow
    if (n != 0)
        for (std::int64_t d : shape) {
            if (std::uint64_t(d) > payload / elem / n)
                throw parse_error(payload_at, nanotorch::detail::str_cat("shape ", shape_str(shape), " needs more than the ", payload,
                                                      " payload bytes present"),
                                  path);
            n *= std::uint64_t(d);
        }
    if (n * elem != payload)
        throw parse_error(payload_at, nanotorch::detail::str_cat("shape ", shape_str(shape), " of ", descr, " needs ", n * elem,
                                              " payload bytes, the file has ", payload),
                          path);
    a.shape = shape;
    const unsigned char* p = data + payload_at;
    if (a.is_int) {
        a.i.resize(static_cast<std::size_t>(n));
        for (std::size_t k = 0; k < a.i.size(); ++k) a.i[k] = static_cast<std::int64_t>(util::load_le64(p + 8 * k));
    } else {
        a.f.resize(static_cast<std::size_t>(n));
        for (std::size_t k = 0; k < a.f.size(); ++k) a.f[k] = util::bits_float(util::load_le32(p + 4 * k));
    }
    return a;
}

/// Reads a .npy file. @throws io_error naming the path when it cannot be read or exceeds
///   limits.max_bytes (NpyLimits::max_bytes); otherwise as parse_npy.
inline NpyArray read_npy(const std::string& path, const NpyLimits& limits = {}) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        throw io_error(path, ec ? "cannot access: " + ec.message() : "not a regular file");
    const std::uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) throw io_error(path, "cannot get the file size: " + ec.message());
    if (size > limits.max_bytes)
        throw io_error(path, nanotorch::detail::str_cat("file of ", size, " bytes exceeds the limit of ", limits.max_bytes,
                                     " bytes (NpyLimits::max_bytes)"));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(path, "cannot open for reading");
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    if (static_cast<std::uint64_t>(in.gcount()) != size) throw io_error(path, nanotorch::detail::str_cat("read ", in.gcount(), " of ", size, " bytes"));
    return parse_npy(bytes.data(), bytes.size(), path);
}

/// The .npy bytes (format 1.0, C order, '<f4' or '<i8') of `a`, which numpy.load reads.
/// @throws value_error when the values do not match the shape's product or the rank exceeds 8.
inline std::vector<unsigned char> encode_npy(const NpyArray& a) {
    NANOTORCH_CHECK(a.shape.size() <= detail::npy_max_rank, value_error, "encode_npy: rank ", a.shape.size(),
                    " exceeds ", detail::npy_max_rank);
    // The product of the dims, with any 0 checked first: the others may not multiply without
    // overflow (a parsed (huge, huge, 0) is a valid empty array).
    std::int64_t n = 1;
    for (std::int64_t d : a.shape) {
        NANOTORCH_CHECK(d >= 0, value_error, "encode_npy: negative dimension in ", shape_str(a.shape));
        if (d == 0) n = 0;
    }
    for (std::int64_t d : a.shape) {
        if (n == 0) break;
        NANOTORCH_CHECK(n <= std::numeric_limits<std::int64_t>::max() / d, value_error, "encode_npy: shape ",
                        shape_str(a.shape), " has more elements than int64 can count");
        n *= d;
    }
    NANOTORCH_CHECK(n == a.numel(), value_error, "encode_npy: shape ", shape_str(a.shape), " holds ", n,
                    " values but the array has ", a.numel());
    std::string dims;
    for (std::size_t k = 0; k < a.shape.size(); ++k) dims += (k ? ", " : "") + std::to_string(a.shape[k]);
    if (a.shape.size() == 1) dims += ',';  // Python's one-element tuple: (4,)
    std::string dict = std::string("{'descr': '") + (a.is_int ? "<i8" : "<f4") + "', 'fortran_order': False, 'shape': (" +
                       dims + "), }";
    std::size_t total = 10 + dict.size() + 1;            // magic, version, length, dict, '\n'
    const std::size_t pad = (64 - total % 64) % 64;      // the payload starts 64-byte aligned
    dict.append(pad, ' ');
    dict += '\n';
    std::vector<unsigned char> out(10 + dict.size() + static_cast<std::size_t>(n) * (a.is_int ? 8 : 4));
    std::memcpy(out.data(), detail::npy_magic, 6);
    out[6] = 1;
    out[7] = 0;
    out[8] = static_cast<unsigned char>(dict.size() & 0xFF);
    out[9] = static_cast<unsigned char>(dict.size() >> 8);
    std::memcpy(out.data() + 10, dict.data(), dict.size());
    unsigned char* p = out.data() + 10 + dict.size();
    if (a.is_int)
        for (std::size_t k = 0; k < a.i.size(); ++k) util::store_le64(p + 8 * k, static_cast<std::uint64_t>(a.i[k]));
    else
        for (std::size_t k = 0; k < a.f.size(); ++k) util::store_le32(p + 4 * k, util::float_bits(a.f[k]));
    return out;
}

/// Writes `a` as a .npy file, atomically. @throws value_error as encode_npy; io_error on failure.
inline void write_npy(const NpyArray& a, const std::string& path) {
    const std::vector<unsigned char> bytes = encode_npy(a);
    util::write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace nanotorch::data
