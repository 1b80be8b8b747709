// nanotorch/onnx/wire.hpp — the protobuf wire format, and nothing above it.
//
// Provides varint / zigzag / fixed32 / fixed64 helpers, a bounded `Reader` that walks the fields of
// one serialized message (tags, the four supported wire types, packed and unpacked repeated
// scalars, sub-messages under a depth limit) and a `Writer` that emits canonical bytes (minimal
// varints and minimal length prefixes), byte-identical to what protobuf itself writes. It
// deliberately knows nothing about ONNX: no field numbers, no message types, no schema; the ONNX
// layer adds one parse function per message and skips what it does not know. Groups (wire types
// 3/4) are rejected, not skipped. Every malformed input becomes a nanotorch::parse_error carrying
// the absolute byte offset, and no length read from the input drives an allocation before it has
// been checked against the bytes actually present.
#pragma once

#include <algorithm>    // std::max (geometric reserve)
#include <cstddef>      // std::size_t
#include <cstdint>      // fixed-width wire values
#include <limits>       // int32 range check
#include <string>       // error messages
#include <string_view>  // zero-copy bytes/string fields
#include <utility>      // std::pair, std::move
#include <vector>       // Writer buffer, repeated-field outputs

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/util/bytes.hpp>

namespace nanotorch::onnx::wire {

// ---- constants ----

/// The wire types protobuf still uses. Groups (3, 4) are deliberately absent: onnx.proto has none.
enum class WireType : std::uint8_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

/// A varint never takes more than 10 bytes (64 bits / 7 bits per byte, rounded up).
inline constexpr std::size_t max_varint_size = 10;
/// Field numbers are 29-bit; 0 is invalid.
inline constexpr std::uint32_t max_field_number = (std::uint32_t(1) << 29) - 1;

/// Bounds a Reader enforces beyond "never read past the buffer".
struct Limits {
    /// Sub-messages may nest this many levels below the reader that was constructed at depth 0;
    /// bounds the recursion of any recursive-descent parser built on Reader.
    std::size_t max_depth = 64;
};

/// "varint", "fixed64", "length-delimited", "start group", "end group", "fixed32" or "invalid".
constexpr const char* wire_type_name(unsigned wire_type) noexcept {
    switch (wire_type) {
        case 0: return "varint";
        case 1: return "fixed64";
        case 2: return "length-delimited";
        case 3: return "start group";
        case 4: return "end group";
        case 5: return "fixed32";
        default: return "invalid";
    }
}
constexpr const char* wire_type_name(WireType wire_type) noexcept {
    return wire_type_name(static_cast<unsigned>(wire_type));
}

// ---- zigzag (sint32/sint64 only; plain int32/int64 fields are two's complement varints) ----

constexpr std::uint64_t zigzag_encode64(std::int64_t v) noexcept {
    // Written without shifting a negative value, which is not portable before C++20.
    return (static_cast<std::uint64_t>(v) << 1) ^ (v < 0 ? ~std::uint64_t(0) : std::uint64_t(0));
}
constexpr std::int64_t zigzag_decode64(std::uint64_t v) noexcept {
    return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
}
constexpr std::uint32_t zigzag_encode32(std::int32_t v) noexcept {
    return (static_cast<std::uint32_t>(v) << 1) ^ (v < 0 ? ~std::uint32_t(0) : std::uint32_t(0));
}
constexpr std::int32_t zigzag_decode32(std::uint32_t v) noexcept {
    return static_cast<std::int32_t>((v >> 1) ^ (~(v & 1) + 1));
}

// ---- varints ----

/// Number of bytes the minimal varint encoding of v takes (1..10).
constexpr std::size_t varint_size(std::uint64_t v) noexcept {
    std::size_t n = 1;
    for (; v >= 0x80; v >>= 7) ++n;
    return n;
}

namespace detail {

// Writes the minimal varint encoding of v to out[0, 10); returns its length.
inline std::size_t encode_varint(unsigned char* out, std::uint64_t v) noexcept {
    std::size_t n = 0;
    for (; v >= 0x80; v >>= 7) out[n++] = static_cast<unsigned char>(v | 0x80);
    out[n++] = static_cast<unsigned char>(v);
    return n;
}

enum class VarintStatus { ok, truncated, too_long, overflow };

// Decodes one varint from data[pos, end); advances pos. Never reads at or past `end`.
inline VarintStatus decode_varint(const unsigned char* data, std::size_t end, std::size_t& pos,
                                  std::uint64_t& value) noexcept {
    std::uint64_t result = 0;
    for (std::size_t i = 0; i < max_varint_size; ++i) {
        if (pos >= end) return VarintStatus::truncated;
        const unsigned b = data[pos++];
        if (i == max_varint_size - 1) {
            if (b & 0x80) return VarintStatus::too_long;
            if (b > 1) return VarintStatus::overflow;  // bits 64+ would be set
        }
        result |= std::uint64_t(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            value = result;
            return VarintStatus::ok;
        }
    }
    return VarintStatus::too_long;  // unreachable: the 10th byte always returns above
}

inline const char* varint_status_text(VarintStatus s) noexcept {
    switch (s) {
        case VarintStatus::truncated: return "truncated varint";
        case VarintStatus::too_long: return "varint longer than 10 bytes";
        case VarintStatus::overflow:
            return "varint overflows 64 bits (its 10th byte may only be 0 or 1)";
        default: return "ok";
    }
}

// "2 (length-delimited)"
inline std::string describe_wire_type(unsigned wt) {
    return std::to_string(wt) + " (" + wire_type_name(wt) + ")";
}

}  // namespace detail

/// Appends the minimal varint encoding of v.
inline void append_varint(std::vector<unsigned char>& out, std::uint64_t v) {
    unsigned char tmp[max_varint_size];
    out.insert(out.end(), tmp, tmp + detail::encode_varint(tmp, v));
}

// ---- Reader ----

/// A bounded cursor over one serialized message: call next() to reach each field, then exactly one
/// read_*() or skip() for its value (next() skips a value that was not read). It never reads past
/// its buffer and never owns memory: string_views and sub-readers point into the caller's bytes,
/// which must outlive them. Reader is a cheap copyable view, so a copy can probe a field without
/// consuming it. Every error about the input is a parse_error whose offset() is the absolute
/// offset in the original buffer (sub-readers carry their base offset). Calling a read_*() with
/// no current field is a caller bug and throws value_error.
///
///     Reader r(bytes.data(), bytes.size());
///     while (r.next()) if (r.field() == 1) x = r.read_int64(); else r.skip();
class Reader {
public:
    /// Reads data[0, size). base_offset is added to every reported offset; depth is the nesting
    /// level of this message (read_message() passes depth + 1).
    /// @throws value_error if data is null while size > 0.
    Reader(const unsigned char* data, std::size_t size, std::uint64_t base_offset = 0,
           Limits limits = {}, std::size_t depth = 0)
        : data_(data), size_(size), base_(base_offset), limits_(limits), depth_(depth) {
        NANOTORCH_CHECK(data != nullptr || size == 0, value_error,
                        "wire::Reader: null data with size ", size);
    }

