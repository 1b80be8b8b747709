// nanotorch/kernels/conv.hpp — raw-pointer kernels for 2-D convolution (NCHW): conv2d forward
// (with an inference epilogue, ConvEpilogue) and backward.
//
// The forward computes each chunk of images' product in one of four ways, chosen from the
// shapes alone: im2col + one kernels::sgemm (kernels/im2col.hpp), or without materialising
// im2col, either as GEMM panels packed from the images or as the direct product that reads them
// in place (kernels/implicit_gemm.hpp), with output pixels in the vector lanes or, on AVX-512,
// output channels (kernels/conv_lanes.hpp); those three give the blocked GEMM's result bit for
// bit. Before them all, 3×3 and 5×5 stride-1 layers with enough channels run by Winograd's
// F(2×2, r×r) (kernels/winograd.hpp: 2.25 and 2.8 times fewer multiply-adds, not the GEMM's
// bits; its tests state the bound it keeps to the direct reference). The sliding-window
// geometry (Window2d, make_window) is kernels/window.hpp. kernels::ref holds a direct
// (non-im2col) conv2d forward/backward that tests use as the oracle. It deliberately knows
// nothing of Tensor or autograd (ops/conv.hpp validates shapes and records the graph), so the
// kernels can be validated and timed on raw buffers. Grouped convolution (weight
// [O, C/groups, kH, kW]) runs the same product per group, reading each group's channels and
// weight rows in place; the depthwise and 1×1 paths chosen by shape are in kernels/conv_paths.hpp.
// Arguments are ordered outputs, inputs, then sizes (llm.c style). Pooling is in kernels/pool.hpp.
//
// Why chunks: one GEMM per image gives a layer with an 8×8 output an N of only 64 columns, too
// narrow for a GEMM to run well; laying the im2col columns of several images side by side
// (detail::conv_chunk, kernels/conv_chunks.hpp) gives N ≈ 2048 while the columns still fit in L2.
//
// Determinism: every kernel here writes each output element from a fixed serial order of
// additions. conv2d spreads whole chunks of images over parallel_for (each output written by
// exactly one chunk); the chunking depends on the shapes only, and the weight/bias gradients are
// per-chunk partials summed in chunk order. So results are bit-identical for every thread count.
#pragma once

#include <algorithm>  // std::min/max/fill
#include <cstdint>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/im2col.hpp>         // im2col, col2im, pad_planes
#include <nanotorch/kernels/conv_lanes.hpp>     // the direct product with channels in the lanes
#include <nanotorch/kernels/implicit_gemm.hpp>  // the products that read the images in place
#include <nanotorch/kernels/conv_chunks.hpp>    // conv_chunk and the weight-gradient drivers
#include <nanotorch/kernels/input_grad_phases.hpp>  // dX of strided windows, phase by phase
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/pool.hpp>           // the pooled epilogue's 2×2 plane kernel
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/window.hpp>         // Window2d, make_window
#include <nanotorch/kernels/winograd.hpp>       // 3×3 and 5×5 stride-1 products by F(2×2, r×r)
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels {

// ---- direct convolution (test oracle) ----

namespace ref {
// out[N, O, oH, oW] = bias[O] + Σ_{c,ki,kj} in[N, C, H, W] · weight[O, C/groups, kH, kW] at the
// window positions, c running over the input channels of o's group (channels and out_channels
// are multiples of groups), accumulated in double so it is a sharper oracle than any float32
// path. bias may be null (no bias).
inline void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, std::int64_t batch,
                           std::int64_t channels, std::int64_t out_channels, const Window2d& w,
                           std::int64_t groups = 1) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
    for (std::int64_t n = 0; n < batch; ++n)
        for (std::int64_t o = 0; o < out_channels; ++o)
            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                    double acc = bias ? bias[o] : 0.0;
                    for (std::int64_t c = 0; c < cg; ++c)
                        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                                const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
                                const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
                                if (ih < 0 || ih >= w.in_h || iw < 0 || iw >= w.in_w) continue;
                                const std::int64_t ic = o / og * cg + c;
                                acc += static_cast<double>(in[((n * channels + ic) * w.in_h + ih) * w.in_w + iw]) *
                                       weight[((o * cg + c) * w.kernel_h + ki) * w.kernel_w + kj];
                            }
                    out[((n * out_channels + o) * w.out_h + oh) * w.out_w + ow] = static_cast<float>(acc);
                }
}

