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
// at most its limit, so memory is bounded: a returned buffer that does not fit makes room by
// freeing the buffers cached longest ago (one larger than the whole limit is freed at once). By
// default the limit follows the workload: 256 MiB, or twice the most bytes of such buffers in
// use at once so far if that is more. A loop whose buffers come back within one iteration needs
// about that much: a batch-1000 inference of PyTorch's examples/mnist net uses 234 MB at once and
// returns 271 MB per forward, so with a fixed 256 MiB one 86-147 MB buffer was freed and faulted
// in afresh on every forward (a fifth of its time; 5,800 -> 6,900-7,300 images/s with the
// room). The process then holds at most about three times its own peak of large buffers.
// Keeping the cache's old contents instead of freeing the oldest left a workload that changes
// shape (training at batch 64, then inference at batch 1000) with a cache full of buffers nobody
// asks for again, and every new buffer freshly faulted in: batch-1000 inference of PyTorch's
// examples/mnist net after its training steps ran at 3,900 images/s instead of 5,700. Cached
// memory is not cleared: Storage zero-fills when asked, as for a fresh buffer. One mutex guards
// the cache: only large buffers pass through it, a few dozen per training step.
//
// API: set_buffer_cache_limit(bytes) (a fixed limit; 0 turns caching off and frees what is
// cached; buffer_cache_auto_limit, the default, follows the workload),
// empty_buffer_cache(), buffer_cache_stats() (cached bytes, hits, misses).
#pragma once

#include <algorithm>  // std::max, std::min
#include <atomic>
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

/// Buffers smaller than this bypass the shared cache; from buffer_cache_small_bytes up, each
/// thread keeps a few of its own (detail::ThreadBufferCache). Below that, malloc's free lists.
inline constexpr std::size_t buffer_cache_min_bytes = std::size_t{64} << 10;
inline constexpr std::size_t buffer_cache_small_bytes = std::size_t{1} << 10;

/// What buffer_cache_stats() reports.
struct BufferCacheStats {
    std::size_t cached_bytes = 0;  // held by the cache now
    std::size_t limit_bytes = 0;   // the current limit (the automatic one's current value)
    std::uint64_t hits = 0;        // requests served from the cache
    std::uint64_t misses = 0;      // cacheable requests that went to operator new
    std::size_t thread_cached_bytes = 0;  // held for the calling thread (1 KiB to 64 KiB buffers)
};

namespace detail {

class BufferCache {
public:
    static constexpr std::size_t alignment = 64;
    static constexpr std::size_t granule = std::size_t{4} << 10;
    static constexpr std::size_t default_limit = std::size_t{256} << 20;  // the automatic limit's floor
    static constexpr std::size_t max_bytes = ~std::size_t{0};
    static constexpr std::size_t automatic_limit = max_bytes;  // set_limit's "follow the workload"

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
            in_use(cls);
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
        try {
            return allocate(cls);
        } catch (...) {  // not handed out after all
            std::lock_guard<std::mutex> lock(mutex_);
            live_ -= std::min(live_, cls);
            throw;
        }
    }

