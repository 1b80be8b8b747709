// Tests for data/mnist.hpp and data/dataloader.hpp: to_dataset and load_mnist on tiny synthetic
// IDX files written to a fresh temp directory (raw and gzipped, the gzip built from deflate
// "stored" blocks so no compressor is needed), the errors for missing files and mismatched
// counts, Normalize, and the DataLoader contract (batch counts, last partial batch, every sample
// once per epoch, reproducible shuffles, targets staying with their images). The real MNIST test
// split is checked when data/mnist is present and skipped visibly otherwise.
// Pixel values are compared exactly: the test computes byte/255.0f the same way the loader does.

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <nanotorch/data/dataloader.hpp>
#include <nanotorch/data/mnist.hpp>

#include <nanotorch/nanotorch.hpp>

#include "support/temp_dir.hpp"

namespace nt = nanotorch;
namespace data = nanotorch::data;
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

// ---- helpers ----

using nanotorch::testing::TempDir;

using nanotorch::testing::write_file;

// IDX: two zero bytes, type 0x08 (unsigned byte), the rank, big-endian uint32 dims, the payload.
Bytes make_idx(const std::vector<std::uint32_t>& dims, const Bytes& payload) {
    Bytes b = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t d : dims) {
        b.resize(b.size() + 4);
        nt::util::store_be32(b.data() + b.size() - 4, d);
    }
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

// gzip (RFC 1952) around a deflate stream of "stored" blocks (RFC 1951 BTYPE 00): header byte
// with BFINAL in bit 0, then LEN and ~LEN as little-endian 16-bit values, then LEN raw bytes.
// The trailer is the CRC-32 of the data and its size mod 2^32, both little-endian.
Bytes gzip_stored(const Bytes& raw) {
    Bytes g = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255};  // magic, CM = deflate, no flags, MTIME 0, OS unknown
    auto le16 = [&](unsigned v) {
        g.push_back(static_cast<std::uint8_t>(v & 0xFF));
        g.push_back(static_cast<std::uint8_t>(v >> 8));
    };
    auto le32 = [&](std::uint32_t v) {
        for (int i = 0; i < 4; ++i) g.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    };
    std::size_t pos = 0;
    do {
        const std::size_t len = std::min<std::size_t>(raw.size() - pos, 1000);  // several blocks for bigger inputs
        g.push_back(pos + len == raw.size() ? 1 : 0);
        le16(static_cast<unsigned>(len));
        le16(static_cast<unsigned>(~len & 0xFFFF));
        g.insert(g.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos),
                 raw.begin() + static_cast<std::ptrdiff_t>(pos + len));
        pos += len;
    } while (pos < raw.size());
    le32(nt::util::crc32(raw.data(), raw.size()));
    le32(static_cast<std::uint32_t>(raw.size()));
    return g;
}

// n images of h×w whose pixels are (13·i + 7·k) mod 256 for image i, pixel k, and labels
// (3·i + 1) mod 10: distinct images, all ten classes for n >= 10.
Bytes pixels(std::uint32_t n, std::uint32_t h, std::uint32_t w) {
    Bytes b(static_cast<std::size_t>(n) * h * w);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < static_cast<std::size_t>(h) * w; ++k)
            b[i * h * w + k] = static_cast<std::uint8_t>((13 * i + 7 * k) % 256);
    return b;
}
Bytes labels(std::uint32_t n) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((3 * i + 1) % 10);
    return b;
}

// Writes the four standard MNIST file names into dir (optionally gzipped, with a .gz name).
void write_mnist(const TempDir& dir, std::uint32_t n_train, std::uint32_t n_test, std::uint32_t h, std::uint32_t w,
                 bool gz) {
    auto put = [&](const std::string& stem, const Bytes& raw) {
        write_file(dir.file(gz ? stem + ".gz" : stem), gz ? gzip_stored(raw) : raw);
    };
    put("train-images-idx3-ubyte", make_idx({n_train, h, w}, pixels(n_train, h, w)));
    put("train-labels-idx1-ubyte", make_idx({n_train}, labels(n_train)));
    put("t10k-images-idx3-ubyte", make_idx({n_test, h, w}, pixels(n_test, h, w)));
    put("t10k-labels-idx1-ubyte", make_idx({n_test}, labels(n_test)));
}

