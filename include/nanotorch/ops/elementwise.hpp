// nanotorch/ops/elementwise.hpp — arithmetic and pointwise activations, each with its backward.
//
// Binary ops broadcast NumPy-style; their backward sums the gradient back to each operand's
// shape (detail::sum_to). Unary ops save whichever of input/output makes the derivative
// cheapest (exp, sqrt, relu, sigmoid and tanh reuse the output). Forward math runs through
// kernels/simd.hpp where a kernel exists; the rest is a plain loop over contiguous data.
// Each op: the forward function, then its <Op>Backward node directly below it.
#pragma once

#include <cmath>
#include <string>
#include <memory>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/kernels/pointwise.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/ops/broadcast.hpp>

namespace nanotorch {

inline Tensor operator*(const Tensor& a, const Tensor& b);

namespace ops::detail {

using KernelFn = void (*)(float*, const float*, const float*, std::int64_t);

/// out = kernel(a, b) with broadcasting; no graph.
inline Tensor binary_forward(const Tensor& a, const Tensor& b, KernelFn kernel, const char* op) {
    const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
    const Tensor ac = expand_copy(a, out_shape);
    const Tensor bc = expand_copy(b, out_shape);
    Tensor out = empty(out_shape);
    kernel(out.data_ptr(), ac.data_ptr(), bc.data_ptr(), out.numel());
    return out;
}

/// out[i] = f(x[i]) over a contiguous copy of x; no graph.
template <class F>
inline Tensor map_unary(const Tensor& x, F f) {
    const Tensor xc = as_contiguous(x);
    Tensor out = empty(x.shape());
    const float* in = xc.data_ptr();
    float* o = out.data_ptr();
    for (std::int64_t i = 0, n = out.numel(); i < n; ++i) o[i] = f(in[i]);
    return out;
}

/// out[i] = f(x[i], y[i]) for two tensors of the same shape; no graph.
template <class F>
inline Tensor map_binary_same(const Tensor& x, const Tensor& y, F f) {
    const Tensor xc = as_contiguous(x);
    const Tensor yc = as_contiguous(y);
    Tensor out = empty(x.shape());
    const float* a = xc.data_ptr();
    const float* b = yc.data_ptr();
    float* o = out.data_ptr();
    for (std::int64_t i = 0, n = out.numel(); i < n; ++i) o[i] = f(a[i], b[i]);
    return out;
}

inline bool wants_grad(const autograd::Node& n, std::size_t input) { return n.next_edges()[input].is_set(); }

}  // namespace ops::detail

// ---- add ----
struct AddBackward : autograd::Node {
    Shape a_shape, b_shape;
    std::vector<Tensor> apply(const Tensor& g) override {
        return {ops::detail::sum_to(g, a_shape), ops::detail::sum_to(g, b_shape)};
    }
    const char* name() const override { return "AddBackward"; }
};
inline Tensor add(const Tensor& a, const Tensor& b) {
    Tensor out = ops::detail::binary_forward(a, b, &kernels::parallel_add, "add");
    if (auto* tr = trace::active()) tr->emit("Add", {trace::value(a), trace::value(b)}, {out});
    if (autograd::any_requires_grad({&a, &b})) {
        auto n = std::make_shared<AddBackward>();
        n->a_shape = a.shape();
        n->b_shape = b.shape();
        autograd::attach(out, n, {a, b});
    }
    return out;
}

// ---- sub ----
struct SubBackward : autograd::Node {
    Shape a_shape, b_shape;
    std::vector<Tensor> apply(const Tensor& g) override {
        Tensor neg = ops::detail::map_unary(g, [](float v) { return -v; });
        return {ops::detail::sum_to(g, a_shape), ops::detail::sum_to(neg, b_shape)};
    }
    const char* name() const override { return "SubBackward"; }
};
inline Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor out = ops::detail::binary_forward(a, b, &kernels::parallel_sub, "sub");
    if (auto* tr = trace::active()) tr->emit("Sub", {trace::value(a), trace::value(b)}, {out});
    if (autograd::any_requires_grad({&a, &b})) {
        auto n = std::make_shared<SubBackward>();
        n->a_shape = a.shape();
        n->b_shape = b.shape();
        autograd::attach(out, n, {a, b});
    }
    return out;
}

