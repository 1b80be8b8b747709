// nanotorch/optim/adamw.hpp — AdamW (Loshchilov & Hutter, decoupled weight decay) with PyTorch's
// update rule (torch.optim.AdamW): the weights shrink by (1 − lr·weight_decay) before the Adam
// update, instead of weight_decay·p being added to the gradient:
//
//   p = p·(1 − lr·weight_decay)
//   m = β1·m + (1 − β1)·g          v = β2·v + (1 − β2)·g²        (amsgrad: v_max = max(v_max, v))
//   p = p − lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
//
// The default weight_decay is 0.01, as in PyTorch. The code is Adam's (optim/adam.hpp).
#pragma once

#include <utility>
#include <vector>

#include <nanotorch/core/tensor.hpp>
#include <nanotorch/optim/adam.hpp>

namespace nanotorch::optim {

/// AdamWOptions(1e-3).betas(0.9, 0.999).weight_decay(0.01): AdamOptions with weight_decay 0.01.
using AdamWOptions = detail::BasicAdamOptions<true>;

class AdamW : public detail::AdamBase<true> {
public:
    /// @throws value_error as Optimizer's constructor, or for lr < 0, eps < 0, a beta outside
    ///   [0, 1) or weight_decay < 0 (NaN counts as invalid).
    AdamW(std::vector<Tensor> params, AdamWOptions options = {}) : AdamBase(std::move(params), options) {}
};

}  // namespace nanotorch::optim
