// nanotorch/data/image_input.hpp — a picture of a digit as a network input: grayscale, resizing,
// the "ink" rule and the two input layouts.
//
// Provides GrayImage, to_grayscale(), idx_image() (one image of an IDX file), area and
// nearest-neighbour resizing, the ink rule (MNIST is white ink on black, so an image whose border
// is light is inverted), and two input layouts: mnist_normalize() (x/255, then
// (x − 0.1307) / 0.3081, for a model that takes [N, 1, 28, 28]) and rgba_canvas() (a browser
// canvas: RGB 0 and the ink in alpha, for a model that takes a flat 280·280·4 canvas). Everything
// returns plain float vectors, so this layer does not depend on Tensor or ONNX. Deliberately not
// provided: colour inputs and any resampling beyond box filtering and nearest neighbour.
#pragma once

#include <algorithm>  // std::min/max
#include <cassert>    // GrayImage::at
#include <cmath>      // std::lround
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/data/idx.hpp>           // IdxArray, detail::dims_to_string
#include <nanotorch/data/image_decode.hpp>  // Image
#include <nanotorch/data/mnist.hpp>         // mnist_mean, mnist_std
#include <nanotorch/error.hpp>

namespace nanotorch::data {

/// A single-channel image with float pixels (nominally 0..255), row-major.
struct GrayImage {
    std::int64_t width = 0, height = 0;
    std::vector<float> pixels;

