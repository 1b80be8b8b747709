#!/usr/bin/env bash
# Consumer-side packaging test via pkg-config (run by scripts/test.sh, step "install"): builds
# the same app as tests/cmake_import with nothing but `$CXX $(pkg-config --cflags --libs nanotorch)`
# and runs it. The caller points PKG_CONFIG_PATH at <prefix>/share/pkgconfig.
# Usage: tests/pkgconfig_import/build.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out"
cxx=${CXX:-c++}
flags=$(pkg-config --cflags --libs nanotorch)
echo "pkg-config --cflags --libs nanotorch: $flags"
# -Wall ... -Werror: the headers must compile cleanly in user code, where -I is not a system dir.
# shellcheck disable=SC2086  # $flags must split into words
"$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror "$here/../cmake_import/main.cpp" $flags -o "$out/consumer"
"$out/consumer"
# Again optimised for this machine: the SIMD kernels' widest paths (AVX-512 where the CPU has it)
# are only compiled with -march, and g++ 12 warns inside some AVX-512 intrinsics at -O2.
# shellcheck disable=SC2086
"$cxx" -std=c++17 -O2 -march=native -Wall -Wextra -Wpedantic -Werror "$here/../cmake_import/main.cpp" $flags \
  -o "$out/consumer_native"
"$out/consumer_native"
