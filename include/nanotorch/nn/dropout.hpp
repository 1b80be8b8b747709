// nanotorch/nn/dropout.hpp — Dropout and Dropout2d modules: active in train(), identity in eval().
//
// Masks come from the calling thread's default generator unless a Generator is given at
// construction (it must then outlive the module), so manual_seed() reproduces a run exactly.
// Constructors throw value_error when p is not in [0, 1).
#pragma once

#include <string>

#include <nanotorch/nn/module.hpp>
#include <nanotorch/ops/dropout.hpp>

namespace nanotorch::nn {

class DropoutImpl : public Module {
public:
    /// @throws value_error when p is not in [0, 1).
    explicit DropoutImpl(double p = 0.5, Generator* gen = nullptr) : p_(p), gen_(gen) {
        NANOTORCH_CHECK(p >= 0.0 && p < 1.0, value_error, "Dropout: p must be in [0, 1), got ", p);
    }
    /// dropout(x, p, is_training()). @throws unsupported_error only while traced for ONNX export in
    ///   training mode (export_onnx switches to eval itself).
    Tensor forward(const Tensor& x) override {
        return dropout(x, static_cast<float>(p_), is_training(), gen_ ? *gen_ : default_generator());
    }
    std::string type_name() const override { return "Dropout"; }
    std::string extra_repr() const override { return ::nanotorch::detail::str_cat("p=", p_); }
    double p() const { return p_; }

private:
    double p_;
    Generator* gen_;
};
NANOTORCH_MODULE(Dropout);

/// Zeroes whole channels of an N×C×H×W (or C×H×W) input.
class Dropout2dImpl : public Module {
public:
    /// @throws value_error when p is not in [0, 1).
    explicit Dropout2dImpl(double p = 0.5, Generator* gen = nullptr) : p_(p), gen_(gen) {
        NANOTORCH_CHECK(p >= 0.0 && p < 1.0, value_error, "Dropout2d: p must be in [0, 1), got ", p);
    }
    /// dropout2d(x, p, is_training()). @throws shape_error when x is not 3-D or 4-D (in eval mode
    ///   too); unsupported_error as Dropout's forward.
    Tensor forward(const Tensor& x) override {
        return dropout2d(x, static_cast<float>(p_), is_training(), gen_ ? *gen_ : default_generator());
    }
    std::string type_name() const override { return "Dropout2d"; }
    std::string extra_repr() const override { return ::nanotorch::detail::str_cat("p=", p_); }
    double p() const { return p_; }

private:
    double p_;
    Generator* gen_;
};
NANOTORCH_MODULE(Dropout2d);

}  // namespace nanotorch::nn
