// mnist_train — the seed's training script in C++: train Net on MNIST with SGD + momentum,
// report test accuracy after every epoch, save the weights.
//
//   mnist_train [--data DIR] [--epochs N] [--batch-size N] [--test-batch-size N] [--lr X]
//               [--momentum X] [--optimizer sgd|adam] [--lr-step N] [--lr-gamma X] [--seed N]
//               [--threads N] [--limit N] [--limit-test N] [--out DIR] [--opset N]
//               [--checkpoint PATH] [--checkpoint-every N] [--resume PATH] [--loss-log PATH]
//               [--distributed] [--help]
//
// Defaults are the seed's: SGD lr 0.01 momentum 0.5, batch 64, test batch 1000, seed 1.
// Outputs in --out (default "out"): metrics.csv (one row per epoch), curves.svg (losses and
// accuracy per epoch), confusion.svg (the last epoch's confusion matrix), model.ntsd (the
// state_dict) and onnx_model.onnx (the seed's InferenceNet, for the browser demo).
// Any error prints one line and exits with code 1.
// With --checkpoint, a training checkpoint (nn/checkpoint.hpp) is written atomically every
// --checkpoint-every optimizer steps and at the end of every epoch; --resume continues from one
// exactly (the same weights as an uninterrupted run with the same seed and thread count).
// For tests only: NANOTORCH_CHECKPOINT_PAUSE_MS=N makes each checkpoint write print
// "checkpoint: paused before rename" and sleep N ms between writing the temporary file and
// renaming it over PATH, so a test can kill the process at exactly that point.
// With --distributed, under `mpirun -np N` (built with MPI; examples/train_distributed.hpp): data-
// parallel training, the global batch --batch-size split across the ranks, the same weights and
// losses as one process with that batch (dropout included: masks are drawn as the global batch's,
// ops/dropout.hpp BatchShardGuard); only rank 0 prints, evaluates and writes files (checkpoints
// too; every rank reads --resume). For tests only: NANOTORCH_TEST_FAIL=RANK:STEP makes that rank
// throw before that optimizer step, to check that the whole job then ends.
#include <nanotorch/nanotorch.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mnist_net.hpp"
#include "train_common.hpp"
#include "train_distributed.hpp"

using namespace nanotorch;
using train_common::parse_number;

