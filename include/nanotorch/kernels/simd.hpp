// nanotorch/kernels/simd.hpp — the only file that includes xsimd (or wasm_simd128.h).
//
// Vector kernels written once against xsimd::batch<float> (the architecture is fixed at compile
// time by the compiler flags: -mavx512f gives 16 lanes, plain x86-64 gives SSE2's 4), each as a
// batch loop plus a scalar tail, with the same signatures as kernels/reference.hpp.
// With NANOTORCH_NO_SIMD, or when xsimd finds no supported architecture, every function here
// forwards to the reference, so the library builds everywhere.
// Written against Debian's xsimd 8.1.0 API (hadd, not the later reduce_add).
#pragma once

#include <algorithm>
#include <cmath>  // std::fma (fma_taps' scalar tail)
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/reference.hpp>

#if !defined(NANOTORCH_NO_SIMD) && defined(__wasm_simd128__)
// WebAssembly with -msimd128: xsimd 8.1 has no wasm architecture, so the few batch operations the
// kernels use are written here on wasm_simd128.h (see wasm_batch below).
#include <wasm_simd128.h>
#define NANOTORCH_SIMD_ENABLED 1
#define NANOTORCH_SIMD_WASM 1
#elif !defined(NANOTORCH_NO_SIMD)
#include <xsimd/xsimd.hpp>
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>  // transpose_rows_4's 4x4 shuffles (xsimd 8.1 has no transpose)
#endif
#if defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
#define NANOTORCH_SIMD_ENABLED 0
#else
#define NANOTORCH_SIMD_ENABLED 1
#endif
#else
#define NANOTORCH_SIMD_ENABLED 0
#endif

