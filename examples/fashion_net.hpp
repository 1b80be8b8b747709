// examples/fashion_net.hpp — the small ResNet fashion_train trains on Fashion-MNIST, written as
// a PyTorch user writes it (examples/fashion_train_torch.py has the same model in PyTorch):
//
//   class ResNet8(nn.Module):                          struct ResNet8 : nn::Module {
//     def __init__(self, num_classes=10):                ResNet8(int64_t num_classes = 10) {
//       self.conv1 = nn.Conv2d(1, 16, 3, padding=1,        conv1 = register_module("conv1", nn::conv3x3(1, 16));
//                              bias=False)
//       self.bn1 = nn.BatchNorm2d(16)                      bn1 = register_module("bn1", nn::BatchNorm2d(16));
//       self.layers = nn.ModuleList([                      layers = register_module("layers", nn::ModuleList(
//         BasicBlock(16, 16),                                nn::BasicBlock(16, 16),
//         BasicBlock(16, 32, 2, downsample(16, 32, 2)),      nn::BasicBlock(16, 32, 2, nn::downsample(16, 32, 2)),
//         BasicBlock(32, 64, 2, downsample(32, 64, 2))])     nn::BasicBlock(32, 64, 2, nn::downsample(32, 64, 2))));
//       self.fc = nn.Linear(64, num_classes)               fc = register_module("fc", nn::Linear(64, num_classes));
//     def forward(self, x):                              Tensor forward(const Tensor& x) override {
//       x = F.relu(self.bn1(self.conv1(x)))                Tensor h = nn::conv_bn_relu(conv1, bn1, x);
//       for layer in self.layers: x = layer(x)             for (auto& layer : *layers) h = layer->forward(h);
//       x = F.adaptive_avg_pool2d(x, 1).flatten(1)         h = F::adaptive_avg_pool2d(h, 1).flatten(1);
//       return self.fc(x)                                  return fc(h);
//
// 28×28 input: the stem and the first block at 28×28 with 16 channels, then a stride-2 block to
// 14×14 with 32 and another to 7×7 with 64, global average pooling, and a 64 -> 10 classifier
// (8 weight layers counting the shortcuts' 1×1 convolutions as part of their blocks; 78k
// parameters).
#pragma once

#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>

namespace fashion {

using namespace nanotorch;

/// Fashion-MNIST's ten classes, in label order.
inline const std::vector<std::string>& class_names() {
    static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return names;
}

/// The training set's pixel mean and standard deviation (pixels scaled to [0, 1]).
inline constexpr float mean = 0.2860f;
inline constexpr float std_dev = 0.3530f;

struct ResNet8 : nn::Module {
    nn::Conv2d conv1{nullptr};
    nn::BatchNorm2d bn1{nullptr};
    nn::ModuleList layers{nullptr};
    nn::Linear fc{nullptr};

    explicit ResNet8(std::int64_t num_classes = 10) {
        conv1 = register_module("conv1", nn::conv3x3(1, 16));
        bn1 = register_module("bn1", nn::BatchNorm2d(16));
        layers = register_module("layers", nn::ModuleList(nn::BasicBlock(16, 16),
                                                          nn::BasicBlock(16, 32, 2, nn::downsample(16, 32, 2)),
                                                          nn::BasicBlock(32, 64, 2, nn::downsample(32, 64, 2))));
        fc = register_module("fc", nn::Linear(64, num_classes));
    }

    /// x [N, 1, 28, 28] (normalised) -> logits [N, num_classes]
    Tensor forward(const Tensor& x) override {
        // = F::relu(bn1(conv1(x))), with the batch norm and ReLU fused into the convolution at inference
        Tensor h = nn::conv_bn_relu(conv1, bn1, x);
        for (const auto& layer : *layers) h = layer->forward(h);
        h = F::adaptive_avg_pool2d(h, 1).flatten(1);
        return fc(h);
    }
    std::string type_name() const override { return "ResNet8"; }
};

/// What fashion_train exports: the same weights, raw pixels in [0, 1] as input (the
/// normalisation is part of the graph) and class probabilities out.
struct InferenceNet : ResNet8 {
    /// x [N, 1, 28, 28], pixels in [0, 1] -> probabilities [N, 10]
    Tensor forward(const Tensor& x) override {
        return F::softmax(ResNet8::forward((x - mean) / std_dev), /*dim=*/1);
    }
    std::string type_name() const override { return "InferenceNet"; }
};

}  // namespace fashion
