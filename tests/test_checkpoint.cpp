// Tests for training checkpoints (nn/checkpoint.hpp) and the state they gather: Generator
// state (with the cached Box–Muller spare), DataLoader::resume mid-pass, optimizer
// state()/load_state() (SGD, Adam, AdamW with amsgrad), and the checkpoint file: an exact round
// trip of every field, training that continues from a saved file bit for bit like an
// uninterrupted run, and refusals (another model, another optimizer, a missing scheduler or
// generator, a truncated file at every length, every single-bit flip) that leave the model,
// optimizer and scheduler untouched. Everything here is exact: no tolerances.

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nanotorch/nn/checkpoint.hpp>

#include <nanotorch/nanotorch.hpp>

#include "support/expect.hpp"
#include "support/temp_dir.hpp"

namespace nt = nanotorch;
namespace nn = nanotorch::nn;
namespace optim = nanotorch::optim;
using nt::Tensor;
using Bytes = std::vector<unsigned char>;

namespace {

std::vector<std::uint32_t> bits(const Tensor& t) {
    std::vector<std::uint32_t> out;
    for (const float v : t.to_vector()) out.push_back(nt::util::float_bits(v));
    return out;
}

// Every parameter and buffer, bit for bit.
std::vector<std::uint32_t> model_bits(const nn::Module& m) {
    std::vector<std::uint32_t> out;
    for (const auto& [name, t] : nn::state_dict(m))
        for (const auto b : bits(t)) out.push_back(b);
    return out;
}

bool same_state(const optim::OptimizerState& a, const optim::OptimizerState& b) {
    if (a.type != b.type || a.steps != b.steps || a.options.size() != b.options.size() ||
        a.tensors.size() != b.tensors.size())
        return false;
    for (std::size_t i = 0; i < a.options.size(); ++i)
        if (a.options[i].first != b.options[i].first ||
            nt::util::double_bits(a.options[i].second) != nt::util::double_bits(b.options[i].second))
            return false;
    for (std::size_t i = 0; i < a.tensors.size(); ++i)
        if (a.tensors[i].first != b.tensors[i].first || bits(a.tensors[i].second) != bits(b.tensors[i].second))
            return false;
    return true;
}

// A small net with dropout, so the default generator's state matters to training.
struct Net : nn::Module {
    nn::Linear fc1{nullptr}, fc2{nullptr};
    nn::Dropout drop{nullptr};
    explicit Net(std::int64_t hidden = 8) {
        fc1 = register_module("fc1", nn::Linear(4, hidden));
        drop = register_module("drop", nn::Dropout(0.5));
        fc2 = register_module("fc2", nn::Linear(hidden, 3));
    }
    Tensor forward(const Tensor& x) override { return fc2(drop(nt::F::relu(fc1(x)))); }
};

// 24 samples of 4 features, labels 0..2: a data set the loader can shuffle.
nt::data::Dataset make_dataset() {
    nt::Generator g(123);
    nt::data::Dataset ds;
    std::vector<float> v(24 * 4);
    for (auto& x : v) x = g.normal();
    ds.images = nt::tensor(v, {24, 4});
    for (int i = 0; i < 24; ++i) ds.labels.push_back(i % 3);
    return ds;
}

// One training step on a batch: cross-entropy through log_softmax + nll_loss.
void train_step(Net& net, optim::Optimizer& opt, const nt::data::Batch& batch) {
    opt.zero_grad();
    const Tensor loss = nt::F::nll_loss(nt::F::log_softmax(net.forward(batch.data), 1), batch.target);
    loss.backward();
    opt.step();
}

enum class Kind { SGD, Adam, AdamW };

std::unique_ptr<optim::Optimizer> make_optimizer(Kind kind, Net& net) {
    switch (kind) {
        case Kind::SGD:
            return std::make_unique<optim::SGD>(net.parameters(),
                                                optim::SGDOptions(0.05).momentum(0.9).weight_decay(1e-3).nesterov(true));
        case Kind::Adam:
            return std::make_unique<optim::Adam>(net.parameters(), optim::AdamOptions(0.01).weight_decay(1e-3));
        case Kind::AdamW:
            return std::make_unique<optim::AdamW>(net.parameters(), optim::AdamWOptions(0.01).amsgrad(true));
    }
    return nullptr;
}

// A training run: model, optimizer, per-batch OneCycleLR, shuffling loader. `steps` optimizer
// steps over 6-sample batches (4 per epoch).
struct Run {
    Net net;
    std::unique_ptr<optim::Optimizer> opt;
    std::unique_ptr<optim::OneCycleLR> sched;
    nt::Generator shuffle{99};
    nt::data::DataLoader loader;
    std::int64_t epoch = 0, batch = 0, step = 0;

