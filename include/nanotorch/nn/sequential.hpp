// nanotorch/nn/sequential.hpp — Sequential: runs its submodules in order, named "0", "1", ...
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/nn/module.hpp>

namespace nanotorch::nn {

class SequentialImpl : public Module {
public:
    SequentialImpl() = default;
    /// Sequential(nn::Conv2d(1, 10, 5), nn::ReLU(), ...): any holders or shared_ptrs of modules.
    /// @throws value_error for a null module or an empty holder.
    template <class... Modules>
    explicit SequentialImpl(Modules&&... modules) {
        (push_back(std::forward<Modules>(modules)), ...);
    }

    /// Appends a module, registered under the next index. @throws value_error when it is null.
    template <class M>
    void push_back(std::shared_ptr<M> module) {
        modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
    }
    /// @throws value_error for an empty holder.
    template <class Holder, class = decltype(std::declval<Holder&>().ptr())>
    void push_back(const Holder& holder) {
        push_back(holder.ptr());
    }

    /// Feeds x through every module in order. @throws whatever a module's forward throws.
    Tensor forward(const Tensor& x) override {
        Tensor h = x;
        for (auto& m : modules_) h = m->forward(h);
        return h;
    }

    std::size_t size() const { return modules_.size(); }
    /// The i-th module. @throws value_error when i >= size().
    const std::shared_ptr<Module>& operator[](std::size_t i) const {
        NANOTORCH_CHECK(i < modules_.size(), value_error, "Sequential: index ", i, " out of range for ",
                        modules_.size(), " modules");
        return modules_[i];
    }
    std::string type_name() const override { return "Sequential"; }

private:
    std::vector<std::shared_ptr<Module>> modules_;
};
NANOTORCH_MODULE(Sequential);

}  // namespace nanotorch::nn
