// nanotorch/core/tensor.hpp — the Tensor handle: shape, strides, offset over shared storage.
//
// A Tensor is a cheap, reference-counted handle (copying it aliases, like torch::Tensor).
// This header holds the data model, element access, factories, printing and the in-place
// helpers optimizers use. It does not include autograd: grad_fn is a forward-declared
// autograd::Node, and the differentiable methods declared below (view, sum, relu, ...) are
// defined with their ops in nanotorch/ops/*.hpp; include nanotorch/nanotorch.hpp to get them.
//
// dtype: every Tensor holds float32. Integer data (class labels, argmax results) travels as
// std::vector<std::int64_t>, which is what nll_loss/cross_entropy take and argmax returns.
//
// Errors: every member function except defined(), unsafe_impl(), impl_ptr() and is_same() throws
// value_error ("operation on an undefined tensor") when called on an undefined tensor, and so
// does every op given an undefined tensor where one is required. Factories throw value_error for
// a negative dimension or a shape with more than 2^40 elements (Storage's limit), and so does any
// op whose result would be that large. The @throws lines below list only what comes on top of
// that. The differentiable methods throw what the free function of the same name throws
// (documented in ops/*.hpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>  // memcpy in copy_strided_to
#include <initializer_list>
#include <iomanip>  // printing
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/random.hpp>
#include <nanotorch/core/shape.hpp>
#include <nanotorch/core/storage.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/fwd.hpp>

namespace nanotorch {

/// The shared state behind Tensor handles. Users go through Tensor; ops and autograd use this.
struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    Shape strides;
    std::int64_t offset = 0;
    bool requires_grad = false;
    std::shared_ptr<TensorImpl> grad;               // accumulated gradient (leaves only)
    std::shared_ptr<autograd::Node> grad_fn;        // the op that produced this tensor, if recorded
};

