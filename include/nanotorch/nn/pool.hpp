// nanotorch/nn/pool.hpp — MaxPool2d and AvgPool2d modules (stride defaults to the kernel size),
// and AdaptiveAvgPool2d.
//
// Construction never throws; the options are checked by forward, which throws what max_pool2d /
// avg_pool2d / adaptive_avg_pool2d throw: shape_error for an input that is not 3-D or 4-D or is
// smaller than the window, value_error for a kernel or stride < 1, a negative padding, padding >
// kernel / 2, or an adaptive output size < 1.
#pragma once

#include <array>
#include <optional>
#include <string>

#include <nanotorch/nn/module.hpp>
#include <nanotorch/ops/conv.hpp>

namespace nanotorch::nn {

class Pool2dOptions {
public:
    Pool2dOptions(Pair2d kernel_size) : kernel_(kernel_size) {}  // implicit: MaxPool2d(Pair2d(2, 3))
    // Implicit too: MaxPool2d(2) needs int -> options in ONE user-defined conversion
    // (int -> Pair2d -> Pool2dOptions would be two, which C++ does not chain).
    Pool2dOptions(std::int64_t kernel_size) : kernel_(kernel_size) {}
    Pool2dOptions& stride(Pair2d v) { stride_ = v; return *this; }
    Pool2dOptions& padding(Pair2d v) { padding_ = v; return *this; }
    /// AvgPool2d only: whether zero padding counts in the divisor (PyTorch's default: true).
    Pool2dOptions& count_include_pad(bool v) { count_include_pad_ = v; return *this; }
    /// Round the output size up (PyTorch's ceil_mode; default false).
    Pool2dOptions& ceil_mode(bool v) { ceil_mode_ = v; return *this; }
    const Pair2d& kernel_size() const { return kernel_; }
    Pair2d stride() const { return stride_ ? *stride_ : kernel_; }
    const Pair2d& padding() const { return padding_; }
    bool count_include_pad() const { return count_include_pad_; }
    bool ceil_mode() const { return ceil_mode_; }

private:
    Pair2d kernel_;
    std::optional<Pair2d> stride_;
    Pair2d padding_ = 0;
    bool count_include_pad_ = true;
    bool ceil_mode_ = false;
};
using MaxPool2dOptions = Pool2dOptions;
using AvgPool2dOptions = Pool2dOptions;

namespace detail {
inline std::string pool_repr(const Pool2dOptions& o) {
    auto pair = [](const Pair2d& p) { return "[" + std::to_string(p.h) + ", " + std::to_string(p.w) + "]"; };
    return "kernel_size=" + pair(o.kernel_size()) + ", stride=" + pair(o.stride()) + ", padding=" + pair(o.padding()) +
           (o.ceil_mode() ? ", ceil_mode=true" : "");
}
}  // namespace detail

class MaxPool2dImpl : public Module {
public:
    MaxPool2dImpl(const Pool2dOptions& options) : options_(options) {}
    Tensor forward(const Tensor& x) override {
        return max_pool2d(x, options_.kernel_size(), options_.stride(), options_.padding(), 1, options_.ceil_mode());
    }
    std::string type_name() const override { return "MaxPool2d"; }
    std::string extra_repr() const override { return detail::pool_repr(options_); }
    const Pool2dOptions& options() const { return options_; }

private:
    Pool2dOptions options_;
};
NANOTORCH_MODULE(MaxPool2d);

class AvgPool2dImpl : public Module {
public:
    AvgPool2dImpl(const Pool2dOptions& options) : options_(options) {}
    Tensor forward(const Tensor& x) override {
        return avg_pool2d(x, options_.kernel_size(), options_.stride(), options_.padding(), options_.count_include_pad(),
                          options_.ceil_mode());
    }
    std::string type_name() const override { return "AvgPool2d"; }
    std::string extra_repr() const override { return detail::pool_repr(options_); }
    const Pool2dOptions& options() const { return options_; }

private:
    Pool2dOptions options_;
};
NANOTORCH_MODULE(AvgPool2d);

/// AdaptiveAvgPool2d's options: its output size, AdaptiveAvgPool2dOptions({5, 7}) or (7).
class AdaptiveAvgPool2dOptions {
public:
    AdaptiveAvgPool2dOptions(std::int64_t both) : output_size_(both) {}
    AdaptiveAvgPool2dOptions(const std::array<std::int64_t, 2>& hw) : output_size_(hw) {}
    const Pair2d& output_size() const { return output_size_; }

private:
    Pair2d output_size_;
};

/// Average pooling to a fixed output size: AdaptiveAvgPool2d(1) is global average pooling,
/// AdaptiveAvgPool2d({5, 7}) any other size (see adaptive_avg_pool2d for the windows and export).
class AdaptiveAvgPool2dImpl : public Module {
public:
    AdaptiveAvgPool2dImpl(std::int64_t output_size) : output_size_(output_size) {}  // AdaptiveAvgPool2d(1)
    AdaptiveAvgPool2dImpl(std::int64_t out_h, std::int64_t out_w) : output_size_(out_h, out_w) {}
    AdaptiveAvgPool2dImpl(Pair2d output_size) : output_size_(output_size) {}
    AdaptiveAvgPool2dImpl(const AdaptiveAvgPool2dOptions& options) : output_size_(options.output_size()) {}
    Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, output_size_); }
    std::string type_name() const override { return "AdaptiveAvgPool2d"; }
    std::string extra_repr() const override {
        return "output_size=[" + std::to_string(output_size_.h) + ", " + std::to_string(output_size_.w) + "]";
    }
    const Pair2d& output_size() const { return output_size_; }

private:
    Pair2d output_size_;
};
NANOTORCH_MODULE(AdaptiveAvgPool2d);

}  // namespace nanotorch::nn
