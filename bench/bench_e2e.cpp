// bench/bench_e2e.cpp — end-to-end timings of the seed's network: a training epoch, inference at
// batch 1000, and batch-1 latency of the 28×28 net and of the 280×280×4 canvas model, each both
// as a C++ module and through nanotorch's ONNX runtime.
//
//   bench_e2e [--threads N] [--quick] [--data DIR] [--export-dir DIR] [--only LIST] [--help]
//
// The workloads are the ones bench/torch_e2e.py (PyTorch) and bench/ort_e2e.mjs (onnxruntime-node)
// repeat, so scripts/bench.sh can print ratios measured in one invocation on one machine:
//   train_epoch      one pass over the 60k training images: the seed's Net, SGD lr 0.01 momentum
//                    0.5, batch 64, shuffled, dropout on, data preloaded and normalized. --quick
//                    trains on 6400 images and scales the time to 60k (said in the output).
//   infer_b1000      eval mode, no grad, the 10k test images in batches of 1000: images/s.
//   latency_*        one image at a time, eval mode, no grad: the median of many calls, each timed
//                    alone. net28 = Net on [1, 1, 28, 28]; canvas = mnist::InferenceNet on the
//                    [313600] RGBA canvas (a test digit upscaled into the alpha channel). The
//                    *_onnx variants run the same model traced to ONNX, through onnx::Runtime.
//                    The four variants are interleaved call by call, so load changes hit all alike.
// Before timing the ONNX variants the program checks that the runtime's outputs equal the module's
// bit for bit (both run the same kernels in the same order), and exits 1 if not.
//
// Output: a human table plus machine-readable lines `RESULT nanotorch <threads> <metric> <value>
// <unit>`, with the seed net's flop counts (flops_train_epoch, flops_infer_b1000) for the share
// of peak. With --export-dir DIR it also writes, for ort_e2e.mjs: net28.onnx (Net, opset 13, ends
// in LogSoftmax), canvas.onnx (InferenceNet, opset 9: the demo's model), input_net28.f32,
// input_canvas.f32 and expected_net28.f32 / expected_canvas.f32 (the module's outputs; raw
// little-endian float32). When the MNIST files are missing from --data it uses deterministic
// synthetic data of the same shapes and says so (timings barely depend on pixel values).
// Deliberately not here: compile-time and mnist_train measurements (scripts/bench.sh does them).
#include <nanotorch/nanotorch.hpp>

#include "../examples/mnist_net.hpp"
#include "bench_common.hpp"

#include <sys/resource.h>  // getrusage: peak RSS

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace nanotorch;
using nanotorch_bench::fail;
using Clock = std::chrono::steady_clock;
using i64 = std::int64_t;

// ---- flags ----

struct Config {
    int threads = 0;
    bool quick = false;
    std::string data_dir = "data/mnist";
    std::string export_dir;  // empty: write nothing
    bool train = true, infer = true, latency = true;  // --only
};

const char* usage =
    "usage: bench_e2e [--threads N] [--quick] [--data DIR] [--export-dir DIR] [--only LIST] [--help]\n"
    "End-to-end timings of the seed's network: a training epoch, inference at batch 1000, batch-1\n"
    "latency of the 28x28 net and the 280x280x4 canvas model (module and ONNX runtime).\n"
    "  --threads N       threads (default: NANOTORCH_NUM_THREADS, else all cores)\n"
    "  --quick           a short run for CI: 6400 training images (time scaled to 60k), fewer samples\n"
    "  --data DIR        MNIST IDX files (default data/mnist); synthetic data of the same shape if absent\n"
    "  --export-dir DIR  also write net28.onnx, canvas.onnx, their inputs and expected outputs there\n"
    "  --only LIST       run only these parts: comma-separated train, infer, latency (default: all)\n"
    "  --help            show this help\n";

Config parse_args(int argc, char** argv) {
    Config c;
    const auto bad = [](const std::string& msg) {
        std::fprintf(stderr, "bench_e2e: %s\n%s", msg.c_str(), usage);
        std::exit(2);
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) bad(a + " needs a value");
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            std::printf("%s", usage);
            std::exit(0);
        } else if (a == "--quick") {
            c.quick = true;
        } else if (a == "--threads") {
            const std::string v = value();
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || n < 1 || n > 1024) bad("--threads: '" + v + "' is not in [1, 1024]");
            c.threads = static_cast<int>(n);
        } else if (a == "--data") {
            c.data_dir = value();
        } else if (a == "--export-dir") {
            c.export_dir = value();
        } else if (a == "--only") {
            const std::string v = "," + value() + ",";
            c.train = v.find(",train,") != std::string::npos;
            c.infer = v.find(",infer,") != std::string::npos;
            c.latency = v.find(",latency,") != std::string::npos;
            std::size_t parts = 0;
            for (std::size_t i = 1; i < v.size(); ++i) parts += v[i] == ',';
            if (parts != static_cast<std::size_t>(c.train + c.infer + c.latency))
                bad("--only: '" + v.substr(1, v.size() - 2) + "' is not a list of train, infer, latency");
        } else {
            bad("unknown argument '" + a + "'");
        }
    }
    return c;
}

