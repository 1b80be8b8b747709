// nanotorch/data/dataloader.hpp — mini-batches over a Dataset, optionally shuffled.
//
// Iterating a DataLoader yields Batch{data, target}: data [B, 1, H, W] copied out of the data
// set, target the B labels. Each pass (each begin()) draws a fresh permutation from the
// Generator given at construction (Fisher–Yates, serial), so a seed fixes every epoch's order.
// The loader shares the data set's image storage; it keeps a reference to the generator,
// which must outlive it. Only the constructor and resume() throw; iterating never does.
// Resuming mid-pass (training checkpoints): save pass_state() and the number of batches done;
// resume(state, batch) then makes the next begin() redraw the same order and start at that batch.
#pragma once

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include <nanotorch/core/random.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/data/mnist.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::data {

class DataLoaderOptions {
public:
    DataLoaderOptions(std::int64_t batch_size) : batch_size_(batch_size) {}
    DataLoaderOptions& shuffle(bool v) { shuffle_ = v; return *this; }
    DataLoaderOptions& drop_last(bool v) { drop_last_ = v; return *this; }
    std::int64_t batch_size() const { return batch_size_; }
    bool shuffle() const { return shuffle_; }
    bool drop_last() const { return drop_last_; }

private:
    std::int64_t batch_size_;
    bool shuffle_ = false;
    bool drop_last_ = false;
};

struct Batch {
    Tensor data;
    std::vector<std::int64_t> target;
};

class DataLoader {
public:
    /// @throws value_error when batch_size <= 0; shape_error when dataset.images is undefined,
    ///   0-D, or its first dimension differs from the number of labels.
    DataLoader(const Dataset& dataset, DataLoaderOptions options, Generator& gen = default_generator())
        : dataset_(dataset), options_(options), gen_(gen) {
        NANOTORCH_CHECK(options.batch_size() > 0, value_error, "DataLoader: batch_size must be positive, got ",
                        options.batch_size());
        NANOTORCH_CHECK(dataset.images.defined() && dataset.images.dim() >= 1 &&
                            dataset.images.size(0) == dataset.size(),
                        shape_error, "DataLoader: the data set has ", dataset.size(), " labels but images of shape ",
                        dataset.images.defined() ? shape_str(dataset.images.shape()) : "undefined");
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
        const std::int64_t start = b * options_.batch_size();
        const std::int64_t count = std::min(options_.batch_size(), n - start);
        Shape shape = dataset_.images.shape();
        const std::int64_t per_item = dataset_.images.numel() / std::max<std::int64_t>(n, 1);
        shape[0] = count;
        Batch batch{empty(shape), std::vector<std::int64_t>(static_cast<std::size_t>(count))};
        const Tensor src = dataset_.images.is_contiguous() ? dataset_.images : dataset_.images.contiguous();
        for (std::int64_t i = 0; i < count; ++i) {
            const std::int64_t idx = order_[static_cast<std::size_t>(start + i)];
            std::memcpy(batch.data.data_ptr() + i * per_item, src.data_ptr() + idx * per_item,
                        static_cast<std::size_t>(per_item) * sizeof(float));
            batch.target[static_cast<std::size_t>(i)] = dataset_.labels[static_cast<std::size_t>(idx)];
        }
        return batch;
    }

    Dataset dataset_;  // a handle copy: images share storage, labels are copied
    DataLoaderOptions options_;
    Generator& gen_;
    std::vector<std::int64_t> order_;
    GeneratorState pass_state_ = gen_.state();
    std::int64_t resume_batch_ = 0;
};

}  // namespace nanotorch::data