// ---- mul ----
struct MulBackward : autograd::Node {
    Tensor a, b;
    std::vector<Tensor> apply(const Tensor& g) override {
        Tensor ga, gb;
        if (ops::detail::wants_grad(*this, 0)) ga = ops::detail::sum_to(g * b, a.shape());
        if (ops::detail::wants_grad(*this, 1)) gb = ops::detail::sum_to(g * a, b.shape());
        return {ga, gb};
    }
    void release_saved() override { a = b = Tensor(); }
    const char* name() const override { return "MulBackward"; }
};
inline Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor out = ops::detail::binary_forward(a, b, &kernels::parallel_mul, "mul");
    if (auto* tr = trace::active()) tr->emit("Mul", {trace::value(a), trace::value(b)}, {out});
    if (autograd::any_requires_grad({&a, &b})) {
        auto n = std::make_shared<MulBackward>();
        n->a = a.detach();
        n->b = b.detach();
        autograd::attach(out, n, {a, b});
    }
    return out;
}

// ---- div ----
struct DivBackward : autograd::Node {
    Tensor a, b;
    std::vector<Tensor> apply(const Tensor& g) override {
        Tensor ga, gb;
        if (ops::detail::wants_grad(*this, 0))
            ga = ops::detail::sum_to(ops::detail::binary_forward(g, b, &kernels::parallel_div, "div"), a.shape());
        if (ops::detail::wants_grad(*this, 1)) {
            // d(a/b)/db = -a / b^2
            const Shape s = broadcast_shapes(a.shape(), b.shape(), "div");
            const Tensor ae = ops::detail::expand_copy(a, s), be = ops::detail::expand_copy(b, s);
            const Tensor ratio = ops::detail::map_binary_same(ae, be, [](float x, float y) { return -x / (y * y); });
            gb = ops::detail::sum_to(ops::detail::map_binary_same(ops::detail::as_contiguous(g), ratio,
                                                                  [](float x, float y) { return x * y; }),
                                     b.shape());
        }
        return {ga, gb};
    }
    void release_saved() override { a = b = Tensor(); }
    const char* name() const override { return "DivBackward"; }
};
inline Tensor div(const Tensor& a, const Tensor& b) {
    Tensor out = ops::detail::binary_forward(a, b, &kernels::parallel_div, "div");
    if (auto* tr = trace::active()) tr->emit("Div", {trace::value(a), trace::value(b)}, {out});
    if (autograd::any_requires_grad({&a, &b})) {
        auto n = std::make_shared<DivBackward>();
        n->a = a.detach();
        n->b = b.detach();
        autograd::attach(out, n, {a, b});
    }
    return out;
}

// ---- tensor (op) scalar: out = x * scale + shift ----
// One node covers x + s, x - s, x * s, x / s and s - x: all are affine in x.
struct AffineBackward : autograd::Node {
    float scale = 1.0f;
    std::vector<Tensor> apply(const Tensor& g) override {
        if (scale == 1.0f) return {g};
        Tensor gc = ops::detail::as_contiguous(g);
        Tensor out = empty(g.shape());
        kernels::parallel_mul_scalar(out.data_ptr(), gc.data_ptr(), scale, out.numel());
        return {out};
    }
    const char* name() const override { return "AffineBackward"; }
};
/// x * scale + shift, differentiable in x.
inline Tensor affine(const Tensor& x, float scale, float shift) {
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor out = empty(x.shape());
    kernels::parallel_mul_scalar(out.data_ptr(), xc.data_ptr(), scale, out.numel());
    if (auto* tr = trace::active()) {
        // The graph repeats our arithmetic exactly: one float multiply, then one float add.
        // x·1 and x+0 are exact, so those steps are left out; x·(−1) is Neg.
        Tensor scaled = scale == 1.0f ? x : (shift == 0.0f ? out : ops::detail::contiguous_copy(out));
        if (scale == -1.0f)
            tr->emit("Neg", {trace::value(x)}, {scaled});
        else if (scale != 1.0f)
            tr->emit("Mul", {trace::value(x), trace::scalar_constant(scale)}, {scaled});
        if (shift != 0.0f) tr->emit("Add", {trace::value(scaled), trace::scalar_constant(shift)}, {out});
        if (scale == 1.0f && shift == 0.0f) tr->alias(out, x);
    }
    if (shift != 0.0f) kernels::add_scalar(out.data_ptr(), out.data_ptr(), shift, out.numel());
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<AffineBackward>();
        n->scale = scale;
        autograd::attach(out, n, {x});
    }
    return out;
}
inline Tensor add(const Tensor& x, float s) { return affine(x, 1.0f, s); }
inline Tensor sub(const Tensor& x, float s) { return affine(x, 1.0f, -s); }
inline Tensor mul(const Tensor& x, float s) { return affine(x, s, 0.0f); }
inline Tensor div(const Tensor& x, float s) { return affine(x, 1.0f / s, 0.0f); }
inline Tensor neg(const Tensor& x) { return affine(x, -1.0f, 0.0f); }

