// nanotorch/nn/init.hpp — parameter initialisers, drawing from an explicit Generator.
//
// The defaults of Linear and Conv2d equal PyTorch's: kaiming_uniform_ with a = √5 for the
// weight, which works out to U(−1/√fan_in, 1/√fan_in), and the same bound for the bias.
// Values are drawn in row-major order, so a seed fixes them exactly. All run outside autograd
// (under a NoGradGuard, so a parameter that requires grad may be filled). Each throws value_error
// for an undefined tensor; other errors are listed per function.
#pragma once

#include <cmath>

#include <nanotorch/config.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/random.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::nn::init {

/// fan_in and fan_out of a weight: [out, in] for Linear, [out, in, kH, kW] for Conv2d.
/// @throws shape_error when w has fewer than 2 dimensions.
inline std::pair<std::int64_t, std::int64_t> fan_in_and_fan_out(const Tensor& w) {
    NANOTORCH_CHECK(w.dim() >= 2, shape_error, "fan_in_and_fan_out: needs at least 2 dimensions, got shape ",
                    shape_str(w.shape()));
    std::int64_t receptive = 1;
    for (std::int64_t d = 2; d < w.dim(); ++d) receptive *= w.size(d);
    return {w.size(1) * receptive, w.size(0) * receptive};
}

/// Fills t with U(lo, hi).
inline void uniform_(Tensor& t, float lo, float hi, Generator& gen = default_generator()) {
    NoGradGuard ng;
    t.for_each_element([&](float& v) { v = gen.uniform(lo, hi); });
}

/// Fills t with N(mean, std²).
inline void normal_(Tensor& t, float mean, float std, Generator& gen = default_generator()) {
    NoGradGuard ng;
    t.for_each_element([&](float& v) { v = mean + std * gen.normal(); });
}

/// Fills t with 0.
inline void zeros_(Tensor& t) {
    NoGradGuard ng;
    t.zero_();
}

/// Fills t with value.
inline void constant_(Tensor& t, float value) {
    NoGradGuard ng;
    t.fill_(value);
}

/// He initialisation for a leaky-ReLU slope `a` (fan_in mode): U(−b, b), b = gain·√(3/fan_in),
/// gain = √(2/(1+a²)). With a = √5 (PyTorch's layer default) b = 1/√fan_in.
/// @throws shape_error when t has fewer than 2 dimensions; value_error when fan_in is 0.
inline void kaiming_uniform_(Tensor& t, double a = 0.0, Generator& gen = default_generator()) {
    const auto fan_in = fan_in_and_fan_out(t).first;
    NANOTORCH_CHECK(fan_in > 0, value_error, "kaiming_uniform_: fan_in is 0 for shape ", shape_str(t.shape()));
    const double gain = std::sqrt(2.0 / (1.0 + a * a));
    const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan_in));
    uniform_(t, static_cast<float>(-bound), static_cast<float>(bound), gen);
}

/// Glorot initialisation: U(−b, b), b = gain·√(6/(fan_in+fan_out)).
/// @throws shape_error when t has fewer than 2 dimensions.
inline void xavier_uniform_(Tensor& t, double gain = 1.0, Generator& gen = default_generator()) {
    const auto [fan_in, fan_out] = fan_in_and_fan_out(t);
    const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    uniform_(t, static_cast<float>(-bound), static_cast<float>(bound), gen);
}

}  // namespace nanotorch::nn::init
