// nanotorch/kernels/norm.hpp — raw-pointer batch-normalisation kernels on [N, C, inner] data.
//
// Any input of rank >= 2 is viewed as [N, C, inner] with inner = the product of the dims after
// C (1 for [N, C], L for [N, C, L], H·W for NCHW), so one plane x + (n·C + c)·inner holds
// `inner` contiguous values of channel c. Provides the per-channel statistics (mean, biased and
// unbiased variance, two passes: mean first, then Σ(x − mean)², which stays accurate when
// |mean| ≫ std), the forward affine map y = x·a_c + b_c, and the backward (input, weight and
// bias gradients, for batch statistics or for constant running statistics). Each has a ref::
// twin (plain loops, double accumulation) that tests compare against.
//
// Determinism: a channel's sums run in one fixed order — planes n = 0..N−1, each plane summed
// by the vector helpers of kernels/simd.hpp (lane partials, one horizontal add, tail) and
// accumulated in double — and reductions are spread over parallel_for by channel only, so a
// channel is always summed by one thread in that order. The elementwise passes are spread by
// plane (each output written once). Results are therefore bit-identical for every thread count.
// A task's reductions walk its channels' planes in memory order (image outer, channel inner:
// for_each_channel_plane), each channel's sum still growing n = 0..N−1: taking one channel's
// planes across all images first jumped C·inner floats between reads, and on [64, 16, 28, 28]
// to [64, 64, 7, 7] tensors (1 thread, data out of cache, -O3) the backward's sums ran 1.7-2.8x
// slower that way.
// Not provided here: the running-statistics update and argument checks (ops/norm.hpp).
#pragma once

#include <algorithm>  // std::max
#include <cmath>      // std::sqrt
#include <cstdint>
#include <limits>     // quiet_NaN for an undefined unbiased variance
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>

namespace nanotorch::kernels {

namespace detail {
// About 32k elements of work per parallel_for chunk, counted in channels (N·inner each) or in
// planes (inner each): enough to amortise a dispatch.
inline std::int64_t norm_grain(std::int64_t per_item) { return std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(1, per_item)); }
// f(c, plane of image n, channel c) for the channels [c0, c1) of x [N, C, inner], image by
// image (n = 0..N−1), each image's planes in channel order: the order they lie in memory.
template <class F>
inline void for_each_channel_plane(const float* x, std::int64_t N, std::int64_t C, std::int64_t inner, std::int64_t c0,
                                   std::int64_t c1, F&& f) {
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = c0; c < c1; ++c) f(c, x + (n * C + c) * inner);
}
}  // namespace detail

// ---- statistics ----
// mean, var [C] ← x [N, C, inner]: mean_c = Σ x / M, var_c = Σ (x − mean_c)² / M (biased), with
// M = N·inner ≥ 1; var_unbiased (may be null) = Σ (x − mean_c)² / (M − 1), NaN when M == 1.
NANOTORCH_KERNEL_API void batch_norm_stats(float* mean, float* var, float* var_unbiased, const float* x, std::int64_t N,
                                           std::int64_t C, std::int64_t inner)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    const double M = static_cast<double>(N * inner);
    parallel_for(0, C, detail::norm_grain(N * inner), [&](std::int64_t c0, std::int64_t c1) {
        std::vector<double> s(static_cast<std::size_t>(c1 - c0), 0.0), ss(s);
        const auto at = [c0](std::int64_t c) { return static_cast<std::size_t>(c - c0); };
        detail::for_each_channel_plane(x, N, C, inner, c0, c1,
                                       [&](std::int64_t c, const float* p) { s[at(c)] += sum(p, inner); });
        for (std::int64_t c = c0; c < c1; ++c) mean[c] = static_cast<float>(s[at(c)] / M);
        detail::for_each_channel_plane(x, N, C, inner, c0, c1, [&](std::int64_t c, const float* p) {
            ss[at(c)] += sum_sq_dev(p, mean[c], inner);
        });
        for (std::int64_t c = c0; c < c1; ++c) {
            var[c] = static_cast<float>(ss[at(c)] / M);
            if (var_unbiased)
                var_unbiased[c] =
                    M > 1.0 ? static_cast<float>(ss[at(c)] / (M - 1.0)) : std::numeric_limits<float>::quiet_NaN();
        }
    });
}
#endif

// ---- forward ----
// y [N, C, inner] ← x: y = x·a_c + b_c with a_c = weight_c·invstd_c and b_c = bias_c − mean_c·a_c
// (weight 1 and bias 0 when null), i.e. (x − mean_c)·invstd_c·weight_c + bias_c.
// a[c], b[c] ← batch_norm_forward's per-channel map for channels [0, C). Shared with whoever
// applies the same map elsewhere (a convolution's epilogue, kernels::ConvEpilogue), so that both
// use the same two floats per channel.
NANOTORCH_KERNEL_API void batch_norm_affine(float* a, float* b, const float* mean, const float* invstd, const float* weight,
                                            const float* bias, std::int64_t C)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    for (std::int64_t c = 0; c < C; ++c) {
        a[c] = (weight ? weight[c] : 1.0f) * invstd[c];
        b[c] = (bias ? bias[c] : 0.0f) - mean[c] * a[c];
    }
}
#endif

