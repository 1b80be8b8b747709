// nanotorch/ops/index.hpp — index_select (torch.index_select): forward, backward and its ONNX
// mapping (Gather).
//
// index_select(x, dim, index) takes the slices x[..., index[j], ...] along dim, in the order the
// (1-D) index lists them; repeats are allowed. The backward adds each output slice's gradient
// into the input slice it came from, repeats summed in index order (so the result is the same
// on every run). Exported as Gather with the index as an int64 initializer. The ONNX runtime's
// Gather calls this op (with the index flattened and the result reshaped to the index's shape).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/shape.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/layout.hpp>
#include <nanotorch/ops/broadcast.hpp>

namespace nanotorch {

namespace ops::detail {
// x's shape as [outer, n, inner] around dimension d.
inline void split_at(const Shape& s, std::size_t d, std::int64_t& outer, std::int64_t& inner) {
    outer = inner = 1;
    for (std::size_t k = 0; k < d; ++k) outer *= s[k];
    for (std::size_t k = d + 1; k < s.size(); ++k) inner *= s[k];
}
}  // namespace ops::detail

struct IndexSelectBackward : autograd::Node {
    Shape input_shape;
    std::size_t dim = 0;
    std::vector<std::int64_t> index;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor dx = empty(input_shape);
        std::int64_t outer = 0, inner = 0;
        ops::detail::split_at(input_shape, dim, outer, inner);
        kernels::index_select_backward(dx.data_ptr(), gc.data_ptr(), index.data(), outer, input_shape[dim],
                                       static_cast<std::int64_t>(index.size()), inner);
        return {dx};
    }
    void release_saved() override { index.clear(); }
    const char* name() const override { return "IndexSelectBackward"; }
};

/// The slices of x at positions index[0], index[1], ... along dim, in that order: the result has
/// x's shape with dimension dim replaced by index.size(). Example: index_select(x, 0, {2, 0})
/// is rows 2 and 0 of a matrix.
/// @throws value_error when dim is outside [-x.dim(), x.dim()) (a 0-d x has no dimension to
///   select from) or an index is outside [0, x.size(dim)) (negative indices are rejected, as
///   torch.index_select does).
inline Tensor index_select(const Tensor& x, std::int64_t dim, const std::vector<std::int64_t>& index) {
    const auto d = static_cast<std::size_t>(wrap_dim(dim, x.dim(), "index_select"));
    const std::int64_t n = x.shape()[d];
    for (const std::int64_t i : index)
        NANOTORCH_CHECK(i >= 0 && i < n, value_error, "index_select: index ", i, " is out of range for dimension ", d,
                        " of size ", n, " (shape ", shape_str(x.shape()), ")");
    Shape os = x.shape();
    os[d] = static_cast<std::int64_t>(index.size());
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor y = empty(os);
    std::int64_t outer = 0, inner = 0;
    ops::detail::split_at(x.shape(), d, outer, inner);
    kernels::index_select_forward(y.data_ptr(), xc.data_ptr(), index.data(), outer, n, os[d], inner);
    if (auto* tr = trace::active())
        tr->emit("Gather", {trace::value(x), trace::int64_constant(index)}, {y},
                 {trace::attr("axis", static_cast<std::int64_t>(d))});
    if (autograd::any_requires_grad({&x})) {
        auto node = std::make_shared<IndexSelectBackward>();
        node->input_shape = x.shape();
        node->dim = d;
        node->index = index;
        autograd::attach(y, node, {x});
    }
    return y;
}

}  // namespace nanotorch
