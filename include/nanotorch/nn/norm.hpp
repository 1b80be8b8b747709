// nanotorch/nn/norm.hpp — BatchNorm1d and BatchNorm2d, with PyTorch's options, initialisation,
// buffers and state_dict names (weight, bias, running_mean, running_var, num_batches_tracked).
//
// Both run ops/norm.hpp's batch_norm (sync_batch_norm in training once set_stats_all_reduce has
// given them a group of processes: SyncBatchNorm); they differ only in the input ranks they accept
// (BatchNorm1d: [N, C] or [N, C, L]; BatchNorm2d: [N, C, H, W]), as in PyTorch.
// num_batches_tracked: PyTorch keeps it as an int64 0-D tensor; nanotorch tensors are float32, so
// it is a 0-D float32 buffer. Every count up to 2^24 = 16,777,216 batches is exact (and saved and
// loaded exactly); past that, adding 1 rounds back and the count stays at 2^24. It matters only
// for momentum = none (cumulative average, factor 1/count), where a factor of 1/2^24 instead of
// 1/(2^24 + k) is a relative difference below k/2^24.
#pragma once

#include <cmath>  // std::isfinite
#include <optional>
#include <sstream>
#include <string>
#include <utility>  // std::move

#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/ops/norm.hpp>

namespace nanotorch::nn {

class BatchNormOptions {
public:
    /// num_features = C, the channel count (dim 1 of the input).
    BatchNormOptions(std::int64_t num_features) : num_features_(num_features) {}  // implicit, like PyTorch's
    BatchNormOptions& eps(double v) { eps_ = v; return *this; }
    /// The running statistics' update factor; std::nullopt = cumulative moving average (PyTorch's
    /// momentum=None).
    BatchNormOptions& momentum(std::optional<double> v) { momentum_ = v; return *this; }
    BatchNormOptions& affine(bool v) { affine_ = v; return *this; }
    BatchNormOptions& track_running_stats(bool v) { track_ = v; return *this; }
    std::int64_t num_features() const { return num_features_; }
    double eps() const { return eps_; }
    const std::optional<double>& momentum() const { return momentum_; }
    bool affine() const { return affine_; }
    bool track_running_stats() const { return track_; }

private:
    std::int64_t num_features_;
    double eps_ = 1e-5;
    std::optional<double> momentum_ = 0.1;
    bool affine_ = true;
    bool track_ = true;
};

/// What BatchNorm1d and BatchNorm2d share: parameters, buffers and forward.
class BatchNormImplBase : public Module {
public:
    /// @throws value_error when num_features <= 0, eps <= 0 (or not finite), or momentum is
    ///   negative (or not finite).
    BatchNormImplBase(const BatchNormOptions& options, const char* name) : options_(options), name_(name) {
        NANOTORCH_CHECK(options.num_features() > 0, value_error, name_, ": num_features must be positive, got ",
                        options.num_features());
        NANOTORCH_CHECK(std::isfinite(options.eps()) && options.eps() > 0.0, value_error, name_,
                        ": eps must be a finite value > 0, got ", options.eps());
        NANOTORCH_CHECK(!options.momentum() || (std::isfinite(*options.momentum()) && *options.momentum() >= 0.0),
                        value_error, name_, ": momentum must be a finite value >= 0 (or none), got ",
                        (options.momentum() ? *options.momentum() : 0.0));
        const std::int64_t C = options.num_features();
        if (options.affine()) {
            weight = register_parameter("weight", ones({C}));
            bias = register_parameter("bias", zeros({C}));
        }
        if (options.track_running_stats()) {
            running_mean = register_buffer("running_mean", zeros({C}));
            running_var = register_buffer("running_var", ones({C}));
            num_batches_tracked = register_buffer("num_batches_tracked", scalar_tensor(0.0f));
        }
    }

    /// PyTorch's reset_running_stats: mean 0, var 1, count 0.
    void reset_running_stats() {
        if (!running_mean.defined()) return;
        NoGradGuard ng;
        running_mean.fill_(0.0f);
        running_var.fill_(1.0f);
        num_batches_tracked.fill_(0.0f);
    }
    /// PyTorch's reset_parameters: the running statistics, then weight 1 and bias 0.
    void reset_parameters() {
        reset_running_stats();
        if (!weight.defined()) return;
        NoGradGuard ng;
        weight.fill_(1.0f);
        bias.fill_(0.0f);
    }