    /// Reads the next tag; false (and no field) at the end of the buffer. An unread value of the
    /// previous field is skipped first.
    /// @throws parse_error on a malformed tag, field number 0, or wire type 3/4/6/7.
    bool next() {
        if (has_value_) skip();
        field_ = 0;
        if (pos_ >= size_) return false;
        tag_pos_ = pos_;
        const std::uint64_t tag = varint_(pos_, size_, "tag: ");
        if (tag > 0xFFFFFFFFu)
            fail_at_(tag_pos_, "tag: " + std::to_string(tag) + " does not fit in 32 bits");
        const auto field = static_cast<std::uint32_t>(tag >> 3);
        const auto wt = static_cast<unsigned>(tag & 7);
        if (field == 0) fail_at_(tag_pos_, "tag: field number 0 is invalid");
        if (wt == 3 || wt == 4 || wt > 5)
            fail_at_(tag_pos_, "field " + std::to_string(field) + ": " +
                                   (wt > 5 ? "invalid" : "unsupported") + " wire type " +
                                   detail::describe_wire_type(wt));
        field_ = field;
        wire_type_ = static_cast<WireType>(wt);
        has_value_ = true;
        return true;
    }

    /// Field number of the current field (0 before the first next() and after the end).
    std::uint32_t field() const noexcept { return field_; }
    WireType wire_type() const noexcept { return wire_type_; }
    /// Absolute offset of the current field's tag.
    std::uint64_t tag_offset() const noexcept { return base_ + tag_pos_; }
    /// Absolute offset of the cursor.
    std::uint64_t offset() const noexcept { return base_ + pos_; }
    std::size_t remaining() const noexcept { return size_ - pos_; }
    std::size_t depth() const noexcept { return depth_; }
    const Limits& limits() const noexcept { return limits_; }