// ---- data ----

// MNIST-shaped synthetic data: about 19 % of the pixels lit (as in MNIST), labels uniform.
data::Dataset synthetic(i64 n, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    data::Dataset ds;
    ds.images = empty({n, 1, 28, 28});
    float* p = ds.images.data_ptr();
    for (i64 i = 0; i < n * 784; ++i) p[i] = u(gen) < 0.19f ? u(gen) : 0.0f;
    ds.labels.resize(static_cast<std::size_t>(n));
    for (auto& l : ds.labels) l = static_cast<i64>(gen() % 10);
    return ds;
}

struct Data {
    data::Dataset train, test;
    bool real = true;
};

Data load_data(const std::string& dir) {
    Data d;
    try {
        d.train = data::load_mnist(dir, data::Split::Train);
        d.test = data::load_mnist(dir, data::Split::Test);
    } catch (const io_error& e) {
        std::printf("MNIST not found (%s):\nusing SYNTHETIC data of MNIST's shape (60000 + 10000 images, 28x28)\n",
                    e.what());
        d.train = synthetic(60000, 1);
        d.test = synthetic(10000, 2);
        d.real = false;
    }
    const data::Normalize normalize(data::mnist_mean, data::mnist_std, /*inplace=*/true);
    d.train.images = normalize(d.train.images);
    d.test.images = normalize(d.test.images);
    return d;
}

// The canvas the page would send for a 28x28 image in [0, 1]: each pixel upscaled to a 10x10
// block in the alpha channel of a 280x280 RGBA image (RGB = 0), values 0..255.
Tensor to_canvas(const Tensor& digit01) {
    const std::vector<float> px = digit01.to_vector();
    Tensor c = zeros({280 * 280 * 4});
    float* o = c.data_ptr();
    for (i64 y = 0; y < 280; ++y)
        for (i64 x = 0; x < 280; ++x)
            o[(y * 280 + x) * 4 + 3] = px[static_cast<std::size_t>((y / 10) * 28 + x / 10)] * 255.0f;
    return c;
}

// ---- statistics ----

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// What was compiled and how loaded the machine is (the timings mean little without it).
void print_banner(const Config& cfg) {
    std::printf("bench_e2e (nanotorch %s): %s, %lld-float SIMD, %d thread(s)%s, %u hardware threads\n",
                NANOTORCH_VERSION_STRING, kernels::simd_arch_name(), static_cast<long long>(kernels::simd_width),
                get_num_threads(), cfg.threads ? " (--threads)" : " (library default)",
                std::thread::hardware_concurrency());
#if defined(__clang__)
    std::printf("  compiler clang %s", __clang_version__);
#elif defined(__GNUC__)
    std::printf("  compiler g++ %s", __VERSION__);
#endif
#if defined(__OPTIMIZE__)
    std::printf(", optimized build");
#else
    std::printf(", NOT an optimized build: these timings say little");
#endif
    if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
        double l1 = 0.0;
        if (std::fscanf(f, "%lf", &l1) == 1) std::printf(", load average %.2f at start", l1);
        std::fclose(f);
    }
    std::printf("\n  mode %s\n",
                cfg.quick ? "--quick (6400 training images, scaled to an epoch; fewer samples)" : "full");
}

void result(const char* metric, double value, const char* unit) {
    std::printf("RESULT nanotorch %d %s %.6g %s\n", get_num_threads(), metric, value, unit);
}

// ---- workloads ----

// Multiply-adds of one image's forward pass through the seed Net's conv and linear layers
// (examples/mnist_net.hpp), for issue #12's share of peak: scripts/bench.sh divides the flop
// counts below by the times and by bench_nets' measured FMA peak, counting a training step as
// three times the forward (forward, input gradient, weight gradient), as bench_nets does.
constexpr double seed_net_macs = 10.0 * 1 * 5 * 5 * 24 * 24    // conv1 1->10 5x5 -> 24x24
                                 + 20.0 * 10 * 5 * 5 * 8 * 8   // conv2 10->20 5x5 -> 8x8
                                 + 320.0 * 50 + 50.0 * 10;     // fc1, fc2