// Gradients of conv2d_forward given grad_out[N, O, oH, oW], each written as a gather (one sum
// per output element, in double), independent of the im2col/col2im formulation it checks:
//   grad_in[N, C, H, W], grad_weight[O, C/groups, kH, kW], grad_bias[O]; any of them may be null.
inline void conv2d_backward(float* grad_in, float* grad_weight, float* grad_bias, const float* grad_out,
                            const float* in, const float* weight, std::int64_t batch, std::int64_t channels,
                            std::int64_t out_channels, const Window2d& w, std::int64_t groups = 1) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
    const auto go = [&](std::int64_t n, std::int64_t o, std::int64_t oh, std::int64_t ow) {
        return static_cast<double>(grad_out[((n * out_channels + o) * w.out_h + oh) * w.out_w + ow]);
    };
    if (grad_bias)
        for (std::int64_t o = 0; o < out_channels; ++o) {
            double acc = 0.0;
            for (std::int64_t n = 0; n < batch; ++n)
                for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                    for (std::int64_t ow = 0; ow < w.out_w; ++ow) acc += go(n, o, oh, ow);
            grad_bias[o] = static_cast<float>(acc);
        }
    if (grad_weight)
        for (std::int64_t o = 0; o < out_channels; ++o)
            for (std::int64_t c = 0; c < cg; ++c)
                for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                    for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                        double acc = 0.0;
                        for (std::int64_t n = 0; n < batch; ++n)
                            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                                for (std::int64_t ow = 0; ow < w.out_w; ++ow) {
                                    const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
                                    const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
                                    if (ih < 0 || ih >= w.in_h || iw < 0 || iw >= w.in_w) continue;
                                    const std::int64_t ic = o / og * cg + c;
                                    acc += go(n, o, oh, ow) * in[((n * channels + ic) * w.in_h + ih) * w.in_w + iw];
                                }
                        grad_weight[((o * cg + c) * w.kernel_h + ki) * w.kernel_w + kj] = static_cast<float>(acc);
                    }
    if (grad_in)
        for (std::int64_t n = 0; n < batch; ++n)
            for (std::int64_t c = 0; c < channels; ++c)
                for (std::int64_t ih = 0; ih < w.in_h; ++ih)
                    for (std::int64_t iw = 0; iw < w.in_w; ++iw) {
                        double acc = 0.0;
                        // Output (oh, ow) reads (ih, iw) through tap (ki, kj) iff oh·s − p + k·d = i.
                        for (std::int64_t o = c / cg * og; o < (c / cg + 1) * og; ++o)
                            for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
                                const std::int64_t th = ih + w.pad_h - ki * w.dilation_h;
                                if (th < 0 || th % w.stride_h != 0 || th / w.stride_h >= w.out_h) continue;
                                for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
                                    const std::int64_t tw = iw + w.pad_w - kj * w.dilation_w;
                                    if (tw < 0 || tw % w.stride_w != 0 || tw / w.stride_w >= w.out_w) continue;
                                    acc += go(n, o, th / w.stride_h, tw / w.stride_w) *
                                           weight[((o * cg + c % cg) * w.kernel_h + ki) * w.kernel_w + kj];
                                }
                            }
                        grad_in[((n * channels + c) * w.in_h + ih) * w.in_w + iw] = static_cast<float>(acc);
                    }
}
}  // namespace ref

// ---- what inference fuses into a convolution's output ----

/// Per-channel work applied to each output plane right after the convolution writes it, while it
/// is in cache: plane (n, o) ← relu?(plane · scale[o] + shift[o] + residual plane (n, o))
/// (scale_shift when scale is non-null, the residual's add when residual is non-null, then
/// relu_forward when relu is set). All are elementwise kernels run on whole planes, as
/// batch_norm_forward (eval), add and relu run them on the separate output (add and relu are
/// exact per element, so how a pass splits the tensor does not matter), so the result is theirs
/// bit for bit; the ONNX runtime fuses Conv → BatchNormalization → Add → Relu with it.
/// With max_pool2x2 (and no residual), each finished plane is max-pooled with a 2×2 window and
/// stride 2 (max_pool2d_forward's windows and values), so that `out` holds the pooled planes
/// [N, O, oH/2, oW/2], the convolution's full output never written out; the relu follows the
/// pool (conv → max_pool2d(2) → relu, LeNet's block), or precedes it with relu_before_pool
/// (conv → relu → max_pool2d(2), VGG's). The two orders differ where a window holds a NaN: relu
/// turns it into 0, the pool keeps it.
struct ConvEpilogue {
    const float* scale = nullptr;  // [O], with shift; null: no affine map
    const float* shift = nullptr;
    const float* residual = nullptr;  // [N, O, oH, oW] like the output; null: nothing added
    bool residual_first = false;      // residual + y rather than y + residual (the graph's operand order)
    bool max_pool2x2 = false;         // pool each plane 2×2, stride 2 (not with a residual)
    bool relu = false;                // pooled: after the pool, unless relu_before_pool
    bool relu_before_pool = false;
    bool active() const { return scale != nullptr || residual != nullptr || relu || max_pool2x2; }
    /// Output plane `p` (= n·O + o) of channel o, `len` floats.
    void apply(float* plane, std::int64_t p, std::int64_t o, std::int64_t len) const {
        if (residual)
            affine_residual(plane, plane, residual + p * len, scale != nullptr, scale ? scale[o] : 1.0f,
                            scale ? shift[o] : 0.0f, residual_first, relu, len);
        else if (scale && relu) scale_shift_relu(plane, plane, scale[o], shift[o], len);  // one pass, same values
        else if (scale) scale_shift(plane, plane, scale[o], shift[o], len);
        else if (relu) relu_forward(plane, plane, len);
    }
};

