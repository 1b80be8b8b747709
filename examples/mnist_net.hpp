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
//           x = F.relu(F.max_pool2d(self.conv1(x), 2))         ...the same, line for line (below);
//                                                               the two conv blocks as nn::conv_pool_relu,
//                                                               which calls the same three functions, or
//                                                               at inference one fused kernel (same bits)
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
    Tensor forward(const Tensor& input) override { return F::log_softmax(logits(input), /*dim=*/1); }

    /// The layers up to fc2, shared with InferenceNet.
    Tensor logits(const Tensor& input) {
        // = F::relu(F::max_pool2d(conv1(input), 2)) and F::relu(F::max_pool2d(conv2_drop(conv2(x)), 2)),
        // with the pool and the ReLU in the convolution's epilogue at inference (nn/lenet.hpp)
        Tensor x = nn::conv_pool_relu(conv1, input);
        x = nn::conv_pool_relu(conv2, x, conv2_drop);
        x = x.view({-1, 320});
        x = F::relu(fc1(x));
        x = F::dropout(x, 0.5f, is_training());
        return fc2(x);
    }
    std::string type_name() const override { return "Net"; }
};

/// The seed's InferenceNet: Net's parameters, but it takes the draw-a-digit canvas's raw
/// 280·280·4 RGBA bytes (as floats) and returns probabilities, so the browser needs no
/// preprocessing and no LogSoftmax (which ONNX.js lacks). Loads Net's state_dict as is.
struct InferenceNet : Net {
    /// input [280·280·4] RGBA, 0..255 -> probabilities [1, 10]
    Tensor forward(const Tensor& input) override { return F::softmax(logits(preprocess(input)), /*dim=*/1); }

    /// The graph's preprocessing, on its own so that code training on canvas drawings (the wasm
    /// build's learn()) feeds Net exactly what the exported model computes:
    /// [280·280·4] RGBA, 0..255 -> [1, 1, 28, 28] normalised.
    static Tensor preprocess(const Tensor& input) {
        Tensor x = input.reshape({280, 280, 4});
        x = x.narrow(/*dim=*/2, /*start=*/3, /*length=*/1);  // the alpha channel: where the user drew
        return preprocess_alpha(x.reshape({1, 1, 280, 280}));
    }
    /// The rest of preprocess, from the alpha channel [1, 1, 280, 280] on (callers that hold the
    /// canvas as bytes can skip converting the RGB bytes the graph discards).
    static Tensor preprocess_alpha(const Tensor& alpha) {
        Tensor x = F::avg_pool2d(alpha, 10, 10);  // 280x280 -> 28x28, MNIST's size
        x = x / 255.0f;
        return (x - 0.1307f) / 0.3081f;  // Normalize((0.1307,), (0.3081,))
    }
    std::string type_name() const override { return "InferenceNet"; }
};

}  // namespace mnist
