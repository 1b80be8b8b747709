#!/usr/bin/env bash
# tests/mpi/equivalence.sh — data-parallel mnist_train follows one process with the global batch.
#
#   bash tests/mpi/equivalence.sh MNIST_TRAIN MPIEXEC SCRATCH_DIR [MNIST_DIR]
#
# 1. One process, batch 64, 100 optimizer steps (6400 training images, one epoch), dropout on,
#    evaluated on 500 test digits: the reference loss of every step and the final accuracy.
# 2. `MPIEXEC -n N mnist_train --distributed` with the same options, N = 2 (per-rank batch 32) and
#    N = 3 (22/21/21): every step's loss of the global batch must agree with the reference within
#    1e-5 relative, and the final test accuracy within 0.1 point.
#    Why 1e-5 and not bit equality: the ranks compute the same sums in another order (each rank's
#    batch-sum of weight gradients first, then the ring allreduce), and float addition is not
#    associative, so the runs differ from the first step in the last bits (~1e-7 relative) and
#    drift slowly; dropout masks, data order and initial weights are identical (BatchShardGuard,
#    DataLoader sharding, broadcast_module), so nothing else separates them.
# 3. Determinism: the N = 3 run repeated must end with byte-identical weights (model.ntsd).
# 4. Resume: a 2-rank run with --checkpoint-every 10 (each write slowed by 200 ms), its mpiexec
#    SIGKILLed once the first checkpoint exists, then resumed with --resume, must end with the
#    2-rank run's weights, bit for bit (rank 0 writes checkpoints; every rank reads the one file).
# The Open MPI settings come from the environment (tests/mpi/CMakeLists.txt). Exit 77 = skipped
# without MNIST.
set -uo pipefail

