// nanotorch/distributed/mpi.hpp — data-parallel training over MPI (opt-in: includes <mpi.h>, so
// the umbrella header does not include it; link MPI, e.g. CMake's MPI::MPI_CXX).
//
// The pieces of a data-parallel step, each a small free function or class:
//   Environment            MPI_Init/MPI_Finalize (RAII); a rank that unwinds with an exception
//                          aborts the whole job instead of leaving the others waiting forever
//   rank(), world_size()   of MPI_COMM_WORLD; local_size(): the ranks sharing this node
//   broadcast_module       rank 0's parameters AND buffers (BatchNorm running statistics) to all
//   GradientReducer        after backward(): every rank's gradients, weighted, summed in a fixed
//                          order, in buckets, so all ranks hold the same bits
//   allreduce_sum          the same deterministic sum for a few doubles (losses, counts)
//   check_same             every rank passed the same value (seed, batch size, ...) or all throw
//   convert_sync_batchnorm every BatchNorm of a model normalises with the global batch's
//                          statistics (PyTorch's SyncBatchNorm), summed by the same ring
// The sampler is data::DataLoaderOptions::shard(rank(), world_size()) (data/dataloader.hpp): each
// rank gets its slice of every global batch of one seeded permutation per epoch, resumable like
// any DataLoader. Dropout masks match a one-process run under BatchShardGuard (ops/dropout.hpp).
//
// Determinism. MPI_Allreduce may add floats in any order (it differs with the algorithm Open MPI
// picks, and so with message size and rank count), so it is not used for gradients. The reducer
// runs its own ring allreduce over MPI_Sendrecv: a reduce-scatter in which chunk c is summed as
// ((x_c + x_{c+1}) + x_{c+2}) + ... around the ring (rank indices mod N), then an allgather that
// only copies. The order depends on nothing but N, so a seed and a rank count give the same
// weights every time, and every rank ends with the identical sum. It is also the bandwidth-
// optimal algorithm: each rank sends and receives 2(N−1)/N of the buffer.
//
// What is deliberately not here. Overlap of communication with backward(): the reduction runs
// after backward() returns, bucket by bucket. With one core per rank (the setting this was
// measured in) an overlapping reducer needs a progress thread competing with backward for that
// core, and Open MPI advances non-blocking transfers only inside MPI calls, so there is nothing
// to win for nets whose gradients take tens of microseconds to reduce (the README's model says
// when overlap would start to matter).
// BatchNorm statistics stay per rank by default, as in PyTorch's DDP (rank 0's running statistics
// are the ones evaluated and saved); convert_sync_batchnorm makes them the global batch's.
//
// Errors. MPI failures use MPI's default handler (MPI_ERRORS_ARE_FATAL): a failed collective
// cannot be recovered, and mpirun then ends every rank and names the failing one (a killed rank
// is reported the same way: "mpirun noticed that process rank 1 ... exited on signal 9").
// Mismatches between ranks (different models, different options) throw on every rank alike.
// Threads: MPI is initialised with MPI_THREAD_FUNNELED; only the thread that built the
// Environment calls MPI, nanotorch's worker threads never do.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>  // std::exit in abort_job without MPI
#include <cstring>
#include <exception>  // std::uncaught_exceptions
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/nn/norm.hpp>