// Checks a Dataset against pixels()/labels().
void check_synthetic(const data::Dataset& ds, std::uint32_t n, std::uint32_t h, std::uint32_t w) {
    REQUIRE(ds.images.shape() == nt::Shape{n, 1, h, w});
    REQUIRE(ds.size() == n);
    const Bytes px = pixels(n, h, w);
    const std::vector<float> got = ds.images.to_vector();
    bool all_equal = true;
    for (std::size_t i = 0; i < px.size(); ++i) all_equal = all_equal && got[i] == static_cast<float>(px[i]) / 255.0f;
    CHECK(all_equal);
    const Bytes y = labels(n);
    CHECK(ds.labels == std::vector<std::int64_t>(y.begin(), y.end()));
}

// A data set of n 1×2×2 images where image i holds i in every pixel (unscaled, to identify it)
// and its label is (i·7) mod 10, so a batch's targets can be checked against its images.
data::Dataset numbered(std::int64_t n) {
    data::Dataset ds;
    ds.images = nt::empty({n, 1, 2, 2});
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t k = 0; k < 4; ++k) ds.images.data_ptr()[i * 4 + k] = static_cast<float>(i);
    for (std::int64_t i = 0; i < n; ++i) ds.labels.push_back((i * 7) % 10);
    return ds;
}

// One pass: the image ids in visiting order, checking each batch's shape, pixels and targets.
std::vector<std::int64_t> epoch_order(data::DataLoader& loader, std::vector<std::int64_t>* batch_sizes = nullptr) {
    std::vector<std::int64_t> order;
    for (const data::Batch& batch : loader) {
        const std::int64_t b = batch.data.size(0);
        CHECK(batch.data.shape() == nt::Shape{b, 1, 2, 2});
        REQUIRE(static_cast<std::int64_t>(batch.target.size()) == b);
        for (std::int64_t i = 0; i < b; ++i) {
            const float id = batch.data.at({i, 0, 0, 0});
            CHECK(batch.data.at({i, 0, 1, 1}) == id);  // the whole image moved together
            const auto idx = static_cast<std::int64_t>(id);
            CHECK(batch.target[static_cast<std::size_t>(i)] == (idx * 7) % 10);  // target matches its image
            order.push_back(idx);
        }
        if (batch_sizes) batch_sizes->push_back(b);
    }
    return order;
}

// Looks for data/mnist: $NANOTORCH_SOURCE_DIR/data/mnist, then the repo path derived from this
// file's location, then data/mnist relative to the working directory.
std::string find_mnist_dir() {
    std::vector<fs::path> candidates;
    if (const char* src = std::getenv("NANOTORCH_SOURCE_DIR")) candidates.push_back(fs::path(src) / "data/mnist");
    candidates.push_back(fs::path(__FILE__).parent_path().parent_path() / "data/mnist");
    candidates.push_back(fs::path("data/mnist"));
    for (const auto& dir : candidates) {
        std::error_code ec;
        if (fs::exists(dir / "t10k-images-idx3-ubyte", ec) || fs::exists(dir / "t10k-images-idx3-ubyte.gz", ec))
            return dir.string();
    }
    return {};
}

bool have_mnist() { return !find_mnist_dir().empty(); }

}  // namespace

// ---- to_dataset / load_mnist ----

