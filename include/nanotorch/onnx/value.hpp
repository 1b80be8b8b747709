// nanotorch/onnx/value.hpp — the ONNX runtime's value: one tensor of any element type the runtime
// computes with, and its conversion from and to TensorProto.
//
// Design. nanotorch's Tensor (training, autograd, kernels) is float32 only, and stays so. Graphs
// written by exporters also carry shape arithmetic (int64), masks (BOOL), indices (INT32/INT64),
// DOUBLE constants and UINT8/INT8 data, so the runtime's Value holds exactly one of three
// storages, chosen by its element type:
//   FLOAT                                -> `f`, a nanotorch Tensor: every float op is nanotorch's
//                                           own op, exactly as in training (one op, one place);
//   DOUBLE                               -> `d`, row-major std::vector<double>;
//   INT8..INT64, UINT8..UINT32 and BOOL  -> `i`, row-major std::vector<int64_t> widened exactly
//                                           (`is_int`); `type` remembers the width, and integer
//                                           results are wrapped back to it (two's complement,
//                                           as the ONNX reference's NumPy does), BOOL is 0/1.
// DOUBLE and the integer types only flow through the runtime-only ops of onnx/ops_typed.hpp
// (Cast, comparisons, logic, Where, shape arithmetic, layout, variadic Max/Min/Sum, ...): the
// float math ops refuse them with an error naming the type. UINT64 (values above 2^63), FLOAT16,
// BFLOAT16, STRING and complex types are not represented; the runtime refuses them at load.
// Deliberately absent: arithmetic (onnx/ops_typed.hpp), graphs (onnx/runtime.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/shape.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/proto.hpp>  // tensor_to_floats / tensor_to_doubles / tensor_to_int64s

