// nanotorch/ops/clamp.hpp — clamp (torch.clamp): forward, backward and its ONNX mapping (Clip).
//
// clamp(x, min, max) = min(max(x, min), max) elementwise, with either bound optional. The
// gradient passes where min <= x <= max (a bound's own value included, as PyTorch) and is 0
// elsewhere. Exported as Clip: bounds as attributes up to opset 10, as optional scalar inputs
// from opset 11. The ONNX runtime's Clip calls this op.
#pragma once

#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/layout.hpp>
#include <nanotorch/ops/broadcast.hpp>

namespace nanotorch {

struct ClampBackward : autograd::Node {
    Tensor x;
    float lo = 0.0f, hi = 0.0f;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor dx = empty(g.shape());
        kernels::clamp_backward(dx.data_ptr(), gc.data_ptr(), x.data_ptr(), lo, hi, dx.numel());
        return {dx};
    }
    void release_saved() override { x = Tensor(); }
    const char* name() const override { return "ClampBackward"; }
};

/// Elementwise min(max(x, min), max); an absent bound does not clip. NaN stays NaN, and
/// min > max gives max everywhere (as torch.clamp). Example: clamp(x, 0.0f, 6.0f) is ReLU6.
/// @throws value_error when both bounds are absent (as torch.clamp) or a bound is NaN.
inline Tensor clamp(const Tensor& x, std::optional<float> min, std::optional<float> max) {
    NANOTORCH_CHECK(min || max, value_error, "clamp: at least one of min and max must be given");
    NANOTORCH_CHECK(!(min && *min != *min) && !(max && *max != *max), value_error, "clamp: a bound is NaN");
    const float lo = min ? *min : -std::numeric_limits<float>::infinity();
    const float hi = max ? *max : std::numeric_limits<float>::infinity();
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor y = empty(x.shape());
    kernels::clamp_forward(y.data_ptr(), xc.data_ptr(), lo, hi, y.numel());
    if (auto* tr = trace::active()) {
        if (tr->opset() < 11) {  // Clip-6: float attributes, the float range when absent
            std::vector<trace::Attr> attrs;
            if (max) attrs.push_back(trace::attr("max", *max));
            if (min) attrs.push_back(trace::attr("min", *min));
            tr->emit("Clip", {trace::value(x)}, {y}, std::move(attrs));
        } else {  // Clip-11: optional scalar inputs
            tr->emit("Clip", {trace::value(x), min ? trace::scalar_constant(*min) : trace::Input{},
                              max ? trace::scalar_constant(*max) : trace::Input{}},
                     {y});
        }
    }
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<ClampBackward>();
        n->x = xc;
        n->lo = lo;
        n->hi = hi;
        autograd::attach(y, n, {x});
    }
    return y;
}

}  // namespace nanotorch
