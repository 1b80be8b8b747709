// nanotorch/autograd/engine.hpp — the backward pass.
//
// backward(root, grad): seeds root's gradient (1 for a one-element root), finds every node
// reachable from root.grad_fn with an explicit stack (never recursion: 10^5-op chains are
// fine), counts how many consumers feed each node, then runs the nodes in dependency order
// (Kahn's algorithm, FIFO, so the order — and the floating-point sums — are the same on every
// run). Gradients reaching one node from several consumers are summed before it runs; leaf
// gradients accumulate into .grad across backward() calls until zero_grad(). Each node's
// saved tensors are freed after it runs unless retain_graph is set. The pass itself runs
// with grad mode off, so backward formulas can reuse the differentiable ops.
#pragma once

#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/pointwise.hpp>

namespace nanotorch::autograd {

namespace detail {

/// A fresh contiguous copy that no other tensor aliases.
inline Tensor fresh_copy(const Tensor& t) {
    Tensor c = empty(t.shape());
    if (c.numel() > 0) t.copy_strided_to(c.data_ptr());
    return c;
}

/// acc + g, out of place (acc may alias a tensor some node still holds).
inline Tensor sum_grads(const Tensor& acc, const Tensor& g) {
    Tensor a = acc.is_contiguous() ? acc : fresh_copy(acc);
    Tensor b = g.is_contiguous() ? g : fresh_copy(g);
    Tensor out = empty(acc.shape());
    kernels::parallel_add(out.data_ptr(), a.data_ptr(), b.data_ptr(), out.numel());
    return out;
}

inline void accumulate_into_leaf(TensorImpl& leaf, const Tensor& g) {
    if (!leaf.grad) {
        leaf.grad = fresh_copy(g).impl_ptr();
        return;
    }
    Tensor existing(leaf.grad);
    NANOTORCH_CHECK(existing.shape() == g.shape(), shape_error, "backward: existing .grad of shape ",
                    shape_str(existing.shape()), " does not match the new gradient's shape ", shape_str(g.shape()));
    leaf.grad = sum_grads(existing, g).impl_ptr();
}

}  // namespace detail

/// Runs the backward pass from `root`. See Tensor::backward.
/// @throws autograd_error when root is undefined or does not require grad, has more than one
///   element and no `gradient` is given, reaches a node freed by an earlier backward() without
///   retain_graph, or a node returns the wrong number or shape of gradients; shape_error when
///   `gradient`'s shape differs from root's or a leaf's existing .grad has another shape. An
///   exception thrown by a node's apply() propagates unchanged; gradients already accumulated
///   into leaves by then stay there.
inline void backward(const Tensor& root, const Tensor& gradient = Tensor(), bool retain_graph = false) {
    NANOTORCH_CHECK(root.defined(), autograd_error, "backward: called on an undefined tensor");
    NANOTORCH_CHECK(root.requires_grad(), autograd_error,
                    "backward: the tensor does not require grad and has no grad_fn (did you call "
                    "requires_grad_() on the parameters, or compute it under a NoGradGuard?)");
    Tensor seed = gradient;
    if (!seed.defined()) {
        NANOTORCH_CHECK(root.numel() == 1, autograd_error,
                        "backward: a gradient can be implied only for a one-element tensor; this one has shape ",
                        shape_str(root.shape()), ", so pass backward(gradient)");
        seed = ones(root.shape());
    }
    NANOTORCH_CHECK(seed.shape() == root.shape(), shape_error, "backward: gradient shape ",
                    shape_str(seed.shape()), " does not match the tensor's shape ", shape_str(root.shape()));

    NoGradGuard no_grad;
    if (!root.grad_fn()) {  // a leaf: its gradient is the seed itself
        detail::accumulate_into_leaf(*root.unsafe_impl(), seed);
        return;
    }

    // 1. Count, for every reachable node, the edges that point at it.
    std::unordered_map<Node*, int> pending;
    std::vector<Node*> stack{root.grad_fn().get()};
    pending[root.grad_fn().get()] = 0;
    while (!stack.empty()) {
        Node* n = stack.back();
        stack.pop_back();
        for (const Edge& e : n->next_edges()) {
            if (!e.fn) continue;
            auto it = pending.find(e.fn.get());
            if (it == pending.end()) {
                pending.emplace(e.fn.get(), 1);
                stack.push_back(e.fn.get());
            } else {
                ++it->second;
            }
        }
    }

    // 2. Run nodes whose consumers have all delivered their gradients.
    std::unordered_map<Node*, Tensor> grads;
    grads[root.grad_fn().get()] = seed;
    std::deque<std::shared_ptr<Node>> ready{root.grad_fn()};
    while (!ready.empty()) {
        std::shared_ptr<Node> node = std::move(ready.front());
        ready.pop_front();
        check_not_released(*node);
        auto git = grads.find(node.get());
        std::vector<Tensor> input_grads;
        if (git != grads.end()) {
            const Tensor g = std::move(git->second);
            grads.erase(git);
            input_grads = node->apply(g);
            NANOTORCH_CHECK(input_grads.size() == node->next_edges().size(), autograd_error, node->name(),
                            " returned ", input_grads.size(), " gradients for ", node->next_edges().size(),
                            " inputs");
        }
        const auto& edges = node->next_edges();
        for (std::size_t i = 0; i < edges.size(); ++i) {
            const Edge& e = edges[i];
            const Tensor* g = i < input_grads.size() && input_grads[i].defined() ? &input_grads[i] : nullptr;
            if (g) {
                NANOTORCH_CHECK(g->shape() == e.shape, autograd_error, node->name(), " produced a gradient of shape ",
                                shape_str(g->shape()), " for input ", i, " of shape ", shape_str(e.shape));
            }
            if (e.fn) {
                if (g) {
                    auto [it, inserted] = grads.emplace(e.fn.get(), *g);
                    if (!inserted) it->second = detail::sum_grads(it->second, *g);
                }
                if (--pending[e.fn.get()] == 0) ready.push_back(e.fn);
            } else if (e.leaf && g) {
                detail::accumulate_into_leaf(*e.leaf, *g);
            }
        }
        if (!retain_graph) node->release();
    }
}

}  // namespace nanotorch::autograd

namespace nanotorch {

inline void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
    autograd::backward(*this, gradient, retain_graph);
}

}  // namespace nanotorch