    Run(Kind kind, std::uint64_t init_seed)
        : net((nt::manual_seed(init_seed), 8)),
          opt(make_optimizer(kind, net)),
          sched(std::make_unique<optim::OneCycleLR>(*opt, optim::OneCycleLROptions(0.05).total_steps(40))),
          loader(make_dataset(), nt::data::DataLoaderOptions(6).shuffle(true), shuffle) {}

    // Trains `n` steps, continuing the current pass (begin() replays a resumed one).
    void train(std::int64_t n) {
        while (n > 0) {
            auto it = loader.begin();
            for (; it != loader.end() && n > 0; ++it, --n) {
                train_step(net, *opt, *it);
                sched->step();
                ++step;
                ++batch;
            }
            if (it == loader.end()) {
                ++epoch;
                batch = 0;
            } else {
                loader.resume(loader.pass_state(), batch);  // the next begin() continues this pass
            }
        }
    }

    nn::Checkpoint checkpoint() const {
        // Mid-pass: the loader's pass_state replays the pass; at a pass boundary the generator
        // as it is now starts the next one.
        const nt::GeneratorState shuffle_state = batch == 0 ? shuffle.state() : loader.pass_state();
        return nn::make_checkpoint(net, *opt, sched.get(), {epoch, batch, step},
                                   {{"shuffle", shuffle_state}, {"dropout", nt::default_generator().state()}},
                                   {{"answer", 42.5}});
    }

    void restore(const nn::Checkpoint& ck) {
        loader.resume(ck.generator("shuffle"), ck.position.batch);
        nt::default_generator().set_state(ck.generator("dropout"));
        epoch = ck.position.epoch;
        batch = ck.position.batch;
        step = ck.position.step;
    }
};

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& b) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    REQUIRE(out.good());
}

}  // namespace

TEST_CASE("Generator::state/set_state repeats the stream exactly, including a cached normal") {
    nt::Generator g(7);
    (void)g.normal();  // leaves the second value of the pair cached
    const nt::GeneratorState st = g.state();
    CHECK(st.has_spare_normal);
    std::vector<float> a;
    for (int i = 0; i < 9; ++i) a.push_back(i % 3 == 0 ? g.normal() : g.uniform());
    nt::Generator h(1);
    h.set_state(st);
    CHECK(h.state() == st);
    std::vector<float> b;
    for (int i = 0; i < 9; ++i) b.push_back(i % 3 == 0 ? h.normal() : h.uniform());
    CHECK(a == b);
    // Without the spare, the first normal() would come from a fresh pair: the state must carry it.
    nt::GeneratorState no_spare = st;
    no_spare.has_spare_normal = false;
    h.set_state(no_spare);
    CHECK(h.normal() != a[0]);

    nt::GeneratorState zero;
    CHECK_THROWS_AS(h.set_state(zero), nt::value_error);
}

