// tests/fuzz/fuzz_onnx.cpp — libFuzzer target for ONNX loading: decode_model (what load_onnx
// reads), the codec's round trip, the Runtime's graph build, and one run on zero inputs.
//
// Phases and rules:
//   1. decode_model + Runtime construction (everything load_onnx does after reading the file):
//      heap peak <= 64 x input + 1 MiB (fuzz::budget_64x).
//   2. Round trip: a model that decodes re-encodes to bytes that decode and re-encode
//      identically (the encoder's output is always accepted, and encoding is deterministic).
//   3. One run, on zeros made by onnx_run's zeros_input (what `onnx_run MODEL` does without
//      --input), but only when the required inputs declare at most 4096 elements in total
//      (symbolic dims count as 1): a 20-byte file may legitimately declare a [1000, 1000] input.
//      The run's heap is capped at 16 MiB by fuzz::RunBudget: ops may legitimately expand (Pad,
//      Gemm, Conv ... up to the runtime's 2^30-element result cap), so a run that needs more is
//      counted as rejected, not as a finding. Its work is capped at 2^21 units by
//      RuntimeOptions::max_work (limit_error, also a rejection): a small file may legitimately ask
//      for a long run (a big Conv kernel, or a chain of ops over a Tile-made tensor). Under ASan
//      and coverage instrumentation, where every integer comparison is a call, the scalar loops
//      take 100-250 ns a unit, and libFuzzer runs an input twice when it suspects a leak.
//      Crashes, UB, leaks and hangs in the run are findings.
#define NANOTORCH_FUZZ_RUN_BUDGET
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

#include "onnx_run.hpp"  // examples/: zeros_input, the tool's own zero-input rule

#include "fuzz_common.hpp"

namespace {

using namespace nanotorch;

constexpr std::int64_t max_run_input_elements = 4096;
// 16 MiB: a tiny model may ask Tile/Expand/... for millions of elements, legitimately; under
// ASan and coverage instrumentation filling 64 MiB took over libFuzzer's 1 s per input (a Tile
// regression input, tests/fuzz/regressions/fuzz_onnx/tile_large_repeats.onnx).
constexpr std::int64_t run_heap_budget = std::int64_t(16) << 20;
// A 0.6 s input (a chain of 30 ops over a Tile-made [1, 2, 32772, 8] tensor) went past 1 s on a
// loaded 2-core CI machine; its run needs about 2^25 units (regressions/fuzz_onnx/
// op_chain_over_tiled_tensor.onnx). 2^21 units stay under 0.5 s, even run twice.
constexpr std::int64_t run_work_budget = std::int64_t(1) << 21;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "==fuzz== onnx oracle failed: %s\n", what);
    std::abort();
}

// Declared elements of a required input with symbolic dims = 1, or -1 when it declares no
// shape, a negative dim, or more than the run limit.
std::int64_t small_numel(const onnx::ValueInfoProto& v) {
    if (!v.has_shape) return -1;
    std::int64_t n = 1;
    for (const auto& d : v.shape) {
        const std::int64_t x = d.has_value ? d.value : 1;
        if (x < 0 || (x != 0 && n > max_run_input_elements / x)) return -1;
        n *= x;
    }
    return n;
}

void round_trip(const onnx::ModelProto& m) {
    const std::vector<unsigned char> once = onnx::encode_model(m);
    // Canonical bytes can be shorter than the input (padding, unpacked floats), so the memory
    // ratio limit, which is about the input, is lifted for the re-decode.
    onnx::Limits relaxed;
    relaxed.max_memory_per_byte = std::uint64_t(1) << 20;
    try {
        const onnx::ModelProto again = onnx::decode_model(once.data(), once.size(), "", relaxed);
        if (onnx::encode_model(again) != once) finding("encode(decode(encode(m))) != encode(m)");
    } catch (const error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        finding("the encoder's output does not decode");
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    set_num_threads(1);  // one thread: deterministic coverage, and the heap counter sees one phase
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::HeapScope heap;
    try {
        onnx::ModelProto m = onnx::decode_model(data, size, "fuzz.onnx");
        fuzz::check_peak(heap.peak(), fuzz::budget_64x(size), size, "decode_model");
        round_trip(m);
        heap.restart_peak();  // the round trip's own copies are not part of loading
        onnx::RuntimeOptions options;
        options.max_work = run_work_budget;
        const onnx::Runtime rt(std::move(m), options);
        fuzz::check_peak(heap.peak(), fuzz::budget_64x(size), size, "decode_model + Runtime");

        onnx::NamedValues inputs;
        std::int64_t total = 0;
        for (const auto& in : rt.required_inputs()) {
            const std::int64_t n = small_numel(in);
            if (n < 0 || (total += n) > max_run_input_elements) return 0;
            inputs.emplace_back(in.name, onnx_run::zeros_input(in));
        }
        try {
            const fuzz::RunBudget cap(run_heap_budget);
            (void)rt.run_values(inputs);
        } catch (const std::bad_alloc&) {
            return 0;  // the model asks for more than the run budget: rejected, not a finding
        }
    } catch (const error&) {
        // Rejected with a nanotorch::error: the expected outcome for most inputs.
    }
    return 0;
}