namespace nanotorch::kernels {

// Forced inlining for the unroll helpers below and for the lambdas they call: when one of
// them is left out of line, the accumulator array it touches must live in memory, and the
// kernel runs at a fraction of its speed. GCC did that to sgemm_micro_kernel's write-back once
// a second instantiation of gemm_block (kernels/implicit_gemm.hpp's packed panels) grew the
// inlining budget past its limit, and then left the micro-kernel itself out of gemm_block (14 % slower
// on a seed-net layer). Forcing unroll alone was not enough: with AVX-512's 24 accumulators
// GCC 12 still kept the write-back lambda (three beta cases, 24 stores each) out of line, so
// every k step of the micro-kernel also stored all 24 accumulators to the stack. On an Ice
// Lake core (one 64-byte store per cycle) that held a 512³ sgemm at 22 % of the FMA peak.
// Every lambda passed to detail::unroll, and every lambda a kernel calls inside its k loop
// (sgemm_small_n_kernel's step: 18 % of a seed-net training step, out of line), is therefore
// marked NANOTORCH_INLINE_LAMBDA.
// NANOTORCH_NOINLINE is the opposite, for a kernel whose registers its caller would otherwise
// have to share (simd_gemm.hpp's sgemm_micro_kernel).
#if defined(__GNUC__) || defined(__clang__)
#define NANOTORCH_ALWAYS_INLINE inline __attribute__((always_inline))
#define NANOTORCH_INLINE_LAMBDA __attribute__((always_inline))
#define NANOTORCH_NOINLINE inline __attribute__((noinline))
#elif defined(_MSC_VER)
#define NANOTORCH_ALWAYS_INLINE __forceinline
#define NANOTORCH_INLINE_LAMBDA
#define NANOTORCH_NOINLINE inline __declspec(noinline)
#else
#define NANOTORCH_ALWAYS_INLINE inline
#define NANOTORCH_INLINE_LAMBDA
#define NANOTORCH_NOINLINE inline
#endif

namespace detail {
// Calls f(std::integral_constant<std::size_t, I>{}) for I = 0 .. N-1, unrolled by construction
// (a fold expression), so the accumulator array below is indexed by constants only and lives
// in registers whatever the optimizer's unrolling heuristics decide.
template <class F, std::size_t... I>
NANOTORCH_ALWAYS_INLINE void unroll_impl(F& f, std::index_sequence<I...>) {
    (f(std::integral_constant<std::size_t, I>{}), ...);
}
template <std::size_t N, class F>
NANOTORCH_ALWAYS_INLINE void unroll(F&& f) {
    unroll_impl(f, std::make_index_sequence<N>{});
}
}  // namespace detail

#if NANOTORCH_SIMD_ENABLED
// The batch interface the kernels below are written against: fbatch (load/store aligned and
// unaligned, broadcast constructor, + - * / +=, > giving a mask) and the free functions vfma,
// vselect and vhadd. xsimd provides it on x86/ARM; wasm_batch provides it on WebAssembly.
#if defined(NANOTORCH_SIMD_WASM)
/// Four floats in one v128 register: the subset of xsimd::batch<float> the kernels use.
struct wasm_batch {
    static constexpr std::size_t size = 4;
    v128_t v;
    wasm_batch() = default;
    wasm_batch(float s) : v(wasm_f32x4_splat(s)) {}  // NOLINT: implicit, like xsimd's broadcast
    explicit wasm_batch(v128_t x) : v(x) {}
    static wasm_batch load_unaligned(const float* p) { return wasm_batch(wasm_v128_load(p)); }
    static wasm_batch load_aligned(const float* p) { return wasm_batch(wasm_v128_load(p)); }
    void store_unaligned(float* p) const { wasm_v128_store(p, v); }
    void store_aligned(float* p) const { wasm_v128_store(p, v); }
    wasm_batch& operator+=(wasm_batch o) {
        v = wasm_f32x4_add(v, o.v);
        return *this;
    }
    friend wasm_batch operator+(wasm_batch a, wasm_batch b) { return wasm_batch(wasm_f32x4_add(a.v, b.v)); }
    friend wasm_batch operator-(wasm_batch a, wasm_batch b) { return wasm_batch(wasm_f32x4_sub(a.v, b.v)); }
    friend wasm_batch operator*(wasm_batch a, wasm_batch b) { return wasm_batch(wasm_f32x4_mul(a.v, b.v)); }
    friend wasm_batch operator/(wasm_batch a, wasm_batch b) { return wasm_batch(wasm_f32x4_div(a.v, b.v)); }
    /// Lane mask (all ones where a > b), for vselect.
    friend v128_t operator>(wasm_batch a, wasm_batch b) { return wasm_f32x4_gt(a.v, b.v); }
};
using fbatch = wasm_batch;
/// a * b + c. SIMD128 has no fused multiply-add (only the relaxed-simd proposal does), so this
/// rounds twice, like the scalar reference.
inline fbatch vfma(fbatch a, fbatch b, fbatch c) { return fbatch(wasm_f32x4_add(wasm_f32x4_mul(a.v, b.v), c.v)); }
inline fbatch vselect(v128_t mask, fbatch a, fbatch b) { return fbatch(wasm_v128_bitselect(a.v, b.v, mask)); }
/// Sum of the four lanes in a fixed order: (l0 + l2) + (l1 + l3).
inline float vhadd(fbatch a) {
    const v128_t pairs = wasm_f32x4_add(a.v, wasm_i32x4_shuffle(a.v, a.v, 2, 3, 0, 1));
    return wasm_f32x4_extract_lane(pairs, 0) + wasm_f32x4_extract_lane(pairs, 1);
}
/// Name of the instruction set the kernels were compiled for.
inline const char* simd_arch_name() { return "wasm_simd128"; }
#else
using fbatch = xsimd::batch<float>;
#if defined(__AVX512F__)
// a·b + c with one rounding. xsimd 8.1 has no AVX-512 fma: its generic a * b + c is fused only
// where the compiler contracts it (g++ -O2 does; clang and g++ -O1 do not), so the same source
// gave two roundings in some builds and one in others, and a kernel that spells out
// _mm512_fmadd_ps would disagree with the rest in those builds. The scalar tails of vfma's users
// call sfma below, so they round as the vector body does.
inline fbatch vfma(const fbatch& a, const fbatch& b, const fbatch& c) { return fbatch(_mm512_fmadd_ps(a, b, c)); }
#else
inline fbatch vfma(const fbatch& a, const fbatch& b, const fbatch& c) { return xsimd::fma(a, b, c); }
#endif
template <class Mask>
inline fbatch vselect(const Mask& mask, const fbatch& a, const fbatch& b) { return xsimd::select(mask, a, b); }
inline float vhadd(const fbatch& a) { return xsimd::hadd(a); }
/// Name of the instruction set the kernels were compiled for.
inline const char* simd_arch_name() { return xsimd::default_arch::name(); }
#endif
/// vfma's result on one float, for the scalar tails of kernels whose vector body uses vfma: one
/// rounding where vfma fuses (FMA3, AVX-512), else a·b + c as the vector form computes it.
inline float sfma(float a, float b, float c) {
#if defined(__FMA__) || defined(__AVX512F__)
    return std::fma(a, b, c);
#else
    return a * b + c;
#endif
}
/// Floats per SIMD register in this build (1 for the scalar build).
inline constexpr std::int64_t simd_width = static_cast<std::int64_t>(fbatch::size);

#if !defined(NANOTORCH_SIMD_WASM) && defined(__AVX512F__)
/// Whether load_partial / store_partial below move the last n < simd_width floats of a row under
/// a lane mask. AVX-512 only: its masked moves cost what a full move costs (and a masked-off lane
/// never faults), while a 16-float vector leaves rows of 14 or 7 floats (ResNet-style 14x14 and
/// 7x7 planes) entirely to single-float moves. AVX2's vmaskmovps store is microcoded on AMD cores.
inline constexpr bool has_partial_vectors = true;
inline __mmask16 partial_mask(std::int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
/// Lanes [0, n) from p, zero above; reads nothing past p + n. 0 < n < simd_width.
inline fbatch load_partial(const float* p, std::int64_t n) { return fbatch(_mm512_maskz_loadu_ps(partial_mask(n), p)); }
/// Stores lanes [0, n) of v to p; writes nothing past p + n. 0 < n < simd_width.
inline void store_partial(float* p, const fbatch& v, std::int64_t n) { _mm512_mask_storeu_ps(p, partial_mask(n), v); }
/// out[j] = y[j] where max pooling takes y over x (kernels/pool.hpp's max_takes: !(y <= x || x
/// is NaN)), else x[j], for j < n; the tail is one masked vector. pool.hpp's 2x2 forward picks
/// between the two rows of each window with it: its rows of 12 or 4 outputs (24x24 and 8x8
/// planes) left GCC's vectorised loop to its scalar epilogue.
inline void max_pick_rows(float* out, const float* x, const float* y, std::int64_t n) {
    const auto pick = [](__m512 a, __m512 b) {
        const __mmask16 takes = _mm512_cmp_ps_mask(b, a, _CMP_NLE_UQ) & ~_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
        return _mm512_mask_blend_ps(takes, a, b);
    };
    std::int64_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(out + j, pick(_mm512_loadu_ps(x + j), _mm512_loadu_ps(y + j)));
    if (j < n) {
        const __mmask16 m = partial_mask(n - j);
        _mm512_mask_storeu_ps(out + j, m, pick(_mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, y + j)));
    }
}

/// Input rows up to this wide, and kernels up to this many taps wide, take col2im_dense.
inline constexpr std::int64_t col2im_dense_max_width = 48;
inline constexpr std::int64_t col2im_dense_max_kernel = 16;

namespace detail {
// col2im_dense for CB channels at once (their sums are independent chains the core overlaps;
// one channel's row alone waits on each add) and rows of V vectors. masks[kj·V + v]: the lanes
// of vector v (input columns 16v + lane) that tap column kj reaches (input column − kj is an
// output column); a load from the tap's row at 16v − kj reads only inside the row.
template <int V, int CB>
inline void col2im_dense_channels(float* im, const float* col, std::int64_t ld, std::int64_t kh, std::int64_t kw,
                                  std::int64_t in_h, std::int64_t in_w, std::int64_t out_h, std::int64_t out_w,
                                  const __mmask16* masks) {
    const std::int64_t plane = in_h * in_w, crows = kh * kw * ld;  // one channel's stride in im and col
    for (std::int64_t ih = 0; ih < in_h; ++ih) {
        __m512 acc[CB * V];  // (unrolled loops keep it in registers)
        unroll<static_cast<std::size_t>(CB * V)>([&](auto i) NANOTORCH_INLINE_LAMBDA { acc[i] = _mm512_setzero_ps(); });
        const std::int64_t ki_lo = std::max<std::int64_t>(0, ih - out_h + 1), ki_hi = std::min(kh - 1, ih);
        for (std::int64_t ki = ki_lo; ki <= ki_hi; ++ki) {
            const float* row = col + ki * kw * ld + (ih - ki) * out_w;  // tap (ki, 0), output row ih - ki
            for (std::int64_t kj = 0; kj < kw; ++kj, row += ld)
                unroll<static_cast<std::size_t>(V)>([&](auto v) NANOTORCH_INLINE_LAMBDA {
                    const __mmask16 m = masks[kj * V + static_cast<std::int64_t>(v)];
                    if (V > 1 && !m) return;
                    const float* p = row + 16 * static_cast<std::int64_t>(v) - kj;
                    unroll<static_cast<std::size_t>(CB)>([&](auto c) NANOTORCH_INLINE_LAMBDA {
                        constexpr std::size_t i = c * static_cast<std::size_t>(V) + v;
                        acc[i] = _mm512_mask_add_ps(acc[i], m, acc[i],
                                                    _mm512_maskz_loadu_ps(m, p + static_cast<std::int64_t>(c) * crows));
                    });
                });
        }
        unroll<static_cast<std::size_t>(CB * V)>([&](auto i) NANOTORCH_INLINE_LAMBDA {
            constexpr std::int64_t c = static_cast<std::int64_t>(i) / V, v = static_cast<std::int64_t>(i) % V;
            const std::int64_t n = std::min<std::int64_t>(16, in_w - 16 * v);
            _mm512_mask_storeu_ps(im + c * plane + ih * in_w + 16 * v, partial_mask(n), acc[i]);  // (n = 16: all lanes)
        });
    }
}
template <int V>
inline void col2im_dense_width(float* im, const float* col, std::int64_t ld, std::int64_t channels, std::int64_t kh,
                               std::int64_t kw, std::int64_t in_h, std::int64_t in_w, std::int64_t out_h,
                               std::int64_t out_w) {
    __mmask16 masks[col2im_dense_max_kernel * V];
    for (std::int64_t kj = 0; kj < kw; ++kj)
        for (std::int64_t v = 0; v < V; ++v) {
            const std::int64_t lo = std::max<std::int64_t>(16 * v, kj) - 16 * v;
            const std::int64_t hi = std::min<std::int64_t>(16 * v + 16, kj + out_w) - 16 * v;
            masks[kj * V + v] = lo < hi ? static_cast<__mmask16>(((1u << hi) - 1u) ^ ((1u << lo) - 1u)) : 0;
        }
    const std::int64_t plane = in_h * in_w, crows = kh * kw * ld;
    std::int64_t c = 0;
    for (; c + 4 <= channels; c += 4)
        col2im_dense_channels<V, 4>(im + c * plane, col + c * crows, ld, kh, kw, in_h, in_w, out_h, out_w, masks);
    for (; c + 2 <= channels; c += 2)
        col2im_dense_channels<V, 2>(im + c * plane, col + c * crows, ld, kh, kw, in_h, in_w, out_h, out_w, masks);
    for (; c < channels; ++c)
        col2im_dense_channels<V, 1>(im + c * plane, col + c * crows, ld, kh, kw, in_h, in_w, out_h, out_w, masks);
}
}  // namespace detail

/// im[C, H, W] = col2im of a dense window (stride 1, dilation 1, no padding; kernels/im2col.hpp)
/// for W <= col2im_dense_max_width and kW <= col2im_dense_max_kernel: row r of col at col + r·ld,
/// rows ordered (c, ki, kj). Each input row is summed in registers, its taps (ki, kj) in
/// ascending order into +0, with masked adds, so every element gets the additions of
/// im2col.hpp's loop in its order: the same bits. That loop adds each tap's output row into the
/// image in turn, and consecutive taps (kj, kj + 1) read-modify-write vectors that overlap by all
/// but one float, so every load waited for a store it could not be forwarded from: col2im was
/// 56 % of the seed net's 10 -> 20 channel input gradient on Zen 5. Writes every element of im.
inline void col2im_dense(float* im, const float* col, std::int64_t ld, std::int64_t channels, std::int64_t kh,
                         std::int64_t kw, std::int64_t in_h, std::int64_t in_w, std::int64_t out_h, std::int64_t out_w) {
    if (in_w <= 16) detail::col2im_dense_width<1>(im, col, ld, channels, kh, kw, in_h, in_w, out_h, out_w);
    else if (in_w <= 32) detail::col2im_dense_width<2>(im, col, ld, channels, kh, kw, in_h, in_w, out_h, out_w);
    else detail::col2im_dense_width<3>(im, col, ld, channels, kh, kw, in_h, in_w, out_h, out_w);
}
#else
inline constexpr bool has_partial_vectors = false;
// Never called where has_partial_vectors is false; declared so the callers compile.
inline fbatch load_partial(const float*, std::int64_t) { return fbatch(0.0f); }
inline void store_partial(float*, const fbatch&, std::int64_t) {}
#endif

namespace detail {
// Applies a lane-wise binary op: batch loop then scalar tail (same op on scalars).
template <class VecOp, class ScalarOp>
inline void binary_map(float* out, const float* a, const float* b, std::int64_t n, VecOp vop, ScalarOp sop) {
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width)
        vop(fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i)).store_unaligned(out + i);
    for (; i < n; ++i) out[i] = sop(a[i], b[i]);
}
template <class VecOp, class ScalarOp>
inline void unary_map(float* out, const float* a, std::int64_t n, VecOp vop, ScalarOp sop) {
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width) vop(fbatch::load_unaligned(a + i)).store_unaligned(out + i);
    for (; i < n; ++i) out[i] = sop(a[i]);
}
// unary_map for ops whose vector form gives each lane exactly the scalar op's result (one IEEE
// operation per lane): where has_partial_vectors, the tail is one masked vector instead of single
// floats, with the same values.
template <class VecOp, class ScalarOp>
inline void unary_map_exact(float* out, const float* a, std::int64_t n, VecOp vop, ScalarOp sop) {
    if constexpr (has_partial_vectors) {
        std::int64_t i = 0;
        for (; i + simd_width <= n; i += simd_width) vop(fbatch::load_unaligned(a + i)).store_unaligned(out + i);
        if (i < n) store_partial(out + i, vop(load_partial(a + i, n - i)), n - i);
    } else {
        unary_map(out, a, n, vop, sop);
    }
}
}  // namespace detail