if (($# < 3)); then
  echo "usage: bash tests/mpi/equivalence.sh MNIST_TRAIN MPIEXEC SCRATCH_DIR [MNIST_DIR]" >&2
  exit 2
fi
tool=$1
mpiexec=$2
scratch=$3
root=${NANOTORCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
mnist=${4:-$root/data/mnist}
rm -rf "$scratch"
mkdir -p "$scratch"
# shellcheck source=tests/mnist_slice.sh
. "$(dirname "${BASH_SOURCE[0]}")/../mnist_slice.sh"
if ! mnist_slice "$mnist" "$scratch/mnist" 6400 500; then
  echo "SKIP: no uncompressed MNIST in $mnist (bash scripts/fetch_mnist.sh)"
  exit 77
fi

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
common=(--data "$scratch/mnist" --epochs 1 --batch-size 64 --limit-test 500 --test-batch-size 500 --seed 3
        --threads 1)

# run NAME [MPI ranks]: trains into $scratch/NAME; the loss log is $scratch/NAME/loss.csv
run() {
  local name=$1 ranks=${2:-0} out=$scratch/$1
  mkdir -p "$out"
  local cmd=("$tool" "${common[@]}" --out "$out" --loss-log "$out/loss.csv")
  ((ranks > 0)) && cmd=("$mpiexec" -n "$ranks" "${cmd[@]}" --distributed)
  if ! "${cmd[@]}" >"$out/stdout.txt" 2>&1; then
    fail "$name: ${cmd[*]} failed:"
    tail -20 "$out/stdout.txt"
    return 1
  fi
}
# The last metrics row's accuracy (column 4).
accuracy() { tail -1 "$1/metrics.csv" | cut -d, -f4; }

start=$(date +%s%N)
run single || exit 1
steps=$(($(wc -l <"$scratch/single/loss.csv") - 1))
[[ $steps == 100 ]] || fail "the reference made $steps optimizer steps, expected 100"
echo "reference: 1 process, batch 64: $steps steps, final loss $(tail -1 "$scratch/single/loss.csv" | cut -d, -f2), accuracy $(accuracy "$scratch/single") %"

for n in 2 3; do
  run "ranks$n" "$n" || continue
  # Step numbers must line up and every loss must agree within 1e-5 relative.
  if ! report=$(paste -d, "$scratch/single/loss.csv" "$scratch/ranks$n/loss.csv" | awk -F, '
      NR == 1 { next }
      $1 != $3 { printf "step %s against %s\n", $1, $3; bad = 1; exit }
      { rel = ($2 - $4) / $2; if (rel < 0) rel = -rel; if (rel > worst) { worst = rel; at = $1 } ; rows++ }
      END { if (bad) exit 1; printf "%d steps, worst relative loss difference %.3g (step %s)\n", rows, worst, at;
            exit (rows == 100 && worst <= 1e-5) ? 0 : 1 }'); then
    fail "$n ranks: losses differ from one process beyond 1e-5 relative: $report"
  else
    echo "$n ranks, per-rank batch 64/$n: $report"
  fi
  a1=$(accuracy "$scratch/single") an=$(accuracy "$scratch/ranks$n")
  if awk -v a="$a1" -v b="$an" 'BEGIN { d = a - b; if (d < 0) d = -d; exit d <= 0.1 ? 0 : 1 }'; then
    echo "$n ranks: test accuracy $an % (one process: $a1 %)"
  else
    fail "$n ranks: test accuracy $an % differs from one process's $a1 % by more than 0.1 point"
  fi
  # Only rank 0 writes: the outputs exist once, and no other rank printed progress.
  [[ -f $scratch/ranks$n/model.ntsd && -f $scratch/ranks$n/onnx_model.onnx ]] || fail "$n ranks: rank 0 wrote no model"
  c=$(grep -c '^Accuracy of the network' "$scratch/ranks$n/stdout.txt")
  [[ $c == 1 ]] || fail "$n ranks: the accuracy line was printed $c times (only rank 0 should print)"
done

run ranks3_again 3 && if cmp -s "$scratch/ranks3/model.ntsd" "$scratch/ranks3_again/model.ntsd"; then
  echo "3 ranks twice: byte-identical weights"
else
  fail "3 ranks twice: the weights differ (the reduction order must not depend on timing)"
fi
# ---- 4. kill and resume ----
out=$scratch/resumed
mkdir -p "$out"
resume_cmd=("$mpiexec" -n 2 "$tool" "${common[@]}" --out "$out" --distributed --checkpoint "$out/run.ckpt"
            --checkpoint-every 10)
# Each checkpoint write pauses 200 ms before its rename (rank 0; the other rank waits in the next
# allreduce), so a fast machine cannot finish the run before the kill lands.
NANOTORCH_CHECKPOINT_PAUSE_MS=200 "${resume_cmd[@]}" >"$out/first.txt" 2>&1 &
job=$!
for ((i = 0; i < 600; i++)); do
  [[ -f $out/run.ckpt ]] && break
  sleep 0.05
done
if ! kill -0 "$job" 2>/dev/null; then
  fail "resume: the run ended before it could be killed (no checkpoint after 30 s, or it finished)"
else
  kill -KILL "$job"
  wait "$job" 2>/dev/null
  if ! "${resume_cmd[@]}" --resume "$out/run.ckpt" >"$out/second.txt" 2>&1; then
    fail "resume: the resumed run failed:"
    tail -5 "$out/second.txt"
  elif cmp -s "$scratch/ranks2/model.ntsd" "$out/model.ntsd"; then
    echo "2 ranks killed and resumed ($(grep -o 'Resumed from.*' "$out/second.txt")): the uninterrupted run's weights, bit for bit"
  else
    fail "resume: the resumed 2-rank run's weights differ from the uninterrupted 2-rank run's"
  fi
fi

echo "time: $((($(date +%s%N) - start) / 1000000)) ms"

if ((failures)); then
  echo "mpi equivalence: $failures failure(s)"
  exit 1
fi
echo "mpi equivalence: passed"
