#!/usr/bin/env bash
# scripts/test.sh — the one test command (README: `bash scripts/test.sh`; CI: .ci/run calls it).
#
# On a fresh Debian 12 machine it installs what it needs with apt-get (only packages that are
# missing, so reruns are fast), then builds and tests every configuration we support:
#   lists          tests/suites.txt matches tests/test_*.cpp (a forgotten line = an unbuilt suite)
#   gcc-release    CMake + g++     Release, -march=native: suites, examples, bench --quick (kernel
#                  validation), conformance; with Open MPI
#                  (NANOTORCH_MPI=AUTO) also the MPI ctests: test_mpi at 2 and 3 ranks, mpi_equivalence
#                  (mnist_train --distributed vs one process, kill + resume), mpi_rank_failure and
#                  bench_ddp_quick (~10 s together)
#   onnx-interop   export_check (built in gcc-release's tree) exports the seed's nets (and a BatchNorm
#                  variant) at opsets 9 and 13 with 100 MNIST test digits and nanotorch's outputs, and
#                  fashion_train's ResNet8 (weights from a 1-epoch fashion_train smoke run on 2000
#                  images) with 100 Fashion-MNIST test images; onnx.checker (python3-onnx),
#                  onnxruntime-node and ONNX.js 0.1.8 (node_modules, from package-lock.json) must agree;
#                  then models other exporters write (python3-torch exports at opsets 9-17, hand-built
#                  older-converter and tf2onnx-style graphs) must give onnx_run's outputs within 1e-5 of
#                  onnxruntime-node's at batch 1 and 3
#   browser        trains the seed's net for one epoch (gcc-release's mnist_train), then draws 50 MNIST
#                  test digits with real mouse strokes on the demo page in Debian's chromium
#                  (playwright-core), under onnxruntime-web, ONNX.js and nanotorch-wasm (the wasm step's
#                  page module): >= 90 % must be read right; then teaches the page 30 rotated drawings
#                  (tests/js/e2e_teach.mjs): it must learn the style, keep MNIST, persist and reset
#   wasm           scripts/build_wasm.sh (Debian's emscripten): the page's nanotorch_wasm.wasm (<= 1 MB) and
#                  the doctest suites as wasm, run under node; then tests/js/wasm_api.test.mjs checks the wasm
#                  API (examples/web/nanotorch.js) against native nanotorch and onnxruntime-node (docs/WASM.md)
#   clang-release  (only when named) CMake + clang++ Release, -march=native (suites and bench; the MPI ctests too)
#   gcc-scalar     Meson + g++ -O0 (the kernels and kernel suites -O1), NANOTORCH_NO_SIMD (the scalar
#                  kernels), no -march: every suite, the
#                  ODR test and test_mpi under `meson test` (meson.build's check too); then every
#                  public header compiled alone without xsimd's transitive includes (CMake target
#                  nanotorch_header_check)
#   clang-asan     CMake + clang++ -O0 -gline-tables-only (the kernels and kernel suites -O1),
#                  AddressSanitizer + UndefinedBehaviorSanitizer, plus the
#                  fuzz targets' seeds and regression inputs replayed as ctests; no MPI: LeakSanitizer
#                  reports Open MPI's own never-freed allocations
#   clang-tsan     CMake + clang++ -O0 -gline-tables-only (the kernels and kernel suites -O1),
#                  -march=native, or x86-64-v3 (AVX2 + FMA) on an AVX-512 host, so that the
#                  AVX2 kernels run there too; ThreadSanitizer, every suite with 3 pool threads
#                  (suites only: no examples, no bench); no MPI: Open MPI's uninstrumented
#                  shared-memory transport and progress engine make TSan report races that are not
#                  ours (our MPI code is single-threaded: MPI_THREAD_FUNNELED)
#   install        install to a scratch prefix (CMake and Meson), then build and run the consumer
#                  app via find_package, via pkg-config (both .pc files) and via add_subdirectory
#   fuzz           scripts/fuzz.sh: every libFuzzer target (tests/fuzz) for 45 s under ASan+UBSan (one per core),
#                  seeded from real files, then every committed seed and regression input replayed
#   valgrind       scripts/valgrind.sh: memcheck (leaks included) on a short mnist_train run and on
#                  onnx_run with IDX, PNG and zero inputs and on its error path
# The test builds set NANOTORCH_SEPARATE_ONNX_OPS / separate_onnx_ops (the ONNX op table compiled
# once, not in each program: a third of the build time), NANOTORCH_SEPARATE_ONNX / separate_onnx
# (likewise the runtime, codec and exporter) and NANOTORCH_SEPARATE_KERNELS / separate_kernels (the
# compute kernels' entry points: the last two take a third off gcc-release's compile CPU time); the
# header-only default is what install, the header check, the wasm page module, fuzz and valgrind
# build. The CMake test builds also set
# NANOTORCH_TEST_PCH (the suites share one precompiled header); Meson's gcc-scalar and the wasm
# suites compile without it, so a suite that forgets an include still fails there. Build trees live in build/ci-<step>. Every step runs even after a failure; the script exits
# non-zero if any step failed and ends with the line `test.sh: N passed, N failed`.
set -uo pipefail  # no -e here: a failing step is recorded, and the remaining steps still run

