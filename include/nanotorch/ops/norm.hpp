// nanotorch/ops/norm.hpp — batch_norm (torch.nn.functional.batch_norm), its backward and its ONNX
// export mapping.
//
// The op validates its arguments (shape_error / value_error naming the argument), runs the
// raw-pointer kernels of kernels/norm.hpp on contiguous data, updates the running statistics in
// place when training with them, and, only when input, weight or bias requires grad, records a
// BatchNormBackward node right below it. Under an export trace it emits ONNX
// BatchNormalization in inference form in both export profiles (opset 9 and 10..17; at opset 9
// a rank-2 input is wrapped in Unsqueeze/Squeeze, because ONNX.js wants rank >= 3);
// the ONNX runtime's BatchNormalization (onnx/op_table.hpp) calls this op, so export and
// import compute the same thing. sync_batch_norm is its training-mode twin with statistics over
// the batches of several processes (SyncBatchNorm; the collective comes from the caller, e.g.
// distributed/mpi.hpp). Not provided: training-mode export (BatchNormalization's
// training outputs), instance/layer/group norm.
#pragma once

#include <cmath>  // std::sqrt, std::isfinite
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>  // std::pair (batch_norm_eval_affine)
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/norm.hpp>
#include <nanotorch/ops/broadcast.hpp>    // ops::detail::as_contiguous
#include <nanotorch/ops/elementwise.hpp>  // ops::detail::wants_grad

namespace nanotorch {

namespace norm_detail {

// mean[c], invstd[c] ← the eval-mode statistics: the running mean, and 1/√(var + eps) in float,
// as PyTorch's CPU kernel computes it (an eps that went through a float, as ONNX's epsilon
// attribute does, then gives the same bits as the double a module holds).
inline void eval_statistics(float* mean, float* invstd, const Tensor& running_mean, const Tensor& running_var,
                            double eps) {
    const std::vector<float> m = running_mean.to_vector(), v = running_var.to_vector();
    const auto eps_f = static_cast<float>(eps);
    for (std::size_t c = 0; c < m.size(); ++c) {
        mean[c] = m[c];
        invstd[c] = 1.0f / std::sqrt(v[c] + eps_f);
    }
}

// The argument checks batch_norm and sync_batch_norm share (all but the per-channel count, which
// sync_batch_norm checks over every process). `op` names the caller in the messages.
inline void check_batch_norm_args(const char* op, const Tensor& input, const Tensor& running_mean,
                                  const Tensor& running_var, const Tensor& weight, const Tensor& bias, bool training,
                                  double momentum, double eps) {
    NANOTORCH_CHECK(input.defined() && input.dim() >= 2, shape_error,
                    op, ": expected an input of rank >= 2 (N, C, ...), got shape ",
                    (input.defined() ? shape_str(input.shape()) : std::string("undefined")));
    const Shape& xs = input.shape();
    const std::int64_t C = xs[1];
    auto check_c = [&](const Tensor& t, const char* what) {
        NANOTORCH_CHECK(!t.defined() || t.shape() == Shape{C}, shape_error, op, ": ", what, " of shape ",
                        (t.defined() ? shape_str(t.shape()) : std::string()), " does not match the input's ", C,
                        " channels (input shape ", shape_str(xs), "); expected [", C, "]");
    };
    check_c(running_mean, "running_mean");
    check_c(running_var, "running_var");
    check_c(weight, "weight");
    check_c(bias, "bias");
    NANOTORCH_CHECK(running_mean.defined() == running_var.defined(), value_error,
                    op, ": running_mean and running_var must be given together (got only ",
                    (running_mean.defined() ? "running_mean" : "running_var"), ")");
    NANOTORCH_CHECK(training || running_mean.defined(), value_error,
                    op, ": running_mean and running_var are required when training is false");
    NANOTORCH_CHECK(std::isfinite(momentum) && momentum >= 0.0, value_error, op, ": momentum must be a finite "
                    "value >= 0, got ", momentum);
    NANOTORCH_CHECK(std::isfinite(eps) && eps >= 0.0, value_error, op, ": eps must be a finite value >= 0, got ",
                    eps);
}

// running = (1 − momentum)·running + momentum·batch, in place and outside autograd (they are
// state, not inputs).
inline void update_running(const Tensor& running, const Tensor& batch, double momentum) {
    const float* b = batch.data_ptr();
    std::int64_t c = 0;
    running.for_each_element([&](float& r) {
        r = static_cast<float>(momentum * b[c] + (1.0 - momentum) * r);
        ++c;
    });
}

}  // namespace norm_detail

// ---- batch_norm ----
struct BatchNormBackward : autograd::Node {
    Tensor input;          // contiguous, the forward's input
    Tensor weight;         // contiguous [C], or undefined (= 1)
    Tensor mean, invstd;   // [C]: what the forward normalised with
    bool batch_stats = true;  // mean/invstd came from this batch (so they depend on the input)
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        const Shape& xs = input.shape();
        const std::int64_t N = xs[0], C = xs[1], inner = C > 0 && N > 0 ? input.numel() / (N * C) : 0;
        Tensor gi, gw, gb;
        if (ops::detail::wants_grad(*this, 0)) gi = empty(xs);
        if (ops::detail::wants_grad(*this, 1)) gw = empty({C});
        if (ops::detail::wants_grad(*this, 2)) gb = empty({C});
        kernels::batch_norm_backward(gi.defined() ? gi.data_ptr() : nullptr, gw.defined() ? gw.data_ptr() : nullptr,
                                     gb.defined() ? gb.data_ptr() : nullptr, gc.data_ptr(), input.data_ptr(),
                                     mean.data_ptr(), invstd.data_ptr(), weight.defined() ? weight.data_ptr() : nullptr,
                                     N, C, inner, batch_stats);
        return {gi, gw, gb};
    }
    void release_saved() override { input = weight = mean = invstd = Tensor(); }
    const char* name() const override { return "BatchNormBackward"; }
};

