// nanotorch/onnx/tensor_data.hpp — the contents of a TensorProto: data types, payload checks and
// typed access.
//
// Provides tensor_to_floats / tensor_to_doubles / tensor_to_int64s (FLOAT/DOUBLE and the integer
// types, from raw_data or the typed field onnx.proto assigns to each type), make_float_tensor /
// make_double_tensor / make_int64_tensor / make_integer_tensor (little-endian raw_data), and, in detail, the check the decoder applies to every tensor: the
// payload of a known data type must be exactly its dims' worth of elements, in raw_data or in the
// one typed field for that type, and dims may not declare more than a limit of elements.
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>
#include <limits>   // unbounded element limit for the typed accessors
#include <string>
#include <utility>  // std::move
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/message_path.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/util/bytes.hpp>

namespace nanotorch::onnx {

namespace detail {

// ---- data types ----

// Bytes per element in raw_data (0 = variable or unknown), and which typed field holds the
// values otherwise (onnx.proto's comments on each *_data field), with values per element.
enum class Storage { unknown, float_data, int32_data, string_data, int64_data, double_data,
                     uint64_data };
struct TypeInfo {
    const char* name;
    std::size_t size;
    Storage storage;
    std::size_t per_element;
};

inline TypeInfo type_info(std::int32_t dt) {
    switch (dt) {
        case 1: return {"FLOAT", 4, Storage::float_data, 1};
        case 2: return {"UINT8", 1, Storage::int32_data, 1};
        case 3: return {"INT8", 1, Storage::int32_data, 1};
        case 4: return {"UINT16", 2, Storage::int32_data, 1};
        case 5: return {"INT16", 2, Storage::int32_data, 1};
        case 6: return {"INT32", 4, Storage::int32_data, 1};
        case 7: return {"INT64", 8, Storage::int64_data, 1};
        case 8: return {"STRING", 0, Storage::string_data, 1};
        case 9: return {"BOOL", 1, Storage::int32_data, 1};
        case 10: return {"FLOAT16", 2, Storage::int32_data, 1};
        case 11: return {"DOUBLE", 8, Storage::double_data, 1};
        case 12: return {"UINT32", 4, Storage::uint64_data, 1};
        case 13: return {"UINT64", 8, Storage::uint64_data, 1};
        case 14: return {"COMPLEX64", 8, Storage::float_data, 2};
        case 15: return {"COMPLEX128", 16, Storage::double_data, 2};
        case 16: return {"BFLOAT16", 2, Storage::int32_data, 1};
        default: return {"unknown", 0, Storage::unknown, 0};
    }
}

inline std::string dims_text(const std::vector<std::int64_t>& dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += str_cat(i ? ", " : "", dims[i]);
    return s + "]";
}

// ---- tensor payload checks ----

// Product of dims; each must be >= 0 and the product <= max_elements (checked without overflow).
// The product of the non-zero dims is held to the same limit: a tensor with a 0 dim is empty, but
// [0, 2^40, 2^40] would still overflow the int64 strides of any Tensor made from it.
inline std::uint64_t checked_numel(const TensorProto& t, std::uint64_t max_elements,
                                   std::uint64_t offset, const Path& p) {
    std::uint64_t n = 1, nonzero = 1;
    for (const std::int64_t d : t.dims) {
        if (d < 0)
            fail(offset, p, str_cat("tensor '", t.name, "': negative dim in ", dims_text(t.dims)));
        const auto u = static_cast<std::uint64_t>(d);
        if (u != 0 && nonzero > max_elements / u)
            fail(offset, p, str_cat("tensor '", t.name, "': dims ", dims_text(t.dims),
                                    " hold more than the limit of ", max_elements,
                                    " elements; a 0 dim does not exempt the others"
                                    " (Limits::max_tensor_elements)"));
        if (u != 0) nonzero *= u;
        n *= u;
    }
    if (n > max_elements || nonzero > max_elements)
        fail(offset, p, str_cat("tensor '", t.name, "': dims ", dims_text(t.dims), " hold ", n,
                                " elements, more than the limit of ", max_elements,
                                " (Limits::max_tensor_elements)"));
    return n;
}

// The number of values held in typed field s.
inline std::size_t stored_count(const TensorProto& t, Storage s) {
    switch (s) {
        case Storage::float_data: return t.float_data.size();
        case Storage::int32_data: return t.int32_data.size();
        case Storage::string_data: return t.string_data.size();
        case Storage::int64_data: return t.int64_data.size();
        case Storage::double_data: return t.double_data.size();
        case Storage::uint64_data: return t.uint64_data.size();
        default: return 0;
    }
}

// The payload of a known data type must be exactly numel elements, in raw_data or in the one
// typed field onnx.proto assigns to that type; unknown types are carried through unchecked
// (beyond the element limit). Returns numel.
inline std::uint64_t check_payload(const TensorProto& t, std::uint64_t max_elements,
                                   std::uint64_t offset, const Path& p) {
    const std::uint64_t numel = checked_numel(t, max_elements, offset, p);
    const TypeInfo info = type_info(t.data_type);
    if (info.storage == Storage::unknown) return numel;
    const char* names[] = {"", "float_data", "int32_data", "string_data", "int64_data",
                           "double_data", "uint64_data"};
    for (int s = 1; s <= 6; ++s) {
        const auto st = static_cast<Storage>(s);
        const bool allowed = st == info.storage && t.raw_data.empty();
        if (!allowed && stored_count(t, st) != 0)
            fail(offset, p, str_cat("tensor '", t.name, "' of type ", info.name, " has values in ",
                                    names[s], t.raw_data.empty() ? "" : " as well as raw_data",
                                    ", which cannot hold them"));
    }
    if (!t.raw_data.empty()) {
        if (info.storage == Storage::string_data)
            fail(offset, p, str_cat("tensor '", t.name, "' of type STRING uses raw_data"));
        const std::uint64_t have = t.raw_data.size();
        if (have % info.size != 0 || have / info.size != numel)
            fail(offset, p, str_cat("tensor '", t.name, "': raw_data holds ", have,
                                    " bytes, but dims ", dims_text(t.dims), " of ", info.name,
                                    " need ", numel, " x ", info.size));
    } else {
        const std::uint64_t have = stored_count(t, info.storage);
        if (have % info.per_element != 0 || have / info.per_element != numel)
            fail(offset, p, str_cat("tensor '", t.name, "': ", names[int(info.storage)], " holds ",
                                    have, " values, but dims ", dims_text(t.dims), " of ",
                                    info.name, " need ", numel * info.per_element));
    }
    return numel;
}

}  // namespace detail

// ---- typed tensor access ----

namespace detail {
// Element i of raw_data as a `size`-byte little-endian value, optionally sign-extended.
inline std::uint64_t raw_element(const TensorProto& t, std::size_t i, std::size_t size,
                                 bool is_signed) {
    const auto* p = reinterpret_cast<const unsigned char*>(t.raw_data.data()) + size * i;
    std::uint64_t v = 0;
    for (std::size_t b = 0; b < size; ++b) v |= std::uint64_t(p[b]) << (8 * b);
    const std::uint64_t sign = std::uint64_t(1) << (8 * size - 1);
    return is_signed && (v & sign) ? v | ~(sign | (sign - 1)) : v;
}

// check_payload without an element limit (the data is already in memory): the element count.
inline std::size_t checked_count(const TensorProto& t) {
    return static_cast<std::size_t>(check_payload(t, std::numeric_limits<std::uint64_t>::max(),
                                                  0, Path{nullptr, "TensorProto"}));
}

[[noreturn]] inline void unsupported_type(const TensorProto& t, const char* fn, const char* wants) {
    throw unsupported_error(str_cat("tensor '", t.name, "': ", fn, " reads ", wants,
                                    ", not data_type ", t.data_type, " (",
                                    type_info(t.data_type).name, ")"));
}
}  // namespace detail

/// The elements of a FLOAT or DOUBLE tensor (DOUBLE rounded to float), from raw_data
/// (little-endian) or float_data / double_data.
/// @throws unsupported_error for any other data type; parse_error (offset 0) if the payload
///         does not match dims. Both name the tensor.
inline std::vector<float> tensor_to_floats(const TensorProto& t) {
    const bool is_double = t.data_type == static_cast<std::int32_t>(DataType::float64);
    if (!is_double && t.data_type != static_cast<std::int32_t>(DataType::float32))
        detail::unsupported_type(t, "tensor_to_floats", "FLOAT or DOUBLE");
    const std::size_t n = detail::checked_count(t);
    const bool raw = !t.raw_data.empty();
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (is_double)
            out[i] = static_cast<float>(
                raw ? util::bits_double(detail::raw_element(t, i, 8, false)) : t.double_data[i]);
        else
            out[i] = raw ? util::bits_float(static_cast<std::uint32_t>(
                               detail::raw_element(t, i, 4, false)))
                         : t.float_data[i];
    }
    return out;
}

