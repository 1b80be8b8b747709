// nanotorch/nanotorch.hpp — the umbrella header: include this one file to get all of nanotorch.
//
// It is a sorted list of includes and nothing else (no code, no macros), so it can never be the
// place where a definition hides. Opt-in headers that pull third-party code a user may not want
// may be left out on purpose (scripts/test.sh notes any header missing from this list). Keep the
// list sorted; tests/odr_a.cpp and tests/odr_b.cpp include this file from two translation units
// to prove that every header here is ODR-safe (inline/template/constexpr).
#pragma once

#include <nanotorch/autograd/engine.hpp>
#include <nanotorch/autograd/node.hpp>
#include <nanotorch/config.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/random.hpp>
#include <nanotorch/core/shape.hpp>
#include <nanotorch/core/storage.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/data/dataloader.hpp>
#include <nanotorch/data/gzip.hpp>
#include <nanotorch/data/idx.hpp>
#include <nanotorch/data/mnist.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/fwd.hpp>
#include <nanotorch/kernels/conv.hpp>
#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/pool.hpp>
#include <nanotorch/kernels/reference.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/kernels/workspace.hpp>
#include <nanotorch/nn/activation.hpp>
#include <nanotorch/nn/clip_grad.hpp>
#include <nanotorch/nn/conv.hpp>
#include <nanotorch/nn/dropout.hpp>
#include <nanotorch/nn/functional.hpp>
#include <nanotorch/nn/init.hpp>
#include <nanotorch/nn/linear.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/nn/pool.hpp>
#include <nanotorch/nn/sequential.hpp>
#include <nanotorch/nn/serialize.hpp>
#include <nanotorch/onnx/conformance.hpp>
#include <nanotorch/onnx/export.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/ops_import.hpp>
#include <nanotorch/onnx/ops_support.hpp>
#include <nanotorch/onnx/proto.hpp>
#include <nanotorch/onnx/runtime.hpp>
#include <nanotorch/onnx/schema.hpp>
#include <nanotorch/onnx/wire.hpp>
#include <nanotorch/ops/broadcast.hpp>
#include <nanotorch/ops/conv.hpp>
#include <nanotorch/ops/dropout.hpp>
#include <nanotorch/ops/elementwise.hpp>
#include <nanotorch/ops/linalg.hpp>
#include <nanotorch/ops/loss.hpp>
#include <nanotorch/ops/reduce.hpp>
#include <nanotorch/ops/shape.hpp>
#include <nanotorch/optim/adam.hpp>
#include <nanotorch/optim/adamw.hpp>
#include <nanotorch/optim/lr_scheduler.hpp>
#include <nanotorch/optim/optimizer.hpp>
#include <nanotorch/optim/sgd.hpp>
#include <nanotorch/util/bytes.hpp>
#include <nanotorch/util/crc32.hpp>
#include <nanotorch/util/file.hpp>