NANOTORCH_KERNEL_API void batch_norm_forward(float* y, const float* x, const float* mean, const float* invstd, const float* weight,
                                             const float* bias, std::int64_t N, std::int64_t C, std::int64_t inner)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    std::vector<float> ab(static_cast<std::size_t>(2 * C));
    batch_norm_affine(ab.data(), ab.data() + C, mean, invstd, weight, bias, C);
    parallel_for(0, N * C, detail::norm_grain(inner), [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const std::int64_t c = p % C;
            scale_shift(y + p * inner, x + p * inner, ab[static_cast<std::size_t>(c)],
                        ab[static_cast<std::size_t>(C + c)], inner);
        }
    });
}
#endif

// ---- statistics summed across processes (SyncBatchNorm, ops/norm.hpp) ----
// The same sums as above, split so that a caller can add them up over processes between the
// passes: each channel's planes are summed in the order n = 0..N−1 as in batch_norm_stats and
// batch_norm_backward, so with one process the results are theirs, bit for bit.

// sum [C] ← Σ x per channel.
NANOTORCH_KERNEL_API void batch_norm_channel_sum(double* sum_x, const float* x, std::int64_t N, std::int64_t C, std::int64_t inner)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    parallel_for(0, C, detail::norm_grain(N * inner), [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) sum_x[c] = 0.0;
        detail::for_each_channel_plane(x, N, C, inner, c0, c1,
                                       [&](std::int64_t c, const float* p) { sum_x[c] += sum(p, inner); });
    });
}
#endif

// sq [C] ← Σ (x − mean_c)² per channel.
NANOTORCH_KERNEL_API void batch_norm_channel_sq_dev(double* sq, const float* x, const float* mean, std::int64_t N, std::int64_t C,
                                                    std::int64_t inner)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    parallel_for(0, C, detail::norm_grain(N * inner), [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) sq[c] = 0.0;
        detail::for_each_channel_plane(x, N, C, inner, c0, c1,
                                       [&](std::int64_t c, const float* p) { sq[c] += sum_sq_dev(p, mean[c], inner); });
    });
}
#endif

// sum_g, dot_g [C] ← Σ gy and Σ gy·(x − mean_c) per channel.
NANOTORCH_KERNEL_API void batch_norm_backward_reduce(double* sum_g, double* dot_g, const float* gy, const float* x, const float* mean,
                                                     std::int64_t N, std::int64_t C, std::int64_t inner)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    parallel_for(0, C, detail::norm_grain(N * inner), [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) sum_g[c] = dot_g[c] = 0.0;
        detail::for_each_channel_plane(gy, N, C, inner, c0, c1, [&](std::int64_t c, const float* g) {
            sum_g[c] += sum(g, inner);
            dot_g[c] += dot_dev(g, x + (g - gy), mean[c], inner);
        });
    });
}
#endif

// gx [N, C, inner] ← the batch-statistics input gradient from the per-channel sums Σ gy and
// Σ gy·(x − mean_c) over all M values that the statistics came from (M may count values of
// other processes, whose sums the caller added in):
//   gx = (gy − sum_g_c/M − (x − mean_c)·invstd_c²·dot_g_c/M) · weight_c·invstd_c.
NANOTORCH_KERNEL_API void batch_norm_backward_input(float* gx, const float* gy, const float* x, const float* mean, const float* invstd,
                                                    const float* weight, const float* sum_g, const float* dot_g, double M,
                                                    std::int64_t N, std::int64_t C, std::int64_t inner)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    parallel_for(0, N * C, detail::norm_grain(inner), [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const std::int64_t c = p % C;
            const float k = (weight ? weight[c] : 1.0f) * invstd[c];
            const double is = invstd[c];
            const auto gm = static_cast<float>(sum_g[c] / M);
            const auto proj = static_cast<float>(dot_g[c] * is * is / M);
            center_project_scale(gx + p * inner, gy + p * inner, x + p * inner, mean[c], gm, proj, k, inner);
        }
    });
}
#endif