class Tensor {
public:
    /// An undefined tensor (defined() == false), like a default torch::Tensor.
    Tensor() = default;
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // ---- metadata ----
    bool defined() const noexcept { return impl_ != nullptr; }
    const Shape& shape() const { return impl().shape; }
    const Shape& sizes() const { return impl().shape; }
    /// Extent of dim d (negative counts from the end). @throws value_error when d is out of range.
    std::int64_t size(std::int64_t d) const { return impl().shape[wrap_dim(d, dim(), "size")]; }
    const Shape& strides() const { return impl().strides; }
    /// Stride of dim d, in elements. @throws value_error when d is out of range.
    std::int64_t stride(std::int64_t d) const { return impl().strides[wrap_dim(d, dim(), "stride")]; }
    std::int64_t offset() const { return impl().offset; }
    std::int64_t dim() const { return static_cast<std::int64_t>(impl().shape.size()); }
    std::int64_t numel() const { return shape_numel(impl().shape); }
    const std::shared_ptr<Storage>& storage() const { return impl().storage; }
    TensorImpl* unsafe_impl() const noexcept { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const noexcept { return impl_; }
    bool is_same(const Tensor& o) const noexcept { return impl_ == o.impl_; }

    /// True when elements are laid out row-major without gaps (size-1 dims may have any stride).
    bool is_contiguous() const {
        std::int64_t expected = 1;
        const auto& s = shape();
        const auto& st = strides();
        for (std::size_t i = s.size(); i-- > 0;) {
            if (s[i] == 1) continue;
            if (st[i] != expected) return false;
            expected *= s[i];
        }
        return true;
    }

    /// Pointer to the first element (storage + offset). Index it with strides() unless
    /// is_contiguous(). Null for a tensor with no storage (numel() == 0).
    float* data_ptr() const {
        auto* base = impl().storage ? impl().storage->data() : nullptr;
        return base ? base + impl().offset : nullptr;
    }

    // ---- element access (bypasses autograd; for inspection and tests) ----

    /// Reference to one element; the index has one entry per dimension (negative counts from the end).
    /// @throws value_error when the index has the wrong length or an entry is out of range.
    float& at(std::initializer_list<std::int64_t> index) const { return at(Shape(index)); }
    float& at(const Shape& index) const {
        NANOTORCH_CHECK(static_cast<std::int64_t>(index.size()) == dim(), value_error, "at: index has ",
                        index.size(), " entries for a tensor of shape ", shape_str(shape()));
        std::int64_t off = offset();
        for (std::size_t i = 0; i < index.size(); ++i) {
            std::int64_t k = index[i];
            const std::int64_t n = shape()[i];
            NANOTORCH_CHECK(k >= -n && k < n, value_error, "at: index ", k, " out of range for dim ", i,
                            " of size ", n);
            off += (k < 0 ? k + n : k) * strides()[i];
        }
        return storage()->data()[off];
    }

    /// The value of a one-element tensor.
    /// @throws value_error when numel() != 1.
    float item() const {
        NANOTORCH_CHECK(numel() == 1, value_error, "item: tensor of shape ", shape_str(shape()),
                        " has ", numel(), " elements, expected 1");
        return *data_ptr();
    }

    /// All elements in row-major order, whatever the strides.
    std::vector<float> to_vector() const {
        std::vector<float> out(static_cast<std::size_t>(numel()));
        if (!out.empty()) copy_strided_to(out.data());
        return out;
    }

    /// Writes all elements in row-major order to `dst` (numel() floats).
    void copy_strided_to(float* dst) const;

    // ---- autograd state ----
    bool requires_grad() const { return impl().requires_grad; }
    /// Marks a leaf as a parameter whose gradient backward() accumulates.
    /// @throws autograd_error for requires_grad_(false) on a non-leaf (use detach()).
    Tensor& requires_grad_(bool on = true) {
        NANOTORCH_CHECK(is_leaf() || on, autograd_error,
                        "requires_grad_(false) on a non-leaf tensor: use detach() instead");
        impl().requires_grad = on;
        return *this;
    }
    bool is_leaf() const { return impl().grad_fn == nullptr; }
    const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
    /// The accumulated gradient (undefined until a backward() reaches this tensor).
    Tensor grad() const { return Tensor(impl().grad); }
    /// Replaces the accumulated gradient. Its shape is not checked here: a mismatch surfaces as
    /// shape_error at the next backward() into this tensor or at an optimizer's step().
    void set_grad(const Tensor& g) { impl().grad = g.impl_; }
    /// Drops the accumulated gradient (the next backward() starts from zero).
    void zero_grad() { impl().grad.reset(); }

    /// Reverse-mode differentiation from this tensor (defined in autograd/engine.hpp).
    /// A scalar needs no `gradient`; otherwise pass one of this tensor's shape.
    /// @throws autograd_error when this tensor does not require grad, has more than one element
    ///   and no `gradient` is given, or the graph was freed by an earlier backward();
    ///   shape_error when `gradient`'s shape differs from this tensor's, or a leaf's existing
    ///   .grad (see set_grad) has another shape than its new gradient.
    void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

    /// A tensor sharing this one's data but cut from the graph (requires_grad false).
    Tensor detach() const {
        auto p = std::make_shared<TensorImpl>();
        p->storage = impl().storage;
        p->shape = impl().shape;
        p->strides = impl().strides;
        p->offset = impl().offset;
        return Tensor(std::move(p));
    }

    // ---- in-place, outside autograd (optimizers, initialisers) ----
    // PyTorch forbids these on tensors that take part in recording; so do we.

    /// Sets every element to v.
    /// @throws autograd_error when this tensor requires grad and grad mode is on (use NoGradGuard).
    Tensor& fill_(float v) {
        check_inplace("fill_");
        for_each_element([v](float& x) { x = v; });
        return *this;
    }
    /// fill_(0). @throws as fill_.
    Tensor& zero_() { return fill_(0.0f); }
    /// Copies `src` (same shape) into this tensor's elements.
    /// @throws autograd_error as fill_; shape_error when src's shape differs.
    Tensor& copy_(const Tensor& src) {
        check_inplace("copy_");
        NANOTORCH_CHECK(src.shape() == shape(), shape_error, "copy_: source shape ", shape_str(src.shape()),
                        " does not match destination shape ", shape_str(shape()));
        const std::vector<float> v = src.to_vector();
        std::size_t i = 0;
        for_each_element([&](float& x) { x = v[i++]; });
        return *this;
    }

    /// Calls fn(float&) for every element in row-major order.
    template <class Fn>
    void for_each_element(Fn&& fn) const;

    // ---- differentiable methods (defined in nanotorch/ops/*.hpp) ----
    // Each throws what the free function of the same name documents; t() throws shape_error
    // unless this tensor is 2-D.
    Tensor view(const Shape& shape) const;
    Tensor reshape(const Shape& shape) const;
    Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
    Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
    Tensor select(std::int64_t dim, std::int64_t index) const;
    Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
    Tensor t() const;
    Tensor permute(const Shape& dims) const;
    Tensor contiguous() const;
    Tensor clone() const;
    Tensor sum() const;
    Tensor sum(const Shape& dims, bool keepdim = false) const;
    Tensor mean() const;
    Tensor mean(const Shape& dims, bool keepdim = false) const;
    Tensor pow(float exponent) const;
    Tensor sqrt() const;
    Tensor exp() const;
    Tensor log() const;
    Tensor relu() const;
    Tensor sigmoid() const;
    Tensor tanh() const;
    Tensor matmul(const Tensor& other) const;
    Tensor softmax(std::int64_t dim) const;
    Tensor log_softmax(std::int64_t dim) const;
    std::vector<std::int64_t> argmax(std::int64_t dim) const;

private:
    TensorImpl& impl() const {
        NANOTORCH_CHECK(impl_ != nullptr, value_error, "operation on an undefined tensor");
        return *impl_;
    }
    void check_inplace(const char* op) const {
        NANOTORCH_CHECK(!(GradMode::is_enabled() && requires_grad()), autograd_error, op,
                        ": in-place update of a tensor that requires grad while grad mode is on; "
                        "wrap it in a NoGradGuard");
    }

    std::shared_ptr<TensorImpl> impl_;
};

// ---- strided iteration ----

namespace detail {

/// The layout of a strided tensor as few, long runs: size-1 dims dropped and neighbours that are
/// laid out contiguously with each other merged (a channel slice of an HWC image becomes one run
/// of stride 4). Same element order; s is empty when every dim has size 1.
inline void collapse_layout(const Shape& shape, const Shape& strides, std::vector<std::int64_t>& s,
                            std::vector<std::int64_t>& st) {
    for (std::size_t d = 0; d < shape.size(); ++d) {
        const std::int64_t sz = shape[d], sd = strides[d];
        if (sz == 1) continue;
        if (!s.empty() && st.back() == sd * sz) {
            s.back() *= sz;
            st.back() = sd;
        } else {
            s.push_back(sz);
            st.push_back(sd);
        }
    }
}

/// Walks the runs of a collapsed layout (collapse_layout, s non-empty): run(p, n, stride) for
/// each innermost run starting at base + offset, outer dims by odometer, last fastest.
template <class Run>
inline void for_each_run(float* base, std::int64_t numel, const std::vector<std::int64_t>& s,
                         const std::vector<std::int64_t>& st, Run&& run) {
    const std::int64_t inner = s.back(), istride = st.back();
    const std::size_t nd = s.size() - 1;  // outer dims
    std::vector<std::int64_t> idx(nd, 0);
    std::int64_t off = 0;
    for (std::int64_t done = 0; done < numel; done += inner) {
        run(base + off, inner, istride);
        for (std::size_t d = nd; d-- > 0;) {
            if (++idx[d] < s[d]) {
                off += st[d];
                break;
            }
            off -= st[d] * (s[d] - 1);
            idx[d] = 0;
        }
    }
}

/// dst[i] = src[i·Stride] for i < n, with the stride a constant so compilers vectorise the
/// gather with shuffles (the RGBA canvas's alpha channel is a stride-4 run of 78,400 floats).
template <std::int64_t Stride>
inline void gather_fixed(float* dst, const float* src, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i * Stride];
}

/// dst[i] = src[i·stride] for i < n.
inline void gather_run(float* dst, const float* src, std::int64_t n, std::int64_t stride) {
    switch (stride) {
        case 1: std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float)); return;
        case 2: gather_fixed<2>(dst, src, n); return;
        case 3: gather_fixed<3>(dst, src, n); return;
        case 4: gather_fixed<4>(dst, src, n); return;
        default:
            for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i * stride];
    }
}

}  // namespace detail