/// The elements of a FLOAT or DOUBLE tensor as doubles (FLOAT widened exactly), from raw_data
/// (little-endian) or float_data / double_data: how the runtime reads DOUBLE values without
/// rounding them to float.
/// @throws as tensor_to_floats.
inline std::vector<double> tensor_to_doubles(const TensorProto& t) {
    if (t.data_type == static_cast<std::int32_t>(DataType::float32)) {
        const std::vector<float> f = tensor_to_floats(t);
        return std::vector<double>(f.begin(), f.end());
    }
    if (t.data_type != static_cast<std::int32_t>(DataType::float64))
        detail::unsupported_type(t, "tensor_to_doubles", "FLOAT or DOUBLE");
    const std::size_t n = detail::checked_count(t);
    std::vector<double> out(n);
    for (std::size_t i = 0; i < n; ++i)
        out[i] = t.raw_data.empty() ? t.double_data[i] : util::bits_double(detail::raw_element(t, i, 8, false));
    return out;
}

/// The elements of an INT64, INT32, INT16, INT8, UINT32, UINT16, UINT8 or BOOL tensor, widened
/// to int64, from raw_data (little-endian) or the typed field onnx.proto assigns to the type.
/// @throws unsupported_error for any other data type; parse_error (offset 0) if the payload
///         does not match dims. Both name the tensor.
inline std::vector<std::int64_t> tensor_to_int64s(const TensorProto& t) {
    const auto dt = static_cast<DataType>(t.data_type);
    bool is_signed = false;
    switch (dt) {
        case DataType::int64: case DataType::int32: case DataType::int16: case DataType::int8:
            is_signed = true;
            break;
        case DataType::uint32: case DataType::uint16: case DataType::uint8: case DataType::boolean:
            break;
        default: detail::unsupported_type(t, "tensor_to_int64s", "integer or BOOL tensors");
    }
    const std::size_t n = detail::checked_count(t), size = detail::type_info(t.data_type).size;
    std::vector<std::int64_t> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (!t.raw_data.empty())
            out[i] = static_cast<std::int64_t>(detail::raw_element(t, i, size, is_signed));
        else if (dt == DataType::int64)
            out[i] = t.int64_data[i];
        else if (dt == DataType::uint32)
            out[i] = static_cast<std::int64_t>(t.uint64_data[i]);
        else
            out[i] = t.int32_data[i];
    }
    return out;
}

