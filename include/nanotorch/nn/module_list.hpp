// nanotorch/nn/module_list.hpp — ModuleList: an indexable list of submodules, named "0", "1", ...
//
// As torch.nn.ModuleList: it registers what it holds (so parameters(), state_dict, train()/eval()
// and printing see every element, under the names "0.weight", "1.bias", ...), but has no forward
// of its own: the owning module loops over it. Elements are shared_ptr<Module>; at<T>(i) gives
// one back as its own type (PyTorch C++'s `list->at<LinearImpl>(i)`).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/nn/module.hpp>

namespace nanotorch::nn {

class ModuleListImpl : public Module {
public:
    using Iterator = std::vector<std::shared_ptr<Module>>::const_iterator;

    ModuleListImpl() = default;
    /// ModuleList(nn::Linear(2, 3), nn::ReLU(), ...): any holders or shared_ptrs of modules.
    /// @throws value_error for a null module or an empty holder.
    template <class... Modules>
    explicit ModuleListImpl(Modules&&... modules) {
        (push_back(std::forward<Modules>(modules)), ...);
    }

    /// Appends a module, registered under the next index (PyTorch's append).
    /// @throws value_error when it is null.
    template <class M>
    void push_back(std::shared_ptr<M> module) {
        modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
    }
    /// @throws value_error for an empty holder.
    template <class Holder, class = decltype(std::declval<Holder&>().ptr())>
    void push_back(const Holder& holder) {
        push_back(holder.ptr());
    }
    /// The Python name for push_back. @throws as push_back.
    template <class M>
    void append(M&& module) {
        push_back(std::forward<M>(module));
    }
    /// Appends every module of `other` (they are shared, not copied). @throws nothing of its own.
    void extend(const ModuleListImpl& other) {
        for (const auto& m : other) push_back(m);
    }

    std::size_t size() const { return modules_.size(); }
    bool is_empty() const { return modules_.empty(); }
    Iterator begin() const { return modules_.begin(); }
    Iterator end() const { return modules_.end(); }

    /// The i-th module. @throws value_error when i >= size().
    const std::shared_ptr<Module>& operator[](std::size_t i) const {
        NANOTORCH_CHECK(i < modules_.size(), value_error, "ModuleList: index ", i, " out of range for ",
                        modules_.size(), " modules");
        return modules_[i];
    }
    /// The i-th module as its implementation type, e.g. at<LinearImpl>(0).
    /// @throws value_error when i >= size() or the module is not a T.
    template <class T>
    std::shared_ptr<T> at(std::size_t i) const {
        auto p = std::dynamic_pointer_cast<T>((*this)[i]);
        NANOTORCH_CHECK(p != nullptr, value_error, "ModuleList: module ", i, " is a ", modules_[i]->type_name(),
                        ", not the requested type");
        return p;
    }

    std::string type_name() const override { return "ModuleList"; }

private:
    std::vector<std::shared_ptr<Module>> modules_;
};
NANOTORCH_MODULE(ModuleList);

}  // namespace nanotorch::nn
