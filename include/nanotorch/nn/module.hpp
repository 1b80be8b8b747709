// nanotorch/nn/module.hpp — Module: a registry of named parameters, buffers and submodules,
// plus the train/eval flag. ModuleHolder and NANOTORCH_MODULE give PyTorch C++'s handle style.
//
// A Module owns nothing but that registry (no optimizer hooks, no serialization, no device
// logic: those are free functions elsewhere). Names are registered in order and joined with
// dots (conv1.weight, features.0.bias), which is what state_dict files and ONNX initializers
// use. forward(const Tensor&) is virtual so Sequential, the ONNX exporter and user code can
// run any single-input module; a module with another signature simply doesn't override it.
// Traversal, train()/eval(), zero_grad() and printing throw nothing of nanotorch's. While
// onnx::export_onnx traces a module, the ops its forward runs may also throw unsupported_error
// (an op the chosen opset cannot express; see onnx/export.hpp).
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::nn {

class Module {
public:
    Module() = default;
    virtual ~Module() = default;
    // Copying would alias parameters silently; modules are shared through pointers/holders.
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    /// The computation, for modules that take and return one tensor.
    /// @throws unsupported_error for modules that do not define it; an override throws what its
    ///   ops throw (typically shape_error for an input of the wrong shape).
    virtual Tensor forward(const Tensor& input) {
        (void)input;
        throw unsupported_error(type_name() + " does not define forward(const Tensor&)");
    }
    /// forward(input). @throws as forward.
    Tensor operator()(const Tensor& input) { return forward(input); }

    /// Short type name used when printing ("Conv2d", "Net").
    virtual std::string type_name() const { return "Module"; }
    /// The "(...)" part of the printed form, e.g. "1, 10, kernel_size=[5, 5]".
    virtual std::string extra_repr() const { return ""; }

    // ---- registration ----

    /// Adds a parameter (its requires_grad is set to `requires_grad`) and returns a handle to it
    /// (handles alias: keep it as a member, as layers do with `weight`).
    /// @throws value_error when the name is empty, contains a dot or is already registered (as a
    ///   parameter, buffer or submodule), or t is undefined; autograd_error when requires_grad is
    ///   false and t is not a leaf.
    Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true) {
        check_new_name(name);
        NANOTORCH_CHECK(t.defined(), value_error, "register_parameter: parameter '", name, "' is undefined");
        t.requires_grad_(requires_grad);
        parameters_.emplace_back(name, std::move(t));
        return parameters_.back().second;
    }
    /// Adds state that is saved with the module but not trained (e.g. running statistics).
    /// @throws value_error for a name register_parameter would refuse.
    Tensor register_buffer(const std::string& name, Tensor t) {
        check_new_name(name);
        buffers_.emplace_back(name, std::move(t));
        return buffers_.back().second;
    }
    /// Adds a submodule; returns it so that `conv1 = register_module("conv1", nn::Conv2d(1, 10, 5));` works.
    /// @throws value_error for a name register_parameter would refuse, or a null module (or
    ///   empty holder).
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        static_assert(std::is_base_of<Module, M>::value, "register_module needs an nn::Module");
        check_new_name(name);
        NANOTORCH_CHECK(module != nullptr, value_error, "register_module: submodule '", name, "' is null");
        children_.emplace_back(name, module);
        return module;
    }
    template <class Holder, class = decltype(std::declval<Holder&>().ptr())>
    Holder register_module(const std::string& name, Holder holder) {
        register_module(name, holder.ptr());
        return holder;
    }

    // ---- traversal (registration order, depth first) ----

    std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const {
        std::vector<std::pair<std::string, Tensor>> out;
        collect(out, "", recurse, &Module::parameters_);
        return out;
    }
    std::vector<Tensor> parameters(bool recurse = true) const {
        std::vector<Tensor> out;
        for (auto& p : named_parameters(recurse)) out.push_back(p.second);
        return out;
    }
    std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const {
        std::vector<std::pair<std::string, Tensor>> out;
        collect(out, "", recurse, &Module::buffers_);
        return out;
    }
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }

    // ---- mode and gradients ----

    /// Training mode (dropout active) for this module and all submodules.
    void train(bool on = true) {
        training_ = on;
        for (auto& c : children_) c.second->train(on);
    }
    /// Evaluation mode: dropout becomes the identity.
    void eval() { train(false); }
    bool is_training() const { return training_; }

    /// Drops every parameter's accumulated gradient.
    void zero_grad() {
        for (auto& p : parameters()) p.zero_grad();
    }

    /// PyTorch-style printout of the module tree.
    void pretty_print(std::ostream& os, int indent = 0) const {
        os << type_name() << '(' << extra_repr();
        if (!children_.empty()) {
            os << '\n';
            for (auto& c : children_) {
                os << std::string(static_cast<std::size_t>(indent + 2), ' ') << '(' << c.first << "): ";
                c.second->pretty_print(os, indent + 2);
                os << '\n';
            }
            os << std::string(static_cast<std::size_t>(indent), ' ');
        }
        os << ')';
    }