namespace detail {
// prod(dims) elements of data, stored little-endian in raw_data by store(byte pointer, value).
template <class T, class Store>
TensorProto make_raw_tensor(const std::string& name, std::vector<std::int64_t> dims,
                            const T* data, DataType type, Store store) {
    TensorProto t;
    t.name = name;
    t.dims = std::move(dims);
    t.data_type = static_cast<std::int32_t>(type);
    std::size_t n = 1;
    for (const std::int64_t d : t.dims) {
        NANOTORCH_CHECK(d >= 0, value_error, "tensor '", name, "': negative dim in ",
                        dims_text(t.dims));
        NANOTORCH_CHECK(d == 0 || n <= std::numeric_limits<std::size_t>::max() / sizeof(T) /
                                           static_cast<std::uint64_t>(d),
                        value_error, "tensor '", name, "': dims ", dims_text(t.dims),
                        " are too large");
        n *= static_cast<std::size_t>(d);
    }
    NANOTORCH_CHECK(data != nullptr || n == 0, value_error, "tensor '", name, "': null data for ",
                    n, " elements");
    t.raw_data.resize(n * sizeof(T));
    auto* out = reinterpret_cast<unsigned char*>(&t.raw_data[0]);
    for (std::size_t i = 0; i < n; ++i) store(out + sizeof(T) * i, data[i]);
    return t;
}
}  // namespace detail

