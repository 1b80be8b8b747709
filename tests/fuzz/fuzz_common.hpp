// tests/fuzz/fuzz_common.hpp — what every fuzz target shares: the heap accounting behind the
// "no input makes a reader allocate more than 64x its own size" rule, and the error policy.
//
// Accounting. Under AddressSanitizer (every fuzz build, and a sanitized replay build) the
// sanitizer's malloc/free hooks see every heap block, whether it comes from operator new,
// std::vector or stb_image's calloc. HeapScope resets a per-input counter of live bytes and
// records its peak; check_peak() aborts (libFuzzer saves the input as a crash) when the peak
// exceeds the budget the target states. Without a sanitizer the hooks do not exist (weak
// symbols), nothing is counted and the checks pass: a plain replay build only replays.
//
// Run budget. A model's "one run" may legitimately need far more memory than the file's size
// (a 20-byte Pad can ask for 2^30 elements, which the runtime's own cap allows). While a
// RunBudget is active, the global operator new below throws std::bad_alloc instead of letting
// live heap grow past the budget; the ONNX target catches that and counts the input as
// rejected. Outside a RunBudget operator new behaves normally.
//
// Error policy. A target catches nanotorch::error (the documented way a reader rejects bad
// input) and nothing else: any other exception escapes LLVMFuzzerTestOneInput, std::terminate
// aborts, and libFuzzer reports the input.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

extern "C" {
// Provided by the sanitizer runtimes (<sanitizer/allocator_interface.h>); weak so that a build
// without sanitizers links and simply counts nothing.
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, std::size_t),
                                              void (*free_hook)(const volatile void*))
    __attribute__((weak));
std::size_t __sanitizer_get_allocated_size(const volatile void* p) __attribute__((weak));
int __sanitizer_get_ownership(const volatile void* p) __attribute__((weak));
}

namespace fuzz {

// ---- heap accounting ----

struct HeapCounters {
    std::atomic<std::int64_t> live{0};  // bytes allocated minus bytes freed since the scope began
    std::atomic<std::int64_t> peak{0};
    std::atomic<bool> active{false};
    std::atomic<std::int64_t> run_budget{-1};  // -1: operator new does not enforce anything
};

inline HeapCounters& counters() {
    static HeapCounters c;
    return c;
}

inline void on_malloc(const volatile void*, std::size_t n) {
    HeapCounters& c = counters();
    if (!c.active.load(std::memory_order_relaxed)) return;
    const std::int64_t now = c.live.fetch_add(std::int64_t(n), std::memory_order_relaxed) + std::int64_t(n);
    std::int64_t p = c.peak.load(std::memory_order_relaxed);
    while (now > p && !c.peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
}

inline void on_free(const volatile void* ptr) {
    HeapCounters& c = counters();
    if (!c.active.load(std::memory_order_relaxed) || ptr == nullptr) return;
    // The hook runs before the block is released, so its size is still known. A block allocated
    // before the scope began makes `live` dip below zero, which only makes the check stricter
    // for nothing: peaks are measured from the scope's start.
    if (__sanitizer_get_ownership && __sanitizer_get_ownership(ptr))
        c.live.fetch_sub(std::int64_t(__sanitizer_get_allocated_size(ptr)), std::memory_order_relaxed);
}

/// True when allocations are actually being counted (a sanitizer runtime is linked).
inline bool heap_accounting_available() {
    static const bool ok = __sanitizer_install_malloc_and_free_hooks != nullptr &&
                           __sanitizer_get_allocated_size != nullptr &&
                           __sanitizer_install_malloc_and_free_hooks(&on_malloc, &on_free) != 0;
    return ok;
}

/// Counts live heap bytes from construction to destruction (one per input).
struct HeapScope {
    HeapScope() {
        (void)heap_accounting_available();
        counters().live = 0;
        counters().peak = 0;
        counters().active = true;
    }
    ~HeapScope() { counters().active = false; }
    HeapScope(const HeapScope&) = delete;
    HeapScope& operator=(const HeapScope&) = delete;

    /// Peak live bytes so far in this scope.
    std::int64_t peak() const { return counters().peak.load(); }
    /// Restarts the peak at the current live size (to measure a later phase on its own).
    void restart_peak() { counters().peak = counters().live.load(); }
};

/// Aborts with a report when `peak` exceeds `budget`. `what` names the phase and the rule.
/// With NANOTORCH_FUZZ_VERBOSE set, every check prints its numbers (to see how close inputs come).
inline void check_peak(std::int64_t peak, std::int64_t budget, std::size_t input_size, const char* what) {
    static const bool verbose = std::getenv("NANOTORCH_FUZZ_VERBOSE") != nullptr;
    if (verbose)
        std::fprintf(stderr, "==fuzz== %s: peak %lld bytes, input %zu bytes, budget %lld\n", what,
                     static_cast<long long>(peak), input_size, static_cast<long long>(budget));
    if (peak <= budget) return;
    std::fprintf(stderr,
                 "==fuzz== heap rule violated in %s: peak %lld live bytes for a %zu-byte input "
                 "(budget %lld)\n",
                 what, static_cast<long long>(peak), input_size, static_cast<long long>(budget));
    std::abort();
}

/// The default rule: 64 bytes of live heap per input byte, plus a fixed 1 MiB for the
/// structures every input pays for (op tables, error messages, small-object pools).
inline std::int64_t budget_64x(std::size_t input_size) {
    return 64 * std::int64_t(input_size) + (std::int64_t(1) << 20);
}

/// While alive, operator new throws std::bad_alloc rather than let live heap pass `bytes`.
struct RunBudget {
    explicit RunBudget(std::int64_t bytes) { counters().run_budget = bytes; }
    ~RunBudget() { counters().run_budget = -1; }
    RunBudget(const RunBudget&) = delete;
    RunBudget& operator=(const RunBudget&) = delete;
};

inline void enforce_run_budget(std::size_t n) {
    const HeapCounters& c = counters();
    const std::int64_t budget = c.run_budget.load(std::memory_order_relaxed);
    if (budget >= 0 && c.active.load(std::memory_order_relaxed) &&
        c.live.load(std::memory_order_relaxed) + std::int64_t(n) > budget)
        throw std::bad_alloc();
}

}  // namespace fuzz

// ---- replacement operator new/delete (every form, so no sanitizer version is mixed with ours) ----
// Defined in the target's single TU (every fuzz target is one .cpp file).
#ifdef NANOTORCH_FUZZ_RUN_BUDGET
// GCC inlines these into their callers and then sees free() on "operator new" memory; it is our
// own operator new, which calls malloc, so the pairing is right.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
    fuzz::enforce_run_budget(n);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
    fuzz::enforce_run_budget(n);
    const std::size_t al = static_cast<std::size_t>(a);
    void* p = nullptr;
    if (posix_memalign(&p, al < sizeof(void*) ? sizeof(void*) : al, n ? n : 1) == 0) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return ::operator new(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    try {
        return ::operator new(n, a);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
    return ::operator new(n, a, t);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
