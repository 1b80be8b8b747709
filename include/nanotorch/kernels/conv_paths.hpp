// nanotorch/kernels/conv_paths.hpp — the convolution paths chosen by shape: a direct depthwise
// kernel, a 1×1 path that is a plain GEMM on NCHW, and conv2d_forward_auto / conv2d_backward_auto,
// which pick one of them or the im2col + sgemm path of kernels/conv.hpp from the shape alone.
//
// Depthwise (groups == C > 1, any channel multiplier O/C): each output plane is a sum of kH·kW
// shifted copies of one input plane, one weight each. im2col + a GEMM with K = kH·kW would spend
// its time copying, so the kernel is direct. The zero-padded input plane is split into sH·sW
// phase sub-planes of hq × wq (space-to-depth: sub-plane (qh, qw) holds padded rows qh, qh + sH,
// ... and columns qw, qw + sW, ...), so that for every stride and dilation each tap reads one
// contiguous run of one sub-plane. The output plane is computed as one flat run at the sub-plane
// pitch wq (columns oW..wq−1 of each row are computed and dropped), which keeps SIMD vectors full
// even on 7×7 or 8×8 planes; kernels/simd.hpp's fma_taps keeps four vectors of outputs in
// registers across all taps. The input gradient is that gather run backwards: the output
// gradient laid out at pitch wq with zeros in the dropped columns and around it, each phase
// sub-plane of the padded input's gradient a sum of the taps of that phase (fma_taps again),
// then un-split. The weight gradient is one dot product per tap (dot_taps) between that gradient
// and the tap's run (its dropped columns are zeros, so they add 0·x: only a non-finite input
// element that no window reads could still reach grad_weight, as 0·inf = NaN).
//
// 1×1, stride 1, no padding (any groups): out[n] = W @ in[n] ([O, C] @ [C, H·W] per group) on the
// NCHW planes themselves, grad_in[n] = Wᵀ @ G[n], dW = Σ_n G[n] @ in[n]ᵀ: no im2col copy, no
// col2im, no scatter of a GEMM result.
//
// Determinism: every output element is written by one task in a fixed order. The depthwise
// forward spreads (image, channel) planes over parallel_for; its backward spreads channels, and
// within a channel adds the images in order. The 1×1 path runs one sgemm per image and group
// (bit-identical for any thread count, kernels/gemm.hpp) and sums its weight-gradient partials per
// chunk of images (detail::conv_chunk, shapes only) in chunk order. So results are bit-identical
// for every thread count. Not here: pooling, fused activations, and Winograd's 3×3/5×5 products
// (conv2d_forward_fused chooses those: kernels/winograd.hpp).
#pragma once

#include <algorithm>  // std::fill, std::min/max
#include <cstdint>
#include <memory>     // the pooled fallback's full-size output
#include <vector>     // per-call tap tables (one allocation per call, not per plane)

#include <nanotorch/config.hpp>
#include <nanotorch/kernels/conv.hpp>
#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels {

// ---- path choice ----

enum class ConvPath { gemm, pointwise, depthwise };

/// Which kernel conv2d_forward_auto / conv2d_backward_auto run for this shape: depthwise when every
/// group has one input channel (groups == channels > 1), pointwise for a 1×1 kernel with stride 1
/// and no padding, else im2col + sgemm per group.
inline ConvPath conv_path(std::int64_t channels, std::int64_t groups, const Window2d& w) {
    if (groups > 1 && groups == channels) return ConvPath::depthwise;
    if (w.kernel_h == 1 && w.kernel_w == 1 && detail::is_dense_window(w)) return ConvPath::pointwise;
    return ConvPath::gemm;
}

