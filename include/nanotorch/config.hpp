// nanotorch/config.hpp — version numbers, build-time switches and the precondition macro.
//
// Every NANOTORCH_* switch is read here and only here, so that translation units agree on them
// (set them with target_compile_definitions, never by editing a header). This file does not
// include anything of nanotorch's own.
#pragma once

#include <sstream>  // NANOTORCH_CHECK builds its message with operator<<
#include <string>

#define NANOTORCH_VERSION_MAJOR 0
#define NANOTORCH_VERSION_MINOR 1
#define NANOTORCH_VERSION_PATCH 0
#define NANOTORCH_VERSION_STRING "0.1.0"

// NANOTORCH_NO_SIMD: compile the scalar kernels only (xsimd is then not included at all).
// NANOTORCH_NO_THREADS: parallel_for runs serially and no thread is ever created.
// NANOTORCH_DEFAULT_NUM_THREADS: thread count when neither set_num_threads() nor the
//   NANOTORCH_NUM_THREADS environment variable says otherwise (0 = hardware concurrency).
// NANOTORCH_ONNX_OPS_EXTERN: a build-time saving for programs of many translation units. The ONNX
//   runtime's op table (onnx/op_table.hpp) holds every operator's kernel, and a translation unit
//   that runs a model compiles all of them; with this switch defined in every translation unit,
//   they only declare the table, and the one that also defines NANOTORCH_ONNX_OPS_IMPLEMENTATION
//   (before its first nanotorch include) compiles it, once. Same behaviour, one copy of the code.
// NANOTORCH_KERNELS_EXTERN: the same saving for the compute kernels. The entry points that
//   ops/, nn/ and onnx/ call (sgemm, the convolution, pooling and batch-norm kernels, each
//   marked NANOTORCH_KERNEL_API) inline everything below them, and at -O3 with AVX-512 they are
//   most of the code a translation unit that trains or runs a network compiles. With this switch
//   defined in every translation unit they are only declared (NANOTORCH_KERNEL_BODIES is 0), and
//   the one that also defines NANOTORCH_KERNELS_IMPLEMENTATION compiles them as ordinary
//   external functions, once, with the same bodies and everything inlined into them as before.
// NANOTORCH_ONNX_EXTERN: the same for the rest of the ONNX code's entry points (marked
//   NANOTORCH_ONNX_API): the Runtime's load-time planning and run loop, decode_model, encode_model,
//   trace_module and the tensor conversions; the implementation TU (NANOTORCH_ONNX_IMPLEMENTATION)
//   includes onnx/runtime.hpp and onnx/export.hpp.
#if defined(NANOTORCH_ONNX_OPS_IMPLEMENTATION) && !defined(NANOTORCH_ONNX_OPS_EXTERN)
#error "NANOTORCH_ONNX_OPS_IMPLEMENTATION needs NANOTORCH_ONNX_OPS_EXTERN, defined in every translation unit"
#endif
#if defined(NANOTORCH_ONNX_IMPLEMENTATION) && !defined(NANOTORCH_ONNX_EXTERN)
#error "NANOTORCH_ONNX_IMPLEMENTATION needs NANOTORCH_ONNX_EXTERN, defined in every translation unit"
#endif
#ifdef NANOTORCH_ONNX_EXTERN
#define NANOTORCH_ONNX_API
#else
#define NANOTORCH_ONNX_API inline
#endif
#if defined(NANOTORCH_ONNX_EXTERN) && !defined(NANOTORCH_ONNX_IMPLEMENTATION)
#define NANOTORCH_ONNX_BODIES 0
#else
#define NANOTORCH_ONNX_BODIES 1
#endif
#if defined(NANOTORCH_KERNELS_IMPLEMENTATION) && !defined(NANOTORCH_KERNELS_EXTERN)
#error "NANOTORCH_KERNELS_IMPLEMENTATION needs NANOTORCH_KERNELS_EXTERN, defined in every translation unit"
#endif
#ifdef NANOTORCH_KERNELS_EXTERN
#define NANOTORCH_KERNEL_API
#else
#define NANOTORCH_KERNEL_API inline
#endif
#if defined(NANOTORCH_KERNELS_EXTERN) && !defined(NANOTORCH_KERNELS_IMPLEMENTATION)
#define NANOTORCH_KERNEL_BODIES 0
#else
#define NANOTORCH_KERNEL_BODIES 1
#endif
#ifndef NANOTORCH_DEFAULT_NUM_THREADS
#define NANOTORCH_DEFAULT_NUM_THREADS 0
#endif

namespace nanotorch::detail {

// Concatenates any streamable arguments; used to build exception messages.
template <class... Args>
inline std::string str_cat(const Args&... args) {
    std::ostringstream os;
    (void)(os << ... << args);
    return os.str();
}

}  // namespace nanotorch::detail

/// NANOTORCH_CHECK(cond, ErrorType, message parts...): throws ErrorType(message) when cond is false.
/// Use it for every precondition a caller can violate; keep assert() for internal invariants.
#define NANOTORCH_CHECK(cond, ErrorType, ...)                                   \
    do {                                                                        \
        if (!(cond)) throw ErrorType(::nanotorch::detail::str_cat(__VA_ARGS__)); \
    } while (0)
