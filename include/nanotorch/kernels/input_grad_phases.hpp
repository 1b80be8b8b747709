// nanotorch/kernels/input_grad_phases.hpp — the input gradient of a strided convolution as one
// stride-1 product per phase of the input, on the lanes kernel (AVX-512, AVX2 with FMA).
//
// dX[c, ih, iw] = Σ_{o, i, j} W[o, c, i, j] · G[o, oh, ow] over ih = oh·sH + i − pH, iw = ow·sW +
// j − pW. The input rows of one phase, ih + pH ≡ a (mod sH), are reached only by the kernel rows
// i = a + sH·u (u < U = ⌈(kH − a) / sH⌉), from the output rows oh = m − u of the phase's m-th
// row: a stride-1 correlation of G with those kernel rows reversed (likewise for the columns).
// So each of the sH·sW phases is a stride-1 convolution of G, zero-padded by ⌈k / s⌉ − 1, with
// a sub-kernel of the weights (channels swapped), run on conv_lanes_product (input channels in
// the lanes), and the phases' planes are then interleaved into dX. The im2col path it replaces
// multiplied Wᵀ·G into columns (a short K of O) and scattered them back with col2im.
//
// Each dX element is one sum over its phase's taps in a fixed order (the lanes product's chains):
// the shapes alone decide it, so the result is the same for every thread count.
// Measured: see input_grad_phases_pays.
#pragma once

