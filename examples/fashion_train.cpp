// fashion_train — a small ResNet (examples/fashion_net.hpp) trained on Fashion-MNIST with
// augmentation and a one-cycle (or cosine) schedule; the second example next to mnist_train.
//
//   fashion_train [--data DIR] [--epochs N] [--batch-size N] [--test-batch-size N] [--lr X]
//                 [--momentum X] [--weight-decay X] [--schedule onecycle|cosine]
//                 [--no-augment] [--seed N] [--threads N] [--limit N] [--out DIR] [--opset N]
//                 [--distributed]
//
// The recipe (defaults): RandomCrop(28, padding=2) + RandomHorizontalFlip() on the [0, 1]
// pixels, then Normalize(0.2860, 0.3530); SGD momentum 0.9, Nesterov, weight decay 5e-4;
// OneCycleLR(max_lr 0.1) stepped every batch; cross-entropy; batch 128; 6 epochs; seed 1.
// examples/fashion_train_torch.py is the same recipe in PyTorch.
// Outputs in --out (default out/fashion): metrics.csv, curves.svg, confusion.svg, model.ntsd
// and onnx_model.onnx (fashion::InferenceNet: [1, 1, 28, 28] pixels in [0, 1] -> probabilities).
// Any error prints one line and exits with code 1.
// With --distributed, under `mpirun -np N` (built with MPI; examples/train_distributed.hpp): data-
// parallel training, the global batch --batch-size split across the ranks (augmentation follows
// the global pass, so each sample is augmented as in one process); BatchNorm statistics stay per
// rank, as in PyTorch's DDP, so this is not bit-for-bit one process's run; rank 0 alone prints,
// evaluates (with its running statistics), writes files and exports.
#include <nanotorch/nanotorch.hpp>

#include <cstdio>
#include <cstdlib>  // getenv
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "fashion_net.hpp"
#include "train_common.hpp"
#include "train_distributed.hpp"

using namespace nanotorch;
using train_common::parse_number;

namespace {

struct Config {
    std::string data_dir = "data/fashion-mnist";
    std::string out_dir = "out/fashion";
    int epochs = 6;
    std::int64_t batch_size = 128;
    std::int64_t test_batch_size = 1000;
    double lr = 0.1;
    double momentum = 0.9;
    double weight_decay = 5e-4;
    std::string schedule = "onecycle";
    bool augment = true;
    std::uint64_t seed = 1;
    int threads = 0;
    std::int64_t limit = 0;
    std::int64_t opset = 9;
    bool distributed = false;
};

const char* usage =
    "usage: fashion_train [options]\n"
    "Trains a small ResNet on Fashion-MNIST; prints test accuracy after every epoch.\n"
    "  --data DIR            Fashion-MNIST IDX files, raw or .gz (default data/fashion-mnist;\n"
    "                        scripts/fetch_fashion_mnist.sh puts them there)\n"
    "  --epochs N            training epochs (default 6)\n"
    "  --batch-size N        training batch size (default 128)\n"
    "  --test-batch-size N   evaluation batch size (default 1000)\n"
    "  --lr X                peak learning rate: OneCycleLR's max_lr, or the cosine schedule's start (default 0.1)\n"
    "  --momentum X          SGD momentum, Nesterov (default 0.9; OneCycleLR cycles it between 0.85 and 0.95)\n"
    "  --weight-decay X      SGD weight decay (default 5e-4)\n"
    "  --schedule NAME       onecycle (default; stepped per batch) or cosine (CosineAnnealingLR per epoch)\n"
    "  --no-augment          no RandomCrop / RandomHorizontalFlip\n"
    "  --seed N              random seed for initialisation, shuffling and augmentation (default 1)\n"
    "  --threads N           worker threads (default: NANOTORCH_NUM_THREADS or all cores; with\n"
    "                        --distributed, this rank's share of its node's cores)\n"
    "  --limit N             train on the first N images only (quick runs)\n"
    "  --out DIR             output folder (default out/fashion)\n"
    "  --opset N             ONNX opset of onnx_model.onnx: 9 (default, ONNX.js-compatible) .. 17\n"
    "  --distributed         data-parallel over MPI: run under mpirun -np N; --batch-size is the global\n"
    "                        batch, split across the ranks; only rank 0 prints and writes files\n"
    "  --help                show this help\n";

Config parse_args(int argc, char** argv) {
    Config c;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            std::exit(0);
        }
        if (a == "--no-augment") {
            c.augment = false;
            continue;
        }
        if (a == "--distributed") {
            c.distributed = true;
            continue;
        }
        if (i + 1 >= argc) throw value_error(a + (a.rfind("--", 0) == 0 ? ": missing value" : ": unknown argument"));
        const std::string v = argv[++i];
        if (a == "--data") c.data_dir = v;
        else if (a == "--out") c.out_dir = v;
        else if (a == "--epochs") c.epochs = parse_number<int>(a, v);
        else if (a == "--batch-size") c.batch_size = parse_number<std::int64_t>(a, v);
        else if (a == "--test-batch-size") c.test_batch_size = parse_number<std::int64_t>(a, v);
        else if (a == "--lr") c.lr = parse_number<double>(a, v);
        else if (a == "--momentum") c.momentum = parse_number<double>(a, v);
        else if (a == "--weight-decay") c.weight_decay = parse_number<double>(a, v);
        else if (a == "--schedule") c.schedule = v;
        else if (a == "--seed") c.seed = parse_number<std::uint64_t>(a, v);
        else if (a == "--threads") c.threads = parse_number<int>(a, v);
        else if (a == "--limit") c.limit = parse_number<std::int64_t>(a, v);
        else if (a == "--opset") c.opset = parse_number<std::int64_t>(a, v);
        else throw value_error("unknown option " + a + " (see --help)");
    }
    if (c.epochs < 1) throw value_error("--epochs must be at least 1");
    if (c.batch_size < 1 || c.test_batch_size < 1) throw value_error("batch sizes must be at least 1");
    if (c.schedule != "onecycle" && c.schedule != "cosine") throw value_error("--schedule must be onecycle or cosine");
    if (c.limit < 0) throw value_error("--limit must not be negative");
    return c;
}