TEST_CASE("DataLoader::resume replays a pass from its pass_state and batch index") {
    const nt::data::Dataset ds = make_dataset();
    auto targets = [](nt::data::DataLoader& l, std::vector<std::vector<std::int64_t>>& out) {
        for (auto b : l) out.push_back(b.target);
    };
    // Uninterrupted: three passes.
    nt::Generator g1(5);
    nt::data::DataLoader l1(ds, nt::data::DataLoaderOptions(5).shuffle(true), g1);
    std::vector<std::vector<std::int64_t>> want;
    std::vector<Tensor> want_data;
    for (int pass = 0; pass < 3; ++pass)
        for (auto b : l1) {
            want.push_back(b.target);
            want_data.push_back(b.data);
        }
    REQUIRE(want.size() == 15);

    // Interrupted in pass 2 after 2 batches; a new generator and loader resume there.
    nt::Generator g2(5);
    nt::data::DataLoader l2(ds, nt::data::DataLoaderOptions(5).shuffle(true), g2);
    std::vector<std::vector<std::int64_t>> got;
    targets(l2, got);
    auto it = l2.begin();
    got.push_back((*it).target);
    ++it;
    got.push_back((*it).target);
    const nt::GeneratorState saved = l2.pass_state();

    nt::Generator g3(12345);  // any seed: resume() sets the state
    nt::data::DataLoader l3(ds, nt::data::DataLoaderOptions(5).shuffle(true), g3);
    l3.resume(saved, 2);
    std::vector<Tensor> got_data;
    for (auto b : l3) {
        got.push_back(b.target);
        got_data.push_back(b.data);
    }
    targets(l3, got);  // the next pass too: the generator ended where pass 2's shuffle left it
    REQUIRE(got == want);
    CHECK(bits(got_data[0]) == bits(want_data[7]));  // the images, not only the labels

    CHECK_THROWS_AS(l3.resume(saved, 6), nt::value_error);  // 5 batches per pass
    CHECK_THROWS_AS(l3.resume(saved, -1), nt::value_error);
}

TEST_CASE("optimizer state round trip: a restored optimizer continues bit for bit") {
    for (const Kind kind : {Kind::SGD, Kind::Adam, Kind::AdamW}) {
        CAPTURE(static_cast<int>(kind));
        Run a(kind, 3);
        a.train(5);
        const optim::OptimizerState st = a.opt->state();
        CHECK(same_state(st, a.opt->state()));  // state() copies: a second call is equal
        if (kind == Kind::SGD) {
            CHECK(st.steps.empty());
            CHECK(st.tensors.size() == a.net.parameters().size());
        } else {
            CHECK(st.steps == std::vector<std::int64_t>(a.net.parameters().size(), 5));
            CHECK(st.tensors.size() == a.net.parameters().size() * (kind == Kind::AdamW ? 3 : 2));
        }
        // A second optimizer over a copy of the weights, given the state, takes the same steps.
        Run b(kind, 3);
        b.opt->load_state(st);
        CHECK(same_state(b.opt->state(), st));
        nn::load_state_dict(b.net, nn::state_dict(a.net));
        nt::manual_seed(11);
        const auto batch = *a.loader.begin();
        train_step(a.net, *a.opt, batch);
        nt::manual_seed(11);
        train_step(b.net, *b.opt, batch);
        CHECK(model_bits(a.net) == model_bits(b.net));
        CHECK(same_state(a.opt->state(), b.opt->state()));
    }
}

