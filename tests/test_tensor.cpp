// Tensor core: shapes, storage, views, factories, element access, printing, the generator.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <thread>
#include <vector>

#include <nanotorch/nanotorch.hpp>

using namespace nanotorch;

TEST_CASE("shape helpers") {
    CHECK(shape_numel({2, 3, 4}) == 24);
    CHECK(shape_numel({}) == 1);
    CHECK(shape_numel({5, 0}) == 0);
    CHECK_THROWS_AS(shape_numel({2, -1}), value_error);
    CHECK_THROWS_AS(shape_numel({1LL << 40, 1LL << 40}), value_error);  // int64 overflow
    CHECK(contiguous_strides({2, 3, 4}) == Shape{12, 4, 1});
    CHECK(shape_str({2, 3}) == "[2, 3]");
    CHECK(broadcast_shapes({3, 1}, {4}, "add") == Shape{3, 4});
    CHECK(broadcast_shapes({}, {2, 2}, "add") == Shape{2, 2});
    CHECK(wrap_dim(-1, 3, "x") == 2);
    CHECK_THROWS_AS(wrap_dim(3, 3, "x"), value_error);
    try {
        broadcast_shapes({2, 3}, {4, 3}, "add");
        FAIL("expected shape_error");
    } catch (const shape_error& e) {
        const std::string msg = e.what();  // names the op and both shapes
        CHECK(msg.find("add") != std::string::npos);
        CHECK(msg.find("[2, 3]") != std::string::npos);
        CHECK(msg.find("[4, 3]") != std::string::npos);
    }
}

TEST_CASE("factories and element access") {
    Tensor z = zeros({2, 3});
    CHECK(z.shape() == Shape{2, 3});
    CHECK(z.numel() == 6);
    CHECK(z.dim() == 2);
    CHECK(z.is_contiguous());
    for (float v : z.to_vector()) CHECK(v == 0.0f);
    for (float v : ones({4}).to_vector()) CHECK(v == 1.0f);
    for (float v : full({2, 2}, 2.5f).to_vector()) CHECK(v == 2.5f);
    CHECK(arange(5).to_vector() == std::vector<float>{0, 1, 2, 3, 4});
    CHECK(arange(1.0f, 2.0f, 0.25f).to_vector() == std::vector<float>{1.0f, 1.25f, 1.5f, 1.75f});
    CHECK(arange(3.0f, 1.0f).numel() == 0);

    Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(t.at({1, 2}) == 6.0f);
    CHECK(t.at({-1, 0}) == 4.0f);
    t.at({0, 0}) = 10.0f;
    CHECK(t.to_vector()[0] == 10.0f);
    CHECK_THROWS_AS(t.at({2, 0}), value_error);
    CHECK_THROWS_AS(t.at({0}), value_error);
    CHECK(scalar_tensor(3.5f).item() == 3.5f);
    CHECK(scalar_tensor(3.5f).dim() == 0);
    CHECK_THROWS_AS(t.item(), value_error);
    CHECK_THROWS_AS(tensor({1, 2, 3}, {2, 2}), shape_error);
    CHECK_THROWS_AS(Tensor().shape(), value_error);  // undefined tensor: a clear error, not a crash

    // Storage is 64-byte aligned (AVX-512 aligned loads need it).
    CHECK(reinterpret_cast<std::uintptr_t>(empty({17}).data_ptr()) % 64 == 0);

    float buffer[4] = {1, 2, 3, 4};
    Tensor b = from_blob(buffer, {2, 2});
    b.at({1, 1}) = 40.0f;
    CHECK(buffer[3] == 40.0f);  // no copy
}

TEST_CASE("factory arguments that used to crash or overflow are value_errors") {
    // A null buffer with elements would be dereferenced by the first at(); an empty shape is fine.
    CHECK_THROWS_AS(from_blob(nullptr, {2, 2}), value_error);
    CHECK(from_blob(nullptr, {0, 3}).numel() == 0);
    // Counts beyond int64 (or NaN) cannot be converted; they are refused before the cast.
    CHECK_THROWS_WITH_AS(arange(0.0f, 1e30f, 1e-30f), doctest::Contains("more than 2^40 elements"), value_error);
    CHECK_THROWS_AS(arange(0.0f, std::numeric_limits<float>::infinity()), value_error);
    CHECK_THROWS_WITH_AS(arange(0.0f, std::nanf("")), doctest::Contains("not a valid range"), value_error);
    CHECK_THROWS_AS(arange(0.0f, 1.0f, 0.0f), value_error);
    CHECK(arange(0.0f, -std::numeric_limits<float>::infinity()).numel() == 0);  // step points away
    CHECK_THROWS_AS(uniform({2}, 1.0f, 0.0f), value_error);
    CHECK_THROWS_AS(normal({2}, 0.0f, -1.0f), value_error);
    Generator g(0);
    CHECK_THROWS_AS(g.randint(0), value_error);
}

