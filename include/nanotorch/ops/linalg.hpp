// nanotorch/ops/linalg.hpp — matrix products: matmul (PyTorch's rank rules) and linear (x·Wᵀ + b).
//
// Both run on kernels::sgemm. A 1-D or 2-D operand whose strides already describe a row-major
// matrix or its transpose (e.g. w.t()) is handed to sgemm with a trans flag and a leading
// dimension instead of being copied; backward uses the same flags for g·Bᵀ and Aᵀ·g, so the
// ops never materialise a transpose themselves (sgemm packs a transposed B internally). Sums over a batch (the weight gradient of linear, or of a
// 2-D matmul operand broadcast over a batch) run in a fixed order (sgemm's k loop, or sum_to's
// row-major walk), so results do not depend on the thread count. Deliberately absent: dot/mv/
// bmm aliases, outer products and any decomposition (inverse, solve, svd). Undefined operands
// (other than linear's optional bias) throw value_error, see core/tensor.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/ops/broadcast.hpp>
#include <nanotorch/ops/elementwise.hpp>  // ops::detail::wants_grad
#include <nanotorch/ops/shape.hpp>        // ops::detail::restride

namespace nanotorch {

// Helpers live in their own namespace so that they cannot collide with other op headers'.
namespace ops::linalg_detail {
using namespace ops::detail;

/// A tensor seen as a rows x cols matrix for sgemm: memory holds the matrix (trans = false) or
/// its transpose (trans = true), row-major with leading dimension ld. `holder` keeps a copy alive.
struct MatrixOperand {
    const float* data = nullptr;
    std::int64_t ld = 1;
    bool trans = false;
    Tensor holder;
};

/// Describes t, whose elements in row-major order form a rows x cols matrix, without copying
/// when its strides allow (2-D or 1-D views, or any contiguous tensor); otherwise copies.
inline MatrixOperand matrix_operand(const Tensor& t, std::int64_t rows, std::int64_t cols) {
    MatrixOperand m;
    std::int64_t s0 = 0, s1 = 0;  // element (r, c) lives at r * s0 + c * s1
    bool strided = false;
    // Strides describe the matrix only when the shapes agree (a [2, 3] gradient may stand for
    // a [6, 1] matrix, which is read as the contiguous tensor it is).
    if (t.dim() == 2 && t.size(0) == rows && t.size(1) == cols) {
        s0 = t.strides()[0];
        s1 = t.strides()[1];
        strided = true;
    } else if (t.dim() == 1 && (rows == 1 || cols == 1)) {
        (rows == 1 ? s1 : s0) = t.strides()[0];  // the other stride is never used
        strided = true;
    }
    if (strided) {
        const bool r1 = rows <= 1, c1 = cols <= 1;  // a stride along a size-1 dim is irrelevant
        if ((c1 || s1 == 1) && (r1 || s0 >= cols)) {
            m.data = t.data_ptr();
            m.ld = r1 ? std::max<std::int64_t>(cols, 1) : s0;
            return m;
        }
        if ((r1 || s0 == 1) && (c1 || s1 >= rows)) {
            m.data = t.data_ptr();
            m.ld = c1 ? std::max<std::int64_t>(rows, 1) : s1;
            m.trans = true;
            return m;
        }
    }
    m.holder = as_contiguous(t);
    m.data = m.holder.data_ptr();
    m.ld = std::max<std::int64_t>(cols, 1);
    return m;
}

/// C[M,N] = op(A)·op(B) + beta·C, where op transposes the *logical* matrix when ta / tb is set;
/// the storage transposition of each operand is folded into sgemm's flags.
inline void gemm(bool ta, const MatrixOperand& a, bool tb, const MatrixOperand& b, std::int64_t M, std::int64_t N,
                 std::int64_t K, float beta, float* C, std::int64_t ldc) {
    kernels::sgemm(ta != a.trans, tb != b.trans, M, N, K, 1.0f, a.data, a.ld, b.data, b.ld, beta, C,
                   std::max<std::int64_t>(ldc, 1));
}

/// Product of s[begin..end).
inline std::int64_t dims_product(const Shape& s, std::size_t begin, std::size_t end) {
    std::int64_t p = 1;
    for (std::size_t i = begin; i < end; ++i) p *= s[i];
    return p;
}

/// Shape bookkeeping for a batched matmul (b has >= 3 dims); no copies.
struct BatchedPlan {
    Shape a_mat;      // a's shape promoted to >= 2-D (a 1-D a becomes [1, K])
    Shape a_full, b_full, out_shape;
    std::int64_t batch = 1, M = 1, K = 1, N = 1;
};

inline BatchedPlan batched_plan(const Tensor& a, const Tensor& b) {
    BatchedPlan p;
    p.a_mat = a.dim() == 1 ? Shape{1, a.shape()[0]} : a.shape();
    const Shape& bs = b.shape();
    const std::size_t an = p.a_mat.size(), bn = bs.size();
    p.M = p.a_mat[an - 2];
    p.K = p.a_mat[an - 1];
    p.N = bs[bn - 1];
    NANOTORCH_CHECK(p.K == bs[bn - 2], shape_error, "matmul: shapes ", shape_str(a.shape()), " and ",
                    shape_str(bs), " cannot be multiplied");
    const Shape ab(p.a_mat.begin(), p.a_mat.end() - 2), bb(bs.begin(), bs.end() - 2);
    const std::size_t nb = std::max(ab.size(), bb.size());
    Shape batch(nb);
    for (std::size_t i = 0; i < nb; ++i) {
        const std::int64_t x = i < nb - ab.size() ? 1 : ab[i - (nb - ab.size())];
        const std::int64_t y = i < nb - bb.size() ? 1 : bb[i - (nb - bb.size())];
        NANOTORCH_CHECK(x == y || x == 1 || y == 1, shape_error, "matmul: shapes ", shape_str(a.shape()), " and ",
                        shape_str(bs), " cannot be multiplied (batch dimensions ", shape_str(ab), " and ",
                        shape_str(bb), " do not broadcast)");
        batch[i] = x == 1 ? y : x;
    }
    p.batch = dims_product(batch, 0, batch.size());
    p.a_full = batch;
    p.a_full.insert(p.a_full.end(), {p.M, p.K});
    p.b_full = batch;
    p.b_full.insert(p.b_full.end(), {p.K, p.N});
    p.out_shape = batch;
    if (a.dim() != 1) p.out_shape.push_back(p.M);  // PyTorch drops the prepended 1 again
    p.out_shape.push_back(p.N);
    return p;
}

/// a viewed with the promoted shape (a 1-D a as [1, K]), contiguous, no graph.
inline Tensor promoted(const Tensor& a, const Shape& a_mat) {
    const Tensor c = as_contiguous(a);
    return restride(c, a_mat, contiguous_strides(a_mat), c.offset());
}

}  // namespace ops::linalg_detail

// ---- matmul ----

/// Backward of matmul. Flat case (b is 1-D or 2-D): a is a [R, K] matrix (its leading dims
/// flattened), so ga = g·bᵀ and gb = aᵀ·g are one sgemm each, and gb sums over all R rows in
/// order. Batched case (b has >= 3 dims): per-batch products on the expanded operands, then
/// sum_to folds a broadcast operand's gradient back in row-major (fixed) order.
struct MatmulBackward : autograd::Node {
    Tensor a, b;
    bool batched = false;
    std::vector<Tensor> apply(const Tensor& g) override {
        return batched ? apply_batched(g) : apply_flat(g);
    }
    void release_saved() override { a = b = Tensor(); }
    const char* name() const override { return "MatmulBackward"; }

private:
    std::vector<Tensor> apply_flat(const Tensor& g) {
        using namespace ops::linalg_detail;
        const std::int64_t K = a.shape().back();
        const std::int64_t R = dims_product(a.shape(), 0, a.shape().size() - 1);
        const std::int64_t N = b.dim() == 2 ? b.shape()[1] : 1;
        const MatrixOperand gop = matrix_operand(g, R, N);
        Tensor ga, gb;
        if (wants_grad(*this, 0)) {  // ga[R,K] = g[R,N] · bᵀ
            ga = empty(a.shape());
            gemm(false, gop, true, matrix_operand(b, K, N), R, K, N, 0.0f, ga.data_ptr(), K);
        }
        if (wants_grad(*this, 1)) {  // gb[K,N] = aᵀ · g[R,N]
            gb = empty(b.shape());
            gemm(true, matrix_operand(a, R, K), false, gop, K, N, R, 0.0f, gb.data_ptr(), N);
        }
        return {ga, gb};
    }

