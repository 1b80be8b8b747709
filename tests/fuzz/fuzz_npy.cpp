// tests/fuzz/fuzz_npy.cpp — libFuzzer target for the .npy reader (data/npy.hpp: parse_npy), which
// onnx_run uses for `--input FILE.npy`.
//
// Oracles: a parse_error's offset lies within the input; a file that parses holds exactly the
// elements its shape promises, and re-encoding it (encode_npy, format 1.0) and parsing that again
// gives the same array. Heap rule: 64 x input + 1 MiB (the payload is at most the input).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <nanotorch/data/npy.hpp>

#include "fuzz_common.hpp"

namespace {

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "==fuzz== npy oracle failed: %s\n", what);
    std::abort();
}

bool same(const nanotorch::data::NpyArray& a, const nanotorch::data::NpyArray& b) {
    if (a.shape != b.shape || a.is_int != b.is_int || a.i != b.i || a.f.size() != b.f.size()) return false;
    for (std::size_t k = 0; k < a.f.size(); ++k)  // bitwise, so NaN payloads count
        if (nanotorch::util::float_bits(a.f[k]) != nanotorch::util::float_bits(b.f[k])) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace nanotorch;
    fuzz::HeapScope heap;
    data::NpyArray a;
    try {
        a = data::parse_npy(data, size, "fuzz.npy");
    } catch (const parse_error& e) {
        if (e.offset() > size) finding("parse_error offset beyond the input");
        fuzz::check_peak(heap.peak(), fuzz::budget_64x(size), size, "parse_npy");
        return 0;
    } catch (const unsupported_error&) {
        return 0;
    }
    fuzz::check_peak(heap.peak(), fuzz::budget_64x(size), size, "parse_npy");
    // Zero dims first: (huge, huge, 0) is a valid empty array whose other dims overflow int64.
    bool empty = false;
    for (const std::int64_t d : a.shape) empty = empty || d == 0;
    std::int64_t n = 1;
    if (!empty)
        for (const std::int64_t d : a.shape) n *= d;  // no overflow: parse_npy checked it against the payload
    if ((empty ? 0 : n) != a.numel()) finding("the element count differs from the shape's product");
    const std::vector<unsigned char> again = data::encode_npy(a);
    if (!same(data::parse_npy(again.data(), again.size()), a)) finding("encode -> parse does not round-trip");
    return 0;
}
