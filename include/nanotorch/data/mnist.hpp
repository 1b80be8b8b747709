// nanotorch/data/mnist.hpp — MNIST-format data sets as tensors, and Normalize.
//
// load_mnist(dir, split) reads the standard file pair of a split (train-* or t10k-*), raw or
// gzipped (the .gz name is tried when the raw one is absent; the content decides how it is read),
// checks that the image and label counts agree, and returns images as float [N, 1, H, W] scaled
// to [0, 1] (torchvision's ToTensor) with int64 labels. Fashion-MNIST uses the same file names
// and loads through the same call. Normalisation is a separate, explicit step.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nanotorch/core/tensor.hpp>
#include <nanotorch/data/idx.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::data {

/// Images and their labels. images: [N, 1, H, W] float; labels: N class indices.
struct Dataset {
    Tensor images;
    std::vector<std::int64_t> labels;
    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

enum class Split { Train, Test };

namespace detail {
inline std::string find_split_file(const std::string& dir, const std::string& stem) {
    namespace fs = std::filesystem;
    // The error_code overload: a directory we may not search is "not found" here, and the reader
    // then names the real problem, instead of std::filesystem_error escaping our hierarchy.
    std::error_code ec;
    const fs::path raw = fs::path(dir) / stem;
    if (fs::exists(raw, ec)) return raw.string();
    const fs::path gz = fs::path(dir) / (stem + ".gz");
    if (fs::exists(gz, ec)) return gz.string();
    throw io_error(raw.string(), "not found (nor " + gz.filename().string() +
                                     "); scripts/fetch_mnist.sh puts MNIST in data/mnist, scripts/fetch_fashion_mnist.sh "
                                     "Fashion-MNIST in data/fashion-mnist");
}
}  // namespace detail

/// Converts IDX images {N, H, W} and labels {N} to a Dataset (pixels / 255).
inline Dataset to_dataset(const IdxArray& images, const IdxArray& labels, const std::string& what = "MNIST") {
    NANOTORCH_CHECK(images.dims.size() == 3, shape_error, what, ": images must be N x H x W, got rank ",
                    images.dims.size());
    NANOTORCH_CHECK(labels.dims.size() == 1 && labels.dims[0] == images.dims[0], shape_error, what, ": ",
                    images.dims[0], " images but ", labels.dims.empty() ? 0 : labels.dims[0], " labels");
    // IdxArray is a plain struct: one built by hand may disagree with its own dims, and the copy
    // below trusts data.size(), so check that before writing into a tensor sized by the dims.
    const bool dims_ok = images.dims[0] >= 0 && images.dims[1] >= 0 && images.dims[2] >= 0;
    NANOTORCH_CHECK(dims_ok && static_cast<std::int64_t>(images.data.size()) == images.numel() &&
                        static_cast<std::int64_t>(labels.data.size()) == labels.dims[0],
                    shape_error, what, ": image dims ", detail::dims_to_string(images.dims), " with ",
                    images.data.size(), " bytes and ", labels.data.size(), " label bytes for ", labels.dims[0],
                    " labels are inconsistent");
    Dataset ds;
    ds.images = empty({images.dims[0], 1, images.dims[1], images.dims[2]});
    float* dst = ds.images.data_ptr();
    for (std::size_t i = 0; i < images.data.size(); ++i) dst[i] = static_cast<float>(images.data[i]) / 255.0f;
    ds.labels.assign(labels.data.begin(), labels.data.end());
    return ds;
}

/// Loads the train (60k) or test (10k) split from `dir` (files train-images-idx3-ubyte, ...,
/// optionally .gz). Throws io_error when a file is missing, parse_error when one is malformed,
/// shape_error when image and label counts differ.
inline Dataset load_mnist(const std::string& dir, Split split, const IdxLimits& limits = {}) {
    const std::string prefix = split == Split::Train ? "train" : "t10k";
    const std::string img_path = detail::find_split_file(dir, prefix + "-images-idx3-ubyte");
    const std::string lbl_path = detail::find_split_file(dir, prefix + "-labels-idx1-ubyte");
    return to_dataset(read_idx_images(img_path, limits), read_idx_labels(lbl_path, 10, limits), img_path);
}

/// (x − mean) / std, torchvision's Normalize for one channel. Not differentiable: it is a
/// data transform, applied once to a data set or batch.
class Normalize {
public:
    /// inplace = true (torchvision's `inplace`) overwrites the tensor it is given and returns it:
    /// normalizing MNIST's 60,000 training images then needs no second 188 MB buffer.
    /// @throws value_error if std is not positive.
    Normalize(float mean, float std, bool inplace = false) : mean_(mean), std_(std), inplace_(inplace) {
        NANOTORCH_CHECK(std > 0.0f, value_error, "Normalize: std must be positive, got ", std);
    }
    /// A normalized copy of x, or x itself normalized when inplace (x must then be contiguous).
    /// @throws value_error if x is undefined, or inplace and x is not contiguous.
    Tensor operator()(const Tensor& x) const {
        NANOTORCH_CHECK(x.defined(), value_error, "Normalize: undefined tensor");
        Tensor out = x;
        if (inplace_) {
            NANOTORCH_CHECK(x.is_contiguous(), value_error, "Normalize(inplace): the tensor of shape ",
                            shape_str(x.shape()), " is not contiguous");
        } else {
            out = empty(x.shape());
            out.copy_(x);
        }
        float* o = out.data_ptr();
        const std::int64_t n = out.numel();
        for (std::int64_t i = 0; i < n; ++i) o[i] = (o[i] - mean_) / std_;
        return out;
    }
    float mean() const { return mean_; }
    float std() const { return std_; }
    bool inplace() const { return inplace_; }

private:
    float mean_, std_;
    bool inplace_;
};

/// MNIST's statistics, as in the seed: Normalize((0.1307,), (0.3081,)).
inline constexpr float mnist_mean = 0.1307f;
inline constexpr float mnist_std = 0.3081f;

}  // namespace nanotorch::data
