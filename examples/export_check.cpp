// export_check — writes the fixtures that check nanotorch's ONNX export against other runtimes
// (onnx.checker, onnxruntime-node, ONNX.js; see scripts/test.sh step onnx-interop).
//
//   export_check OUTDIR [--data DIR] [--count N] [--weights FILE] [--help]
//
// Builds the seed's Net (seed 1). With --weights FILE (an existing state_dict from mnist_train)
// it loads those weights; otherwise it trains one quick pass over the first 6000 training images
// (SGD lr 0.05, momentum 0.5, batch 64: 87.2 % on the 10000 test images), so that comparing argmax
// between runtimes means something and the check needs nothing but MNIST. Then it writes:
//
//   canvas_opset9.onnx, canvas_opset13.onnx   InferenceNet: [313600] RGBA canvas 0..255 -> softmax [1, 10]
//   net_opset13.onnx                          Net: [batch, 1, 28, 28] normalised -> log_softmax [batch, 10]
//   net_softmax_opset9.onnx                   Net's logits -> softmax, [1, 1, 28, 28] -> [1, 10]
//   bn_net_opset13.onnx, bn_softmax_opset9.onnx  the same two for BnNet (Net with BatchNorm after
//                       conv1, conv2 and fc1, trained in-process the same way): BatchNormalization
//   digits_28.f32       the first N test digits, normalised: N x 784 float32 (little-endian)
//   digits_canvas.f32   the same digits as the canvas would send them: N x 313600 float32, each
//                       digit upscaled 28 -> 280 (nearest neighbour) into the alpha channel of an
//                       RGBA image whose RGB is 0 and alpha is the pixel value 0..255
//   labels.json         {"count": N, "labels": [...]}
//   expected_<model>.f32  the module's own forward (eval mode) for every digit: N x 10 float32
//   manifest.json       which input file, input shape and expected file belong to each model
//
// Before it writes the expected outputs it reloads every .onnx through nanotorch's Runtime
// (onnx::load_onnx) and requires the runtime's outputs to equal the module's bit for bit: both
// run the same kernels in the same order, so any difference is an export or import bug.
//
// Exit status: 0 on success, 1 on an error or a mismatch (one line saying what), 2 on a usage
// error, 77 (the automake "skipped" code) when the MNIST files are not in --data.
#include <nanotorch/nanotorch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>  // memcmp: the bit-for-bit comparison
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "mnist_net.hpp"

using namespace nanotorch;
namespace fs = std::filesystem;

namespace {

// ---- options ----

struct Config {
    std::string out_dir;
    std::string data_dir = "data/mnist";
    std::string weights;     // empty: train in-process
    std::int64_t count = 100;
};

const char* usage =
    "usage: export_check OUTDIR [--data DIR] [--count N] [--weights FILE]\n"
    "Exports the seed's Net / InferenceNet to ONNX (opsets 9 and 13) and writes test digits and the\n"
    "module's outputs into OUTDIR, for the onnx.checker / onnxruntime / ONNX.js checks.\n"
    "  --data DIR      MNIST IDX files (default data/mnist; fetch with scripts/fetch_mnist.sh)\n"
    "  --count N       how many test digits to write (default 100)\n"
    "  --weights FILE  a state_dict written by mnist_train (e.g. out/model.ntsd); when absent, the\n"
    "                  net is trained for one quick pass over 6000 training images\n";

constexpr int exit_skipped = 77;

Config parse_args(int argc, char** argv) {
    Config c;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            std::exit(0);
        }
        if (a.rfind("--", 0) == 0) {
            if (i + 1 >= argc) throw value_error(a + ": missing value");
            const std::string v = argv[++i];
            if (a == "--data") {
                c.data_dir = v;
            } else if (a == "--weights") {
                c.weights = v;
            } else if (a == "--count") {
                std::istringstream is(v);
                is >> c.count;
                if (!is || !is.eof() || c.count < 1 || c.count > 10000)
                    throw value_error("--count: '" + v + "' is not a number in 1..10000");
            } else {
                throw value_error("unknown option " + a + " (see --help)");
            }
        } else if (c.out_dir.empty()) {
            c.out_dir = a;
        } else {
            throw value_error("unexpected argument '" + a + "' (OUTDIR is already '" + c.out_dir + "')");
        }
    }
    if (c.out_dir.empty()) throw value_error("missing OUTDIR (see --help)");
    return c;
}

