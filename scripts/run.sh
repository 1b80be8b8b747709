#!/usr/bin/env bash
# scripts/run.sh — the main job, on a fresh Debian 12 machine: install what is missing, build,
# fetch MNIST, train the seed's CNN, export it to ONNX, and serve the draw-a-digit page.
#
#   bash scripts/run.sh [--no-serve] [any mnist_train flag, e.g. --epochs 5]
#   bash scripts/run.sh --serve-only     serve an already-trained out/onnx_model.onnx, no training
#
# Results land in out/: metrics.csv, model.ntsd (the weights) and onnx_model.onnx (the seed's
# InferenceNet: 280x280 RGBA canvas in, 10 probabilities out, opset 9 for ONNX.js). nanotorch is also
# built as WebAssembly (scripts/build_wasm.sh --web: the page's nanotorch-wasm runtime and learner).
# The page is then served on http://127.0.0.1:8000 (PORT=... to change it) until Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

serve=1
train=1
args=()
for a in "$@"; do
  case "$a" in
    -h | --help)
      sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
      echo "mnist_train flags:"
      build/release/examples/mnist_train --help 2>/dev/null | tail -n +3 || echo "  (build first to list them)"
      exit 0
      ;;
    --no-serve) serve=0 ;;
    --serve-only) train=0 ;;
    *) args+=("$a") ;;
  esac
done

echo "==> dependencies"
apt_install_missing build-essential g++ cmake ninja-build pkg-config libxsimd-dev doctest-dev libstb-dev python3 emscripten
need_npm
# The page's runtimes (onnxruntime-web, ONNX.js) come from the pinned package-lock.json.
# onnxruntime-node's install script would try a download that is not needed: its CPU binary ships.
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error

if ((train)); then
  echo "==> build (Release, -march=native)"
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNANOTORCH_BUILD_TESTS=OFF \
    -DNANOTORCH_BUILD_BENCH=OFF >/dev/null
  cmake --build build/release --target mnist_train -j "$(nproc)"

  echo "==> MNIST"
  bash scripts/fetch_mnist.sh data/mnist

  echo "==> train and export"
  build/release/examples/mnist_train --data data/mnist --out out "${args[@]+"${args[@]}"}"
fi

if ((serve)); then
  echo "==> nanotorch as WebAssembly (the page's nanotorch-wasm runtime and learner)"
  bash scripts/build_wasm.sh --web
  bash scripts/fetch_mnist.sh data/mnist  # the teaching replay set is cut from it (no-op when present)
  echo "==> serve the draw-a-digit page"
  exec bash scripts/serve.sh out/onnx_model.onnx
fi