namespace {

struct Config {
    std::string data_dir = "data/mnist";
    std::string out_dir = "out";
    int epochs = 3;
    std::int64_t batch_size = 64;
    std::int64_t test_batch_size = 1000;
    double lr = 0.01;
    double momentum = 0.5;
    std::string optimizer = "sgd";
    int lr_step = 0;  // 0 = constant learning rate
    double lr_gamma = 0.1;
    std::uint64_t seed = 1;
    int threads = 0;  // 0 = nanotorch's default
    std::int64_t limit = 0;  // 0 = all training images
    std::int64_t limit_test = 0;  // 0 = all test images
    std::string checkpoint;  // "" = no checkpoints
    std::int64_t checkpoint_every = 0;  // steps; 0 = only at the end of each epoch
    std::string resume;
    std::string loss_log;  // "" = none; else one "step,loss" row per optimizer step
    bool distributed = false;
    std::int64_t opset = 9;  // 9: loads in ONNX.js and onnxruntime
};

const char* usage =
    "usage: mnist_train [options]\n"
    "Trains the seed's CNN on MNIST and saves it; prints test accuracy after every epoch.\n"
    "  --data DIR            MNIST IDX files (default data/mnist; fetch with scripts/fetch_mnist.sh)\n"
    "  --epochs N            training epochs (default 3)\n"
    "  --batch-size N        training batch size (default 64)\n"
    "  --test-batch-size N   evaluation batch size (default 1000)\n"
    "  --lr X                learning rate (default 0.01)\n"
    "  --momentum X          SGD momentum (default 0.5)\n"
    "  --optimizer NAME      sgd (default) or adam\n"
    "  --lr-step N           multiply the learning rate by --lr-gamma every N epochs (default: never)\n"
    "  --lr-gamma X          learning-rate decay factor for --lr-step (default 0.1)\n"
    "  --seed N              random seed for initialisation, shuffling and dropout (default 1)\n"
    "  --threads N           worker threads (default: NANOTORCH_NUM_THREADS or all cores; with\n"
    "                        --distributed, this rank's share of its node's cores)\n"
    "  --limit N             train on the first N images only (quick runs)\n"
    "  --limit-test N        evaluate on the first N test images only (quick runs)\n"
    "  --checkpoint PATH     write a training checkpoint to PATH (atomically) at every epoch end\n"
    "  --checkpoint-every N  ... and also every N optimizer steps\n"
    "  --resume PATH         continue exactly from a checkpoint (same options as the run that wrote it)\n"
    "  --loss-log PATH       write every optimizer step's training loss (of the global batch) to PATH\n"
    "  --distributed         data-parallel over MPI: run under mpirun -np N; --batch-size is the global\n"
    "                        batch, split across the ranks; only rank 0 prints and writes files\n"
    "  --out DIR             output folder for metrics.csv, curves.svg, confusion.svg, model.ntsd,\n"
    "                        onnx_model.onnx (default out)\n"
    "  --opset N             ONNX opset of onnx_model.onnx: 9 (default, ONNX.js-compatible) .. 17\n"
    "  --help                show this help\n";

Config parse_args(int argc, char** argv) {
    Config c;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            std::exit(0);
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
        else if (a == "--optimizer") c.optimizer = v;
        else if (a == "--lr-step") c.lr_step = parse_number<int>(a, v);
        else if (a == "--lr-gamma") c.lr_gamma = parse_number<double>(a, v);
        else if (a == "--seed") c.seed = parse_number<std::uint64_t>(a, v);
        else if (a == "--threads") c.threads = parse_number<int>(a, v);
        else if (a == "--limit") c.limit = parse_number<std::int64_t>(a, v);
        else if (a == "--limit-test") c.limit_test = parse_number<std::int64_t>(a, v);
        else if (a == "--checkpoint") c.checkpoint = v;
        else if (a == "--checkpoint-every") c.checkpoint_every = parse_number<std::int64_t>(a, v);
        else if (a == "--resume") c.resume = v;
        else if (a == "--loss-log") c.loss_log = v;
        else if (a == "--opset") c.opset = parse_number<std::int64_t>(a, v);
        else throw value_error("unknown option " + a + " (see --help)");
    }
    if (c.epochs < 1) throw value_error("--epochs must be at least 1");
    if (c.batch_size < 1 || c.test_batch_size < 1) throw value_error("batch sizes must be at least 1");
    if (c.optimizer != "sgd" && c.optimizer != "adam") throw value_error("--optimizer must be sgd or adam");
    if (c.limit < 0 || c.limit_test < 0 || c.lr_step < 0 || c.checkpoint_every < 0)
        throw value_error("--limit, --limit-test, --lr-step and --checkpoint-every must not be negative");
    if (c.checkpoint_every > 0 && c.checkpoint.empty()) throw value_error("--checkpoint-every needs --checkpoint");
    return c;
}

