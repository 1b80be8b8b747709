// Tests for config.hpp (NANOTORCH_CHECK, str_cat, version macros), error.hpp (the exception
// hierarchy and the exact what() formats other code and users match on) and util/bytes.hpp
// (endian loads/stores and float/double bit casts). Exact-equality checks throughout: these are
// bit manipulations, so there is no tolerance to state.
#include <doctest/doctest.h>
#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/util/bytes.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

namespace nt = nanotorch;

// ---- config.hpp ----

TEST_CASE("version macros agree with each other") {
    const std::string expected = std::to_string(NANOTORCH_VERSION_MAJOR) + "." +
                                 std::to_string(NANOTORCH_VERSION_MINOR) + "." +
                                 std::to_string(NANOTORCH_VERSION_PATCH);
    CHECK(expected == NANOTORCH_VERSION_STRING);
}

TEST_CASE("str_cat concatenates streamable parts") {
    CHECK(nt::detail::str_cat() == "");
    CHECK(nt::detail::str_cat("shape [", 2, ", ", 3, "]") == "shape [2, 3]");
    CHECK(nt::detail::str_cat('x', 1.5, std::string("y")) == "x1.5y");
}

TEST_CASE("NANOTORCH_CHECK throws the requested type with the concatenated message") {
    int evaluations = 0;
    auto cond = [&](bool v) {
        ++evaluations;
        return v;
    };

    SUBCASE("true condition does not throw and evaluates once") {
        CHECK_NOTHROW(NANOTORCH_CHECK(cond(true), nt::value_error, "never built"));
        CHECK(evaluations == 1);
    }
    SUBCASE("false condition throws the given type, evaluated once") {
        CHECK_THROWS_AS(NANOTORCH_CHECK(cond(false), nt::value_error, "p=", 1.5, " not in [0,1)"),
                        nt::value_error);
        CHECK(evaluations == 1);
        CHECK_THROWS_WITH(NANOTORCH_CHECK(false, nt::value_error, "p=", 1.5, " not in [0,1)"),
                          "p=1.5 not in [0,1)");
    }
    SUBCASE("works as a single statement in an unbraced if/else") {
        bool reached_else = false;
        if (evaluations > 0)
            NANOTORCH_CHECK(false, nt::shape_error, "unreachable");
        else
            reached_else = true;
        CHECK(reached_else);
    }
}

// ---- error.hpp ----

TEST_CASE("every error type derives from nanotorch::error and std::runtime_error") {
    CHECK(std::is_base_of<std::runtime_error, nt::error>::value);
    CHECK(std::is_base_of<nt::error, nt::shape_error>::value);
    CHECK(std::is_base_of<nt::error, nt::value_error>::value);
    CHECK(std::is_base_of<nt::error, nt::autograd_error>::value);
    CHECK(std::is_base_of<nt::error, nt::unsupported_error>::value);
    CHECK(std::is_base_of<nt::error, nt::io_error>::value);
    CHECK(std::is_base_of<nt::error, nt::parse_error>::value);

    try {
        throw nt::shape_error("add: [2,3] vs [4]");
    } catch (const nt::error& e) {
        CHECK(std::string(e.what()) == "add: [2,3] vs [4]");
    }
}

TEST_CASE("io_error carries the path and prefixes it to what()") {
    const nt::io_error e("data/mnist/train-images-idx3-ubyte", "cannot open");
    CHECK(e.path() == "data/mnist/train-images-idx3-ubyte");
    CHECK(std::string(e.what()) == "data/mnist/train-images-idx3-ubyte: cannot open");
}

TEST_CASE("parse_error carries offset, bare message and optional path") {
    SUBCASE("without a path") {
        const nt::parse_error e(17, "varint longer than 10 bytes");
        CHECK(e.offset() == 17);
        CHECK(e.message() == "varint longer than 10 bytes");
        CHECK(e.path().empty());
        CHECK(std::string(e.what()) == "byte 17: varint longer than 10 bytes");
    }
    SUBCASE("with a path") {
        const nt::parse_error e(4, "bad magic 0x00000802", "t10k-labels-idx1-ubyte");
        CHECK(e.offset() == 4);
        CHECK(e.message() == "bad magic 0x00000802");
        CHECK(e.path() == "t10k-labels-idx1-ubyte");
        CHECK(std::string(e.what()) == "t10k-labels-idx1-ubyte: byte 4: bad magic 0x00000802");
    }
    SUBCASE("offsets beyond 32 bits are printed exactly") {
        const std::uint64_t big = (std::uint64_t(1) << 40) + 3;
        const nt::parse_error e(big, "truncated");
        CHECK(e.offset() == big);
        CHECK(std::string(e.what()) == "byte 1099511627779: truncated");
    }
    SUBCASE("caught as the base type") {
        CHECK_THROWS_AS(throw nt::parse_error(0, "empty"), nt::error);
    }
}