TEST_CASE("to_dataset scales pixels by 1/255 into [N, 1, H, W] and widens labels to int64") {
    TempDir dir;
    write_file(dir.file("img"), make_idx({5, 4, 3}, pixels(5, 4, 3)));
    write_file(dir.file("lbl"), make_idx({5}, labels(5)));
    const data::Dataset ds = data::to_dataset(data::read_idx_images(dir.file("img")),
                                              data::read_idx_labels(dir.file("lbl")));
    check_synthetic(ds, 5, 4, 3);
    // Spot values: pixel (13·1 + 7·2) mod 256 = 27 of image 1 at (0, 2) is 27/255; 255 maps to exactly 1.
    CHECK(ds.images.at({1, 0, 0, 2}) == 27.0f / 255.0f);
    CHECK(ds.labels[4] == 3);  // (3·4 + 1) mod 10

    data::IdxArray white{{1, 1, 2}, {255, 0}};
    data::IdxArray one{{1}, {9}};
    const data::Dataset w = data::to_dataset(white, one);
    CHECK(w.images.to_vector() == std::vector<float>{1.0f, 0.0f});
    CHECK(w.labels == std::vector<std::int64_t>{9});
}

TEST_CASE("to_dataset rejects wrong ranks, count mismatches and inconsistent arrays with shape_error") {
    const data::IdxArray images{{2, 2, 2}, Bytes(8, 1)};
    const data::IdxArray two{{2}, {1, 2}};
    CHECK_THROWS_WITH_AS(data::to_dataset(images, data::IdxArray{{3}, {1, 2, 3}}, "toy"),
                         doctest::Contains("toy: 2 images but 3 labels"), nt::shape_error);
    CHECK_THROWS_AS(data::to_dataset(data::IdxArray{{8}, Bytes(8, 1)}, two), nt::shape_error);      // rank 1 images
    CHECK_THROWS_AS(data::to_dataset(images, data::IdxArray{{2, 1}, {1, 2}}), nt::shape_error);     // rank 2 labels
    CHECK_THROWS_AS(data::to_dataset(images, data::IdxArray{{}, {}}), nt::shape_error);             // rank 0 labels
    // Hand-built arrays whose bytes disagree with their dims: an error, not a buffer overrun.
    CHECK_THROWS_WITH_AS(data::to_dataset(data::IdxArray{{2, 2, 2}, Bytes(100, 1)}, two),
                         doctest::Contains("inconsistent"), nt::shape_error);
    CHECK_THROWS_AS(data::to_dataset(data::IdxArray{{2, 2, 2}, Bytes(3, 1)}, two), nt::shape_error);
    CHECK_THROWS_AS(data::to_dataset(images, data::IdxArray{{2}, {1, 2, 3, 4}}), nt::shape_error);
    CHECK_THROWS_AS(data::to_dataset(data::IdxArray{{2, -2, -2}, Bytes(8, 1)}, two), nt::shape_error);
}

TEST_CASE("load_mnist reads the standard file names, raw or .gz, for both splits") {
    SUBCASE("raw files") {
        TempDir dir;
        write_mnist(dir, 12, 7, 5, 4, /*gz=*/false);
        check_synthetic(data::load_mnist(dir.str(), data::Split::Train), 12, 5, 4);
        check_synthetic(data::load_mnist(dir.str(), data::Split::Test), 7, 5, 4);
    }
    SUBCASE("only .gz files") {
        TempDir dir;
        write_mnist(dir, 300, 7, 6, 5, /*gz=*/true);  // 9000 pixel bytes: the deflate stream has 10 blocks
        check_synthetic(data::load_mnist(dir.str(), data::Split::Train), 300, 6, 5);
        check_synthetic(data::load_mnist(dir.str(), data::Split::Test), 7, 6, 5);
    }
    SUBCASE("the raw name wins over the .gz name") {
        TempDir dir;
        write_mnist(dir, 4, 3, 2, 2, /*gz=*/false);
        // A .gz of a different size next to the raw files is ignored.
        write_file(dir.file("t10k-images-idx3-ubyte.gz"), gzip_stored(make_idx({9, 2, 2}, pixels(9, 2, 2))));
        check_synthetic(data::load_mnist(dir.str(), data::Split::Test), 3, 2, 2);
    }
}