// ---- s / x ----
struct ReciprocalScaleBackward : autograd::Node {
    Tensor x;
    float s = 1.0f;
    std::vector<Tensor> apply(const Tensor& g) override {
        const float k = s;
        return {ops::detail::map_binary_same(g, x, [k](float gv, float xv) { return -k * gv / (xv * xv); })};
    }
    void release_saved() override { x = Tensor(); }
    const char* name() const override { return "ReciprocalScaleBackward"; }
};
/// s / x elementwise.
inline Tensor rdiv(float s, const Tensor& x) {
    Tensor out = ops::detail::map_unary(x, [s](float v) { return s / v; });
    if (auto* tr = trace::active()) tr->emit("Div", {trace::scalar_constant(s), trace::value(x)}, {out});
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<ReciprocalScaleBackward>();
        n->x = x.detach();
        n->s = s;
        autograd::attach(out, n, {x});
    }
    return out;
}

// ---- unary ops whose derivative is a function of the output or the input ----
// UnaryBackward<D>: grad_in = grad_out * D(saved) elementwise, where `saved` is x or y.
template <class Derivative>
struct UnaryBackward : autograd::Node {
    UnaryBackward(Tensor s, Derivative d, const char* n) : saved(std::move(s)), derivative(d), op_name(n) {}
    Tensor saved;
    Derivative derivative;
    const char* op_name;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Derivative d = derivative;
        return {ops::detail::map_binary_same(g, saved, [d](float gv, float sv) { return gv * d(sv); })};
    }
    void release_saved() override { saved = Tensor(); }
    const char* name() const override { return op_name; }
};

namespace ops::detail {
template <class Derivative>
inline Tensor record_unary(Tensor out, const Tensor& x, const Tensor& saved, Derivative d, const char* name,
                           const char* onnx_op, float exponent = 0.0f) {
    if (auto* tr = trace::active()) {
        if (std::string(onnx_op) == "Pow")
            tr->emit("Pow", {trace::value(x), trace::scalar_constant(exponent)}, {out});
        else
            tr->emit(onnx_op, {trace::value(x)}, {out});
    }
    if (autograd::any_requires_grad({&x})) {
        autograd::attach(out, std::make_shared<UnaryBackward<Derivative>>(saved.detach(), d, name), {x});
    }
    return out;
}
}  // namespace ops::detail