    /// batch_norm with batch statistics in training mode (updating the running ones, and
    /// num_batches_tracked) and running statistics in eval mode; without track_running_stats,
    /// batch statistics in both modes.
    /// @throws shape_error for a rank the module does not accept or a channel count other than
    ///   num_features; value_error when training on one value per channel (see batch_norm).
    Tensor forward(const Tensor& x) override {
        check_input_dim(x);
        NANOTORCH_CHECK(x.size(1) == options_.num_features(), shape_error, name_, ": expected ",
                        options_.num_features(), " channels (num_features) in dim 1, got input of shape ",
                        shape_str(x.shape()));
        double factor = options_.momentum() ? *options_.momentum() : 0.0;
        if (is_training() && options_.track_running_stats()) {
            if (x.numel() / x.size(1) > 1) {  // a batch batch_norm refuses is not counted
                float& count = num_batches_tracked.data_ptr()[0];
                count += 1.0f;  // exact up to 2^24, see the file comment
                if (!options_.momentum()) factor = 1.0 / static_cast<double>(count);
            }
        }
        const bool use_batch_stats = is_training() || !options_.track_running_stats();
        const bool pass_running = !is_training() || options_.track_running_stats();
        if (is_training() && all_reduce_)
            return sync_batch_norm(x, pass_running ? running_mean : Tensor(), pass_running ? running_var : Tensor(),
                                   weight, bias, factor, options_.eps(), all_reduce_);
        return batch_norm(x, pass_running ? running_mean : Tensor(), pass_running ? running_var : Tensor(), weight,
                          bias, use_batch_stats, factor, options_.eps());
    }

    /// Makes training normalise with the statistics of the batch of a whole group of processes
    /// (PyTorch's SyncBatchNorm; see sync_batch_norm): `all_reduce` sums per-channel values over
    /// the group. distributed::convert_sync_batchnorm (distributed/mpi.hpp) sets it on every
    /// BatchNorm of a model. Empty (the default): this process's batch only. Eval mode is not
    /// affected (running statistics), nor the state_dict.
    void set_stats_all_reduce(StatsAllReduce all_reduce) { all_reduce_ = std::move(all_reduce); }
    bool synchronises_stats() const { return static_cast<bool>(all_reduce_); }

    std::string extra_repr() const override {
        std::ostringstream os;
        os << options_.num_features() << ", eps=" << options_.eps() << ", momentum=";
        if (options_.momentum()) os << *options_.momentum();
        else os << "none";
        os << ", affine=" << (options_.affine() ? "true" : "false")
           << ", track_running_stats=" << (options_.track_running_stats() ? "true" : "false");
        return os.str();
    }
    const BatchNormOptions& options() const { return options_; }

    Tensor weight;               // [C], 1; undefined without affine
    Tensor bias;                 // [C], 0; undefined without affine
    Tensor running_mean;         // [C], 0; undefined without track_running_stats
    Tensor running_var;          // [C], 1; undefined without track_running_stats
    Tensor num_batches_tracked;  // 0-D; undefined without track_running_stats

protected:
    /// @throws shape_error for an input rank the module does not accept.
    virtual void check_input_dim(const Tensor& x) const = 0;

    BatchNormOptions options_;
    const char* name_;
    StatsAllReduce all_reduce_;
};

/// Batch normalisation of [N, C] or [N, C, L] input (after Linear or Conv1d).
class BatchNorm1dImpl : public BatchNormImplBase {
public:
    /// @throws as BatchNormImplBase.
    explicit BatchNorm1dImpl(const BatchNormOptions& options) : BatchNormImplBase(options, "BatchNorm1d") {}
    std::string type_name() const override { return "BatchNorm1d"; }

protected:
    void check_input_dim(const Tensor& x) const override {
        NANOTORCH_CHECK(x.dim() == 2 || x.dim() == 3, shape_error, "BatchNorm1d: expected a 2-D (N, C) or 3-D (N, C, L) "
                        "input, got shape ", shape_str(x.shape()));
    }
};
NANOTORCH_MODULE(BatchNorm1d);

/// Batch normalisation of [N, C, H, W] input (after Conv2d).
class BatchNorm2dImpl : public BatchNormImplBase {
public:
    /// @throws as BatchNormImplBase.
    explicit BatchNorm2dImpl(const BatchNormOptions& options) : BatchNormImplBase(options, "BatchNorm2d") {}
    std::string type_name() const override { return "BatchNorm2d"; }

protected:
    void check_input_dim(const Tensor& x) const override {
        NANOTORCH_CHECK(x.dim() == 4, shape_error, "BatchNorm2d: expected a 4-D (N, C, H, W) input, got shape ",
                        shape_str(x.shape()));
    }
};
NANOTORCH_MODULE(BatchNorm2d);

}  // namespace nanotorch::nn