namespace detail {
// What conv2d_forward_fused's products apply as they store output channel `channel` onward, the
// residual read from its value `at` onward (ref::ConvFinish).
inline ref::ConvFinish finish_from(const ConvEpilogue& epi, const float* bias, std::int64_t channel, std::int64_t at) {
    ref::ConvFinish f;
    f.bias = bias ? bias + channel : nullptr;
    if (epi.scale) f.scale = epi.scale + channel, f.shift = epi.shift + channel;
    f.residual = epi.residual ? epi.residual + at : nullptr;
    f.residual_first = epi.residual_first;
    f.relu = epi.relu && (!epi.max_pool2x2 || epi.relu_before_pool);  // else pool_finished_plane's
    return f;
}
// Whether a pooled epilogue applies its relu after the pool (pool_finished_plane).
inline bool relu_after_pool(const ConvEpilogue& epi) { return epi.max_pool2x2 && epi.relu && !epi.relu_before_pool; }
// The 2×2 stride-2 pooling window over a convolution's output planes (ConvEpilogue::max_pool2x2).
inline Window2d pool2x2_window(const Window2d& conv) {
    return make_window(conv.out_h, conv.out_w, 2, 2, 2, 2, 0, 0);
}
// A finished output plane `src` (bias, affine map, a relu before the pool) pooled into dst, then relu'd when
// the epilogue asks: the last two steps of a pooled epilogue, as max_pool2d_forward and
// relu_forward compute them.
inline void pool_finished_plane(float* dst, const float* src, const Window2d& pool, bool relu) {
    max_pool2x2_values(dst, src, pool);
    if (relu) relu_forward(dst, dst, pool.out_plane());
}
// The epilogue over every plane of out[N, O, len], planes spread over the pool (for the paths
// that do not apply it as they write).
inline void apply_conv_epilogue(float* out, std::int64_t batch, std::int64_t out_channels, std::int64_t len,
                                const ConvEpilogue& epi) {
    if (!epi.active()) return;
    parallel_for(0, batch * out_channels, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, len)),
                 [&](std::int64_t p0, std::int64_t p1) {
                     for (std::int64_t p = p0; p < p1; ++p) epi.apply(out + p * len, p, p % out_channels, len);
                 });
}
}  // namespace detail

// ---- conv2d forward: a chunk of images per product ----

