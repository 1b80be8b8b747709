// nanotorch/ops/shape.hpp — views and layout ops: view/reshape/flatten, narrow/select,
// transpose/permute, contiguous/clone, cat.
//
// view, narrow, select, transpose and permute never copy: they return a new TensorImpl over
// the same storage with other shape/strides/offset (so writes through at() show in both).
// reshape copies only when the layout requires it (otherwise it is a view, possibly strided).
// Backward of a view is the inverse layout change applied to the gradient; backward of
// narrow/select scatters into zeros.
//
// Errors: every op that takes a dim throws value_error when it is outside [-ndim, ndim); the
// @throws lines list the rest. Undefined inputs: see core/tensor.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>  // overflow check in infer_shape
#include <memory>
#include <numeric>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/ops/broadcast.hpp>

namespace nanotorch {

namespace ops::detail {

/// A handle over t's storage with another layout (no graph).
inline Tensor restride(const Tensor& t, Shape shape, Shape strides, std::int64_t offset) {
    auto p = std::make_shared<TensorImpl>();
    p->storage = t.storage();
    p->shape = std::move(shape);
    p->strides = std::move(strides);
    p->offset = offset;
    return Tensor(std::move(p));
}

/// Resolves one -1 entry against numel; throws shape_error naming `op` otherwise.
inline Shape infer_shape(const Shape& requested, std::int64_t numel, const Shape& from, const char* op) {
    Shape s = requested;
    std::int64_t known = 1;
    int infer_at = -1;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == -1) {
            NANOTORCH_CHECK(infer_at < 0, shape_error, op, ": only one dimension can be -1 in ", shape_str(requested));
            infer_at = static_cast<int>(i);
        } else {
            NANOTORCH_CHECK(s[i] >= 0, shape_error, op, ": invalid dimension ", s[i], " in ", shape_str(requested));
            // Stop before int64 overflows (undefined behaviour), checked left to right as
            // shape_numel does, so a shape accepted here always has a computable numel.
            NANOTORCH_CHECK(s[i] == 0 || known <= std::numeric_limits<std::int64_t>::max() / s[i], shape_error, op,
                            ": shape ", shape_str(requested), " is invalid for input of shape ", shape_str(from));
            known *= s[i];
        }
    }
    if (infer_at >= 0) {
        NANOTORCH_CHECK(known != 0 && numel % known == 0, shape_error, op, ": shape ", shape_str(requested),
                        " is invalid for input of shape ", shape_str(from));
        s[static_cast<std::size_t>(infer_at)] = numel / known;
    } else {
        NANOTORCH_CHECK(known == numel, shape_error, op, ": shape ", shape_str(requested),
                        " is invalid for input of shape ", shape_str(from), " (", numel, " elements)");
    }
    return s;
}

/// Strides that show x's elements, in row-major order, as `shape` (same element count) without
/// copying; false when no such strides exist (a new dim would straddle two runs of x's layout,
/// as when flattening a transpose) or x has no elements. x's layout is first collapsed into runs
/// (core/tensor.hpp's collapse_layout); each run is then split among consecutive new dims.
inline bool view_strides(const Tensor& x, const Shape& shape, Shape& out) {
    if (x.numel() == 0) return false;
    std::vector<std::int64_t> rs, rst;
    nanotorch::detail::collapse_layout(x.shape(), x.strides(), rs, rst);
    out.assign(shape.size(), 1);
    std::size_t r = 0;
    std::int64_t left = rs.empty() ? 1 : rs[0];  // elements of run r not yet given to a dim
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 1) continue;
        if (r >= rs.size() || left % shape[d] != 0) return false;
        left /= shape[d];
        out[d] = rst[r] * left;
        if (left == 1 && ++r < rs.size()) left = rs[r];
    }
    std::int64_t next = 1;  // size-1 dims: any stride works; use the row-major one
    for (std::size_t d = shape.size(); d-- > 0;) {
        if (shape[d] == 1) out[d] = next;
        else next = out[d] * shape[d];
    }
    return true;
}

}  // namespace ops::detail

