// Tests for data/npy.hpp: NumPy's own files (written by numpy.save, committed as the fuzz seeds)
// read exactly, encode -> parse round trips, and every malformed header or payload is refused
// with an error naming the byte offset, before anything is allocated from a size in the file.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nanotorch/data/npy.hpp>

#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace nanotorch;
using Bytes = std::vector<unsigned char>;
using nanotorch::testing::TempDir;

namespace {

std::string seed_dir() {
    std::vector<fs::path> candidates;
    if (const char* src = std::getenv("NANOTORCH_SOURCE_DIR")) candidates.push_back(fs::path(src) / "tests/fuzz/seeds/fuzz_npy");
    candidates.push_back(fs::path(__FILE__).parent_path() / "fuzz/seeds/fuzz_npy");
    for (const auto& d : candidates) {
        std::error_code ec;
        if (fs::exists(d / "f32_2x3.npy", ec)) return d.string();
    }
    return {};
}

// A version-1.0 file with the given header dict (padded as numpy pads it) and payload.
Bytes npy(const std::string& dict, const Bytes& payload, unsigned char major = 1) {
    std::string h = dict;
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    while ((8 + len_bytes + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    Bytes b(8 + len_bytes + h.size() + payload.size(), 0);
    const unsigned char head[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', major, 0};
    std::copy(head, head + 8, b.begin());
    for (std::size_t k = 0; k < len_bytes; ++k) b[8 + k] = static_cast<unsigned char>(h.size() >> (8 * k));
    std::copy(h.begin(), h.end(), b.begin() + std::ptrdiff_t(8 + len_bytes));
    std::copy(payload.begin(), payload.end(), b.begin() + std::ptrdiff_t(8 + len_bytes + h.size()));
    return b;
}

data::NpyArray parse(const Bytes& b) { return data::parse_npy(b.data(), b.size(), "t.npy"); }

}  // namespace

TEST_CASE("read_npy reads the arrays numpy.save wrote") {
    const std::string dir = seed_dir();
    REQUIRE_MESSAGE(!dir.empty(), "tests/fuzz/seeds/fuzz_npy not found (set NANOTORCH_SOURCE_DIR)");
    const data::NpyArray a = data::read_npy(dir + "/f32_2x3.npy");  // np.arange(6, dtype=float32).reshape(2, 3) / 7
    CHECK_FALSE(a.is_int);
    CHECK(a.shape == std::vector<std::int64_t>{2, 3});
    REQUIRE(a.f.size() == 6);
    for (int k = 0; k < 6; ++k) CHECK(a.f[std::size_t(k)] == float(k) / 7.0f);  // float32 division both sides: exact
    const data::NpyArray i = data::read_npy(dir + "/i64_4.npy");
    CHECK(i.is_int);
    CHECK(i.i == std::vector<std::int64_t>{1, -2, 3, std::int64_t(1) << 40});
    const data::NpyArray s = data::read_npy(dir + "/f32_scalar.npy");
    CHECK(s.shape.empty());
    CHECK(s.f == std::vector<float>{2.5f});
    const data::NpyArray e = data::read_npy(dir + "/f32_empty.npy");
    CHECK(e.shape == std::vector<std::int64_t>{0, 3});
    CHECK(e.numel() == 0);
    const data::NpyArray v2 = data::read_npy(dir + "/f32_v2.npy");  // format 2.0: a 4-byte header length
    CHECK(v2.shape == std::vector<std::int64_t>{1, 2});
    CHECK(v2.f == std::vector<float>{1.0f, 1.0f});
}

TEST_CASE("encode_npy -> parse_npy round trips, and its bytes match numpy's layout") {
    for (const std::vector<std::int64_t>& shape : {std::vector<std::int64_t>{}, {5}, {2, 3}, {1, 2, 1, 2}, {0}}) {
        data::NpyArray a;
        a.shape = shape;
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        for (std::int64_t k = 0; k < n; ++k) a.f.push_back(float(k) * 0.5f - 1.0f);
        const Bytes b = data::encode_npy(a);
        CHECK((b.size() - std::size_t(n) * 4) % 64 == 0);  // the payload starts 64-byte aligned, as numpy writes
        const data::NpyArray back = parse(b);
        CHECK(back.shape == shape);
        CHECK(back.f == a.f);
    }
    const std::string dir = seed_dir();
    if (!dir.empty()) {  // numpy's bytes for the same array are ours, byte for byte
        data::NpyArray a = data::read_npy(dir + "/i64_4.npy");
        TempDir tmp;
        data::write_npy(a, tmp.file("x.npy"));
        const data::NpyArray again = data::read_npy(tmp.file("x.npy"));
        CHECK(again.i == a.i);
    }
    // An empty array whose other dims overflow int64 (a fuzz finding): parses, and re-encodes.
    const Bytes huge_empty =
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (111111112, 111111111112, 0)}", Bytes{});
    const data::NpyArray e = parse(huge_empty);
    CHECK(e.numel() == 0);
    CHECK(parse(data::encode_npy(e)).shape == e.shape);
    data::NpyArray bad;
    bad.shape = {2, 2};
    bad.f = {1, 2, 3};
    CHECK_THROWS_WITH_AS(data::encode_npy(bad), doctest::Contains("holds 4 values but the array has 3"), value_error);
}

TEST_CASE("malformed .npy files are parse_errors at the right offset") {
    const Bytes four_floats(16, 0);
    const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
    CHECK(parse(npy(good, four_floats)).shape == std::vector<std::int64_t>{2, 2});
    CHECK(parse(npy("{\"shape\": (4,), \"fortran_order\": False, \"descr\": \"<f4\"}", four_floats)).shape ==
          std::vector<std::int64_t>{4});  // any key order and quote style

    auto offset_of = [](const Bytes& b) -> std::uint64_t {
        try {
            parse(b);
        } catch (const parse_error& e) {
            return e.offset();
        }
        FAIL("no parse_error");
        return 0;
    };
    Bytes magic = npy(good, four_floats);
    magic[1] = 'X';
    CHECK(offset_of(magic) == 0);
    Bytes version = npy(good, four_floats);
    version[6] = 4;
    CHECK(offset_of(version) == 6);
    Bytes length = npy(good, four_floats);
    length[9] = 0x7F;  // header length far beyond the file
    CHECK(offset_of(length) == 8);
    CHECK(offset_of(npy(good, Bytes(15, 0))) > 10);                             // payload one byte short
    CHECK(offset_of(npy(good, Bytes(17, 0))) > 10);                             // one byte too many
    CHECK(offset_of(npy("{'descr': '<f4', 'shape': (2, 2), }", four_floats)) > 10);  // fortran_order missing
    CHECK(offset_of(npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", four_floats)) > 10);
    CHECK(offset_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", four_floats)) > 10);
    CHECK(offset_of(npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4,)}", four_floats)) > 10);
    CHECK(offset_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-4,)}", four_floats)) > 10);
    CHECK(offset_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,)} x", four_floats)) > 10);
    CHECK(offset_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,4)}", four_floats)) > 10);
    // Dims whose product overflows int64 or dwarfs the file: refused before any allocation.
    CHECK(offset_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999999, 999999999999999)}",
                        four_floats)) > 10);
    CHECK(offset_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 999999999999999)}", four_floats)) > 10);
    // Every truncation of a good file fails cleanly.
    const Bytes whole = npy(good, four_floats);
    for (std::size_t n = 0; n < whole.size(); ++n) {
        const Bytes cut(whole.begin(), whole.begin() + std::ptrdiff_t(n));
        CHECK_THROWS_AS(parse(cut), parse_error);
    }
}

TEST_CASE("valid .npy forms that are not read are unsupported_errors naming the form") {
    const Bytes eight(8, 0);
    CHECK_THROWS_WITH_AS(parse(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}", eight)),
                         doctest::Contains("npy dtype '>f4' is not read"), unsupported_error);
    CHECK_THROWS_WITH_AS(parse(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", eight)),
                         doctest::Contains("'<f8'"), unsupported_error);
    CHECK_THROWS_WITH_AS(parse(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", eight)),
                         doctest::Contains("Fortran-order"), unsupported_error);
}

TEST_CASE("read_npy: missing files and the size limit are io_errors naming the path") {
    TempDir tmp;
    CHECK_THROWS_WITH_AS(data::read_npy(tmp.file("none.npy")), doctest::Contains("none.npy"), io_error);
    data::NpyArray a;
    a.shape = {100};
    a.f.assign(100, 1.0f);
    data::write_npy(a, tmp.file("a.npy"));
    data::NpyLimits small;
    small.max_bytes = 100;
    CHECK_THROWS_WITH_AS(data::read_npy(tmp.file("a.npy"), small), doctest::Contains("NpyLimits::max_bytes"), io_error);
    CHECK(data::read_npy(tmp.file("a.npy")).f.size() == 100);
}
