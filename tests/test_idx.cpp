// Tests for data/idx.hpp and data/gzip.hpp: tiny IDX files written to a fresh temp directory
// (valid images/labels, each kind of malformed header, truncation at every byte, trailing bytes,
// overflowing dims, limits), gzip files built here from deflate "stored" blocks (no compressor
// needed) plus two golden gzip members from a real compressor (fixed and dynamic Huffman), and the
// real MNIST / Fashion-MNIST files when they are present (skipped visibly otherwise).
// All comparisons are exact: these are byte formats, there is no tolerance to state.

// Declarations of stb_image at global scope *before* nanotorch's private copy: this TU then also
// checks that gzip.hpp coexists with a user's own stb_image include (see gzip.hpp's header comment).
#include <stb/stb_image.h>

#include <doctest/doctest.h>
#include <nanotorch/data/gzip.hpp>
#include <nanotorch/data/idx.hpp>
#include <nanotorch/util/bytes.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/expect.hpp"

namespace nt = nanotorch;
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

// ---- helpers ----

using nanotorch::testing::TempDir;

using nanotorch::testing::write_file;

// An IDX image: 00 00 <type> <rank> + big-endian dims + payload.
Bytes make_idx(std::uint8_t type, const std::vector<std::uint32_t>& dims, const Bytes& payload) {
    Bytes b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t d : dims) {
        b.resize(b.size() + 4);
        nt::util::store_be32(b.data() + b.size() - 4, d);
    }
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

Bytes iota_bytes(std::size_t n) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 3);
    return b;
}

void append_le16(Bytes& b, unsigned v) {
    b.push_back(static_cast<std::uint8_t>(v & 0xFF));
    b.push_back(static_cast<std::uint8_t>((v >> 8) & 0xFF));
}

void append_le32(Bytes& b, std::uint32_t v) {
    b.resize(b.size() + 4);
    nt::util::store_le32(b.data() + b.size() - 4, v);
}

struct GzipOptions {
    std::size_t block_size = 65535;  // stored blocks hold at most 65535 bytes
    bool extra = false, name = false, comment = false, header_crc = false;
};

// A gzip member whose deflate stream is made of "stored" blocks (BTYPE = 00): each is one header
// byte (BFINAL in bit 0, BTYPE in bits 1-2, rest padding to the byte boundary), LEN and NLEN =
// ~LEN as little-endian 16-bit values, then LEN raw bytes. No compressor needed.
Bytes make_gzip(const Bytes& data, const GzipOptions& opt = {}) {
    const std::uint8_t flags = static_cast<std::uint8_t>((opt.header_crc ? 0x02 : 0) |
                                                         (opt.extra ? 0x04 : 0) |
                                                         (opt.name ? 0x08 : 0) | (opt.comment ? 0x10 : 0));
    Bytes g = {0x1F, 0x8B, 8, flags, 0, 0, 0, 0, 0, 255};  // MTIME 0, XFL 0, OS unknown
    if (opt.extra) {
        append_le16(g, 6);
        const Bytes subfield = {'N', 'T', 2, 0, 0xAB, 0xCD};  // SI1 SI2, LEN = 2, data
        g.insert(g.end(), subfield.begin(), subfield.end());
    }
    if (opt.name)
        for (char c : std::string("digits.idx")) g.push_back(static_cast<std::uint8_t>(c));
    if (opt.name) g.push_back(0);
    if (opt.comment)
        for (char c : std::string("made by test_idx")) g.push_back(static_cast<std::uint8_t>(c));
    if (opt.comment) g.push_back(0);
    if (opt.header_crc) append_le16(g, nt::data::crc32(g.data(), g.size()) & 0xFFFF);
    std::size_t pos = 0;
    do {
        const std::size_t len = std::min(opt.block_size, data.size() - pos);
        const bool last = pos + len == data.size();
        g.push_back(last ? 1 : 0);
        append_le16(g, static_cast<unsigned>(len));
        append_le16(g, static_cast<unsigned>(~len & 0xFFFF));
        g.insert(g.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
                 data.begin() + static_cast<std::ptrdiff_t>(pos + len));
        pos += len;
    } while (pos < data.size());
    append_le32(g, nt::data::crc32(data.data(), data.size()));
    append_le32(g, static_cast<std::uint32_t>(data.size()));
    return g;
}

using nanotorch::testing::catch_parse_error;