// ---- the models ----

/// The wrapper exported as net_softmax_opset9: Net's logits followed by softmax. Net itself ends
/// in LogSoftmax, which ONNX.js 0.1.8 does not implement, so this is the 28x28 model ONNX.js runs.
struct NetSoftmax : nn::Module {
    std::shared_ptr<mnist::Net> net;
    explicit NetSoftmax(std::shared_ptr<mnist::Net> n) { net = register_module("net", std::move(n)); }
    Tensor forward(const Tensor& input) override { return F::softmax(net->logits(input), /*dim=*/1); }
    std::string type_name() const override { return "NetSoftmax"; }
};

/// The seed's layers with BatchNorm after each conv and fc1 (BatchNormalization in both profiles).
/// forward: log-probabilities (trained with nll_loss, exported at opset 13); BnNetSoftmax wraps it
/// for the opset-9 (ONNX.js) profile.
struct BnNet : nn::Module {
    nn::Conv2d conv1{nullptr}, conv2{nullptr};
    nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
    nn::Linear fc1{nullptr}, fc2{nullptr};
    nn::BatchNorm1d bn3{nullptr};
    BnNet() {
        conv1 = register_module("conv1", nn::Conv2d(1, 10, 5));
        bn1 = register_module("bn1", nn::BatchNorm2d(10));
        conv2 = register_module("conv2", nn::Conv2d(10, 20, 5));
        bn2 = register_module("bn2", nn::BatchNorm2d(20));
        fc1 = register_module("fc1", nn::Linear(320, 50));
        bn3 = register_module("bn3", nn::BatchNorm1d(50));
        fc2 = register_module("fc2", nn::Linear(50, 10));
    }
    Tensor forward(const Tensor& input) override { return F::log_softmax(logits(input), /*dim=*/1); }
    Tensor logits(const Tensor& input) {
        Tensor x = F::relu(F::max_pool2d(bn1(conv1(input)), 2));
        x = F::relu(F::max_pool2d(bn2(conv2(x)), 2));
        x = x.view({-1, 320});
        return fc2(F::relu(bn3(fc1(x))));
    }
    std::string type_name() const override { return "BnNet"; }
};
struct BnNetSoftmax : nn::Module {
    std::shared_ptr<BnNet> net;
    explicit BnNetSoftmax(std::shared_ptr<BnNet> n) { net = register_module("net", std::move(n)); }
    Tensor forward(const Tensor& input) override { return F::softmax(net->logits(input), /*dim=*/1); }
    std::string type_name() const override { return "BnNetSoftmax"; }
};

/// One exported model and how the JS/Python checks feed it.
struct ModelCase {
    std::string name;          // file stem: <name>.onnx, expected_<name>.f32
    std::int64_t opset;
    std::string input_file;    // digits_28.f32 or digits_canvas.f32
    Shape run_shape;           // the input shape of one run
    std::int64_t digits_per_run;  // 1, or count for the dynamic-batch model
    nn::Module* module;
    onnx::ExportOptions options;
};

/// One quick pass of the seed's training loop over the first 6000 training images.
void train_quickly(nn::Module& model, const data::Dataset& train_all) {
    constexpr std::int64_t n = 6000;
    data::Dataset train;
    train.images = train_all.images.narrow(0, 0, std::min(n, train_all.size())).contiguous();
    train.labels.assign(train_all.labels.begin(), train_all.labels.begin() + train.images.size(0));
    train.images = data::Normalize(data::mnist_mean, data::mnist_std)(train.images);
    Generator shuffle_gen(1);
    optim::SGD optimizer(model.parameters(), optim::SGDOptions(0.05).momentum(0.5));
    data::DataLoader loader(train, data::DataLoaderOptions(64).shuffle(true), shuffle_gen);
    model.train();
    double loss_sum = 0.0;
    for (auto batch : loader) {
        optimizer.zero_grad();
        const Tensor loss = F::nll_loss(model(batch.data), batch.target);
        loss.backward();
        optimizer.step();
        loss_sum += static_cast<double>(loss.item()) * static_cast<double>(batch.target.size());
    }
    std::printf("trained one pass over %lld images (lr 0.05, momentum 0.5): mean loss %.4f\n",
                static_cast<long long>(train.size()), loss_sum / static_cast<double>(train.size()));
}

// ---- files ----

