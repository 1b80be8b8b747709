// Tests for data/transforms.hpp and the DataLoader's transform option: exact outputs of
// RandomCrop, RandomHorizontalFlip and RandomAffine on small images for chosen parameters
// (computed by hand in the comments), the parameter distributions (chi-square style bounds on
// counts), reproducibility from a seed and independence from the thread count, and the errors
// for bad arguments. Also Fashion-MNIST's test split through load_mnist (.gz), when
// data/fashion-mnist is present (scripts/fetch_fashion_mnist.sh).

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>

#include "support/expect.hpp"

namespace nt = nanotorch;
namespace data = nanotorch::data;
namespace fs = std::filesystem;
using nt::testing::expect_thrown;
using nt::testing::value_error_message;

namespace {

// An image [C, H, W] whose pixel values are 1, 2, 3, ... in memory order (0 is then free to
// mark fill).
nt::Tensor iota_image(std::int64_t c, std::int64_t h, std::int64_t w) {
    std::vector<float> v(static_cast<std::size_t>(c * h * w));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i + 1);
    return nt::tensor(v, {c, h, w});
}

template <class T, class P>
std::vector<float> run(const T& t, const nt::Tensor& img, const P& params) {
    const nt::Shape out_shape = t.output_shape(img.shape());
    std::vector<float> out(static_cast<std::size_t>(out_shape[0] * out_shape[1] * out_shape[2]), -99.0f);
    t.apply(img.data_ptr(), img.shape(), params, out.data());
    return out;
}

std::string shape_error_message(const std::function<void()>& f) {
    return expect_thrown(f, nt::shape_error("unreachable")).what();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

// ---- exact outputs ----

TEST_CASE("RandomCrop: padding with fill, then the window at the given corner") {
    // 3x3 image 1..9 padded by 1 with fill 0:      a 2x2 crop at (top 0, left 0): [0 0; 0 1]
    //   0 0 0 0 0                                  at (3, 3): [9 0; 0 0]
    //   0 1 2 3 0                                  at (1, 2): [2 3; 5 6]
    //   0 4 5 6 0
    //   0 7 8 9 0
    //   0 0 0 0 0
    const data::RandomCrop crop(2, /*padding=*/1);
    const nt::Tensor img = iota_image(1, 3, 3);
    CHECK(crop.output_shape(img.shape()) == nt::Shape{1, 2, 2});
    CHECK(run(crop, img, data::RandomCrop::Params{0, 0}) == std::vector<float>{0, 0, 0, 1});
    CHECK(run(crop, img, data::RandomCrop::Params{3, 3}) == std::vector<float>{9, 0, 0, 0});
    CHECK(run(crop, img, data::RandomCrop::Params{1, 2}) == std::vector<float>{2, 3, 5, 6});
    // Two channels move together; a non-square size and a fill value.
    const data::RandomCrop rect(std::array<std::int64_t, 2>{1, 3}, 1, /*fill=*/-1.0f);
    const nt::Tensor two = iota_image(2, 2, 2);  // channel 0: [1 2; 3 4], channel 1: [5 6; 7 8]
    CHECK(run(rect, two, data::RandomCrop::Params{1, 0}) == std::vector<float>{-1, 1, 2, -1, 5, 6});
    // No padding, crop = image: the identity.
    const data::RandomCrop same(3);
    CHECK(run(same, img, data::RandomCrop::Params{0, 0}) == img.to_vector());
    // A corner outside the valid range is refused.
    CHECK(contains(shape_error_message([&] { run(crop, img, data::RandomCrop::Params{4, 0}); }), "outside"));
}

TEST_CASE("RandomHorizontalFlip mirrors every row of every channel, or copies") {
    const data::RandomHorizontalFlip flip(0.5);
    const nt::Tensor img = iota_image(2, 2, 3);
    CHECK(run(flip, img, data::RandomHorizontalFlip::Params{true}) ==
          std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10});
    CHECK(run(flip, img, data::RandomHorizontalFlip::Params{false}) == img.to_vector());
}