// The labels of the golden dynamic-Huffman member below: a fixed LCG, skewed so that deflate
// chose a dynamic code (60% ones, 25% sevens, the rest spread over 0..9).
Bytes lcg_labels(std::size_t n) {
    Bytes out;
    std::uint64_t x = 12345;
    for (std::size_t i = 0; i < n; ++i) {
        x = (x * 1103515245u + 12345u) & 0x7FFFFFFFu;
        const unsigned r = static_cast<unsigned>((x >> 16) % 100);
        out.push_back(static_cast<std::uint8_t>(r < 60 ? 1 : r < 85 ? 7 : r % 10));
    }
    return out;
}

// Looks for a data directory: $NANOTORCH_SOURCE_DIR/<rel>, then <repo>/<rel> derived from this
// file's path, then <rel> relative to the working directory.
std::string find_data_dir(const std::string& rel, const std::string& probe) {
    std::vector<fs::path> candidates;
    if (const char* src = std::getenv("NANOTORCH_SOURCE_DIR")) candidates.push_back(fs::path(src) / rel);
    candidates.push_back(fs::path(__FILE__).parent_path().parent_path() / rel);
    candidates.push_back(fs::path(rel));
    for (const auto& dir : candidates) {
        std::error_code ec;
        if (fs::exists(dir / probe, ec)) return dir.string();
    }
    return {};
}

const std::string fashion_dir = "/usr/share/datasets/fashion-mnist";

bool have_mnist() {
    return !find_data_dir("data/mnist", "t10k-labels-idx1-ubyte").empty();
}

bool have_fashion() {
    std::error_code ec;
    return fs::exists(fs::path(fashion_dir) / "t10k-labels-idx1-ubyte.gz", ec);
}

}  // namespace

// ---- CRC-32 ----

TEST_CASE("crc32 matches the standard check value and chains") {
    const std::string s = "123456789";
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    CHECK(nt::data::crc32(p, 9) == 0xCBF43926u);  // the catalogued CRC-32/ISO-HDLC check value
    CHECK(nt::data::crc32(p, 0) == 0u);
    CHECK(nt::data::crc32(p + 4, 5, nt::data::crc32(p, 4)) == 0xCBF43926u);
}

// ---- valid raw files ----

TEST_CASE("valid images and labels files parse to the right dims and bytes") {
    TempDir dir;
    const Bytes pixels = iota_bytes(2 * 3 * 4);
    const std::string images = dir.file("images-idx3-ubyte");
    write_file(images, make_idx(0x08, {2, 3, 4}, pixels));
    const nt::data::IdxArray a = nt::data::read_idx_images(images);
    CHECK(a.dims == std::vector<std::int64_t>{2, 3, 4});
    CHECK(a.numel() == 24);
    CHECK(a.data == pixels);
    CHECK(nt::data::read_idx(images).data == pixels);

    const Bytes labels = {0, 9, 3, 1, 7};
    const std::string labels_path = dir.file("labels-idx1-ubyte");
    write_file(labels_path, make_idx(0x08, {5}, labels));
    const nt::data::IdxArray y = nt::data::read_idx_labels(labels_path);
    CHECK(y.dims == std::vector<std::int64_t>{5});
    CHECK(y.data == labels);
}

TEST_CASE("read_idx accepts ranks 1..4 and zero-sized dims") {
    TempDir dir;
    const std::string path = dir.file("x.idx");
    write_file(path, make_idx(0x08, {2, 1, 2, 3}, iota_bytes(12)));
    CHECK(nt::data::read_idx(path).dims == std::vector<std::int64_t>{2, 1, 2, 3});

    write_file(path, make_idx(0x08, {0, 28, 28}, {}));
    const auto empty = nt::data::read_idx_images(path);
    CHECK(empty.dims == std::vector<std::int64_t>{0, 28, 28});
    CHECK(empty.data.empty());

    // A zero anywhere makes the count 0, even when the other dims would overflow together.
    write_file(path, make_idx(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0}, {}));
    CHECK(nt::data::read_idx(path).numel() == 0);
}

// ---- malformed raw files ----

