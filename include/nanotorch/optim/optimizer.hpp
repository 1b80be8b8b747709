// nanotorch/optim/optimizer.hpp — the Optimizer base: a parameter list, zero_grad(), step().
//
// Optimizers take a std::vector<Tensor> (from Module::parameters()) and keep any per-parameter
// state in vectors indexed like that list, never keyed by pointers, so state survives moves
// and is saved/compared in a stable order. Updates run under NoGradGuard and only touch
// parameters whose .grad is defined (like PyTorch, a parameter without a gradient is skipped).
// state()/load_state() save and restore that per-parameter state (for training checkpoints,
// nn/checkpoint.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::optim {

/// What an optimizer needs to continue exactly where it stopped (PyTorch's optimizer
/// state_dict() for one parameter group). Build the optimizer with the same parameters and
/// options, then load_state().
struct OptimizerState {
    std::string type;  ///< "SGD", "Adam", "AdamW"
    /// Every option by name, in a fixed order. lr and the momentum (SGD "momentum", Adam/AdamW
    /// "beta1", which schedulers change) are restored; the others must equal the optimizer's.
    std::vector<std::pair<std::string, double>> options;
    /// Per-parameter buffers named "<buffer>.<parameter index>" ("momentum_buffer.3",
    /// "exp_avg.0"); a buffer not yet created (no step taken) is absent.
    std::vector<std::pair<std::string, Tensor>> tensors;
    /// Steps each parameter took (Adam, AdamW: one per parameter); empty for SGD.
    std::vector<std::int64_t> steps;
};

class Optimizer {
public:
    /// @throws value_error when a parameter is undefined, not a leaf that requires grad, or not
    ///   contiguous (the message gives its index).
    explicit Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
        for (std::size_t i = 0; i < params_.size(); ++i) {
            NANOTORCH_CHECK(params_[i].defined(), value_error, "optimizer: parameter ", i, " is undefined");
            NANOTORCH_CHECK(params_[i].is_leaf() && params_[i].requires_grad(), value_error,
                            "optimizer: parameter ", i, " of shape ", shape_str(params_[i].shape()),
                            " is not a leaf that requires grad");
            NANOTORCH_CHECK(params_[i].is_contiguous(), value_error, "optimizer: parameter ", i,
                            " is not contiguous");
        }
    }
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    /// Drops every parameter's gradient (the next backward() starts from zero).
    void zero_grad() {
        for (auto& p : params_) p.zero_grad();
    }
    /// Applies one update from the current gradients.
    /// @throws shape_error (in every built-in optimizer) when a parameter's .grad has another
    ///   shape than the parameter (possible only through Tensor::set_grad).
    virtual void step() = 0;

    /// Learning rate, read and written by schedulers.
    virtual double lr() const = 0;
    /// @throws value_error (in every built-in optimizer) when lr is negative or NaN.
    virtual void set_lr(double lr) = 0;

    /// Whether the optimizer has a momentum that OneCycleLR can cycle: SGD's `momentum`, Adam's
    /// and AdamW's beta1 (PyTorch cycles group['momentum'] or group['betas'][0] the same way).
    virtual bool has_momentum() const { return false; }
    /// @throws unsupported_error when has_momentum() is false.
    virtual double momentum() const { throw unsupported_error("optimizer: this optimizer has no momentum"); }
    /// @throws unsupported_error when has_momentum() is false; value_error (built-in optimizers)
    ///   for a value the optimizer's constructor would refuse.
    virtual void set_momentum(double) { throw unsupported_error("optimizer: this optimizer has no momentum"); }

    const std::vector<Tensor>& parameters() const { return params_; }

    /// The optimizer's name in OptimizerState::type.
    virtual std::string type_name() const { return "Optimizer"; }
    /// A copy of the resumable state (buffers are cloned).
    /// @throws unsupported_error for an optimizer without state support (none built in).
    virtual OptimizerState state() const {
        throw unsupported_error("optimizer: " + type_name() + " cannot save its state");
    }
    /// Restores a state from state() of an optimizer built the same way; on any error nothing
    /// changes.
    /// @throws value_error naming what differs: another type, an option that is not restored and
    ///   differs, an invalid lr or momentum, an unknown or duplicate buffer name, a parameter
    ///   index out of range, inconsistent buffers or step counts; shape_error for a buffer whose
    ///   shape is not its parameter's; unsupported_error as state().
    virtual void load_state(const OptimizerState&) {
        throw unsupported_error("optimizer: " + type_name() + " cannot load a state");
    }

