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
#if defined(NANOTORCH_ONNX_OPS_IMPLEMENTATION) && !defined(NANOTORCH_ONNX_OPS_EXTERN)
#error "NANOTORCH_ONNX_OPS_IMPLEMENTATION needs NANOTORCH_ONNX_OPS_EXTERN, defined in every translation unit"
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
