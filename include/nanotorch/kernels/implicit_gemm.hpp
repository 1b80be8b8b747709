// nanotorch/kernels/implicit_gemm.hpp — a convolution's product without a materialised im2col
// matrix: the im2col columns read where they lie in the images. Two forms, both the same
// result as sgemm's blocked path on im2col bit for bit: GEMM panels packed straight from the
// images (detail::ConvColumns, through gemm_driver), and the direct product, whose micro-kernel
// reads each row of B from the zero-padded planes in place (detail::conv_direct_product; strided
// windows through phase planes, narrow outputs through shifted copies of the planes).
// kernels/conv.hpp chooses between them and im2col + sgemm by shape (detail::implicit_im2col_pays,
// detail::direct_conv_pays, detail::shifted_columns_pay).
#pragma once

#include <algorithm>  // std::min/max/fill
#include <cstdint>
#include <memory>     // the offset tables

#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/im2col.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/simd_gemm.hpp>  // the micro-kernels
#include <nanotorch/kernels/window.hpp>
#include <nanotorch/kernels/workspace.hpp>

namespace nanotorch::kernels {

// ---- implicit im2col: GEMM panels packed straight from the images ----

namespace detail {

// The im2col matrix of a chunk of images, one group, read where it lies instead of copied:
// element (k, j), k = (c, ki, kj) and j = (image, oh, ow), is planes[row_off[k] + col_off[j]],
// the planes being the chunk's images (zero-padded first when the window pads). gemm_driver
// packs its B panels from here through the pack_b_block overload below, which writes exactly
// the values the StridedMatrix packer would read from a materialised im2col, so
// the product is sgemm's on that matrix bit for bit, without writing and re-reading
// C·kH·kW·oH·oW floats per image (for a 64-channel 32×32 layer, 2.4 MB per image: far past L2).
// It is only ever gemm_driver's B: the Cᵀ = colᵀ·Wᵀ formulation packs colᵀ in narrow panels,
// where finding the runs cost more than the copy saved.
struct ConvColumns {
    const float* planes;
    const std::int64_t* row_off;  // per k
    const std::int64_t* col_off;  // per j
};

// A run of columns whose elements are contiguous in the planes (one output row of a stride-1
// window, cut where a row or image ends): dst[t .. t + len) = src[off .. off + len).
struct ColumnRun {
    std::int64_t t, len, off;
};
inline int column_runs(ColumnRun* runs, const std::int64_t* col_off, std::int64_t n) {
    int count = 0;
    for (std::int64_t t = 0; t < n;) {
        std::int64_t e = t + 1;
        while (e < n && col_off[e] == col_off[e - 1] + 1) ++e;
        runs[count++] = {t, e - t, col_off[t]};
        t = e;
    }
    return count;
}
inline void copy_runs(float* dst, const float* src, const ColumnRun* runs, int count) {
    for (int r = 0; r < count; ++r) copy_floats(dst + runs[r].t, src + runs[r].off, runs[r].len);
}

// pack_b_block's layout (kernels/gemm.hpp) for B = col.
inline void pack_b_block(float* dst, const ConvColumns& B, std::int64_t k0, std::int64_t kc, std::int64_t j0,
                         std::int64_t nc) {
    ColumnRun runs[gemm_nr];
    for (std::int64_t jp = 0; jp < nc; jp += gemm_nr, dst += kc * gemm_nr) {
        const std::int64_t n = std::min(gemm_nr, nc - jp);
        if (n < gemm_nr) std::fill(dst, dst + kc * gemm_nr, 0.0f);
        const int count = column_runs(runs, B.col_off + j0 + jp, n);
        for (std::int64_t k = 0; k < kc; ++k) copy_runs(dst + k * gemm_nr, B.planes + B.row_off[k0 + k], runs, count);
    }
}

// Where packing from the images beats materialising im2col (measured on the conv shapes of
// bench_kernels and of the VGG, ResNet8 and seed nets, 1 thread): stride-1 columns whose output
// rows are whole panels (oW a multiple of gemm_nr), so every packed panel row is one vector copy
// from the planes, as from a materialised im2col; and a K of at least 64, so that the K slice a
// panel's runs are found for is long enough to pay for finding them. Panels that straddle rows
// (oW = 8, 24 or 28 with 16-column panels) are copied in two runs, and that measured 5-15 %
// slower than im2col's dense copies followed by the plain pack; a strided window would gather
// them one element at a time (2-3x slower).
inline bool implicit_im2col_pays(std::int64_t ckk, const Window2d& w) {
    return w.stride_w == 1 && w.out_w % gemm_nr == 0 && ckk >= 64;
}

// ---- direct convolution: B read from the images in place ----
//
// conv_direct_product computes a stride-1 window's product without im2col and without packing
// B: the micro-kernel reads each row of B straight from the zero-padded planes
// (sgemm_offsets_micro_kernel). That needs every panel row to be gemm_nr consecutive floats of
// the planes, so the product runs over "pitched" columns: per image, every column
// jj = oh·pitch + ow (pitch = the padded row length) from the first output to the last,
// (oH − 1)·pitch + oW of them, rounded up to whole panels. Column jj reads the planes at
// row_off[k] + jj; the columns with ow ≥ oW read the next row's left edge (in bounds) and are
// dropped when the result is copied out. The kept columns are the im2col columns, with the same K
// slices and the same order of multiply-adds as sgemm's blocked path, so the result is the same
// bit for bit. The dropped columns are the price; packing and im2col are what it saves, and those
// weigh most where few output channels share each packed column.

// Product columns per image on the direct path (its last panel is a partial one).
inline std::int64_t pitched_columns(const Window2d& w) {
    const std::int64_t pitch = (w.in_w + 2 * w.pad_w + w.stride_w - 1) / w.stride_w;  // phase_planes' rows
    return (w.out_h - 1) * pitch + w.out_w;
}

// Strided windows on the direct path: each channel's zero-padded plane split into
// stride_h·stride_w phase planes of ceil((H + 2·pad_h) / stride_h) rows and
// ceil((W + 2·pad_w) / stride_w) columns, phase (a, b) holding the padded pixels (i·stride_h + a,
// j·stride_w + b). Tap (ki, kj) of output (oh, ow) is then pixel (oh + ki·dh / sh, ow + kj·dw / sw)
// of phase (ki·dh mod sh, kj·dw mod sw): a unit-stride read, so a strided window's columns are
// pitched columns of the phase planes. For stride 1 this is pad_planes' layout.
// Each phase row is zeros, a strided run of one input row, zeros: the run's bounds are found
// once per column phase rather than tested per element (that per-element test was 7 % of a
// ResNet8 inference).
inline constexpr std::int64_t phase_pair_max_cols = 512;  // stride-2 columns: a padded row on the stack

inline void phase_planes(float* dst, const float* src, std::int64_t channels, const Window2d& w) {
    const std::int64_t sh = w.stride_h, sw = w.stride_w;
    const std::int64_t rows = (w.in_h + 2 * w.pad_h + sh - 1) / sh, cols = (w.in_w + 2 * w.pad_w + sw - 1) / sw;
    if (sw == 2 && cols <= phase_pair_max_cols) {
        // Column stride 2: both column phases of a row from one pass. The row is zero-padded into
        // `padded` (2·cols floats), then split into its even (phase 0) and odd (phase 1) columns
        // with deinterleave2's shuffles; the strided loop below read one float at a time (about
        // 4 % of a batch-64 ResNet8 inference). The same values land in the same places.
        alignas(64) float padded[2 * phase_pair_max_cols];
        const std::int64_t phase = rows * cols;  // floats per phase plane
        for (std::int64_t c = 0; c < channels; ++c, src += w.in_plane())
            for (std::int64_t a = 0; a < sh; ++a)
                for (std::int64_t i = 0; i < rows; ++i) {
                    float* d0 = dst + (c * sh * 2 + a * 2) * phase + i * cols;
                    float* d1 = d0 + phase;
                    const std::int64_t h = i * sh + a - w.pad_h;
                    if (h < 0 || h >= w.in_h) {
                        zero_floats(d0, cols);
                        zero_floats(d1, cols);
                        continue;
                    }
                    zero_floats(padded, w.pad_w);
                    copy_row(padded + w.pad_w, src + h * w.in_w, w.in_w);
                    zero_floats(padded + w.pad_w + w.in_w, 2 * cols - w.pad_w - w.in_w);
                    deinterleave2(d0, d1, padded, cols);
                }
        return;
    }
    // Column j of phase b reads input column j·sw + b − pad_w, inside [0, W) for j in [lo, hi).
    const auto first_inside = [sw](std::int64_t from) { return from <= 0 ? 0 : (from + sw - 1) / sw; };
    for (std::int64_t c = 0; c < channels; ++c, src += w.in_plane())
        for (std::int64_t a = 0; a < sh; ++a)
            for (std::int64_t b = 0; b < sw; ++b) {
                const std::int64_t lo = std::min(cols, first_inside(w.pad_w - b));
                const std::int64_t hi = std::max(lo, std::min(cols, first_inside(w.in_w + w.pad_w - b)));
                for (std::int64_t i = 0; i < rows; ++i, dst += cols) {
                    const std::int64_t h = i * sh + a - w.pad_h;
                    if (h < 0 || h >= w.in_h) {
                        zero_floats(dst, cols);
                        continue;
                    }
                    const float* row = src + h * w.in_w;
                    const std::int64_t shift = b - w.pad_w;
                    zero_floats(dst, lo);
                    for (std::int64_t j = lo; j < hi; ++j) dst[j] = row[j * sw + shift];
                    zero_floats(dst + hi, cols - hi);
                }
            }
}

// Stride-1 windows on the direct path where the pitched columns waste much (few output columns
// per padded row: a 5x5 "valid" window on a 12x12 plane keeps 64 of its 92 pitched columns, and
// its tiles round those up to 96): each channel's zero-padded plane is copied once per kernel
// column kj, shifted left by kj·dilation_w and cut to oW columns, so that every row of the copy
// is one output row. Tap (c, ki, kj) of output (oh, ow) is then element (oh + ki·dilation_h, ow)
// of copy (c, kj), and the product's columns are exactly the oH·oW outputs: no column dropped,
// none rounded up but the image's last tile. The multiply-adds and their order are the direct
// path's, so is the result, bit for bit. Copy (c, kj) holds H + 2·pad_h rows of oW floats.
inline void shifted_planes(float* dst, const float* src, std::int64_t channels, const Window2d& w) {
    const std::int64_t rows = w.in_h + 2 * w.pad_h, cols = w.out_w;
    // Rows shorter than a vector are written as whole vectors (copy_vector_spill) where that
    // neither reads past the channels being copied nor writes past the buffer's last row.
    const bool spill = cols < simd_width;
    const std::int64_t readable = channels * w.in_plane(), writable = channels * w.kernel_w * rows * cols;
    float* const begin = dst;
    for (std::int64_t c = 0; c < channels; ++c)
        for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
            const std::int64_t off = kj * w.dilation_w - w.pad_w;  // column j reads input column j + off
            std::int64_t lo, hi;
            valid_outputs(off, 1, w.in_w, cols, lo, hi);
            if (lo >= hi) {  // every column reads padding
                zero_floats(dst, rows * cols);
                dst += rows * cols;
                continue;
            }
            zero_floats(dst, w.pad_h * cols);
            dst += w.pad_h * cols;
            const float* s = src + c * w.in_plane() + off;  // column 0's input in row 0
            std::int64_t h = 0;
            if (spill && lo == 0 && hi == cols) {
                // Rows h < fast read s[h·W, h·W + simd_width) within readable and write
                // dst[h·cols, h·cols + simd_width) within the buffer.
                const std::int64_t by_read = (readable - (c * w.in_plane() + off) - simd_width) / w.in_w + 1;
                const std::int64_t by_write = (writable - (dst - begin) - simd_width) / cols + 1;
                const std::int64_t fast = std::max<std::int64_t>(0, std::min({w.in_h, by_read, by_write}));
                for (; h < fast; ++h, dst += cols) copy_vector_spill(dst, s + h * w.in_w);
            }
            for (; h < w.in_h; ++h, dst += cols) {
                zero_floats(dst, lo);
                copy_floats(dst + lo, s + h * w.in_w + lo, hi - lo);
                zero_floats(dst + hi, cols - hi);
            }
            zero_floats(dst, w.pad_h * cols);
            dst += w.pad_h * cols;
        }
}

// Whether the direct path beats im2col (or the packed implicit im2col) + sgemm, by a cost model
// fitted to 1-thread timings of 17 layer shapes (bench_kernels' conv shapes and those of the
// seed, VGG, ResNet8 and examples/mnist nets; AVX2, Zen 2). Both compute og·K multiply-adds per
// column of their panels: the direct path over ceil(pitched / gemm_nr) panels per image, the
// GEMM over ceil(chunk·oH·oW / gemm_nr) per chunk of images. What the GEMM pays on top, copying
// every column twice (im2col, packing), is shared by its og rows: it measured like 12 more rows
// of multiply-adds for K >= 64 (1.7x the direct path's speed at 16 output channels, 1.2x at 64,
// none at 256), like 4 for shorter K (the micro-kernel's start-up weighs more there), and
// im2col of rows narrower than a vector costs about a quarter more. The direct path is chosen
// where its panels, so weighted, are at least 3 % fewer. It needs 9 taps or more: a 3x3 window
// on one input channel (a grayscale network's first layer) qualifies, and on AVX-512 (Ice Lake,
// 1 thread, conv2d forward alone, the two builds alternating) ran 1.3-1.45x faster than im2col
// + sgemm: 1 -> 16 channels with padding 1 on 28x28, 600 -> 420 us at batch 64 and 9.1 -> 6.5 us
// at batch 1; 1 -> 32 unpadded, 930 -> 730 us at batch 64, 19.5 -> 16.4 ms at batch 1000 (the
// threshold was 16 before). Fewer taps (2x2 windows on one or two channels) were not measured
// and stay with the GEMM.
// On AVX-512 the GEMMs weigh more (Zen 5, 1 thread, conv2d forward alone at batch 64, built with
// -O3 as Release builds are; -O2 in brackets, measured while the blocked GEMM still lost a quarter
// of its speed there: see sgemm_micro_kernel in simd_gemm.hpp).
// Where sgemm takes its blocked path on the chunk's im2col matrix (more than 2·gemm_nr columns),
// packing and the panels' start-up held it to 200-212 GFLOP/s on 3x3 layers with 64-256 channels
// and to 130-155 on 3 -> 64 and 3 -> 128 on 32x32 (K = 27) and on 64 -> 128 on 32x32 (packed
// from the images), and the direct path won on every such shape measured, its pitched panels up
// to 1.5 times the GEMM's: 1.03-1.08x on 16x16 (64 -> 128, 128 -> 128, 128 -> 256, 256 -> 128;
// [1.3-1.45x]), 1.04x on 64 -> 128 on 8x8, 1.1-1.17x with K = 27, 1.45x on 64 -> 128 on 32x32,
// the same speed on 64 -> 256 on 8x8: blocked_copies stands for that, where the copies above do
// not already weigh more (few output channels). Where one image's columns take the small-N kernel
// (8x8 planes and less) it ran at 214-238 GFLOP/s and the direct path lost from 128 output
// channels up (128 -> 128 on 8x8 0.88x, 256 -> 256 on 4x4 0.46x): there the GEMM's vectors are
// counted against the direct path's (a 4x4 image fills one pitched panel, half of it past the
// rows' ends, and one vector of the GEMM's), with small_n_copies rows' worth of copies. That also
// sends 512 -> 512 on 4x4 from the lanes product (110 GFLOP/s) back to the GEMM (205).
// On AVX2 (Zen 3, 1 thread, conv2d forward alone at batch 64, -O3; the two paths forced in turn
// on 26 shapes) the blocked GEMM, packing and all, ran at 58-75 GFLOP/s on layers with 40-256
// channels and 33-50 on 3 -> 64 or 16-32 channels on 28x28 and 32x32 (101 peak), and the direct
// path won on 24 of them although the model above had sent 11 to the GEMM: 1.19x on 64 -> 128
// on 16x16, 1.12x on 128 -> 128 on 16x16, 1.13x on 96 -> 96 on 10x10, 1.08x on 48 -> 96 on
// 20x20, 1.15-1.18x on 5x5 40 -> 80 and 80 -> 40 on 12x12, 1.05x on 128 -> 256 and 128 -> 128 on
// 8x8, 1.67x on 3 -> 64 on 32x32 (K = 27). Charging the blocked GEMM at least
// blocked_copies_avx2 = 0.4 rows per row for its copies sends those to the direct path (the 5x5
// ones with pitched panels 1.33 times the GEMM's included) and keeps the GEMM where the direct
// path's panels are 1.5 times as many or more (256 -> 256 on 4x4, 1.2x faster direct, still
// the GEMM). It costs 2-5 % where the GEMM was at least as fast: 64 -> 64 on 32x32 (0.98x) and
// 256 -> 256 on 8x8 (0.95x).
inline constexpr double blocked_copies_avx2 = 0.4;
inline constexpr double blocked_copies_avx512 = 0.6;
inline constexpr double small_n_copies_avx512 = 48.0;
inline bool direct_conv_pays(std::int64_t og, std::int64_t ckk, const Window2d& w, std::int64_t chunk) {
    // A strided window reads every phase plane only when its taps reach past the stride.
    if (ckk < 9 || og < 1 || chunk < 1 || (w.kernel_h - 1) * w.dilation_h + 1 < w.stride_h ||
        (w.kernel_w - 1) * w.dilation_w + 1 < w.stride_w)
        return false;
    const auto panels = [](std::int64_t cols) { return static_cast<double>((cols + gemm_nr - 1) / gemm_nr); };
    const double direct = panels(pitched_columns(w));
    const double gemm = panels(chunk * w.out_plane()) / static_cast<double>(chunk);
    const double copies = (ckk >= 64 ? 12.0 : 4.0) / static_cast<double>(og) + (w.out_w < simd_width ? 0.25 : 0.0);
    if (simd_width >= 16) {
        const std::int64_t cols = chunk * w.out_plane();
        if (gemm_path(false, false, og, cols, ckk) != GemmPath::small_n)
            return direct < 0.97 * gemm * (1.0 + std::max(copies, blocked_copies_avx512));
        // The small-N kernel's tiles are whole vectors, not panels: compare vectors.
        const double vectors = static_cast<double>((cols + simd_width - 1) / simd_width) / static_cast<double>(chunk);
        return direct * static_cast<double>(gemm_nr / simd_width) <
               0.97 * vectors * (1.0 + small_n_copies_avx512 / static_cast<double>(og));
    }
    if (gemm_path(false, false, og, chunk * w.out_plane(), ckk) != GemmPath::small_n)
        return direct < 0.97 * gemm * (1.0 + std::max(copies, blocked_copies_avx2));
    return direct < 0.97 * gemm * (1.0 + copies);
}

// A per-thread table of offsets that only grows (the steady state allocates nothing). Tables
// 0 and 1: conv2d's forward (rows, columns); 2: the weight gradient's taps (weight_grad.hpp);
// 3: the row and column parts conv2d's forward builds table 0 from.
inline std::int64_t* offset_table(int which, std::int64_t n) {
    thread_local std::unique_ptr<std::int64_t[]> tables[4];
    thread_local std::int64_t sizes[4] = {0, 0, 0, 0};
    if (sizes[which] < n) {
        tables[which].reset(new std::int64_t[static_cast<std::size_t>(n)]);
        sizes[which] = n;
    }
    return tables[which].get();
}

// Whether conv_direct_product runs og output channels over vlen pitched columns per image in
// conv_tile_mr x conv_tile_nr tiles rather than gemm_mr x gemm_nr. Both shapes hold the same
// number of accumulators; the narrow one loads fewer A values per multiply-add and pads fewer
// rows where og is a multiple of its height (gemm_mr = 6 pads 16 output channels to 18, 32 to 36;
// gemm_mr = 12 pads 16 to 24, 64 to 72), but its wider rows of B cost more where an image has few
// column blocks. Taken where it pads no more rows and an image fills at least four of its column
// blocks. Measured on 3x3 "same" windows, 1 thread, AVX2 (Zen 2; the direct product alone,
// GFLOP/s of the 4 x 24 tile over the 6 x 16 one): 1.25 at 16 channels on 28x28, 1.10-1.15 at
// 16-256 channels on 10x10 to 14x14, 1.05-1.07 at 64-256 on 16x16 to 32x32, but 0.88-0.97 on 7x7
// and 8x8 planes (under four blocks). AVX-512 (Ice Lake, 8 x 48 over 12 x 32, whole
// conv2d_forward at batch 64, 1 thread): 1.5 at 16 channels on 28x28, 1.2 at 32 on 14x14 and 64
// on 32x32, 1.25 on 5x5 40 -> 80 at 12x12, 1.05-1.15 at 48 -> 96 on 20x20 and on a stride-2
// 16 -> 32 layer; slower only on a 3 -> 64 first layer (0.85-0.9: K = 27) and, not taken here,
// on 7x7 planes and a stride-2 14x14 layer (0.93).
inline bool direct_tile_alt(std::int64_t og, std::int64_t vlen) {
    const auto padded = [og](std::int64_t mr) { return (og + mr - 1) / mr * mr; };
    return padded(conv_tile_mr) <= padded(gemm_mr) && vlen >= 4 * conv_tile_nr;
}

// The tile shapes conv_direct_product runs: gemm_mr x gemm_nr, conv_tile_mr x conv_tile_nr
// (direct_tile_alt), or conv_tile_mr_short x gemm_nr (five sixths of gemm_mr rows: 10 on AVX-512,
// 5 on AVX2). The short one is taken where it pads at least a tenth fewer rows than the one
// direct_tile_alt picks: output-channel counts such as 6, 10, 20, 40 or 50, and 16 on planes too
// small for the wide tile (12 pads 10 channels to 12, 20 to 24). It does fewer multiply-adds per
// load of A, which costs more than a few padded rows save (64 channels: 70 rows against 72 ran
// 0-3 % slower). Measured on Zen 5 (AVX-512, 1 thread, conv2d_forward alone, against the
// two-shape choice with partial panels already written in place): 1 -> 10 channels 5x5 on 28x28
// 1.15x at batch 1 and 64, 10 -> 20 5x5 on 12x12 1.12-1.17x, 6 -> 16 5x5 on 14x14 1.15x,
// 32 -> 40 3x3 on 10x10 1.12-1.17x, 8 -> 20 on 20x20 1.18x, 16 -> 16 on 7x7 1.05-1.1x.
enum class DirectTile { gemm, wide, short_rows };
inline DirectTile direct_tile(std::int64_t og, std::int64_t vlen) {
    const auto padded = [og](std::int64_t mr) { return (og + mr - 1) / mr * mr; };
    const bool wide = direct_tile_alt(og, vlen);
    const std::int64_t rows = padded(wide ? conv_tile_mr : gemm_mr);
    if (10 * padded(conv_tile_mr_short) <= 9 * rows) return DirectTile::short_rows;
    return wide ? DirectTile::wide : DirectTile::gemm;
}

// The multiply-adds conv_direct_product computes per K step and image: og and vlen padded to
// the rows and columns of the tile direct_tile picks.
inline double direct_tiles_size(std::int64_t og, std::int64_t vlen) {
    const DirectTile t = direct_tile(og, vlen);
    const std::int64_t mr =
        t == DirectTile::wide ? conv_tile_mr : t == DirectTile::short_rows ? conv_tile_mr_short : gemm_mr;
    const std::int64_t nr = t == DirectTile::wide ? conv_tile_nr : gemm_nr;
    return static_cast<double>((og + mr - 1) / mr * mr) * static_cast<double>((vlen + nr - 1) / nr * nr);
}

// Whether the direct path reads shifted_planes rather than pad_planes: a stride-1 window where
// the multiply-adds the shifted copies save (those of the dropped and rounded-up columns) are
// more than shifted_copy_weight times the floats copied on top (kW copies of each padded row's
// oW columns instead of one of its W + 2·pad_w). Measured on Zen 5 (AVX-512, 1 thread,
// conv2d_forward alone, against pad_planes): 10 -> 20 5x5 on 12x12 (92 pitched columns for 64
// outputs) 1.35x at batch 64 and 1.2-1.35x at batch 1; 32 -> 64 3x3 unpadded on 26x26 1.03-1.04x.
// With the weight at 0.5 (taking the shifted copies wherever they save any multiply-add) six
// other shapes lost 1-30 %: 16 -> 16 and 64 -> 32 on 28x28, 64 -> 64 on 32x32, 8 -> 20 on 20x20,
// 1 -> 32 on 28x28, 20 -> 10 5x5 on 16x16 (kW times the planes no longer sit in L1 and L2 as the
// tiles sweep them); at 16 none of those is taken.
inline constexpr double shifted_copy_weight = 16.0;
inline bool shifted_columns_pay(std::int64_t og, std::int64_t ckk, const Window2d& w) {
    if (w.stride_h != 1 || w.stride_w != 1 || w.out_plane() <= 0) return false;
    const std::int64_t cg = ckk / (w.kernel_h * w.kernel_w), rows = w.in_h + 2 * w.pad_h;
    const double saved = static_cast<double>(ckk) *
                         (direct_tiles_size(og, pitched_columns(w)) - direct_tiles_size(og, w.out_plane()));
    const double copied = static_cast<double>(cg * rows) *
                          static_cast<double>(w.kernel_w * w.out_w - (w.in_w + 2 * w.pad_w));
    return saved > shifted_copy_weight * copied;
}

// The slack past the last image that the direct path's last panel may read (its widest tile).
inline constexpr std::int64_t direct_slack = std::max(gemm_nr, conv_tile_nr);

// y[o, n·vlen + jj] = Σ_k weight[o, k] · planes[n·image_stride + row_off[k] + jj] for o < og,
// n < nb, jj < vlen, k < K (= C/groups·kH·kW): the product sgemm's blocked path computes on the
// im2col matrix, with its K slices (gemm_kc, ascending; the first stored, the others added), but
// with MR-row panels of A and B read in place (sgemm_offsets_tile) rather than packed. Each
// element's sum is the same chain of multiply-adds whatever the tile shape, so the result is too.
// The planes must be readable NR floats past the last image's last column. Serial.
template <std::int64_t MR, std::int64_t NR>
inline void conv_direct_tiles(float* y, std::int64_t ldy, const float* weight, std::int64_t og, std::int64_t K,
                              const float* planes, std::int64_t image_stride, std::int64_t nb, std::int64_t vlen,
                              const std::int64_t* row_off) {
    constexpr auto mr = static_cast<std::size_t>(MR), nr = static_cast<std::size_t>(NR);
    const std::int64_t panels = (og + MR - 1) / MR;
    float* a = scratch(Scratch::conv_weight_panels, panels * K * MR);
    // a[p][k][r] = weight[p·MR + r, k], zero past og: a transpose of each panel's rows, four rows
    // at a time with transpose_rows_4's 4x4 shuffles where the build has them (the scalar loop's
    // strided reads were a tenth of a batch-1 ResNet8 inference). A partial panel is zeroed
    // first in one pass: its padding rows written one strided float at a time were ~4 % of a
    // batch-1 64-channel 7x7 layer (og = 64 pads to 72 rows).
    for (std::int64_t p = 0; p < panels; ++p) {
        float* ap = a + p * K * MR;
        const std::int64_t rows = std::min(MR, og - p * MR);
        if (rows < MR) zero_floats(ap, K * MR);
        std::int64_t r = 0;
        if constexpr (has_transpose_rows_4)
            for (; r + 4 <= rows; r += 4) transpose_rows_4(ap + r, MR, weight + (p * MR + r) * K, K, K);
        for (; r < rows; ++r)
            for (std::int64_t k = 0; k < K; ++k) ap[k * MR + r] = weight[(p * MR + r) * K + k];
    }
    alignas(64) float tile[MR * NR];
    for (std::int64_t n = 0; n < nb; ++n)
        for (std::int64_t p = 0; p < panels; ++p) {
            const std::int64_t m = std::min(MR, og - p * MR);
            for (std::int64_t j = 0; j < vlen; j += NR) {
                const std::int64_t cols = std::min(NR, vlen - j);
                float* c = y + p * MR * ldy + n * vlen + j;
                const float* b = planes + n * image_stride + j;
                for (std::int64_t k0 = 0; k0 < K; k0 += gemm_kc) {
                    const std::int64_t kc = std::min(gemm_kc, K - k0);
                    const float* ap = a + (p * K + k0) * MR;
                    if (cols == NR) {
                        // A partial panel (m < MR rows) writes its m rows in place too: through
                        // tile and write_tile it took half of a batch-1 1 -> 10 channel layer.
                        // tile is unused when c is set; a nullptr there trips GCC 12's -Warray-bounds
                        sgemm_offsets_tile<mr, nr>(kc, ap, b, row_off + k0, k0 > 0, c, ldy, tile, m);
                    } else {
                        sgemm_offsets_tile<mr, nr>(kc, ap, b, row_off + k0, false, nullptr, 0, tile);
                        write_tile(c, ldy, 1, m, cols, tile, NR, 1.0f, k0 > 0 ? 1.0f : 0.0f);
                    }
                }
            }
        }
}

// conv_direct_tiles in the tile shape direct_tile picks. The planes must be readable
// direct_slack floats past the last image's last column.
inline void conv_direct_product(float* y, std::int64_t ldy, const float* weight, std::int64_t og, std::int64_t K,
                                const float* planes, std::int64_t image_stride, std::int64_t nb, std::int64_t vlen,
                                const std::int64_t* row_off) {
    switch (direct_tile(og, vlen)) {
    case DirectTile::short_rows:
        conv_direct_tiles<conv_tile_mr_short, gemm_nr>(y, ldy, weight, og, K, planes, image_stride, nb, vlen, row_off);
        break;
    case DirectTile::wide:
        conv_direct_tiles<conv_tile_mr, conv_tile_nr>(y, ldy, weight, og, K, planes, image_stride, nb, vlen, row_off);
        break;
    case DirectTile::gemm:
        conv_direct_tiles<gemm_mr, gemm_nr>(y, ldy, weight, og, K, planes, image_stride, nb, vlen, row_off);
        break;
    }
}

}  // namespace detail

}  // namespace nanotorch::kernels
