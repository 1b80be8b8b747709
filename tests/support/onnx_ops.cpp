// tests/support/onnx_ops.cpp — the one compiled copy of the ONNX runtime's op table for builds of
// our own programs with NANOTORCH_SEPARATE_ONNX_OPS (CMake) / separate_onnx_ops (Meson), where
// every other translation unit defines NANOTORCH_ONNX_OPS_EXTERN and only declares the table
// (include/nanotorch/config.hpp). It saves build time, nothing else: the kernels are the headers'.
#ifndef NANOTORCH_ONNX_OPS_EXTERN
#error "tests/support/onnx_ops.cpp is built only with NANOTORCH_ONNX_OPS_EXTERN (NANOTORCH_SEPARATE_ONNX_OPS)"
#endif
#define NANOTORCH_ONNX_OPS_IMPLEMENTATION
#include <nanotorch/onnx/op_table.hpp>