    std::vector<Tensor> apply_batched(const Tensor& g) {
        using namespace ops::linalg_detail;
        const BatchedPlan p = batched_plan(a, b);
        const Tensor gc = as_contiguous(g);
        const float* gp = gc.data_ptr();
        const std::int64_t M = p.M, K = p.K, N = p.N;
        Tensor ga, gb;
        if (wants_grad(*this, 0)) {  // ga[i] = g[i] · b[i]ᵀ, then folded back to a's shape
            const Tensor bf = expand_copy(b, p.b_full);
            Tensor full = empty(p.a_full);
            const float* bp = bf.data_ptr();
            float* out = full.data_ptr();
            for (std::int64_t i = 0; i < p.batch; ++i)
                kernels::sgemm(false, true, M, K, N, 1.0f, gp + i * M * N, std::max<std::int64_t>(N, 1),
                               bp + i * K * N, std::max<std::int64_t>(N, 1), 0.0f, out + i * M * K,
                               std::max<std::int64_t>(K, 1));
            const Tensor folded = sum_to(full, p.a_mat);
            ga = restride(folded, a.shape(), contiguous_strides(a.shape()), folded.offset());
        }
        if (wants_grad(*this, 1)) {  // gb[i] = a[i]ᵀ · g[i], then folded back to b's shape
            const Tensor af = expand_copy(promoted(a, p.a_mat), p.a_full);
            Tensor full = empty(p.b_full);
            const float* ap = af.data_ptr();
            float* out = full.data_ptr();
            for (std::int64_t i = 0; i < p.batch; ++i)
                kernels::sgemm(true, false, K, N, M, 1.0f, ap + i * M * K, std::max<std::int64_t>(K, 1),
                               gp + i * M * N, std::max<std::int64_t>(N, 1), 0.0f, out + i * K * N,
                               std::max<std::int64_t>(N, 1));
            gb = sum_to(full, b.shape());
        }
        return {ga, gb};
    }
};

/// Matrix product with PyTorch's rank rules:
///   [K]·[K] -> [] (dot);  [M,K]@[K,N] -> [M,N];  [K]@[K,N] -> [N];  [M,K]@[K] -> [M];
///   [...,M,K]@[K,N] -> [...,M,N] and [...,M,K]@[K] -> [...,M] (b shared by the whole batch);
///   [...,M,K]@[...,K,N] -> [...,M,N] with batch dims broadcast NumPy-style (a 1-D or 2-D a is
///   shared by every batch element).
/// @throws shape_error ("matmul: shapes [2, 3] and [4, 5] cannot be multiplied") on an inner
///   dimension mismatch, batch dims that do not broadcast, or a 0-D operand.
inline Tensor matmul(const Tensor& a, const Tensor& b) {
    using namespace ops::linalg_detail;
    NANOTORCH_CHECK(a.dim() >= 1 && b.dim() >= 1, shape_error, "matmul: shapes ", shape_str(a.shape()), " and ",
                    shape_str(b.shape()), " cannot be multiplied (both arguments need at least 1 dimension)");
    Tensor out;
    const bool batched = b.dim() >= 3;
    if (!batched) {
        // Flatten a's leading dims into the row count: one sgemm for the whole batch.
        const std::int64_t K = a.shape().back();
        const std::int64_t R = dims_product(a.shape(), 0, a.shape().size() - 1);
        const std::int64_t N = b.dim() == 2 ? b.shape()[1] : 1;
        NANOTORCH_CHECK(b.shape()[0] == K, shape_error, "matmul: shapes ", shape_str(a.shape()), " and ",
                        shape_str(b.shape()), " cannot be multiplied");
        Shape out_shape(a.shape().begin(), a.shape().end() - 1);
        if (b.dim() == 2) out_shape.push_back(N);
        out = empty(out_shape);
        gemm(false, matrix_operand(a, R, K), false, matrix_operand(b, K, N), R, N, K, 0.0f, out.data_ptr(), N);
    } else {
        const BatchedPlan p = batched_plan(a, b);
        const Tensor af = expand_copy(promoted(a, p.a_mat), p.a_full);
        const Tensor bf = expand_copy(b, p.b_full);
        out = empty(p.out_shape);
        const float* ap = af.data_ptr();
        const float* bp = bf.data_ptr();
        float* op = out.data_ptr();
        const std::int64_t M = p.M, K = p.K, N = p.N;
        // Parallel over the batch when each product is small; with one chunk, sgemm itself
        // parallelises over rows (a nested parallel_for runs serially, so never both).
        const std::int64_t grain = std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(1, M * N * K));
        parallel_for(0, p.batch, grain, [&](std::int64_t i0, std::int64_t i1) {
            for (std::int64_t i = i0; i < i1; ++i)
                kernels::sgemm(false, false, M, N, K, 1.0f, ap + i * M * K, std::max<std::int64_t>(K, 1),
                               bp + i * K * N, std::max<std::int64_t>(N, 1), 0.0f, op + i * M * N,
                               std::max<std::int64_t>(N, 1));
        });
    }
    if (auto* tr = trace::active()) tr->emit("MatMul", {trace::value(a), trace::value(b)}, {out});
    if (autograd::any_requires_grad({&a, &b})) {
        auto n = std::make_shared<MatmulBackward>();
        n->a = a.detach();
        n->b = b.detach();
        n->batched = batched;
        autograd::attach(out, n, {a, b});
    }
    return out;
}