/// Whether a pointwise layer's forward runs pointwise_conv2d_forward (one GEMM per image and
/// group over the plane's len columns) rather than the general path (conv2d_forward_fused:
/// output channels in the lanes, or the direct product). The GEMM computes whole vectors of
/// columns on its small-N path (len up to 2·gemm_nr) and whole panels on its blocked path, so a
/// plane that fills them badly wastes its multiply-adds. Measured on AVX-512 (Zen 5, 1 thread,
/// forward alone at batch 64, -O3): where the GEMM kept less than 85 % of its columns the general
/// path was faster on every shape tried: 160 -> 64 on 9x9 1.22x, 128 -> 64 on 10x10 1.27x,
/// 64 -> 256 and 512 -> 128 on 7x7 1.13x and 1.28x, 96 -> 96 on 6x6 1.08x, 64 -> 128 on 5x5 1.3x,
/// 32 -> 64 on 3x3 1.64x, 256 -> 256 on 1x1 5.4x; where it kept more, the GEMM mostly was:
/// 256 -> 64 and 64 -> 256 on 8x8 1.26-1.33x, 128 -> 128 on 14x14 1.06x, 32 -> 128 on 28x28
/// 1.05x (but 128 -> 32 on 28x28 0.88x and 64 -> 64 on 12x12 0.92x). Elsewhere (AVX2, wasm,
/// scalar) not measured: always the GEMM. The input gradient, a 1×1 forward of the output
/// gradient, follows the same rule (conv2d_backward_auto); the weight gradient stays on the
/// pointwise kernels.
inline bool pointwise_forward_pays(std::int64_t og, std::int64_t cg, std::int64_t len) {
    if (simd_width < 16 || len <= 0) return true;
    const std::int64_t unit =
        detail::gemm_path(false, false, og, len, cg) == detail::GemmPath::small_n ? simd_width : gemm_nr;
    return 100 * len >= 85 * ((len + unit - 1) / unit * unit);
}

/// "gemm", "pointwise" or "depthwise" (bench output).
inline const char* conv_path_name(ConvPath p) {
    return p == ConvPath::depthwise ? "depthwise" : p == ConvPath::pointwise ? "pointwise" : "gemm";
}

// ---- depthwise ----

namespace detail {

// The phase-split geometry of one depthwise problem (see the file comment).
struct DwPlan {
    std::int64_t mult = 1, kk = 1;       // output channels per input channel; taps kH·kW
    std::int64_t sh = 1, sw = 1;         // phases = strides
    std::int64_t hq = 0, wq = 0, sub = 0;  // sub-plane extent and size
    std::int64_t flat = 0;               // (oH − 1)·wq + oW: flat outputs computed per plane
    std::int64_t flat_pad = 0, sub_pad = 0;  // flat and sub rounded up to whole SIMD vectors
    std::int64_t shift_max = 0;          // largest tap offset within a sub-plane
    std::vector<std::int64_t> base;      // per tap: start of its run in the split buffer
    std::vector<std::int64_t> phase;     // per tap: its sub-plane qh·sW + qw
    std::vector<std::int64_t> shift;     // per tap: its offset within the sub-plane
};

inline DwPlan dw_plan(std::int64_t channels, std::int64_t out_channels, const Window2d& w) {
    DwPlan p;
    p.mult = out_channels / channels;
    p.kk = w.kernel_h * w.kernel_w;
    p.sh = w.stride_h;
    p.sw = w.stride_w;
    // ceil(padded extent / stride): covers every row/column a window reads and every input element.
    p.hq = (w.in_h + 2 * w.pad_h + p.sh - 1) / p.sh;
    p.wq = (w.in_w + 2 * w.pad_w + p.sw - 1) / p.sw;
    p.sub = p.hq * p.wq;
    p.flat = w.out_h > 0 && w.out_w > 0 ? (w.out_h - 1) * p.wq + w.out_w : 0;
    // The fma_taps runs are rounded up to whole vectors (no scalar tail on small planes); the
    // extra outputs are dropped and the extra reads land in zeroed slack after the buffers.
    p.flat_pad = (p.flat + simd_width - 1) / simd_width * simd_width;
    p.sub_pad = (p.sub + simd_width - 1) / simd_width * simd_width;
    for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
        for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
            const std::int64_t dh = ki * w.dilation_h, dw = kj * w.dilation_w;
            const std::int64_t ph = (dh % p.sh) * p.sw + dw % p.sw, off = (dh / p.sh) * p.wq + dw / p.sw;
            p.phase.push_back(ph);
            p.shift.push_back(off);
            p.base.push_back(ph * p.sub + off);
            p.shift_max = std::max(p.shift_max, off);
        }
    return p;
}

