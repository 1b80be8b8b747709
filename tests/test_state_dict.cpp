// Tests for nn/serialize.hpp: the state_dict file format (golden bytes), save -> load round trips
// (bit-exact, in place, across Module classes with the same names), name and shape mismatches
// (one error listing everything, module left unchanged), and hostile files: truncation at every
// byte, every single-byte corruption, bad magic/version, oversized and overflowing size fields,
// trailing bytes, missing and unwritable paths. A replaced global operator new records the
// largest allocation, so "no huge allocation driven by a size field" is checked, not assumed.
// Everything here is exact (byte formats and copies); no tolerance except the softmax check,
// which states its own.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include <nanotorch/nn/serialize.hpp>

#include <nanotorch/nanotorch.hpp>

#include "support/temp_dir.hpp"
#include "support/expect.hpp"
#include "support/replace_new.hpp"

namespace nt = nanotorch;
namespace nn = nanotorch::nn;
namespace fs = std::filesystem;
using nt::Tensor;
using Bytes = std::vector<unsigned char>;

// ---- allocation probe ----
// support/replace_new.hpp routes every operator new through on_allocation; only the largest
// request is recorded.

namespace {
std::atomic<std::size_t> largest_allocation{0};

void note_allocation(std::size_t n) {
    std::size_t prev = largest_allocation.load(std::memory_order_relaxed);
    while (n > prev && !largest_allocation.compare_exchange_weak(prev, n, std::memory_order_relaxed)) {
    }
}
}  // namespace

void nanotorch::testing::on_allocation(std::size_t n) { note_allocation(n); }

