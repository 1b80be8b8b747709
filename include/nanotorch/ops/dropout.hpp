// nanotorch/ops/dropout.hpp — dropout and dropout2d (whole-channel dropout), with backward.
//
// Inverted dropout: during training each element (dropout) or each channel plane (dropout2d)
// is zeroed with probability p and every kept value is multiplied by 1/(1−p), so E[out] = x
// and evaluation needs no rescaling. The mask is drawn serially from the caller's Generator,
// one draw per element (or per channel) in row-major order, before any parallel work, so a
// seed reproduces the mask exactly whatever the thread count (the data race of a shared RNG
// inside a parallel loop cannot happen). Backward multiplies by the same saved mask.
// p must be in [0, 1): p == 1 is rejected rather than returning zeros, because 1/(1−p) is then
// undefined and E[out] = x can no longer hold (use zeros_like for "drop everything").
// Data-parallel training (BatchShardGuard below): a rank that holds rows [offset, offset + b) of
// a global batch of `total` rows draws exactly those rows' part of the mask the whole batch
// would get, skipping the other rows' draws, so N ranks drop what one process with the whole
// batch drops and every rank's generator ends where that process's would.
// Deliberately not here: alpha dropout, feature dropout for other ranks, in-place variants.
#pragma once

#include <algorithm>  // std::max
#include <cmath>      // std::ceil
#include <cstdint>
#include <cstring>    // std::memcpy (the mask's bits)
#include <memory>
#include <vector>

#include <nanotorch/autograd/node.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/config.hpp>
#include <nanotorch/core/random.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/parallel.hpp>
#include <nanotorch/kernels/pointwise.hpp>
#include <nanotorch/kernels/simd.hpp>
#include <nanotorch/ops/broadcast.hpp>

