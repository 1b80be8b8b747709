// bench/bench_nets.cpp — training step and batch-1000 inference of three nets that are not the
// seed's (the ResNet8 of examples/fashion_net.hpp, PyTorch's official examples/mnist net and issue
// #12's VGG-style CIFAR net), plus single conv2d layers forward + backward on shapes that are in
// none of the nets.
//
//   bench_nets [--threads N] [--quick] [--help]
//
// bench/torch_nets.py runs the same work in PyTorch; scripts/bench.sh runs both, one after the
// other, for each thread count and prints the ratios.
//   train_step_b64   one SGD step (momentum 0.9) on a batch of 64 images ([1, 28, 28], or
//                    [3, 32, 32] for vgg): forward, loss, backward, update; the median over many
//                    steps (after warm-up).
//   infer_b1000      eval mode, no grad, a batch of 1000 images: images/s from the median batch.
//   conv_fb_b64_<shape>  one conv2d layer (with bias) on a batch of 64: forward, then backward from
//                    a fixed output gradient to the input, weight and bias gradients (all three
//                    require grad); the median ms over many calls. The shapes (3x3 padded, 3x3
//                    stride 2, 5x5, 1x1; 24 to 160 channels, 9x9 to 30x30 planes) belong to the
//                    CIFAR-style family issue #12 is about but to none of the three nets, so a
//                    kernel path keyed to one net's shapes shows up here.
// The VGG net is heavy (0.31 GFLOP per image forward: batch-1000 inference is 306 GFLOP, seconds
// per batch even at the peak), so it takes fewer samples: 10 training steps after 2 warm-up steps
// and 3 inference batches after 1 warm-up (--quick: 2 steps after 1, and one inference batch with
// no warm-up, so its --quick inference time includes the first-call allocations).
// Inputs are deterministic random images and labels (the timings do not depend on pixel values).
// The net definitions:
//   resnet8         fashion::ResNet8: conv3x3 1->16 + BN + ReLU, BasicBlock(16, 16) at 28x28,
//                   BasicBlock(16, 32, stride 2) at 14x14, BasicBlock(32, 64, stride 2) at 7x7
//                   (1x1 + BN shortcuts), global average pooling, fc 64->10.
//   mnist_example   github.com/pytorch/examples mnist/main.py: conv 1->32 3x3, ReLU, conv 32->64
//                   3x3, ReLU, max-pool 2, dropout 0.25, fc 9216->128, ReLU, dropout 0.5, fc
//                   128->10, log_softmax; nll loss. (That example trains with Adadelta, which
//                   nanotorch does not have; both frameworks here use the same SGD.)
//   vgg             issue #12's VGG-style CIFAR net on [3, 32, 32]: three stages of two 3x3 convs
//                   (padding 1) with ReLU after each, 64, 128 and 256 channels, max-pool 2 after
//                   EVERY stage (the last one too, so the fc sees 256x4x4 = 4096 features), fc
//                   4096->10; cross-entropy on the logits. bench/torch_nets.py builds the same.
// The share of the FMA peak counts the convolution and linear layers' multiply-adds (2 flops
// each) of the forward pass, and three times that for a training step or a conv forward +
// backward (forward, input gradient, weight gradient: the usual convention; the first conv of a
// net is counted with an input gradient too, which it does not need), divided by the peak
// measured at the start for the same number of threads (bench_common.hpp's measure_peak).
// Output: a table plus `RESULT nanotorch <threads> <metric> <value> <unit>` lines, including
// fma_peak and the flop counts, so scripts/bench.sh can compute PyTorch's share of the same peak,
// and the mean process CPU time per step / batch (cpu_*: all threads' CPU time, so at 1 thread
// it is the work done, which other processes on a shared machine disturb less than wall time).
#include <nanotorch/nanotorch.hpp>

#include "../examples/fashion_net.hpp"
#include "bench_common.hpp"