TEST_CASE("random factories are seeded and reproducible") {
    Generator g1(42), g2(42), g3(43);
    const auto a = randn({1000}, g1).to_vector();
    const auto b = randn({1000}, g2).to_vector();
    const auto c = randn({1000}, g3).to_vector();
    CHECK(a == b);
    CHECK(a != c);
    // Moments of 1000 standard normals: mean within 5 sd (5/sqrt(1000) = 0.16), variance within 0.3.
    double m = 0, v = 0;
    for (float x : a) m += x;
    m /= 1000;
    for (float x : a) v += (x - m) * (x - m);
    v /= 999;
    CHECK(std::fabs(m) < 0.16);
    CHECK(std::fabs(v - 1.0) < 0.3);
    Generator g(7);
    for (float x : uniform({1000}, -2.0f, 3.0f, g).to_vector()) {
        CHECK(x >= -2.0f);
        CHECK(x < 3.0f);
    }
    // split() gives a stream distinct from the parent's continuation, deterministically.
    Generator p1(5), p2(5);
    Generator s1 = p1.split(), s2 = p2.split();
    CHECK(s1.next_u64() == s2.next_u64());
    CHECK(p1.next_u64() != s1.next_u64());
    // manual_seed resets the calling thread's default generator.
    manual_seed(1);
    const auto d1 = rand({5}).to_vector();
    manual_seed(1);
    CHECK(rand({5}).to_vector() == d1);
    CHECK(Generator(3).randint(10) < 10);
}

