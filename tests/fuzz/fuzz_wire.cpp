// tests/fuzz/fuzz_wire.cpp — libFuzzer target for the protobuf wire reader (onnx/wire.hpp).
//
// Walks the input as a message with no schema: every field is read by its wire type, and every
// length-delimited value is also tried as a nested message (recursively, up to the reader's
// depth limit) and, at the top level, as one packed repeated scalar type chosen by its field
// number, through copies of the reader so one attempt cannot disturb the next. Oracles beyond "no crash": every parse_error's offset lies
// within the input; a packed varint run yields exactly one element per terminating byte; and a
// message that parses completely re-encodes (Writer, canonical form) to bytes that parse back to
// the same fields and re-encode identically, never longer than the input. Heap rule: 64x.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nanotorch/onnx/wire.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace nanotorch;
using namespace nanotorch::onnx::wire;

std::size_t g_size = 0;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "==fuzz== wire oracle failed: %s\n", what);
    std::abort();
}

void check_offset(const parse_error& e) {
    if (e.offset() > g_size) finding("parse_error offset beyond the input");
}

// Tries every interpretation of a length-delimited value through copies of r.
void probe_length_delimited(const Reader& r, bool packed_probes);

// Reads every field of r into w (canonical re-encoding). Throws parse_error on malformed input.
void walk(Reader r, Writer& w, bool packed_probes) {
    while (r.next()) {
        const std::uint32_t f = r.field();
        switch (r.wire_type()) {
            case WireType::varint: {
                Reader as_int32 = r;
                try {
                    (void)as_int32.read_int32();
                } catch (const parse_error& e) {
                    check_offset(e);
                }
                w.write_varint_field(f, r.read_varint());
                break;
            }
            case WireType::fixed32: w.write_fixed32_field(f, r.read_fixed32()); break;
            case WireType::fixed64: w.write_fixed64_field(f, r.read_fixed64()); break;
            case WireType::length_delimited: {
                probe_length_delimited(r, packed_probes);
                w.write_bytes_field(f, r.read_bytes());
                break;
            }
        }
    }
}

// `packed_probes` is true only for the top-level message: the packed readers then see every
// length-delimited value of the input once, and nested walks cost O(size) per level, so the
// work per input stays O(size x depth) instead of multiplying at every level.
void probe_length_delimited(const Reader& r, bool packed_probes) {
    try {
        Reader copy = r;
        Reader sub = copy.read_message();  // throws at the depth limit
        Writer ignored;
        walk(sub, ignored, false);
    } catch (const parse_error& e) {
        check_offset(e);
    }
    if (!packed_probes) return;
    // One packed reading per value, chosen by the field number (which the fuzzer controls), so
    // every reader is reached without paying for all five on every value.
    try {
        Reader copy = r;
        switch (r.field() % 5) {
            case 0: {
                std::vector<std::int64_t> v;
                copy.read_repeated_int64(v);
                break;
            }
            case 1: {
                std::vector<std::int32_t> v;
                copy.read_repeated_int32(v);
                break;
            }
            case 2: {
                std::vector<float> v;
                copy.read_repeated_float(v);
                break;
            }
            case 3: {
                std::vector<double> v;
                copy.read_repeated_double(v);
                break;
            }
            default: {
                // One element per byte below 0x80: the reader reserves by that count.
                Reader bytes_reader = r;
                const std::string_view payload = bytes_reader.read_bytes();
                std::size_t terminators = 0;
                for (const char c : payload) terminators += static_cast<unsigned char>(c) < 0x80;
                std::vector<std::uint64_t> v;
                copy.read_repeated_uint64(v);
                if (v.size() != terminators) finding("packed varint count differs from its terminating bytes");
            }
        }
    } catch (const parse_error& e) {
        check_offset(e);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    g_size = size;
    fuzz::HeapScope heap;
    std::vector<unsigned char> first;
    try {
        Writer w;
        walk(Reader(data, size, 0, Limits{16}), w, true);
        first = w.take();
    } catch (const parse_error& e) {
        check_offset(e);
        fuzz::check_peak(heap.peak(), fuzz::budget_64x(size), size, "wire walk");
        return 0;
    }
    // The whole message parsed: its canonical re-encoding is a fixed point and never longer.
    if (first.size() > size) finding("canonical re-encoding is longer than the input");
    Writer w2;
    try {
        walk(Reader(first.data(), first.size(), 0, Limits{16}), w2, false);
    } catch (const parse_error&) {
        finding("the canonical re-encoding does not parse");
    }
    if (w2.bytes() != first) finding("re-encoding is not a fixed point");
    fuzz::check_peak(heap.peak(), fuzz::budget_64x(size), size, "wire walk");
    return 0;
}
