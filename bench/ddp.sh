#!/usr/bin/env bash
# bench/ddp.sh — data-parallel scaling of the seed's net, nanotorch over MPI against PyTorch DDP.
#
#   bash bench/ddp.sh BUILD_DIR [ROUNDS] [STEPS]
#
# BUILD_DIR holds bench/bench_ddp (configured with MPI and NANOTORCH_BUILD_BENCH=ON). One run
# measures ms per global batch of 64 on the seed's net in these configurations, interleaved
# ROUNDS times (default 3) so that a change of machine load hits all alike, and prints each
# one's median and its throughput relative to nanotorch 1x1:
#   nanotorch 1 process x 1 thread, 1 process x 2 threads, 2 ranks x 1 thread (mpirun; Open MPI
#     busy-polls while waiting), 2 ranks x 1 thread with mpi_yield_when_idle=1 (a waiting rank
#     yields its core: what a machine shared with other work needs);
#   PyTorch 1.13 (/usr/bin/python3, Debian python3-torch; bench/torch_ddp.py): 1x1, 1x2, and DDP
#     over gloo with 2 processes x 1 thread.
# Plus, for the README's scaling model, nanotorch's compute per step and gradient bytes for the
# seed net (global batch 64) and fashion_train's ResNet8 (global batch 128), 1 process x 1 thread.
# The load average before and after is printed: on a shared 2-core machine the ratios say more
# than the milliseconds.
set -uo pipefail
build=${1:?usage: bash bench/ddp.sh BUILD_DIR [ROUNDS] [STEPS]}
rounds=${2:-3}
steps=${3:-200}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=$build/bench/bench_ddp
[[ -x $bench ]] || { echo "ddp.sh: $bench not found (configure with MPI and -DNANOTORCH_BUILD_BENCH=ON)" >&2; exit 2; }
# Open MPI in a container as root, shared memory only, 2 ranks on 2 cores (README, Distributed training).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_plm=isolated
mpiexec=${MPIEXEC:-mpiexec}
torch_ok=1
/usr/bin/python3 -c "import torch" 2>/dev/null || { torch_ok=0; echo "note: no PyTorch (apt-get install python3-torch): its rows are skipped"; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
# measure LABEL COMMAND...: appends "LABEL ms" from the command's ms_per_batch RESULT line
measure() {
  local label=$1 v
  shift
  v=$("$@" 2>&1 | awk '/^RESULT .* ms_per_batch / { print $NF }')
  if [[ -z $v ]]; then echo "ddp.sh: $label produced no result" >&2; return; fi
  echo "$label $v" >>"$results"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
for ((r = 1; r <= rounds; r++)); do
  measure "nanotorch_1x1" "$bench" --threads 1 --steps "$steps"
  measure "nanotorch_1x2" "$bench" --threads 2 --steps "$steps"
  measure "nanotorch_2x1" "$mpiexec" -n 2 "$bench" --threads 1 --steps "$steps"
  measure "nanotorch_2x1_yield" env OMPI_MCA_mpi_yield_when_idle=1 "$mpiexec" -n 2 "$bench" --threads 1 --steps "$steps"
  if ((torch_ok)); then
    measure "torch_1x1" /usr/bin/python3 "$root/bench/torch_ddp.py" --threads 1 --steps "$steps"
    measure "torch_1x2" /usr/bin/python3 "$root/bench/torch_ddp.py" --threads 2 --steps "$steps"
    measure "torch_ddp_2x1" /usr/bin/python3 "$root/bench/torch_ddp.py" --world 2 --threads 1 --steps "$steps"
  fi
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "ms per global batch of 64, seed net, median of $rounds rounds of $steps steps (throughput vs nanotorch 1x1):"
awk 'function median(s,   a, m, i, j, t) {  # mawk has no asort: insertion sort
    m = split(s, a, " ")
    for (i = 2; i <= m; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return a[int((m + 1) / 2)]
  }
  { v[$1] = v[$1] " " $2 } END {
  n = split("nanotorch_1x1 nanotorch_1x2 nanotorch_2x1 nanotorch_2x1_yield torch_1x1 torch_1x2 torch_ddp_2x1", order, " ")
  for (i = 1; i <= n; i++) {
    k = order[i]; if (!(k in v)) continue
    med[k] = median(v[k])
  }
  for (i = 1; i <= n; i++) {
    k = order[i]; if (!(k in med)) continue
    printf "  %-22s %8.3f ms   %5.2fx   (rounds:%s)\n", k, med[k], med["nanotorch_1x1"] / med[k], v[k]
    printf "RESULT ddp %s seed ms_per_batch %.4f\n", k, med[k] > "/dev/stderr"
  }
  if ("torch_1x1" in med && "torch_ddp_2x1" in med)
    printf "  PyTorch DDP 2x1 against PyTorch 1x1: %.2fx\n", med["torch_1x1"] / med["torch_ddp_2x1"]
}' "$results"

echo
echo "a reduction alone (2 ranks x 1 thread, yielding):"
env OMPI_MCA_mpi_yield_when_idle=1 "$mpiexec" -n 2 "$bench" --net seed --threads 1 --steps "$steps" | head -1
echo "for the scaling model (1 process x 1 thread):"
"$bench" --net seed --global-batch 64 --threads 1 --steps "$steps" | head -1
"$bench" --net resnet8 --global-batch 128 --threads 1 --steps $((steps / 4 > 10 ? steps / 4 : 10)) --warmup 5 | head -1