/// A FLOAT tensor holding data[0, prod(dims)) as little-endian raw_data.
/// @throws value_error on a negative dim, or null data for a non-empty tensor.
inline TensorProto make_float_tensor(const std::string& name, std::vector<std::int64_t> dims,
                                     const float* data) {
    return detail::make_raw_tensor(name, std::move(dims), data, DataType::float32,
                                   [](unsigned char* p, float v) {
                                       util::store_le32(p, util::float_bits(v));
                                   });
}

/// A DOUBLE tensor holding data[0, prod(dims)) as little-endian raw_data.
/// @throws value_error as make_float_tensor.
inline TensorProto make_double_tensor(const std::string& name, std::vector<std::int64_t> dims,
                                      const double* data) {
    return detail::make_raw_tensor(name, std::move(dims), data, DataType::float64,
                                   [](unsigned char* p, double v) {
                                       util::store_le64(p, util::double_bits(v));
                                   });
}

/// A tensor of integer or BOOL type `type` (INT8 ... UINT32, BOOL) holding data[0, prod(dims))
/// narrowed to the type's width, little-endian in raw_data. The values must already be in the
/// type's range (the runtime keeps them so); INT64 is make_int64_tensor.
/// @throws value_error as make_float_tensor, and for a type that is not an integer or BOOL.
inline TensorProto make_integer_tensor(const std::string& name, std::vector<std::int64_t> dims,
                                       const std::int64_t* data, DataType type) {
    const std::size_t size = detail::type_info(static_cast<std::int32_t>(type)).size;
    const bool integer = type == DataType::int8 || type == DataType::uint8 || type == DataType::int16 ||
                         type == DataType::uint16 || type == DataType::int32 || type == DataType::uint32 ||
                         type == DataType::int64 || type == DataType::boolean;
    NANOTORCH_CHECK(integer, value_error, "tensor '", name, "': make_integer_tensor cannot write data_type ",
                    static_cast<int>(type));
    TensorProto t = detail::make_raw_tensor(name, std::move(dims), data, DataType::int64,
                                            [](unsigned char* p, std::int64_t v) {
                                                util::store_le64(p, static_cast<std::uint64_t>(v));
                                            });
    t.data_type = static_cast<std::int32_t>(type);
    std::string narrow(t.raw_data.size() / 8 * size, '\0');
    for (std::size_t i = 0; i < t.raw_data.size() / 8; ++i)  // little-endian: the low bytes come first
        for (std::size_t b = 0; b < size; ++b) narrow[i * size + b] = t.raw_data[i * 8 + b];
    t.raw_data = std::move(narrow);
    return t;
}

/// An INT64 tensor holding data[0, prod(dims)) as little-endian raw_data.
/// @throws value_error as make_float_tensor.
inline TensorProto make_int64_tensor(const std::string& name, std::vector<std::int64_t> dims,
                                     const std::int64_t* data) {
    return detail::make_raw_tensor(name, std::move(dims), data, DataType::int64,
                                   [](unsigned char* p, std::int64_t v) {
                                       util::store_le64(p, static_cast<std::uint64_t>(v));
                                   });
}

}  // namespace nanotorch::onnx
