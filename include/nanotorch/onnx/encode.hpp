// nanotorch/onnx/encode.hpp — the structs of onnx/model.hpp -> bytes: the ONNX encoder.
//
// Provides encode_model / encode_tensor and write_model (atomic). Fields are written in
// field-number order with the conventions of STYLE.md Appendix A, so a model built the way
// onnx.helper builds it encodes to the same bytes as python's SerializeToString. Never throws on
// content: what the structs hold is written as it is.
#pragma once

#include <cstdint>  // fixed-width fields
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/schema.hpp>
#include <nanotorch/onnx/wire.hpp>
#include <nanotorch/util/bytes.hpp>
#include <nanotorch/util/file.hpp>

namespace nanotorch::onnx {

namespace detail {

// ---- encoding: one function per message, fields in field-number order ----

using wire::Writer;

// Unset and empty are the same thing in our structs, so an empty string is not written.
inline void put_string(Writer& w, std::uint32_t f, const std::string& s) {
    if (!s.empty()) w.write_bytes_field(f, s);
}

inline void encode_graph(Writer& w, const GraphProto& g);

// Each item as one occurrence of field f, encoded by encode(writer, item).
template <class T, class Encode>
void put_messages(Writer& w, std::uint32_t f, const std::vector<T>& items, Encode encode) {
    for (const auto& item : items) w.write_message(f, [&](Writer& x) { encode(x, item); });
}

inline void encode_tensor(Writer& w, const TensorProto& t) {
    namespace F = field::tensor;
    for (const std::int64_t d : t.dims) w.write_int64_field(F::dims, d);  // unpacked (proto2)
    w.write_int32_field(F::data_type, t.data_type);                       // always written
    w.write_packed_float(F::float_data, t.float_data.data(), t.float_data.size());
    w.write_packed_int32(F::int32_data, t.int32_data.data(), t.int32_data.size());
    for (const auto& s : t.string_data) w.write_bytes_field(F::string_data, s);
    w.write_packed_int64(F::int64_data, t.int64_data.data(), t.int64_data.size());
    put_string(w, F::name, t.name);
    put_string(w, F::raw_data, t.raw_data);
    w.write_packed_double(F::double_data, t.double_data.data(), t.double_data.size());
    w.write_packed_uint64(F::uint64_data, t.uint64_data.data(), t.uint64_data.size());
    put_string(w, F::doc_string, t.doc_string);
    if (t.data_location != 0) w.write_int32_field(F::data_location, t.data_location);
}

// The scalar selected by `type` is written even when it is 0 / "" (as onnx.helper sets it);
// the others only when they differ from their default.
inline void encode_attribute(Writer& w, const AttributeProto& a) {
    namespace F = field::attribute;
    put_string(w, F::name, a.name);
    if (a.type == AttributeType::float_ || util::float_bits(a.f) != 0)  // -0.0 is kept
        w.write_float_field(F::f, a.f);
    if (a.type == AttributeType::int_ || a.i != 0) w.write_int64_field(F::i, a.i);
    if (a.type == AttributeType::string || !a.s.empty()) w.write_bytes_field(F::s, a.s);
    put_messages(w, F::t, a.t, encode_tensor);
    put_messages(w, F::g, a.g, encode_graph);
    for (const float f : a.floats) w.write_float_field(F::floats, f);   // unpacked (proto2)
    for (const std::int64_t i : a.ints) w.write_int64_field(F::ints, i);  // unpacked (proto2)
    for (const auto& s : a.strings) w.write_bytes_field(F::strings, s);
    put_messages(w, F::tensors, a.tensors, encode_tensor);
    put_messages(w, F::graphs, a.graphs, encode_graph);
    put_string(w, F::doc_string, a.doc_string);
    w.write_int32_field(F::type, static_cast<std::int32_t>(a.type));  // always written
    put_string(w, F::ref_attr_name, a.ref_attr_name);
}

inline void encode_node(Writer& w, const NodeProto& n) {
    namespace F = field::node;
    for (const auto& s : n.input) w.write_string_field(F::input, s);  // "" is positional: kept
    for (const auto& s : n.output) w.write_string_field(F::output, s);
    put_string(w, F::name, n.name);
    put_string(w, F::op_type, n.op_type);
    put_messages(w, F::attribute, n.attribute, encode_attribute);
    put_string(w, F::doc_string, n.doc_string);
    put_string(w, F::domain, n.domain);
}

// ValueInfoProto -> type { tensor_type { elem_type, shape { dim { dim_value | dim_param } } } }.
inline void encode_value_info(Writer& w, const ValueInfoProto& v) {
    put_string(w, field::value_info::name, v.name);
    if (v.elem_type != 0 || v.has_shape)
        w.write_message(field::value_info::type, [&](Writer& ty) {
            ty.write_message(field::type::tensor_type, [&](Writer& tt) {
                tt.write_int32_field(field::type_tensor::elem_type, v.elem_type);
                if (!v.has_shape) return;
                tt.write_message(field::type_tensor::shape, [&](Writer& sh) {
                    for (const auto& d : v.shape)
                        sh.write_message(field::shape::dim, [&](Writer& dw) {
                            if (d.has_value)
                                dw.write_int64_field(field::dimension::dim_value, d.value);
                            else
                                put_string(dw, field::dimension::dim_param, d.param);
                        });
                });
            });
        });
    put_string(w, field::value_info::doc_string, v.doc_string);
}

inline void encode_graph(Writer& w, const GraphProto& g) {
    namespace F = field::graph;
    put_messages(w, F::node, g.node, encode_node);
    put_string(w, F::name, g.name);
    put_messages(w, F::initializer, g.initializer, encode_tensor);
    put_string(w, F::doc_string, g.doc_string);
    put_messages(w, F::input, g.input, encode_value_info);
    put_messages(w, F::output, g.output, encode_value_info);
    put_messages(w, F::value_info, g.value_info, encode_value_info);
}

inline void encode_model(Writer& w, const ModelProto& m) {
    namespace F = field::model;
    w.write_int64_field(F::ir_version, m.ir_version);  // always written
    put_string(w, F::producer_name, m.producer_name);
    put_string(w, F::producer_version, m.producer_version);
    put_string(w, F::domain, m.domain);
    if (m.model_version != 0) w.write_int64_field(F::model_version, m.model_version);
    put_string(w, F::doc_string, m.doc_string);
    w.write_message(F::graph, [&](Writer& x) { encode_graph(x, m.graph); });
    put_messages(w, F::opset_import, m.opset_import, [](Writer& x, const OperatorSetIdProto& o) {
        put_string(x, field::opset::domain, o.domain);
        x.write_int64_field(field::opset::version, o.version);  // always written
    });
    put_messages(w, F::metadata_props, m.metadata_props,
                 [](Writer& x, const StringStringEntryProto& e) {
                     put_string(x, field::string_entry::key, e.key);
                     put_string(x, field::string_entry::value, e.value);
                 });
}

}  // namespace detail

// ---- encoding ----

/// Serializes a model (field-number order, Appendix A conventions). Never throws on content.
NANOTORCH_ONNX_API std::vector<unsigned char> encode_model(const ModelProto& m)
#if !NANOTORCH_ONNX_BODIES
    ;
#else
{
    wire::Writer w;
    detail::encode_model(w, m);
    return w.take();
}
#endif

/// Serializes one TensorProto.
NANOTORCH_ONNX_API std::vector<unsigned char> encode_tensor(const TensorProto& t)
#if !NANOTORCH_ONNX_BODIES
    ;
#else
{
    wire::Writer w;
    detail::encode_tensor(w, t);
    return w.take();
}
#endif

// ---- files ----

/// Writes encode_model(m) to path atomically (util::write_file_atomic), so a reader never sees
/// a half-written model. @throws io_error naming the path.
inline void write_model(const ModelProto& m, const std::string& path) {
    const auto bytes = encode_model(m);
    util::write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace nanotorch::onnx