template <class Fn>
void Tensor::for_each_element(Fn&& fn) const {
    const std::int64_t n = numel();
    if (n == 0) return;
    float* base = data_ptr();
    if (is_contiguous()) {
        for (std::int64_t i = 0; i < n; ++i) fn(base[i]);
        return;
    }
    // Walk the innermost collapsed run in a tight loop and only the outer dims by odometer.
    std::vector<std::int64_t> s, st;
    detail::collapse_layout(shape(), strides(), s, st);
    if (s.empty()) {
        fn(base[0]);
        return;
    }
    detail::for_each_run(base, n, s, st, [&fn](float* p, std::int64_t inner, std::int64_t istride) {
        if (istride == 1)
            for (std::int64_t i = 0; i < inner; ++i) fn(p[i]);
        else
            for (std::int64_t i = 0; i < inner; ++i) fn(p[i * istride]);
    });
}

inline void Tensor::copy_strided_to(float* dst) const {
    const std::int64_t n = numel();
    if (n == 0) return;
    const float* base = data_ptr();
    if (is_contiguous()) {
        std::memcpy(dst, base, static_cast<std::size_t>(n) * sizeof(float));
        return;
    }
    std::vector<std::int64_t> s, st;
    detail::collapse_layout(shape(), strides(), s, st);
    if (s.empty()) {
        dst[0] = base[0];
        return;
    }
    detail::for_each_run(data_ptr(), n, s, st, [&dst](float* p, std::int64_t inner, std::int64_t istride) {
        detail::gather_run(dst, p, inner, istride);
        dst += inner;
    });
}

