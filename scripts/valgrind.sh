#!/usr/bin/env bash
# scripts/valgrind.sh [BUILD_DIR] — valgrind memcheck over the two command-line tools.
#
# Builds mnist_train and onnx_run WITHOUT -march=native (valgrind 3.19, Debian 12's, does not
# decode AVX-512 instructions, so a native build on this machine kind would die with SIGILL inside
# valgrind; xsimd then uses the SSE2 kernels every x86-64 has) as RelWithDebInfo, so reports carry
# line numbers. Then, under memcheck with full leak checking:
#   1. mnist_train: one epoch on 256 training images (4 steps with 2 worker threads), the full
#      10,000-image evaluation, saving the state_dict and exporting the ONNX model;
#   2. onnx_run on that model with an IDX image, a PNG image and zero inputs;
#   3. onnx_run's error path on a file that is not a model (must exit 1 with its one-line message).
# Any memcheck error or leak (definite, indirect or possible) fails the script. Needs MNIST in
# data/mnist (scripts/fetch_mnist.sh) and valgrind (Debian package valgrind).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${1:-build/valgrind}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[ -f data/mnist/t10k-images-idx3-ubyte ] || { echo "valgrind.sh: no MNIST in data/mnist (run scripts/fetch_mnist.sh)" >&2; exit 1; }

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
# NANOTORCH_MPI=OFF: memcheck looks at nanotorch; Open MPI's libraries (linked into mnist_train
# when found, for --distributed) would only add their own allocations to the report.
# NANOTORCH_SEPARATE_*: the kernels and the ONNX code compiled once for both programs, on both
# cores, instead of once in each (the same code: config.hpp).
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNANOTORCH_NATIVE=OFF \
  -DNANOTORCH_BUILD_TESTS=OFF -DNANOTORCH_BUILD_BENCH=OFF -DNANOTORCH_INSTALL=OFF -DNANOTORCH_MPI=OFF \
  -DNANOTORCH_SEPARATE_ONNX_OPS=ON -DNANOTORCH_SEPARATE_ONNX=ON -DNANOTORCH_SEPARATE_KERNELS=ON >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target mnist_train onnx_run

# Exit status 99 marks a memcheck finding, so it cannot be mistaken for the tool's own status.
vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible
    --show-leak-kinds=definite,indirect,possible)

check() {  # check EXPECTED_STATUS DESCRIPTION COMMAND...
  local want=$1 what=$2 status=0
  shift 2
  echo "== memcheck: $what"
  "${vg[@]}" "$@" >"$out/log" 2>&1 || status=$?
  if [ "$status" -ne "$want" ]; then
    cat "$out/log"
    if [ "$status" -eq 99 ]; then
      echo "valgrind.sh: memcheck reported errors in: $what" >&2
    else
      echo "valgrind.sh: $what exited with $status, expected $want" >&2
    fi
    exit 1
  fi
  tail -n 2 "$out/log"
}

check 0 "mnist_train, 1 epoch on 256 images, 2 threads" \
  "$build/examples/mnist_train" --epochs 1 --limit 256 --threads 2 --out "$out/train"
check 0 "onnx_run, IDX image input" \
  "$build/examples/onnx_run" "$out/train/onnx_model.onnx" --input idx:data/mnist/t10k-images-idx3-ubyte:0 -q
check 0 "onnx_run, PNG image input" \
  "$build/examples/onnx_run" "$out/train/onnx_model.onnx" --input docs/demo.png -q
check 0 "onnx_run, zero inputs" "$build/examples/onnx_run" "$out/train/onnx_model.onnx" -q
check 1 "onnx_run, a state_dict passed as a model (error path)" \
  "$build/examples/onnx_run" "$out/train/model.ntsd"
echo "valgrind.sh: memcheck clean (no errors, no leaks) on mnist_train and onnx_run"
