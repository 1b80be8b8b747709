#!/usr/bin/env bash
# tests/checkpoint_resume.sh — kills mnist_train with SIGKILL and resumes it; the weights must end
# bit-identical to an uninterrupted run's.
#
#   bash tests/checkpoint_resume.sh MNIST_TRAIN SCRATCH_DIR [MNIST_DIR]
#
# MNIST_TRAIN is the built binary, SCRATCH_DIR a directory the script may empty and fill, MNIST_DIR
# the IDX files (default data/mnist under the source tree; exit 77 = skipped without them).
# For each optimizer (SGD + StepLR, Adam):
#   1. an uninterrupted run writes the reference model.ntsd;
#   2. the same run (same seed and thread count) with --checkpoint every 3 steps is killed with
#      SIGKILL at a random point (after a random number of steps, up to a third of those left,
#      plus 0 ms up to one step's time, as the uninterrupted run measured it),
#      then restarted with --resume, four times; once more the kill is
#      sent while the process sleeps between writing the temporary checkpoint file and renaming it
#      (NANOTORCH_CHECKPOINT_PAUSE_MS), and the previous checkpoint must then be byte-identical
#      and loadable (the next restart resumes from it); then the run is left to finish;
#   3. its model.ntsd must equal the reference byte for byte, and its last metrics row too
#      (all but the timing column).
# Also: --resume with a truncated checkpoint and one of another batch size must exit 1 with one
# error line. The random points come from bash's $RANDOM seeded from CHECKPOINT_TEST_SEED
# (default: the clock), printed so a failing sequence can be replayed.
set -uo pipefail