// ---- factories ----

/// Uninitialised contiguous tensor. (`shape` by value: a temporary such as empty({n, c}) is moved
/// into the tensor rather than copied.)
inline Tensor empty(Shape shape) {
    auto p = std::make_shared<TensorImpl>();
    p->storage = std::make_shared<Storage>(shape_numel(shape));
    p->strides = contiguous_strides(shape);
    p->shape = std::move(shape);
    return Tensor(std::move(p));
}

inline Tensor full(const Shape& shape, float value) {
    Tensor t = empty(shape);
    float* d = t.data_ptr();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i) d[i] = value;
    return t;
}
inline Tensor zeros(const Shape& shape) { return full(shape, 0.0f); }
inline Tensor ones(const Shape& shape) { return full(shape, 1.0f); }
inline Tensor zeros_like(const Tensor& t) { return zeros(t.shape()); }
inline Tensor ones_like(const Tensor& t) { return ones(t.shape()); }

/// Copies `values` (row-major) into a new tensor of `shape`: tensor({1, 2, 3, 4}, {2, 2}).
/// @throws shape_error when values.size() differs from the shape's element count.
inline Tensor tensor(const std::vector<float>& values, const Shape& shape) {
    NANOTORCH_CHECK(shape_numel(shape) == static_cast<std::int64_t>(values.size()), shape_error,
                    "tensor: ", values.size(), " values do not fill shape ", shape_str(shape));
    Tensor t = empty(shape);
    for (std::size_t i = 0; i < values.size(); ++i) t.data_ptr()[i] = values[i];
    return t;
}
/// 1-D tensor holding `values`.
inline Tensor tensor(const std::vector<float>& values) {
    return tensor(values, Shape{static_cast<std::int64_t>(values.size())});
}
/// 0-D (scalar) tensor.
inline Tensor scalar_tensor(float v) { return tensor({v}, Shape{}); }

/// Wraps a caller-owned contiguous buffer without copying; the caller keeps it alive.
/// @throws value_error when data is null and the shape has elements.
inline Tensor from_blob(float* data, const Shape& shape) {
    const std::int64_t n = shape_numel(shape);
    NANOTORCH_CHECK(data != nullptr || n == 0, value_error, "from_blob: null data for shape ", shape_str(shape));
    auto p = std::make_shared<TensorImpl>();
    p->storage = std::make_shared<Storage>(data, n, nullptr);
    p->shape = shape;
    p->strides = contiguous_strides(shape);
    return Tensor(std::move(p));
}