// ---- linear ----

/// Backward of linear. With g viewed as [R, out] and x as [R, in]:
///   gx = g·w (one sgemm NN), gw = gᵀ·x (one sgemm TN: the sum over all R rows, in row order),
///   gb = column sums of g (rows added in order; columns split across threads, which cannot
///   change any sum because each column is summed by one thread).
struct LinearBackward : autograd::Node {
    Tensor x, w;
    std::vector<Tensor> apply(const Tensor& g) override {
        using namespace ops::linalg_detail;
        const std::int64_t O = w.shape()[0], I = w.shape()[1];
        const std::int64_t R = dims_product(x.shape(), 0, x.shape().size() - 1);
        const Tensor gc = as_contiguous(g);
        const MatrixOperand gop = matrix_operand(gc, R, O);
        Tensor gx, gw, gb;
        if (wants_grad(*this, 0)) {
            gx = empty(x.shape());
            gemm(false, gop, false, matrix_operand(w, O, I), R, I, O, 0.0f, gx.data_ptr(), I);
        }
        if (wants_grad(*this, 1)) {
            gw = empty(w.shape());
            gemm(true, gop, false, matrix_operand(x, R, I), O, I, R, 0.0f, gw.data_ptr(), I);
        }
        if (wants_grad(*this, 2)) {
            gb = zeros({O});
            float* acc = gb.data_ptr();
            const float* gp = gc.data_ptr();
            const std::int64_t grain = std::max<std::int64_t>(16, 32768 / std::max<std::int64_t>(R, 1));
            parallel_for(0, O, grain, [&](std::int64_t c0, std::int64_t c1) {
                for (std::int64_t r = 0; r < R; ++r) kernels::add(acc + c0, acc + c0, gp + r * O + c0, c1 - c0);
            });
        }
        return {gx, gw, gb};
    }
    void release_saved() override { x = w = Tensor(); }
    const char* name() const override { return "LinearBackward"; }
};

