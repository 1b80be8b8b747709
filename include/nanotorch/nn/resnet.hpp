// nanotorch/nn/resnet.hpp — ResNet building blocks as torchvision writes them: conv3x3,
// conv1x1, BasicBlock (two 3×3 convolutions with batch norm and a residual add) and the
// downsample shortcut a block needs when it changes the stride or the channel count.
//
//   torchvision.models.resnet                           nanotorch
//   BasicBlock(inplanes, planes, stride, downsample)    nn::BasicBlock(inplanes, planes, stride, downsample)
//   nn.Sequential(conv1x1(inplanes, planes, stride),    nn::Sequential(nn::conv1x1(inplanes, planes, stride),
//                 nn.BatchNorm2d(planes))                              nn::BatchNorm2d(planes))
//                                                       (or nn::downsample(inplanes, planes, stride))
//
// State-dict names are torchvision's: conv1.weight, bn1.weight, bn1.running_mean, ...,
// downsample.0.weight, downsample.1.weight. Only the block lives here; a whole network (how
// many blocks per stage, the stem, the head) is the user's code, as in the examples.
#pragma once

#include <cstdint>
#include <string>

#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/nn/conv.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/nn/norm.hpp>
#include <nanotorch/nn/sequential.hpp>
#include <nanotorch/ops/conv.hpp>  // conv2d_fused
#include <nanotorch/ops/elementwise.hpp>
#include <nanotorch/ops/norm.hpp>  // batch_norm_eval_affine

namespace nanotorch::nn {

namespace detail {
// conv → bn [→ + residual] [→ relu] as one convolution with that epilogue (conv2d_fused), where
// that is exactly what the modules one by one compute: bn in eval mode with running statistics,
// grad mode off (an inference forward: conv2d_fused has no backward), and no ONNX export
// tracing (export writes the separate nodes). Same bits as conv, bn, add and relu called in turn
// (conv2d_fused's contract; the residual is added as out + residual). An undefined Tensor when
// the chain does not qualify, so the caller runs the modules.
inline Tensor conv_bn_inference(const Conv2dImpl& conv, const BatchNormImplBase& bn, const Tensor& x,
                                const Tensor& residual, bool relu) {
    if (bn.is_training() || !bn.options().track_running_stats() || GradMode::is_enabled() || trace::active() ||
        x.dim() != 4 || x.size(1) != conv.options().in_channels() ||
        conv.options().out_channels() != bn.options().num_features())
        return Tensor();
    const auto affine = batch_norm_eval_affine(bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.options().eps());
    const Conv2dOptions& o = conv.options();
    return conv2d_fused(x, conv.weight, conv.bias, o.stride(), o.padding(), o.dilation(), o.groups(), affine.first,
                        affine.second, residual, false, relu);
}
}  // namespace detail

/// relu(bn(conv(x))): PyTorch's `F.relu(self.bn(self.conv(x)))`, the stem of a ResNet. In an
/// inference forward (bn in eval mode with running statistics, grad mode off, not exporting) the
/// batch norm and the ReLU run in the convolution's epilogue (conv2d_fused): the same bits as the
/// three calls, in one pass over the output instead of three. Otherwise, and when the shapes do
/// not chain, it is exactly the three calls (so training, export and their errors are theirs).
inline Tensor conv_bn_relu(const Conv2d& conv, const BatchNorm2d& bn, const Tensor& x) {
    if (Tensor y = detail::conv_bn_inference(*conv, *bn, x, Tensor(), true); y.defined()) return y;
    return relu(bn(conv(x)));
}

/// torchvision's conv3x3: a 3×3 convolution with padding 1 and no bias (batch norm follows).
/// @throws value_error when a channel count is not positive.
inline Conv2d conv3x3(std::int64_t in_planes, std::int64_t out_planes, std::int64_t stride = 1) {
    return Conv2d(Conv2dOptions(in_planes, out_planes, 3).stride(stride).padding(1).bias(false));
}

/// torchvision's conv1x1: a 1×1 convolution without bias (the projection shortcut).
/// @throws value_error when a channel count is not positive.
inline Conv2d conv1x1(std::int64_t in_planes, std::int64_t out_planes, std::int64_t stride = 1) {
    return Conv2d(Conv2dOptions(in_planes, out_planes, 1).stride(stride).bias(false));
}

/// The shortcut torchvision's _make_layer builds when a block changes stride or width:
/// Sequential(conv1x1(inplanes, planes, stride), BatchNorm2d(planes)).
/// @throws value_error when a channel count is not positive.
inline Sequential downsample(std::int64_t inplanes, std::int64_t planes, std::int64_t stride = 1) {
    return Sequential(conv1x1(inplanes, planes, stride), BatchNorm2d(planes));
}

/// torchvision.models.resnet.BasicBlock:
///   out = relu(bn1(conv1(x)));  out = bn2(conv2(out));  out = relu(out + shortcut(x))
/// where shortcut is `downsample` when given, else the identity (which needs stride 1 and
/// inplanes == planes: checked here, since the add would fail later with a less clear message).
class BasicBlockImpl : public Module {
public:
    static constexpr std::int64_t expansion = 1;

