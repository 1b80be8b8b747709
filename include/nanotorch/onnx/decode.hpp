// nanotorch/onnx/decode.hpp — bytes -> the structs of onnx/model.hpp: the bounded ONNX decoder.
//
// Provides Limits, decode_model / decode_tensor and the file readers read_model / read_tensor
// (one parse function per message, on top of onnx/wire.hpp). The decoder skips unknown fields by
// wire type, accepts packed and unpacked forms of every repeated scalar, and is bounded: nesting
// depth, node count, tensor element counts and the memory of the decoded messages per input byte
// are checked against Limits, and every tensor's payload must match its dims before anything is
// allocated from them (onnx/tensor_data.hpp). Errors are parse_error whose message starts with the
// message path ("ModelProto.graph.node[3].attribute[0]: ...", onnx/message_path.hpp). It
// deliberately does not check ONNX semantics (op names, attribute meaning, graph wiring: that is
// the runtime's job), does not load external data (unsupported_error) and does not model sparse
// tensors, functions, training info or non-tensor types (skipped on read).
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // fixed-width fields
#include <filesystem>   // read_*'s regular-file check
#include <fstream>      // file input
#include <string>
#include <string_view>  // wire::Reader hands out views into the input
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/message_path.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/schema.hpp>
#include <nanotorch/onnx/tensor_data.hpp>
#include <nanotorch/onnx/wire.hpp>

namespace nanotorch::onnx {

/// Bounds the decoder enforces (in addition to "never read past the input"). Every field can be
/// lowered (or raised) by the caller: pass a Limits to decode_model / read_model / load_onnx.
/// An exceeded limit is a parse_error (io_error for a file too large to read) whose message
/// names the field, e.g. "... (Limits::max_nodes)". Tensor bytes need no limit of their own: a
/// tensor's payload must be exactly its dims' worth of bytes, all present in the input, so
/// max_file_bytes bounds them, and max_tensor_elements bounds what dims may declare.
struct Limits {
    std::size_t max_depth = 64;                       ///< sub-message nesting (wire::Limits)
    std::uint64_t max_file_bytes = 1ull << 31;        ///< size of the serialized input
    std::uint64_t max_tensor_elements = 1ull << 30;   ///< product of one tensor's dims
    std::uint64_t max_nodes = 1u << 20;               ///< nodes in the model, subgraphs included
    /// Memory the decoded messages themselves (the structs of model.hpp, not payload bytes) may
    /// take, in bytes per input byte, on top of a fixed 64 KiB. Without it a file of 2-byte empty
    /// attributes would become 312-byte structs: 156x its size. The worst of the 932 ONNX backend
    /// test models needs 12.4.
    std::uint64_t max_memory_per_byte = 32;
};

namespace detail {

using nanotorch::detail::str_cat;

struct Context {
    Limits limits;
    std::uint64_t nodes = 0;
    std::uint64_t input_size = 0;  // bytes being decoded, for max_memory_per_byte
    std::uint64_t memory = 0;      // bytes of message structs decoded so far
};

// Accounts for one more decoded message struct of `bytes` bytes; fails once the structs would
// take more than max_memory_per_byte per input byte (+ 64 KiB).
inline void charge(Context& c, std::size_t bytes, std::uint64_t offset, const Path& p) {
    c.memory += bytes;
    const std::uint64_t allowed = c.limits.max_memory_per_byte * c.input_size + (std::uint64_t(1) << 16);
    if (c.memory > allowed)
        fail(offset, p, str_cat("the decoded messages would take more than ", c.limits.max_memory_per_byte,
                                " bytes of memory per input byte (", c.memory, " bytes for a ", c.input_size,
                                "-byte input): too many tiny or empty messages (Limits::max_memory_per_byte)"));
}

// ---- decoding: one function per message; each merges into `out` as protobuf does ----

using wire::Reader;

inline std::string str(std::string_view v) { return std::string(v); }

inline void parse_graph(Reader r, GraphProto& out, Context& c, const Path& p);

inline void parse_tensor(Reader r, TensorProto& t, const Path& p) {
    namespace F = field::tensor;
    bool external = false;
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case F::dims: r.read_repeated_int64(t.dims); break;
                case F::data_type: t.data_type = r.read_int32(); break;
                case F::float_data: r.read_repeated_float(t.float_data); break;
                case F::int32_data: r.read_repeated_int32(t.int32_data); break;
                case F::string_data: t.string_data.push_back(str(r.read_bytes())); break;
                case F::int64_data: r.read_repeated_int64(t.int64_data); break;
                case F::name: t.name = str(r.read_string()); break;
                case F::raw_data: t.raw_data = str(r.read_bytes()); break;
                case F::double_data: r.read_repeated_double(t.double_data); break;
                case F::uint64_data: r.read_repeated_uint64(t.uint64_data); break;
                case F::doc_string: t.doc_string = str(r.read_string()); break;
                case F::external_data: external = true; r.skip(); break;
                case F::data_location: t.data_location = r.read_int32(); break;
                default: r.skip();
            }
    });
    if (external || t.data_location == 1)
        throw unsupported_error(str_cat(
            render(p), ": tensor '", t.name,
            "' keeps its data in an external file (data_location = EXTERNAL), which nanotorch "
            "does not load; re-save the model with the data inline (onnx.save with "
            "save_as_external_data=False)"));
}

