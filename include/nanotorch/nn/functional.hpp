// nanotorch/nn/functional.hpp — nn::functional (alias F): the stateless ops under the names
// PyTorch users reach for, so `F::relu(F::max_pool2d(conv1(x), 2))` reads as in Python.
// It only re-exports; every op lives (forward, backward, export mapping) in nanotorch/ops/,
// whose docs list what each one throws.
#pragma once

#include <nanotorch/ops/activation.hpp>
#include <nanotorch/ops/conv.hpp>
#include <nanotorch/ops/dropout.hpp>
#include <nanotorch/ops/elementwise.hpp>
#include <nanotorch/ops/linalg.hpp>
#include <nanotorch/ops/loss.hpp>
#include <nanotorch/ops/loss_pointwise.hpp>
#include <nanotorch/ops/norm.hpp>
#include <nanotorch/ops/pad.hpp>  // F::pad is defined there, next to the op
#include <nanotorch/ops/shape.hpp>

namespace nanotorch::nn::functional {
using nanotorch::adaptive_avg_pool2d;
using nanotorch::avg_pool2d;
using nanotorch::batch_norm;
using nanotorch::binary_cross_entropy_with_logits;
using nanotorch::conv2d;
using nanotorch::cross_entropy;
using nanotorch::dropout;
using nanotorch::dropout2d;
using nanotorch::elu;
using nanotorch::flatten;
using nanotorch::gelu;
using nanotorch::hardsigmoid;
using nanotorch::hardswish;
using nanotorch::leaky_relu;
using nanotorch::linear;
using nanotorch::log_softmax;
using nanotorch::max_pool2d;
using nanotorch::max_pool2d_with_indices;
using nanotorch::mse_loss;
using nanotorch::nll_loss;
using nanotorch::relu;
using nanotorch::sigmoid;
using nanotorch::silu;
using nanotorch::softmax;
using nanotorch::softplus;
using nanotorch::tanh;
using nanotorch::Reduction;
}  // namespace nanotorch::nn::functional

namespace nanotorch {
namespace F = nn::functional;
}  // namespace nanotorch
