// tests/fuzz/fuzz_idx.cpp — libFuzzer target for the IDX reader (data/idx.hpp), raw and gzipped.
//
// The reader itself tells the two apart by the gzip magic 1F 8B, so the input goes to parse_idx
// unchanged and the corpus holds both kinds (MNIST slices and their .gz forms). A successful
// parse is checked (data.size() == numel, rank 1..4) and re-parsed through the matching typed
// entry point: rank 3 through parse_idx_images (same result), rank 1 through parse_idx_labels.
// Heap rule: 64 x input + 1 MiB for raw input; a gzip member may also hold twice the
// decompressed size its trailer declares (the inflate buffer plus the parsed copy), which the
// reader itself caps at deflate's 1032:1 ratio, so a tiny file still cannot claim gigabytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <nanotorch/data/idx.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace nanotorch;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "==fuzz== idx oracle failed: %s\n", what);
    std::abort();
}

std::int64_t heap_budget(const std::uint8_t* data, std::size_t size) {
    std::int64_t budget = fuzz::budget_64x(size);
    if (data::is_gzip(data, size) && size >= 18) {
        const std::size_t t = size - 4;
        const std::uint64_t isize = std::uint64_t(data[t]) | (std::uint64_t(data[t + 1]) << 8) |
                                    (std::uint64_t(data[t + 2]) << 16) | (std::uint64_t(data[t + 3]) << 24);
        if (isize <= 1032 * std::uint64_t(size)) budget += 2 * std::int64_t(isize);
    }
    return budget;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::HeapScope heap;
    const bool gz = data::is_gzip(data, size);
    try {
        const data::IdxArray a = data::parse_idx(data, size, "fuzz.idx");
        if (a.dims.empty() || a.dims.size() > 4) finding("rank outside 1..4");
        if (static_cast<std::int64_t>(a.data.size()) != a.numel()) finding("payload size != product of dims");
        if (a.dims.size() == 3) {
            const data::IdxArray b = data::parse_idx_images(data, size, "fuzz.idx");
            if (b.dims != a.dims || b.data != a.data) finding("parse_idx_images disagrees with parse_idx");
        }
        if (a.dims.size() == 1) {
            try {
                (void)data::parse_idx_labels(data, size, "fuzz.idx", 10);
            } catch (const parse_error& e) {
                // Only a label >= 10 may fail here: its offset is the label's byte.
                if (e.offset() < 8 || e.offset() >= 8 + a.data.size()) finding("label error outside the payload");
            }
        }
    } catch (const parse_error& e) {
        if (!gz && e.offset() > size) finding("parse_error offset beyond the input");
    } catch (const error&) {
        // unsupported_error (another IDX element type) and the like: expected rejections.
    }
    fuzz::check_peak(heap.peak(), heap_budget(data, size), size, gz ? "parse_idx (gzip)" : "parse_idx");
    return 0;
}