// dst[0, n) = src[0, n) (no overlap), one vector at a time, then at most simd_width − 1 single
// floats, unrolled. Kernels copy short rows millions of times per training step (im2col's rows of
// 24 or 8 floats, the GEMM's 8-float panel rows); written as a plain loop, clang turns such a
// copy into a call to memcpy, which in WebAssembly is an out-of-line function per row and cost a
// sixth of a training step there. With vector moves and no loop in the tail nothing can be
// recognised as a memcpy; natively it compiles to the same moves GCC's vectoriser emits.
inline void copy_floats(float* dst, const float* src, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width) fbatch::load_unaligned(src + i).store_unaligned(dst + i);
    if constexpr (has_partial_vectors) {
        if (i < n) store_partial(dst + i, load_partial(src + i, n - i), n - i);
    } else {
        detail::unroll<static_cast<std::size_t>(simd_width) - 1>([&](auto k) NANOTORCH_INLINE_LAMBDA {
            if (i + static_cast<std::int64_t>(k) < n) dst[i + k] = src[i + k];
        });
    }
}
// dst[0, n) = 0, written as copy_floats writes: vectors, then a masked vector or single floats.
// The zero borders of padded planes are runs of a few dozen floats, and std::fill made each one
// a call to memset through the PLT (2 % of a batch-1000 ResNet8 inference). GCC still turned
// the loop of vector stores into that call, so runs of up to four vectors are stored with no
// loop (the memset calls were 4 % of a batch-1 ResNet8 inference).
inline void zero_floats(float* dst, std::int64_t n) {
    const fbatch zero(0.0f);
    std::int64_t i = 0;
    if (n < 4) {  // a padded row's border: single stores (a masked vector store is slower on Zen 5)
        detail::unroll<3>([&](auto k) NANOTORCH_INLINE_LAMBDA {
            if (static_cast<std::int64_t>(k) < n) dst[k] = 0.0f;
        });
        return;
    }
    if (n <= 4 * simd_width) {
        detail::unroll<4>([&](auto) NANOTORCH_INLINE_LAMBDA {
            if (i + simd_width <= n) {
                zero.store_unaligned(dst + i);
                i += simd_width;
            }
        });
    }
    for (; i + simd_width <= n; i += simd_width) zero.store_unaligned(dst + i);
    if constexpr (has_partial_vectors) {
        if (i < n) store_partial(dst + i, zero, n - i);
    } else {
        detail::unroll<static_cast<std::size_t>(simd_width) - 1>([&](auto k) NANOTORCH_INLINE_LAMBDA {
            if (i + static_cast<std::int64_t>(k) < n) dst[i + k] = 0.0f;
        });
    }
}
// One whole vector from src to dst, and a vector of zeros: rows shorter than a vector, copied
// one after another into a buffer, each store spilling into the next row, which is written after
// it. The caller makes sure both the read and the spilled write stay in bounds. The masked store
// copy_floats ends a short row with was most of the time of copying 8-float rows on Zen 5.
inline void copy_vector_spill(float* dst, const float* src) { fbatch::load_unaligned(src).store_unaligned(dst); }
inline void zero_vector_spill(float* dst) { fbatch(0.0f).store_unaligned(dst); }
// copy_floats with the last partial vector copied whole: up to simd_width − 1 floats past
// dst + n get those past src + n. For rows copied one after another, where what follows each
// row is written after it; the caller makes sure the read and the write stay in bounds.
inline void copy_floats_spill(float* dst, const float* src, std::int64_t n) {
    for (std::int64_t i = 0; i < n; i += simd_width) copy_vector_spill(dst + i, src + i);
}
inline void add(float* out, const float* a, const float* b, std::int64_t n) {
    detail::binary_map(out, a, b, n, [](fbatch x, fbatch y) { return x + y; }, [](float x, float y) { return x + y; });
}
inline void sub(float* out, const float* a, const float* b, std::int64_t n) {
    detail::binary_map(out, a, b, n, [](fbatch x, fbatch y) { return x - y; }, [](float x, float y) { return x - y; });
}
inline void mul(float* out, const float* a, const float* b, std::int64_t n) {
    detail::binary_map(out, a, b, n, [](fbatch x, fbatch y) { return x * y; }, [](float x, float y) { return x * y; });
}
inline void div(float* out, const float* a, const float* b, std::int64_t n) {
    detail::binary_map(out, a, b, n, [](fbatch x, fbatch y) { return x / y; }, [](float x, float y) { return x / y; });
}
inline void add_scalar(float* out, const float* a, float s, std::int64_t n) {
    const fbatch vs(s);
    detail::unary_map_exact(out, a, n, [vs](fbatch x) { return x + vs; }, [s](float x) { return x + s; });
}
// ref::finish_rows: conv2d's copy of its product's rows to the output planes with the bias and
// the epilogue, in one pass. Each value gets add_scalar's, scale_shift's (vfma), add's and
// relu_forward's operations in that order, so the same bits as those passes one after another
// (a copy with the bias, then a pass of the epilogue over the plane: at batch 64 the second pass
// over a ResNet8 block's output went to L2 and back).
template <bool Bias, bool Affine, bool Residual, bool Relu>
inline void finish_rows_as(float* dst, const float* src, std::int64_t src_stride, std::int64_t rows,
                           std::int64_t cols, const ref::ConvFinish& f) {
    const float b = Bias ? *f.bias : 0.0f, s = Affine ? *f.scale : 1.0f, t = Affine ? *f.shift : 0.0f;
    const fbatch vb(b), vs(s), vt(t), zero(0.0f);
    const bool first = f.residual_first;
    const auto vop = [&](fbatch v, const fbatch& r) NANOTORCH_INLINE_LAMBDA {
        if constexpr (Bias) v = v + vb;
        if constexpr (Affine) v = vfma(v, vs, vt);
        if constexpr (Residual) v = first ? r + v : v + r;
        if constexpr (Relu) v = vselect(v > zero, v, zero);
        return v;
    };
    const std::int64_t full = cols / simd_width * simd_width;
    for (std::int64_t r = 0; r < rows; ++r, dst += cols, src += src_stride) {
        const float* q = Residual ? f.residual + r * cols : nullptr;
        for (std::int64_t j = 0; j < full; j += simd_width)
            vop(fbatch::load_unaligned(src + j), Residual ? fbatch::load_unaligned(q + j) : zero)
                .store_unaligned(dst + j);
        // The tail as one masked vector where there are masked moves: a 28-float row's 12 single
        // floats were half the time of a 1 -> 16 3x3 layer on 28x28 built with -O2 (a seventh at -O3).
        if constexpr (has_partial_vectors) {
            if (full < cols) {
                const std::int64_t n = cols - full;
                const fbatch r = Residual ? load_partial(q + full, n) : zero;
                store_partial(dst + full, vop(load_partial(src + full, n), r), n);
            }
            continue;
        }
        for (std::int64_t j = full; j < cols; ++j) {
            float v = src[j];
            if constexpr (Bias) v = v + b;
            if constexpr (Affine) v = sfma(v, s, t);
            if constexpr (Residual) v = first ? q[j] + v : v + q[j];
            if constexpr (Relu) v = v > 0.0f ? v : 0.0f;
            dst[j] = v;
        }
    }
}
inline void finish_rows(float* dst, const float* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols,
                        const ref::ConvFinish& f) {
    const int variant = (f.bias ? 8 : 0) + (f.scale ? 4 : 0) + (f.residual ? 2 : 0) + (f.relu ? 1 : 0);
    switch (variant) {
        case 0: return finish_rows_as<false, false, false, false>(dst, src, src_stride, rows, cols, f);
        case 1: return finish_rows_as<false, false, false, true>(dst, src, src_stride, rows, cols, f);
        case 2: return finish_rows_as<false, false, true, false>(dst, src, src_stride, rows, cols, f);
        case 3: return finish_rows_as<false, false, true, true>(dst, src, src_stride, rows, cols, f);
        case 4: return finish_rows_as<false, true, false, false>(dst, src, src_stride, rows, cols, f);
        case 5: return finish_rows_as<false, true, false, true>(dst, src, src_stride, rows, cols, f);
        case 6: return finish_rows_as<false, true, true, false>(dst, src, src_stride, rows, cols, f);
        case 7: return finish_rows_as<false, true, true, true>(dst, src, src_stride, rows, cols, f);
        case 8: return finish_rows_as<true, false, false, false>(dst, src, src_stride, rows, cols, f);
        case 9: return finish_rows_as<true, false, false, true>(dst, src, src_stride, rows, cols, f);
        case 10: return finish_rows_as<true, false, true, false>(dst, src, src_stride, rows, cols, f);
        case 11: return finish_rows_as<true, false, true, true>(dst, src, src_stride, rows, cols, f);
        case 12: return finish_rows_as<true, true, false, false>(dst, src, src_stride, rows, cols, f);
        case 13: return finish_rows_as<true, true, false, true>(dst, src, src_stride, rows, cols, f);
        case 14: return finish_rows_as<true, true, true, false>(dst, src, src_stride, rows, cols, f);
        default: return finish_rows_as<true, true, true, true>(dst, src, src_stride, rows, cols, f);
    }
}
inline void mul_scalar(float* out, const float* a, float s, std::int64_t n) {
    const fbatch vs(s);
    detail::unary_map(out, a, n, [vs](fbatch x) { return x * vs; }, [s](float x) { return x * s; });
}
// y += alpha * x. The vector body uses a fused multiply-add where the ISA has one, so it may
// differ from the reference in the last bit; tests compare with a tolerance.
inline void axpy(float* y, float alpha, const float* x, std::int64_t n) {
    const fbatch va(alpha);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width)
        vfma(va, fbatch::load_unaligned(x + i), fbatch::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] += alpha * x[i];
}
inline void axpby(float* y, float alpha, const float* x, float beta, std::int64_t n) {
    const fbatch va(alpha), vb(beta);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width)
        (va * fbatch::load_unaligned(x + i) + vb * fbatch::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
}
inline void relu_forward(float* out, const float* x, std::int64_t n) {
    const fbatch zero(0.0f);
    // select rather than xsimd::max: GCC 12 flags _mm512_max_ps's internal undefined operand
    // with a false -Wmaybe-uninitialized at -O2 -mavx512f.
    detail::unary_map(out, x, n, [zero](fbatch v) { return vselect(v > zero, v, zero); },
                      [](float v) { return v > 0.0f ? v : 0.0f; });
}
// The small-plane pooling windows (definitions: reference.hpp); lanes must be a multiple of
// simd_width. Each lane's taps are folded in the ref's order with the ref's operation, so the
// results are the ref's bit for bit.
namespace detail {
// One tap of a small-plane max window, lane by lane, with the ref's rule: `best` stays where
// v <= best or best is NaN, else v (tap e) takes its place; `at`, when given, follows it with
// the kept tap's offset as a float.
inline void max_tap(fbatch& best, fbatch* at, const fbatch& v, std::int64_t e) {
#if defined(NANOTORCH_SIMD_WASM)
    const v128_t keep = wasm_v128_or(wasm_f32x4_le(v.v, best.v), wasm_f32x4_ne(best.v, best.v));
    best = vselect(keep, best, v);
    if (at) *at = vselect(keep, *at, fbatch(static_cast<float>(e)));
#else  // xsimd::isnan, not best != best: xsimd 8.1's != is an ordered compare on AVX/AVX-512 (false for NaN)
    const auto keep = (v <= best) | xsimd::isnan(best);
    best = xsimd::select(keep, best, v);
    if (at) *at = xsimd::select(keep, *at, fbatch(static_cast<float>(e)));
#endif
}
}  // namespace detail
inline void max_pick_window(float* o, const float* t, std::int64_t lanes, std::int64_t rows, std::int64_t cols,
                            std::int64_t row_stride) {
    for (std::int64_t j = 0; j < lanes; j += simd_width) {
        fbatch best = fbatch::load_unaligned(t + j);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = r == 0 ? 1 : 0; c < cols; ++c) {
                const std::int64_t e = r * row_stride + c;
                detail::max_tap(best, nullptr, fbatch::load_unaligned(t + e * lanes + j), e);
            }
        best.store_unaligned(o + j);
    }
}
inline void max_pick_window_backward(float* gi, const float* t, const float* g, std::int64_t lanes, std::int64_t rows,
                                     std::int64_t cols, std::int64_t row_stride) {
    const fbatch zero(0.0f);
    for (std::int64_t j = 0; j < lanes; j += simd_width) {
        fbatch best = fbatch::load_unaligned(t + j), at(0.0f);  // at: the kept tap's offset, as a float
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = r == 0 ? 1 : 0; c < cols; ++c) {
                const std::int64_t e = r * row_stride + c;
                detail::max_tap(best, &at, fbatch::load_unaligned(t + e * lanes + j), e);
            }
        const fbatch gv = fbatch::load_unaligned(g + j);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) {
                const std::int64_t e = r * row_stride + c;
                float* p = gi + e * lanes + j;
#if defined(NANOTORCH_SIMD_WASM)
                const fbatch add = vselect(wasm_f32x4_eq(at.v, fbatch(static_cast<float>(e)).v), gv, zero);
#else
                const fbatch add = xsimd::select(at == fbatch(static_cast<float>(e)), gv, zero);
#endif
                (fbatch::load_unaligned(p) + add).store_unaligned(p);
            }
    }
}
inline void sum_window(float* o, const float* t, std::int64_t lanes, std::int64_t rows, std::int64_t cols,
                       std::int64_t row_stride, float div) {
    const fbatch d(div);
    for (std::int64_t j = 0; j < lanes; j += simd_width) {
        fbatch sum(0.0f);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) sum += fbatch::load_unaligned(t + (r * row_stride + c) * lanes + j);
        (sum / d).store_unaligned(o + j);
    }
}
inline void relu_backward(float* dx, const float* dy, const float* y, std::int64_t n) {
    const fbatch zero(0.0f);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width) {
        const fbatch vy = fbatch::load_unaligned(y + i);
        vselect(vy > zero, fbatch::load_unaligned(dy + i), zero).store_unaligned(dx + i);
    }
    for (; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
// Lane-wise partial sums, then one horizontal add, then the tail: a fixed order per build.
inline float sum(const float* x, std::int64_t n) {
    fbatch acc(0.0f);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width) acc += fbatch::load_unaligned(x + i);
    float s = vhadd(acc);
    for (; i < n; ++i) s += x[i];
    return s;
}
inline float dot(const float* a, const float* b, std::int64_t n) {
    fbatch acc(0.0f);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width)
        acc = vfma(fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i), acc);
    float s = vhadd(acc);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}
