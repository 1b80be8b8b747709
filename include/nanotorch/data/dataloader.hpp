// nanotorch/data/dataloader.hpp — mini-batches over a Dataset, optionally shuffled.
//
// Iterating a DataLoader yields Batch{data, target}: data [B, 1, H, W] copied out of the data
// set, target the B labels. Each pass (each begin()) draws a fresh permutation from the
// Generator given at construction (Fisher–Yates, serial), so a seed fixes every epoch's order.
// The loader shares the data set's image storage; it keeps a reference to the generator,
// which must outlive it.
//
// With a transform (DataLoaderOptions::transform, e.g. a data::Compose of augmentations), each
// sample is transformed as its batch is made. Every pass also draws one 64-bit pass seed from
// the generator (after the shuffle), and the sample at position i of the pass is transformed
// with its own Generator seeded from (pass seed, i): a seed reproduces every augmented batch,
// whatever the thread count and in whatever order batches are dereferenced.
// Resuming mid-pass (training checkpoints): save pass_state() and the number of batches done;
// resume(state, batch) then makes the next begin() redraw the same order (and pass seed) and start
// at that batch. Only the constructor (it checks that the transform accepts the data set's image
// shape) and resume() throw; iterating never does.
//
// Sharding (data-parallel training, distributed/mpi.hpp): with DataLoaderOptions::shard(rank,
// world), batch_size is the GLOBAL batch. Every rank draws the same permutation (the generators
// are seeded alike), cuts it into the same global batches, and yields only its own contiguous
// slice of each one: global batch b of c samples gives rank r its rows [r·c/world, (r+1)·c/world).
// The slices of ranks 0..world−1, concatenated in rank order, are exactly the batch an unsharded
// loader yields, augmentation included (sample seeds follow the position in the global pass), so
// N ranks see what one process sees. Batch::global_offset / global_size say where the slice sits
// (dropout's BatchShardGuard needs it). pass_state()/resume() work unchanged.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include <nanotorch/core/random.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/data/mnist.hpp>
#include <nanotorch/data/transforms.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/parallel.hpp>  // parallel_for: the batch's rows gathered in parallel

