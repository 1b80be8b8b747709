// nanotorch/optim/optimizer.hpp — the Optimizer base: a parameter list, zero_grad(), step().
//
// Optimizers take a std::vector<Tensor> (from Module::parameters()) and keep any per-parameter
// state in vectors indexed like that list, never keyed by pointers, so state survives moves
// and is saved/compared in a stable order. Updates run under NoGradGuard and only touch
// parameters whose .grad is defined (like PyTorch, a parameter without a gradient is skipped).
#pragma once

#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::optim {

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

protected:
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
