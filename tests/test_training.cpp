// End to end: the seed's Net trained on a slice of real MNIST (skipped, visibly, when
// data/mnist is absent), plus bit-for-bit determinism across runs and thread counts.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <nanotorch/nanotorch.hpp>

#include "../examples/mnist_net.hpp"

using namespace nanotorch;

namespace {

std::string mnist_dir() {
    namespace fs = std::filesystem;
    if (const char* root = std::getenv("NANOTORCH_SOURCE_DIR")) {
        const fs::path p = fs::path(root) / "data" / "mnist";
        if (fs::exists(p / "t10k-labels-idx1-ubyte")) return p.string();
    }
    const fs::path here = fs::path(__FILE__).parent_path().parent_path() / "data" / "mnist";
    if (fs::exists(here / "t10k-labels-idx1-ubyte")) return here.string();
    return {};
}

data::Dataset head(const data::Dataset& d, std::int64_t n) {
    data::Dataset out;
    out.images = d.images.narrow(0, 0, n).contiguous();
    out.labels.assign(d.labels.begin(), d.labels.begin() + n);
    return out;
}

/// Trains Net for one pass over `train` with the seed's recipe; returns the parameters.
std::vector<float> train_once(const data::Dataset& train, std::uint64_t seed, std::vector<double>* losses = nullptr) {
    manual_seed(seed);
    Generator shuffle(seed);
    mnist::Net model;
    optim::SGD opt(model.parameters(), optim::SGDOptions(0.01).momentum(0.5));
    data::DataLoader loader(train, data::DataLoaderOptions(64).shuffle(true), shuffle);
    model.train();
    for (auto batch : loader) {
        opt.zero_grad();
        Tensor loss = F::nll_loss(model(batch.data), batch.target);
        loss.backward();
        opt.step();
        if (losses) losses->push_back(loss.item());
    }
    std::vector<float> params;
    for (auto& p : model.parameters())
        for (float v : p.to_vector()) params.push_back(v);
    return params;
}

double accuracy(mnist::Net& model, const data::Dataset& test) {
    model.eval();
    NoGradGuard ng;
    const auto pred = model(test.images).argmax(1);
    std::int64_t correct = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == test.labels[i];
    return 100.0 * static_cast<double>(correct) / static_cast<double>(pred.size());
}

}  // namespace

TEST_CASE("training is bit-for-bit reproducible for a seed, whatever the thread count") {
    // Synthetic data keeps this case independent of the MNIST download.
    Generator g(3);
    data::Dataset d;
    d.images = randn({256, 1, 28, 28}, g);
    for (int i = 0; i < 256; ++i) d.labels.push_back(i % 10);
    const int saved = get_num_threads();
    set_num_threads(1);
    const auto a = train_once(d, 7);
    set_num_threads(2);
    const auto b = train_once(d, 7);
    set_num_threads(3);
    const auto c = train_once(d, 7);
    set_num_threads(saved);
    const auto other_seed = train_once(d, 8);
    CHECK(a == b);  // exact equality, not a tolerance: the arithmetic order is fixed
    CHECK(a == c);
    CHECK(a != other_seed);
}

// Under AddressSanitizer at -O0 (CI's clang-asan) this case alone takes over two minutes, and it
// runs the same ops on the same shapes as the synthetic case above, which ASan does check; the
// optimised builds (gcc-release, gcc-scalar, clang-tsan, meson) run it.
#if defined(__SANITIZE_ADDRESS__)
#define NANOTORCH_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NANOTORCH_TEST_UNDER_ASAN 1
#endif
#endif
#ifndef NANOTORCH_TEST_UNDER_ASAN
#define NANOTORCH_TEST_UNDER_ASAN 0
#endif

TEST_CASE("a short run on real MNIST learns" * doctest::skip(mnist_dir().empty() || NANOTORCH_TEST_UNDER_ASAN)) {
    // 6,000 training images (one pass, 94 steps) and 1,000 test images: small enough for the
    // sanitizer build. Measured: 84.4 % with seed 1; the 80 % bar sits far above chance (10 %) and
    // the ~62 % that the seed's slower lr 0.01 reaches in so few steps, so it detects a broken
    // pipeline without being sensitive to the seed.
    const std::string dir = mnist_dir();
    const data::Normalize normalize(data::mnist_mean, data::mnist_std);
    data::Dataset train = head(data::load_mnist(dir, data::Split::Train), 6000);
    data::Dataset test = head(data::load_mnist(dir, data::Split::Test), 1000);
    train.images = normalize(train.images);
    test.images = normalize(test.images);

    manual_seed(1);
    Generator shuffle(1);
    mnist::Net model;
    // The seed's recipe with a 5x learning rate: one short pass then gets past the slow start.
    optim::SGD opt(model.parameters(), optim::SGDOptions(0.05).momentum(0.5));
    data::DataLoader loader(train, data::DataLoaderOptions(64).shuffle(true), shuffle);
    double first = 0, last = 0;
    int steps = 0;
    for (auto batch : loader) {
        opt.zero_grad();
        Tensor loss = F::nll_loss(model(batch.data), batch.target);
        loss.backward();
        opt.step();
        if (steps < 10) first += loss.item() / 10.0;
        if (steps >= static_cast<int>(loader.size()) - 10) last += loss.item() / 10.0;
        ++steps;
    }
    MESSAGE("mean loss of the first 10 steps ", first, ", of the last 10 ", last);
    CHECK(first > 2.0);        // ~ln 10 = 2.30 at initialisation
    CHECK(last < 0.6 * first); // the loss falls substantially
    const double acc = accuracy(model, test);
    MESSAGE("accuracy on 1000 test images: ", acc, " %");
    CHECK(acc > 80.0);
}

TEST_CASE("no MNIST: the real-data case is skipped, visibly" * doctest::skip(!mnist_dir().empty())) {
    MESSAGE("data/mnist is absent: run scripts/fetch_mnist.sh to enable the real-MNIST training test");
    CHECK(mnist_dir().empty());
}
