// nanotorch/kernels/workspace.hpp — per-thread scratch buffers that kernels reuse across calls.
//
// Provides kernels::detail::scratch(slot, n): a float buffer of at least n elements owned by the
// calling thread, one per named slot, that only grows. A training step calls the same kernels at
// the same shapes over and over; without reuse each conv2d call would allocate (and page-fault
// in) its im2col columns and GEMM outputs again. The threads of parallel.hpp's pool live as long
// as the pool, so their buffers survive between parallel_for calls too.
// Deliberately not provided: freeing (a buffer lives until its thread exits; its size is that of
// the largest request, a few MB per thread for a small CNN at batch 64), sharing between threads, or
// zero-filling (callers overwrite what they use).
// Rule for callers: a slot's contents are only valid until the next scratch() call on the same
// slot in the same thread, so a kernel holding a slot's pointer must not call anything that uses
// that slot (kernels that nest, e.g. conv2d → sgemm, use distinct slots or none).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>  // unique_ptr<float[]>: grows without value-initialising (std::vector would zero)
#include <new>     // aligned operator new

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::kernels::detail {

/// The named buffers; each kernel that needs scratch memory gets its own slot(s).
enum class Scratch : int {
    conv_col = 0,       // im2col columns of a chunk of images (forward, and backward for dW)
    conv_gemm_out,      // conv2d forward: GEMM result [O, chunk·oH·oW] before it is scattered to NCHW
    conv_grad_out,      // conv2d backward: grad_out of a chunk gathered to [O, chunk·oH·oW]
    conv_grad_col,      // conv2d backward: Wᵀ @ grad_out, the input to col2im
    conv_partials,      // conv2d backward: per-chunk dW/db partials (calling thread only)
    conv_padded,        // im2col / col2im: one image's zero-padded planes (padded windows)
    conv_weight_panels, // conv2d forward, direct path: one group's weights packed in row panels
    conv_flipped_weight,// conv2d backward: the weights as the input gradient's convolution reads them
    conv_grad_wide,     // conv2d backward, dW in place: a chunk's grad_out, rows widened to the padded pitch
    dw_input,           // depthwise conv: the zero-padded, phase-split input plane
    dw_work,            // depthwise conv: flat output run (forward) / split input gradient (backward)
    dw_grad,            // depthwise conv backward: zero-padded output-gradient planes
    conv_pool_plane,    // conv2d forward, pooled epilogue: one finished output plane before its pooling
    pool_rows,          // max pooling (values only): one plane's per-row window maxima
    pool_lanes,         // pooling of small planes: a block of planes interleaved, and its outputs
    winograd_weight,    // 3x3/5x5 convolution by Winograd: one group's transformed weights (calling thread)
    winograd_work,      // 3x3/5x5 convolution by Winograd: one block's transforms and products (each task)
    count
};

/// A buffer of at least n floats for `slot`, owned by the calling thread (contents unspecified),
/// 64-byte aligned (a cache line: vector loads from its start do not straddle two).
/// Throws value_error for a negative n (an internal size bug, never user input).
inline float* scratch(Scratch slot, std::int64_t n) {
    NANOTORCH_CHECK(n >= 0, value_error, "scratch: negative size ", n);
    struct AlignedDelete {
        void operator()(float* p) const { ::operator delete(p, std::align_val_t{64}); }
    };
    struct Buffer {
        std::unique_ptr<float[], AlignedDelete> data;
        std::int64_t size = 0;
    };
    thread_local Buffer buffers[static_cast<int>(Scratch::count)];
    Buffer& b = buffers[static_cast<int>(slot)];
    if (b.size < n) {
        // Grow by at least 1/4 so a slowly rising request (e.g. a growing batch) is amortised.
        const std::int64_t want = n + n / 4;
        b.data.reset();  // release first: the old contents are not kept, and peak memory stays lower
        b.data.reset(static_cast<float*>(::operator new(static_cast<std::size_t>(want) * sizeof(float),
                                                        std::align_val_t{64})));
        b.size = want;
    }
    return b.data.get();
}

}  // namespace nanotorch::kernels::detail