// buf[(qh·sW + qw)·sub + rh·wq + j] = the zero-padded plane x at (rh·sH + qh, j·sW + qw).
inline void dw_split(float* buf, const float* x, const Window2d& w, const DwPlan& p) {
    for (std::int64_t qh = 0; qh < p.sh; ++qh)
        for (std::int64_t rh = 0; rh < p.hq; ++rh) {
            const std::int64_t ih = rh * p.sh + qh - w.pad_h;
            for (std::int64_t qw = 0; qw < p.sw; ++qw) {
                float* dst = buf + (qh * p.sw + qw) * p.sub + rh * p.wq;
                if (ih < 0 || ih >= w.in_h) {
                    std::fill(dst, dst + p.wq, 0.0f);
                    continue;
                }
                const float* src = x + ih * w.in_w;
                const std::int64_t off = qw - w.pad_w;  // column j reads src[j·sW + off]
                std::int64_t lo, hi;
                valid_outputs(off, p.sw, w.in_w, p.wq, lo, hi);
                std::fill(dst, dst + lo, 0.0f);
                if (p.sw == 1) {
                    if (lo < hi) copy_row(dst + lo, src + lo + off, hi - lo);
                } else {
                    for (std::int64_t j = lo; j < hi; ++j) dst[j] = src[j * p.sw + off];
                }
                std::fill(dst + hi, dst + p.wq, 0.0f);
            }
        }
}

// gi[ih, iw] = buf at padded (ih + pH, iw + pW): the inverse of dw_split on the input's extent,
// for a buffer whose sub-planes start every `pitch` floats.
inline void dw_unsplit(float* gi, const float* buf, std::int64_t pitch, const Window2d& w, const DwPlan& p) {
    for (std::int64_t ih = 0; ih < w.in_h; ++ih) {
        const std::int64_t rp = ih + w.pad_h;
        const float* rows = buf + (rp % p.sh) * p.sw * pitch + (rp / p.sh) * p.wq;
        float* dst = gi + ih * w.in_w;
        if (p.sw == 1) {
            copy_row(dst, rows + w.pad_w, w.in_w);
            continue;
        }
        for (std::int64_t iw0 = 0; iw0 < std::min(p.sw, w.in_w); ++iw0) {
            const std::int64_t cp = iw0 + w.pad_w;
            const float* src = rows + (cp % p.sw) * pitch + cp / p.sw;
            for (std::int64_t iw = iw0, j = 0; iw < w.in_w; iw += p.sw, ++j) dst[iw] = src[j];
        }
    }
}

// ext[0, shift_max + sub_pad) = one output-gradient plane at pitch wq starting at ext + shift_max,
// zeros before it, in the dropped columns oW..wq−1 and after it: every tap of the input-gradient
// gather then reads in bounds, and reads a zero wherever no output touches that input.
inline void dw_pad_grad(float* ext, const float* go, const Window2d& w, const DwPlan& p) {
    std::fill(ext, ext + p.shift_max, 0.0f);
    float* dst = ext + p.shift_max;
    for (std::int64_t oh = 0; oh < w.out_h; ++oh, dst += p.wq) {
        copy_row(dst, go + oh * w.out_w, w.out_w);
        std::fill(dst + w.out_w, dst + p.wq, 0.0f);
    }
    std::fill(dst, ext + p.shift_max + p.sub_pad, 0.0f);
}

// dw_split's buffer plus zeroed slack, so fma_taps may run flat_pad outputs.
inline float* dw_input_buffer(const DwPlan& p) {
    const std::int64_t n = p.sh * p.sw * p.sub, slack = p.flat_pad - p.flat;
    float* buf = scratch(Scratch::dw_input, n + slack);
    std::fill(buf + n, buf + n + slack, 0.0f);
    return buf;
}

}  // namespace detail

