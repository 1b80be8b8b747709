// Tests for nanotorch/onnx/wire.hpp: golden bytes for every encoding, malformed-input errors with
// exact offsets, truncation at every byte, packed/unpacked equivalence, depth limits, round trips,
// and a seeded random walk over garbage that may only ever produce parse_error.
#include <doctest/doctest.h>

#include <nanotorch/onnx/wire.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace nanotorch::onnx::wire;
using nanotorch::parse_error;
using nanotorch::value_error;
using Bytes = std::vector<unsigned char>;

namespace {

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();
constexpr std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int32_t i32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t i32_max = std::numeric_limits<std::int32_t>::max();

Bytes cat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}
Bytes repeat(unsigned char byte, std::size_t n) { return Bytes(n, byte); }
Bytes varint_bytes(std::uint64_t v) {
    Bytes b;
    append_varint(b, v);
    return b;
}
// The bytes that `write` puts into a fresh Writer.
template <class F>
Bytes written(F&& write) {
    Writer w;
    write(w);
    return w.take();
}

// Runs fn; returns the parse_error it threw, or nothing. Any other exception propagates and so
// fails the test.
template <class F>
std::optional<parse_error> catch_parse_error(F&& fn) {
    try { fn(); } catch (const parse_error& e) { return e; }
    return std::nullopt;
}

// CHECK_PARSE_ERROR(offset, message, statement...): the statement throws a parse_error with
// exactly this offset and message (a macro so that failures point at the calling line).
#define CHECK_PARSE_ERROR(off, msg, ...)                         \
    do {                                                         \
        const auto e_ = catch_parse_error([&] { __VA_ARGS__; }); \
        REQUIRE(e_);                                             \
        CHECK(e_->offset() == (off));                            \
        CHECK(e_->message() == (msg));                           \
    } while (0)

// Advances r to its next field, which must exist.
Reader& at_next(Reader& r) {
    REQUIRE(r.next());
    return r;
}
// A reader positioned on the first field of `b`.
Reader first_field(const Bytes& b) {
    Reader r(b.data(), b.size());
    return at_next(r);
}