// ---- backward ----
// gx, gw, gb ← gy, x [N, C, inner], the forward's mean and invstd [C], weight [C] (null = 1).
// Any output may be null. Per channel, over all N·inner = M values:
//   gb_c = Σ gy,  gw_c = invstd_c · Σ gy·(x − mean_c);
//   batch_stats (mean and invstd were computed from x, so they depend on it):
//     gx = (gy − gb_c/M − (x − mean_c)·invstd_c²·Σ gy·(x − mean_c)/M) · weight_c·invstd_c
//   otherwise (running statistics, constants): gx = gy · weight_c·invstd_c.
NANOTORCH_KERNEL_API void batch_norm_backward(float* gx, float* gw, float* gb, const float* gy, const float* x, const float* mean,
                                              const float* invstd, const float* weight, std::int64_t N, std::int64_t C,
                                              std::int64_t inner, bool batch_stats)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    const double M = static_cast<double>(N * inner);
    std::vector<float> sum_g, dot_g;  // per channel: Σ gy and Σ gy·(x − mean)
    if (gw || gb || (gx && batch_stats)) {
        const auto nc = static_cast<std::size_t>(C);
        std::vector<double> s(nc), d(nc);
        batch_norm_backward_reduce(s.data(), d.data(), gy, x, mean, N, C, inner);
        sum_g.resize(nc);
        dot_g.resize(nc);
        for (std::size_t c = 0; c < nc; ++c) {
            sum_g[c] = static_cast<float>(s[c]);
            dot_g[c] = static_cast<float>(d[c]);
            if (gb) gb[c] = static_cast<float>(s[c]);
            if (gw) gw[c] = static_cast<float>(d[c] * invstd[c]);
        }
    }
    if (!gx) return;
    if (!batch_stats) {
        parallel_for(0, N * C, detail::norm_grain(inner), [&](std::int64_t p0, std::int64_t p1) {
            for (std::int64_t p = p0; p < p1; ++p) {
                const std::int64_t c = p % C;
                mul_scalar(gx + p * inner, gy + p * inner, (weight ? weight[c] : 1.0f) * invstd[c], inner);
            }
        });
        return;
    }
    batch_norm_backward_input(gx, gy, x, mean, invstd, weight, sum_g.data(), dot_g.data(), M, N, C, inner);
}
#endif

// ---- scalar references ----
namespace ref {
// As kernels::batch_norm_stats, element by element in double.
inline void batch_norm_stats(float* mean, float* var, float* var_unbiased, const float* x, std::int64_t N,
                             std::int64_t C, std::int64_t inner) {
    const double M = static_cast<double>(N * inner);
    for (std::int64_t c = 0; c < C; ++c) {
        double s = 0.0;
        for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t i = 0; i < inner; ++i) s += x[(n * C + c) * inner + i];
        const double mu = s / M;
        double ss = 0.0;
        for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t i = 0; i < inner; ++i) {
                const double d = x[(n * C + c) * inner + i] - mu;
                ss += d * d;
            }
        mean[c] = static_cast<float>(mu);
        var[c] = static_cast<float>(ss / M);
        if (var_unbiased)
            var_unbiased[c] = M > 1.0 ? static_cast<float>(ss / (M - 1.0)) : std::numeric_limits<float>::quiet_NaN();
    }
}
// As kernels::batch_norm_forward, in the textbook form (x − mean)·invstd·weight + bias.
inline void batch_norm_forward(float* y, const float* x, const float* mean, const float* invstd, const float* weight,
                               const float* bias, std::int64_t N, std::int64_t C, std::int64_t inner) {
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t i = 0; i < inner; ++i) {
                const std::int64_t k = (n * C + c) * inner + i;
                y[k] = static_cast<float>((static_cast<double>(x[k]) - mean[c]) * invstd[c] * (weight ? weight[c] : 1.0f) +
                                          (bias ? bias[c] : 0.0f));
            }
}
// As kernels::batch_norm_backward, via x̂ = (x − mean)·invstd: gx = w·invstd·(gy − mean(gy) − x̂·mean(gy·x̂)).
inline void batch_norm_backward(float* gx, float* gw, float* gb, const float* gy, const float* x, const float* mean,
                                const float* invstd, const float* weight, std::int64_t N, std::int64_t C,
                                std::int64_t inner, bool batch_stats) {
    const double M = static_cast<double>(N * inner);
    for (std::int64_t c = 0; c < C; ++c) {
        double s = 0.0, sx = 0.0;  // Σ gy, Σ gy·x̂
        for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t i = 0; i < inner; ++i) {
                const std::int64_t k = (n * C + c) * inner + i;
                s += gy[k];
                sx += gy[k] * ((static_cast<double>(x[k]) - mean[c]) * invstd[c]);
            }
        if (gb) gb[c] = static_cast<float>(s);
        if (gw) gw[c] = static_cast<float>(sx);
        if (!gx) continue;
        const double w = weight ? weight[c] : 1.0;
        for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t i = 0; i < inner; ++i) {
                const std::int64_t k = (n * C + c) * inner + i;
                const double xh = (static_cast<double>(x[k]) - mean[c]) * invstd[c];
                gx[k] = static_cast<float>(batch_stats ? w * invstd[c] * (gy[k] - s / M - xh * sx / M)
                                                       : w * invstd[c] * gy[k]);
            }
    }
}
}  // namespace ref

}  // namespace nanotorch::kernels
