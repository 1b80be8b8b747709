// nanotorch/optim/adam.hpp — Adam (Kingma & Ba) with PyTorch's update rule (torch.optim.Adam,
// L2 weight decay added to the gradient, optional AMSGrad):
//
//   g = g + weight_decay·p
//   m = β1·m + (1 − β1)·g          v = β2·v + (1 − β2)·g²
//   amsgrad: v_max = max(v_max, v), and v_max replaces v below
//   p = p − lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
//
// t counts the steps each parameter actually took (a parameter without a gradient is skipped
// and its count does not advance). State vectors are parallel to the parameter list.
// AdamW (optim/adamw.hpp) shares this code and differs only in how it decays the weights.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/optim/optimizer.hpp>

namespace nanotorch::optim {

namespace detail {

/// Builder-style options of Adam (`Decoupled` false: AdamOptions) and AdamW (true: AdamWOptions),
/// one template so that both builders return their own type. Only the default weight_decay
/// differs: 0 for Adam, 0.01 for AdamW (PyTorch's defaults).
template <bool Decoupled>
class BasicAdamOptions {
public:
    BasicAdamOptions(double lr = 1e-3) : lr_(lr) {}  // implicit: Adam(params, 1e-3) reads naturally
    BasicAdamOptions& lr(double v) { lr_ = v; return *this; }
    BasicAdamOptions& betas(double b1, double b2) { beta1_ = b1; beta2_ = b2; return *this; }
    BasicAdamOptions& eps(double v) { eps_ = v; return *this; }
    BasicAdamOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
    BasicAdamOptions& amsgrad(bool v) { amsgrad_ = v; return *this; }
    double lr() const { return lr_; }
    double beta1() const { return beta1_; }
    double beta2() const { return beta2_; }
    double eps() const { return eps_; }
    double weight_decay() const { return weight_decay_; }
    bool amsgrad() const { return amsgrad_; }

private:
    double lr_;
    double beta1_ = 0.9;
    double beta2_ = 0.999;
    double eps_ = 1e-8;
    double weight_decay_ = Decoupled ? 1e-2 : 0.0;
    bool amsgrad_ = false;
};

}  // namespace detail

using AdamOptions = detail::BasicAdamOptions<false>;

namespace detail {

/// The code Adam and AdamW share: options checks, state, the moment updates. `Decoupled` picks
/// AdamW's decay (p ← p·(1 − lr·weight_decay) before the update) over Adam's L2 term.
template <bool Decoupled>
class AdamBase : public Optimizer {
public:
    /// One update of every parameter with a gradient. @throws as Optimizer::step.
    void step() override {
        NoGradGuard no_grad;
        const double b1 = options_.beta1(), b2 = options_.beta2();
        [[maybe_unused]] const float wd = static_cast<float>(options_.weight_decay());
        // AdamW's factor is formed in double and rounded once, as PyTorch's param.mul_(1 − lr·wd).
        [[maybe_unused]] const float decay = static_cast<float>(1.0 - options_.lr() * options_.weight_decay());
        const bool amsgrad = options_.amsgrad();
        for (std::size_t i = 0; i < params_.size(); ++i) {
            const Tensor g = grad_of(i);
            if (!g.defined()) continue;
            if (!exp_avg_[i].defined()) {
                exp_avg_[i] = zeros(params_[i].shape());
                exp_avg_sq_[i] = zeros(params_[i].shape());
            }
            if (amsgrad && !max_exp_avg_sq_[i].defined()) max_exp_avg_sq_[i] = zeros(params_[i].shape());
            const std::int64_t t = ++steps_[i];
            const double bias1 = 1.0 - std::pow(b1, static_cast<double>(t));
            const double bias2 = 1.0 - std::pow(b2, static_cast<double>(t));
            const float step_size = static_cast<float>(options_.lr() / bias1);
            const float inv_sqrt_bias2 = static_cast<float>(1.0 / std::sqrt(bias2));
            const float eps = static_cast<float>(options_.eps());
            const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
            // 1 − β in double, then rounded (as PyTorch does): 1.0f − 0.999f would cancel to
            // 0.00099998713, a 1.3e-5 relative error in every second-moment update.
            const float cb1 = static_cast<float>(1.0 - b1), cb2 = static_cast<float>(1.0 - b2);
            float* p = params_[i].data_ptr();
            const float* gd = g.data_ptr();
            float* m = exp_avg_[i].data_ptr();
            float* v = exp_avg_sq_[i].data_ptr();
            float* vmax = amsgrad ? max_exp_avg_sq_[i].data_ptr() : nullptr;
            for (std::int64_t k = 0, n = params_[i].numel(); k < n; ++k) {
                float gk = gd[k];
                if constexpr (Decoupled) {
                    p[k] *= decay;
                } else {
                    gk += wd * p[k];
                }
                m[k] = fb1 * m[k] + cb1 * gk;
                v[k] = fb2 * v[k] + cb2 * gk * gk;
                float second = v[k];
                if (vmax) {
                    if (!(vmax[k] >= v[k])) vmax[k] = v[k];  // torch.maximum: a NaN propagates
                    second = vmax[k];
                }
                p[k] -= step_size * m[k] / (std::sqrt(second) * inv_sqrt_bias2 + eps);
            }
        }
    }

