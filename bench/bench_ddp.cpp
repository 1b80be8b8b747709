// bench/bench_ddp.cpp — data-parallel training steps over MPI: ms per global batch.
//
//   bench_ddp [--net seed|resnet8] [--global-batch N] [--steps N] [--warmup N] [--threads N] [--quick]
//   mpirun -n R bench_ddp ...      (R ranks; without mpirun it is one process, rank 0 of 1)
//
// One step = what mnist_train --distributed does per batch: zero_grad, forward on this rank's
// slice of the global batch (random images, fixed labels, drawn once), cross-entropy, backward,
// GradientReducer::reduce, SGD step (lr 0.01, momentum 0.5). ms per global batch is the wall
// time of --steps steps (after --warmup untimed ones) divided by --steps: throughput, as a
// training run sees it. Also printed: the slowest rank's median compute time per step
// (everything but the reduction) and the largest median reduction time (which includes waiting
// for the other ranks), rank 0's process CPU time per step, and the gradient bytes each
// reduction moves; then --steps reductions back to back, with nothing else in between (the ranks
// arrive together): the median of those is the communication cost of one reduction. bench/ddp.sh runs the
// configurations side by side with PyTorch DDP; the README's scaling model uses these numbers.
// Output: a line `RESULT nanotorch <ranks>x<threads> <net> ms_per_batch|compute_ms|reduce_ms X`
// and `RESULT nanotorch - <net> grad_bytes N`.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <ctime>  // std::clock: process CPU time
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nanotorch/distributed/mpi.hpp>
#include <nanotorch/nanotorch.hpp>

#include "fashion_net.hpp"
#include "mnist_net.hpp"

using namespace nanotorch;
namespace dist = nanotorch::distributed;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

