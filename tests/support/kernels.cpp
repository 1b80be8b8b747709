// tests/support/kernels.cpp — the one compiled copy of the compute kernels' entry points (those
// marked NANOTORCH_KERNEL_API: sgemm, convolution, pooling, batch norm) for builds of our own
// programs with NANOTORCH_SEPARATE_KERNELS (CMake) / separate_kernels (Meson), where every other
// translation unit defines NANOTORCH_KERNELS_EXTERN and only declares them
// (include/nanotorch/config.hpp). It saves build time, nothing else: the kernels are the headers'.
#ifndef NANOTORCH_KERNELS_EXTERN
#error "tests/support/kernels.cpp is built only with NANOTORCH_KERNELS_EXTERN (NANOTORCH_SEPARATE_KERNELS)"
#endif
#define NANOTORCH_KERNELS_IMPLEMENTATION
#include <nanotorch/kernels/adaptive_pool.hpp>
#include <nanotorch/kernels/conv_paths.hpp>
#include <nanotorch/kernels/gemm.hpp>
#include <nanotorch/kernels/norm.hpp>
#include <nanotorch/kernels/pool.hpp>
