// Tests for nn::ModuleList (nn/module_list.hpp) and nn::BasicBlock (nn/resnet.hpp).
// ModuleList: PyTorch's semantics — append/push_back, size, indexing (with a typed at<T>),
// iteration, the names "0", "1", ... in named_parameters and state_dicts (and so in saved
// files), train/eval reaching the elements, printing, no forward of its own, and errors for null
// modules and bad indices. BasicBlock: torchvision's state_dict names, its forward equal (bit
// for bit) to the same layers composed by hand, gradients reaching every parameter, and errors.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>

#include "support/expect.hpp"
#include "support/temp_dir.hpp"

namespace nt = nanotorch;
namespace nn = nanotorch::nn;
using nt::testing::expect_thrown;
using nt::testing::value_error_message;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The bit patterns of t's values: "the same bits" compares -0 and NaN too, where == on floats
// would not.
std::vector<std::uint32_t> bits(const nt::Tensor& t) {
    std::vector<std::uint32_t> out;
    for (const float v : t.contiguous().to_vector()) out.push_back(nt::util::float_bits(v));
    return out;
}

std::vector<std::string> names(const std::vector<std::pair<std::string, nt::Tensor>>& entries) {
    std::vector<std::string> out;
    for (auto& e : entries) out.push_back(e.first);
    return out;
}

// class Stack(nn.Module):
//     def __init__(self):
//         self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
//     def forward(self, x):
//         for layer in self.layers: x = F.relu(layer(x))
struct Stack : nn::Module {
    nn::ModuleList layers{nullptr};
    Stack() {
        layers = register_module("layers", nn::ModuleList());
        for (int i = 0; i < 3; ++i) layers->append(nn::Linear(4, 4));
    }
    nt::Tensor forward(const nt::Tensor& x) override {
        nt::Tensor h = x;
        for (const auto& layer : *layers) h = nt::F::relu(layer->forward(h));
        return h;
    }
};

}  // namespace

TEST_CASE("ModuleList: append, size, indexing, iteration in order") {
    nn::Linear a(2, 3), b(3, 1);
    nn::ModuleList list(a, nn::ReLU());
    CHECK(list->size() == 2);
    list->append(b);
    REQUIRE(list->size() == 3);
    CHECK((*list)[0] == a.ptr());
    CHECK((*list)[2] == b.ptr());
    CHECK(list->at<nn::LinearImpl>(2)->weight.shape() == nt::Shape{1, 3});
    std::vector<std::string> types;
    for (const auto& m : *list) types.push_back(m->type_name());
    CHECK(types == std::vector<std::string>{"Linear", "ReLU", "Linear"});

    nn::ModuleList more(nn::Linear(1, 1));
    list->extend(*more);
    CHECK(list->size() == 4);
    CHECK((*list)[3] == (*more)[0]);  // shared, as Python's extend shares the modules
    CHECK(nn::ModuleList()->is_empty());
}

TEST_CASE("ModuleList names its elements 0, 1, ... in parameters and state_dict, and round-trips a file") {
    nt::manual_seed(3);
    Stack net;
    CHECK(names(net.named_parameters()) ==
          std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                                   "layers.2.weight", "layers.2.bias"});
    CHECK(names(nn::state_dict(net)) == names(net.named_parameters()));

    const nt::Tensor x = nt::randn({2, 4});
    const std::vector<float> before = net.forward(x).to_vector();
    nt::testing::TempDir dir;
    const std::string path = dir.file("stack.ntsd");
    nn::save_state_dict(net, path);
    nt::manual_seed(4);
    Stack other;
    CHECK(other.forward(x).to_vector() != before);
    nn::load_state_dict(other, path);
    CHECK(other.forward(x).to_vector() == before);  // the same weights give bit-identical outputs
}

TEST_CASE("ModuleList: train/eval reach the elements; printing; no forward of its own") {
    Stack net;
    net.eval();
    for (const auto& m : *net.layers) CHECK_FALSE(m->is_training());
    net.train();
    for (const auto& m : *net.layers) CHECK(m->is_training());

    std::ostringstream os;
    os << *nn::ModuleList(nn::ReLU());
    CHECK(os.str() == "ModuleList(\n  (0): ReLU()\n)");

    const auto e = expect_thrown([&] { net.layers->forward(nt::zeros({1, 4})); }, nt::unsupported_error("unreachable"));
    CHECK(contains(e.what(), "ModuleList does not define forward"));
}