/// Batch normalisation over the channel dim 1, as torch.nn.functional.batch_norm:
///   out = (input − mean_c) / √(var_c + eps) · weight_c + bias_c
/// input [N, C, ...] (rank >= 2: [N, C], [N, C, L], [N, C, H, W], ...); running_mean,
/// running_var, weight, bias [C] or undefined (weight 1, bias 0).
/// training: mean/var are the batch's, per channel over N and every dim after C (var biased),
///   and running statistics, when given, are updated in place (with no autograd) as
///   running = (1 − momentum)·running + momentum·batch, running_var taking the UNBIASED batch
///   variance (·M/(M − 1), M = values per channel). momentum = 1/k gives a cumulative average.
/// not training: mean/var are running_mean/running_var.
/// Example: F::batch_norm(x, bn_mean, bn_var, gamma, beta, /*training=*/true, 0.1, 1e-5).
/// Throws shape_error when input has rank < 2 or a [C] argument has another shape;
/// value_error when training is false and a running statistic is missing, when only one of
/// running_mean / running_var is given, when momentum or eps is negative or not finite, or when
/// training with at most one value per channel (M <= 1); unsupported_error under an ONNX
/// export trace in training mode.
inline Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                         double momentum = 0.1, double eps = 1e-5) {
    norm_detail::check_batch_norm_args("batch_norm", input, running_mean, running_var, weight, bias, training,
                                       momentum, eps);
    const Shape& xs = input.shape();
    const std::int64_t N = xs[0], C = xs[1];
    const std::int64_t inner = N > 0 && C > 0 ? input.numel() / (N * C) : 0;
    NANOTORCH_CHECK(!training || N * inner > 1, value_error,
                    "batch_norm: expected more than 1 value per channel when training, got input of shape ",
                    shape_str(xs));

    const Tensor xc = ops::detail::as_contiguous(input);
    Tensor mean = empty({C}), invstd = empty({C});
    if (training) {
        Tensor var = empty({C}), var_unbiased = empty({C});
        if (C > 0)
            kernels::batch_norm_stats(mean.data_ptr(), var.data_ptr(), var_unbiased.data_ptr(), xc.data_ptr(), N, C,
                                      inner);
        const float* v = var.data_ptr();
        for (std::int64_t c = 0; c < C; ++c) invstd.data_ptr()[c] = static_cast<float>(1.0 / std::sqrt(v[c] + eps));
        if (running_mean.defined()) {
            norm_detail::update_running(running_mean, mean, momentum);
            norm_detail::update_running(running_var, var_unbiased, momentum);
        }
    } else {
        // In float, as PyTorch's CPU kernel does in eval mode; an eps that went through a float
        // (ONNX's epsilon attribute) then gives the same bits as the double the module holds.
        norm_detail::eval_statistics(mean.data_ptr(), invstd.data_ptr(), running_mean, running_var, eps);
    }
    const Tensor wc = weight.defined() ? ops::detail::as_contiguous(weight) : Tensor();
    const Tensor bc = bias.defined() ? ops::detail::as_contiguous(bias) : Tensor();
    Tensor out = empty(xs);
    if (out.numel() > 0)
        kernels::batch_norm_forward(out.data_ptr(), xc.data_ptr(), mean.data_ptr(), invstd.data_ptr(),
                                    wc.defined() ? wc.data_ptr() : nullptr, bc.defined() ? bc.data_ptr() : nullptr, N,
                                    C, inner);
    if (autograd::any_requires_grad({&input, &weight, &bias})) {
        auto n = std::make_shared<BatchNormBackward>();
        n->input = xc.detach();
        n->weight = wc.defined() ? wc.detach() : Tensor();
        n->mean = mean;
        n->invstd = invstd;
        n->batch_stats = training;
        autograd::attach(out, n, {input, weight, bias});
    }
    if (auto* tr = trace::active()) {
        if (training)
            tr->unsupported("batch_norm",
                            "training mode normalises with the batch's statistics, and BatchNormalization is exported "
                            "in inference form (running statistics): export in eval mode (export_onnx calls "
                            "module.eval(); F::batch_norm needs training = false); a BatchNorm with "
                            "track_running_stats = false always uses batch statistics");
        // ONNX requires scale and B: affine = false exports constant ones and zeros.
        const std::vector<trace::Input> params = {
            weight.defined() ? trace::value(weight) : trace::float_constant(ones({C})),
            bias.defined() ? trace::value(bias) : trace::float_constant(zeros({C})), trace::value(running_mean),
            trace::value(running_var)};
        const std::vector<trace::Attr> attrs = {trace::attr("epsilon", static_cast<float>(eps))};
        if (input.dim() == 2 && tr->opset() <= 9) {
            // ONNX.js (the opset-9 profile's runtime) refuses BatchNormalization on a rank-2 input,
            // so [N, C] goes through [N, C, 1]: Unsqueeze, BatchNormalization, Squeeze (axes are
            // attributes at opset 9). The placeholders only carry the intermediate values' identity.
            const Tensor x3 = empty({N, C, 1}), y3 = empty({N, C, 1});
            const std::vector<trace::Attr> axes = {trace::attr("axes", std::vector<std::int64_t>{2})};
            tr->emit("Unsqueeze", {trace::value(input)}, {x3}, axes);
            std::vector<trace::Input> in = {trace::value(x3)};
            in.insert(in.end(), params.begin(), params.end());
            tr->emit("BatchNormalization", in, {y3}, attrs);
            tr->emit("Squeeze", {trace::value(y3)}, {out}, axes);
        } else {
            std::vector<trace::Input> in = {trace::value(input)};
            in.insert(in.end(), params.begin(), params.end());
            tr->emit("BatchNormalization", in, {out}, attrs);
        }
    }
    return out;
}