// out[N, O, oH, oW] = depthwise conv(in[N, C, H, W], weight[O, 1, kH, kW]) + bias[O] (bias may be
// null), O a multiple of C: output channel o reads input channel o / (O/C). Each output is
// bias + Σ taps in (ki, kj) order, fused multiply-adds (kernels/simd.hpp fma_taps). Planes spread
// over parallel_for; bit-identical for every thread count.
inline void depthwise_conv2d_forward(float* out, const float* in, const float* weight, const float* bias,
                                     std::int64_t batch, std::int64_t channels, std::int64_t out_channels,
                                     const Window2d& w) {
    const std::int64_t len = w.out_plane();
    if (batch <= 0 || channels <= 0 || len <= 0) return;
    const detail::DwPlan p = detail::dw_plan(channels, out_channels, w);
    const bool direct = p.wq == w.out_w && p.flat == p.flat_pad;  // the flat run is the output plane
    parallel_for(0, batch * channels, detail::plane_grain(w), [&](std::int64_t b0, std::int64_t b1) {
        float* buf = detail::dw_input_buffer(p);  // its slack stays zero: dw_split writes before it
        float* flat = direct ? nullptr : detail::scratch(detail::Scratch::dw_work, p.flat_pad);
        std::vector<const float*> src(static_cast<std::size_t>(p.kk));
        for (std::int64_t pc = b0; pc < b1; ++pc) {
            const std::int64_t n = pc / channels, c = pc % channels;
            detail::dw_split(buf, in + pc * w.in_plane(), w, p);
            for (std::int64_t t = 0; t < p.kk; ++t) src[static_cast<std::size_t>(t)] = buf + p.base[static_cast<std::size_t>(t)];
            for (std::int64_t o = c * p.mult; o < (c + 1) * p.mult; ++o) {
                float* dst = out + (n * out_channels + o) * len;
                fma_taps(direct ? dst : flat, src.data(), weight + o * p.kk, p.kk, bias ? bias[o] : 0.0f, p.flat_pad);
                if (!direct)
                    for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                        detail::copy_row(dst + oh * w.out_w, flat + oh * p.wq, w.out_w);
            }
        }
    });
}

// Gradients of depthwise_conv2d_forward given grad_out[N, O, oH, oW]; each output is overwritten
// and may be null (`in` is read only for grad_weight, `weight` only for grad_in). Channels are
// spread over parallel_for; within a channel the images are added in order (grad_weight[o, t] +=
// dot_taps per image, grad_bias[o] += sum per image), so results are bit-identical for every
// thread count.
inline void depthwise_conv2d_backward(float* grad_in, float* grad_weight, float* grad_bias, const float* grad_out,
                                      const float* in, const float* weight, std::int64_t batch, std::int64_t channels,
                                      std::int64_t out_channels, const Window2d& w) {
    const std::int64_t len = w.out_plane();
    const std::int64_t kk = w.kernel_h * w.kernel_w;
    if (grad_weight) std::fill(grad_weight, grad_weight + out_channels * kk, 0.0f);
    if (grad_bias) std::fill(grad_bias, grad_bias + out_channels, 0.0f);
    if (grad_in && len <= 0) std::fill(grad_in, grad_in + batch * channels * w.in_plane(), 0.0f);
    if (batch <= 0 || channels <= 0 || len <= 0) return;
    const detail::DwPlan p = detail::dw_plan(channels, out_channels, w);
    const std::int64_t ext = p.shift_max + p.sub_pad;  // one zero-padded gradient plane (dw_pad_grad)
    parallel_for(0, channels, 1, [&](std::int64_t c0, std::int64_t c1) {
        float* buf = grad_weight ? detail::dw_input_buffer(p) : nullptr;
        float* gext = detail::scratch(detail::Scratch::dw_grad, p.mult * ext);
        float* gbuf = grad_in ? detail::scratch(detail::Scratch::dw_work, p.sh * p.sw * p.sub_pad) : nullptr;
        std::vector<const float*> src(static_cast<std::size_t>(p.mult * p.kk));
        std::vector<float> wts(static_cast<std::size_t>(p.mult * p.kk)), part(static_cast<std::size_t>(p.kk));
        for (std::int64_t c = c0; c < c1; ++c)
            for (std::int64_t n = 0; n < batch; ++n) {
                const std::int64_t pc = n * channels + c;
                for (std::int64_t m = 0; m < p.mult; ++m) {
                    const std::int64_t o = c * p.mult + m;
                    const float* go = grad_out + (n * out_channels + o) * len;
                    detail::dw_pad_grad(gext + m * ext, go, w, p);
                    if (grad_bias) grad_bias[o] += sum(go, len);
                }
                if (grad_weight) {
                    detail::dw_split(buf, in + pc * w.in_plane(), w, p);
                    for (std::int64_t t = 0; t < p.kk; ++t)
                        src[static_cast<std::size_t>(t)] = buf + p.base[static_cast<std::size_t>(t)];
                    for (std::int64_t m = 0; m < p.mult; ++m) {
                        dot_taps(part.data(), gext + m * ext + p.shift_max, src.data(), p.kk, p.flat);
                        float* gw = grad_weight + (c * p.mult + m) * p.kk;
                        for (std::int64_t t = 0; t < p.kk; ++t) gw[t] += part[static_cast<std::size_t>(t)];
                    }
                }
                if (!grad_in) continue;
                for (std::int64_t ph = 0; ph < p.sh * p.sw; ++ph) {  // one phase sub-plane at a time
                    std::int64_t count = 0;
                    for (std::int64_t m = 0; m < p.mult; ++m)
                        for (std::int64_t t = 0; t < p.kk; ++t) {
                            if (p.phase[static_cast<std::size_t>(t)] != ph) continue;
                            src[static_cast<std::size_t>(count)] =
                                gext + m * ext + p.shift_max - p.shift[static_cast<std::size_t>(t)];
                            wts[static_cast<std::size_t>(count++)] = weight[(c * p.mult + m) * p.kk + t];
                        }
                    fma_taps(gbuf + ph * p.sub_pad, src.data(), wts.data(), count, 0.0f, p.sub_pad);
                }
                detail::dw_unsplit(grad_in + pc * w.in_plane(), gbuf, p.sub_pad, w, p);
            }
    });
}

