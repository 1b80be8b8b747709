// nanotorch/nn/conv.hpp — Conv2d over NCHW input, with PyTorch's default initialisation.
#pragma once

#include <cmath>
#include <string>

#include <nanotorch/core/tensor.hpp>
#include <nanotorch/nn/init.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/ops/conv.hpp>

namespace nanotorch::nn {

class Conv2dOptions {
public:
    Conv2dOptions(std::int64_t in_channels, std::int64_t out_channels, Pair2d kernel_size)
        : in_(in_channels), out_(out_channels), kernel_(kernel_size) {}
    Conv2dOptions& stride(Pair2d v) { stride_ = v; return *this; }
    Conv2dOptions& padding(Pair2d v) { padding_ = v; return *this; }
    Conv2dOptions& dilation(Pair2d v) { dilation_ = v; return *this; }
    /// Grouped convolution: in and out channels split into `v` groups (v == in_channels is
    /// depthwise). Both channel counts must be divisible by v.
    Conv2dOptions& groups(std::int64_t v) { groups_ = v; return *this; }
    Conv2dOptions& bias(bool v) { bias_ = v; return *this; }
    std::int64_t in_channels() const { return in_; }
    std::int64_t out_channels() const { return out_; }
    const Pair2d& kernel_size() const { return kernel_; }
    const Pair2d& stride() const { return stride_; }
    const Pair2d& padding() const { return padding_; }
    const Pair2d& dilation() const { return dilation_; }
    std::int64_t groups() const { return groups_; }
    bool bias() const { return bias_; }

private:
    std::int64_t in_, out_;
    Pair2d kernel_;
    Pair2d stride_ = 1;
    Pair2d padding_ = 0;
    Pair2d dilation_ = 1;
    std::int64_t groups_ = 1;
    bool bias_ = true;
};

/// 2-D convolution. weight [out, in / groups, kH, kW], bias [out].
/// Example: nn::Conv2d(nn::Conv2dOptions(32, 32, 3).padding(1).groups(32)) (depthwise 3×3).
class Conv2dImpl : public Module {
public:
    /// Weight and bias drawn from `gen` (see reset_parameters). Stride, padding and dilation are
    /// checked by forward, not here.
    /// @throws value_error when a channel count or kernel side is not positive, groups < 1, or
    ///   in_channels or out_channels is not divisible by groups.
    Conv2dImpl(std::int64_t in_channels, std::int64_t out_channels, Pair2d kernel_size,
               Generator& gen = default_generator())
        : Conv2dImpl(Conv2dOptions(in_channels, out_channels, kernel_size), gen) {}
    /// @throws as above.
    explicit Conv2dImpl(const Conv2dOptions& options, Generator& gen = default_generator()) : options_(options) {
        const auto& k = options.kernel_size();
        NANOTORCH_CHECK(options.in_channels() > 0 && options.out_channels() > 0 && k.h > 0 && k.w > 0, value_error,
                        "Conv2d: channels and kernel size must be positive, got in=", options.in_channels(),
                        " out=", options.out_channels(), " kernel=", k);
        const std::int64_t g = options.groups();
        NANOTORCH_CHECK(g >= 1, value_error, "Conv2d: groups must be >= 1, got ", g);
        NANOTORCH_CHECK(options.in_channels() % g == 0, value_error, "Conv2d: in_channels=", options.in_channels(),
                        " is not divisible by groups=", g);
        NANOTORCH_CHECK(options.out_channels() % g == 0, value_error, "Conv2d: out_channels=",
                        options.out_channels(), " is not divisible by groups=", g);
        weight = register_parameter("weight", empty({options.out_channels(), options.in_channels() / g, k.h, k.w}));
        if (options.bias()) bias = register_parameter("bias", empty({options.out_channels()}));
        reset_parameters(gen);
    }

    /// PyTorch's defaults: weight ~ kaiming_uniform(a = √5) = U(±1/√fan_in), bias ~ U(±1/√fan_in),
    /// fan_in = (in_channels / groups)·kH·kW. Throws only if `weight` was replaced by a tensor kaiming_uniform_
    /// refuses.
    void reset_parameters(Generator& gen = default_generator()) {
        init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
        if (bias.defined()) {
            const auto fan_in = init::fan_in_and_fan_out(weight).first;
            const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
            init::uniform_(bias, -bound, bound, gen);
        }
    }

    /// conv2d(x, weight, bias, stride, padding, dilation, groups).
    /// @throws shape_error / value_error as conv2d(): wrong rank or channel count, an input
    ///   smaller than the dilated kernel, a stride or dilation < 1, a negative padding.
    Tensor forward(const Tensor& x) override {
        return conv2d(x, weight, bias, options_.stride(), options_.padding(), options_.dilation(), options_.groups());
    }
    std::string type_name() const override { return "Conv2d"; }
    std::string extra_repr() const override {
        auto pair = [](const Pair2d& p) { return "[" + std::to_string(p.h) + ", " + std::to_string(p.w) + "]"; };
        std::string s = std::to_string(options_.in_channels()) + ", " + std::to_string(options_.out_channels()) +
                        ", kernel_size=" + pair(options_.kernel_size()) + ", stride=" + pair(options_.stride());
        if (options_.padding() != Pair2d(0)) s += ", padding=" + pair(options_.padding());
        if (options_.dilation() != Pair2d(1)) s += ", dilation=" + pair(options_.dilation());
        if (options_.groups() != 1) s += ", groups=" + std::to_string(options_.groups());
        if (!options_.bias()) s += ", bias=false";
        return s;
    }
    const Conv2dOptions& options() const { return options_; }

    Tensor weight;
    Tensor bias;  // undefined when options.bias() is false

private:
    Conv2dOptions options_;
};
NANOTORCH_MODULE(Conv2d);

}  // namespace nanotorch::nn
