// nanotorch/core/buffer_cache.hpp — large tensor buffers recycled by size, so that a training
// step or an inference run in a loop allocates nothing large once it is warm.
//
// Why: a buffer of a few MB comes from the operating system as fresh pages (glibc maps it, or
// grows a heap top it trimmed at the last free), and the kernel faults in and clears every page
// again on each allocation. On onnx_run's ResNet8 at batch 64 that was 14 % of the run time,
// all of it spent in the kernel; a training step allocates its activations and gradients afresh
// the same way. PyTorch's CUDA allocator caches for the same reason.
//
// How: Storage (core/storage.hpp) takes every owned buffer of at least buffer_cache_min_bytes
// from here and gives it back here. A returned buffer is kept, keyed by its size class (the byte
// count rounded up to 4 KiB), and handed to the next request of that class; a request the cache
// cannot serve, and everything smaller than the threshold, goes to operator new. The cache holds
// at most buffer_cache_limit() bytes (default 256 MiB), so memory is bounded: a returned buffer
// that does not fit makes room by freeing the buffers cached longest ago (one larger than the
// whole limit is freed at once). Keeping the cache's old contents instead left a workload that
// changes shape (training at batch 64, then inference at batch 1000) with a cache full of
// buffers nobody asks for again, and every new buffer freshly faulted in: batch-1000 inference
// of PyTorch's examples/mnist net after its training steps ran at 3,900 images/s instead of
// 5,700. Cached memory is not cleared: Storage zero-fills when asked, as for a fresh buffer. One mutex guards the cache: only large buffers pass through it, a few dozen
// per training step.
//
// API: set_buffer_cache_limit(bytes) (0 turns caching off and frees what is cached),
// empty_buffer_cache(), buffer_cache_stats() (cached bytes, hits, misses).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>  // std::prev
#include <map>
#include <mutex>
#include <new>  // aligned operator new

// Under AddressSanitizer a cached buffer is poisoned until it is handed out again, so a use after
// free of a tensor's data is still reported, as it would be without the cache.
#if defined(__SANITIZE_ADDRESS__)
#define NANOTORCH_BUFFER_CACHE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NANOTORCH_BUFFER_CACHE_ASAN 1
#endif
#endif
#if defined(NANOTORCH_BUFFER_CACHE_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace nanotorch {

/// Buffers smaller than this bypass the cache (malloc's own free lists serve them well).
inline constexpr std::size_t buffer_cache_min_bytes = std::size_t{64} << 10;

/// What buffer_cache_stats() reports.
struct BufferCacheStats {
    std::size_t cached_bytes = 0;  // held by the cache now
    std::size_t limit_bytes = 0;   // the current limit
    std::uint64_t hits = 0;        // requests served from the cache
    std::uint64_t misses = 0;      // cacheable requests that went to operator new
};

namespace detail {

class BufferCache {
public:
    static constexpr std::size_t alignment = 64;
    static constexpr std::size_t granule = std::size_t{4} << 10;

    static BufferCache& instance() {
        static BufferCache cache;
        return cache;
    }
    // Set by the destructor at exit: buffers freed after it (a static Tensor's, say) go straight
    // to operator delete. A plain bool with constant initialisation outlives every destructor.
    static bool& destroyed() {
        static bool flag = false;
        return flag;
    }

    static std::size_t size_class(std::size_t bytes) { return (bytes + granule - 1) / granule * granule; }

    /// A 64-byte aligned buffer of at least `bytes` (> 0). Pair with release(p, bytes).
    void* acquire(std::size_t bytes) {
        if (bytes < buffer_cache_min_bytes) return allocate(bytes);
        const std::size_t cls = size_class(bytes);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto it = free_.find(cls);
            if (it != free_.end()) {
                void* p = it->second.p;
                free_.erase(it);
                cached_ -= cls;
                ++hits_;
                unpoison(p, cls);
                return p;
            }
            ++misses_;
        }
        return allocate(cls);
    }