// ---- 1×1 (pointwise) ----

// out[n, g's rows] = weight_g[O/groups, C/groups] @ in[n, g's channels][C/groups, H·W] + bias, one
// sgemm per image and group written straight into the output planes. For a 1×1 kernel, stride
// 1, no padding (conv_path == pointwise). Images spread over parallel_for (one image: sgemm
// splits its own rows); bit-identical for every thread count.
inline void pointwise_conv2d_forward(float* out, const float* in, const float* weight, const float* bias,
                                     std::int64_t batch, std::int64_t channels, std::int64_t out_channels,
                                     const Window2d& w, std::int64_t groups = 1) {
    const std::int64_t len = w.out_plane(), cg = channels / groups, og = out_channels / groups;
    if (batch <= 0 || len <= 0 || out_channels <= 0) return;
    parallel_for(0, batch, 1, [&](std::int64_t n0, std::int64_t n1) {
        for (std::int64_t n = n0; n < n1; ++n)
            for (std::int64_t g = 0; g < groups; ++g) {
                float* dst = out + (n * out_channels + g * og) * len;
                sgemm(false, false, og, len, cg, 1.0f, weight + g * og * cg, cg, in + (n * channels + g * cg) * len, len,
                      0.0f, dst, len);
                if (bias)
                    for (std::int64_t o = 0; o < og; ++o) add_scalar(dst + o * len, dst + o * len, bias[g * og + o], len);
            }
    });
}

// Gradients of pointwise_conv2d_forward (each overwritten, any may be null):
//   grad_in[n, g] = weight_gᵀ @ G[n, g]                (one sgemm per image and group, in place)
//   dW_chunk      = Σ_{n in chunk} G[n, g] @ in[n, g]ᵀ  (sgemm accumulating with beta = 1)
//   grad_weight   = Σ_chunks dW_chunk, grad_bias likewise, added in chunk order.
// Chunks (detail::conv_chunk) depend on the shapes only: bit-identical for every thread count.
inline void pointwise_conv2d_backward(float* grad_in, float* grad_weight, float* grad_bias, const float* grad_out,
                                      const float* in, const float* weight, std::int64_t batch, std::int64_t channels,
                                      std::int64_t out_channels, const Window2d& w, std::int64_t groups = 1) {
    const std::int64_t len = w.out_plane(), cg = channels / groups, og = out_channels / groups;
    const std::int64_t wnum = out_channels * cg;
    const bool reduce = grad_weight != nullptr || grad_bias != nullptr;
    if (grad_weight) std::fill(grad_weight, grad_weight + wnum, 0.0f);
    if (grad_bias) std::fill(grad_bias, grad_bias + out_channels, 0.0f);
    if (grad_in && (len <= 0 || out_channels <= 0)) std::fill(grad_in, grad_in + batch * channels * len, 0.0f);
    if (batch <= 0 || len <= 0 || out_channels <= 0) return;
    if (grad_in)
        parallel_for(0, batch, 1, [&](std::int64_t n0, std::int64_t n1) {
            for (std::int64_t n = n0; n < n1; ++n)
                for (std::int64_t g = 0; g < groups; ++g)
                    sgemm(true, false, cg, len, og, 1.0f, weight + g * og * cg, cg,
                          grad_out + (n * out_channels + g * og) * len, len, 0.0f,
                          grad_in + (n * channels + g * cg) * len, len);
        });
    if (!reduce) return;
    const std::int64_t chunk = detail::conv_chunk(cg, len);
    const std::int64_t chunks = (batch + chunk - 1) / chunk;
    const std::int64_t stride = wnum + out_channels;  // one chunk's partial: [weight grads | bias grads]
    const std::int64_t block = std::max<std::int64_t>(1, std::min(chunks, detail::conv_partial_budget / stride));
    float* partial = detail::scratch(detail::Scratch::conv_partials, std::min(block, chunks) * stride);
    for (std::int64_t b0 = 0; b0 < chunks; b0 += block) {
        const std::int64_t b1 = std::min(chunks, b0 + block);
        parallel_for(b0, b1, 1, [&](std::int64_t c0, std::int64_t c1) {
            for (std::int64_t c = c0; c < c1; ++c) {
                float* part = partial + (c - b0) * stride;
                const std::int64_t n0 = c * chunk, n1 = std::min(batch, n0 + chunk);
                for (std::int64_t n = n0; n < n1; ++n) {
                    const float* g = grad_out + n * out_channels * len;
                    if (grad_weight)
                        for (std::int64_t gr = 0; gr < groups; ++gr)
                            sgemm(false, true, og, cg, len, 1.0f, g + gr * og * len, len,
                                  in + (n * channels + gr * cg) * len, len, n == n0 ? 0.0f : 1.0f,
                                  part + gr * og * cg, cg);
                    if (grad_bias)
                        for (std::int64_t o = 0; o < out_channels; ++o) {
                            const float s = sum(g + o * len, len);
                            part[wnum + o] = n == n0 ? s : part[wnum + o] + s;
                        }
                }
            }
        });
        for (std::int64_t c = b0; c < b1; ++c) {
            const float* part = partial + (c - b0) * stride;
            if (grad_weight) add(grad_weight, grad_weight, part, wnum);
            if (grad_bias) add(grad_bias, grad_bias, part + wnum, out_channels);
        }
    }
}