/// [start, end) in steps of `step`, like torch::arange (empty when step points away from end).
/// @throws value_error when step is 0, the element count is undefined (a NaN argument, or
///   infinite bounds) or there would be more than 2^40 elements.
inline Tensor arange(float start, float end, float step = 1.0f) {
    NANOTORCH_CHECK(step != 0.0f, value_error, "arange: step must be non-zero");
    const double n = std::ceil((static_cast<double>(end) - start) / step);
    // Checked before the cast: NaN or a double beyond int64's range does not convert.
    NANOTORCH_CHECK(!std::isnan(n), value_error, "arange: [", start, ", ", end, ") in steps of ", step,
                    " is not a valid range");
    NANOTORCH_CHECK(n <= 1099511627776.0, value_error, "arange: [", start, ", ", end, ") in steps of ", step,
                    " has more than 2^40 elements");
    const auto count = static_cast<std::int64_t>(n > 0 ? n : 0);
    Tensor t = empty({count});
    for (std::int64_t i = 0; i < count; ++i) t.data_ptr()[i] = start + step * static_cast<float>(i);
    return t;
}
inline Tensor arange(std::int64_t end) { return arange(0.0f, static_cast<float>(end)); }

/// Uniform in [lo, hi) from `gen`, element by element in row-major order.
/// @throws value_error when lo > hi (or either is NaN).
inline Tensor uniform(const Shape& shape, float lo, float hi, Generator& gen = default_generator()) {
    NANOTORCH_CHECK(lo <= hi, value_error, "uniform: lo ", lo, " > hi ", hi);
    Tensor t = empty(shape);
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i) t.data_ptr()[i] = gen.uniform(lo, hi);
    return t;
}
inline Tensor rand(const Shape& shape, Generator& gen = default_generator()) {
    return uniform(shape, 0.0f, 1.0f, gen);
}
/// N(mean, std²) from `gen`, element by element in row-major order.
/// @throws value_error when std is negative (or NaN).
inline Tensor normal(const Shape& shape, float mean, float std, Generator& gen = default_generator()) {
    NANOTORCH_CHECK(std >= 0.0f, value_error, "normal: std ", std, " is negative");
    Tensor t = empty(shape);
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i) t.data_ptr()[i] = mean + std * gen.normal();
    return t;
}
inline Tensor randn(const Shape& shape, Generator& gen = default_generator()) {
    return normal(shape, 0.0f, 1.0f, gen);
}

// ---- printing ----

namespace detail {
inline void print_rec(std::ostream& os, const Tensor& t, std::size_t d, std::int64_t off, int indent) {
    const auto& s = t.shape();
    const auto& st = t.strides();
    const float* base = t.storage() ? t.storage()->data() : nullptr;
    const std::int64_t n = s[d];
    const bool elide = n > 6;
    os << '[';
    for (std::int64_t i = 0; i < n; ++i) {
        if (elide && i == 3) {
            os << (d + 1 == s.size() ? "..., " : "...,\n" + std::string(static_cast<std::size_t>(indent + 1), ' '));
            i = n - 3;
        }
        const std::int64_t o = off + i * st[d];
        if (d + 1 == s.size()) {
            os << std::fixed << std::setprecision(4) << base[o];
        } else {
            print_rec(os, t, d + 1, o, indent + 1);
        }
        if (i + 1 < n) {
            if (d + 1 == s.size()) {
                os << ", ";
            } else {
                os << ',' << std::string(s.size() - d - 1, '\n') << std::string(static_cast<std::size_t>(indent + 1), ' ');
            }
        }
    }
    os << ']';
}
}  // namespace detail

/// Prints like PyTorch: tensor([[1.0000, 2.0000], [3.0000, 4.0000]], shape=[2, 2]),
/// with ", requires_grad=true" when it does; long dimensions are elided with "...".
inline std::ostream& operator<<(std::ostream& os, const Tensor& t) {
    if (!t.defined()) return os << "tensor(undefined)";
    std::ostringstream body;  // own stream: fixed/precision flags must not leak into the caller's
    if (t.dim() == 0) {
        body << std::fixed << std::setprecision(4) << t.item();
    } else if (t.numel() == 0) {
        body << "[]";
    } else {
        detail::print_rec(body, t, 0, t.offset(), 7);
    }
    os << "tensor(" << body.str() << ", shape=" << shape_str(t.shape());
    if (t.requires_grad()) os << ", requires_grad=true";
    return os << ')';
}

}  // namespace nanotorch