TEST_CASE("ModuleList errors: null modules, empty holders, bad indices, wrong types") {
    nn::ModuleList list;
    CHECK(contains(value_error_message([&] { list->append(std::shared_ptr<nn::LinearImpl>()); }), "null"));
    CHECK(contains(value_error_message([&] { list->append(nn::Linear(nullptr)); }), "null"));
    list->append(nn::ReLU());
    CHECK(contains(value_error_message([&] { (void)(*list)[1]; }), "index 1 out of range for 1"));
    CHECK(contains(value_error_message([&] { (void)list->at<nn::LinearImpl>(0); }), "is a ReLU"));
    CHECK(list->size() == 1);  // failed appends left nothing behind
}

// ---- BasicBlock (nn/resnet.hpp) ----

TEST_CASE("BasicBlock: torchvision's state_dict names, with and without a downsample shortcut") {
    nn::BasicBlock plain(8, 8);
    CHECK(names(plain->named_parameters()) ==
          std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias"});
    CHECK(plain->downsample.is_empty());
    CHECK(plain->conv1->weight.shape() == nt::Shape{8, 8, 3, 3});
    CHECK_FALSE(plain->conv1->bias.defined());  // conv3x3 has no bias: batch norm follows

    nn::BasicBlock down(8, 16, 2, nn::downsample(8, 16, 2));
    const auto p = names(down->named_parameters());
    CHECK(p == std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight",
                                        "bn2.bias", "downsample.0.weight", "downsample.1.weight", "downsample.1.bias"});
    CHECK(down->downsample->size() == 2);
    const auto b = names(down->named_buffers());
    CHECK(std::find(b.begin(), b.end(), "downsample.1.running_mean") != b.end());
    CHECK(std::find(b.begin(), b.end(), "bn1.running_var") != b.end());
    CHECK(down->conv1->options().stride() == nt::Pair2d(2));
    CHECK((*down->downsample)[0]->type_name() == "Conv2d");
    CHECK((*down->downsample)[1]->type_name() == "BatchNorm2d");
}

TEST_CASE("BasicBlock computes relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), in train and eval mode") {
    nt::manual_seed(5);
    for (const bool with_downsample : {false, true}) {
        nn::BasicBlock block = with_downsample ? nn::BasicBlock(4, 6, 2, nn::downsample(4, 6, 2)) : nn::BasicBlock(4, 4);
        // A second, independent set of the same layers, with the block's weights: the block
        // must equal this hand-written composition exactly (same ops in the same order).
        nn::Conv2d c1 = nn::conv3x3(4, with_downsample ? 6 : 4, with_downsample ? 2 : 1);
        nn::Conv2d c2 = nn::conv3x3(with_downsample ? 6 : 4, with_downsample ? 6 : 4);
        nn::BatchNorm2d b1(with_downsample ? 6 : 4), b2(with_downsample ? 6 : 4);
        nn::Sequential ds = with_downsample ? nn::downsample(4, 6, 2) : nn::Sequential(nullptr);
        struct Ref : nn::Module {};
        Ref ref;
        ref.register_module("conv1", c1);
        ref.register_module("bn1", b1);
        ref.register_module("conv2", c2);
        ref.register_module("bn2", b2);
        if (with_downsample) ref.register_module("downsample", ds);
        nn::load_state_dict(ref, nn::state_dict(*block));

        const nt::Tensor x = nt::randn({3, 4, 6, 6});
        for (const bool training : {true, false}) {
            block->train(training);
            ref.train(training);
            const nt::Tensor y = block(x);
            const nt::Tensor identity = with_downsample ? ds(x) : x;
            const nt::Tensor want = nt::F::relu(b2(c2(nt::F::relu(b1(c1(x))))) + identity);
            CHECK(y.shape() == (with_downsample ? nt::Shape{3, 6, 3, 3} : nt::Shape{3, 4, 6, 6}));
            CHECK(y.to_vector() == want.to_vector());
        }
    }
}