    /// Throws parse_error(tag_offset(), message): lets the schema layer report a bad value where
    /// its field starts.
    [[noreturn]] void fail(const std::string& message) const { fail_at_(tag_pos_, message); }

    // ---- scalar values (each @throws parse_error on a wire type mismatch or malformed bytes) ----

    std::uint64_t read_varint() {
        begin_value_(WireType::varint);
        return varint_();
    }
    /// int64 / uint64 / enum fields: the two's complement of the varint.
    std::int64_t read_int64() { return static_cast<std::int64_t>(read_varint()); }
    /// int32 fields: protobuf writes a negative int32 sign-extended to 10 bytes, which is accepted.
    /// @throws parse_error if the value does not fit int32 (protobuf would silently truncate).
    std::int32_t read_int32() {
        begin_value_(WireType::varint);
        const std::size_t at = pos_;
        return to_int32_(varint_(), at);
    }
    /// Any non-zero varint is true, as in protobuf.
    bool read_bool() { return read_varint() != 0; }
    std::uint32_t read_fixed32() {
        begin_value_(WireType::fixed32);
        return util::load_le32(take_(4, "fixed32"));
    }
    std::uint64_t read_fixed64() {
        begin_value_(WireType::fixed64);
        return util::load_le64(take_(8, "fixed64"));
    }
    float read_float() { return util::bits_float(read_fixed32()); }
    double read_double() { return util::bits_double(read_fixed64()); }

    /// A length-delimited value, as a view into the input buffer.
    /// @throws parse_error if the length exceeds the bytes remaining (checked before any use).
    std::string_view read_bytes() {
        begin_value_(WireType::length_delimited);
        const auto s = span_();
        return {reinterpret_cast<const char*>(data_ + s.first), s.second};
    }
    /// Same as read_bytes(); protobuf strings are not validated as UTF-8 here.
    std::string_view read_string() { return read_bytes(); }

    /// A reader over the current length-delimited value, at depth() + 1, keeping absolute offsets.
    /// @throws parse_error if depth() + 1 would exceed limits().max_depth or the length is bad.
    Reader read_message() {
        begin_value_(WireType::length_delimited);
        if (depth_ >= limits_.max_depth)
            fail_at_(tag_pos_, where_() + "messages nested deeper than the limit of " +
                                   std::to_string(limits_.max_depth));
        const auto s = span_();
        return Reader(data_ + s.first, s.second, base_ + s.first, limits_, depth_ + 1);
    }

    /// Skips the current value according to its wire type (unknown fields).
    /// @throws parse_error if the value is truncated or malformed.
    void skip() {
        begin_value_(wire_type_);
        switch (wire_type_) {
            case WireType::varint: varint_(); break;
            case WireType::fixed64: take_(8, "fixed64"); break;
            case WireType::length_delimited: span_(); break;
            case WireType::fixed32: take_(4, "fixed32"); break;
        }
    }

    // ---- repeated scalars: append one element (unpacked) or a whole packed run (wire type 2) ----
    // Each @throws parse_error on a wire type that fits neither encoding, a bad length, a packed
    // run that ends inside an element, or (int32) a value out of range.

    void read_repeated_int64(std::vector<std::int64_t>& out) {
        repeated_varint_(out, [](std::uint64_t v, std::size_t) { return std::int64_t(v); });
    }
    void read_repeated_uint64(std::vector<std::uint64_t>& out) {
        repeated_varint_(out, [](std::uint64_t v, std::size_t) { return v; });
    }
    void read_repeated_int32(std::vector<std::int32_t>& out) {
        repeated_varint_(out, [this](std::uint64_t v, std::size_t at) { return to_int32_(v, at); });
    }
    void read_repeated_float(std::vector<float>& out) {
        repeated_fixed_<4>(out, WireType::fixed32, "fixed32", [](const unsigned char* p) {
            return util::bits_float(util::load_le32(p));
        });
    }
    void read_repeated_double(std::vector<double>& out) {
        repeated_fixed_<8>(out, WireType::fixed64, "fixed64", [](const unsigned char* p) {
            return util::bits_double(util::load_le64(p));
        });
    }

private:
    [[noreturn]] void fail_at_(std::size_t pos, const std::string& message) const {
        throw parse_error(base_ + pos, message);
    }
    // "field 7: " while a field is current; empty while reading a tag.
    std::string where_() const {
        return field_ == 0 ? std::string() : "field " + std::to_string(field_) + ": ";
    }