TEST_CASE("a bad magic, type byte or rank is a parse_error at that byte") {
    TempDir dir;
    const std::string path = dir.file("bad.idx");
    const Bytes good = make_idx(0x08, {2, 2, 2}, iota_bytes(8));

    SUBCASE("non-zero first or second byte") {
        for (std::size_t i : {0u, 1u}) {
            Bytes b = good;
            b[i] = 0x42;
            write_file(path, b);
            const auto e = catch_parse_error([&] { nt::data::read_idx(path); });
            CHECK(e.offset() == i);
            CHECK(e.path() == path);
            CHECK(e.message().find("two zero bytes") != std::string::npos);
        }
    }
    SUBCASE("a type byte that is not an IDX type") {
        Bytes b = good;
        b[2] = 0x07;
        write_file(path, b);
        const auto e = catch_parse_error([&] { nt::data::read_idx_images(path); });
        CHECK(e.offset() == 2);
        CHECK(e.message().find("0x07") != std::string::npos);
    }
    SUBCASE("a valid but unsupported IDX type is unsupported_error naming it") {
        Bytes b = good;
        b[2] = 0x0D;
        write_file(path, b);
        CHECK_THROWS_WITH_AS(nt::data::read_idx(path),
                             doctest::Contains("0x0D (float32) is not supported"),
                             nt::unsupported_error);
    }
    SUBCASE("rank 0 and rank 5") {
        for (std::uint8_t rank : {0, 5}) {
            Bytes b = good;
            b[3] = rank;
            write_file(path, b);
            const auto e = catch_parse_error([&] { nt::data::read_idx(path); });
            CHECK(e.offset() == 3);
            CHECK(e.message().find("rank " + std::to_string(rank)) != std::string::npos);
        }
    }
    SUBCASE("labels read as images and images read as labels") {
        write_file(path, make_idx(0x08, {4}, {1, 2, 3, 4}));
        CHECK(catch_parse_error([&] { nt::data::read_idx_images(path); }).offset() == 3);
        write_file(path, good);
        const auto e = catch_parse_error([&] { nt::data::read_idx_labels(path); });
        CHECK(e.offset() == 3);
        CHECK(e.message().find("0x00000801") != std::string::npos);
    }
}

TEST_CASE("a label >= num_classes is a parse_error at that label's byte") {
    TempDir dir;
    const std::string path = dir.file("labels.idx");
    write_file(path, make_idx(0x08, {3}, {1, 2, 10}));
    const auto e = catch_parse_error([&] { nt::data::read_idx_labels(path); });
    CHECK(e.offset() == 8 + 2);
    CHECK(e.message().find("label 10 of item 2") != std::string::npos);
    CHECK(nt::data::read_idx_labels(path, 11).data == Bytes{1, 2, 10});
    CHECK_THROWS_AS(nt::data::read_idx_labels(path, 0), nt::value_error);
    CHECK_THROWS_AS(nt::data::read_idx_labels(path, 257), nt::value_error);
}

TEST_CASE("trailing bytes after the payload are a parse_error where they start") {
    TempDir dir;
    const std::string path = dir.file("labels.idx");
    Bytes b = make_idx(0x08, {4}, {1, 2, 3, 4});
    b.push_back(0);
    b.push_back(0);
    write_file(path, b);
    const auto e = catch_parse_error([&] { nt::data::read_idx_labels(path); });
    CHECK(e.offset() == 12);
    CHECK(e.message().find("2 trailing byte(s)") != std::string::npos);
}

TEST_CASE("dims whose product overflows, or exceeds the limit, are rejected before allocating") {
    TempDir dir;
    const std::string path = dir.file("huge.idx");
    // 0xFFFFFFFF^2 still fits in 64 bits; the third factor overflows, so the offset is dim 2's.
    write_file(path, make_idx(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {1, 2}));
    const auto e = catch_parse_error([&] { nt::data::read_idx(path); });
    CHECK(e.offset() == 4 + 2 * 4);
    CHECK(e.message().find("overflow") != std::string::npos);

    // 60000 x 28 x 28 declared, 2 bytes present: a truncation, reported without a 47 MB allocation.
    write_file(path, make_idx(0x08, {60000, 28, 28}, {1, 2}));
    CHECK(catch_parse_error([&] { nt::data::read_idx_images(path); }).offset() == 18);

    nt::data::IdxLimits small;
    small.max_bytes = 100;
    const auto limit = catch_parse_error([&] {
        nt::data::parse_idx(make_idx(0x08, {2, 10, 10}, iota_bytes(200)).data(), 216, "mem", small);
    });
    CHECK(limit.offset() == 4);
    CHECK(limit.message().find("limit of 100") != std::string::npos);
    write_file(path, make_idx(0x08, {2, 10, 10}, iota_bytes(200)));
    const auto file_limit = catch_parse_error([&] { nt::data::read_idx(path, small); });
    CHECK(file_limit.path() == path);
    CHECK(file_limit.message().find("file is larger than the limit") != std::string::npos);
}