namespace nanotorch::onnx {

// ---- element types ----

/// True for the element types a Value can hold (see the file comment).
inline bool runtime_type(std::int32_t t) {
    switch (static_cast<DataType>(t)) {
        case DataType::float32: case DataType::float64: case DataType::int64: case DataType::int32:
        case DataType::int16: case DataType::int8: case DataType::uint32: case DataType::uint16:
        case DataType::uint8: case DataType::boolean:
            return true;
        default:
            return false;
    }
}

/// True for the types held in Value::i (integers and BOOL).
inline bool integer_type(DataType t) {
    return runtime_type(static_cast<std::int32_t>(t)) && t != DataType::float32 && t != DataType::float64;
}

/// `v` wrapped into the range of integer type `t` (two's complement; BOOL: v != 0).
inline std::int64_t wrap_to(DataType t, std::int64_t v) {
    switch (t) {
        case DataType::boolean: return v != 0;
        case DataType::int8: return static_cast<std::int8_t>(static_cast<std::uint8_t>(v));
        case DataType::uint8: return static_cast<std::uint8_t>(v);
        case DataType::int16: return static_cast<std::int16_t>(static_cast<std::uint16_t>(v));
        case DataType::uint16: return static_cast<std::uint16_t>(v);
        case DataType::int32: return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
        case DataType::uint32: return static_cast<std::uint32_t>(v);
        default: return v;
    }
}

/// "FLOAT", "INT64", "UINT8", ... for TensorProto.DataType numbers (error messages, skip lists).
inline std::string dtype_name(std::int32_t t) {
    static const char* const names[] = {"UNDEFINED", "FLOAT",  "UINT8",  "INT8",   "UINT16",    "INT16",
                                        "INT32",     "INT64",  "STRING", "BOOL",   "FLOAT16",   "DOUBLE",
                                        "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    if (t >= 0 && t < static_cast<std::int32_t>(sizeof(names) / sizeof(names[0]))) return names[t];
    return "type " + std::to_string(t);
}
inline std::string dtype_name(DataType t) { return dtype_name(static_cast<std::int32_t>(t)); }

// ---- Value ----

/// One runtime value (see the file comment). `shape` always holds the value's shape (for a FLOAT
/// value it equals f.shape()).
struct Value {
    Tensor f;                     // FLOAT
    std::vector<std::int64_t> i;  // integer types and BOOL (is_int)
    std::vector<double> d;        // DOUBLE
    Shape shape;
    bool is_int = false;
    DataType type = DataType::float32;

    static Value of(Tensor t) {
        Value v;
        v.shape = t.shape();
        v.f = std::move(t);
        return v;
    }
    /// An integer or BOOL value; `data` must be in the range of `type` (wrap_to).
    /// Throws shape_error when `data` does not fill `shape`, value_error for a non-integer type.
    static Value of_ints(std::vector<std::int64_t> data, Shape shape, DataType type = DataType::int64) {
        NANOTORCH_CHECK(shape_numel(shape) == static_cast<std::int64_t>(data.size()), shape_error, dtype_name(type),
                        " value: ", data.size(), " elements do not fill shape ", shape_str(shape));
        NANOTORCH_CHECK(integer_type(type), value_error, "of_ints: ", dtype_name(type), " is not an integer type");
        Value v;
        v.i = std::move(data);
        v.shape = std::move(shape);
        v.is_int = true;
        v.type = type;
        return v;
    }
    /// A DOUBLE value. Throws shape_error when `data` does not fill `shape`.
    static Value of_doubles(std::vector<double> data, Shape shape) {
        NANOTORCH_CHECK(shape_numel(shape) == static_cast<std::int64_t>(data.size()), shape_error, "DOUBLE value: ",
                        data.size(), " elements do not fill shape ", shape_str(shape));
        Value v;
        v.d = std::move(data);
        v.shape = std::move(shape);
        v.type = DataType::float64;
        return v;
    }
    bool is_float() const { return type == DataType::float32; }
    bool is_double() const { return type == DataType::float64; }
    std::int64_t numel() const { return shape_numel(shape); }
    /// The value as a float32 tensor (integers convert exactly below 2^24, DOUBLE rounds).
    Tensor to_tensor() const {
        if (is_float()) return f;
        std::vector<float> v = is_int ? std::vector<float>(i.begin(), i.end()) : std::vector<float>(d.begin(), d.end());
        return tensor(v, shape);
    }
    /// Every element as a double (integers exact below 2^53).
    std::vector<double> to_doubles() const {
        if (is_int) return std::vector<double>(i.begin(), i.end());
        if (is_double()) return d;
        const std::vector<float> v = f.to_vector();
        return std::vector<double>(v.begin(), v.end());
    }
};

/// A TensorProto (initializer, Constant, test data) as a Value. Throws unsupported_error for
/// external data or an element type runtime_type() rejects; the codec's errors for bad payloads.
NANOTORCH_ONNX_API Value value_from_proto(const TensorProto& t)
#if !NANOTORCH_ONNX_BODIES
    ;
#else
{
    const std::string what = t.name.empty() ? std::string("tensor") : "tensor '" + t.name + "'";
    NANOTORCH_CHECK(t.data_location != 1, unsupported_error, what, " keeps its data in an external file");
    const Shape shape(t.dims.begin(), t.dims.end());
    const auto type = static_cast<DataType>(t.data_type);
    if (type == DataType::float32) return Value::of(tensor(tensor_to_floats(t), shape));
    if (type == DataType::float64) return Value::of_doubles(tensor_to_doubles(t), shape);
    if (integer_type(type)) return Value::of_ints(tensor_to_int64s(t), shape, type);
    throw unsupported_error(what + " has element type " + dtype_name(t.data_type) +
                            " (the runtime computes with FLOAT, DOUBLE, BOOL and the integer types up to INT64/UINT32)");
}
#endif

/// A Value as a TensorProto of its own element type named `name` (raw_data, little-endian).
NANOTORCH_ONNX_API TensorProto value_to_proto(const std::string& name, const Value& v)
#if !NANOTORCH_ONNX_BODIES
    ;
#else
{
    const std::vector<std::int64_t> dims(v.shape.begin(), v.shape.end());
    if (v.is_int) return make_integer_tensor(name, dims, v.i.data(), v.type);
    if (v.is_double()) return make_double_tensor(name, dims, v.d.data());
    const Tensor c = v.f.contiguous();
    return make_float_tensor(name, dims, c.data_ptr());
}
#endif

}  // namespace nanotorch::onnx