TEST_CASE("a missing MNIST file is an io_error naming it and pointing at scripts/fetch_mnist.sh") {
    TempDir dir;
    try {
        data::load_mnist(dir.str(), data::Split::Test);
        FAIL("no exception");
    } catch (const nt::io_error& e) {
        const std::string msg = e.what();
        CHECK(e.path() == dir.file("t10k-images-idx3-ubyte"));
        CHECK(msg.find("t10k-images-idx3-ubyte.gz") != std::string::npos);
        CHECK(msg.find("scripts/fetch_mnist.sh") != std::string::npos);
    }
    // Images present, labels missing: the labels file is named.
    write_file(dir.file("train-images-idx3-ubyte"), make_idx({2, 2, 2}, pixels(2, 2, 2)));
    try {
        data::load_mnist(dir.str(), data::Split::Train);
        FAIL("no exception");
    } catch (const nt::io_error& e) {
        CHECK(e.path() == dir.file("train-labels-idx1-ubyte"));
        CHECK(std::string(e.what()).find("scripts/fetch_mnist.sh") != std::string::npos);
    }
}

TEST_CASE("image/label count mismatch is a shape_error; a bad label is a parse_error") {
    TempDir dir;
    write_file(dir.file("t10k-images-idx3-ubyte"), make_idx({4, 2, 2}, pixels(4, 2, 2)));
    write_file(dir.file("t10k-labels-idx1-ubyte"), make_idx({3}, labels(3)));
    CHECK_THROWS_WITH_AS(data::load_mnist(dir.str(), data::Split::Test), doctest::Contains("4 images but 3 labels"),
                         nt::shape_error);
    write_file(dir.file("t10k-labels-idx1-ubyte"), make_idx({4}, {0, 1, 10, 2}));
    CHECK_THROWS_AS(data::load_mnist(dir.str(), data::Split::Test), nt::parse_error);
}

// ---- Normalize ----

TEST_CASE("Normalize computes (x - mean) / std elementwise") {
    const data::Normalize half(0.5f, 0.25f);
    // (0 − 0.5)/0.25 = −2, (0.5 − 0.5)/0.25 = 0, (1 − 0.5)/0.25 = 2: exact in float32.
    CHECK(half(nt::tensor({0.0f, 0.5f, 1.0f})).to_vector() == std::vector<float>{-2.0f, 0.0f, 2.0f});

    const data::Normalize mnist(data::mnist_mean, data::mnist_std);
    CHECK(mnist.mean() == 0.1307f);
    CHECK(mnist.std() == 0.3081f);
    const nt::Tensor x = nt::tensor({0.0f, 1.0f, 0.5f, 0.25f}, {1, 1, 2, 2});
    const nt::Tensor y = mnist(x);
    CHECK(y.shape() == x.shape());
    // Black and white pixels of the seed's preprocessing: −0.1307/0.3081 ≈ −0.42421 and
    // 0.8693/0.3081 ≈ 2.82149 (float32 arithmetic vs these 5-6 digit values: 1e-5 relative).
    CHECK(y.at({0, 0, 0, 0}) == doctest::Approx(-0.424212917).epsilon(1e-5));
    CHECK(y.at({0, 0, 0, 1}) == doctest::Approx(2.821486530).epsilon(1e-5));
    CHECK(y.at({0, 0, 1, 0}) == (0.5f - 0.1307f) / 0.3081f);  // the same float32 expression: exact
    CHECK_FALSE(y.is_same(x));
    CHECK(x.at({0, 0, 0, 1}) == 1.0f);  // the input is not modified

    // A strided input is read in logical order.
    const nt::Tensor t = nt::tensor({0.0f, 1.0f, 0.5f, 0.25f}, {2, 2}).transpose(0, 1);  // [[0, 0.5], [1, 0.25]]
    CHECK(half(t).to_vector() == std::vector<float>{-2.0f, 0.0f, 2.0f, -1.0f});

    CHECK_THROWS_AS(data::Normalize(0.0f, 0.0f), nt::value_error);
    CHECK_THROWS_AS(data::Normalize(0.0f, -1.0f), nt::value_error);
}

