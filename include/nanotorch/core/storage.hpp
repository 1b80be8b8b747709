// nanotorch/core/storage.hpp — the reference-counted float buffer behind every tensor.
//
// Owned storage is 64-byte aligned (one cache line; enough for AVX-512 aligned loads),
// zero-initialised only when asked, and recycled by size when large (core/buffer_cache.hpp).
// Borrowed storage (from_blob) wraps a caller's buffer without owning it. Several tensors
// (views) share one Storage through shared_ptr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>  // the deleter of borrowed buffers
#include <memory>

#include <nanotorch/config.hpp>
#include <nanotorch/core/buffer_cache.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch {

class Storage {
public:
    static constexpr std::size_t alignment = detail::BufferCache::alignment;  // 64: the cache allocates

    /// Allocates `n` floats; `zero` fills them with 0.
    explicit Storage(std::int64_t n, bool zero = false) : size_(n), owned_(true) {
        NANOTORCH_CHECK(n >= 0, value_error, "Storage: negative size ", n);
        NANOTORCH_CHECK(static_cast<std::uint64_t>(n) <= (std::uint64_t(1) << 40), value_error,
                        "Storage: refusing to allocate ", n, " floats (more than 2^40)");
        const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(float);
        if (n > 0) {
            data_ = static_cast<float*>(detail::acquire_buffer(bytes));  // large ones are recycled
            if (zero) std::memset(data_, 0, bytes);
        }
        deleter_ = [bytes](float* p) { detail::release_buffer(p, bytes); };
    }

    /// Wraps memory the caller owns; `deleter` (may be empty) runs when the last user lets go.
    Storage(float* data, std::int64_t n, std::function<void(float*)> deleter)
        : data_(data), size_(n), deleter_(std::move(deleter)) {}

    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    ~Storage() {
        if (data_ && deleter_) deleter_(data_);
    }

    float* data() noexcept { return data_; }
    const float* data() const noexcept { return data_; }
    std::int64_t size() const noexcept { return size_; }
    /// Whether the buffer was allocated here (false: a caller's memory, wrapped by from_blob).
    bool owns_data() const noexcept { return owned_; }

private:
    float* data_ = nullptr;
    std::int64_t size_ = 0;
    bool owned_ = false;
    std::function<void(float*)> deleter_;
};

}  // namespace nanotorch