inline Tensor exp(const Tensor& x) {
    Tensor y = ops::detail::map_unary(x, [](float v) { return std::exp(v); });
    return ops::detail::record_unary(y, x, y, [](float yv) { return yv; }, "ExpBackward", "Exp");
}
inline Tensor log(const Tensor& x) {
    Tensor y = ops::detail::map_unary(x, [](float v) { return std::log(v); });
    return ops::detail::record_unary(y, x, x, [](float xv) { return 1.0f / xv; }, "LogBackward", "Log");
}
inline Tensor sqrt(const Tensor& x) {
    Tensor y = ops::detail::map_unary(x, [](float v) { return std::sqrt(v); });
    return ops::detail::record_unary(y, x, y, [](float yv) { return 0.5f / yv; }, "SqrtBackward", "Sqrt");
}
/// x ** p for a scalar exponent p.
inline Tensor pow(const Tensor& x, float p) {
    Tensor y = ops::detail::map_unary(x, [p](float v) { return std::pow(v, p); });
    return ops::detail::record_unary(
        y, x, x, [p](float xv) { return p == 0.0f ? 0.0f : p * std::pow(xv, p - 1.0f); }, "PowBackward", "Pow", p);
}
inline Tensor sigmoid(const Tensor& x) {
    // Split by sign so exp never overflows: for v < 0, e^v / (1 + e^v).
    Tensor y = ops::detail::map_unary(x, [](float v) {
        if (v >= 0.0f) return 1.0f / (1.0f + std::exp(-v));
        const float e = std::exp(v);
        return e / (1.0f + e);
    });
    return ops::detail::record_unary(y, x, y, [](float yv) { return yv * (1.0f - yv); }, "SigmoidBackward", "Sigmoid");
}
inline Tensor tanh(const Tensor& x) {
    Tensor y = ops::detail::map_unary(x, [](float v) { return std::tanh(v); });
    return ops::detail::record_unary(y, x, y, [](float yv) { return 1.0f - yv * yv; }, "TanhBackward", "Tanh");
}

// ---- relu (vector kernels both ways; the gradient at exactly 0 is 0, as in PyTorch) ----
struct ReluBackward : autograd::Node {
    Tensor y;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor dx = empty(g.shape());
        kernels::parallel_relu_backward(dx.data_ptr(), gc.data_ptr(), y.data_ptr(), dx.numel());
        return {dx};
    }
    void release_saved() override { y = Tensor(); }
    const char* name() const override { return "ReluBackward"; }
};
inline Tensor relu(const Tensor& x) {
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor y = empty(x.shape());
    kernels::parallel_relu_forward(y.data_ptr(), xc.data_ptr(), y.numel());
    if (auto* tr = trace::active()) tr->emit("Relu", {trace::value(x)}, {y});
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<ReluBackward>();
        n->y = y.detach();
        autograd::attach(y, n, {x});
    }
    return y;
}
/// relu of a temporary (F::relu(conv(x))): where nothing else can see it (the only handle to a
/// contiguous tensor that owns its storage alone, storage nanotorch allocated rather than a
/// caller's memory wrapped by from_blob, with no autograd history and no gradient to record,
/// and no export trace running), its buffer becomes the result: the values are the same,
/// and a batch-1000 inference saves one activation-sized allocation and one pass per ReLU (on
/// PyTorch's examples/mnist net, 233 MB of fresh pages per forward). Otherwise as relu(const&).
inline Tensor relu(Tensor&& x) {
    TensorImpl* p = x.unsafe_impl();
    const bool sole = p && x.impl_ptr().use_count() == 1 && p->storage && p->storage.use_count() == 1 &&
                      p->storage->owns_data() && p->offset == 0 && !p->requires_grad && !p->grad_fn && x.is_contiguous() &&
                      p->storage->size() == x.numel() && !trace::active();
    if (!sole) return relu(static_cast<const Tensor&>(x));
    kernels::parallel_relu_forward(x.data_ptr(), x.data_ptr(), x.numel());
    return std::move(x);
}

// ---- operators ----
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, float s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, float s) { return sub(a, s); }
inline Tensor operator*(const Tensor& a, float s) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, float s) { return div(a, s); }
inline Tensor operator+(float s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(float s, const Tensor& a) { return affine(a, -1.0f, s); }
inline Tensor operator*(float s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(float s, const Tensor& a) { return rdiv(s, a); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

inline Tensor Tensor::pow(float exponent) const { return nanotorch::pow(*this, exponent); }
inline Tensor Tensor::sqrt() const { return nanotorch::sqrt(*this); }
inline Tensor Tensor::exp() const { return nanotorch::exp(*this); }
inline Tensor Tensor::log() const { return nanotorch::log(*this); }
inline Tensor Tensor::relu() const { return nanotorch::relu(*this); }
inline Tensor Tensor::sigmoid() const { return nanotorch::sigmoid(*this); }
inline Tensor Tensor::tanh() const { return nanotorch::tanh(*this); }

}  // namespace nanotorch