    // Consumes the pending value after checking its wire type; a repeated scalar (`packed`)
    // also accepts a length-delimited run.
    void begin_value_(WireType expected, bool packed = false) {
        NANOTORCH_CHECK(has_value_, value_error,
                        "wire::Reader: no current field to read (call next() first; a value can be "
                        "read only once)");
        if (wire_type_ != expected && !(packed && wire_type_ == WireType::length_delimited))
            fail_at_(tag_pos_, where_() + "expected wire type " +
                                   detail::describe_wire_type(static_cast<unsigned>(expected)) +
                                   (packed ? " or 2 (packed)" : "") + ", got " +
                                   detail::describe_wire_type(static_cast<unsigned>(wire_type_)));
        has_value_ = false;
    }

    // Decodes the varint at data_[p, end) and advances p; errors name the varint's start.
    std::uint64_t varint_(std::size_t& p, std::size_t end, const char* context = "") const {
        const std::size_t at = p;
        std::uint64_t v = 0;
        const auto st = detail::decode_varint(data_, end, p, v);
        if (st != detail::VarintStatus::ok)
            fail_at_(at, where_() + context + detail::varint_status_text(st));
        return v;
    }
    std::uint64_t varint_() { return varint_(pos_, size_); }

    // Consumes n bytes of a fixed-width value and returns where they start.
    const unsigned char* take_(std::size_t n, const char* what) {
        if (size_ - pos_ < n)
            fail_at_(pos_, where_() + "truncated " + what + ": need " + std::to_string(n) +
                               " bytes, " + std::to_string(size_ - pos_) + " remain");
        pos_ += n;
        return data_ + pos_ - n;
    }

    // Reads a length prefix and returns {start, length} of the payload, advancing past it. The
    // length is compared with the bytes remaining before anything else uses it.
    std::pair<std::size_t, std::size_t> span_() {
        const std::size_t at = pos_;
        const std::uint64_t len = varint_();
        if (len > size_ - pos_)
            fail_at_(at, where_() + "length " + std::to_string(len) + " exceeds the " +
                             std::to_string(size_ - pos_) + " bytes remaining");
        const std::size_t start = pos_;
        pos_ += static_cast<std::size_t>(len);
        return {start, static_cast<std::size_t>(len)};
    }

    std::int32_t to_int32_(std::uint64_t v, std::size_t at) const {
        using limits = std::numeric_limits<std::int32_t>;
        const auto s = static_cast<std::int64_t>(v);
        if (s < limits::min() || s > limits::max())
            fail_at_(at, where_() + "value " + std::to_string(s) + " does not fit int32");
        return static_cast<std::int32_t>(s);
    }

    // Makes room for n more elements, growing geometrically: exact-size reserves would turn many
    // small packed runs of one field into quadratic copying.
    template <class T>
    static void reserve_more_(std::vector<T>& out, std::size_t n) {
        if (out.capacity() - out.size() < n) out.reserve(std::max(out.size() + n, 2 * out.size()));
    }

    template <class T, class Convert>
    void repeated_varint_(std::vector<T>& out, Convert convert) {
        begin_value_(WireType::varint, true);
        if (wire_type_ == WireType::varint) {
            const std::size_t at = pos_;
            return out.push_back(convert(varint_(), at));
        }
        const auto s = span_();
        const std::size_t end = s.first + s.second;
        // Every varint ends in exactly one byte < 0x80, so counting them gives the exact element
        // count: the reservation is bounded by bytes that are really there.
        std::size_t count = 0;
        for (std::size_t i = s.first; i < end; ++i) count += data_[i] < 0x80 ? 1 : 0;
        reserve_more_(out, count);
        for (std::size_t p = s.first; p < end;) {
            const std::size_t at = p;
            out.push_back(convert(varint_(p, end, "packed run: "), at));
        }
    }

    template <std::size_t Width, class T, class Load>
    void repeated_fixed_(std::vector<T>& out, WireType unpacked, const char* what, Load load) {
        begin_value_(unpacked, true);
        if (wire_type_ == unpacked) return out.push_back(load(take_(Width, what)));
        const std::size_t at = pos_;
        const auto s = span_();
        if (s.second % Width != 0)
            fail_at_(at, where_() + "packed " + what + " run of " + std::to_string(s.second) +
                             " bytes is not a multiple of " + std::to_string(Width));
        reserve_more_(out, s.second / Width);
        for (std::size_t i = 0; i < s.second; i += Width)
            out.push_back(load(data_ + s.first + i));
    }

