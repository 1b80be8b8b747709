#!/usr/bin/env bash
# tests/onnx_run_cli.sh — runs the built onnx_run tool on real files and checks what it prints.
#
#   bash tests/onnx_run_cli.sh ONNX_RUN SCRATCH_DIR [TRAINED_MODEL.onnx]
#
# ONNX_RUN is the built binary, SCRATCH_DIR a directory the script may create and fill (it is
# emptied first). Checks:
#   (a) tests/data/onnx/relu_opset9.onnx (input x [N, 3]) with no input (zeros of [1, 3]) and with
#       the golden tensor_w.pb; --quiet and --help; and, when Debian's libonnx-testdata is
#       installed, test_relu's input_0.pb, comparing the printed values with output_0.pb;
#   (b) a missing model, a truncated model, bad --input specs (idx:nonexistent:3, an out-of-range
#       idx index, a malformed spec, a corrupt image), unknown flags and a stray argument: each
#       must exit 1 with exactly one line "onnx_run: error: ..." on stderr;
#   (c) with TRAINED_MODEL (e.g. out/onnx_model.onnx from mnist_train) and data/mnist present:
#       the first MNIST test digit must be predicted as 7.
# Prints PASS/FAIL/SKIP per check and exits 1 if any check failed.
set -uo pipefail