TEST_CASE("BasicBlock's inference forward (eval, no grad) fuses batch norm, add and ReLU with the same bits") {
    // Under NoGradGuard in eval mode each convolution runs its batch norm, the residual add and
    // the ReLU in its epilogue (conv2d_fused); with grad mode on the modules run one by one. The
    // two must agree bit for bit: with the identity shortcut, torchvision's downsample, and a
    // user's shortcut that is neither (Sequential(AdaptiveAvgPool2d(1), conv1x1): a [N, C, 1, 1]
    // shortcut the add broadcasts). The input holds -0 and NaN; running statistics come from
    // three training forwards.
    nt::manual_seed(9);
    std::vector<nn::BasicBlock> blocks = {
        nn::BasicBlock(4, 4), nn::BasicBlock(4, 6, 2, nn::downsample(4, 6, 2)),
        nn::BasicBlock(4, 6, 1, nn::Sequential(nn::AdaptiveAvgPool2d(1), nn::conv1x1(4, 6)))};
    for (std::size_t k = 0; k < blocks.size(); ++k) {
        CAPTURE(k);
        nn::BasicBlock& block = blocks[k];
        for (int i = 0; i < 3; ++i) block(nt::randn({5, 4, 7, 7}));  // train mode: running statistics move
        block->eval();
        nt::Tensor x = nt::randn({2, 4, 7, 7});
        x.data_ptr()[3] = -0.0f, x.data_ptr()[60] = std::numeric_limits<float>::quiet_NaN();
        const nt::Tensor unfused = block(x);  // grad mode on: conv, bn, add and relu one by one
        nt::Tensor fused;
        {
            nt::NoGradGuard no_grad;
            fused = block(x);
        }
        REQUIRE(fused.shape() == unfused.shape());
        CHECK(bits(fused) == bits(unfused));
    }
}

TEST_CASE("nn::conv_bn_relu: relu(bn(conv(x))) bit for bit, fused at inference, the three calls otherwise") {
    // At inference (eval, NoGradGuard) the batch norm and ReLU run in the convolution's epilogue;
    // in training mode, and with grad mode on, it must be the three modules called in turn (the
    // same values, and gradients through all of them). The input holds -0 and NaN. A wrong
    // channel count is the convolution's own shape_error in both modes.
    nt::manual_seed(12);
    for (const bool strided : {false, true}) {
        CAPTURE(strided);
        nn::Conv2d conv = nn::Conv2d(nn::Conv2dOptions(3, 5, 3).stride(strided ? 2 : 1).padding(1).bias(strided));
        nn::BatchNorm2d bn(5);
        nt::Tensor x = nt::randn({2, 3, 9, 9});
        x.data_ptr()[4] = -0.0f, x.data_ptr()[70] = std::numeric_limits<float>::quiet_NaN();
        // training mode: batch statistics, and the gradient reaches the conv and bn parameters
        const nt::Tensor xt = nt::randn({4, 3, 9, 9});
        const nt::Tensor yt = nn::conv_bn_relu(conv, bn, xt);
        yt.sum().backward();
        REQUIRE(conv->weight.grad().defined());
        REQUIRE(bn->weight.grad().defined());
        bn->eval();
        const nt::Tensor unfused = nt::F::relu(bn(conv(x)));  // grad mode on: the modules one by one
        CHECK(bits(nn::conv_bn_relu(conv, bn, x)) == bits(unfused));
        nt::Tensor fused;
        {
            nt::NoGradGuard no_grad;
            fused = nn::conv_bn_relu(conv, bn, x);
        }
        REQUIRE(fused.shape() == unfused.shape());
        CHECK(bits(fused) == bits(unfused));
        const std::string want = expect_thrown([&] { conv(nt::zeros({1, 4, 9, 9})); }, nt::shape_error("unreachable")).what();
        const auto message = [&] {
            return std::string(expect_thrown([&] { nn::conv_bn_relu(conv, bn, nt::zeros({1, 4, 9, 9})); },
                                             nt::shape_error("unreachable"))
                                   .what());
        };
        CHECK(message() == want);
        {
            nt::NoGradGuard no_grad;
            CHECK(message() == want);
        }
    }
}

