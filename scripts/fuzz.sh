#!/usr/bin/env bash
# scripts/fuzz.sh — builds the libFuzzer targets (tests/fuzz/targets.txt) with ASan + UBSan,
# seeds their corpora from real files, fuzzes each for a fixed budget, and replays every committed
# regression input. Exits non-zero if any target crashes, leaks, hits undefined behaviour,
# breaks a heap rule, runs an input longer than 1 s, or fails a replay. See docs/RELIABILITY.md.
#
#   bash scripts/fuzz.sh [--seconds N | --runs N] [--jobs N] [--no-build] [TARGET...]
#
#   --seconds N   fuzz each target for N seconds (default 60)
#   --runs N      fuzz each target for N executions instead
#   --jobs N      fuzz N targets at a time (default 1; each target is one single-threaded process)
#   --no-build    use the binaries already in build/fuzz
#   TARGET...     only these targets (default: every line of tests/fuzz/targets.txt)
#
# Needs Debian's clang and libclang-rt-14-dev (libFuzzer + the sanitizer runtimes). Build tree:
# build/fuzz (or $NANOTORCH_FUZZ_BUILD_DIR); corpora: build/fuzz/corpus/<target> (kept between
# runs, so coverage accumulates);
# crash inputs: build/fuzz/artifacts/<target>/. Seeds come from tests/fuzz/seeds/<target>/
# (small committed files, made by tests/fuzz/make_seeds.cpp) plus, when present, real files:
# the ONNX backend test models (/usr/share/libonnx-testdata/data/node/*/model.onnx), the model
# and checkpoint a training run leaves in out/, and slices of data/mnist (raw and gzipped).
# A crash found here becomes a regression: copy the artifact to tests/fuzz/regressions/<target>/
# (a descriptive name), fix the reader, and the <target>_replay ctest keeps it fixed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${NANOTORCH_FUZZ_BUILD_DIR:-$ROOT/build/fuzz}"  # override for a second tree
SECONDS_PER_TARGET=60
RUNS=""
JOBS=1
DO_BUILD=1
TARGETS=()

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    --seconds) SECONDS_PER_TARGET="${2:?--seconds needs a value}"; shift 2 ;;
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --jobs) JOBS="${2:?--jobs needs a value}"; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
if ((${#TARGETS[@]} == 0)); then
  mapfile -t TARGETS < <(grep -v '^[[:space:]]*\(#\|$\)' "$ROOT/tests/fuzz/targets.txt")
fi

# Per-target input size cap: big enough for every seed's interesting prefix, small enough that
# each execution stays fast (the 1 s rule is per input, under ASan).
max_len() {
  case "$1" in
    fuzz_wire) echo 1024 ;;
    fuzz_onnx|fuzz_state_dict) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# ---- build ----
if ((DO_BUILD)); then
  echo "== building $BUILD (clang, libFuzzer + ASan + UBSan)"
  CXX="${CXX:-clang++}" cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DNANOTORCH_FUZZ=ON -DNANOTORCH_BUILD_TESTS=OFF -DNANOTORCH_BUILD_EXAMPLES=OFF \
    -DNANOTORCH_BUILD_BENCH=OFF -DNANOTORCH_INSTALL=OFF \
    -DNANOTORCH_SEPARATE_ONNX_OPS=ON -DNANOTORCH_SEPARATE_ONNX=ON -DNANOTORCH_SEPARATE_KERNELS=ON >/dev/null || exit 1
  cmake --build "$BUILD" -j"$(nproc)" || exit 1
fi

# ---- seed corpora ----
# MNIST slices: the first n images / labels of the t10k files as complete IDX files.
mnist_slices() {  # OUTDIR
  local mn="$ROOT/data/mnist" out="$1" n
  [ -f "$mn/t10k-images-idx3-ubyte" ] && [ -f "$mn/t10k-labels-idx1-ubyte" ] || return 0
  for n in 1 3; do
    { printf '\x00\x00\x08\x03\x00\x00\x00\x0'"$n"'\x00\x00\x00\x1c\x00\x00\x00\x1c'
      tail -c +17 "$mn/t10k-images-idx3-ubyte" | head -c $((784 * n)); } >"$out/mnist_images_$n.idx"
    { printf '\x00\x00\x08\x01\x00\x00\x00\x0'"$n"
      tail -c +9 "$mn/t10k-labels-idx1-ubyte" | head -c "$n"; } >"$out/mnist_labels_$n.idx"
    gzip -n -9 -c "$out/mnist_images_$n.idx" >"$out/mnist_images_$n.idx.gz"
    gzip -n -1 -c "$out/mnist_labels_$n.idx" >"$out/mnist_labels_$n.idx.gz"
  done
}

seed() {  # TARGET SEEDDIR
  local t="$1" dir="$2"
  rm -rf "$dir" && mkdir -p "$dir"
  [ -d "$ROOT/tests/fuzz/seeds/$t" ] && cp "$ROOT/tests/fuzz/seeds/$t"/* "$dir"/
  case "$t" in
    fuzz_onnx|fuzz_wire)
      local f
      for f in /usr/share/libonnx-testdata/data/node/*/model.onnx; do
        [ -f "$f" ] && cp "$f" "$dir/$(basename "$(dirname "$f")").onnx"
      done
      [ -f "$ROOT/out/onnx_model.onnx" ] && cp "$ROOT/out/onnx_model.onnx" "$dir/trained.onnx"
      ;;
    fuzz_idx|fuzz_image) mnist_slices "$dir" ;;
    fuzz_state_dict) [ -f "$ROOT/out/model.ntsd" ] && cp "$ROOT/out/model.ntsd" "$dir/trained.ntsd" ;;
  esac
  return 0
}

