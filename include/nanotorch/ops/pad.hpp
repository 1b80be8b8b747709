// nanotorch/ops/pad.hpp — pad (constant, reflect, replicate): forward, backward and its ONNX
// mapping (Pad).
//
// pad(x, begin, end, mode, value) pads every dimension d by begin[d] elements before and end[d]
// after (a negative amount crops), the general form ONNX's Pad has; F::pad (nn/functional.hpp)
// is PyTorch's F.pad on top of it. The backward sends each output element's gradient to the input
// element it was copied from (several, for reflected and replicated borders, are summed in a fixed
// order); the constant receives none. Exported as Pad (mode "constant", "reflect" or "edge"): pads
// and value as attributes up to opset 10, as inputs from opset 11. The ONNX runtime's Pad calls
// this op. Deliberately absent: PyTorch's "circular" mode.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/shape.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/layout.hpp>
#include <nanotorch/ops/broadcast.hpp>

namespace nanotorch {

using kernels::PadMode;

namespace ops::detail {
// Per dimension: output index -> input index or -1 (kernels::pad_source_index).
inline std::vector<std::vector<std::int64_t>> pad_sources(const Shape& in, const Shape& out, const Shape& begin,
                                                          PadMode mode) {
    std::vector<std::vector<std::int64_t>> src(in.size());
    for (std::size_t d = 0; d < in.size(); ++d) {
        src[d].resize(static_cast<std::size_t>(out[d]));
        kernels::pad_source_index(src[d].data(), in[d], begin[d], out[d], mode);
    }
    return src;
}
inline const char* onnx_pad_mode(PadMode m) {
    return m == PadMode::constant ? "constant" : m == PadMode::reflect ? "reflect" : "edge";
}
}  // namespace ops::detail

struct PadBackward : autograd::Node {
    Shape input_shape, begin;
    PadMode mode = PadMode::constant;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor dx = empty(input_shape);
        if (input_shape.empty()) {
            dx.data_ptr()[0] = gc.data_ptr()[0];
            return {dx};
        }
        const auto src = ops::detail::pad_sources(input_shape, g.shape(), begin, mode);
        kernels::pad_backward(dx.data_ptr(), gc.data_ptr(), src, input_shape.data(), g.shape().data(),
                              input_shape.size());
        return {dx};
    }
    const char* name() const override { return "PadBackward"; }
};