TEST_CASE("RandomAffine: exact rotations by multiples of 90 degrees and whole-pixel shifts") {
    const nt::Tensor img = iota_image(1, 3, 3);  // [1 2 3; 4 5 6; 7 8 9]
    const data::RandomAffine nearest(180.0);
    // +90 (counter-clockwise as displayed): the right column becomes the top row.
    CHECK(run(nearest, img, data::RandomAffine::Params{90, 0, 0}) == std::vector<float>{3, 6, 9, 2, 5, 8, 1, 4, 7});
    CHECK(run(nearest, img, data::RandomAffine::Params{-90, 0, 0}) == std::vector<float>{7, 4, 1, 8, 5, 2, 9, 6, 3});
    CHECK(run(nearest, img, data::RandomAffine::Params{180, 0, 0}) == std::vector<float>{9, 8, 7, 6, 5, 4, 3, 2, 1});
    CHECK(run(nearest, img, data::RandomAffine::Params{0, 0, 0}) == img.to_vector());
    // Shift right by 1 and up by 1 (ty = -1); uncovered pixels take fill 0.
    CHECK(run(nearest, img, data::RandomAffine::Params{0, 1, -1}) == std::vector<float>{0, 4, 5, 0, 7, 8, 0, 0, 0});
    // The same through bilinear: whole-pixel moves sample exactly on pixels (weights 0 and 1).
    const data::RandomAffine bilinear(10.0, {0.0, 0.0}, data::Interpolation::Bilinear);
    CHECK(run(bilinear, img, data::RandomAffine::Params{90, 0, 0}) == std::vector<float>{3, 6, 9, 2, 5, 8, 1, 4, 7});
    CHECK(run(bilinear, img, data::RandomAffine::Params{0, 1, -1}) == std::vector<float>{0, 4, 5, 0, 7, 8, 0, 0, 0});
}

TEST_CASE("RandomAffine: a small rotation, nearest and bilinear, against values worked by hand") {
    // 1x2x2 image [1 2; 3 4], centre (0.5, 0.5), angle 45°: output pixel (x=0, y=0) has
    // d = (-0.5, -0.5) and samples c + R(-45°)d = (0.5 + (-0.5c + 0.5s), 0.5 + (-0.5s - 0.5c))
    // with c = s = √½: (0.5, 0.5 - √½) = (0.5, -0.2071). Nearest: (x 1, y 0) -> 2 (0.5 rounds up).
    // Bilinear: rows -1 (fill 0) and 0, weight wy = 0.7929 on row 0, columns 0 and 1 at 0.5 each:
    // 0.7929 * (1 + 2) / 2 = 1.1893.
    const nt::Tensor img = iota_image(1, 2, 2);
    const data::RandomAffine nearest(45.0);
    CHECK(run(nearest, img, data::RandomAffine::Params{45, 0, 0})[0] == 2.0f);
    const data::RandomAffine bilinear(45.0, {0.0, 0.0}, data::Interpolation::Bilinear);
    const float expected = static_cast<float>((1.0 - (std::sqrt(0.5) - 0.5)) * 1.5);
    // Tolerance: the transform computes the weights in double from sin/cos; 1e-6 covers the
    // final float rounding.
    CHECK(run(bilinear, img, data::RandomAffine::Params{45, 0, 0})[0] == doctest::Approx(expected).epsilon(1e-6));
}

// ---- distributions ----

TEST_CASE("parameter draws cover their ranges uniformly") {
    nt::Generator gen(7);
    const nt::Shape chw{1, 28, 28};
    // RandomCrop(28, padding 2): top and left uniform over 0..4, 5 values each.
    const data::RandomCrop crop(28, 2);
    std::map<std::int64_t, int> tops, lefts;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        const auto p = crop.sample(chw, gen);
        ++tops[p.top];
        ++lefts[p.left];
    }
    REQUIRE(tops.size() == 5);
    REQUIRE(lefts.size() == 5);
    // Each count is Binomial(20000, 0.2): mean 4000, sd 56.6; 5 sd = 283 never fails by chance.
    for (auto& [v, c] : tops) CHECK(std::abs(c - n / 5) < 283);
    for (auto& [v, c] : lefts) CHECK(std::abs(c - n / 5) < 283);

    // RandomHorizontalFlip(0.3): Binomial(20000, 0.3), sd 64.8; 5 sd = 324.
    const data::RandomHorizontalFlip flip(0.3);
    int flips = 0;
    for (int i = 0; i < n; ++i) flips += flip.sample(chw, gen).flip;
    CHECK(std::abs(flips - 6000) < 324);
    CHECK(data::RandomHorizontalFlip(0.0).sample(chw, gen).flip == false);
    CHECK(data::RandomHorizontalFlip(1.0).sample(chw, gen).flip == true);

    // RandomAffine(15, translate 0.1): angles in [-15, 15] with mean ~0 (sd of the mean
    // 8.66/√20000 = 0.061; bound 0.3), whole-pixel shifts within round(±2.8) = ±3 that reach both ends.
    const data::RandomAffine affine(15.0, {0.1, 0.1});
    double angle_sum = 0.0, lo = 1e9, hi = -1e9;
    std::map<double, int> shifts;
    for (int i = 0; i < n; ++i) {
        const auto p = affine.sample(chw, gen);
        angle_sum += p.angle;
        lo = std::min(lo, p.angle);
        hi = std::max(hi, p.angle);
        CHECK(p.tx == std::round(p.tx));
        ++shifts[p.tx];
    }
    CHECK(std::abs(angle_sum / n) < 0.3);
    CHECK(lo >= -15.0);
    CHECK(hi <= 15.0);
    CHECK(lo < -14.9);
    CHECK(hi > 14.9);
    CHECK(shifts.begin()->first == -3.0);
    CHECK(shifts.rbegin()->first == 3.0);
    CHECK(shifts.size() == 7);
}