# ---- fuzz ----
export ASAN_OPTIONS="detect_leaks=1:malloc_context_size=5:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# fuzz_one TARGET: fuzzes one target; its verdict goes to $BUILD/$t.result (a summary line, or
# FAILED), so that targets can run as parallel jobs.
fuzz_one() {
  local t=$1 bin="$BUILD/fuzz/$1" corpus seeds artifacts log execs corp
  local result="$BUILD/$t.result"
  if [ ! -x "$bin" ]; then
    echo "fuzz.sh: $bin is missing (build failed, or not in tests/fuzz/targets.txt)" >&2
    echo FAILED >"$result"
    return
  fi
  corpus="$BUILD/corpus/$t" seeds="$BUILD/seeds/$t" artifacts="$BUILD/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  seed "$t" "$seeds"
  local budget=(-max_total_time="$SECONDS_PER_TARGET")
  [ -n "$RUNS" ] && budget=(-runs="$RUNS")
  local dict=()  # op types and attribute names steer mutations toward the operators (tests/fuzz/<target>.dict)
  [ -f "$ROOT/tests/fuzz/$t.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$t.dict")
  log="$BUILD/$t.log"
  echo "== fuzzing $t (${budget[*]}; log $log)"
  # -rss_limit_mb / -malloc_limit_mb catch runaway memory even where the in-target heap rule
  # (fuzz_common.hpp) does not look; -timeout=1 makes any input slower than 1 s a finding.
  if TMPDIR="${TMPDIR:-/tmp}" "$bin" "${budget[@]}" "${dict[@]}" -max_len="$(max_len "$t")" -timeout=1 \
       -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" "$corpus" "$seeds" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    corp=$(grep -o 'corp: [0-9]*/[0-9]*[bKM]*b*' "$log" | tail -1 | sed 's/corp: //')
    echo "$t: ${execs:-?} executions, corpus ${corp:-?}" >"$result"
  else
    echo "fuzz.sh: $t FAILED; the report:" >&2
    # From the first error line on: the stack (libFuzzer prints the deadly input's stack on a
    # timeout too), the verdict and where the input was written.
    sed -n '/ERROR\|==fuzz==\|runtime error/,$p' "$log" | grep -v '^#[0-9]* *\(NEW\|REDUCE\|pulse\)' \
      | head -60 >&2
    # The input itself, so that a finding on a CI machine (whose files are gone) can be replayed:
    #   base64 -d > input && build/fuzz/fuzz/<target> input
    local unit
    unit=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | tail -1)
    if [ -n "$unit" ] && [ -f "$unit" ] && [ "$(stat -c %s "$unit")" -le 16384 ]; then
      echo "fuzz.sh: the input ($(stat -c %s "$unit") bytes), base64:" >&2
      base64 -w 100 "$unit" >&2
    fi
    echo FAILED >"$result"
  fi
}

failed=()
summary=()
running=0
for t in "${TARGETS[@]}"; do
  rm -f "$BUILD/$t.result"
  if ((running >= JOBS)); then
    wait -n
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait
for t in "${TARGETS[@]}"; do
  r=$(cat "$BUILD/$t.result" 2>/dev/null || echo FAILED)
  if [ "$r" = FAILED ]; then failed+=("$t"); else summary+=("$r"); fi
done

echo "== replaying tests/fuzz/seeds and tests/fuzz/regressions"
if ! ctest --test-dir "$BUILD" -R '_replay$' --output-on-failure; then
  failed+=("replay")
fi

for line in "${summary[@]}"; do echo "fuzz.sh: $line"; done
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz.sh: ${#TARGETS[@]} target(s) fuzzed clean, regressions replayed"