/// The per-channel map batch_norm applies in eval mode, y = x·scale[c] + shift[c] (scale =
/// weight·invstd, shift = bias − mean·scale, invstd = 1/√(running_var + eps) in float), as the
/// two floats per channel batch_norm itself uses: conv2d_fused given them computes
/// batch_norm(conv2d(...), ...) bit for bit. weight and bias may be undefined (1 and 0).
/// Throws as batch_norm's argument checks (shape_error / value_error).
inline std::pair<std::vector<float>, std::vector<float>> batch_norm_eval_affine(const Tensor& running_mean,
                                                                                const Tensor& running_var,
                                                                                const Tensor& weight = Tensor(),
                                                                                const Tensor& bias = Tensor(),
                                                                                double eps = 1e-5) {
    NANOTORCH_CHECK(running_mean.defined() && running_var.defined() && running_mean.dim() == 1 &&
                        running_var.shape() == running_mean.shape(),
                    shape_error, "batch_norm_eval_affine: running_mean and running_var must be [C] tensors");
    const std::int64_t C = running_mean.size(0);
    NANOTORCH_CHECK(!weight.defined() || weight.shape() == running_mean.shape(), shape_error,
                    "batch_norm_eval_affine: weight must be [", C, "]");
    NANOTORCH_CHECK(!bias.defined() || bias.shape() == running_mean.shape(), shape_error,
                    "batch_norm_eval_affine: bias must be [", C, "]");
    NANOTORCH_CHECK(std::isfinite(eps) && eps >= 0.0, value_error, "batch_norm_eval_affine: eps must be finite and >= 0");
    std::vector<float> mean(static_cast<std::size_t>(C)), invstd(mean.size()), scale(mean.size()), shift(mean.size());
    norm_detail::eval_statistics(mean.data(), invstd.data(), running_mean, running_var, eps);
    const std::vector<float> w = weight.defined() ? weight.to_vector() : std::vector<float>();
    const std::vector<float> b = bias.defined() ? bias.to_vector() : std::vector<float>();
    kernels::batch_norm_affine(scale.data(), shift.data(), mean.data(), invstd.data(), w.empty() ? nullptr : w.data(),
                               b.empty() ? nullptr : b.data(), C);
    return {std::move(scale), std::move(shift)};
}

