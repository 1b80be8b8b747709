// tests/mpi/test_mpi.cpp — distributed/mpi.hpp under mpirun (ctest runs it with 2 and 3 ranks,
// oversubscribed on this machine's cores). Every rank runs every case; a failure on any rank fails
// the job. The expected values are computed locally from data each rank can regenerate for any
// other rank (a function of rank and index), never by the code under test.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include <nanotorch/distributed/mpi.hpp>
#include <nanotorch/nanotorch.hpp>

using namespace nanotorch;
namespace dist = nanotorch::distributed;

namespace {

// Rank r's i-th value: spread over magnitudes so that the summation order changes the bits.
float value_of(int r, std::int64_t i) {
    const double x = std::sin(0.37 * static_cast<double>(i) + 1.3 * r) * std::pow(10.0, static_cast<double>((i + r) % 7) - 3);
    return static_cast<float>(x);
}

// The ring's documented order for element i of n: chunk c = the chunk holding i, summed as
// ((x_c + x_{c+1}) + x_{c+2}) + ... over ranks mod N (the running sum on the left).
float ring_order_sum(std::int64_t i, std::int64_t n, int world) {
    int c = 0;
    while (n * (c + 1) / world <= i) ++c;
    float acc = value_of(c, i);
    for (int k = 1; k < world; ++k) acc = value_of((c + k) % world, i) + acc;
    return acc;
}

struct TinyNet : nn::Module {
    nn::Linear fc{nullptr};
    nn::BatchNorm2d bn{nullptr};
    TinyNet() {
        fc = register_module("fc", nn::Linear(3, 2));
        bn = register_module("bn", nn::BatchNorm2d(2));
    }
    Tensor forward(const Tensor& x) override { return fc(x); }
};

}  // namespace

TEST_CASE("ring_allreduce_sum follows the documented order and gives every rank the same bits") {
    const int world = dist::world_size(), me = dist::rank();
    for (std::int64_t n : {0, 1, 2, 5, 1000, 4099}) {
        CAPTURE(n);
        std::vector<float> data(static_cast<std::size_t>(n)), scratch;
        for (std::int64_t i = 0; i < n; ++i) data[static_cast<std::size_t>(i)] = value_of(me, i);
        dist::ring_allreduce_sum(data.data(), n, scratch);
        std::int64_t mismatches = 0;
        for (std::int64_t i = 0; i < n; ++i)
            mismatches += data[static_cast<std::size_t>(i)] != ring_order_sum(i, n, world);  // bit-exact
        CHECK(mismatches == 0);
    }
}

TEST_CASE("local_size counts the ranks on this node (all of them under a local mpirun)") {
    CHECK(dist::local_size() == dist::world_size());
}

TEST_CASE("check_same throws on every rank when one rank differs, and passes when all agree") {
    const int me = dist::rank();
    CHECK_NOTHROW(dist::check_same(42, "the answer"));
    if (dist::world_size() > 1) CHECK_THROWS_AS(dist::check_same(me == 1 ? 7 : 42, "the answer"), value_error);
}

TEST_CASE("broadcast_module copies rank 0's parameters and buffers") {
    manual_seed(100 + static_cast<std::uint64_t>(dist::rank()));  // every rank initialises differently
    TinyNet net;
    {
        NoGradGuard g;
        net.bn->running_mean.fill_(static_cast<float>(dist::rank()) + 0.5f);
    }
    dist::broadcast_module(net);
    manual_seed(100);  // rank 0's initialisation, rebuilt locally
    TinyNet expected;
    const auto got = net.named_parameters(), want = expected.named_parameters();
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(got[i].first);
        CHECK(got[i].second.to_vector() == want[i].second.to_vector());
    }
    for (float v : net.bn->running_mean.to_vector()) CHECK(v == 0.5f);
}