// Same bytes, element by element (bitwise, so -0.0f and infinities count).
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() &&
           (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// ---- the mixed message used by the round-trip, truncation and random tests ----

// One recursive message type exercising every encoding: field 7 nests Mixed inside Mixed.
struct Mixed {
    std::int64_t version = 0;        // 1: int64
    std::string name;                // 2: string
    std::vector<std::int64_t> dims;  // 3: repeated int64, unpacked (like onnx.proto's dims)
    std::vector<float> floats;       // 4: packed float (like float_data)
    std::vector<Mixed> children;     // 7: nested messages
    std::uint64_t kind = 0;          // 20: a two-byte tag
    float f = 0;                     // 21: fixed32
    double d = 0;                    // 22: fixed64
    bool flag = false;               // 23
    std::int32_t axis = 0;           // 24: int32, negative -> 10 bytes
    bool operator==(const Mixed& o) const {  // floating point compared bitwise: exact round trip
        return version == o.version && name == o.name && dims == o.dims &&
               same_bits(floats, o.floats) && children == o.children &&
               kind == o.kind && std::memcmp(&f, &o.f, sizeof f) == 0 &&
               std::memcmp(&d, &o.d, sizeof d) == 0 && flag == o.flag && axis == o.axis;
    }
};

Mixed sample_mixed() {
    // The 150-byte name gives 2-byte length prefixes at three levels; Mixed{} is an empty message.
    const Mixed leaf{0, std::string(150, 'x'), {}, {}, {}, 0, 0.0f, 0.0, false, -7};
    const Mixed child{0, "", {-1}, {}, {leaf, Mixed{}}, 0, 0.0f, 0.0, false, 0};
    return Mixed{4, "nanotorch", {2, 3}, {1.5f, -0.25f}, {child}, 7, 3.25f, -1e300, true, -1};
}

void encode_mixed(Writer& w, const Mixed& m) {
    w.write_int64_field(1, m.version);
    w.write_string_field(2, m.name);
    for (std::int64_t d : m.dims) w.write_int64_field(3, d);
    w.write_packed_float(4, m.floats.data(), m.floats.size());
    for (const Mixed& c : m.children) w.write_message(7, [&](Writer& s) { encode_mixed(s, c); });
    w.write_varint_field(20, m.kind);
    w.write_float_field(21, m.f);
    w.write_double_field(22, m.d);
    w.write_bool_field(23, m.flag);
    w.write_int32_field(24, m.axis);
}
Bytes encode_mixed(const Mixed& m) {
    return written([&](Writer& w) { encode_mixed(w, m); });
}

Mixed decode_mixed(Reader r) {
    Mixed m;
    while (r.next()) {
        switch (r.field()) {
            case 1: m.version = r.read_int64(); break;
            case 2: m.name = std::string(r.read_string()); break;
            case 3: r.read_repeated_int64(m.dims); break;
            case 4: r.read_repeated_float(m.floats); break;
            case 7: m.children.push_back(decode_mixed(r.read_message())); break;
            case 20: m.kind = r.read_varint(); break;
            case 21: m.f = r.read_float(); break;
            case 22: m.d = r.read_double(); break;
            case 23: m.flag = r.read_bool(); break;
            case 24: m.axis = r.read_int32(); break;
            default: r.skip();
        }
    }
    return m;
}

// Generic walk used on random input: reads every field by its wire type, probes length-delimited
// payloads as packed runs and recurses into them as messages when they parse. Errors from a probe
// are expected and must carry an offset inside the buffer.
std::size_t walk_all(Reader& r, std::size_t total, bool& offsets_ok) {
    std::size_t fields = 0;
    auto probe = [&](auto&& fn) {
        if (auto e = catch_parse_error(fn)) offsets_ok = offsets_ok && e->offset() <= total;
    };
    while (r.next()) {
        ++fields;
        Reader a = r, b = r, c = r;  // copies probe the value without consuming it in r
        std::vector<std::int64_t> ints;
        std::vector<std::int32_t> ints32;
        std::vector<float> floats;
        std::vector<double> doubles;
        switch (r.wire_type()) {
            case WireType::varint:
                probe([&] { a.read_repeated_int32(ints32); });
                r.read_int64();
                break;
            case WireType::fixed64: r.read_double(); break;
            case WireType::fixed32: r.read_float(); break;
            case WireType::length_delimited: {
                probe([&] { a.read_repeated_int64(ints); });
                probe([&] { b.read_repeated_float(floats); });
                probe([&] { c.read_repeated_double(doubles); });
                Reader sub = r.read_message();
                probe([&] { fields += walk_all(sub, total, offsets_ok); });
            } break;
        }
    }
    return fields;
}

// Writes `values` to field 5 packed, unpacked, and as both (packed run first), and checks that
// `read` gives back the values, the values, and the values twice.
template <class T, class U>
void check_both_encodings(const std::vector<T>& values,
                          void (Writer::*packed)(std::uint32_t, const T*, std::size_t),
                          void (Writer::*one)(std::uint32_t, U),
                          void (Reader::*read)(std::vector<T>&)) {
    const Bytes p = written([&](Writer& w) { (w.*packed)(5, values.data(), values.size()); });
    const Bytes u = written([&](Writer& w) {
        for (const T& v : values) (w.*one)(5, static_cast<U>(v));
    });
    std::vector<T> twice = values;
    twice.insert(twice.end(), values.begin(), values.end());
    for (const auto& [bytes, expected] : {std::pair{p, values}, {u, values}, {cat(p, u), twice}}) {
        std::vector<T> got;
        for (Reader r(bytes.data(), bytes.size()); r.next();) (r.*read)(got);
        CHECK(same_bits(got, expected));
    }
}

// A message nested `levels` deep through field 1, holding field 2 = 5 innermost.
Bytes nested(std::size_t levels) {
    Writer w;
    std::vector<std::size_t> tokens;
    for (std::size_t i = 0; i < levels; ++i) tokens.push_back(w.begin_message(1));
    w.write_int64_field(2, 5);
    for (std::size_t i = levels; i-- > 0;) w.end_message(tokens[i]);
    return w.take();
}

// How deep field 2 sat, recursing through field 1.
std::size_t depth_of(Reader r) {
    std::size_t found = 0;
    while (r.next()) {
        if (r.field() == 1) found = depth_of(r.read_message());
        else if (r.field() == 2 && r.read_int64() == 5) found = r.depth();
    }
    return found;
}

}  // namespace

