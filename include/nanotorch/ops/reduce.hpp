// nanotorch/ops/reduce.hpp — reductions: sum, mean, max (values and indices) and argmax.
//
// Every reduction moves the reduced dimensions to the end (a stride permutation), makes that
// layout contiguous, and reduces each contiguous run of `inner` elements into one output. The
// summation order is therefore fixed for a given build whatever the thread count: runs are
// split into fixed 4096-element blocks summed with kernels::sum, and block partials are added
// in order in double. Backward broadcasts the gradient back over the reduced dimensions
// (expand_copy); max routes it to the first maximal element. Deliberately absent: min, prod,
// var/std, cumulative sums (build them from these or add them here when needed).
// Undefined inputs throw value_error (see core/tensor.hpp); other errors are listed per function.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/pointwise.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/ops/broadcast.hpp>
#include <nanotorch/ops/elementwise.hpp>  // ops::detail::wants_grad
#include <nanotorch/ops/shape.hpp>        // ops::detail::restride

namespace nanotorch {

// Helpers live in their own namespace so that they cannot collide with other op headers'.
namespace ops::reduce_detail {
using namespace ops::detail;

/// A reduction problem: `x` rearranged as a contiguous [outer, inner] matrix whose rows are the
/// runs to reduce, in row-major order of the kept dimensions.
struct ReductionLayout {
    Tensor rows;           // contiguous, outer * inner elements
    std::int64_t outer = 1;
    std::int64_t inner = 1;
    Shape out_shape;       // the result's shape (reduced dims dropped or kept as 1)
    Shape keep_shape;      // the result's shape with reduced dims kept as 1 (for backward)
};

/// Validates and wraps `dims` against x (duplicates are a value_error); returns a mask.
/// A 0-D tensor accepts dim 0 / -1, as in PyTorch, and then reduces nothing.
inline std::vector<bool> reduced_mask(const Tensor& x, const Shape& dims, const char* op) {
    const std::int64_t nd = x.dim();
    std::vector<bool> mask(static_cast<std::size_t>(nd), false);
    std::vector<bool> seen(static_cast<std::size_t>(std::max<std::int64_t>(nd, 1)), false);
    for (std::int64_t d : dims) {
        const std::int64_t w = wrap_dim(d, std::max<std::int64_t>(nd, 1), op);
        NANOTORCH_CHECK(!seen[static_cast<std::size_t>(w)], value_error, op, ": dim ", d, " appears more than once in ",
                        shape_str(dims));
        seen[static_cast<std::size_t>(w)] = true;
        if (nd > 0) mask[static_cast<std::size_t>(w)] = true;
    }
    return mask;
}

/// Permutes the reduced dims of x to the end (kept dims keep their order) and makes it contiguous.
inline ReductionLayout reduction_layout(const Tensor& x, const std::vector<bool>& mask, bool keepdim) {
    ReductionLayout r;
    Shape perm_shape, perm_strides, tail_shape, tail_strides;
    for (std::size_t i = 0; i < mask.size(); ++i) {
        const std::int64_t s = x.shape()[i];
        if (mask[i]) {
            tail_shape.push_back(s);
            tail_strides.push_back(x.strides()[i]);
            r.inner *= s;
            r.keep_shape.push_back(1);
            if (keepdim) r.out_shape.push_back(1);
        } else {
            perm_shape.push_back(s);
            perm_strides.push_back(x.strides()[i]);
            r.outer *= s;
            r.keep_shape.push_back(s);
            r.out_shape.push_back(s);
        }
    }
    perm_shape.insert(perm_shape.end(), tail_shape.begin(), tail_shape.end());
    perm_strides.insert(perm_strides.end(), tail_strides.begin(), tail_strides.end());
    r.rows = as_contiguous(restride(x, perm_shape, perm_strides, x.offset()));
    return r;
}

/// Sum of n contiguous floats in a fixed order: 4096-element blocks (kernels::sum), block
/// partials added left to right in double. Blocks may run in parallel; the order does not change.
inline float sum_run(const float* p, std::int64_t n) {
    constexpr std::int64_t block = 4096;
    if (n <= block) return kernels::sum(p, n);
    const std::int64_t nb = (n + block - 1) / block;
    std::vector<double> partial(static_cast<std::size_t>(nb));
    parallel_for(0, nb, 16, [&](std::int64_t b0, std::int64_t b1) {
        for (std::int64_t b = b0; b < b1; ++b)
            partial[static_cast<std::size_t>(b)] = kernels::sum(p + b * block, std::min(block, n - b * block));
    });
    double s = 0.0;
    for (double v : partial) s += v;
    return static_cast<float>(s);
}

/// out[o] = (sum of row o) / divisor, for every row of the layout; no graph. Dividing (rather
/// than multiplying by a rounded 1/n) makes mean exact whenever the sum is.
inline Tensor sum_rows(const ReductionLayout& r, float divisor) {
    Tensor out = empty(r.out_shape);
    const float* src = r.rows.data_ptr();
    float* dst = out.data_ptr();
    const std::int64_t inner = r.inner;
    parallel_for(0, r.outer, std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(inner, 1)),
                 [&](std::int64_t o0, std::int64_t o1) {
                     for (std::int64_t o = o0; o < o1; ++o) dst[o] = sum_run(src + o * inner, inner) / divisor;
                 });
    return out;
}

/// Index of the first maximum of p[0..n) (n >= 1); a NaN counts as the maximum, as in PyTorch.
inline std::int64_t first_max_index(const float* p, std::int64_t n) {
    std::int64_t best = 0;
    if (std::isnan(p[0])) return 0;
    for (std::int64_t j = 1; j < n; ++j) {
        if (std::isnan(p[j])) return j;
        if (p[j] > p[best]) best = j;
    }
    return best;
}

}  // namespace ops::reduce_detail