// Dimension: dim_value and dim_param are a oneof, so the last one read wins.
inline void parse_dimension(Reader r, Dimension& d, const Path& p) {
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case field::dimension::dim_value:
                    d.value = r.read_int64(), d.has_value = true, d.param.clear();
                    break;
                case field::dimension::dim_param:
                    d.param = str(r.read_string()), d.has_value = false, d.value = 0;
                    break;
                default: r.skip();
            }
    });
}

// TensorShapeProto, TypeProto.Tensor and TypeProto are flattened into the ValueInfoProto.
inline void parse_shape(Reader r, ValueInfoProto& v, Context& c, const Path& p) {
    v.has_shape = true;
    guarded(p, [&] {
        while (r.next()) {
            if (r.field() != field::shape::dim) continue;  // next() skips the unread value
            charge(c, sizeof(Dimension), r.tag_offset(), p);
            const Path dp{&p, "dim", v.shape.size()};
            parse_dimension(r.read_message(), v.shape.emplace_back(), dp);
        }
    });
}

inline void parse_type_tensor(Reader r, ValueInfoProto& v, Context& c, const Path& p) {
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case field::type_tensor::elem_type: v.elem_type = r.read_int32(); break;
                case field::type_tensor::shape:
                    parse_shape(r.read_message(), v, c, Path{&p, "shape"});
                    break;
                default: r.skip();
            }
    });
}

// Only tensor_type is modelled; sequence / map / optional / sparse types are skipped.
inline void parse_type(Reader r, ValueInfoProto& v, Context& c, const Path& p) {
    guarded(p, [&] {
        while (r.next())
            if (r.field() == field::type::tensor_type)
                parse_type_tensor(r.read_message(), v, c, Path{&p, "tensor_type"});
    });
}

inline void parse_value_info(Reader r, ValueInfoProto& v, Context& c, const Path& p) {
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case field::value_info::name: v.name = str(r.read_string()); break;
                case field::value_info::type:
                    parse_type(r.read_message(), v, c, Path{&p, "type"});
                    break;
                case field::value_info::doc_string: v.doc_string = str(r.read_string()); break;
                default: r.skip();
            }
    });
}

// A tensor in a repeated field is complete once parsed, so it is checked at once.
inline void parse_checked_tensor(Reader r, TensorProto& t, Context& c, const Path& p) {
    const std::uint64_t at = r.offset();
    parse_tensor(r, t, p);
    check_payload(t, c.limits.max_tensor_elements, at, p);
}

inline void parse_attribute(Reader r, AttributeProto& a, Context& c, const Path& p) {
    namespace F = field::attribute;
    std::uint64_t t_offset = 0;
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case F::name: a.name = str(r.read_string()); break;
                case F::f: a.f = r.read_float(); break;
                case F::i: a.i = r.read_int64(); break;
                case F::s: a.s = str(r.read_bytes()); break;
                case F::t: {  // optional message: a repeat merges into the first
                    if (a.t.empty()) charge(c, sizeof(TensorProto), r.tag_offset(), p);
                    Reader t = r.read_message();
                    t_offset = t.offset();
                    if (a.t.empty()) a.t.emplace_back();
                    parse_tensor(t, a.t[0], Path{&p, "t"});
                    break;
                }
                case F::g: {
                    if (a.g.empty()) charge(c, sizeof(GraphProto), r.tag_offset(), p);
                    if (a.g.empty()) a.g.emplace_back();
                    parse_graph(r.read_message(), a.g[0], c, Path{&p, "g"});
                    break;
                }
                case F::floats: r.read_repeated_float(a.floats); break;
                case F::ints: r.read_repeated_int64(a.ints); break;
                case F::strings:
                    charge(c, sizeof(std::string), r.tag_offset(), p);
                    a.strings.push_back(str(r.read_bytes()));
                    break;
                case F::tensors: {
                    charge(c, sizeof(TensorProto), r.tag_offset(), p);
                    const Path tp{&p, "tensors", a.tensors.size()};
                    parse_checked_tensor(r.read_message(), a.tensors.emplace_back(), c, tp);
                    break;
                }
                case F::graphs: {
                    charge(c, sizeof(GraphProto), r.tag_offset(), p);
                    const Path gp{&p, "graphs", a.graphs.size()};
                    parse_graph(r.read_message(), a.graphs.emplace_back(), c, gp);
                    break;
                }
                case F::doc_string: a.doc_string = str(r.read_string()); break;
                case F::type: a.type = static_cast<AttributeType>(r.read_int32()); break;
                case F::ref_attr_name: a.ref_attr_name = str(r.read_string()); break;
                default: r.skip();
            }
    });
    if (!a.t.empty()) check_payload(a.t[0], c.limits.max_tensor_elements, t_offset, Path{&p, "t"});
}