    /// Pixel (x, y); no bounds check beyond assert.
    float at(std::int64_t x, std::int64_t y) const {
        assert(x >= 0 && x < width && y >= 0 && y < height);
        return pixels[static_cast<std::size_t>(y * width + x)];
    }
};

// ---- grayscale and IDX images ----

/// Luma (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B) composited over white by alpha, so that a
/// transparent background (as a browser canvas saves it) reads as white paper. Throws nothing.
inline GrayImage to_grayscale(const Image& im) {
    GrayImage g{im.width, im.height, std::vector<float>(static_cast<std::size_t>(im.width * im.height))};
    for (std::size_t i = 0; i < g.pixels.size(); ++i) {
        const std::uint8_t* p = &im.rgba[4 * i];
        const double luma = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        const double a = p[3] / 255.0;
        g.pixels[i] = static_cast<float>(luma * a + 255.0 * (1.0 - a));
    }
    return g;
}

/// Image `index` of an IDX image array (dims {N, rows, cols}) as a GrayImage, pixels 0..255.
/// Throws value_error when `images` is not rank 3 or when index is outside [0, N), naming
/// `name_for_errors` and N.
inline GrayImage idx_image(const IdxArray& images, std::int64_t index, const std::string& name_for_errors = "") {
    const std::string who = name_for_errors.empty() ? std::string("IDX images") : name_for_errors;
    NANOTORCH_CHECK(images.dims.size() == 3 && static_cast<std::int64_t>(images.data.size()) == images.numel(),
                    value_error, who, ": expected an IDX image array with dims {N, rows, cols}, got ",
                    detail::dims_to_string(images.dims));
    const std::int64_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
    NANOTORCH_CHECK(index >= 0 && index < n, value_error, who, ": image index ", index,
                    " is out of range (the file holds ", n, " images, 0..", n - 1, ")");
    GrayImage g{cols, rows, std::vector<float>(static_cast<std::size_t>(rows * cols))};
    const std::uint8_t* src = images.data.data() + index * rows * cols;
    for (std::size_t i = 0; i < g.pixels.size(); ++i) g.pixels[i] = src[i];
    return g;
}

// ---- resizing ----

namespace detail {

// Area weights for resampling `src` samples onto `dst`: output i covers source interval
// [i·src/dst, (i+1)·src/dst). In units of 1/dst source pixels every bound is an integer, so the
// weights are exact (an integer downscale is a plain box average, an integer upscale a copy).
struct AreaTap {
    std::int64_t first;
    std::vector<double> w;
};
inline std::vector<AreaTap> area_taps(std::int64_t src, std::int64_t dst) {
    std::vector<AreaTap> taps(static_cast<std::size_t>(dst));
    for (std::int64_t i = 0; i < dst; ++i) {
        const std::int64_t lo = i * src, hi = (i + 1) * src;  // in 1/dst units; hi - lo == src
        AreaTap& t = taps[static_cast<std::size_t>(i)];
        t.first = lo / dst;
        for (std::int64_t j = t.first; j * dst < hi; ++j)
            t.w.push_back(double(std::min(hi, (j + 1) * dst) - std::max(lo, j * dst)) / double(src));
    }
    return taps;
}

inline void check_resize(const GrayImage& g, std::int64_t width, std::int64_t height, const char* fn) {
    NANOTORCH_CHECK(g.width > 0 && g.height > 0 && static_cast<std::int64_t>(g.pixels.size()) == g.width * g.height,
                    value_error, fn, ": source image is empty or inconsistent (", g.width, "x", g.height, ", ",
                    g.pixels.size(), " pixels)");
    NANOTORCH_CHECK(width > 0 && height > 0 && width <= (1 << 16) && height <= (1 << 16), value_error, fn,
                    ": target size ", width, "x", height, " is outside 1..65536");
}

}  // namespace detail

/// Resizes by area averaging (a box filter): each output pixel is the mean of the source area it
/// covers, so 280→28 averages 10×10 blocks and 28→280 repeats each pixel 10×10 times.
/// Throws value_error for an empty source or a target size outside 1..65536.
inline GrayImage resize_area(const GrayImage& g, std::int64_t width, std::int64_t height) {
    detail::check_resize(g, width, height, "resize_area");
    const auto tx = detail::area_taps(g.width, width), ty = detail::area_taps(g.height, height);
    std::vector<double> rows(static_cast<std::size_t>(g.height * width));  // horizontal pass
    for (std::int64_t y = 0; y < g.height; ++y)
        for (std::int64_t x = 0; x < width; ++x) {
            const auto& t = tx[static_cast<std::size_t>(x)];
            double s = 0;
            for (std::size_t k = 0; k < t.w.size(); ++k) s += t.w[k] * g.at(t.first + std::int64_t(k), y);
            rows[static_cast<std::size_t>(y * width + x)] = s;
        }
    GrayImage out{width, height, std::vector<float>(static_cast<std::size_t>(width * height))};
    for (std::int64_t y = 0; y < height; ++y) {
        const auto& t = ty[static_cast<std::size_t>(y)];
        for (std::int64_t x = 0; x < width; ++x) {
            double s = 0;
            for (std::size_t k = 0; k < t.w.size(); ++k)
                s += t.w[k] * rows[static_cast<std::size_t>((t.first + std::int64_t(k)) * width + x)];
            out.pixels[static_cast<std::size_t>(y * width + x)] = static_cast<float>(s);
        }
    }
    return out;
}

/// Resizes by nearest neighbour: output (x, y) takes source (⌊x·w/W⌋, ⌊y·h/H⌋).
/// Throws value_error as resize_area.
inline GrayImage resize_nearest(const GrayImage& g, std::int64_t width, std::int64_t height) {
    detail::check_resize(g, width, height, "resize_nearest");
    GrayImage out{width, height, std::vector<float>(static_cast<std::size_t>(width * height))};
    for (std::int64_t y = 0; y < height; ++y)
        for (std::int64_t x = 0; x < width; ++x)
            out.pixels[static_cast<std::size_t>(y * width + x)] = g.at(x * g.width / width, y * g.height / height);
    return out;
}

// ---- ink and network inputs ----

/// Mean of the pixels on the image's outer edge (each counted once). Throws value_error for an
/// empty image.
inline float border_mean(const GrayImage& g) {
    NANOTORCH_CHECK(g.width > 0 && g.height > 0, value_error, "border_mean: empty image");
    double sum = 0;
    std::int64_t n = 0;
    for (std::int64_t y = 0; y < g.height; ++y)
        for (std::int64_t x = 0; x < g.width; ++x)
            if (y == 0 || y == g.height - 1 || x == 0 || x == g.width - 1) {
                sum += g.at(x, y);
                ++n;
            }
    return static_cast<float>(sum / double(n));
}

/// The image as MNIST-style ink: white on black. MNIST digits are light strokes on a black
/// background, while a digit drawn or photographed on paper is dark on light; the background is
/// judged by the border, since a centred digit rarely touches it. A border mean above 127.5
/// means a light background, and the image is inverted (255 − v). Throws value_error when empty.
inline GrayImage to_ink(const GrayImage& g) {
    GrayImage out = g;
    if (border_mean(g) > 127.5f)
        for (float& v : out.pixels) v = 255.0f - v;
    return out;
}

/// MNIST normalisation of 0..255 ink, as torchvision's ToTensor (x / 255) then
/// Normalize((0.1307,), (0.3081,)). Row-major, one value per pixel. Throws nothing.
inline std::vector<float> mnist_normalize(const GrayImage& ink) {
    std::vector<float> out(ink.pixels.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = (ink.pixels[i] / 255.0f - mnist_mean) / mnist_std;
    return out;
}

/// The ink as a browser canvas, for a model that reads the raw canvas: 4 floats per pixel
/// (R, G, B, A), RGB 0 and A = the ink rounded and clamped to a byte, as a canvas's
/// Uint8ClampedArray holds it.
/// Throws nothing.
inline std::vector<float> rgba_canvas(const GrayImage& ink) {
    std::vector<float> out(4 * ink.pixels.size(), 0.0f);
    for (std::size_t i = 0; i < ink.pixels.size(); ++i)
        out[4 * i + 3] = static_cast<float>(std::lround(std::min(255.0f, std::max(0.0f, ink.pixels[i]))));
    return out;
}

/// A picture of a digit (dark on light or light on dark) as a [height, width] MNIST input:
/// grayscale, to_ink, resize_area, mnist_normalize. Throws value_error for a bad size.
inline std::vector<float> image_to_mnist(const Image& im, std::int64_t height = 28, std::int64_t width = 28) {
    return mnist_normalize(resize_area(to_ink(to_grayscale(im)), width, height));
}

/// A picture of a digit as the browser canvas (size × size RGBA, ink in alpha): grayscale,
/// to_ink, resize_area, rgba_canvas. Throws value_error for a bad size.
inline std::vector<float> image_to_canvas(const Image& im, std::int64_t size = 280) {
    return rgba_canvas(resize_area(to_ink(to_grayscale(im)), size, size));
}

/// An IDX digit (already white on black, so never inverted) as a [height, width] MNIST input:
/// resize_area when the size differs, then mnist_normalize. Throws value_error for a bad size.
inline std::vector<float> idx_to_mnist(const GrayImage& digit, std::int64_t height = 28, std::int64_t width = 28) {
    if (digit.width == width && digit.height == height) return mnist_normalize(digit);
    return mnist_normalize(resize_area(digit, width, height));
}

/// An IDX digit as the browser canvas: resize_nearest to size × size (28 → 280 repeats each pixel
/// 10×10 times, which the model's 10×10 average pool undoes exactly), then rgba_canvas.
/// Throws value_error for a bad size.
inline std::vector<float> idx_to_canvas(const GrayImage& digit, std::int64_t size = 280) {
    return rgba_canvas(resize_nearest(digit, size, size));
}

}  // namespace nanotorch::data
