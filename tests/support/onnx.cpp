// tests/support/onnx.cpp — the one compiled copy of the ONNX code's entry points other than the op
// table (those marked NANOTORCH_ONNX_API: the Runtime's planning and run loop, decode_model,
// encode_model, trace_module, the tensor conversions) for builds of our own programs with
// NANOTORCH_SEPARATE_ONNX (CMake) / separate_onnx (Meson), where every other translation unit
// defines NANOTORCH_ONNX_EXTERN and only declares them (include/nanotorch/config.hpp). It saves
// build time, nothing else: the code is the headers'.
#ifndef NANOTORCH_ONNX_EXTERN
#error "tests/support/onnx.cpp is built only with NANOTORCH_ONNX_EXTERN (NANOTORCH_SEPARATE_ONNX)"
#endif
#define NANOTORCH_ONNX_IMPLEMENTATION
#include <nanotorch/onnx/decode.hpp>
#include <nanotorch/onnx/encode.hpp>
#include <nanotorch/onnx/export.hpp>
#include <nanotorch/onnx/fold.hpp>
#include <nanotorch/onnx/runtime.hpp>
#include <nanotorch/onnx/value.hpp>