TEST_CASE("nn::conv_pool_relu and conv_relu_pool: the calls' bits, fused at inference") {
    // At inference (NoGradGuard, dropout in eval mode) the pool and the ReLU run in the
    // convolution's epilogue (conv2d_max_pool2x2); with grad mode on, or a training dropout, it
    // is the calls one by one: the same values, and gradients through the convolution. The input
    // holds -0 and NaN. Too small an input, or a wrong channel count, is the modules' own error.
    nt::manual_seed(13);
    for (const bool padded : {false, true}) {
        CAPTURE(padded);
        nn::Conv2d conv = nn::Conv2d(nn::Conv2dOptions(3, 5, 3).padding(padded ? 1 : 0));
        nn::Dropout2d drop(0.5);
        nt::Tensor x = nt::randn({2, 3, 11, 11});
        x.data_ptr()[4] = -0.0f, x.data_ptr()[70] = std::numeric_limits<float>::quiet_NaN();
        const nt::Tensor yt = nn::conv_pool_relu(conv, nt::randn({4, 3, 11, 11}), drop);  // training dropout
        yt.sum().backward();
        REQUIRE(conv->weight.grad().defined());
        drop->eval();
        const nt::Tensor unfused = nt::F::relu(nt::F::max_pool2d(drop(conv(x)), 2));  // grad mode on
        CHECK(bits(nn::conv_pool_relu(conv, x, drop)) == bits(unfused));
        nt::Tensor fused, fused_no_drop;
        {
            nt::NoGradGuard no_grad;
            fused = nn::conv_pool_relu(conv, x, drop);
            fused_no_drop = nn::conv_pool_relu(conv, x);
        }
        REQUIRE(fused.shape() == unfused.shape());
        CHECK(bits(fused) == bits(unfused));
        CHECK(bits(fused_no_drop) == bits(unfused));
        // and the ReLU before the pool (VGG's order), which keeps no NaN window
        const nt::Tensor relu_first = nt::F::max_pool2d(nt::F::relu(conv(x)), 2);
        CHECK(bits(nn::conv_relu_pool(conv, x)) == bits(relu_first));
        {
            nt::NoGradGuard no_grad;
            CHECK(bits(nn::conv_relu_pool(conv, x)) == bits(relu_first));
        }
        CHECK(bits(relu_first) != bits(unfused));
        nt::NoGradGuard no_grad;
        const auto message = [&](const nt::Tensor& bad) {
            return std::string(expect_thrown([&] { nn::conv_pool_relu(conv, bad); }, nt::shape_error("unreachable")).what());
        };
        const nt::Tensor narrow = nt::zeros({1, 4, 9, 9}), tiny = nt::zeros({1, 3, padded ? 1 : 3, 3});
        CHECK(message(narrow) == expect_thrown([&] { conv(narrow); }, nt::shape_error("unreachable")).what());
        CHECK(message(tiny) ==
              expect_thrown([&] { nt::F::max_pool2d(conv(tiny), 2); }, nt::shape_error("unreachable")).what());
    }
}

TEST_CASE("BasicBlocks in a ModuleList: a ResNet stage's names, gradients reach every parameter") {
    nt::manual_seed(2);
    nn::ModuleList layers(nn::BasicBlock(2, 2), nn::BasicBlock(2, 4, 2, nn::downsample(2, 4, 2)));
    const auto p = names(layers->named_parameters());
    CHECK(p.front() == "0.conv1.weight");
    CHECK(p.back() == "1.downsample.1.bias");
    nt::Tensor h = nt::randn({2, 2, 4, 4});
    for (const auto& layer : *layers) h = layer->forward(h);
    h.sum().backward();
    for (const auto& entry : layers->named_parameters()) {
        const std::string& name = entry.first;  // not a structured binding: INFO captures it
        const nt::Tensor& t = entry.second;
        INFO(name);
        REQUIRE(t.grad().defined());
        double norm = 0.0;
        for (float g : t.grad().to_vector()) norm += std::abs(g);
        CHECK(norm > 0.0);  // every parameter, the shortcut's included, takes part in the output
    }
}

TEST_CASE("BasicBlock errors: an identity shortcut that cannot match, bad sizes, wrong input channels") {
    CHECK(contains(value_error_message([] { nn::BasicBlock(16, 32); }), "pass a downsample"));
    CHECK(contains(value_error_message([] { nn::BasicBlock(16, 16, 2); }), "pass a downsample"));
    CHECK(contains(value_error_message([] { nn::BasicBlock(16, 16, 0); }), "stride must be positive"));
    CHECK(contains(value_error_message([] { nn::BasicBlock(0, 16); }), "channel counts must be positive"));
    nn::BasicBlock block(4, 4);
    expect_thrown([&] { block(nt::zeros({1, 3, 5, 5})); }, nt::shape_error("unreachable"));
}
