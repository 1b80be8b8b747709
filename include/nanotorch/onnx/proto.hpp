// nanotorch/onnx/proto.hpp — the ONNX codec: bytes <-> the structs of onnx/model.hpp.
//
// Provides decode_* / encode_* for ModelProto and TensorProto (one parse and one encode function
// per message, on top of onnx/wire.hpp), file helpers (read_model, read_tensor, an atomic
// write_model) and typed access to tensor contents (tensor_to_floats / tensor_to_int64s,
// make_float_tensor / make_int64_tensor). The decoder skips unknown fields by wire type, accepts
// packed and unpacked forms of every repeated scalar, and is bounded: nesting depth, node count,
// tensor element counts and the memory of the decoded messages per input byte are checked against
// Limits, and every tensor's payload must match
// its dims before anything is allocated from them. Errors are parse_error whose message starts
// with the message path ("ModelProto.graph.node[3].attribute[0]: ..."). The encoder writes fields
// in field-number order with the conventions of STYLE.md Appendix A, so a model built the way
// onnx.helper builds it encodes to the same bytes as python's SerializeToString. It deliberately
// does not check ONNX semantics (op names, attribute meaning, graph wiring: that is the
// runtime's job), does not load external data (unsupported_error) and does not model
// sparse tensors, functions, training info or non-tensor types (skipped on read).
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // fixed-width fields
#include <filesystem>   // write_model's atomic rename, read_* regular-file check
#include <fstream>      // file I/O
#include <limits>       // unbounded element limit for the typed accessors
#include <string>
#include <string_view>  // wire::Reader hands out views into the input
#include <utility>      // std::move
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/schema.hpp>
#include <nanotorch/onnx/wire.hpp>
#include <nanotorch/util/file.hpp>
#include <nanotorch/util/bytes.hpp>

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

// ---- error context ----

// A message path kept as a chain of stack frames, rendered only when an error is thrown, so the
// happy path builds no strings. index == npos means "not a repeated element".
struct Path {
    const Path* parent;
    const char* name;
    std::size_t index = static_cast<std::size_t>(-1);
};

inline std::string render(const Path& p) {
    std::vector<const Path*> chain;
    for (const Path* q = &p; q != nullptr; q = q->parent) chain.push_back(q);
    std::string s;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        if (!s.empty()) s += '.';
        s += (*it)->name;
        if ((*it)->index != static_cast<std::size_t>(-1)) s += str_cat('[', (*it)->index, ']');
    }
    return s;
}

// A parse_error whose message already starts with its message path; outer levels pass it on
// untouched while a bare wire-level parse_error gets the path of the innermost message.
class located_error : public parse_error {
public:
    using parse_error::parse_error;
};

[[noreturn]] inline void fail(std::uint64_t offset, const Path& p, const std::string& message) {
    throw located_error(offset, render(p) + ": " + message);
}

// Runs body(); a wire error inside it is re-thrown with p's path in front.
template <class Body>
void guarded(const Path& p, Body&& body) {
    try {
        body();
    } catch (const located_error&) {
        throw;
    } catch (const parse_error& e) {
        throw located_error(e.offset(), render(p) + ": " + e.message());
    }
}

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
inline ModelProto decode_model(const unsigned char* data, std::size_t size,
                               const std::string& path_for_errors = {}, const Limits& limits = {}) {
    return detail::decode_top(data, size, path_for_errors, limits, [&](wire::Reader r) {
        ModelProto m;
        detail::Context c{limits};
        c.input_size = size;
        detail::parse_model(r, m, c, detail::Path{nullptr, "ModelProto"});
        return m;
    });
}

/// Decodes a serialized TensorProto (e.g. an ONNX backend-test .pb file).
/// @throws parse_error / unsupported_error as decode_model.
inline TensorProto decode_tensor(const unsigned char* data, std::size_t size,
                                 const std::string& path_for_errors = {},
                                 const Limits& limits = {}) {
    return detail::decode_top(data, size, path_for_errors, limits, [&](wire::Reader r) {
        TensorProto t;
        const detail::Path p{nullptr, "TensorProto"};
        detail::parse_tensor(r, t, p);
        detail::check_payload(t, limits.max_tensor_elements, 0, p);
        return t;
    });
}

// ---- encoding ----

/// Serializes a model (field-number order, Appendix A conventions). Never throws on content.
inline std::vector<unsigned char> encode_model(const ModelProto& m) {
    wire::Writer w;
    detail::encode_model(w, m);
    return w.take();
}

/// Serializes one TensorProto.
inline std::vector<unsigned char> encode_tensor(const TensorProto& t) {
    wire::Writer w;
    detail::encode_tensor(w, t);
    return w.take();
}

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

/// Writes encode_model(m) to path atomically (util::write_file_atomic), so a reader never sees
/// a half-written model. @throws io_error naming the path.
inline void write_model(const ModelProto& m, const std::string& path) {
    const auto bytes = encode_model(m);
    util::write_file_atomic(path, bytes.data(), bytes.size());
}

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
