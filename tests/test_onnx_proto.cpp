// Tests for nanotorch/onnx/proto.hpp: golden bytes against python onnx (tests/data/onnx, written
// by make_golden.py) and against hand-written bytes, decode/encode round trips, packed vs
// unpacked repeated scalars, every attribute type, typed tensor access, file I/O, hostile input
// (truncation at every byte, seeded bit flips, size fields that lie, limits) and the ONNX
// backend conformance files shipped by Debian's libonnx-testdata.
#include <doctest/doctest.h>

#include <nanotorch/onnx/proto.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

using namespace nanotorch::onnx;
using nanotorch::io_error;
using nanotorch::parse_error;
using nanotorch::unsupported_error;
using nanotorch::value_error;
using Bytes = std::vector<unsigned char>;
namespace fs = std::filesystem;
namespace util = nanotorch::util;

namespace {

// ---- files ----

// tests/data/onnx: $NANOTORCH_SOURCE_DIR/..., then relative to this file, then to the cwd.
std::string golden_dir() {
    std::vector<fs::path> candidates;
    if (const char* src = std::getenv("NANOTORCH_SOURCE_DIR"))
        candidates.push_back(fs::path(src) / "tests/data/onnx");
    candidates.push_back(fs::path(__FILE__).parent_path() / "data/onnx");
    candidates.push_back("tests/data/onnx");
    for (const auto& dir : candidates) {
        std::error_code ec;
        if (fs::exists(dir / "relu_opset9.onnx", ec)) return dir.string();
    }
    return {};
}

Bytes load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot open ", path);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void save(const std::string& path, const Bytes& b) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    REQUIRE_MESSAGE(out.good(), "cannot write ", path);
}

Bytes golden(const std::string& name) {
    const std::string dir = golden_dir();
    REQUIRE_MESSAGE(!dir.empty(), "tests/data/onnx not found (set NANOTORCH_SOURCE_DIR)");
    return load(dir + "/" + name);
}

const std::string conformance_dir = "/usr/share/libonnx-testdata/data";
bool have_conformance() {
    std::error_code ec;
    return fs::exists(conformance_dir + "/node/test_relu/model.onnx", ec);
}

ModelProto decode(const Bytes& b, const Limits& limits = {}) {
    return decode_model(b.data(), b.size(), {}, limits);
}

// Runs f, which must throw E; returns the exception (so tests can look at offset and text).
template <class E, class F>
std::optional<E> expect_throw(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e;
    }
    FAIL("no exception was thrown");
    return std::nullopt;
}
bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// ---- structural equality (floats compared bit for bit, so -0.0 != 0.0 and NaN == NaN) ----

bool eq(float a, float b) { return util::float_bits(a) == util::float_bits(b); }
bool eq(double a, double b) { return util::double_bits(a) == util::double_bits(b); }
bool eq(const std::string& a, const std::string& b) { return a == b; }
bool eq(std::int64_t a, std::int64_t b) { return a == b; }
bool eq(std::int32_t a, std::int32_t b) { return a == b; }
bool eq(std::uint64_t a, std::uint64_t b) { return a == b; }
// Declared up front so that the vector overload (a template) sees them all.
bool eq(const TensorProto& a, const TensorProto& b);
bool eq(const GraphProto& a, const GraphProto& b);
bool eq(const AttributeProto& a, const AttributeProto& b);
bool eq(const Dimension& a, const Dimension& b);
bool eq(const ValueInfoProto& a, const ValueInfoProto& b);
bool eq(const NodeProto& a, const NodeProto& b);
bool eq(const OperatorSetIdProto& a, const OperatorSetIdProto& b);
bool eq(const StringStringEntryProto& a, const StringStringEntryProto& b);
template <class T>
bool eq(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!eq(a[i], b[i])) return false;
    return true;
}
bool eq(const TensorProto& a, const TensorProto& b) {
    return eq(a.dims, b.dims) && a.data_type == b.data_type && eq(a.float_data, b.float_data) &&
           eq(a.int32_data, b.int32_data) && eq(a.string_data, b.string_data) &&
           eq(a.int64_data, b.int64_data) && a.name == b.name && a.doc_string == b.doc_string &&
           a.raw_data == b.raw_data && eq(a.double_data, b.double_data) &&
           eq(a.uint64_data, b.uint64_data) && a.data_location == b.data_location;
}
bool eq(const AttributeProto& a, const AttributeProto& b) {
    return a.name == b.name && a.ref_attr_name == b.ref_attr_name &&
           a.doc_string == b.doc_string && a.type == b.type && eq(a.f, b.f) && a.i == b.i &&
           a.s == b.s && eq(a.t, b.t) && eq(a.g, b.g) && eq(a.floats, b.floats) &&
           eq(a.ints, b.ints) && eq(a.strings, b.strings) && eq(a.tensors, b.tensors) &&
           eq(a.graphs, b.graphs);
}
bool eq(const Dimension& a, const Dimension& b) {
    return a.has_value == b.has_value && a.value == b.value && a.param == b.param;
}
bool eq(const ValueInfoProto& a, const ValueInfoProto& b) {
    return a.name == b.name && a.doc_string == b.doc_string && a.elem_type == b.elem_type &&
           a.has_shape == b.has_shape && eq(a.shape, b.shape);
}
bool eq(const NodeProto& a, const NodeProto& b) {
    return eq(a.input, b.input) && eq(a.output, b.output) && a.name == b.name &&
           a.op_type == b.op_type && a.domain == b.domain && eq(a.attribute, b.attribute) &&
           a.doc_string == b.doc_string;
}
bool eq(const GraphProto& a, const GraphProto& b) {
    return eq(a.node, b.node) && a.name == b.name && eq(a.initializer, b.initializer) &&
           a.doc_string == b.doc_string && eq(a.input, b.input) && eq(a.output, b.output) &&
           eq(a.value_info, b.value_info);
}
bool eq(const OperatorSetIdProto& a, const OperatorSetIdProto& b) {
    return a.domain == b.domain && a.version == b.version;
}
bool eq(const StringStringEntryProto& a, const StringStringEntryProto& b) {
    return a.key == b.key && a.value == b.value;
}
bool eq(const ModelProto& a, const ModelProto& b) {
    return a.ir_version == b.ir_version && eq(a.opset_import, b.opset_import) &&
           a.producer_name == b.producer_name && a.producer_version == b.producer_version &&
           a.domain == b.domain && a.model_version == b.model_version &&
           a.doc_string == b.doc_string && eq(a.graph, b.graph) &&
           eq(a.metadata_props, b.metadata_props);
}