inline void parse_node(Reader r, NodeProto& n, Context& c, const Path& p) {
    namespace F = field::node;
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case F::input:
                case F::output:
                    charge(c, sizeof(std::string), r.tag_offset(), p);
                    (r.field() == F::input ? n.input : n.output).push_back(str(r.read_string()));
                    break;
                case F::name: n.name = str(r.read_string()); break;
                case F::op_type: n.op_type = str(r.read_string()); break;
                case F::domain: n.domain = str(r.read_string()); break;
                case F::doc_string: n.doc_string = str(r.read_string()); break;
                case F::attribute: {
                    charge(c, sizeof(AttributeProto), r.tag_offset(), p);
                    const Path ap{&p, "attribute", n.attribute.size()};
                    parse_attribute(r.read_message(), n.attribute.emplace_back(), c, ap);
                    break;
                }
                default: r.skip();
            }
    });
}

inline void parse_graph(Reader r, GraphProto& g, Context& c, const Path& p) {
    namespace F = field::graph;
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case F::node: {
                    if (++c.nodes > c.limits.max_nodes)
                        fail(r.tag_offset(), p, str_cat("the model has more than the limit of ",
                                                        c.limits.max_nodes, " nodes (Limits::max_nodes)"));
                    charge(c, sizeof(NodeProto), r.tag_offset(), p);
                    const Path np{&p, "node", g.node.size()};
                    parse_node(r.read_message(), g.node.emplace_back(), c, np);
                    break;
                }
                case F::name: g.name = str(r.read_string()); break;
                case F::initializer: {
                    charge(c, sizeof(TensorProto), r.tag_offset(), p);
                    const Path ip{&p, "initializer", g.initializer.size()};
                    parse_checked_tensor(r.read_message(), g.initializer.emplace_back(), c, ip);
                    break;
                }
                case F::doc_string: g.doc_string = str(r.read_string()); break;
                case F::input:
                case F::output:
                case F::value_info: {
                    auto& list = r.field() == F::input ? g.input
                                 : r.field() == F::output ? g.output : g.value_info;
                    const char* name = r.field() == F::input ? "input"
                                       : r.field() == F::output ? "output" : "value_info";
                    const Path vp{&p, name, list.size()};
                    charge(c, sizeof(ValueInfoProto), r.tag_offset(), p);
                    parse_value_info(r.read_message(), list.emplace_back(), c, vp);
                    break;
                }
                default: r.skip();
            }
    });
}

inline void parse_opset(Reader r, OperatorSetIdProto& o, const Path& p) {
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case field::opset::domain: o.domain = str(r.read_string()); break;
                case field::opset::version: o.version = r.read_int64(); break;
                default: r.skip();
            }
    });
}

inline void parse_string_entry(Reader r, StringStringEntryProto& e, const Path& p) {
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case field::string_entry::key: e.key = str(r.read_string()); break;
                case field::string_entry::value: e.value = str(r.read_string()); break;
                default: r.skip();
            }
    });
}

inline void parse_model(Reader r, ModelProto& m, Context& c, const Path& p) {
    namespace F = field::model;
    bool has_ir = false, has_graph = false;
    const std::uint64_t end = r.offset() + r.remaining();
    guarded(p, [&] {
        while (r.next()) switch (r.field()) {
                case F::ir_version: m.ir_version = r.read_int64(), has_ir = true; break;
                case F::producer_name: m.producer_name = str(r.read_string()); break;
                case F::producer_version: m.producer_version = str(r.read_string()); break;
                case F::domain: m.domain = str(r.read_string()); break;
                case F::model_version: m.model_version = r.read_int64(); break;
                case F::doc_string: m.doc_string = str(r.read_string()); break;
                case F::graph:
                    has_graph = true;
                    parse_graph(r.read_message(), m.graph, c, Path{&p, "graph"});
                    break;
                case F::opset_import: {
                    charge(c, sizeof(OperatorSetIdProto), r.tag_offset(), p);
                    const Path op{&p, "opset_import", m.opset_import.size()};
                    parse_opset(r.read_message(), m.opset_import.emplace_back(), op);
                    break;
                }
                case F::metadata_props: {
                    charge(c, sizeof(StringStringEntryProto), r.tag_offset(), p);
                    const Path mp{&p, "metadata_props", m.metadata_props.size()};
                    parse_string_entry(r.read_message(), m.metadata_props.emplace_back(), mp);
                    break;
                }
                default: r.skip();
            }
    });
    // An empty or cut-off buffer is a valid (empty) protobuf message; these three checks are
    // what make "not an ONNX model" and most truncations an error rather than an empty model.
    if (!has_ir) fail(end, p, "ir_version (field 1) is missing: not an ONNX model");
    if (!has_graph) fail(end, p, "graph (field 7) is missing");
    if (m.opset_import.empty() && m.ir_version >= 3)
        fail(end, p, str_cat("opset_import (field 8) is missing; ir_version ", m.ir_version,
                             " requires it"));
}

