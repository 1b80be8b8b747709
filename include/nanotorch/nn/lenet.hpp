// nanotorch/nn/lenet.hpp — a convolution followed by a 2×2 max pool and a ReLU (LeNet's block,
// and VGG's with the ReLU first) as one call that pools in the convolution's epilogue at
// inference.
//
//   PyTorch                                             nanotorch
//   F.relu(F.max_pool2d(self.conv1(x), 2))              nn::conv_pool_relu(conv1, x)
//   F.relu(F.max_pool2d(self.drop(self.conv2(x)), 2))   nn::conv_pool_relu(conv2, x, drop)
//   F.max_pool2d(F.relu(self.conv2(x)), 2)              nn::conv_relu_pool(conv2, x)
//
// Training and ONNX export run the same calls as the PyTorch line (so their gradients, errors
// and exported nodes are theirs); only an inference forward takes the fused kernel, which
// gives the same bits without writing the convolution's full-size output (4× the pooled one).
#pragma once

#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/nn/conv.hpp>
#include <nanotorch/nn/dropout.hpp>
#include <nanotorch/nn/functional.hpp>
#include <nanotorch/ops/conv.hpp>  // conv2d_max_pool2x2

namespace nanotorch::nn {

namespace detail {
// conv2d_max_pool2x2 with conv's parameters, where that is exactly what the calls one by one
// compute: grad mode off, not exporting, a 4-D input with conv's channels and at least a 2×2
// convolution output. An undefined Tensor otherwise, so the caller makes the calls (and their
// errors are theirs).
inline Tensor conv_pool_inference(const Conv2d& conv, const Tensor& x, PoolRelu relu) {
    const Conv2dOptions& o = conv->options();
    if (GradMode::is_enabled() || trace::active() || x.dim() != 4 || x.size(1) != o.in_channels()) return Tensor();
    const kernels::Window2d w =
        kernels::make_window(x.size(2), x.size(3), o.kernel_size().h, o.kernel_size().w, o.stride().h, o.stride().w,
                             o.padding().h, o.padding().w, o.dilation().h, o.dilation().w);
    if (w.out_h < 2 || w.out_w < 2) return Tensor();
    return conv2d_max_pool2x2(x, conv->weight, conv->bias, o.stride(), o.padding(), o.dilation(), o.groups(), {}, {},
                              relu);
}
}  // namespace detail

/// relu(max_pool2d(dropout(conv(x)), 2)), dropout (a Dropout2d) only when given: LeNet's
/// convolution block. In an inference forward (grad mode off, not exporting, the
/// dropout in eval mode) the pool and the ReLU run in the convolution's epilogue
/// (conv2d_max_pool2x2): the same bits as the calls one by one, in one pass. Otherwise, and when
/// the shapes do not fit, it is exactly those calls.
/// Example: Tensor x = nn::conv_pool_relu(conv1, input);  x = nn::conv_pool_relu(conv2, x, conv2_drop);
inline Tensor conv_pool_relu(const Conv2d& conv, const Tensor& x, const Dropout2d& dropout = Dropout2d(nullptr)) {
    const bool dropping = !dropout.is_empty() && dropout->is_training();
    if (!dropping)
        if (Tensor y = detail::conv_pool_inference(conv, x, PoolRelu::after_pool); y.defined()) return y;
    Tensor y = conv(x);
    if (!dropout.is_empty()) y = dropout(y);
    return F::relu(F::max_pool2d(y, 2));
}

/// max_pool2d(relu(conv(x)), 2): `F.max_pool2d(F.relu(self.conv(x)), 2)`, the last convolution
/// of a VGG stage. At inference the ReLU and the pool run in
/// the convolution's epilogue, as conv_pool_relu's; otherwise it is exactly the three calls.
/// Example: x = nn::conv_relu_pool(conv2, F::relu(conv1(x)));
inline Tensor conv_relu_pool(const Conv2d& conv, const Tensor& x) {
    if (Tensor y = detail::conv_pool_inference(conv, x, PoolRelu::before_pool); y.defined()) return y;
    return F::max_pool2d(F::relu(conv(x)), 2);
}

}  // namespace nanotorch::nn