// ---- golden encodings ----

TEST_CASE("varints and int32/int64 fields: golden bytes, sizes and decoding") {
    const std::vector<std::pair<std::uint64_t, Bytes>> cases = {
        {0, {0x00}}, {1, {0x01}}, {127, {0x7F}}, {128, {0x80, 0x01}}, {300, {0xAC, 0x02}},
        {16383, {0xFF, 0x7F}}, {16384, {0x80, 0x80, 0x01}},
        {std::uint64_t(1) << 63, cat(repeat(0x80, 9), {0x01})},
        {u64_max, cat(repeat(0xFF, 9), {0x01})}};
    for (const auto& c : cases) {  // not a structured binding: clang 14 cannot CAPTURE one
        CAPTURE(c.first);
        CHECK(varint_bytes(c.first) == c.second);
        CHECK(varint_size(c.first) == c.second.size());
        const Bytes field = cat({0x08}, c.second);
        Reader r = first_field(field);
        CHECK(r.read_varint() == c.first);
        CHECK(r.remaining() == 0);
    }
    // A non-minimal encoding is still a valid varint (protobuf accepts it).
    CHECK(first_field({0x08, 0x81, 0x80, 0x00}).read_varint() == 1);

    // int32/int64 fields: negatives are 10-byte two's complement varints.
    const Bytes minus_one = cat({0x08}, cat(repeat(0xFF, 9), {0x01}));
    const Bytes min64 = cat({0x08}, cat(repeat(0x80, 9), {0x01}));
    CHECK(written([](Writer& w) { w.write_int64_field(1, -1); }) == minus_one);
    // int32 is sign-extended to 64 bits, exactly as protobuf writes it.
    CHECK(written([](Writer& w) { w.write_int32_field(1, -1); }) == minus_one);
    CHECK(written([](Writer& w) { w.write_int64_field(1, i64_min); }) == min64);
    CHECK(first_field(minus_one).read_int64() == -1);
    CHECK(first_field(minus_one).read_int32() == -1);
    CHECK(first_field(min64).read_int64() == i64_min);
}

TEST_CASE("zigzag") {
    static_assert(zigzag_encode64(-1) == 1, "zigzag must be constexpr");
    const std::pair<std::int64_t, std::uint64_t> golden64[] = {
        {0, 0}, {-1, 1}, {1, 2}, {-2, 3}, {i64_max, u64_max - 1}, {i64_min, u64_max}};
    for (const auto& [v, z] : golden64) {
        CHECK(zigzag_encode64(v) == z);
        CHECK(zigzag_decode64(z) == v);
    }
    const std::pair<std::int32_t, std::uint32_t> golden32[] = {
        {0, 0}, {-1, 1}, {1, 2}, {i32_max, 0xFFFFFFFEu}, {i32_min, 0xFFFFFFFFu}};
    for (const auto& [v, z] : golden32) {
        CHECK(zigzag_encode32(v) == z);
        CHECK(zigzag_decode32(z) == v);
    }
}

TEST_CASE("tags: 1 byte up to field 15, 2 bytes from field 16 (field 20 varint = A0 01)") {
    CHECK(written([](Writer& w) { w.write_tag(20, WireType::varint); }) == Bytes{0xA0, 0x01});
    const Bytes b = written([](Writer& w) { w.write_varint_field(20, 7); });
    CHECK(b == Bytes{0xA0, 0x01, 0x07});
    Reader r = first_field(b);
    CHECK(r.field() == 20);
    CHECK(r.wire_type() == WireType::varint);
    CHECK(r.read_varint() == 7);
    CHECK_FALSE(r.next());
    CHECK(written([](Writer& w) { w.write_tag(15, WireType::length_delimited); }) == Bytes{0x7A});
    CHECK(written([](Writer& w) { w.write_tag(16, WireType::varint); }) == Bytes{0x80, 0x01});
    const Bytes max = written([](Writer& w) { w.write_varint_field(max_field_number, 1); });
    CHECK(max.size() == 5 + 1);
    CHECK(first_field(max).field() == max_field_number);
    Writer w;
    CHECK_THROWS_AS(w.write_tag(0, WireType::varint), value_error);
    CHECK_THROWS_AS(w.write_tag(max_field_number + 1, WireType::varint), value_error);
}

