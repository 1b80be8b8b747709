// examples/mnist_net.hpp — the seed's network, translated line by line from its PyTorch.
//
//   class Net(nn.Module):                              struct Net : nn::Module {
//       def __init__(self):                                Net() {
//           self.conv1 = nn.Conv2d(1, 10, kernel_size=5)       conv1 = register_module("conv1", nn::Conv2d(1, 10, 5));
//           self.conv2 = nn.Conv2d(10, 20, kernel_size=5)      conv2 = register_module("conv2", nn::Conv2d(10, 20, 5));
//           self.conv2_drop = nn.Dropout2d()                   conv2_drop = register_module("conv2_drop", nn::Dropout2d());
//           self.fc1 = nn.Linear(320, 50)                      fc1 = register_module("fc1", nn::Linear(320, 50));
//           self.fc2 = nn.Linear(50, 10)                       fc2 = register_module("fc2", nn::Linear(50, 10));
//       def forward(self, x):                              Tensor forward(const Tensor& input) override {
//           x = F.relu(F.max_pool2d(self.conv1(x), 2))         ...the same, line for line (below)
//
// Shared by examples/mnist_train.cpp and the tests, so both train exactly this network.
#pragma once

#include <nanotorch/nanotorch.hpp>

namespace mnist {

using namespace nanotorch;

struct Net : nn::Module {
    nn::Conv2d conv1{nullptr}, conv2{nullptr};
    nn::Dropout2d conv2_drop{nullptr};
    nn::Linear fc1{nullptr}, fc2{nullptr};

    Net() {
        conv1 = register_module("conv1", nn::Conv2d(1, 10, /*kernel_size=*/5));
        conv2 = register_module("conv2", nn::Conv2d(10, 20, /*kernel_size=*/5));
        conv2_drop = register_module("conv2_drop", nn::Dropout2d());
        fc1 = register_module("fc1", nn::Linear(320, 50));
        fc2 = register_module("fc2", nn::Linear(50, 10));
    }

    /// input [N, 1, 28, 28] (normalised) -> log-probabilities [N, 10]
    Tensor forward(const Tensor& input) override {
        Tensor x = F::relu(F::max_pool2d(conv1(input), 2));
        x = F::relu(F::max_pool2d(conv2_drop(conv2(x)), 2));
        x = x.view({-1, 320});
        x = F::relu(fc1(x));
        x = F::dropout(x, 0.5f, is_training());
        x = fc2(x);
        return F::log_softmax(x, /*dim=*/1);
    }
    std::string type_name() const override { return "Net"; }
};

}  // namespace mnist