static_assert(seed_net_macs == 480'500.0, "the seed net's forward multiply-adds per image");

// One pass over `n` training images (the seed's loop); returns seconds.
double train_pass(mnist::Net& model, optim::SGD& opt, const data::Dataset& train, Generator& gen) {
    model.train();
    data::DataLoader loader(train, data::DataLoaderOptions(64).shuffle(true), gen);
    const auto t0 = Clock::now();
    double loss_sum = 0.0;
    for (auto batch : loader) {
        opt.zero_grad();
        const Tensor loss = F::nll_loss(model(batch.data), batch.target);
        loss.backward();
        opt.step();
        loss_sum += static_cast<double>(loss.item());
    }
    const double s = seconds_since(t0);
    if (!(loss_sum == loss_sum)) fail("training produced a NaN loss");
    return s;
}

void write_f32(const std::filesystem::path& path, const Tensor& t) {
    static_assert(sizeof(float) == 4, "float32 files");
    const std::uint32_t probe = 1;
    unsigned char first = 0;
    std::memcpy(&first, &probe, 1);
    if (first != 1) fail("--export-dir writes little-endian float32 and this host is big-endian");
    const std::vector<float> v = t.contiguous().to_vector();
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
    if (!f) fail("cannot write " + path.string());
}

void expect_identical(const char* what, const Tensor& got, const Tensor& want) {
    const std::vector<float> a = got.to_vector(), b = want.to_vector();
    if (got.shape() != want.shape()) fail(std::string(what) + ": output shapes differ");
    nanotorch_bench::expect_identical(what, a.data(), b.data(), a.size());
}

}  // namespace