TEST_CASE("fixed32/fixed64/length-delimited: golden bytes and read back") {
    const Bytes b = written([](Writer& w) {
        w.write_float_field(2, 1.0f);  // AttributeProto.f
        w.write_double_field(10, 1.0);
        w.write_fixed32_field(1, 0x12345678u);
        w.write_bytes_field(2, "hi");
        w.write_string_field(3, "");
    });
    CHECK(b == Bytes{0x15, 0x00, 0x00, 0x80, 0x3F, 0x51, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0,
                     0x3F, 0x0D, 0x78, 0x56, 0x34, 0x12, 0x12, 0x02, 'h', 'i', 0x1A, 0x00});
    Reader r(b.data(), b.size());
    CHECK(at_next(r).read_float() == 1.0f);
    CHECK(at_next(r).read_double() == 1.0);
    CHECK(at_next(r).read_fixed32() == 0x12345678u);
    CHECK(at_next(r).read_bytes() == "hi");
    CHECK(at_next(r).read_string().empty());
    CHECK_FALSE(r.next());
    CHECK(r.field() == 0);
}

TEST_CASE("packed writers: golden bytes; an empty run writes nothing") {
    const std::int64_t ints[] = {1, 300, -1};
    const float floats[] = {1.0f, -2.0f};
    CHECK(written([&](Writer& w) { w.write_packed_int64(1, ints, 3); }) ==
          cat({0x0A, 0x0D, 0x01, 0xAC, 0x02}, cat(repeat(0xFF, 9), {0x01})));
    CHECK(written([&](Writer& w) { w.write_packed_float(4, floats, 2); }) ==  // as float_data
          Bytes{0x22, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0});
    CHECK(written([&](Writer& w) {
              w.write_packed_int64(1, ints, 0);
              w.write_packed_float(4, nullptr, 0);
              w.write_packed_double(10, nullptr, 0);
          }).empty());
}

TEST_CASE("nested messages get minimal length prefixes") {
    Writer w;
    const std::size_t token = w.begin_message(7);
    w.write_varint_field(1, 150);
    w.end_message(token);
    CHECK(w.bytes() == Bytes{0x3A, 0x03, 0x08, 0x96, 0x01});

    // Payload of 203 bytes (tag + 2-byte length + 200): the prefix must be the 2-byte CB 01.
    const Bytes big = written([](Writer& v) {
        v.write_message(7, [](Writer& s) { s.write_bytes_field(1, std::string(200, 'a')); });
    });
    REQUIRE(big.size() == 3 + 203);
    CHECK(Bytes(big.begin(), big.begin() + 6) == Bytes{0x3A, 0xCB, 0x01, 0x0A, 0xC8, 0x01});

    // Two levels around an empty message.
    const Bytes deep = written([](Writer& a) {
        a.write_message(1, [](Writer& b) { b.write_message(2, [](Writer&) {}); });
    });
    CHECK(deep == Bytes{0x0A, 0x02, 0x12, 0x00});

    Writer bad;
    const auto outer = bad.begin_message(1);
    bad.begin_message(2);
    CHECK(bad.open_messages() == 2);
    CHECK_THROWS_AS(bad.end_message(outer), value_error);  // the inner one is still open
    CHECK_THROWS_AS(bad.take(), value_error);
}

// ---- malformed input ----

