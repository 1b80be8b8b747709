#!/usr/bin/python3
"""bench/ddp_model.py - modelled time per data-parallel step at 2, 8 and 64 nodes (README table).

    python3 bench/ddp_model.py NET:COMPUTE_MS:GRAD_BYTES [NET:COMPUTE_MS:GRAD_BYTES ...]

COMPUTE_MS is a measured step without communication on one node (bench_ddp's "median compute",
1 process; bench/ddp.sh prints it), GRAD_BYTES the bytes one reduction sums (bench_ddp's
"gradient bytes"). The model, for N nodes each keeping its per-node batch (weak scaling: the
global batch grows with N, so compute per node stays COMPUTE_MS):

    allreduce = 2 (N-1)/N * GRAD_BYTES / bandwidth  +  2 (N-1) * latency
    step      = compute + allreduce      (GradientReducer reduces after backward: no overlap)

The ring is what distributed/mpi.hpp runs: a reduce-scatter and an allgather of N-1 steps each,
every step one message of GRAD_BYTES/N to the next node. Each cell: time per step (the allreduce's
part; efficiency = compute / step). Link assumptions: 10 Gbit/s Ethernet
with 10 us per message (TCP), 100 Gbit/s with 2 us per message (RDMA-class); full duplex, one
rank per node, payload rate = link rate, no congestion, the local summing (a few us) neglected.
"""
import sys

LINKS = [("10 Gbit/s", 10e9 / 8, 10e-6), ("100 Gbit/s", 100e9 / 8, 2e-6)]
NODES = [2, 8, 64]


def allreduce_ms(n, grad_bytes, bandwidth, latency):
    return (2 * (n - 1) / n * grad_bytes / bandwidth + 2 * (n - 1) * latency) * 1e3


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    print("| net (per-node batch) | compute/step | gradients | link | " +
          " | ".join(f"{n} nodes" for n in NODES) + " |")
    print("|---|---|---|---|" + "---|" * len(NODES))
    for spec in argv:
        name, compute, grad = spec.split(":")
        compute, grad = float(compute), int(grad)
        for link, bw, lat in LINKS:
            cells = []
            for n in NODES:
                ar = allreduce_ms(n, grad, bw, lat)
                step = compute + ar
                cells.append(f"{step:.2f} ms (allreduce {ar:.2f}, {compute / step * 100:.0f} %)")
            print(f"| {name} | {compute:.2f} ms | {grad / 1e3:.1f} kB | {link} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
