// tests/fuzz/make_seeds.cpp — writes the small seed files committed under tests/fuzz/seeds/
// (run: make_seeds OUTDIR; scripts/fuzz.sh adds the large real files itself). Deterministic:
// fixed seeds and synthetic digits, so re-running it reproduces the committed bytes.
//
// Build and run (from the repo root): g++ -std=c++17 -Iinclude -isystem /usr/include/stb -pthread
//   tests/fuzz/make_seeds.cpp -o /tmp/make_seeds && /tmp/make_seeds tests/fuzz/seeds
//
//   fuzz_onnx/, fuzz_wire/   two tiny exported models (conv, pool, relu, flatten, gemm, softmax)
//                            at opset 9 and 13, the second with a symbolic batch dimension;
//                            fuzz_onnx/ also a hand-built opset-17 graph of typed shape
//                            arithmetic and the runtime-only ops, and an opset-3 legacy graph
//   fuzz_state_dict/         the weights of fuzz_state_dict's own module (loads strictly)
//   fuzz_idx/                IDX images/labels of ranks 1..4, and gzip forms (stored, fixed and
//                            dynamic Huffman blocks, optional header fields)
//   fuzz_image/              one 28x28 digit as 8-bit gray PNG, RGBA PNG, JPEG (baseline),
//                            BMP, an IDX file and a TensorProto .pb
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include <nanotorch/nanotorch.hpp>

using namespace nanotorch;
using Bytes = std::vector<unsigned char>;

