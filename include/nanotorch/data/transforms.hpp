// nanotorch/data/transforms.hpp — seeded data augmentation: RandomCrop, RandomHorizontalFlip,
// RandomAffine, and Compose to chain them, as torchvision.transforms names them.
//
// A Transform maps one image [C, H, W] to another, drawing its random parameters from a
// Generator it is handed. Each transform splits that in two, as torchvision's get_params does:
// sample(shape, gen) draws the parameters (a small struct), apply(...) is a pure function of the
// image and those parameters. Tests pin exact outputs through apply with chosen parameters, and
// a seed fixes the draws. The DataLoader (dataloader.hpp) gives every sample of a pass its own
// generator, derived from the pass's seed and the sample's position, so the augmented batches do
// not depend on the thread count or on how batches are consumed.
//
// Transforms act on the images as stored (typically ToTensor's [0, 1] pixels, before
// Normalize, as in torchvision pipelines); `fill` is the value of pixels that come from
// outside the image. They are data transforms, not ops: no autograd, no ONNX export.
#pragma once

#include <algorithm>    // std::copy
#include <array>
#include <cmath>
#include <memory>
#include <sstream>      // repr() of floating-point arguments
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nanotorch/core/random.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::data {

/// The interface every augmentation implements: one contiguous [C, H, W] float image in, one out.
class Transform {
public:
    virtual ~Transform() = default;

    /// The shape one image [C, H, W] has after this transform.
    /// @throws shape_error when `chw` is not 3-D, or the transform cannot apply to that size
    ///   (e.g. a crop larger than the padded image).
    virtual Shape output_shape(const Shape& chw) const = 0;

    /// Transforms the image at `src` (shape `chw`, contiguous) into `dst` (output_shape(chw)
    /// elements, not overlapping `src`), drawing its random parameters from `gen`.
    /// @throws shape_error as output_shape.
    virtual void apply(const float* src, const Shape& chw, float* dst, Generator& gen) const = 0;

    /// torchvision-style description, e.g. "RandomCrop(size=[28, 28], padding=4)".
    virtual std::string repr() const = 0;

    /// Applies the transform to an image [C, H, W] or, one image after the other in order, to a
    /// batch [N, C, H, W]; returns a new tensor.
    /// @throws shape_error for an undefined tensor or another rank, and as output_shape.
    Tensor operator()(const Tensor& x, Generator& gen) const {
        NANOTORCH_CHECK(x.defined() && (x.dim() == 3 || x.dim() == 4), shape_error, repr(),
                        ": expected an image [C, H, W] or a batch [N, C, H, W], got ",
                        x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
        const Tensor src = x.is_contiguous() ? x : x.contiguous();
        const bool batched = x.dim() == 4;
        const Shape chw = batched ? Shape{x.size(1), x.size(2), x.size(3)} : x.shape();
        const Shape out_chw = output_shape(chw);
        const std::int64_t n = batched ? x.size(0) : 1;
        Tensor out = batched ? empty({n, out_chw[0], out_chw[1], out_chw[2]}) : empty(out_chw);
        const std::int64_t in_size = chw[0] * chw[1] * chw[2], out_size = out_chw[0] * out_chw[1] * out_chw[2];
        for (std::int64_t i = 0; i < n; ++i)
            apply(src.data_ptr() + i * in_size, chw, out.data_ptr() + i * out_size, gen);
        return out;
    }

protected:
    void check_chw(const Shape& chw) const {
        NANOTORCH_CHECK(chw.size() == 3 && chw[0] > 0 && chw[1] > 0 && chw[2] > 0, shape_error, repr(),
                        ": expected a non-empty image shape [C, H, W], got ", shape_str(chw));
    }
};

namespace detail {
inline std::string float_str(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}
inline void check_finite(double v, const char* what, const char* name) {
    NANOTORCH_CHECK(std::isfinite(v), value_error, what, ": ", name, " must be finite, got ", v);
}
}  // namespace detail

// ---- RandomCrop ----

/// torchvision.transforms.RandomCrop(size, padding, fill=fill): pads every side by `padding`
/// (constant `fill`), then cuts a size.h × size.w window at a uniformly random position.
class RandomCrop : public Transform {
public:
    struct Params {
        std::int64_t top = 0, left = 0;  // the window's corner in the padded image
    };

    /// @throws value_error when a side of `size` is not positive, `padding` is negative or `fill`
    ///   is not finite.
    explicit RandomCrop(std::int64_t size, std::int64_t padding = 0, float fill = 0.0f)
        : RandomCrop(std::array<std::int64_t, 2>{size, size}, padding, fill) {}
    /// size = {height, width}. @throws as above.
    RandomCrop(std::array<std::int64_t, 2> size, std::int64_t padding = 0, float fill = 0.0f)
        : h_(size[0]), w_(size[1]), padding_(padding), fill_(fill) {
        NANOTORCH_CHECK(h_ > 0 && w_ > 0, value_error, "RandomCrop: size must be positive, got [", h_, ", ", w_,
                        "]");
        NANOTORCH_CHECK(padding >= 0, value_error, "RandomCrop: padding must not be negative, got ", padding);
        detail::check_finite(fill, "RandomCrop", "fill");
    }

    /// [C, size.h, size.w]. @throws shape_error when the padded image is smaller than the crop.
    Shape output_shape(const Shape& chw) const override {
        check_chw(chw);
        NANOTORCH_CHECK(chw[1] + 2 * padding_ >= h_ && chw[2] + 2 * padding_ >= w_, shape_error, repr(),
                        ": the padded image ", chw[1] + 2 * padding_, "x", chw[2] + 2 * padding_,
                        " is smaller than the crop ", h_, "x", w_);
        return {chw[0], h_, w_};
    }
    /// top ~ U{0 .. H + 2·padding − size.h}, then left likewise (torchvision's order).
    /// @throws shape_error as output_shape.
    Params sample(const Shape& chw, Generator& gen) const {
        output_shape(chw);
        Params p;
        p.top = static_cast<std::int64_t>(gen.randint(static_cast<std::uint64_t>(chw[1] + 2 * padding_ - h_ + 1)));
        p.left = static_cast<std::int64_t>(gen.randint(static_cast<std::uint64_t>(chw[2] + 2 * padding_ - w_ + 1)));
        return p;
    }
    /// The crop at `p`. @throws shape_error as output_shape, or when p lies outside the valid range.
    void apply(const float* src, const Shape& chw, const Params& p, float* dst) const {
        output_shape(chw);
        const std::int64_t H = chw[1], W = chw[2];
        NANOTORCH_CHECK(p.top >= 0 && p.left >= 0 && p.top + h_ <= H + 2 * padding_ && p.left + w_ <= W + 2 * padding_,
                        shape_error, repr(), ": crop corner (", p.top, ", ", p.left, ") outside the padded ",
                        H + 2 * padding_, "x", W + 2 * padding_, " image");
        for (std::int64_t c = 0; c < chw[0]; ++c)
            for (std::int64_t y = 0; y < h_; ++y) {
                const std::int64_t sy = p.top + y - padding_;
                for (std::int64_t x = 0; x < w_; ++x) {
                    const std::int64_t sx = p.left + x - padding_;
                    const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
                    dst[(c * h_ + y) * w_ + x] = inside ? src[(c * H + sy) * W + sx] : fill_;
                }
            }
    }
    void apply(const float* src, const Shape& chw, float* dst, Generator& gen) const override {
        apply(src, chw, sample(chw, gen), dst);
    }
    std::string repr() const override {
        return "RandomCrop(size=[" + std::to_string(h_) + ", " + std::to_string(w_) +
               "], padding=" + std::to_string(padding_) + ")";
    }

private:
    std::int64_t h_, w_, padding_;
    float fill_;
};

// ---- RandomHorizontalFlip ----

/// torchvision.transforms.RandomHorizontalFlip(p): mirrors the image left-right with probability p.
class RandomHorizontalFlip : public Transform {
public:
    struct Params {
        bool flip = false;
    };
    /// @throws value_error when p is outside [0, 1].
    explicit RandomHorizontalFlip(double p = 0.5) : p_(p) {
        NANOTORCH_CHECK(p >= 0.0 && p <= 1.0, value_error, "RandomHorizontalFlip: p must be in [0, 1], got ", p);
    }
    Shape output_shape(const Shape& chw) const override {
        check_chw(chw);
        return chw;
    }
    /// One uniform draw u; flip when u < p.
    Params sample(const Shape& chw, Generator& gen) const {
        check_chw(chw);
        return {gen.bernoulli(p_)};
    }
    /// A copy, mirrored when p.flip. @throws shape_error for a shape that is not [C, H, W].
    void apply(const float* src, const Shape& chw, const Params& p, float* dst) const {
        check_chw(chw);
        const std::int64_t rows = chw[0] * chw[1], W = chw[2];
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t x = 0; x < W; ++x) dst[r * W + x] = src[r * W + (p.flip ? W - 1 - x : x)];
    }
    void apply(const float* src, const Shape& chw, float* dst, Generator& gen) const override {
        apply(src, chw, sample(chw, gen), dst);
    }
    std::string repr() const override { return "RandomHorizontalFlip(p=" + detail::float_str(p_) + ")"; }

private:
    double p_;
};

// ---- RandomAffine ----

enum class Interpolation { Nearest, Bilinear };

/// A small torchvision.transforms.RandomAffine(degrees, translate, interpolation, fill): a
/// rotation by a random angle in [−degrees, degrees] about the image centre ((W−1)/2, (H−1)/2),
/// positive = counter-clockwise as displayed, then a shift by whole pixels
/// tx ~ round(U(−translate[0]·W, translate[0]·W)), ty likewise with translate[1]·H.
/// Each output pixel p samples the input at c + R(−angle)·(p − c − t) (inverse mapping):
/// - Nearest: the input pixel nearest that point (halves round up); outside the image, `fill`.
/// - Bilinear: the four surrounding pixels weighted by distance; neighbours outside the image
///   count as `fill`, so edges blend into the fill value.
/// No scale or shear (torchvision's other arguments).
class RandomAffine : public Transform {
public:
    struct Params {
        double angle = 0.0;       // degrees, counter-clockwise
        double tx = 0.0, ty = 0.0;  // pixels, right and down
    };

    /// @throws value_error when degrees is negative or not finite, a translate fraction is
    ///   outside [0, 1], or fill is not finite.
    explicit RandomAffine(double degrees, std::array<double, 2> translate = {0.0, 0.0},
                          Interpolation interpolation = Interpolation::Nearest, float fill = 0.0f)
        : degrees_(degrees), translate_(translate), interpolation_(interpolation), fill_(fill) {
        detail::check_finite(degrees, "RandomAffine", "degrees");
        NANOTORCH_CHECK(degrees >= 0.0, value_error, "RandomAffine: degrees must not be negative, got ", degrees);
        for (double t : translate)
            NANOTORCH_CHECK(t >= 0.0 && t <= 1.0, value_error,
                            "RandomAffine: translate fractions must be in [0, 1], got ", t);
        detail::check_finite(fill, "RandomAffine", "fill");
    }
    Shape output_shape(const Shape& chw) const override {
        check_chw(chw);
        return chw;
    }
    /// angle ~ U(−degrees, degrees), then tx, then ty (each one uniform draw, in that order).
    Params sample(const Shape& chw, Generator& gen) const {
        check_chw(chw);
        Params p;
        p.angle = -degrees_ + 2.0 * degrees_ * gen.uniform_double();
        const double max_dx = translate_[0] * static_cast<double>(chw[2]);
        const double max_dy = translate_[1] * static_cast<double>(chw[1]);
        p.tx = std::round(-max_dx + 2.0 * max_dx * gen.uniform_double());
        p.ty = std::round(-max_dy + 2.0 * max_dy * gen.uniform_double());
        return p;
    }
    /// The image rotated and shifted by `p` (any angle and shift, not only ones sample() draws).
    /// @throws shape_error for a shape that is not [C, H, W]; value_error for non-finite params.
    void apply(const float* src, const Shape& chw, const Params& p, float* dst) const {
        check_chw(chw);
        NANOTORCH_CHECK(std::isfinite(p.angle) && std::isfinite(p.tx) && std::isfinite(p.ty), value_error, repr(),
                        ": non-finite parameters");
        const std::int64_t C = chw[0], H = chw[1], W = chw[2];
        const double pi = 3.14159265358979323846;
        const double a = p.angle * pi / 180.0;
        // Exact values at multiples of 90°, so rotating by 90 moves pixels exactly.
        double cs = std::cos(a), sn = std::sin(a);
        if (std::fmod(p.angle, 90.0) == 0.0) {
            cs = std::round(cs);
            sn = std::round(sn);
        }
        const double cx = 0.5 * static_cast<double>(W - 1), cy = 0.5 * static_cast<double>(H - 1);
        auto at = [&](std::int64_t c, std::int64_t y, std::int64_t x) {
            return (y >= 0 && y < H && x >= 0 && x < W) ? src[(c * H + y) * W + x] : fill_;
        };
        for (std::int64_t y = 0; y < H; ++y)
            for (std::int64_t x = 0; x < W; ++x) {
                const double dx = static_cast<double>(x) - cx - p.tx, dy = static_cast<double>(y) - cy - p.ty;
                const double sx = cx + cs * dx - sn * dy, sy = cy + sn * dx + cs * dy;
                if (interpolation_ == Interpolation::Nearest) {
                    const auto ix = static_cast<std::int64_t>(std::floor(sx + 0.5));
                    const auto iy = static_cast<std::int64_t>(std::floor(sy + 0.5));
                    for (std::int64_t c = 0; c < C; ++c) dst[(c * H + y) * W + x] = at(c, iy, ix);
                } else {
                    const double fx = std::floor(sx), fy = std::floor(sy);
                    const double wx = sx - fx, wy = sy - fy;
                    const auto x0 = static_cast<std::int64_t>(fx), y0 = static_cast<std::int64_t>(fy);
                    for (std::int64_t c = 0; c < C; ++c) {
                        const double top = (1.0 - wx) * at(c, y0, x0) + wx * at(c, y0, x0 + 1);
                        const double bottom = (1.0 - wx) * at(c, y0 + 1, x0) + wx * at(c, y0 + 1, x0 + 1);
                        dst[(c * H + y) * W + x] = static_cast<float>((1.0 - wy) * top + wy * bottom);
                    }
                }
            }
    }
    void apply(const float* src, const Shape& chw, float* dst, Generator& gen) const override {
        apply(src, chw, sample(chw, gen), dst);
    }
    std::string repr() const override {
        return "RandomAffine(degrees=" + detail::float_str(degrees_) + ", translate=[" +
               detail::float_str(translate_[0]) + ", " + detail::float_str(translate_[1]) + "], interpolation=" +
               (interpolation_ == Interpolation::Nearest ? "nearest" : "bilinear") + ")";
    }

private:
    double degrees_;
    std::array<double, 2> translate_;
    Interpolation interpolation_;
    float fill_;
};

// ---- Compose ----

/// torchvision.transforms.Compose: the transforms in order, each drawing from the same generator.
class Compose : public Transform {
public:
    Compose() = default;
    /// Compose(RandomCrop(28, 4), RandomHorizontalFlip()): any Transform objects, copied.
    template <class... Ts, class = std::enable_if_t<(std::is_base_of<Transform, std::decay_t<Ts>>::value && ...)>>
    explicit Compose(Ts&&... ts) {
        (push_back(std::forward<Ts>(ts)), ...);
    }
    template <class T, class = std::enable_if_t<std::is_base_of<Transform, std::decay_t<T>>::value>>
    void push_back(T&& t) {
        steps_.push_back(std::make_shared<std::decay_t<T>>(std::forward<T>(t)));
    }
    /// @throws value_error for a null pointer.
    void push_back(std::shared_ptr<const Transform> t) {
        NANOTORCH_CHECK(t != nullptr, value_error, "Compose: null transform");
        steps_.push_back(std::move(t));
    }
    std::size_t size() const { return steps_.size(); }

    Shape output_shape(const Shape& chw) const override {
        check_chw(chw);
        Shape s = chw;
        for (auto& t : steps_) s = t->output_shape(s);
        return s;
    }
    void apply(const float* src, const Shape& chw, float* dst, Generator& gen) const override {
        output_shape(chw);  // validates every step before anything is written
        if (steps_.empty()) {
            std::copy(src, src + chw[0] * chw[1] * chw[2], dst);
            return;
        }
        // Ping-pong between two scratch buffers; the last step writes into dst.
        std::vector<float> a, b;
        const float* in = src;
        Shape s = chw;
        for (std::size_t i = 0; i < steps_.size(); ++i) {
            const Shape next = steps_[i]->output_shape(s);
            float* target = dst;
            if (i + 1 < steps_.size()) {
                std::vector<float>& buf = (i % 2 == 0) ? a : b;
                buf.resize(static_cast<std::size_t>(next[0] * next[1] * next[2]));
                target = buf.data();
            }
            steps_[i]->apply(in, s, target, gen);
            in = target;
            s = next;
        }
    }
    std::string repr() const override {
        std::string r = "Compose(";
        for (std::size_t i = 0; i < steps_.size(); ++i) r += (i ? ", " : "") + steps_[i]->repr();
        return r + ")";
    }

private:
    std::vector<std::shared_ptr<const Transform>> steps_;
};

}  // namespace nanotorch::data
