// bench/bench_nets.cpp — training step and batch-1000 inference of two nets that are not the
// seed's: the ResNet8 of examples/fashion_net.hpp and PyTorch's official examples/mnist net.
//
//   bench_nets [--threads N] [--quick] [--help]
//
// bench/torch_nets.py runs the same work in PyTorch; scripts/bench.sh runs both, one after the
// other, for each thread count and prints the ratios.
//   train_step_b64   one SGD step (momentum 0.9) on a batch of 64 [1, 28, 28] images: forward,
//                    cross-entropy, backward, update; the median over many steps (after warm-up).
//   infer_b1000      eval mode, no grad, a batch of 1000 images: images/s from the median batch.
// Inputs are deterministic random images and labels (the timings do not depend on pixel values).
// The net definitions:
//   resnet8         fashion::ResNet8: conv3x3 1->16 + BN + ReLU, BasicBlock(16, 16) at 28x28,
//                   BasicBlock(16, 32, stride 2) at 14x14, BasicBlock(32, 64, stride 2) at 7x7
//                   (1x1 + BN shortcuts), global average pooling, fc 64->10.
//   mnist_example   github.com/pytorch/examples mnist/main.py: conv 1->32 3x3, ReLU, conv 32->64
//                   3x3, ReLU, max-pool 2, dropout 0.25, fc 9216->128, ReLU, dropout 0.5, fc
//                   128->10, log_softmax; nll loss. (That example trains with Adadelta, which
//                   nanotorch does not have; both frameworks here use the same SGD.)
// The share of the FMA peak counts the convolution and linear layers' multiply-adds (2 flops
// each) of the forward pass, and three times that for a training step (forward, input gradient,
// weight gradient: the usual convention), divided by the peak measured at the start for the
// same number of threads (bench_common.hpp's measure_peak).
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

// class Net(nn.Module) of pytorch/examples mnist/main.py, line for line.
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
        x = F::relu(conv2(x));
        x = F::max_pool2d(x, 2);
        x = dropout1(x);
        x = x.flatten(1);
        x = F::relu(fc1(x));
        x = dropout2(x);
        return F::log_softmax(fc2(x), 1);
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

struct NetCase {
    const char* name;
    std::function<std::shared_ptr<nn::Module>()> make;
    bool log_softmax_output;  // nll_loss on log-probabilities, else cross_entropy on logits
    double forward_macs;
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
        argc, argv, "Training step (batch 64) and batch-1000 inference of ResNet8 and PyTorch's examples/mnist net.");
    try {
        if (opt.threads > 0) set_num_threads(opt.threads);
        nanotorch_bench::print_machine_facts(opt, "bench_nets");
        const int threads = get_num_threads();
        const double peak = nanotorch_bench::measure_peak(threads);
        std::printf("  measured FMA peak       %.1f GFLOP/s on %d thread(s)\n\n", peak, threads);
        result("fma_peak", peak, "GFLOP/s");

        const int train_steps = opt.quick ? 5 : 30, infer_reps = opt.quick ? 2 : 7;
        const std::vector<NetCase> nets = {
            {"resnet8", [] { return std::make_shared<fashion::ResNet8>(); }, false, resnet8_macs},
            {"mnist_example", [] { return std::make_shared<MnistExampleNet>(); }, true, mnist_example_macs},
        };
        std::printf("%-15s %12s %10s %8s   %14s %10s %8s\n", "net", "train step", "GFLOP/s", "%peak", "infer b1000",
                    "GFLOP/s", "%peak");
        for (const NetCase& net : nets) {
            manual_seed(1);
            Generator gen(7);
            auto model = net.make();
            optim::SGD sgd(model->parameters(), optim::SGDOptions(0.01).momentum(0.9));
            const Tensor x64 = randn({64, 1, 28, 28}, gen);
            std::vector<std::int64_t> y64(64);
            for (auto& y : y64) y = static_cast<std::int64_t>(gen.randint(10));

            // ---- training step ----
            model->train();
            std::vector<double> step_s;
            std::clock_t cpu0 = 0;
            for (int i = 0; i < train_steps + 3; ++i) {
                if (i == 3) cpu0 = std::clock();
                const auto t0 = Clock::now();
                sgd.zero_grad();
                const Tensor out = model->forward(x64);
                const Tensor loss = net.log_softmax_output ? F::nll_loss(out, y64) : F::cross_entropy(out, y64);
                loss.backward();
                sgd.step();
                const double s = std::chrono::duration<double>(Clock::now() - t0).count();
                if (!(loss.item() == loss.item())) fail(std::string(net.name) + ": NaN loss");
                if (i >= 3) step_s.push_back(s);  // the first steps allocate workspaces
            }
            const double step_cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC / train_steps;
            const double step = median(step_s);
            const double train_flops = 3.0 * 2.0 * net.forward_macs * 64.0;

            // ---- inference, batch 1000 ----
            model->eval();
            const Tensor x1000 = randn({1000, 1, 28, 28}, gen);
            std::vector<double> infer_s;
            std::clock_t icpu0 = 0;
            {
                NoGradGuard no_grad;
                for (int i = 0; i < infer_reps + 1; ++i) {
                    if (i == 1) icpu0 = std::clock();
                    const auto t0 = Clock::now();
                    const Tensor out = model->forward(x1000);
                    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
                    nanotorch_bench::keep(out.data_ptr()[0]);
                    if (i >= 1) infer_s.push_back(s);
                }
            }
            const double infer_cpu = static_cast<double>(std::clock() - icpu0) / CLOCKS_PER_SEC / infer_reps;
            const double infer = median(infer_s);
            const double infer_flops = 2.0 * net.forward_macs * 1000.0;

            std::printf("%-15s %9.2f ms %10.1f %7.1f%%   %10.0f img/s %10.1f %7.1f%%\n", net.name, step * 1e3,
                        train_flops / step / 1e9, 100.0 * train_flops / step / 1e9 / peak, 1000.0 / infer,
                        infer_flops / infer / 1e9, 100.0 * infer_flops / infer / 1e9 / peak);
            result(std::string("train_step_b64_") + net.name, step * 1e3, "ms");
            result(std::string("infer_b1000_") + net.name, 1000.0 / infer, "img/s");
            result(std::string("cpu_train_step_b64_") + net.name, step_cpu * 1e3, "ms");
            result(std::string("cpu_infer_b1000_") + net.name, infer_cpu * 1e3, "ms");
            result(std::string("flops_train_step_b64_") + net.name, train_flops, "flop");
            result(std::string("flops_infer_b1000_") + net.name, infer_flops, "flop");
        }
        std::fflush(stdout);
        return 0;
    } catch (const std::exception& e) {
        fail(std::string("bench_nets: ") + e.what());
    }
}
