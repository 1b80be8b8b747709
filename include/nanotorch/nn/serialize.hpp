// nanotorch/nn/serialize.hpp — save_state_dict / load_state_dict: a module's named parameters
// and buffers in a small, documented binary file.
//
// Format (all integers little-endian; version 1):
//   offset 0   magic   "NTSD"                       4 bytes
//          4   version uint32 = 1
//          8   count   uint32                       number of entries
//   then `count` entries, each:
//              name_len uint32 (1..1024), name bytes (the dotted name, e.g. "conv1.weight")
//              ndim uint32 (0..8), dims int64[ndim] (each >= 0)
//              data float32[numel] (row-major)
//   trailer    crc32   uint32                       CRC-32 of every byte before it
//
// Loading validates every field against the bytes that remain before it allocates anything,
// so a hostile size field is an error, never a huge allocation; errors are parse_error with the
// byte offset and path. StateDictLimits bounds the file size, the entry count and one tensor's
// element count; each can be lowered or raised per call, and an exceeded limit names its field. Names are then matched to the module's own: missing and unexpected
// names are all listed in one error, a shape mismatch names the parameter and both shapes.
// Because matching is by name, weights trained in one Module class load into another class with
// the same parameter names (e.g. a training net -> an inference net that adds a softmax).
#pragma once

#include <filesystem>  // is_directory: a clear error for a directory path
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/util/bytes.hpp>
#include <nanotorch/util/crc32.hpp>
#include <nanotorch/util/file.hpp>

