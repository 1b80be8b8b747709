#!/usr/bin/env bash
# tests/kernel_inlining.sh — fails when an optimised build left one of the SIMD kernels' lambdas
# out of line.
#
#   bash tests/kernel_inlining.sh NM BINARY...
#
# kernels/simd_gemm.hpp keeps each micro-kernel's accumulators in an array indexed through generic
# lambdas (detail::unroll's bodies, sgemm_small_n_kernel's step). Inlined, the array lives in
# registers; left out of line, it lives on the stack and the kernel stores every accumulator at
# every k step. GCC 12 did that on an AVX-512 host (sgemm at 22 % of the FMA peak instead of
# 58 %), silently: the results are the same bits. Every such lambda is marked
# NANOTORCH_INLINE_LAMBDA; this check lists the binaries' symbols (NM -C) and fails on any
# generic lambda (a parameter of type auto) inside nanotorch::kernels that still got a body of its
# own. The thread pool's task lambdas take (long, long), not auto, and are meant to be out of line.
set -uo pipefail

if (($# < 2)); then
  echo "usage: bash tests/kernel_inlining.sh NM BINARY..." >&2
  exit 2
fi
nm=$1
shift
status=0
for bin in "$@"; do
  if ! symbols=$("$nm" -C "$bin"); then
    echo "FAIL: $nm -C $bin did not run" >&2
    status=1
    continue
  fi
  if ! grep -q 'nanotorch::kernels::' <<<"$symbols"; then
    echo "FAIL: $bin has no nanotorch::kernels symbols (stripped?), so nothing was checked" >&2
    status=1
    continue
  fi
  out_of_line=$(grep -E 'nanotorch::kernels::.*\{lambda\([^)]*auto:[0-9]+' <<<"$symbols")
  if [ -n "$out_of_line" ]; then
    echo "FAIL: $bin has kernel lambdas out of line (mark them NANOTORCH_INLINE_LAMBDA):" >&2
    sed 's/^/  /' <<<"$out_of_line" | head -20 >&2
    status=1
  else
    echo "PASS: $bin: no out-of-line kernel lambda"
  fi
done
exit $status