namespace {

std::string g_out;

void put(const std::string& target, const std::string& name, const Bytes& b) {
    std::filesystem::create_directories(g_out + "/" + target);
    std::ofstream(g_out + "/" + target + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void append_le32(Bytes& b, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

// gzip member around raw deflate data made by stb_image_write's zlib encoder (its 2-byte zlib
// header and 4-byte Adler-32 trailer stripped). flags adds FNAME/FCOMMENT/FEXTRA fields.
Bytes gzip(const Bytes& raw, int quality, unsigned flags) {
    int len = 0;
    unsigned char* z = stbi_zlib_compress(const_cast<unsigned char*>(raw.data()), int(raw.size()), &len, quality);
    Bytes out = {0x1F, 0x8B, 8, static_cast<unsigned char>(flags), 0, 0, 0, 0, 0, 3};
    if (flags & 0x04) out.insert(out.end(), {3, 0, 'a', 'b', 'c'});
    if (flags & 0x08) out.insert(out.end(), {'x', '.', 'i', 'd', 'x', 0});
    if (flags & 0x10) out.insert(out.end(), {'h', 'i', 0});
    out.insert(out.end(), z + 2, z + len - 4);
    STBIW_FREE(z);
    append_le32(out, util::crc32(raw.data(), raw.size()));
    append_le32(out, static_cast<std::uint32_t>(raw.size()));
    return out;
}

// A stored-block gzip member (deflate BTYPE 00), which stb_image_write never emits.
Bytes gzip_stored(const Bytes& raw) {
    Bytes out = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0x01};
    const auto n = static_cast<std::uint16_t>(raw.size());
    out.insert(out.end(), {static_cast<unsigned char>(n), static_cast<unsigned char>(n >> 8),
                           static_cast<unsigned char>(~n), static_cast<unsigned char>(~n >> 8)});
    out.insert(out.end(), raw.begin(), raw.end());
    append_le32(out, util::crc32(raw.data(), raw.size()));
    append_le32(out, static_cast<std::uint32_t>(raw.size()));
    return out;
}

Bytes idx(const std::vector<std::uint32_t>& dims, const Bytes& payload) {
    Bytes b = {0, 0, 8, static_cast<unsigned char>(dims.size())};
    for (const std::uint32_t d : dims)
        for (int i = 3; i >= 0; --i) b.push_back(static_cast<unsigned char>(d >> (8 * i)));
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

// A 28x28 "7": white ink on black, like MNIST.
Bytes digit() {
    Bytes px(28 * 28, 0);
    for (int x = 6; x < 22; ++x) px[6 * 28 + x] = px[7 * 28 + x] = 255;
    for (int y = 8; y < 23; ++y) {
        const int x = 21 - (y - 8) / 2;
        px[y * 28 + x] = px[y * 28 + x - 1] = 230;
    }
    return px;
}

void sink(void* ctx, void* data, int n) {
    auto* b = static_cast<Bytes*>(ctx);
    b->insert(b->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + n);
}

// ---- hand-built ONNX graphs (the ops and element types exporters other than ours write) ----

onnx::AttributeProto attr_i(const char* name, std::int64_t v) {
    onnx::AttributeProto a;
    a.name = name, a.type = onnx::AttributeType::int_, a.i = v;
    return a;
}
onnx::AttributeProto attr_f(const char* name, float v) {
    onnx::AttributeProto a;
    a.name = name, a.type = onnx::AttributeType::float_, a.f = v;
    return a;
}
onnx::AttributeProto attr_is(const char* name, std::vector<std::int64_t> v) {
    onnx::AttributeProto a;
    a.name = name, a.type = onnx::AttributeType::ints, a.ints = std::move(v);
    return a;
}
onnx::AttributeProto attr_s(const char* name, const char* v) {
    onnx::AttributeProto a;
    a.name = name, a.type = onnx::AttributeType::string, a.s = v;
    return a;
}
onnx::NodeProto op(const char* type, std::vector<std::string> in, std::vector<std::string> out,
                   std::vector<onnx::AttributeProto> attrs = {}) {
    onnx::NodeProto n;
    n.op_type = type, n.input = std::move(in), n.output = std::move(out), n.attribute = std::move(attrs);
    n.name = n.output[0];
    return n;
}
onnx::ValueInfoProto value_info(const char* name, onnx::DataType t, std::vector<std::int64_t> dims) {
    onnx::ValueInfoProto v;
    v.name = name, v.elem_type = static_cast<std::int32_t>(t), v.has_shape = true;
    for (const auto d : dims) {
        onnx::Dimension dim;
        dim.has_value = true, dim.value = d;
        v.shape.push_back(dim);
    }
    return v;
}
onnx::TensorProto ints_init(const char* name, std::vector<std::int64_t> v) {
    return onnx::make_int64_tensor(name, {static_cast<std::int64_t>(v.size())}, v.data());
}
onnx::TensorProto floats_init(const char* name, std::vector<std::int64_t> dims, std::vector<float> v) {
    return onnx::make_float_tensor(name, std::move(dims), v.data());
}
onnx::ModelProto graph_model(std::int64_t opset, std::vector<onnx::NodeProto> nodes, std::vector<onnx::TensorProto> inits,
                             std::vector<std::pair<const char*, onnx::DataType>> outputs) {
    onnx::ModelProto m;
    m.ir_version = opset >= 13 ? 7 : 3;
    m.opset_import.push_back({"", opset});
    m.graph.name = "seed";
    m.graph.node = std::move(nodes);
    m.graph.initializer = std::move(inits);
    m.graph.input.push_back(value_info("x", onnx::DataType::float32, {1, 2, 4, 4}));
    for (const auto& [name, type] : outputs) {
        onnx::ValueInfoProto v;
        v.name = name, v.elem_type = static_cast<std::int32_t>(type);
        m.graph.output.push_back(v);
    }
    return m;
}

// Shape arithmetic on INT64/BOOL/INT32/DOUBLE values and the runtime-only ops, at opset 17.
onnx::ModelProto typed_graph() {
    using DT = onnx::DataType;
    const auto to = [](DT t) { return attr_i("to", static_cast<std::int64_t>(t)); };
    std::vector<onnx::NodeProto> n = {
        op("Shape", {"x"}, {"s"}), op("Size", {"x"}, {"size"}), op("Equal", {"s", "ones"}, {"is1"}),
        op("Not", {"is1"}, {"not1"}), op("Or", {"is1", "not1"}, {"all"}), op("And", {"all", "is1"}, {"and"}),
        op("Xor", {"and", "not1"}, {"xor"}), op("Where", {"xor", "s", "ones"}, {"shape2"}),
        op("Cast", {"shape2"}, {"s32"}, {to(DT::int32)}), op("Cast", {"s32"}, {"s64"}, {to(DT::int64)}),
        op("ConstantOfShape", {"s64"}, {"zeros"}), op("Expand", {"x", "s64"}, {"ex"}),
        op("Range", {"zero", "four", "one"}, {"r"}), op("Less", {"r", "s"}, {"lt"}),
        op("Sum", {"ex", "zeros", "x"}, {"sum"}), op("Max", {"sum", "x"}, {"mx"}), op("Min", {"mx", "x"}, {"mn"}),
        op("Mean", {"mn", "x"}, {"mean"}), op("ArgMax", {"mean"}, {"am"}, {attr_i("axis", 1)}),
        op("Tile", {"mean", "tiles"}, {"tiled"}), op("Split", {"tiled"}, {"a", "b"}, {attr_i("axis", 3)}),
        op("Cast", {"a"}, {"ad"}, {to(DT::float64)}), op("Add", {"ad", "ad"}, {"add_d"}),
        op("Cast", {"add_d"}, {"u8"}, {to(DT::uint8)}), op("Mod", {"u8", "three"}, {"mod"}),
        op("Resize", {"b", "", "scales"}, {"up"}, {attr_s("mode", "linear")}),
        op("ConvTranspose", {"up", "wt"}, {"ct"}, {attr_is("strides", {2, 2}), attr_i("group", 2)}),
        op("LayerNormalization", {"ct", "gamma"}, {"ln"}, {attr_i("axis", -1)}),
        op("InstanceNormalization", {"ln", "ch", "ch"}, {"inorm"}), op("LRN", {"inorm"}, {"lrn"}, {attr_i("size", 3)}),
        op("ReduceL2", {"lrn"}, {"l2"}, {attr_is("axes", {2})}), op("ReduceMin", {"l2"}, {"rmin"}),
        op("Floor", {"l2"}, {"fl"}), op("Sin", {"fl"}, {"sin"}), op("PRelu", {"sin", "ch3"}, {"pr"}),
        op("Selu", {"pr"}, {"selu"}), op("Trilu", {"selu"}, {"tri"}), op("Hardmax", {"tri"}, {"hm"}),
    };
    std::vector<onnx::TensorProto> inits = {
        ints_init("ones", {1, 1, 1, 1}), ints_init("tiles", {1, 1, 1, 2}), floats_init("scales", {4}, {1, 1, 2, 1}),
        floats_init("wt", {2, 1, 2, 2}, {1, -1, 0.5f, 2, 0, 1, -2, 0.25f}), floats_init("gamma", {8}, std::vector<float>(8, 1)),
        floats_init("ch", {2}, {1, 0.5f}), floats_init("ch3", {2, 1, 1}, {0.1f, 0.2f})};
    for (const auto& [name, v] : std::vector<std::pair<const char*, std::int64_t>>{{"zero", 0}, {"four", 4}, {"one", 1}})
        inits.push_back(onnx::make_int64_tensor(name, {}, &v));
    const std::int64_t three = 3;
    inits.push_back(onnx::make_integer_tensor("three", {}, &three, DT::uint8));
    return graph_model(17, std::move(n), std::move(inits), {{"size", DT::int64}, {"lt", DT::boolean}, {"am", DT::int64}, {"mod", DT::uint8}, {"rmin", DT::float32}, {"hm", DT::float32}});
}

// A 2017-style graph at opset 3: legacy broadcast/axis, Reshape's shape attribute, Concat's
// default axis, Cast's string 'to', is_test on BatchNormalization and Dropout.
onnx::ModelProto legacy_graph() {
    std::vector<onnx::NodeProto> n = {
        op("Add", {"x", "bias"}, {"biased"}, {attr_i("broadcast", 1), attr_i("axis", 1)}),
        op("BatchNormalization", {"biased", "ch", "ch", "ch", "ch"}, {"bn"}, {attr_i("is_test", 1), attr_i("consumed_inputs", 0)}),
        op("Dropout", {"bn"}, {"drop"}, {attr_i("is_test", 1), attr_f("ratio", 0.5f)}),
        op("Concat", {"drop", "x"}, {"cat"}), op("Reshape", {"cat"}, {"flat"}, {attr_is("shape", {1, -1})}),
        op("Cast", {"flat"}, {"y"}, {attr_s("to", "DOUBLE")}),
    };
    return graph_model(3, std::move(n), {floats_init("bias", {2}, {1, -1}), floats_init("ch", {2}, {1, 2})},
                       {{"y", onnx::DataType::float64}});
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seeds OUTDIR\n");
        return 2;
    }
    g_out = argv[1];

    // ---- ONNX (also the wire target's seeds) ----
    manual_seed(11);
    nn::Sequential net(nn::Conv2d(1, 2, 3), nn::MaxPool2d(2), nn::ReLU(), nn::Flatten(), nn::Linear(8, 3),
                       nn::Softmax(1));
    onnx::ExportOptions o9;
    onnx::ExportOptions o13;
    o13.opset = 13;
    o13.dynamic_batch = true;
    const Bytes m9 = onnx::encode_model(onnx::trace_module(*net.ptr(), zeros({1, 1, 6, 6}), o9));
    const Bytes m13 = onnx::encode_model(onnx::trace_module(*net.ptr(), zeros({1, 1, 6, 6}), o13));
    for (const char* t : {"fuzz_onnx", "fuzz_wire"}) {
        put(t, "tiny_opset9.onnx", m9);
        put(t, "tiny_opset13_batch.onnx", m13);
    }
    // Runs in the runtime as they are (the fuzz target's run phase reaches the new ops and types).
    for (const auto& [name, m] : {std::make_pair("typed_opset17.onnx", typed_graph()), std::make_pair("legacy_opset3.onnx", legacy_graph())}) {
        onnx::Runtime check(m);  // a seed that does not load would only teach the fuzzer the refusal
        put("fuzz_onnx", name, onnx::encode_model(m));
    }

    // ---- state_dict: the module fuzz_state_dict.cpp loads into (same seed, same layers) ----
    manual_seed(7);
    nn::Sequential sd(nn::Conv2d(1, 2, 3), nn::ReLU(), nn::Flatten(), nn::Linear(8, 3));
    put("fuzz_state_dict", "module.ntsd", nn::encode_state_dict(nn::state_dict(*sd.ptr())));

    // ---- IDX ----
    const Bytes d = digit();
    Bytes two = d;
    two.insert(two.end(), d.rbegin(), d.rend());
    const Bytes images = idx({2, 28, 28}, two);
    const Bytes labels = idx({2}, {7, 3});
    put("fuzz_idx", "images2.idx", images);
    put("fuzz_idx", "labels2.idx", labels);
    put("fuzz_idx", "rank2.idx", idx({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
    put("fuzz_idx", "rank4_empty.idx", idx({2, 0, 3, 1}, {}));
    put("fuzz_idx", "images2_dynamic.idx.gz", gzip(images, 8, 0));
    put("fuzz_idx", "labels2_fields.idx.gz", gzip(labels, 5, 0x04 | 0x08 | 0x10));
    put("fuzz_idx", "labels2_stored.idx.gz", gzip_stored(labels));

    // ---- images, and the other inputs onnx_run accepts ----
    Bytes rgba;
    for (const unsigned char v : d) rgba.insert(rgba.end(), {0, 0, 0, v});  // ink in alpha, as a canvas saves it
    Bytes png_gray, png_rgba, jpg, bmp;
    stbi_write_png_to_func(sink, &png_gray, 28, 28, 1, d.data(), 28);
    stbi_write_png_to_func(sink, &png_rgba, 28, 28, 4, rgba.data(), 28 * 4);
    stbi_write_jpg_to_func(sink, &jpg, 28, 28, 1, d.data(), 75);
    stbi_write_bmp_to_func(sink, &bmp, 28, 28, 1, d.data());
    put("fuzz_image", "digit_gray.png", png_gray);
    put("fuzz_image", "digit_rgba.png", png_rgba);
    put("fuzz_image", "digit.jpg", jpg);
    put("fuzz_image", "digit.bmp", bmp);
    put("fuzz_image", "digit.idx", idx({1, 28, 28}, d));
    put("fuzz_image", "digit.idx.gz", gzip(idx({1, 28, 28}, d), 8, 0));
    const float values[4] = {0.5f, -1.0f, 2.0f, 0.0f};
    put("fuzz_image", "tensor.pb", onnx::encode_tensor(onnx::make_float_tensor("x", {2, 2}, values)));
    return 0;
}