    /// Takes back a buffer acquire(bytes) returned.
    void release(void* p, std::size_t bytes) noexcept {
        if (bytes < buffer_cache_min_bytes) return deallocate(p);
        const std::size_t cls = size_class(bytes);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            live_ -= std::min(live_, cls);
            const std::size_t limit = limit_now();
            if (cls <= limit) {
                while (cached_ + cls > limit) evict_oldest();
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

    /// A fixed limit, or the automatic one (automatic_limit).
    void set_limit(std::size_t bytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        automatic_ = bytes == automatic_limit;
        limit_ = automatic_ ? default_limit : bytes;
        trim_to(limit_now());
    }

    void clear() {
        std::lock_guard<std::mutex> lock(mutex_);
        trim_to(0);
    }

    BufferCacheStats stats() {
        std::lock_guard<std::mutex> lock(mutex_);
        return {cached_, limit_now(), hits_, misses_};
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

#if defined(NANOTORCH_BUFFER_CACHE_ASAN)
    static void poison(void* p, std::size_t n) noexcept { ASAN_POISON_MEMORY_REGION(p, n); }
    static void unpoison(void* p, std::size_t n) noexcept { ASAN_UNPOISON_MEMORY_REGION(p, n); }
#else
    static void poison(void*, std::size_t) noexcept {}
    static void unpoison(void*, std::size_t) noexcept {}
#endif

private:
    BufferCache() = default;

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

    // The limit in force: the fixed one, or the automatic one. Caller holds mutex_.
    std::size_t limit_now() const {
        if (!automatic_) return limit_;
        return std::max(limit_, peak_live_ > max_bytes / 2 ? max_bytes : 2 * peak_live_);
    }
    // Counts a buffer of class cls handed out. Caller holds mutex_.
    void in_use(std::size_t cls) {
        live_ += cls;
        peak_live_ = std::max(peak_live_, live_);
    }

    // Frees cached buffers, largest first, until at most `bytes` are cached. Caller holds mutex_.
    void trim_to(std::size_t bytes) noexcept {
        while (cached_ > bytes) drop(std::prev(free_.end()));
    }

    std::mutex mutex_;
    std::multimap<std::size_t, Cached> free_;  // size class -> buffers of that class
    std::uint64_t released_ = 0;
    std::size_t cached_ = 0;
    std::size_t limit_ = default_limit;  // the fixed limit, or the automatic one's floor
    bool automatic_ = true;
    std::size_t live_ = 0, peak_live_ = 0;  // bytes (size classes) of cacheable buffers handed out, and their peak
    std::uint64_t hits_ = 0, misses_ = 0;
};

// Buffers from buffer_cache_small_bytes up to buffer_cache_min_bytes, kept per thread: the
// few most recently released (at most small_slots of them, small_limit bytes in all), handed
// to the next request of the same size class (rounded up to 256 bytes) on that thread. No lock:
// the batch-1 inference of a small net makes a few such buffers per node, and through malloc
// each one cost more than its node's arithmetic (freeing a 23 KB activation made glibc
// consolidate its fast bins: 3.5 % of the seed net's batch-1 run). A buffer released on
// another thread than the one that took it joins that thread's list. While the shared cache's
// limit is 0 (caching off), nothing is kept here either.
class ThreadBufferCache {
public:
    static constexpr std::size_t granule = 256;
    static constexpr int small_slots = 16;
    static constexpr std::size_t small_limit = std::size_t{256} << 10;

    static std::size_t size_class(std::size_t bytes) { return (bytes + granule - 1) / granule * granule; }
    static bool serves(std::size_t bytes) { return bytes >= buffer_cache_small_bytes && bytes < buffer_cache_min_bytes; }

    /// This thread's cache; nullptr once it is destroyed (at thread exit), after which buffers
    /// go straight to operator new and delete.
    static ThreadBufferCache* mine() {
        thread_local ThreadBufferCache cache;
        return gone() ? nullptr : &cache;
    }
    static std::atomic<bool>& enabled() {
        static std::atomic<bool> on{true};
        return on;
    }

    void* take(std::size_t cls) noexcept {
        for (int i = count_ - 1; i >= 0; --i)
            if (slot_[i].cls == cls) {
                void* p = slot_[i].p;
                for (int j = i; j + 1 < count_; ++j) slot_[j] = slot_[j + 1];
                --count_;
                bytes_ -= cls;
                BufferCache::unpoison(p, cls);
                return p;
            }
        return nullptr;
    }

    // Keeps p (a buffer of class cls), freeing the oldest kept ones to make room.
    void keep(void* p, std::size_t cls) noexcept {
        while (count_ > 0 && (count_ == small_slots || bytes_ + cls > small_limit)) {
            BufferCache::unpoison(slot_[0].p, slot_[0].cls);
            BufferCache::deallocate(slot_[0].p);
            bytes_ -= slot_[0].cls;
            for (int j = 1; j < count_; ++j) slot_[j - 1] = slot_[j];
            --count_;
        }
        BufferCache::poison(p, cls);
        slot_[count_++] = {p, cls};
        bytes_ += cls;
    }

    std::size_t bytes() const noexcept { return bytes_; }

    void clear() noexcept {
        for (int i = 0; i < count_; ++i) {
            BufferCache::unpoison(slot_[i].p, slot_[i].cls);
            BufferCache::deallocate(slot_[i].p);
        }
        count_ = 0;
        bytes_ = 0;
    }

    ~ThreadBufferCache() {
        clear();
        gone() = true;
    }

private:
    // Set by the destructor; a thread_local bool with constant initialisation outlives it.
    static bool& gone() {
        thread_local bool flag = false;
        return flag;
    }

    struct Slot {
        void* p;
        std::size_t cls;
    };
    Slot slot_[small_slots] = {};
    int count_ = 0;
    std::size_t bytes_ = 0;
};

inline void* acquire_buffer(std::size_t bytes) {
    if (ThreadBufferCache::serves(bytes)) {
        const std::size_t cls = ThreadBufferCache::size_class(bytes);
        if (ThreadBufferCache* c = ThreadBufferCache::mine())
            if (void* p = c->take(cls)) return p;
        return BufferCache::allocate(cls);
    }
    if (BufferCache::destroyed()) return BufferCache::allocate(bytes);
    return BufferCache::instance().acquire(bytes);
}
inline void release_buffer(void* p, std::size_t bytes) noexcept {
    if (ThreadBufferCache::serves(bytes)) {
        ThreadBufferCache* c = ThreadBufferCache::mine();
        if (!c) return BufferCache::deallocate(p);
        if (!ThreadBufferCache::enabled().load(std::memory_order_relaxed)) {
            c->clear();
            return BufferCache::deallocate(p);
        }
        return c->keep(p, ThreadBufferCache::size_class(bytes));
    }
    if (BufferCache::destroyed()) return BufferCache::deallocate(p);
    BufferCache::instance().release(p, bytes);
}

}  // namespace detail

/// set_buffer_cache_limit's argument for the default, automatic limit: 256 MiB, or twice the
/// most bytes of large tensor buffers in use at once so far, whichever is more.
inline constexpr std::size_t buffer_cache_auto_limit = detail::BufferCache::automatic_limit;

/// Caps the memory the tensor buffer cache may hold (bytes), replacing the automatic limit
/// (buffer_cache_auto_limit, the default, restores it). 0 turns caching off. Lowering the limit
/// frees cached buffers, largest first, until the cache fits.
inline void set_buffer_cache_limit(std::size_t bytes) {
    detail::ThreadBufferCache::enabled().store(bytes > 0, std::memory_order_relaxed);
    if (bytes == 0)
        if (detail::ThreadBufferCache* c = detail::ThreadBufferCache::mine()) c->clear();
    detail::BufferCache::instance().set_limit(bytes);
}

/// Frees every cached buffer (tensors in use are not affected): the shared cache's and the
/// calling thread's small ones (another thread's, at most 256 KiB each, stay with it); the
/// limit stays.
inline void empty_buffer_cache() {
    if (detail::ThreadBufferCache* c = detail::ThreadBufferCache::mine()) c->clear();
    detail::BufferCache::instance().clear();
}

/// The shared cache's current size, limit and hit/miss counts, and the calling thread's small
/// buffers.
inline BufferCacheStats buffer_cache_stats() {
    BufferCacheStats s = detail::BufferCache::instance().stats();
    if (const detail::ThreadBufferCache* c = detail::ThreadBufferCache::mine()) s.thread_cached_bytes = c->bytes();
    return s;
}

}  // namespace nanotorch
