#!/usr/bin/env bash
# tests/mpi/rank_failure.sh — one failing rank ends the whole job with a message naming it.
#
#   bash tests/mpi/rank_failure.sh MNIST_TRAIN MPIEXEC SCRATCH_DIR [MNIST_DIR]
#
# 1. Killed: `MPIEXEC -n 2 mnist_train --distributed` on a long run; once rank 1 has started, it is
#    sent SIGKILL (found by its OMPI_COMM_WORLD_RANK=1 in /proc/PID/environ, among the children of
#    this mpiexec). The job must end within 60 s, non-zero, and its output must name rank 1.
# 2. Throwing: NANOTORCH_TEST_FAIL=1:5 makes rank 1 throw before its 6th step while rank 0 waits in
#    the gradient allreduce; the job must end within 60 s, non-zero, with "rank 1 of 2" and the error.
# A hang fails the test after 60 s (and ctest's TIMEOUT is the backstop). Exit 77 = no MNIST.
set -uo pipefail

if (($# < 3)); then
  echo "usage: bash tests/mpi/rank_failure.sh MNIST_TRAIN MPIEXEC SCRATCH_DIR [MNIST_DIR]" >&2
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
if ! mnist_slice "$mnist" "$scratch/mnist" 6400 100; then
  echo "SKIP: no uncompressed MNIST in $mnist (bash scripts/fetch_mnist.sh)"
  exit 77
fi

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# 50 epochs of 100 steps: far longer than the test waits, so only a failure can end it early.
common=(--data "$scratch/mnist" --epochs 50 --limit-test 100 --threads 1 --out "$scratch/out" --distributed)

# The PID of the process of MPI rank $2 among the descendants of PID $1 ("" when not there yet).
# Plain /proc reads (no pgrep: procps may be missing on a fresh machine).
rank_pid() {
  local job=$1 rank=$2 d p stat
  for d in /proc/[0-9]*; do
    { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank" || continue
    p=${d#/proc/}
    while [[ -n $p && $p != 0 && $p != 1 ]]; do  # walk up the parent chain to the job
      if [[ $p == "$job" ]]; then
        echo "${d#/proc/}"
        return
      fi
      stat=$(cat "/proc/$p/stat" 2>/dev/null) || break
      stat=${stat##*) }  # after "pid (comm) ": state ppid ...
      p=$(cut -d' ' -f2 <<<"$stat")
    done
  done
}

# wait_job PID SECONDS: waits for the job; returns its status, or 124 after SECONDS (killing it).
wait_job() {
  local pid=$1 limit=$(($2 * 10)) i
  for ((i = 0; i < limit; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      return
    fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 124
}

# ---- 1. a rank killed with SIGKILL ----
log=$scratch/killed.txt
"$mpiexec" -n 2 "$tool" "${common[@]}" >"$log" 2>&1 &
job=$!
victim=""
for ((i = 0; i < 300; i++)); do  # up to 30 s to start
  sleep 0.1
  victim=$(rank_pid "$job" 1)
  [[ -n $victim ]] && break
done
if [[ -z $victim ]]; then
  fail "killed: rank 1 never appeared under mpiexec (pid $job)"
  kill -KILL "$job" 2>/dev/null
else
  sleep 1  # let it get into training (and into the allreduce)
  t0=$(date +%s%N)
  kill -KILL "$victim"
  wait_job "$job" 60
  status=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  if ((status == 124)); then
    fail "killed: the job still ran 60 s after rank 1 (pid $victim) was killed"
  elif ((status == 0)); then
    fail "killed: the job exited with status 0 after rank 1 was killed"
  elif ! grep -q "rank 1" "$log"; then
    fail "killed: the job ended (status $status) but its output does not name rank 1:"
    tail -20 "$log"
  else
    echo "killed: rank 1 (pid $victim) killed; the job ended after $ms ms with status $status:"
    grep "rank 1" "$log" | head -2
  fi
fi

# ---- 2. a rank that throws ----
log=$scratch/throws.txt
NANOTORCH_TEST_FAIL=1:5 "$mpiexec" -n 2 "$tool" "${common[@]}" >"$log" 2>&1 &
job=$!
wait_job "$job" 60
status=$?
if ((status == 124)); then
  fail "throws: the job still ran after 60 s although rank 1 threw"
elif ((status == 0)); then
  fail "throws: the job exited with status 0 although rank 1 threw"
elif ! grep -q "rank 1 of 2: mnist_train: error: NANOTORCH_TEST_FAIL: rank 1 fails at step 5" "$log"; then
  fail "throws: the job ended (status $status) without naming rank 1 and its error:"
  tail -20 "$log"
else
  echo "throws: the job ended with status $status:"
  grep "rank 1" "$log" | head -2
fi

if ((failures)); then
  echo "mpi rank failure: $failures failure(s)"
  exit 1
fi
echo "mpi rank failure: passed"