// ---- the models of make_golden.py, built by hand ----

constexpr std::int32_t FLOAT = 1, INT32 = 6, INT64 = 7;
const float w_values[6] = {0.5f, -1.0f, 2.25f, 0.0f, -0.125f, 3.0f};

Dimension dim(std::int64_t v) { return Dimension{true, v, ""}; }
Dimension dim(const char* param) { return Dimension{false, 0, param}; }

ValueInfoProto value_info(const std::string& name, std::int32_t elem_type,
                          std::vector<Dimension> shape) {
    ValueInfoProto v;
    v.name = name;
    v.elem_type = elem_type;
    v.has_shape = true;
    v.shape = std::move(shape);
    return v;
}

NodeProto node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
               const std::string& name = {}) {
    NodeProto n;
    n.op_type = op;
    n.input = std::move(in);
    n.output = std::move(out);
    n.name = name;
    return n;
}

ModelProto relu_model() {
    ModelProto m;
    m.ir_version = 4;
    m.producer_name = "nanotorch";
    m.producer_version = "0.1.0";
    m.opset_import.push_back({"", 9});
    m.graph.name = "relu_graph";
    m.graph.node.push_back(node("Relu", {"x"}, {"y"}, "relu0"));
    m.graph.initializer.push_back(make_float_tensor("w", {2, 3}, w_values));
    m.graph.input.push_back(value_info("x", FLOAT, {dim("N"), dim(3)}));
    m.graph.output.push_back(value_info("y", FLOAT, {dim("N"), dim(3)}));
    return m;
}

AttributeProto attr(const std::string& name, AttributeType type) {
    AttributeProto a;
    a.name = name;
    a.type = type;
    return a;
}

GraphProto unary_graph(const std::string& op, const std::string& name) {
    GraphProto g;
    g.node.push_back(node(op, {"a"}, {"b"}));
    g.name = name;
    g.input.push_back(value_info("a", FLOAT, {dim(2)}));
    g.output.push_back(value_info("b", FLOAT, {dim(2)}));
    return g;
}

// One attribute of every type, in the name order python's make_node sorts keyword args into.
std::vector<AttributeProto> all_attributes() {
    std::vector<AttributeProto> v;
    v.push_back(attr("a_float", AttributeType::float_));
    v.back().f = 0.25f;
    v.push_back(attr("b_int", AttributeType::int_));
    v.back().i = -1;
    v.push_back(attr("c_string", AttributeType::string));
    v.back().s = "hello";
    TensorProto t0;
    t0.name = "t0";
    t0.data_type = FLOAT;
    t0.dims = {2};
    t0.float_data = {1.5f, -2.0f};
    v.push_back(attr("d_tensor", AttributeType::tensor));
    v.back().t.push_back(t0);
    v.push_back(attr("e_graph", AttributeType::graph));
    v.back().g.push_back(unary_graph("Relu", "body"));
    v.push_back(attr("f_floats", AttributeType::floats));
    v.back().floats = {0.5f, -2.0f, 3.25f};
    v.push_back(attr("g_ints", AttributeType::ints));
    v.back().ints = {1, -1, 300, -(std::int64_t(1) << 40)};
    v.push_back(attr("h_strings", AttributeType::strings));
    v.back().strings = {"p", "", "qr"};
    TensorProto t1;
    t1.name = "t1";
    t1.data_type = INT64;
    t1.dims = {3};
    t1.int64_data = {7, -8, 9};
    TensorProto t2;
    t2.name = "t2";
    t2.data_type = INT32;
    t2.dims = {1};
    t2.raw_data = std::string("\xfb\xff\xff\xff", 4);  // -5 little-endian
    v.push_back(attr("i_tensors", AttributeType::tensors));
    v.back().tensors = {t1, t2};
    v.push_back(attr("j_graphs", AttributeType::graphs));
    v.back().graphs = {unary_graph("Relu", "body"), unary_graph("Neg", "body2")};
    return v;
}