/// x padded on every dimension d by begin[d] elements before and end[d] after (negative amounts
/// crop). PadMode::constant fills with `value`; reflect mirrors about the edge element without
/// repeating it, and keeps mirroring when a pad is longer than the dimension (NumPy's rule);
/// replicate repeats the edge element. A 0-d x takes empty begin/end and is copied.
/// Example: pad(x, {0, 0, 1, 1}, {0, 0, 1, 1}) adds a 1-pixel zero border to an NCHW batch.
/// @throws value_error when begin/end do not have x.dim() entries, a crop removes more than a
///   dimension, or reflect/replicate would extend an empty dimension.
inline Tensor pad(const Tensor& x, const Shape& begin, const Shape& end, PadMode mode = PadMode::constant,
                  float value = 0.0f) {
    const Shape& s = x.shape();
    NANOTORCH_CHECK(begin.size() == s.size() && end.size() == s.size(), value_error, "pad: ", begin.size(), " and ",
                    end.size(), " pads for an input of shape ", shape_str(s), " (one of each per dimension)");
    Shape os(s.size());
    for (std::size_t d = 0; d < s.size(); ++d) {
        const std::int64_t limit = std::int64_t(1) << 40;  // keeps the sums below int64 overflow
        NANOTORCH_CHECK(begin[d] <= limit && end[d] <= limit && begin[d] >= -limit && end[d] >= -limit, value_error,
                        "pad: pads ", begin[d], "/", end[d], " on dimension ", d, " are out of range");
        os[d] = s[d] + begin[d] + end[d];
        NANOTORCH_CHECK(os[d] >= 0, value_error, "pad: pads ", begin[d], "/", end[d], " remove more than dimension ",
                        d, " of shape ", shape_str(s));
        NANOTORCH_CHECK(mode == PadMode::constant || s[d] > 0 || os[d] == 0, value_error,
                        "pad: cannot reflect or replicate the empty dimension ", d, " of shape ", shape_str(s));
    }
    const Tensor xc = ops::detail::as_contiguous(x);
    Tensor y = empty(os);
    if (s.empty()) {
        y.data_ptr()[0] = xc.data_ptr()[0];
    } else if (y.numel() > 0) {
        const auto src = ops::detail::pad_sources(s, os, begin, mode);
        kernels::pad_forward(y.data_ptr(), xc.data_ptr(), src, s.data(), os.data(), s.size(), value);
    }
    if (auto* tr = trace::active()) {
        std::vector<std::int64_t> pads(begin.begin(), begin.end());  // ONNX: all begins, then all ends
        pads.insert(pads.end(), end.begin(), end.end());
        const std::string m = ops::detail::onnx_pad_mode(mode);
        if (tr->opset() < 11)
            tr->emit("Pad", {trace::value(x)}, {y},
                     {trace::attr("mode", m), trace::attr("pads", pads), trace::attr("value", value)});
        else
            tr->emit("Pad", {trace::value(x), trace::int64_constant(pads),
                             mode == PadMode::constant ? trace::scalar_constant(value) : trace::Input{}},
                     {y}, {trace::attr("mode", m)});
    }
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<PadBackward>();
        n->input_shape = s;
        n->begin = begin;
        n->mode = mode;
        autograd::attach(y, n, {x});
    }
    return y;
}

namespace nn::functional {

/// PyTorch's F.pad: `pads` holds (before, after) pairs starting from the LAST dimension, so
/// {1, 1} pads the width and {1, 1, 2, 2} the width by 1 and the height by 2; fewer pairs than
/// dimensions leave the leading ones alone. mode is "constant" (with `value`), "reflect" or
/// "replicate".
/// @throws value_error for an odd number of pads or more pairs than dimensions, an unknown mode,
///   a reflect pad not smaller than its dimension (PyTorch's rule), or as nanotorch::pad;
///   unsupported_error for mode "circular".
inline Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, const std::string& mode = "constant",
                  float value = 0.0f) {
    NANOTORCH_CHECK(pads.size() % 2 == 0 && pads.size() / 2 <= static_cast<std::size_t>(x.dim()), value_error,
                    "F::pad: ", pads.size(), " pads for an input of shape ", shape_str(x.shape()),
                    " (need (before, after) pairs, at most one per dimension)");
    NANOTORCH_CHECK(mode != "circular", unsupported_error, "F::pad: mode 'circular' is not implemented");
    NANOTORCH_CHECK(mode == "constant" || mode == "reflect" || mode == "replicate", value_error, "F::pad: mode '",
                    mode, "' is not one of 'constant', 'reflect', 'replicate'");
    const PadMode m = mode == "constant" ? PadMode::constant : mode == "reflect" ? PadMode::reflect : PadMode::replicate;
    Shape begin(x.shape().size(), 0), end(x.shape().size(), 0);
    for (std::size_t k = 0; k < pads.size() / 2; ++k) {
        const std::size_t d = x.shape().size() - 1 - k;
        begin[d] = pads[2 * k];
        end[d] = pads[2 * k + 1];
        NANOTORCH_CHECK(m != PadMode::reflect || (begin[d] < x.shape()[d] && end[d] < x.shape()[d]), value_error,
                        "F::pad: reflect pads ", begin[d], "/", end[d], " must be smaller than dimension ", d,
                        " of shape ", shape_str(x.shape()));
    }
    return nanotorch::pad(x, begin, end, m, value);
}

}  // namespace nn::functional

}  // namespace nanotorch
