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

#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/nn/conv.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/nn/norm.hpp>
#include <nanotorch/nn/sequential.hpp>
#include <nanotorch/ops/elementwise.hpp>

namespace nanotorch::nn {

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
    Tensor forward(const Tensor& x) override {
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
    std::int64_t stride_;
};
NANOTORCH_MODULE(BasicBlock);

}  // namespace nanotorch::nn