// ---- util/bytes.hpp ----

TEST_CASE("big-endian 32-bit load/store") {
    const unsigned char magic[4] = {0x00, 0x00, 0x08, 0x01};
    CHECK(nt::util::load_be32(magic) == 0x00000801u);

    unsigned char buf[4] = {};
    nt::util::store_be32(buf, 0x12345678u);
    CHECK(buf[0] == 0x12);
    CHECK(buf[1] == 0x34);
    CHECK(buf[2] == 0x56);
    CHECK(buf[3] == 0x78);

    for (std::uint32_t v : {0u, 1u, 0x80u, 0xFFu, 0x100u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu}) {
        nt::util::store_be32(buf, v);
        CHECK(nt::util::load_be32(buf) == v);
    }
}

TEST_CASE("little-endian 32/64-bit load/store") {
    unsigned char buf[8] = {};
    nt::util::store_le32(buf, 0x12345678u);
    CHECK(buf[0] == 0x78);
    CHECK(buf[3] == 0x12);
    CHECK(nt::util::load_le32(buf) == 0x12345678u);

    nt::util::store_le64(buf, 0x0102030405060708ull);
    for (int i = 0; i < 8; ++i) CHECK(buf[i] == 8 - i);
    CHECK(nt::util::load_le64(buf) == 0x0102030405060708ull);

    for (std::uint64_t v : {0ull, 1ull, 0xFFFFFFFFull, 0x100000000ull, 0x8000000000000000ull,
                            0xFFFFFFFFFFFFFFFFull}) {
        nt::util::store_le64(buf, v);
        CHECK(nt::util::load_le64(buf) == v);
    }
}

TEST_CASE("loads do not depend on alignment") {
    // Offsets 1..3 of a buffer are misaligned for uint32; the shift-based loads must not care.
    unsigned char buf[12] = {0xAA, 0x78, 0x56, 0x34, 0x12, 0xEF, 0xCD, 0xAB, 0x89, 0, 0, 0};
    CHECK(nt::util::load_le32(buf + 1) == 0x12345678u);
    CHECK(nt::util::load_be32(buf + 1) == 0x78563412u);
    CHECK(nt::util::load_le64(buf + 1) == 0x89ABCDEF12345678ull);
}

TEST_CASE("float and double bit casts match IEEE-754 encodings") {
    CHECK(nt::util::float_bits(1.0f) == 0x3F800000u);
    CHECK(nt::util::float_bits(-2.0f) == 0xC0000000u);
    CHECK(nt::util::float_bits(0.0f) == 0u);
    CHECK(nt::util::float_bits(-0.0f) == 0x80000000u);
    CHECK(nt::util::bits_float(0x3F800000u) == 1.0f);
    CHECK(std::isinf(nt::util::bits_float(0x7F800000u)));
    CHECK(std::isnan(nt::util::bits_float(0x7FC00000u)));

    CHECK(nt::util::double_bits(1.0) == 0x3FF0000000000000ull);
    CHECK(nt::util::bits_double(0xC000000000000000ull) == -2.0);

    // Round trips, including denormals and the extremes.
    for (float f : {0.1f, -3.5f, std::numeric_limits<float>::min(),
                    std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()}) {
        CHECK(nt::util::bits_float(nt::util::float_bits(f)) == f);
    }
    for (double d : {0.1, -3.5, std::numeric_limits<double>::denorm_min(),
                     std::numeric_limits<double>::max()}) {
        CHECK(nt::util::bits_double(nt::util::double_bits(d)) == d);
    }
}

TEST_CASE("float bits written little-endian give the ONNX raw_data byte order") {
    unsigned char buf[4] = {};
    nt::util::store_le32(buf, nt::util::float_bits(1.0f));
    CHECK(buf[0] == 0x00);
    CHECK(buf[1] == 0x00);
    CHECK(buf[2] == 0x80);
    CHECK(buf[3] == 0x3F);
    CHECK(nt::util::bits_float(nt::util::load_le32(buf)) == 1.0f);
}
