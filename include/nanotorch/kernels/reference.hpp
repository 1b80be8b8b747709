// nanotorch/kernels/reference.hpp — plain scalar versions of the vector kernels.
//
// Each function is the readable definition of what its optimized twin in kernels/simd.hpp
// computes. Tests compare the two at awkward sizes; with NANOTORCH_NO_SIMD (or no SIMD
// architecture) simd.hpp forwards here. Raw pointers, sizes last, outputs first (llm.c order).
// Reductions accumulate left to right in the order written, so they are reproducible.
#pragma once

#include <cmath>
#include <cstdint>

namespace nanotorch::kernels::ref {

// dst[i] = src[i]                                              shapes: dst, src [n] (no overlap)
inline void copy_floats(float* dst, const float* src, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i];
}
// dst[i] = 0                                                   shapes: dst [n]
inline void zero_floats(float* dst, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = 0.0f;
}
// out[i] = a[i] (op) b[i]                                       shapes: out, a, b [n]
inline void add(float* out, const float* a, const float* b, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
inline void sub(float* out, const float* a, const float* b, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] - b[i];
}
inline void mul(float* out, const float* a, const float* b, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}
inline void div(float* out, const float* a, const float* b, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] / b[i];
}
// out[i] = a[i] + s ; out[i] = a[i] * s                         shapes: out, a [n]
inline void add_scalar(float* out, const float* a, float s, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] + s;
}
inline void mul_scalar(float* out, const float* a, float s, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] * s;
}
// y[i] += alpha * x[i]                                          shapes: y, x [n]
inline void axpy(float* y, float alpha, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
// y[i] = alpha * x[i] + beta * y[i]                              shapes: y, x [n]
inline void axpby(float* y, float alpha, const float* x, float beta, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
}
// out[i] = max(x[i], 0)                                          shapes: out, x [n]
inline void relu_forward(float* out, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
// dx[i] = y[i] > 0 ? dy[i] : 0, where y is relu's output          shapes: dx, dy, y [n]
inline void relu_backward(float* dx, const float* dy, const float* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
// Pooling windows over interleaved planes (kernels/pool.hpp's small-plane path): plane j's
// element e is t[e·lanes + j]. For each lane j < lanes, over the window's taps
// t[(r·row_stride + c)·lanes + j], r < rows, c < cols, in row-major order (rows, cols >= 1):
// max_pick_window: o[j] = the tap max pooling keeps: the first taken, then each tap that is greater
//   or the first NaN (a NaN is never replaced).
// sum_window:      o[j] = (0 + the taps in order) / div.
inline void max_pick_window(float* o, const float* t, std::int64_t lanes, std::int64_t rows, std::int64_t cols,
                            std::int64_t row_stride) {
    for (std::int64_t j = 0; j < lanes; ++j) {
        float best = t[j];
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = r == 0 ? 1 : 0; c < cols; ++c) {
                const float v = t[(r * row_stride + c) * lanes + j];
                if (!(v <= best || best != best)) best = v;
            }
        o[j] = best;
    }
}
// max_pick_window's backward: for each lane j, g[j] is added to the gradient gi of the tap
// max_pick_window keeps (gi laid out as t), and +0 to every other tap of the window. Adding +0 is
// exact here: a gradient that starts at +0 and only has values added is never −0.
inline void max_pick_window_backward(float* gi, const float* t, const float* g, std::int64_t lanes, std::int64_t rows,
                                     std::int64_t cols, std::int64_t row_stride) {
    for (std::int64_t j = 0; j < lanes; ++j) {
        float best = t[j];
        std::int64_t at = 0;
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = r == 0 ? 1 : 0; c < cols; ++c) {
                const float v = t[(r * row_stride + c) * lanes + j];
                if (!(v <= best || best != best)) best = v, at = r * row_stride + c;
            }
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) {
                const std::int64_t e = r * row_stride + c;
                gi[e * lanes + j] += e == at ? g[j] : 0.0f;
            }
    }
}
inline void sum_window(float* o, const float* t, std::int64_t lanes, std::int64_t rows, std::int64_t cols,
                       std::int64_t row_stride, float div) {
    for (std::int64_t j = 0; j < lanes; ++j) {
        float sum = 0.0f;
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) sum += t[(r * row_stride + c) * lanes + j];
        o[j] = sum / div;
    }
}
// sum of x                                                       shapes: x [n]
inline float sum(const float* x, std::int64_t n) {
    float s = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) s += x[i];
    return s;
}
// sum of a[i] * b[i]                                             shapes: a, b [n]
inline float dot(const float* a, const float* b, std::int64_t n) {
    float s = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

// out[i] = init + Σ_{t < taps} w[t] · src[t][i], t ascending           shapes: out, src[t] [n]
// (the direct depthwise convolution's inner loop: one output row or flat plane, taps summed)
inline void fma_taps(float* out, const float* const* src, const float* w, std::int64_t taps, float init,
                     std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        float acc = init;
        for (std::int64_t t = 0; t < taps; ++t) acc += w[t] * src[t][i];
        out[i] = acc;
    }
}
// out[t] = Σ_{i < n} a[i] · src[t][i] for t < taps, i ascending        shapes: a, src[t] [n]; out [taps]
inline void dot_taps(float* out, const float* a, const float* const* src, std::int64_t taps, std::int64_t n) {
    for (std::int64_t t = 0; t < taps; ++t) out[t] = dot(a, src[t], n);
}
// sum of (x[i] - m)^2                                            shapes: x [n]
inline float sum_sq_dev(const float* x, float m, std::int64_t n) {
    float s = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) s += (x[i] - m) * (x[i] - m);
    return s;
}
// sum of a[i] * (x[i] - m)                                       shapes: a, x [n]
inline float dot_dev(const float* a, const float* x, float m, std::int64_t n) {
    float s = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) s += a[i] * (x[i] - m);
    return s;
}
// out[i] = x[i] * s + t                                          shapes: out, x [n]
inline void scale_shift(float* out, const float* x, float s, float t, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = x[i] * s + t;
}
// out[i] = max(x[i] * s + t, 0): scale_shift then relu_forward in one pass, the same two roundings
// and the same comparison                                        shapes: out, x [n]
inline void scale_shift_relu(float* out, const float* x, float s, float t, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        const float v = x[i] * s + t;
        out[i] = v > 0.0f ? v : 0.0f;
    }
}
// out[i] = relu?((x[i] * s + t) + r[i]), the affine map only when `affine`, r[i] + y when
// residual_first: scale_shift, add and relu_forward in one pass   shapes: out, x, r [n]
inline void affine_residual(float* out, const float* x, const float* r, bool affine, float s, float t,
                            bool residual_first, bool relu, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        float v = x[i];
        if (affine) v = x[i] * s + t;
        v = residual_first ? r[i] + v : v + r[i];
        out[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}
// What conv2d does to each value of its product as it stores it (kernels/conv.hpp), in the order
// and with the operations of the passes it replaces (the bias add, then ConvEpilogue's
// scale_shift, residual add and relu_forward): v + bias[o], then v · scale[o] + shift[o], then
// v + r (r + v when residual_first), then v > 0 ? v : +0. The per-channel pointers start at the
// first output channel being stored (o = 0 there), the residual at the first value stored and
// laid out as the destination. Null pointers skip their step. finish_rows (one plane) and
// conv_lanes_product (a block of channels) take it.
struct ConvFinish {
    const float* bias = nullptr;
    const float* scale = nullptr;  // with shift
    const float* shift = nullptr;
    const float* residual = nullptr;
    bool residual_first = false;
    bool relu = false;
};
// dst[r·cols + j] = relu?(((src[r·src_stride + j] + bias) * s + t) + residual[r·cols + j]), each
// step only when asked: add_scalar, scale_shift, add and relu_forward in one pass
//                                                                shapes: dst [rows·cols], src rows
inline void finish_rows(float* dst, const float* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols,
                        const ConvFinish& f) {
    for (std::int64_t r = 0; r < rows; ++r, dst += cols, src += src_stride)
        for (std::int64_t j = 0; j < cols; ++j) {
            float v = src[j];
            if (f.bias) v = v + *f.bias;
            if (f.scale) v = v * *f.scale + *f.shift;
            if (f.residual) v = f.residual_first ? f.residual[r * cols + j] + v : v + f.residual[r * cols + j];
            if (f.relu) v = v > 0.0f ? v : 0.0f;
            dst[j] = v;
        }
}
// out[i] = (g[i] - gm - (x[i] - m) * p) * k                      shapes: out, g, x [n]
inline void center_project_scale(float* out, const float* g, const float* x, float m, float gm, float p, float k,
                                 std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = (g[i] - gm - (x[i] - m) * p) * k;
}

}  // namespace nanotorch::kernels::ref
