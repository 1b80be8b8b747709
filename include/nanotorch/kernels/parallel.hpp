// nanotorch/kernels/parallel.hpp — the only place that creates threads.
//
// parallel_for(begin, end, grain, fn) splits [begin, end) into at most num_threads() contiguous
// chunks of at least `grain` indices and calls fn(chunk_begin, chunk_end) on a small persistent
// pool. Kernels receive ranges; they never create threads or use pragmas. A range too short
// for two chunks of `grain` runs on the calling thread without touching the pool, and an idle
// worker polls for pool_spin_time (50 us) before it sleeps, so the chain of small jobs in a
// batch-1 forward does not pay a thread wake-up per kernel. Dispatch allocates nothing.
// Deliberately absent: work stealing, nested parallelism, thread affinity.
//
// Determinism: callers only give parallel_for work whose chunks write disjoint outputs and
// whose per-output arithmetic does not depend on how the range was split. Reductions across
// chunks are never done here, so results are bit-identical for every thread count.
//
// Thread count: set_num_threads(n), else the NANOTORCH_NUM_THREADS environment variable, else
// NANOTORCH_DEFAULT_NUM_THREADS (0 = std::thread::hardware_concurrency()). A parallel_for
// called from inside a worker runs serially (no nested pools). With NANOTORCH_NO_THREADS
// everything runs on the calling thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>  // getenv
#include <exception>
#include <memory>  // shared_ptr: the pool
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch {

namespace detail {

inline int threads_from_environment() {
    if (const char* env = std::getenv("NANOTORCH_NUM_THREADS")) {
        char* end = nullptr;
        const long v = std::strtol(env, &end, 10);
        if (end != env && *end == '\0' && v > 0 && v <= 1024) return static_cast<int>(v);
    }
    int n = NANOTORCH_DEFAULT_NUM_THREADS;
    if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
    return n > 0 ? n : 1;
}

inline std::atomic<int>& requested_threads() {
    static std::atomic<int> n{0};  // 0 = not decided yet
    return n;
}

inline bool& inside_parallel_region() {
    thread_local bool inside = false;
    return inside;
}

#ifndef NANOTORCH_NO_THREADS
/// How long an idle worker keeps polling for the next job before it sleeps on the condition
/// variable. Waking a sleeping thread costs 10-50 us on Linux, more than a whole small kernel
/// (a batch-1 forward is a chain of ~10 parallel_for calls a few microseconds apart), while a
/// poll that yields the core between checks costs other processes little. 50 us is far below
/// what OpenMP runtimes spin by default (libgomp: about 300k iterations).
inline constexpr std::chrono::microseconds pool_spin_time{50};

/// A fixed set of workers that run one job (a chunked range) at a time.
class ThreadPool {
public:
    /// One job: task(ctx, i) for i in [0, ntasks). A plain function pointer and context rather
    /// than std::function, so dispatching allocates nothing.
    using TaskFn = void (*)(const void* ctx, int index);

    explicit ThreadPool(int workers) {
        for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_loop(); });
    }
    ~ThreadPool() {
        {
            std::lock_guard<std::mutex> lock(m_);
            stop_ = true;
            stop_flag_.store(true);
        }
        wake_.notify_all();
        for (auto& t : threads_) t.join();
    }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int workers() const { return static_cast<int>(threads_.size()); }

    /// Runs task(ctx, i) for i in [0, ntasks) on the workers and the calling thread; rethrows the
    /// first exception a task threw. Only one run() at a time (callers hold run_mutex_).
    void run(int ntasks, TaskFn task, const void* ctx) {
        std::lock_guard<std::mutex> serial(run_mutex_);
        {
            std::unique_lock<std::mutex> lock(m_);
            // A worker that woke for the previous run after it finished may still be in drain().
            done_.wait(lock, [this] { return active_ == 0; });
            task_ = task;
            ctx_ = ctx;
            ntasks_ = ntasks;
            next_.store(0);
            pending_ = ntasks;
            error_ = nullptr;
            ++generation_;
            published_.store(generation_, std::memory_order_release);
        }
        wake_.notify_all();  // no system call when every worker is still polling
        drain();
        // The workers usually finish within microseconds: poll before sleeping on done_.
        const auto deadline = std::chrono::steady_clock::now() + pool_spin_time;
        while (unfinished_.load(std::memory_order_acquire) != 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        std::unique_lock<std::mutex> lock(m_);
        // Wait for the tasks *and* for every worker to leave drain(), so no straggler of this
        // run can pick up an index of the next one.
        done_.wait(lock, [this] { return pending_ == 0 && active_ == 0; });
        task_ = nullptr;
        ctx_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

private:
    // Called with m_ held whenever pending_ or active_ changes: the lock-free mirror run() polls.
    void update_unfinished() { unfinished_.store(pending_ + active_, std::memory_order_release); }

    void drain() {
        const bool was_inside = inside_parallel_region();
        inside_parallel_region() = true;
        for (;;) {
            const int i = next_.fetch_add(1);
            if (i >= ntasks_) break;
            try {
                task_(ctx_, i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(m_);
                if (!error_) error_ = std::current_exception();
            }
            std::lock_guard<std::mutex> lock(m_);
            --pending_;
            update_unfinished();
            if (pending_ == 0) done_.notify_all();
        }
        inside_parallel_region() = was_inside;
    }

    void worker_loop() {
        std::uint64_t seen = 0;
        for (;;) {
            // Poll first (see pool_spin_time); the decision is re-made under the lock below.
            const auto deadline = std::chrono::steady_clock::now() + pool_spin_time;
            while (published_.load(std::memory_order_acquire) == seen && !stop_flag_.load() &&
                   std::chrono::steady_clock::now() < deadline)
                std::this_thread::yield();
            {
                std::unique_lock<std::mutex> lock(m_);
                wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
                if (stop_) return;
                seen = generation_;
                ++active_;
                update_unfinished();
            }
            drain();
            std::lock_guard<std::mutex> lock(m_);
            --active_;
            update_unfinished();
            if (active_ == 0) done_.notify_all();
        }
    }

    std::vector<std::thread> threads_;
    std::mutex m_;
    std::mutex run_mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    TaskFn task_ = nullptr;
    const void* ctx_ = nullptr;
    int ntasks_ = 0;
    std::atomic<int> next_{0};
    int pending_ = 0;
    int active_ = 0;  // workers currently inside drain()
    std::exception_ptr error_;
    std::uint64_t generation_ = 0;
    bool stop_ = false;
    // Lock-free mirrors for polling; the authoritative values above are read under m_.
    std::atomic<std::uint64_t> published_{0};  // generation_
    std::atomic<int> unfinished_{0};           // pending_ + active_
    std::atomic<bool> stop_flag_{false};       // stop_
};

inline std::mutex& pool_mutex() {
    static std::mutex m;
    return m;
}

/// The pool for `threads` total threads (threads - 1 workers), rebuilt when the count changes.
inline std::shared_ptr<ThreadPool> pool_for(int threads) {
    static std::shared_ptr<ThreadPool> pool;
    std::lock_guard<std::mutex> lock(pool_mutex());
    if (!pool || pool->workers() != threads - 1) pool = std::make_shared<ThreadPool>(threads - 1);
    return pool;
}

/// One non-template entry into the pool, so that the pool's code is not inlined into every
/// parallel_for instantiation (which slowed the serial path of small kernels measurably).
inline void run_on_pool(int threads, int chunks, ThreadPool::TaskFn task, const void* ctx) {
    pool_for(threads)->run(chunks, task, ctx);
}
#endif

}  // namespace detail

/// Sets the number of threads parallel_for uses (>= 1).
inline void set_num_threads(int n) {
    NANOTORCH_CHECK(n >= 1 && n <= 1024, value_error, "set_num_threads: ", n, " is not in [1, 1024]");
    detail::requested_threads().store(n);
}

/// The number of threads parallel_for uses.
inline int get_num_threads() {
#ifdef NANOTORCH_NO_THREADS
    return 1;
#else
    int n = detail::requested_threads().load();
    if (n == 0) {
        n = detail::threads_from_environment();
        int expected = 0;
        detail::requested_threads().compare_exchange_strong(expected, n);
        n = detail::requested_threads().load();
    }
    return n;
#endif
}

/// Calls fn(b, e) over disjoint chunks covering [begin, end), each at least `grain` long
/// (except when the range itself is shorter). Chunks may run concurrently.
template <class Fn>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain, const Fn& fn) {
    if (end <= begin) return;
#ifndef NANOTORCH_NO_THREADS
    if (grain < 1) grain = 1;
    const std::int64_t n = end - begin;
    const int threads = get_num_threads();
    const std::int64_t max_chunks = std::max<std::int64_t>(1, n / grain);
    const int chunks = static_cast<int>(std::min<std::int64_t>(threads, max_chunks));
    if (chunks > 1 && !detail::inside_parallel_region()) {
        // Chunk c is [begin + n·c/chunks, begin + n·(c+1)/chunks): a pure function of the range
        // and the chunk count, and every index lands in exactly one chunk. Which chunk (and so
        // which thread) computes an index never changes what is computed for it, because callers
        // only hand over work whose per-index result does not depend on the split (see the top).
        struct Job {
            std::int64_t begin, n;
            int chunks;
            const Fn* fn;
        } job{begin, n, chunks, &fn};
        const auto task = [](const void* ctx, int c) {
            const Job& j = *static_cast<const Job*>(ctx);
            (*j.fn)(j.begin + j.n * c / j.chunks, j.begin + j.n * (c + 1) / j.chunks);
        };
        detail::run_on_pool(threads, chunks, task, &job);
        return;
    }
#else
    (void)grain;
#endif
    fn(begin, end);
}

}  // namespace nanotorch