TEST_CASE("GradientReducer: weighted sum over ranks, buckets, parameters without gradients") {
    const int world = dist::world_size(), me = dist::rank();
    // Three parameters; p1 has a gradient on rank 0 only, p2 on no rank.
    std::vector<Tensor> params = {zeros({3, 4}).requires_grad_(), zeros({5}).requires_grad_(),
                                  zeros({2}).requires_grad_()};
    std::vector<float> g0(12);
    for (std::int64_t i = 0; i < 12; ++i) g0[static_cast<std::size_t>(i)] = value_of(me, i);
    for (std::size_t bucket_bytes : {std::size_t{4}, std::size_t{1} << 20}) {
        CAPTURE(bucket_bytes);
        for (auto& p : params) p.zero_grad();  // (the previous round left reduced gradients)
        params[0].set_grad(tensor(g0, {3, 4}));
        if (me == 0) params[1].set_grad(full({5}, 2.0f));
        dist::GradientReducer reducer(params, bucket_bytes);
        CHECK(reducer.buckets().size() == (bucket_bytes == 4 ? 3u : 1u));
        const double weight = 1.0 / world;
        reducer.reduce(weight);
        const std::vector<float> got = params[0].grad().to_vector();
        double worst = 0.0;
        for (std::int64_t i = 0; i < 12; ++i) {
            double want = 0.0;
            for (int r = 0; r < world; ++r) want += static_cast<double>(static_cast<float>(weight) * value_of(r, i));
            worst = std::max(worst, std::abs(got[static_cast<std::size_t>(i)] - want) / (std::abs(want) + 1e-30));
        }
        CHECK(worst < 1e-6);  // float sums of `world` terms: a few ulps
        REQUIRE(params[1].grad().defined());
        for (float v : params[1].grad().to_vector()) CHECK(v == doctest::Approx(2.0 / world).epsilon(1e-6));
        CHECK_FALSE(params[2].grad().defined());
        // Every rank holds the same bits: compare rank 0's with everyone's.
        std::vector<double> mine(got.begin(), got.end()), sum = dist::allreduce_sum(mine);
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(sum[i] == static_cast<double>(got[i]) * world);
    }
}

TEST_CASE("convert_sync_batchnorm: each rank's shard is normalised as the whole batch is in one process") {
    const int world = dist::world_size(), me = dist::rank();
    const std::int64_t B = 6, C = 3;  // 6 rows split evenly over 2 or 3 ranks
    Generator g(17);  // the same data on every rank; each takes its rows
    const Tensor x_all = normal({B, C, 4, 5}, 1.5f, 2.0f, g), gy_all = randn({B, C, 4, 5}, g);
    const Tensor w0 = uniform({C}, 0.5f, 1.5f, g), b0 = uniform({C}, -1.0f, 1.0f, g);
    // One process, the whole batch: the reference.
    nn::BatchNorm2d ref(C);
    {
        NoGradGuard ng;
        ref->weight.copy_(w0);
        ref->bias.copy_(b0);
    }
    Tensor x_ref = x_all.clone().requires_grad_();
    const Tensor y_ref = ref->forward(x_ref);
    (y_ref * gy_all).sum().backward();
    // This rank's shard through a converted module.
    nn::BatchNorm2d bn(C);
    {
        NoGradGuard ng;
        bn->weight.copy_(w0);
        bn->bias.copy_(b0);
    }
    CHECK(dist::convert_sync_batchnorm(*bn) == 1);
    const std::int64_t rows = B / world, first = me * rows;
    Tensor x = x_all.narrow(0, first, rows).contiguous().requires_grad_();
    const Tensor y = bn->forward(x);
    (y * gy_all.narrow(0, first, rows).contiguous()).sum().backward();
    // Tolerance: the same sums in another order (per rank, then across ranks) in double, rounded
    // to float: a few float ulps of values of order 1-10, so 1e-5 absolute + relative.
    auto close = [](const std::vector<float>& a, const std::vector<float>& b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (std::fabs(a[i] - b[i]) > 1e-5 * (1.0 + std::fabs(b[i]))) return false;
        return true;
    };
    CHECK(close(y.to_vector(), y_ref.narrow(0, first, rows).contiguous().to_vector()));
    CHECK(close(x.grad().to_vector(), x_ref.grad().narrow(0, first, rows).contiguous().to_vector()));
    CHECK(close(bn->running_mean.to_vector(), ref->running_mean.to_vector()));
    CHECK(close(bn->running_var.to_vector(), ref->running_var.to_vector()));
    // Weight and bias gradients are each rank's part; their sum over ranks is the whole batch's.
    std::vector<double> parts;
    for (float v : bn->weight.grad().to_vector()) parts.push_back(v);
    for (float v : bn->bias.grad().to_vector()) parts.push_back(v);
    parts = dist::allreduce_sum(parts);
    std::vector<float> summed(parts.begin(), parts.end());
    std::vector<float> want = ref->weight.grad().to_vector();
    for (float v : ref->bias.grad().to_vector()) want.push_back(v);
    CHECK(close(summed, want));
    // Every rank holds the same running statistics, bit for bit (the sum of N equal floats in
    // double is exactly N times one of them).
    const std::vector<float> var = bn->running_var.to_vector();
    const std::vector<double> mine(var.begin(), var.end());
    const std::vector<double> total = dist::allreduce_sum(mine);
    for (std::size_t c = 0; c < mine.size(); ++c) CHECK(total[c] == mine[c] * world);
}