    const unsigned char* data_;
    std::size_t size_;
    std::uint64_t base_;
    Limits limits_;
    std::size_t depth_;
    std::size_t pos_ = 0;
    std::size_t tag_pos_ = 0;
    std::uint32_t field_ = 0;
    WireType wire_type_ = WireType::varint;
    bool has_value_ = false;  // a tag was read and its value not yet consumed
};

// ---- Writer ----

/// Appends canonical protobuf encodings to a byte buffer: minimal varints, negative int32/int64
/// as 10-byte two's complement, little-endian fixed values, and nested messages whose length
/// prefix is the minimal varint (end_message() inserts it once the payload size is known).
/// Misuse (field number 0 or > max_field_number, unbalanced begin/end_message) throws value_error.
///
///     Writer w;
///     auto m = w.begin_message(7); w.write_int64_field(1, 42); w.end_message(m);
class Writer {
public:
    /// The raw varint, without a tag.
    void write_varint(std::uint64_t v) { append_varint(buf_, v); }

    /// (field << 3) | wire_type as a varint: 1 byte for fields 1-15, 2 for 16-2047 (20 -> A0 01).
    void write_tag(std::uint32_t field, WireType wire_type) {
        NANOTORCH_CHECK(field >= 1 && field <= max_field_number, value_error,
                        "wire::Writer: field number ", field, " outside [1, ", max_field_number,
                        "]");
        const auto wt = static_cast<unsigned>(wire_type);
        NANOTORCH_CHECK(wt <= 2 || wt == 5, value_error, "wire::Writer: invalid wire type ", wt);
        write_varint((std::uint64_t(field) << 3) | wt);
    }

    void write_varint_field(std::uint32_t field, std::uint64_t v) {
        write_tag(field, WireType::varint);
        write_varint(v);
    }
    /// Negative values take 10 bytes, as protobuf writes them.
    void write_int64_field(std::uint32_t field, std::int64_t v) {
        write_varint_field(field, static_cast<std::uint64_t>(v));
    }
    /// Sign-extended to 64 bits first, as protobuf does for int32 (so -1 takes 10 bytes).
    void write_int32_field(std::uint32_t field, std::int32_t v) { write_int64_field(field, v); }
    void write_bool_field(std::uint32_t field, bool v) { write_varint_field(field, v ? 1 : 0); }
    void write_fixed32_field(std::uint32_t field, std::uint32_t v) {
        write_tag(field, WireType::fixed32);
        const std::size_t at = grow_(4);
        util::store_le32(buf_.data() + at, v);
    }
    void write_fixed64_field(std::uint32_t field, std::uint64_t v) {
        write_tag(field, WireType::fixed64);
        const std::size_t at = grow_(8);
        util::store_le64(buf_.data() + at, v);
    }
    void write_float_field(std::uint32_t field, float v) {
        write_fixed32_field(field, util::float_bits(v));
    }
    void write_double_field(std::uint32_t field, double v) {
        write_fixed64_field(field, util::double_bits(v));
    }

    /// Also the way to write raw_data: the caller lays out the bytes (little-endian for ONNX).
    void write_bytes_field(std::uint32_t field, const unsigned char* data, std::size_t size) {
        NANOTORCH_CHECK(data != nullptr || size == 0, value_error,
                        "wire::Writer: null bytes with size ", size);
        write_tag(field, WireType::length_delimited);
        write_varint(size);
        buf_.insert(buf_.end(), data, data + size);
    }
    void write_bytes_field(std::uint32_t field, std::string_view bytes) {
        write_bytes_field(field, reinterpret_cast<const unsigned char*>(bytes.data()),
                          bytes.size());
    }
    void write_string_field(std::uint32_t field, std::string_view s) {
        write_bytes_field(field, s);
    }

    // ---- packed repeated scalars (one tag, one length, the elements back to back) ----
    // An empty run writes nothing, as protobuf does.