protected:
    /// The checks every built-in load_state shares: type; options (same names and order;
    /// those in `restored` may differ, the rest must be equal); every tensor named
    /// "<one of buffers>.<index < parameter count>", at most once, of its parameter's shape.
    /// Returns, per buffer name, which parameters have it.
    std::map<std::string, std::vector<bool>> check_state_common(const OptimizerState& st,
                                                                const std::vector<std::pair<std::string, double>>& own,
                                                                const std::vector<std::string>& restored,
                                                                const std::vector<std::string>& buffers) const {
        const std::string who = type_name() + "::load_state";
        NANOTORCH_CHECK(st.type == type_name(), value_error, who, ": the state is of a ", st.type,
                        " optimizer, not ", type_name());
        NANOTORCH_CHECK(st.options.size() == own.size(), value_error, who, ": the state has ", st.options.size(),
                        " options, ", type_name(), " has ", own.size());
        for (std::size_t i = 0; i < own.size(); ++i) {
            NANOTORCH_CHECK(st.options[i].first == own[i].first, value_error, who, ": option ", i, " is '",
                            st.options[i].first, "' in the state, '", own[i].first, "' here");
            bool is_restored = false;
            for (const auto& r : restored) is_restored = is_restored || r == own[i].first;
            NANOTORCH_CHECK(is_restored || st.options[i].second == own[i].second, value_error, who, ": option '",
                            own[i].first, "' is ", st.options[i].second, " in the state but ", own[i].second,
                            " in this optimizer (build it with the options it was saved with)");
        }
        std::map<std::string, std::vector<bool>> present;
        for (const auto& b : buffers) present[b].assign(params_.size(), false);
        for (const auto& [name, t] : st.tensors) {
            const auto dot = name.rfind('.');
            auto it = dot == std::string::npos ? present.end() : present.find(name.substr(0, dot));
            NANOTORCH_CHECK(it != present.end(), value_error, who, ": unknown buffer '", name, "'");
            const std::string index = name.substr(dot + 1);
            std::size_t i = 0;
            bool ok = !index.empty() && index.size() <= 9 && (index == "0" || index[0] != '0');
            for (char c : index) {
                ok = ok && c >= '0' && c <= '9';
                if (ok) i = i * 10 + static_cast<std::size_t>(c - '0');
            }
            NANOTORCH_CHECK(ok && i < params_.size(), value_error, who, ": buffer '", name,
                            "' does not name one of the ", params_.size(), " parameters");
            NANOTORCH_CHECK(!it->second[i], value_error, who, ": buffer '", name, "' appears twice");
            NANOTORCH_CHECK(t.defined() && t.shape() == params_[i].shape(), shape_error, who, ": buffer '", name,
                            "' has shape ", t.defined() ? shape_str(t.shape()) : "undefined", " but parameter ", i,
                            " has shape ", shape_str(params_[i].shape()));
            it->second[i] = true;
        }
        return present;
    }

    /// Sets lr and momentum together: if either is refused, both are left as they were.
    void restore_rates(double lr, double momentum) {
        const double old_lr = this->lr(), old_momentum = this->momentum();
        try {
            set_lr(lr);
            set_momentum(momentum);
        } catch (...) {
            set_lr(old_lr);
            set_momentum(old_momentum);
            throw;
        }
    }

    /// A contiguous copy of a buffer, with no autograd history.
    static Tensor copy_buffer(const Tensor& t) {
        Tensor c = empty(t.shape());
        t.copy_strided_to(c.data_ptr());
        return c;
    }


    /// @throws value_error naming `who` when lr is negative or NaN (the check every constructor
    ///   and set_lr share).
    static void check_lr(const char* who, double lr) {
        NANOTORCH_CHECK(lr >= 0.0, value_error, who, ": invalid learning rate ", lr);
    }

    /// The gradient of parameter i as a contiguous tensor, or undefined when it has none.
    Tensor grad_of(std::size_t i) const {
        Tensor g = params_[i].grad();
        if (!g.defined()) return g;
        NANOTORCH_CHECK(g.shape() == params_[i].shape(), shape_error, "optimizer: gradient of shape ",
                        shape_str(g.shape()), " for parameter ", i, " of shape ", shape_str(params_[i].shape()));
        if (g.is_contiguous()) return g;
        Tensor c = empty(g.shape());
        g.copy_strided_to(c.data_ptr());
        return c;
    }

    std::vector<Tensor> params_;
};

}  // namespace nanotorch::optim