TEST_CASE("a file truncated at every byte is a parse_error at the truncation point") {
    TempDir dir;
    const std::string path = dir.file("cut.idx");
    const Bytes images = make_idx(0x08, {2, 2, 3}, iota_bytes(12));
    const Bytes labels = make_idx(0x08, {3}, {4, 5, 6});
    for (std::size_t k = 0; k < images.size(); ++k) {
        CAPTURE(k);
        write_file(path, Bytes(images.begin(), images.begin() + static_cast<std::ptrdiff_t>(k)));
        const auto e = catch_parse_error([&] { nt::data::read_idx_images(path); });
        CHECK(e.offset() == k);
        CHECK(e.path() == path);
        CHECK(e.message().find("truncated") != std::string::npos);
    }
    for (std::size_t k = 0; k < labels.size(); ++k) {
        CAPTURE(k);
        write_file(path, Bytes(labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(k)));
        CHECK(catch_parse_error([&] { nt::data::read_idx_labels(path); }).offset() == k);
    }
}

TEST_CASE("a missing file or a directory is an io_error naming the path") {
    TempDir dir;
    const std::string missing = dir.file("no-such-file");
    try {
        nt::data::read_idx(missing);
        FAIL("no exception");
    } catch (const nt::io_error& e) {
        CHECK(e.path() == missing);
        CHECK(std::string(e.what()).find(missing + ": No such file") == 0);
    }
    CHECK_THROWS_AS(nt::data::read_idx_labels(dir.file("")), nt::io_error);  // the directory
}

// ---- gzip ----

TEST_CASE("gzip round trip through stored blocks, with every optional header field") {
    TempDir dir;
    const Bytes raw = make_idx(0x08, {3, 4, 5}, iota_bytes(60));
    // The name has no .gz: gzip is recognised by its magic bytes.
    const std::string path = dir.file("images.bin");

    GzipOptions plain;
    plain.block_size = 7;  // several blocks, so block boundaries are exercised
    GzipOptions all = plain;
    all.extra = all.name = all.comment = all.header_crc = true;
    for (const GzipOptions& opt : {plain, all}) {
        const Bytes gz = make_gzip(raw, opt);
        CHECK(nt::data::gunzip(gz.data(), gz.size(), "mem", 1000) == raw);
        write_file(path, gz);
        const auto a = nt::data::read_idx_images(path);
        CHECK(a.dims == std::vector<std::int64_t>{3, 4, 5});
        CHECK(a.data == iota_bytes(60));
    }
    const Bytes empty = make_gzip({});
    CHECK(nt::data::gunzip(empty.data(), empty.size(), "mem", 0).empty());
}

TEST_CASE("golden gzip members from a real compressor (fixed and dynamic Huffman) decode") {
    // Produced by Python's gzip.compress(raw, 9, mtime=0) on IDX label files; see the generators.
    const Bytes fixed = {0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x63, 0x60,
                         0xE0, 0x60, 0x64, 0x60, 0x60, 0xA8, 0x60, 0x60, 0x67, 0x61, 0xE2, 0x64,
                         0x63, 0x61, 0xE4, 0x60, 0x63, 0x66, 0xE0, 0x60, 0x65, 0xA2, 0x1B, 0x17,
                         0x00, 0x0F, 0x99, 0x74, 0xAD, 0x80, 0x00, 0x00, 0x00};
    const Bytes dynamic = {
        0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x45, 0x4D, 0x01, 0x12, 0xC0,
        0x20, 0x08, 0x12, 0x57, 0x61, 0xFF, 0xFF, 0xD4, 0x9E, 0x35, 0xC9, 0x6A, 0x9D, 0x81, 0x87,
        0x0A, 0x66, 0x01, 0x33, 0x7B, 0x19, 0x08, 0xE8, 0x51, 0x9F, 0x89, 0x1C, 0xC9, 0x23, 0xB1,
        0x24, 0x55, 0xEA, 0xAE, 0x29, 0xE0, 0x6B, 0x0B, 0xB4, 0x73, 0xD2, 0x8B, 0x7E, 0x20, 0x63,
        0x42, 0xAE, 0xCB, 0x6B, 0x4A, 0xAA, 0x00, 0xD0, 0xDB, 0x5E, 0xCB, 0x91, 0xCB, 0x15, 0xED,
        0x46, 0xDF, 0xF3, 0xDB, 0xF5, 0x63, 0x3D, 0x4A, 0xA2, 0xB2, 0x56, 0x78, 0x62, 0xE7, 0x09,
        0x7C, 0x8A, 0x3E, 0x9F, 0x1C, 0xF0, 0x9C, 0xD0, 0x00, 0x00, 0x00};
    CHECK((fixed[10] & 0x7) == 0x3);    // BFINAL = 1, BTYPE = 01 (fixed Huffman)
    CHECK((dynamic[10] & 0x7) == 0x5);  // BFINAL = 1, BTYPE = 10 (dynamic Huffman)

    Bytes fixed_labels;  // generator: labels[i] = (7 i + i / 3) mod 10, 120 items
    for (unsigned i = 0; i < 120; ++i) fixed_labels.push_back(static_cast<std::uint8_t>((i * 7 + i / 3) % 10));
    const auto a = nt::data::parse_idx_labels(fixed.data(), fixed.size(), "fixed.gz");
    CHECK(a.dims == std::vector<std::int64_t>{120});
    CHECK(a.data == fixed_labels);

    const auto b = nt::data::parse_idx_labels(dynamic.data(), dynamic.size(), "dynamic.gz");
    CHECK(b.dims == std::vector<std::int64_t>{200});
    CHECK(b.data == lcg_labels(200));
}

