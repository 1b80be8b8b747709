// examples/train_distributed.hpp — what `mnist_train --distributed` and `fashion_train
// --distributed` add to a training loop, on top of nanotorch/distributed/mpi.hpp. Example code,
// not library API.
//
// Without --distributed (or in a build without MPI) a DataParallel is one process, rank 0 of 1,
// and every call below is a no-op, so the examples keep one training loop. With it, under
// `mpirun -np N`:
//   * the global batch (--batch-size) is split across ranks: DataLoaderOptions::shard gives each
//     rank its contiguous slice of every global batch of one seeded permutation;
//   * prepare() broadcasts rank 0's parameters and buffers and checks that every rank was given
//     the same options; reduce() turns each rank's gradient into the global batch's gradient
//     (weights rows/global rows, fixed summation order);
//   * global_loss() is the global batch's mean loss (for rank 0's progress bar and logs);
//   * only rank 0 prints, evaluates, writes files and exports (is_root());
//   * without --threads or NANOTORCH_NUM_THREADS, each rank takes its share of the node's cores
//     (hardware threads / ranks on the node, at least 1) instead of all of them;
//   * fail() ends the whole job (MPI_Abort, naming the rank) instead of returning from one rank
//     while the others wait for it.
#pragma once

#include <algorithm>
#include <cstdio>
#include <functional>  // std::hash of the settings digest
#include <memory>
#include <string>
#include <thread>  // hardware_concurrency
#include <vector>

#include <nanotorch/nanotorch.hpp>

#ifdef NANOTORCH_EXAMPLES_MPI
#include <nanotorch/distributed/mpi.hpp>
#endif

namespace train_distributed {

using namespace nanotorch;

class DataParallel {
public:
    /// Initialises MPI. @throws value_error when this build has no MPI.
    void start(int& argc, char**& argv) {
#ifdef NANOTORCH_EXAMPLES_MPI
        env_ = std::make_unique<distributed::Environment>(argc, argv);
        rank_ = env_->rank();
        world_ = env_->world_size();
        local_ = distributed::local_size();
#else
        (void)argc;
        (void)argv;
        throw value_error("--distributed: this program was built without MPI (install libopenmpi-dev and "
                          "reconfigure; CMake option NANOTORCH_MPI)");
#endif
    }
    /// Worker threads for this rank when the user chose none: all cores in one process, else this
    /// rank's share of its node's hardware threads.
    int default_threads() const {
        const int hw = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
        return std::max(1, hw / local_);
    }
    bool active() const { return world_ > 1; }
    bool is_root() const { return rank_ == 0; }
    int rank() const { return rank_; }
    int world_size() const { return world_; }

    /// This rank's shard of the loader (the global batch stays options.batch_size()).
    data::DataLoaderOptions shard(data::DataLoaderOptions options) const {
        return options.shard(rank_, world_);
    }

    /// Same model on every rank (rank 0's state) and one reducer for its parameters. `settings`
    /// is a digest of the options that must agree across ranks (seed, batch size, ...).
    /// @throws value_error on every rank when models or settings differ between ranks.
    void prepare(nn::Module& model, const std::string& settings) {
#ifdef NANOTORCH_EXAMPLES_MPI
        if (!active()) return;
        distributed::check_same(std::hash<std::string>{}(settings), "the command-line options");
        distributed::broadcast_module(model);
        reducer_ = std::make_unique<distributed::GradientReducer>(model.parameters());
#else
        (void)model;
        (void)settings;
#endif
    }

    /// After backward(): every rank's gradient becomes the global batch's.
    void reduce(const data::Batch& batch) {
#ifdef NANOTORCH_EXAMPLES_MPI
        if (reducer_) reducer_->reduce(share(batch));
#else
        (void)batch;
#endif
    }

    /// The global batch's mean loss from this rank's mean loss (the same value on every rank).
    double global_loss(double local_mean_loss, const data::Batch& batch) const {
#ifdef NANOTORCH_EXAMPLES_MPI
        if (active()) return distributed::allreduce_sum({local_mean_loss * share(batch)})[0];
#else
        (void)batch;
#endif
        return local_mean_loss;
    }

    /// Reports an error: in a distributed run ends every rank (never returns), otherwise prints it
    /// and returns exit code 1.
    int fail(const std::string& message) const {
#ifdef NANOTORCH_EXAMPLES_MPI
        if (env_) distributed::abort_job(message, 1);
#endif
        std::fprintf(stderr, "%s\n", message.c_str());
        return 1;
    }

private:
    static double share(const data::Batch& batch) {
        return static_cast<double>(batch.target.size()) / static_cast<double>(batch.global_size);
    }

    int rank_ = 0, world_ = 1, local_ = 1;
#ifdef NANOTORCH_EXAMPLES_MPI
    std::unique_ptr<distributed::Environment> env_;
    std::unique_ptr<distributed::GradientReducer> reducer_;
#endif
};

}  // namespace train_distributed