// ---- sync_batch_norm ----
/// Adds per-channel statistics up over every process of a SyncBatchNorm group, in place, giving
/// every process the same bits (the caller's collective; distributed/mpi.hpp provides one over
/// MPI). With one process it is the identity, and sync_batch_norm is batch_norm bit for bit.
using StatsAllReduce = std::function<void(std::vector<double>&)>;

struct SyncBatchNormBackward : autograd::Node {
    Tensor input, weight, mean, invstd;  // as BatchNormBackward
    double count = 0.0;                  // values per channel over all processes
    StatsAllReduce all_reduce;
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        const Shape& xs = input.shape();
        const std::int64_t N = xs[0], C = xs[1], inner = C > 0 && N > 0 ? input.numel() / (N * C) : 0;
        const auto nc = static_cast<std::size_t>(C);
        // [Σ gy | Σ gy·(x − mean)] per channel, this process's values first.
        std::vector<double> sums(2 * nc);
        kernels::batch_norm_backward_reduce(sums.data(), sums.data() + nc, gc.data_ptr(), input.data_ptr(),
                                            mean.data_ptr(), N, C, inner);
        Tensor gi, gw, gb;
        // Weight and bias gradients from this process's values, as PyTorch's SyncBatchNorm: the
        // data-parallel gradient reduction then combines them like every other parameter's.
        if (ops::detail::wants_grad(*this, 1)) {
            gw = empty({C});
            for (std::size_t c = 0; c < nc; ++c) gw.data_ptr()[c] = static_cast<float>(sums[nc + c] * invstd.data_ptr()[c]);
        }
        if (ops::detail::wants_grad(*this, 2)) {
            gb = empty({C});
            for (std::size_t c = 0; c < nc; ++c) gb.data_ptr()[c] = static_cast<float>(sums[c]);
        }
        // Every process takes part in the reduction, whether or not it needs the input gradient.
        all_reduce(sums);
        if (ops::detail::wants_grad(*this, 0)) {
            gi = empty(xs);
            std::vector<float> sum_g(nc), dot_g(nc);
            for (std::size_t c = 0; c < nc; ++c) {
                sum_g[c] = static_cast<float>(sums[c]);
                dot_g[c] = static_cast<float>(sums[nc + c]);
            }
            if (gi.numel() > 0)
                kernels::batch_norm_backward_input(gi.data_ptr(), gc.data_ptr(), input.data_ptr(), mean.data_ptr(),
                                                   invstd.data_ptr(), weight.defined() ? weight.data_ptr() : nullptr,
                                                   sum_g.data(), dot_g.data(), count, N, C, inner);
        }
        return {gi, gw, gb};
    }
    void release_saved() override {
        input = weight = mean = invstd = Tensor();
        all_reduce = nullptr;
    }
    const char* name() const override { return "SyncBatchNormBackward"; }
};

