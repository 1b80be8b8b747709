// nanotorch/nn/activation.hpp — parameter-free modules: ReLU, Sigmoid, Tanh, LeakyReLU, ELU, GELU,
// SiLU, Hardswish, Hardsigmoid, Softplus, Softmax, LogSoftmax and Flatten, so that Sequential can
// hold every step of a network. Defaults and reprs are PyTorch's.
//
// Construction throws value_error only for GELU's approximate (not "none"/"tanh") and Softplus's
// beta/threshold (as F::softplus); a dim is checked against the input in forward. forward throws
// nothing of its own for ReLU, Sigmoid and Tanh (only value_error for an undefined input);
// Softmax, LogSoftmax and Flatten throw value_error when a dim is out of range for the input,
// and Flatten also when start_dim comes after end_dim.
#pragma once

#include <string>
#include <utility>  // std::move

#include <nanotorch/nn/module.hpp>
#include <nanotorch/ops/activation.hpp>
#include <nanotorch/ops/elementwise.hpp>
#include <nanotorch/ops/loss.hpp>
#include <nanotorch/ops/shape.hpp>

namespace nanotorch::nn {

class ReLUImpl : public Module {
public:
    ReLUImpl() = default;
    Tensor forward(const Tensor& x) override { return relu(x); }
    std::string type_name() const override { return "ReLU"; }
};
NANOTORCH_MODULE(ReLU);

class SigmoidImpl : public Module {
public:
    SigmoidImpl() = default;
    Tensor forward(const Tensor& x) override { return sigmoid(x); }
    std::string type_name() const override { return "Sigmoid"; }
};
NANOTORCH_MODULE(Sigmoid);

class TanhImpl : public Module {
public:
    TanhImpl() = default;
    Tensor forward(const Tensor& x) override { return nanotorch::tanh(x); }
    std::string type_name() const override { return "Tanh"; }
};
NANOTORCH_MODULE(Tanh);

class LeakyReLUImpl : public Module {
public:
    explicit LeakyReLUImpl(float negative_slope = 0.01f) : slope_(negative_slope) {}
    Tensor forward(const Tensor& x) override { return leaky_relu(x, slope_); }
    std::string type_name() const override { return "LeakyReLU"; }
    std::string extra_repr() const override { return ::nanotorch::detail::str_cat("negative_slope=", slope_); }

private:
    float slope_;
};
NANOTORCH_MODULE(LeakyReLU);

class ELUImpl : public Module {
public:
    explicit ELUImpl(float alpha = 1.0f) : alpha_(alpha) {}
    Tensor forward(const Tensor& x) override { return elu(x, alpha_); }
    std::string type_name() const override { return "ELU"; }
    std::string extra_repr() const override { return ::nanotorch::detail::str_cat("alpha=", alpha_); }

private:
    float alpha_;
};
NANOTORCH_MODULE(ELU);

/// GELU(approximate = "none" | "tanh"). @throws value_error for any other approximate.
class GELUImpl : public Module {
public:
    explicit GELUImpl(std::string approximate = "none") : approximate_(std::move(approximate)) {
        gelu(empty({0}), approximate_);  // validates approximate now, with gelu's message
    }
    Tensor forward(const Tensor& x) override { return gelu(x, approximate_); }
    std::string type_name() const override { return "GELU"; }
    std::string extra_repr() const override { return "approximate='" + approximate_ + "'"; }

private:
    std::string approximate_;
};
NANOTORCH_MODULE(GELU);

class SiLUImpl : public Module {
public:
    SiLUImpl() = default;
    Tensor forward(const Tensor& x) override { return silu(x); }
    std::string type_name() const override { return "SiLU"; }
};
NANOTORCH_MODULE(SiLU);

class HardswishImpl : public Module {
public:
    HardswishImpl() = default;
    Tensor forward(const Tensor& x) override { return hardswish(x); }
    std::string type_name() const override { return "Hardswish"; }
};
NANOTORCH_MODULE(Hardswish);

class HardsigmoidImpl : public Module {
public:
    HardsigmoidImpl() = default;
    Tensor forward(const Tensor& x) override { return hardsigmoid(x); }
    std::string type_name() const override { return "Hardsigmoid"; }
};
NANOTORCH_MODULE(Hardsigmoid);

/// Softplus(beta = 1, threshold = 20). @throws value_error as F::softplus does for bad arguments.
class SoftplusImpl : public Module {
public:
    explicit SoftplusImpl(float beta = 1.0f, float threshold = 20.0f) : beta_(beta), threshold_(threshold) {
        softplus(empty({0}), beta_, threshold_);  // validates the arguments now, with softplus's message
    }
    Tensor forward(const Tensor& x) override { return softplus(x, beta_, threshold_); }
    std::string type_name() const override { return "Softplus"; }
    std::string extra_repr() const override {
        return ::nanotorch::detail::str_cat("beta=", beta_, ", threshold=", threshold_);
    }

private:
    float beta_, threshold_;
};
NANOTORCH_MODULE(Softplus);

class SoftmaxImpl : public Module {
public:
    explicit SoftmaxImpl(std::int64_t dim) : dim_(dim) {}
    Tensor forward(const Tensor& x) override { return softmax(x, dim_); }
    std::string type_name() const override { return "Softmax"; }
    std::string extra_repr() const override { return "dim=" + std::to_string(dim_); }

private:
    std::int64_t dim_;
};
NANOTORCH_MODULE(Softmax);

class LogSoftmaxImpl : public Module {
public:
    explicit LogSoftmaxImpl(std::int64_t dim) : dim_(dim) {}
    Tensor forward(const Tensor& x) override { return log_softmax(x, dim_); }
    std::string type_name() const override { return "LogSoftmax"; }
    std::string extra_repr() const override { return "dim=" + std::to_string(dim_); }

private:
    std::int64_t dim_;
};
NANOTORCH_MODULE(LogSoftmax);

/// Flattens dims start_dim..end_dim (default: all but the batch dimension).
class FlattenImpl : public Module {
public:
    explicit FlattenImpl(std::int64_t start_dim = 1, std::int64_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
    Tensor forward(const Tensor& x) override { return flatten(x, start_, end_); }
    std::string type_name() const override { return "Flatten"; }
    std::string extra_repr() const override {
        return "start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_);
    }

private:
    std::int64_t start_, end_;
};
NANOTORCH_MODULE(Flatten);

}  // namespace nanotorch::nn
