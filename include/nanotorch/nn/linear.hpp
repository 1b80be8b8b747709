// nanotorch/nn/linear.hpp — Linear: y = x·Wᵀ + b, with PyTorch's default initialisation.
#pragma once

#include <cmath>
#include <string>

#include <nanotorch/core/tensor.hpp>
#include <nanotorch/nn/init.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/ops/linalg.hpp>

namespace nanotorch::nn {

class LinearOptions {
public:
    LinearOptions(std::int64_t in_features, std::int64_t out_features) : in_(in_features), out_(out_features) {}
    LinearOptions& bias(bool v) { bias_ = v; return *this; }
    std::int64_t in_features() const { return in_; }
    std::int64_t out_features() const { return out_; }
    bool bias() const { return bias_; }

private:
    std::int64_t in_, out_;
    bool bias_ = true;
};

/// Applies x·Wᵀ + b to the last dimension. weight [out, in], bias [out].
class LinearImpl : public Module {
public:
    /// Weight and bias drawn from `gen` (see reset_parameters).
    /// @throws value_error when a feature count is not positive or the weight would have more
    ///   than 2^40 elements.
    LinearImpl(std::int64_t in_features, std::int64_t out_features, Generator& gen = default_generator())
        : LinearImpl(LinearOptions(in_features, out_features), gen) {}
    /// @throws as above.
    explicit LinearImpl(const LinearOptions& options, Generator& gen = default_generator()) : options_(options) {
        NANOTORCH_CHECK(options.in_features() > 0 && options.out_features() > 0, value_error,
                        "Linear: feature counts must be positive, got ", options.in_features(), " -> ",
                        options.out_features());
        weight = register_parameter("weight", empty({options.out_features(), options.in_features()}));
        if (options.bias()) bias = register_parameter("bias", empty({options.out_features()}));
        reset_parameters(gen);
    }

    /// PyTorch's defaults: weight ~ kaiming_uniform(a = √5) = U(±1/√in), bias ~ U(±1/√in).
    /// Throws only if `weight` was replaced by a tensor kaiming_uniform_ refuses.
    void reset_parameters(Generator& gen = default_generator()) {
        init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
        if (bias.defined()) {
            const float bound = 1.0f / std::sqrt(static_cast<float>(options_.in_features()));
            init::uniform_(bias, -bound, bound, gen);
        }
    }

    /// linear(x, weight, bias): x [..., in] -> [..., out].
    /// @throws shape_error when x is 0-D or its last dim is not in_features (see linear()).
    Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }
    std::string type_name() const override { return "Linear"; }
    std::string extra_repr() const override {
        return "in_features=" + std::to_string(options_.in_features()) +
               ", out_features=" + std::to_string(options_.out_features()) +
               ", bias=" + (options_.bias() ? "true" : "false");
    }
    const LinearOptions& options() const { return options_; }

    Tensor weight;
    Tensor bias;  // undefined when options.bias() is false

private:
    LinearOptions options_;
};
NANOTORCH_MODULE(Linear);

}  // namespace nanotorch::nn
