// nanotorch/nn/checkpoint.hpp — training checkpoints: everything a training loop needs to
// continue exactly where it stopped, in one validated file written atomically.
//
// A Checkpoint holds the model's state_dict, the optimizer's state (optim::OptimizerState:
// options including the current lr and momentum, momentum buffers / Adam moments, step counts),
// the scheduler's state, the position (epoch, batch within it, global step), named generator
// states (shuffling, dropout, augmentation: whichever the caller names) and named numbers of the
// caller's own (a running loss). Restoring all of it and replaying the DataLoader's pass from
// its saved pass_state() makes the resumed run compute exactly what the uninterrupted one does.
//
// Format (all integers little-endian; version 1):
//   magic "NTCK", version uint32 = 1
//   position    epoch int64, batch int64, step int64 (each >= 0)
//   optimizer   type: len uint32 (1..64) + bytes
//               options: count uint32, each name (len uint32 1..64 + bytes) + float64
//               steps: count uint32, int64 each
//               tensors: len uint64 + a state_dict (nn/serialize.hpp format, its own CRC)
//   scheduler   present uint8 (0 or 1); if 1: last_epoch int64, base_lr float64, last_lr float64
//   generators  count uint32, each name (len uint32 1..256 + bytes), s[4] uint64,
//               spare_normal float64, has_spare_normal uint8 (0 or 1)
//   values      count uint32, each name (len uint32 1..256 + bytes) + float64
//   model       len uint64 + a state_dict (nn/serialize.hpp format)
//   trailer     crc32 uint32 of every byte before it
// Every size is checked against the bytes that remain before anything is allocated, and
// StateDictLimits bounds the file, each count and each tensor (as for state_dicts); errors are
// parse_error with the byte offset. Floats are stored as their bit patterns, so a round trip is
// exact.
//
// load_checkpoint checks everything before it changes anything: a checkpoint of another model
// (names or shapes), another optimizer (type, options, buffer shapes), without the scheduler or
// generators the caller expects, or a corrupt file is refused with an error that says why, and
// the model, optimizer and scheduler are then as they were.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/random.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/nn/serialize.hpp>
#include <nanotorch/optim/lr_scheduler.hpp>
#include <nanotorch/optim/optimizer.hpp>
#include <nanotorch/util/bytes.hpp>
#include <nanotorch/util/crc32.hpp>
#include <nanotorch/util/file.hpp>

namespace nanotorch::nn {

inline constexpr std::uint32_t checkpoint_version = 1;
inline constexpr std::uint32_t checkpoint_max_option_name = 64;
inline constexpr std::uint32_t checkpoint_max_name = 256;

/// Where training stands: `epoch` is the epoch in progress (the caller's numbering), `batch`
/// how many of its batches are done, `step` the optimizer steps taken in all.
struct TrainingPosition {
    std::int64_t epoch = 0;
    std::int64_t batch = 0;
    std::int64_t step = 0;
};

/// Everything in a checkpoint file (see the format above).
struct Checkpoint {
    TrainingPosition position;
    std::vector<std::pair<std::string, Tensor>> model;  ///< state_dict(model)
    optim::OptimizerState optimizer;
    bool has_scheduler = false;
    optim::LRSchedulerState scheduler;
    std::vector<std::pair<std::string, GeneratorState>> generators;
    std::vector<std::pair<std::string, double>> values;  ///< the caller's own numbers

