// nanotorch/kernels/layout.hpp — data-movement kernels with a gradient: padding (constant,
// reflect, replicate) and index selection along one dimension, and clamping.
//
// Raw pointers to contiguous row-major buffers, outputs first, sizes last. These are plain
// scalar loops (they move data or compare, there is no arithmetic for SIMD to speed up), so each
// is its own reference. The backward kernels accumulate in one fixed serial order (row-major over
// the gradient), so a padded or repeated element's gradient sum is the same on every run.
#pragma once

#include <cstdint>
#include <vector>

namespace nanotorch::kernels {

// ---- padding ----

/// How pad fills what lies outside the input: a constant, the mirror image about the edge element
/// without repeating it (NumPy "reflect", PyTorch "reflect", ONNX "reflect"), or the edge element
/// repeated (NumPy "edge", PyTorch "replicate", ONNX "edge").
enum class PadMode { constant, reflect, replicate };

// src[o] = the input index that output index o of one dimension reads, or -1 for the constant,
// for an input dimension of in_size padded by `before` (negative: cropped).  shapes: src [out_size]
// Reflection repeats with period 2·(in_size − 1), so pads longer than the dimension keep
// reflecting (NumPy's rule); the caller rejects reflect/replicate of an empty dimension.
inline void pad_source_index(std::int64_t* src, std::int64_t in_size, std::int64_t before, std::int64_t out_size,
                             PadMode mode) {
    for (std::int64_t o = 0; o < out_size; ++o) {
        std::int64_t k = o - before;
        if (k < 0 || k >= in_size) {
            if (mode == PadMode::constant) {
                k = -1;
            } else if (mode == PadMode::replicate || in_size == 1) {
                k = k < 0 ? 0 : in_size - 1;
            } else {
                const std::int64_t period = 2 * (in_size - 1);
                k %= period;
                if (k < 0) k += period;
                if (k >= in_size) k = period - k;
            }
        }
        src[o] = k;
    }
}

namespace detail {
// Calls row(out_row_offset, in_row_offset or -1) for every row (all dims but the last) of the
// padded output, in row-major order. src[d] maps output to input indices of dimension d.
template <class Row>
void for_each_pad_row(const std::vector<std::vector<std::int64_t>>& src, const std::int64_t* in_shape,
                      const std::int64_t* out_shape, std::size_t nd, Row row) {
    std::vector<std::int64_t> in_stride(nd, 1);
    for (std::size_t d = nd - 1; d-- > 0;) in_stride[d] = in_stride[d + 1] * in_shape[d + 1];
    std::int64_t rows = 1;
    for (std::size_t d = 0; d + 1 < nd; ++d) rows *= out_shape[d];
    const std::int64_t width = out_shape[nd - 1];
    std::vector<std::int64_t> idx(nd, 0);
    for (std::int64_t r = 0; r < rows; ++r) {
        std::int64_t in_off = 0;
        for (std::size_t d = 0; d + 1 < nd && in_off >= 0; ++d) {
            const std::int64_t j = src[d][static_cast<std::size_t>(idx[d])];
            in_off = j < 0 ? -1 : in_off + j * in_stride[d];
        }
        row(r * width, in_off);
        for (std::size_t d = nd - 1; d-- > 0;) {  // odometer over the leading dims
            if (++idx[d] < out_shape[d]) break;
            idx[d] = 0;
        }
    }
}
}  // namespace detail

// out = in padded per dimension as src says (pad_source_index), `value` where src is -1.
// shapes: out [out_shape], in [in_shape], src[d] [out_shape[d]]; nd >= 1
inline void pad_forward(float* out, const float* in, const std::vector<std::vector<std::int64_t>>& src,
                        const std::int64_t* in_shape, const std::int64_t* out_shape, std::size_t nd, float value) {
    const std::vector<std::int64_t>& last = src[nd - 1];
    detail::for_each_pad_row(src, in_shape, out_shape, nd, [&](std::int64_t o, std::int64_t i) {
        for (std::size_t x = 0; x < last.size(); ++x)
            out[o + static_cast<std::int64_t>(x)] = i < 0 || last[x] < 0 ? value : in[i + last[x]];
    });
}

// dx = 0, then dx[source of o] += g[o] for every output element o that reads the input.
// shapes: dx [in_shape], g [out_shape], src as pad_forward
inline void pad_backward(float* dx, const float* g, const std::vector<std::vector<std::int64_t>>& src,
                         const std::int64_t* in_shape, const std::int64_t* out_shape, std::size_t nd) {
    std::int64_t n = 1;
    for (std::size_t d = 0; d < nd; ++d) n *= in_shape[d];
    for (std::int64_t k = 0; k < n; ++k) dx[k] = 0.0f;
    const std::vector<std::int64_t>& last = src[nd - 1];
    detail::for_each_pad_row(src, in_shape, out_shape, nd, [&](std::int64_t o, std::int64_t i) {
        if (i < 0) return;
        for (std::size_t x = 0; x < last.size(); ++x)
            if (last[x] >= 0) dx[i + last[x]] += g[o + static_cast<std::int64_t>(x)];
    });
}

// ---- index selection along one dimension ----

// out[a, j, b] = x[a, index[j], b]                 shapes: out [outer, m, inner], x [outer, n, inner],
// index [m], every index in [0, n)
inline void index_select_forward(float* out, const float* x, const std::int64_t* index, std::int64_t outer,
                                 std::int64_t n, std::int64_t m, std::int64_t inner) {
    for (std::int64_t a = 0; a < outer; ++a)
        for (std::int64_t j = 0; j < m; ++j) {
            const float* s = x + (a * n + index[j]) * inner;
            float* o = out + (a * m + j) * inner;
            for (std::int64_t b = 0; b < inner; ++b) o[b] = s[b];
        }
}

// dx = 0, then dx[a, index[j], b] += g[a, j, b] in order of j (a repeated index sums its rows).
// shapes: dx [outer, n, inner], g [outer, m, inner], index [m]
inline void index_select_backward(float* dx, const float* g, const std::int64_t* index, std::int64_t outer,
                                  std::int64_t n, std::int64_t m, std::int64_t inner) {
    for (std::int64_t k = 0; k < outer * n * inner; ++k) dx[k] = 0.0f;
    for (std::int64_t a = 0; a < outer; ++a)
        for (std::int64_t j = 0; j < m; ++j) {
            float* d = dx + (a * n + index[j]) * inner;
            const float* s = g + (a * m + j) * inner;
            for (std::int64_t b = 0; b < inner; ++b) d[b] += s[b];
        }
}

// ---- clamping ----

// out[i] = min(max(x[i], lo), hi): NaN stays NaN, and lo > hi gives hi (as torch.clamp and
// numpy.clip).                                                  shapes: out, x [n]
inline void clamp_forward(float* out, const float* x, float lo, float hi, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        const float r = x[i] < lo ? lo : x[i];
        out[i] = r > hi ? hi : r;
    }
}

// dx[i] = g[i] where lo <= x[i] <= hi, else 0 (PyTorch's rule: a bound's own value passes the
// gradient, NaN does not).                                      shapes: dx, g, x [n]
inline void clamp_backward(float* dx, const float* g, const float* x, float lo, float hi, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dx[i] = x[i] >= lo && x[i] <= hi ? g[i] : 0.0f;
}

}  // namespace nanotorch::kernels