TEST_CASE("optimizer load_state refuses a state of another optimizer and leaves it untouched") {
    Run sgd(Kind::SGD, 3), adam(Kind::Adam, 3);
    sgd.train(2);
    adam.train(2);
    const optim::OptimizerState before = adam.opt->state();
    auto refused = [&](const optim::OptimizerState& st, const std::string& words) {
        std::string msg;
        try {
            adam.opt->load_state(st);
        } catch (const nt::error& e) {
            msg = e.what();
        }
        CHECK_MESSAGE(msg.find(words) != std::string::npos, msg);
        CHECK(same_state(adam.opt->state(), before));
    };
    refused(sgd.opt->state(), "the state is of a SGD optimizer, not Adam");
    optim::OptimizerState st = before;
    st.options[4].second = 0.5;  // weight_decay is not restored: it must match
    refused(st, "option 'weight_decay' is 0.5 in the state but 0.001");
    st = before;
    st.options[0].second = -1.0;  // lr is restored, and must be valid
    refused(st, "invalid learning rate");
    st = before;
    st.options[1].second = 1.5;  // beta1 likewise
    refused(st, "invalid beta1");
    st = before;
    st.tensors[0].second = nt::zeros({2, 2});
    refused(st, "has shape [2, 2] but parameter 0");
    st = before;
    st.tensors[0].first = "exp_avg.17";
    refused(st, "does not name one of the 4 parameters");
    st = before;
    st.tensors[1].first = st.tensors[0].first;
    refused(st, "appears twice");
    st = before;
    st.tensors[0].first = "momentum.0";
    refused(st, "unknown buffer 'momentum.0'");
    st = before;
    st.steps[2] = 0;
    refused(st, "do not match its step count");
    st = before;
    st.steps.pop_back();
    refused(st, "3 step counts for 4 parameters");
}

TEST_CASE("checkpoint encode/decode round trip keeps every field exactly") {
    Run a(Kind::AdamW, 3);
    a.train(7);
    (void)nt::default_generator().normal();  // a cached spare normal must survive too
    const nn::Checkpoint ck = a.checkpoint();
    const Bytes bytes = nn::encode_checkpoint(ck);
    const nn::Checkpoint back = nn::decode_checkpoint(bytes.data(), bytes.size(), "mem");
    CHECK(back.position.epoch == 1);
    CHECK(back.position.batch == 3);
    CHECK(back.position.step == 7);
    REQUIRE(back.model.size() == ck.model.size());
    for (std::size_t i = 0; i < ck.model.size(); ++i) {
        CHECK(back.model[i].first == ck.model[i].first);
        CHECK(bits(back.model[i].second) == bits(ck.model[i].second));
    }
    CHECK(same_state(back.optimizer, ck.optimizer));
    CHECK(back.has_scheduler);
    CHECK(back.scheduler.last_epoch == ck.scheduler.last_epoch);
    CHECK(nt::util::double_bits(back.scheduler.base_lr) == nt::util::double_bits(ck.scheduler.base_lr));
    CHECK(nt::util::double_bits(back.scheduler.last_lr) == nt::util::double_bits(ck.scheduler.last_lr));
    CHECK(back.generator("dropout") == ck.generator("dropout"));
    CHECK(back.generator("dropout").has_spare_normal);
    CHECK(back.generator("shuffle") == ck.generator("shuffle"));
    CHECK(back.value("answer") == 42.5);
    CHECK_THROWS_AS(back.value("nope"), nt::value_error);
    CHECK_THROWS_AS(back.generator("nope"), nt::value_error);
    CHECK(nn::encode_checkpoint(back) == bytes);  // canonical: re-encodes to the same bytes
}

TEST_CASE("training resumed from a checkpoint file ends bit-identical to an uninterrupted run") {
    nt::testing::TempDir dir("nanotorch_checkpoint");
    const std::string path = (dir.path() / "run.ntck").string();
    for (const Kind kind : {Kind::SGD, Kind::Adam, Kind::AdamW}) {
        for (const std::int64_t split : {3, 4, 10}) {  // mid-pass, at a pass boundary, a later pass
            CAPTURE(static_cast<int>(kind));
            CAPTURE(split);
            nt::manual_seed(21);  // dropout's generator, for both runs from here
            Run full(kind, 3);
            nt::manual_seed(21);
            full.train(14);

            nt::manual_seed(21);
            Run first(kind, 3);
            nt::manual_seed(21);
            first.train(split);
            nn::save_checkpoint(path, first.checkpoint());
            (void)nt::default_generator().next_u64();  // whatever happens after the save is lost

            Run second(kind, 77);  // another initialisation: everything comes from the file
            const nn::Checkpoint ck = nn::load_checkpoint(path, second.net, *second.opt, second.sched.get(),
                                                          {"shuffle", "dropout"});
            second.restore(ck);
            second.train(14 - split);
            CHECK(model_bits(second.net) == model_bits(full.net));
            CHECK(same_state(second.opt->state(), full.opt->state()));
            CHECK(second.sched->last_epoch() == full.sched->last_epoch());
            CHECK(nt::util::double_bits(second.opt->lr()) == nt::util::double_bits(full.opt->lr()));
            CHECK(second.shuffle.state() == full.shuffle.state());
        }
    }
}

