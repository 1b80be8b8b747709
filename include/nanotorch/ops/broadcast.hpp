// nanotorch/ops/broadcast.hpp — non-differentiable layout helpers the ops build on.
//
// contiguous_copy (a fresh row-major copy), as_contiguous (no copy when already contiguous),
// expand_copy (materialise a broadcast) and sum_to (the reverse: sum a broadcast gradient back
// to an operand's shape). They never record graph nodes; ops call them inside forward and
// backward code. Kept apart from ops so that every op header can use them. All of it lives in
// ops::detail and is not public API; expand_copy and sum_to throw shape_error when `shape` is
// not a broadcast of (resp. to) the tensor's shape, which callers rule out beforehand.
#pragma once

#include <cstdint>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/simd.hpp>

namespace nanotorch::ops::detail {

/// A fresh contiguous tensor with t's values (never aliases t).
inline Tensor contiguous_copy(const Tensor& t) {
    Tensor c = empty(t.shape());
    if (c.numel() > 0) t.copy_strided_to(c.data_ptr());
    return c;
}

/// t itself when contiguous, else a contiguous copy (no graph either way). A contiguous t with no
/// autograd state is returned as the same handle: detach() would build an identical TensorImpl
/// (three allocations with its shape and strides, on every op's every input at inference).
inline Tensor as_contiguous(const Tensor& t) {
    if (!t.is_contiguous()) return contiguous_copy(t);
    return t.requires_grad() || t.grad_fn() ? t.detach() : t;
}

/// Materialises t broadcast to `shape` (which broadcast_shapes(t.shape(), shape) == shape).
inline Tensor expand_copy(const Tensor& t, const Shape& shape) {
    if (t.shape() == shape) return as_contiguous(t);
    const std::size_t nd = shape.size();
    NANOTORCH_CHECK(t.dim() <= static_cast<std::int64_t>(nd), shape_error, "expand: cannot expand ",
                    shape_str(t.shape()), " to ", shape_str(shape));
    // Strides of t viewed in the output's rank, 0 where t is broadcast.
    Shape st(nd, 0);
    const std::size_t lead = nd - t.shape().size();
    for (std::size_t i = 0; i < t.shape().size(); ++i) {
        const std::int64_t d = t.shape()[i];
        NANOTORCH_CHECK(d == shape[lead + i] || d == 1, shape_error, "expand: cannot expand ",
                        shape_str(t.shape()), " to ", shape_str(shape));
        st[lead + i] = d == 1 ? 0 : t.strides()[i];
    }
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = t.storage();
    impl->shape = shape;
    impl->strides = st;
    impl->offset = t.offset();
    return contiguous_copy(Tensor(std::move(impl)));
}

/// Sums g (of a broadcast result's shape) down to `shape`, the operand's shape.
inline Tensor sum_to(const Tensor& g, const Shape& shape) {
    if (g.shape() == shape) return g;
    const Shape& gs = g.shape();
    const std::size_t nd = gs.size();
    NANOTORCH_CHECK(shape.size() <= nd, shape_error, "sum_to: cannot reduce ", shape_str(gs), " to ", shape_str(shape));
    const std::size_t lead = nd - shape.size();
    // Output strides in g's rank: 0 on every dimension that was broadcast.
    Shape out_st(nd, 0);
    const Shape cst = contiguous_strides(shape);
    for (std::size_t i = 0; i < shape.size(); ++i) {
        NANOTORCH_CHECK(shape[i] == gs[lead + i] || shape[i] == 1, shape_error, "sum_to: cannot reduce ",
                        shape_str(gs), " to ", shape_str(shape));
        out_st[lead + i] = shape[i] == 1 ? 0 : cst[i];
    }
    Tensor src = as_contiguous(g);
    Tensor out = zeros(shape);
    const float* s = src.data_ptr();
    float* o = out.data_ptr();
    std::vector<std::int64_t> idx(nd, 0);
    std::int64_t off = 0;
    const std::int64_t n = src.numel();
    for (std::int64_t i = 0; i < n; ++i) {  // row-major walk: a fixed summation order
        o[off] += s[i];
        for (std::size_t d = nd; d-- > 0;) {
            if (++idx[d] < gs[d]) {
                off += out_st[d];
                break;
            }
            off -= out_st[d] * (gs[d] - 1);
            idx[d] = 0;
        }
    }
    return out;
}

}  // namespace nanotorch::ops::detail