private:
    using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

    void check_new_name(const std::string& name) const {
        NANOTORCH_CHECK(!name.empty(), value_error, "module member names must not be empty");
        NANOTORCH_CHECK(name.find('.') == std::string::npos, value_error, "module member name '", name,
                        "' must not contain a dot (dots separate nested names)");
        auto taken = [&](const auto& list) {
            for (auto& e : list)
                if (e.first == name) return true;
            return false;
        };
        NANOTORCH_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), value_error,
                        "module member '", name, "' is already registered");
    }

    void collect(NamedTensors& out, const std::string& prefix, bool recurse, NamedTensors Module::*list) const {
        for (auto& p : this->*list) out.emplace_back(prefix + p.first, p.second);
        if (!recurse) return;
        for (auto& c : children_) c.second->collect(out, prefix + c.first + ".", true, list);
    }

    NamedTensors parameters_;
    NamedTensors buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

inline std::ostream& operator<<(std::ostream& os, const Module& m) {
    m.pretty_print(os);
    return os;
}

/// A shared handle to a module implementation, as in PyTorch C++: `nn::Linear fc(320, 50);`
/// constructs a LinearImpl; `fc(x)` runs it; `fc->weight` reaches its members; copies alias.
template <class Impl>
class ModuleHolder {
public:
    using impl_type = Impl;
    /// Default-constructs the module (nn::ReLU relu; nn::Dropout2d drop;). @throws what Impl() throws.
    ModuleHolder() : impl_(std::make_shared<Impl>()) {}
    /// An empty holder, to be assigned later (typically from register_module).
    ModuleHolder(std::nullptr_t) {}
    /// Constructs the module from Impl's constructor arguments. @throws what that constructor throws.
    template <class First, class... Rest,
              class = std::enable_if_t<!std::is_base_of<ModuleHolder, std::decay_t<First>>::value &&
                                       !std::is_same<std::decay_t<First>, std::nullptr_t>::value &&
                                       !std::is_same<std::decay_t<First>, std::shared_ptr<Impl>>::value>>
    ModuleHolder(First&& first, Rest&&... rest)
        : impl_(std::make_shared<Impl>(std::forward<First>(first), std::forward<Rest>(rest)...)) {}
    ModuleHolder(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

    /// operator->, operator* and get() reach the module.
    /// @throws value_error on an empty holder (ptr() and is_empty() never throw).
    Impl* operator->() const { return get(); }
    Impl& operator*() const { return *get(); }
    Impl* get() const {
        NANOTORCH_CHECK(impl_ != nullptr, value_error, "use of an empty module holder (constructed from nullptr)");
        return impl_.get();
    }
    const std::shared_ptr<Impl>& ptr() const { return impl_; }
    bool is_empty() const { return impl_ == nullptr; }
    /// Runs forward(x). @throws value_error on an empty holder, else as Impl::forward.
    Tensor operator()(const Tensor& x) const { return get()->forward(x); }

private:
    std::shared_ptr<Impl> impl_;
};

/// Prints the module tree. @throws value_error on an empty holder.
template <class Impl>
std::ostream& operator<<(std::ostream& os, const ModuleHolder<Impl>& m) {
    return os << *m;
}

}  // namespace nanotorch::nn

/// Declares `Name` as a ModuleHolder of `Name##Impl` (PyTorch's TORCH_MODULE).
#define NANOTORCH_MODULE(Name)                                         \
    class Name : public ::nanotorch::nn::ModuleHolder<Name##Impl> {    \
    public:                                                           \
        using ::nanotorch::nn::ModuleHolder<Name##Impl>::ModuleHolder; \
    }