TEST_CASE("varint overflow, over-length and truncation are errors at the varint's offset") {
    const Bytes overflow = cat(repeat(0xFF, 9), {0x02});  // the 10th byte carries 2 bits
    const Bytes eleven = cat(repeat(0xFF, 10), {0x01});
    const std::string overflow_text = "varint overflows 64 bits (its 10th byte may only be 0 or 1)";
    CHECK_PARSE_ERROR(1, "field 1: " + overflow_text,
                      first_field(cat({0x08}, overflow)).read_varint());
    CHECK_PARSE_ERROR(1, "field 1: varint longer than 10 bytes",
                      first_field(cat({0x08}, eleven)).read_int64());
    // Offsets stay absolute when the reader starts at a base offset.
    const Bytes field_overflow = cat({0x08}, overflow);
    Reader based(field_overflow.data(), field_overflow.size(), 100);
    CHECK_PARSE_ERROR(101, "field 1: " + overflow_text, at_next(based).read_varint());
    CHECK_PARSE_ERROR(1, "field 1: truncated varint",
                      first_field({0x08, 0x80, 0x80}).read_int64());
    const Bytes eleven_tag = cat({0x08, 0x01}, eleven);
    Reader r = first_field(eleven_tag);
    r.read_varint();
    CHECK_PARSE_ERROR(2, "tag: varint longer than 10 bytes", r.next());
}

TEST_CASE("invalid tags: field 0, groups, wire types 6/7, tags over 32 bits") {
    const std::vector<std::pair<Bytes, std::string>> cases = {
        {{0x00}, "tag: field number 0 is invalid"},
        {{0x0B}, "field 1: unsupported wire type 3 (start group)"},
        {{0x0C}, "field 1: unsupported wire type 4 (end group)"},
        {{0x0E}, "field 1: invalid wire type 6 (invalid)"},
        {{0x0F}, "field 1: invalid wire type 7 (invalid)"},
        {varint_bytes(std::uint64_t(1) << 35), "tag: 34359738368 does not fit in 32 bits"},
    };
    for (const auto& [tail, message] : cases) {
        const Bytes b = cat({0x08, 0x01}, tail);  // a valid field first, so the offset is 2
        Reader r = first_field(b);
        CHECK_PARSE_ERROR(2, message, r.next());
    }
}

TEST_CASE("a value read with the wrong wire type, or without a current field, is rejected") {
    const Bytes b = written([](Writer& w) {
        w.write_double_field(7, 2.0);
        w.write_string_field(7, "abc");
    });
    Reader r(b.data(), b.size());
    CHECK_THROWS_AS(r.read_varint(), value_error);  // no next() yet
    at_next(r);
    std::vector<float> floats;
    CHECK_PARSE_ERROR(0, "field 7: expected wire type 5 (fixed32) or 2 (packed), got 1 (fixed64)",
                      r.read_repeated_float(floats));
    Reader s = first_field(b);
    s.skip();
    CHECK_PARSE_ERROR(9, "field 7: expected wire type 0 (varint), got 2 (length-delimited)",
                      at_next(s).read_int64());
    Reader t = first_field(b);
    t.read_double();
    CHECK_THROWS_AS(t.read_double(), value_error);  // a value is read once
}

TEST_CASE("unknown fields of every wire type are skipped") {
    const Bytes b = written([](Writer& w) {
        w.write_varint_field(100, u64_max);
        w.write_fixed64_field(101, 0x0102030405060708u);
        w.write_int64_field(1, 42);
        w.write_bytes_field(102, std::string("\x0B\x0C\x0F\x00", 4));  // tag-like garbage
        w.write_fixed32_field(103, 5);
        w.write_message(104, [](Writer& s) { s.write_int64_field(1, 999); });
        w.write_int64_field(1, 43);
    });
    std::vector<std::int64_t> explicit_skip, implicit_skip;
    for (Reader r(b.data(), b.size()); r.next();) {
        if (r.field() == 1) explicit_skip.push_back(r.read_int64());
        else r.skip();
    }
    for (Reader r(b.data(), b.size()); r.next();)  // next() skips a value that was not read
        if (r.field() == 1) implicit_skip.push_back(r.read_int64());
    CHECK(explicit_skip == std::vector<std::int64_t>{42, 43});
    CHECK(implicit_skip == explicit_skip);
    CHECK_PARSE_ERROR(1, "field 1: truncated fixed32: need 4 bytes, 2 remain",
                      first_field({0x0D, 0x01, 0x02}).skip());
}