#include <algorithm>  // std::min, std::max
#include <cstdint>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/conv_lanes.hpp>     // conv_lanes_product, conv_lanes_pack
#include <nanotorch/kernels/im2col.hpp>         // pad_planes
#include <nanotorch/kernels/implicit_gemm.hpp>  // offset_table
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/window.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels::detail {

// One phase of one axis: the input rows first, first + s, ... (count of them), where
// row + pad ≡ phase (mod s), reached by `taps` kernel rows (phase, phase + s, ...), the first
// of them from output row m0 − (taps − 1) (in G padded by ⌈k / s⌉ − 1 at the start, row
// m0 + ⌈k / s⌉ − taps).
struct GradPhase {
    std::int64_t phase = 0, first = 0, count = 0, taps = 0, m0 = 0;
};
inline GradPhase grad_phase(std::int64_t phase, std::int64_t stride, std::int64_t kernel, std::int64_t pad,
                            std::int64_t in) {
    GradPhase g;
    g.phase = phase;
    g.taps = phase < kernel ? (kernel - phase + stride - 1) / stride : 0;
    g.first = ((phase - pad) % stride + stride) % stride;
    g.count = g.first < in ? (in - g.first + stride - 1) / stride : 0;
    g.m0 = (g.first + pad - phase) / stride;  // exact: first + pad ≡ phase (mod stride)
    return g;
}

#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM) && \
    (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
/// Whether conv_input_grad_phases exists in this build (AVX-512, or AVX2 with FMA: where
/// kernels/conv_lanes.hpp's product does).
inline constexpr bool has_input_grad_phases = true;

#if defined(__AVX512F__)
// dst[2j] = even[j], dst[2j + 1] = odd[j] for 2j, 2j + 1 < n: 32 floats per pair of vectors.
inline void zip_row(float* dst, const float* even, const float* odd, std::int64_t n) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    std::int64_t j = 0;
    for (; 2 * j + 32 <= n; j += 16) {
        const __m512 e = _mm512_loadu_ps(even + j), o = _mm512_loadu_ps(odd + j);
        _mm512_storeu_ps(dst + 2 * j, _mm512_permutex2var_ps(e, lo, o));
        _mm512_storeu_ps(dst + 2 * j + 16, _mm512_permutex2var_ps(e, hi, o));
    }
    if (2 * j < n) {  // the last 1-31 floats: (n − 2j + 1) / 2 even ones, (n − 2j) / 2 odd ones
        const std::int64_t left = n - 2 * j;
        const __m512 e = _mm512_maskz_loadu_ps(lanes_mask((left + 1) / 2), even + j);
        const __m512 o = _mm512_maskz_loadu_ps(lanes_mask(left / 2), odd + j);
        _mm512_mask_storeu_ps(dst + 2 * j, lanes_mask(left), _mm512_permutex2var_ps(e, lo, o));
        if (left > 16) _mm512_mask_storeu_ps(dst + 2 * j + 16, lanes_mask(left - 16), _mm512_permutex2var_ps(e, hi, o));
    }
}
#else
// dst[2j] = even[j], dst[2j + 1] = odd[j] for 2j, 2j + 1 < n: 16 floats per pair of vectors
// (unpack, then exchange 128-bit halves), the last 0-15 one at a time.
inline void zip_row(float* dst, const float* even, const float* odd, std::int64_t n) {
    std::int64_t j = 0;
    for (; 2 * j + 16 <= n; j += 8) {
        const __m256 e = _mm256_loadu_ps(even + j), o = _mm256_loadu_ps(odd + j);
        const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
        _mm256_storeu_ps(dst + 2 * j, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(dst + 2 * j + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    for (; 2 * j < n; ++j) {
        dst[2 * j] = even[j];
        if (2 * j + 1 < n) dst[2 * j + 1] = odd[j];
    }
}
#endif

// Whether every phase's reads stay inside G padded by ⌈k / s⌉ − 1 on each side (true for the
// usual windows; checked rather than assumed).
inline bool grad_phases_fit(std::int64_t stride, std::int64_t kernel, std::int64_t pad, std::int64_t in,
                            std::int64_t out) {
    const std::int64_t e = (kernel + stride - 1) / stride - 1;
    for (std::int64_t a = 0; a < stride; ++a) {
        const GradPhase g = grad_phase(a, stride, kernel, pad, in);
        if (g.taps > 0 && g.count > 0 && g.m0 + g.count > out + e) return false;
    }
    return true;
}

// Whether conv2d_backward computes grad_in by phases, from the shapes alone: a strided window
// no wider than its kernel (no dilation, one group, the phases' reads fitting in G padded by
// ⌈k / s⌉ − 1), at least 16 input channels (the lanes hold them) and 16 output channels (each
// phase multiplies O times its taps). Measured on Zen 5 (batch 64, 1 thread, dX alone, against
// sgemm + col2im): 3x3 stride 2 16 -> 32 from 28x28 1.25x, 32 -> 64 from 14x14 1.28x, 24 -> 40
// from 30x30 1.15x, 64 -> 128 from 16x16 1.07-1.1x; a 1x1 stride-2 window, whose odd phases
// no tap reaches, ran 0.92x and keeps sgemm + col2im. On AVX2 (Zen 3, the same comparison,
// each best of three alternations): 16 -> 32 from 28x28 1.38x, 32 -> 64 from 14x14 1.17x,
// 24 -> 40 from 30x30 1.23x, 64 -> 128 from 16x16 1.16x, 128 -> 256 from 8x8 1.04x, 5x5
// stride 3 16 -> 17 1.64x, a 4x4 stride-2 kernel 17 -> 16 1.61x.
inline bool input_grad_phases_pays(std::int64_t channels, std::int64_t out_channels, std::int64_t groups,
                                   const Window2d& w) {
    if (groups != 1 || channels < 16 || out_channels < 16 || w.dilation_h != 1 || w.dilation_w != 1) return false;
    if ((w.stride_h == 1 && w.stride_w == 1) || w.kernel_h < w.stride_h || w.kernel_w < w.stride_w) return false;
    if (w.out_h <= 0 || w.out_w <= 0) return false;
    return grad_phases_fit(w.stride_h, w.kernel_h, w.pad_h, w.in_h, w.out_h) &&
           grad_phases_fit(w.stride_w, w.kernel_w, w.pad_w, w.in_w, w.out_w);
}

// grad_in[N, C, H, W] of conv2d_backward by phases (see the file comment), for a window
// input_grad_phases_pays accepts; weight [O, C, kH, kW], grad_out [N, O, oH, oW].
inline void conv_input_grad_phases(float* grad_in, const float* grad_out, const float* weight, std::int64_t batch,
                                   std::int64_t channels, std::int64_t out_channels, const Window2d& w) {
    const std::int64_t C = channels, O = out_channels, kh = w.kernel_h, kw = w.kernel_w;
    const std::int64_t sh = w.stride_h, sw = w.stride_w;
    // G zero-padded by ⌈k / s⌉ − 1 on each side: the phases read it in place.
    Window2d gwin;
    gwin.in_h = w.out_h, gwin.in_w = w.out_w;
    gwin.pad_h = (kh + sh - 1) / sh - 1, gwin.pad_w = (kw + sw - 1) / sw - 1;
    const std::int64_t gpitch = w.out_w + 2 * gwin.pad_w, gplane = (w.out_h + 2 * gwin.pad_h) * gpitch;
    struct Phase {
        GradPhase h, w;
        std::int64_t K = 0, packed = 0, offsets = 0;  // taps O·Uh·Uw; where its packed weights and offsets start
    };
    std::vector<Phase> phases;  // (sH·sW of them: a few, once per call)
    std::int64_t packed_floats = 0, offsets = 0;
    bool zeros = false;  // some input rows or columns no tap reaches: dX starts from zero there
    for (std::int64_t a = 0; a < sh; ++a)
        for (std::int64_t b = 0; b < sw; ++b) {
            Phase p;
            p.h = grad_phase(a, sh, kh, w.pad_h, w.in_h);
            p.w = grad_phase(b, sw, kw, w.pad_w, w.in_w);
            if (p.h.count == 0 || p.w.count == 0) continue;
            if (p.h.taps == 0 || p.w.taps == 0) {
                zeros = true;
                continue;
            }
            p.K = O * p.h.taps * p.w.taps;
            p.packed = packed_floats;
            p.offsets = offsets;
            packed_floats += lanes_packed_floats(C, p.K);
            offsets += p.K;
            phases.push_back(p);
        }
    // Each phase's sub-kernel, channels swapped and reversed, packed for the lanes product, and
    // its taps' offsets in the padded G: built once here, by the calling thread, read by the tasks.
    float* packed = scratch(Scratch::conv_flipped_weight, std::max<std::int64_t>(packed_floats, 1));
    std::int64_t* off = offset_table(0, std::max<std::int64_t>(offsets, 1));
    for (const Phase& p : phases) {
        const std::int64_t a = p.h.phase, b = p.w.phase;
        const std::int64_t uh = p.h.taps, uw = p.w.taps;
        float* sub = scratch(Scratch::conv_grad_col, C * p.K);
        for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t o = 0; o < O; ++o)
                for (std::int64_t u = 0; u < uh; ++u)
                    for (std::int64_t v = 0; v < uw; ++v)
                        sub[c * p.K + (o * uh + u) * uw + v] =
                            weight[((o * C + c) * kh + a + sh * (uh - 1 - u)) * kw + b + sw * (uw - 1 - v)];
        conv_lanes_pack(packed + p.packed, sub, C, p.K);
        const std::int64_t r0 = p.h.m0 + gwin.pad_h - (uh - 1), c0 = p.w.m0 + gwin.pad_w - (uw - 1);
        for (std::int64_t o = 0; o < O; ++o)
            for (std::int64_t u = 0; u < uh; ++u)
                for (std::int64_t v = 0; v < uw; ++v)
                    off[p.offsets + (o * uh + u) * uw + v] = o * gplane + (r0 + u) * gpitch + c0 + v;
    }
    const std::int64_t in_plane = w.in_plane(), out_plane = w.out_plane();
    constexpr std::int64_t chunk = 4;  // images per task (a shape-free constant: the same for every thread count)
    parallel_for(0, (batch + chunk - 1) / chunk, 1, [&](std::int64_t t0, std::int64_t t1) {
        for (std::int64_t t = t0; t < t1; ++t) {
            const std::int64_t n0 = t * chunk, nb = std::min(chunk, batch - n0);
            float* dx = grad_in + n0 * C * in_plane;
            if (zeros) zero_floats(dx, nb * C * in_plane);
            float* g = scratch(Scratch::conv_padded, nb * O * gplane);
            for (std::int64_t n = 0; n < nb; ++n)
                pad_planes(g + n * O * gplane, grad_out + (n0 + n) * O * out_plane, O, gwin);
            // The phases' planes, one after another (the phases of one input row phase are
            // consecutive in `phases`: interleaved together below).
            std::int64_t total = 0;
            for (const Phase& p : phases) total += nb * C * p.h.count * p.w.count;
            float* y = scratch(Scratch::conv_gemm_out, total);
            std::int64_t at = 0;
            for (std::size_t k = 0; k < phases.size(); ++k) {
                const Phase& p = phases[k];
                const std::int64_t len = p.h.count * p.w.count;
                conv_lanes_product(y + at, len, C * len, nullptr, C, p.K, g, O * gplane, nb, gpitch, p.w.count, 1, 1,
                                   off + p.offsets, LanesFinish{}, packed + p.packed);
                // Two column phases of one row phase that cover the row alternately (stride 2):
                // their rows zipped into dX with whole vectors.
                if (sw == 2 && k + 1 < phases.size() && phases[k + 1].h.first == p.h.first &&
                    p.w.first + phases[k + 1].w.first == 1) {
                    const Phase& p2 = phases[k + 1];
                    const std::int64_t len2 = p2.h.count * p2.w.count;
                    const bool first_even = p.w.first == 0;
                    const float* even = first_even ? y + at : y + at + nb * C * len;
                    const float* odd = first_even ? y + at + nb * C * len : y + at;
                    const std::int64_t el = first_even ? len : len2, ol = first_even ? len2 : len;
                    const std::int64_t ew = first_even ? p.w.count : p2.w.count;
                    const std::int64_t ow = first_even ? p2.w.count : p.w.count;
                    conv_lanes_product(y + at + nb * C * len, len2, C * len2, nullptr, C, p2.K, g, O * gplane, nb,
                                       gpitch, p2.w.count, 1, 1, off + p2.offsets, LanesFinish{}, packed + p2.packed);
                    for (std::int64_t q = 0; q < nb * C; ++q)
                        for (std::int64_t i = 0; i < p.h.count; ++i)
                            zip_row(dx + q * in_plane + (p.h.first + sh * i) * w.in_w, even + q * el + i * ew,
                                    odd + q * ol + i * ow, w.in_w);
                    at += nb * C * (len + len2);
                    ++k;
                    continue;
                }
                // Otherwise its rows into dX as they are: input row first_h + sH·i, columns first_w + sW·j.
                for (std::int64_t q = 0; q < nb * C; ++q)
                    for (std::int64_t i = 0; i < p.h.count; ++i) {
                        const float* src = y + at + q * len + i * p.w.count;
                        float* dst = dx + q * in_plane + (p.h.first + sh * i) * w.in_w + p.w.first;
                        if (sw == 1) copy_floats(dst, src, p.w.count);
                        else
                            for (std::int64_t j = 0; j < p.w.count; ++j) dst[sw * j] = src[j];
                    }
                at += nb * C * len;
            }
        }
    });
}
#else
inline constexpr bool has_input_grad_phases = false;
inline bool input_grad_phases_pays(std::int64_t, std::int64_t, std::int64_t, const Window2d&) { return false; }
// Never called where input_grad_phases_pays is false; declared so that the caller compiles in every build.
inline void conv_input_grad_phases(float*, const float*, const float*, std::int64_t, std::int64_t, std::int64_t,
                                   const Window2d&) {}
#endif

}  // namespace nanotorch::kernels::detail
