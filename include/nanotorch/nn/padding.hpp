// nanotorch/nn/padding.hpp — padding modules for NCHW (or CHW) images: ZeroPad2d, ConstantPad2d,
// ReflectionPad2d and ReplicationPad2d, as in PyTorch.
//
// The padding is one number (all four sides) or {left, right, top, bottom}, as in PyTorch.
// Construction throws value_error for a padding list of another length; forward throws
// value_error for an input of rank other than 3 or 4, or as F::pad (ops/pad.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nanotorch/error.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/ops/pad.hpp>

namespace nanotorch::nn {

namespace detail {
class Pad2dBase : public Module {
public:
    Pad2dBase(std::vector<std::int64_t> padding, std::string mode, float value, const char* type)
        : pads_(padding.size() == 1 ? std::vector<std::int64_t>(4, padding[0]) : std::move(padding)),
          mode_(std::move(mode)), value_(value), type_(type) {
        NANOTORCH_CHECK(pads_.size() == 4, value_error, type_,
                        ": padding must be one number or {left, right, top, bottom}, got ", pads_.size(), " numbers");
    }
    Tensor forward(const Tensor& x) override {
        NANOTORCH_CHECK(x.dim() == 3 || x.dim() == 4, value_error, type_, ": expected a 3-D or 4-D input, got shape ",
                        shape_str(x.shape()));
        return functional::pad(x, pads_, mode_, value_);
    }
    std::string type_name() const override { return type_; }
    std::string extra_repr() const override {
        std::string s = "(";
        for (std::size_t i = 0; i < pads_.size(); ++i) s += (i ? ", " : "") + std::to_string(pads_[i]);
        return s + ")" + (mode_ == "constant" && type_ != std::string("ZeroPad2d") ? ", value=" + std::to_string(value_) : "");
    }

private:
    std::vector<std::int64_t> pads_;
    std::string mode_;
    float value_;
    const char* type_;
};
}  // namespace detail

/// Pads with zeros. Example: ZeroPad2d(1) adds a 1-pixel border.
class ZeroPad2dImpl : public detail::Pad2dBase {
public:
    explicit ZeroPad2dImpl(std::vector<std::int64_t> padding) : Pad2dBase(std::move(padding), "constant", 0.0f, "ZeroPad2d") {}
    explicit ZeroPad2dImpl(std::int64_t padding) : ZeroPad2dImpl(std::vector<std::int64_t>{padding}) {}
};
NANOTORCH_MODULE(ZeroPad2d);

/// Pads with a constant value.
class ConstantPad2dImpl : public detail::Pad2dBase {
public:
    ConstantPad2dImpl(std::vector<std::int64_t> padding, float value)
        : Pad2dBase(std::move(padding), "constant", value, "ConstantPad2d") {}
    ConstantPad2dImpl(std::int64_t padding, float value) : ConstantPad2dImpl(std::vector<std::int64_t>{padding}, value) {}
};
NANOTORCH_MODULE(ConstantPad2d);

/// Pads with the mirror image about the border (each pad must be smaller than its dimension).
class ReflectionPad2dImpl : public detail::Pad2dBase {
public:
    explicit ReflectionPad2dImpl(std::vector<std::int64_t> padding)
        : Pad2dBase(std::move(padding), "reflect", 0.0f, "ReflectionPad2d") {}
    explicit ReflectionPad2dImpl(std::int64_t padding) : ReflectionPad2dImpl(std::vector<std::int64_t>{padding}) {}
};
NANOTORCH_MODULE(ReflectionPad2d);

/// Pads by repeating the border pixels.
class ReplicationPad2dImpl : public detail::Pad2dBase {
public:
    explicit ReplicationPad2dImpl(std::vector<std::int64_t> padding)
        : Pad2dBase(std::move(padding), "replicate", 0.0f, "ReplicationPad2d") {}
    explicit ReplicationPad2dImpl(std::int64_t padding) : ReplicationPad2dImpl(std::vector<std::int64_t>{padding}) {}
};
NANOTORCH_MODULE(ReplicationPad2d);

}  // namespace nanotorch::nn