TEST_CASE("views share storage and do not copy") {
    Tensor t = arange(12).reshape({3, 4});
    Tensor v = t.view({4, 3});
    CHECK(v.storage() == t.storage());
    v.at({0, 1}) = 100.0f;
    CHECK(t.at({0, 1}) == 100.0f);

    Tensor tr = t.transpose(0, 1);
    CHECK(tr.shape() == Shape{4, 3});
    CHECK_FALSE(tr.is_contiguous());
    CHECK(tr.storage() == t.storage());
    CHECK(tr.at({2, 1}) == t.at({1, 2}));
    CHECK_THROWS_AS(tr.view({12}), shape_error);  // view needs a compatible layout
    Tensor flat = tr.reshape({12});                // reshape copies instead
    CHECK(flat.to_vector()[1] == t.at({1, 0}));
    Tensor c = tr.contiguous();
    CHECK(c.is_contiguous());
    CHECK(c.to_vector() == tr.to_vector());

    Tensor n = t.narrow(1, 1, 2);
    CHECK(n.shape() == Shape{3, 2});
    CHECK(n.storage() == t.storage());
    CHECK(n.to_vector() == std::vector<float>{100, 2, 5, 6, 9, 10});
    Tensor s = t.select(0, 2);
    CHECK(s.shape() == Shape{4});
    CHECK(s.to_vector() == std::vector<float>{8, 9, 10, 11});
    CHECK(slice(t, 1, -2, 100).to_vector() == std::vector<float>{2, 3, 6, 7, 10, 11});
    CHECK_THROWS_AS(t.narrow(1, 3, 2), value_error);

    Tensor p = arange(24).reshape({2, 3, 4}).permute({2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.at({3, 1, 2}) == 23.0f);  // element [1][2][3] of the original
    CHECK_THROWS_AS(arange(6).reshape({2, 3}).permute({0, 0}), value_error);
    CHECK(t.flatten().shape() == Shape{12});
    CHECK(arange(24).reshape({2, 3, 4}).flatten(1).shape() == Shape{2, 12});
    CHECK(arange(6).reshape({-1, 2}).shape() == Shape{3, 2});
    CHECK_THROWS_AS(arange(6).reshape({4, -1}), shape_error);
    CHECK_THROWS_AS(arange(6).reshape({-1, -1}), shape_error);
    // A requested shape whose product overflows int64 is a shape_error, not signed overflow.
    CHECK_THROWS_WITH_AS(arange(6).view({1LL << 40, 1LL << 40, -1}), doctest::Contains("view: shape"), shape_error);
    CHECK_THROWS_AS(arange(6).reshape({1LL << 62, 4}), shape_error);

    Tensor cat0 = cat({ones({1, 2}), zeros({2, 2})}, 0);
    CHECK(cat0.to_vector() == std::vector<float>{1, 1, 0, 0, 0, 0});
    Tensor cat1 = cat({ones({2, 1}), zeros({2, 2})}, 1);
    CHECK(cat1.to_vector() == std::vector<float>{1, 0, 0, 1, 0, 0});
    CHECK_THROWS_AS(cat({ones({2, 1}), zeros({3, 2})}, 1), shape_error);
}

TEST_CASE("reshape of a strided tensor is a view when the layout allows one") {
    // A channel slice of an HWC image (the canvas model's alpha channel): one run of stride 4,
    // which [1, 1, H, W] can view without a copy.
    Tensor img = arange(5 * 6 * 4).reshape({5, 6, 4});
    Tensor alpha = img.narrow(2, 3, 1);
    Tensor v = alpha.reshape({1, 1, 5, 6});
    CHECK(v.storage() == img.storage());
    CHECK(v.strides()[2] == 24);
    CHECK(v.strides()[3] == 4);
    CHECK_FALSE(v.is_contiguous());
    CHECK(v.to_vector() == alpha.contiguous().to_vector());
    v.at({0, 0, 2, 1}) = -1.0f;  // writes show through, as with any view
    CHECK(img.at({2, 1, 3}) == -1.0f);

    // Splitting and merging inside runs, and size-1 dims anywhere, keep it a view.
    Tensor t = arange(24).reshape({2, 3, 4}).transpose(1, 2);  // [2, 4, 3], strides [12, 1, 4]
    Tensor split = t.reshape({2, 2, 2, 1, 3});
    CHECK(split.storage() == t.storage());
    CHECK(split.to_vector() == t.contiguous().to_vector());
    Tensor merged = t.narrow(0, 1, 1).reshape({4, 3});  // the size-1 dim drops out
    CHECK(merged.storage() == t.storage());
    CHECK(merged.to_vector() == t.narrow(0, 1, 1).contiguous().to_vector());

    // Merging across runs needs a copy: a new contiguous tensor with the same values.
    Tensor flat = t.reshape({2, 12});
    CHECK(flat.storage() != t.storage());
    CHECK(flat.is_contiguous());
    CHECK(flat.to_vector() == t.contiguous().to_vector());
    CHECK(t.reshape({24}).to_vector() == t.contiguous().to_vector());
    // No elements: always the copy path (nothing to alias).
    CHECK(zeros({0, 3}).transpose(0, 1).reshape({0}).numel() == 0);
}

TEST_CASE("copy_strided_to: every stride and multi-run layout gives row-major order") {
    // gather_run has constant-stride loops for strides 2..4 and a general one; all must agree
    // with element-by-element at() reads (a pure copy, so equality is exact).
    Tensor base = arange(7 * 5 * 6).reshape({7, 5, 6});
    for (std::int64_t step = 1; step <= 6; ++step) {
        const std::int64_t n = (6 + step - 1) / step;
        Tensor s = ops::detail::restride(base, {7, 5, n}, {30, 6, step}, 0);
        std::vector<float> want;
        for (std::int64_t a = 0; a < 7; ++a)
            for (std::int64_t b = 0; b < 5; ++b)
                for (std::int64_t c = 0; c < n; ++c) want.push_back(s.at({a, b, c}));
        CHECK(s.to_vector() == want);
        std::vector<float> visited;
        s.for_each_element([&](float& x) { visited.push_back(x); });
        CHECK(visited == want);
    }
    Tensor p = base.permute({2, 0, 1});  // innermost run of stride 6, several outer dims
    std::vector<float> want;
    for (std::int64_t a = 0; a < 6; ++a)
        for (std::int64_t b = 0; b < 7; ++b)
            for (std::int64_t c = 0; c < 5; ++c) want.push_back(p.at({a, b, c}));
    CHECK(p.to_vector() == want);
    CHECK(base.narrow(1, 2, 1).narrow(2, 4, 1).to_vector() == std::vector<float>{16, 46, 76, 106, 136, 166, 196});
}

TEST_CASE("clone and detach") {
    Tensor a = ones({2});
    Tensor c = a.clone();
    c.at({0}) = 5.0f;
    CHECK(a.at({0}) == 1.0f);
    Tensor d = a.detach();
    d.at({0}) = 7.0f;
    CHECK(a.at({0}) == 7.0f);  // detach shares data
    a.requires_grad_();
    CHECK_FALSE(a.detach().requires_grad());
}

TEST_CASE("in-place helpers refuse tensors that take part in recording") {
    Tensor w = ones({3});
    w.fill_(2.0f);
    CHECK(w.to_vector() == std::vector<float>{2, 2, 2});
    w.requires_grad_();
    CHECK_THROWS_AS(w.fill_(1.0f), autograd_error);
    {
        NoGradGuard ng;
        w.copy_(tensor({1, 2, 3}));
    }
    CHECK(w.to_vector() == std::vector<float>{1, 2, 3});
    NoGradGuard ng;
    CHECK_THROWS_AS(w.copy_(ones({2})), shape_error);
    Tensor strided = arange(6).reshape({2, 3}).transpose(0, 1);  // in-place through a view
    strided.zero_();
    for (float v : strided.to_vector()) CHECK(v == 0.0f);
}

TEST_CASE("printing looks like PyTorch's") {
    std::ostringstream os;
    os << tensor({1, 2, 3, 4}, {2, 2});
    CHECK(os.str() == "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]], shape=[2, 2])");
    std::ostringstream os2;
    os2 << arange(10);
    CHECK(os2.str() == "tensor([0.0000, 1.0000, 2.0000, ..., 7.0000, 8.0000, 9.0000], shape=[10])");
    std::ostringstream os3;
    Tensor g = scalar_tensor(2.0f);
    g.requires_grad_();
    os3 << g;
    CHECK(os3.str() == "tensor(2.0000, shape=[], requires_grad=true)");
    std::ostringstream os4;
    os4 << 1.5;  // the caller's stream formatting is left alone
    CHECK(os4.str() == "1.5");
}

// ---- the buffer cache (core/buffer_cache.hpp) ----

TEST_CASE("buffer cache: a freed large buffer serves the next tensor of its size class") {
    empty_buffer_cache();
    const std::int64_t n = 100000;  // 400 KB: above buffer_cache_min_bytes
    float* first = nullptr;
    {
        Tensor a = empty({n});
        first = a.data_ptr();
        for (std::int64_t i = 0; i < n; ++i) first[i] = 7.0f;  // leave it dirty
    }
    const BufferCacheStats before = buffer_cache_stats();
    CHECK(before.cached_bytes >= static_cast<std::size_t>(n) * sizeof(float));
    const Tensor b = zeros({n - 10});  // same 4 KiB size class
    CHECK(b.data_ptr() == first);
    const BufferCacheStats after = buffer_cache_stats();
    CHECK(after.hits == before.hits + 1);
    CHECK(after.cached_bytes < before.cached_bytes);
    // A recycled buffer is not cleared by the cache; zeros() clears it, as it does a fresh one.
    bool all_zero = true;
    for (std::int64_t i = 0; i < n - 10; ++i) all_zero = all_zero && b.data_ptr()[i] == 0.0f;
    CHECK(all_zero);
    CHECK(reinterpret_cast<std::uintptr_t>(b.data_ptr()) % Storage::alignment == 0);
}

TEST_CASE("buffer cache: small buffers bypass it, and the limit bounds it") {
    empty_buffer_cache();
    { const Tensor small = empty({1000}); }  // 4 KB: kept by this thread, not the shared cache
    CHECK(buffer_cache_stats().cached_bytes == 0);

    CHECK(buffer_cache_stats().limit_bytes >= (std::size_t{256} << 20));  // the automatic limit's floor
    set_buffer_cache_limit(std::size_t{1} << 20);  // 1 MiB: room for two 400 KB buffers, not three
    {
        const Tensor a = empty({100000}), b = empty({100000}), c = empty({100000});
    }
    const BufferCacheStats s = buffer_cache_stats();
    CHECK(s.cached_bytes <= s.limit_bytes);
    CHECK(s.cached_bytes == 2 * detail::BufferCache::size_class(400000));
    set_buffer_cache_limit(0);  // off: frees what it holds, keeps nothing
    CHECK(buffer_cache_stats().cached_bytes == 0);
    { const Tensor d = empty({100000}); }
    CHECK(buffer_cache_stats().cached_bytes == 0);
    set_buffer_cache_limit(buffer_cache_auto_limit);
}

TEST_CASE("buffer cache: the automatic limit grows to twice the most large buffers in use at once") {
    // Three 100 MB buffers in use at once, then returned: a fixed 256 MiB would keep two of
    // them and free the third, to be faulted in afresh next time; the automatic limit (at least
    // 600 MB after them) keeps all three. (empty() touches no page: nothing here is written.)
    set_buffer_cache_limit(buffer_cache_auto_limit);
    empty_buffer_cache();
    const std::int64_t n = 25000000;  // 100 MB of floats
    const std::size_t cls = detail::BufferCache::size_class(static_cast<std::size_t>(n) * sizeof(float));
    float* seen[3];
    {
        const Tensor a = empty({n}), b = empty({n}), c = empty({n});
        seen[0] = a.data_ptr(), seen[1] = b.data_ptr(), seen[2] = c.data_ptr();
        CHECK(buffer_cache_stats().limit_bytes >= 6 * cls);
    }
    CHECK(buffer_cache_stats().cached_bytes == 3 * cls);
    {  // and hands them out again
        const Tensor a = empty({n}), b = empty({n}), c = empty({n});
        for (const Tensor* t : {&a, &b, &c}) CHECK(std::find(seen, seen + 3, t->data_ptr()) != seen + 3);
    }
    // A fixed limit replaces it; buffer_cache_auto_limit brings it back.
    set_buffer_cache_limit(std::size_t{256} << 20);
    CHECK(buffer_cache_stats().limit_bytes == (std::size_t{256} << 20));
    CHECK(buffer_cache_stats().cached_bytes <= (std::size_t{256} << 20));
    set_buffer_cache_limit(buffer_cache_auto_limit);
    CHECK(buffer_cache_stats().limit_bytes >= 6 * cls);
    empty_buffer_cache();
}

TEST_CASE("buffer cache: each thread keeps its last few buffers of 1 to 64 KiB, bounded") {
    using detail::ThreadBufferCache;
    empty_buffer_cache();
    CHECK(buffer_cache_stats().thread_cached_bytes == 0);
    float* first = nullptr;
    {
        const Tensor a = empty({5760});  // 23 KB: a batch-1 activation (10 channels of 24x24)
        first = a.data_ptr();
    }
    CHECK(buffer_cache_stats().thread_cached_bytes == ThreadBufferCache::size_class(5760 * sizeof(float)));
    {
        const Tensor b = zeros({5750});  // the same 256-byte size class: the same buffer, cleared
        CHECK(b.data_ptr() == first);
        CHECK(buffer_cache_stats().thread_cached_bytes == 0);
        bool all_zero = true;
        for (std::int64_t i = 0; i < 5750; ++i) all_zero = all_zero && b.data_ptr()[i] == 0.0f;
        CHECK(all_zero);
        CHECK(reinterpret_cast<std::uintptr_t>(b.data_ptr()) % Storage::alignment == 0);
    }
    // Below 1 KiB malloc serves them, from 64 KiB the shared cache: neither is kept here.
    empty_buffer_cache();
    { const Tensor tiny = empty({100}), large = empty({16384}); }
    CHECK(buffer_cache_stats().thread_cached_bytes == 0);
    // Bounded: at most 16 buffers and 256 KiB, the oldest freed first.
    {
        std::vector<Tensor> many;
        for (int i = 0; i < 40; ++i) many.push_back(empty({1000 + 64 * i}));
    }
    const std::size_t kept = buffer_cache_stats().thread_cached_bytes;
    CHECK(kept > 0);
    CHECK(kept <= ThreadBufferCache::small_limit);
    {
        std::vector<Tensor> big;  // 15 KiB each: 16 of them would pass 256 KiB
        for (int i = 0; i < 20; ++i) big.push_back(empty({3840}));
    }
    CHECK(buffer_cache_stats().thread_cached_bytes <= ThreadBufferCache::small_limit);
#if !defined(NANOTORCH_NO_THREADS)  // (the WebAssembly build has no std::thread)
    // A buffer released on another thread stays with that thread, and is freed when it exits
    // (the sanitizer and valgrind runs of this suite would report a leak).
    Tensor moved = empty({2000});
    std::thread([t = std::move(moved)]() mutable { t = Tensor(); }).join();
#endif
    // Caching off (limit 0) turns the thread caches off too.
    set_buffer_cache_limit(0);
    CHECK(buffer_cache_stats().thread_cached_bytes == 0);
    { const Tensor c = empty({5760}); }
    CHECK(buffer_cache_stats().thread_cached_bytes == 0);
    set_buffer_cache_limit(buffer_cache_auto_limit);
    { const Tensor c = empty({5760}); }
    CHECK(buffer_cache_stats().thread_cached_bytes > 0);
    empty_buffer_cache();
    CHECK(buffer_cache_stats().thread_cached_bytes == 0);
}

TEST_CASE("buffer cache: a returned buffer that does not fit frees the buffers cached longest ago") {
    // A workload that changes shape (training steps, then a larger inference batch) must not be
    // left with a cache full of buffers of the old sizes and every new one faulted in afresh.
    empty_buffer_cache();
    const std::size_t small = detail::BufferCache::size_class(400000), large = detail::BufferCache::size_class(800000);
    set_buffer_cache_limit(small + large);  // two 400 KB buffers, or one of each size
    {
        const Tensor a = empty({100000}), b = empty({100000});
    }
    CHECK(buffer_cache_stats().cached_bytes == 2 * small);
    float* big = nullptr;
    {
        const Tensor c = empty({200000});  // 800 KB: freeing it evicts one 400 KB buffer
        big = c.data_ptr();
    }
    CHECK(buffer_cache_stats().cached_bytes == small + large);
    const BufferCacheStats before = buffer_cache_stats();
    const Tensor again = empty({200000});
    CHECK(again.data_ptr() == big);  // kept: the newest buffer, served to the next of its class
    CHECK(buffer_cache_stats().hits == before.hits + 1);
    {
        const Tensor huge = empty({1000000});  // larger than the whole limit: freed, evicting nothing
    }
    CHECK(buffer_cache_stats().cached_bytes == small);
    set_buffer_cache_limit(buffer_cache_auto_limit);
}

TEST_CASE("buffer cache: threads allocating and freeing at once keep their data and the accounting") {
    // ThreadSanitizer (CI's clang-tsan step) checks the locking; here each thread checks that no
    // other thread was handed its live buffer, and the cache's accounting stays within its limit.
    empty_buffer_cache();
    std::atomic<int> corrupted{0};
    const auto work = [&corrupted](int t) {
        for (int i = 0; i < 200; ++i) {
            const std::int64_t n = 20000 + 4096 * ((i * 7 + t) % 5);  // 5 size classes, all >= 80 KB
            Tensor x = empty({n});
            float* p = x.data_ptr();
            for (std::int64_t k = 0; k < n; k += 1024) p[k] = static_cast<float>(t);
            Tensor y = empty({n});  // a second live buffer of the same class
            float* q = y.data_ptr();
            for (std::int64_t k = 0; k < n; k += 1024) q[k] = static_cast<float>(-t - 1);
            for (std::int64_t k = 0; k < n; k += 1024)
                if (p[k] != static_cast<float>(t)) corrupted.fetch_add(1);
        }
    };
#if defined(NANOTORCH_NO_THREADS)  // no std::thread here (the WebAssembly build): one after another
    for (int t = 0; t < 4; ++t) work(t);
#else
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back(work, t);
    for (auto& th : threads) th.join();
#endif
    CHECK(corrupted.load() == 0);
    const BufferCacheStats s = buffer_cache_stats();
    CHECK(s.cached_bytes <= s.limit_bytes);
    CHECK(s.cached_bytes > 0);
    empty_buffer_cache();
    CHECK(buffer_cache_stats().cached_bytes == 0);
}