namespace nanotorch::distributed {

// ---- process group ----

/// True between MPI_Init and MPI_Finalize.
inline bool is_initialized() {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init != 0 && fin == 0;
}

/// This process's rank in MPI_COMM_WORLD (0 .. world_size() − 1).
/// @throws value_error when MPI is not initialised (no Environment alive).
inline int rank() {
    NANOTORCH_CHECK(is_initialized(), value_error, "distributed::rank: MPI is not initialised (create a "
                                                   "distributed::Environment first)");
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

/// The number of processes in MPI_COMM_WORLD (1 when started without mpirun).
/// @throws value_error when MPI is not initialised.
inline int world_size() {
    NANOTORCH_CHECK(is_initialized(), value_error, "distributed::world_size: MPI is not initialised (create a "
                                                   "distributed::Environment first)");
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

/// The number of ranks on this node (MPI_Comm_split_type with MPI_COMM_TYPE_SHARED), e.g. to
/// give each rank hardware_concurrency() / local_size() worker threads. Collective.
/// @throws value_error when MPI is not initialised.
inline int local_size() {
    NANOTORCH_CHECK(is_initialized(), value_error, "distributed::local_size: MPI is not initialised");
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int n = 1;
    MPI_Comm_size(node, &n);
    MPI_Comm_free(&node);
    return n;
}

/// Ends every rank of the job: prints "<prefix>rank R of N: message" on stderr, then MPI_Abort.
/// Use it where a rank would otherwise return with an error while the others wait in a
/// collective. Without MPI initialised it prints the message and calls std::exit(code).
[[noreturn]] inline void abort_job(const std::string& message, int code = 1) {
    if (is_initialized()) {
        int r = 0, n = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
        MPI_Comm_size(MPI_COMM_WORLD, &n);
        std::fprintf(stderr, "rank %d of %d: %s\n", r, n, message.c_str());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(code);
}

/// MPI for the lifetime of the object: MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is
/// already initialised (then it neither initialises nor finalises). The destructor calls
/// MPI_Finalize, except while an exception is unwinding the stack: then the other ranks may be
/// waiting for this one in a collective, so it aborts the job (naming this rank) instead.
/// One per process; MPI cannot be initialised again after finalising.
/// Example: int main(int argc, char** argv) { distributed::Environment mpi(argc, argv); ... }
/// @throws value_error when MPI was already finalised, or when the library gives less than
///   MPI_THREAD_FUNNELED (nanotorch's worker threads exist, even though they never call MPI).
class Environment {
public:
    Environment(int& argc, char**& argv) { init(&argc, &argv); }
    Environment() { init(nullptr, nullptr); }
    ~Environment() {
        if (!owns_ || !is_initialized()) return;
        if (std::uncaught_exceptions() > uncaught_at_start_)
            abort_job("an exception is ending this rank while the others may be waiting for it; aborting the job");
        MPI_Finalize();
    }
    Environment(const Environment&) = delete;
    Environment& operator=(const Environment&) = delete;

    int rank() const { return distributed::rank(); }
    int world_size() const { return distributed::world_size(); }

private:
    void init(int* argc, char*** argv) {
        int fin = 0;
        MPI_Finalized(&fin);
        NANOTORCH_CHECK(!fin, value_error, "distributed::Environment: MPI was already finalised in this process");
        int init = 0;
        MPI_Initialized(&init);
        if (!init) {
            int provided = MPI_THREAD_SINGLE;
            MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
            owns_ = true;
            if (provided < MPI_THREAD_FUNNELED) {
                MPI_Finalize();
                owns_ = false;
                throw value_error("distributed::Environment: the MPI library does not support MPI_THREAD_FUNNELED");
            }
        }
        uncaught_at_start_ = std::uncaught_exceptions();
    }

    bool owns_ = false;
    int uncaught_at_start_ = 0;
};

// ---- deterministic sums ----
namespace detail {

template <class T>
MPI_Datatype mpi_type() {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value ||
                      std::is_same<T, std::uint64_t>::value,
                  "mpi_type: float, double or uint64_t");
    if (std::is_same<T, float>::value) return MPI_FLOAT;
    if (std::is_same<T, double>::value) return MPI_DOUBLE;
    return MPI_UINT64_T;
}

// Chunk c of n elements split into `parts`: [c·n/parts, (c+1)·n/parts).
inline std::int64_t chunk_begin(std::int64_t n, int parts, int c) { return n * c / parts; }

}  // namespace detail

/// Sums data[0, n) elementwise over all ranks, in place, with the ring algorithm described at
/// the top: the summation order depends only on the rank count, and every rank receives the
/// same bits. Blocking; every rank must call it with the same n (not checked here: the callers
/// in this header check it first). `scratch` is reused between calls (n/world + 1 elements).
/// @throws value_error when n is negative or a chunk exceeds MPI's int count; as rank().
template <class T>
void ring_allreduce_sum(T* data, std::int64_t n, std::vector<T>& scratch) {
    NANOTORCH_CHECK(n >= 0, value_error, "ring_allreduce_sum: negative length ", n);
    const int world = world_size(), me = rank();
    if (world == 1 || n == 0) return;
    NANOTORCH_CHECK(n / world < (std::int64_t{1} << 30), value_error, "ring_allreduce_sum: ", n,
                    " elements give chunks beyond MPI's int count; use smaller buckets");
    const int right = (me + 1) % world, left = (me + world - 1) % world;
    const MPI_Datatype type = detail::mpi_type<T>();
    scratch.resize(static_cast<std::size_t>(n / world + 1));
    auto chunk = [&](int c) {
        const std::int64_t b = detail::chunk_begin(n, world, c);
        return std::pair<std::int64_t, int>(b, static_cast<int>(detail::chunk_begin(n, world, c + 1) - b));
    };
    // Reduce-scatter: at step s rank r passes on chunk r−s and adds its own values to chunk r−s−1.
    for (int s = 0; s < world - 1; ++s) {
        const auto send = chunk(((me - s) % world + world) % world);
        const auto recv = chunk(((me - s - 1) % world + world) % world);
        MPI_Sendrecv(data + send.first, send.second, type, right, 0, scratch.data(), recv.second, type, left, 0,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        T* acc = data + recv.first;
        for (int i = 0; i < recv.second; ++i) acc[i] = scratch[static_cast<std::size_t>(i)] + acc[i];
    }
    // Allgather: rank r now owns the full sum of chunk r+1; pass the finished chunks around.
    for (int s = 0; s < world - 1; ++s) {
        const auto send = chunk(((me + 1 - s) % world + world) % world);
        const auto recv = chunk(((me - s) % world + world) % world);
        MPI_Sendrecv(data + send.first, send.second, type, right, 1, data + recv.first, recv.second, type, left, 1,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
}

/// ring_allreduce_sum with a scratch buffer of its own.
template <class T>
void ring_allreduce_sum(T* data, std::int64_t n) {
    std::vector<T> scratch;
    ring_allreduce_sum(data, n, scratch);
}

/// Throws the same value_error on every rank unless all ranks passed the same value;
/// `what` names it in the message (with each rank's value). Collective.
inline void check_same(std::uint64_t value, const std::string& what) {
    const int world = world_size();
    std::vector<std::uint64_t> all(static_cast<std::size_t>(world));
    MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int r = 1; r < world; ++r)
        NANOTORCH_CHECK(all[static_cast<std::size_t>(r)] == all[0], value_error, "distributed: ", what,
                        " differs between ranks: rank 0 has ", all[0], ", rank ", r, " has ",
                        all[static_cast<std::size_t>(r)]);
}

/// Sums each value over all ranks (the ring order above, so every rank gets the same result).
/// Collective; every rank passes as many values.
/// @throws value_error when ranks pass different counts.
inline std::vector<double> allreduce_sum(std::vector<double> values) {
    check_same(values.size(), "the number of values in allreduce_sum");
    std::vector<double> scratch;
    ring_allreduce_sum(values.data(), static_cast<std::int64_t>(values.size()), scratch);
    return values;
}

// ---- model state ----
namespace detail {

// FNV-1a over names and shapes: two ranks with the same fingerprint built the same structure.
inline std::uint64_t fingerprint(const std::vector<std::pair<std::string, Tensor>>& named) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    auto mix = [&h](const void* p, std::size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ULL;
    };
    for (const auto& [name, t] : named) {
        mix(name.data(), name.size() + 1);
        for (std::int64_t d : t.shape()) mix(&d, sizeof d);
        const std::int64_t end = -1;
        mix(&end, sizeof end);
    }
    return h;
}

}  // namespace detail

/// Copies the root rank's parameters and buffers (BatchNorm running statistics, ...) into every
/// other rank's module, in named order, so all ranks start from the same state whatever their
/// generators did. Collective. Tensors are written in place (made contiguous first if needed).
/// @throws value_error on every rank when the modules differ in names or shapes between ranks,
///   or when root is not a rank.
inline void broadcast_module(nn::Module& module, int root = 0) {
    NANOTORCH_CHECK(root >= 0 && root < world_size(), value_error, "broadcast_module: root ", root,
                    " is not a rank of ", world_size());
    auto named = module.named_parameters();
    for (auto& b : module.named_buffers()) named.push_back(b);
    check_same(detail::fingerprint(named), "the model (parameter and buffer names and shapes)");
    NoGradGuard no_grad;  // parameters are overwritten in place, outside any graph
    for (auto& [name, t] : named) {
        if (t.numel() == 0) continue;
        Tensor c = t.is_contiguous() ? t : t.contiguous();
        MPI_Bcast(c.data_ptr(), static_cast<int>(c.numel()), MPI_FLOAT, root, MPI_COMM_WORLD);
        if (!t.is_contiguous()) t.copy_(c);
    }
}

/// PyTorch's SyncBatchNorm.convert_sync_batchnorm, in place: every BatchNorm1d/BatchNorm2d in
/// `module` (itself included, at any depth) normalises in training with the statistics of the
/// whole global batch, summed over all ranks by the ring of ring_allreduce_sum (so every rank
/// normalises with the same bits and keeps the same running statistics); see sync_batch_norm.
/// Forward and backward of those layers become collective: every rank must run them. Eval mode
/// and the state_dict are unchanged. With equal shards of the global batch (each rank's loss the
/// mean over its shard, GradientReducer weighting each rank 1/N) the gradients are those of one
/// process running the whole batch, as with PyTorch's SyncBatchNorm. Returns how many layers were
/// converted.
/// @throws value_error as rank() (MPI not initialised).
inline int convert_sync_batchnorm(nn::Module& module) {
    (void)world_size();  // fail now, not inside a forward pass, when MPI is not initialised
    int converted = 0;
    if (auto* bn = dynamic_cast<nn::BatchNormImplBase*>(&module)) {
        bn->set_stats_all_reduce([](std::vector<double>& values) {
            std::vector<double> scratch;
            ring_allreduce_sum(values.data(), static_cast<std::int64_t>(values.size()), scratch);
        });
        ++converted;
    }
    for (const auto& child : module.named_children()) converted += convert_sync_batchnorm(*child.second);
    return converted;
}

/// Averages gradients across ranks after backward(): gradient = Σ_r weight_r · grad_r, summed
/// in the ring order (see the top), identical on every rank. Parameters are packed into buckets
/// of at most bucket_bytes, in reverse registration order (the order backward produces them);
/// each bucket is one ring allreduce. A parameter that has no gradient on any rank keeps none;
/// one that has a gradient on some ranks gets the sum with zeros for the others.
/// Example, with a global batch split unevenly:
///   reducer.reduce(double(batch.target.size()) / double(batch.global_size));
class GradientReducer {
public:
    /// @throws value_error when bucket_bytes is below 4 bytes or when the ranks' parameter lists
    ///   differ in count or shapes (collective: call it on every rank).
    explicit GradientReducer(std::vector<Tensor> params, std::size_t bucket_bytes = std::size_t{4} << 20)
        : params_(std::move(params)) {
        NANOTORCH_CHECK(bucket_bytes >= sizeof(float), value_error, "GradientReducer: bucket_bytes ",
                        bucket_bytes, " holds no float");
        std::vector<std::pair<std::string, Tensor>> named;
        for (std::size_t i = 0; i < params_.size(); ++i) named.emplace_back(std::to_string(i), params_[i]);
        check_same(detail::fingerprint(named), "the parameter list given to GradientReducer");
        // Each bucket holds whole parameters plus one "has a gradient" flag per parameter; a
        // parameter larger than bucket_bytes gets a bucket of its own.
        const auto capacity = static_cast<std::int64_t>(bucket_bytes / sizeof(float));
        std::int64_t used = 0;
        for (std::size_t k = params_.size(); k-- > 0;) {
            const std::int64_t need = params_[k].numel() + 1;
            if (buckets_.empty() || (used + need > capacity && used > 0)) {
                buckets_.emplace_back();
                used = 0;
            }
            buckets_.back().push_back(k);
            used += need;
        }
    }

    /// Replaces every parameter's gradient by Σ_r weight_r · grad_r over the ranks (weights
    /// 1/world_size() give the mean of per-rank mean losses; rows/global rows give the exact
    /// gradient of a global batch split unevenly). Collective; every rank must call it.
    void reduce(double weight) {
        const auto w = static_cast<float>(weight);
        for (const auto& bucket : buckets_) {
            std::int64_t n = 0;
            for (std::size_t k : bucket) n += params_[k].numel() + 1;
            buffer_.assign(static_cast<std::size_t>(n), 0.0f);
            float* out = buffer_.data();
            for (std::size_t k : bucket) {
                const Tensor g = params_[k].grad();
                const std::int64_t m = params_[k].numel();
                if (g.defined()) {
                    const Tensor gc = g.is_contiguous() ? g : g.contiguous();
                    const float* src = gc.data_ptr();
                    for (std::int64_t i = 0; i < m; ++i) out[i] = w * src[i];
                    out[m] = 1.0f;
                }
                out += m + 1;
            }
            ring_allreduce_sum(buffer_.data(), n, scratch_);
            const float* in = buffer_.data();
            for (std::size_t k : bucket) {
                Tensor& p = params_[k];
                const std::int64_t m = p.numel();
                if (in[m] > 0.0f) {
                    Tensor g = p.grad();
                    if (!g.defined() || !g.is_contiguous() || g.shape() != p.shape()) {
                        g = empty(p.shape());
                        p.set_grad(g);
                    }
                    if (m > 0) std::memcpy(g.data_ptr(), in, static_cast<std::size_t>(m) * sizeof(float));
                }
                in += m + 1;
            }
        }
    }

    /// The buckets as parameter indices (for tests and the README's model).
    const std::vector<std::vector<std::size_t>>& buckets() const { return buckets_; }
    /// Bytes one reduce() sends per rank and bucket sum: 4 · (Σ numel + one flag per parameter).
    std::int64_t payload_bytes() const {
        std::int64_t n = 0;
        for (const auto& p : params_) n += p.numel() + 1;
        return n * static_cast<std::int64_t>(sizeof(float));
    }

private:
    std::vector<Tensor> params_;
    std::vector<std::vector<std::size_t>> buckets_;
    std::vector<float> buffer_, scratch_;
};

}  // namespace nanotorch::distributed
