// nanotorch/onnx/schema.hpp — the field numbers of the onnx.proto messages nanotorch reads and
// writes, as constants, and nothing else.
//
// Every number was checked against the onnx.proto (proto2) that ships with python3-onnx 1.12
// (onnx/onnx.proto); STYLE.md Appendix A lists the same numbers with their tag bytes. Fields of
// those messages that nanotorch does not model are listed too (commented as "skipped") so that a
// reader of proto.hpp can see they are skipped on purpose. No logic, no wire types, no enums: the
// DataType / AttributeType enums live in onnx/model.hpp, the wire format in onnx/wire.hpp.
#pragma once

#include <cstdint>  // std::uint32_t field numbers

namespace nanotorch::onnx::field {

// ---- ModelProto ----
namespace model {
constexpr std::uint32_t ir_version = 1, producer_name = 2, producer_version = 3, domain = 4,
                        model_version = 5, doc_string = 6, graph = 7, opset_import = 8,
                        metadata_props = 14,
                        training_info = 20, functions = 25;  // skipped
}  // namespace model

// ---- OperatorSetIdProto ----
namespace opset {
constexpr std::uint32_t domain = 1, version = 2;
}

// ---- StringStringEntryProto ----
namespace string_entry {
constexpr std::uint32_t key = 1, value = 2;
}

// ---- GraphProto (3, 4 and 6-9 are reserved) ----
namespace graph {
constexpr std::uint32_t node = 1, name = 2, initializer = 5, doc_string = 10, input = 11,
                        output = 12, value_info = 13,
                        quantization_annotation = 14, sparse_initializer = 15;  // skipped
}  // namespace graph

// ---- NodeProto ----
namespace node {
constexpr std::uint32_t input = 1, output = 2, name = 3, op_type = 4, attribute = 5,
                        doc_string = 6, domain = 7;
}

// ---- AttributeProto ----
namespace attribute {
constexpr std::uint32_t name = 1, f = 2, i = 3, s = 4, t = 5, g = 6, floats = 7, ints = 8,
                        strings = 9, tensors = 10, graphs = 11, doc_string = 13, type = 20,
                        ref_attr_name = 21,
                        tp = 14, type_protos = 15, sparse_tensor = 22,  // skipped
                        sparse_tensors = 23;                            // skipped
}  // namespace attribute

// ---- TensorProto ----
namespace tensor {
constexpr std::uint32_t dims = 1, data_type = 2, float_data = 4, int32_data = 5, string_data = 6,
                        int64_data = 7, name = 8, raw_data = 9, double_data = 10,
                        uint64_data = 11, doc_string = 12, external_data = 13, data_location = 14,
                        segment = 3;  // skipped
}  // namespace tensor

// ---- ValueInfoProto ----
namespace value_info {
constexpr std::uint32_t name = 1, type = 2, doc_string = 3;
}

// ---- TypeProto (a oneof; only tensor_type is modelled) ----
namespace type {
constexpr std::uint32_t tensor_type = 1, denotation = 6,
                        sequence_type = 4, map_type = 5, sparse_tensor_type = 8,  // skipped
                        optional_type = 9;                                        // skipped
}  // namespace type

// ---- TypeProto.Tensor ----
namespace type_tensor {
constexpr std::uint32_t elem_type = 1, shape = 2;
}

// ---- TensorShapeProto ----
namespace shape {
constexpr std::uint32_t dim = 1;
}

// ---- TensorShapeProto.Dimension (dim_value / dim_param are a oneof) ----
namespace dimension {
constexpr std::uint32_t dim_value = 1, dim_param = 2, denotation = 3;  // denotation skipped
}

}  // namespace nanotorch::onnx::field