    /// @throws value_error naming the generator when the checkpoint has none of that name.
    const GeneratorState& generator(const std::string& name) const {
        for (const auto& g : generators)
            if (g.first == name) return g.second;
        throw value_error("checkpoint: no generator named '" + name + "'");
    }
    /// @throws value_error naming the value when the checkpoint has none of that name.
    double value(const std::string& name) const {
        for (const auto& v : values)
            if (v.first == name) return v.second;
        throw value_error("checkpoint: no value named '" + name + "'");
    }
};

/// Gathers a checkpoint from live objects (tensors are copied). `scheduler` may be null.
/// @throws unsupported_error for an optimizer without state support (none built in).
inline Checkpoint make_checkpoint(const Module& model, const optim::Optimizer& optimizer,
                                  const optim::LRScheduler* scheduler, const TrainingPosition& position,
                                  std::vector<std::pair<std::string, GeneratorState>> generators,
                                  std::vector<std::pair<std::string, double>> values = {}) {
    Checkpoint ck;
    ck.position = position;
    for (const auto& [name, t] : state_dict(model)) {
        Tensor c = empty(t.shape());
        t.copy_strided_to(c.data_ptr());
        ck.model.emplace_back(name, std::move(c));
    }
    ck.optimizer = optimizer.state();
    if (scheduler) {
        ck.has_scheduler = true;
        ck.scheduler = scheduler->state();
    }
    ck.generators = std::move(generators);
    ck.values = std::move(values);
    return ck;
}

/// Serialises a checkpoint in the format above.
/// @throws value_error for a negative position, an empty or too long name, or a tensor
///   save_state_dict would refuse.
inline std::vector<unsigned char> encode_checkpoint(const Checkpoint& ck) {
    using ::nanotorch::detail::str_cat;
    std::vector<unsigned char> out{'N', 'T', 'C', 'K'};
    auto put32 = [&](std::uint32_t v) {
        unsigned char b[4];
        util::store_le32(b, v);
        out.insert(out.end(), b, b + 4);
    };
    auto put64 = [&](std::uint64_t v) {
        unsigned char b[8];
        util::store_le64(b, v);
        out.insert(out.end(), b, b + 8);
    };
    auto put_name = [&](const std::string& name, std::uint32_t max, const char* what) {
        NANOTORCH_CHECK(!name.empty() && name.size() <= max, value_error, "save_checkpoint: ", what, " name '", name,
                        "' must have 1..", max, " bytes");
        put32(static_cast<std::uint32_t>(name.size()));
        out.insert(out.end(), name.begin(), name.end());
    };
    auto put_blob = [&](const std::vector<unsigned char>& blob) {
        put64(blob.size());
        out.insert(out.end(), blob.begin(), blob.end());
    };
    put32(checkpoint_version);
    const TrainingPosition& p = ck.position;
    NANOTORCH_CHECK(p.epoch >= 0 && p.batch >= 0 && p.step >= 0, value_error,
                    "save_checkpoint: negative position (epoch ", p.epoch, ", batch ", p.batch, ", step ", p.step, ")");
    put64(static_cast<std::uint64_t>(p.epoch));
    put64(static_cast<std::uint64_t>(p.batch));
    put64(static_cast<std::uint64_t>(p.step));
    put_name(ck.optimizer.type, checkpoint_max_option_name, "optimizer type");
    put32(static_cast<std::uint32_t>(ck.optimizer.options.size()));
    for (const auto& [name, v] : ck.optimizer.options) {
        put_name(name, checkpoint_max_option_name, "optimizer option");
        put64(util::double_bits(v));
    }
    put32(static_cast<std::uint32_t>(ck.optimizer.steps.size()));
    for (const std::int64_t s : ck.optimizer.steps) put64(static_cast<std::uint64_t>(s));
    put_blob(encode_state_dict(ck.optimizer.tensors));
    out.push_back(ck.has_scheduler ? 1 : 0);
    if (ck.has_scheduler) {
        put64(static_cast<std::uint64_t>(static_cast<std::int64_t>(ck.scheduler.last_epoch)));
        put64(util::double_bits(ck.scheduler.base_lr));
        put64(util::double_bits(ck.scheduler.last_lr));
    }
    put32(static_cast<std::uint32_t>(ck.generators.size()));
    for (const auto& [name, g] : ck.generators) {
        put_name(name, checkpoint_max_name, "generator");
        for (const std::uint64_t w : g.s) put64(w);
        put64(util::double_bits(g.spare_normal));
        out.push_back(g.has_spare_normal ? 1 : 0);
    }
    put32(static_cast<std::uint32_t>(ck.values.size()));
    for (const auto& [name, v] : ck.values) {
        put_name(name, checkpoint_max_name, "value");
        put64(util::double_bits(v));
    }
    put_blob(encode_state_dict(ck.model));
    put32(util::crc32(out.data(), out.size()));
    return out;
}

/// Parses the format above. `path` only labels errors. The embedded state_dicts are held to
/// `limits` too, and each count (options, steps, generators, values) to limits.max_entries.
/// @throws parse_error (with the byte offset) for malformed bytes or an exceeded limit.
inline Checkpoint decode_checkpoint(const unsigned char* data, std::size_t size, const std::string& path = {},
                                    const StateDictLimits& limits = {}) {
    using ::nanotorch::detail::str_cat;
    if (size > limits.max_file_bytes)
        throw parse_error(0, str_cat("input of ", size, " bytes exceeds the limit of ", limits.max_file_bytes,
                                     " bytes (StateDictLimits::max_file_bytes)"), path);
    std::size_t pos = 0;
    auto need = [&](std::uint64_t n, const char* what) {
        if (n > size - pos) throw parse_error(pos, str_cat("truncated: ", what, " needs ", n, " bytes, ", size - pos, " left"), path);
    };
    auto get8 = [&](const char* what) {
        need(1, what);
        return data[pos++];
    };
    auto get32 = [&](const char* what) {
        need(4, what);
        const std::uint32_t v = util::load_le32(data + pos);
        pos += 4;
        return v;
    };
    auto get64 = [&](const char* what) {
        need(8, what);
        const std::uint64_t v = util::load_le64(data + pos);
        pos += 8;
        return v;
    };
    auto get_flag = [&](const char* what) {
        const std::size_t at = pos;
        const unsigned char v = get8(what);
        if (v > 1) throw parse_error(at, str_cat(what, " is ", int(v), ", not 0 or 1"), path);
        return v == 1;
    };
    auto get_nonneg = [&](const char* what) {
        const std::size_t at = pos;
        const std::uint64_t v = get64(what);
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            throw parse_error(at, str_cat(what, " is negative"), path);
        return static_cast<std::int64_t>(v);
    };
    // A count whose entries need at least `min_bytes` each must fit in what is left.
    auto get_count = [&](const char* what, std::uint64_t min_bytes) {
        const std::size_t at = pos;
        const std::uint32_t n = get32(what);
        if (n > (size - pos) / min_bytes)
            throw parse_error(at, str_cat(what, " ", n, " cannot fit in the file"), path);
        if (n > limits.max_entries)
            throw parse_error(at, str_cat(what, " ", n, " exceeds the limit of ", limits.max_entries,
                                          " (StateDictLimits::max_entries)"), path);
        return n;
    };
    auto get_name = [&](std::uint32_t max, const char* what) {
        const std::size_t at = pos;
        const std::uint32_t n = get32(what);
        if (n == 0 || n > max) throw parse_error(at, str_cat(what, " length ", n, " is not in 1..", max), path);
        need(n, what);
        std::string s(reinterpret_cast<const char*>(data + pos), n);
        pos += n;
        return s;
    };
    auto get_blob = [&](const char* what) {
        const std::size_t at = pos;
        const std::uint64_t n = get64(what);
        if (n > size - pos)
            throw parse_error(at, str_cat("truncated: ", what, " need ", n, " bytes, ", size - pos, " left"), path);
        const std::size_t start = pos;
        pos += static_cast<std::size_t>(n);
        try {
            return decode_state_dict(data + start, static_cast<std::size_t>(n), {}, limits);
        } catch (const parse_error& e) {  // re-anchor the offset in the checkpoint file
            throw parse_error(start + e.offset(), str_cat(what, ": ", e.message()), path);
        }
    };

    need(4, "magic");
    if (std::string(reinterpret_cast<const char*>(data), 4) != "NTCK")
        throw parse_error(0, "not a nanotorch checkpoint (magic is not \"NTCK\")", path);
    pos = 4;
    const std::uint32_t version = get32("version");
    if (version != checkpoint_version)
        throw parse_error(4, str_cat("unsupported checkpoint version ", version, " (this build reads ",
                                     checkpoint_version, ")"), path);
    Checkpoint ck;
    ck.position.epoch = get_nonneg("epoch");
    ck.position.batch = get_nonneg("batch");
    ck.position.step = get_nonneg("step");
    ck.optimizer.type = get_name(checkpoint_max_option_name, "optimizer type");
    const std::uint32_t n_options = get_count("optimizer option count", 4 + 1 + 8);
    for (std::uint32_t i = 0; i < n_options; ++i) {
        std::string name = get_name(checkpoint_max_option_name, "optimizer option name");
        ck.optimizer.options.emplace_back(std::move(name), util::bits_double(get64("optimizer option")));
    }
    const std::uint32_t n_steps = get_count("optimizer step count", 8);
    for (std::uint32_t i = 0; i < n_steps; ++i) ck.optimizer.steps.push_back(get_nonneg("optimizer step"));
    ck.optimizer.tensors = get_blob("optimizer tensors");
    ck.has_scheduler = get_flag("scheduler flag");
    if (ck.has_scheduler) {
        const std::size_t at = pos;
        const std::int64_t last_epoch = get_nonneg("scheduler last_epoch");
        if (last_epoch > std::numeric_limits<int>::max())
            throw parse_error(at, str_cat("scheduler last_epoch ", last_epoch, " is out of range"), path);
        ck.scheduler.last_epoch = static_cast<int>(last_epoch);
        ck.scheduler.base_lr = util::bits_double(get64("scheduler base_lr"));
        ck.scheduler.last_lr = util::bits_double(get64("scheduler last_lr"));
    }
    const std::uint32_t n_gens = get_count("generator count", 4 + 1 + 8 * 5 + 1);
    for (std::uint32_t i = 0; i < n_gens; ++i) {
        const std::size_t at = pos;
        std::string name = get_name(checkpoint_max_name, "generator name");
        for (const auto& g : ck.generators)
            if (g.first == name) throw parse_error(at, "duplicate generator '" + name + "'", path);
        GeneratorState g;
        for (auto& w : g.s) w = get64("generator state");
        if ((g.s[0] | g.s[1] | g.s[2] | g.s[3]) == 0)
            throw parse_error(at, "generator '" + name + "' has the all-zero state, which no generator has", path);
        g.spare_normal = util::bits_double(get64("generator spare normal"));
        g.has_spare_normal = get_flag("generator spare flag");
        ck.generators.emplace_back(std::move(name), g);
    }
    const std::uint32_t n_values = get_count("value count", 4 + 1 + 8);
    for (std::uint32_t i = 0; i < n_values; ++i) {
        const std::size_t at = pos;
        std::string name = get_name(checkpoint_max_name, "value name");
        for (const auto& v : ck.values)
            if (v.first == name) throw parse_error(at, "duplicate value '" + name + "'", path);
        ck.values.emplace_back(std::move(name), util::bits_double(get64("value")));
    }
    ck.model = get_blob("model state_dict");
    const std::size_t crc_at = pos;
    const std::uint32_t stored = get32("checksum");
    if (pos != size) throw parse_error(pos, str_cat(size - pos, " unexpected bytes after the checksum"), path);
    if (stored != util::crc32(data, crc_at)) throw parse_error(crc_at, "checksum mismatch: the file is corrupt", path);
    return ck;
}

/// Writes a checkpoint to `path` atomically (util::write_file_atomic: a crash or kill leaves the
/// previous file intact). `before_rename` is passed to write_file_atomic (tests).
/// @throws value_error as encode_checkpoint; io_error when the file cannot be written.
inline void save_checkpoint(const std::string& path, const Checkpoint& ck,
                            const std::function<void(const std::string&)>& before_rename = nullptr) {
    const std::vector<unsigned char> bytes = encode_checkpoint(ck);
    util::write_file_atomic(path, bytes.data(), bytes.size(), before_rename);
}

/// Reads and validates the file without applying it.
/// @throws io_error (also for a file over limits.max_file_bytes) or parse_error.
inline Checkpoint read_checkpoint(const std::string& path, const StateDictLimits& limits = {}) {
    const std::vector<unsigned char> bytes =
        detail::read_bounded_file(path, limits.max_file_bytes, "checkpoint", "StateDictLimits::max_file_bytes");
    return decode_checkpoint(bytes.data(), bytes.size(), path, limits);
}

/// Restores model, optimizer and scheduler (null when none) from `ck`. `generators` lists the
/// generator names the caller will restore from ck.generator(name): the checkpoint must hold
/// exactly these. `source` labels errors. Everything is checked first; on any error the model,
/// optimizer and scheduler are left as they were.
/// @throws value_error (names of parameters or generators, optimizer type or options, a
///   scheduler present in only one of the two, an invalid scheduler state), shape_error (a
///   parameter or buffer of another shape), as Optimizer::load_state and LRScheduler::load_state.
inline void apply_checkpoint(const Checkpoint& ck, Module& model, optim::Optimizer& optimizer,
                             optim::LRScheduler* scheduler, const std::vector<std::string>& generators,
                             const std::string& source = "checkpoint") {
    check_state_dict(model, ck.model, /*strict=*/true, source);
    std::vector<std::string> have, want = generators;
    for (const auto& g : ck.generators) have.push_back(g.first);
    std::sort(have.begin(), have.end());
    std::sort(want.begin(), want.end());
    if (have != want) {
        auto list = [](const std::vector<std::string>& v) {
            std::string s;
            for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
            return s.empty() ? std::string("none") : s;
        };
        throw value_error(source + ": the checkpoint has the generators [" + list(have) + "], expected [" +
                          list(want) + "]");
    }
    NANOTORCH_CHECK(ck.has_scheduler == (scheduler != nullptr), value_error, source,
                    ck.has_scheduler ? ": the checkpoint has a learning-rate scheduler state but no scheduler was given"
                                     : ": the checkpoint has no learning-rate scheduler state but a scheduler was given");
    // The optimizer and scheduler validate their own states; whichever refuses, what was
    // already applied is rolled back from these copies.
    const optim::OptimizerState old_optimizer = optimizer.state();
    optimizer.load_state(ck.optimizer);  // all or nothing by itself
    if (scheduler) {
        try {
            scheduler->load_state(ck.scheduler);  // all or nothing by itself
        } catch (...) {
            optimizer.load_state(old_optimizer);
            throw;
        }
    }
    load_state_dict(model, ck.model, /*strict=*/true, source);  // checked above: cannot throw
}

/// read_checkpoint + apply_checkpoint; returns the checkpoint for the position, generators and
/// values, which the caller restores (DataLoader::resume, Generator::set_state).
/// @throws as read_checkpoint and apply_checkpoint; on any error nothing is changed.
inline Checkpoint load_checkpoint(const std::string& path, Module& model, optim::Optimizer& optimizer,
                                  optim::LRScheduler* scheduler, const std::vector<std::string>& generators,
                                  const StateDictLimits& limits = {}) {
    Checkpoint ck = read_checkpoint(path, limits);
    apply_checkpoint(ck, model, optimizer, scheduler, generators, path);
    return ck;
}

}  // namespace nanotorch::nn