    /// @throws value_error when a channel count or the stride is not positive, or when there is
    ///   no downsample although stride != 1 or inplanes != planes.
    BasicBlockImpl(std::int64_t inplanes, std::int64_t planes, std::int64_t stride = 1,
                   Sequential downsample = nullptr)
        : stride_(stride) {
        NANOTORCH_CHECK(inplanes > 0 && planes > 0, value_error, "BasicBlock: channel counts must be positive, got ",
                        inplanes, " -> ", planes);
        NANOTORCH_CHECK(stride > 0, value_error, "BasicBlock: stride must be positive, got ", stride);
        NANOTORCH_CHECK(!downsample.is_empty() || (stride == 1 && inplanes == planes), value_error,
                        "BasicBlock(", inplanes, ", ", planes, ", stride=", stride,
                        "): the identity shortcut cannot change the shape; pass a downsample, e.g. "
                        "nn::downsample(inplanes, planes, stride)");
        conv1 = register_module("conv1", conv3x3(inplanes, planes, stride));
        bn1 = register_module("bn1", BatchNorm2d(planes));
        conv2 = register_module("conv2", conv3x3(planes, planes));
        bn2 = register_module("bn2", BatchNorm2d(planes));
        if (!downsample.is_empty()) this->downsample = register_module("downsample", downsample);
    }

    /// x [N, inplanes, H, W] -> [N, planes, ⌈H/stride⌉, ⌈W/stride⌉].
    /// @throws shape_error from the convolutions for a wrong channel count or rank, or from the
    ///   add when a user-built downsample gives another shape.
    /// An inference forward (eval mode, grad mode off, not exporting) runs each convolution with
    /// its batch norm, the residual add and the ReLU in the convolution's epilogue
    /// (conv2d_fused): the same bits as the modules one by one, without their passes over the
    /// output.
    Tensor forward(const Tensor& x) override {
        if (Tensor y = forward_inference(x); y.defined()) return y;
        Tensor out = relu(bn1(conv1(x)));
        out = bn2(conv2(out));
        const Tensor identity = downsample.is_empty() ? x : downsample(x);
        return relu(out + identity);
    }
    std::string type_name() const override { return "BasicBlock"; }
    std::int64_t stride() const { return stride_; }

    Conv2d conv1{nullptr}, conv2{nullptr};
    BatchNorm2d bn1{nullptr}, bn2{nullptr};
    Sequential downsample{nullptr};  // empty for the identity shortcut

private:
    // forward's fused form, or an undefined Tensor where detail::conv_bn_inference does not apply.
    Tensor forward_inference(const Tensor& x) {
        const Tensor out = detail::conv_bn_inference(*conv1, *bn1, x, Tensor(), true);
        if (!out.defined()) return Tensor();
        Tensor identity = x;
        if (!downsample.is_empty()) {  // torchvision's Sequential(conv1x1, BatchNorm2d), else as it is
            const auto* c = downsample->size() == 2 ? dynamic_cast<const Conv2dImpl*>((*downsample)[0].get()) : nullptr;
            const auto* b = c ? dynamic_cast<const BatchNormImplBase*>((*downsample)[1].get()) : nullptr;
            identity = b ? detail::conv_bn_inference(*c, *b, x, Tensor(), false) : Tensor();
            if (!identity.defined()) identity = downsample(x);
        }
        // conv2 (3x3, padding 1, stride 1, planes -> planes) keeps out's shape; a shortcut of
        // another shape (a user's downsample) is left to the add's broadcasting.
        if (identity.shape() == out.shape()) return detail::conv_bn_inference(*conv2, *bn2, out, identity, true);
        return relu(bn2(conv2(out)) + identity);
    }

    std::int64_t stride_;
};
NANOTORCH_MODULE(BasicBlock);

}  // namespace nanotorch::nn