TEST_CASE("a refused checkpoint leaves model, optimizer and scheduler untouched") {
    nt::testing::TempDir dir("nanotorch_checkpoint");
    const std::string path = (dir.path() / "run.ntck").string();
    Run a(Kind::Adam, 3);
    a.train(5);
    nn::save_checkpoint(path, a.checkpoint());
    const Bytes good = read_bytes(path);

    Run target(Kind::Adam, 8);
    target.train(2);
    const auto model_before = model_bits(target.net);
    const auto opt_before = target.opt->state();
    const int sched_before = target.sched->last_epoch();
    auto untouched = [&] {
        CHECK(model_bits(target.net) == model_before);
        CHECK(same_state(target.opt->state(), opt_before));
        CHECK(target.sched->last_epoch() == sched_before);
    };
    auto load_into_target = [&](const std::string& p) {
        (void)nn::load_checkpoint(p, target.net, *target.opt, target.sched.get(), {"shuffle", "dropout"});
    };

    SUBCASE("a checkpoint of another model: shapes") {
        Net other(9);
        optim::Adam opt(other.parameters(), optim::AdamOptions(0.01).weight_decay(1e-3));
        optim::OneCycleLR sched(opt, optim::OneCycleLROptions(0.05).total_steps(40));
        nn::save_checkpoint(path, nn::make_checkpoint(other, opt, &sched, {}, a.checkpoint().generators));
        const auto e = nt::testing::expect_thrown([&] { load_into_target(path); }, nt::shape_error("x"));
        CHECK(std::string(e.what()).find("'fc1.weight' has shape [9, 4] in the file but [8, 4] in the module") !=
              std::string::npos);
        untouched();
    }
    SUBCASE("a checkpoint of another model: names") {
        nn::Checkpoint ck = a.checkpoint();
        ck.model[0].first = "conv1.weight";
        nn::save_checkpoint(path, ck);
        const std::string msg = nt::testing::value_error_message([&] { load_into_target(path); });
        CHECK(msg.find("missing: fc1.weight; unexpected: conv1.weight") != std::string::npos);
        untouched();
    }
    SUBCASE("another optimizer") {
        Run sgd(Kind::SGD, 3);
        nn::save_checkpoint(path, sgd.checkpoint());
        const std::string msg = nt::testing::value_error_message([&] { load_into_target(path); });
        CHECK(msg.find("the state is of a SGD optimizer, not Adam") != std::string::npos);
        untouched();
    }
    SUBCASE("a scheduler state the scheduler refuses: the optimizer, already restored, is rolled back") {
        nn::Checkpoint ck = a.checkpoint();
        ck.scheduler.last_epoch = 41;  // past OneCycleLR's 40 steps
        nn::save_checkpoint(path, ck);
        const std::string msg = nt::testing::value_error_message([&] { load_into_target(path); });
        CHECK(msg.find("past total_steps 40") != std::string::npos);
        untouched();
    }
    SUBCASE("no scheduler given, or other generators expected") {
        CHECK(nt::testing::value_error_message([&] {
                  (void)nn::load_checkpoint(path, target.net, *target.opt, nullptr, {"shuffle", "dropout"});
              }).find("no scheduler was given") != std::string::npos);
        CHECK(nt::testing::value_error_message([&] {
                  (void)nn::load_checkpoint(path, target.net, *target.opt, target.sched.get(), {"shuffle", "augment"});
              }).find("the checkpoint has the generators [dropout, shuffle], expected [augment, shuffle]") !=
              std::string::npos);
        untouched();
    }
    SUBCASE("a file truncated at every length") {
        for (std::size_t n = 0; n < good.size(); ++n) {
            CAPTURE(n);
            CHECK_THROWS_AS((void)nn::decode_checkpoint(good.data(), n), nt::parse_error);
        }
        write_bytes(path, Bytes(good.begin(), good.begin() + std::ptrdiff_t(good.size() / 2)));
        const auto e = nt::testing::catch_parse_error([&] { load_into_target(path); });
        CHECK_MESSAGE(e.message().find("truncated") != std::string::npos, std::string(e.what()));
        CHECK(e.path() == path);
        untouched();
    }
    SUBCASE("every single-bit flip") {
        // CRC-32 detects every single-bit error, so each flip must be refused: by a field check,
        // the embedded state_dict's checksum or the file's.
        Bytes b = good;
        std::size_t refused = 0;
        for (std::size_t i = 0; i < b.size(); ++i)
            for (int bit = 0; bit < 8; ++bit) {
                b[i] ^= static_cast<unsigned char>(1u << bit);
                try {
                    (void)nn::decode_checkpoint(b.data(), b.size());
                } catch (const nt::parse_error& e) {
                    ++refused;
                    if (e.offset() > b.size()) FAIL("offset beyond the file: " << e.what());
                }
                b[i] ^= static_cast<unsigned char>(1u << bit);
            }
        CHECK(refused == b.size() * 8);
        b[b.size() - 9] ^= 0x10;  // the last weight (then come two checksums)
        write_bytes(path, b);
        const auto e = nt::testing::catch_parse_error([&] { load_into_target(path); });
        CHECK_MESSAGE(e.message().find("checksum mismatch") != std::string::npos, std::string(e.what()));
        untouched();
    }
    SUBCASE("not a checkpoint, a missing file, a directory, a file over the limit") {
        write_bytes(path, Bytes{'N', 'T', 'S', 'D', 1, 0, 0, 0});
        CHECK(nt::testing::catch_parse_error([&] { load_into_target(path); }).message().find("not a nanotorch checkpoint") !=
              std::string::npos);
        CHECK_THROWS_AS(load_into_target((dir.path() / "missing").string()), nt::io_error);
        CHECK_THROWS_AS(load_into_target(dir.path().string()), nt::io_error);
        write_bytes(path, good);
        nn::StateDictLimits small;
        small.max_file_bytes = 100;
        CHECK_THROWS_AS((void)nn::load_checkpoint(path, target.net, *target.opt, target.sched.get(),
                                                   {"shuffle", "dropout"}, small),
                        nt::io_error);
        small = {};
        small.max_tensor_elements = 16;  // fc1.weight and its moments have 32
        CHECK(nt::testing::catch_parse_error([&] {
                  (void)nn::load_checkpoint(path, target.net, *target.opt, target.sched.get(), {"shuffle", "dropout"},
                                            small);
              }).message().find("StateDictLimits::max_tensor_elements") != std::string::npos);
        untouched();
    }
}

TEST_CASE("save_checkpoint is atomic: a failure before the rename keeps the previous file") {
    nt::testing::TempDir dir("nanotorch_checkpoint");
    const std::string path = (dir.path() / "run.ntck").string();
    Run a(Kind::SGD, 3);
    a.train(2);
    nn::save_checkpoint(path, a.checkpoint());
    const Bytes first = read_bytes(path);
    a.train(2);
    std::string tmp_seen;
    CHECK_THROWS_AS(nn::save_checkpoint(path, a.checkpoint(),
                                        [&](const std::string& tmp) {
                                            tmp_seen = tmp;
                                            CHECK(std::filesystem::exists(tmp));
                                            throw nt::io_error(tmp, "simulated crash before the rename");
                                        }),
                    nt::io_error);
    CHECK(read_bytes(path) == first);
    CHECK_FALSE(tmp_seen.empty());
    CHECK_FALSE(std::filesystem::exists(tmp_seen));  // the temporary file is removed
}