TEST_CASE("Normalize(inplace) overwrites its input and returns it, with the same values as a copy") {
    const data::Normalize copying(data::mnist_mean, data::mnist_std);
    const data::Normalize inplace(data::mnist_mean, data::mnist_std, /*inplace=*/true);
    CHECK(inplace.inplace());
    CHECK_FALSE(copying.inplace());
    const std::vector<float> pixels = {0.0f, 1.0f, 0.5f, 0.25f, 0.125f, 0.75f};
    const nt::Tensor x = nt::tensor(pixels, {1, 1, 2, 3});
    const nt::Tensor expected = copying(x);
    const nt::Tensor y = inplace(x);
    CHECK(y.is_same(x));                                  // no new buffer
    CHECK(x.to_vector() == expected.to_vector());         // the same float32 expression: exact

    // In place on a non-contiguous view would scramble the layout it was given: refused.
    const nt::Tensor t = nt::tensor(pixels, {2, 3}).transpose(0, 1);
    CHECK_THROWS_WITH_AS(inplace(t), doctest::Contains("not contiguous"), nt::value_error);
    CHECK_THROWS_AS(inplace(nt::Tensor()), nt::value_error);
}

// ---- DataLoader ----

TEST_CASE("DataLoader batch counts with and without drop_last, and the last partial batch") {
    const data::Dataset ds = numbered(10);
    struct Case {
        std::int64_t batch;
        bool drop_last;
        std::vector<std::int64_t> sizes;
    };
    const std::vector<Case> cases = {
        {3, false, {3, 3, 3, 1}}, {3, true, {3, 3, 3}}, {5, false, {5, 5}}, {5, true, {5, 5}},
        {10, false, {10}},        {20, false, {10}},    {20, true, {}},     {1, true, std::vector<std::int64_t>(10, 1)},
    };
    for (const Case& c : cases) {
        CAPTURE(c.batch);
        CAPTURE(c.drop_last);
        data::DataLoader loader(ds, data::DataLoaderOptions(c.batch).drop_last(c.drop_last));
        CHECK(loader.size() == static_cast<std::int64_t>(c.sizes.size()));
        std::vector<std::int64_t> sizes;
        const std::vector<std::int64_t> order = epoch_order(loader, &sizes);
        CHECK(sizes == c.sizes);
        // Without shuffle the order is 0, 1, 2, ...
        std::vector<std::int64_t> expected(order.size());
        std::iota(expected.begin(), expected.end(), std::int64_t{0});
        CHECK(order == expected);
    }
}

TEST_CASE("a shuffled DataLoader visits every sample once per epoch, reshuffles, and is reproducible") {
    const data::Dataset ds = numbered(50);
    nt::Generator g1(2024), g2(2024), g3(7);
    data::DataLoader a(ds, data::DataLoaderOptions(8).shuffle(true), g1);
    data::DataLoader b(ds, data::DataLoaderOptions(8).shuffle(true), g2);
    data::DataLoader c(ds, data::DataLoaderOptions(8).shuffle(true), g3);

    std::vector<std::vector<std::int64_t>> epochs;
    for (int e = 0; e < 3; ++e) {
        CAPTURE(e);
        std::vector<std::int64_t> sizes;
        std::vector<std::int64_t> order = epoch_order(a, &sizes);
        CHECK(sizes == std::vector<std::int64_t>{8, 8, 8, 8, 8, 8, 2});
        CHECK(epoch_order(b) == order);  // same seed, same sequence of epochs
        std::vector<std::int64_t> sorted = order;
        std::sort(sorted.begin(), sorted.end());
        std::vector<std::int64_t> all(50);
        std::iota(all.begin(), all.end(), std::int64_t{0});
        CHECK(sorted == all);  // a permutation: each sample exactly once
        epochs.push_back(std::move(order));
    }
    // 50! orders: two equal epochs (or equal to the identity, or to another seed's) mean no shuffling.
    CHECK(epochs[0] != epochs[1]);
    CHECK(epochs[1] != epochs[2]);
    std::vector<std::int64_t> identity(50);
    std::iota(identity.begin(), identity.end(), std::int64_t{0});
    CHECK(epochs[0] != identity);
    CHECK(epoch_order(c) != epochs[0]);

    // drop_last with shuffling drops a different remainder each epoch, but never repeats a sample.
    nt::Generator g4(5);
    data::DataLoader d(ds, data::DataLoaderOptions(8).shuffle(true).drop_last(true), g4);
    const std::vector<std::int64_t> o = epoch_order(d);
    CHECK(o.size() == 48);
    CHECK(std::set<std::int64_t>(o.begin(), o.end()).size() == 48);

    // Batches of 64 rows are gathered over the thread pool: at 3 threads every row still holds
    // its own image and target (epoch_order checks), in the order 1 thread gives.
    const data::Dataset big = numbered(300);
    nt::Generator g5(9), g6(9);
    data::DataLoader one(big, data::DataLoaderOptions(64).shuffle(true), g5);
    data::DataLoader three(big, data::DataLoaderOptions(64).shuffle(true), g6);
    const int saved = nt::get_num_threads();
    nt::set_num_threads(1);
    const std::vector<std::int64_t> o1 = epoch_order(one);
    nt::set_num_threads(3);
    const std::vector<std::int64_t> o3 = epoch_order(three);
    nt::set_num_threads(saved);
    CHECK(o1.size() == 300);
    CHECK(o3 == o1);
}

