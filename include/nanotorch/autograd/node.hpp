// nanotorch/autograd/node.hpp — one node of the recorded graph, and how ops attach it.
//
// Every differentiable op that runs with grad mode on and an input requiring grad creates a
// Node subclass (named <Op>Backward, defined next to the op) holding what its backward needs,
// and links it to its inputs by Edges: to the input's own grad_fn, or, for a leaf that
// requires grad, to the leaf itself (its .grad accumulates there). A Node maps the gradient of
// its single output to one gradient per input (an undefined Tensor means "no gradient").
//
// Saved tensors are always detach()ed copies of the handle, so a node never owns its own
// output's grad_fn and the graph has no reference cycles. The graph is freed iteratively
// (see ~Node), so a chain of 10^5+ ops neither overflows the stack when run nor when destroyed.
// This is the interface for writing a custom op; nothing here throws except check_not_released
// (and a subclass's apply(), whose errors backward() passes on unchanged).
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::autograd {

/// Where the gradient for one input goes.
struct Edge {
    std::shared_ptr<Node> fn;           // the input's grad_fn (a non-leaf), or
    std::shared_ptr<TensorImpl> leaf;   // the input itself (a leaf requiring grad)
    Shape shape;                        // the input's shape: backward must return exactly this
    bool is_set() const { return fn != nullptr || leaf != nullptr; }
};

class Node {
public:
    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    /// Frees the chain of nodes below this one without recursion.
    virtual ~Node() {
        std::vector<std::shared_ptr<Node>> stack;
        take_children(stack);
        while (!stack.empty()) {
            std::shared_ptr<Node> n = std::move(stack.back());
            stack.pop_back();
            // Only the last owner unlinks; the node is then destroyed here with no children.
            if (n.use_count() == 1) n->take_children(stack);
        }
    }

    /// Gradients w.r.t. each input (one per edge, in edge order) given the output's gradient.
    /// backward() throws autograd_error when the count or a shape differs from the edges'.
    virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
    /// Op name for messages and printing, e.g. "MulBackward".
    virtual const char* name() const = 0;

    const std::vector<Edge>& next_edges() const { return next_; }
    std::vector<Edge>& mutable_next_edges() { return next_; }

    /// Drops saved tensors after a backward pass without retain_graph.
    void release() {
        release_saved();
        released_ = true;
    }
    bool released() const { return released_; }

protected:
    /// Subclasses reset the tensors they saved.
    virtual void release_saved() {}

private:
    void take_children(std::vector<std::shared_ptr<Node>>& stack) {
        for (auto& e : next_)
            if (e.fn) stack.push_back(std::move(e.fn));
        next_.clear();
    }

    std::vector<Edge> next_;
    bool released_ = false;
};

/// True when an op on these inputs must record a node.
inline bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
    if (!GradMode::is_enabled()) return false;
    for (const Tensor* t : inputs)
        if (t && t->defined() && t->requires_grad()) return true;
    return false;
}
inline bool any_requires_grad(const std::vector<Tensor>& inputs) {
    if (!GradMode::is_enabled()) return false;
    for (const Tensor& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

inline Edge make_edge(const Tensor& input) {
    Edge e;
    if (!input.defined()) return e;
    e.shape = input.shape();
    if (input.grad_fn()) {
        e.fn = input.grad_fn();
    } else if (input.requires_grad()) {
        e.leaf = input.impl_ptr();
    }
    return e;
}

/// Links `node` to `inputs` and makes it `output`'s grad_fn. Call only when
/// any_requires_grad(inputs) is true. Returns `output` for chaining.
inline Tensor attach(Tensor output, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs) {
    auto& edges = node->mutable_next_edges();
    edges.clear();
    edges.reserve(inputs.size());
    for (const Tensor& in : inputs) edges.push_back(make_edge(in));
    TensorImpl* impl = output.unsafe_impl();
    impl->grad_fn = std::move(node);
    impl->requires_grad = true;
    return output;
}

/// Checks that n's saved tensors still exist (backward() calls it before running each node).
/// @throws autograd_error (PyTorch's message for a second backward through a freed graph)
///   when n was released.
inline void check_not_released(const Node& n) {
    NANOTORCH_CHECK(!n.released(), autograd_error, "backward through ", n.name(),
                    " a second time: its saved tensors were freed after the first backward; pass "
                    "retain_graph = true to the first backward() if you need to run it again");
}

}  // namespace nanotorch::autograd