    double lr() const override { return options_.lr(); }
    /// @throws value_error for a negative or NaN lr.
    void set_lr(double lr) override {
        check_lr(name(), lr);
        options_.lr(lr);
    }
    /// beta1, the momentum OneCycleLR cycles.
    bool has_momentum() const override { return true; }
    double momentum() const override { return options_.beta1(); }
    /// @throws value_error when beta1 is outside [0, 1) or NaN.
    void set_momentum(double beta1) override {
        NANOTORCH_CHECK(beta1 >= 0.0 && beta1 < 1.0, value_error, name(), ": invalid beta1 ", beta1);
        options_.betas(beta1, options_.beta2());
    }
    const BasicAdamOptions<Decoupled>& options() const { return options_; }

protected:
    /// @throws value_error as Optimizer's constructor, or for lr < 0, eps < 0, a beta outside
    ///   [0, 1) or weight_decay < 0 (NaN counts as invalid).
    AdamBase(std::vector<Tensor> params, const BasicAdamOptions<Decoupled>& options)
        : Optimizer(std::move(params)), options_(options) {
        check_lr(name(), options_.lr());
        NANOTORCH_CHECK(options_.eps() >= 0.0, value_error, name(), ": invalid eps ", options_.eps());
        NANOTORCH_CHECK(options_.beta1() >= 0.0 && options_.beta1() < 1.0, value_error, name(),
                        ": invalid beta1 ", options_.beta1());
        NANOTORCH_CHECK(options_.beta2() >= 0.0 && options_.beta2() < 1.0, value_error, name(),
                        ": invalid beta2 ", options_.beta2());
        NANOTORCH_CHECK(options_.weight_decay() >= 0.0, value_error, name(), ": invalid weight_decay ",
                        options_.weight_decay());
        exp_avg_.resize(params_.size());
        exp_avg_sq_.resize(params_.size());
        max_exp_avg_sq_.resize(params_.size());
        steps_.assign(params_.size(), 0);
    }

private:
    static const char* name() { return Decoupled ? "AdamW" : "Adam"; }

    BasicAdamOptions<Decoupled> options_;
    std::vector<Tensor> exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
    std::vector<std::int64_t> steps_;
};

}  // namespace detail

class Adam : public detail::AdamBase<false> {
public:
    /// @throws value_error as Optimizer's constructor, or for lr < 0, eps < 0, a beta outside
    ///   [0, 1) or weight_decay < 0 (NaN counts as invalid).
    Adam(std::vector<Tensor> params, AdamOptions options = {}) : AdamBase(std::move(params), options) {}
};

}  // namespace nanotorch::optim