// ---- view / reshape ----
struct ReshapeBackward : autograd::Node {
    Shape input_shape;
    std::vector<Tensor> apply(const Tensor& g) override {
        Tensor gc = ops::detail::as_contiguous(g);
        return {ops::detail::restride(gc, input_shape, contiguous_strides(input_shape), gc.offset())};
    }
    const char* name() const override { return "ReshapeBackward"; }
};

namespace ops::detail {
/// `requested` is the shape as the caller wrote it: a -1 stays -1 in the graph, so a traced
/// view({-1, 320}) keeps working for other batch sizes.
inline Tensor record_reshape(Tensor out, const Tensor& x, const Shape& requested) {
    if (auto* tr = trace::active()) tr->emit("Reshape", {trace::value(x), trace::int64_constant(requested)}, {out});
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<ReshapeBackward>();
        n->input_shape = x.shape();
        autograd::attach(out, n, {x});
    }
    return out;
}
}  // namespace ops::detail

/// A view with another shape (one entry may be -1). The tensor must be contiguous.
/// @throws shape_error when the shape does not hold exactly x.numel() elements, has more than one
///   -1 or another negative entry, or x is not contiguous.
inline Tensor view(const Tensor& x, const Shape& shape) {
    const Shape s = ops::detail::infer_shape(shape, x.numel(), x.shape(), "view");
    NANOTORCH_CHECK(x.is_contiguous(), shape_error, "view: tensor of shape ", shape_str(x.shape()),
                    " is not contiguous; use reshape() (which copies) or contiguous() first");
    return ops::detail::record_reshape(ops::detail::restride(x, s, contiguous_strides(s), x.offset()), x, shape);
}

/// Like view, but accepts any layout: a view whenever x's strides allow one (as PyTorch's
/// reshape; a non-contiguous x can then give a non-contiguous view, e.g. a channel slice of an
/// HWC image reshaped to [1, 1, H, W]), else a contiguous copy.
/// @throws shape_error as view, except that any layout is accepted.
inline Tensor reshape(const Tensor& x, const Shape& shape) {
    const Shape s = ops::detail::infer_shape(shape, x.numel(), x.shape(), "reshape");
    Shape st;
    if (!x.is_contiguous() && ops::detail::view_strides(x, s, st))
        return ops::detail::record_reshape(ops::detail::restride(x, s, std::move(st), x.offset()), x, shape);
    const Tensor base = ops::detail::as_contiguous(x);
    return ops::detail::record_reshape(ops::detail::restride(base, s, contiguous_strides(s), base.offset()), x, shape);
}