// ---- sum / mean ----

/// Backward of sum and mean: the gradient, viewed with the reduced dims kept as 1, broadcast
/// back to the input's shape and multiplied by `scale` (1 for sum, 1/count for mean).
struct SumBackward : autograd::Node {
    Shape input_shape, keep_shape;
    float scale = 1.0f;
    const char* op_name = "SumBackward";
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        const Tensor gk = ops::detail::restride(gc, keep_shape, contiguous_strides(keep_shape), gc.offset());
        const Tensor e = ops::detail::expand_copy(gk, input_shape);  // may alias g when nothing was reduced
        if (scale == 1.0f) return {e};
        Tensor out = empty(input_shape);
        kernels::parallel_mul_scalar(out.data_ptr(), e.data_ptr(), scale, out.numel());
        return {out};
    }
    const char* name() const override { return op_name; }
};

namespace ops::reduce_detail {
inline Tensor reduce_sum(const Tensor& x, const Shape& dims, bool keepdim, bool all, bool mean, const char* op) {
    const std::vector<bool> mask =
        all ? std::vector<bool>(static_cast<std::size_t>(x.dim()), true) : reduced_mask(x, dims, op);
    const ReductionLayout r = reduction_layout(x, mask, all ? false : keepdim);
    // The mean of zero elements is 0/0 = NaN, as in PyTorch.
    const float count = static_cast<float>(r.inner);
    Tensor out = sum_rows(r, mean ? count : 1.0f);
    if (auto* tr = trace::active()) {
        std::vector<std::int64_t> axes;
        for (std::size_t i = 0; i < mask.size(); ++i)
            if (mask[i]) axes.push_back(static_cast<std::int64_t>(i));
        const char* op_type = mean ? "ReduceMean" : "ReduceSum";
        const std::int64_t keep = all ? 0 : keepdim;
        if (axes.empty())
            tr->emit("Identity", {trace::value(x)}, {out});
        else if (!mean && tr->opset() >= 13)  // ReduceSum takes axes as an input from opset 13
            tr->emit(op_type, {trace::value(x), trace::int64_constant(axes)}, {out}, {trace::attr("keepdims", keep)});
        else
            tr->emit(op_type, {trace::value(x)}, {out}, {trace::attr("axes", axes), trace::attr("keepdims", keep)});
    }
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<SumBackward>();
        n->input_shape = x.shape();
        n->keep_shape = r.keep_shape;
        n->scale = mean && r.inner > 0 ? 1.0f / count : 1.0f;  // (an empty input has nothing to scale)
        n->op_name = mean ? "MeanBackward" : "SumBackward";
        autograd::attach(out, n, {x});
    }
    return out;
}
}  // namespace ops::reduce_detail

/// Sum of all elements, as a 0-D tensor (0 for an empty tensor). Throws only for an undefined x.
inline Tensor sum(const Tensor& x) { return ops::reduce_detail::reduce_sum(x, {}, false, true, false, "sum"); }

/// Sum over `dims` (negative dims count from the end). keepdim keeps each reduced dim as size 1.
/// An empty `dims` reduces nothing (NumPy's axis=(); PyTorch's dim=[] would reduce everything —
/// call sum(x) for that). A 0-D x accepts dim 0 or -1 and reduces nothing.
/// Example: sum(tensor({1, 2, 3, 4, 5, 6}, {2, 3}), {0}) == [5, 7, 9].
/// @throws value_error for a dim out of range or listed twice.
inline Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false) {
    return ops::reduce_detail::reduce_sum(x, dims, keepdim, false, false, "sum");
}

/// Mean of all elements, as a 0-D tensor (NaN for an empty tensor). Throws only for an undefined x.
inline Tensor mean(const Tensor& x) { return ops::reduce_detail::reduce_sum(x, {}, false, true, true, "mean"); }

/// Mean over `dims`; same dims rules as sum(x, dims, keepdim).
/// @throws value_error for a dim out of range or listed twice.
inline Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false) {
    return ops::reduce_detail::reduce_sum(x, dims, keepdim, false, true, "mean");
}

// ---- max / argmax ----