    /// Takes back a buffer acquire(bytes) returned.
    void release(void* p, std::size_t bytes) noexcept {
        if (bytes < buffer_cache_min_bytes) return deallocate(p);
        const std::size_t cls = size_class(bytes);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (cls <= limit_) {
                while (cached_ + cls > limit_) evict_oldest();
                try {
                    free_.emplace(cls, Cached{p, ++released_});
                    cached_ += cls;
                    poison(p, cls);
                    return;
                } catch (...) {  // no memory for the map node: free the buffer instead
                }
            }
        }
        deallocate(p);
    }

    void set_limit(std::size_t bytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        limit_ = bytes;
        trim_to(limit_);
    }

    void clear() {
        std::lock_guard<std::mutex> lock(mutex_);
        trim_to(0);
    }

    BufferCacheStats stats() {
        std::lock_guard<std::mutex> lock(mutex_);
        return {cached_, limit_, hits_, misses_};
    }

    ~BufferCache() {
        for (const auto& e : free_) {
            unpoison(e.second.p, e.first);
            deallocate(e.second.p);
        }
        free_.clear();
        destroyed() = true;
    }

    static void* allocate(std::size_t bytes) { return ::operator new(bytes, std::align_val_t(alignment)); }
    static void deallocate(void* p) noexcept { ::operator delete(p, std::align_val_t(alignment)); }

private:
    BufferCache() = default;

#if defined(NANOTORCH_BUFFER_CACHE_ASAN)
    static void poison(void* p, std::size_t n) noexcept { ASAN_POISON_MEMORY_REGION(p, n); }
    static void unpoison(void* p, std::size_t n) noexcept { ASAN_UNPOISON_MEMORY_REGION(p, n); }
#else
    static void poison(void*, std::size_t) noexcept {}
    static void unpoison(void*, std::size_t) noexcept {}
#endif

    struct Cached {
        void* p;
        std::uint64_t released;  // when it came back (release count): the smallest goes first
    };

    void drop(std::multimap<std::size_t, Cached>::iterator it) noexcept {
        cached_ -= it->first;
        unpoison(it->second.p, it->first);
        deallocate(it->second.p);
        free_.erase(it);
    }

    // Frees the buffer cached longest ago (a scan: the cache holds a few hundred buffers at
    // most, and evicting is rare next to hits). Caller holds mutex_; free_ is not empty.
    void evict_oldest() noexcept {
        auto oldest = free_.begin();
        for (auto it = free_.begin(); it != free_.end(); ++it)
            if (it->second.released < oldest->second.released) oldest = it;
        drop(oldest);
    }

    // Frees cached buffers, largest first, until at most `bytes` are cached. Caller holds mutex_.
    void trim_to(std::size_t bytes) noexcept {
        while (cached_ > bytes) drop(std::prev(free_.end()));
    }

    std::mutex mutex_;
    std::multimap<std::size_t, Cached> free_;  // size class -> buffers of that class
    std::uint64_t released_ = 0;
    std::size_t cached_ = 0;
    std::size_t limit_ = std::size_t{256} << 20;
    std::uint64_t hits_ = 0, misses_ = 0;
};

inline void* acquire_buffer(std::size_t bytes) {
    if (BufferCache::destroyed()) return BufferCache::allocate(bytes);
    return BufferCache::instance().acquire(bytes);
}
inline void release_buffer(void* p, std::size_t bytes) noexcept {
    if (BufferCache::destroyed()) return BufferCache::deallocate(p);
    BufferCache::instance().release(p, bytes);
}

}  // namespace detail

/// Caps the memory the tensor buffer cache may hold (bytes; default 256 MiB). 0 turns caching
/// off. Lowering the limit frees cached buffers, largest first, until the cache fits.
inline void set_buffer_cache_limit(std::size_t bytes) { detail::BufferCache::instance().set_limit(bytes); }

/// Frees every cached buffer (tensors in use are not affected); the limit stays.
inline void empty_buffer_cache() { detail::BufferCache::instance().clear(); }

/// The cache's current size, limit and hit/miss counts.
inline BufferCacheStats buffer_cache_stats() { return detail::BufferCache::instance().stats(); }

}  // namespace nanotorch
