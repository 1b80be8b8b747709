#!/usr/bin/env bash
# scripts/run.sh — the main job, on a fresh Debian 12 machine: install what is missing, build,
# fetch MNIST, train the seed's CNN, export it to ONNX.
#
#   bash scripts/run.sh [--epochs N] [any other mnist_train flag...]
#
# Results land in out/: metrics.csv, model.ntsd (the weights) and onnx_model.onnx (the seed's
# InferenceNet: 280x280 RGBA canvas in, 10 probabilities out, opset 9 for ONNX.js).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

case "${1:-}" in
  -h | --help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    echo "mnist_train flags:"
    build/release/examples/mnist_train --help 2>/dev/null | tail -n +3 || echo "  (build first to list them)"
    exit 0
    ;;
esac

echo "==> dependencies"
apt_install_missing build-essential g++ cmake ninja-build pkg-config libxsimd-dev doctest-dev libstb-dev
need_npm

echo "==> build (Release, -march=native)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNANOTORCH_BUILD_TESTS=OFF \
  -DNANOTORCH_BUILD_BENCH=OFF >/dev/null
cmake --build build/release --target mnist_train -j "$(nproc)"

echo "==> MNIST"
bash scripts/fetch_mnist.sh data/mnist

echo "==> train and export"
build/release/examples/mnist_train --data data/mnist --out out "$@"