if (($# < 2)); then
  echo "usage: bash tests/checkpoint_resume.sh MNIST_TRAIN SCRATCH_DIR [MNIST_DIR]" >&2
  exit 2
fi
tool=$1
scratch=$2
root=${NANOTORCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
mnist=${3:-$root/data/mnist}

if [[ ! -x $tool ]]; then
  echo "FAIL: $tool is not an executable" >&2
  exit 1
fi
if [[ ! -f $mnist/train-images-idx3-ubyte && ! -f $mnist/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: no MNIST in $mnist (bash scripts/fetch_mnist.sh)"
  exit 77
fi
rm -rf "$scratch"
mkdir -p "$scratch"

# A small copy of MNIST (640 training, 200 test images), so that each of the ~20 runs does not
# parse all 70,000 images (slow under the sanitizers). Only from uncompressed files; the full set
# is used otherwise.
# shellcheck source=tests/mnist_slice.sh
. "$(dirname "${BASH_SOURCE[0]}")/mnist_slice.sh"
if mnist_slice "$mnist" "$scratch/mnist" 640 200; then
  mnist=$scratch/mnist
fi

seed=${CHECKPOINT_TEST_SEED:-$(date +%s)}
RANDOM=$seed
echo "random kill delays seeded with CHECKPOINT_TEST_SEED=$seed"
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# 10 batches of 64 per epoch, 3 epochs: 30 steps, a checkpoint every 3 and at each epoch end.
total_steps=30
common=(--data "$mnist" --limit 640 --limit-test 200 --test-batch-size 200 --epochs 3 --threads 2 --seed 5)

# ms since the epoch
now_ms() { date +%s%3N; }

# run_with_kills NAME ARGS...: the kill-and-resume sequence of step 2 in $scratch/NAME.
run_with_kills() {
  local name=$1
  shift
  local dir=$scratch/$name ck=$scratch/$name.ckpt log=$scratch/$name.log
  local -a args=("$@")
  local random_kills=0 write_kill=0 resumes=0 attempt pid rc delay round
  # A fast run can end before a planned kill lands (each step takes a few ms); that is timing,
  # not a fault, so a sequence with fewer than three random kills starts again from scratch,
  # up to three times, before it counts as a failure.
  for round in 1 2 3; do
    random_kills=0 write_kill=0
    rm -rf "$dir" "$ck" "$ck".tmp.*
    : >"$log"
    for attempt in $(seq 1 40); do
      local -a run=("$tool" "${common[@]}" "${args[@]}" --out "$dir" --checkpoint "$ck" --checkpoint-every 3)
      [[ -f $ck ]] && run+=(--resume "$ck")
      # Emptied here, not by the child's redirection, so no poll below can read the last run's log.
      : >"$scratch/$name.run.log"
      if ((write_kill == 0 && random_kills >= 1)) && [[ -f $ck ]]; then
        # The kill during the checkpoint write: wait until the temporary file is complete and
        # the process sleeps before renaming it.
        cp "$ck" "$scratch/$name.before"
        NANOTORCH_CHECKPOINT_PAUSE_MS=60000 "${run[@]}" >"$scratch/$name.run.log" 2>&1 &
        pid=$!
        local waited=0
        while ! grep -q "checkpoint: paused before rename" "$scratch/$name.run.log" && ((waited < 600)); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.1
          waited=$((waited + 1))
        done
        if ! grep -q "checkpoint: paused before rename" "$scratch/$name.run.log"; then
          cat "$scratch/$name.run.log"
          fail "$name: the run never reached a checkpoint write"
          kill -9 "$pid" 2>/dev/null
          wait "$pid" 2>/dev/null
          return
        fi
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        cat "$scratch/$name.run.log" >>"$log"
        write_kill=1
        echo "$name: killed during a checkpoint write (attempt $attempt)"
        if cmp -s "$ck" "$scratch/$name.before"; then
          echo "PASS: $name: the previous checkpoint is intact after a kill between write and rename"
        else
          fail "$name: the checkpoint changed although the kill came before the rename"
        fi
        ls "$ck".tmp.* >/dev/null 2>&1 || fail "$name: no temporary file left by the interrupted write (was the kill really during the write?)"
        rm -f "$ck".tmp.*
        continue
      fi
      "${run[@]}" >"$scratch/$name.run.log" 2>&1 &
      pid=$!
      if ((random_kills < 4)); then
        # A random point: after a random number of steps (mnist_train prints one
        # progress line per batch here), plus up to one step's time, so kills land in training,
        # evaluation, checkpoint writes and the final save, and every restart makes progress.
        # The delay and the polling follow the step time: on a fast host a step takes ~4 ms,
        # and a fixed 0..29 ms delay plus 20 ms polls let the run end before four kills landed.
        local start=0 target lines waited=0
        # "Resumed from" is printed before the first batch's line.
        while ! grep -q "batches, loss" "$scratch/$name.run.log" && kill -0 "$pid" 2>/dev/null && ((waited < 9600)); do
          sleep 0.005
          waited=$((waited + 1))
        done
        start=$(sed -n 's/^Resumed from .*, step \([0-9]*\)$/\1/p' "$scratch/$name.run.log")
        start=${start:-0}
        # At most a third of what is left, so that four kills fit before the run ends.
        target=$((start + 1 + RANDOM % ((total_steps - start) / 3 + 1)))
        while lines=$(grep -c "batches, loss" "$scratch/$name.run.log"); ((start + lines < target)) &&
          kill -0 "$pid" 2>/dev/null && ((waited < 9600)); do
          sleep 0.005
          waited=$((waited + 1))
        done
        delay=$((RANDOM % step_ms))
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
        if kill -9 "$pid" 2>/dev/null; then
          wait "$pid" 2>/dev/null
          random_kills=$((random_kills + 1))
          cat "$scratch/$name.run.log" >>"$log"
          echo "$name: SIGKILL after step $((start + lines)) (+${delay} ms; resumed at step $start; attempt $attempt)"
          continue
        fi
      fi
      wait "$pid"
      rc=$?
      cat "$scratch/$name.run.log" >>"$log"
      if ((rc != 0)); then
        cat "$scratch/$name.run.log"
        fail "$name: mnist_train exited with $rc"
        return
      fi
      break
    done
    ((random_kills >= 3)) && break
    ((round < 3)) && echo "$name: the run ended after $random_kills random kills; the sequence again from scratch"
  done
  resumes=$(grep -c "^Resumed from" "$log")
  echo "$name: $random_kills random kills, $write_kill kill during a write, $resumes resumes:"
  grep "^Resumed from" "$log" | sed 's/^/  /'
  ((random_kills >= 3)) || fail "$name: only $random_kills random kills landed before the run ended"
  ((write_kill == 1)) || fail "$name: the kill during a checkpoint write did not happen"
  ((resumes >= 1)) || fail "$name: never resumed"
  if cmp "$scratch/ref-$name/model.ntsd" "$dir/model.ntsd"; then
    echo "PASS: $name: the killed and resumed run's model.ntsd is bit-identical to the uninterrupted run's"
  else
    fail "$name: model.ntsd differs from the uninterrupted run's"
  fi
  # metrics.csv: epoch,train_loss,test_loss,accuracy,seconds; a replayed epoch may add a row.
  local want got
  want=$(tail -n 1 "$scratch/ref-$name/metrics.csv" | cut -d, -f1-4)
  got=$(tail -n 1 "$dir/metrics.csv" | cut -d, -f1-4)
  if [[ $want == "$got" ]]; then
    echo "PASS: $name: last metrics row $got"
  else
    fail "$name: last metrics row '$got', uninterrupted run '$want'"
  fi
}

for config in sgd adam; do
  if [[ $config == sgd ]]; then
    extra=(--optimizer sgd --lr 0.05 --lr-step 2)
  else
    extra=(--optimizer adam --lr 0.002)
  fi
  t0=$(now_ms)
  if ! "$tool" "${common[@]}" "${extra[@]}" --out "$scratch/ref-$config" >"$scratch/ref-$config.log" 2>&1; then
    cat "$scratch/ref-$config.log"
    fail "$config: the uninterrupted run failed"
    continue
  fi
  took=$(($(now_ms) - t0))
  step_ms=$((took / total_steps > 1 ? took / total_steps : 1))  # one step's time (with the run's setup)
  echo "$config: uninterrupted run took $took ms (~$step_ms ms per step)"
  run_with_kills "$config" "${extra[@]}"
done

# Refused resumes: one line on stderr, exit 1, nothing written.
ck=$scratch/sgd.ckpt
if [[ -f $ck ]]; then
  head -c 100 "$ck" >"$scratch/truncated.ckpt"
  check_refused() {
    local what=$1 pattern=$2
    shift 2
    local err rc
    err=$("$tool" "${common[@]}" --out "$scratch/refused" "$@" 2>&1 >/dev/null)
    rc=$?
    if ((rc == 1)) && [[ $(wc -l <<<"$err") -eq 1 ]] && grep -q -- "$pattern" <<<"$err"; then
      echo "PASS: $what refused: $err"
    else
      fail "$what: exit $rc, stderr: $err"
    fi
  }
  check_refused "a truncated checkpoint" "truncated" --resume "$scratch/truncated.ckpt"
  check_refused "a checkpoint of another batch size" "batch size" --batch-size 32 --resume "$ck"
  check_refused "a checkpoint of another optimizer" "of a SGD optimizer, not Adam" \
    --optimizer adam --lr-step 2 --resume "$ck"
  check_refused "a checkpoint with a scheduler, resumed without one" "no scheduler was given" --resume "$ck"
  [[ ! -e $scratch/refused/model.ntsd ]] || fail "a refused resume wrote a model"
fi

if ((failures > 0)); then
  echo "$failures check(s) failed (CHECKPOINT_TEST_SEED=$seed)"
  exit 1
fi
echo "all checkpoint/resume checks passed"
