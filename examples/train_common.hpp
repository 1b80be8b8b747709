// examples/train_common.hpp — what the training examples (mnist_train, fashion_train) share:
// number parsing for their flags, the progress bar, evaluation with a confusion matrix, the
// printed confusion matrix, and the per-run outputs (metrics.csv rows, curves.svg,
// confusion.svg). Example code, not library API.
#pragma once

#include <unistd.h>  // isatty: a progress bar on terminals, plain lines in logs

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>

#include "svg_plots.hpp"

namespace train_common {

using namespace nanotorch;

/// Parses a whole flag value as a T. @throws value_error naming the flag.
template <class T>
T parse_number(const std::string& flag, const std::string& text) {
    std::istringstream is(text);
    T v{};
    is >> v;
    if (!is || !is.eof()) throw value_error(flag + ": '" + text + "' is not a valid number");
    return v;
}

inline std::string format_duration(double seconds) {
    const long s = static_cast<long>(seconds + 0.5);
    std::ostringstream os;
    os << s / 60 << ':' << std::setw(2) << std::setfill('0') << s % 60;
    return os.str();
}

/// Reports training progress: a redrawn bar on a terminal, a line every ~10% otherwise.
class Progress {
public:
    Progress(int epoch, std::int64_t batches, std::int64_t images)
        : epoch_(epoch), batches_(batches), images_(images), tty_(isatty(fileno(stdout)) != 0),
          start_(std::chrono::steady_clock::now()) {}

    void update(std::int64_t batch, std::int64_t images_done, double running_loss) {
        const double elapsed = seconds();
        const double rate = elapsed > 0 ? static_cast<double>(images_done) / elapsed : 0.0;
        const double eta = rate > 0 ? static_cast<double>(images_ - images_done) / rate : 0.0;
        if (tty_) {
            const int width = 30;
            const int filled = static_cast<int>(width * batch / batches_);
            std::printf("\repoch %d [%s%s] %lld/%lld  loss %.4f  %6.0f img/s  ETA %s ", epoch_,
                        std::string(static_cast<std::size_t>(filled), '#').c_str(),
                        std::string(static_cast<std::size_t>(width - filled), '.').c_str(),
                        static_cast<long long>(batch), static_cast<long long>(batches_), running_loss, rate,
                        format_duration(eta).c_str());
            if (batch == batches_) std::printf("\n");
            std::fflush(stdout);
        } else if (batch == batches_ || batch % std::max<std::int64_t>(1, batches_ / 10) == 0) {
            std::printf("epoch %d: %lld/%lld batches, loss %.4f, %.0f img/s, ETA %s\n", epoch_,
                        static_cast<long long>(batch), static_cast<long long>(batches_), running_loss, rate,
                        format_duration(eta).c_str());
            std::fflush(stdout);
        }
    }
    double seconds() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

private:
    int epoch_;
    std::int64_t batches_, images_;
    bool tty_;
    std::chrono::steady_clock::time_point start_;
};

struct Evaluation {
    double loss = 0.0;
    double accuracy = 0.0;  // percent
    std::int64_t correct = 0, total = 0;
    std::vector<std::vector<std::int64_t>> confusion;  // [true][predicted]
};

/// The summed loss of a batch given the model's output and the targets (e.g. nll_loss with
/// Reduction::Sum for a log_softmax model, cross_entropy for a logits model).
using SumLoss = std::function<Tensor(const Tensor& output, const std::vector<std::int64_t>& target)>;

/// Runs `model` in eval mode without gradients over `test`; mean loss, accuracy, confusion.
/// @throws what the model's forward throws.
inline Evaluation evaluate(nn::Module& model, const data::Dataset& test, std::int64_t batch_size,
                           std::size_t classes, const SumLoss& sum_loss) {
    model.eval();
    NoGradGuard no_grad;
    Evaluation ev;
    ev.confusion.assign(classes, std::vector<std::int64_t>(classes, 0));
    data::DataLoader loader(test, data::DataLoaderOptions(batch_size));
    double loss_sum = 0.0;
    for (auto batch : loader) {
        const Tensor output = model(batch.data);
        loss_sum += sum_loss(output, batch.target).item();
        const auto pred = output.argmax(1);
        for (std::size_t i = 0; i < pred.size(); ++i) {
            ++ev.confusion[static_cast<std::size_t>(batch.target[i])][static_cast<std::size_t>(pred[i])];
            ev.correct += pred[i] == batch.target[i];
        }
        ev.total += static_cast<std::int64_t>(pred.size());
    }
    ev.loss = loss_sum / static_cast<double>(ev.total);
    ev.accuracy = 100.0 * static_cast<double>(ev.correct) / static_cast<double>(ev.total);
    return ev;
}

/// Prints the confusion matrix; rows are labelled "index name" (just the index when the name is
/// the index, as for digits), columns by index.
inline void print_confusion(const Evaluation& ev, const std::vector<std::string>& names) {
    std::vector<std::string> labels;
    std::size_t w = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        labels.push_back(names[i] == std::to_string(i) ? names[i] : std::to_string(i) + " " + names[i]);
        w = std::max(w, labels.back().size());
    }
    const int width = static_cast<int>(w);
    std::printf("Confusion matrix (rows: true class, columns: predicted class):\n%*s", width, "");
    for (std::size_t j = 0; j < names.size(); ++j) std::printf("%6zu", j);
    std::printf("\n");
    for (std::size_t i = 0; i < names.size(); ++i) {
        std::printf("%-*s", width, labels[i].c_str());
        for (std::size_t j = 0; j < names.size(); ++j)
            std::printf("%6lld", static_cast<long long>(ev.confusion[i][j]));
        std::printf("\n");
    }
}