# ---- configuration ----
# Debian packages the steps need. Add new needs here (e.g. python3-onnx, nodejs npm).
APT_PACKAGES=(
  build-essential g++ clang cmake meson ninja-build pkg-config
  libxsimd-dev doctest-dev libstb-dev
  libclang-rt-14-dev  # clang's sanitizer runtime (clang-asan)
  python3-onnx        # onnx.checker for onnx-interop (run with /usr/bin/python3)
  python3-torch       # onnx-interop: PyTorch 1.13 exports the models tests/python/make_torch_models.py checks
  libonnx-testdata    # ONNX 1.12 backend node tests: the onnx_conformance ctest
  chromium            # the draw-a-digit page's end-to-end test (driven by npm playwright-core)
  python3             # python3 -m http.server for scripts/serve.sh
  valgrind            # memcheck over mnist_train and onnx_run (valgrind step)
  dataset-fashion-mnist  # Fashion-MNIST (.gz IDX) for fashion_train (scripts/fetch_fashion_mnist.sh)
  emscripten          # the wasm step: em++ (with binaryen's wasm-opt), see docs/WASM.md
  libopenmpi-dev openmpi-bin  # data-parallel training (distributed/mpi.hpp): MPI ctests in gcc-release, clang-release
)
# nodejs + npm come from Debian only when no npm is on the PATH (lib.sh need_npm): a machine that
# already has a newer Node.js keeps it.
ALL_STEPS=(lists gcc-release onnx-interop browser wasm gcc-scalar clang-asan clang-tsan install fuzz valgrind)
# Steps that run only when named (bash scripts/test.sh clang-release): clang-release repeats what
# gcc-release checks with the other compiler, which clang-asan (warnings, every program) and
# clang-tsan (optimised, -march=native) already cover; it stays for bench numbers under clang.
OPTIONAL_STEPS=(clang-release)