// ---- determinism ----

TEST_CASE("a seed reproduces the draws; apply(gen) equals apply(sample(gen))") {
    const data::Compose pipeline(data::RandomCrop(5, 2), data::RandomHorizontalFlip(),
                                 data::RandomAffine(20.0, {0.2, 0.2}, data::Interpolation::Bilinear));
    const nt::Tensor img = iota_image(2, 5, 5);
    nt::Generator g1(42), g2(42);
    const nt::Tensor a = pipeline(img, g1), b = pipeline(img, g2);
    CHECK(a.to_vector() == b.to_vector());

    // Compose draws each step's parameters in order from the same generator.
    nt::Generator g3(42), g4(42);
    const data::RandomCrop crop(5, 2);
    const data::RandomHorizontalFlip flip;
    const data::RandomAffine affine(20.0, {0.2, 0.2}, data::Interpolation::Bilinear);
    const auto pc = crop.sample(img.shape(), g3);
    const auto pf = flip.sample(img.shape(), g3);
    const auto pa = affine.sample(img.shape(), g3);
    nt::Tensor step = nt::tensor(run(crop, img, pc), img.shape());
    step = nt::tensor(run(flip, step, pf), img.shape());
    CHECK(run(affine, step, pa) == pipeline(img, g4).to_vector());
}

TEST_CASE("DataLoader with a transform: same batches for a seed and for any thread count") {
    // 50 images 1x6x6 with distinct values, labels = index % 10.
    const std::int64_t n = 50;
    std::vector<float> v(static_cast<std::size_t>(n * 36));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 97) / 97.0f + static_cast<float>(i / 36);
    data::Dataset ds{nt::tensor(v, {n, 1, 6, 6}), {}};
    for (std::int64_t i = 0; i < n; ++i) ds.labels.push_back(i % 10);

    auto epoch = [&](int threads, std::uint64_t seed) {
        nt::set_num_threads(threads);
        nt::Generator gen(seed);
        data::DataLoader loader(ds, data::DataLoaderOptions(16).shuffle(true).transform(data::Compose(
                                        data::RandomCrop(4, 1), data::RandomHorizontalFlip(),
                                        data::RandomAffine(10.0, {0.1, 0.1}, data::Interpolation::Bilinear))),
                                gen);
        std::vector<float> all;
        std::vector<std::int64_t> targets;
        for (int pass = 0; pass < 2; ++pass)
            for (auto batch : loader) {
                CHECK(batch.data.size(1) == 1);
                CHECK(batch.data.size(2) == 4);  // RandomCrop(4) sets the batch's image size
                const auto d = batch.data.to_vector();
                all.insert(all.end(), d.begin(), d.end());
                targets.insert(targets.end(), batch.target.begin(), batch.target.end());
            }
        return std::make_pair(all, targets);
    };
    const int saved_threads = nt::get_num_threads();
    const auto one = epoch(1, 3);
    const auto two = epoch(2, 3);
    const auto other = epoch(1, 4);
    nt::set_num_threads(saved_threads);
    CHECK(one.first.size() == static_cast<std::size_t>(2 * n * 16));
    CHECK(one == two);
    CHECK(one.first != other.first);
    // The two passes differ (new shuffle and new pass seed).
    CHECK(std::vector<float>(one.first.begin(), one.first.begin() + n * 16) !=
          std::vector<float>(one.first.begin() + n * 16, one.first.end()));

    // Dereferencing a batch twice gives the same augmented images (draws depend on the position).
    nt::Generator gen(9);
    data::DataLoader loader(ds, data::DataLoaderOptions(8).transform(data::RandomAffine(30.0)), gen);
    auto it = loader.begin();
    CHECK((*it).data.to_vector() == (*it).data.to_vector());
}