TEST_CASE("packed and unpacked repeated scalars read to the same values") {
    check_both_encodings<std::int64_t>({0, 1, -1, 300, i64_max, i64_min},
                                       &Writer::write_packed_int64, &Writer::write_int64_field,
                                       &Reader::read_repeated_int64);
    check_both_encodings<float>({1.5f, -0.0f, std::numeric_limits<float>::infinity(),
                                 std::numeric_limits<float>::denorm_min(), -3e38f},
                                &Writer::write_packed_float, &Writer::write_float_field,
                                &Reader::read_repeated_float);
    check_both_encodings<double>({0.0, -1e-300, 2.5}, &Writer::write_packed_double,
                                 &Writer::write_double_field, &Reader::read_repeated_double);
    check_both_encodings<std::int32_t>({-1, i32_min, i32_max}, &Writer::write_packed_int32,
                                       &Writer::write_int32_field, &Reader::read_repeated_int32);
    check_both_encodings<std::uint64_t>({u64_max, 0, 128}, &Writer::write_packed_uint64,
                                        &Writer::write_varint_field, &Reader::read_repeated_uint64);
}

TEST_CASE("packed runs: bad lengths, elements cut at the run's end, int32 range") {
    std::vector<float> f;
    CHECK_PARSE_ERROR(1, "field 4: packed fixed32 run of 6 bytes is not a multiple of 4",
                      first_field({0x22, 0x06, 0, 0, 0x80, 0x3F, 0, 0}).read_repeated_float(f));
    // The run is 2 bytes long but its second varint continues past it (into a valid-looking byte).
    std::vector<std::int64_t> i;
    CHECK_PARSE_ERROR(3, "field 1: packed run: truncated varint",
                      first_field({0x0A, 0x02, 0x01, 0x80, 0x01}).read_repeated_int64(i));
    const Bytes big = varint_bytes(std::uint64_t(1) << 32);
    const std::string range = "field 2: value 4294967296 does not fit int32";
    CHECK_PARSE_ERROR(1, range, first_field(cat({0x10}, big)).read_int32());
    std::vector<std::int32_t> i32;
    CHECK_PARSE_ERROR(3, range, first_field(cat({0x12, 0x06, 0x01}, big)).read_repeated_int32(i32));
}

TEST_CASE("a 2^40 length inside a 1 KB buffer is a clean parse_error for every reader of it") {
    Bytes b = cat({0x0A}, varint_bytes(std::uint64_t(1) << 40));  // 1 + 6 bytes
    b.resize(1024, 0x00);
    const std::string message = "field 1: length 1099511627776 exceeds the 1017 bytes remaining";
    std::vector<std::int64_t> ints;
    std::vector<float> floats;
    std::vector<double> doubles;
    const std::vector<std::function<void(Reader&)>> readers = {
        [](Reader& r) { r.read_bytes(); },
        [](Reader& r) { r.read_message(); },
        [](Reader& r) { r.skip(); },
        [&](Reader& r) { r.read_repeated_int64(ints); },
        [&](Reader& r) { r.read_repeated_float(floats); },
        [&](Reader& r) { r.read_repeated_double(doubles); },
    };
    for (const auto& read : readers) {
        Reader r = first_field(b);
        CHECK_PARSE_ERROR(1, message, read(r));
    }
    CHECK(ints.capacity() == 0);  // nothing was reserved on the strength of the bogus length
    CHECK(floats.capacity() == 0);
    CHECK_PARSE_ERROR(1, "field 1: length 3 exceeds the 2 bytes remaining",
                      first_field({0x0A, 0x03, 'a', 'b'}).read_bytes());
}

// ---- nesting ----

TEST_CASE("sub-readers report absolute offsets") {
    // 3 bytes of field 1, then field 2 = message { field 1 = truncated varint }.
    const Bytes b = {0x08, 0xAC, 0x02, 0x12, 0x02, 0x08, 0x80};
    Reader r = first_field(b);
    CHECK(r.read_varint() == 300);
    Reader sub = at_next(r).read_message();
    CHECK(sub.depth() == 1);
    CHECK(sub.offset() == 5);
    CHECK(at_next(sub).tag_offset() == 5);
    CHECK_PARSE_ERROR(6, "field 1: truncated varint", sub.read_varint());
    CHECK_FALSE(r.next());  // the outer reader is past the sub-message
}