TEST_CASE("DataLoader copies batches out of the data set and rejects bad arguments") {
    data::Dataset ds = numbered(4);
    data::DataLoader loader(ds, data::DataLoaderOptions(2));
    auto it = loader.begin();
    data::Batch first = *it;
    first.data.at({0, 0, 0, 0}) = 100.0f;  // writing into a batch does not touch the data set
    CHECK(ds.images.at({0, 0, 0, 0}) == 0.0f);
    ++it;
    CHECK((*it).target == std::vector<std::int64_t>{4, 1});  // images 2 and 3: 14 mod 10, 21 mod 10
    ++it;
    CHECK(it == loader.end());

    CHECK_THROWS_AS(data::DataLoader(ds, data::DataLoaderOptions(0)), nt::value_error);
    CHECK_THROWS_AS(data::DataLoader(ds, data::DataLoaderOptions(-3)), nt::value_error);
    data::Dataset bad = numbered(4);
    bad.labels.pop_back();  // 4 images, 3 labels
    CHECK_THROWS_AS(data::DataLoader(bad, data::DataLoaderOptions(2)), nt::shape_error);
    CHECK_THROWS_AS(data::DataLoader(data::Dataset{}, data::DataLoaderOptions(2)), nt::shape_error);

    // An empty data set gives no batches.
    data::Dataset none;
    none.images = nt::empty({0, 1, 2, 2});
    data::DataLoader empty_loader(none, data::DataLoaderOptions(4).shuffle(true));
    CHECK(empty_loader.size() == 0);
    CHECK(epoch_order(empty_loader).empty());
}