// out[N, O, oH, oW] = conv(in[N, C, H, W], weight[O, C/groups, kH, kW]) + bias[O]; bias may be
// null. Per chunk of images (detail::conv_chunk) and per group g (its C/groups input channels and
// O/groups weight rows, read in place): col[(C/groups)·kH·kW, chunk·oH·oW] = the images' im2col
// side by side, Y[O/groups, chunk·oH·oW] = weight_g @ col in one sgemm, then out[n, o] =
// Y[o, n's columns] + bias[o]. Chunks are spread over parallel_for (sgemm inside a chunk runs serially; with a single
// chunk it splits its own rows). Each output is one GEMM dot product over C·kH·kW in sgemm's
// fixed order plus the bias, so the result does not depend on the thread count. Scratch buffers
// are per thread and reused (kernels/workspace.hpp). Then `epi` on each output plane as it is
// written (ConvEpilogue; conv2d_forward passes none; with max_pool2x2 out is [N, O, oH/2, oW/2]
// and oH, oW must be at least 2). `packed_weight`, when given, is the weight
// as conv_pack_weight (kernels/conv_paths.hpp) packed it, read where the lanes path runs instead
// of packing the weight again on this call. Where detail::winograd_pays (3×3 or 5×5, stride 1),
// the whole batch runs by F(2×2, r×r) instead, in blocks of tiles fixed by the shape
// (kernels/winograd.hpp), each block's rows finished with the bias and the epilogue.
inline void conv2d_forward_fused(float* out, const float* in, const float* weight, const float* bias,
                                 std::int64_t batch, std::int64_t channels, std::int64_t out_channels,
                                 const Window2d& w, std::int64_t groups, const ConvEpilogue& epi,
                                 const float* packed_weight = nullptr) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
    const std::int64_t ckk = cg * w.kernel_h * w.kernel_w;
    const std::int64_t len = w.out_plane();
    if (batch <= 0 || len <= 0 || out_channels <= 0) return;
    // With a pooled epilogue, out holds the pooled planes (olen floats each); each finished plane
    // is pooled from a per-thread buffer while it is in cache.
    const bool pooled = epi.max_pool2x2;
    const Window2d pool = detail::pool2x2_window(w);
    const std::int64_t olen = pooled ? pool.out_plane() : len;
    if (detail::winograd_pays(cg, og, w, batch)) {
        // 3×3 or 5×5, stride 1, wide enough: F(2×2, r×r) (kernels/winograd.hpp), each block's rows
        // finished (bias, then the epilogue) as they are stored; pooled, the rows come in pairs
        // from an even row (2×2 tiles), so each block's rows pool on their own.
        float* u = detail::scratch(detail::Scratch::winograd_weight, detail::winograd_positions(w.kernel_h) * og * cg);
        for (std::int64_t g = 0; g < groups; ++g) {
            detail::winograd_weights(u, weight + g * og * ckk, og, cg, w.kernel_h);
            detail::conv_winograd(
                u, og, cg, in + g * cg * w.in_plane(), channels * w.in_plane(), batch, w,
                [&](std::int64_t n, std::int64_t o, std::int64_t row0, std::int64_t rows, float* src) {
                    const std::int64_t c = g * og + o, p = n * out_channels + c;
                    if (pooled) {
                        kernels::finish_rows(src, src, w.out_w, rows, w.out_w, detail::finish_from(epi, bias, c, 0));
                        if (rows >= 2)
                            detail::pool_finished_plane(out + p * olen + row0 / 2 * pool.out_w, src,
                                                        make_window(rows, w.out_w, 2, 2, 2, 2, 0, 0),
                                                        detail::relu_after_pool(epi));
                        return;
                    }
                    const std::int64_t at = p * len + row0 * w.out_w;
                    kernels::finish_rows(out + at, src, w.out_w, rows, w.out_w, detail::finish_from(epi, bias, c, at));
                });
        }
        return;
    }
    const std::int64_t chunk = detail::conv_chunk(ckk, len);
    // Four ways to the same product, chosen from the shapes alone (so the same for every thread
    // count): the direct path (detail::conv_direct_product) where it pays; else, where sgemm would
    // run its blocked path on the im2col matrix and the output rows are whole panels, that GEMM
    // with its B panels packed from the images (detail::ConvColumns); else im2col + sgemm. The
    // offset tables are built once here, by the calling thread, and only read by the tasks.
    // And before all three, the direct product with output channels in the lanes
    // (detail::conv_lanes_product), where it keeps more of its multiply-adds than the direct path
    // would, or where a short K leaves the GEMMs mostly copying (detail::lanes_conv_pays). It
    // writes straight to out and finds each pixel's offset itself, so it reads a strided window
    // from plain padded planes, and an unpadded one from the images in place. The direct path
    // reads its planes zero-padded (pad_planes), split by phase for a strided window
    // (phase_planes), or, where few of a padded row's columns are outputs, copied once per kernel
    // column and cut to the output's width (shifted_planes: its columns are then the outputs).
    const bool direct_pays = detail::direct_conv_pays(og, ckk, w, chunk);
    const bool lanes = detail::lanes_conv_pays(og, ckk, w, direct_pays);
    const bool direct = direct_pays && !lanes;
    const bool shifted = direct && detail::shifted_columns_pay(og, ckk, w);  // shifted_planes, not pad_planes
    const bool packed_from_images = !direct && !lanes && detail::implicit_im2col_pays(ckk, w);
    const bool pad = w.pad_h > 0 || w.pad_w > 0;
    const bool copy = direct || pad;  // read the images from zero-padded copies (phase planes if strided)
    const bool phases = direct && (w.stride_h > 1 || w.stride_w > 1);
    const std::int64_t sh = phases ? w.stride_h : 1, sw = phases ? w.stride_w : 1;  // phases per axis
    const std::int64_t pitch = shifted ? w.out_w : (w.in_w + 2 * w.pad_w + sw - 1) / sw;
    const std::int64_t rows = (w.in_h + 2 * w.pad_h + sh - 1) / sh;
    const std::int64_t plane = (shifted ? w.kernel_w : sh * sw) * rows * pitch;  // one channel's planes
    const std::int64_t image_stride = copy ? cg * plane : channels * w.in_plane();
    const std::int64_t ylen = direct && !shifted ? detail::pitched_columns(w) : len;  // product columns per image
    std::int64_t* row_off = direct || lanes || packed_from_images ? detail::offset_table(0, ckk) : nullptr;
    if (row_off) {
        // Tap (ci, ki, kj) sits at ci·plane + hpart(ki) + wpart(kj): the row and column parts are
        // found once per ki and per kj, so the table costs additions, not four integer divisions
        // per entry (a 64-channel 3x3 layer has 576 entries; at batch 1 their divisions cost a
        // few percent of the layer).
        std::int64_t* part = detail::offset_table(3, w.kernel_h + w.kernel_w);
        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
            const std::int64_t th = ki * w.dilation_h;
            part[ki] = (th % sh) * sw * rows * pitch + th / sh * pitch;
        }
        for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
            const std::int64_t tw = kj * w.dilation_w;
            part[w.kernel_h + kj] = shifted ? kj * rows * pitch : tw % sw * rows * pitch + tw / sw;
        }
        for (std::int64_t ci = 0, k = 0; ci < cg; ++ci)
            for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
                for (std::int64_t kj = 0; kj < w.kernel_w; ++kj)
                    row_off[k++] = ci * plane + part[ki] + part[w.kernel_h + kj];
    }
    // The lanes and direct products compute every image on its own, so their chunks may be cut
    // smaller for the threads without changing a bit (the GEMM paths' chunks set their sums and
    // stay as conv_chunk made them): a short K makes chunks of dozens of images (1x1 layers:
    // 160 -> 64 on 9x9 at batch 64 ran as one 50-image chunk and one of 14, no faster on two
    // threads than on one).
    std::int64_t step = chunk;
    if ((direct || lanes) && get_num_threads() > 1 && !nanotorch::detail::inside_parallel_region())
        step = std::min(chunk, std::max<std::int64_t>(1, batch / (2 * get_num_threads())));
    const std::int64_t chunks = (batch + step - 1) / step;
    std::int64_t* col_off = packed_from_images ? detail::offset_table(1, chunk * len) : nullptr;
    if (col_off)
        for (std::int64_t n = 0, j = 0; n < chunk; ++n)
            for (std::int64_t oh = 0; oh < w.out_h; ++oh)
                for (std::int64_t ow = 0; ow < w.out_w; ++ow)
                    col_off[j++] = n * image_stride + oh * w.stride_h * pitch + ow * w.stride_w;
    parallel_for(0, chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) {
            const std::int64_t n0 = c * step, nb = std::min(step, batch - n0), cols = nb * len, ycols = nb * ylen;
            const bool implicit = packed_from_images &&
                                  detail::gemm_path(false, false, og, cols, ckk) == detail::GemmPath::blocked;
            const bool im2col_cols = !direct && !lanes && !implicit;
            float* col = im2col_cols ? detail::scratch(detail::Scratch::conv_col, ckk * cols) : nullptr;
            // (direct_slack floats of slack: the direct path's last panel reads past the last image)
            float* padded = !im2col_cols && copy
                                ? detail::scratch(detail::Scratch::conv_padded, nb * cg * plane + detail::direct_slack)
                                : nullptr;
            if (padded) zero_floats(padded + nb * cg * plane, detail::direct_slack);
            // (the lanes product writes to out, or, pooled, to y laid out as the chunk's output)
            float* y = detail::scratch(detail::Scratch::conv_gemm_out, lanes ? (pooled ? og * nb * len : 0) : og * ycols);
            float* finished = pooled && !lanes ? detail::scratch(detail::Scratch::conv_pool_plane, len) : nullptr;
            for (std::int64_t g = 0; g < groups; ++g) {
                const float* wg = weight + g * og * ckk;
                const float* images = in + (n0 * channels + g * cg) * w.in_plane();
                if (padded)
                    for (std::int64_t n = 0; n < nb; ++n) {
                        const float* image = images + n * channels * w.in_plane();
                        if (shifted) detail::shifted_planes(padded + n * cg * plane, image, cg, w);
                        else if (phases) detail::phase_planes(padded + n * cg * plane, image, cg, w);
                        else detail::pad_planes(padded + n * cg * plane, image, cg, w);
                    }
                if (lanes) {  // the bias and the epilogue applied as each tile is stored
                    const std::int64_t first = (n0 * out_channels + g * og) * len;
                    const ref::ConvFinish fin = detail::finish_from(epi, bias, g * og, first);
                    detail::conv_lanes_product(pooled ? y : out + first, len, pooled ? og * len : out_channels * len, wg,
                                               og, ckk, padded ? padded : images, image_stride, nb, pitch, w.out_w,
                                               w.stride_h, w.stride_w, row_off, fin,
                                               packed_weight ? packed_weight + g * detail::lanes_packed_floats(og, ckk)
                                                             : nullptr,
                                               pad ? &w : nullptr);  // (unpadded: no tap reads outside)
                    if (pooled)
                        for (std::int64_t n = 0; n < nb; ++n)
                            for (std::int64_t o = 0; o < og; ++o)
                                detail::pool_finished_plane(out + ((n0 + n) * out_channels + g * og + o) * olen,
                                                            y + (n * og + o) * len, pool,
                                                            detail::relu_after_pool(epi));
                    continue;
                }
                if (direct) {
                    detail::conv_direct_product(y, ycols, wg, og, ckk, padded, cg * plane, nb, ylen, row_off);
                } else if (implicit) {  // as sgemm's blocked path: y = W · col
                    const detail::ConvColumns cols_view{padded ? padded : images, row_off, col_off};
                    detail::gemm_driver(og, cols, ckk, 1.0f, detail::StridedMatrix{wg, ckk, 1}, cols_view, 0.0f, y,
                                        cols, 1);
                } else {
                    for (std::int64_t n = 0; n < nb; ++n)
                        im2col(col + n * len, images + n * channels * w.in_plane(), cg, w, cols);
                    sgemm(false, false, og, cols, ckk, 1.0f, wg, ckk, col, cols, 0.0f, y, cols);
                }
                // out[n, o] = epi(y[o, n's columns] + bias[o]) in one pass (finish_rows: the
                // operations of the bias add, then of ConvEpilogue::apply): whole planes, or row
                // by row from the direct path's pitched columns.
                const std::int64_t run = direct && !shifted ? w.out_w : len, ystep = run == len ? len : pitch;
                for (std::int64_t n = 0; n < nb; ++n)
                    for (std::int64_t o = 0; o < og; ++o) {
                        const std::int64_t c = g * og + o, p = (n0 + n) * out_channels + c;
                        float* dst = out + p * olen;
                        const float* src = y + o * ycols + n * ylen;
                        if (pooled) {
                            kernels::finish_rows(finished, src, ystep, len / run, run, detail::finish_from(epi, bias, c, 0));
                            detail::pool_finished_plane(dst, finished, pool, detail::relu_after_pool(epi));
                            continue;
                        }
                        if (!bias && !epi.active()) {
                            for (std::int64_t r = 0; r < len; r += run, dst += run, src += ystep)
                                detail::copy_row(dst, src, run);
                            continue;
                        }
                        kernels::finish_rows(dst, src, ystep, len / run, run,  // (not ref::, found by ADL)
                                             detail::finish_from(epi, bias, c, p * len));
                    }
            }
        }
    });
}