int main(int argc, char** argv) {
    const Config cfg = parse_args(argc, argv);
    try {
        if (cfg.threads > 0) set_num_threads(cfg.threads);
        print_banner(cfg);

        const Data d = load_data(cfg.data_dir);
        manual_seed(1);
        Generator shuffle_gen(1);
        mnist::Net model;
        optim::SGD opt(model.parameters(), optim::SGDOptions(0.01).momentum(0.5));

        // ---- training ----
        double epoch_s = 0.0;
        const i64 train_n = std::min<i64>(cfg.quick ? 6400 : 60000, d.train.size());
        if (cfg.train) {
            const i64 warm_n = std::min<i64>(640, d.train.size());
            data::Dataset warm{d.train.images.narrow(0, 0, warm_n).contiguous(),
                               std::vector<i64>(d.train.labels.begin(), d.train.labels.begin() + warm_n)};
            train_pass(model, opt, warm, shuffle_gen);  // warm-up: first touch, thread pool start
            data::Dataset part = d.train;
            if (train_n < d.train.size()) {
                part.images = d.train.images.narrow(0, 0, train_n).contiguous();
                part.labels.resize(static_cast<std::size_t>(train_n));
            }
            epoch_s = train_pass(model, opt, part, shuffle_gen) * 60000.0 / static_cast<double>(train_n);
        }

        // ---- inference at batch 1000 ----
        model.eval();
        std::vector<double> pass_s;
        if (cfg.infer) {
            NoGradGuard no_grad;
            const i64 batches = d.test.size() / 1000;
            for (int pass = 0; pass < (cfg.quick ? 2 : 5); ++pass) {
                const auto t0 = Clock::now();
                float sink = 0.0f;
                for (i64 b = 0; b < batches; ++b) sink += model(d.test.images.narrow(0, b * 1000, 1000)).data_ptr()[0];
                nanotorch_bench::keep(sink);
                if (pass > 0) pass_s.push_back(seconds_since(t0) / static_cast<double>(batches * 1000));  // 0 warms up
            }
        }

        // ---- batch-1 latency: module and ONNX runtime, both models ----
        struct Variant {
            const char* metric;
            const char* label;
            std::function<float()> call;
            std::vector<double> samples;
        };
        std::vector<Variant> variants;
        mnist::InferenceNet canvas_net;
        nn::load_state_dict(canvas_net, nn::state_dict(model));
        canvas_net.eval();
        const Tensor digit = d.test.images.narrow(0, 0, 1).contiguous();  // [1, 1, 28, 28], normalized
        const Tensor canvas = to_canvas(digit * data::mnist_std + data::mnist_mean);  // pixels back in [0, 1]
        std::unique_ptr<onnx::Runtime> net_rt, canvas_rt;
        std::string net_in, canvas_in;
        if (cfg.latency || !cfg.export_dir.empty()) {
            onnx::ExportOptions o13;
            o13.opset = 13;  // Net ends in LogSoftmax, which the opset-9 (ONNX.js) profile refuses
            const onnx::ModelProto net_model = onnx::trace_module(model, zeros({1, 1, 28, 28}), o13);
            const onnx::ModelProto canvas_model = onnx::trace_module(canvas_net, zeros({280 * 280 * 4}));
            net_rt = std::make_unique<onnx::Runtime>(net_model);
            canvas_rt = std::make_unique<onnx::Runtime>(canvas_model);
            net_in = net_rt->required_inputs().at(0).name;
            canvas_in = canvas_rt->required_inputs().at(0).name;
            Tensor want_net, want_canvas;
            {
                NoGradGuard no_grad;
                want_net = model(digit);
                want_canvas = canvas_net(canvas);
            }
            expect_identical("net28: onnx::Runtime vs module", net_rt->run({{net_in, digit}})[0].second, want_net);
            expect_identical("canvas: onnx::Runtime vs module", canvas_rt->run({{canvas_in, canvas}})[0].second,
                             want_canvas);
            if (!cfg.export_dir.empty()) {
                namespace fs = std::filesystem;
                const fs::path dir(cfg.export_dir);
                fs::create_directories(dir);
                onnx::write_model(net_model, (dir / "net28.onnx").string());
                onnx::write_model(canvas_model, (dir / "canvas.onnx").string());
                write_f32(dir / "input_net28.f32", digit);
                write_f32(dir / "input_canvas.f32", canvas);
                write_f32(dir / "expected_net28.f32", want_net);
                write_f32(dir / "expected_canvas.f32", want_canvas);
                std::printf("wrote net28.onnx, canvas.onnx, inputs and expected outputs to %s\n",
                            cfg.export_dir.c_str());
            }
        }
        if (cfg.latency) {
            variants.push_back({"latency_net28", "28x28 net, module", [&] {
                                    NoGradGuard g;
                                    return model(digit).data_ptr()[0];
                                }, {}});
            variants.push_back({"latency_net28_onnx", "28x28 net, onnx::Runtime", [&] {
                                    return net_rt->run({{net_in, digit}})[0].second.data_ptr()[0];
                                }, {}});
            variants.push_back({"latency_canvas", "canvas model, module", [&] {
                                    NoGradGuard g;
                                    return canvas_net(canvas).data_ptr()[0];
                                }, {}});
            variants.push_back({"latency_canvas_onnx", "canvas model, onnx::Runtime", [&] {
                                    return canvas_rt->run({{canvas_in, canvas}})[0].second.data_ptr()[0];
                                }, {}});
            const int rounds = cfg.quick ? 300 : 3000;
            for (auto& v : variants)
                for (int i = 0; i < 50; ++i) nanotorch_bench::keep(v.call());
            for (int r = 0; r < rounds; ++r)
                for (auto& v : variants) {
                    const auto t0 = Clock::now();
                    nanotorch_bench::keep(v.call());
                    v.samples.push_back(seconds_since(t0));
                }
        }

        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        const double rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux

        // ---- report ----
        std::printf("\n== bench_e2e: %d thread(s), %s data ==\n", get_num_threads(), d.real ? "MNIST" : "SYNTHETIC");
        std::printf("%-34s %12s  %s\n", "workload", "value", "notes");
        if (cfg.train) {
            const std::string note = train_n == 60000 ? std::string("one full epoch")
                                                      : "scaled from " + std::to_string(train_n) + " images";
            std::printf("%-34s %10.2f s  %s\n", "training epoch (60k, batch 64)", epoch_s, note.c_str());
        }
        if (cfg.infer)
            std::printf("%-34s %8.0f img/s  median of %zu passes over 10k test images\n", "inference, batch 1000",
                        1.0 / median(pass_s), pass_s.size());
        for (const auto& v : variants)
            std::printf("%-34s %9.1f us  q1 %.1f, q3 %.1f, %zu calls\n", v.label, median(v.samples) * 1e6,
                        quantile(v.samples, 0.25) * 1e6, quantile(v.samples, 0.75) * 1e6, v.samples.size());
        std::printf("%-34s %9.1f MB\n\n", "peak RSS of this process", rss_mb);
        if (cfg.train) {
            result("train_epoch", epoch_s, "s");
            result("flops_train_epoch", 3.0 * 2.0 * seed_net_macs * 60000.0, "flop");
        }
        if (cfg.infer) {
            result("infer_b1000", 1.0 / median(pass_s), "img/s");
            result("flops_infer_b1000", 2.0 * seed_net_macs * 1000.0, "flop");
        }
        for (const auto& v : variants) result(v.metric, median(v.samples) * 1e6, "us");
        result("peak_rss", rss_mb, "MB");
        if (!d.real) std::printf("NOTE synthetic data\n");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_e2e: error: %s\n", e.what());
        return 1;
    }
}