void write_f32(const fs::path& path, const std::vector<float>& values) {
    std::vector<unsigned char> bytes(values.size() * 4);
    for (std::size_t i = 0; i < values.size(); ++i) util::store_le32(&bytes[4 * i], util::float_bits(values[i]));
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw io_error(path.string(), "cannot open for writing");
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw io_error(path.string(), "write failed");
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream f(path, std::ios::trunc);
    if (!f) throw io_error(path.string(), "cannot open for writing");
    f << text;
    if (!f) throw io_error(path.string(), "write failed");
}

std::string json_ints(const std::vector<std::int64_t>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

/// The canvas the browser demo sends for a 28x28 digit: each pixel becomes a 10x10 block in the
/// alpha channel of a 280x280 RGBA image (RGB 0), alpha = the pixel's 0..255 value.
std::vector<float> to_canvas(const float* pixels01) {
    std::vector<float> canvas(280 * 280 * 4, 0.0f);
    for (int y = 0; y < 280; ++y)
        for (int x = 0; x < 280; ++x)
            canvas[static_cast<std::size_t>((y * 280 + x) * 4 + 3)] =
                std::round(pixels01[(y / 10) * 28 + x / 10] * 255.0f);  // exact: MNIST bytes / 255
    return canvas;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    const std::vector<float> va = a.to_vector(), vb = b.to_vector();
    return std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0;
}

// ---- main ----

int run(const Config& cfg) {
    const bool have_data = fs::exists(fs::path(cfg.data_dir) / "t10k-images-idx3-ubyte") ||
                           fs::exists(fs::path(cfg.data_dir) / "t10k-images-idx3-ubyte.gz");
    if (!have_data) {
        std::printf("export_check: SKIPPED: no MNIST in %s (run scripts/fetch_mnist.sh)\n", cfg.data_dir.c_str());
        return exit_skipped;
    }
    manual_seed(1);
    auto net = std::make_shared<mnist::Net>();
    if (!cfg.weights.empty() && fs::exists(cfg.weights)) {
        nn::load_state_dict(*net, cfg.weights);
        std::printf("loaded weights from %s\n", cfg.weights.c_str());
    } else {
        if (!cfg.weights.empty()) std::printf("no weights at %s: training instead\n", cfg.weights.c_str());
        train_quickly(*net, data::load_mnist(cfg.data_dir, data::Split::Train));
    }
    net->eval();
    manual_seed(2);
    auto bn_net = std::make_shared<BnNet>();  // always trained here: it has no checkpoint
    train_quickly(*bn_net, data::load_mnist(cfg.data_dir, data::Split::Train));
    bn_net->eval();
    BnNetSoftmax bn_softmax(bn_net);
    bn_softmax.eval();
    mnist::InferenceNet canvas_net;
    nn::load_state_dict(canvas_net, nn::state_dict(*net));
    canvas_net.eval();
    NetSoftmax net_softmax(net);
    net_softmax.eval();

    // The first `count` test digits, in the three forms the models take.
    const data::Dataset test = data::load_mnist(cfg.data_dir, data::Split::Test);
    const std::int64_t count = std::min(cfg.count, test.size());
    const Tensor raw = test.images.narrow(0, 0, count).contiguous();  // [count, 1, 28, 28] in [0, 1]
    const Tensor digits = data::Normalize(data::mnist_mean, data::mnist_std)(raw);
    const std::vector<float> raw_v = raw.to_vector();
    std::vector<float> canvases;
    canvases.reserve(static_cast<std::size_t>(count) * 313600);
    for (std::int64_t i = 0; i < count; ++i) {
        const std::vector<float> c = to_canvas(raw_v.data() + i * 784);
        canvases.insert(canvases.end(), c.begin(), c.end());
    }
    const std::vector<std::int64_t> labels(test.labels.begin(), test.labels.begin() + count);

    onnx::ExportOptions o9;  // opset 9: the ONNX.js profile
    onnx::ExportOptions o13;
    o13.opset = 13;
    onnx::ExportOptions o13_dyn = o13;
    o13_dyn.dynamic_batch = true;
    const std::vector<ModelCase> cases = {
        {"canvas_opset9", 9, "digits_canvas.f32", {313600}, 1, &canvas_net, o9},
        {"canvas_opset13", 13, "digits_canvas.f32", {313600}, 1, &canvas_net, o13},
        {"net_opset13", 13, "digits_28.f32", {count, 1, 28, 28}, count, net.get(), o13_dyn},
        {"net_softmax_opset9", 9, "digits_28.f32", {1, 1, 28, 28}, 1, &net_softmax, o9},
        {"bn_net_opset13", 13, "digits_28.f32", {count, 1, 28, 28}, count, bn_net.get(), o13_dyn},
        {"bn_softmax_opset9", 9, "digits_28.f32", {1, 1, 28, 28}, 1, &bn_softmax, o9},
    };

    fs::create_directories(cfg.out_dir);
    const fs::path out(cfg.out_dir);
    NoGradGuard no_grad;
    std::string manifest = "{\n  \"count\": " + std::to_string(count) + ",\n  \"models\": [\n";
    for (std::size_t m = 0; m < cases.size(); ++m) {
        const ModelCase& mc = cases[m];
        const fs::path onnx_path = out / (mc.name + ".onnx");
        const Shape dummy_shape = mc.digits_per_run == 1 ? mc.run_shape : Shape{1, 1, 28, 28};
        onnx::export_onnx(*mc.module, zeros(dummy_shape), onnx_path.string(), mc.options);
        const onnx::Runtime rt = onnx::load_onnx(onnx_path.string());

        // The module's forward on every digit, and the runtime's on the same input.
        std::vector<float> expected;
        std::int64_t correct = 0;
        const bool canvas = mc.input_file == "digits_canvas.f32";
        for (std::int64_t first = 0; first < count; first += mc.digits_per_run) {
            const Tensor input =
                canvas ? tensor(std::vector<float>(canvases.begin() + first * 313600,
                                                   canvases.begin() + (first + 1) * 313600),
                                mc.run_shape)
                       : digits.narrow(0, first, mc.digits_per_run).contiguous().reshape(mc.run_shape);
            const Tensor y = (*mc.module)(input);
            const Tensor y_rt = rt.run({{mc.options.input_name, input}})[0].second;
            if (!same_bits(y, y_rt)) {
                std::fprintf(stderr,
                             "export_check: %s: nanotorch's Runtime on the exported file differs from the module "
                             "(digit %lld, shapes %s vs %s)\n",
                             onnx_path.string().c_str(), static_cast<long long>(first),
                             shape_str(y.shape()).c_str(), shape_str(y_rt.shape()).c_str());
                return 1;
            }
            const std::vector<float> v = y.to_vector();
            expected.insert(expected.end(), v.begin(), v.end());
            const auto pred = y.argmax(1);
            for (std::size_t k = 0; k < pred.size(); ++k)
                correct += pred[k] == labels[static_cast<std::size_t>(first) + k];
        }
        write_f32(out / ("expected_" + mc.name + ".f32"), expected);
        std::printf("%-20s opset %2lld  runtime == module bit for bit on %lld digits, accuracy %lld/%lld\n",
                    mc.name.c_str(), static_cast<long long>(mc.opset), static_cast<long long>(count),
                    static_cast<long long>(correct), static_cast<long long>(count));
        manifest += "    {\"name\": \"" + mc.name + "\", \"file\": \"" + mc.name + ".onnx\", \"opset\": " +
                    std::to_string(mc.opset) + ", \"input\": \"" + mc.input_file + "\", \"input_name\": \"" +
                    mc.options.input_name + "\", \"run_shape\": " + json_ints(mc.run_shape) +
                    ", \"digits_per_run\": " + std::to_string(mc.digits_per_run) + ", \"expected\": \"expected_" +
                    mc.name + ".f32\"}" + (m + 1 < cases.size() ? ",\n" : "\n");
    }
    manifest += "  ]\n}\n";

    write_f32(out / "digits_28.f32", digits.to_vector());
    write_f32(out / "digits_canvas.f32", canvases);
    write_text(out / "labels.json", "{\"count\": " + std::to_string(count) + ", \"labels\": " + json_ints(labels) + "}\n");
    write_text(out / "manifest.json", manifest);
    std::printf("wrote %zu models, %lld digits and the expected outputs to %s\n", cases.size(),
                static_cast<long long>(count), cfg.out_dir.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Config cfg;
    try {
        cfg = parse_args(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "export_check: %s\n%s", e.what(), usage);
        return 2;
    }
    try {
        return run(cfg);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "export_check: error: %s\n", e.what());
        return 1;
    }
}