/// batch_norm in training mode with statistics over the batch of every process in a group
/// (PyTorch's SyncBatchNorm): `all_reduce` adds up the per-channel sums of all processes, so each
/// process normalises its slice of the global batch with the global batch's mean and variance,
/// and updates the running statistics with them (every process alike). Backward reduces Σ gy and
/// Σ gy·(x − mean) the same way for the input gradient; the weight and bias gradients are this
/// process's, for the data-parallel gradient reduction to combine. Two passes as batch_norm
/// (mean first, then Σ (x − mean)²), each one all_reduce of C (+1) doubles; the backward one more.
/// Every process must call it (and run backward) collectively, in the same order.
/// Throws as batch_norm (the "more than 1 value per channel" check counts every process's values);
/// value_error when all_reduce is empty; unsupported_error under an ONNX export trace (export in
/// eval mode: the module then runs batch_norm with the running statistics).
inline Tensor sync_batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                              const Tensor& weight, const Tensor& bias, double momentum, double eps,
                              const StatsAllReduce& all_reduce) {
    norm_detail::check_batch_norm_args("sync_batch_norm", input, running_mean, running_var, weight, bias,
                                       /*training=*/true, momentum, eps);
    NANOTORCH_CHECK(static_cast<bool>(all_reduce), value_error,
                    "sync_batch_norm: all_reduce is empty (use batch_norm for statistics of this process only)");
    if (auto* tr = trace::active())
        tr->unsupported("sync_batch_norm", "it normalises with the statistics of a batch spread over processes; "
                        "export in eval mode (the module then runs batch_norm with the running statistics)");
    const Shape& xs = input.shape();
    const std::int64_t N = xs[0], C = xs[1];
    const std::int64_t inner = N > 0 && C > 0 ? input.numel() / (N * C) : 0;
    const auto nc = static_cast<std::size_t>(C);
    const Tensor xc = ops::detail::as_contiguous(input);

    // Pass 1: [Σ x per channel | this process's count] over all processes -> the mean.
    std::vector<double> sums(nc + 1, 0.0);
    if (N * inner > 0) kernels::batch_norm_channel_sum(sums.data(), xc.data_ptr(), N, C, inner);
    sums[nc] = static_cast<double>(N * inner);
    all_reduce(sums);
    const double M = sums[nc];
    NANOTORCH_CHECK(M > 1.0, value_error, "sync_batch_norm: expected more than 1 value per channel over all "
                    "processes when training, got ", M, " (this process's input has shape ", shape_str(xs), ")");
    Tensor mean = empty({C}), invstd = empty({C}), var_unbiased = empty({C});
    for (std::size_t c = 0; c < nc; ++c) mean.data_ptr()[c] = static_cast<float>(sums[c] / M);
    // Pass 2: Σ (x − mean)² per channel over all processes -> the variances.
    std::vector<double> sq(nc, 0.0);
    if (N * inner > 0) kernels::batch_norm_channel_sq_dev(sq.data(), xc.data_ptr(), mean.data_ptr(), N, C, inner);
    all_reduce(sq);
    for (std::size_t c = 0; c < nc; ++c) {
        const auto var = static_cast<float>(sq[c] / M);
        invstd.data_ptr()[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
        var_unbiased.data_ptr()[c] = static_cast<float>(sq[c] / (M - 1.0));
    }
    if (running_mean.defined()) {
        norm_detail::update_running(running_mean, mean, momentum);
        norm_detail::update_running(running_var, var_unbiased, momentum);
    }
    const Tensor wc = weight.defined() ? ops::detail::as_contiguous(weight) : Tensor();
    const Tensor bc = bias.defined() ? ops::detail::as_contiguous(bias) : Tensor();
    Tensor out = empty(xs);
    if (out.numel() > 0)
        kernels::batch_norm_forward(out.data_ptr(), xc.data_ptr(), mean.data_ptr(), invstd.data_ptr(),
                                    wc.defined() ? wc.data_ptr() : nullptr, bc.defined() ? bc.data_ptr() : nullptr, N,
                                    C, inner);
    if (autograd::any_requires_grad({&input, &weight, &bias})) {
        auto n = std::make_shared<SyncBatchNormBackward>();
        n->input = xc.detach();
        n->weight = wc.defined() ? wc.detach() : Tensor();
        n->mean = mean;
        n->invstd = invstd;
        n->count = M;
        n->all_reduce = all_reduce;
        autograd::attach(out, n, {input, weight, bias});
    }
    return out;
}

}  // namespace nanotorch