usage() {
  cat <<EOF
usage: bash scripts/test.sh [--quick] [--no-install] [STEP...]

Builds and tests nanotorch in every supported configuration; see the comment at the top of this
file. Steps: ${ALL_STEPS[*]}; only when named: ${OPTIONAL_STEPS[*]}

  --quick       run only gcc-release (configure + build + ctest), for a fast edit-test loop
  --no-install  do not install dependencies (skips apt-get and npm ci)
  --help        show this help
  STEP...       run only the named steps, in the order given
EOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2

install_deps=1
steps=()
while (($#)); do
  case $1 in
    --quick) steps=(gcc-release) ;;
    --no-install) install_deps=0 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "test.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *)
      if [[ " ${ALL_STEPS[*]} ${OPTIONAL_STEPS[*]} " != *" $1 "* ]]; then
        echo "test.sh: unknown step '$1' (steps: ${ALL_STEPS[*]} ${OPTIONAL_STEPS[*]})" >&2
        exit 2
      fi
      steps+=("$1")
      ;;
  esac
  shift
done
((${#steps[@]})) || steps=("${ALL_STEPS[@]}")

jobs=$(nproc 2>/dev/null || echo 2)
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)

# ---- dependencies ----
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

apt_deps() {
  apt_install_missing "${APT_PACKAGES[@]}"
  need_npm
}

# ---- npm step (JavaScript dependencies) ----
# The exact tree of package-lock.json (onnxruntime-node, onnxjs for onnx-interop; onnxruntime-web,
# playwright-core for the browser demo). ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's
# postinstall would download CUDA libraries from outside the npm registry, which fails here; the CPU
# binary it needs ships inside the npm package.
npm_deps() {
  [ -f package-lock.json ] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "package-lock.json exists but npm is not installed (add nodejs npm to APT_PACKAGES)" >&2
    return 1
  fi
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
}

step_deps() {
  apt_deps
  npm_deps
  # Real MNIST up front, so the suites' real-data cases (test_training, test_data, test_idx) run
  # instead of skipping; Fashion-MNIST likewise for test_transforms' case.
  bash scripts/fetch_mnist.sh data/mnist
  bash scripts/fetch_fashion_mnist.sh data/fashion-mnist
}

# ---- steps ----
# Each step function runs in a subshell with `set -e`, so its first failing command fails it.

step_lists() {
  local bad=0 f name listed
  listed=$(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' tests/suites.txt | grep -v -e '^#' -e '^$' || true)
  for f in tests/test_*.cpp; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .cpp)
    if ! grep -qx "$name" <<<"$listed"; then
      echo "tests/$name.cpp is not listed in tests/suites.txt (add a line '$name')"
      bad=1
    fi
  done
  while read -r name; do
    [ -n "$name" ] || continue
    if [ ! -f "tests/$name.cpp" ]; then
      echo "tests/suites.txt lists '$name' but tests/$name.cpp does not exist"
      bad=1
    fi
  done <<<"$listed"
  # Advisory only: headers the umbrella does not include (opt-in headers may be left out on purpose).
  local h
  for h in $(cd include && find nanotorch -name '*.hpp' ! -name nanotorch.hpp | sort); do
    grep -q "#include <$h>" include/nanotorch/nanotorch.hpp || echo "note: include/$h is not in the umbrella nanotorch.hpp"
  done
  echo "suites: $(wc -w <<<"$listed" | tr -d ' ') listed"
  return "$bad"
}

# cmake_build_test NAME CXX BUILD_TYPE [cmake -D options...]
# Tests and examples are always on; the options name the rest. Build time is most of CI's time
# (each TU that runs the ONNX runtime compiles every op's kernels), so each configuration builds
# what it exists to check: bench programs and the header self-containment TUs only where their
# flags differ in a way that matters (see each step).
cmake_build_test() {
  local dir=build/ci-$1 cxx=$2 type=$3
  shift 3
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_CXX_COMPILER="$cxx" \
    -DNANOTORCH_BUILD_TESTS=ON -DNANOTORCH_BUILD_EXAMPLES=ON "$@"
  cmake --build "$dir" -j"$jobs"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2
}

# Everything: suites, examples, bench (its --quick runs validate the SIMD kernels), headers alone.
step_gcc_release() {
  cmake_build_test gcc-release g++ Release -DNANOTORCH_NATIVE=ON -DNANOTORCH_SANITIZE=OFF -DNANOTORCH_FORCE_NO_SIMD=OFF \
    -DNANOTORCH_BUILD_BENCH=ON -DNANOTORCH_HEADER_CHECK=OFF -DNANOTORCH_SEPARATE_ONNX_OPS=ON -DNANOTORCH_SEPARATE_ONNX=ON -DNANOTORCH_SEPARATE_KERNELS=ON -DNANOTORCH_TEST_PCH=ON
}
# The second compiler's warnings and optimised codegen: suites and bench (clang-asan builds the
# examples with the same warning flags).
step_clang_release() {
  cmake_build_test clang-release clang++ Release -DNANOTORCH_NATIVE=ON -DNANOTORCH_SANITIZE=OFF -DNANOTORCH_FORCE_NO_SIMD=OFF \
    -DNANOTORCH_BUILD_BENCH=ON -DNANOTORCH_HEADER_CHECK=OFF -DNANOTORCH_BUILD_EXAMPLES=OFF -DNANOTORCH_SEPARATE_ONNX_OPS=ON -DNANOTORCH_SEPARATE_ONNX=ON -DNANOTORCH_SEPARATE_KERNELS=ON -DNANOTORCH_TEST_PCH=ON
}
# The scalar kernels through every suite, built by Meson (so this step is also meson.build's
# check: its suites, the ODR test and the MPI tests under `meson test`); then every public header
# compiled alone, without xsimd's transitive includes (CMake's header-check target, header-only
# default). No -march, assertions on, -O0 but for the kernels and the kernel suites at -O1
# (hot_code_args): what this build checks (the scalar kernels' results) does not depend on the
# optimisation level; a suite compiles in 60 % of its -O1 time, and the suites spend their time in
# the kernels.
step_gcc_scalar() {
  local dir=build/ci-gcc-scalar
  local -a opts=(-Doptimization=0 -Dhot_code_args=-O1 -Ddebug=false -Dtests=enabled -Dnative=false -Dforce_no_simd=true
    -Dseparate_onnx_ops=true -Dseparate_onnx=true -Dseparate_kernels=true)
  if [ -f "$dir/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$dir" "${opts[@]}"
  else
    rm -rf "$dir"
    CXX=g++ meson setup "$dir" "${opts[@]}"
  fi
  meson compile -C "$dir" -j "$jobs"
  meson test -C "$dir" --print-errorlogs --num-processes 2
  echo "--- every public header alone (NANOTORCH_NO_SIMD)"
  cmake -S . -B build/ci-header-check "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
    -DNANOTORCH_BUILD_TESTS=ON -DNANOTORCH_BUILD_EXAMPLES=OFF -DNANOTORCH_BUILD_BENCH=OFF -DNANOTORCH_MPI=OFF \
    -DNANOTORCH_NATIVE=OFF -DNANOTORCH_FORCE_NO_SIMD=ON -DNANOTORCH_HEADER_CHECK=ON
  cmake --build build/ci-header-check --target nanotorch_header_check -j"$jobs"
}
# -O0 with line tables only: ASan's reports name file and line, and full debug info would add a
# seventh to the compile time. The kernels' one copy (tests/support/kernels.cpp) and the kernel
# suites at -O1 (NANOTORCH_HOT_CODE_FLAGS): at -O0 the ctest run took 214 s (test_conv alone 120 s,
# test_gemm 44), so 36 s (14 and 5), for about 45 s more compile time.
step_clang_asan() {
  cmake_build_test clang-asan clang++ Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -gline-tables-only" -DNANOTORCH_HOT_CODE_FLAGS=-O1 \
    -DNANOTORCH_NATIVE=ON -DNANOTORCH_SANITIZE=ON -DNANOTORCH_FORCE_NO_SIMD=OFF \
    -DNANOTORCH_BUILD_BENCH=OFF -DNANOTORCH_HEADER_CHECK=OFF -DNANOTORCH_FUZZ_REPLAY=ON -DNANOTORCH_MPI=OFF \
    -DNANOTORCH_SEPARATE_ONNX_OPS=ON -DNANOTORCH_SEPARATE_ONNX=ON -DNANOTORCH_SEPARATE_KERNELS=ON -DNANOTORCH_TEST_PCH=ON
}

# The suites only: they drive every threaded kernel with 1, 2 and 3 threads; the examples would
# add build time and no threading of their own. Line tables: TSan's reports name file and line.
# -O0 but for the kernels and the kernel suites at -O1 (NANOTORCH_HOT_CODE_FLAGS), where the
# threaded loops are: the build took 454 CPU-s at -O1 everywhere and 242 this way, and the suites
# ran in 30-46 s against 25. Its clang build of the kernels with optimisation (-march=native, or
# AVX2 as below) stands in for clang-release in CI, with the wasm step (LLVM -O2 over the suites it runs) and the fuzz step
# (clang -O2 over the readers, the ONNX runtime and its op table).
# On a host with AVX-512 it builds for AVX2 + FMA (x86-64-v3) instead of -march=native, so that
# one run tests both vector widths: gcc-release the AVX-512 kernels, this step the AVX2 ones
# (conv_lanes.hpp's AVX2 LanesIsa, weight_grad_lanes.hpp's AVX2 blocks, the GEMMs' 6-row tiles),
# which otherwise no step would run on such a host.
step_clang_tsan() {
  local -a isa=(-DNANOTORCH_NATIVE=ON)
  if grep -qw avx512f /proc/cpuinfo && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    echo "--- AVX-512 host: the TSan build targets x86-64-v3 (AVX2 + FMA)"
    isa=(-DNANOTORCH_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3)
  fi
  cmake_build_test clang-tsan clang++ RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -gline-tables-only" \
    -DNANOTORCH_HOT_CODE_FLAGS=-O1 \
    "${isa[@]}" -DNANOTORCH_SANITIZE=OFF -DNANOTORCH_TSAN=ON \
    -DNANOTORCH_FORCE_NO_SIMD=OFF -DNANOTORCH_BUILD_BENCH=OFF -DNANOTORCH_HEADER_CHECK=OFF -DNANOTORCH_BUILD_EXAMPLES=OFF \
    -DNANOTORCH_MPI=OFF -DNANOTORCH_SEPARATE_ONNX_OPS=ON -DNANOTORCH_SEPARATE_ONNX=ON -DNANOTORCH_SEPARATE_KERNELS=ON -DNANOTORCH_TEST_PCH=ON
}

# Reuses gcc-release's build tree (the examples are built there); configures it when that step has
# not run yet. Runs both checkers even when the first fails, so one run shows every disagreement.
step_browser() {
  local build=build/ci-gcc-release out=build/ci-browser rc=0
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
      -DNANOTORCH_BUILD_EXAMPLES=ON -DNANOTORCH_NATIVE=ON
  fi
  cmake --build "$build" --target mnist_train -j"$jobs"
  if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/onnxruntime-web ]; then
    echo "node_modules is missing playwright-core/onnxruntime-web: run without --no-install, or ONNXRUNTIME_NODE_INSTALL=skip npm ci" >&2
    return 1
  fi
  bash scripts/fetch_mnist.sh data/mnist
  echo "--- build_wasm.sh --web: the page's nanotorch-wasm (shares the wasm step's tree)"
  bash scripts/build_wasm.sh --out build/ci-wasm --web
  export NANOTORCH_WASM="$root/build/ci-wasm/web/nanotorch_wasm.wasm"
  rm -rf "$out"
  echo "--- mnist_train, 1 epoch (the seed's recipe) -> $out"
  "$build/examples/mnist_train" --data data/mnist --epochs 1 --out "$out"
  echo "--- the demo page in chromium: draw, predict, clear"
  node tests/js/e2e_browser.mjs "$out/onnx_model.onnx" --count 50 --screenshot "$out/demo.png" || rc=1
  echo "--- teaching the page a handwriting style in chromium"
  node tests/js/e2e_teach.mjs "$out/onnx_model.onnx" --screenshot "$out/teach.png" || rc=1
  return "$rc"
}

step_onnx_interop() {
  local build=build/ci-gcc-release out=build/ci-onnx-interop rc=0
  if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "--- $build is not configured yet (gcc-release does that): configuring it"
    cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
      -DNANOTORCH_BUILD_EXAMPLES=ON -DNANOTORCH_NATIVE=ON
  fi
  cmake --build "$build" --target export_check fashion_train onnx_run -j"$jobs"
  if [ ! -d node_modules/onnxruntime-node ] || [ ! -d node_modules/onnxjs ]; then
    echo "node_modules is missing onnxruntime-node/onnxjs: run without --no-install, or ONNXRUNTIME_NODE_INSTALL=skip npm ci" >&2
    return 1
  fi

  echo "--- MNIST and Fashion-MNIST"
  bash scripts/fetch_mnist.sh data/mnist
  bash scripts/fetch_fashion_mnist.sh data/fashion-mnist
  rm -rf "$out"
  echo "--- fashion_train smoke run (1 epoch on 2000 images: augmentation, OneCycleLR, SVGs, export)"
  "$build/examples/fashion_train" --data data/fashion-mnist --epochs 1 --limit 2000 --out "$out/fashion_train"
  for f in metrics.csv curves.svg confusion.svg model.ntsd onnx_model.onnx; do
    [ -s "$out/fashion_train/$f" ] || { echo "fashion_train did not write $f" >&2; return 1; }
  done
  echo "--- export_check -> $out"
  "$build/examples/export_check" "$out" --data data/mnist --count 100 \
    --fashion-data data/fashion-mnist --fashion-weights "$out/fashion_train/model.ntsd"
  echo "--- onnx.checker (python3-onnx)"
  /usr/bin/python3 tests/python/check_models.py "$out" || rc=1
  echo "--- onnxruntime-node and ONNX.js"
  node tests/js/check_runtimes.mjs "$out" || rc=1
  echo "--- models other exporters write (python3-torch, onnx.helper): onnx_run vs onnxruntime-node"
  /usr/bin/python3 tests/python/make_torch_models.py "$out/torch_models" || rc=1
  if [ -f "$out/torch_models/manifest.json" ]; then
    node tests/js/check_torch_models.mjs "$out/torch_models" "$build/examples/onnx_run" || rc=1
  else
    echo "make_torch_models.py wrote no manifest.json" >&2
    rc=1
  fi
  return "$rc"
}

# The page's wasm module and the suites under node, then the API test against native nanotorch
# (export_check's canvas model; wasm_reference's native outputs on 1000 digits, both from
# gcc-release's tree). Runs the API test even when a suite failed, so one run shows both.
step_wasm() {
  local build=build/ci-gcc-release out=build/ci-wasm rc=0 size
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
      -DNANOTORCH_BUILD_EXAMPLES=ON -DNANOTORCH_NATIVE=ON
  fi
  cmake --build "$build" --target export_check wasm_reference -j"$jobs"
  bash scripts/fetch_mnist.sh data/mnist
  echo "--- build_wasm.sh: the page's module and the suites, run under node"
  bash scripts/build_wasm.sh --out "$out" --web --tests --run || rc=1
  size=$(stat -c %s "$out/web/nanotorch_wasm.wasm")
  echo "nanotorch_wasm.wasm: $size bytes (limit 1048576)"
  ((size <= 1048576)) || { echo "nanotorch_wasm.wasm is larger than 1 MB" >&2; rc=1; }
  echo "--- the wasm API against native nanotorch and onnxruntime-node"
  rm -rf "$out/ref"
  "$build/examples/export_check" "$out/ref" --data data/mnist --count 1
  "$build/examples/wasm_reference" "$out/ref/canvas_opset9.onnx" data/mnist/t10k-images-idx3-ubyte 1000 "$out/ref/native.f32"
  node tests/js/wasm_api.test.mjs "$out/web/nanotorch_wasm.wasm" "$out/ref/canvas_opset9.onnx" "$out/ref/native.f32" \
    data/mnist || rc=1
  return "$rc"
}

# Two lanes that share nothing run side by side (the consumers' compiles are most of the step, one
# core each): the CMake package (install, find_package, its pkg-config file) and the source-tree
# and Meson routes (add_subdirectory, meson install, its pkg-config file). Each lane's output is
# printed when both have finished; the step fails if either lane did.
install_lane_cmake() {
  local prefix=$root/build/ci-install/prefix
  echo "--- CMake install into $prefix"
  cmake -S . -B build/ci-install "${generator[@]}" -DCMAKE_CXX_COMPILER=g++ -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DNANOTORCH_BUILD_TESTS=OFF -DNANOTORCH_BUILD_EXAMPLES=OFF -DNANOTORCH_BUILD_BENCH=OFF
  cmake --build build/ci-install
  cmake --install build/ci-install --prefix "$prefix"

  echo "--- consumer via find_package(nanotorch)"
  cmake -S tests/cmake_import -B build/ci-cmake-import "${generator[@]}" -DCMAKE_CXX_COMPILER=g++ \
    -DCMAKE_PREFIX_PATH="$prefix"
  cmake --build build/ci-cmake-import
  ctest --test-dir build/ci-cmake-import --output-on-failure --no-tests=error

  echo "--- consumer via pkg-config (CMake-generated nanotorch.pc)"
  PKG_CONFIG_PATH="$prefix/share/pkgconfig" CXX=g++ bash tests/pkgconfig_import/build.sh build/ci-pkgconfig-import
}
install_lane_source_meson() {
  local meson_prefix=$root/build/ci-meson-install/prefix mdir=build/ci-meson-install
  echo "--- consumer via add_subdirectory"
  cmake -S tests/cmake_import -B build/ci-subdir-import "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ \
    -DNANOTORCH_SOURCE_DIR="$root"
  cmake --build build/ci-subdir-import
  ctest --test-dir build/ci-subdir-import --output-on-failure --no-tests=error

  echo "--- Meson install into $meson_prefix, consumer via its nanotorch.pc"
  if [ -f "$mdir/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$mdir" --prefix="$meson_prefix" -Dtests=disabled
  else
    rm -rf "$mdir"
    CXX=g++ meson setup "$mdir" --prefix="$meson_prefix" -Dtests=disabled
  fi
  meson install -C "$mdir" --quiet
  PKG_CONFIG_PATH="$meson_prefix/share/pkgconfig" CXX=clang++ bash tests/pkgconfig_import/build.sh build/ci-meson-pkgconfig-import
}
step_install() {
  local logs=$root/build/ci-install-logs rc=0 pid_cmake pid_meson lane
  rm -rf "$root/build/ci-install/prefix" "$root/build/ci-meson-install/prefix"  # scratch prefixes: no stale headers
  mkdir -p "$logs"
  # Both in the background: under `||` bash would ignore the lane's own set -e.
  (set -e; install_lane_cmake) >"$logs/cmake.log" 2>&1 &
  pid_cmake=$!
  (set -e; install_lane_source_meson) >"$logs/source-meson.log" 2>&1 &
  pid_meson=$!
  wait "$pid_cmake" || { rc=1; echo "install: the CMake lane failed" >&2; }
  wait "$pid_meson" || { rc=1; echo "install: the add_subdirectory/Meson lane failed" >&2; }
  for lane in cmake source-meson; do
    echo "--- lane $lane ($logs/$lane.log)"
    cat "$logs/$lane.log"
  done
  return "$rc"
}

step_fuzz() {
  bash scripts/fetch_mnist.sh data/mnist  # MNIST slices seed fuzz_idx
  NANOTORCH_FUZZ_BUILD_DIR=$root/build/ci-fuzz bash scripts/fuzz.sh --seconds "${NANOTORCH_FUZZ_SECONDS:-45}" --jobs "$jobs"
}

step_valgrind() {
  bash scripts/fetch_mnist.sh data/mnist
  bash scripts/valgrind.sh build/ci-valgrind
}

# ---- runner ----
now_ms() { date +%s%3N; }
fmt_secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

names=() results=() times=()
passed=0 failed=0
run_step() {
  local name=$1 fn=$2 t0 rc ms
  printf '\n==> [%s]\n' "$name"
  t0=$(now_ms)
  (
    set -e
    "$fn"
  )
  rc=$?
  ms=$(($(now_ms) - t0))
  names+=("$name") times+=("$(fmt_secs "$ms")")
  if ((rc == 0)); then
    results+=(PASS)
    passed=$((passed + 1))
    printf '==> [%s] PASS in %ss\n' "$name" "$(fmt_secs "$ms")"
  else
    results+=(FAIL)
    failed=$((failed + 1))
    printf '==> [%s] FAIL (exit %d) in %ss\n' "$name" "$rc" "$(fmt_secs "$ms")"
  fi
}

t_start=$(now_ms)
echo "nanotorch test.sh in $root: steps ${steps[*]} (jobs=$jobs)"
((install_deps)) && run_step deps step_deps
for s in "${steps[@]}"; do
  run_step "$s" "step_${s//-/_}"
done

printf '\n==================== summary ====================\n'
printf '%-16s %-6s %8s\n' step result seconds
for i in "${!names[@]}"; do
  printf '%-16s %-6s %8s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
done
printf 'total %ss\n' "$(fmt_secs $(($(now_ms) - t_start)))"
echo "test.sh: $passed passed, $failed failed"
((failed == 0))