int run(const Config& cfg, train_distributed::DataParallel& dp) {
    if (cfg.threads > 0) set_num_threads(cfg.threads);
    else if (dp.active() && !std::getenv("NANOTORCH_NUM_THREADS")) set_num_threads(dp.default_threads());
    manual_seed(cfg.seed);
    Generator shuffle_gen(cfg.seed);

    // transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    const data::Normalize normalize(data::mnist_mean, data::mnist_std, /*inplace=*/true);
    data::Dataset train = data::load_mnist(cfg.data_dir, data::Split::Train);
    data::Dataset test = data::load_mnist(cfg.data_dir, data::Split::Test);
    if (cfg.limit > 0 && cfg.limit < train.size()) {
        train.images = train.images.narrow(0, 0, cfg.limit).contiguous();
        train.labels.resize(static_cast<std::size_t>(cfg.limit));
    }
    if (cfg.limit_test > 0 && cfg.limit_test < test.size()) {
        test.images = test.images.narrow(0, 0, cfg.limit_test).contiguous();
        test.labels.resize(static_cast<std::size_t>(cfg.limit_test));
    }
    train.images = normalize(train.images);
    test.images = normalize(test.images);
    if (dp.is_root())
        std::printf("nanotorch %s | %s | %d threads | train %lld, test %lld images%s\n", NANOTORCH_VERSION_STRING,
                    kernels::simd_arch_name(), get_num_threads(), static_cast<long long>(train.size()),
                    static_cast<long long>(test.size()),
                    dp.active() ? (" | " + std::to_string(dp.world_size()) + " ranks, global batch " +
                                   std::to_string(cfg.batch_size)).c_str()
                                : "");

    mnist::Net model;
    std::unique_ptr<optim::Optimizer> optimizer;
    if (cfg.optimizer == "adam")
        optimizer = std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions(cfg.lr));
    else
        optimizer = std::make_unique<optim::SGD>(model.parameters(), optim::SGDOptions(cfg.lr).momentum(cfg.momentum));
    std::unique_ptr<optim::StepLR> scheduler;
    if (cfg.lr_step > 0) scheduler = std::make_unique<optim::StepLR>(*optimizer, cfg.lr_step, cfg.lr_gamma);

    // Every rank must train the same way: the options that shape the run are compared across ranks.
    dp.prepare(model, std::to_string(cfg.seed) + " " + std::to_string(cfg.batch_size) + " " + std::to_string(cfg.lr) +
                          " " + std::to_string(cfg.momentum) + " " + cfg.optimizer + " " + std::to_string(cfg.epochs) +
                          " " + std::to_string(train.size()) + " " + std::to_string(cfg.lr_step) + " " +
                          std::to_string(cfg.lr_gamma) + " " + cfg.resume);
    std::unique_ptr<train_common::RunLog> log;  // rank 0 only
    if (dp.is_root()) log = std::make_unique<train_common::RunLog>(cfg.out_dir);
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> loss_log(nullptr, &std::fclose);
    if (dp.is_root() && !cfg.loss_log.empty()) {
        loss_log.reset(std::fopen(cfg.loss_log.c_str(), "w"));
        if (!loss_log) throw io_error(cfg.loss_log, "cannot open for writing");
        std::fprintf(loss_log.get(), "step,loss\n");
    }
    int fail_rank = -1;
    long long fail_step = -1;
    if (const char* f = std::getenv("NANOTORCH_TEST_FAIL")) {
        if (std::sscanf(f, "%d:%lld", &fail_rank, &fail_step) != 2)
            throw value_error(std::string("NANOTORCH_TEST_FAIL='") + f + "' is not RANK:STEP");
    }
    const std::vector<std::string> digits = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    const train_common::SumLoss nll_sum = [](const Tensor& out, const std::vector<std::int64_t>& y) {
        return F::nll_loss(out, y, F::Reduction::Sum);
    };

    data::DataLoader train_loader(train, dp.shard(data::DataLoaderOptions(cfg.batch_size).shuffle(true)), shuffle_gen);

    // Checkpoints: the shuffling generator as it was before the epoch's shuffle (the loader
    // replays the epoch from it), dropout's generator, and the epoch's running loss, so the
    // resumed run repeats the uninterrupted one to the last bit, metrics included.
    std::int64_t step = 0, resume_batch = 0, resume_seen = 0;
    double resume_loss_sum = 0.0;
    int first_epoch = 1;
    const std::vector<std::string> generator_names = {"shuffle", "dropout"};
    std::function<void(const std::string&)> before_rename;
    if (const char* pause = std::getenv("NANOTORCH_CHECKPOINT_PAUSE_MS")) {
        const long ms = std::atol(pause);
        before_rename = [ms](const std::string&) {
            std::printf("checkpoint: paused before rename\n");
            std::fflush(stdout);
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        };
    }
    auto save_checkpoint = [&](int epoch, std::int64_t batch, const GeneratorState& shuffle_state, double loss_sum,
                               std::int64_t seen) {
        if (!dp.is_root()) return;  // all ranks hold the same state; rank 0 writes it
        nn::save_checkpoint(
            cfg.checkpoint,
            nn::make_checkpoint(model, *optimizer, scheduler.get(), {epoch, batch, step},
                                {{"shuffle", shuffle_state}, {"dropout", default_generator().state()}},
                                {{"batch_size", static_cast<double>(cfg.batch_size)},
                                 {"train_size", static_cast<double>(train.size())},
                                 {"loss_sum", loss_sum},
                                 {"seen", static_cast<double>(seen)}}),
            before_rename);
    };
    if (!cfg.resume.empty()) {
        const nn::Checkpoint ck = nn::read_checkpoint(cfg.resume);
        // Batch positions only mean the same images with the same batch size and training set.
        if (ck.value("batch_size") != static_cast<double>(cfg.batch_size) ||
            ck.value("train_size") != static_cast<double>(train.size()))
            throw value_error("--resume " + cfg.resume + ": written with batch size " +
                              std::to_string(static_cast<long long>(ck.value("batch_size"))) + " and " +
                              std::to_string(static_cast<long long>(ck.value("train_size"))) +
                              " training images; this run has " + std::to_string(cfg.batch_size) + " and " +
                              std::to_string(train.size()));
        nn::apply_checkpoint(ck, model, *optimizer, scheduler.get(), generator_names, cfg.resume);
        train_loader.resume(ck.generator("shuffle"), ck.position.batch);
        default_generator().set_state(ck.generator("dropout"));
        first_epoch = static_cast<int>(ck.position.epoch);
        resume_batch = ck.position.batch;
        step = ck.position.step;
        resume_loss_sum = ck.value("loss_sum");
        resume_seen = static_cast<std::int64_t>(ck.value("seen"));
        if (dp.is_root()) std::printf("Resumed from %s: epoch %d, batch %lld, step %lld\n", cfg.resume.c_str(), first_epoch,
                    static_cast<long long>(resume_batch), static_cast<long long>(step));
    }

    train_common::Evaluation ev;
    for (int epoch = first_epoch; epoch <= cfg.epochs; ++epoch) {
        model.train();
        train_common::Progress progress(epoch, train_loader.size(), train.size());
        double loss_sum = resume_loss_sum;
        std::int64_t seen = resume_seen, batch_index = resume_batch;
        resume_loss_sum = 0.0;
        resume_seen = resume_batch = 0;
        for (auto batch : train_loader) {
            if (dp.rank() == fail_rank && step == fail_step)
                throw value_error("NANOTORCH_TEST_FAIL: rank " + std::to_string(fail_rank) + " fails at step " +
                                  std::to_string(step));
            optimizer->zero_grad();
            Tensor loss;
            {
                // Dropout draws this rank's rows of the global batch's masks (a no-op unsharded).
                BatchShardGuard shard(batch.global_offset, batch.global_size);
                loss = F::nll_loss(model(batch.data), batch.target);
            }
            loss.backward();
            dp.reduce(batch);
            optimizer->step();
            const double global_loss = dp.global_loss(static_cast<double>(loss.item()), batch);
            const auto n = batch.global_size;
            loss_sum += global_loss * static_cast<double>(n);
            seen += n;
            if (dp.is_root()) progress.update(++batch_index, seen, loss_sum / static_cast<double>(seen));
            else ++batch_index;
            ++step;
            if (loss_log) std::fprintf(loss_log.get(), "%lld,%.9g\n", static_cast<long long>(step), global_loss);
            // (The last batch's checkpoint is the epoch-end one below.)
            if (cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0 && batch_index < train_loader.size())
                save_checkpoint(epoch, batch_index, train_loader.pass_state(), loss_sum, seen);
        }
        const double train_seconds = progress.seconds();
        if (dp.is_root()) {
            ev = train_common::evaluate(model, test, cfg.test_batch_size, 10, nll_sum);
            std::printf("Test set: average loss %.4f, lr %g, %.1f s\n", ev.loss, optimizer->lr(), train_seconds);
            std::printf("Accuracy of the network on the %lld test images: %.2f %%\n",
                        static_cast<long long>(ev.total), ev.accuracy);
            std::fflush(stdout);
            log->add(epoch, loss_sum / static_cast<double>(seen), ev, train_seconds);
        }
        if (scheduler) scheduler->step();
        // The next epoch starts from the generator as it is now, at batch 0.
        if (!cfg.checkpoint.empty()) save_checkpoint(epoch + 1, 0, shuffle_gen.state(), 0.0, 0);
    }
    loss_log.reset();
    if (!dp.is_root()) return 0;
    if (ev.total == 0) ev = train_common::evaluate(model, test, cfg.test_batch_size, 10, nll_sum);  // resumed after the last epoch
    train_common::print_confusion(ev, digits);
    log->write_plots(ev, digits, "MNIST, the seed's CNN (nanotorch)");
    const std::string model_path = log->path("model.ntsd");
    nn::save_state_dict(model, model_path);
    std::printf("Saved the weights to %s, the metrics to %s, curves.svg and confusion.svg\n", model_path.c_str(),
                log->metrics_path().c_str());

    // The seed's step 6: the same weights in InferenceNet (canvas RGBA in, softmax out), exported.
    mnist::InferenceNet inference;
    nn::load_state_dict(inference, nn::state_dict(model));
    onnx::ExportOptions options;
    options.opset = cfg.opset;
    const std::string onnx_path = log->path("onnx_model.onnx");
    onnx::export_onnx(inference, zeros({280 * 280 * 4}), onnx_path, options);
    std::printf("Exported InferenceNet (280x280 RGBA canvas -> 10 probabilities, opset %lld) to %s\n",
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
        return dp.fail(std::string("mnist_train: error: ") + e.what());
    }
}