// ---- errors ----

TEST_CASE("bad transform arguments are value_errors naming the argument") {
    CHECK(contains(value_error_message([] { data::RandomCrop(0); }), "size"));
    CHECK(contains(value_error_message([] { data::RandomCrop(28, -1); }), "padding"));
    CHECK(contains(value_error_message([] { data::RandomCrop(28, 0, NAN); }), "fill"));
    CHECK(contains(value_error_message([] { data::RandomHorizontalFlip(1.5); }), "p must be in [0, 1]"));
    CHECK(contains(value_error_message([] { data::RandomHorizontalFlip(-0.1); }), "p must be in [0, 1]"));
    CHECK(contains(value_error_message([] { data::RandomAffine(-1.0); }), "degrees"));
    CHECK(contains(value_error_message([] { data::RandomAffine{static_cast<double>(INFINITY)}; }), "degrees"));
    CHECK(contains(value_error_message([] { data::RandomAffine(10.0, {1.5, 0.0}); }), "translate"));
    CHECK(contains(value_error_message([] { data::Compose().push_back(std::shared_ptr<const data::Transform>()); }),
                   "null"));
}

TEST_CASE("shapes a transform cannot take are shape_errors, also from the DataLoader constructor") {
    nt::Generator gen(1);
    const data::RandomCrop crop(10, 1);
    CHECK(contains(shape_error_message([&] { crop(iota_image(1, 5, 5), gen); }), "smaller than the crop"));
    CHECK(contains(shape_error_message([&] { crop(nt::zeros({5, 5}), gen); }), "[C, H, W]"));
    CHECK(contains(shape_error_message([&] { data::RandomHorizontalFlip()(nt::Tensor(), gen); }), "undefined"));
    data::Dataset ds{nt::zeros({4, 1, 5, 5}), {0, 1, 2, 3}};
    CHECK(contains(shape_error_message([&] { data::DataLoader(ds, data::DataLoaderOptions(2).transform(crop), gen); }),
                   "smaller than the crop"));
    data::Dataset flat{nt::zeros({4, 25}), {0, 1, 2, 3}};
    CHECK(contains(shape_error_message([&] {
                       data::DataLoader(flat, data::DataLoaderOptions(2).transform(data::RandomHorizontalFlip()), gen);
                   }),
                   "[N, C, H, W]"));
}

// ---- Fashion-MNIST ----

namespace {
std::string find_fashion_dir() {
    std::vector<fs::path> candidates;
    if (const char* src = std::getenv("NANOTORCH_SOURCE_DIR")) candidates.push_back(fs::path(src) / "data/fashion-mnist");
    candidates.push_back(fs::path(__FILE__).parent_path().parent_path() / "data/fashion-mnist");
    for (const auto& dir : candidates) {
        std::error_code ec;
        if (fs::exists(dir / "t10k-images-idx3-ubyte.gz", ec)) return dir.string();
    }
    return {};
}
}  // namespace

TEST_CASE("Fashion-MNIST t10k from data/fashion-mnist, gzipped, through load_mnist" *
          doctest::skip(find_fashion_dir().empty()) *
          doctest::description("needs data/fashion-mnist (scripts/fetch_fashion_mnist.sh); skipped when absent")) {
    const data::Dataset ds = data::load_mnist(find_fashion_dir(), data::Split::Test);
    REQUIRE(ds.images.shape() == nt::Shape{10000, 1, 28, 28});
    std::array<int, 10> histogram{};
    for (std::int64_t y : ds.labels) {
        REQUIRE(y >= 0);
        REQUIRE(y < 10);
        ++histogram[static_cast<std::size_t>(y)];
    }
    // Fashion-MNIST's test split has exactly 1,000 images of each class.
    CHECK(histogram == std::array<int, 10>{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000});
    // The published first test label is 9 (ankle boot).
    CHECK(ds.labels[0] == 9);
}

TEST_CASE("Fashion-MNIST absent: say so" * doctest::skip(!find_fashion_dir().empty())) {
    MESSAGE("data/fashion-mnist not found (run scripts/fetch_fashion_mnist.sh): the Fashion-MNIST case is skipped");
    CHECK(find_fashion_dir().empty());
}