if (($# < 2)); then
  echo "usage: bash tests/onnx_run_cli.sh ONNX_RUN SCRATCH_DIR [TRAINED_MODEL.onnx]" >&2
  exit 2
fi
tool=$1
scratch=$2
trained=${3:-}
root=${NANOTORCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
golden=$root/tests/data/onnx
relu=$golden/relu_opset9.onnx

if [[ ! -x $tool ]]; then
  echo "onnx_run_cli.sh: '$tool' is not an executable" >&2
  exit 2
fi
rm -rf "$scratch" && mkdir -p "$scratch" || exit 2

passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "SKIP $1: $2"; }

# run NAME ARGS...: runs the tool, leaving stdout/stderr in $scratch/NAME.{out,err} and the status in $status.
run() {
  local name=$1
  shift
  "$tool" "$@" >"$scratch/$name.out" 2>"$scratch/$name.err"
  status=$?
}

# expect_ok NAME LINE... ARGS are given after "--": status 0, empty stderr, each LINE on stdout.
expect_ok() {
  local name=$1
  shift
  local lines=()
  while (($#)) && [[ $1 != -- ]]; do lines+=("$1"); shift; done
  shift
  run "$name" "$@"
  if ((status != 0)); then
    fail "$name" "exit status $status, stderr: $(cat "$scratch/$name.err")"
    return
  fi
  if [[ -s $scratch/$name.err ]]; then
    fail "$name" "unexpected stderr: $(cat "$scratch/$name.err")"
    return
  fi
  local l
  for l in "${lines[@]}"; do
    if ! grep -qxF -- "$l" "$scratch/$name.out"; then
      fail "$name" "missing line '$l' in: $(cat "$scratch/$name.out")"
      return
    fi
  done
  pass "$name"
}

# expect_error NAME ARGS...: status 1 and exactly one stderr line starting "onnx_run: error: ".
expect_error() {
  local name=$1
  shift
  run "$name" "$@"
  local err=$scratch/$name.err
  if ((status != 1)); then
    fail "$name" "exit status $status (expected 1), stderr: $(cat "$err")"
  elif [[ $(wc -l <"$err") -ne 1 ]] || ! head -n 1 "$err" | grep -q '^onnx_run: error: '; then
    fail "$name" "stderr is not one 'onnx_run: error:' line: $(cat "$err")"
  else
    pass "$name ($(cat "$err"))"
  fi
}

# ---- (a) runs that must succeed ----

if [[ ! -f $relu ]]; then
  fail "golden-model" "$relu not found (set NANOTORCH_SOURCE_DIR)"
else
  expect_ok relu-zeros "input x [1, 3]: zeros" "output y [1, 3]: 0 0 0" -- "$relu"
  if ! head -n 1 "$scratch/relu-zeros.out" | grep -q '^graph relu_graph (ir_version 4, opset 9)$'; then
    fail relu-graph-summary "first line is not the format_graph header: $(head -n 1 "$scratch/relu-zeros.out")"
  else
    pass relu-graph-summary
  fi
  expect_ok relu-pb "input x [2, 3]: tensor $golden/tensor_w.pb [2, 3]" "output y [2, 3]: 0.5 0 2.25 0 0 3" \
    -- "$relu" --input "$golden/tensor_w.pb"
  run relu-quiet "$relu" --quiet --input "$golden/tensor_w.pb"
  if ((status == 0)) && [[ ! -s $scratch/relu-quiet.out ]]; then
    pass "relu-quiet (no 10-value output, so nothing printed)"
  else
    fail relu-quiet "status $status, stdout: $(cat "$scratch/relu-quiet.out")"
  fi
fi
run help --help
if ((status == 0)) && head -n 1 "$scratch/help.out" | grep -q '^usage: onnx_run MODEL.onnx'; then
  pass help
else
  fail help "status $status, stdout: $(head -n 2 "$scratch/help.out")"
fi

# ONNX backend test data: compare the first 20 printed values of Relu with output_0.pb. Its
# payload is the trailing raw_data field (tag 0x4A, length 240 = 60 floats), read with od.
onnx_relu=/usr/share/libonnx-testdata/data/node/test_relu
if [[ -f $onnx_relu/model.onnx && -f $onnx_relu/test_data_set_0/input_0.pb ]]; then
  expected_pb=$onnx_relu/test_data_set_0/output_0.pb
  size=$(stat -c %s "$expected_pb")
  header=$(od -An -tx1 -j $((size - 243)) -N 3 "$expected_pb" | tr -d ' \n')
  run onnx-relu "$onnx_relu/model.onnx" --input "$onnx_relu/test_data_set_0/input_0.pb"
  printed=$(grep '^output y \[3, 4, 5\]: ' "$scratch/onnx-relu.out" | sed 's/^[^:]*: //; s/ \.\.\.$//')
  if ((status != 0)) || [[ -z $printed ]]; then
    fail onnx-relu "status $status, stdout: $(cat "$scratch/onnx-relu.out") stderr: $(cat "$scratch/onnx-relu.err")"
  elif [[ $header != 4af001 ]]; then
    skip onnx-relu-values "output_0.pb does not end in a 240-byte raw_data field (header $header)"
  else
    expected=$(tail -c 240 "$expected_pb" | od -An -v -tf4 | tr -s ' \n' '\n' | grep -v '^$' | head -n 20)
    # The tool prints 6 significant digits: allow a relative error of 1e-5 (plus 1e-6 absolute).
    if paste <(tr ' ' '\n' <<<"$printed") <(echo "$expected") | awk '
        NF != 2 { bad = 1 }
        { d = $1 - $2; if (d < 0) d = -d; t = ($2 < 0 ? -$2 : $2) * 1e-5 + 1e-6; if (d > t) bad = 1; n++ }
        END { exit (bad || n != 20) }'; then
      pass "onnx-relu (20 values match output_0.pb)"
    else
      fail onnx-relu "printed [$printed], expected [$(tr '\n' ' ' <<<"$expected")]"
    fi
  fi
else
  skip onnx-relu "libonnx-testdata is not installed ($onnx_relu)"
fi

# ---- (b) errors: one line on stderr, status 1 ----

idx=$scratch/two.idx  # a tiny IDX image file: 2 images of 28x28
{ printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x1c\x00\x00\x00\x1c'; head -c $((2 * 784)) /dev/zero; } >"$idx"
printf 'not an image at all' >"$scratch/bad.png"
[[ -f $relu ]] && head -c 60 "$relu" >"$scratch/truncated.onnx"
canvas_model=${trained:-$relu}  # any model works for spec errors that are found before binding

expect_error no-args
expect_error missing-model "$scratch/no-such-model.onnx"
expect_error truncated-model "$scratch/truncated.onnx"
expect_error unknown-flag "$relu" --frobnicate
expect_error stray-argument "$relu" "$relu"
expect_error input-without-value "$relu" --input
expect_error idx-missing-file "$canvas_model" --input "idx:$scratch/nonexistent:3"
expect_error idx-out-of-range "$canvas_model" --input "idx:$idx:999999"
expect_error idx-bad-spec "$canvas_model" --input "idx:$idx"
expect_error corrupt-image "$canvas_model" --input "$scratch/bad.png"
expect_error too-many-inputs "$relu" --input "$golden/tensor_w.pb" --input "$golden/tensor_w.pb"
expect_error image-for-non-image-input "$relu" --input "idx:$idx:0"

# ---- (c) a trained model on the first MNIST test digit ----

mnist=""
for f in "$root/data/mnist/t10k-images-idx3-ubyte" "$root/data/mnist/t10k-images-idx3-ubyte.gz"; do
  [[ -f $f ]] && mnist=$f && break
done
if [[ -z $trained ]]; then
  skip mnist-digit-0 "no trained model given (argument 3)"
elif [[ ! -f $trained ]]; then
  skip mnist-digit-0 "trained model $trained does not exist"
elif [[ -z $mnist ]]; then
  skip mnist-digit-0 "no data/mnist/t10k-images-idx3-ubyte[.gz] under $root"
else
  run mnist-digit-0 "$trained" --quiet --input "idx:$mnist:0"
  if ((status == 0)) && grep -q '^prediction: 7 (' "$scratch/mnist-digit-0.out"; then
    pass "mnist-digit-0 ($(cat "$scratch/mnist-digit-0.out"))"
  else
    fail mnist-digit-0 "status $status, stdout: $(cat "$scratch/mnist-digit-0.out") stderr: $(cat "$scratch/mnist-digit-0.err")"
  fi
fi

echo "onnx_run_cli.sh: $passed passed, $failed failed"
((failed == 0))