ModelProto attributes_model() {
    ModelProto m;
    m.ir_version = 4;
    m.opset_import = {{"", 9}, {"nanotorch.test", 1}};
    m.graph.name = "attrs";
    NodeProto all = node("AllAttrs", {"x"}, {"y"}, "all");
    all.domain = "nanotorch.test";
    all.attribute = all_attributes();
    m.graph.node.push_back(all);
    m.graph.node.push_back(node("Softmax", {"y"}, {"z"}));
    m.graph.node.back().attribute.push_back(attr("axis", AttributeType::int_));
    m.graph.node.back().attribute.back().i = -1;
    m.graph.input.push_back(value_info("x", FLOAT, {dim(1), dim(4)}));
    m.graph.output.push_back(value_info("z", FLOAT, {dim(1), dim(4)}));
    m.graph.value_info.push_back(value_info("y", FLOAT, {dim(1), dim(4)}));
    return m;
}

// The TensorProto w = make_float_tensor("w", {2, 3}, w_values), byte by byte.
Bytes tensor_w_bytes() {
    Bytes b = {0x08, 0x02, 0x08, 0x03,  // dims: 2, 3 (field 1, varint, unpacked)
               0x10, 0x01,              // data_type: FLOAT
               0x42, 0x01, 'w',         // name (field 8)
               0x4A, 0x18};             // raw_data (field 9), 24 bytes
    for (const float f : w_values) {
        unsigned char le[4];
        util::store_le32(le, util::float_bits(f));
        b.insert(b.end(), le, le + 4);
    }
    return b;
}

Bytes bytes_of(const wire::Writer& w) { return w.bytes(); }

}  // namespace

// ---- golden bytes ----

TEST_CASE("a TensorProto encodes to hand-written bytes and to python's bytes") {
    const TensorProto w = make_float_tensor("w", {2, 3}, w_values);
    CHECK(encode_tensor(w) == tensor_w_bytes());
    CHECK(golden("tensor_w.pb") == tensor_w_bytes());
    const Bytes b = tensor_w_bytes();
    const TensorProto back = decode_tensor(b.data(), b.size());
    CHECK(eq(back, w));
    CHECK(back.dims == std::vector<std::int64_t>{2, 3});
    CHECK(back.data_type == FLOAT);
    CHECK(back.name == "w");
    CHECK(tensor_to_floats(back) == std::vector<float>(w_values, w_values + 6));
}

TEST_CASE("the minimal Relu model encodes byte-identically to python onnx") {
    const Bytes py = golden("relu_opset9.onnx");
    const ModelProto ours = relu_model();
    CHECK(encode_model(ours) == py);
    const ModelProto decoded = decode(py);
    CHECK(eq(decoded, ours));
    CHECK(decoded.ir_version == 4);
    CHECK(decoded.default_opset() == 9);
    REQUIRE(decoded.graph.node.size() == 1);
    CHECK(decoded.graph.node[0].op_type == "Relu");
    CHECK(decoded.graph.input[0].shape[0].param == "N");
    CHECK(decoded.graph.input[0].shape[1].value == 3);
}

TEST_CASE("every attribute type encodes byte-identically to python onnx") {
    const Bytes py = golden("attributes.onnx");
    CHECK(encode_model(attributes_model()) == py);
    const ModelProto m = decode(py);
    CHECK(eq(m, attributes_model()));
    const auto& a = m.graph.node[0].attribute;
    REQUIRE(a.size() == 10);
    CHECK(a[1].i == -1);
    CHECK(m.graph.node[1].attribute[0].i == -1);  // Softmax axis = -1
    CHECK(a[6].ints.back() == -(std::int64_t(1) << 40));
    CHECK(a[4].g[0].node[0].op_type == "Relu");
    CHECK(a[9].graphs[1].node[0].op_type == "Neg");
    CHECK(tensor_to_int64s(a[8].tensors[1]) == std::vector<std::int64_t>{-5});
}