TEST_CASE("sharded DataLoader: the ranks' slices, concatenated in rank order, are the unsharded batches") {
    const int world = dist::world_size(), me = dist::rank();
    data::Dataset ds;
    const std::int64_t n = 51;  // 6 batches of 8 and one of 3: every rank gets rows with 2 or 3 ranks
    std::vector<float> px(static_cast<std::size_t>(n * 4));
    for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>(i);
    ds.images = tensor(px, {n, 1, 2, 2});
    for (std::int64_t i = 0; i < n; ++i) ds.labels.push_back(i % 10);
    Generator g_all(9), g_shard(9);
    data::DataLoader all(ds, data::DataLoaderOptions(8).shuffle(true), g_all);
    data::DataLoader mine(ds, data::DataLoaderOptions(8).shuffle(true).shard(me, world), g_shard);
    auto it = all.begin();
    for (auto b : mine) {
        const data::Batch whole = *it;
        ++it;
        const auto rows = static_cast<std::int64_t>(b.target.size());
        CHECK(b.global_size == static_cast<std::int64_t>(whole.target.size()));
        // Gather every rank's row count: the slices must tile the global batch in rank order.
        const std::vector<double> counts = dist::allreduce_sum([&] {
            std::vector<double> v(static_cast<std::size_t>(world), 0.0);
            v[static_cast<std::size_t>(me)] = static_cast<double>(rows);
            return v;
        }());
        double before = 0.0, total = 0.0;
        for (int r = 0; r < world; ++r) {
            if (r < me) before += counts[static_cast<std::size_t>(r)];
            total += counts[static_cast<std::size_t>(r)];
        }
        CHECK(b.global_offset == static_cast<std::int64_t>(before));
        CHECK(total == static_cast<double>(b.global_size));
        CHECK(b.data.to_vector() == whole.data.narrow(0, b.global_offset, rows).contiguous().to_vector());
    }
}

// NANOTORCH_TEST_THROW_RANK=R (ctest test_mpi_throw): rank R throws while an Environment is alive
// and the other ranks wait for it in a barrier. The Environment's destructor, run by the unwinding,
// must abort the whole job naming rank R; nothing else could end the waiting ranks.
int throw_from_one_rank(int argc, char** argv, int thrower) {
    try {
        dist::Environment mpi(argc, argv);
        if (mpi.rank() == thrower) throw std::runtime_error("thrown on purpose");
        MPI_Barrier(MPI_COMM_WORLD);
    } catch (const std::exception& e) {
        std::printf("caught after the Environment was destroyed: %s\n", e.what());  // not reached: aborted
    }
    return 0;
}

int main(int argc, char** argv) {
    if (const char* thrower = std::getenv("NANOTORCH_TEST_THROW_RANK"))
        return throw_from_one_rank(argc, argv, std::atoi(thrower));
    dist::Environment mpi(argc, argv);
    doctest::Context context(argc, argv);
    const int failed = context.run();
    // Every rank must agree on the outcome before finalising, or a passing rank would report
    // success for a failing job; the summed failure count is the exit code of every rank.
    const std::vector<double> total = dist::allreduce_sum({static_cast<double>(failed != 0)});
    if (mpi.rank() == 0) std::printf("test_mpi: %d ranks, %g failed\n", mpi.world_size(), total[0]);
    return total[0] > 0 ? 1 : 0;
}
