// nanotorch/onnx/op_types.hpp — the element types an ONNX graph's values have, known at load:
// what each operator accepts (any runtime type, FLOAT or DOUBLE, or FLOAT only) and what it
// produces, so that the runtime can refuse, before running anything, a node whose input has a
// type that operator does not take (a MaxPool on UINT8, a Relu on INT8) and name it with every
// other problem of the model.
//
// Types flow from the graph inputs' and initializers' declared types through each node in order;
// a value whose type cannot be known statically (an input without a type) is left unknown and not
// checked here (the operator still refuses it at run time, with an unsupported_error naming the
// node). Deliberately absent: shapes (the runtime checks them per run).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/ops_support.hpp>
#include <nanotorch/onnx/ops_typed.hpp>  // cast_target
#include <nanotorch/onnx/value.hpp>

namespace nanotorch::onnx::rt_detail {

/// What input 0 of an operator may be.
enum class Accepts { any, floating, float32 };

inline Accepts accepted_types(const std::string& op, std::int64_t opset) {
    if (op == "Clip" && opset < 11) return Accepts::float32;  // Clip-1..6's bounds are float attributes
    static const std::set<std::string> any = {
        "Abs", "Add", "And", "ArgMax", "ArgMin", "Cast", "CastLike", "Clip", "Concat", "Constant", "ConstantOfShape", "Div",
        "Dropout", "Equal", "Expand", "Flatten", "Gather", "Greater", "GreaterOrEqual", "Identity", "Less",
        "LessOrEqual", "Max", "Min", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "Range", "Reshape", "Shape", "Sign",
        "Size", "Slice", "Split", "Squeeze", "Sub", "Sum", "Tile", "Transpose", "Trilu", "Unsqueeze", "Where", "Xor"};
    static const std::set<std::string> floating = {
        "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Celu", "Cos", "Cosh", "Floor", "IsInf", "IsNaN",
        "Mean", "Reciprocal", "Round", "Shrink", "Sin", "Sinh", "Softsign", "Tan", "ThresholdedRelu"};
    if (any.count(op)) return Accepts::any;
    return floating.count(op) ? Accepts::floating : Accepts::float32;
}

/// The element type of every output of node n, given its inputs' types (undefined = unknown).
inline DataType output_type(const NodeProto& n, std::int64_t opset, const std::vector<DataType>& in) {
    const std::string& op = n.op_type;
    auto input = [&](std::size_t k) { return k < in.size() ? in[k] : DataType::undefined; };
    if (op == "Shape" || op == "Size" || op == "ArgMax" || op == "ArgMin") return DataType::int64;
    if (op == "Equal" || op == "Less" || op == "Greater" || op == "LessOrEqual" || op == "GreaterOrEqual" ||
        op == "And" || op == "Or" || op == "Xor" || op == "Not" || op == "IsNaN" || op == "IsInf")
        return DataType::boolean;
    if (op == "CastLike" || op == "Where") return input(1);
    if (op == "Cast") {
        try {
            return cast_target(n, opset);
        } catch (const error&) {
            return DataType::undefined;  // the node's own check reports it
        }
    }
    if (op == "Constant" || op == "ConstantOfShape") {
        if (const AttributeProto* v = find_attr(n, "value"))
            return v->t.size() == 1 ? static_cast<DataType>(v->t[0].data_type) : DataType::undefined;
        if (find_attr(n, "value_int") || find_attr(n, "value_ints")) return DataType::int64;
        return DataType::float32;
    }
    return input(0);
}

/// The element type of output #k of node n (MaxPool's Indices are INT64, every other output has
/// the type output_type() gives).
inline DataType output_type(const NodeProto& n, std::int64_t opset, const std::vector<DataType>& in, std::size_t k) {
    if (n.op_type == "MaxPool" && k == 1) return DataType::int64;
    return output_type(n, opset, in);
}

/// "" when node n can take an input 0 of type `t`, else the reason.
inline std::string check_input_type(const NodeProto& n, std::int64_t opset, DataType t) {
    if (t == DataType::undefined || n.input.empty()) return "";
    const Accepts a = accepted_types(n.op_type, opset);
    if (a == Accepts::any || t == DataType::float32 || (a == Accepts::floating && t == DataType::float64)) return "";
    return n.op_type + " on " + dtype_name(t) + " input '" + n.input[0] + "' (nanotorch runs it on " +
           (a == Accepts::floating ? "FLOAT and DOUBLE" : "FLOAT") + " only)";
}

}  // namespace nanotorch::onnx::rt_detail