namespace nanotorch {

// ---- batch sharding ----
/// Where the calling thread's batch sits in a data-parallel global batch: rows [offset,
/// offset + rows) of `total`. Set by BatchShardGuard; total == 0 means no sharding.
struct BatchShard {
    std::int64_t offset = 0;
    std::int64_t total = 0;
};

namespace ops::detail {
inline BatchShard& current_batch_shard() {
    thread_local BatchShard shard;
    return shard;
}
}  // namespace ops::detail

/// While alive, dropout and dropout2d on this thread treat dim 0 of their input as rows
/// [offset, offset + size(0)) of a global batch of `total` rows: they skip the draws of the rows
/// before and after, so the mask equals that slice of the global batch's mask (a few
/// next_u64() calls per skipped element; cheap next to the layer's own work). Nests; restores the
/// previous setting when destroyed. Example, one training step of rank r:
///   BatchShardGuard shard(batch.global_offset, batch.global_size);  loss = F::nll_loss(model(x), y);
/// @throws value_error unless 0 <= offset < total (dropout then checks offset + rows <= total).
class BatchShardGuard {
public:
    BatchShardGuard(std::int64_t offset, std::int64_t total) : saved_(ops::detail::current_batch_shard()) {
        NANOTORCH_CHECK(total > 0 && offset >= 0 && offset < total, value_error, "BatchShardGuard: rows from ",
                        offset, " are not inside a global batch of ", total);
        ops::detail::current_batch_shard() = BatchShard{offset, total};
    }
    ~BatchShardGuard() { ops::detail::current_batch_shard() = saved_; }
    BatchShardGuard(const BatchShardGuard&) = delete;
    BatchShardGuard& operator=(const BatchShardGuard&) = delete;

private:
    BatchShard saved_;
};

namespace ops::detail {

/// Throws value_error unless 0 <= p < 1 (NaN fails too); `op` names the caller.
inline void check_dropout_p(float p, const char* op) {
    NANOTORCH_CHECK(p >= 0.0f && p < 1.0f, value_error, op, ": p = ", p,
                    " is not a dropout probability in [0, 1) (p = 1 would need the undefined scale 1/(1-p))");
}

/// The factor kept values get: 1/(1−p), evaluated in float (tests compare against exactly this).
inline float dropout_scale(float p) { return 1.0f / (1.0f - p); }

/// n mask values, each 0 (probability p) or `scale`: draw i decides element i, serially.
/// The n values are `rows` rows of dim 0; under a BatchShardGuard the draws of the global
/// batch's other rows are skipped (one next_u64 each, as bernoulli takes), before and after.
/// @throws shape_error when the rows do not fit in the guard's global batch (`op` names the caller).
inline void fill_dropout_mask(float* mask, std::int64_t n, std::int64_t rows, float p, float scale, Generator& gen,
                              const char* op) {
    const BatchShard shard = current_batch_shard();
    std::int64_t skip_before = 0, skip_after = 0;
    if (shard.total > 0 && rows > 0) {
        NANOTORCH_CHECK(shard.offset + rows <= shard.total, shape_error, op, ": ", rows, " rows from row ",
                        shard.offset, " do not fit in the BatchShardGuard's global batch of ", shard.total);
        const std::int64_t per_row = n / rows;
        skip_before = shard.offset * per_row;
        skip_after = (shard.total - shard.offset - rows) * per_row;
    }
    for (std::int64_t i = 0; i < skip_before; ++i) gen.next_u64();
    // gen.bernoulli(p) is uniform_double() < p with uniform_double() = (next_u64() >> 11) · 2^-53,
    // i.e. (next_u64() >> 11) < p · 2^53 (exact: a power-of-2 scaling), i.e. < ceil(p · 2^53) for
    // an integer draw. The same draws and the same mask as calling bernoulli, without the
    // conversion to double per element.
    // The value is selected with a bit mask, not a branch: a branch on a random draw
    // mispredicts at rate p, which made this loop 2.3 ns per element (1.4 ms of a 590k-element
    // dropout per training step) where the generator itself takes under 1 (GCC turns a ?: or a
    // multiply by the comparison back into that branch). The bits are scale's or +0's, as before.
    const auto threshold = static_cast<std::uint64_t>(std::ceil(static_cast<double>(p) * 9007199254740992.0));
    std::uint32_t scale_bits;
    std::memcpy(&scale_bits, &scale, sizeof scale_bits);
    for (std::int64_t i = 0; i < n; ++i) {
        const std::uint32_t keep = 0u - static_cast<std::uint32_t>((gen.next_u64() >> 11) >= threshold);
        const std::uint32_t bits = keep & scale_bits;
        float value;  // (stored as a float: a byte copy into mask could alias gen's state)
        std::memcpy(&value, &bits, sizeof value);
        mask[i] = value;
    }
    for (std::int64_t i = 0; i < skip_after; ++i) gen.next_u64();
}
inline std::vector<float> draw_dropout_mask(std::int64_t n, std::int64_t rows, float p, float scale, Generator& gen,
                                            const char* op) {
    std::vector<float> mask(static_cast<std::size_t>(n));
    fill_dropout_mask(mask.data(), n, rows, p, scale, gen, op);
    return mask;
}

}  // namespace ops::detail

// ---- dropout ----
struct DropoutBackward : autograd::Node {
    Tensor mask;  // x's shape, contiguous; 0 or 1/(1−p)
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor dx = empty(mask.shape());
        kernels::parallel_mul(dx.data_ptr(), gc.data_ptr(), mask.data_ptr(), dx.numel());
        return {dx};
    }
    void release_saved() override { mask = Tensor(); }
    const char* name() const override { return "DropoutBackward"; }
};

/// In training, zeroes each element of x with probability p and scales the others by
/// 1/(1−p); the mask takes one draw from `gen` per element, in row-major order.
/// When !training or p == 0 it returns x itself (the same handle, no graph node).
/// Throws value_error when p is not in [0, 1) (checked in eval mode too).
/// Example: dropout(h, 0.5f, module_is_training, gen).
inline Tensor dropout(const Tensor& x, float p, bool training, Generator& gen = default_generator()) {
    ops::detail::check_dropout_p(p, "dropout");
    if (!training || p == 0.0f) return x;
    if (auto* tr = trace::active())  // an eval-mode dropout is the identity and leaves no node
        tr->unsupported("dropout", "it is active (training mode); export calls module.eval() first");
    const Tensor xc = ops::detail::as_contiguous(x);
    const std::int64_t rows = x.dim() == 0 ? 1 : x.size(0);
    // The mask is drawn straight into its tensor (a recycled buffer, see core/buffer_cache.hpp),
    // serially: the draws' order is what a seed reproduces.
    Tensor mask = empty(x.shape());
    ops::detail::fill_dropout_mask(mask.data_ptr(), x.numel(), rows, p, ops::detail::dropout_scale(p), gen, "dropout");
    Tensor out = empty(x.shape());
    kernels::parallel_mul(out.data_ptr(), xc.data_ptr(), mask.data_ptr(), out.numel());
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<DropoutBackward>();
        n->mask = mask;
        autograd::attach(out, n, {x});
    }
    return out;
}