TEST_CASE("packed FLOATS/INTS attributes decode to the same model as unpacked ones") {
    const Bytes packed = golden("attributes_packed.onnx");
    const Bytes unpacked = golden("attributes.onnx");
    REQUIRE(packed != unpacked);
    const ModelProto m = decode(packed);
    CHECK(eq(m, decode(unpacked)));
    CHECK(m.graph.node[0].attribute[5].floats == std::vector<float>{0.5f, -2.0f, 3.25f});
    // Re-encoding normalizes to the unpacked canonical form, identical to python's.
    CHECK(encode_model(m) == unpacked);
}

// ---- round trips ----

TEST_CASE("decode -> encode -> decode is the identity, and our files re-encode byte-identically") {
    for (const char* name : {"relu_opset9.onnx", "attributes.onnx", "attributes_packed.onnx"}) {
        CAPTURE(name);
        const Bytes x = golden(name);
        const ModelProto m = decode(x);
        const Bytes y = encode_model(m);
        CHECK(eq(decode(y), m));
        if (std::string(name) != "attributes_packed.onnx") CHECK(y == x);
    }
    const Bytes t = golden("tensor_w.pb");
    CHECK(encode_tensor(decode_tensor(t.data(), t.size())) == t);
}

TEST_CASE("each attribute type round trips alone, including defaults and edge values") {
    std::vector<AttributeProto> cases = all_attributes();
    cases.push_back(attr("zero_f", AttributeType::float_));  // f = 0 is written since type says f
    cases.push_back(attr("neg_zero", AttributeType::float_));
    cases.back().f = -0.0f;
    cases.push_back(attr("zero_i", AttributeType::int_));
    cases.push_back(attr("min_i", AttributeType::int_));
    cases.back().i = std::numeric_limits<std::int64_t>::min();
    cases.push_back(attr("empty_s", AttributeType::string));
    cases.push_back(attr("bytes_s", AttributeType::string));
    cases.back().s = std::string("\0\xff", 2);
    cases.push_back(attr("empty_ints", AttributeType::ints));
    cases.push_back(attr("doc", AttributeType::int_));
    cases.back().doc_string = "d";
    cases.back().ref_attr_name = "outer";
    for (const auto& a : cases) {
        CAPTURE(a.name);
        ModelProto m = relu_model();
        m.graph.node[0].attribute = {a};
        const Bytes b = encode_model(m);
        const ModelProto back = decode(b);
        CHECK(eq(back.graph.node[0].attribute[0], a));
        CHECK(encode_model(back) == b);
    }
    // The type field is always written (A0 01 = field 20, varint), even for UNDEFINED.
    ModelProto m = relu_model();
    m.graph.node[0].attribute = {attr("u", AttributeType::undefined)};
    const Bytes b = encode_model(m);
    const Bytes needle = {0xA0, 0x01, 0x00};
    CHECK(std::search(b.begin(), b.end(), needle.begin(), needle.end()) != b.end());
}

TEST_CASE("the reader accepts packed and unpacked forms of every repeated scalar") {
    // A tensor written with the opposite encodings to ours: packed dims, unpacked typed data.
    wire::Writer w;
    const std::int64_t dims[] = {2, 1};
    w.write_packed_int64(field::tensor::dims, dims, 2);
    w.write_int32_field(field::tensor::data_type, FLOAT);
    w.write_float_field(field::tensor::float_data, 1.5f);
    w.write_float_field(field::tensor::float_data, -3.0f);
    const Bytes b = bytes_of(w);
    const TensorProto t = decode_tensor(b.data(), b.size());
    CHECK(t.dims == std::vector<std::int64_t>{2, 1});
    CHECK(tensor_to_floats(t) == std::vector<float>{1.5f, -3.0f});

    // Mixed: one packed run and one unpacked element of the same field concatenate.
    for (std::uint32_t f : {field::tensor::int32_data, field::tensor::int64_data,
                            field::tensor::uint64_data, field::tensor::double_data}) {
        CAPTURE(f);
        wire::Writer x;
        x.write_int64_field(field::tensor::dims, 3);
        const std::int32_t dt = f == field::tensor::int32_data   ? INT32
                                : f == field::tensor::int64_data ? INT64
                                : f == field::tensor::uint64_data ? 13 : 11;
        x.write_int32_field(field::tensor::data_type, dt);
        if (f == field::tensor::double_data) {
            const double d[] = {0.5, -1.0};
            x.write_packed_double(f, d, 2);
            x.write_double_field(f, 4.0);
        } else {
            const std::int64_t v[] = {-2, 5};
            if (f == field::tensor::uint64_data) {
                const std::uint64_t u[] = {2, 5};
                x.write_packed_uint64(f, u, 2);
            } else {
                x.write_packed_int64(f, v, 2);
            }
            x.write_int64_field(f, 9);
        }
        const Bytes xb = bytes_of(x);
        const TensorProto xt = decode_tensor(xb.data(), xb.size());
        if (dt == 11) CHECK(tensor_to_floats(xt) == std::vector<float>{0.5f, -1.0f, 4.0f});
        else if (dt == 13) CHECK(xt.uint64_data == std::vector<std::uint64_t>{2, 5, 9});
        else CHECK(tensor_to_int64s(xt) == std::vector<std::int64_t>{-2, 5, 9});
    }
}