/// metrics.csv (appended to, with a header when new) plus the history for curves.svg.
class RunLog {
public:
    /// @throws io_error when the folder or metrics.csv cannot be created.
    explicit RunLog(const std::string& out_dir) : out_dir_(out_dir) {
        std::error_code ec;
        std::filesystem::create_directories(out_dir, ec);
        if (ec) throw io_error(out_dir, "cannot create the folder: " + ec.message());
        metrics_path_ = path("metrics.csv");
        const bool fresh = !std::filesystem::exists(metrics_path_, ec);
        metrics_.open(metrics_path_, std::ios::app);
        if (!metrics_) throw io_error(metrics_path_, "cannot open for appending");
        if (fresh) metrics_ << "epoch,train_loss,test_loss,accuracy,seconds\n";
    }
    std::string path(const std::string& name) const { return (std::filesystem::path(out_dir_) / name).string(); }
    const std::string& metrics_path() const { return metrics_path_; }

    void add(int epoch, double train_loss, const Evaluation& ev, double seconds) {
        char row[160];
        std::snprintf(row, sizeof row, "%d,%.6f,%.6f,%.2f,%.1f\n", epoch, train_loss, ev.loss, ev.accuracy, seconds);
        metrics_ << row << std::flush;
        history_.push_back({epoch, train_loss, ev.loss, ev.accuracy});
    }

    /// Writes curves.svg (this run's epochs) and confusion.svg (the last evaluation). A run that
    /// trained no epoch (resumed from a checkpoint written after the last one) leaves curves.svg
    /// as the interrupted run wrote it.
    /// @throws io_error when a file cannot be written.
    void write_plots(const Evaluation& last, const std::vector<std::string>& names, const std::string& title) const {
        if (!history_.empty()) svg_plots::write_curves(path("curves.svg"), history_, title);
        char sub[96];
        std::snprintf(sub, sizeof sub, " — test accuracy %.2f %%", last.accuracy);
        svg_plots::write_confusion(path("confusion.svg"), last.confusion, names, title + sub);
    }

private:
    std::string out_dir_, metrics_path_;
    std::ofstream metrics_;
    std::vector<svg_plots::EpochPoint> history_;
};

}  // namespace train_common