// ---- dropout2d ----
namespace ops::detail {
// out[channels, plane] = x[channels, plane] * channel_mask[channels], one parallel task per plane range
inline void dropout_scale_planes(float* out, const float* x, const float* channel_mask, std::int64_t channels,
                         std::int64_t plane) {
    if (channels == 0 || plane == 0) return;  // empty tensors have null data: no pointer arithmetic
    const std::int64_t grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(plane, 1));
    parallel_for(0, channels, grain, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t c = b; c < e; ++c) kernels::mul_scalar(out + c * plane, x + c * plane, channel_mask[c], plane);
    });
}
}  // namespace ops::detail

struct Dropout2dBackward : autograd::Node {
    std::vector<float> channel_mask;  // one 0 or 1/(1−p) per channel plane
    Shape shape;
    std::int64_t plane = 0;  // H·W
    std::vector<Tensor> apply(const Tensor& g) override {
        const Tensor gc = ops::detail::as_contiguous(g);
        Tensor dx = empty(shape);
        ops::detail::dropout_scale_planes(dx.data_ptr(), gc.data_ptr(), channel_mask.data(),
                                  static_cast<std::int64_t>(channel_mask.size()), plane);
        return {dx};
    }
    void release_saved() override { channel_mask = {}; }
    const char* name() const override { return "Dropout2dBackward"; }
};

/// Channel dropout for x of shape [N, C, H, W] or [C, H, W]: in training, each H×W plane is
/// zeroed as a whole with probability p and the kept planes are scaled by 1/(1−p); the mask
/// takes one draw from `gen` per plane, in row-major (n, c) order.
/// When !training or p == 0 it returns x itself (the same handle, no graph node).
/// Throws value_error when p is not in [0, 1), shape_error when x is not 3-D or 4-D.
inline Tensor dropout2d(const Tensor& x, float p, bool training, Generator& gen = default_generator()) {
    ops::detail::check_dropout_p(p, "dropout2d");
    NANOTORCH_CHECK(x.dim() == 3 || x.dim() == 4, shape_error,
                    "dropout2d: expected input of shape [N, C, H, W] or [C, H, W], got ", shape_str(x.shape()));
    if (!training || p == 0.0f) return x;
    if (auto* tr = trace::active())  // an eval-mode dropout is the identity and leaves no node
        tr->unsupported("dropout2d", "it is active (training mode); export calls module.eval() first");
    const Shape& s = x.shape();
    const std::int64_t plane = s[s.size() - 2] * s[s.size() - 1];
    std::int64_t channels = 1;
    for (std::size_t i = 0; i + 2 < s.size(); ++i) channels *= s[i];
    const Tensor xc = ops::detail::as_contiguous(x);
    // A 3-D input is one unbatched sample: under a BatchShardGuard it counts as one row.
    const std::int64_t rows = x.dim() == 4 ? s[0] : 1;
    std::vector<float> m =
        ops::detail::draw_dropout_mask(channels, rows, p, ops::detail::dropout_scale(p), gen, "dropout2d");
    Tensor out = empty(s);
    ops::detail::dropout_scale_planes(out.data_ptr(), xc.data_ptr(), m.data(), channels, plane);
    if (autograd::any_requires_grad({&x})) {
        auto n = std::make_shared<Dropout2dBackward>();
        n->channel_mask = std::move(m);
        n->shape = s;
        n->plane = plane;
        autograd::attach(out, n, {x});
    }
    return out;
}

}  // namespace nanotorch
