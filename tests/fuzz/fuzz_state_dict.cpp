// tests/fuzz/fuzz_state_dict.cpp — libFuzzer target for checkpoints (nn/serialize.hpp):
// decode_state_dict, then load_state_dict into a small fixed module (the names and shapes of
// the committed seed), strictly and leniently.
//
// Oracle: the format is canonical, so a file that decodes must re-encode to exactly its own
// bytes. A failed load must leave the module unchanged (load_state_dict's promise). Heap rule:
// 64 x input + 1 MiB.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <nanotorch/nanotorch.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace nanotorch;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "==fuzz== state_dict oracle failed: %s\n", what);
    std::abort();
}

// The module the fuzz inputs load into; tests/fuzz/seeds/state_dict/ holds its saved weights.
nn::Sequential& target_module() {
    static nn::Sequential net = [] {
        manual_seed(7);
        return nn::Sequential(nn::Conv2d(1, 2, 3), nn::ReLU(), nn::Flatten(), nn::Linear(8, 3));
    }();
    return net;
}

std::vector<float> snapshot(const nn::Module& m) {
    std::vector<float> out;
    for (const auto& [name, t] : nn::state_dict(m))
        for (const float v : t.to_vector()) out.push_back(v);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    set_num_threads(1);
    (void)target_module();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::HeapScope heap;
    std::vector<std::pair<std::string, Tensor>> entries;
    try {
        entries = nn::decode_state_dict(data, size, "fuzz.ntsd");
    } catch (const parse_error& e) {
        if (e.offset() > size) finding("parse_error offset beyond the input");
        fuzz::check_peak(heap.peak(), fuzz::budget_64x(size), size, "decode_state_dict");
        return 0;
    }
    fuzz::check_peak(heap.peak(), fuzz::budget_64x(size), size, "decode_state_dict");
    if (nn::encode_state_dict(entries) != std::vector<unsigned char>(data, data + size))
        finding("a decoded state_dict does not re-encode to its own bytes");

    nn::Module& m = *target_module().ptr();
    const std::vector<float> before = snapshot(m);
    for (const bool strict : {true, false}) {
        try {
            nn::load_state_dict(m, entries, strict, "fuzz.ntsd");
        } catch (const error&) {
            if (snapshot(m) != before) finding("a failed load changed the module");
        }
    }
    // Restore the seed's weights so that every input starts from the same module.
    std::vector<std::pair<std::string, Tensor>> original;
    std::size_t k = 0;
    for (const auto& [name, t] : nn::state_dict(m)) {
        const std::size_t n = static_cast<std::size_t>(t.numel());
        original.emplace_back(name, tensor(std::vector<float>(before.begin() + std::ptrdiff_t(k),
                                                              before.begin() + std::ptrdiff_t(k + n)),
                                           t.shape()));
        k += n;
    }
    nn::load_state_dict(m, original, true, "restore");
    return 0;
}