namespace nanotorch::data {

class DataLoaderOptions {
public:
    DataLoaderOptions(std::int64_t batch_size) : batch_size_(batch_size) {}
    DataLoaderOptions& shuffle(bool v) { shuffle_ = v; return *this; }
    DataLoaderOptions& drop_last(bool v) { drop_last_ = v; return *this; }
    /// Yields only shard `rank` of `world` of each global batch of batch_size (see the top).
    /// Checked by the DataLoader constructor: 0 <= rank < world.
    DataLoaderOptions& shard(std::int64_t rank, std::int64_t world) {
        shard_rank_ = rank;
        shard_world_ = world;
        return *this;
    }
    /// A transform applied to every sample [C, H, W] (a copy of `t` is kept), e.g.
    /// `.transform(data::Compose(data::RandomCrop(28, 2), data::RandomHorizontalFlip()))`.
    template <class T, class = std::enable_if_t<std::is_base_of<Transform, std::decay_t<T>>::value>>
    DataLoaderOptions& transform(T&& t) {
        transform_ = std::make_shared<std::decay_t<T>>(std::forward<T>(t));
        return *this;
    }
    /// A shared transform; nullptr removes it.
    DataLoaderOptions& transform(std::shared_ptr<const Transform> t) {
        transform_ = std::move(t);
        return *this;
    }
    std::int64_t batch_size() const { return batch_size_; }
    bool shuffle() const { return shuffle_; }
    bool drop_last() const { return drop_last_; }
    std::int64_t shard_rank() const { return shard_rank_; }
    std::int64_t shard_world() const { return shard_world_; }
    const std::shared_ptr<const Transform>& transform() const { return transform_; }

private:
    std::int64_t batch_size_;
    bool shuffle_ = false;
    bool drop_last_ = false;
    std::int64_t shard_rank_ = 0, shard_world_ = 1;
    std::shared_ptr<const Transform> transform_;
};

struct Batch {
    Tensor data;
    std::vector<std::int64_t> target;
    /// Sharded loaders: rows of the global batch before this slice, and the global batch's rows.
    /// Unsharded: 0 and the batch's own size.
    std::int64_t global_offset = 0;
    std::int64_t global_size = 0;
};

class DataLoader {
public:
    /// @throws value_error when batch_size <= 0, when a shard is not 0 <= rank < world, or when a
    ///   sharded loader would leave a rank without samples in some batch (batch_size < world, or a
    ///   short last batch without drop_last: choose drop_last or another batch size);
    ///   shape_error when dataset.images is undefined, 0-D, or its first dimension differs from
    ///   the number of labels.
    DataLoader(const Dataset& dataset, DataLoaderOptions options, Generator& gen = default_generator())
        : dataset_(dataset), options_(options), gen_(gen) {
        NANOTORCH_CHECK(options.batch_size() > 0, value_error, "DataLoader: batch_size must be positive, got ",
                        options.batch_size());
        NANOTORCH_CHECK(dataset.images.defined() && dataset.images.dim() >= 1 &&
                            dataset.images.size(0) == dataset.size(),
                        shape_error, "DataLoader: the data set has ", dataset.size(), " labels but images of shape ",
                        dataset.images.defined() ? shape_str(dataset.images.shape()) : "undefined");
        const std::int64_t world = options.shard_world(), rank = options.shard_rank();
        NANOTORCH_CHECK(world >= 1 && rank >= 0 && rank < world, value_error, "DataLoader: shard ", rank, " of ",
                        world, " is not a shard (need 0 <= rank < world)");
        if (world > 1) {
            NANOTORCH_CHECK(options.batch_size() >= world, value_error, "DataLoader: the global batch size ",
                            options.batch_size(), " is smaller than the ", world, " shards");
            const std::int64_t last = dataset.size() % options.batch_size();
            NANOTORCH_CHECK(options.drop_last() || last == 0 || last >= world, value_error,
                            "DataLoader: the last batch has ", last, " samples, fewer than the ", world,
                            " shards; use drop_last or another batch size");
        }
        if (options.transform()) {
            NANOTORCH_CHECK(dataset.images.dim() == 4, shape_error,
                            "DataLoader: a transform needs images [N, C, H, W], got ",
                            shape_str(dataset.images.shape()));
            const Shape chw{dataset.images.size(1), dataset.images.size(2), dataset.images.size(3)};
            item_shape_ = options.transform()->output_shape(chw);
        }
    }

    /// Number of batches per pass.
    std::int64_t size() const {
        const std::int64_t n = dataset_.size(), b = options_.batch_size();
        return options_.drop_last() ? n / b : (n + b - 1) / b;
    }

    class Iterator {
    public:
        Iterator(const DataLoader* loader, std::int64_t batch) : loader_(loader), batch_(batch) {}
        Batch operator*() const { return loader_->make_batch(batch_); }
        Iterator& operator++() {
            ++batch_;
            return *this;
        }
        bool operator!=(const Iterator& o) const { return batch_ != o.batch_; }
        bool operator==(const Iterator& o) const { return batch_ == o.batch_; }

    private:
        const DataLoader* loader_;
        std::int64_t batch_;
    };

    /// Starts a pass: reshuffles when shuffle is on. Starts at batch 0, or where resume() said.
    Iterator begin() {
        pass_state_ = gen_.state();
        order_.resize(static_cast<std::size_t>(dataset_.size()));
        std::iota(order_.begin(), order_.end(), std::int64_t{0});
        if (options_.shuffle())
            for (std::size_t i = order_.size(); i > 1; --i)
                std::swap(order_[i - 1], order_[static_cast<std::size_t>(gen_.randint(i))]);
        if (options_.transform()) pass_seed_ = gen_.next_u64();
        const std::int64_t first = resume_batch_;
        resume_batch_ = 0;
        return Iterator(this, first);
    }
    Iterator end() const { return Iterator(this, size()); }

    /// The generator's state just before the current pass's shuffle (taken by the last begin()).
    const GeneratorState& pass_state() const { return pass_state_; }