namespace nanotorch::nn {

inline constexpr std::uint32_t state_dict_version = 1;
inline constexpr std::uint32_t state_dict_max_name = 1024;
inline constexpr std::uint32_t state_dict_max_ndim = 8;

/// Bounds for untrusted checkpoint files (decode_state_dict, load_state_dict). The format's own
/// bounds (names of 1..1024 bytes, rank <= 8, every size checked against the bytes present) hold
/// whatever these say; these let a caller refuse big files before reading or decoding them.
/// An exceeded limit is a parse_error (io_error for a file too large to read) naming the field,
/// e.g. "... (StateDictLimits::max_tensor_elements)".
struct StateDictLimits {
    std::uint64_t max_file_bytes = std::uint64_t(1) << 34;       ///< 16 GiB
    std::uint64_t max_entries = std::uint64_t(1) << 20;          ///< named tensors in one file
    std::uint64_t max_tensor_elements = std::uint64_t(1) << 32;  ///< elements of one tensor (16 GiB)
};

/// Parameters then buffers, in registration order, by dotted name.
inline std::vector<std::pair<std::string, Tensor>> state_dict(const Module& m) {
    auto out = m.named_parameters();
    for (auto& b : m.named_buffers()) out.push_back(b);
    return out;
}

/// Serialises named tensors in the format above.
inline std::vector<unsigned char> encode_state_dict(const std::vector<std::pair<std::string, Tensor>>& entries) {
    std::vector<unsigned char> out{'N', 'T', 'S', 'D'};  // magic
    auto put32 = [&](std::uint32_t v) {
        unsigned char b[4];
        util::store_le32(b, v);
        out.insert(out.end(), b, b + 4);
    };
    auto put64 = [&](std::uint64_t v) {
        unsigned char b[8];
        util::store_le64(b, v);
        out.insert(out.end(), b, b + 8);
    };
    put32(state_dict_version);
    put32(static_cast<std::uint32_t>(entries.size()));
    for (const auto& [name, t] : entries) {
        NANOTORCH_CHECK(!name.empty() && name.size() <= state_dict_max_name, value_error, "save_state_dict: name '",
                        name, "' must have 1..", state_dict_max_name, " bytes");
        NANOTORCH_CHECK(t.dim() <= static_cast<std::int64_t>(state_dict_max_ndim), value_error, "save_state_dict: '",
                        name, "' has ", t.dim(), " dimensions (at most ", state_dict_max_ndim, ")");
        put32(static_cast<std::uint32_t>(name.size()));
        out.insert(out.end(), name.begin(), name.end());
        put32(static_cast<std::uint32_t>(t.dim()));
        for (auto d : t.shape()) put64(static_cast<std::uint64_t>(d));
        for (float v : t.to_vector()) put32(util::float_bits(v));
    }
    put32(util::crc32(out.data(), out.size()));
    return out;
}

/// Parses the format above. `path` only labels errors. Throws parse_error (with offset) on
/// malformed bytes or an exceeded limit.
inline std::vector<std::pair<std::string, Tensor>> decode_state_dict(const unsigned char* data, std::size_t size,
                                                                     const std::string& path = {},
                                                                     const StateDictLimits& limits = {}) {
    using ::nanotorch::detail::str_cat;
    if (size > limits.max_file_bytes)
        throw parse_error(0, str_cat("input of ", size, " bytes exceeds the limit of ", limits.max_file_bytes,
                                     " bytes (StateDictLimits::max_file_bytes)"), path);
    std::size_t pos = 0;
    auto need = [&](std::uint64_t n, const char* what) {
        if (n > size - pos)
            throw parse_error(pos, ::nanotorch::detail::str_cat("truncated: ", what, " needs ", n, " bytes, ", size - pos, " left"), path);
    };
    auto get32 = [&](const char* what) {
        need(4, what);
        const std::uint32_t v = util::load_le32(data + pos);
        pos += 4;
        return v;
    };
    need(4, "magic");
    if (std::string(reinterpret_cast<const char*>(data), 4) != "NTSD")
        throw parse_error(0, "not a nanotorch state_dict (magic is not \"NTSD\")", path);
    pos = 4;
    const std::uint32_t version = get32("version");
    if (version != state_dict_version)
        throw parse_error(4, ::nanotorch::detail::str_cat("unsupported state_dict version ", version, " (this build reads ",
                                             state_dict_version, ")"), path);
    const std::size_t count_at = pos;
    const std::uint32_t count = get32("entry count");
    // Each entry takes at least 4 (name_len) + 1 (name) + 4 (ndim) bytes.
    if (count > (size - pos) / 9)
        throw parse_error(count_at, ::nanotorch::detail::str_cat("entry count ", count, " cannot fit in the file"), path);
    if (count > limits.max_entries)
        throw parse_error(count_at, str_cat("entry count ", count, " exceeds the limit of ", limits.max_entries,
                                            " (StateDictLimits::max_entries)"), path);
    std::vector<std::pair<std::string, Tensor>> out;
    std::map<std::string, bool> seen;
    for (std::uint32_t e = 0; e < count; ++e) {
        const std::size_t name_at = pos;
        const std::uint32_t name_len = get32("name length");
        if (name_len == 0 || name_len > state_dict_max_name)
            throw parse_error(name_at, ::nanotorch::detail::str_cat("entry ", e, ": name length ", name_len, " is not in 1..",
                                                       state_dict_max_name), path);
        need(name_len, "name");
        std::string name(reinterpret_cast<const char*>(data + pos), name_len);
        if (seen.count(name)) throw parse_error(pos, "duplicate entry '" + name + "'", path);
        seen[name] = true;
        pos += name_len;
        const std::size_t ndim_at = pos;
        const std::uint32_t ndim = get32("rank");
        if (ndim > state_dict_max_ndim)
            throw parse_error(ndim_at, ::nanotorch::detail::str_cat("'", name, "': rank ", ndim, " exceeds ", state_dict_max_ndim), path);
        Shape shape;
        std::uint64_t numel = 1, nonzero = 1;
        for (std::uint32_t d = 0; d < ndim; ++d) {
            need(8, "dimension");
            const std::uint64_t v = util::load_le64(data + pos);
            // numel * 4 must fit in what is left: check each factor before multiplying.
            if (v > (size - pos) / 4 || (v != 0 && numel > ((size - pos) / 4) / v))
                throw parse_error(pos, ::nanotorch::detail::str_cat("'", name, "': dimension ", d, " = ", v,
                                                       " makes the tensor larger than the file"), path);
            numel *= v;  // cannot overflow: bounded by the file size just above
            if (numel > limits.max_tensor_elements)
                throw parse_error(pos, str_cat("'", name, "': dimensions up to ", d, " hold ", numel,
                                               " elements, more than the limit of ", limits.max_tensor_elements,
                                               " (StateDictLimits::max_tensor_elements)"), path);
            // A 0 dim empties the tensor but not its strides: the other dims must still multiply
            // to something a Tensor can describe, so they are held to the same limit.
            if (v != 0 && nonzero > limits.max_tensor_elements / v)
                throw parse_error(pos, str_cat("'", name, "': the non-zero dimensions up to ", d,
                                               " multiply to more than the limit of ", limits.max_tensor_elements,
                                               " (StateDictLimits::max_tensor_elements)"), path);
            if (v != 0) nonzero *= v;
            shape.push_back(static_cast<std::int64_t>(v));
            pos += 8;
        }
        need(numel * 4, "tensor data");
        Tensor t = empty(shape);
        float* dst = t.data_ptr();
        for (std::uint64_t i = 0; i < numel; ++i) dst[i] = util::bits_float(util::load_le32(data + pos + 4 * i));
        pos += static_cast<std::size_t>(numel * 4);
        out.emplace_back(std::move(name), std::move(t));
    }
    const std::size_t crc_at = pos;
    const std::uint32_t stored = get32("checksum");
    if (pos != size) throw parse_error(pos, ::nanotorch::detail::str_cat(size - pos, " unexpected bytes after the checksum"), path);
    const std::uint32_t actual = util::crc32(data, crc_at);
    if (stored != actual) throw parse_error(crc_at, "checksum mismatch: the file is corrupt", path);
    return out;
}

/// Writes the module's parameters and buffers to `path` atomically (util::write_file_atomic).
/// Throws io_error when the file cannot be written.
inline void save_state_dict(const Module& module, const std::string& path) {
    const std::vector<unsigned char> bytes = encode_state_dict(state_dict(module));
    util::write_file_atomic(path, bytes.data(), bytes.size());
}

/// The checks load_state_dict makes before it changes anything, without loading: with
/// `strict`, the names must match (value_error listing every missing and unexpected name); a
/// tensor whose name matches must have the module's shape (shape_error naming it).
inline void check_state_dict(const Module& module, const std::vector<std::pair<std::string, Tensor>>& entries,
                             bool strict = true, const std::string& source = "state_dict") {
    auto own = state_dict(module);
    std::map<std::string, const Tensor*> given;
    for (auto& e : entries) given[e.first] = &e.second;
    std::vector<std::string> missing, unexpected;
    std::map<std::string, bool> known;
    for (auto& o : own) {
        known[o.first] = true;
        if (!given.count(o.first)) missing.push_back(o.first);
    }
    for (auto& e : entries)
        if (!known.count(e.first)) unexpected.push_back(e.first);
    if (strict && (!missing.empty() || !unexpected.empty())) {
        std::string msg = source + ": parameter names do not match the module";
        auto list = [](const std::vector<std::string>& v) {
            std::string s;
            for (auto& n : v) s += (s.empty() ? "" : ", ") + n;
            return s;
        };
        if (!missing.empty()) msg += "; missing: " + list(missing);
        if (!unexpected.empty()) msg += "; unexpected: " + list(unexpected);
        throw value_error(msg);
    }
    for (auto& o : own) {  // check every shape before changing anything
        auto it = given.find(o.first);
        if (it == given.end()) continue;
        NANOTORCH_CHECK(it->second->shape() == o.second.shape(), shape_error, source, ": '", o.first, "' has shape ",
                        shape_str(it->second->shape()), " in the file but ", shape_str(o.second.shape()),
                        " in the module");
    }
}

/// Copies named tensors into the module's parameters/buffers (in place, so optimizers and
/// other handles see the new values). With `strict`, missing and unexpected names are an error.
/// @throws as check_state_dict, before anything is copied.
inline void load_state_dict(Module& module, const std::vector<std::pair<std::string, Tensor>>& entries,
                            bool strict = true, const std::string& source = "state_dict") {
    check_state_dict(module, entries, strict, source);
    auto own = state_dict(module);
    std::map<std::string, const Tensor*> given;
    for (auto& e : entries) given[e.first] = &e.second;
    NoGradGuard ng;
    for (auto& o : own) {
        auto it = given.find(o.first);
        if (it != given.end()) o.second.copy_(*it->second);
    }
}

namespace detail {

/// The bytes of `path`, refused before reading when larger than `max_bytes` (io_error naming
/// `limit_name`); `kind` names what the file should be ("state_dict", "checkpoint").
inline std::vector<unsigned char> read_bounded_file(const std::string& path, std::uint64_t max_bytes,
                                                    const char* kind, const char* limit_name) {
    // A directory opens as a stream on Linux and reports a bogus size (ext4: 2^63 - 1), which
    // would surface as a misleading "larger than 16 GiB"; say what is actually wrong.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw io_error(path, ::nanotorch::detail::str_cat("is a directory, not a ", kind, " file"));
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) throw io_error(path, "cannot open for reading");
    const std::streamoff size = f.tellg();
    if (size < 0) throw io_error(path, "cannot determine the file size");
    if (static_cast<std::uint64_t>(size) > max_bytes)
        throw io_error(path, ::nanotorch::detail::str_cat("file of ", size, " bytes exceeds the limit of ", max_bytes,
                                                          " bytes (", limit_name, ")"));
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    f.seekg(0);
    if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size)) throw io_error(path, "read failed");
    return bytes;
}

}  // namespace detail

/// Reads `path` (written by save_state_dict) into the module. Throws io_error (also for a file
/// larger than limits.max_file_bytes), parse_error, value_error (names) or shape_error (shapes);
/// on any error the module is left unchanged.
inline void load_state_dict(Module& module, const std::string& path, bool strict = true,
                            const StateDictLimits& limits = {}) {
    const std::vector<unsigned char> bytes =
        detail::read_bounded_file(path, limits.max_file_bytes, "state_dict", "StateDictLimits::max_file_bytes");
    load_state_dict(module, decode_state_dict(bytes.data(), bytes.size(), path, limits), strict, path);
}

}  // namespace nanotorch::nn