// out[i] = init + Σ_{t < taps} w[t]·src[t][i] (the direct depthwise convolution's core). Four
// vectors of outputs stay in registers while every tap is added (t ascending, one fused
// multiply-add each), so each output costs one store however many taps there are. Every output
// is computed in the same order, vector body or tail, so the result depends on nothing but n.
inline void fma_taps(float* out, const float* const* src, const float* w, std::int64_t taps, float init,
                     std::int64_t n) {
    constexpr std::int64_t W = simd_width;
    std::int64_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        fbatch acc[4];
        detail::unroll<4>([&](auto v) NANOTORCH_INLINE_LAMBDA { acc[v] = fbatch(init); });
        for (std::int64_t t = 0; t < taps; ++t) {
            const fbatch wt(w[t]);
            const float* s = src[t] + i;
            detail::unroll<4>([&](auto v) NANOTORCH_INLINE_LAMBDA {
                acc[v] = vfma(wt, fbatch::load_unaligned(s + v * W), acc[v]);
            });
        }
        detail::unroll<4>([&](auto v) NANOTORCH_INLINE_LAMBDA { acc[v].store_unaligned(out + i + v * W); });
    }
    for (; i + W <= n; i += W) {
        fbatch acc(init);
        for (std::int64_t t = 0; t < taps; ++t) acc = vfma(fbatch(w[t]), fbatch::load_unaligned(src[t] + i), acc);
        acc.store_unaligned(out + i);
    }
    for (; i < n; ++i) {
        float acc = init;
        for (std::int64_t t = 0; t < taps; ++t) acc = std::fma(w[t], src[t][i], acc);
        out[i] = acc;
    }
}
namespace detail {
// dot_taps for B taps at once: each load of a feeds B accumulators.
template <std::size_t B>
inline void dot_taps_block(float* out, const float* a, const float* const* src, std::int64_t n) {
    constexpr std::int64_t W = simd_width;
    fbatch acc[B];
    unroll<B>([&](auto b) NANOTORCH_INLINE_LAMBDA { acc[b] = fbatch(0.0f); });
    std::int64_t i = 0;
    for (; i + W <= n; i += W) {
        const fbatch av = fbatch::load_unaligned(a + i);
        unroll<B>([&](auto b) NANOTORCH_INLINE_LAMBDA {
            acc[b] = vfma(av, fbatch::load_unaligned(src[b] + i), acc[b]);
        });
    }
    unroll<B>([&](auto b) NANOTORCH_INLINE_LAMBDA {
        float r = vhadd(acc[b]);
        for (std::int64_t k = i; k < n; ++k) r += a[k] * src[b][k];
        out[b] = r;
    });
}
}  // namespace detail
// out[t] = Σ_{i < n} a[i]·src[t][i] for t < taps (the depthwise weight gradient): blocks of
// eight (then four, then one) taps share each load of a; per tap, lane partial sums over
// i ≡ lane (mod simd_width) ascending, then vhadd, then the tail ascending (a fixed order
// for a given n).
inline void dot_taps(float* out, const float* a, const float* const* src, std::int64_t taps, std::int64_t n) {
    std::int64_t t = 0;
    for (; t + 8 <= taps; t += 8) detail::dot_taps_block<8>(out + t, a, src + t, n);
    for (; t + 4 <= taps; t += 4) detail::dot_taps_block<4>(out + t, a, src + t, n);
    for (; t < taps; ++t) detail::dot_taps_block<1>(out + t, a, src + t, n);
}
// Σ (x[i] − m)², in sum's order (lane partials, hadd, tail). Batch-norm variance.
inline float sum_sq_dev(const float* x, float m, std::int64_t n) {
    const fbatch vm(m);
    fbatch acc(0.0f);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width) {
        const fbatch d = fbatch::load_unaligned(x + i) - vm;
        acc = vfma(d, d, acc);
    }
    float s = vhadd(acc);
    for (; i < n; ++i) s += (x[i] - m) * (x[i] - m);
    return s;
}
// Σ a[i]·(x[i] − m), in sum's order. Batch-norm backward's projection term.
inline float dot_dev(const float* a, const float* x, float m, std::int64_t n) {
    const fbatch vm(m);
    fbatch acc(0.0f);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width)
        acc = vfma(fbatch::load_unaligned(a + i), fbatch::load_unaligned(x + i) - vm, acc);
    float s = vhadd(acc);
    for (; i < n; ++i) s += a[i] * (x[i] - m);
    return s;
}
// out[i] = x[i]·s + t (fused where the ISA has FMA). Batch-norm's per-channel affine map.
inline void scale_shift(float* out, const float* x, float s, float t, std::int64_t n) {
    const fbatch vs(s), vt(t);
    detail::unary_map(out, x, n, [vs, vt](fbatch v) { return vfma(v, vs, vt); },
                      [s, t](float v) { return sfma(v, s, t); });
}
// scale_shift then relu_forward in one pass over x, lane for lane the same operations (the conv
// epilogue of a BatchNormalization and Relu fused into a Conv: one load and store per element).
inline void scale_shift_relu(float* out, const float* x, float s, float t, std::int64_t n) {
    const fbatch vs(s), vt(t), zero(0.0f);
    detail::unary_map(
        out, x, n,
        [vs, vt, zero](fbatch v) {
            const fbatch y = vfma(v, vs, vt);
            return vselect(y > zero, y, zero);
        },
        [s, t](float v) {
            const float y = sfma(v, s, t);
            return y > 0.0f ? y : 0.0f;
        });
}
namespace detail {
template <bool Affine, bool ResidualFirst, bool Relu>
inline void affine_residual_pass(float* out, const float* x, const float* r, float s, float t, std::int64_t n) {
    const fbatch vs(s), vt(t), zero(0.0f);
    binary_map(
        out, x, r, n,
        // [=]: a branch if constexpr drops leaves a capture unused, which clang flags when named
        [=](fbatch v, fbatch q) {
            if constexpr (Affine) v = vfma(v, vs, vt);
            v = ResidualFirst ? q + v : v + q;
            if constexpr (Relu) v = vselect(v > zero, v, zero);
            return v;
        },
        [=](float v, float q) {
            if constexpr (Affine) v = sfma(v, s, t);
            v = ResidualFirst ? q + v : v + q;
            if constexpr (Relu) v = v > 0.0f ? v : 0.0f;
            return v;
        });
}
}  // namespace detail
// out[i] = relu?((x[i]·s + t) + r[i]): the epilogue of a Conv whose output (after the
// BatchNormalization map when `affine`) is added to a residual r of its own shape, then the
// ReLU when `relu`. r[i] + y rather than y + r[i] when residual_first (the Add node's operand
// order, which decides which NaN payload survives). Lane for lane the operations of scale_shift,
// add and relu_forward, with the same vector/tail split, so the same bits as those passes run
// one after the other, in one load of x and r and one store.
inline void affine_residual(float* out, const float* x, const float* r, bool affine, float s, float t,
                            bool residual_first, bool relu, std::int64_t n) {
    using detail::affine_residual_pass;
    const int variant = (affine ? 4 : 0) + (residual_first ? 2 : 0) + (relu ? 1 : 0);
    switch (variant) {
        case 0: return affine_residual_pass<false, false, false>(out, x, r, s, t, n);
        case 1: return affine_residual_pass<false, false, true>(out, x, r, s, t, n);
        case 2: return affine_residual_pass<false, true, false>(out, x, r, s, t, n);
        case 3: return affine_residual_pass<false, true, true>(out, x, r, s, t, n);
        case 4: return affine_residual_pass<true, false, false>(out, x, r, s, t, n);
        case 5: return affine_residual_pass<true, false, true>(out, x, r, s, t, n);
        case 6: return affine_residual_pass<true, true, false>(out, x, r, s, t, n);
        default: return affine_residual_pass<true, true, true>(out, x, r, s, t, n);
    }
}
// out[i] = (g[i] − gm − (x[i] − m)·p)·k. Batch-norm backward's input gradient.
inline void center_project_scale(float* out, const float* g, const float* x, float m, float gm, float p, float k,
                                 std::int64_t n) {
    const fbatch vm(m), vgm(gm), vp(p), vk(k);
    std::int64_t i = 0;
    for (; i + simd_width <= n; i += simd_width) {
        const fbatch d = fbatch::load_unaligned(x + i) - vm;
        ((fbatch::load_unaligned(g + i) - vgm - d * vp) * vk).store_unaligned(out + i);
    }
    for (; i < n; ++i) out[i] = (g[i] - gm - (x[i] - m) * p) * k;
}
namespace detail {
// Windows [j, n) of max_pool2x2_backward_row (below) on scalars: the vector kernels' tail.
inline void max_pool2x2_backward_row_tail(float* g0, float* g1, const float* go, const float* r0, const float* r1,
                                          std::int64_t j, std::int64_t n) {
    for (; j < n; ++j) {
        const float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
        const auto take = [](float v, float best) { return !(v <= best || best != best); };
        float best = a;
        int tap = 0;
        if (take(b, best)) best = b, tap = 1;
        if (take(c, best)) best = c, tap = 2;
        if (take(d, best)) tap = 3;
        const float v = 0.0f + go[j];
        g0[2 * j] = tap == 0 ? v : 0.0f;
        g0[2 * j + 1] = tap == 1 ? v : 0.0f;
        g1[2 * j] = tap == 2 ? v : 0.0f;
        g1[2 * j + 1] = tap == 3 ? v : 0.0f;
    }
}
}  // namespace detail
#if defined(NANOTORCH_SIMD_WASM)
/// Whether max_pool2x2_backward_row below exists (kernels/pool.hpp then uses it).
inline constexpr bool has_max_pool2x2_backward_row = true;
/// One output row of the 2×2 stride-2 max-pool backward, recomputing each window's argmax from
/// the input: window j is {r0[2j] r0[2j+1]; r1[2j] r1[2j+1]}, and its gradient 0 + go[j] goes to
/// the tap argmax4 in kernels/pool.hpp picks (the first NaN, else the first maximum in row-major
/// order: a tap replaces the best when !(v <= best || best is NaN)), 0 to the other three, written
/// to g0 (row 0) and g1 (row 1), 2·n floats each. Bit-identical to pool.hpp's generic loop.
/// clang for SIMD128 left that loop scalar, with the strided gathers and scatters of its four taps
/// costing 15% of a training step. Here the taps are split into even and odd lanes with shuffles,
/// and the gradients interleaved back the same way (x86 has the same kernel in SSE, below).
inline void max_pool2x2_backward_row(float* g0, float* g1, const float* go, const float* r0, const float* r1,
                                     std::int64_t n) {
    const v128_t zero = wasm_f32x4_splat(0.0f);
    const auto takes = [](v128_t v, v128_t best) {  // !(v <= best || best != best), lane-wise
        return wasm_v128_not(wasm_v128_or(wasm_f32x4_le(v, best), wasm_f32x4_ne(best, best)));
    };
    std::int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const v128_t t0 = wasm_v128_load(r0 + 2 * j), t1 = wasm_v128_load(r0 + 2 * j + 4);
        const v128_t u0 = wasm_v128_load(r1 + 2 * j), u1 = wasm_v128_load(r1 + 2 * j + 4);
        const v128_t a = wasm_i32x4_shuffle(t0, t1, 0, 2, 4, 6), b = wasm_i32x4_shuffle(t0, t1, 1, 3, 5, 7);
        const v128_t c = wasm_i32x4_shuffle(u0, u1, 0, 2, 4, 6), d = wasm_i32x4_shuffle(u0, u1, 1, 3, 5, 7);
        // Masks of the tap chosen so far, as argmax4 folds b, c, d into the best of a.
        v128_t best = a;
        v128_t is_b = takes(b, best);
        best = wasm_v128_bitselect(b, best, is_b);
        const v128_t is_c = takes(c, best);
        best = wasm_v128_bitselect(c, best, is_c);
        const v128_t is_d = takes(d, best);
        is_b = wasm_v128_andnot(is_b, wasm_v128_or(is_c, is_d));
        const v128_t is_c_final = wasm_v128_andnot(is_c, is_d);
        const v128_t is_a = wasm_v128_not(wasm_v128_or(wasm_v128_or(is_b, is_c_final), is_d));
        const v128_t g = wasm_f32x4_add(zero, wasm_v128_load(go + j));  // 0 + g: −0 becomes +0, as the scatter's
        const v128_t ga = wasm_v128_and(g, is_a), gb = wasm_v128_and(g, is_b);
        const v128_t gc = wasm_v128_and(g, is_c_final), gd = wasm_v128_and(g, is_d);
        wasm_v128_store(g0 + 2 * j, wasm_i32x4_shuffle(ga, gb, 0, 4, 1, 5));
        wasm_v128_store(g0 + 2 * j + 4, wasm_i32x4_shuffle(ga, gb, 2, 6, 3, 7));
        wasm_v128_store(g1 + 2 * j, wasm_i32x4_shuffle(gc, gd, 0, 4, 1, 5));
        wasm_v128_store(g1 + 2 * j + 4, wasm_i32x4_shuffle(gc, gd, 2, 6, 3, 7));
    }
    detail::max_pool2x2_backward_row_tail(g0, g1, go, r0, r1, j, n);
}
/// Whether transpose_rows_4 below exists (kernels/gemm.hpp then packs transposed B panels with it).
inline constexpr bool has_transpose_rows_4 = true;
/// dst[k·ldd + q] = src[q·lds + k] for q < 4, k < n: four rows of src become n rows of four
/// floats (the GEMM packing a transposed operand: four of a panel's columns at a time). Moves
/// 4x4 blocks with two rounds of shuffles instead of n·4 single-float stores, which were most of
/// the packing time of a convolution's weight-gradient product. Only on wasm, where the scalar
/// loop stayed scalar; values are moved, never changed.
inline void transpose_rows_4(float* dst, std::int64_t ldd, const float* src, std::int64_t lds, std::int64_t n) {
    const float* s0 = src;
    const float* s1 = src + lds;
    const float* s2 = src + 2 * lds;
    const float* s3 = src + 3 * lds;
    std::int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        const v128_t r0 = wasm_v128_load(s0 + k), r1 = wasm_v128_load(s1 + k);
        const v128_t r2 = wasm_v128_load(s2 + k), r3 = wasm_v128_load(s3 + k);
        const v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
        const v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
        wasm_v128_store(dst + k * ldd, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
        wasm_v128_store(dst + (k + 1) * ldd, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
        wasm_v128_store(dst + (k + 2) * ldd, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
        wasm_v128_store(dst + (k + 3) * ldd, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
    }
    for (; k < n; ++k) {
        float* d = dst + k * ldd;
        d[0] = s0[k];
        d[1] = s1[k];
        d[2] = s2[k];
        d[3] = s3[k];
    }
}
#else
#if defined(__SSE2__) || defined(_M_X64)
inline constexpr bool has_max_pool2x2_backward_row = true;
/// max_pool2x2_backward_row as on wasm (above), with SSE's shuffles, on every x86-64 build. GCC
/// vectorises the generic loop's argmax, but not its four-tap gather and scatter, which kept
/// that loop at about 8 % of the seed net's training step on an AVX-512 core. Four windows per
/// step; the masks, the 0 + g and the selections are the generic loop's, lane by lane.
inline void max_pool2x2_backward_row(float* g0, float* g1, const float* go, const float* r0, const float* r1,
                                     std::int64_t n) {
    const __m128 zero = _mm_setzero_ps();
    const auto takes = [](__m128 v, __m128 best) {  // !(v <= best || best is NaN), lane-wise
        return _mm_andnot_ps(_mm_or_ps(_mm_cmple_ps(v, best), _mm_cmpunord_ps(best, best)),
                             _mm_castsi128_ps(_mm_set1_epi32(-1)));
    };
    const auto select = [](__m128 mask, __m128 x, __m128 y) {  // mask ? x : y
        return _mm_or_ps(_mm_and_ps(mask, x), _mm_andnot_ps(mask, y));
    };
    std::int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const __m128 t0 = _mm_loadu_ps(r0 + 2 * j), t1 = _mm_loadu_ps(r0 + 2 * j + 4);
        const __m128 u0 = _mm_loadu_ps(r1 + 2 * j), u1 = _mm_loadu_ps(r1 + 2 * j + 4);
        const __m128 a = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));
        const __m128 b = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1));
        const __m128 c = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(2, 0, 2, 0));
        const __m128 d = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 1, 3, 1));
        __m128 best = a;  // masks of the tap chosen so far, as argmax4 folds b, c, d into a
        __m128 is_b = takes(b, best);
        best = select(is_b, b, best);
        const __m128 is_c = takes(c, best);
        best = select(is_c, c, best);
        const __m128 is_d = takes(d, best);
        is_b = _mm_andnot_ps(_mm_or_ps(is_c, is_d), is_b);
        const __m128 is_c_final = _mm_andnot_ps(is_d, is_c);
        const __m128 is_a = _mm_andnot_ps(_mm_or_ps(_mm_or_ps(is_b, is_c_final), is_d),
                                          _mm_castsi128_ps(_mm_set1_epi32(-1)));
        const __m128 g = _mm_add_ps(zero, _mm_loadu_ps(go + j));  // 0 + g: −0 becomes +0, as the scatter's
        const __m128 ga = _mm_and_ps(g, is_a), gb = _mm_and_ps(g, is_b);
        const __m128 gc = _mm_and_ps(g, is_c_final), gd = _mm_and_ps(g, is_d);
        _mm_storeu_ps(g0 + 2 * j, _mm_unpacklo_ps(ga, gb));
        _mm_storeu_ps(g0 + 2 * j + 4, _mm_unpackhi_ps(ga, gb));
        _mm_storeu_ps(g1 + 2 * j, _mm_unpacklo_ps(gc, gd));
        _mm_storeu_ps(g1 + 2 * j + 4, _mm_unpackhi_ps(gc, gd));
    }
    detail::max_pool2x2_backward_row_tail(g0, g1, go, r0, r1, j, n);
}
/// Whether transpose_rows_4 below exists (kernels/gemm.hpp then packs transposed panels with it).
inline constexpr bool has_transpose_rows_4 = true;
/// dst[k·ldd + q] = src[q·lds + k] for q < 4, k < n, as the wasm version above: 4x4 blocks moved
/// with SSE shuffles (every x86-64 CPU has SSE2) instead of single-float stores. The GEMM packs
/// a convolution's weight-gradient operands this way (both have K, the pixels, contiguous):
/// the scalar loop was a third of that product's time on a VGG layer. Values are moved, never
/// changed.
inline void transpose_rows_4(float* dst, std::int64_t ldd, const float* src, std::int64_t lds, std::int64_t n) {
    const float* s0 = src;
    const float* s1 = src + lds;
    const float* s2 = src + 2 * lds;
    const float* s3 = src + 3 * lds;
    std::int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        const __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k);
        const __m128 r2 = _mm_loadu_ps(s2 + k), r3 = _mm_loadu_ps(s3 + k);
        const __m128 t0 = _mm_unpacklo_ps(r0, r1), t1 = _mm_unpackhi_ps(r0, r1);  // r0_0 r1_0 r0_1 r1_1 ...
        const __m128 t2 = _mm_unpacklo_ps(r2, r3), t3 = _mm_unpackhi_ps(r2, r3);
        _mm_storeu_ps(dst + k * ldd, _mm_movelh_ps(t0, t2));
        _mm_storeu_ps(dst + (k + 1) * ldd, _mm_movehl_ps(t2, t0));
        _mm_storeu_ps(dst + (k + 2) * ldd, _mm_movelh_ps(t1, t3));
        _mm_storeu_ps(dst + (k + 3) * ldd, _mm_movehl_ps(t3, t1));
    }
    for (; k < n; ++k) {
        float* d = dst + k * ldd;
        d[0] = s0[k];
        d[1] = s1[k];
        d[2] = s2[k];
        d[3] = s3[k];
    }
}
#else
inline constexpr bool has_max_pool2x2_backward_row = false;
// Never called where has_max_pool2x2_backward_row is false; declared so pool.hpp compiles.
inline void max_pool2x2_backward_row(float*, float*, const float*, const float*, const float*, std::int64_t) {}
inline constexpr bool has_transpose_rows_4 = false;
// Never called where has_transpose_rows_4 is false; declared so gemm.hpp compiles.
inline void transpose_rows_4(float*, std::int64_t, const float*, std::int64_t, std::int64_t) {}
#endif
#endif
#else
inline constexpr std::int64_t simd_width = 1;
inline const char* simd_arch_name() { return "scalar"; }
inline constexpr bool has_partial_vectors = false;
inline constexpr bool has_max_pool2x2_backward_row = false;
inline void max_pool2x2_backward_row(float*, float*, const float*, const float*, const float*, std::int64_t) {}
inline constexpr bool has_transpose_rows_4 = false;
inline void transpose_rows_4(float*, std::int64_t, const float*, std::int64_t, std::int64_t) {}
using ref::add;
using ref::axpby;
using ref::copy_floats;
using ref::zero_floats;
inline void copy_vector_spill(float* dst, const float* src) { *dst = *src; }
inline void zero_vector_spill(float* dst) { *dst = 0.0f; }
inline void copy_floats_spill(float* dst, const float* src, std::int64_t n) { copy_floats(dst, src, n); }
using ref::axpy;
using ref::div;
using ref::dot;
using ref::dot_taps;
using ref::fma_taps;
using ref::mul;
using ref::mul_scalar;
using ref::add_scalar;
using ref::finish_rows;
using ref::relu_backward;
using ref::max_pick_window;
using ref::max_pick_window_backward;
using ref::sum_window;
using ref::relu_forward;
using ref::sub;
using ref::sum;
// batch-norm helpers
using ref::center_project_scale;
using ref::dot_dev;
using ref::scale_shift;
using ref::scale_shift_relu;
using ref::affine_residual;
using ref::sum_sq_dev;
#endif