#include <algorithm>
#include <ctime>  // std::clock: process CPU time, the steadier figure on a loaded machine
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {

using namespace nanotorch;
using nanotorch_bench::Clock;
using nanotorch_bench::fail;
using i64 = std::int64_t;

// class Net(nn.Module) of pytorch/examples mnist/main.py, line for line (conv2's ReLU and pool as
// nn::conv_relu_pool, the same calls).
struct MnistExampleNet : nn::Module {
    nn::Conv2d conv1{nullptr}, conv2{nullptr};
    nn::Dropout dropout1{nullptr}, dropout2{nullptr};
    nn::Linear fc1{nullptr}, fc2{nullptr};
    MnistExampleNet() {
        conv1 = register_module("conv1", nn::Conv2d(1, 32, 3));
        conv2 = register_module("conv2", nn::Conv2d(32, 64, 3));
        dropout1 = register_module("dropout1", nn::Dropout(0.25));
        dropout2 = register_module("dropout2", nn::Dropout(0.5));
        fc1 = register_module("fc1", nn::Linear(9216, 128));
        fc2 = register_module("fc2", nn::Linear(128, 10));
    }
    Tensor forward(const Tensor& input) override {
        Tensor x = F::relu(conv1(input));
        // x = F::relu(conv2(x)); x = F::max_pool2d(x, 2): the same calls, or at inference one
        // kernel that pools each plane as conv2 writes it (nn/lenet.hpp)
        x = nn::conv_relu_pool(conv2, x);
        x = dropout1(x);
        x = x.flatten(1);
        x = F::relu(fc1(x));
        x = dropout2(x);
        return F::log_softmax(fc2(x), 1);
    }
};

// Issue #12's VGG-style CIFAR net (see the header comment); torch_nets.py's Vgg is the same.
struct VggNet : nn::Module {
    nn::Conv2d conv1a{nullptr}, conv1b{nullptr}, conv2a{nullptr}, conv2b{nullptr}, conv3a{nullptr}, conv3b{nullptr};
    nn::Linear fc{nullptr};
    VggNet() {
        const auto conv3x3 = [](i64 cin, i64 cout) { return nn::Conv2d(nn::Conv2dOptions(cin, cout, 3).padding(1)); };
        conv1a = register_module("conv1a", conv3x3(3, 64));
        conv1b = register_module("conv1b", conv3x3(64, 64));
        conv2a = register_module("conv2a", conv3x3(64, 128));
        conv2b = register_module("conv2b", conv3x3(128, 128));
        conv3a = register_module("conv3a", conv3x3(128, 256));
        conv3b = register_module("conv3b", conv3x3(256, 256));
        fc = register_module("fc", nn::Linear(256 * 4 * 4, 10));
    }
    Tensor forward(const Tensor& input) override {
        // nn::conv_relu_pool(conv, x) = F::max_pool2d(F::relu(conv(x)), 2), one kernel at inference
        Tensor x = nn::conv_relu_pool(conv1b, F::relu(conv1a(input)));  // 64 x 16 x 16
        x = nn::conv_relu_pool(conv2b, F::relu(conv2a(x)));             // 128 x 8 x 8
        x = nn::conv_relu_pool(conv3b, F::relu(conv3a(x)));             // 256 x 4 x 4
        return fc(x.flatten(1));
    }
};

// Multiply-adds of one image's forward pass through the conv and linear layers.
constexpr double conv_macs(i64 cin, i64 cout, i64 k, i64 hout, i64 wout) {
    return static_cast<double>(cin * cout * k * k * hout * wout);
}
constexpr double resnet8_macs = conv_macs(1, 16, 3, 28, 28)                                   // stem
                                + 2 * conv_macs(16, 16, 3, 28, 28)                            // block 1
                                + conv_macs(16, 32, 3, 14, 14) + conv_macs(32, 32, 3, 14, 14)  // block 2
                                + conv_macs(16, 32, 1, 14, 14)                                // its shortcut
                                + conv_macs(32, 64, 3, 7, 7) + conv_macs(64, 64, 3, 7, 7)      // block 3
                                + conv_macs(32, 64, 1, 7, 7)                                  // its shortcut
                                + 64.0 * 10.0;                                                // fc
constexpr double mnist_example_macs =
    conv_macs(1, 32, 3, 26, 26) + conv_macs(32, 64, 3, 24, 24) + 9216.0 * 128.0 + 128.0 * 10.0;
constexpr double vgg_macs = conv_macs(3, 64, 3, 32, 32) + conv_macs(64, 64, 3, 32, 32)         // stage 1
                            + conv_macs(64, 128, 3, 16, 16) + conv_macs(128, 128, 3, 16, 16)  // stage 2
                            + conv_macs(128, 256, 3, 8, 8) + conv_macs(256, 256, 3, 8, 8)     // stage 3
                            + 4096.0 * 10.0;                                                  // fc
static_assert(vgg_macs == 152'805'376.0, "0.306 GFLOP per image forward");

struct NetCase {
    const char* name;
    std::function<std::shared_ptr<nn::Module>()> make;
    bool log_softmax_output;  // nll_loss on log-probabilities, else cross_entropy on logits
    double forward_macs;
    Shape image;  // one input image, [C, H, W]
    bool heavy;   // seconds per inference batch: fewer samples (see the header comment)
};

// A single conv2d layer timed forward + backward (the conv_fb_b64_* metrics).
struct ConvCase {
    const char* desc;  // the metric's suffix: kernel, stride, padding, channels, input plane
    i64 cin, cout, k, stride, pad, hw;
    i64 out_hw() const { return (hw + 2 * pad - k) / stride + 1; }
};
const ConvCase conv_cases[] = {
    {"3x3p1_48to96_20x20", 48, 96, 3, 1, 1, 20},    {"3x3p1_96to96_10x10", 96, 96, 3, 1, 1, 10},
    {"3x3s2p1_24to40_30x30", 24, 40, 3, 2, 1, 30},  {"5x5p2_40to80_12x12", 40, 80, 5, 1, 2, 12},
    {"1x1_160to64_9x9", 160, 64, 1, 1, 0, 9},
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void result(const std::string& metric, double value, const char* unit) {
    std::printf("RESULT nanotorch %d %s %.6g %s\n", get_num_threads(), metric.c_str(), value, unit);
}

}  // namespace

int main(int argc, char** argv) {
    const nanotorch_bench::Options opt = nanotorch_bench::parse_options(
        argc, argv, "Training step (batch 64) and batch-1000 inference of ResNet8, PyTorch's examples/mnist net and a VGG-style\n"
        "CIFAR net, and conv2d forward + backward on shapes in none of them.");
    try {
        if (opt.threads > 0) set_num_threads(opt.threads);
        nanotorch_bench::print_machine_facts(opt, "bench_nets");
        const int threads = get_num_threads();
        const double peak = nanotorch_bench::measure_peak(threads);
        std::printf("  measured FMA peak       %.1f GFLOP/s on %d thread(s)\n\n", peak, threads);
        result("fma_peak", peak, "GFLOP/s");

        const std::vector<NetCase> nets = {
            {"resnet8", [] { return std::make_shared<fashion::ResNet8>(); }, false, resnet8_macs, {1, 28, 28}, false},
            {"mnist_example", [] { return std::make_shared<MnistExampleNet>(); }, true, mnist_example_macs,
             {1, 28, 28}, false},
            {"vgg", [] { return std::make_shared<VggNet>(); }, false, vgg_macs, {3, 32, 32}, true},
        };
        std::printf("%-15s %12s %10s %8s   %14s %10s %8s\n", "net", "train step", "GFLOP/s", "%peak", "infer b1000",
                    "GFLOP/s", "%peak");
        for (const NetCase& net : nets) {
            const int train_warmup = net.heavy ? (opt.quick ? 1 : 2) : 3;
            const int train_steps = net.heavy ? (opt.quick ? 2 : 10) : (opt.quick ? 5 : 30);
            const int infer_warmup = net.heavy && opt.quick ? 0 : 1;
            const int infer_reps = net.heavy ? (opt.quick ? 1 : 3) : (opt.quick ? 2 : 7);
            const auto batch_shape = [&](i64 n) {
                Shape s{n};
                s.insert(s.end(), net.image.begin(), net.image.end());
                return s;
            };
            manual_seed(1);
            Generator gen(7);
            auto model = net.make();
            optim::SGD sgd(model->parameters(), optim::SGDOptions(0.01).momentum(0.9));
            const Tensor x64 = randn(batch_shape(64), gen);
            std::vector<std::int64_t> y64(64);
            for (auto& y : y64) y = static_cast<std::int64_t>(gen.randint(10));

            // ---- training step ----
            model->train();
            std::vector<double> step_s;
            std::clock_t cpu0 = 0;
            for (int i = 0; i < train_steps + train_warmup; ++i) {
                if (i == train_warmup) cpu0 = std::clock();
                const auto t0 = Clock::now();
                sgd.zero_grad();
                const Tensor out = model->forward(x64);
                const Tensor loss = net.log_softmax_output ? F::nll_loss(out, y64) : F::cross_entropy(out, y64);
                loss.backward();
                sgd.step();
                const double s = std::chrono::duration<double>(Clock::now() - t0).count();
                if (!(loss.item() == loss.item())) fail(std::string(net.name) + ": NaN loss");
                if (i >= train_warmup) step_s.push_back(s);  // the first steps allocate workspaces
            }
            const double step_cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC / train_steps;
            const double step = median(step_s);
            const double train_flops = 3.0 * 2.0 * net.forward_macs * 64.0;

            // ---- inference, batch 1000 ----
            model->eval();
            const Tensor x1000 = randn(batch_shape(1000), gen);
            std::vector<double> infer_s;
            std::clock_t icpu0 = 0;
            {
                NoGradGuard no_grad;
                for (int i = 0; i < infer_reps + infer_warmup; ++i) {
                    if (i == infer_warmup) icpu0 = std::clock();
                    const auto t0 = Clock::now();
                    const Tensor out = model->forward(x1000);
                    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
                    nanotorch_bench::keep(out.data_ptr()[0]);
                    if (i >= infer_warmup) infer_s.push_back(s);
                }
            }
            const double infer_cpu = static_cast<double>(std::clock() - icpu0) / CLOCKS_PER_SEC / infer_reps;
            const double infer = median(infer_s);
            const double infer_flops = 2.0 * net.forward_macs * 1000.0;

            std::printf("%-15s %9.2f ms %10.1f %7.1f%%   %10.0f img/s %10.1f %7.1f%%\n", net.name, step * 1e3,
                        train_flops / step / 1e9, 100.0 * train_flops / step / 1e9 / peak, 1000.0 / infer,
                        infer_flops / infer / 1e9, 100.0 * infer_flops / infer / 1e9 / peak);
            std::fflush(stdout);  // the heavy net takes a while: show each row when it is done
            result(std::string("train_step_b64_") + net.name, step * 1e3, "ms");
            result(std::string("infer_b1000_") + net.name, 1000.0 / infer, "img/s");
            result(std::string("cpu_train_step_b64_") + net.name, step_cpu * 1e3, "ms");
            result(std::string("cpu_infer_b1000_") + net.name, infer_cpu * 1e3, "ms");
            result(std::string("flops_train_step_b64_") + net.name, train_flops, "flop");
            result(std::string("flops_infer_b1000_") + net.name, infer_flops, "flop");
        }

        // ---- single conv2d layers, forward + backward, batch 64 ----
        std::printf("\n%-22s %16s %10s %8s\n", "conv2d fwd+bwd, b64", "time", "GFLOP/s", "%peak");
        const int conv_warmup = 3, conv_reps = opt.quick ? 3 : 30;
        for (const ConvCase& c : conv_cases) {
            Generator gen(11);
            const i64 ohw = c.out_hw();
            Tensor x = randn({64, c.cin, c.hw, c.hw}, gen);
            Tensor w = randn({c.cout, c.cin, c.k, c.k}, gen);
            Tensor b = randn({c.cout}, gen);
            x.requires_grad_();
            w.requires_grad_();
            b.requires_grad_();
            // A fixed output gradient, so backward does not time a reduction of the output.
            const Tensor grad_out = randn({64, c.cout, ohw, ohw}, gen);
            std::vector<double> samples;
            for (int i = 0; i < conv_warmup + conv_reps; ++i) {
                x.zero_grad();  // fresh gradients each call, as an optimizer's zero_grad leaves them
                w.zero_grad();
                b.zero_grad();
                const auto t0 = Clock::now();
                const Tensor out = F::conv2d(x, w, b, c.stride, c.pad);
                out.backward(grad_out);
                const double s = std::chrono::duration<double>(Clock::now() - t0).count();
                if (i == 0 && (out.sizes() != Shape{64, c.cout, ohw, ohw} || !x.grad().defined() ||
                               !w.grad().defined() || !b.grad().defined()))
                    fail(std::string(c.desc) + ": unexpected output shape or a missing gradient");
                nanotorch_bench::keep(x.grad().data_ptr()[0] + w.grad().data_ptr()[0] + b.grad().data_ptr()[0]);
                if (i >= conv_warmup) samples.push_back(s);
            }
            const double t = median(samples);
            const double flops = 3.0 * 2.0 * conv_macs(c.cin, c.cout, c.k, ohw, ohw) * 64.0;
            std::printf("%-22s %13.3f ms %10.1f %7.1f%%\n", c.desc, t * 1e3, flops / t / 1e9,
                        100.0 * flops / t / 1e9 / peak);
            result(std::string("conv_fb_b64_") + c.desc, t * 1e3, "ms");
            result(std::string("flops_conv_fb_b64_") + c.desc, flops, "flop");
        }
        std::fflush(stdout);
        return 0;
    } catch (const std::exception& e) {
        fail(std::string("bench_nets: ") + e.what());
    }
}
