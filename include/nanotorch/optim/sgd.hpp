// nanotorch/optim/sgd.hpp — stochastic gradient descent with momentum, dampening, weight decay
// and Nesterov, using PyTorch's exact update rule (torch.optim.SGD):
//
//   d = g + weight_decay·p
//   if momentum ≠ 0:  b = d on the first step, else b = momentum·b + (1 − dampening)·d
//                     d = d + momentum·b (nesterov) or d = b
//   p = p − lr·d
//
// Momentum buffers live in a vector parallel to the parameter list. The arithmetic runs
// through the SIMD kernels (axpy/axpby), elementwise, so it is the same for any thread count.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/pointwise.hpp>
#include <nanotorch/optim/optimizer.hpp>

namespace nanotorch::optim {

/// Builder-style options: SGDOptions(0.01).momentum(0.5).
class SGDOptions {
public:
    SGDOptions(double lr) : lr_(lr) {}  // implicit on purpose: SGD(params, 0.01) reads naturally
    SGDOptions& lr(double v) { lr_ = v; return *this; }
    SGDOptions& momentum(double v) { momentum_ = v; return *this; }
    SGDOptions& dampening(double v) { dampening_ = v; return *this; }
    SGDOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
    SGDOptions& nesterov(bool v) { nesterov_ = v; return *this; }
    double lr() const { return lr_; }
    double momentum() const { return momentum_; }
    double dampening() const { return dampening_; }
    double weight_decay() const { return weight_decay_; }
    bool nesterov() const { return nesterov_; }

private:
    double lr_;
    double momentum_ = 0.0;
    double dampening_ = 0.0;
    double weight_decay_ = 0.0;
    bool nesterov_ = false;
};

class SGD : public Optimizer {
public:
    /// Throws value_error for a negative lr, momentum or weight decay, or nesterov without
    /// momentum / with dampening (PyTorch's rules).
    SGD(std::vector<Tensor> params, SGDOptions options) : Optimizer(std::move(params)), options_(options) {
        check_lr("SGD", options_.lr());
        NANOTORCH_CHECK(options_.momentum() >= 0.0, value_error, "SGD: invalid momentum ", options_.momentum());
        NANOTORCH_CHECK(options_.weight_decay() >= 0.0, value_error, "SGD: invalid weight_decay ",
                        options_.weight_decay());
        NANOTORCH_CHECK(!options_.nesterov() || (options_.momentum() > 0.0 && options_.dampening() == 0.0),
                        value_error, "SGD: nesterov momentum requires a momentum and zero dampening");
        momentum_buffers_.resize(params_.size());
    }

    /// One SGD update of every parameter with a gradient. @throws as Optimizer::step.
    void step() override {
        NoGradGuard no_grad;
        const float lr = static_cast<float>(options_.lr());
        const float mom = static_cast<float>(options_.momentum());
        const float one_minus_damp = static_cast<float>(1.0 - options_.dampening());  // in double, as PyTorch
        const float wd = static_cast<float>(options_.weight_decay());
        for (std::size_t i = 0; i < params_.size(); ++i) {
            const Tensor g = grad_of(i);
            if (!g.defined()) continue;
            float* p = params_[i].data_ptr();
            const std::int64_t n = params_[i].numel();
            const float* d = g.data_ptr();
            if (wd != 0.0f) {  // d = g + wd * p, in a scratch copy so .grad is left untouched
                scratch_.assign(g.data_ptr(), g.data_ptr() + n);
                kernels::parallel_axpy(scratch_.data(), wd, p, n);
                d = scratch_.data();
            }
            if (mom != 0.0f) {
                Tensor& buf = momentum_buffers_[i];
                if (!buf.defined()) {
                    buf = empty(params_[i].shape());
                    std::copy(d, d + n, buf.data_ptr());
                } else {
                    kernels::parallel_axpby(buf.data_ptr(), one_minus_damp, d, mom, n);  // b = mom*b + (1-damp)*d
                }
                if (options_.nesterov()) {
                    if (d != scratch_.data()) scratch_.assign(d, d + n);
                    kernels::parallel_axpy(scratch_.data(), mom, buf.data_ptr(), n);  // d = d + mom*b
                    d = scratch_.data();
                } else {
                    d = buf.data_ptr();
                }
            }
            kernels::parallel_axpy(p, -lr, d, n);  // p = p - lr*d
        }
    }

    double lr() const override { return options_.lr(); }
    /// @throws value_error for a negative or NaN lr.
    void set_lr(double lr) override {
        check_lr("SGD", lr);
        options_.lr(lr);
    }
    bool has_momentum() const override { return true; }
    double momentum() const override { return options_.momentum(); }
    /// (OneCycleLR's hook.) A buffer built under the old momentum is kept, as in PyTorch.
    /// @throws value_error for a negative or NaN momentum, or 0 with nesterov.
    void set_momentum(double momentum) override {
        NANOTORCH_CHECK(momentum >= 0.0, value_error, "SGD: invalid momentum ", momentum);
        NANOTORCH_CHECK(!options_.nesterov() || momentum > 0.0, value_error,
                        "SGD: nesterov momentum requires a momentum > 0, got ", momentum);
        options_.momentum(momentum);
    }
    const SGDOptions& options() const { return options_; }

    std::string type_name() const override { return "SGD"; }
    /// Options lr, momentum, dampening, weight_decay, nesterov (1 or 0); tensors
    /// "momentum_buffer.<i>".
    OptimizerState state() const override {
        OptimizerState st;
        st.type = type_name();
        st.options = option_values();
        for (std::size_t i = 0; i < momentum_buffers_.size(); ++i)
            if (momentum_buffers_[i].defined())
                st.tensors.emplace_back("momentum_buffer." + std::to_string(i), copy_buffer(momentum_buffers_[i]));
        return st;
    }
    /// @throws as Optimizer::load_state (lr and momentum are restored; SGD keeps no step counts,
    ///   so `steps` must be empty).
    void load_state(const OptimizerState& st) override {
        check_state_common(st, option_values(), {"lr", "momentum"}, {"momentum_buffer"});
        NANOTORCH_CHECK(st.steps.empty(), value_error, "SGD::load_state: SGD keeps no step counts, the state has ",
                        st.steps.size());
        restore_rates(st.options[0].second, st.options[1].second);  // validates both, changes both or neither
        for (auto& b : momentum_buffers_) b = Tensor();
        for (const auto& [name, t] : st.tensors)
            momentum_buffers_[std::stoul(name.substr(name.rfind('.') + 1))] = copy_buffer(t);
    }

    /// Momentum buffer of parameter i (undefined before its first step with momentum).
    /// @throws value_error if i is not the index of a parameter.
    const Tensor& momentum_buffer(std::size_t i) const {
        NANOTORCH_CHECK(i < momentum_buffers_.size(), value_error, "SGD::momentum_buffer: index ", i,
                        " out of range for ", momentum_buffers_.size(), " parameters");
        return momentum_buffers_[i];
    }

private:
    std::vector<std::pair<std::string, double>> option_values() const {
        return {{"lr", options_.lr()},
                {"momentum", options_.momentum()},
                {"dampening", options_.dampening()},
                {"weight_decay", options_.weight_decay()},
                {"nesterov", options_.nesterov() ? 1.0 : 0.0}};
    }

    SGDOptions options_;
    std::vector<Tensor> momentum_buffers_;
    std::vector<float> scratch_;
};

}  // namespace nanotorch::optim
