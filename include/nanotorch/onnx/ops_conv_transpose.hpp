// nanotorch/onnx/ops_conv_transpose.hpp — ConvTranspose for 1-D, 2-D and 3-D FLOAT inputs, with
// strides, dilations, groups, explicit pads, auto_pad, output_padding and output_shape.
//
// The output is the scatter the ONNX spec describes: every input element x[n, c, i...] adds
// x·w[c, m, k...] to y[n, g·M/G + m, i·stride + k·dilation − pad_begin] when that lies inside the
// output. The loop order is fixed (batch, group, input channel, input position, output channel,
// kernel position), so results do not depend on anything but the inputs. A runtime-only op:
// training has no transposed convolution yet; when it gains one, this moves to ops/ beside it.
// Deliberately absent: more than 3 spatial dimensions, and any attempt at speed (im2col/GEMM).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/op_args.hpp>
#include <nanotorch/onnx/ops_support.hpp>

namespace nanotorch::onnx::rt_detail {

inline std::string check_conv_transpose(const NodeProto& n, std::int64_t) {
    const std::string mode = attr_str(n, "auto_pad", "NOTSET");
    if (mode != "NOTSET" && mode != "VALID" && mode != "SAME_UPPER" && mode != "SAME_LOWER")
        return "auto_pad '" + mode + "'";
    return "";
}

inline std::vector<Value> run_conv_transpose(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    const Tensor& w = a.tensor(1);
    const std::int64_t sp = x.dim() - 2;
    NANOTORCH_CHECK(sp >= 1 && sp <= 3 && w.dim() == x.dim(), shape_error, "ConvTranspose: input ",
                    shape_str(x.shape()), " and weight ", shape_str(w.shape()),
                    " must both be (N, C, D1..Dk) with k in 1..3");
    const auto s = static_cast<std::size_t>(sp);
    const std::int64_t N = x.size(0), C = x.size(1), G = attr_int(a.node, "group", 1);
    NANOTORCH_CHECK(G >= 1 && C % G == 0 && w.size(0) == C, shape_error, "ConvTranspose: weight ", shape_str(w.shape()),
                    " and group ", G, " do not fit ", C, " input channels");
    const std::int64_t Mg = w.size(1), M = Mg * G;
    const Shape kernel(w.shape().begin() + 2, w.shape().end());
    NANOTORCH_CHECK(attr_ints(a.node, "kernel_shape", kernel) == kernel, shape_error, "ConvTranspose: kernel_shape ",
                    shape_str(attr_ints(a.node, "kernel_shape")), " does not match weight ", shape_str(w.shape()));
    const Shape stride = attr_ints(a.node, "strides", Shape(s, 1)), dil = attr_ints(a.node, "dilations", Shape(s, 1));
    const Shape out_pad = attr_ints(a.node, "output_padding", Shape(s, 0));
    Shape pads = attr_ints(a.node, "pads", Shape(2 * s, 0));
    const Shape out_shape = attr_ints(a.node, "output_shape");
    NANOTORCH_CHECK(stride.size() == s && dil.size() == s && out_pad.size() == s && pads.size() == 2 * s &&
                        (out_shape.empty() || out_shape.size() == s),
                    value_error, "ConvTranspose: strides/dilations/output_padding/pads/output_shape do not match ", s,
                    " spatial dimensions");
    const std::string mode = attr_str(a.node, "auto_pad", "NOTSET");
    Shape out{N, M};
    for (std::size_t d = 0; d < s; ++d) {
        const std::int64_t big = std::int64_t(1) << 20;  // keeps the extents below far from int64 overflow
        NANOTORCH_CHECK(stride[d] >= 1 && stride[d] <= big && dil[d] >= 1 && dil[d] <= big && kernel[d] >= 1 &&
                            out_pad[d] >= 0 && out_pad[d] < std::max(stride[d], dil[d]) && pads[d] >= 0 &&
                            pads[d] <= big && pads[d + s] >= 0 && pads[d + s] <= big,
                        value_error, "ConvTranspose: strides and dilations must be in 1..2^20, pads in 0..2^20, "
                                     "output_padding below the stride or dilation");
        const std::int64_t in = x.size(static_cast<std::int64_t>(d) + 2);
        const std::int64_t full = stride[d] * (in - 1) + out_pad[d] + (kernel[d] - 1) * dil[d] + 1;
        std::int64_t target = -1;
        if (!out_shape.empty()) target = out_shape[d];
        else if (mode == "SAME_UPPER" || mode == "SAME_LOWER") target = in * stride[d];
        if (target >= 0) {  // pads follow from the requested size; the odd one goes to the end (UPPER)
            NANOTORCH_CHECK(target <= max_result_elements, value_error, "ConvTranspose: output_shape ", target,
                            " is out of range");
            const std::int64_t total = full - target;  // < 0: a longer output, zeros appended at the end
            pads[d] = total < 0 ? 0 : mode == "SAME_LOWER" ? total - total / 2 : total / 2;
            pads[d + s] = total - pads[d];
        } else if (mode == "VALID") {
            pads[d] = pads[d + s] = 0;
        }
        out.push_back(std::max<std::int64_t>(0, full - pads[d] - pads[d + s]));
    }
    check_result_size(out, "ConvTranspose");
    a.charge({x.numel(), Mg, shape_numel(kernel)});  // every input element scatters through Mg kernels
    const Tensor b = a.has(2) ? a.tensor(2) : Tensor();
    NANOTORCH_CHECK(!b.defined() || b.shape() == Shape{M}, shape_error, "ConvTranspose: bias of shape ",
                    b.defined() ? shape_str(b.shape()) : std::string(), " (expected [", M, "])");
    // Pad every spatial extent list to 3 dims so that one loop nest serves 1-D, 2-D and 3-D.
    auto three = [&](const Shape& v, std::size_t off, std::int64_t fill) {
        Shape r(3, fill);
        for (std::size_t d = 0; d < s; ++d) r[3 - s + d] = v[off + d];
        return r;
    };
    const Shape xin = three(x.shape(), 2, 1), ker = three(kernel, 0, 1), st = three(stride, 0, 1),
                dl = three(dil, 0, 1), pb = three(pads, 0, 0), os = three(out, 2, 1);
    // An empty output (a spatial extent cropped to 0 by pads, or no channels) has nothing to
    // accumulate into; the loops below index its first element per (n, m) plane.
    if (shape_numel(out) == 0) return one(zeros(out));
    const std::vector<float> xv = x.to_vector(), wv = w.to_vector();
    std::vector<float> y(static_cast<std::size_t>(shape_numel(out)), 0.0f);
    const std::int64_t xsp = xin[0] * xin[1] * xin[2], ksp = ker[0] * ker[1] * ker[2], osp = os[0] * os[1] * os[2];
    const std::int64_t Cg = C / G;
    // The taps k of one axis that land in the output from input position i: o = i*st + k*dl - pb
    // in [0, os), i.e. k in [lo, hi). Found once per position, so the inner loop neither divides
    // nor tests bounds; it visits the same taps in the same row-major order as a loop over every
    // tap that skips the ones outside, so the sums are the same.
    struct Taps {
        std::int64_t lo, hi, base;  // base: the output index of tap 0
    };
    const auto taps = [&](std::size_t d, std::int64_t i) {
        const std::int64_t base = i * st[d] - pb[d];
        const std::int64_t lo = base >= 0 ? 0 : (-base + dl[d] - 1) / dl[d];
        const std::int64_t hi = base >= os[d] ? 0 : std::min(ker[d], (os[d] - 1 - base) / dl[d] + 1);
        return Taps{lo, std::max(lo, hi), base};
    };
    for (std::int64_t n = 0; n < N && xsp > 0; ++n)  // an empty input adds nothing (the bias below)
        for (std::int64_t g = 0; g < G; ++g)
            for (std::int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
                const float* xc = xv.data() + (n * C + c) * xsp;  // data(): x may be empty
                for (std::int64_t i0 = 0; i0 < xin[0]; ++i0) {
                    const Taps t0 = taps(0, i0);
                    if (t0.lo == t0.hi) continue;
                    for (std::int64_t i1 = 0; i1 < xin[1]; ++i1) {
                        const Taps t1 = taps(1, i1);
                        if (t1.lo == t1.hi) continue;
                        for (std::int64_t i2 = 0; i2 < xin[2]; ++i2) {
                            const Taps t2 = taps(2, i2);
                            if (t2.lo == t2.hi) continue;
                            const float xval = xc[(i0 * xin[1] + i1) * xin[2] + i2];
                            for (std::int64_t m = 0; m < Mg; ++m) {
                                float* yo = &y[static_cast<std::size_t>((n * M + g * Mg + m) * osp)];
                                const float* wk = &wv[static_cast<std::size_t>((c * Mg + m) * ksp)];
                                for (std::int64_t k0 = t0.lo; k0 < t0.hi; ++k0)
                                    for (std::int64_t k1 = t1.lo; k1 < t1.hi; ++k1) {
                                        const float* wrow = wk + (k0 * ker[1] + k1) * ker[2];
                                        const std::int64_t row =
                                            ((t0.base + k0 * dl[0]) * os[1] + t1.base + k1 * dl[1]) * os[2] + t2.base;
                                        for (std::int64_t k2 = t2.lo; k2 < t2.hi; ++k2)
                                            yo[row + k2 * dl[2]] += xval * wrow[k2];
                                    }
                            }
                        }
                    }
                }
            }
    if (b.defined()) {
        const std::vector<float> bv = b.to_vector();
        for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t m = 0; m < M; ++m)
                for (std::int64_t k = 0; k < osp; ++k) y[static_cast<std::size_t>((n * M + m) * osp + k)] += bv[static_cast<std::size_t>(m)];
    }
    return one(tensor(y, out));
}

}  // namespace nanotorch::onnx::rt_detail