/// Merges dims start_dim..end_dim into one (a 0-D x becomes [1]).
/// @throws value_error when start_dim comes after end_dim.
inline Tensor flatten(const Tensor& x, std::int64_t start_dim = 0, std::int64_t end_dim = -1) {
    if (x.dim() == 0) return reshape(x, {1});
    const std::int64_t s = wrap_dim(start_dim, x.dim(), "flatten");
    const std::int64_t e = wrap_dim(end_dim, x.dim(), "flatten");
    NANOTORCH_CHECK(s <= e, value_error, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
    Shape out;
    for (std::int64_t i = 0; i < s; ++i) out.push_back(x.shape()[static_cast<std::size_t>(i)]);
    std::int64_t merged = 1;
    for (std::int64_t i = s; i <= e; ++i) merged *= x.shape()[static_cast<std::size_t>(i)];
    out.push_back(merged);
    for (std::int64_t i = e + 1; i < x.dim(); ++i) out.push_back(x.shape()[static_cast<std::size_t>(i)]);
    // Keeping dim 0 (flatten(1), the usual classifier head): ask for -1 there, which gives the
    // same result and is what a traced ONNX Reshape needs to stay valid for another batch size.
    if (s >= 1) {
        Shape request = out;
        request[0] = -1;
        const std::int64_t rest = x.numel() / std::max<std::int64_t>(out[0], 1);
        if (out[0] > 0 && rest > 0) return reshape(x, request);
    }
    return reshape(x, out);
}

// ---- narrow / select ----
struct NarrowBackward : autograd::Node {
    Shape input_shape;
    std::int64_t dim = 0, start = 0;
    bool squeeze = false;  // select(): the narrowed dim of length 1 was removed
    std::vector<Tensor> apply(const Tensor& g) override {
        Tensor gx = zeros(input_shape);
        Shape sh = input_shape;
        sh[static_cast<std::size_t>(dim)] = squeeze ? 1 : g.shape()[static_cast<std::size_t>(dim)];
        const Shape& st = gx.strides();
        Tensor window = ops::detail::restride(gx, sh, st, start * st[static_cast<std::size_t>(dim)]);
        const std::vector<float> v = g.to_vector();
        std::size_t i = 0;
        window.for_each_element([&](float& e) { e = v[i++]; });
        return {gx};
    }
    const char* name() const override { return squeeze ? "SelectBackward" : "NarrowBackward"; }
};

/// Elements start .. start+length-1 along dim, as a view (a negative start counts from the end).
/// @throws value_error when the range does not fit in the dimension or length is negative.
inline Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
    const std::int64_t d = wrap_dim(dim, x.dim(), "narrow");
    const std::int64_t size = x.shape()[static_cast<std::size_t>(d)];
    if (start < 0 && start >= -size) start += size;
    NANOTORCH_CHECK(start >= 0 && length >= 0 && start <= size && length <= size - start, value_error,
                    "narrow: start ", start, " + length ", length, " exceeds dimension ", d, " of size ", size,
                    " (shape ", shape_str(x.shape()), ")");
    Shape sh = x.shape();
    sh[static_cast<std::size_t>(d)] = length;
    Tensor out = ops::detail::restride(x, sh, x.strides(), x.offset() + start * x.strides()[static_cast<std::size_t>(d)]);
    if (auto* tr = trace::active()) {  // Slice: attributes up to opset 9, inputs from opset 10
        if (tr->opset() < 10)
            tr->emit("Slice", {trace::value(x)}, {out},
                     {trace::attr("axes", std::vector<std::int64_t>{d}),
                      trace::attr("ends", std::vector<std::int64_t>{start + length}),
                      trace::attr("starts", std::vector<std::int64_t>{start})});
        else
            tr->emit("Slice", {trace::value(x), trace::int64_constant({start}), trace::int64_constant({start + length}),
                               trace::int64_constant({d})}, {out});
    }
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<NarrowBackward>();
        n->input_shape = x.shape();
        n->dim = d;
        n->start = start;
        autograd::attach(out, n, {x});
    }
    return out;
}

/// Python-style slice [start:end:1] along dim (negative and out-of-range bounds are clamped,
/// so only the dim can be out of range).
inline Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end) {
    const std::int64_t d = wrap_dim(dim, x.dim(), "slice");
    const std::int64_t size = x.shape()[static_cast<std::size_t>(d)];
    auto clamp = [size](std::int64_t v) {
        if (v < 0) v += size;
        return std::min(std::max<std::int64_t>(v, 0), size);
    };
    const std::int64_t s = clamp(start), e = clamp(end);
    return narrow(x, d, s, std::max<std::int64_t>(e - s, 0));
}

/// The slice at `index` along dim, with that dim removed (a view).
/// @throws value_error when index is outside [-size, size).
inline Tensor select(const Tensor& x, std::int64_t dim, std::int64_t index) {
    const std::int64_t d = wrap_dim(dim, x.dim(), "select");
    const std::int64_t size = x.shape()[static_cast<std::size_t>(d)];
    NANOTORCH_CHECK(index >= -size && index < size, value_error, "select: index ", index,
                    " out of range for dimension ", d, " of size ", size);
    if (index < 0) index += size;
    Shape sh = x.shape(), st = x.strides();
    const std::int64_t off = x.offset() + index * st[static_cast<std::size_t>(d)];
    sh.erase(sh.begin() + d);
    st.erase(st.begin() + d);
    Tensor out = ops::detail::restride(x, sh, st, off);
    if (auto* tr = trace::active())  // a 0-D index removes the dimension, like select
        tr->emit("Gather", {trace::value(x), trace::int64_scalar(index)}, {out}, {trace::attr("axis", d)});
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<NarrowBackward>();
        n->input_shape = x.shape();
        n->dim = d;
        n->start = index;
        n->squeeze = true;
        autograd::attach(out, n, {x});
    }
    return out;
}