    /// Makes the next begin() replay a pass from its pass_state(): the generator is set to
    /// `state`, so that pass's order is drawn again (and the generator ends where it did), and
    /// iteration starts at batch `batch`, as if the first `batch` batches had just been taken.
    /// @throws value_error when batch is outside [0, size()], or as Generator::set_state.
    void resume(const GeneratorState& state, std::int64_t batch) {
        NANOTORCH_CHECK(batch >= 0 && batch <= size(), value_error, "DataLoader::resume: batch ", batch,
                        " is outside 0..", size());
        gen_.set_state(state);
        resume_batch_ = batch;
    }

private:
    Batch make_batch(std::int64_t b) const {
        const std::int64_t n = dataset_.size();
        const std::int64_t global_start = b * options_.batch_size();
        const std::int64_t global_count = std::min(options_.batch_size(), n - global_start);
        // This shard's rows of the global batch (everything when unsharded).
        const std::int64_t world = options_.shard_world(), rank = options_.shard_rank();
        const std::int64_t offset = rank * global_count / world;
        const std::int64_t start = global_start + offset;
        const std::int64_t count = (rank + 1) * global_count / world - offset;
        Shape shape = dataset_.images.shape();
        const std::int64_t per_item = dataset_.images.numel() / std::max<std::int64_t>(n, 1);
        const Transform* transform = options_.transform().get();
        const Shape chw = transform ? Shape{shape[1], shape[2], shape[3]} : Shape{};
        if (transform) shape = {count, item_shape_[0], item_shape_[1], item_shape_[2]};
        shape[0] = count;
        const std::int64_t out_per_item = transform ? item_shape_[0] * item_shape_[1] * item_shape_[2] : per_item;
        Batch batch{empty(shape), std::vector<std::int64_t>(static_cast<std::size_t>(count)), offset, global_count};
        const Tensor src = dataset_.images.is_contiguous() ? dataset_.images : dataset_.images.contiguous();
        for (std::int64_t i = 0; i < count; ++i) {
            const std::int64_t idx = order_[static_cast<std::size_t>(start + i)];
            if (transform) {
                Generator sample_gen(sample_seed(start + i));
                transform->apply(src.data_ptr() + idx * per_item, chw, batch.data.data_ptr() + i * out_per_item,
                                 sample_gen);
            }
            batch.target[static_cast<std::size_t>(i)] = dataset_.labels[static_cast<std::size_t>(idx)];
        }
        if (!transform) {
            // The rows of a shuffled batch are scattered over the whole dataset (188 MB for
            // MNIST's 60k), so gathering them waits on memory: ~16 us of a 0.8 ms batch-64 step,
            // on one core while the others idled. Copies only, so spread over the pool. (A
            // transform is a user's class: it runs on the calling thread, in order.)
            float* dst = batch.data.data_ptr();
            const float* from = src.data_ptr();
            parallel_for(0, count, 16, [&](std::int64_t i0, std::int64_t i1) {
                for (std::int64_t i = i0; i < i1; ++i)
                    std::memcpy(dst + i * per_item, from + order_[static_cast<std::size_t>(start + i)] * per_item,
                                static_cast<std::size_t>(per_item) * sizeof(float));
            });
        }
        return batch;
    }

    // The seed of the generator that transforms the sample at `position` of this pass
    // (Generator's splitmix64 seeding spreads neighbouring seeds into unrelated streams).
    std::uint64_t sample_seed(std::int64_t position) const {
        return pass_seed_ ^ (static_cast<std::uint64_t>(position) * 0x9e3779b97f4a7c15ULL);
    }

    Dataset dataset_;  // a handle copy: images share storage, labels are copied
    DataLoaderOptions options_;
    Generator& gen_;
    std::vector<std::int64_t> order_;
    GeneratorState pass_state_ = gen_.state();
    std::int64_t resume_batch_ = 0;
    Shape item_shape_;             // one transformed sample [C, H', W'] (with a transform)
    std::uint64_t pass_seed_ = 0;  // drawn by begin() when there is a transform
};

}  // namespace nanotorch::data