int run(const Config& cfg, train_distributed::DataParallel& dp) {
    if (cfg.threads > 0) set_num_threads(cfg.threads);
    else if (dp.active() && !std::getenv("NANOTORCH_NUM_THREADS")) set_num_threads(dp.default_threads());
    manual_seed(cfg.seed);
    Generator data_gen(cfg.seed);

    data::Dataset train = data::load_mnist(cfg.data_dir, data::Split::Train);
    data::Dataset test = data::load_mnist(cfg.data_dir, data::Split::Test);
    if (cfg.limit > 0 && cfg.limit < train.size()) {
        train.images = train.images.narrow(0, 0, cfg.limit).contiguous();
        train.labels.resize(static_cast<std::size_t>(cfg.limit));
    }
    // transforms.Compose([RandomCrop(28, padding=2), RandomHorizontalFlip(), ToTensor(), Normalize(...)]):
    // the loader augments the [0, 1] pixels; each batch is then normalised in place.
    const data::Normalize normalize(fashion::mean, fashion::std_dev, /*inplace=*/true);
    test.images = normalize(test.images);
    data::DataLoaderOptions loader_options = data::DataLoaderOptions(cfg.batch_size).shuffle(true);
    if (cfg.augment) loader_options.transform(data::Compose(data::RandomCrop(28, 2), data::RandomHorizontalFlip()));
    data::DataLoader train_loader(train, dp.shard(loader_options), data_gen);

    fashion::ResNet8 model;
    std::int64_t parameter_count = 0;
    for (const auto& p : model.parameters()) parameter_count += p.numel();
    if (dp.is_root())
        std::printf("nanotorch %s | %s | %d threads | train %lld, test %lld images | ResNet8, %lld parameters%s\n",
                    NANOTORCH_VERSION_STRING, kernels::simd_arch_name(), get_num_threads(),
                    static_cast<long long>(train.size()), static_cast<long long>(test.size()),
                    static_cast<long long>(parameter_count),
                    dp.active() ? (" | " + std::to_string(dp.world_size()) + " ranks, global batch " +
                                   std::to_string(cfg.batch_size)).c_str()
                                : "");
    if (cfg.augment && dp.is_root()) std::printf("augmentation: %s\n", loader_options.transform()->repr().c_str());

    optim::SGD optimizer(model.parameters(), optim::SGDOptions(cfg.lr)
                                                 .momentum(cfg.momentum)
                                                 .nesterov(true)
                                                 .weight_decay(cfg.weight_decay));
    std::unique_ptr<optim::OneCycleLR> one_cycle;
    std::unique_ptr<optim::CosineAnnealingLR> cosine;
    if (cfg.schedule == "onecycle")
        one_cycle = std::make_unique<optim::OneCycleLR>(
            optimizer, optim::OneCycleLROptions(cfg.lr).epochs(cfg.epochs).steps_per_epoch(
                           static_cast<int>(train_loader.size())));
    else
        cosine = std::make_unique<optim::CosineAnnealingLR>(optimizer, cfg.epochs);

    dp.prepare(model, std::to_string(cfg.seed) + " " + std::to_string(cfg.batch_size) + " " + std::to_string(cfg.lr) +
                          " " + std::to_string(cfg.momentum) + " " + std::to_string(cfg.weight_decay) + " " +
                          cfg.schedule + " " + std::to_string(cfg.augment) + " " + std::to_string(cfg.epochs) + " " +
                          std::to_string(train.size()));
    std::unique_ptr<train_common::RunLog> log;  // rank 0 only
    if (dp.is_root()) log = std::make_unique<train_common::RunLog>(cfg.out_dir);
    const train_common::SumLoss ce_sum = [](const Tensor& out, const std::vector<std::int64_t>& y) {
        return F::cross_entropy(out, y, F::Reduction::Sum);
    };
    train_common::Evaluation ev;
    for (int epoch = 1; epoch <= cfg.epochs; ++epoch) {
        model.train();
        train_common::Progress progress(epoch, train_loader.size(), train.size());
        double loss_sum = 0.0;
        std::int64_t seen = 0, batch_index = 0;
        for (auto batch : train_loader) {
            normalize(batch.data);
            optimizer.zero_grad();
            const Tensor loss = F::cross_entropy(model(batch.data), batch.target);
            loss.backward();
            dp.reduce(batch);
            optimizer.step();
            if (one_cycle) one_cycle->step();
            const auto n = batch.global_size;
            loss_sum += dp.global_loss(static_cast<double>(loss.item()), batch) * static_cast<double>(n);
            seen += n;
            if (dp.is_root()) progress.update(++batch_index, seen, loss_sum / static_cast<double>(seen));
        }
        const double train_seconds = progress.seconds();
        if (dp.is_root()) {
            ev = train_common::evaluate(model, test, cfg.test_batch_size, 10, ce_sum);
            std::printf("Test set: average loss %.4f, lr %g, %.1f s\n", ev.loss, optimizer.lr(), train_seconds);
            std::printf("Accuracy of the network on the %lld test images: %.2f %%\n",
                        static_cast<long long>(ev.total), ev.accuracy);
            std::fflush(stdout);
            log->add(epoch, loss_sum / static_cast<double>(seen), ev, train_seconds);
        }
        if (cosine) cosine->step();
    }
    if (!dp.is_root()) return 0;
    train_common::print_confusion(ev, fashion::class_names());
    log->write_plots(ev, fashion::class_names(), "Fashion-MNIST, ResNet8 (nanotorch)");
    const std::string model_path = log->path("model.ntsd");
    nn::save_state_dict(model, model_path);
    std::printf("Saved the weights to %s, the metrics to %s, curves.svg and confusion.svg\n", model_path.c_str(),
                log->metrics_path().c_str());

    // The same weights (running statistics included) behind the normalisation and a softmax.
    fashion::InferenceNet inference;
    nn::load_state_dict(inference, nn::state_dict(model));
    inference.eval();
    onnx::ExportOptions options;
    options.opset = cfg.opset;
    const std::string onnx_path = log->path("onnx_model.onnx");
    onnx::export_onnx(inference, zeros({1, 1, 28, 28}), onnx_path, options);
    std::printf("Exported InferenceNet ([1, 1, 28, 28] pixels in [0, 1] -> 10 probabilities, opset %lld) to %s\n",
                static_cast<long long>(cfg.opset), onnx_path.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    train_distributed::DataParallel dp;  // outlives run(): MPI is finalised after everything else
    try {
        const Config cfg = parse_args(argc, argv);
        if (cfg.distributed) dp.start(argc, argv);
        return run(cfg, dp);
    } catch (const std::exception& e) {
        return dp.fail(std::string("fashion_train: error: ") + e.what());
    }
}
