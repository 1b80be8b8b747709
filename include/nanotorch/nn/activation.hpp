// nanotorch/nn/activation.hpp — parameter-free modules: ReLU, Sigmoid, Tanh, Softmax,
// LogSoftmax and Flatten, so that Sequential can hold every step of a network.
//
// Construction never throws (a dim is checked against the input in forward). forward throws
// nothing of its own for ReLU, Sigmoid and Tanh (only value_error for an undefined input);
// Softmax, LogSoftmax and Flatten throw value_error when a dim is out of range for the input,
// and Flatten also when start_dim comes after end_dim.
#pragma once

#include <string>

#include <nanotorch/nn/module.hpp>
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