    void write_packed_int64(std::uint32_t field, const std::int64_t* v, std::size_t n) {
        packed_varint_(field, v, n);
    }
    void write_packed_int32(std::uint32_t field, const std::int32_t* v, std::size_t n) {
        packed_varint_(field, v, n);  // sign-extended, like write_int32_field
    }
    void write_packed_uint64(std::uint32_t field, const std::uint64_t* v, std::size_t n) {
        packed_varint_(field, v, n);
    }
    void write_packed_float(std::uint32_t field, const float* v, std::size_t n) {
        unsigned char* out = packed_fixed_(field, n, 4);
        for (std::size_t i = 0; i < n; ++i) util::store_le32(out + 4 * i, util::float_bits(v[i]));
    }
    void write_packed_double(std::uint32_t field, const double* v, std::size_t n) {
        unsigned char* out = packed_fixed_(field, n, 8);
        for (std::size_t i = 0; i < n; ++i) util::store_le64(out + 8 * i, util::double_bits(v[i]));
    }

    // ---- nested messages ----

    /// Writes the tag of a length-delimited field and opens a sub-message; returns the token to
    /// pass to end_message(). Messages nest and must be closed innermost first.
    std::size_t begin_message(std::uint32_t field) {
        write_tag(field, WireType::length_delimited);
        open_.push_back(buf_.size());
        return buf_.size();
    }
    /// Closes the innermost open message by inserting its minimal length prefix in front of its
    /// payload. This moves the payload once per nesting level, which keeps the output canonical
    /// (a fixed-width placeholder would not be) at a cost linear in payload size times depth.
    /// @throws value_error if token is not the innermost open message.
    void end_message(std::size_t token) {
        NANOTORCH_CHECK(!open_.empty() && open_.back() == token, value_error,
                        "wire::Writer: end_message(", token,
                        ") does not match the innermost open message");
        open_.pop_back();
        unsigned char prefix[max_varint_size];
        const std::size_t n = detail::encode_varint(prefix, buf_.size() - token);
        buf_.insert(buf_.begin() + static_cast<std::ptrdiff_t>(token), prefix, prefix + n);
    }
    /// begin_message(field), fill(*this), end_message(). If fill throws, the message stays open.
    template <class Fill>
    void write_message(std::uint32_t field, Fill&& fill) {
        const std::size_t token = begin_message(field);
        fill(*this);
        end_message(token);
    }

    // ---- output ----

    /// Bytes written so far (incomplete while a message is open).
    const std::vector<unsigned char>& bytes() const noexcept { return buf_; }
    std::size_t size() const noexcept { return buf_.size(); }
    std::size_t open_messages() const noexcept { return open_.size(); }
    /// Moves the finished bytes out and leaves the writer empty.
    /// @throws value_error if a message is still open.
    std::vector<unsigned char> take() {
        NANOTORCH_CHECK(open_.empty(), value_error, "wire::Writer: take() with ", open_.size(),
                        " message(s) still open");
        std::vector<unsigned char> out = std::move(buf_);
        buf_.clear();
        return out;
    }
    void clear() noexcept {
        buf_.clear();
        open_.clear();
    }

private:
    std::size_t grow_(std::size_t n) {
        const std::size_t at = buf_.size();
        buf_.resize(at + n);
        return at;
    }

    // Writes the tag and length of a packed fixed-width run and returns where its n elements go
    // (nothing at all for an empty run, as protobuf does).
    unsigned char* packed_fixed_(std::uint32_t field, std::size_t n, std::size_t width) {
        if (n == 0) return nullptr;
        write_tag(field, WireType::length_delimited);
        write_varint(std::uint64_t(n) * width);
        const std::size_t at = grow_(n * width);  // before data(): resize may move the buffer
        return buf_.data() + at;
    }

    template <class T>
    void packed_varint_(std::uint32_t field, const T* v, std::size_t n) {
        if (n == 0) return;
        // Payload size first, so the length prefix goes out before the elements and nothing moves.
        std::uint64_t len = 0;
        for (std::size_t i = 0; i < n; ++i) len += varint_size(to_wire_(v[i]));
        write_tag(field, WireType::length_delimited);
        write_varint(len);
        for (std::size_t i = 0; i < n; ++i) write_varint(to_wire_(v[i]));
    }
    // Signed values go through int64 so that negatives are sign-extended to 64 bits.
    static std::uint64_t to_wire_(std::int64_t v) noexcept { return static_cast<std::uint64_t>(v); }
    static std::uint64_t to_wire_(std::int32_t v) noexcept { return to_wire_(std::int64_t(v)); }
    static std::uint64_t to_wire_(std::uint64_t v) noexcept { return v; }

    std::vector<unsigned char> buf_;
    std::vector<std::size_t> open_;  // payload start of each open message, innermost last
};

}  // namespace nanotorch::onnx::wire