// conv2d_forward_fused with no epilogue: the plain convolution.
inline void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, std::int64_t batch,
                           std::int64_t channels, std::int64_t out_channels, const Window2d& w,
                           std::int64_t groups = 1) {
    conv2d_forward_fused(out, in, weight, bias, batch, channels, out_channels, w, groups, ConvEpilogue{});
}

namespace detail {
// The input gradient of a stride-1 convolution is itself a stride-1 convolution: of grad_out,
// padded by dilation·(kernel − 1) − pad, with the weights flipped in both spatial axes and their
// two channel axes swapped (per group). Where its padding is not negative that is a window
// conv2d_forward can run, and where conv2d_forward's direct path takes it, it reads grad_out in
// place instead of computing Wᵀ·grad_out column by column and scattering them back (col2im).
inline bool input_grad_as_conv(const Window2d& w) {
    return w.stride_h == 1 && w.stride_w == 1 && w.pad_h <= w.dilation_h * (w.kernel_h - 1) &&
           w.pad_w <= w.dilation_w * (w.kernel_w - 1);
}
inline Window2d input_grad_window(const Window2d& w) {
    Window2d t = w;
    t.in_h = w.out_h;
    t.in_w = w.out_w;
    t.pad_h = w.dilation_h * (w.kernel_h - 1) - w.pad_h;
    t.pad_w = w.dilation_w * (w.kernel_w - 1) - w.pad_w;
    t.out_h = w.in_h;
    t.out_w = w.in_w;
    return t;
}
// Where that pays (1-thread timings of the input gradient alone on 17 layer shapes, AVX2, Zen 2):
// the old way multiplies Wᵀ·grad_out with an inner dimension of only O/groups, which runs
// store-bound for few output channels, while the convolution's inner dimension is
// O/groups·kH·kW. It won 1.1-1.3x on "same" windows (output plane = input plane: no padded
// zeros multiplied) with 16 or more input channels per group (the convolution's rows), at most
// 64 output channels per group, and where conv2d_forward then takes its direct path; elsewhere
// it lost, up to 2x for "valid" windows (their padded grad_out holds mostly zeros) and for a
// single input channel. On AVX-512, with the direct path's partial panels written in place and its
// short tile (implicit_gemm.hpp's direct_tile), it also wins from 2 input channels per group
// (Zen 5, 1 thread, the whole backward at batch 64 on "same" windows: 1.2-1.25x at 2 and 4
// channels on 28x28, 1.5x at 8 on 14x14, 1.4x at 10 on 12x12, 1.45x at 12 on 14x14, 1.6x for
// 10 -> 20 5x5), but still loses 1.25x at one; the same build for AVX2 lost 1.15-1.4x below 16.
// More than 64 output channels per group pay on AVX-512 too, with at least 32 input channels
// (the convolution's output rows, filling its tiles) and at most three times as many output
// channels, the Wᵀ·grad_out product and its col2im running at 60-80 % of peak there (Zen 5,
// 1 thread, grad_in alone at batch 64): 1.3-1.4x on 96 -> 96 on 10x10, 1.15x on 128 -> 80 on
// 12x12, 1.06-1.1x on 48 -> 96 on 20x20, 32 -> 96 on 14x14, 80 -> 72 on 9x9 and 96 -> 128 on
// 28x28, 1.02x on 5x5 40 -> 80 on 12x12, the same speed (within 2 %) on 8x8 planes with 128
// or 256 channels and on 200 -> 100 on 6x6. They lost with
// fewer input channels (16 -> 128 on 14x14 0.91x, 5x5 20 -> 100 on 10x10 0.81x); on AVX2 they
// gained nothing (within 2 %). Planes of a multiple of 256 floats, where the convolution cannot
// take the lanes product (conv_lanes.hpp), were left out while its forward ran them on the
// blocked GEMM (64 -> 128 on 16x16 0.96x); with the direct path there (direct_conv_pays) the
// flipped convolution ran 64 -> 128 on 32x32 1.13x faster (-O3), 64 -> 128, 128 -> 128,
// 128 -> 256 and 256 -> 256 on 16x16 at the same speed (0.98-1.02x; 1.3-1.45x at -O2 before
// sgemm's micro-kernel went out of line, simd_gemm.hpp, when Wᵀ·grad_out + col2im ran at 58-60 %).
// On AVX2, with the direct path recalibrated there (direct_conv_pays: Zen 3, 1 thread, grad_in
// alone at batch 64, -O3, the two ways alternating), more than 64 output channels pay where
// they are no more than the input channels: 1.2-1.25x on 96 -> 96 on 10x10, 256 -> 128 on 8x8,
// 128 -> 96 on 12x12, 80 -> 80 5x5 on 12x12 and 512 -> 512 on 4x4, 1.12-1.17x on 192 -> 96 on
// 14x14, 1.06-1.08x on 256 -> 256 on 8x8; but not on planes of a multiple of 256 floats (128 ->
// 128 on 32x32 0.85x, 64 -> 64 on 32x32 0.96x, 128 -> 128 on 16x16 0.97-1.09x), nor with more
// outputs than inputs (96 -> 192 on 12x12 0.86-0.89x, 128 -> 256 on 8x8 0.97-1.02x, 64 -> 128 on
// 16x16 1.0x; 5x5 40 -> 80 on 12x12 gained 1.15x but was the only one).
inline constexpr std::int64_t input_grad_as_conv_min_channels = simd_width >= 16 ? 2 : 16;
inline bool input_grad_as_conv_pays(std::int64_t cg, std::int64_t og, const Window2d& w) {
    if (!input_grad_as_conv(w) || w.out_h != w.in_h || w.out_w != w.in_w || cg < input_grad_as_conv_min_channels)
        return false;
    if (og > 64 && (simd_width >= 16 ? cg < 32 || og > 3 * cg  // AVX-512
                                     : simd_width < 8 || cg < 32 || og > cg || w.in_plane() % 256 == 0))  // AVX2
        return false;
    const std::int64_t ckk = og * w.kernel_h * w.kernel_w;
    return direct_conv_pays(cg, ckk, input_grad_window(w), conv_chunk(ckk, w.in_plane()));
}
// Where the flipped convolution runs by F(2×2, r×r) (winograd_pays for the flipped shape: og
// input channels, cg outputs, the input's plane), it pays whatever the padding: its tiles are
// those of the input plane, and the zeros around grad_out only fill the transforms' patches
// (measured against the path the rule above picks: winograd.hpp's table).
inline bool input_grad_by_winograd(std::int64_t cg, std::int64_t og, const Window2d& w, std::int64_t batch) {
    return input_grad_as_conv(w) && winograd_pays(og, cg, input_grad_window(w), batch);
}
// Where the weight gradient is summed by F(2×2, r×r) (conv_winograd_weight_grad): a rule of
// its own, since its products are sgemm's and it keeps more channels than the forward needs
// (winograd_weight_grad_pays: winograd.hpp's table).
inline bool weight_grad_by_winograd(std::int64_t cg, std::int64_t og, const Window2d& w, std::int64_t batch) {
    return winograd_weight_grad_pays(cg, og, w, batch);
}
// The weights of the input gradient's convolution (input_grad_as_conv): weight [O, C/groups,
// kH·kW taps] flipped in both spatial axes (tap kk − 1 − k) and its two channel axes swapped per
// group, [C, O/groups, kH·kW], in the calling thread's conv_flipped_weight scratch. For a 1×1
// kernel that is the transpose per group (conv_paths.hpp's pointwise input gradient).
inline const float* input_grad_weight(const float* weight, std::int64_t channels, std::int64_t out_channels,
                                      std::int64_t kk, std::int64_t groups) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
    float* flipped = scratch(Scratch::conv_flipped_weight, channels * og * kk);
    for (std::int64_t g = 0; g < groups; ++g)
        for (std::int64_t c = 0; c < cg; ++c)
            for (std::int64_t o = 0; o < og; ++o)
                for (std::int64_t k = 0; k < kk; ++k)
                    flipped[(((g * cg + c) * og + o) * kk) + k] = weight[((g * og + o) * cg + c) * kk + kk - 1 - k];
    return flipped;
}
}  // namespace detail