TEST_CASE("unknown fields of every wire type are skipped, known ones still read") {
    wire::Writer w;
    w.write_varint_field(999, 7);
    w.write_fixed64_field(998, 1);
    w.write_int64_field(field::model::ir_version, 4);
    w.write_bytes_field(997, std::string("junk"));
    w.write_fixed32_field(996, 2);
    w.write_message(field::model::graph, [](wire::Writer& g) {
        g.write_varint_field(3, 1);  // a reserved GraphProto field
        g.write_message(field::graph::node, [](wire::Writer& n) {
            n.write_string_field(field::node::op_type, "Relu");
            n.write_fixed32_field(50, 0);
        });
    });
    w.write_message(field::model::opset_import, [](wire::Writer& o) {
        o.write_int64_field(field::opset::version, 13);
    });
    w.write_message(field::model::training_info, [](wire::Writer&) {});
    const ModelProto m = decode(bytes_of(w));
    CHECK(m.ir_version == 4);
    CHECK(m.default_opset() == 13);
    REQUIRE(m.graph.node.size() == 1);
    CHECK(m.graph.node[0].op_type == "Relu");
}

// ---- typed tensor access ----

TEST_CASE("tensor_to_floats and tensor_to_int64s read raw_data and typed fields") {
    const std::int64_t iv[] = {-1, 0, std::int64_t(1) << 40};
    const TensorProto i = make_int64_tensor("i", {3}, iv);
    CHECK(i.raw_data.size() == 24);
    CHECK(tensor_to_int64s(i) == std::vector<std::int64_t>(iv, iv + 3));

    auto raw = [](std::int32_t dt, std::vector<std::int64_t> dims, std::string bytes) {
        TensorProto t;
        t.name = "r";
        t.data_type = dt;
        t.dims = std::move(dims);
        t.raw_data = std::move(bytes);
        return t;
    };
    using V = std::vector<std::int64_t>;
    CHECK(tensor_to_int64s(raw(3, {2}, "\xff\x7f")) == V{-1, 127});                 // INT8
    CHECK(tensor_to_int64s(raw(2, {2}, "\xff\x7f")) == V{255, 127});                // UINT8
    CHECK(tensor_to_int64s(raw(9, {2}, std::string("\x01\x00", 2))) == V{1, 0});    // BOOL
    CHECK(tensor_to_int64s(raw(5, {1}, "\xfe\xff")) == V{-2});                      // INT16
    CHECK(tensor_to_int64s(raw(4, {1}, "\xfe\xff")) == V{65534});                   // UINT16
    CHECK(tensor_to_int64s(raw(6, {1}, "\xfe\xff\xff\xff")) == V{-2});              // INT32
    CHECK(tensor_to_int64s(raw(12, {1}, "\xfe\xff\xff\xff")) == V{4294967294});     // UINT32
    TensorProto typed_i8 = raw(3, {2}, "");
    typed_i8.int32_data = {-7, 7};
    CHECK(tensor_to_int64s(typed_i8) == V{-7, 7});

    // DOUBLE -> float (exactly representable values, so == is exact).
    TensorProto d = raw(11, {2}, "");
    d.double_data = {0.25, -8.0};
    CHECK(tensor_to_floats(d) == std::vector<float>{0.25f, -8.0f});
    std::string dbytes(8, '\0');
    util::store_le64(reinterpret_cast<unsigned char*>(&dbytes[0]), util::double_bits(-1.5));
    CHECK(tensor_to_floats(raw(11, {1}, dbytes)) == std::vector<float>{-1.5f});

    // A scalar (no dims) holds one element; a zero dim holds none and needs no data.
    const float one = 4.0f;
    CHECK(tensor_to_floats(make_float_tensor("s", {}, &one)) == std::vector<float>{4.0f});
    CHECK(tensor_to_floats(make_float_tensor("e", {0, 5}, nullptr)).empty());

    // Wrong type for the accessor -> unsupported_error naming the tensor.
    auto e1 = expect_throw<unsupported_error>([&] { tensor_to_floats(i); });
    CHECK(contains(e1->what(), "tensor 'i'"));
    CHECK(contains(e1->what(), "INT64"));
    const TensorProto f = make_float_tensor("f", {1}, &one);
    auto e2 = expect_throw<unsupported_error>([&] { tensor_to_int64s(f); });
    CHECK(contains(e2->what(), "tensor 'f'"));
    TensorProto str = raw(8, {1}, "");
    str.string_data = {"s"};
    CHECK_THROWS_AS(tensor_to_int64s(str), unsupported_error);

    // Payload that does not match dims (a hand-built tensor) -> parse_error naming it.
    TensorProto bad = make_float_tensor("bad", {2, 3}, w_values);
    bad.dims = {2, 4};
    auto e3 = expect_throw<parse_error>([&] { tensor_to_floats(bad); });
    CHECK(contains(e3->what(), "tensor 'bad'"));
    CHECK(contains(e3->what(), "24 bytes"));

    CHECK_THROWS_AS(make_float_tensor("n", {-1}, w_values), value_error);
    CHECK_THROWS_AS(make_float_tensor("n", {2}, nullptr), value_error);
}