// ---- permute / transpose ----
struct PermuteBackward : autograd::Node {
    Shape inverse;
    std::vector<Tensor> apply(const Tensor& g) override {
        Shape sh(inverse.size()), st(inverse.size());
        for (std::size_t i = 0; i < inverse.size(); ++i) {
            sh[i] = g.shape()[static_cast<std::size_t>(inverse[i])];
            st[i] = g.strides()[static_cast<std::size_t>(inverse[i])];
        }
        return {ops::detail::restride(g, sh, st, g.offset())};
    }
    const char* name() const override { return "PermuteBackward"; }
};

/// Reorders dimensions (a view): out.shape[i] = x.shape[dims[i]].
/// @throws shape_error when dims.size() != x.dim(); value_error when a dim appears twice.
inline Tensor permute(const Tensor& x, const Shape& dims) {
    NANOTORCH_CHECK(static_cast<std::int64_t>(dims.size()) == x.dim(), shape_error, "permute: ", dims.size(),
                    " dims given for a tensor of shape ", shape_str(x.shape()));
    Shape sh(dims.size()), st(dims.size()), inverse(dims.size(), -1);
    for (std::size_t i = 0; i < dims.size(); ++i) {
        const std::int64_t d = wrap_dim(dims[i], x.dim(), "permute");
        NANOTORCH_CHECK(inverse[static_cast<std::size_t>(d)] < 0, value_error, "permute: dim ", d,
                        " appears twice in ", shape_str(dims));
        inverse[static_cast<std::size_t>(d)] = static_cast<std::int64_t>(i);
        sh[i] = x.shape()[static_cast<std::size_t>(d)];
        st[i] = x.strides()[static_cast<std::size_t>(d)];
    }
    Tensor out = ops::detail::restride(x, sh, st, x.offset());
    if (auto* tr = trace::active()) {
        Shape perm(dims.size());
        for (std::size_t i = 0; i < dims.size(); ++i) perm[i] = wrap_dim(dims[i], x.dim(), "permute");
        tr->emit("Transpose", {trace::value(x)}, {out}, {trace::attr("perm", perm)});
    }
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<PermuteBackward>();
        n->inverse = inverse;
        autograd::attach(out, n, {x});
    }
    return out;
}

/// Swaps two dimensions (a view); only the dims can be out of range.
inline Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1) {
    Shape dims(static_cast<std::size_t>(x.dim()));
    std::iota(dims.begin(), dims.end(), 0);
    std::swap(dims[static_cast<std::size_t>(wrap_dim(dim0, x.dim(), "transpose"))],
              dims[static_cast<std::size_t>(wrap_dim(dim1, x.dim(), "transpose"))]);
    return permute(x, dims);
}

// ---- contiguous / clone ----
struct IdentityBackward : autograd::Node {
    std::vector<Tensor> apply(const Tensor& g) override { return {g}; }
    const char* name() const override { return "CloneBackward"; }
};

/// A copy that owns its storage (differentiable). Throws only for an undefined x.
inline Tensor clone(const Tensor& x) {
    Tensor out = ops::detail::contiguous_copy(x);
    if (auto* tr = trace::active()) tr->emit("Identity", {trace::value(x)}, {out});
    if (autograd::any_requires_grad({&x})) autograd::attach(out, std::make_shared<IdentityBackward>(), {x});
    return out;
}

/// x itself when already contiguous, otherwise a contiguous copy. Throws only for an undefined x.
inline Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }

// ---- cat ----
struct CatBackward : autograd::Node {
    std::int64_t dim = 0;
    std::vector<std::int64_t> sizes;
    std::vector<Tensor> apply(const Tensor& g) override {
        std::vector<Tensor> out;
        std::int64_t start = 0;
        for (std::int64_t s : sizes) {
            Shape sh = g.shape();
            sh[static_cast<std::size_t>(dim)] = s;
            Tensor part = ops::detail::restride(g, sh, g.strides(), g.offset() + start * g.strides()[static_cast<std::size_t>(dim)]);
            out.push_back(ops::detail::contiguous_copy(part));
            start += s;
        }
        return out;
    }
    const char* name() const override { return "CatBackward"; }
};

/// Concatenates tensors along dim; all other dimensions must match.
/// @throws value_error when xs is empty or holds an undefined tensor; shape_error when ranks
///   differ or another dimension does not match xs[0]'s.
inline Tensor cat(const std::vector<Tensor>& xs, std::int64_t dim = 0) {
    NANOTORCH_CHECK(!xs.empty(), value_error, "cat: expected a non-empty list of tensors");
    const std::int64_t d = wrap_dim(dim, xs[0].dim(), "cat");
    Shape out_shape = xs[0].shape();
    out_shape[static_cast<std::size_t>(d)] = 0;
    for (const Tensor& t : xs) {
        bool ok = t.dim() == xs[0].dim();
        for (std::int64_t i = 0; ok && i < t.dim(); ++i)
            ok = i == d || t.shape()[static_cast<std::size_t>(i)] == xs[0].shape()[static_cast<std::size_t>(i)];
        NANOTORCH_CHECK(ok, shape_error, "cat: shape ", shape_str(t.shape()), " does not match ",
                        shape_str(xs[0].shape()), " outside dimension ", d);
        out_shape[static_cast<std::size_t>(d)] += t.shape()[static_cast<std::size_t>(d)];
    }
    Tensor out = empty(out_shape);
    std::int64_t start = 0;
    std::vector<std::int64_t> sizes;
    for (const Tensor& t : xs) {
        const std::int64_t s = t.shape()[static_cast<std::size_t>(d)];
        Shape sh = out_shape;
        sh[static_cast<std::size_t>(d)] = s;
        Tensor window = ops::detail::restride(out, sh, out.strides(), start * out.strides()[static_cast<std::size_t>(d)]);
        const std::vector<float> v = t.to_vector();
        std::size_t i = 0;
        window.for_each_element([&](float& e) { e = v[i++]; });
        sizes.push_back(s);
        start += s;
    }
    if (auto* tr = trace::active()) {
        std::vector<trace::Input> ins;
        for (const Tensor& t : xs) ins.push_back(trace::value(t));
        tr->emit("Concat", ins, {out}, {trace::attr("axis", d)});
    }
    if (autograd::any_requires_grad(xs)) {
        auto n = std::make_shared<CatBackward>();
        n->dim = d;
        n->sizes = sizes;
        autograd::attach(out, n, xs);
    }
    return out;
}

// ---- Tensor methods ----
inline Tensor Tensor::view(const Shape& s) const { return nanotorch::view(*this, s); }
inline Tensor Tensor::reshape(const Shape& s) const { return nanotorch::reshape(*this, s); }
inline Tensor Tensor::flatten(std::int64_t s, std::int64_t e) const { return nanotorch::flatten(*this, s, e); }
inline Tensor Tensor::narrow(std::int64_t d, std::int64_t s, std::int64_t l) const { return nanotorch::narrow(*this, d, s, l); }
inline Tensor Tensor::select(std::int64_t d, std::int64_t i) const { return nanotorch::select(*this, d, i); }
inline Tensor Tensor::transpose(std::int64_t a, std::int64_t b) const { return nanotorch::transpose(*this, a, b); }
inline Tensor Tensor::t() const {
    NANOTORCH_CHECK(dim() == 2, shape_error, "t: expects a 2-D tensor, got shape ", shape_str(shape()));
    return nanotorch::transpose(*this, 0, 1);
}
inline Tensor Tensor::permute(const Shape& d) const { return nanotorch::permute(*this, d); }
inline Tensor Tensor::contiguous() const { return nanotorch::contiguous(*this); }
inline Tensor Tensor::clone() const { return nanotorch::clone(*this); }

}  // namespace nanotorch