#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && defined(__AVX512F__)
namespace detail {
// Lanes [0, n) of a 16-lane mask, n clamped to [0, 16].
inline __mmask16 lanes_mask(std::int64_t n) {
    return n <= 0 ? __mmask16{0} : n >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << n) - 1u);
}
// Sixteen floats from src[0, 32) with step 2 from `first` (0: the even ones, 1: the odd ones),
// reading only src[0, avail): a 32-float window as two masked loads (a masked-off lane never
// faults), then one two-source permute.
inline __m512 pick_stride2(const float* src, std::int64_t avail, int first) {
    const __m512 lo = _mm512_maskz_loadu_ps(lanes_mask(avail), src);
    const __m512 hi = _mm512_maskz_loadu_ps(lanes_mask(avail - 16), src + 16);
    const __m512i idx = _mm512_add_epi32(_mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0),
                                         _mm512_set1_epi32(first));
    return _mm512_permutex2var_ps(lo, idx, hi);
}
// Row [pad zeros, src[0, n), zeros] in lanes [0, 16), for n + 2·pad <= 16, from `v` holding
// src[0, n) in its first n lanes (the lanes past them are not read): one permute that moves the
// row pad lanes up and zeroes every other lane.
inline __m512 padded_row_vector(__m512 v, std::int64_t n, std::int64_t pad) {
    const __m512i from = _mm512_sub_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(static_cast<int>(pad)));
    const __mmask16 row = static_cast<__mmask16>(lanes_mask(pad + n) & ~lanes_mask(pad));
    return _mm512_maskz_permutexvar_ps(row, from, v);
}
}  // namespace detail
#endif