// ---- files ----

TEST_CASE("write_model / read_model round trip atomically; I/O errors name the path") {
    const fs::path dir = fs::temp_directory_path() / "nanotorch_test_onnx_proto";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string path = (dir / "m.onnx").string();
    write_model(attributes_model(), path);
    write_model(relu_model(), path);  // replaces the existing file
    CHECK(load(path) == golden("relu_opset9.onnx"));
    CHECK(eq(read_model(path), relu_model()));
    CHECK_FALSE(nanotorch::testing::temp_file_left(path));

    const std::string tpath = (dir / "w.pb").string();
    save(tpath, tensor_w_bytes());
    CHECK(tensor_to_floats(read_tensor(tpath)) == std::vector<float>(w_values, w_values + 6));

    auto missing = expect_throw<io_error>([&] { read_model((dir / "nope.onnx").string()); });
    CHECK(missing->path() == (dir / "nope.onnx").string());
    CHECK_THROWS_AS(read_model(dir.string()), io_error);  // a directory
    CHECK_THROWS_AS(write_model(relu_model(), (dir / "no/such/dir/m.onnx").string()), io_error);
    Limits small;
    small.max_file_bytes = 10;
    CHECK_THROWS_AS(read_model(path, small), io_error);

    // A parse error from a file carries its path.
    {
        Bytes b = golden("relu_opset9.onnx");
        b.resize(50);
        save(path, b);
    }
    auto pe = expect_throw<parse_error>([&] { read_model(path); });
    CHECK(pe->path() == path);
    CHECK(contains(pe->what(), path));
    fs::remove_all(dir);
}

// ---- hostile input ----

TEST_CASE("a model truncated at every byte gives parse_error at an offset within the input") {
    // A prefix that ends between two top-level fields is itself a valid protobuf message; once
    // ir_version, graph and one opset_import are in, it is a valid (smaller) model. That can
    // only happen in attributes.onnx, between its two opset_import entries.
    for (const std::string name : {"relu_opset9.onnx", "attributes.onnx"}) {
        const Bytes full = golden(name);
        std::vector<std::size_t> boundaries;  // where each top-level field of the model starts
        for (wire::Reader r(full.data(), full.size()); r.next(); r.skip())
            boundaries.push_back(static_cast<std::size_t>(r.tag_offset()));
        int valid_prefixes = 0;
        for (std::size_t n = 0; n < full.size(); ++n) {
            CAPTURE(name);
            CAPTURE(n);
            const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
            try {
                const ModelProto m = decode(cut);
                ++valid_prefixes;
                CHECK(std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end());
                CHECK(m.opset_import.size() < decode(full).opset_import.size());
            } catch (const parse_error& e) {
                CHECK(e.offset() <= n);
            }
        }
        CHECK(valid_prefixes == (name == "attributes.onnx" ? 1 : 0));
    }
}

TEST_CASE("seeded random bit flips only ever raise nanotorch::error, and what decodes re-encodes") {
    std::mt19937 rng(20240601u);
    for (const std::string name : {"attributes.onnx", "relu_opset9.onnx", "tensor_w.pb"}) {
        const Bytes base = golden(name);
        const bool is_tensor = name == "tensor_w.pb";
        int decoded = 0, rejected = 0, other = 0, unstable = 0;
        for (int iter = 0; iter < 2000; ++iter) {
            Bytes b = base;
            const int flips = 1 + static_cast<int>(rng() % 3);
            for (int k = 0; k < flips; ++k)
                b[rng() % b.size()] ^= static_cast<unsigned char>(1u << (rng() % 8));
            try {
                if (is_tensor) {
                    const TensorProto t = decode_tensor(b.data(), b.size());
                    const Bytes again = encode_tensor(t);
                    if (!eq(decode_tensor(again.data(), again.size()), t)) ++unstable;
                } else {
                    const ModelProto m = decode(b);
                    if (!eq(decode(encode_model(m)), m)) ++unstable;
                }
                ++decoded;
            } catch (const nanotorch::error&) {
                ++rejected;
            } catch (...) {
                ++other;
            }
        }
        CAPTURE(name);
        MESSAGE(name, ": 2000 bit-flipped copies, ", decoded, " decoded, ", rejected, " rejected");
        CHECK(other == 0);
        CHECK(unstable == 0);
        CHECK(decoded > 0);  // the test exercises both outcomes
        CHECK(rejected > 0);
    }
}