TEST_CASE("corrupt gzip files are parse_errors") {
    const Bytes raw = make_idx(0x08, {6}, {1, 2, 3, 4, 5, 6});
    GzipOptions opt;
    opt.block_size = 5;
    const Bytes gz = make_gzip(raw, opt);
    const std::size_t n = gz.size();
    auto parse = [](const Bytes& b) { return nt::data::parse_idx_labels(b.data(), b.size(), "x.gz"); };

    SUBCASE("CRC32 mismatch, reported at the trailer") {
        Bytes b = gz;
        b[n - 8] ^= 0x01;
        const auto e = catch_parse_error([&] { parse(b); });
        CHECK(e.offset() == n - 8);
        CHECK(e.message().find("CRC32 mismatch") != std::string::npos);
        CHECK(e.path() == "x.gz");
    }
    SUBCASE("a flipped payload byte is caught by the CRC") {
        Bytes b = gz;
        b[n - 9] ^= 0x10;
        CHECK(catch_parse_error([&] { parse(b); }).message().find("CRC32") != std::string::npos);
    }
    SUBCASE("ISIZE that disagrees with the data") {
        Bytes b = gz;
        b[n - 4] = static_cast<std::uint8_t>(b[n - 4] - 1);
        CHECK(catch_parse_error([&] { parse(b); }).offset() == n - 4);
        b[n - 4] = static_cast<std::uint8_t>(b[n - 4] + 2);
        CHECK(catch_parse_error([&] { parse(b); }).offset() == n - 4);
    }
    SUBCASE("ISIZE larger than deflate could ever produce, or than the limit") {
        Bytes b = gz;
        nt::util::store_le32(b.data() + n - 4, 1u << 20);  // 1 MiB from ~30 compressed bytes
        CHECK(catch_parse_error([&] { parse(b); }).message().find("more than deflate can produce") !=
              std::string::npos);
        nt::data::IdxLimits small;
        small.max_bytes = 10;
        const auto e = catch_parse_error(
            [&] { nt::data::parse_idx_labels(gz.data(), gz.size(), "x.gz", 10, small); });
        CHECK(e.offset() == n - 4);
        CHECK(e.message().find("limit of 10") != std::string::npos);
    }
    SUBCASE("bad header fields") {
        Bytes b = gz;
        b[2] = 7;
        CHECK(catch_parse_error([&] { parse(b); }).offset() == 2);
        b = gz;
        b[3] = 0x20;
        CHECK(catch_parse_error([&] { parse(b); }).offset() == 3);
        GzipOptions with_crc = opt;
        with_crc.header_crc = true;
        b = make_gzip(raw, with_crc);
        b[10] ^= 0xFF;
        CHECK(catch_parse_error([&] { parse(b); }).message().find("header CRC16") != std::string::npos);
    }
    SUBCASE("invalid deflate data is reported at the start of the deflate stream") {
        Bytes b = gz;
        b[10] = 0x07;  // BFINAL = 1, BTYPE = 11 (reserved)
        const auto e = catch_parse_error([&] { parse(b); });
        CHECK(e.offset() == 10);
        CHECK(e.message().find("invalid deflate data") != std::string::npos);
        b = gz;
        b[11] ^= 0x01;  // LEN no longer matches NLEN
        CHECK(catch_parse_error([&] { parse(b); }).offset() == 10);
    }
    SUBCASE("an IDX defect inside the gzip says the offset is into the gunzipped data") {
        Bytes bad = raw;
        bad[0] = 1;
        const Bytes b = make_gzip(bad);
        const auto e = catch_parse_error([&] { parse(b); });
        CHECK(e.offset() == 0);
        CHECK(e.message().find("gunzipped data") != std::string::npos);
        const Bytes big_label = make_gzip(make_idx(0x08, {2}, {3, 12}));
        const auto l = catch_parse_error([&] { parse(big_label); });
        CHECK(l.offset() == 9);
        CHECK(l.message().find("gunzipped data") != std::string::npos);
    }
    SUBCASE("truncated at every byte") {
        GzipOptions all = opt;
        all.extra = all.name = all.comment = all.header_crc = true;
        const Bytes full = make_gzip(raw, all);
        for (std::size_t k = 0; k < full.size(); ++k) {
            CAPTURE(k);
            const Bytes b(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(k));
            // Where the error is found depends on which field the cut lands in (the trailer is
            // taken from the last 8 bytes); it must lie within the data that exists.
            CHECK(catch_parse_error([&] { parse(b); }).offset() <= k);
        }
    }
}