/// y = x·wᵀ + b for x [..., in], w [out, in], b [out] (or an undefined Tensor for no bias);
/// y has shape [..., out]. Example: linear(x /*[64, 784]*/, w /*[10, 784]*/, b /*[10]*/) -> [64, 10].
/// @throws shape_error naming both shapes when x is 0-D, w is not 2-D, x's last dim is not w's
///   in_features, or b is not [out]; unsupported_error while tracing for ONNX export when x is
///   not 2-D (ONNX Gemm needs a 2-D input).
inline Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor()) {
    using namespace ops::linalg_detail;
    NANOTORCH_CHECK(w.dim() == 2, shape_error, "linear: weight must be 2-D [out_features, in_features], got shape ",
                    shape_str(w.shape()));
    const std::int64_t O = w.shape()[0], I = w.shape()[1];
    NANOTORCH_CHECK(x.dim() >= 1 && x.shape().back() == I, shape_error, "linear: input shape ", shape_str(x.shape()),
                    " and weight shape ", shape_str(w.shape()), " are incompatible (expected input of shape [..., ",
                    I, "])");
    NANOTORCH_CHECK(!b.defined() || (b.dim() == 1 && b.shape()[0] == O), shape_error, "linear: bias shape ",
                    shape_str(b.defined() ? b.shape() : Shape{}), " does not match weight shape ", shape_str(w.shape()),
                    " (expected [", O, "])");
    const std::int64_t R = dims_product(x.shape(), 0, x.shape().size() - 1);
    Shape out_shape;
    out_shape.reserve(x.shape().size());
    out_shape.assign(x.shape().begin(), x.shape().end() - 1);
    out_shape.push_back(O);
    Tensor y = empty(std::move(out_shape));
    float beta = 0.0f;
    if (b.defined() && R > 0 && O > 0) {  // start every row at b, then accumulate x·wᵀ on top
        const Tensor bc = ops::detail::as_contiguous(b);
        const float* bp = bc.data_ptr();
        float* yp = y.data_ptr();
        for (std::int64_t r = 0; r < R; ++r) std::copy(bp, bp + O, yp + r * O);
        beta = 1.0f;
    }
    gemm(false, matrix_operand(x, R, I), true, matrix_operand(w, O, I), R, O, I, beta, y.data_ptr(), O);
    if (auto* tr = trace::active()) {  // Gemm: y = x·wᵀ + b
        if (x.dim() != 2) tr->unsupported("linear", "ONNX Gemm needs a 2-D input; flatten it first");
        tr->emit("Gemm", {trace::value(x), trace::value(w), trace::value(b)}, {y},
                 {trace::attr("alpha", 1.0f), trace::attr("beta", 1.0f), trace::attr("transB", std::int64_t{1})});
    }
    if (autograd::any_requires_grad({&x, &w, &b})) {
        auto n = std::make_shared<LinearBackward>();
        n->x = x.detach();
        n->w = w.detach();
        autograd::attach(y, n, {x, w, b});
    }
    return y;
}

// ---- Tensor methods ----
inline Tensor Tensor::matmul(const Tensor& other) const { return nanotorch::matmul(*this, other); }

}  // namespace nanotorch