TEST_CASE("dims claiming 2^40 elements are rejected before anything is allocated") {
    ModelProto m = relu_model();
    m.graph.initializer[0].dims = {std::int64_t(1) << 20, std::int64_t(1) << 20};
    auto e = expect_throw<parse_error>([&] { decode(encode_model(m)); });
    CHECK(contains(e->message(), "ModelProto.graph.initializer[0]"));
    CHECK(contains(e->message(), "tensor 'w'"));
    CHECK(contains(e->message(), "limit"));
    TensorProto big = make_float_tensor("big", {2}, w_values);
    big.dims = {std::int64_t(1) << 40};
    const Bytes bb = encode_tensor(big);
    auto eb = expect_throw<parse_error>([&] { decode_tensor(bb.data(), bb.size()); });
    CHECK(contains(eb->message(), "TensorProto: tensor 'big': dims [1099511627776]"));
    // A product that overflows 64 bits, and a negative dim.
    m.graph.initializer[0].dims = {std::int64_t(1) << 40, std::int64_t(1) << 40, 16};
    CHECK_THROWS_AS(decode(encode_model(m)), parse_error);
    m.graph.initializer[0].dims = {-2, -3};
    auto neg = expect_throw<parse_error>([&] { decode(encode_model(m)); });
    CHECK(contains(neg->message(), "negative"));
    // Just under a lowered limit passes; just over fails.
    Limits l;
    l.max_tensor_elements = 6;
    CHECK_NOTHROW(decode(golden("relu_opset9.onnx"), l));
    l.max_tensor_elements = 5;
    CHECK_THROWS_AS(decode(golden("relu_opset9.onnx"), l), parse_error);
}

TEST_CASE("a payload that does not match dims and type is a parse_error naming the tensor") {
    auto check_rejected = [](TensorProto t, const char* what) {
        CAPTURE(what);
        ModelProto m = relu_model();
        m.graph.initializer[0] = std::move(t);
        auto e = expect_throw<parse_error>([&] { decode(encode_model(m)); });
        if (!e) return;
        CHECK(contains(e->message(), "ModelProto.graph.initializer[0]"));
        CHECK(contains(e->message(), "tensor 'w'"));
        CHECK(contains(e->message(), what));
    };
    TensorProto t = make_float_tensor("w", {2, 3}, w_values);
    t.raw_data.pop_back();
    check_rejected(t, "raw_data holds 23 bytes");
    t = make_float_tensor("w", {2, 3}, w_values);
    t.raw_data += "xxxx";
    check_rejected(t, "raw_data holds 28 bytes");
    t = make_float_tensor("w", {2, 3}, w_values);
    t.float_data = {1.0f};
    check_rejected(t, "as well as raw_data");
    t = make_float_tensor("w", {2, 3}, w_values);
    t.raw_data.clear();
    check_rejected(t, "float_data holds 0 values");
    t.float_data = {1, 2, 3, 4, 5, 6};
    t.int64_data = {1};
    check_rejected(t, "int64_data");
    t = TensorProto{};
    t.name = "w";
    t.data_type = 8;  // STRING
    t.dims = {1};
    t.raw_data = "x";
    check_rejected(t, "STRING");
    // An unknown data type is carried through for the runtime to reject.
    t = make_float_tensor("w", {2, 3}, w_values);
    t.data_type = 1000;
    ModelProto m = relu_model();
    m.graph.initializer[0] = t;
    CHECK(decode(encode_model(m)).graph.initializer[0].data_type == 1000);
}

TEST_CASE("external data is an unsupported_error naming the tensor") {
    ModelProto m = relu_model();
    m.graph.initializer[0].data_location = 1;
    auto e = expect_throw<unsupported_error>([&] { decode(encode_model(m)); });
    CHECK(contains(e->what(), "tensor 'w'"));
    CHECK(contains(e->what(), "external"));
    // external_data entries without data_location.
    wire::Writer w;
    w.write_int64_field(field::tensor::dims, 1);
    w.write_int32_field(field::tensor::data_type, FLOAT);
    w.write_string_field(field::tensor::name, "ext");
    w.write_message(field::tensor::external_data, [](wire::Writer& kv) {
        kv.write_string_field(field::string_entry::key, "location");
        kv.write_string_field(field::string_entry::value, "weights.bin");
    });
    const Bytes b = bytes_of(w);
    auto e2 = expect_throw<unsupported_error>([&] { decode_tensor(b.data(), b.size(), "ext.pb"); });
    CHECK(contains(e2->what(), "tensor 'ext'"));
    CHECK(contains(e2->what(), "ext.pb"));
}