// ---- real data sets, when installed ----

TEST_CASE("MNIST t10k from data/mnist (scripts/fetch_mnist.sh)" *
          doctest::skip(!have_mnist()) *
          doctest::description("needs data/mnist (scripts/fetch_mnist.sh); skipped when absent")) {
    const std::string dir = find_data_dir("data/mnist", "t10k-labels-idx1-ubyte");
    MESSAGE("reading MNIST from " << dir);
    const auto labels = nt::data::read_idx_labels(dir + "/t10k-labels-idx1-ubyte");
    REQUIRE(labels.dims == std::vector<std::int64_t>{10000});
    std::array<int, 10> histogram{};
    for (std::uint8_t y : labels.data) ++histogram[y];
    CHECK(std::accumulate(histogram.begin(), histogram.end(), 0) == 10000);
    // The published per-digit counts of the MNIST test set.
    CHECK(histogram == std::array<int, 10>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
    const auto images = nt::data::read_idx_images(dir + "/t10k-images-idx3-ubyte");
    CHECK(images.dims == std::vector<std::int64_t>{10000, 28, 28});
}

TEST_CASE("Fashion-MNIST t10k .gz from Debian's dataset-fashion-mnist" *
          doctest::skip(!have_fashion()) *
          doctest::description("needs Debian package dataset-fashion-mnist; skipped when absent")) {
    const auto labels = nt::data::read_idx_labels(fashion_dir + "/t10k-labels-idx1-ubyte.gz");
    REQUIRE(labels.dims == std::vector<std::int64_t>{10000});
    std::array<int, 10> histogram{};
    for (std::uint8_t y : labels.data) ++histogram[y];
    std::array<int, 10> balanced;
    balanced.fill(1000);  // the Fashion-MNIST test set has exactly 1000 items per class
    CHECK(histogram == balanced);
    const auto images = nt::data::read_idx_images(fashion_dir + "/t10k-images-idx3-ubyte.gz");
    CHECK(images.dims == std::vector<std::int64_t>{10000, 28, 28});
}

TEST_CASE("IdxLimits::max_bytes is named when a lowered limit refuses a file, its dims or its gzip size") {
    const std::vector<std::uint8_t> raw = {0, 0, 8, 1, 0, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    nt::data::IdxLimits exact;
    exact.max_bytes = raw.size();
    CHECK(nt::data::parse_idx(raw.data(), raw.size(), "x.idx", exact).data.size() == 12);

    nt::data::IdxLimits small;
    small.max_bytes = 11;  // the 12-byte payload is over the limit
    CHECK_THROWS_WITH_AS(nt::data::parse_idx(raw.data(), raw.size(), "x.idx", small),
                         doctest::Contains("(IdxLimits::max_bytes)"), nt::parse_error);

    TempDir dir;
    const std::string path = dir.file("x.idx");
    write_file(path, raw);
    small.max_bytes = raw.size() - 1;  // the file itself is over the limit
    CHECK_THROWS_WITH_AS(nt::data::read_idx(path, small), doctest::Contains("(IdxLimits::max_bytes)"),
                         nt::parse_error);
    CHECK(nt::data::read_idx(path, exact).dims == std::vector<std::int64_t>{12});
}