// Gradients of conv2d_forward given grad_out[N, O, oH, oW]; each output is overwritten and may
// be null when not wanted (`in` is read only for grad_weight, `weight` only for grad_in). Per
// chunk of images, with G[O, chunk·oH·oW] = the chunk's grad_out gathered side by side and col
// its im2col as in the forward:
//   grad_in[n]  = col2im(weightᵀ @ G, n's columns)                  (one sgemm per chunk)
//   dW_chunk    = G @ colᵀ,  db_chunk[o] = Σ G[o, :]                 (one sgemm per chunk)
// (where detail::weight_grad_in_place_pays, a stride-1 window, dW_chunk is instead read from the
// chunk's images in place, each element one fixed-order sum over them: kernels/weight_grad.hpp)
// (with groups, both sgemms per group: its rows of G and weight, its channels of col and grad_in)
//   grad_weight = Σ_chunks dW_chunk, grad_bias = Σ_chunks db_chunk, summed in chunk order.
// Where detail::weight_grad_by_winograd (3×3 or 5×5, stride 1, enough channels), dW is summed
// by F(2×2, r×r) instead (kernels/winograd.hpp: its own fixed groups of tiles, added in order).
// Where detail::input_grad_as_conv_pays (a "same" stride-1 window, few output channels or, on
// AVX-512, many input channels),
// grad_in is instead conv2d_forward of grad_out with the flipped, channel-swapped weights (also
// where detail::input_grad_by_winograd: that convolution then runs by F(2×2, r×r)); where
// detail::input_grad_phases_pays (strided windows, AVX-512), one stride-1 lanes product per
// phase of the input (kernels/input_grad_phases.hpp); and where detail::weight_grad_lanes_pays
// (AVX-512 or AVX2), dW is summed with the output channels in the lanes
// (kernels/weight_grad_lanes.hpp), as it is on AVX-512, on this path's chunks, wherever that
// kernel fits and the in-place one does not pay (detail::conv_weight_grad_lanes_as_gemm: the
// same bits where the sgemm sums in one chain).
// Chunk boundaries depend on the shapes only (detail::conv_chunk), the partials are computed in
// parallel into their own slots (at most detail::conv_partial_budget floats at once, so huge
// weights are processed in blocks of chunks; the running sum is the same either way) and added in
// chunk order: bit-identical for every thread count.
inline void conv2d_backward(float* grad_in, float* grad_weight, float* grad_bias, const float* grad_out,
                            const float* in, const float* weight, std::int64_t batch, std::int64_t channels,
                            std::int64_t out_channels, const Window2d& w, std::int64_t groups = 1) {
    const std::int64_t cg = channels / groups, og = out_channels / groups;
    const std::int64_t ckk = cg * w.kernel_h * w.kernel_w;
    const std::int64_t len = w.out_plane();
    const std::int64_t wnum = out_channels * ckk;
    bool reduce = grad_weight != nullptr || grad_bias != nullptr;
    if (grad_weight) std::fill(grad_weight, grad_weight + wnum, 0.0f);
    if (grad_bias) std::fill(grad_bias, grad_bias + out_channels, 0.0f);
    if (grad_in && (len <= 0 || out_channels <= 0))  // nothing flows back: the gradient is 0
        std::fill(grad_in, grad_in + batch * channels * w.in_plane(), 0.0f);
    if (batch <= 0 || len <= 0 || out_channels <= 0 || (!reduce && !grad_in)) return;

    if (grad_in && (detail::input_grad_as_conv_pays(cg, og, w) || detail::input_grad_by_winograd(cg, og, w, batch))) {
        // grad_in = conv2d_forward(grad_out, flipped weights) (detail::input_grad_as_conv).
        const float* flipped =
            detail::input_grad_weight(weight, channels, out_channels, w.kernel_h * w.kernel_w, groups);
        conv2d_forward(grad_in, grad_out, flipped, nullptr, batch, out_channels, channels,
                       detail::input_grad_window(w), groups);
        grad_in = nullptr;
        if (!reduce) return;
    }
    if (grad_in && detail::input_grad_phases_pays(channels, out_channels, groups, w)) {  // strided: by phases
        detail::conv_input_grad_phases(grad_in, grad_out, weight, batch, channels, out_channels, w);
        grad_in = nullptr;
        if (!reduce) return;
    }
    if (grad_weight && detail::weight_grad_by_winograd(cg, og, w, batch)) {  // F(2×2, r×r): kernels/winograd.hpp
        for (std::int64_t g = 0; g < groups; ++g)
            detail::conv_winograd_weight_grad(grad_weight + g * og * ckk, grad_out + g * og * len, out_channels * len,
                                              in + g * cg * w.in_plane(), channels * w.in_plane(), batch, og, cg, w);
        grad_weight = nullptr;
        reduce = grad_bias != nullptr;
        if (!reduce && !grad_in) return;
    }
#if NANOTORCH_SIMD_ENABLED && !defined(NANOTORCH_SIMD_WASM)
    if (grad_weight) {  // dW by a kernel of its own where one fits, else by the chunks' sgemm below
        bool done = true;
        if (detail::weight_grad_lanes_pays(channels, out_channels, groups, w))  // channels in the lanes
            detail::conv_weight_grad_lanes(grad_weight, grad_out, in, batch, channels, out_channels, w,
                                           detail::weight_grad_lanes_chunk(batch));
        else if (detail::weight_grad_in_place_pays(cg, w))  // read from the images in place
            detail::conv_weight_grad_in_place(grad_weight, grad_out, in, batch, channels, out_channels, w, groups);
        else if (detail::has_weight_grad_lanes_as_gemm &&  // lanes, im2col's chunks
                 detail::weight_grad_lanes_fits(channels, out_channels, groups, w))
            detail::conv_weight_grad_lanes_as_gemm(grad_weight, grad_out, in, batch, channels, out_channels, w);
        else
            done = false;
        if (done) {
            grad_weight = nullptr;
            reduce = grad_bias != nullptr;
            if (!reduce && !grad_in) return;
        }
    }
#endif
    const std::int64_t chunk = detail::conv_chunk(ckk, len);
    const std::int64_t chunks = (batch + chunk - 1) / chunk;
    const std::int64_t stride = wnum + out_channels;  // one chunk's partial: [weight grads | bias grads]
    const std::int64_t block =
        reduce ? std::max<std::int64_t>(1, std::min(chunks, detail::conv_partial_budget / stride)) : chunks;
    float* partial = reduce ? detail::scratch(detail::Scratch::conv_partials, std::min(block, chunks) * stride) : nullptr;

    for (std::int64_t b0 = 0; b0 < chunks; b0 += block) {
        const std::int64_t b1 = std::min(chunks, b0 + block);
        parallel_for(b0, b1, 1, [&](std::int64_t c0, std::int64_t c1) {
            for (std::int64_t c = c0; c < c1; ++c) {
                const std::int64_t n0 = c * chunk, nb = std::min(chunk, batch - n0), cols = nb * len;
                float* g = detail::scratch(detail::Scratch::conv_grad_out, out_channels * cols);
                for (std::int64_t n = 0; n < nb; ++n)
                    for (std::int64_t o = 0; o < out_channels; ++o)
                        detail::copy_row(g + o * cols + n * len, grad_out + ((n0 + n) * out_channels + o) * len, len);
                float* part = reduce ? partial + (c - b0) * stride : nullptr;
                if (grad_bias)
                    for (std::int64_t o = 0; o < out_channels; ++o) part[wnum + o] = sum(g + o * cols, cols);
                for (std::int64_t gr = 0; gr < groups; ++gr) {  // group gr: rows gr·og.. of g and weight
                    const float* gg = g + gr * og * cols;
                    const float* wg = weight + gr * og * ckk;
                    if (grad_weight) {
                        float* col = detail::scratch(detail::Scratch::conv_col, ckk * cols);
                        for (std::int64_t n = 0; n < nb; ++n)
                            im2col(col + n * len, in + ((n0 + n) * channels + gr * cg) * w.in_plane(), cg, w, cols);
                        sgemm(false, true, og, ckk, cols, 1.0f, gg, cols, col, cols, 0.0f, part + gr * og * ckk, ckk);
                    }
                    if (grad_in) {
                        float* gcol = detail::scratch(detail::Scratch::conv_grad_col, ckk * cols);
                        sgemm(true, false, ckk, cols, og, 1.0f, wg, ckk, gg, cols, 0.0f, gcol, cols);
                        for (std::int64_t n = 0; n < nb; ++n)
                            col2im(grad_in + ((n0 + n) * channels + gr * cg) * w.in_plane(), gcol + n * len, cg, w,
                                   cols);
                    }
                }
            }
        });
        if (!reduce) continue;
        // Add this block's partials in chunk order (serially: a few thousand floats per chunk).
        for (std::int64_t c = b0; c < b1; ++c) {
            const float* part = partial + (c - b0) * stride;
            if (grad_weight) add(grad_weight, grad_weight, part, wnum);
            if (grad_bias) add(grad_bias, grad_bias, part + wnum, out_channels);
        }
    }
}

}  // namespace nanotorch::kernels