TEST_CASE("limits: node count, nesting depth and input size") {
    ModelProto m = relu_model();
    for (int i = 0; i < 4; ++i) m.graph.node.push_back(m.graph.node[0]);
    const Bytes b = encode_model(m);
    Limits l;
    l.max_nodes = 5;
    CHECK(decode(b, l).graph.node.size() == 5);
    l.max_nodes = 4;
    auto e = expect_throw<parse_error>([&] { decode(b, l); });
    CHECK(contains(e->message(), "more than the limit of 4 nodes"));
    // Subgraph nodes count too: attributes.onnx has 2 + 1 (e_graph) + 2 (j_graphs) nodes.
    l.max_nodes = 4;
    CHECK_THROWS_AS(decode(golden("attributes.onnx"), l), parse_error);
    l.max_nodes = 5;
    CHECK_NOTHROW(decode(golden("attributes.onnx"), l));

    // attributes.onnx nests model > graph > node > attribute > g > input > type > tensor_type >
    // shape > dim: depth 9 below the model.
    Limits d;
    d.max_depth = 9;
    CHECK_NOTHROW(decode(golden("attributes.onnx"), d));
    d.max_depth = 8;
    auto de = expect_throw<parse_error>([&] { decode(golden("attributes.onnx"), d); });
    CHECK(contains(de->message(), "nested deeper"));

    Limits s;
    s.max_file_bytes = 139;
    CHECK_THROWS_AS(decode(golden("relu_opset9.onnx"), s), parse_error);
    s.max_file_bytes = 140;
    CHECK_NOTHROW(decode(golden("relu_opset9.onnx"), s));
}

TEST_CASE("errors carry the message path and the byte offset") {
    // Turn Softmax's axis (field 3, varint: tag 0x18) into a fixed32 (tag 0x1D): same length.
    Bytes b = golden("attributes.onnx");
    const Bytes needle = {'a', 'x', 'i', 's', 0x18};
    const auto it = std::search(b.begin(), b.end(), needle.begin(), needle.end());
    REQUIRE(it != b.end());
    const auto tag_at = static_cast<std::uint64_t>(it - b.begin()) + 4;
    b[tag_at] = 0x1D;
    auto e = expect_throw<parse_error>([&] { decode(b); });
    CHECK(e->offset() == tag_at);
    CHECK(e->message().rfind("ModelProto.graph.node[1].attribute[0]: field 3:", 0) == 0);

    // Not a model at all, an empty buffer, and a model without its graph.
    const Bytes text = {'h', 'e', 'l', 'l', 'o'};
    CHECK_THROWS_AS(decode(text), parse_error);
    auto empty = expect_throw<parse_error>([&] { decode(Bytes{}); });
    CHECK(contains(empty->message(), "ir_version"));
    wire::Writer w;
    w.write_int64_field(field::model::ir_version, 7);
    auto no_graph = expect_throw<parse_error>([&] { decode(bytes_of(w)); });
    CHECK(contains(no_graph->message(), "graph"));
}

// ---- ONNX backend conformance data (Debian libonnx-testdata) ----

TEST_CASE("the ONNX backend test_relu model and its tensors" *
          doctest::skip(!have_conformance())) {
    const std::string dir = conformance_dir + "/node/test_relu";
    const ModelProto m = read_model(dir + "/model.onnx");
    REQUIRE(m.graph.node.size() == 1);
    CHECK(m.graph.node[0].op_type == "Relu");
    CHECK(m.default_opset() >= 6);  // Relu-6, -13 or -14, depending on the onnx release
    CHECK(m.graph.input[0].shape.size() == 3);
    const TensorProto x = read_tensor(dir + "/test_data_set_0/input_0.pb");
    const TensorProto y = read_tensor(dir + "/test_data_set_0/output_0.pb");
    CHECK(x.dims == std::vector<std::int64_t>{3, 4, 5});
    const auto xs = tensor_to_floats(x);
    const auto ys = tensor_to_floats(y);
    REQUIRE(xs.size() == 60);
    REQUIRE(ys.size() == 60);
    // Relu is exact in float32, so the reference output must match max(x, 0) bit for bit.
    for (std::size_t i = 0; i < xs.size(); ++i) CHECK(ys[i] == (xs[i] > 0 ? xs[i] : 0.0f));
}

TEST_CASE("every conformance model decodes and survives decode -> encode -> decode" *
          doctest::skip(!have_conformance())) {
    int models = 0, failures = 0;
    for (const auto& entry : fs::recursive_directory_iterator(conformance_dir)) {
        if (entry.path().extension() != ".onnx") continue;
        ++models;
        const std::string path = entry.path().string();
        try {
            const ModelProto m = read_model(path);
            if (!eq(decode(encode_model(m)), m)) {
                ++failures;
                MESSAGE("round trip differs: ", path);
            }
        } catch (const nanotorch::error& e) {
            ++failures;
            MESSAGE(e.what());
        }
    }
    MESSAGE(models, " conformance models decoded");
    CHECK(models > 100);
    CHECK(failures == 0);
}