namespace {

// ---- helpers ----

using nanotorch::testing::TempDir;

using nanotorch::testing::write_file;

Bytes read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Builds state_dict bytes field by field, so a test can put any value in any field.
struct Writer {
    Bytes b;
    Writer& raw(const std::string& s) {
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Writer& u32(std::uint32_t v) {
        unsigned char t[4];
        nt::util::store_le32(t, v);
        b.insert(b.end(), t, t + 4);
        return *this;
    }
    Writer& u64(std::uint64_t v) {
        unsigned char t[8];
        nt::util::store_le64(t, v);
        b.insert(b.end(), t, t + 8);
        return *this;
    }
    Writer& f32(float v) { return u32(nt::util::float_bits(v)); }
    Writer& zeros(std::size_t n) {
        b.insert(b.end(), n, 0);
        return *this;
    }
    Writer& header(std::uint32_t count) { return raw("NTSD").u32(1).u32(count); }
    Writer& name(const std::string& s) { return u32(static_cast<std::uint32_t>(s.size())).raw(s); }
    /// Appends the CRC-32 of everything so far: the result is well-formed up to its fields.
    Bytes finish() {
        Bytes out = b;
        unsigned char t[4];
        nt::util::store_le32(t, nt::util::crc32(out.data(), out.size()));
        out.insert(out.end(), t, t + 4);
        return out;
    }
};

using nanotorch::testing::catch_parse_error;

nt::parse_error decode_error(const Bytes& b) {
    return catch_parse_error([&] { nn::decode_state_dict(b.data(), b.size(), "mem.ntsd"); });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Bit patterns of every parameter and buffer, for exact comparisons (NaN and −0 included).
std::vector<std::uint32_t> bits_of(const nn::Module& m) {
    std::vector<std::uint32_t> out;
    for (auto& e : nn::state_dict(m))
        for (float v : e.second.to_vector()) out.push_back(nt::util::float_bits(v));
    return out;
}

// ---- test modules ----

// The seed's training network: conv1, conv2, conv2_drop (no parameters), fc1, fc2.
struct Net : nn::Module {
    nn::Conv2d conv1{nullptr}, conv2{nullptr};
    nn::Dropout2d conv2_drop{nullptr};
    nn::Linear fc1{nullptr}, fc2{nullptr};
    explicit Net(nt::Generator& gen) {
        conv1 = register_module("conv1", nn::Conv2d(1, 10, 5, gen));
        conv2 = register_module("conv2", nn::Conv2d(10, 20, 5, gen));
        conv2_drop = register_module("conv2_drop", nn::Dropout2d());
        fc1 = register_module("fc1", nn::Linear(320, 50, gen));
        fc2 = register_module("fc2", nn::Linear(50, 10, gen));
    }
    Tensor forward(const Tensor& input) override {
        Tensor x = nt::F::relu(nt::F::max_pool2d(conv1(input), 2));
        x = nt::F::relu(nt::F::max_pool2d(conv2_drop(conv2(x)), 2));
        x = nt::F::relu(fc1(x.view({-1, 320})));
        x = nt::F::dropout(x, 0.5f, is_training());
        return nt::F::log_softmax(fc2(x), 1);
    }
};

// The seed's InferenceNet: the same parameter names, no dropout module, softmax at the end.
struct InferenceNet : nn::Module {
    nn::Conv2d conv1{nullptr}, conv2{nullptr};
    nn::Linear fc1{nullptr}, fc2{nullptr};
    InferenceNet() {
        nt::Generator gen(1000);
        conv1 = register_module("conv1", nn::Conv2d(1, 10, 5, gen));
        conv2 = register_module("conv2", nn::Conv2d(10, 20, 5, gen));
        fc1 = register_module("fc1", nn::Linear(320, 50, gen));
        fc2 = register_module("fc2", nn::Linear(50, 10, gen));
    }
    Tensor forward(const Tensor& input) override {
        Tensor x = nt::F::relu(nt::F::max_pool2d(conv1(input), 2));
        x = nt::F::relu(nt::F::max_pool2d(conv2(x), 2));
        x = nt::F::relu(fc1(x.view({-1, 320})));
        return nt::F::softmax(fc2(x), 1);
    }
};

// A small module with a parameter, a buffer and a nested Linear: names w, inner.weight,
// inner.bias, stats.
struct Small : nn::Module {
    Tensor w, stats;
    nn::Linear inner{nullptr};
    Small(std::int64_t out_features, nt::Generator& gen) {
        w = register_parameter("w", nt::uniform({2, 3}, -1.0f, 1.0f, gen));
        inner = register_module("inner", nn::Linear(3, out_features, gen));
        stats = register_buffer("stats", nt::uniform({4}, 0.0f, 1.0f, gen));
    }
};

}  // namespace

// ---- format ----

TEST_CASE("golden bytes of a one-parameter state_dict") {
    nn::Module m;
    m.register_parameter("w", nt::tensor({1.0f, -2.0f}));
    const Bytes got = nn::encode_state_dict(nn::state_dict(m));
    const Bytes body = {'N', 'T', 'S', 'D', 1, 0, 0, 0,  // magic, version 1
                        1, 0, 0, 0,                      // 1 entry
                        1, 0, 0, 0, 'w',                 // name_len 1, "w"
                        1, 0, 0, 0,                      // ndim 1
                        2, 0, 0, 0, 0, 0, 0, 0,          // dim 2 (int64)
                        0x00, 0x00, 0x80, 0x3F,          // 1.0f
                        0x00, 0x00, 0x00, 0xC0};         // -2.0f
    REQUIRE(got.size() == body.size() + 4);
    CHECK(Bytes(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(body.size())) == body);
    CHECK(nt::util::load_le32(got.data() + body.size()) == nt::util::crc32(body.data(), body.size()));
    // The Writer used by the hostile-file tests below produces the same bytes.
    CHECK(Writer().header(1).name("w").u32(1).u64(2).f32(1.0f).f32(-2.0f).finish() == got);
}

// ---- round trips ----

TEST_CASE("save -> load into a fresh module is bit-exact, in place, including buffers") {
    TempDir dir;
    const std::string path = dir.file("net.ntsd");
    nt::Generator g1(1), g2(2);
    Small a(4, g1), b(4, g2);
    {
        nt::NoGradGuard ng;  // special values must survive too
        a.w.at({0, 0}) = -0.0f;
        a.w.at({0, 1}) = std::numeric_limits<float>::quiet_NaN();
        a.w.at({0, 2}) = std::numeric_limits<float>::infinity();
        a.w.at({1, 0}) = std::numeric_limits<float>::denorm_min();
    }
    REQUIRE(bits_of(a) != bits_of(b));
    const Tensor handle = b.inner->weight;  // e.g. held by an optimizer
    const float* storage_before = handle.data_ptr();

    nn::save_state_dict(a, path);
    CHECK_FALSE(nanotorch::testing::temp_file_left(path));  // written atomically: the temporary is gone
    nn::load_state_dict(b, path);
    CHECK(bits_of(b) == bits_of(a));
    CHECK(handle.data_ptr() == storage_before);  // copied into the existing storage
    CHECK(handle.to_vector() == a.inner->weight.to_vector());
    CHECK(b.w.requires_grad());  // still a trainable leaf

    // The in-memory pair gives the same bytes as the file.
    const Bytes bytes = read_file(path);
    CHECK(nn::encode_state_dict(nn::state_dict(a)) == bytes);
    const auto entries = nn::decode_state_dict(bytes.data(), bytes.size());
    REQUIRE(entries.size() == 4);
    CHECK(entries[3].first == "stats");
    CHECK(entries[1].second.shape() == nt::Shape{4, 3});

    // Saving over an existing file replaces it.
    nn::save_state_dict(b, path);
    CHECK(read_file(path) == bytes);
}

TEST_CASE("a strided tensor is saved in row-major order and loads into a strided one") {
    nn::Module src, dst;
    src.register_buffer("t", nt::tensor({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1));  // [[1,4],[2,5],[3,6]]
    Tensor dst_t = dst.register_buffer("t", nt::zeros({2, 3}).transpose(0, 1));
    const Bytes bytes = nn::encode_state_dict(nn::state_dict(src));
    nn::load_state_dict(dst, nn::decode_state_dict(bytes.data(), bytes.size()));
    CHECK(dst_t.to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("weights load into another Module class with the same parameter names (Net -> InferenceNet)") {
    TempDir dir;
    const std::string path = dir.file("pytorch_model.ntsd");
    nt::Generator gen(7);
    Net net(gen);
    nn::save_state_dict(net, path);
    InferenceNet inference;
    nn::load_state_dict(inference, path);

    net.eval();  // dropout off, so both compute the same function up to the last step
    const Tensor x = nt::uniform({3, 1, 28, 28}, 0.0f, 1.0f, gen);
    const std::vector<float> logp = net.forward(x).to_vector();
    const std::vector<float> prob = inference.forward(x).to_vector();
    REQUIRE(logp.size() == prob.size());
    // exp(log_softmax) vs softmax, both float32: a few ulp apart; 1e-5 relative + 1e-7 absolute.
    for (std::size_t i = 0; i < prob.size(); ++i) {
        CAPTURE(i);
        CHECK(std::fabs(std::exp(logp[i]) - prob[i]) <= 1e-5f * prob[i] + 1e-7f);
    }
}

// ---- name and shape mismatches ----

TEST_CASE("missing and unexpected names are all listed in one value_error; strict=false loads the rest") {
    nn::Module from, into;
    from.register_parameter("a", nt::ones({2}));
    from.register_parameter("b", nt::ones({2}));
    from.register_parameter("extra1", nt::ones({1}));
    from.register_parameter("extra2", nt::ones({1}));
    Tensor a = into.register_parameter("a", nt::zeros({2}));
    into.register_parameter("gone1", nt::zeros({1}));
    into.register_buffer("gone2", nt::zeros({1}));
    Tensor b = into.register_parameter("b", nt::zeros({2}));
    const auto entries = nn::state_dict(from);
    try {
        nn::load_state_dict(into, entries);
        FAIL("no exception");
    } catch (const nt::value_error& e) {
        const std::string msg = e.what();
        CHECK(contains(msg, "missing: gone1, gone2"));
        CHECK(contains(msg, "unexpected: extra1, extra2"));
    }
    CHECK(a.to_vector() == std::vector<float>{0, 0});  // unchanged
    CHECK(b.to_vector() == std::vector<float>{0, 0});

    nn::load_state_dict(into, entries, /*strict=*/false);
    CHECK(a.to_vector() == std::vector<float>{1, 1});
    CHECK(b.to_vector() == std::vector<float>{1, 1});

    // From a file, the message starts with the path.
    TempDir dir;
    const std::string path = dir.file("names.ntsd");
    nn::save_state_dict(from, path);
    const std::string expected = path + ": parameter names do not match";
    CHECK_THROWS_WITH_AS(nn::load_state_dict(into, path), doctest::Contains(expected.c_str()), nt::value_error);
}

TEST_CASE("a shape mismatch is a shape_error naming the parameter and both shapes; nothing is changed") {
    TempDir dir;
    const std::string path = dir.file("small.ntsd");
    nt::Generator g1(1), g2(2);
    Small saved(5, g1), target(4, g2);  // inner is Linear(3, 5) vs Linear(3, 4)
    nn::save_state_dict(saved, path);
    const auto before = bits_of(target);
    try {
        nn::load_state_dict(target, path);
        FAIL("no exception");
    } catch (const nt::shape_error& e) {
        const std::string msg = e.what();
        CHECK(contains(msg, "'inner.weight'"));
        CHECK(contains(msg, "[5, 3] in the file"));
        CHECK(contains(msg, "[4, 3] in the module"));
        CHECK(contains(msg, path));
    }
    // "w" comes before the mismatch in registration order and "stats" after it: neither was touched.
    CHECK(bits_of(target) == before);
}

// ---- hostile files ----

TEST_CASE("a file truncated at every byte is a parse_error within the bytes that exist") {
    TempDir dir;
    const std::string path = dir.file("cut.ntsd");
    nt::Generator gen(3);
    Small m(2, gen);
    const Bytes full = nn::encode_state_dict(nn::state_dict(m));
    const auto before = bits_of(m);
    largest_allocation = 0;
    for (std::size_t k = 0; k < full.size(); ++k) {
        CAPTURE(k);
        const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(k));
        const auto e = decode_error(cut);
        CHECK(e.offset() <= k);
        CHECK(e.path() == "mem.ntsd");
        write_file(path, cut);
        const auto f = catch_parse_error([&] { nn::load_state_dict(m, path); });
        CHECK(f.offset() == e.offset());
        CHECK(f.path() == path);
    }
    CHECK(bits_of(m) == before);
    // Nothing near the sizes a misread field would ask for (the largest honest request is the
    // ifstream buffer of a few KiB); 1 MiB separates the two by orders of magnitude.
    CHECK(largest_allocation.load() < (std::size_t(1) << 20));
}

TEST_CASE("the allocation probe sees tensor storage (so the checks below are meaningful)") {
    nn::Module m;
    m.register_buffer("big", nt::zeros({300000}));
    const Bytes b = nn::encode_state_dict(nn::state_dict(m));
    largest_allocation = 0;
    const auto e = nn::decode_state_dict(b.data(), b.size());
    CHECK(largest_allocation.load() >= 300000 * sizeof(float));
    CHECK(e[0].second.numel() == 300000);
}

TEST_CASE("every single-byte corruption is a parse_error, never a crash or a wrong load") {
    nt::Generator gen(4);
    Small m(2, gen);
    const Bytes good = nn::encode_state_dict(nn::state_dict(m));
    largest_allocation = 0;
    for (std::size_t i = 0; i < good.size(); ++i) {
        CAPTURE(i);
        for (unsigned char mask : {0x01, 0x80, 0xFF}) {
            Bytes b = good;
            b[i] ^= mask;
            (void)decode_error(b);  // CRC-32 catches any change confined to one byte
        }
    }
    CHECK(largest_allocation.load() < (std::size_t(1) << 20));
}

TEST_CASE("bad magic, version, checksum, trailing bytes: parse_errors at the right offset") {
    const Bytes good = Writer().header(1).name("w").u32(1).u64(2).f32(1.0f).f32(-2.0f).finish();
    const std::size_t crc_at = good.size() - 4;

    SUBCASE("wrong magic") {
        Bytes b = good;
        b[3] = 'X';
        const auto e = decode_error(b);
        CHECK(e.offset() == 0);
        CHECK(contains(e.message(), "magic"));
        const Bytes onnx = {0x08, 0x04, 0x12, 0x09};  // e.g. someone passes an .onnx file
        CHECK(decode_error(onnx).offset() == 0);
    }
    SUBCASE("wrong version") {
        Bytes b = good;
        b[4] = 2;
        const auto e = decode_error(b);
        CHECK(e.offset() == 4);
        CHECK(contains(e.message(), "version 2"));
    }
    SUBCASE("a flipped payload byte is a checksum mismatch reported at the checksum") {
        Bytes b = good;
        b[crc_at - 1] ^= 0x40;  // inside -2.0f
        const auto e = decode_error(b);
        CHECK(e.offset() == crc_at);
        CHECK(contains(e.message(), "checksum mismatch"));
        CHECK(contains(std::string(e.what()), "mem.ntsd: byte " + std::to_string(crc_at)));
    }
    SUBCASE("trailing bytes after the checksum") {
        Bytes b = good;
        b.push_back(0);
        b.push_back(0);
        b.push_back(0);
        const auto e = decode_error(b);
        CHECK(e.offset() == good.size());
        CHECK(contains(e.message(), "3 unexpected bytes after the checksum"));
    }
    SUBCASE("an empty file") {
        const auto e = decode_error(Bytes{});
        CHECK(e.offset() == 0);
        CHECK(contains(e.message(), "truncated"));
    }
}

TEST_CASE("size fields that do not fit the file are rejected before anything is allocated") {
    largest_allocation = 0;

    SUBCASE("a dimension of 2^40") {
        const Bytes b = Writer().header(1).name("w").u32(1).u64(std::uint64_t(1) << 40).f32(1.0f).finish();
        const auto e = decode_error(b);
        CHECK(e.offset() == 4 + 4 + 4 + 4 + 1 + 4);  // the dim field itself
        CHECK(contains(e.message(), "'w': dimension 0 = 1099511627776 makes the tensor larger than the file"));
    }
    SUBCASE("dims whose product overflows 64 bits") {
        // 65536^4 = 2^64 wraps to 0: a reader that multiplied first and checked after would accept
        // an empty tensor. Each single dim fits the 256 KiB of padding, the product at dim 1 does not.
        const Bytes b = Writer()
                            .header(1)
                            .name("w")
                            .u32(4)
                            .u64(65536)
                            .u64(65536)
                            .u64(65536)
                            .u64(65536)
                            .zeros(65536 * 4 + 64)
                            .finish();
        const auto e = decode_error(b);
        CHECK(e.offset() == 4 + 4 + 4 + 4 + 1 + 4 + 8);  // dim 1
        CHECK(contains(e.message(), "dimension 1 = 65536"));
    }
    SUBCASE("a rank above 8") {
        const auto e = decode_error(Writer().header(1).name("w").u32(9).finish());
        CHECK(e.offset() == 17);
        CHECK(contains(e.message(), "rank 9"));
    }
    SUBCASE("an entry count that cannot fit") {
        const auto e = decode_error(Writer().header(0xFFFFFFFFu).zeros(32).finish());
        CHECK(e.offset() == 8);
        CHECK(contains(e.message(), "entry count 4294967295"));
    }
    SUBCASE("name lengths of 0 and of 2^32 - 1") {
        CHECK(contains(decode_error(Writer().header(1).u32(0).zeros(16).finish()).message(), "name length 0"));
        const auto e = decode_error(Writer().header(1).u32(0xFFFFFFFFu).zeros(16).finish());
        CHECK(e.offset() == 12);
        CHECK(contains(e.message(), "name length 4294967295"));
    }
    SUBCASE("a duplicate name") {
        const Bytes b =
            Writer().header(2).name("w").u32(1).u64(1).f32(1.0f).name("w").u32(1).u64(1).f32(2.0f).finish();
        CHECK(contains(decode_error(b).message(), "duplicate entry 'w'"));
    }
    CHECK(largest_allocation.load() < (std::size_t(1) << 20));  // the test's own 256 KiB buffer is the largest
}

TEST_CASE("a zero-sized dimension and a 0-d tensor round trip") {
    nn::Module m;
    m.register_buffer("empty", nt::zeros({3, 0}));
    m.register_buffer("scalar", nt::scalar_tensor(2.5f));
    const Bytes b = nn::encode_state_dict(nn::state_dict(m));
    const auto e = nn::decode_state_dict(b.data(), b.size());
    REQUIRE(e.size() == 2);
    CHECK(e[0].second.shape() == nt::Shape{3, 0});
    CHECK(e[1].second.shape() == nt::Shape{});
    CHECK(e[1].second.item() == 2.5f);
    nn::load_state_dict(m, e);
}

TEST_CASE("a tensor of rank above 8 cannot be saved") {
    nn::Module m;
    m.register_buffer("deep", nt::zeros({1, 1, 1, 1, 1, 1, 1, 1, 1}));
    CHECK_THROWS_WITH_AS(nn::encode_state_dict(nn::state_dict(m)), doctest::Contains("'deep' has 9 dimensions"),
                         nt::value_error);
}

// ---- file-system errors ----

TEST_CASE("a missing file is an io_error naming the path; a failed load leaves the module unchanged") {
    TempDir dir;
    nt::Generator gen(5);
    Small m(2, gen);
    const auto before = bits_of(m);
    const std::string missing = dir.file("no-such.ntsd");
    try {
        nn::load_state_dict(m, missing);
        FAIL("no exception");
    } catch (const nt::io_error& e) {
        CHECK(e.path() == missing);
        CHECK(contains(e.what(), missing));
    }
    // A directory is not a state_dict either.
    CHECK_THROWS_WITH_AS(nn::load_state_dict(m, dir.path().string()), doctest::Contains("is a directory"),
                         nt::io_error);
    // A corrupt file leaves the module as it was.
    const std::string corrupt = dir.file("corrupt.ntsd");
    Bytes b = nn::encode_state_dict(nn::state_dict(m));
    for (auto& byte : b) byte = static_cast<unsigned char>(byte ^ 0x5A);
    write_file(corrupt, b);
    CHECK_THROWS_AS(nn::load_state_dict(m, corrupt), nt::parse_error);
    CHECK(bits_of(m) == before);
}

TEST_CASE("an unwritable path is an io_error naming it, and leaves no temporary behind") {
    TempDir dir;
    nt::Generator gen(6);
    Small m(2, gen);
    const std::string in_missing_dir = dir.file("no-such-dir/model.ntsd");
    try {
        nn::save_state_dict(m, in_missing_dir);
        FAIL("no exception");
    } catch (const nt::io_error& e) {
        CHECK(e.path() == in_missing_dir);
        CHECK(contains(e.what(), in_missing_dir));
    }
    // The target is an existing directory: the temporary can be written next to it, the rename fails.
    const std::string sub = dir.file("taken");
    fs::create_directory(sub);
    CHECK_THROWS_AS(nn::save_state_dict(m, sub), nt::io_error);
    CHECK_FALSE(nanotorch::testing::temp_file_left(sub));
    CHECK(fs::is_directory(sub));
}

// ---- caller-overridable limits ----

TEST_CASE("StateDictLimits: a lowered limit is an error naming it; at the limit the file loads") {
    nt::Generator gen(8);
    Small m(2, gen);  // entries: w [2, 3], inner.weight [2, 3], inner.bias [2], stats [4]
    const Bytes b = nn::encode_state_dict(nn::state_dict(m));
    const auto decode = [&](const nn::StateDictLimits& l) { return nn::decode_state_dict(b.data(), b.size(), "m.ntsd", l); };

    nn::StateDictLimits exact;
    exact.max_file_bytes = b.size();
    exact.max_entries = 4;
    exact.max_tensor_elements = 6;
    CHECK(decode(exact).size() == 4);

    SUBCASE("file bytes") {
        nn::StateDictLimits l;
        l.max_file_bytes = b.size() - 1;
        const auto e = catch_parse_error([&] { decode(l); });
        CHECK(e.offset() == 0);
        CHECK(contains(e.message(), "(StateDictLimits::max_file_bytes)"));
        // From a file, the size is refused before the file is read: an io_error naming the path.
        TempDir dir;
        const std::string path = dir.file("m.ntsd");
        write_file(path, b);
        CHECK_THROWS_WITH_AS(nn::load_state_dict(m, path, true, l),
                             doctest::Contains("(StateDictLimits::max_file_bytes)"), nt::io_error);
        CHECK_NOTHROW(nn::load_state_dict(m, path, true, exact));
    }
    SUBCASE("entries") {
        nn::StateDictLimits l;
        l.max_entries = 3;
        const auto e = catch_parse_error([&] { decode(l); });
        CHECK(e.offset() == 8);  // the entry count field
        CHECK(contains(e.message(), "entry count 4 exceeds the limit of 3 (StateDictLimits::max_entries)"));
    }
    SUBCASE("tensor elements") {
        nn::StateDictLimits l;
        l.max_tensor_elements = 5;
        const auto e = catch_parse_error([&] { decode(l); });
        // The first entry, w [2, 3]: its second dimension takes it past 5 elements.
        CHECK(contains(e.message(), "'w': dimensions up to 1 hold 6 elements, more than the limit of 5 "
                                    "(StateDictLimits::max_tensor_elements)"));
    }
}

TEST_CASE("a 0 dim does not exempt the other dims from the element limit (their strides must fit)") {
    // [0, 1000 x 7]: an empty tensor, but a Tensor of that shape would need strides of 10^21.
    // Found while fuzzing (the same shape through a TensorProto reached Tensor's stride
    // computation and overflowed int64); tests/fuzz/regressions/fuzz_state_dict/ keeps the file.
    Writer w;
    w.raw("NTSD").u32(1).u32(1).name("w").u32(8).u64(0);
    for (int k = 0; k < 7; ++k) w.u64(1000);
    w.raw(std::string(4100, '\0'));  // enough bytes that each dim alone fits "the file"
    const auto e = decode_error(w.finish());
    CHECK(contains(e.message(), "the non-zero dimensions up to 4 multiply to more than the limit of 4294967296 "
                                "(StateDictLimits::max_tensor_elements)"));
}