// ---- by shape ----

// Floats of conv_pack_weight's packing of weight [out_channels, channels/groups, kH, kW] for
// windows with w's kernel, strides, padding and dilation (its extents are not read): 0 where no
// such window can take the path that reads it (conv2d_forward_fused's output channels in vector
// lanes: AVX-512 and AVX2 builds, 16 or more taps per output, the im2col/direct path).
inline std::int64_t conv_packed_weight_floats(std::int64_t channels, std::int64_t out_channels, const Window2d& w,
                                              std::int64_t groups) {
    const std::int64_t ckk = channels / groups * w.kernel_h * w.kernel_w;
    if (!detail::has_conv_lanes || ckk < 16 || conv_path(channels, groups, w) != ConvPath::gemm) return 0;
    return groups * detail::lanes_packed_floats(out_channels / groups, ckk);
}
// The weight packed once for conv2d_forward_auto_fused's packed_weight, for a caller that runs
// the same weight many times (the ONNX runtime's Conv initializers): dst holds
// conv_packed_weight_floats (non-zero) floats, 64-byte aligned; the groups one after another.
inline void conv_pack_weight(float* dst, const float* weight, std::int64_t channels, std::int64_t out_channels,
                             const Window2d& w, std::int64_t groups) {
    const std::int64_t og = out_channels / groups, ckk = channels / groups * w.kernel_h * w.kernel_w;
    for (std::int64_t g = 0; g < groups; ++g)
        detail::conv_lanes_pack(dst + g * detail::lanes_packed_floats(og, ckk), weight + g * og * ckk, og, ckk);
}