TEST_CASE("nesting depth is limited (default 64, settable)") {
    const Bytes at_default = nested(64);
    CHECK(depth_of(Reader(at_default.data(), at_default.size())) == 64);
    const Bytes beyond = nested(65);
    // The 65th tag is at byte 130: 64 two-byte headers, plus one more length byte for each of
    // the two outermost levels, whose payloads are 128 bytes or more.
    CHECK_PARSE_ERROR(130, "field 1: messages nested deeper than the limit of 64",
                      depth_of(Reader(beyond.data(), beyond.size())));
    const Bytes three = nested(3);
    CHECK(depth_of(Reader(three.data(), three.size(), 0, Limits{3})) == 3);
    CHECK_THROWS_AS(depth_of(Reader(three.data(), three.size(), 0, Limits{2})), parse_error);
}

// ---- round trips and truncation ----

TEST_CASE("writer -> reader -> writer round trip of a mixed message") {
    const Mixed m = sample_mixed();
    const Bytes b = encode_mixed(m);
    const Mixed back = decode_mixed(Reader(b.data(), b.size()));
    CHECK(back == m);
    CHECK(encode_mixed(back) == b);  // byte-identical re-encoding
    // An empty buffer (even a null one) is a valid, empty message.
    Reader empty(nullptr, 0);
    CHECK_FALSE(empty.next());
    CHECK_THROWS_AS(Reader(nullptr, 3), value_error);
}

TEST_CASE("truncating a valid message at every byte: parse_error inside a field, never UB") {
    const Bytes full = encode_mixed(sample_mixed());
    // Top-level field boundaries: a prefix ending exactly there is itself a valid message.
    std::set<std::size_t> boundaries = {0};
    for (Reader r(full.data(), full.size()); r.next();) {
        r.skip();
        boundaries.insert(static_cast<std::size_t>(r.offset()));
    }
    std::size_t errors = 0;
    for (std::size_t k = 0; k < full.size(); ++k) {
        CAPTURE(k);
        // An exactly sized heap copy, so the sanitizer would see any read past the end.
        const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(k));
        const Reader r(prefix.data(), prefix.size());
        const auto e = catch_parse_error([&] { decode_mixed(r); });
        if (boundaries.count(k)) {
            CHECK_FALSE(e);
        } else {
            REQUIRE(e);
            CHECK(e->offset() <= k);
            ++errors;
        }
    }
    CHECK(errors == full.size() - (boundaries.size() - 1));
}

TEST_CASE("random and mutated bytes: a generic walk never lets anything but parse_error out") {
    std::mt19937 gen(20240611);  // fixed seed: the test is deterministic
    std::uniform_int_distribution<int> byte(0, 255);
    auto index = [&](std::size_t hi) {
        return std::uniform_int_distribution<std::size_t>(0, hi)(gen);
    };
    const Bytes valid = encode_mixed(sample_mixed());
    std::size_t parsed = 0, rejected = 0;
    bool offsets_ok = true;
    for (int iter = 0; iter < 4000; ++iter) {
        Bytes b;
        if (iter % 2 == 0) {
            b.resize(index(48));
            for (auto& x : b) x = static_cast<unsigned char>(byte(gen));
        } else {  // a valid message with a few bytes overwritten and maybe cut short
            b = valid;
            for (int flips = 1 + iter % 3; flips > 0; --flips)
                b[index(b.size() - 1)] = static_cast<unsigned char>(byte(gen));
            if (iter % 7 == 1) b.resize(index(b.size()));
        }
        const Bytes exact(b);  // exactly sized for the sanitizer
        Reader r(exact.data(), exact.size(), 0, Limits{8});
        const auto e = catch_parse_error([&] { walk_all(r, exact.size(), offsets_ok); });
        if (e) offsets_ok = offsets_ok && e->offset() <= exact.size();
        ++(e ? rejected : parsed);
    }
    CHECK(offsets_ok);
    CHECK(parsed > 0);  // both outcomes occur, so the walk really exercised the reader
    CHECK(rejected > 0);
}
