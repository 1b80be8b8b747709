// nanotorch/onnx/model.hpp — a small in-memory form of an ONNX model (the subset of onnx.proto
// that nanotorch reads and writes), independent of the wire format.
//
// These are plain structs mirroring ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto and OperatorSetIdProto field for field (names follow onnx.proto),
// so encoding (onnx/proto.hpp) and execution (onnx/runtime.hpp) share one vocabulary. Fields we
// do not model are skipped on read and never written. Nothing here parses or allocates from
// untrusted sizes; that is the codec's job.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nanotorch::onnx {

/// TensorProto.DataType values we name (others are carried through as their number).
enum class DataType : std::int32_t {
    undefined = 0,
    float32 = 1,
    uint8 = 2,
    int8 = 3,
    uint16 = 4,
    int16 = 5,
    int32 = 6,
    int64 = 7,
    string = 8,
    boolean = 9,
    float16 = 10,
    float64 = 11,
    uint32 = 12,
    uint64 = 13,
};

/// AttributeProto.AttributeType.
enum class AttributeType : std::int32_t {
    undefined = 0,
    float_ = 1,
    int_ = 2,
    string = 3,
    tensor = 4,
    graph = 5,
    floats = 6,
    ints = 7,
    strings = 8,
    tensors = 9,
    graphs = 10,
};

/// TensorProto: a named, typed, shaped array. Exactly one storage field is used, as in the proto:
/// raw_data (little-endian bytes) or one of the typed repeated fields.
struct TensorProto {
    std::vector<std::int64_t> dims;
    std::int32_t data_type = static_cast<std::int32_t>(DataType::undefined);
    std::vector<float> float_data;
    std::vector<std::int32_t> int32_data;     // also int8/uint8/int16/uint16/bool/float16 payloads
    std::vector<std::string> string_data;
    std::vector<std::int64_t> int64_data;
    std::string name;
    std::string doc_string;
    std::string raw_data;                     // little-endian element bytes
    std::vector<double> double_data;
    std::vector<std::uint64_t> uint64_data;   // also uint32
    std::int32_t data_location = 0;           // 1 = EXTERNAL (not supported by the runtime)
};

struct GraphProto;

/// AttributeProto. `type` says which field holds the value.
struct AttributeProto {
    std::string name;
    std::string ref_attr_name;
    std::string doc_string;
    AttributeType type = AttributeType::undefined;
    float f = 0.0f;
    std::int64_t i = 0;
    std::string s;
    std::vector<TensorProto> t;               // 0 or 1 element (a vector keeps the struct copyable)
    std::vector<GraphProto> g;                // 0 or 1 element
    std::vector<float> floats;
    std::vector<std::int64_t> ints;
    std::vector<std::string> strings;
    std::vector<TensorProto> tensors;
    std::vector<GraphProto> graphs;
};

/// One dimension of a TensorShapeProto: a number, a symbolic name, or unknown (both empty).
struct Dimension {
    bool has_value = false;
    std::int64_t value = 0;
    std::string param;                        // dim_param, e.g. "batch"
};

/// ValueInfoProto restricted to tensor types: name, element type and (optional) shape.
struct ValueInfoProto {
    std::string name;
    std::string doc_string;
    std::int32_t elem_type = static_cast<std::int32_t>(DataType::undefined);
    bool has_shape = false;
    std::vector<Dimension> shape;
};

struct NodeProto {
    std::vector<std::string> input;           // "" marks an omitted optional input
    std::vector<std::string> output;
    std::string name;
    std::string op_type;
    std::string domain;
    std::vector<AttributeProto> attribute;
    std::string doc_string;
};

struct GraphProto {
    std::vector<NodeProto> node;
    std::string name;
    std::vector<TensorProto> initializer;
    std::string doc_string;
    std::vector<ValueInfoProto> input;
    std::vector<ValueInfoProto> output;
    std::vector<ValueInfoProto> value_info;
};

struct OperatorSetIdProto {
    std::string domain;                       // "" (or "ai.onnx") is the default operator set
    std::int64_t version = 0;
};

struct StringStringEntryProto {
    std::string key;
    std::string value;
};

struct ModelProto {
    std::int64_t ir_version = 0;
    std::vector<OperatorSetIdProto> opset_import;
    std::string producer_name;
    std::string producer_version;
    std::string domain;
    std::int64_t model_version = 0;
    std::string doc_string;
    GraphProto graph;
    std::vector<StringStringEntryProto> metadata_props;

    /// The default-domain opset version, or 0 when the model does not import it.
    std::int64_t default_opset() const {
        for (const auto& o : opset_import)
            if (o.domain.empty() || o.domain == "ai.onnx") return o.version;
        return 0;
    }
};

}  // namespace nanotorch::onnx