#if !(NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && defined(__AVX512F__))
// Never called without AVX-512 (has_partial_vectors and col2im_dense_max_width say so); declared
// so that the callers compile in every build.
inline void max_pick_rows(float*, const float*, const float*, std::int64_t) {}
inline constexpr std::int64_t col2im_dense_max_width = 0;
inline constexpr std::int64_t col2im_dense_max_kernel = 0;
inline void col2im_dense(float*, const float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                         std::int64_t, std::int64_t, std::int64_t) {}
#endif

/// even[j] = src[2j], odd[j] = src[2j + 1] for j < n: a row split into its even and odd columns
/// (the stride-2 convolution's phase planes, kernels/implicit_gemm.hpp). Sixteen pairs at a time with
/// AVX-512's two-source permutes (the tail under a lane mask: phase rows are 8 or 15 floats in
/// ResNet-style nets, where the 4-pair loop below left most of each row to single floats), four
/// with SSE or SIMD128 shuffles; values are moved, never changed. Reads src[0, 2n) only.
inline void deinterleave2(float* even, float* odd, const float* src, std::int64_t n) {
    std::int64_t j = 0;
#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && defined(__AVX512F__)
    for (; j < n; j += 16) {
        const std::int64_t avail = 2 * (n - j);
        const __mmask16 m = detail::lanes_mask(n - j);
        _mm512_mask_storeu_ps(even + j, m, detail::pick_stride2(src + 2 * j, avail, 0));
        _mm512_mask_storeu_ps(odd + j, m, detail::pick_stride2(src + 2 * j, avail, 1));
    }
#elif NANOTORCH_SIMD_ENABLED && defined(NANOTORCH_SIMD_WASM)
    for (; j + 4 <= n; j += 4) {
        const v128_t t0 = wasm_v128_load(src + 2 * j), t1 = wasm_v128_load(src + 2 * j + 4);
        wasm_v128_store(even + j, wasm_i32x4_shuffle(t0, t1, 0, 2, 4, 6));
        wasm_v128_store(odd + j, wasm_i32x4_shuffle(t0, t1, 1, 3, 5, 7));
    }
#elif NANOTORCH_SIMD_ENABLED && (defined(__SSE2__) || defined(_M_X64))
    for (; j + 4 <= n; j += 4) {
        const __m128 t0 = _mm_loadu_ps(src + 2 * j), t1 = _mm_loadu_ps(src + 2 * j + 4);
        _mm_storeu_ps(even + j, _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm_storeu_ps(odd + j, _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1)));
    }
#endif
    for (; j < n; ++j) {
        even[j] = src[2 * j];
        odd[j] = src[2 * j + 1];
    }
}

/// dst[j] = src[2j] for j < n: every other float of a row (a 1×1 stride-2 convolution's im2col
/// rows, kernels/im2col.hpp). Sixteen at a time under lane masks with AVX-512 (see deinterleave2),
/// else one float at a time; values are moved, never changed. Reads src[0, 2n − 1) only.
inline void take_even(float* dst, const float* src, std::int64_t n) {
    std::int64_t j = 0;
#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && defined(__AVX512F__)
    for (; j < n; j += 16)
        _mm512_mask_storeu_ps(dst + j, detail::lanes_mask(n - j), detail::pick_stride2(src + 2 * j, 2 * (n - j) - 1, 0));
#endif
    for (; j < n; ++j) dst[j] = src[2 * j];
}

}  // namespace nanotorch::kernels