TEST_CASE("sharded DataLoader: shards tile every global batch in rank order, augmentation included") {
    // 23 samples, global batch 8 -> batches of 8, 8, 7; 3 shards get rows [r*c/3, (r+1)*c/3).
    const data::Dataset ds = numbered(23);
    for (bool augment : {false, true}) {
        CAPTURE(augment);
        data::DataLoaderOptions base = data::DataLoaderOptions(8).shuffle(true);
        if (augment) base.transform(data::RandomHorizontalFlip());
        nt::Generator g_all(12);
        data::DataLoader all(ds, base, g_all);
        std::vector<data::Batch> whole;
        for (int e = 0; e < 2; ++e)  // two epochs: the shards must reshuffle alike
            for (auto b : all) whole.push_back(b);
        for (std::int64_t rank = 0; rank < 3; ++rank) {
            CAPTURE(rank);
            nt::Generator g(12);
            data::DataLoader mine(ds, data::DataLoaderOptions(base).shard(rank, 3), g);
            CHECK(mine.size() == all.size());
            std::size_t k = 0;
            for (int e = 0; e < 2; ++e)
                for (auto b : mine) {
                    const data::Batch& w = whole[k++];
                    const auto c = static_cast<std::int64_t>(w.target.size());
                    const std::int64_t offset = rank * c / 3, rows = (rank + 1) * c / 3 - offset;
                    CHECK(b.global_size == c);
                    CHECK(b.global_offset == offset);
                    REQUIRE(static_cast<std::int64_t>(b.target.size()) == rows);
                    CHECK(b.target == std::vector<std::int64_t>(w.target.begin() + offset,
                                                                w.target.begin() + offset + rows));
                    CHECK(b.data.to_vector() == w.data.narrow(0, offset, rows).contiguous().to_vector());
                }
            CHECK(k == whole.size());
        }
    }
    // Unsharded batches say they are the whole global batch.
    data::DataLoader plain(ds, data::DataLoaderOptions(8));
    const data::Batch first = *plain.begin();
    CHECK(first.global_offset == 0);
    CHECK(first.global_size == 8);
    // Shards that would get no rows, and shards that are not shards, are refused.
    CHECK_THROWS_WITH_AS(data::DataLoader(ds, data::DataLoaderOptions(2).shard(0, 3)),
                         doctest::Contains("smaller than the 3 shards"), nt::value_error);
    const data::Dataset seventeen = numbered(17);  // 8, 8, 1: the last batch cannot feed 3 shards
    CHECK_THROWS_WITH_AS(data::DataLoader(seventeen, data::DataLoaderOptions(8).shard(2, 3)),
                         doctest::Contains("the last batch has 1 samples"), nt::value_error);
    CHECK(data::DataLoader(seventeen, data::DataLoaderOptions(8).drop_last(true).shard(2, 3)).size() == 2);
    CHECK_THROWS_AS(data::DataLoader(ds, data::DataLoaderOptions(8).shard(3, 3)), nt::value_error);
    CHECK_THROWS_AS(data::DataLoader(ds, data::DataLoaderOptions(8).shard(-1, 3)), nt::value_error);
    CHECK_THROWS_AS(data::DataLoader(ds, data::DataLoaderOptions(8).shard(0, 0)), nt::value_error);
}

// ---- the real MNIST test split ----

TEST_CASE("MNIST t10k from data/mnist (scripts/fetch_mnist.sh)" *
          doctest::skip(!have_mnist()) *
          doctest::description("needs data/mnist (scripts/fetch_mnist.sh); skipped when absent")) {
    const std::string dir = find_mnist_dir();
    MESSAGE("reading MNIST from " << dir);
    const data::Dataset ds = data::load_mnist(dir, data::Split::Test);
    REQUIRE(ds.images.shape() == nt::Shape{10000, 1, 28, 28});
    REQUIRE(ds.size() == 10000);
    const std::vector<float> px = ds.images.to_vector();
    const auto [lo, hi] = std::minmax_element(px.begin(), px.end());
    CHECK(*lo == 0.0f);  // MNIST uses the full byte range: 0 -> 0, 255 -> 1 exactly
    CHECK(*hi == 1.0f);
    std::array<int, 10> histogram{};
    for (std::int64_t y : ds.labels) {
        REQUIRE(y >= 0);
        REQUIRE(y < 10);
        ++histogram[static_cast<std::size_t>(y)];
    }
    // The published per-digit counts of the MNIST test set.
    CHECK(histogram == std::array<int, 10>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});

    // The seed's test loader: batches of 1000.
    data::DataLoader loader(ds, data::DataLoaderOptions(1000));
    CHECK(loader.size() == 10);
    const data::Batch b = *loader.begin();
    CHECK(b.data.shape() == nt::Shape{1000, 1, 28, 28});
    CHECK(b.target[0] == ds.labels[0]);
}

TEST_CASE("MNIST absent: say so" * doctest::skip(have_mnist())) {
    MESSAGE("data/mnist not found (run scripts/fetch_mnist.sh): the real-MNIST test case is skipped");
    CHECK_FALSE(have_mnist());
}