int run(int argc, char** argv) {
    std::string net = "seed";
    std::int64_t global_batch = 64;
    int steps = 200, warmup = 20, threads = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw value_error(a + ": missing value");
            return argv[++i];
        };
        if (a == "--net") net = value();
        else if (a == "--global-batch") global_batch = std::stoll(value());
        else if (a == "--steps") steps = std::stoi(value());
        else if (a == "--warmup") warmup = std::stoi(value());
        else if (a == "--threads") threads = std::stoi(value());
        else if (a == "--quick") steps = 10, warmup = 2;
        else if (a == "--help") {
            std::printf("usage: [mpirun -n R] bench_ddp [--net seed|resnet8] [--global-batch N] [--steps N] "
                        "[--warmup N] [--threads N] [--quick]\n");
            return 0;
        } else throw value_error("unknown option " + a);
    }
    if (net != "seed" && net != "resnet8") throw value_error("--net must be seed or resnet8");
    if (steps < 1 || warmup < 0 || threads < 1) throw value_error("--steps, --threads >= 1, --warmup >= 0");
    set_num_threads(threads);
    const int rank = dist::rank(), world = dist::world_size();
    if (global_batch < world) throw value_error("--global-batch is smaller than the number of ranks");

    manual_seed(1);
    std::unique_ptr<nn::Module> model;
    if (net == "seed") model = std::make_unique<mnist::Net>();
    else model = std::make_unique<fashion::ResNet8>();
    model->train();
    dist::broadcast_module(*model);
    dist::GradientReducer reducer(model->parameters());
    optim::SGD sgd(model->parameters(), optim::SGDOptions(0.01).momentum(0.5));

    // This rank's rows of the global batch, as DataLoaderOptions::shard splits it.
    const std::int64_t offset = rank * global_batch / world, rows = (rank + 1) * global_batch / world - offset;
    Generator data_gen(7);
    std::vector<float> px(static_cast<std::size_t>(global_batch * 28 * 28));
    for (auto& v : px) v = data_gen.normal();
    const Tensor x = tensor(px, {global_batch, 1, 28, 28}).narrow(0, offset, rows).contiguous();
    std::vector<std::int64_t> y;
    for (std::int64_t i = offset; i < offset + rows; ++i) y.push_back(i % 10);
    const double weight = static_cast<double>(rows) / static_cast<double>(global_batch);

    using clock = std::chrono::steady_clock;
    auto ms = [](clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    std::vector<double> compute, reduce;
    clock::time_point start;
    std::clock_t cpu_start = 0;
    for (int s = 0; s < warmup + steps; ++s) {
        if (s == warmup) {
            MPI_Barrier(MPI_COMM_WORLD);  // the timed steps start together; no barrier inside them
            start = clock::now();
            cpu_start = std::clock();
        }
        const auto t0 = clock::now();
        sgd.zero_grad();
        Tensor out;
        {
            BatchShardGuard shard(offset, global_batch);
            out = (*model)(x);
        }
        const Tensor loss = net == "seed" ? F::nll_loss(out, y) : F::cross_entropy(out, y);
        loss.backward();
        const auto t1 = clock::now();
        reducer.reduce(weight);
        const auto t2 = clock::now();
        sgd.step();
        const auto t3 = clock::now();
        if (s >= warmup) {
            compute.push_back(ms((t1 - t0) + (t3 - t2)));
            reduce.push_back(ms(t2 - t1));  // includes waiting for the slowest rank
        }
    }
    // Process CPU time per step, before the barrier: on a loaded machine a single-threaded
    // process's CPU time is close to its wall time on a quiet one (with ranks it also counts
    // Open MPI's busy-polling, so only the 1x1 figure means compute).
    const double cpu_per_batch = 1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC / steps;
    MPI_Barrier(MPI_COMM_WORLD);
    const double per_batch = ms(clock::now() - start) / steps;  // throughput: wall time per global batch
    // The reduction alone: back-to-back reduce() calls after a barrier, so the ranks arrive
    // together and the time is the ring's communication and summing, not waiting for compute.
    std::vector<double> reduce_only;
    MPI_Barrier(MPI_COMM_WORLD);
    for (int s = 0; s < steps; ++s) {
        const auto t0 = clock::now();
        reducer.reduce(weight);
        reduce_only.push_back(ms(clock::now() - t0));
    }
    const double reduce_alone = median(reduce_only);
    // The slowest rank's median compute time and the largest median reduction (timing only:
    // MPI_MAX has no rounding, so MPI_Reduce's order is irrelevant here).
    double mine[2] = {median(compute), median(reduce)}, worst[2];
    MPI_Reduce(mine, worst, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        const std::string cfg = std::to_string(world) + "x" + std::to_string(threads);
        std::printf("bench_ddp: %s net, global batch %lld, %d rank(s) x %d thread(s), %d steps: %.3f ms per global "
                    "batch (median compute %.3f, median reduce %.3f, slowest rank; rank 0's CPU time %.3f ms per "
                    "step), %lld gradient bytes; a reduction alone: %.4f ms\n",
                    net.c_str(), static_cast<long long>(global_batch), world, threads, steps, per_batch, worst[0],
                    worst[1], cpu_per_batch, static_cast<long long>(reducer.payload_bytes()), reduce_alone);
        std::printf("RESULT nanotorch %s %s ms_per_batch %.4f\n", cfg.c_str(), net.c_str(), per_batch);
        std::printf("RESULT nanotorch %s %s compute_ms %.4f\n", cfg.c_str(), net.c_str(), worst[0]);
        std::printf("RESULT nanotorch %s %s reduce_ms %.4f\n", cfg.c_str(), net.c_str(), worst[1]);
        std::printf("RESULT nanotorch %s %s reduce_alone_ms %.4f\n", cfg.c_str(), net.c_str(), reduce_alone);
        std::printf("RESULT nanotorch %s %s cpu_ms_per_batch %.4f\n", cfg.c_str(), net.c_str(), cpu_per_batch);
        std::printf("RESULT nanotorch - %s grad_bytes %lld\n", net.c_str(),
                    static_cast<long long>(reducer.payload_bytes()));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    dist::Environment mpi(argc, argv);
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        dist::abort_job(std::string("bench_ddp: error: ") + e.what());
    }
}