// conv2d forward (weight [O, C/groups, kH, kW], bias [O] or null) on the path conv_path picks
// (a pointwise layer on the general path where pointwise_forward_pays says no),
// then `epi` on every output plane (ConvEpilogue; with max_pool2x2, out holds the pooled planes).
// packed_weight: null, or the weight as conv_pack_weight packed it.
NANOTORCH_KERNEL_API void conv2d_forward_auto_fused(float* out, const float* in, const float* weight, const float* bias,
                                                    std::int64_t batch, std::int64_t channels, std::int64_t out_channels,
                                                    const Window2d& w, std::int64_t groups, const ConvEpilogue& epi,
                                                    const float* packed_weight = nullptr)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    ConvPath path = conv_path(channels, groups, w);
    if (path == ConvPath::pointwise && !pointwise_forward_pays(out_channels / groups, channels / groups, w.out_plane()))
        path = ConvPath::gemm;
    if (epi.max_pool2x2 && path != ConvPath::gemm) {
        // These paths finish the output in a pass of their own: the full output first, then each
        // plane pooled (and relu'd) into out.
        const std::int64_t len = w.out_plane(), planes = batch * out_channels;
        const std::unique_ptr<float[]> full(new float[static_cast<std::size_t>(planes * len)]);  // all written
        ConvEpilogue first = epi;
        first.max_pool2x2 = false;
        first.relu = epi.relu && epi.relu_before_pool;
        conv2d_forward_auto_fused(full.get(), in, weight, bias, batch, channels, out_channels, w, groups, first);
        const Window2d pool = detail::pool2x2_window(w);
        parallel_for(0, planes, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, len)),
                     [&](std::int64_t p0, std::int64_t p1) {
                         for (std::int64_t p = p0; p < p1; ++p)
                             detail::pool_finished_plane(out + p * pool.out_plane(), full.get() + p * len, pool,
                                                         detail::relu_after_pool(epi));
                     });
        return;
    }
    switch (path) {
        case ConvPath::depthwise:
            depthwise_conv2d_forward(out, in, weight, bias, batch, channels, out_channels, w);
            detail::apply_conv_epilogue(out, batch, out_channels, w.out_plane(), epi);
            return;
        case ConvPath::pointwise:
            pointwise_conv2d_forward(out, in, weight, bias, batch, channels, out_channels, w, groups);
            detail::apply_conv_epilogue(out, batch, out_channels, w.out_plane(), epi);
            return;
        case ConvPath::gemm:  // applies the epilogue to each plane as it writes it
            conv2d_forward_fused(out, in, weight, bias, batch, channels, out_channels, w, groups, epi, packed_weight);
            return;
    }
}
#endif

// conv2d_forward_auto_fused with no epilogue: the plain convolution on the path conv_path picks.
NANOTORCH_KERNEL_API void conv2d_forward_auto(float* out, const float* in, const float* weight, const float* bias,
                                              std::int64_t batch, std::int64_t channels, std::int64_t out_channels,
                                              const Window2d& w, std::int64_t groups = 1)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    conv2d_forward_auto_fused(out, in, weight, bias, batch, channels, out_channels, w, groups, ConvEpilogue{});
}
#endif

// conv2d backward on the path conv_path picks (same contract as conv2d_backward).
NANOTORCH_KERNEL_API void conv2d_backward_auto(float* grad_in, float* grad_weight, float* grad_bias, const float* grad_out,
                                               const float* in, const float* weight, std::int64_t batch, std::int64_t channels,
                                               std::int64_t out_channels, const Window2d& w, std::int64_t groups = 1)
#if !NANOTORCH_KERNEL_BODIES
    ;
#else
{
    switch (conv_path(channels, groups, w)) {
        case ConvPath::depthwise:
            depthwise_conv2d_backward(grad_in, grad_weight, grad_bias, grad_out, in, weight, batch, channels,
                                      out_channels, w);
            return;
        case ConvPath::pointwise: {
            const std::int64_t cg = channels / groups, og = out_channels / groups;
            if (grad_in && out_channels > 0 && !pointwise_forward_pays(cg, og, w.out_plane())) {
                // grad_in = weightᵀ · grad_out per image and group is itself a 1×1 forward (og ->
                // cg channels), and where the GEMM fills its columns badly the general path runs
                // it faster, as for the forward: 64 -> 256 on 7x7 1.41x, 128 -> 512 on 7x7 1.3x,
                // 64 -> 128 on 5x5 1.29x, 128 -> 64 on 10x10 1.03x, 160 -> 64 on 9x9 0.97x (Zen 5,
                // 1 thread, batch 64, -O3).
                conv2d_forward(grad_in, grad_out, detail::input_grad_weight(weight, channels, out_channels, 1, groups),
                               nullptr, batch, out_channels, channels, w, groups);
                grad_in = nullptr;
                if (!grad_weight && !grad_bias) return;
            }
            pointwise_conv2d_backward(grad_in, grad_weight, grad_bias, grad_out, in, weight, batch, channels,
                                      out_channels, w, groups);
            return;
        }
        case ConvPath::gemm:
            conv2d_backward(grad_in, grad_weight, grad_bias, grad_out, in, weight, batch, channels, out_channels, w,
                            groups);
            return;
    }
}
#endif

}  // namespace nanotorch::kernels