/// Values and positions of a max along one dim. indices[o] is the index along `dim` of the
/// maximum for output element o (row-major order of values' shape).
struct MaxResult {
    Tensor values;
    std::vector<std::int64_t> indices;
};

/// Backward of max(x, dim): each output's gradient goes to the input element it was taken from
/// (the first maximal one on ties); every other input element gets 0.
struct MaxBackward : autograd::Node {
    Shape input_shape;
    std::int64_t dim = 0;
    std::vector<std::int64_t> indices;
    std::vector<Tensor> apply(const Tensor& g) override {
        Tensor gx = zeros(input_shape);
        const Tensor gc = ops::detail::as_contiguous(g);
        const float* gp = gc.data_ptr();
        float* out = gx.data_ptr();
        const std::int64_t size = input_shape[static_cast<std::size_t>(dim)];
        std::int64_t after = 1;
        for (std::size_t i = static_cast<std::size_t>(dim) + 1; i < input_shape.size(); ++i) after *= input_shape[i];
        // Output element o = before * after + a sits at input (before, indices[o], a).
        for (std::size_t o = 0; o < indices.size(); ++o) {
            const std::int64_t oi = static_cast<std::int64_t>(o);
            const std::int64_t before = oi / after, a = oi % after;
            out[(before * size + indices[o]) * after + a] = gp[o];
        }
        return {gx};
    }
    void release_saved() override { indices = {}; }
    const char* name() const override { return "MaxBackward"; }
};

/// Max along `dim` with the position of each maximum. On ties the first (lowest index) maximal
/// element wins, and a NaN counts as larger than everything (as in PyTorch). Differentiable in
/// values. Example: max_with_indices(tensor({1, 5, 5, 2}, {2, 2}), 1) -> values [5, 5], indices {1, 0}.
/// @throws shape_error when x is 0-D or dim has size 0; value_error when dim is out of range.
inline MaxResult max_with_indices(const Tensor& x, std::int64_t dim, bool keepdim = false) {
    NANOTORCH_CHECK(x.dim() > 0, shape_error, "max: expects a tensor with at least 1 dimension, got shape ",
                    shape_str(x.shape()));
    const std::int64_t d = wrap_dim(dim, x.dim(), "max");
    const std::int64_t size = x.shape()[static_cast<std::size_t>(d)];
    NANOTORCH_CHECK(size > 0, shape_error, "max: cannot reduce dim ", d, " of size 0 (shape ", shape_str(x.shape()),
                    ")");
    std::vector<bool> mask(static_cast<std::size_t>(x.dim()), false);
    mask[static_cast<std::size_t>(d)] = true;
    const ops::reduce_detail::ReductionLayout r = ops::reduce_detail::reduction_layout(x, mask, keepdim);
    MaxResult res{empty(r.out_shape), std::vector<std::int64_t>(static_cast<std::size_t>(r.outer))};
    const float* src = r.rows.data_ptr();
    float* dst = res.values.data_ptr();
    std::int64_t* idx = res.indices.data();
    parallel_for(0, r.outer, std::max<std::int64_t>(1, 32768 / size), [&](std::int64_t o0, std::int64_t o1) {
        for (std::int64_t o = o0; o < o1; ++o) {
            const std::int64_t j = ops::reduce_detail::first_max_index(src + o * size, size);
            idx[o] = j;
            dst[o] = src[o * size + j];
        }
    });
    if (auto* tr = trace::active())
        tr->emit("ReduceMax", {trace::value(x)}, {res.values},
                 {trace::attr("axes", std::vector<std::int64_t>{d}), trace::attr("keepdims", std::int64_t{keepdim})});
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<MaxBackward>();
        n->input_shape = x.shape();
        n->dim = d;
        n->indices = res.indices;
        autograd::attach(res.values, n, {x});
    }
    return res;
}

/// Max along `dim` (the values only); see max_with_indices for ties and NaN.
/// @throws as max_with_indices.
inline Tensor max(const Tensor& x, std::int64_t dim, bool keepdim = false) {
    return max_with_indices(x, dim, keepdim).values;
}

/// Index of the (first) maximum along `dim`, one per element of the reduced shape in row-major
/// order: for logits [N, C], argmax(logits, 1) is the N predicted classes. Never differentiable.
/// @throws as max_with_indices.
inline std::vector<std::int64_t> argmax(const Tensor& x, std::int64_t dim) {
    NoGradGuard no_grad;  // the values are discarded; recording a node would be wasted work
    return max_with_indices(x, dim, false).indices;
}

// ---- Tensor methods ----
inline Tensor Tensor::sum() const { return nanotorch::sum(*this); }
inline Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return nanotorch::sum(*this, dims, keepdim); }
inline Tensor Tensor::mean() const { return nanotorch::mean(*this); }
inline Tensor Tensor::mean(const Shape& dims, bool keepdim) const { return nanotorch::mean(*this, dims, keepdim); }
inline std::vector<std::int64_t> Tensor::argmax(std::int64_t dim) const { return nanotorch::argmax(*this, dim); }

}  // namespace nanotorch
