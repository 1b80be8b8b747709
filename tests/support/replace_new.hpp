// tests/support/replace_new.hpp — replaces the global operator new/delete with malloc/free plus
// a hook, for suites that check what the library allocates (test_alloc counts allocations per
// training step; test_state_dict records the largest request a hostile file can cause).
//
// Replacing the global allocation functions is allowed once per program, and every suite is its
// own executable, so: include this in exactly ONE translation unit of a test executable, and
// define `void nanotorch::testing::on_allocation(std::size_t bytes)` there. The hook sees every
// operator new (plain, array, aligned) before the memory is obtained; it must not allocate.
// The definitions are deliberately not inline: a replacement allocation function may not be.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace nanotorch::testing {
void on_allocation(std::size_t bytes);  // defined by the including test

namespace replace_new_detail {
inline void* plain(std::size_t n) {
    on_allocation(n);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
inline void* aligned(std::size_t n, std::align_val_t al) {
    on_allocation(n);
    const auto a = static_cast<std::size_t>(al);
    const std::size_t rounded = (std::max<std::size_t>(n, 1) + a - 1) / a * a;  // aligned_alloc wants a multiple
    if (void* p = std::aligned_alloc(a, rounded)) return p;
    throw std::bad_alloc();
}
}  // namespace replace_new_detail
}  // namespace nanotorch::testing

void* operator new(std::size_t n) { return nanotorch::testing::replace_new_detail::plain(n); }
void* operator new[](std::size_t n) { return nanotorch::testing::replace_new_detail::plain(n); }
void* operator new(std::size_t n, std::align_val_t al) { return nanotorch::testing::replace_new_detail::aligned(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) {
    return nanotorch::testing::replace_new_detail::aligned(n, al);
}
// The memory came from malloc/aligned_alloc above, so free is its matching release; GCC's
// -Wmismatched-new-delete cannot see through a replaced operator new once it inlines these.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
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