// Runs decode(); a parse_error leaves with the file path attached, an unsupported_error with
// the path in its text.
template <class Decode>
auto decode_top(const unsigned char* data, std::size_t size, const std::string& path,
                const Limits& limits, Decode&& decode) {
    try {
        if (size > limits.max_file_bytes)
            throw parse_error(0, str_cat("input of ", size, " bytes exceeds the limit of ",
                                         limits.max_file_bytes, " bytes (Limits::max_file_bytes)"));
        return decode(Reader(data, size, 0, wire::Limits{limits.max_depth}));
    } catch (const parse_error& e) {
        throw parse_error(e.offset(), e.message(), path);
    } catch (const unsupported_error& e) {
        if (path.empty()) throw;
        throw unsupported_error(path + ": " + e.what());
    }
}

// ---- files ----

inline std::vector<unsigned char> read_file(const std::string& path, std::uint64_t max_bytes) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        throw io_error(path, ec ? "cannot access: " + ec.message() : "not a regular file");
    const std::uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) throw io_error(path, "cannot get the file size: " + ec.message());
    if (size > max_bytes)
        throw io_error(path, str_cat("file of ", size, " bytes exceeds the limit of ", max_bytes,
                                     " bytes (Limits::max_file_bytes)"));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(path, "cannot open for reading");
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    if (static_cast<std::uint64_t>(in.gcount()) != size)
        throw io_error(path, str_cat("read ", in.gcount(), " of ", size, " bytes"));
    return bytes;
}

}  // namespace detail

// ---- decoding ----

/// Decodes a serialized ModelProto. path_for_errors only labels errors.
/// @throws parse_error (offset, message path such as "ModelProto.graph.node[3].attribute[0]",
///         path) on malformed bytes, a limit exceeded, a tensor whose payload does not match its
///         dims, or a missing ir_version / graph / opset_import.
/// @throws unsupported_error for tensors stored as external data.
NANOTORCH_ONNX_API ModelProto decode_model(const unsigned char* data, std::size_t size,
                                           const std::string& path_for_errors = {}, const Limits& limits = {})
#if !NANOTORCH_ONNX_BODIES
    ;
#else
{
    return detail::decode_top(data, size, path_for_errors, limits, [&](wire::Reader r) {
        ModelProto m;
        detail::Context c{limits};
        c.input_size = size;
        detail::parse_model(r, m, c, detail::Path{nullptr, "ModelProto"});
        return m;
    });
}
#endif

/// Decodes a serialized TensorProto (e.g. an ONNX backend-test .pb file).
/// @throws parse_error / unsupported_error as decode_model.
NANOTORCH_ONNX_API TensorProto decode_tensor(const unsigned char* data, std::size_t size,
                                             const std::string& path_for_errors = {},
                                             const Limits& limits = {})
#if !NANOTORCH_ONNX_BODIES
    ;
#else
{
    return detail::decode_top(data, size, path_for_errors, limits, [&](wire::Reader r) {
        TensorProto t;
        const detail::Path p{nullptr, "TensorProto"};
        detail::parse_tensor(r, t, p);
        detail::check_payload(t, limits.max_tensor_elements, 0, p);
        return t;
    });
}
#endif

// ---- files ----

/// Reads and decodes an .onnx file.
/// @throws io_error (missing, unreadable, larger than limits.max_file_bytes) or the errors of
///         decode_model, with the path attached.
inline ModelProto read_model(const std::string& path, const Limits& limits = {}) {
    const auto bytes = detail::read_file(path, limits.max_file_bytes);
    return decode_model(bytes.data(), bytes.size(), path, limits);
}

/// Reads and decodes a TensorProto .pb file. @throws as read_model.
inline TensorProto read_tensor(const std::string& path, const Limits& limits = {}) {
    const auto bytes = detail::read_file(path, limits.max_file_bytes);
    return decode_tensor(bytes.data(), bytes.size(), path, limits);
}

}  // namespace nanotorch::onnx
